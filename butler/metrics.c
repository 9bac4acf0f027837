/* SPDX-License-Identifier: MIT */
/* metrics.c — reading the histograms of metrics.h. */
#include "metrics.h"

void
butler__hist_read(const struct butler__hist *h, struct butler__hist_sum *s)
{
	uint64_t max;

	for (unsigned b = 0; b < BUTLER__HIST_BUCKETS; b++) {
		uint64_t n
		    = atomic_load_explicit(&h->n[b], memory_order_relaxed);

		s->n[b] += n;
		s->total += n;
	}
	max = atomic_load_explicit(&h->max, memory_order_relaxed);
	if (max > s->max)
		s->max = max;
}

uint64_t
butler__hist_quantile(const struct butler__hist_sum *s, double q)
{
	uint64_t rank, seen = 0;

	if (s->total == 0)
		return 0;
	/* The smallest value with at least q of the values at or below. */
	rank = (uint64_t)(q * (double)s->total + 0.999999);
	if (rank == 0)
		rank = 1;
	for (unsigned b = 0; b < BUTLER__HIST_BUCKETS; b++) {
		seen += s->n[b];
		if (seen >= rank) {
			uint64_t up = butler__hist_upper(b);

			/* Never above what was actually seen. */
			return up < s->max ? up : s->max;
		}
	}
	return s->max;
}
