/* SPDX-License-Identifier: MIT */
/*
 * stop.pml — the two-step stop of a hub (butler/hub.c
 * butler_hub_stop_timeout, butler/channel.c stop group, butler/server.c
 * process() / try_quiet() / finish(), butler/send.c push()).
 *
 * Two threaded servers A (0) and B (1), one thread outside the hub (O)
 * sending to A, and the stopper. Lanes: O->A, B->A, A->B. Every message a
 * server handles is forwarded to the other while a hop budget lasts (the
 * servers send each other finitely). With -DIO_CALL, A's thread also makes
 * one call to B outside any handler (an I/O or timer callback on A's loop,
 * which may run while A is quiet); B answers it by posting a node to A.
 *
 * Atomic steps: each load, store or RMW of `open`, of a lane's tail, of the
 * node list, and each lock / unlock of the group lock is one step. The
 * wake-up protocol is abstracted (wakeup.pml proves it): a publish or post
 * makes the target's token readable, and a consumer re-checks its inbox
 * before it sleeps. The emptiness check under the group lock is one step:
 * tails only grow while the consumer reads them, so reading them one by one
 * finds work exactly when reading them all at the first read would.
 *
 * Properties:
 *   - every record accepted is handled or destroyed exactly once (each lane
 *     empty at the end, a record leaves its lane only through consume or
 *     drop), including those a straggler (a sender that read OPEN on the
 *     fast path, no lock) publishes late, even after the stop returned (they
 *     are destroyed by butler_hub_free's release);
 *   - the call ends exactly once (answer delivered, or given up);
 *   - the stop terminates (watchdog; with -DLIVE also under weak fairness);
 *   - with -DQUIET_PROP: "every inbox quiet" is never concluded while work
 *     the hub still owes is under way: a record sent between servers not yet
 *     handled, a message accepted before step one not yet handled, or a call
 *     not yet answered. This is what lets step two refuse everything.
 *
 * Protocol switches (the C code as it is has none of them):
 *   -DFIX_STRAGGLER   after a fast-path publish, re-read `open`; if it is no
 *                     longer OPEN, mark the target busy under the group lock
 *                     and ring it (-DMUT_FIX_NO_RING: without the ring)
 *   -DFIX_CALL_BUSY   a call made while the hub is not OPEN marks the
 *                     caller's own inbox busy under the group lock
 *   -DENOMEM          a gated send may fail to reserve room (out of memory)
 *   -DFIX_ENOMEM      ... and then marks nothing busy (mark_busy after the
 *                     reserve succeeded)
 *   -DNO_STRAGGLE     the fast path's read of `open` and its publish are one
 *                     step (no straggler window: a modelling restriction)
 *   -DRELEASE_STORE   main's asymmetric publish: a fast-path publish is a
 *                     release store that may sit in the sender's store buffer
 *                     while its later loads (the re-read of FIX_STRAGGLER)
 *                     execute; the consumer's going-idle membarrier() drains
 *                     every buffer (wakeup.pml), and so does handing the
 *                     group lock over after a gated publish
 *   -DQUIET_MEMBARRIER  ... and try_quiet issues membarrier() under the lock
 *                     before its emptiness check
 */

#define OPEN 0
#define CLOSING 1
#define CLOSED 2

#define N 2      /* servers */
#define A 0
#define B 1
#define L_OA 0   /* lanes */
#define L_BA 1
#define L_AB 2
#define L_AA 3   /* with -DSELF_SEND: A's handler sends to A itself */
#define NLANES 4
#define CAP 3    /* records a lane can hold in this model */

#define K_MSG 1  /* record kinds */
#define K_REQ 2

#ifndef NOUT
#define NOUT 2   /* messages O sends */
#endif
#ifndef HOPS
#define HOPS 2   /* forwards between the servers, in all */
#endif

#define T_NONE 0 /* ticket of A's call */
#define T_PENDING 1
#define T_ANSWERED 2
#define T_GONE 3

