/*
 * codegen/emit_header.c — the generated header: types, the tagged union
 * and handler table of each server, and the prototypes of the typed send,
 * call, reply and destroy functions. The naming scheme is the one
 * include/butler/gen.h documents.
 */
#include "emit.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* GEN_NAME_MAX is enough for any generated identifier: three names of at
 * most SPEC_NAME_MAX characters and a fixed part. */
#define GEN_NAME_MAX (4 * SPEC_NAME_MAX)

static void
guard(const struct emit_in *in, struct sbuf *out)
{
	const char *h = in->header_name;

	/* "my-app.butler.h" gives MY_APP_BUTLER_H; a leading digit gets a
	 * prefix so the guard stays an identifier. */
	if (isdigit((unsigned char)h[0]))
		butler__gen_sb_puts(out, "BUTLER_GEN_");
	for (; *h != '\0'; h++) {
		char c = isalnum((unsigned char)*h)
		    ? (char)toupper((unsigned char)*h)
		    : '_';

		butler__gen_sb_putn(out, &c, 1);
	}
}

static void
field_line(const struct emit_in *in, const struct field *f, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *ct = butler__gen_ctype(f->type);

	switch (f->type) {
	case FT_STRING:
		butler__gen_sb_printf(out,
		    "\tchar *%s; /* owned: NUL-terminated, "
		    "freed with free() */\n",
		    f->name);
		return;
	case FT_BYTES:
		butler__gen_sb_printf(out,
		    "\tstruct %s_bytes %s; /* owned: data "
		    "freed with free() */\n",
		    s->app, f->name);
		return;
	case FT_BUF:
		butler__gen_sb_printf(out,
		    "\tstruct %s_buf %s; /* shared: "
		    "released through its free_fn */\n",
		    s->app, f->name);
		return;
	case FT_PTR:
		butler__gen_sb_printf(out,
		    "\tvoid *%s; /* not owned: never freed "
		    "by butler */\n",
		    f->name);
		return;
	case FT_MSG:
		butler__gen_sb_printf(out, "\tstruct %s_%s %s;\n", s->app,
		    s->msgs[f->msg].name, f->name);
		return;
	case FT_BOOL:
	case FT_I8:
	case FT_I16:
	case FT_I32:
	case FT_I64:
	case FT_U8:
	case FT_U16:
	case FT_U32:
	case FT_U64:
	case FT_F32:
	case FT_F64:
		break;
	}
	butler__gen_sb_printf(out, "\t%s %s;\n", ct, f->name);
}

static void
ids(const struct emit_in *in, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *A = s->app_upper;

	butler__gen_sb_printf(out,
	    "/* %s_msg_id numbers the messages in spec "
	    "order: the index in %s_spec. */\n"
	    "enum %s_msg_id {\n",
	    a, a, a);
	for (unsigned i = 0; i < s->n_msgs; i++)
		butler__gen_sb_printf(
		    out, "\t%s_MSG_%s = %u,\n", A, s->msgs[i].upper, i);
	butler__gen_sb_printf(out,
	    "};\n\n/* %s_MSG_COUNT is the number of "
	    "message types. */\n#define %s_MSG_COUNT %u\n\n",
	    A, A, s->n_msgs);
	butler__gen_sb_printf(out,
	    "/* %s_server_id numbers the servers in spec "
	    "order: the server argument of the runtime. */\n"
	    "enum %s_server_id {\n",
	    a, a);
	for (unsigned i = 0; i < s->n_srvs; i++)
		butler__gen_sb_printf(
		    out, "\t%s_SERVER_%s = %u,\n", A, s->srvs[i].upper, i);
	butler__gen_sb_printf(out,
	    "};\n\n/* %s_SERVER_COUNT is the number of "
	    "servers. */\n#define %s_SERVER_COUNT %u\n\n",
	    A, A, s->n_srvs);
}

