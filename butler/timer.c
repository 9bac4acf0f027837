/* SPDX-License-Identifier: MIT */
/*
 * timer.c — timer objects and the hub's registry of them (timer.h). A timer
 * is created by its sender, armed and fired by its destination instance,
 * and cancelled by anyone: the state word decides between a cancel and
 * the destination's last firing, and the registry's lock keeps a cancel
 * from touching a timer being freed.
 */
#include "timer.h"

#include <string.h>

#include "alloc.h"

enum { T_ARMED = 0, T_CANCELLED = 1, T_FIRED = 2 };

#define FIRST_BUCKETS 64

static size_t
slot(uint64_t id, size_t n)
{
	return (size_t)((id * 0x9E3779B97F4A7C15u) >> 17) & (n - 1);
}

int
butler__timers_init(struct butler__timers *reg)
{
	memset(reg, 0, sizeof *reg);
	reg->next_id = 1;
	reg->bucket = butler__calloc(FIRST_BUCKETS, sizeof *reg->bucket);
	if (reg->bucket == NULL)
		return BUTLER_ENOMEM;
	reg->n_buckets = FIRST_BUCKETS;
	if (pthread_mutex_init(&reg->lock, NULL) != 0) {
		free(reg->bucket);
		return BUTLER_ESYS;
	}
	return BUTLER_OK;
}

void
butler__timers_release(struct butler__timers *reg)
{
	if (reg->bucket == NULL)
		return;
	pthread_mutex_destroy(&reg->lock);
	free(reg->bucket);
	reg->bucket = NULL;
}

/* Doubles the buckets; a failure only makes chains longer. */
static void
grow(struct butler__timers *reg)
{
	size_t n = reg->n_buckets * 2;
	struct butler__timer **b = butler__calloc(n, sizeof *b), *t, *next;

	if (b == NULL)
		return;
	for (size_t i = 0; i < reg->n_buckets; i++)
		for (t = reg->bucket[i]; t != NULL; t = next) {
			size_t s = slot(t->id, n);

			next = t->hnext;
			t->hnext = b[s];
			b[s] = t;
		}
	free(reg->bucket);
	reg->bucket = b;
	reg->n_buckets = n;
}

int
butler__timer_new(struct butler__timers *reg, const butler_msg_desc *msg,
    unsigned kind, const void *bytes, size_t size, uint64_t delay_ns,
    uint64_t period_ns, struct butler__timer **out)
{
	struct butler__timer *t = butler__malloc(sizeof *t + size);
	size_t s;

	*out = NULL;
	if (t == NULL)
		return BUTLER_ENOMEM;
	memset(t, 0, sizeof *t);
	atomic_init(&t->state, T_ARMED);
	t->node.at = BUTLER__NO_HEAP;
	t->node.due = delay_ns; /* relative until armed: see server.c */
	t->kind = kind;
	t->size = size;
	t->period_ns = period_ns;
	t->msg = msg;
	if (size > 0 && bytes != NULL)
		memcpy(t->payload, bytes, size);
	else if (size > 0)
		memset(t->payload, 0, size); /* a tick: all zero */
	pthread_mutex_lock(&reg->lock);
	t->id = reg->next_id++;
	if (reg->count + 1 > 2 * reg->n_buckets)
		grow(reg);
	s = slot(t->id, reg->n_buckets);
	t->hnext = reg->bucket[s];
	reg->bucket[s] = t;
	reg->count++;
	pthread_mutex_unlock(&reg->lock);
	*out = t;
	return BUTLER_OK;
}

static void
unregister(struct butler__timers *reg, struct butler__timer *t)
{
	struct butler__timer **link;

	pthread_mutex_lock(&reg->lock);
	for (link = &reg->bucket[slot(t->id, reg->n_buckets)]; *link != NULL;
	     link = &(*link)->hnext)
		if (*link == t) {
			*link = t->hnext;
			reg->count--;
			break;
		}
	pthread_mutex_unlock(&reg->lock);
}

void
butler__timer_free(struct butler__timers *reg, struct butler__timer *t)
{
	unregister(reg, t);
	free(t);
}

void
butler__timer_drop(struct butler__timers *reg, struct butler__timer *t)
{
	unregister(reg, t);
	if (t->msg->destroy != NULL && t->size > 0)
		t->msg->destroy(t->payload);
	free(t);
}

int
butler__timer_cancel(struct butler__timers *reg, uint64_t id)
{
	int rv = BUTLER_ENOTFOUND;

	pthread_mutex_lock(&reg->lock);
	for (struct butler__timer *t = reg->bucket[slot(id, reg->n_buckets)];
	     t != NULL; t = t->hnext)
		if (t->id == id) {
			int armed = T_ARMED;

			if (atomic_compare_exchange_strong(
			        &t->state, &armed, T_CANCELLED))
				rv = BUTLER_OK;
			break;
		}
	pthread_mutex_unlock(&reg->lock);
	return rv;
}

bool
butler__timer_cancelled(struct butler__timer *t)
{
	return atomic_load(&t->state) == T_CANCELLED;
}

bool
butler__timer_claim(struct butler__timer *t)
{
	int armed = T_ARMED;

	return atomic_compare_exchange_strong(&t->state, &armed, T_FIRED);
}