/* Stop group. */
byte open = OPEN;
byte lockh;      /* holder + 1 of the group lock, 0: free */
byte n_quiet;
bool draining, final_;
bit gwake;       /* the stop group's wake_fd */
bool quiet[N];

/* Inboxes. */
byte tail[NLANES], head[NLANES]; /* tail: as the consumer can see it */
#ifdef RELEASE_STORE
byte tail_buf[NLANES]; /* what the producer stored: may be in its store
                          buffer still (tail_buf >= tail) */
#define STORED(l) tail_buf[l]
#else
#define STORED(l) tail[l]
#endif
byte kind_AB[CAP]; /* kinds of the records of lane A->B */
bit token[N];
byte nodes_A;    /* answer nodes posted to A */
bool fd_closed[N];
bool fd_gone[N];  /* the fd was closed (and may be reused) */
byte fd_users[N];

/* Servers. */
bool finished[N];
bool retired[N];   /* butler__channel_retire: no consumer look any more */
bit consuming[N];  /* ch->draining: become_consumer / leave_consumer */
byte hops = HOPS;
byte calls_A;    /* A's outstanding calls (0 or 1) */
byte tstate;     /* the call's ticket */
byte call_ended; /* delivered or given up */
byte io_budget = 1;

/* Bookkeeping of the properties. */
#ifdef QUIET_PROP
byte owed;       /* work the hub owes */
byte early_OA;   /* O's records published while OPEN */
#define OWE(x) owed = owed + (x)
#else
#define OWE(x) skip
#endif
bool stop_done, released;
bool counted;    /* the counters add up when the stop and the sends returned */
byte o_done;     /* O has returned */
byte n_out;      /* O's sends so far */
bool policy_drain;

#define TGT(l) ((l) == L_AB -> B : A)

inline lock(me)
{
	atomic { lockh == 0 -> lockh = me }
}

inline unlock()
{
	lockh = 0
}

/* mark_busy (channel.c), under the group lock */
inline mark_busy(c)
{
	if
	:: quiet[c] -> quiet[c] = false; n_quiet--
	:: else -> skip
	fi
}

/* butler__channel_ring from a thread the sweep cannot race with (the
 * servers are joined before it; the stopper runs it) */
inline ring(c)
{
	atomic {
		if
		:: !fd_closed[c] -> assert(!fd_gone[c]); token[c] = 1
		:: else -> skip
		fi
	}
}

/* butler__channel_ring from the outside thread, which may race with the
 * sweep's butler__channel_close_fd: the fd_users / fd_closed pair */
inline ring_outside(c)
{
#ifndef MUT_RING_NO_USERS
	fd_users[c]++;
#endif
	if
	:: !fd_closed[c] ->
		assert(!fd_gone[c]); /* token_write(ch->wfd) */
		token[c] = 1
	:: else -> skip
	fi;
#ifndef MUT_RING_NO_USERS
	fd_users[c]--
#else
	skip
#endif
}

/* lane_publish: the record becomes visible (and is counted). */
inline publish(l, k)
{
	atomic {
		assert(STORED(l) - head[l] < CAP);
		if
		:: l == L_AB -> kind_AB[STORED(l) % CAP] = k
		:: else -> skip
		fi;
		STORED(l)++;
#ifdef QUIET_PROP
		if
		:: l == L_OA && open == OPEN -> early_OA++; owed++
		:: l != L_OA -> owed++
		:: else -> skip
		fi
#endif
	}
}

#ifdef RELEASE_STORE
/* Every store buffer drained: a membarrier(), a lock handed over after the
 * store, a thread joined. */
inline flush_all()
{
	tail[L_OA] = tail_buf[L_OA];
	tail[L_BA] = tail_buf[L_BA];
	tail[L_AB] = tail_buf[L_AB];
	tail[L_AA] = tail_buf[L_AA]
}

