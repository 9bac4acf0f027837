/* SPDX-License-Identifier: MIT */
/*
 * codegen/emit_header.c — the generated header: types, the tagged union
 * and handler table of each server, and the prototypes of the typed send,
 * call, reply and destroy functions. The naming scheme is the one
 * include/butler/gen.h documents.
 */
#include "emit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "butler_gen.h"

static void
guard(const struct emit_in *in, struct sbuf *out)
{
	butler__gen_emit_guard(out, in->header_name);
}

static void
field_line(const struct emit_in *in, const struct field *f, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *ct = butler__gen_ctype(f->type);

	/* Owned and shared fields say so where users read the struct. */
	if (f->type == FT_MSG)
		butler__gen_sb_printf(out, "\tstruct %s_%s %s;\n", s->app,
		    s->msgs[f->msg].name, f->name);
	else if (f->type == FT_BYTES)
		butler__gen_sb_printf(out,
		    "\tstruct %s_bytes %s; /* owned: data freed with free() "
		    "*/\n",
		    s->app, f->name);
	else if (f->type == FT_BUF)
		butler__gen_sb_printf(out,
		    "\tstruct %s_buf %s; /* shared: released through its "
		    "free_fn */\n",
		    s->app, f->name);
	else if (f->type == FT_STRING)
		butler__gen_sb_printf(out,
		    "\tchar *%s; /* owned: NUL-terminated, freed with free() "
		    "*/\n",
		    f->name);
	else if (f->type == FT_PTR)
		butler__gen_sb_printf(out,
		    "\tvoid *%s; /* not owned: never freed by butler */\n",
		    f->name);
	else
		butler__gen_sb_printf(out, "\t%s %s;\n", ct, f->name);
}

/*
 * id_enum appends enum <app>_<what>_id with one enumerator per `noun`, its
 * count macro, and their comments. `upper` returns the i-th upper-case
 * name: messages and servers keep theirs in different structs.
 */
static void
id_enum(const struct emit_in *in, const char *what, const char *what_upper,
    const char *noun, unsigned n,
    const char *(*upper)(const struct spec *, unsigned), const char *role,
    struct sbuf *out)
{
	const char *a = in->spec->app, *A = in->spec->app_upper;

	butler__gen_doc(out, "%s_%s_id numbers the %ss in spec order: %s.", a,
	    what, noun, role);
	butler__gen_sb_printf(out, "enum %s_%s_id {\n", a, what);
	for (unsigned i = 0; i < n; i++)
		butler__gen_sb_printf(out, "\t%s_%s_%s = %u,\n", A, what_upper,
		    upper(in->spec, i), i);
	butler__gen_sb_puts(out, "};\n\n");
	butler__gen_doc(
	    out, "%s_%s_COUNT is the number of %ss.", A, what_upper, noun);
	butler__gen_sb_printf(
	    out, "#define %s_%s_COUNT %u\n\n", A, what_upper, n);
}

static const char *
msg_upper(const struct spec *s, unsigned i)
{
	return s->msgs[i].upper;
}

static const char *
srv_upper(const struct spec *s, unsigned i)
{
	return s->srvs[i].upper;
}

static void
ids(const struct emit_in *in, struct sbuf *out)
{
	char role[2 * GEN_NAME_MAX];

	snprintf(
	    role, sizeof role, "the index in %s_spec.messages", in->spec->app);
	id_enum(in, "msg", "MSG", "message", in->spec->n_msgs, msg_upper, role,
	    out);
	snprintf(role, sizeof role,
	    "the index in %s_spec.servers; butler_hub_server() turns it into "
	    "the index in a hub (the same for the hub's own spec), which the "
	    "generated functions do for you",
	    in->spec->app);
	id_enum(in, "server", "SERVER", "server", in->spec->n_srvs, srv_upper,
	    role, out);
	butler__gen_emit_wire_hash(in, out);
}

static void
shared_types(const struct emit_in *in, struct sbuf *out)
{
	const char *a = in->spec->app;

	if (in->spec->uses_bytes) {
		butler__gen_doc(out,
		    "%s_bytes is an owned byte string: `data` comes from "
		    "malloc() (or is NULL) and is freed with free() when the "
		    "message is destroyed.",
		    a);
		butler__gen_sb_printf(out,
		    "struct %s_bytes {\n\tuint8_t *data;\n"
		    "\tsize_t len;\n};\n\n",
		    a);
	}
	if (in->spec->uses_buf) {
		butler__gen_doc(out,
		    "%s_buf is a buffer handed over without copying. "
		    "Destroying the message calls free_fn(data, ctx) once, "
		    "when free_fn is not NULL: a sender that shares the "
		    "buffer passes a free_fn that drops a reference.",
		    a);
		butler__gen_sb_printf(out,
		    "struct %s_buf {\n\tvoid *data;\n"
		    "\tsize_t len;\n"
		    "\tvoid (*free_fn)(void *data, void *ctx);\n"
		    "\tvoid *ctx;\n};\n\n",
		    a);
	}
}

