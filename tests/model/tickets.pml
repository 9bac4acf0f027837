/* SPDX-License-Identifier: MIT */
/*
 * tickets.pml — one request's ticket (butler/request.c): the caller, the
 * server that holds the request, progress records, and the stop.
 *
 * The caller is a server's thread (butler_call: the answer comes back as a
 * node posted to its inbox) or, with -DWAIT, an outside thread blocked in
 * butler_call_wait (the answer wakes it). Either may give up (deadline,
 * butler_cancel, the stop's requests_finish): give_up, the CAS PENDING ->
 * GONE. The server answers (reply, failure, or later through a promise;
 * refused with ECLOSED when the stop discards or sweeps): answer(), which
 * copies the reply into the ticket, then CASes PENDING -> ANSWERED, then
 * posts the node or wakes the waiter. Progress records travel in the
 * server's lane to the caller; an answer that overtakes one is parked.
 *
 * The inboxes are abstracted: a record or node that is queued is taken by
 * its consumer in one step, at any time (wakeup.pml proves that queued work
 * is always taken). What the stop changes: from `closed` on (CLOSED) a push
 * is refused, each consumer finishes (server.c finish(): final drain, then
 * butler__requests_finish, which ends every call still open early), then
 * the stopper sweeps (server_sweep) and, at butler_hub_free, releases what
 * is left. An early end (timeout, cancel, stop) runs the callback at once,
 * whatever the server is doing; an answer the server had claimed already is
 * destroyed when it is parked or when it arrives (t->ended).
 *
 * Properties:
 *   - the caller's callback runs exactly once (or the blocked call returns
 *     once), and no progress is delivered after it;
 *   - the reply's owned fields are destroyed exactly once: by the caller
 *     after its callback, by the answering server when its CAS lost, by the
 *     sweep (drop_answers), or moved to the blocked caller's buffer;
 *   - the request's payload and each progress payload are destroyed once;
 *   - no access to the ticket after its last unref, and no ticket left with
 *     references at the end (refs modelled; last unref frees);
 *   - a blocked caller's waiter (on its stack) is not touched after it
 *     returned;
 *   - everything ends: the watchdog's `timeout` fires only when nothing can
 *     move, and then everything must be done.
 */

#define PENDING 0
#define ANSWERED 1
#define GONE 2

#define S_NONE 0
#define S_OK 1
#define S_FAIL 2     /* handler failure */
#define S_TIMEDOUT 3
#define S_CANCELED 4
#define S_CLOSED 5

#ifndef NPROG
#define NPROG 1 /* progress messages the server may send */
#endif

/* The ticket. */
byte state = PENDING;
byte refs = 2; /* the caller's and the request record's */
bool freed;
byte status = S_NONE;
byte progress_sent, progress_seen;
bool parked;

/* What the model counts. */
bool reply_in_ticket; /* the reply's owned fields live in t->payload */
byte reply_made, reply_gone;
byte cb_runs, cb_status;
byte prog_made, prog_gone, prog_delivered; /* made: by the handler */
bool refused;         /* the push was refused: no call was made */
byte req_gone;        /* request payload destroyed (handled or not) */

/* Queues. */
bool req_queued;      /* the request record in the server's lane */
bool req_sent;        /* the caller's push has published it */
byte prog_queued;     /* progress records in the caller's lane */
bool node_posted;     /* the answer node in the caller's list */

/* The caller's table (async) or waiter (blocking). */
bool in_table = true; /* calls hash */
bool in_heap = true;  /* has a deadline still due */
bool done_flag;       /* waiter.done */
bool waiter_alive = true;

/* The server's hold. */
bool holding;         /* a promise */

/* The stop. */
bool closed;          /* open == CLOSED */
bool caller_finished, server_finished, swept, released;
bool calls_done_caller;

inline touch()
{
	assert(!freed)
}