static void
shared_types(const struct emit_in *in, struct sbuf *out)
{
	const char *a = in->spec->app;

	if (in->spec->uses_bytes)
		butler__gen_sb_printf(out,
		    "/*\n * %s_bytes is an owned byte string: `data` "
		    "comes from malloc() (or is NULL)\n * and is freed "
		    "with free() when the message is destroyed.\n */\n"
		    "struct %s_bytes {\n\tuint8_t *data;\n\tsize_t len;\n"
		    "};\n\n",
		    a, a);
	if (in->spec->uses_buf)
		butler__gen_sb_printf(out,
		    "/*\n * %s_buf is a buffer handed over without "
		    "copying. Destroying the message\n * calls "
		    "free_fn(data, ctx) once, when free_fn is not NULL; "
		    "a sender that\n * keeps the buffer alive passes a "
		    "free_fn that drops a reference.\n */\n"
		    "struct %s_buf {\n\tvoid *data;\n\tsize_t len;\n"
		    "\tvoid (*free_fn)(void *data, void *ctx);\n"
		    "\tvoid *ctx;\n};\n\n",
		    a, a);
}

static void
message(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX], title[GEN_NAME_MAX];

	snprintf(title, sizeof title, "%s_%s is message '%s'.", s->app,
	    m->name, m->name);
	butler__gen_emit_doc(out, 0, title, m->doc);
	butler__gen_sb_printf(out, "struct %s_%s {\n", s->app, m->name);
	for (unsigned k = 0; k < m->n_fields; k++)
		field_line(in, &m->fields[k], out);
	if (m->n_fields == 0)
		butler__gen_sb_puts(out,
		    "\tchar empty_bt_; /* ISO C has no "
		    "empty structs */\n");
	butler__gen_sb_puts(out, "};\n\n");

	butler__gen_sb_printf(out,
	    "/*\n * %s_%s_destroy frees the owned fields of *msg and "
	    "sets them to NULL,\n * recursing into nested messages%s. "
	    "The struct itself is not freed. NULL\n * is a no-op. The "
	    "hub calls it for messages it owns; call it for a\n * "
	    "message you own, e.g. after a failed send.\n */\n",
	    s->app, m->name, m->owned ? "" : " (it has none: a no-op)");
	snprintf(name, sizeof name, "%s_%s_destroy", s->app, m->name);
	snprintf(params, sizeof params, "struct %s_%s *msg", s->app, m->name);
	butler__gen_emit_sig(out, false, "void", name, params);
	butler__gen_sb_puts(out, "\n");
}

static void
request(const struct emit_in *in, const struct message *m, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const struct message *r = &s->msgs[m->reply];
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX];

	butler__gen_sb_printf(out,
	    "/*\n * %s_%s_reply_fn receives the one answer to a call of "
	    "'%s', on the\n * calling server's thread: status BUTLER_OK "
	    "with the reply, or\n * BUTLER_ETIMEDOUT, BUTLER_ECLOSED or "
	    "BUTLER_ECANCELED with reply NULL.\n * The reply is "
	    "destroyed when the callback returns: move out (and set\n "
	    "* to NULL) any owned field you keep.\n */\n",
	    s->app, m->name, m->name);
	snprintf(params, sizeof params,
	    "typedef void (*%s_%s_reply_fn)(butler_server *self, int "
	    "status, struct %s_%s *reply, void *user);\n\n",
	    s->app, m->name, s->app, r->name);
	if (strlen(params) > 81)
		snprintf(params, sizeof params,
		    "typedef void (*%s_%s_reply_fn)(\n\tbutler_server "
		    "*self, int status, struct %s_%s *reply, void "
		    "*user);\n\n",
		    s->app, m->name, s->app, r->name);
	butler__gen_sb_puts(out, params);

	butler__gen_sb_printf(out,
	    "/*\n * %s_reply_%s answers the '%s' request that `self` is "
	    "handling now with\n * *reply (copied). On BUTLER_OK the hub "
	    "owns the reply's owned fields;\n * on failure you still "
	    "do. The handling server's thread only.\n */\n",
	    s->app, m->name, m->name);
	snprintf(name, sizeof name, "%s_reply_%s", s->app, m->name);
	snprintf(params, sizeof params,
	    "butler_server *self, const struct %s_%s *reply", s->app, r->name);
	butler__gen_emit_sig(out, false, "int", name, params);
	butler__gen_sb_puts(out, "\n");
}

