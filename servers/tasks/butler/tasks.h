/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/tasks.h — run a function on a pool of threads and get its result
 * back on your own loop (servers/tasks, CMake target butler::tasks).
 *
 * A task is a function and its argument. butler_tasks_submit() hands it to
 * the tasks pool (one thread per online CPU), and its done callback runs
 * later on the submitting thread: a butler server's thread, or the thread
 * that owns an external-loop server (a GLib main loop with
 * butler_glib_attach()). Underneath, a task is a butler request to the
 * pool, so everything requests have works for tasks: a timeout, a cancel
 * (butler_tasks_cancel()), butler_hub_pending() listing what still runs,
 * and a stop that ends every task exactly once.
 *
 * The pool lives in the application's own hub. Either build the hub from
 * a spec that imports the tasks spec ("imports": ["butler/tasks.json"];
 * link butler::tasks), or from tasks_spec alone (tasks.butler.h); then
 * call butler_tasks_register() before butler_hub_start().
 *
 * Ownership of a task's argument: on BUTLER_OK from butler_tasks_submit()
 * the hub owns it and calls free_arg(arg) exactly once — after the task has
 * run, or without running it when the task is cancelled, times out or is
 * discarded by a stop before it started. On failure it is still the
 * caller's. A result reaches the done callback, which then owns it; a
 * result that reaches no one (the submitter gave up while the task ran) is
 * freed with the free function the task gave with it.
 */
#ifndef BUTLER_TASKS_H
#define BUTLER_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include <butler/butler.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * butler_task is the running task, as its function sees it: what it asks
 * whether it was cancelled and hands its result to. Valid only during the
 * task function's call, on the pool thread that runs it.
 */
typedef struct butler_task butler_task;

/**
 * butler_task_fn is a task: it runs on one of the pool's threads with the
 * `arg` given at submit. It returns 0 on success, with its result (if any)
 * given by butler_task_set_result(); any other value fails the task and
 * becomes the done callback's status (a butler_err or a positive code of
 * its own). It must not keep `arg` past its return unless it takes it
 * (butler_task_take_arg()).
 */
typedef int (*butler_task_fn)(butler_task *task, void *arg);

/** butler_task_free_fn releases a task's argument or result. */
typedef void (*butler_task_free_fn)(void *p);

/**
 * butler_task_done_fn receives the one outcome of a task, on the thread that
 * submitted it (`self` is the server it speaks for): status BUTLER_OK with
 * the task's result (NULL if it set none), or BUTLER_ETIMEDOUT,
 * BUTLER_ECANCELED (butler_tasks_cancel()), BUTLER_ESTOPPED (the hub stopped
 * first) or the task function's non-zero result, with result NULL. The
 * callback owns `result` and frees it as the task says (the task's
 * free_result).
 */
typedef void (*butler_task_done_fn)(
    butler_server *self, int status, void *result, void *user);

/**
 * BUTLER_TASKS_LIMIT is the default number of tasks one submitting thread may
 * have in flight in one hub: submitted, and its done callback not yet run.
 */
#define BUTLER_TASKS_LIMIT 1024u

/**
 * butler_tasks_register installs the tasks pool's handlers in `hub`, which
 * must hold the tasks spec (tasks_spec, or a spec importing it). Before
 * butler_hub_start() only. Returns BUTLER_OK, BUTLER_EINVAL when the hub
 * holds no tasks spec, BUTLER_ESTATE after the start. Any thread.
 */
BUTLER_API int butler_tasks_register(butler_hub *hub);

/**
 * butler_tasks_submit runs fn(task, arg) on the pool of `hub`, and then
 * done(self, status, result, user) on the calling thread, exactly once (see
 * butler_task_done_fn; `done` may be NULL, and a result then is freed). The
 * task ends with BUTLER_ETIMEDOUT unless done within timeout_ms (-1: no
 * limit); a task that has not started by then never runs. On success *id
 * (may be NULL) names the task for butler_tasks_cancel().
 *
 * Ownership: on BUTLER_OK the hub owns `arg` and calls free_arg(arg) (if
 * free_arg is not NULL) exactly once, after the task ran or instead of
 * running it (cancelled, timed out, or discarded by a stop before it
 * started). On failure nothing runs, nothing is called, and `arg` is still
 * the caller's.
 *
 * Returns BUTLER_OK; BUTLER_EFULL when the calling thread has the limit
 * of tasks in flight in this hub (butler_tasks_set_limit(), default
 * BUTLER_TASKS_LIMIT), has tasks in flight in 8 other hubs already, or
 * the pool's inbox is full; BUTLER_EINVAL for a
 * NULL hub or fn or a hub without the tasks spec; BUTLER_ESTATE when the
 * calling thread speaks for no server of the hub (use
 * butler_tasks_run_wait() there), or before butler_hub_start();
 * BUTLER_ECLOSED once the hub stops; BUTLER_ENOMEM. The calling thread must
 * speak for a server of the hub, as for butler_call(): run one of its
 * handlers or on_start, or own an external-loop server after the start
 * (the thread of the GLib main loop it is attached to). The done callback
 * runs there.
 */
