/* SPDX-License-Identifier: MIT */
/*
 * codegen/emit_source.c — the generated source: destructors, the typed
 * send, call and reply functions, each server's dispatcher and handler
 * check, and the descriptor table the hub is built from.
 */
#include "emit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void
destroy_field(
    const struct emit_in *in, const struct field *f, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *n = f->name;

	/* Only owned fields are touched: numbers and ptr are left alone. */
	if (f->type == FT_STRING)
		butler__gen_sb_printf(
		    out, "\tfree(msg->%s);\n\tmsg->%s = NULL;\n", n, n);
	else if (f->type == FT_BYTES)
		butler__gen_sb_printf(out,
		    "\tfree(msg->%s.data);\n"
		    "\tmsg->%s.data = NULL;\n"
		    "\tmsg->%s.len = 0;\n",
		    n, n, n);
	else if (f->type == FT_BUF)
		butler__gen_sb_printf(out,
		    "\tif (msg->%s.free_fn != NULL)\n"
		    "\t\tmsg->%s.free_fn(msg->%s.data, msg->%s.ctx);\n"
		    "\tmsg->%s.data = NULL;\n"
		    "\tmsg->%s.len = 0;\n"
		    "\tmsg->%s.free_fn = NULL;\n"
		    "\tmsg->%s.ctx = NULL;\n",
		    n, n, n, n, n, n, n, n);
	else if (f->type == FT_MSG && s->msgs[f->msg].owned)
		butler__gen_sb_printf(out, "\t%s_%s_destroy(&msg->%s);\n",
		    s->app, s->msgs[f->msg].name, n);
}

static void
destructors(const struct emit_in *in, struct sbuf *out)
{
	const struct spec *s = in->spec;
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX];

	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[s->order[i]];

		snprintf(name, sizeof name, "%s_%s_destroy", s->app, m->name);
		snprintf(params, sizeof params, "struct %s_%s *msg", s->app,
		    m->name);
		butler__gen_emit_sig(out, true, "void", name, params);
		if (!m->owned) {
			butler__gen_sb_puts(out,
			    "{\n\t/* No owned fields. */\n"
			    "\t(void)msg;\n}\n\n");
			continue;
		}
		butler__gen_sb_puts(
		    out, "{\n\tif (msg == NULL)\n\t\treturn;\n");
		for (unsigned k = 0; k < m->n_fields; k++)
			destroy_field(in, &m->fields[k], out);
		butler__gen_sb_puts(out, "}\n\n");
		/* The descriptor wants a void * signature; calling the typed
		 * destructor through a cast pointer would be undefined. */
		butler__gen_sb_printf(out,
		    "static void\n%s_%s_destroy_bt_(void "
		    "*msg)\n{\n\t%s_%s_destroy(msg);\n}\n\n",
		    s->app, m->name, s->app, m->name);
	}
}

/*
 * promise_fns emits app_defer_M() and the functions that answer its
 * promise. The runtime identifies the request's message by its descriptor
 * in the spec's own table, which is how it tells one spec's message 0 from
 * another's in a hub built from several.
 */