/* The store buffers drain by themselves, one store at a time. */
proctype StoreBuffer()
{
end:	do
	:: atomic { tail[L_OA] < tail_buf[L_OA] -> tail[L_OA]++ }
	:: atomic { tail[L_BA] < tail_buf[L_BA] -> tail[L_BA]++ }
	:: atomic { tail[L_AB] < tail_buf[L_AB] -> tail[L_AB]++ }
	:: atomic { tail[L_AA] < tail_buf[L_AA] -> tail[L_AA]++ }
	od
}
#define FLUSH(l) tail[l] = tail_buf[l]
#else
#define FLUSH(l) skip
#endif

/* Destroys what is queued in c's lanes (drop()), as the consumer. */
inline drop_lanes(c)
{
	atomic {
		do
		:: c == A && tail[L_OA] != head[L_OA] -> head[L_OA]++; drop(L_OA)
		:: c == A && tail[L_BA] != head[L_BA] -> head[L_BA]++; drop(L_BA)
		:: c == B && tail[L_AB] != head[L_AB] -> head[L_AB]++; drop(L_AB)
		:: c == A && tail[L_AA] != head[L_AA] -> head[L_AA]++; drop(L_AA)
		:: else -> break
		od
	}
}

/* butler__channel_straggle: wait until c's consumer has retired, then
 * destroy what is left, as its consumer (become_consumer excludes the
 * sweep). */
inline straggle(c, ln)
{
	FLUSH(ln); /* the straggler reads its own store */
	retired[c];
	atomic { consuming[c] == 0 -> consuming[c] = 1 };
	drop_lanes(c);
	consuming[c] = 0
}

/*
 * push (send.c) through butler__channel_reserve / reserve_slow / commit /
 * gate_leave, from thread `me` (1: A, 2: B, 3: O) into lane l. `inside`:
 * the sender runs one of the hub's servers. `ok` says whether accepted.
 */
inline push(me, l, k, inside, ok)
{
	/* the fast path: a relaxed load of `open`, then the publish */
	if
#ifdef NO_STRAGGLE
	:: atomic { open == OPEN -> publish(l, k) } ->
#else
	:: open == OPEN -> publish(l, k);
#endif
		ok = true;
		if
		:: inside -> ring(TGT(l))
		:: else -> ring_outside(TGT(l))
		fi;
		/* butler__push after the commit: the second look at `open`
		 * (seq_cst, after the seq_cst publish) */
		if
		:: open == CLOSED ->
			/* published after the hub closed for good: the consumer
			 * may have looked for the last time already */
#if defined(MUT_NO_STRAGGLE)
			skip
#elif defined(FIX_INSIDE_NO_WAIT)
			if
			:: inside -> skip /* the sweep, after our join, sees it */
			:: else -> straggle(TGT(l), l)
			fi
#else
			straggle(TGT(l), l)
#endif
#ifdef FIX_STRAGGLER
		:: open == CLOSING ->
			/* the target may have reported quiet without seeing the
			 * record: count it busy again (lock, mark_busy, unlock:
			 * the next holder of the lock sees the record) and wake
			 * it, so that it reports quiet again once it is done */
			atomic { lockh == 0; mark_busy(TGT(l)); FLUSH(l) };
#ifndef MUT_FIX_NO_RING
			if
			:: inside -> ring(TGT(l))
			:: else -> ring_outside(TGT(l))
			fi
#endif
#endif
		:: else -> skip
		fi
	:: open != OPEN -> /* reserve_slow, which reads it again */
		if
		:: open == CLOSED || (open == CLOSING && !inside) ->
			ok = false /* ECLOSED */
		:: open == CLOSING && inside ->
			lock(me);
			if
			:: final_ -> ok = false; unlock() /* ECLOSED */
			:: else ->
#if defined(ENOMEM) && !defined(FIX_ENOMEM)
				mark_busy(TGT(l));
				if
				:: ok = false; unlock() /* lane_reserve: ENOMEM */
				:: publish(l, k); ok = true; ring(TGT(l)); unlock()
				fi
#elif defined(ENOMEM)
				if
				:: ok = false; unlock() /* ENOMEM, nothing marked */
				:: mark_busy(TGT(l));
					publish(l, k); ok = true; ring(TGT(l)); unlock()
				fi
#elif defined(MUT_PUBLISH_AFTER_UNLOCK)
				mark_busy(TGT(l));
				unlock();
				publish(l, k); ok = true; ring(TGT(l))
#else
				mark_busy(TGT(l));
				publish(l, k);
				ok = true;
				ring(TGT(l));
				/* butler__channel_gate_leave: the next holder of the
				 * lock sees the record */
				atomic { FLUSH(l); unlock() }
#endif
			fi
		fi
	fi
}

