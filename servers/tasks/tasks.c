/* SPDX-License-Identifier: MIT */
/*
 * servers/tasks/tasks.c — the tasks pool (tasks.json) and the C API of
 * butler/tasks.h over it.
 *
 * A task is one `run` request to the pool. Function pointers travel as
 * integers (C11 6.3.2.3 lets a pointer convert to an integer type and back,
 * and POSIX makes function pointers fit in a uintptr_t), so that the
 * message holds no allocation of its own: the argument rides in the `arg`
 * buf, whose free_fn is the trampoline release() calling the user's free
 * function (carried in the buf's ctx), so the runtime's generated
 * destructor frees it exactly once whether the task ran or not. The done
 * callback and its user pointer go to butler_call() as the reply
 * callback, with a thunk of our own, so a submit allocates nothing either.
 */
#include <butler/tasks.h>

#include <stddef.h>
#include <stdint.h>

#include "tasks.butler.h"

/* struct butler_task is the running task: it lives on the handler's
 * stack for the task function's call. */
struct butler_task {
	butler_server *self;
	struct tasks_buf *arg; /* in the request message */
	void *result;
	butler_task_free_fn free_result;
};

/*
 * The in-flight count of the calling thread, per hub: only the thread
 * itself touches it (submit counts up, the done thunk, which runs on the
 * submitting thread, counts down), so it needs no lock. A slot is free when
 * its count is 0, so a freed hub leaves nothing behind.
 */
#define SLOTS 8

struct slot {
	const butler_hub *hub;
	unsigned n;
};

static _Thread_local struct slot slots[SLOTS];
static _Thread_local unsigned limit_set; /* 0: BUTLER_TASKS_LIMIT */

/* slot_of returns the calling thread's slot for `hub`: its own, a free one
 * if `make`, or NULL. */
static struct slot *
slot_of(const butler_hub *hub, bool make)
{
	struct slot *free_slot = NULL;

	for (unsigned i = 0; i < SLOTS; i++) {
		if (slots[i].n > 0 && slots[i].hub == hub)
			return &slots[i];
		if (slots[i].n == 0 && free_slot == NULL)
			free_slot = &slots[i];
	}
	if (!make || free_slot == NULL)
		return NULL;
	free_slot->hub = hub;
	return free_slot;
}

/* release is the `arg` and `result` bufs' free_fn: ctx is the user's free
 * function, as an integer. */
static void
release(void *data, void *ctx)
{
	butler_task_free_fn fn = (butler_task_free_fn)(uintptr_t)ctx;

	fn(data);
}

/* owned_buf returns a buf that frees `data` with `fn` (NULL: never). */
static struct tasks_buf
owned_buf(void *data, butler_task_free_fn fn)
{
	return (struct tasks_buf) {
		.data = data,
		.free_fn = fn != NULL ? release : NULL,
		.ctx = (void *)(uintptr_t)fn,
	};
}

/* ---- the pool: runs on its threads ------------------------------------- */

static int
pool_run(butler_server *self, void *user, struct tasks_run *msg)
{
	butler_task_fn fn = (butler_task_fn)(uintptr_t)msg->fn;
	struct butler_task task = { .self = self, .arg = &msg->arg };
	struct tasks_ran ran;
	int rv;

	(void)user;
	rv = fn(&task, msg->arg.data);
	ran.result = owned_buf(task.result, task.free_result);
	/* Not delivered, the result is freed by its destructor: here on a
	 * failure, or in the hub when the submitter has gone. */
	if (rv == 0)
		rv = tasks_reply_run(self, &ran);
	if (rv != 0)
		tasks_ran_destroy(&ran);
	return rv;
}

int
butler_tasks_register(butler_hub *hub)
{
	return tasks_pool_register(
	    hub, &(struct tasks_pool_handlers) { .run = pool_run }, NULL);
}

bool
butler_task_cancelled(const butler_task *task)
{
	return butler_cancelled(task->self);
}

