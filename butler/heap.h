/* SPDX-License-Identifier: MIT */
/*
 * butler/heap.h — a binary min-heap of deadlines, intrusive: each entry
 * embeds a butler__heap_node, so an entry can leave the heap from anywhere
 * in O(log n) (a cancelled call, a cancelled timer). Single-threaded: its
 * owner's thread only. Used by the caller's table of calls (request.c) and
 * each server's timers (timer.c).
 */
#ifndef BUTLER_INTERNAL_HEAP_H
#define BUTLER_INTERNAL_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* BUTLER__NO_HEAP is a node's `at` while it is in no heap. */
#define BUTLER__NO_HEAP SIZE_MAX

struct butler__heap_node {
	uint64_t due; /* monotonic ns */
	size_t at;    /* index in the heap, or BUTLER__NO_HEAP */
};

struct butler__heap {
	struct butler__heap_node **node;
	size_t n, cap;
};

/* butler__heap_release frees the array (the entries are the owner's). */
void butler__heap_release(struct butler__heap *h);

/* butler__heap_reserve makes room for one more entry: BUTLER_OK or
 * BUTLER_ENOMEM (the heap unchanged). */
int butler__heap_reserve(struct butler__heap *h);

/* butler__heap_push adds node (room reserved). */
void butler__heap_push(struct butler__heap *h, struct butler__heap_node *node);

/* butler__heap_remove takes node out, if it is in. */
void butler__heap_remove(
    struct butler__heap *h, struct butler__heap_node *node);

/* butler__heap_top returns the earliest node, or NULL when empty. */
static inline struct butler__heap_node *
butler__heap_top(const struct butler__heap *h)
{
	return h->n > 0 ? h->node[0] : NULL;
}

/*
 * butler__heap_wait returns how long until the earliest deadline from
 * now_ns (0: due), or UINT64_MAX for none.
 */
uint64_t butler__heap_wait(const struct butler__heap *h, uint64_t now_ns);

/* butler__heap_ms rounds a wait up to milliseconds for a poll() timeout:
 * -1 for none. */
int butler__heap_ms(uint64_t wait_ns);

#endif /* BUTLER_INTERNAL_HEAP_H */