static void
message(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX], title[GEN_NAME_MAX];

	snprintf(title, sizeof title, "%s_%s is message '%s'.", s->app,
	    m->name, m->name);
	if (m->doc != NULL)
		butler__gen_emit_doc(out, 0, title, m->doc);
	else
		butler__gen_emit_comment(out, 0, title);
	butler__gen_sb_printf(out, "struct %s_%s {\n", s->app, m->name);
	for (unsigned k = 0; k < m->n_fields; k++)
		field_line(in, &m->fields[k], out);
	if (m->n_fields == 0)
		butler__gen_sb_puts(out,
		    "\tchar empty_bt_; /* ISO C has no "
		    "empty structs */\n");
	butler__gen_sb_puts(out, "};\n\n");

	if (m->owned)
		butler__gen_doc(out,
		    "%s_%s_destroy frees the owned fields of *msg, nested "
		    "messages included, and sets them to NULL; *msg itself is "
		    "not freed. NULL is a no-op. The hub calls it for the "
		    "messages it owns; call it for one you own, e.g. after a "
		    "failed send.",
		    s->app, m->name);
	else
		butler__gen_doc(out,
		    "%s_%s_destroy does nothing: '%s' owns no fields. It "
		    "exists so that every message is destroyed the same way.",
		    s->app, m->name, m->name);
	snprintf(name, sizeof name, "%s_%s_destroy", s->app, m->name);
	snprintf(params, sizeof params, "struct %s_%s *msg", s->app, m->name);
	butler__gen_emit_sig(out, false, "void", name, params);
	butler__gen_sb_puts(out, "\n");
	butler__gen_emit_wire_decls(in, m, out);
}

/* typedef_fn appends a function pointer typedef, wrapped like a
 * prototype when it is long. */
static void
typedef_fn(struct sbuf *out, const char *name, const char *params)
{
	char head[GEN_NAME_MAX + 32];

	snprintf(head, sizeof head, "typedef void (*%s)(", name);
	butler__gen_emit_call(out, 0, head, params, ");\n\n");
}