static void
promise_fns(
    const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const char *a = in->spec->app, *A = in->spec->app_upper;
	const char *M = m->name, *MU = m->upper;
	char name[GEN_NAME_MAX], ret[GEN_NAME_MAX];

	snprintf(name, sizeof name, "%s_defer_%s", a, M);
	snprintf(ret, sizeof ret, "struct %s_%s_promise", a, M);
	butler__gen_sig(out, true, ret, name, "butler_server *self");
	butler__gen_sb_printf(out, "{\n\t%s p = { 0 };\n\n", ret);
	butler__gen_call(out, "(void)butler_defer(",
	    "self, &%s_spec.messages[%s_MSG_%s], &p.id_bt_", a, A, MU);
	butler__gen_sb_puts(out, "\treturn p;\n}\n\n");

	snprintf(name, sizeof name, "%s_answer_%s", a, M);
	butler__gen_sig(out, true, "int", name,
	    "butler_server *self, struct %s_%s_promise promise, const struct "
	    "%s_%s *reply",
	    a, M, a, in->spec->msgs[m->reply].name);
	butler__gen_sb_puts(
	    out, "{\n\tif (reply == NULL)\n\t\treturn BUTLER_EINVAL;\n");
	butler__gen_call(out, "return butler_answer(",
	    "self, promise.id_bt_, &%s_spec.messages[%s_MSG_%s], reply, "
	    "sizeof *reply",
	    a, A, MU);
	butler__gen_sb_puts(out, "}\n\n");

	snprintf(name, sizeof name, "%s_fail_%s", a, M);
	butler__gen_sig(out, true, "int", name,
	    "butler_server *self, struct %s_%s_promise promise, int code", a,
	    M);
	butler__gen_sb_puts(out, "{\n");
	butler__gen_call(out, "return butler_fail(",
	    "self, promise.id_bt_, &%s_spec.messages[%s_MSG_%s], code", a, A,
	    MU);
	butler__gen_sb_puts(out, "}\n\n");

	if (m->progress >= 0) {
		snprintf(name, sizeof name, "%s_progress_%s_promise", a, M);
		butler__gen_sig(out, true, "int", name,
		    "butler_server *self, struct %s_%s_promise promise, const "
		    "struct %s_%s *progress",
		    a, M, a, in->spec->msgs[m->progress].name);
		butler__gen_sb_puts(out,
		    "{\n\tif (progress == NULL)\n\t\treturn "
		    "BUTLER_EINVAL;\n");
		butler__gen_call(out, "return butler_progress_promise(",
		    "self, promise.id_bt_, &%s_spec.messages[%s_MSG_%s], "
		    "progress, sizeof *progress",
		    a, A, MU);
		butler__gen_sb_puts(out, "}\n\n");
	}

	snprintf(name, sizeof name, "%s_%s_promise_cancelled", a, M);
	butler__gen_sig(out, true, "bool", name,
	    "const butler_server *self, struct %s_%s_promise promise", a, M);
	butler__gen_sb_puts(out,
	    "{\n\treturn butler_promise_cancelled(self, "
	    "promise.id_bt_);\n}\n\n");

	snprintf(name, sizeof name, "%s_%s_promise_time_left_ms", a, M);
	butler__gen_sig(out, true, "int64_t", name,
	    "const butler_server *self, struct %s_%s_promise promise", a, M);
	butler__gen_sb_puts(out,
	    "{\n\treturn butler_promise_time_left_ms(self, "
	    "promise.id_bt_);\n}\n\n");
}

static void
requests(const struct emit_in *in, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app;
	char name[GEN_NAME_MAX];

	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[i];

		if (!m->request)
			continue;
		snprintf(name, sizeof name, "%s_reply_%s", a, m->name);
		butler__gen_sig(out, true, "int", name,
		    "butler_server *self, const struct %s_%s *reply", a,
		    s->msgs[m->reply].name);
		butler__gen_sb_puts(out,
		    "{\n\tif (reply == NULL)\n\t\treturn BUTLER_EINVAL;\n"
		    "\treturn butler_reply(self, reply, sizeof "
		    "*reply);\n}\n\n");
		if (m->progress >= 0) {
			snprintf(
			    name, sizeof name, "%s_progress_%s", a, m->name);
			butler__gen_sig(out, true, "int", name,
			    "butler_server *self, const struct %s_%s "
			    "*progress",
			    a, s->msgs[m->progress].name);
			butler__gen_sb_puts(out,
			    "{\n\tif (progress == NULL)\n\t\treturn "
			    "BUTLER_EINVAL;\n\treturn butler_progress(self, "
			    "progress, sizeof *progress);\n}\n\n");
		}
		promise_fns(in, m, out);
		if (in->n_accepting[i] == 0)
			continue; /* no call function uses the thunks */
		butler__gen_sb_puts(out,
		    "/*\n * The runtime keeps cb type-erased; converting it "
		    "back to its own type\n * before calling it is what makes "
		    "the call defined.\n */\n");
		snprintf(
		    name, sizeof name, "%s_%s_reply_thunk_bt_", a, m->name);
		butler__gen_sig(out, true, "static void", name,
		    "butler_server *self, int status, void *reply, void "
		    "(*cb)(void), void *user");
		butler__gen_sb_printf(out,
		    "{\n\t%s_%s_reply_fn fn = (%s_%s_reply_fn)cb;\n\n"
		    "\tfn(self, status, reply, user);\n}\n\n",
		    a, m->name, a, m->name);
		if (m->progress < 0)
			continue;
		snprintf(
		    name, sizeof name, "%s_%s_progress_thunk_bt_", a, m->name);
		butler__gen_sig(out, true, "static void", name,
		    "butler_server *self, void *progress, void (*cb)(void), "
		    "void *user");
		butler__gen_sb_printf(out,
		    "{\n\t%s_%s_progress_fn fn = (%s_%s_progress_fn)cb;\n\n"
		    "\tif (fn != NULL)\n\t\tfn(self, progress, user);\n}\n\n",
		    a, m->name, a, m->name);
	}
}

