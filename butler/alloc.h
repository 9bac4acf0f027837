/* SPDX-License-Identifier: MIT */
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

#define BUTLER__STR2_(x) #x
#define BUTLER__STR_(x) BUTLER__STR2_(x)
/* BUTLER__HERE names a call site: "file.c:123". */
#define BUTLER__HERE __FILE__ ":" BUTLER__STR_(__LINE__)

#ifdef BUTLER_FAULT_INJECTION

/*
 * butler__fault_arm makes the nth request of kind `site` from now fail (1:
 * the next one), and every later one too when `sticky`; 0 disarms. Counts
 * restart at 0. Test builds only; any thread.
 */
void butler__fault_arm(int site, unsigned long nth, bool sticky);

/* butler__fault_calls returns the requests of `site` since the last arm. */
unsigned long butler__fault_calls(int site);

/* butler__fault_places returns how many distinct call sites of `site`
 * have been reached since the process started. */
unsigned butler__fault_places(int site);

/* butler__fault_hit counts one request of `site` made at `where`; true:
 * fail it. */
bool butler__fault_hit(int site, const char *where);

#else

static inline bool
butler__fault_hit(int site, const char *where)
{
	(void)site;
	(void)where;
	return false;
}

#endif

#define BUTLER__FAULT(site) butler__fault_hit((site), BUTLER__HERE)

#define butler__malloc(n)                                                     \
	(BUTLER__FAULT(BUTLER__FAULT_ALLOC) ? NULL : malloc(n))
#define butler__calloc(n, size)                                               \
	(BUTLER__FAULT(BUTLER__FAULT_ALLOC) ? NULL : calloc((n), (size)))
#define butler__realloc(p, n)                                                 \
	(BUTLER__FAULT(BUTLER__FAULT_ALLOC) ? NULL : realloc((p), (n)))
#define butler__aligned_alloc(align, n)                                       \
	(BUTLER__FAULT(BUTLER__FAULT_ALLOC) ? NULL                            \
	                                    : aligned_alloc((align), (n)))

#endif /* BUTLER_INTERNAL_ALLOC_H */
