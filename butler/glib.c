/* SPDX-License-Identifier: MIT */
/*
 * glib.c — the GLib main-context adapter: a GSource around an external-loop
 * server's fd. prepare() asks the hub when a request the server made will
 * time out, so GLib sleeps exactly until then or until the fd wakes it;
 * dispatch() drains one bounded batch. And the GObject bindings: deliveries
 * that run only while a GObject is alive, and calls that its disposal
 * cancels.
 */
#include <butler/glib.h>

#include <glib-object.h>
#include <pthread.h>
#include <stdatomic.h>

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

/* ---- bindings: deliveries while a GObject lives ----------------------- */

/*
 * A binding to a GObject for any number of deliveries: a GWeakRef, which is
 * thread-safe (unlike g_object_weak_ref()), and a count of references, one
 * per send that holds it plus the creator's.
 */
struct object_binding {
	butler_binding base; /* first: what the hub is given */
	atomic_uint refs;
	GWeakRef object;
};

static void *
object_enter(butler_binding *self)
{
	struct object_binding *b = (struct object_binding *)self;

	return g_weak_ref_get(&b->object); /* a strong reference, or NULL */
}

/* Drops the reference enter() took. It may be the last: the object is then
 * finalized here, which may end this very delivery's binding (see
 * watcher_gone()), so self is not touched after. */
static void
object_leave(butler_binding *self, void *token)
{
	(void)self;
	g_object_unref(token);
}

static void
object_release(butler_binding *self)
{
	struct object_binding *b = (struct object_binding *)self;

	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	g_weak_ref_clear(&b->object);
	g_free(b);
}

int
butler_glib_binding_new(butler_binding **out, gpointer object)
{
	struct object_binding *b;

	*out = NULL;
	if (object == NULL || !G_IS_OBJECT(object))
		return BUTLER_EINVAL;
	b = g_try_new0(struct object_binding, 1);
	if (b == NULL)
		return BUTLER_ENOMEM;
	b->base.enter = object_enter;
	b->base.leave = object_leave;
	b->base.release = object_release;
	atomic_init(&b->refs, 1);
	g_weak_ref_init(&b->object, object);
	*out = &b->base;
	return BUTLER_OK;
}

butler_binding *
butler_glib_binding_ref(butler_binding *binding)
{
	struct object_binding *b = (struct object_binding *)binding;

	if (binding == NULL)
		return NULL;
	g_return_val_if_fail(binding->enter == object_enter, binding);
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return binding;
}

void
butler_glib_binding_unref(butler_binding *binding)
{
	if (binding == NULL)
		return;
	g_return_if_fail(binding->enter == object_enter);
	object_release(binding);
}

int
butler_glib_send_for(butler_hub *hub, unsigned server, unsigned kind,
    const void *msg, size_t size, gpointer object)
{
	butler_binding *b;
	int rv = butler_glib_binding_new(&b, object);

	if (rv != BUTLER_OK)
		return rv;
	rv = butler_send_bound(hub, server, kind, msg, size, b);
	if (!butler_taken(rv))
		butler_glib_binding_unref(b); /* still ours: the only one */
	return rv;
}

/* ---- bound calls: the object's disposal cancels them ------------------ */

/*
 * One watcher per GObject that has calls bound to it, found through the
 * object's qdata (under watchers_lock, so two threads binding calls to one
 * object share one watcher). It holds the object's one weak notify,
 * added with the watcher and never removed: g_object_weak_unref() on an
 * object that another thread may be disposing is a use after free, and
 * one from inside the disposal warns and leaves the notify to run anyway.
 * So a call that ends only unlinks itself from the watcher, under its
 * lock, and the notify, when the object is disposed, marks the watcher
 * dead (deliveries stop at once, even during g_object_run_dispose(), when
 * the GWeakRef still answers) and cancels the calls made on its own
 * thread. The watcher is counted: one reference for the object (dropped
 * by the notify), one per bound call (dropped when it ends).
 */
struct watcher {
	atomic_uint refs;
	atomic_bool dead; /* the object is being disposed */
	GWeakRef object;
	pthread_mutex_t lock;     /* the list below */
	struct bound_call *calls; /* open calls bound to the object */
};

/* One bound call: its binding, owned by the hub until the call ends. */
struct bound_call {
	butler_binding base; /* first: what the hub is given */
	struct watcher *w;
	butler_hub *hub;
	uint64_t id;
	GThread *thread; /* the one that made the call */
	/* In a list of w's (under w->lock), or in none: prev NULL. */
	struct bound_call *next, **prev;
};

/* The objects' qdata that leads to their watchers. pthread mutexes, not
 * GMutex: ThreadSanitizer sees these (GLib's futexes it cannot). */
static pthread_mutex_t watchers_lock = PTHREAD_MUTEX_INITIALIZER;

static GQuark
watcher_quark(void)
{
	static gsize quark;

	if (g_once_init_enter(&quark))
		g_once_init_leave(&quark,
		    (gsize)g_quark_from_static_string("butler-glib-watcher"));
	return (GQuark)quark;
}

