/* SPDX-License-Identifier: MIT */
/*
 * fault.c — the fault injector of test builds (butler/alloc.h). Process
 * global on purpose: a test arms it, runs one scenario, and reads how many
 * requests each kind saw, whichever thread made them, and how many distinct
 * call sites have been reached.
 */
#include "alloc.h"

#ifdef BUTLER_FAULT_INJECTION

#include <pthread.h>
#include <stdatomic.h>

#define MAX_PLACES 256

static atomic_ulong calls[BUTLER__FAULT_SITES];
static atomic_ulong fail_at[BUTLER__FAULT_SITES];
static atomic_bool sticky[BUTLER__FAULT_SITES];
static pthread_mutex_t places_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *places[BUTLER__FAULT_SITES][MAX_PLACES];
static unsigned n_places[BUTLER__FAULT_SITES];

void
butler__fault_arm(int site, unsigned long nth, bool keep_failing)
{
	atomic_store(&fail_at[site], 0);
	atomic_store(&calls[site], 0);
	atomic_store(&sticky[site], keep_failing);
	atomic_store(&fail_at[site], nth);
}

unsigned long
butler__fault_calls(int site)
{
	return atomic_load(&calls[site]);
}

unsigned
butler__fault_places(int site)
{
	unsigned n;

	pthread_mutex_lock(&places_lock);
	n = n_places[site];
	pthread_mutex_unlock(&places_lock);
	return n;
}

static void
remember(int site, const char *where)
{
	unsigned i;

	pthread_mutex_lock(&places_lock);
	for (i = 0; i < n_places[site] && places[site][i] != where; i++)
		;
	if (i == n_places[site] && i < MAX_PLACES)
		places[site][n_places[site]++] = where;
	pthread_mutex_unlock(&places_lock);
}

bool
butler__fault_hit(int site, const char *where)
{
	unsigned long n = atomic_fetch_add(&calls[site], 1) + 1;
	unsigned long at = atomic_load(&fail_at[site]);

	remember(site, where);
	return at != 0 && (n == at || (n > at && atomic_load(&sticky[site])));
}

#endif

#ifdef BUTLER_CHAOS

#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "chaos.h"

void
butler__chaos(void)
{
	static _Thread_local uint64_t x;
	uint64_t r;

	if (x == 0)
		x = (uint64_t)(uintptr_t)&x | 1u;
	/* xorshift64: cheap, and each thread has its own sequence. */
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r = x;
	if ((r & 511) == 0) {
		struct timespec ts = { 0, (long)(1 + (r >> 10) % 50) * 1000 };

		nanosleep(&ts, NULL);
	} else if ((r & 15) == 0) {
		sched_yield();
	}
}

#endif

/* ISO C wants a translation unit to declare something. */
typedef int butler__fault_unused;