/* proto appends a prototype whose parameters are printf-formatted. */
static void proto(struct sbuf *out, const char *ret, const char *name,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
proto(
    struct sbuf *out, const char *ret, const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	butler__gen_vsig(out, false, ret, name, fmt, ap);
	va_end(ap);
	butler__gen_sb_puts(out, "\n");
}

/*
 * deferred appends the promise type of request `m` and the functions that
 * answer it later: app_defer_M(), app_answer_M(), app_fail_M(),
 * app_progress_M_promise(), app_M_promise_cancelled() and
 * app_M_promise_time_left_ms().
 */
static void
deferred(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *M = m->name;
	char name[GEN_NAME_MAX], ret[GEN_NAME_MAX];

	butler__gen_doc(out,
	    "%s_%s_promise names a deferred '%s' request: %s_defer_%s() takes "
	    "the request a handler is handling out of the handler, and the "
	    "promise is answered exactly once, later, on the thread of the "
	    "server that deferred it (%s_answer_%s() or %s_fail_%s()). Each "
	    "request has its own promise type, so an answer of the wrong type "
	    "does not compile. A promise is a plain value: copy it where the "
	    "answer will come from. id_bt_ is the runtime's; 0 names nothing.",
	    a, M, M, a, M, a, M, a, M);
	butler__gen_sb_printf(
	    out, "struct %s_%s_promise {\n\tuint64_t id_bt_;\n};\n\n", a, M);

	butler__gen_doc(out,
	    "%s_defer_%s defers the '%s' request that `self` is handling now: "
	    "the handler may return 0 without answering, and the request is "
	    "answered later on this server's thread, from anything that runs "
	    "there (the reply callback of a call of its own, a timer or I/O "
	    "on "
	    "butler_server_base(), another message), with %s_answer_%s() or "
	    "%s_fail_%s(). A handler that defers and then returns non-zero "
	    "fails the request with its result. A promise still unanswered "
	    "when the server stops ends with BUTLER_ESTOPPED for its caller. "
	    "Cannot fail for lack of memory; if no '%s' request is being "
	    "handled, or it was answered or deferred already, the promise "
	    "returned names nothing and answering it fails. The handling "
	    "server's thread only.",
	    a, M, M, a, M, a, M, M);
	snprintf(name, sizeof name, "%s_defer_%s", a, M);
	snprintf(ret, sizeof ret, "struct %s_%s_promise", a, M);
	proto(out, ret, name, "butler_server *self");

	butler__gen_doc(out,
	    "%s_answer_%s answers deferred request `promise` with *reply "
	    "(copied), exactly once. On BUTLER_OK the hub owns the reply's "
	    "owned fields; on failure you still do. Returns BUTLER_ESTATE if "
	    "the promise was answered already or ended at stop, BUTLER_EINVAL "
	    "for a promise of another server; a caller that has gone is not "
	    "an error (the reply is destroyed). The thread of the server that "
	    "deferred it only.",
	    a, M);
	snprintf(name, sizeof name, "%s_answer_%s", a, M);
	proto(out, "int", name,
	    "butler_server *self, struct %s_%s_promise promise, const struct "
	    "%s_%s *reply",
	    a, M, a, s->msgs[m->reply].name);

	butler__gen_doc(out,
	    "%s_fail_%s ends deferred request `promise` with failure `code` "
	    "(non-zero: a butler_err or a positive code of your own), exactly "
	    "once: its caller gets `code` as the status. Errors as "
	    "%s_answer_%s(), plus BUTLER_EINVAL for code 0. The thread of the "
	    "server that deferred it only.",
	    a, M, a, M);
	snprintf(name, sizeof name, "%s_fail_%s", a, M);
	proto(out, "int", name,
	    "butler_server *self, struct %s_%s_promise promise, int code", a,
	    M);

	if (m->progress >= 0) {
		butler__gen_doc(out,
		    "%s_progress_%s_promise posts *progress (copied) to the "
		    "caller of deferred request `promise`, as "
		    "%s_progress_%s() "
		    "does for the request being handled. On BUTLER_OK the hub "
		    "owns its owned fields; on failure you still do. Errors "
		    "as "
		    "%s_answer_%s(). The thread of the server that deferred "
		    "it "
		    "only.",
		    a, M, a, M, a, M);
		snprintf(name, sizeof name, "%s_progress_%s_promise", a, M);
		proto(out, "int", name,
		    "butler_server *self, struct %s_%s_promise promise, const "
		    "struct %s_%s *progress",
		    a, M, a, s->msgs[m->progress].name);
	}

	butler__gen_doc(out,
	    "%s_%s_promise_cancelled says whether the caller of deferred "
	    "request `promise` has given up on it (cancelled, timed out, "
	    "stopped, or the hub's stop discards), so that the work for it "
	    "can "
	    "stop early; true also once the promise has ended. The thread of "
	    "the server that deferred it only.",
	    a, M);
	snprintf(name, sizeof name, "%s_%s_promise_cancelled", a, M);
	proto(out, "bool", name,
	    "const butler_server *self, struct %s_%s_promise promise", a, M);

	butler__gen_doc(out,
	    "%s_%s_promise_time_left_ms returns how long the caller of "
	    "deferred request `promise` will still wait for its answer: -1 "
	    "for "
	    "no deadline, 0 once it has passed. The thread of the server that "
	    "deferred it only.",
	    a, M);
	snprintf(name, sizeof name, "%s_%s_promise_time_left_ms", a, M);
	proto(out, "int64_t", name,
	    "const butler_server *self, struct %s_%s_promise promise", a, M);
}

static void
request(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app;
	const struct message *r = &s->msgs[m->reply];
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX];

	butler__gen_doc(out,
	    "%s_%s_reply_fn receives the one answer to a call of '%s', on the "
	    "calling server's thread: status BUTLER_OK with the reply, or, "
	    "with reply NULL, the handler's failure (its non-zero result, or "
	    "the code given to %s_fail_%s()), BUTLER_ETIMEDOUT, "
	    "BUTLER_ESTOPPED "
	    "or BUTLER_ECANCELED. The reply is destroyed when the callback "
	    "returns: move out (and set to NULL) any owned field you keep.",
	    a, m->name, m->name, a, m->name);
	snprintf(name, sizeof name, "%s_%s_reply_fn", a, m->name);
	snprintf(params, sizeof params,
	    "butler_server *self, int status, struct %s_%s *reply, void "
	    "*user",
	    a, r->name);
	typedef_fn(out, name, params);

	butler__gen_doc(out,
	    "%s_reply_%s answers the '%s' request that `self` is handling now "
	    "with *reply (copied). A handler answers before it returns, or "
	    "defers (%s_defer_%s()) and answers later; one that returns "
	    "without doing either fails the request with its non-zero result, "
	    "or BUTLER_EHANDLER for 0. On BUTLER_OK the hub owns the reply's "
	    "owned fields; on failure you still do. The handling server's "
	    "thread only.",
	    a, m->name, m->name, a, m->name);
	snprintf(name, sizeof name, "%s_reply_%s", a, m->name);
	snprintf(params, sizeof params,
	    "butler_server *self, const struct %s_%s *reply", a, r->name);
	butler__gen_emit_sig(out, false, "int", name, params);
	butler__gen_sb_puts(out, "\n");
	if (m->progress >= 0) {
		butler__gen_doc(out,
		    "%s_%s_progress_fn receives each progress message of a "
		    "call of '%s' before its answer, on the calling server's "
		    "thread%s. The message is destroyed when the callback "
		    "returns.",
		    a, m->name, m->name,
		    m->progress_latest ? " (only the newest undelivered one)"
		                       : "");
		snprintf(name, sizeof name, "%s_%s_progress_fn", a, m->name);
		snprintf(params, sizeof params,
		    "butler_server *self, struct %s_%s *progress, void *user",
		    a, s->msgs[m->progress].name);
		typedef_fn(out, name, params);

		butler__gen_doc(out,
		    "%s_progress_%s posts *progress (copied) to the caller of "
		    "the '%s' request that `self` is handling now. On "
		    "BUTLER_OK the hub owns its owned fields; on failure you "
		    "still do. The handling server's thread only.",
		    a, m->name, m->name);
		snprintf(name, sizeof name, "%s_progress_%s", a, m->name);
		snprintf(params, sizeof params,
		    "butler_server *self, const struct %s_%s *progress", a,
		    s->msgs[m->progress].name);
		butler__gen_emit_sig(out, false, "int", name, params);
		butler__gen_sb_puts(out, "\n");
	}
	deferred(in, m, out);
}

