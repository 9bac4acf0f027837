/*
 * fault.c — the fault injector of test builds (butler/alloc.h). Process
 * global on purpose: a test arms it, runs one scenario, and reads how many
 * requests each site saw, whichever thread made them.
 */
#include "alloc.h"

#ifdef BUTLER_FAULT_INJECTION

#include <stdatomic.h>

static atomic_ulong calls[BUTLER__FAULT_SITES];
static atomic_ulong fail_at[BUTLER__FAULT_SITES];
static atomic_bool sticky[BUTLER__FAULT_SITES];

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

bool
butler__fault_hit(int site)
{
	unsigned long n = atomic_fetch_add(&calls[site], 1) + 1;
	unsigned long at = atomic_load(&fail_at[site]);

	return at != 0 && (n == at || (n > at && atomic_load(&sticky[site])));
}

#else

/* ISO C wants a translation unit to declare something. */
typedef int butler__fault_unused;

#endif