/*
 * timers emits app_send_S_M_after(), app_send_S_M_every() for a message
 * that owns no fields (the runtime refuses a periodic one that does: each
 * firing delivers a copy), and app_purge_S_M() once the runtime has
 * butler_purge().
 */
static void
timers(const struct emit_in *in, const struct server *sv,
    const struct message *m, struct sbuf *out)
{
	const char *a = in->spec->app, *A = in->spec->app_upper;
	const char *S = sv->upper, *M = m->upper;
	char name[GEN_NAME_MAX];

	snprintf(
	    name, sizeof name, "%s_send_%s_%s_after", a, sv->name, m->name);
	butler__gen_sig(out, true, "int", name,
	    "butler_hub *hub, const struct %s_%s *msg, unsigned delay_ms, "
	    "uint64_t *timer",
	    a, m->name);
	butler__gen_sb_puts(out,
	    "{\n\tif (msg == NULL)\n\t\treturn "
	    "BUTLER_EINVAL;\n");
	butler__gen_call(out, "return butler_send_after(",
	    "hub, butler_hub_server(hub, &%s_spec, %s_SERVER_%s), %s_%s_%s, "
	    "msg, sizeof *msg, delay_ms, 0, timer",
	    a, A, S, A, S, M);
	butler__gen_sb_puts(out, "}\n\n");
	if (!m->owned) {
		snprintf(name, sizeof name, "%s_send_%s_%s_every", a, sv->name,
		    m->name);
		butler__gen_sig(out, true, "int", name,
		    "butler_hub *hub, const struct %s_%s *msg, unsigned "
		    "period_ms, uint64_t *timer",
		    a, m->name);
		butler__gen_sb_puts(out,
		    "{\n\tif (msg == NULL || period_ms == 0)\n\t\treturn "
		    "BUTLER_EINVAL;\n");
		butler__gen_call(out, "return butler_send_after(",
		    "hub, butler_hub_server(hub, &%s_spec, %s_SERVER_%s), "
		    "%s_%s_%s, msg, sizeof *msg, period_ms, period_ms, timer",
		    a, A, S, A, S, M);
		butler__gen_sb_puts(out, "}\n\n");
	}
	snprintf(name, sizeof name, "%s_purge_%s_%s", a, sv->name, m->name);
	butler__gen_sig(
	    out, true, "int", name, "butler_hub *hub, uint64_t *purged");
	butler__gen_sb_puts(out, "{\n");
	butler__gen_call(out, "return butler_purge(",
	    "hub, butler_hub_server(hub, &%s_spec, %s_SERVER_%s), "
	    "%s_%s_%s, purged",
	    a, A, S, A, S, M);
	butler__gen_sb_puts(out, "}\n\n");
}

/* send_call emits the typed send and, for a request, call functions of
 * message `m` in server `sv`. */