/* handler_typedef appends `typedef int (*name)(params);`. */
static void
handler_typedef(struct sbuf *out, const char *name, const char *params)
{
	char head[GEN_NAME_MAX + 32];

	snprintf(head, sizeof head, "typedef int (*%s)(", name);
	butler__gen_emit_call(out, 0, head, params, ");\n");
}

/* macro_word appends `word` to a macro definition: after a blank, or on
 * a continuation line indented by `indent` (" \\", then it) when it would
 * pass 79 columns. *col is the current column. */
static void
macro_word(struct sbuf *out, size_t *col, const char *word, const char *indent)
{
	size_t n = strlen(word);

	if (*col + 1 + n + 2 > 79) {
		butler__gen_sb_printf(out, " \\\n%s", indent);
		*col = 8 + strlen(indent) - 1;
	} else {
		butler__gen_sb_puts(out, " ");
		(*col)++;
	}
	butler__gen_sb_puts(out, word);
	*col += n;
}

/* macro_arg starts argument `first` of the macro's expansion on a line of
 * its own and appends the words after it. */
static void
macro_arg(struct sbuf *out, size_t *col, const char *first, const char *second,
    const char *third)
{
	butler__gen_sb_printf(out, " \\\n\t    %s", first);
	*col = 12 + strlen(first);
	macro_word(out, col, second, "\t        ");
	if (third != NULL)
		macro_word(out, col, third, "\t        ");
}

/*
 * register_each appends app_S_register_each(): the handlers as arguments,
 * one per accepted message in accepts order, each of its own type. Too few
 * arguments is always an error; one in another's place is only a warning
 * for some compilers (gcc 12 on incompatible pointer types), so in C a
 * macro of the same name checks each with _Generic, which has no default:
 * a handler of another type matches no association, a constraint
 * violation. NULL (a void *) stays allowed for on_start and on_stop. C++
 * compilers refuse the mismatch themselves and get the function alone.
 */
static void
register_each(
    const struct emit_in *in, const struct server *sv, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *S = sv->name;
	struct sbuf params = { 0 };
	char name[GEN_NAME_MAX], item[2 * GEN_NAME_MAX + 64];
	size_t col;

	butler__gen_doc(out,
	    "%s_%s_register_each installs the handlers of server '%s' as "
	    "%s_%s_register() does, given one by one: on_start and on_stop "
	    "(either may be NULL), then one handler per message it accepts, "
	    "in its 'accepts' order. Leaving a handler out does not compile, "
	    "and neither does giving one in another's place: in C this is "
	    "also a macro that checks each argument's type with _Generic. "
	    "Before butler_hub_start() only.",
	    a, S, S, a, S);
	snprintf(name, sizeof name, "%s_%s_register_each", a, S);
	butler__gen_sb_puts(&params,
	    "butler_hub *hub, void *user, butler_start_fn on_start, "
	    "butler_stop_fn on_stop");
	for (unsigned k = 0; k < sv->n_accepts; k++)
		butler__gen_sb_printf(&params, ", %s_%s_%s_fn", a, S,
		    s->msgs[sv->accepts[k]].name);
	if (params.oom) {
		out->oom = true;
		return;
	}
	butler__gen_emit_sig(out, false, "int", name, params.data);
	butler__gen_sb_release(&params);

	/* #define app_S_register_each(hub_bt_, ..., h1_bt_, ...) \
	 *	(app_S_register_each)((hub_bt_), ..., _Generic(...), ...) */
	butler__gen_sb_printf(
	    out, "#ifndef __cplusplus\n#define %s(hub_bt_,", name);
	col = strlen("#define (hub_bt_,") + strlen(name);
	macro_word(out, &col, "user_bt_,", "\t    ");
	macro_word(out, &col,
	    sv->n_accepts > 0 ? "start_bt_, stop_bt_,"
	                      : "start_bt_, stop_bt_)",
	    "\t    ");
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		snprintf(item, sizeof item, "h%u_bt_%s", k + 1,
		    k + 1 < sv->n_accepts ? "," : ")");
		macro_word(out, &col, item, "\t    ");
	}
	butler__gen_sb_printf(out, " \\\n\t(%s)((hub_bt_), (user_bt_),", name);
	macro_arg(out, &col, "_Generic((start_bt_),",
	    "butler_start_fn: (start_bt_),", "void *: (start_bt_)),");
	macro_arg(out, &col, "_Generic((stop_bt_),",
	    "butler_stop_fn: (stop_bt_),",
	    sv->n_accepts > 0 ? "void *: (stop_bt_)),"
	                      : "void *: (stop_bt_)))");
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		char first[32];

		snprintf(first, sizeof first, "_Generic((h%u_bt_),", k + 1);
		snprintf(item, sizeof item, "%s_%s_%s_fn: (h%u_bt_))%s", a, S,
		    s->msgs[sv->accepts[k]].name, k + 1,
		    k + 1 < sv->n_accepts ? "," : ")");
		macro_arg(out, &col, first, item, NULL);
	}
	butler__gen_sb_puts(out, "\n#endif\n\n");
}

