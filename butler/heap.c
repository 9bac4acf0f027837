/* SPDX-License-Identifier: MIT */
/*
 * heap.c — the binary min-heap of deadlines (heap.h).
 */
#include "heap.h"

#include <butler/error.h>

#include "alloc.h"

void
butler__heap_release(struct butler__heap *h)
{
	free(h->node);
	h->node = NULL;
	h->n = h->cap = 0;
}

int
butler__heap_reserve(struct butler__heap *h)
{
	size_t cap;
	struct butler__heap_node **node;

	if (h->n < h->cap)
		return BUTLER_OK;
	cap = h->cap ? h->cap * 2 : 64;
	node = butler__realloc(h->node, cap * sizeof *node);
	if (node == NULL)
		return BUTLER_ENOMEM;
	h->node = node;
	h->cap = cap;
	return BUTLER_OK;
}

static void
swap(struct butler__heap *h, size_t a, size_t b)
{
	struct butler__heap_node *x = h->node[a];

	h->node[a] = h->node[b];
	h->node[b] = x;
	h->node[a]->at = a;
	h->node[b]->at = b;
}

static void
up(struct butler__heap *h, size_t i)
{
	while (i > 0 && h->node[(i - 1) / 2]->due > h->node[i]->due) {
		swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
down(struct butler__heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && h->node[l]->due < h->node[m]->due)
			m = l;
		if (r < h->n && h->node[r]->due < h->node[m]->due)
			m = r;
		if (m == i)
			return;
		swap(h, i, m);
		i = m;
	}
}

void
butler__heap_push(struct butler__heap *h, struct butler__heap_node *node)
{
	node->at = h->n;
	h->node[h->n++] = node;
	up(h, node->at);
}

void
butler__heap_remove(struct butler__heap *h, struct butler__heap_node *node)
{
	size_t i = node->at;

	if (i == BUTLER__NO_HEAP)
		return;
	h->n--;
	if (i != h->n) {
		h->node[i] = h->node[h->n];
		h->node[i]->at = i;
		down(h, i);
		up(h, i);
	}
	node->at = BUTLER__NO_HEAP;
}

uint64_t
butler__heap_wait(const struct butler__heap *h, uint64_t now_ns)
{
	uint64_t d;

	if (h->n == 0)
		return UINT64_MAX;
	d = h->node[0]->due;
	return d > now_ns ? d - now_ns : 0;
}

int
butler__heap_ms(uint64_t wait_ns)
{
	uint64_t ms;

	if (wait_ns == UINT64_MAX)
		return -1;
	ms = (wait_ns + 999999u) / 1000000u;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}
