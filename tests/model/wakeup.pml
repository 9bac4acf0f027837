/* SPDX-License-Identifier: MIT */
/*
 * wakeup.pml — the wake-up protocol of one inbox (butler/channel.c, top
 * comment): lanes with their `scheduled` flags, the channel's `pending`
 * flag, the token (eventfd), answer nodes posted by other threads, and the
 * consumer's going-idle check (butler__channel_idle) on a threaded server's
 * loop (server.c: process(), on_wake(), on_rearm()).
 *
 * Each atomic access of the C code is one Promela step (the C code makes
 * every access of the Dekker pairs seq_cst); what one thread does with its
 * own memory only is folded into the step next to it.
 *
 * Properties (checked by run.sh):
 *   - no lost wake-up: the whole system never stops (every producer done,
 *     the consumer blocked on its token) while a record or a node is still
 *     unconsumed: the watchdog's `timeout` is the moment nothing can move;
 *   - every record and node is consumed exactly once (asserts);
 *   - with -DLIVE: eventually everything is consumed (ltl, weak fairness).
 *
 * -DRELEASE_STORE models main's asymmetric publish (bbcb5cb): the tail is
 * published with a release store, which may sit in the producer's store
 * buffer while its later loads (scheduled, pending) already execute
 * (x86-TSO store->load reordering, the one reordering a release store
 * allows before seq_cst loads); the buffer drains on its own at any time.
 * -DMEMBARRIER adds the consumer's membarrier() on the going-idle path,
 * between clearing the flags and reading the tails: one step that drains
 * every producer's store buffer (every running thread executes a full
 * barrier; a sleeping one did at its context switch).
 *
 * Mutants (each must make spin find a violation): see run.sh and README.md.
 */

#ifndef NPROD
#define NPROD 2 /* producer threads, one lane each */
#endif
#ifndef NMSG
#define NMSG 2 /* records per producer */
#endif
#ifndef NPOST
#define NPOST 1 /* threads posting one answer node each */
#endif

#define TOTAL (NPROD * NMSG + NPOST)

/* Shared state. */
byte tail[NPROD];      /* lane.tail as the consumer can see it */
#ifdef RELEASE_STORE
byte tail_buf[NPROD];  /* what the producer stored: tail_buf >= tail */
#endif
bit scheduled[NPROD];  /* lane.scheduled */
bit pending;           /* channel.pending */
bit token;             /* eventfd: >0 or 0 (a read empties it) */
byte nodes;            /* nodes posted, not yet taken (the list) */

/* The consumer's own state. */
byte head[NPROD];      /* lane.head_local */
byte got_rec[NPROD];   /* records handled, per lane */
byte got_nodes;        /* nodes handled */
byte consumed;         /* records and nodes handled, in all */
byte done_prod;        /* producers and posters that returned */

/* ---- producers: butler__channel_commit / announce / claim_pending ---- */

inline ring()
{
	/* butler__channel_ring: fd_users / fd_closed are no concern here
	 * (the fd stays open); one write makes the eventfd readable. */
	token = 1
}

inline claim_pending_and_ring()
{
	if
	:: pending == 0 -> /* atomic_load(&ch->pending) == 0 */
		atomic {       /* atomic_exchange(&ch->pending, 1) == 0 */
			if
			:: pending == 0 -> pending = 1; ring()
			:: else -> pending = 1
			fi
		}
	:: else -> skip
	fi
}

inline publish(p)
{
#ifdef RELEASE_STORE
	tail_buf[p]++ /* release store: into the store buffer */
#else
	tail[p]++     /* seq_cst store */
#endif
}

inline announce(p)
{
	if
	:: scheduled[p] == 0 -> /* atomic_load(&lane->scheduled) == 0 */
		if
		:: atomic { scheduled[p] == 0 -> scheduled[p] = 1 } ->
			claim_pending_and_ring()   /* xchg returned 0 */
		:: atomic { scheduled[p] == 1 -> skip } /* xchg returned 1 */
		fi
	:: else -> skip
	fi
}

proctype Producer(byte p)
{
	byte k;

	for (k : 1 .. NMSG) {
#ifdef MUT_ANNOUNCE_FIRST
		announce(p);
		publish(p);
#else
		publish(p);
		announce(p);
#endif
	}
	done_prod++
}

#ifdef RELEASE_STORE
/* The store buffer of producer p drains by itself, one store at a time. */
proctype StoreBuffer(byte p)
{
end:	do
	:: atomic { tail[p] < tail_buf[p] -> tail[p]++ }
	od
}
#endif