/* unref: the last reference frees the ticket (or recycles it). */
inline unref()
{
	atomic {
		assert(!freed && refs > 0);
		refs--;
		if
		:: refs == 0 ->
			freed = true;
			assert(!reply_in_ticket) /* else its fields leak */
		:: else -> skip
		fi
	}
}

/* A relaxed fetch_sub that the code knows is not the last reference. */
inline unref_not_last()
{
	atomic {
		assert(!freed && refs > 1);
		refs--
	}
}

inline destroy_reply()
{
	atomic {
		assert(reply_in_ticket);
		reply_in_ticket = false;
		reply_gone++
	}
}

/* give_up: CAS PENDING -> GONE; `won` says whether it succeeded. */
inline give_up(won)
{
	atomic {
		touch();
		if
		:: state == PENDING -> state = GONE; won = true
		:: else -> won = false
		fi
	}
}

/* ---- the server's side ---------------------------------------------- */

/* answer(t, st, payload): copy, CAS, then post or wake. */
inline answer(st, with_reply)
{
	touch();
	if
	:: with_reply -> reply_in_ticket = true; reply_made++
	:: else -> skip
	fi;
	status = st;
#ifdef MUT_ANSWER_NO_CAS
	atomic { touch(); state = ANSWERED; won = true }
#else
	atomic {
		touch();
		if
		:: state == PENDING -> state = ANSWERED; won = true
		:: else -> won = false
		fi
	}
#endif
	if
	:: !won ->
#ifndef MUT_LOSER_KEEPS_REPLY
		if
		:: with_reply -> destroy_reply()
		:: else -> skip
		fi;
#endif
		unref()
	:: else ->
#ifdef WAIT
#ifndef MUT_WAIT_NO_SIGNAL
		atomic { assert(waiter_alive); done_flag = true }; /* lock, done, signal, unlock */
#endif
		unref()
#else
		node_posted = true /* the node carries the record's reference */
#endif
	fi
}

/* push_progress, when the caller takes progress and has not gone. */
inline progress()
{
	touch();
	if
	:: state != GONE ->
		atomic { touch(); refs++ };
		progress_sent++;
		/* butler__push with BUTLER__PUSH_ANSWER: refused once CLOSED;
		 * the state is read before the publish (a straggler may publish
		 * after the stop moved on). */
		prog_made++;
		if
		:: closed ->
#ifndef MUT_REFUSED_PROGRESS_COUNTS
			progress_sent--;
#endif
			unref_not_last();
			prog_gone++ /* destroy_const: the message stays ours */
		:: else -> prog_queued++
		fi
	:: else -> prog_made++; prog_gone++ /* nobody listens */
	fi
}

/* consume() of the request record, then the handler's choice. */
inline handle_request()
{
	touch();
	if
	:: state == GONE -> /* butler__request_begin: caller gone */
		unref();
		req_gone++ /* abandoned */
	:: else ->
		/* the handler */
		if
		:: nprog < NPROG -> nprog++; progress()
		:: skip
		fi;
		if
		:: answer(S_OK, true)        /* butler_reply */
		:: answer(S_FAIL, false)     /* handler failed / no answer */
		:: holding = true            /* butler_defer */
		fi;
		req_gone++ /* destroy_payload after the handler */
	fi
}

/* drop(): a request that will not be handled is refused. */
inline refuse_request()
{
	answer(S_CLOSED, false);
	req_gone++
}

proctype Server()
{
	bool won;
	byte nprog;

	do
	:: atomic { req_queued && !closed -> req_queued = false };
		handle_request()
	:: holding && !closed -> /* a timer answers the promise */
		if
		:: nprog < NPROG -> nprog++; progress()
		:: skip
		fi;
		holding = false;
		if
		:: answer(S_OK, true)
		:: answer(S_FAIL, false)
		fi
	:: closed -> break
	od;
	/* finish(): final drain under the policy, then requests_finish */
	if
	:: atomic { req_queued -> req_queued = false };
		if
		:: handle_request() /* BUTLER_STOP_DRAIN */
		:: refuse_request() /* BUTLER_STOP_DISCARD */
		fi
	:: else -> skip
	fi;
	if
	:: holding -> holding = false; answer(S_CLOSED, false)
	:: else -> skip
	fi;
	server_finished = true
}