static void
send_call(const struct emit_in *in, const struct server *sv,
    const struct message *m, struct sbuf *out)
{
	const char *a = in->spec->app, *A = in->spec->app_upper;
	const char *S = sv->upper, *M = m->upper;
	char name[GEN_NAME_MAX];

	snprintf(name, sizeof name, "%s_send_%s_%s", a, sv->name, m->name);
	butler__gen_sig(out, true, "int", name,
	    "butler_hub *hub, const struct %s_%s *msg", a, m->name);
	butler__gen_sb_puts(out,
	    "{\n\tif (msg == NULL)\n\t\treturn "
	    "BUTLER_EINVAL;\n");
	butler__gen_call(out, "return butler_send_spec(",
	    "hub, &%s_spec, %s_SERVER_%s, %s_%s_%s, msg, sizeof *msg", a, A, S,
	    A, S, M);
	butler__gen_sb_puts(out, "}\n\n");
	timers(in, sv, m, out);
	if (!m->request)
		return;

	snprintf(name, sizeof name, "%s_call_%s_%s", a, sv->name, m->name);
	if (m->progress >= 0)
		butler__gen_sig(out, true, "int", name,
		    "butler_hub *hub, const struct %s_%s *msg, int "
		    "timeout_ms, "
		    "%s_%s_reply_fn cb, %s_%s_progress_fn progress_cb, void "
		    "*user, uint64_t *id",
		    a, m->name, a, m->name, a, m->name);
	else
		butler__gen_sig(out, true, "int", name,
		    "butler_hub *hub, const struct %s_%s *msg, int "
		    "timeout_ms, "
		    "%s_%s_reply_fn cb, void *user, uint64_t *id",
		    a, m->name, a, m->name);
	butler__gen_sb_puts(out,
	    "{\n\tif (msg == NULL || cb == NULL)\n"
	    "\t\treturn BUTLER_EINVAL;\n");
	if (m->progress >= 0)
		butler__gen_call(out, "return butler_call_progress(",
		    "hub, butler_hub_server(hub, &%s_spec, %s_SERVER_%s), "
		    "%s_%s_%s, msg, sizeof *msg, timeout_ms, "
		    "%s_%s_reply_thunk_bt_, (void (*)(void))cb, "
		    "%s_%s_progress_thunk_bt_, (void (*)(void))progress_cb, "
		    "user, id",
		    a, A, S, A, S, M, a, m->name, a, m->name);
	else
		butler__gen_call(out, "return butler_call(",
		    "hub, butler_hub_server(hub, &%s_spec, %s_SERVER_%s), "
		    "%s_%s_%s, msg, sizeof *msg, timeout_ms, "
		    "%s_%s_reply_thunk_bt_, (void (*)(void))cb, user, id",
		    a, A, S, A, S, M, a, m->name);
	butler__gen_sb_puts(out, "}\n\n");

	snprintf(
	    name, sizeof name, "%s_call_%s_%s_wait", a, sv->name, m->name);
	butler__gen_sig(out, true, "int", name,
	    "butler_hub *hub, const struct %s_%s *msg, int timeout_ms, struct "
	    "%s_%s *reply",
	    a, m->name, a, in->spec->msgs[m->reply].name);
	butler__gen_sb_puts(out,
	    "{\n\tif (msg == NULL || reply == NULL)\n"
	    "\t\treturn BUTLER_EINVAL;\n");
	butler__gen_call(out, "return butler_call_wait(",
	    "hub, butler_hub_server(hub, &%s_spec, %s_SERVER_%s), %s_%s_%s, "
	    "msg, sizeof *msg, timeout_ms, reply, sizeof *reply",
	    a, A, S, A, S, M);
	butler__gen_sb_puts(out, "}\n\n");
}

/*
 * register_each emits app_S_register_each(): a handler table filled from
 * the arguments. The name is in parentheses because the header also
 * defines a macro of that name; the handlers' parameter names are
 * positional because a message may be called `hub` or `user`.
 */
static void
register_each(
    const struct emit_in *in, const struct server *sv, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app;
	struct sbuf params = { 0 };
	char name[GEN_NAME_MAX];

	snprintf(name, sizeof name, "(%s_%s_register_each)", a, sv->name);
	butler__gen_sb_puts(&params,
	    "butler_hub *hub, void *user, butler_start_fn on_start, "
	    "butler_stop_fn on_stop");
	for (unsigned k = 0; k < sv->n_accepts; k++)
		butler__gen_sb_printf(&params, ", %s_%s_%s_fn h%u_bt_", a,
		    sv->name, s->msgs[sv->accepts[k]].name, k + 1);
	if (params.oom) {
		out->oom = true;
		return;
	}
	butler__gen_emit_sig(out, true, "int", name, params.data);
	butler__gen_sb_release(&params);
	butler__gen_sb_printf(out,
	    "{\n\tstruct %s_%s_handlers h = {\n"
	    "\t\t.on_start = on_start,\n\t\t.on_stop = on_stop,\n",
	    a, sv->name);
	for (unsigned k = 0; k < sv->n_accepts; k++)
		butler__gen_sb_printf(out, "\t\t.%s = h%u_bt_,\n",
		    s->msgs[sv->accepts[k]].name, k + 1);
	butler__gen_sb_printf(out,
	    "\t};\n\n\treturn %s_%s_register(hub, &h, user);\n}\n\n", a,
	    sv->name);
}

