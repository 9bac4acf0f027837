/**
 * @file
 * butler/glib.h — run an external-loop butler server on a GLib main context
 * (a GTK application's main loop, or any GMainLoop).
 *
 * Link with butler::glib. The adapter is a GSource that polls the server's
 * fd, wakes the context when a message (or a request's timeout) is due, and
 * drains the server in bounded batches, so a flood of replies or progress
 * messages cannot starve the GUI: each dispatch handles at most `batch`
 * messages and at most about a millisecond of handler time, then lets GLib
 * run its other sources (drawing, input) before coming back.
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

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_GLIB_H */