int64_t
butler_task_time_left_ms(const butler_task *task)
{
	return butler_time_left_ms(task->self);
}

void
butler_task_set_result(
    butler_task *task, void *result, butler_task_free_fn free_result)
{
	if (task->free_result != NULL && task->result != NULL
	    && task->result != result)
		task->free_result(task->result);
	task->result = result;
	task->free_result = free_result;
}

void *
butler_task_take_arg(butler_task *task)
{
	void *arg = task->arg->data;

	*task->arg = (struct tasks_buf) { 0 };
	return arg;
}

butler_server *
butler_task_server(const butler_task *task)
{
	return task->self;
}

/* ---- submitting: on the submitter's thread ----------------------------- */

/*
 * on_ran is the reply thunk of every submitted task: on the submitter's
 * thread, with the one outcome. The count goes down before the callback, so
 * that the callback may submit again. The result moves to the callback;
 * with no callback it stays in the reply and its destructor frees it.
 */
static void
on_ran(
    butler_server *self, int status, void *reply, void (*cb)(void), void *user)
{
	struct tasks_ran *ran = reply;
	butler_task_done_fn done = (butler_task_done_fn)cb;
	struct slot *s = slot_of(butler_server_hub(self), false);
	void *result = NULL;

	if (s != NULL)
		s->n--;
	if (done == NULL)
		return;
	if (status == BUTLER_OK) {
		result = ran->result.data;
		ran->result = (struct tasks_buf) { 0 };
	}
	done(self, status, result, user);
}

int
butler_tasks_submit(butler_hub *hub, butler_task_fn fn, void *arg,
    butler_task_free_fn free_arg, butler_task_done_fn done, void *user,
    int timeout_ms, uint64_t *id)
{
	struct tasks_run msg = {
		.fn = (uint64_t)(uintptr_t)fn,
		.arg = owned_buf(arg, free_arg),
	};
	unsigned limit = limit_set != 0 ? limit_set : BUTLER_TASKS_LIMIT;
	struct slot *s;
	int rv;

	if (hub == NULL || fn == NULL)
		return BUTLER_EINVAL;
	s = slot_of(hub, true);
	if (s == NULL || s->n >= limit)
		return BUTLER_EFULL;
	/* Counted first: nothing answers before butler_call() returns, but
	 * the count must never go below what is in flight. */
	s->n++;
	rv = butler_call(hub,
	    butler_hub_server(hub, &tasks_spec, TASKS_SERVER_POOL),
	    TASKS_POOL_RUN, &msg, sizeof msg, timeout_ms, on_ran,
	    (void (*)(void))done, user, id);
	if (rv != BUTLER_OK)
		s->n--;
	return rv;
}

int
butler_tasks_cancel(butler_hub *hub, uint64_t id)
{
	return butler_cancel(hub, id);
}

int
butler_tasks_run_wait(butler_hub *hub, butler_task_fn fn, void *arg,
    butler_task_free_fn free_arg, int timeout_ms, void **result)
{
	struct tasks_run msg = {
		.fn = (uint64_t)(uintptr_t)fn,
		.arg = owned_buf(arg, free_arg),
	};
	struct tasks_ran ran = { 0 };
	int rv;

	if (hub == NULL || fn == NULL)
		return BUTLER_EINVAL;
	rv = tasks_call_pool_run_wait(hub, &msg, timeout_ms, &ran);
	if (rv != BUTLER_OK)
		return rv;
	if (result != NULL) {
		*result = ran.result.data;
		ran.result = (struct tasks_buf) { 0 };
	}
	tasks_ran_destroy(&ran);
	return BUTLER_OK;
}

int
butler_tasks_set_limit(unsigned limit)
{
	if (limit == 0)
		return BUTLER_EINVAL;
	limit_set = limit;
	return BUTLER_OK;
}

unsigned
butler_tasks_in_flight(const butler_hub *hub)
{
	const struct slot *s = slot_of(hub, false);

	return s != NULL ? s->n : 0;
}