/* full_name is the butler_full enumerator of a full policy. */
static const char *
full_name(enum full_kind f)
{
	switch (f) {
	case FULL_FAIL:
		return "BUTLER_FULL_FAIL";
	case FULL_BLOCK:
		return "BUTLER_FULL_BLOCK";
	case FULL_DROP_NEWEST:
		return "BUTLER_FULL_DROP_NEWEST";
	case FULL_DROP_OLDEST:
		return "BUTLER_FULL_DROP_OLDEST";
	case FULL_KEEP_LAST:
		return "BUTLER_FULL_KEEP_LAST";
	}
	return "BUTLER_FULL_FAIL";
}

/* route_name is the butler_route enumerator of a route. */
static const char *
route_name(enum route_kind r)
{
	switch (r) {
	case ROUTE_ROUND_ROBIN:
		return "BUTLER_ROUTE_ROUND_ROBIN";
	case ROUTE_LEAST_LOADED:
		return "BUTLER_ROUTE_LEAST_LOADED";
	case ROUTE_KEY:
		return "BUTLER_ROUTE_KEY";
	}
	return "BUTLER_ROUTE_ROUND_ROBIN";
}

/* key_size is what butler_key_desc.size says for a key field: the C size
 * of an integer, 0 for a string. */
static const char *
key_size(enum ftype t)
{
	switch (t) {
	case FT_BOOL:
		return "sizeof(bool)";
	case FT_I8:
		return "sizeof(int8_t)";
	case FT_I16:
		return "sizeof(int16_t)";
	case FT_I32:
		return "sizeof(int32_t)";
	case FT_I64:
		return "sizeof(int64_t)";
	case FT_U8:
		return "sizeof(uint8_t)";
	case FT_U16:
		return "sizeof(uint16_t)";
	case FT_U32:
		return "sizeof(uint32_t)";
	case FT_U64:
		return "sizeof(uint64_t)";
	case FT_STRING:
	case FT_F32:
	case FT_F64:
	case FT_BYTES:
	case FT_BUF:
	case FT_PTR:
	case FT_MSG:
		break;
	}
	return "0 /* a string */";
}

/*
 * kinds emits server sv's butler_kind_desc table, one entry per kind in
 * accepts order: each entry whole (the server's defaults copied where the
 * spec's "kinds" says nothing), so the runtime reads a kind's entry alone.
 */
static void
kinds(const struct emit_in *in, const struct server *sv, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *A = s->app_upper;

	butler__gen_sb_printf(out,
	    "static const butler_kind_desc %s_%s_kinds_bt_[] = {\n", a,
	    sv->name);
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];
		const struct kind_policy *p = &sv->kinds[k];

		butler__gen_sb_printf(out,
		    "\t[%s_%s_%s - 1] = {\n\t\t.full = %s,\n"
		    "\t\t.block_timeout_ms = %d,\n",
		    A, sv->upper, m->upper, full_name(p->full),
		    p->block_timeout_ms);
		if (sv->route == ROUTE_KEY) {
			const struct field *f = &m->fields[p->key_field];

			butler__gen_sb_printf(out,
			    "\t\t.key = { offsetof(struct %s_%s, %s),\n"
			    "\t\t\t%s },\n",
			    a, m->name, f->name, key_size(f->type));
		} else {
			butler__gen_sb_puts(out, "\t\t.key = { 0, 0 },\n");
		}
		butler__gen_sb_printf(out, "\t\t.max_handler_ms = %u,\n\t},\n",
		    p->max_handler_ms);
	}
	butler__gen_sb_puts(out, "};\n\n");
}