/*
 * timers appends the prototypes of app_send_S_M_after(), and of
 * app_send_S_M_every() for a message that owns no fields, and
 * app_purge_S_M() once the runtime has butler_purge().
 */
static void
timers(const struct emit_in *in, const struct server *sv,
    const struct message *m, struct sbuf *out)
{
	const char *a = in->spec->app, *S = sv->name, *M = m->name;
	char name[GEN_NAME_MAX], every[GEN_NAME_MAX + 64] = "";

	if (m->owned)
		snprintf(every, sizeof every,
		    " '%s' owns fields, so it cannot repeat: it has no "
		    "%s_send_%s_%s_every().",
		    M, a, S, M);
	butler__gen_doc(out,
	    "%s_send_%s_%s_after sends *msg (copied now) to server '%s' once, "
	    "delay_ms from now, from a timer on the loop of the instance it "
	    "goes to. On BUTLER_OK the hub owns its owned fields (destroyed "
	    "after the delivery, or when the timer is cancelled or the hub "
	    "stops first); on failure you still do. *timer (may be NULL) "
	    "names the timer for butler_timer_cancel(). Nothing fires once "
	    "the hub begins to stop. Codes as %s_send_%s_%s(). Any thread.%s",
	    a, S, M, S, a, S, M, every);
	snprintf(name, sizeof name, "%s_send_%s_%s_after", a, S, M);
	proto(out, "int", name,
	    "butler_hub *hub, const struct %s_%s *msg, unsigned delay_ms, "
	    "uint64_t *timer",
	    a, M);
	if (!m->owned) {
		butler__gen_doc(out,
		    "%s_send_%s_%s_every sends a copy of *msg to server '%s' "
		    "every period_ms, the first period_ms from now, until "
		    "butler_timer_cancel(hub, *timer) or the hub begins to "
		    "stop. '%s' owns no fields, so nothing changes owner. "
		    "*timer (may be NULL) names the timer. BUTLER_EINVAL for "
		    "period_ms 0; otherwise codes as %s_send_%s_%s(). Any "
		    "thread.",
		    a, S, M, S, M, a, S, M);
		snprintf(name, sizeof name, "%s_send_%s_%s_every", a, S, M);
		proto(out, "int", name,
		    "butler_hub *hub, const struct %s_%s *msg, unsigned "
		    "period_ms, uint64_t *timer",
		    a, M);
	}
	butler__gen_doc(out,
	    "%s_purge_%s_%s removes every '%s' message queued for "
	    "server '%s', on each of its instances, unhandled: each "
	    "is destroyed (its owned fields freed) and counted in "
	    "*purged (may be NULL). Codes as butler_purge(). Any "
	    "thread.",
	    a, S, M, M, S);
	snprintf(name, sizeof name, "%s_purge_%s_%s", a, S, M);
	proto(out, "int", name, "butler_hub *hub, uint64_t *purged");
}

/* full_text appends what a send to a full inbox does under policy f. */
static void
full_text(struct sbuf *t, enum full_kind f, int block_timeout_ms)
{
	switch (f) {
	case FULL_FAIL:
		butler__gen_sb_puts(t, "fails with BUTLER_EFULL");
		return;
	case FULL_BLOCK:
		if (block_timeout_ms < 0)
			butler__gen_sb_puts(t, "waits for room");
		else
			butler__gen_sb_printf(
			    t, "waits up to %d ms for room", block_timeout_ms);
		return;
	case FULL_DROP_NEWEST:
		butler__gen_sb_puts(t, "destroys the new message");
		return;
	case FULL_DROP_OLDEST:
		butler__gen_sb_puts(t, "destroys the oldest queued one");
		return;
	case FULL_KEEP_LAST:
		butler__gen_sb_puts(
		    t, "replaces the queued message of its kind");
		return;
	}
}

/*
 * policies appends to `t` sentences, each after a blank, saying what
 * server sv does beyond the defaults (routing, sharing, bounds, watchdog,
 * tick, full inboxes), so that the header tells what the descriptor
 * holds. Nothing for a server of defaults only.
 */
