/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/glib.h — run an external-loop butler server on a GLib main context
 * (a GTK application's main loop, or any GMainLoop).
 *
 * Link with butler::glib. The adapter is a GSource that polls the server's
 * fd, wakes the context when a message (or a request's timeout) is due, and
 * drains the server in bounded batches, so a flood of messages or progress
 * messages cannot starve the GUI: each dispatch handles at most `batch` of
 * them and at most about a millisecond of handler time, then lets GLib run
 * its other sources (drawing, input) before coming back. The replies to
 * the context's own calls are bounded the same way: at most `batch` per
 * dispatch, oldest first, the rest in the next ones. Not bounded: calls
 * that time out together, whose callbacks all run in the dispatch that
 * sees their deadline pass (as many as the context has calls in flight).
 *
 * Bindings tie deliveries to the life of a GObject (a widget): a message
 * sent with butler_glib_send_for() or a call bound with
 * butler_glib_bind_call() is delivered only while the object is alive, and
 * destroyed unhandled once it is disposed, its callback never run: no more
 * g_object_ref() around every request "in case the window closes".
 */
#ifndef BUTLER_GLIB_H
#define BUTLER_GLIB_H

#include <glib.h>

#include <butler/export.h>
#include <butler/hub.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * BUTLER_GLIB_PRIORITY is the adapter's default source priority: just below
 * GTK's redraw (G_PRIORITY_HIGH_IDLE + 20), so that however many replies
 * arrive, GTK still paints and input (G_PRIORITY_DEFAULT) comes first; and
 * above default idle sources. Change it with g_source_set_priority().
 */
#define BUTLER_GLIB_PRIORITY (G_PRIORITY_HIGH_IDLE + 30)

/**
 * butler_glib_attach attaches external-loop server `server` of `hub` to
 * `context` (NULL: the default main context) and returns the new source in
 * *out (may be NULL if you only need the attachment; the context then holds
 * the only reference). The server's handlers then run on the thread that
 * runs `context`. `batch` caps the messages handled per dispatch (0: the
 * hub's default). Call it before butler_hub_start() or after, from the
 * context's thread; destroy the source (g_source_destroy) before
 * butler_hub_free(). When the hub stops, the source removes itself.
 * Returns BUTLER_EINVAL for a threaded server or a bad index, BUTLER_ENOMEM.
 */
BUTLER_API int butler_glib_attach(butler_hub *hub, unsigned server,
    GMainContext *context, unsigned batch,
    GSource **out /* OUT: a reference, may be NULL */);

/**
 * butler_glib_binding_new makes *out a binding (butler_binding, see
 * butler/hub.h) to GObject `object`, for butler_send_bound() and
 * butler_call_bind(): it holds a GWeakRef, not a reference, so it never
 * keeps the object alive by itself. Right before each delivery bound to it
 * the receiving thread takes a strong reference (g_weak_ref_get()), runs
 * the handler or callback, and drops it after (g_object_unref()), so the
 * object cannot be finalized while its handler runs; once the object has
 * been disposed (its last reference dropped; or g_object_run_dispose()
 * returned, for a binding made before it), deliveries find NULL and are
 * destroyed unhandled, counted as dropped. Note that the strong reference is
 * dropped on the receiving thread: if that is the last one, the object is
 * finalized there, so bind a GTK widget only to deliveries on its GTK thread
 * (messages to the server attached to its main context, calls made from that
 * context).
 *
 * The binding is refcounted, atomically: *out holds one reference, which
 * butler_send_bound() consumes when the hub takes the message (see
 * butler_taken(); on any other code the caller still owns it), and which
 * butler_glib_binding_ref() / butler_glib_binding_unref() add and drop, so
 * one binding serves many sends from any thread: give each send a
 * reference of its own. Making one costs an allocation and a GWeakRef (a
 * lock); a reference costs an atomic add. The object must be alive when
 * the binding is made (the caller holds a reference to it). Any thread.
 * Returns BUTLER_OK, BUTLER_EINVAL (object NULL or not a GObject; *out is
 * then NULL) or BUTLER_ENOMEM.
 */
BUTLER_API int butler_glib_binding_new(
    butler_binding **out /* OUT: one reference, NULL on failure */,
    gpointer object);

/**
 * butler_glib_binding_ref adds a reference to `binding` (one that
 * butler_glib_binding_new() made) and returns it, for one more send: e.g.
 * butler_send_bound(hub, s, k, &m, sizeof m, butler_glib_binding_ref(b)),
 * then butler_glib_binding_unref(b) if the send did not take it. NULL is
 * returned as it is. Any thread.
 */
BUTLER_API butler_binding *butler_glib_binding_ref(butler_binding *binding);

/**
 * butler_glib_binding_unref drops one reference to `binding`; the last one
 * frees it (the object is not touched). NULL is a no-op. Any thread.
 */
BUTLER_API void butler_glib_binding_unref(butler_binding *binding);

/**
 * butler_glib_send_for is butler_send() of a message bound to GObject
 * `object`: it is handled only if the object is still alive when its turn
 * comes (and cannot be finalized while its handler runs), and destroyed
 * unhandled, counted as dropped, once the object is gone. It makes a
 * binding for this one send (butler_glib_binding_new()) and lets go of it
 * itself when the send fails; for many sends bound to one object, make one
 * binding and give each butler_send_bound() a reference instead. The
 * object must be alive (the caller holds a reference); the thread rule of
 * butler_glib_binding_new() applies to the receiving server. Ownership of
 * the message as butler_send(): on a code of butler_taken() the hub owns
 * its fields, otherwise the caller still does. Codes as butler_send(), and
 * BUTLER_EINVAL for an object that is NULL or no GObject, BUTLER_ENOMEM.
 * Any thread.
 */
BUTLER_API int butler_glib_send_for(butler_hub *hub, unsigned server,
    unsigned kind, const void *msg, size_t size, gpointer object);

/**
 * butler_glib_bind_call binds call `call_id`, made by the calling thread
 * (butler_call() or a generated app_call_S_M(), on the main context's
 * thread or in a handler) and not yet ended, to GObject `object`, alive
 * (the caller holds a reference): its reply callback and its progress
 * callbacks run only while the object is alive, each holding a strong
 * reference to it while it runs; once the object is disposed they never
 * run, and what arrives for the call is destroyed. Several calls may be
 * bound to one object, and one call to one object (binding it again
 * replaces the first).
 *
 * Disposing the object also ends the call: when the object is disposed on
 * the thread that made the call (for a widget, the GTK thread: always),
 * the call is cancelled right there, from the object's weak notify, with
 * butler_cancel(), so its server sees butler_cancelled() and a request
 * still queued is never handled; its callback stays silent. That holds
 * also when the disposal runs inside one of the call's own callbacks (a
 * reply callback that drops the last reference to its window: the object
 * is finalized right after the callback, which cancels the object's other
 * calls), and for g_object_run_dispose(). Disposed on another thread, the
 * call is not cancelled there (butler_cancel() belongs to the calling
 * thread): it is silent from then on, and cancelled at its next progress
 * message, or it ends by itself. So is a call whose thread speaks for no
 * server of the hub when the object goes (butler_cancel() refuses with
 * BUTLER_ESTATE). A call that ends first (answered, timed out, cancelled,
 * the hub stopped) is forgotten at once: disposing the object later, even
 * after butler_hub_free(), does nothing for it.
 *
 * The object is watched by one GObject weak reference
 * (g_object_weak_ref()) for all the calls bound to it, added by its first
 * bound call and removed by its disposal, never by a call: a call that
 * ends only unlinks itself, under a lock, so a call ending on one thread
 * while the object is disposed on another (or a call ending during the
 * disposal, from another weak notify or a dispose handler) is safe, and
 * nothing is released twice. The watch (a small struct and a GWeakRef,
 * never a strong reference) stays with the object until its disposal, and
 * is freed once that has happened and its last bound call has ended.
 *
 * Returns BUTLER_OK, BUTLER_EINVAL (hub NULL, object NULL or no GObject),
 * BUTLER_ENOMEM, or butler_call_bind()'s BUTLER_ENOTFOUND (no such call
 * open on this thread) and BUTLER_ESTATE (the calling thread speaks for no
 * server of the hub); on failure nothing is bound. The calling thread
 * only: the one that made the call.
 */
BUTLER_API int butler_glib_bind_call(
    butler_hub *hub, uint64_t call_id, gpointer object);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_GLIB_H */