/* ---- the servers ----------------------------------------------------- */

/* A's call to B (butler__call), made outside any handler. */
inline make_call()
{
#ifdef FIX_CALL_BUSY
	if
	:: open != OPEN -> atomic { lockh == 0; mark_busy(A) }
	:: else -> skip
	fi;
#endif
	atomic { calls_A = 1; tstate = T_PENDING; OWE(1) };
	push(1, L_AB, K_REQ, true, ok);
	if
	:: !ok -> atomic { calls_A = 0; tstate = T_NONE; OWE(-1) } /* refused */
	:: else -> ok = false
	fi
}

/* B answers A's request: CAS, then post the node (answer()). */
inline answer_call()
{
	if
	:: atomic { tstate == T_PENDING -> tstate = T_ANSWERED };
		atomic { nodes_A++; }; ring(A) /* butler__channel_post */
	:: atomic { tstate == T_GONE -> skip } /* the caller has gone */
	fi
}

/* A takes the answer node: the callback runs, the call ends. */
inline take_answers()
{
	if
	:: c == A && nodes_A > 0 ->
		atomic {
			nodes_A = 0;
			if
			:: calls_A > 0 -> /* delivered: the call ends */
				calls_A = 0;
				call_ended++;
				assert(call_ended == 1);
				OWE(-1)
			:: else -> skip /* its call ended early: destroyed */
			fi
		}
	:: else -> skip
	fi
}

/* The handler (or the drop) of the record just taken from lane l is over:
 * the work it was is done. */
inline record_done(l)
{
#ifdef QUIET_PROP
	if
	:: l == L_OA ->
		if
		:: head[L_OA] <= early_OA -> owed--
		:: else -> skip
		fi
	:: else -> owed--
	fi
#else
	skip
#endif
}

/* consume(): the handler of the record just taken from lane l; it may
 * send to the other server. */
inline consume(l)
{
	if
	:: l == L_AB && kind_AB[(head[l] - 1) % CAP] == K_REQ -> answer_call()
	:: else ->
		if
		:: atomic { hops > 0 -> hops-- };
#ifdef SELF_SEND
			push(c + 1, (c == A -> L_AA : L_BA), K_MSG, true, ok);
#else
			push(c + 1, (c == A -> L_AB : L_BA), K_MSG, true, ok);
#endif
			ok = false
		:: else -> skip
		fi
	fi;
	record_done(l)
}

/* drop(): destroyed unhandled (a request is refused: answered ECLOSED). */
inline drop(l)
{
	if
	:: l == L_AB && kind_AB[(head[l] - 1) % CAP] == K_REQ -> answer_call()
	:: else -> skip
	fi;
	record_done(l)
}

/* Takes one record of an inbox of c, if there is one (`got`). */
inline take_one(got)
{
	got = false;
	if
	:: c == A && tail[L_OA] != head[L_OA] -> l = L_OA; head[l]++; got = true
	:: c == A && tail[L_BA] != head[L_BA] -> l = L_BA; head[l]++; got = true
	:: c == B && tail[L_AB] != head[L_AB] -> l = L_AB; head[l]++; got = true
	:: c == A && tail[L_AA] != head[L_AA] -> l = L_AA; head[l]++; got = true
	:: else -> skip
	fi
}

