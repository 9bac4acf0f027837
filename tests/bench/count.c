/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/count.c — an LD_PRELOAD interposer counting allocations and
 * wake-up writes (see count.h).
 *
 * It is preloaded rather than linked with --wrap so that calls made inside
 * shared libraries are counted too: the peers' allocations and eventfd
 * writes happen in libzmq, libnng, GLib, libuv and libevent, not in the
 * harness. Allocation goes to glibc's __libc_* entry points, which need no
 * dlsym() and so avoid the classic calloc-inside-dlsym recursion.
 *
 * Counting is off until the harness arms it, so start-up and warm-up do not
 * pollute the per-message figures. The counters are shared atomics: their
 * contention would distort timing, which is why timed runs do not preload
 * this library.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "count.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/types.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static atomic_bool armed;
static atomic_uint_fast64_t n_mallocs, n_frees, n_writes;

static void
bump(atomic_uint_fast64_t *counter)
{
	if (atomic_load_explicit(&armed, memory_order_relaxed))
		atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void
bench_count_arm(bool on)
{
	atomic_store(&armed, on);
}

void
bench_count_read(struct bench_counts *out)
{
	out->mallocs = atomic_load(&n_mallocs);
	out->frees = atomic_load(&n_frees);
	out->writes = atomic_load(&n_writes);
}

void *
malloc(size_t size)
{
	bump(&n_mallocs);
	return __libc_malloc(size);
}

void *
calloc(size_t n, size_t size)
{
	bump(&n_mallocs);
	return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t size)
{
	bump(&n_mallocs);
	return __libc_realloc(p, size);
}

void
free(void *p)
{
	if (p)
		bump(&n_frees);
	__libc_free(p);
}

void *
memalign(size_t align, size_t size)
{
	bump(&n_mallocs);
	return __libc_memalign(align, size);
}

void *
aligned_alloc(size_t align, size_t size)
{
	bump(&n_mallocs);
	return __libc_memalign(align, size);
}

int
posix_memalign(void **out, size_t align, size_t size)
{
	void *p;

	bump(&n_mallocs);
	p = __libc_memalign(align, size);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static ssize_t (*next_write)(int, const void *, size_t);
static int (*next_eventfd_write)(int, eventfd_t);

/* resolve runs before main, before any thread exists, so the pointers
 * below are written once and only read afterwards. */
__attribute__((constructor)) static void
resolve(void)
{
	next_write = (ssize_t(*)(int, const void *, size_t))(uintptr_t)dlsym(
	    RTLD_NEXT, "write");
	next_eventfd_write = (int (*)(int, eventfd_t))(uintptr_t)dlsym(
	    RTLD_NEXT, "eventfd_write");
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	bump(&n_writes);
	return next_write(fd, buf, n);
}

/* glibc's eventfd_write calls its internal write, which the wrapper above
 * does not see, so it is counted on its own. */
int
eventfd_write(int fd, eventfd_t value)
{
	bump(&n_writes);
	return next_eventfd_write(fd, value);
}