static void
policies(const struct emit_in *in, const struct server *sv, struct sbuf *t)
{
	const struct spec *s = in->spec;

	if (sv->route == ROUTE_LEAST_LOADED)
		butler__gen_sb_puts(
		    t, " Each send goes to the least loaded instance.");
	else if (sv->route == ROUTE_KEY)
		butler__gen_sb_printf(t,
		    " Each send goes to the instance its field '%s' picks: "
		    "one key, one instance, the key's messages in order.",
		    sv->route_key);
	if (sv->share)
		butler__gen_sb_puts(
		    t, " An idle instance takes work queued on a busy one.");
	if (sv->max_queued > 0)
		butler__gen_sb_printf(t,
		    " An instance holds at most %u queued messages from all "
		    "senders together.",
		    sv->max_queued);
	if (sv->max_handler_ms > 0)
		butler__gen_sb_printf(t,
		    " A handler running longer than %u ms is reported.",
		    sv->max_handler_ms);
	if (sv->tick_kind > 0)
		butler__gen_sb_printf(t,
		    " Every %u ms, each instance receives a zeroed '%s'.",
		    sv->tick_ms, s->msgs[sv->accepts[sv->tick_kind - 1]].name);
	if (sv->full > FULL_BLOCK) {
		butler__gen_sb_puts(t, " A send to a full inbox ");
		full_text(t, sv->full, sv->block_timeout_ms);
		butler__gen_sb_puts(t, ".");
	}
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct kind_policy *p = &sv->kinds[k];
		const char *M = s->msgs[sv->accepts[k]].name;

		if (p->full != sv->full
		    || (p->full == FULL_BLOCK
		        && p->block_timeout_ms != sv->block_timeout_ms)) {
			butler__gen_sb_printf(
			    t, " A '%s' sent to a full inbox ", M);
			full_text(t, p->full, p->block_timeout_ms);
			butler__gen_sb_puts(t, ".");
		}
		if (p->max_handler_ms != sv->max_handler_ms)
			butler__gen_sb_printf(t,
			    " A '%s' handler running longer than %u ms is "
			    "reported.",
			    M, p->max_handler_ms);
	}
}

