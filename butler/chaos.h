/* SPDX-License-Identifier: MIT */
/*
 * butler/chaos.h — chaos points: in a test-only build (BUTLER_CHAOS, never
 * a release) each one yields or sleeps a few microseconds at random, so
 * that the stress tests try interleavings a quiet machine never shows:
 * around a publish, a take, the pending flag, closing, an answer.
 */
#ifndef BUTLER_INTERNAL_CHAOS_H
#define BUTLER_INTERNAL_CHAOS_H

#ifdef BUTLER_CHAOS
/* butler__chaos yields (1 in 16) or sleeps 1-50 µs (1 in 512). */
void butler__chaos(void);
#define BUTLER__CHAOS() butler__chaos()
#else
#define BUTLER__CHAOS() ((void)0)
#endif

#endif /* BUTLER_INTERNAL_CHAOS_H */
