/*
 * butler/alloc.h — every allocation, fd and thread the runtime makes goes
 * through here, so that a test-only build (BUTLER_FAULT_INJECTION, never a
 * release) can make the Nth of them fail and prove that each failure is
 * reported as an error code, leaks nothing and leaves the hub stoppable.
 */
#ifndef BUTLER_INTERNAL_ALLOC_H
#define BUTLER_INTERNAL_ALLOC_H

#include <stdbool.h>
#include <stdlib.h>

/* The kinds of resource a fault can be injected into. */
enum butler__fault_site {
	BUTLER__FAULT_ALLOC = 0, /* malloc, calloc, realloc, aligned_alloc */
	BUTLER__FAULT_FD,        /* eventfd, pipe, libevent's loop */
	BUTLER__FAULT_THREAD,    /* pthread_create */
	BUTLER__FAULT_SITES
};

#ifdef BUTLER_FAULT_INJECTION

/*
 * butler__fault_arm makes the nth request of `site` from now fail (1: the
 * next one), and every later one too when `sticky`; 0 disarms. Counts
 * restart at 0. Test builds only; any thread.
 */
void butler__fault_arm(int site, unsigned long nth, bool sticky);

/* butler__fault_calls returns the requests of `site` since the last arm. */
unsigned long butler__fault_calls(int site);

/* butler__fault_hit counts one request of `site`; true: fail it. */
bool butler__fault_hit(int site);

#else

static inline bool
butler__fault_hit(int site)
{
	(void)site;
	return false;
}

#endif

static inline void *
butler__malloc(size_t n)
{
	return butler__fault_hit(BUTLER__FAULT_ALLOC) ? NULL : malloc(n);
}

static inline void *
butler__calloc(size_t n, size_t size)
{
	return butler__fault_hit(BUTLER__FAULT_ALLOC) ? NULL : calloc(n, size);
}

static inline void *
butler__realloc(void *p, size_t n)
{
	return butler__fault_hit(BUTLER__FAULT_ALLOC) ? NULL : realloc(p, n);
}

static inline void *
butler__aligned_alloc(size_t align, size_t n)
{
	return butler__fault_hit(BUTLER__FAULT_ALLOC)
	    ? NULL
	    : aligned_alloc(align, n);
}

#endif /* BUTLER_INTERNAL_ALLOC_H */