static void
server(const struct emit_in *in, const struct server *sv, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *A = s->app_upper, *S = sv->name;
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX], title[GEN_NAME_MAX];
	struct sbuf pol = { 0 };

	if (sv->instances == BUTLER_INSTANCES_AUTO)
		snprintf(title, sizeof title,
		    "Server '%s': own threads, one per online CPU.", S);
	else
		snprintf(title, sizeof title,
		    "Server '%s': %s, %u instance%s.", S,
		    sv->loop == LOOP_EXTERNAL ? "external loop" : "own thread",
		    sv->instances, sv->instances == 1 ? "" : "s");
	policies(in, sv, &pol);
	if (pol.oom)
		out->oom = true;
	else if (sv->doc != NULL)
		butler__gen_emit_doc(out, 0, title, sv->doc);
	else
		butler__gen_doc(out, "%s%s", title, butler__gen_sb_cstr(&pol));
	if (sv->doc != NULL && pol.len > 0)
		butler__gen_doc(out, "%s", butler__gen_sb_cstr(&pol) + 1);
	butler__gen_sb_release(&pol);
	butler__gen_sb_puts(out, "\n");

	butler__gen_doc(out,
	    "%s_%s_kind says which message a %s_%s_msg holds; NONE (0) is "
	    "none, so a zeroed message is invalid.",
	    a, S, a, S);
	butler__gen_sb_printf(
	    out, "enum %s_%s_kind {\n\t%s_%s_NONE = 0,\n", a, S, A, sv->upper);
	for (unsigned k = 0; k < sv->n_accepts; k++)
		butler__gen_sb_printf(out, "\t%s_%s_%s = %u,\n", A, sv->upper,
		    s->msgs[sv->accepts[k]].upper, k + 1);
	butler__gen_sb_puts(out, "};\n\n");

	butler__gen_doc(
	    out, "%s_%s_msg is any message server '%s' accepts.", a, S, S);
	butler__gen_sb_printf(
	    out, "struct %s_%s_msg {\n\tenum %s_%s_kind kind;\n", a, S, a, S);
	/* C has no empty union: a server that accepts nothing has a kind
	 * only (always NONE). */
	if (sv->n_accepts > 0) {
		butler__gen_sb_puts(out, "\tunion {\n");
		for (unsigned k = 0; k < sv->n_accepts; k++) {
			const struct message *m = &s->msgs[sv->accepts[k]];

			butler__gen_sb_printf(out, "\t\tstruct %s_%s %s;\n", a,
			    m->name, m->name);
		}
		butler__gen_sb_puts(out, "\t} u;\n");
	}
	butler__gen_sb_puts(out, "};\n\n");

	if (sv->n_accepts > 0) {
		butler__gen_doc(out,
		    "%s_%s_M_fn is the type of the handler of message M in "
		    "server '%s', one type per message it accepts (so that "
		    "%s_%s_register_each() can tell them apart). A handler "
		    "runs on the server's thread and returns 0 or an error "
		    "code. The hub destroys *msg after the handler returns: "
		    "move out (and set to NULL) any owned field you keep.",
		    a, S, S, a, S);
		for (unsigned k = 0; k < sv->n_accepts; k++) {
			const struct message *m = &s->msgs[sv->accepts[k]];

			snprintf(
			    name, sizeof name, "%s_%s_%s_fn", a, S, m->name);
			snprintf(params, sizeof params,
			    "butler_server *self, void *user, struct %s_%s "
			    "*msg",
			    a, m->name);
			handler_typedef(out, name, params);
		}
		butler__gen_sb_puts(out, "\n");
	}

	butler__gen_doc(out,
	    "%s_%s_handlers is the handler table of server '%s'. on_start and "
	    "on_stop may be NULL; every message needs a handler, or "
	    "butler_hub_start() fails with BUTLER_ENOHANDLER: "
	    "%s_%s_register_each() makes a missing one a compile error "
	    "instead.",
	    a, S, S, a, S);
	butler__gen_sb_printf(out,
	    "struct %s_%s_handlers {\n"
	    "\tbutler_start_fn on_start;\n"
	    "\tbutler_stop_fn on_stop;\n",
	    a, S);
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];

		butler__gen_sb_printf(
		    out, "\t%s_%s_%s_fn %s;\n", a, S, m->name, m->name);
	}
	butler__gen_sb_puts(out, "};\n\n");

	butler__gen_doc(out,
	    "%s_%s_register installs handler table *h (copied) for server "
	    "'%s', with `user` passed to every handler. Before "
	    "butler_hub_start() only.",
	    a, S, S);
	snprintf(name, sizeof name, "%s_%s_register", a, S);
	snprintf(params, sizeof params,
	    "butler_hub *hub, const struct %s_%s_handlers *h, void *user", a,
	    S);
	butler__gen_emit_sig(out, false, "int", name, params);
	butler__gen_sb_puts(out, "\n");

	register_each(in, sv, out);

	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];

		butler__gen_doc(out,
		    "%s_send_%s_%s sends *msg (copied) to server '%s'. On "
		    "BUTLER_OK the hub owns its owned fields, and on "
		    "BUTLER_EDROPPED or BUTLER_EREPLACED too (the kind's "
		    "overload policy destroyed it: butler_taken(rv) is "
		    "true); on other failures (BUTLER_EFULL, BUTLER_ECLOSED, "
		    "...) you still do. Any thread.",
		    a, S, m->name, S);
		snprintf(name, sizeof name, "%s_send_%s_%s", a, S, m->name);
		snprintf(params, sizeof params,
		    "butler_hub *hub, const struct %s_%s *msg", a, m->name);
		butler__gen_emit_sig(out, false, "int", name, params);
		butler__gen_sb_puts(out, "\n");
		timers(in, sv, m, out);
		if (!m->request)
			continue;
		butler__gen_doc(out,
		    "%s_call_%s_%s sends request *msg to server '%s'. Its "
		    "answer comes back once, to cb on the calling server's "
		    "thread, within timeout_ms (-1: no timeout)%s. *id (may "
		    "be NULL) names the request for butler_cancel(). "
		    "Ownership as %s_send_%s_%s(). A butler server's thread "
		    "only (a handler, on_start, or an external drain after "
		    "butler_hub_start()); any other thread gets BUTLER_ESTATE "
		    "and uses %s_call_%s_%s_wait().",
		    a, S, m->name, S,
		    m->progress >= 0 ? "; progress messages come to "
		                       "progress_cb (may be NULL) first"
		                     : "",
		    a, S, m->name, a, S, m->name);
		snprintf(name, sizeof name, "%s_call_%s_%s", a, S, m->name);
		if (m->progress >= 0)
			snprintf(params, sizeof params,
			    "butler_hub *hub, const struct %s_%s *msg, "
			    "int timeout_ms, %s_%s_reply_fn cb, "
			    "%s_%s_progress_fn progress_cb, void *user, "
			    "uint64_t *id",
			    a, m->name, a, m->name, a, m->name);
		else
			snprintf(params, sizeof params,
			    "butler_hub *hub, const struct %s_%s *msg, "
			    "int timeout_ms, %s_%s_reply_fn cb, void "
			    "*user, uint64_t *id",
			    a, m->name, a, m->name);
		butler__gen_emit_sig(out, false, "int", name, params);
		butler__gen_sb_puts(out, "\n");

		butler__gen_doc(out,
		    "%s_call_%s_%s_wait sends request *msg to server '%s' and "
		    "blocks the calling thread until its answer: BUTLER_OK "
		    "with the reply in *reply (you then own its owned "
		    "fields), the handler's failure, BUTLER_ETIMEDOUT after "
		    "timeout_ms (-1: no limit), BUTLER_ESTOPPED if the hub "
		    "stops first, or BUTLER_ECANCELED. *reply is written on "
		    "BUTLER_OK only; %sa reply that comes after the timeout "
		    "is destroyed. For threads that are no butler server (a "
		    "plain pthread, another library's pool, main): from a "
		    "server's own thread it refuses with BUTLER_EDEADLK "
		    "rather than block a loop, and before butler_hub_start() "
		    "with BUTLER_ESTATE. Refused at once (BUTLER_EFULL, "
		    "BUTLER_ECLOSED, ...), *msg's owned fields are still "
		    "yours; once accepted the hub owns them, whatever the "
		    "outcome (butler_taken() says which). Any thread.",
		    a, S, m->name, S,
		    m->progress >= 0 ? "progress messages are destroyed, and "
		                     : "");
		snprintf(
		    name, sizeof name, "%s_call_%s_%s_wait", a, S, m->name);
		proto(out, "int", name,
		    "butler_hub *hub, const struct %s_%s *msg, int "
		    "timeout_ms, struct %s_%s *reply",
		    a, m->name, a, s->msgs[m->reply].name);
	}

	butler__gen_doc(out,
	    "%s_send_%s sends the message *msg holds, as the matching "
	    "%s_send_%s_...() does; BUTLER_EKIND for kind NONE. Any thread.",
	    a, S, a, S);
	snprintf(name, sizeof name, "%s_send_%s", a, S);
	snprintf(params, sizeof params,
	    "butler_hub *hub, const struct %s_%s_msg *msg", a, S);
	butler__gen_emit_sig(out, false, "int", name, params);
	butler__gen_sb_puts(out, "\n");

	butler__gen_doc(out,
	    "%s_%s_msg_destroy destroys the message *msg holds. NULL is a "
	    "no-op.",
	    a, S);
	snprintf(name, sizeof name, "%s_%s_msg_destroy", a, S);
	snprintf(params, sizeof params, "struct %s_%s_msg *msg", a, S);
	butler__gen_emit_sig(out, false, "void", name, params);
	butler__gen_sb_puts(out, "\n");
}