#define EMPTY(c) ((c) == A \
	-> (tail[L_OA] == head[L_OA] && tail[L_BA] == head[L_BA] \
	    && tail[L_AA] == head[L_AA] && nodes_A == 0) \
	: (tail[L_AB] == head[L_AB]))

proctype Server(byte c)
{
	byte l;
	bool got, ok, owes;

	/* server_main: process() before the loop */
process:
	if
	:: open == CLOSED -> goto finish
	:: else -> skip
	fi;
	take_answers();
	/* butler__channel_drain with BUTLER__DRAIN_STOP_ON_CLOSE */
	do
	:: take_one(got);
		if
		:: got ->
			consume(l);
			l = 0;
			if
			:: open == CLOSED -> break /* the batch is cut */
			:: else -> skip
			fi
		:: else -> break
		fi
	od;
	if
	:: open == CLOSED -> goto finish /* event_base_loopbreak */
	:: else -> skip
	fi;
	/* butler__channel_idle (abstracted: work left -> rearm) */
#ifdef RELEASE_STORE
	atomic { flush_all() } /* its membarrier() (wakeup.pml) */
#endif
	if
	:: !EMPTY(c) -> goto process
	:: else -> skip
	fi;
	/* try_quiet: butler__channel_try_quiet(ch, requests_idle) */
	if
	:: open != OPEN ->
		owes = (c == A && calls_A > 0);
#ifdef MUT_QUIET_IGNORES_CALLS
		owes = false;
#endif
		if
		:: !owes ->
#ifdef MUT_TRY_QUIET_UNLOCKED
			/* the emptiness check before taking the lock */
			owes = !EMPTY(c);
			atomic {
				lockh == 0;
				if
				:: draining && !final_ && !quiet[c] && !owes ->
#else
			/* the whole critical section is one step: what it does is
			 * seen by others only through the lock */
			atomic {
				lockh == 0;
#ifdef QUIET_MEMBARRIER
				flush_all(); /* membarrier() before the check */
#endif
				if
				:: draining && !final_ && !quiet[c] && EMPTY(c) ->
#endif
					quiet[c] = true;
					n_quiet++;
					if
					:: n_quiet == N -> gwake = 1 /* stopgroup_ring */
					:: else -> skip
					fi
				:: else -> skip
				fi
			}
		:: else -> owes = false
		fi
	:: else -> skip
	fi;
	/* asleep in the loop */
end_wait:
	if
	:: atomic { token[c] == 1 -> token[c] = 0 }; goto process /* on_wake */
#ifdef IO_CALL
	:: c == A && io_budget > 0 && open == CLOSING ->
		io_budget = 0;
		make_call();
		goto end_wait /* back to the loop: no process() */
#endif
	fi;

finish:
	/* finish(): a fence (membarrier() with release stores) pairing with
	 * the senders' second look at `open`, the final drain under the
	 * policy, then butler__requests_finish once: answers taken, every
	 * call still open ended early */
#if defined(RELEASE_STORE) && !defined(MUT_FINISH_NO_BARRIER)
	atomic { flush_all() };
#endif
	do
	:: take_one(got);
		if
		:: got ->
			if
			:: policy_drain -> consume(l)
			:: else -> drop(l)
			fi;
			l = 0
		:: else -> break
		fi
	od;
	take_answers();
	if
	:: c == A && calls_A > 0 ->
		atomic {
			if
			:: tstate == T_PENDING -> tstate = T_GONE /* give_up */
			:: else -> skip /* claimed: its answer is destroyed later */
			fi;
			calls_A = 0; /* end_early: the callback with ECLOSED */
			call_ended++;
			assert(call_ended == 1);
			OWE(-1)
		}
	:: else -> skip
	fi;
	retired[c] = true; /* butler__channel_retire */
	finished[c] = true;
	gwake = 1
}

/* ---- the outside sender --------------------------------------------- */

proctype Outside()
{
	bool ok;

	do
	:: n_out < NOUT ->
		n_out++;
		push(3, L_OA, K_MSG, false, ok);
		if
		:: !ok -> break
		:: else -> ok = false
		fi
	:: else -> break
	od;
	o_done = 1
}

/* ---- the stopper ----------------------------------------------------- */

/* Destroys what is left in c's inbox (sweep, release). */
inline sweep_inbox(c)
{
	drop_lanes(c);
	if
	:: c == A -> nodes_A = 0 /* butler__requests_drop_answers */
	:: else -> skip
	fi
}

proctype Stopper()
{
	byte c;

	if
	:: policy_drain = true
	:: policy_drain = false
	fi;
	if
	:: policy_drain ->
		/* step one: close_step(CLOSING) */
		atomic { lockh == 0; draining = true; open = CLOSING };
#ifndef MUT_NO_WAKE
		atomic { ring(A); ring(B) } /* close_step: server_wake */
#endif
		/* wait_until(all_quiet) */
		do
		:: atomic {
				lockh == 0; /* butler__stopgroup_all_quiet */
				if
				:: n_quiet == N ->
#ifdef QUIET_PROP
					assert(owed == 0);
#endif
					break
				:: else -> skip
				fi
			};
			atomic { gwake == 1 -> gwake = 0 } /* poll, ack */
		od;
	:: else -> skip
	fi;
	/* step two: close_step(CLOSED) */
	atomic { lockh == 0; final_ = true; open = CLOSED };
	atomic { ring(A); ring(B) };
	/* wait_until(all_finished), join */
	finished[A] && finished[B];
#ifdef RELEASE_STORE
	atomic { /* a joined thread's stores are visible (not O's) */
		FLUSH(L_BA); FLUSH(L_AB); FLUSH(L_AA)
	}
#endif
	/* sweep: butler__server_sweep of each instance */
	for (c : 0 .. N - 1) {
		atomic { consuming[c] == 0 -> consuming[c] = 1 };
		sweep_inbox(c);
		retired[c] = true;
		consuming[c] = 0;
		fd_closed[c] = true; /* butler__channel_close_fd */
		fd_users[c] == 0;
		fd_gone[c] = true
	}
	stop_done = true;
	/* butler_hub_free: release destroys what stragglers published after
	 * the sweep (the application frees the hub once its own sends have
	 * returned) */
	o_done == 1;
	/* "A send that races with the stop and returns BUTLER_OK is handled
	 * or destroyed" by the time both have returned: the stop's counters
	 * add up (the straggler destroys what it published late) */
	counted = (STORED(L_OA) == head[L_OA] && STORED(L_BA) == head[L_BA]
	    && STORED(L_AB) == head[L_AB] && STORED(L_AA) == head[L_AA]);
#ifndef NO_COUNTED
	assert(counted);
#endif
#ifdef RELEASE_STORE
	atomic { flush_all() } /* the application's sends returned before */
#endif
#ifndef MUT_NO_RELEASE
	for (c : 0 .. N - 1) {
		sweep_inbox(c)
	}
#endif
	released = true
}

#ifndef LIVE /* the liveness runs check the ltl formula alone */
active proctype Watchdog()
{
	timeout ->
		assert(stop_done && released);
		assert(tail[L_OA] == head[L_OA] && tail[L_BA] == head[L_BA]
		    && tail[L_AB] == head[L_AB] && tail[L_AA] == head[L_AA]
		    && nodes_A == 0);
		assert(calls_A == 0 && tstate != T_PENDING);
		assert(tstate == T_NONE || call_ended == 1)
}
#endif

init
{
	atomic {
		run Server(A);
		run Server(B);
		run Outside();
#ifdef RELEASE_STORE
		run StoreBuffer();
#endif
		run Stopper()
	}
}

#ifdef LIVE
ltl stop_ends { <> released }
#endif