BUTLER_API int butler_tasks_submit(butler_hub *hub, butler_task_fn fn,
    void *arg, butler_task_free_fn free_arg, butler_task_done_fn done,
    void *user, int timeout_ms, uint64_t *id /* OUT: may be NULL */);

/**
 * butler_tasks_cancel cancels task `id`, submitted by the calling thread:
 * its done callback runs with BUTLER_ECANCELED before this returns. A task
 * that has not started never runs (its argument is freed); a running one
 * sees butler_task_cancelled() and its result, if it still sets one, is
 * freed. Returns BUTLER_OK, BUTLER_ENOTFOUND when the task has ended already
 * (its callback ran), BUTLER_ESTATE when the calling thread speaks for no
 * server of the hub. It is butler_cancel(). The submitting thread only.
 */
BUTLER_API int butler_tasks_cancel(butler_hub *hub, uint64_t id);

/**
 * butler_tasks_run_wait runs fn(task, arg) on the pool and blocks the
 * calling thread until it ends or timeout_ms passes (-1: no limit). On
 * BUTLER_OK *result (may be NULL: the result is then freed) receives the
 * task's result, which the caller then owns. Other results as
 * butler_task_done_fn's statuses. For threads that speak for no server of
 * the hub (a plain pthread, main around the hub's run); from a server's
 * thread it returns BUTLER_EDEADLK rather than block a loop, and before
 * butler_hub_start() BUTLER_ESTATE.
 *
 * Ownership of `arg` follows butler_call_wait(): refused at once
 * (BUTLER_EFULL, EDEADLK, ESTATE, EINVAL, ENOMEM) it is still the
 * caller's; otherwise free_arg(arg) is called exactly once, by the hub,
 * possibly after this returns (a task that timed out may still be
 * running); butler_taken() tells the two apart (BUTLER_ECLOSED: refused,
 * the hub had begun to stop; BUTLER_ESTOPPED: accepted, then the hub
 * stopped). Any thread.
 */
BUTLER_API int butler_tasks_run_wait(butler_hub *hub, butler_task_fn fn,
    void *arg, butler_task_free_fn free_arg, int timeout_ms,
    void **result /* OUT: on BUTLER_OK only, may be NULL */);

/**
 * butler_tasks_set_limit sets how many tasks the calling thread may have in
 * flight in any one hub (submitted and not yet ended) before
 * butler_tasks_submit() returns BUTLER_EFULL; the default is
 * BUTLER_TASKS_LIMIT. Tasks already in flight are not affected. Returns
 * BUTLER_EINVAL for 0. The setting belongs to the calling thread.
 */
BUTLER_API int butler_tasks_set_limit(unsigned limit);

/**
 * butler_tasks_in_flight returns how many tasks the calling thread has in
 * flight in `hub`: submitted, and their done callbacks not yet run. The
 * calling thread's own count only.
 */
BUTLER_API unsigned butler_tasks_in_flight(const butler_hub *hub);

/**
 * butler_task_cancelled says whether the task's submitter has given up on
 * it (cancelled, timed out, or the hub is stopping), so that a long task
 * can stop early: one atomic load. The task's own thread only, during its
 * call.
 */
BUTLER_API bool butler_task_cancelled(const butler_task *task);

/**
 * butler_task_time_left_ms returns how long the submitter will still wait
 * for the task: -1 for no deadline, 0 once it has passed. The task's own
 * thread only, during its call.
 */
BUTLER_API int64_t butler_task_time_left_ms(const butler_task *task);

/**
 * butler_task_set_result makes `result` the task's result, delivered to
 * the done callback (or butler_tasks_run_wait()) if the task returns 0.
 * free_result (may be NULL) releases it when it is not delivered: the
 * submitter has gone, or the task returns non-zero. Setting a result again
 * releases the previous one. The task's own thread only, during its call.
 */
BUTLER_API void butler_task_set_result(
    butler_task *task, void *result, butler_task_free_fn free_result);

/**
 * butler_task_take_arg returns the task's argument and makes it the task's
 * own: the hub will not free it (a task that turns its argument into its
 * result gives it back with butler_task_set_result()). Later calls return
 * NULL. The task's own thread only, during its call.
 */
BUTLER_API void *butler_task_take_arg(butler_task *task);

/**
 * butler_task_server returns the pool instance running the task, for its
 * hub (butler_server_hub(): a task may submit tasks of its own, whose done
 * callbacks then run on this pool thread) or its instance number. The
 * task's own thread only, during its call.
 */
BUTLER_API butler_server *butler_task_server(const butler_task *task);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_TASKS_H */