/* ---- the caller's side ---------------------------------------------- */

#ifndef WAIT
bool ended;           /* t->ended: its callback has run */

/* finish_call: the callback with `st` (the reply destroyed after it on
 * S_OK), the caller's reference dropped. The call is out of the table. */
inline finish_call(st)
{
	touch();
	ended = true;
	atomic {
		cb_runs++;
		cb_status = st;
		assert(cb_runs == 1)
	}
	if
	:: st == S_OK -> destroy_reply()
	:: else -> skip
	fi;
	unref()
}

/* take_out: out of the calls table (and the deadline heap). */
inline take_out()
{
	in_table = false;
	in_heap = false
}

/* The answer itself is delivered: no progress record of the call may still
 * be on its way (each was delivered, or dropped by a discarding stop). */
inline deliver()
{
	assert(status != S_NONE);
	assert(progress_seen == progress_sent);
	take_out();
	finish_call(status)
}

/* end_early: timeout, cancel or stop, whatever the server is doing: if it
 * has claimed the ticket, its answer is destroyed now (parked) or when it
 * arrives (take_answers, drop_answers). */
inline end_early(st)
{
	give_up(won);
	if
	:: !won && parked ->
		parked = false;
#ifndef MUT_EARLY_KEEPS_PARKED
		if
		:: status == S_OK -> destroy_reply()
		:: else -> skip
		fi
#endif
	:: else -> skip
	fi;
	finish_call(st)
}

/* butler__requests_take_answers for the one node. */
inline take_answers()
{
	if
	:: node_posted ->
		node_posted = false;
		touch();
#ifndef MUT_NO_ENDED_CHECK
		if
		:: ended -> /* its call ended before it came */
			if
			:: status == S_OK -> destroy_reply()
			:: else -> skip
			fi;
			unref()
		:: else ->
#else
		if
		:: true ->
#endif
			unref_not_last(); /* the answer's own reference */
#ifdef MUT_NO_PARK
			deliver()
#else
			if
			:: progress_sent != progress_seen ->
				in_heap = false;
				parked = true
			:: else -> deliver()
			fi
#endif
		fi
	:: else -> skip
	fi
}

/* butler__requests_progress (deliver_it), or drop_progress after
 * calls_done. */
inline take_progress(deliver_it)
{
	prog_queued--;
	touch();
	if
	:: calls_done_caller ->
		prog_gone++;
		unref()
	:: else ->
		if
#ifdef MUT_PROGRESS_AFTER_END
		:: deliver_it ->
#else
		:: deliver_it && !ended ->
#endif
			prog_delivered++;
			assert(cb_runs == 0) /* progress comes before the answer */
		:: else -> skip
		fi;
		prog_gone++;
		progress_seen++;
		if
		:: parked && progress_sent == progress_seen ->
			parked = false;
			unref_not_last();
			deliver()
		:: else -> unref()
		fi
	fi
}

proctype Caller()
{
	bool won;

	/* butler__call: ticket in the table, then the push; it may publish
	 * after the stop closed everything (it read OPEN before: a
	 * straggler), but before this thread finishes. */
	if
	:: req_queued = true; req_sent = true
	:: atomic { closed -> req_sent = true; refused = true };
		/* out_unused: never seen by another thread */
		atomic { refs = 1; in_table = false; in_heap = false };
		unref();
		goto finished
	fi;
	do
	:: node_posted -> take_answers()
	:: atomic { prog_queued > 0 && !closed }; take_progress(true)
	:: in_heap && !closed -> /* butler__requests_expire */
		take_out();
		end_early(S_TIMEDOUT)
	:: in_table && !closed -> /* butler_cancel */
		take_out();
		end_early(S_CANCELED)
	:: closed -> break
	od;
	/* finish(): the final drain, then butler__requests_finish once */
	do
	:: prog_queued > 0 ->
		if
		:: take_progress(true)  /* DRAIN: consume */
		:: take_progress(false) /* DISCARD: drop */
		fi
	:: else -> break
	od;
	take_answers();
	if
	:: in_table -> take_out(); end_early(S_CLOSED)
	:: else -> skip
	fi;
	calls_done_caller = true; /* then butler__channel_retire */
finished:
	caller_finished = true
}
#else /* WAIT */

