/*
 * channel.c — a server instance's inbox: its lanes, the wake-up token,
 * capacity and blocking senders, closing.
 *
 * Wake-up protocol (research/channels.md §3.2, extended to lanes). The
 * token (one eventfd write) is only needed when the consumer may be asleep.
 * Each lane has a `scheduled` flag and the channel a `pending` flag:
 *
 *   producer: publish the record (seq_cst store of tail);
 *             if lane.scheduled was 0 and we set it (xchg), and
 *             channel.pending was 0 and we set it (xchg): write the token.
 *   consumer, going idle:
 *             pending = 0; every lane.scheduled = 0 (seq_cst stores);
 *             then read every lane's tail (seq_cst). Work found: keep going.
 *
 * Whatever the interleaving, either the consumer sees the new record or the
 * producer sees both flags cleared and writes the token (a Dekker pair, so
 * every access above is sequentially consistent). While the consumer is
 * busy the flags stay set, so a loaded server costs its senders no syscall
 * and no write to a shared cache line: a send is one seq_cst store and one
 * load of a line the sender owns.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/eventfd.h>
#endif

/* Records a consumer takes from one lane before looking at the next. */
#define LANE_QUANTUM 64u
/* Smallest segment; larger messages get segments of 16 records. */
#define MIN_SEGMENT 16384u

uint64_t
butler__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
open_token_fd(struct butler__channel *ch)
{
#ifdef __linux__
	ch->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (ch->fd >= 0) {
		ch->wfd = ch->fd;
		return BUTLER_OK;
	}
#endif
	{
		int p[2];

		if (pipe(p) != 0)
			return BUTLER_ESYS;
		for (int i = 0; i < 2; i++) {
			(void)fcntl(p[i], F_SETFL, O_NONBLOCK);
			(void)fcntl(p[i], F_SETFD, FD_CLOEXEC);
		}
		ch->fd = p[0];
		ch->wfd = p[1];
	}
	return BUTLER_OK;
}

int
butler__channel_init(
    struct butler__channel *ch, unsigned capacity, size_t max_record)
{
	pthread_condattr_t attr;
	size_t seg = 16 * max_record;
	int rv;

	memset(ch, 0, sizeof *ch);
	ch->fd = ch->wfd = -1;
	ch->capacity = capacity;
	if (seg < MIN_SEGMENT)
		seg = MIN_SEGMENT;
	ch->seg_bytes = butler__rec_round(seg);
	/* Enough segments for a full lane, and two for the ends. */
	ch->pool_max = (uint64_t)capacity * max_record / ch->seg_bytes + 2;
	atomic_init(&ch->closed, 0);
	atomic_init(&ch->pending, 0);
	atomic_init(&ch->fd_users, 0);
	atomic_init(&ch->fd_closed, 0);
	atomic_init(&ch->lanes, NULL);
	atomic_init(&ch->waiters, 0);
	atomic_init(&ch->draining, 0);

	rv = open_token_fd(ch);
	if (rv != BUTLER_OK)
		return rv;
	if (pthread_mutex_init(&ch->lanes_lock, NULL) != 0)
		goto out_close_fd;
	if (pthread_mutex_init(&ch->wait_lock, NULL) != 0)
		goto out_lanes_lock;
	/* Blocking sends measure their timeout on the monotonic clock, so a
	 * wall-clock jump cannot stretch or cut it. */
	if (pthread_condattr_init(&attr) != 0)
		goto out_wait_lock;
	(void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	rv = pthread_cond_init(&ch->wait_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rv != 0)
		goto out_wait_lock;
	return BUTLER_OK;

out_wait_lock:
	pthread_mutex_destroy(&ch->wait_lock);
out_lanes_lock:
	pthread_mutex_destroy(&ch->lanes_lock);
out_close_fd:
	butler__channel_close_fd(ch);
	return BUTLER_ESYS;
}

void
butler__channel_release(
    struct butler__channel *ch, butler__consume_fn drop, void *ctx)
{
	struct butler__lane *lane, *next;
	bool more;