static void
watcher_unref(struct watcher *w)
{
	if (atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) != 1)
		return;
	g_weak_ref_clear(&w->object);
	pthread_mutex_destroy(&w->lock);
	g_free(w);
}

static void
unlink_call(struct bound_call *c)
{
	if (c->prev == NULL)
		return;
	*c->prev = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = NULL;
	c->prev = NULL;
}

static void
push_call(struct bound_call **list, struct bound_call *c)
{
	c->next = *list;
	c->prev = list;
	if (*list != NULL)
		(*list)->prev = &c->next;
	*list = c;
}

/*
 * The object is being disposed, on this thread: no delivery for its calls
 * from now on, and the calls this thread made are cancelled here (their
 * callbacks silent: enter() finds the watcher dead). The calls are moved
 * to a list of this frame's and cancelled one at a time, the lock let go
 * for each butler_cancel(), which ends the call and so unlinks it
 * (call_release()). Calls of other threads stay bound to the dead watcher
 * and end their own way.
 */
static void
watcher_gone(gpointer data, GObject *was)
{
	struct watcher *w = data;
	struct bound_call *mine = NULL, *c, *next;
	GThread *self = g_thread_self();

	atomic_store(&w->dead, true);
	pthread_mutex_lock(&watchers_lock);
	if (g_object_get_qdata(was, watcher_quark()) == w)
		g_object_steal_qdata(was, watcher_quark());
	pthread_mutex_unlock(&watchers_lock);

	pthread_mutex_lock(&w->lock);
	for (c = w->calls; c != NULL; c = next) {
		next = c->next;
		if (c->thread == self) {
			unlink_call(c);
			push_call(&mine, c);
		}
	}
	while ((c = mine) != NULL) {
		butler_hub *hub = c->hub;
		uint64_t id = c->id;

		unlink_call(c); /* its release will find it in no list */
		pthread_mutex_unlock(&w->lock);
		/* ENOTFOUND: the call is ending right now, out of its table
		 * (this disposal runs from its last callback). ESTATE: this
		 * thread speaks for no server now; the call stays silent. */
		(void)butler_cancel(hub, id);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	watcher_unref(w); /* the object's */
}

/* Returns the watcher of object, made if need be, with a reference for the
 * caller; NULL: no memory. */
static struct watcher *
watcher_get(GObject *object)
{
	struct watcher *w;

	pthread_mutex_lock(&watchers_lock);
	w = g_object_get_qdata(object, watcher_quark());
	if (w == NULL) {
		w = g_try_new0(struct watcher, 1);
		if (w == NULL)
			goto out;
		if (pthread_mutex_init(&w->lock, NULL) != 0) {
			g_free(w);
			w = NULL;
			goto out;
		}
		atomic_init(&w->refs, 1); /* the object's */
		atomic_init(&w->dead, false);
		g_weak_ref_init(&w->object, object);
		g_object_set_qdata(object, watcher_quark(), w);
		g_object_weak_ref(object, watcher_gone, w);
	}
	atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
out:
	pthread_mutex_unlock(&watchers_lock);
	return w;
}

static void *
call_enter(butler_binding *self)
{
	struct bound_call *c = (struct bound_call *)self;

	if (atomic_load(&c->w->dead))
		return NULL;
	return g_weak_ref_get(&c->w->object);
}

/* The call has ended (or its binding was replaced): it lets go of the
 * watcher, which the object's disposal may have freed only if this was its
 * last call. */
static void
call_release(butler_binding *self)
{
	struct bound_call *c = (struct bound_call *)self;
	struct watcher *w = c->w;

	pthread_mutex_lock(&w->lock);
	unlink_call(c);
	pthread_mutex_unlock(&w->lock);
	watcher_unref(w);
	g_free(c);
}

int
butler_glib_bind_call(butler_hub *hub, uint64_t call_id, gpointer object)
{
	struct bound_call *c;
	int rv;

	if (hub == NULL || object == NULL || !G_IS_OBJECT(object))
		return BUTLER_EINVAL;
	c = g_try_new0(struct bound_call, 1);
	if (c == NULL)
		return BUTLER_ENOMEM;
	c->base.enter = call_enter;
	c->base.leave = object_leave;
	c->base.release = call_release;
	c->hub = hub;
	c->id = call_id;
	c->thread = g_thread_self();
	c->w = watcher_get(object);
	if (c->w == NULL) {
		rv = BUTLER_ENOMEM;
		goto out_free;
	}
	/* Linked before the hub has it: from then on, this thread alone
	 * ends the call, and its release finds it linked. */
	pthread_mutex_lock(&c->w->lock);
	push_call(&c->w->calls, c);
	pthread_mutex_unlock(&c->w->lock);
	rv = butler_call_bind(hub, call_id, &c->base);
	if (rv == BUTLER_OK)
		return BUTLER_OK;
	pthread_mutex_lock(&c->w->lock);
	unlink_call(c);
	pthread_mutex_unlock(&c->w->lock);
	watcher_unref(c->w);
out_free:
	g_free(c);
	return rv;
}