static void
server(const struct emit_in *in, unsigned id, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const struct server *sv = &s->srvs[id];
	const char *a = s->app, *A = s->app_upper, *S = sv->upper;
	char name[GEN_NAME_MAX];

	butler__gen_sb_printf(out, "/* Server '%s'. */\n\n", sv->name);
	snprintf(name, sizeof name, "%s_%s_register", a, sv->name);
	butler__gen_sig(out, true, "int", name,
	    "butler_hub *hub, const struct %s_%s_handlers *h, void *user", a,
	    sv->name);
	butler__gen_sb_puts(
	    out, "{\n\tif (h == NULL)\n\t\treturn BUTLER_EINVAL;\n");
	butler__gen_call(out, "return butler_hub_set_handlers(",
	    "hub, butler_hub_server(hub, &%s_spec, %s_SERVER_%s), h, "
	    "sizeof *h, h->on_start, h->on_stop, user",
	    a, A, S);
	butler__gen_sb_puts(out, "}\n\n");

	register_each(in, sv, out);
	for (unsigned k = 0; k < sv->n_accepts; k++)
		send_call(in, sv, &s->msgs[sv->accepts[k]], out);

	snprintf(name, sizeof name, "%s_send_%s", a, sv->name);
	butler__gen_sig(out, true, "int", name,
	    "butler_hub *hub, const struct %s_%s_msg *msg", a, sv->name);
	butler__gen_sb_printf(out,
	    "{\n%s\tif (msg == NULL)\n\t\treturn BUTLER_EINVAL;\n"
	    "\tswitch (msg->kind) {\n\tcase %s_%s_NONE:\n\t\tbreak;\n",
	    sv->n_accepts ? "" : "\t(void)hub; /* accepts nothing */\n", A, S);
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];
		char head[GEN_NAME_MAX], args[GEN_NAME_MAX];

		butler__gen_sb_printf(
		    out, "\tcase %s_%s_%s:\n", A, S, m->upper);
		snprintf(head, sizeof head, "return %s_send_%s_%s(", a,
		    sv->name, m->name);
		snprintf(args, sizeof args, "hub, &msg->u.%s", m->name);
		butler__gen_emit_call(out, 2, head, args, ");\n");
	}
	butler__gen_sb_puts(out, "\t}\n\treturn BUTLER_EKIND;\n}\n\n");

	snprintf(name, sizeof name, "%s_%s_msg_destroy", a, sv->name);
	butler__gen_sig(
	    out, true, "void", name, "struct %s_%s_msg *msg", a, sv->name);
	butler__gen_sb_printf(out,
	    "{\n\tif (msg == NULL)\n\t\treturn;\n"
	    "\tswitch (msg->kind) {\n\tcase %s_%s_NONE:\n\t\tbreak;\n",
	    A, S);
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];

		butler__gen_sb_printf(out,
		    "\tcase %s_%s_%s:\n\t\t%s_%s_destroy(&msg->u.%s);\n"
		    "\t\tbreak;\n",
		    A, S, m->upper, a, m->name, m->name);
	}
	butler__gen_sb_puts(out, "\t}\n}\n\n");

	/* The dispatcher: no default, so -Wswitch-enum flags a kind without
	 * a case; a kind outside the enum falls out of the switch. (h->M)
	 * keeps a function-like macro named M from expanding. */
	snprintf(name, sizeof name, "%s_%s_dispatch_bt_", a, sv->name);
	butler__gen_sig(out, true, "static int", name,
	    "butler_server *self, const void *handlers, void *user, unsigned "
	    "kind, void *msg");
	if (sv->n_accepts > 0)
		butler__gen_sb_printf(out,
		    "{\n\tconst struct %s_%s_handlers *h = handlers;\n\n", a,
		    sv->name);
	else
		butler__gen_sb_puts(out,
		    "{\n\t/* accepts nothing */\n\t(void)self;\n"
		    "\t(void)handlers;\n\t(void)user;\n\t(void)msg;\n\n");
	butler__gen_sb_printf(out,
	    "\tswitch ((enum %s_%s_kind)kind) {\n\tcase %s_%s_NONE:\n"
	    "\t\tbreak;\n",
	    a, sv->name, A, S);
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];

		butler__gen_sb_printf(out,
		    "\tcase %s_%s_%s:\n\t\treturn (h->%s)(self, user, msg);\n",
		    A, S, m->upper, m->name);
	}
	butler__gen_sb_puts(out, "\t}\n\treturn BUTLER_EKIND;\n}\n\n");

	snprintf(name, sizeof name, "%s_%s_check_bt_", a, sv->name);
	butler__gen_sig(
	    out, true, "static const char *", name, "const void *handlers");
	if (sv->n_accepts > 0)
		butler__gen_sb_printf(out,
		    "{\n\tconst struct %s_%s_handlers *h = handlers;\n\n", a,
		    sv->name);
	else
		butler__gen_sb_puts(
		    out, "{\n\t(void)handlers; /* accepts nothing */\n");
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];

		butler__gen_sb_printf(out,
		    "\tif (h->%s == NULL)\n\t\treturn \"%s\";\n", m->name,
		    m->name);
	}
	butler__gen_sb_puts(out, "\treturn NULL;\n}\n\n");

	if (sv->n_accepts == 0)
		return; /* C has no empty array: .accepts is NULL */
	butler__gen_sb_printf(out,
	    "static const unsigned %s_%s_accepts_bt_[] = {\n", a, sv->name);
	for (unsigned k = 0; k < sv->n_accepts; k++)
		butler__gen_sb_printf(
		    out, "\t%s_MSG_%s,\n", A, s->msgs[sv->accepts[k]].upper);
	butler__gen_sb_puts(out, "};\n\n");
	if (sv->emit_kinds)
		kinds(in, sv, out);
}

