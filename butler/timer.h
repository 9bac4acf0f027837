/* SPDX-License-Identifier: MIT */
/*
 * butler/timer.h — messages sent later, once or every period, and a
 * server's own tick: each timer lives on its destination instance's loop
 * (one libevent timer per instance for the earliest, or the deadline an
 * external server's owner polls with), never on a thread of its own. A
 * timer is created by the sender, travels to its destination as a record,
 * and is armed there; a hub-wide registry lets any thread cancel it by id.
 * Built on heap.h; server.c arms, fires and drops.
 */
#ifndef BUTLER_INTERNAL_TIMER_H
#define BUTLER_INTERNAL_TIMER_H

#include <pthread.h>
#include <stdatomic.h>

#include <butler/hub.h>

#include "heap.h"

struct butler__timer {
	struct butler__heap_node node; /* in its instance's heap */
	uint64_t id;
	atomic_int state;   /* timer.c: armed, cancelled */
	unsigned kind;      /* server-local kind */
	size_t size;        /* of payload */
	uint64_t period_ns; /* 0: once */
	const butler_msg_desc *msg;
	struct butler__timer *hnext; /* registry chain */
	_Alignas(max_align_t) unsigned char payload[];
};

/* The hub's registry of timers not yet over, by id (for cancels). */
struct butler__timers {
	pthread_mutex_t lock;
	struct butler__timer **bucket;
	size_t n_buckets; /* power of two */
	size_t count;
	uint64_t next_id;
};

int butler__timers_init(struct butler__timers *reg);
/* Frees the registry; every timer has been dropped already. */
void butler__timers_release(struct butler__timers *reg);

/*
 * butler__timer_new makes and registers a timer delivering kind `kind`
 * (message `msg`, `size` bytes copied from `bytes`) after delay_ns, then
 * every period_ns if not 0. Returns BUTLER_OK or BUTLER_ENOMEM.
 */
int butler__timer_new(struct butler__timers *reg, const butler_msg_desc *msg,
    unsigned kind, const void *bytes, size_t size, uint64_t delay_ns,
    uint64_t period_ns, struct butler__timer **out);

/* butler__timer_drop unregisters t, destroys its message and frees it. */
void butler__timer_drop(struct butler__timers *reg, struct butler__timer *t);

/* butler__timer_free frees a timer whose message is no one's any more
 * (handed to its last handler). */
void butler__timer_free(struct butler__timers *reg, struct butler__timer *t);

/*
 * butler__timer_cancel cancels timer `id`: it will not fire again (its
 * destination drops it). Returns BUTLER_OK, or BUTLER_ENOTFOUND when it has
 * fired its last time or was cancelled already. Any thread.
 */
int butler__timer_cancel(struct butler__timers *reg, uint64_t id);

/* butler__timer_cancelled says whether t was cancelled. */
bool butler__timer_cancelled(struct butler__timer *t);

/* butler__timer_claim takes a one-shot timer for its firing: false when it
 * was cancelled first (a cancel after this returns BUTLER_ENOTFOUND). */
bool butler__timer_claim(struct butler__timer *t);

#endif /* BUTLER_INTERNAL_TIMER_H */