void
butler__gen_emit_header(const struct emit_in *in, struct sbuf *out)
{
	const struct spec *s = in->spec;
	char title[GEN_NAME_MAX];

	butler__gen_emit_banner(in, out);
	snprintf(title, sizeof title,
	    "Messages and servers of butler app '%s'.", s->app);
	if (s->doc != NULL)
		butler__gen_emit_doc(out, 0, title, s->doc);
	else
		butler__gen_emit_comment(out, 0, title);
	butler__gen_sb_puts(out, "#ifndef ");
	guard(in, out);
	butler__gen_sb_puts(out, "\n#define ");
	guard(in, out);
	butler__gen_sb_puts(out,
	    "\n\n#include <stdbool.h>\n#include "
	    "<stddef.h>\n#include <stdint.h>\n\n"
	    "#include <butler/butler.h>\n\n");
	butler__gen_sb_printf(out,
	    "#if BUTLER_GEN_ABI != %d\n#error \"regenerate ",
	    BUTLER_GEN_OUTPUT_ABI);
	butler__gen_emit_cstr(out, in->spec_path);
	butler__gen_sb_printf(out,
	    " with the butler-gen of the butler you "
	    "build against (this file is for "
	    "BUTLER_GEN_ABI %d)\"\n#endif\n\n",
	    BUTLER_GEN_OUTPUT_ABI);
	if (s->n_imports > 0) {
		butler__gen_doc(out,
		    "The specs %s imports. Each is generated once, in the "
		    "library built from it (link that library: it provides "
		    "these headers and the specs' tables).",
		    s->app);
		for (unsigned k = 0; k < s->n_imports; k++)
			butler__gen_sb_printf(out, "#include \"%s\"\n",
			    in->imports[k].header_name);
		butler__gen_sb_puts(out, "\n");
	}
	butler__gen_sb_puts(out,
	    "#ifdef __cplusplus\nextern \"C\" {\n"
	    "#endif\n\n");
	ids(in, out);
	shared_types(in, out);
	for (unsigned i = 0; i < s->n_msgs; i++)
		message(in, &s->msgs[s->order[i]], out);
	for (unsigned i = 0; i < s->n_msgs; i++)
		if (s->msgs[i].request)
			request(in, &s->msgs[i], out);
	for (unsigned i = 0; i < s->n_srvs; i++)
		server(in, &s->srvs[i], out);
	butler__gen_doc(out,
	    "%s_spec is the descriptor table of app '%s': create a hub with "
	    "butler_hub_new(&hub, &%s_spec).",
	    s->app, s->app, s->app);
	butler__gen_sb_printf(
	    out, "extern const butler_spec %s_spec;\n\n", s->app);
	butler__gen_sb_puts(
	    out, "#ifdef __cplusplus\n}\n#endif\n\n#endif /* ");
	guard(in, out);
	butler__gen_sb_puts(out, " */\n");
}