	(void)butler__channel_drain(
	    ch, UINT32_MAX, UINT64_MAX, false, drop, ctx, &more);
	for (lane = atomic_load(&ch->lanes); lane != NULL; lane = next) {
		next = atomic_load(&lane->next);
		butler__lane_free(lane);
	}
	atomic_store(&ch->lanes, NULL);
	butler__channel_close_fd(ch);
	pthread_cond_destroy(&ch->wait_cond);
	pthread_mutex_destroy(&ch->wait_lock);
	pthread_mutex_destroy(&ch->lanes_lock);
}

struct butler__lane *
butler__channel_lane(struct butler__channel *ch, struct butler__sender *sender)
{
	struct butler__lane *lane;

	pthread_mutex_lock(&ch->lanes_lock);
	for (lane = atomic_load_explicit(&ch->lanes, memory_order_acquire);
	     lane != NULL;
	     lane = atomic_load_explicit(&lane->next, memory_order_acquire))
		if (lane->sender == sender)
			goto out;
	lane = butler__lane_new(sender, ch->seg_bytes, ch->pool_max);
	if (lane != NULL) {
		atomic_store_explicit(&lane->next, atomic_load(&ch->lanes),
		    memory_order_relaxed);
		atomic_store_explicit(&ch->lanes, lane, memory_order_release);
	}
out:
	pthread_mutex_unlock(&ch->lanes_lock);
	return lane;
}

static bool
lane_has_room(const struct butler__channel *ch, struct butler__lane *lane)
{
	return lane->tail_local - lane->head_cache < ch->capacity;
}

/* Waits, under wait_lock, until the lane has room, ch closes or time is up. */
static int
wait_for_room(
    struct butler__channel *ch, struct butler__lane *lane, int timeout_ms)
{
	struct timespec deadline;
	int rv = BUTLER_OK;