/* butler__channel_post: CAS push, then claim_pending. */
proctype Poster()
{
#ifdef MUT_POST_CLAIM_FIRST
	claim_pending_and_ring();
	nodes++;
#else
	nodes++; /* the CAS loop succeeds in one step */
	claim_pending_and_ring();
#endif
	done_prod++
}

/* ---- the consumer: process() and butler__channel_idle() -------------- */

inline take_answers()
{
	/* server.c take_answers: a relaxed load, then the exchange */
	if
	:: nodes > 0 ->
		atomic {
			got_nodes = got_nodes + nodes;
			consumed = consumed + nodes;
			nodes = 0;
			assert(got_nodes <= NPOST)
		}
	:: else -> skip
	fi
}

/*
 * butler__channel_drain: passes over the lanes while one had work; each
 * lane's tail is read once per pass (acquire), then its records up to that
 * tail are taken (consumer-local). The batch may be cut (budget, max):
 * `more`, and process() then rearms instead of going idle.
 */
inline drain()
{
	progress_ = true;
	do
	:: progress_ && !more ->
		progress_ = false;
		for (i : 0 .. NPROD - 1) {
			t = tail[i]; /* the one shared access */
			/* taking the records is the consumer's own business */
			atomic {
				if
				:: head[i] != t ->
					progress_ = true;
					do
					:: head[i] != t ->
						head[i]++;
						got_rec[i]++;
						consumed++;
						assert(got_rec[i] <= NMSG);
						if
						:: more = true; break /* budget cut */
						:: skip
						fi
					:: else -> break
					od
				:: else -> skip
				fi
			}
			if
			:: more -> break
			:: else -> skip
			fi
		}
	:: else -> break
	od
}

/* butler__channel_empty: the node list, then every lane's tail. */
inline check_empty()
{
	idle = (nodes == 0);
	for (i : 0 .. NPROD - 1) {
		if
		:: tail[i] != head[i] -> idle = false
		:: else -> skip
		fi
	}
}

/* butler__channel_idle: true when the consumer may sleep. */
inline go_idle()
{
#ifdef MUT_CHECK_BEFORE_CLEAR
	check_empty();
	pending = 0;
	for (i : 0 .. NPROD - 1) {
		scheduled[i] = 0
	}
#else
	pending = 0;
#ifndef MUT_NO_CLEAR_SCHEDULED
	for (i : 0 .. NPROD - 1) {
		scheduled[i] = 0
	}
#endif
#ifdef MEMBARRIER
	/* membarrier(): every thread's stores are visible afterwards */
	atomic {
		for (i : 0 .. NPROD - 1) {
			tail[i] = tail_buf[i]
		}
	}
#endif
#ifdef MUT_NO_RECHECK
	idle = true;
#else
	check_empty();
#endif
#endif
	if
	:: !idle -> atomic { pending = 1 } /* take the token back */
	:: else -> skip
	fi
}

proctype Consumer()
{
	byte i, t;
	bool more, progress_, idle, woken;

	/* server_main: process() once before the loop */
process:
	take_answers();
	more = false;
	drain();
	if
	:: more -> goto process /* on_rearm, zero timeout */
	:: else -> skip
	fi;
	go_idle();
#ifdef MUT_ACK_AFTER_PROCESS
	/* on_wake reads the token after process() instead of before */
	if
	:: woken -> token = 0; woken = false
	:: else -> skip
	fi;
#endif
	if
	:: !idle -> goto process /* on_rearm */
	:: else -> skip
	fi;
	/* Asleep in epoll_wait until the eventfd is readable. */
end_wait:
#ifdef MUT_ACK_AFTER_PROCESS
	token == 1 -> woken = true;
#else
	atomic { token == 1 -> token = 0 } /* on_wake: ack, then process */
#endif
	goto process
}

#ifndef LIVE /* the liveness runs check the ltl formula alone */
/* Nothing can move any more: everything must have been consumed. */
active proctype Watchdog()
{
	timeout -> assert(done_prod == NPROD + NPOST && consumed == TOTAL)
}
#endif

init
{
	byte p;

	atomic {
		for (p : 0 .. NPROD - 1) {
			run Producer(p);
#ifdef RELEASE_STORE
			run StoreBuffer(p);
#endif
		}
		for (p : 1 .. NPOST) {
			run Poster()
		}
		run Consumer()
	}
}

#ifdef LIVE
ltl eventually_all { <> (consumed == TOTAL) }
#endif