static void
server(const struct emit_in *in, const struct server *sv, struct sbuf *out)
{
	const struct spec *s = in->spec;
	const char *a = s->app, *A = s->app_upper;
	char name[GEN_NAME_MAX], params[2 * GEN_NAME_MAX], title[GEN_NAME_MAX];

	snprintf(title, sizeof title, "Server '%s': %s, %u instance%s.",
	    sv->name, sv->loop == LOOP_EXTERNAL ? "external loop" : "thread",
	    sv->instances, sv->instances == 1 ? "" : "s");
	butler__gen_emit_doc(out, 0, title, sv->doc);
	butler__gen_sb_printf(out,
	    "\n/* %s_%s_kind says which message a %s_%s_msg "
	    "holds; NONE (0) is none. */\n"
	    "enum %s_%s_kind {\n\t%s_%s_NONE = 0,\n",
	    a, sv->name, a, sv->name, a, sv->name, A, sv->upper);
	for (unsigned k = 0; k < sv->n_accepts; k++)
		butler__gen_sb_printf(out, "\t%s_%s_%s = %u,\n", A, sv->upper,
		    s->msgs[sv->accepts[k]].upper, k + 1);
	butler__gen_sb_puts(out, "};\n\n");

	butler__gen_sb_printf(out,
	    "/* %s_%s_msg is any message server '%s' "
	    "accepts. */\nstruct %s_%s_msg {\n"
	    "\tenum %s_%s_kind kind;\n\tunion {\n",
	    a, sv->name, sv->name, a, sv->name, a, sv->name);
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];

		butler__gen_sb_printf(
		    out, "\t\tstruct %s_%s %s;\n", a, m->name, m->name);
	}
	butler__gen_sb_puts(out, "\t} u;\n};\n\n");

	butler__gen_sb_printf(out,
	    "/*\n * %s_%s_handlers is the handler table of server '%s'. "
	    "on_start and\n * on_stop may be NULL; every message needs a "
	    "handler, or butler_hub_start()\n * fails with "
	    "BUTLER_ENOHANDLER. A handler runs on the server's thread "
	    "and\n * returns 0 or an error code; the hub destroys *msg "
	    "after it returns, so\n * move out (and set to NULL) any "
	    "owned field you keep.\n */\nstruct %s_%s_handlers {\n"
	    "\tbutler_start_fn on_start;\n\tbutler_stop_fn on_stop;\n",
	    a, sv->name, sv->name, a, sv->name);
	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];

		snprintf(params, sizeof params,
		    "\tint (*%s)(butler_server *self, void *user, struct "
		    "%s_%s *msg);\n",
		    m->name, a, m->name);
		if (strlen(params) > 80)
			snprintf(params, sizeof params,
			    "\tint (*%s)(butler_server *self, void "
			    "*user,\n\t\tstruct %s_%s *msg);\n",
			    m->name, a, m->name);
		butler__gen_sb_puts(out, params);
	}
	butler__gen_sb_puts(out, "};\n\n");

	butler__gen_sb_printf(out,
	    "/*\n * %s_%s_register installs handler table "
	    "*h (copied) and `user`, passed\n * to every "
	    "handler, for server '%s'. Before "
	    "butler_hub_start() only.\n */\n",
	    a, sv->name, sv->name);
	snprintf(name, sizeof name, "%s_%s_register", a, sv->name);
	snprintf(params, sizeof params,
	    "butler_hub *hub, const struct %s_%s_handlers *h, void *user", a,
	    sv->name);
	butler__gen_emit_sig(out, false, "int", name, params);
	butler__gen_sb_puts(out, "\n");

	for (unsigned k = 0; k < sv->n_accepts; k++) {
		const struct message *m = &s->msgs[sv->accepts[k]];

		butler__gen_sb_printf(out,
		    "/*\n * %s_send_%s_%s sends *msg (copied) to server "
		    "'%s'. On BUTLER_OK the hub\n * owns its owned "
		    "fields; on failure (BUTLER_EFULL, BUTLER_ECLOSED, "
		    "...) you\n * still do. Any thread.\n */\n",
		    a, sv->name, m->name, sv->name);
		snprintf(
		    name, sizeof name, "%s_send_%s_%s", a, sv->name, m->name);
		snprintf(params, sizeof params,
		    "butler_hub *hub, const struct %s_%s *msg", a, m->name);
		butler__gen_emit_sig(out, false, "int", name, params);
		butler__gen_sb_puts(out, "\n");
		if (!m->request)
			continue;
		butler__gen_sb_printf(out,
		    "/*\n * %s_call_%s_%s sends request *msg to server "
		    "'%s'; its answer comes\n * back once to cb on the "
		    "calling server's thread, after at most\n * "
		    "timeout_ms (-1: no timeout). *id (may be NULL) names "
		    "the request for\n * butler_cancel(). Ownership as "
		    "%s_send_%s_%s(). A butler server's\n * thread only "
		    "(a handler, on_start, or an external drain).\n */\n",
		    a, sv->name, m->name, sv->name, a, sv->name, m->name);
		snprintf(
		    name, sizeof name, "%s_call_%s_%s", a, sv->name, m->name);
		snprintf(params, sizeof params,
		    "butler_hub *hub, const struct %s_%s *msg, int "
		    "timeout_ms, %s_%s_reply_fn cb, void *user, "
		    "uint64_t *id",
		    a, m->name, a, m->name);
		butler__gen_emit_sig(out, false, "int", name, params);
		butler__gen_sb_puts(out, "\n");
	}

	butler__gen_sb_printf(out,
	    "/*\n * %s_send_%s sends the message *msg "
	    "holds, as the matching\n * %s_send_%s_...() "
	    "does; BUTLER_EKIND for kind NONE. Any "
	    "thread.\n */\n",
	    a, sv->name, a, sv->name);
	snprintf(name, sizeof name, "%s_send_%s", a, sv->name);
	snprintf(params, sizeof params,
	    "butler_hub *hub, const struct %s_%s_msg *msg", a, sv->name);
	butler__gen_emit_sig(out, false, "int", name, params);
	butler__gen_sb_puts(out, "\n");

	butler__gen_sb_printf(out,
	    "/* %s_%s_msg_destroy destroys the message *msg "
	    "holds. NULL is a no-op. */\n",
	    a, sv->name);
	snprintf(name, sizeof name, "%s_%s_msg_destroy", a, sv->name);
	snprintf(params, sizeof params, "struct %s_%s_msg *msg", a, sv->name);
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
	butler__gen_emit_doc(out, 0, title, s->doc);
	butler__gen_sb_puts(out, "#ifndef ");
	guard(in, out);
	butler__gen_sb_puts(out, "\n#define ");
	guard(in, out);
	butler__gen_sb_puts(out,
	    "\n\n#include <stdbool.h>\n#include "
	    "<stddef.h>\n#include <stdint.h>\n\n"
	    "#include <butler/butler.h>\n\n");
	butler__gen_sb_puts(
	    out, "#if BUTLER_GEN_ABI != 1\n#error \"regenerate ");
	butler__gen_emit_cstr(out, in->spec_path);
	butler__gen_sb_puts(out,
	    " with the butler-gen of the butler you "
	    "build against (this file is for "
	    "BUTLER_GEN_ABI 1)\"\n#endif\n\n");
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
	butler__gen_sb_printf(out,
	    "/*\n * %s_spec is the descriptor table of app "
	    "'%s': create a hub with\n * "
	    "butler_hub_new(&hub, &%s_spec).\n */\n"
	    "extern const butler_spec %s_spec;\n\n",
	    s->app, s->app, s->app, s->app);
	butler__gen_sb_puts(
	    out, "#ifdef __cplusplus\n}\n#endif\n\n#endif /* ");
	guard(in, out);
	butler__gen_sb_puts(out, " */\n");
}