	if (timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&ch->wait_lock);
	atomic_fetch_add(&ch->waiters, 1);
	for (;;) {
		int rc;

		if (atomic_load(&ch->closed)) {
			rv = BUTLER_ECLOSED;
			break;
		}
		lane->head_cache = atomic_load(&lane->head);
		if (lane_has_room(ch, lane))
			break;
		if (timeout_ms == 0) {
			rv = BUTLER_ETIMEDOUT;
			break;
		}
		if (timeout_ms < 0)
			rc = pthread_cond_wait(&ch->wait_cond, &ch->wait_lock);
		else
			rc = pthread_cond_timedwait(
			    &ch->wait_cond, &ch->wait_lock, &deadline);
		if (rc == ETIMEDOUT)
			timeout_ms = 0; /* one last look, then give up */
	}
	atomic_fetch_sub(&ch->waiters, 1);
	pthread_mutex_unlock(&ch->wait_lock);
	return rv;
}

struct butler__rec *
butler__channel_reserve_slow(struct butler__channel *ch,
    struct butler__lane *lane, size_t rec_size, bool check_room,
    bool may_block, int timeout_ms, int *err)
{
	struct butler__rec *rec;

	if (atomic_load_explicit(&ch->closed, memory_order_relaxed)) {
		*err = BUTLER_ECLOSED;
		return NULL;
	}
	if (check_room && !lane_has_room(ch, lane)) {
		lane->head_cache
		    = atomic_load_explicit(&lane->head, memory_order_acquire);
		if (!lane_has_room(ch, lane)) {
			int rv = may_block
			    ? wait_for_room(ch, lane, timeout_ms)
			    : BUTLER_EFULL;
			if (rv != BUTLER_OK) {
				if (rv != BUTLER_ECLOSED)
					atomic_fetch_add_explicit(
					    &lane->rejected, 1,
					    memory_order_relaxed);
				*err = rv;
				return NULL;
			}
		}
	}
	rec = butler__lane_reserve(lane, rec_size);
	if (rec == NULL)
		*err = BUTLER_ENOMEM;
	return rec;
}

void
butler__channel_ring(struct butler__channel *ch)
{
	static const uint64_t one = 1;

	/* fd_users/fd_closed form another Dekker pair, so that a sender that
	 * raced with the stop never writes to a closed (maybe reused) fd. */
	atomic_fetch_add(&ch->fd_users, 1);
	if (!atomic_load(&ch->fd_closed)) {
		ssize_t n;

		do
			n = write(ch->wfd, &one, sizeof one);
		while (n < 0 && errno == EINTR);
		/* EAGAIN: the token is already there, which is all we want. */
	}
	atomic_fetch_sub(&ch->fd_users, 1);
}

void
butler__channel_announce(struct butler__channel *ch, struct butler__lane *lane)
{
	if (atomic_exchange(&lane->scheduled, 1) == 0
	    && atomic_exchange(&ch->pending, 1) == 0)
		butler__channel_ring(ch);
}

void
butler__channel_ack(struct butler__channel *ch)
{
	unsigned char buf[64];
	ssize_t n;

	/* An eventfd is emptied by one 8-byte read; a pipe may hold a few
	 * tokens (a forced ring at stop plus a sender's), so read until dry.
	 */
	do
		n = read(ch->fd, buf, ch->fd == ch->wfd ? 8 : sizeof buf);
	while (n > 0 && ch->fd != ch->wfd);
	butler__count(&ch->wakeups, 1);
}

/* Frees an empty lane whose thread has exited. Consumer only. */
static void
maybe_reclaim(struct butler__channel *ch, struct butler__lane *lane)
{
	struct butler__lane *_Atomic *link;

	if (atomic_load_explicit(&lane->sender->alive, memory_order_acquire))
		return;
	/* The thread's last publish happened before it died: re-read. */
	if (atomic_load(&lane->tail) != lane->head_local)
		return;
	pthread_mutex_lock(&ch->lanes_lock);
	for (link = &ch->lanes; atomic_load(link) != lane;
	     link = &atomic_load(link)->next)
		;
	atomic_store(link, atomic_load(&lane->next));
	pthread_mutex_unlock(&ch->lanes_lock);
	atomic_fetch_add_explicit(
	    &ch->sent_reclaimed, lane->tail_local, memory_order_relaxed);
	atomic_fetch_add_explicit(&ch->rejected_reclaimed,
	    atomic_load(&lane->rejected), memory_order_relaxed);
	butler__lane_free(lane);
}

static void
wake_blocked_senders(struct butler__channel *ch)
{
	/* An RMW, not a load: it reads the latest `waiters` and publishes
	 * the heads stored before it to a sender whose increment follows it
	 * (the pair of wait_for_room). A fence would do too, but TSan does
	 * not model fences. */
	if (atomic_fetch_add(&ch->waiters, 0) > 0) {
		pthread_mutex_lock(&ch->wait_lock);
		pthread_cond_broadcast(&ch->wait_cond);
		pthread_mutex_unlock(&ch->wait_lock);
	}
}

/*
 * Reading the clock costs as much as handling a small message, so the drain
 * reads it every `stride` messages: the stride doubles (to 256) while
 * messages are quick and falls back to 1 as soon as they are not, so a
 * batch overruns its time budget by at most about 0.5 ms.
 */
#define STRIDE_MAX 256u
#define QUICK_NS 2000u

unsigned
butler__channel_drain(struct butler__channel *ch, unsigned max,
    uint64_t budget_ns, bool stop_on_close, butler__consume_fn fn, void *ctx,
    bool *more)
{
	uint64_t start = butler__now_ns(), last = start, depth = 0;
	unsigned done = 0, stride = 1, next_check = 1;
	bool progress, first_pass = true, cut = false;

	do {
		struct butler__lane *lane, *next;

		progress = false;
		for (lane
		     = atomic_load_explicit(&ch->lanes, memory_order_acquire);
		     lane != NULL && !cut; lane = next) {
			uint64_t tail;
			unsigned quantum = 0;

			next = atomic_load_explicit(
			    &lane->next, memory_order_acquire);
			tail = atomic_load_explicit(
			    &lane->tail, memory_order_acquire);
			if (first_pass)
				depth += tail - lane->head_local;
			if (lane->head_local == tail) {
				maybe_reclaim(ch, lane);
				continue;
			}
			progress = true;
			while (lane->head_local != tail && !cut
			    && quantum++ < LANE_QUANTUM) {
				struct butler__rec *rec
				    = butler__lane_front(lane);

				fn(ctx, rec);
				butler__lane_pop(lane, rec);
				/* Per message, so capacity counts exactly
				 * what is not yet taken: a plain store, on a
				 * line senders read only when they are full.
				 */
				butler__lane_commit(lane);
				done++;
				if (done >= max
				    || (stop_on_close
				        && atomic_load_explicit(&ch->closed,
				            memory_order_relaxed)))
					cut = true;
				else if (done == next_check) {
					uint64_t now = butler__now_ns();

					if (now - start >= budget_ns)
						cut = true;
					stride = now - last < QUICK_NS * stride
					    ? (stride < STRIDE_MAX ? stride * 2
					                           : stride)
					    : 1;
					last = now;
					next_check = done + stride;
				}
			}
		}
		if (first_pass) {
			if (depth > atomic_load_explicit(
			        &ch->high_water, memory_order_relaxed))
				atomic_store_explicit(&ch->high_water, depth,
				    memory_order_relaxed);
			first_pass = false;
		}
	} while (progress && !cut);

	if (done > 0) {
		butler__count(&ch->handler_ns, butler__now_ns() - start);
		wake_blocked_senders(ch);
	}
	*more = cut;
	return done;
}

bool
butler__channel_idle(struct butler__channel *ch)
{
	struct butler__lane *lane;
	bool work = false;

	atomic_store(&ch->pending, 0);
	for (lane = atomic_load(&ch->lanes); lane != NULL;
	     lane = atomic_load(&lane->next))
		atomic_store(&lane->scheduled, 0);
	for (lane = atomic_load(&ch->lanes); lane != NULL && !work;
	     lane = atomic_load(&lane->next))
		work = atomic_load(&lane->tail) != lane->head_local;
	if (!work)
		return true;
	/* A sender slipped in. Take the token back so that no sender rings
	 * for work we are about to do; if one already has, we get one
	 * spurious wake-up. */
	(void)atomic_exchange(&ch->pending, 1);
	return false;
}

void
butler__channel_close(struct butler__channel *ch)
{
	atomic_store(&ch->closed, 1);
	pthread_mutex_lock(&ch->wait_lock);
	pthread_cond_broadcast(&ch->wait_cond);
	pthread_mutex_unlock(&ch->wait_lock);
}

void
butler__channel_close_fd(struct butler__channel *ch)
{
	if (ch->fd < 0)
		return;
	atomic_store(&ch->fd_closed, 1);
	while (atomic_load(&ch->fd_users) > 0)
		sched_yield();
	if (ch->wfd != ch->fd)
		close(ch->wfd);
	close(ch->fd);
	ch->fd = ch->wfd = -1;
}

bool
butler__spin_for_work(struct butler__channel *ch, uint64_t until_ns)
{
	unsigned i = 0;

	do {
		for (struct butler__lane *lane
		     = atomic_load_explicit(&ch->lanes, memory_order_acquire);
		     lane != NULL; lane
		     = atomic_load_explicit(&lane->next, memory_order_acquire))
			if (atomic_load_explicit(
			        &lane->tail, memory_order_acquire)
			    != lane->head_local)
				return true;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} while ((++i & 63) != 0 || butler__now_ns() < until_ns);
	return false;
}