static void
descriptors(const struct emit_in *in, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *A = s->app_upper;

	butler__gen_sb_printf(out,
	    "static const butler_msg_desc "
	    "%s_messages_bt_[%s_MSG_COUNT] = {\n",
	    a, A);
	for (unsigned i = 0; i < s->n_msgs; i++) {
		const struct message *m = &s->msgs[i];

		butler__gen_sb_printf(out,
		    "\t[%s_MSG_%s] = {\n\t\t.name = \"%s\",\n"
		    "\t\t.size = sizeof(struct %s_%s),\n",
		    A, m->upper, m->name, a, m->name);
		if (m->owned)
			butler__gen_sb_printf(out,
			    "\t\t.destroy = %s_%s_destroy_bt_,\n", a, m->name);
		else
			butler__gen_sb_puts(out, "\t\t.destroy = NULL,\n");
		if (m->reply >= 0)
			butler__gen_sb_printf(out, "\t\t.reply = %s_MSG_%s,\n",
			    A, s->msgs[m->reply].upper);
		else
			butler__gen_sb_puts(out, "\t\t.reply = -1,\n");
		if (m->progress >= 0)
			butler__gen_sb_printf(out,
			    "\t\t.progress = %s_MSG_%s,\n", A,
			    s->msgs[m->progress].upper);
		else
			butler__gen_sb_puts(out, "\t\t.progress = -1,\n");
		butler__gen_sb_printf(out, "\t\t.flags = %s,\n",
		    m->progress_latest ? "BUTLER_MSG_PROGRESS_LATEST" : "0");
		if (m->wire)
			butler__gen_sb_printf(out,
			    "\t\t.wire_size = %s_%s_wire_size_bt_,\n"
			    "\t\t.encode = %s_%s_encode_bt_,\n"
			    "\t\t.decode = %s_%s_decode_bt_,\n",
			    a, m->name, a, m->name, a, m->name);
		else
			butler__gen_sb_puts(out,
			    "\t\t.wire_size = NULL, /* holds a ptr */\n"
			    "\t\t.encode = NULL,\n\t\t.decode = NULL,\n");
		butler__gen_sb_puts(out, "\t},\n");
	}
	butler__gen_sb_puts(out, "};\n\n");

	butler__gen_sb_printf(out,
	    "static const butler_server_desc "
	    "%s_servers_bt_[%s_SERVER_COUNT] = {\n",
	    a, A);
	for (unsigned i = 0; i < s->n_srvs; i++) {
		const struct server *sv = &s->srvs[i];
		char accepts[GEN_NAME_MAX + 32] = "NULL";
		char kinds_name[GEN_NAME_MAX + 32] = "NULL";
		char tick[2 * GEN_NAME_MAX + 32] = "0";
		char instances[32] = "BUTLER_INSTANCES_AUTO";

		if (sv->instances != BUTLER_INSTANCES_AUTO)
			snprintf(
			    instances, sizeof instances, "%u", sv->instances);
		if (sv->n_accepts > 0)
			snprintf(accepts, sizeof accepts, "%s_%s_accepts_bt_",
			    a, sv->name);
		if (sv->emit_kinds && sv->n_accepts > 0)
			snprintf(kinds_name, sizeof kinds_name,
			    "%s_%s_kinds_bt_", a, sv->name);
		if (sv->tick_kind > 0)
			snprintf(tick, sizeof tick, "%s_%s_%s", A, sv->upper,
			    s->msgs[sv->accepts[sv->tick_kind - 1]].upper);
		butler__gen_sb_printf(out,
		    "\t[%s_SERVER_%s] = {\n\t\t.name = \"%s\",\n"
		    "\t\t.loop = %s,\n\t\t.instances = %s,\n"
		    "\t\t.capacity = %u,\n\t\t.full = %s,\n"
		    "\t\t.block_timeout_ms = %d,\n"
		    "\t\t.accepts = %s,\n"
		    "\t\t.n_accepts = %u,\n"
		    "\t\t.handlers_size = sizeof(struct %s_%s_handlers),\n"
		    "\t\t.check = %s_%s_check_bt_,\n"
		    "\t\t.dispatch = %s_%s_dispatch_bt_,\n"
		    "\t\t.route = %s,\n"
		    "\t\t.share = %u,\n"
		    "\t\t.kinds = %s,\n"
		    "\t\t.max_queued = %u,\n"
		    "\t\t.max_handler_ms = %u,\n"
		    "\t\t.tick_kind = %s,\n"
		    "\t\t.tick_ms = %u,\n"
		    "\t\t.flags = %s,\n\t},\n",
		    A, sv->upper, sv->name,
		    sv->loop == LOOP_EXTERNAL ? "BUTLER_LOOP_EXTERNAL"
		                              : "BUTLER_LOOP_THREAD",
		    instances, sv->capacity, full_name(sv->full),
		    sv->block_timeout_ms, accepts, sv->n_accepts, a, sv->name,
		    a, sv->name, a, sv->name, route_name(sv->route),
		    sv->share ? 1u : 0u, kinds_name, sv->max_queued,
		    sv->max_handler_ms, tick, sv->tick_ms,
		    sv->remote ? "BUTLER_SERVER_REMOTE" : "0");
	}
	butler__gen_sb_puts(out, "};\n\n");

	if (s->n_imports > 0) {
		butler__gen_sb_printf(out,
		    "/* The specs %s imports: the hub runs their servers too. "
		    "*/\nstatic const butler_spec *const %s_imports_bt_[] = "
		    "{\n",
		    a, a);
		for (unsigned k = 0; k < s->n_imports; k++)
			butler__gen_sb_printf(
			    out, "\t&%s_spec,\n", in->imports[k].app);
		butler__gen_sb_puts(out, "};\n\n");
	}
	butler__gen_sb_printf(out,
	    "const butler_spec %s_spec = {\n"
	    "\t.abi = BUTLER_GEN_ABI,\n\t.app = \"%s\",\n"
	    "\t.messages = %s_messages_bt_,\n"
	    "\t.n_messages = %s_MSG_COUNT,\n"
	    "\t.servers = %s_servers_bt_,\n"
	    "\t.n_servers = %s_SERVER_COUNT,\n",
	    a, a, a, A, a, A);
	if (s->n_imports > 0)
		butler__gen_sb_printf(out,
		    "\t.imports = %s_imports_bt_,\n\t.n_imports = %u,\n", a,
		    s->n_imports);
	else
		butler__gen_sb_puts(
		    out, "\t.imports = NULL,\n\t.n_imports = 0,\n");
	butler__gen_sb_printf(out, "\t.wire_hash = %s_WIRE_HASH,\n", A);
	if (s->version != NULL) {
		butler__gen_sb_puts(out, "\t.version = \"");
		butler__gen_emit_cstr(out, s->version);
		butler__gen_sb_puts(out, "\",\n};\n");
	} else {
		butler__gen_sb_puts(out, "\t.version = NULL,\n};\n");
	}
}