proctype Caller()
{
	bool won, timed = true, got_answer;

	in_table = false; /* a blocking call is in no table */
	in_heap = false;

	/* the push may publish late: it read OPEN before the stop (a
	 * straggler), or is refused once CLOSED. */
	if
	:: req_queued = true; req_sent = true
	:: atomic { closed -> req_sent = true; refused = true };
		refs = 1;
		unref();
		goto out
	fi;
	/* wait_answer */
	do
	:: done_flag -> got_answer = true; break
	:: timed && !done_flag -> /* pthread_cond_timedwait: ETIMEDOUT */
#ifdef MUT_WAIT_NO_GIVE_UP
		break
#else
		give_up(won);
		if
		:: won -> break
		:: else -> timed = false
		fi
#endif
	od;
	atomic { cb_runs++; assert(cb_runs == 1) }; /* the call returns */
	if
	:: got_answer ->
		touch();
		assert(status != S_NONE);
		cb_status = status;
		if
		:: status == S_OK -> destroy_reply() /* memcpy to the caller */
		:: else -> skip
		fi
	:: else -> cb_status = S_TIMEDOUT
	fi;
	waiter_alive = false; /* its stack frame is gone */
	unref();
out:
	caller_finished = true
}
#endif

/* ---- the stop and the hub's end ------------------------------------- */

proctype Stopper()
{
	bool won;

	closed = true; /* step two (step one changes nothing here) */
	caller_finished && server_finished;
	/* butler__server_sweep of every instance: destroy what late racers
	 * queued, release posted answers. */
	do
	:: prog_queued > 0 -> prog_queued--; touch(); prog_gone++; unref()
	:: node_posted -> /* butler__requests_drop_answers */
		node_posted = false;
		touch();
		if
		:: status == S_OK -> destroy_reply()
		:: else -> skip
		fi;
		unref()
	:: atomic { req_queued -> req_queued = false }; refuse_request()
	:: else -> break
	od;
	swept = true;
	/* butler_hub_free: butler__server_release does the same for a send
	 * that was still publishing during the stop (the application frees
	 * the hub only when no send of its own is in progress). */
	req_sent;
	do
	:: prog_queued > 0 -> prog_queued--; touch(); prog_gone++; unref()
	:: node_posted ->
		node_posted = false;
		touch();
		if
		:: status == S_OK -> destroy_reply()
		:: else -> skip
		fi;
		unref()
	:: atomic { req_queued -> req_queued = false }; refuse_request()
	:: else -> break
	od;
	released = true
}

#ifndef LIVE /* the liveness runs check the ltl formula alone */
active proctype Watchdog()
{
	timeout ->
		assert(caller_finished && server_finished && released);
		assert(refused || cb_runs == 1);
		assert(!refused || cb_runs == 0);
		assert(freed && refs == 0);
		assert(reply_gone == reply_made && !reply_in_ticket);
		assert(prog_gone == prog_made);
		assert(req_gone == (refused -> 0 : 1));
		assert(prog_queued == 0 && !node_posted && !req_queued);
		assert(!in_table && !parked && !holding)
}
#endif

init
{
	atomic {
		run Caller();
		run Server();
		run Stopper()
	}
}

#ifdef LIVE
/* Under weak fairness the stop always ends: no livelock either (the
 * finish loop's sched_yield waits only for a poster that runs). */
ltl stop_ends { <> released }
#endif
