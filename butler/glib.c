/*
 * glib.c — the GLib main-context adapter: a GSource around an external-loop
 * server's fd. prepare() asks the hub when a request the server made will
 * time out, so GLib sleeps exactly until then or until the fd wakes it;
 * dispatch() drains one bounded batch.
 */
#include <butler/glib.h>

struct butler_source {
	GSource source;
	butler_hub *hub;
	unsigned server;
	unsigned batch;
	gpointer tag; /* the fd's poll record */
};

static gboolean
source_prepare(GSource *source, gint *timeout)
{
	struct butler_source *s = (struct butler_source *)source;

	*timeout = butler_server_next_timeout(s->hub, s->server);
	return *timeout == 0;
}

static gboolean
source_check(GSource *source)
{
	struct butler_source *s = (struct butler_source *)source;

	return (g_source_query_unix_fd(source, s->tag) & G_IO_IN) != 0
	    || butler_server_next_timeout(s->hub, s->server) == 0;
}

static gboolean
source_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
	struct butler_source *s = (struct butler_source *)source;
	int rv;

	(void)callback;
	(void)data;
	rv = butler_server_drain(s->hub, s->server, s->batch, NULL);
	/* ECLOSED: the hub stopped; ESTATE: not started yet (keep waiting). */
	return rv == BUTLER_ECLOSED ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
	.prepare = source_prepare,
	.check = source_check,
	.dispatch = source_dispatch,
};

int
butler_glib_attach(butler_hub *hub, unsigned server, GMainContext *context,
    unsigned batch, GSource **out)
{
	struct butler_source *s;
	int fd = butler_server_fd(hub, server);

	if (out != NULL)
		*out = NULL;
	if (fd < 0)
		return BUTLER_EINVAL;
	s = (struct butler_source *)g_source_new(&source_funcs, sizeof *s);
	if (s == NULL)
		return BUTLER_ENOMEM;
	s->hub = hub;
	s->server = server;
	s->batch = batch;
	s->tag = g_source_add_unix_fd(&s->source, fd, G_IO_IN);
	g_source_set_name(&s->source, "butler");
	g_source_set_priority(&s->source, BUTLER_GLIB_PRIORITY);
	g_source_attach(&s->source, context);
	if (out != NULL)
		*out = &s->source;
	else
		g_source_unref(&s->source);
	return BUTLER_OK;
}
