/* SPDX-License-Identifier: MIT */
/*
 * tests/bench/count.h — counters of the LD_PRELOAD interposer (count.c).
 *
 * The harness does not link the interposer: it looks these functions up
 * with dlsym() when run with --count, so the timed runs carry no counting
 * overhead at all and the counted runs see every call made by the shared
 * libraries under test (libzmq, libnng, GLib, libuv, libevent, butler).
 */
#ifndef BUTLER_TESTS_BENCH_COUNT_H
#define BUTLER_TESTS_BENCH_COUNT_H

#include <stdbool.h>
#include <stdint.h>

/* bench_counts is a snapshot of the counters since the process started. */
struct bench_counts {
	uint64_t mallocs; /* malloc, calloc, realloc, memalign family */
	uint64_t frees;
	uint64_t writes; /* write() and eventfd_write() calls, any fd */
};

/* bench_count_arm starts (true) or stops (false) counting. Any thread. */
typedef void (*bench_count_arm_fn)(bool on);

/* bench_count_read copies the counters into *out. Any thread. */
typedef void (*bench_count_read_fn)(struct bench_counts *out);

#endif /* BUTLER_TESTS_BENCH_COUNT_H */