/* size_asserts checks, on the compiler's own sizeof, the limit butler-gen
 * checked on LP64 sizes. */
static void
size_asserts(const struct emit_in *in, struct sbuf *out)
{
	const struct spec *s = in->spec;

	butler__gen_sb_puts(out,
	    "/* butler_hub_new() refuses a message larger than "
	    "BUTLER_MAX_MESSAGE_SIZE. */\n");
	for (unsigned i = 0; i < s->n_msgs; i++)
		butler__gen_sb_printf(out,
		    "_Static_assert(sizeof(struct %s_%s) <= "
		    "BUTLER_MAX_MESSAGE_SIZE,\n\t\"message '%s' is larger "
		    "than "
		    "BUTLER_MAX_MESSAGE_SIZE\");\n",
		    s->app, s->msgs[i].name, s->msgs[i].name);
	butler__gen_sb_puts(out, "\n");
}

void
butler__gen_emit_source(const struct emit_in *in, struct sbuf *out)
{
	butler__gen_emit_banner(in, out);
	butler__gen_sb_printf(out,
	    "#include \"%s\"\n\n#include <stdlib.h>\n#include <string.h>\n\n"
	    "#include <butler/wire.h>\n\n",
	    in->header_name);
	size_asserts(in, out);
	destructors(in, out);
	butler__gen_emit_wire_source(in, out);
	requests(in, out);
	for (unsigned i = 0; i < in->spec->n_srvs; i++)
		server(in, i, out);
	descriptors(in, out);
}
