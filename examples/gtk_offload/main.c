/* SPDX-License-Identifier: MIT */
/*
 * butler-gtk-offload — a GTK 4 application that hashes a folder and never
 * freezes.
 *
 * One GtkApplication window: a header bar with Open Folder… (a
 * GtkFileChooserNative), Start (the suggested action) and Cancel (a
 * destructive one), a progress bar, a status line and the list of results,
 * which follows the newest while it is scrolled to its end. Rows can be
 * selected; Ctrl+C copies the selected ones as sha256sum lines, Ctrl+Q
 * quits.
 *
 * The GTK main loop is the `ui` server, an external-loop server drained by
 * butler_glib_attach(). Start asks the `scanner` server to walk the
 * folder; it streams every regular file back as a `found` message, and
 * every entry it cannot read as a `scan_error`. The ui keeps a bounded
 * number of `hash_file` requests in flight to a pool of four `hasher`
 * servers (SHA-256 with GLib's GChecksum); replies and progress for big
 * files arrive as callbacks on the GTK thread. Results go into a
 * GtkStringList shown by a GtkListView, which only makes widgets for the
 * rows on screen, so a hundred thousand results cost no more to show than
 * ten. Cancel cancels every request in flight and drops the paths not yet
 * asked for. A high-priority 1 ms timer measures the longest main-loop
 * stall while work runs.
 *
 * Each request is bound to the window (butler_glib_bind_call()): its
 * callbacks run only while the window lives, and the window's finalize
 * cancels those still in flight, so closing the window mid-run needs no
 * cancel loop and no reference held for each callback.
 *
 * --self-test DIR drives the window by itself (checks the application's
 * id, shortcuts and header bar, opens the folder chooser, hashes DIR and
 * checks every digest off the main loop, checks that the newest row is on
 * screen, starts again and cancels half-way, copies rows to the clipboard
 * and reads them back), saves a screenshot, starts a third time and quits
 * with the Quit action while requests are in flight (no callback may run
 * after the window is gone, none may stay pending), and exits 0 only if
 * every check passed.
 *
 * Usage: butler-gtk-offload [--in-flight N] [DIRECTORY]
 *        butler-gtk-offload --self-test DIR --screenshot FILE.png
 *                           [--expect SHA256SUMS]
 */
#define _GNU_SOURCE /* gettid() */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gtk/gtk.h>

#include <butler/glib.h>

#include "gtk_offload.butler.h"

/* The application id (reverse DNS, as GNOME wants): it names the
 * application on the session bus, so a second launch raises the running
 * window instead of starting another one. */
#define APP_ID "org.butler.GtkOffload"
#define DEFAULT_ROOT "/usr/share"
#define CHUNK (256 * 1024)
#define PROGRESS_EVERY (4u << 20) /* post progress every 4 MiB */
#define REFRESH_MS 100            /* how often the window is updated */
#define SELF_TEST_LIMIT_S 100     /* the self-test gives up after this */
#define COPY_ROWS 3               /* rows the self-test copies */

/*
 * What the ui tells the servers without a message. A handler that is
 * walking a tree or hashing a big file does not read its inbox, so Cancel
 * and Quit bump this counter and the handlers poll it: a walk or a hash
 * that began before the bump stops early.
 */
struct shared {
	atomic_uint epoch;
};

/*
 * The scanner and the hashers run at nice 10: when the work saturates every
 * core, the kernel still gives the GTK thread its turn first, which keeps
 * the window's stalls short. Runs on each server's own thread, first.
 */
static int
run_in_background(butler_server *self, void *user)
{
	(void)self;
	(void)user;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), 10) != 0)
		perror("butler-gtk-offload: setpriority");
	return BUTLER_OK; /* a normal priority is no reason not to start */
}

/* ---- the hasher pool: runs on worker threads -------------------------- */

static int
hash_file(butler_server *self, void *user, struct gtk_offload_hash_file *msg)
{
	struct shared *shared = user;
	unsigned epoch = atomic_load(&shared->epoch);
	struct gtk_offload_file_hashed out = { .path = msg->path };
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
	unsigned char *buf = malloc(CHUNK);
	uint64_t next_progress = PROGRESS_EVERY;
	struct stat st;
	ssize_t n;
	int fd;

	msg->path = NULL; /* moved into the reply */
	fd = open(out.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || buf == NULL || fstat(fd, &st) != 0) {
		out.error = buf == NULL ? ENOMEM : errno;
		goto out;
	}
	while ((n = read(fd, buf, CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		/* Cancel bumps the epoch; a call whose window has gone is
		 * cancelled by the window's finalize (butler_glib_bind_call).
		 */
		if (n < 0 || atomic_load(&shared->epoch) != epoch
		    || butler_cancelled(self)) {
			out.error = n < 0 ? errno : ECANCELED;
			goto out;
		}
		g_checksum_update(sum, buf, (gssize)n);
		out.bytes += (uint64_t)n;
		if (out.bytes >= next_progress) {
			struct gtk_offload_hash_progress p
			    = { out.bytes, (uint64_t)st.st_size };

			(void)gtk_offload_progress_hash_file(self, &p);
			next_progress += PROGRESS_EVERY;
		}
	}
	out.digest = strdup(g_checksum_get_string(sum));
	if (out.digest == NULL)
		out.error = ENOMEM;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	g_checksum_free(sum);
	return gtk_offload_reply_hash_file(self, &out);
}

/* ---- the scanner: walks the tree on its own thread -------------------- */

struct walk {
	butler_hub *hub;
	struct shared *shared;
	unsigned epoch;
	uint64_t files, bytes;
	uint32_t errors;
	bool stopped, closed;
};

/* Tells the ui that `path` could not be read, and why (an errno). */
static void
walk_error(struct walk *w, const char *path, int error)
{
	struct gtk_offload_scan_error e = { strdup(path), error };
	int rv = e.path == NULL ? BUTLER_ENOMEM
	                        : gtk_offload_send_ui_scan_error(w->hub, &e);

	w->errors++;
	if (rv != BUTLER_OK) {
		free(e.path);
		w->closed = rv == BUTLER_ECLOSED;
		w->stopped = w->stopped || w->closed;
	}
}

static void
walk_file(struct walk *w, const char *path, const struct stat *st)
{
	struct gtk_offload_found f = { strdup(path), (uint64_t)st->st_size };
	/* The ui's inbox blocks when full: the scanner waits for the main
	 * loop instead of racing ahead. */
	int rv = f.path == NULL ? BUTLER_ENOMEM
	                        : gtk_offload_send_ui_found(w->hub, &f);

	if (rv == BUTLER_OK) {
		w->files++;
		w->bytes += f.size;
		return;
	}
	free(f.path);
	if (rv == BUTLER_ECLOSED)
		w->closed = w->stopped = true;
	else
		walk_error(w, path, ENOMEM);
}

/* Walks dir (open as dfd, which it closes) depth-first; symbolic links are
 * not followed. Every entry that cannot be read is reported by path. */
static void
walk_dir(struct walk *w, int dfd, const char *path)
{
	DIR *dir = fdopendir(dfd);
	struct dirent *e;

	if (dir == NULL) {
		walk_error(w, path, errno);
		close(dfd);
		return;
	}
	while (!w->stopped) {
		struct stat st;
		char *child;

		errno = 0;
		e = readdir(dir);
		if (e == NULL) {
			if (errno != 0)
				walk_error(w, path, errno);
			break;
		}
		if (strcmp(e->d_name, ".") == 0
		    || strcmp(e->d_name, "..") == 0)
			continue;
		child = g_build_filename(path, e->d_name, NULL);
		if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW)
		    != 0) {
			walk_error(w, child, errno);
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(dir), e->d_name,
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

			if (sub >= 0)
				walk_dir(w, sub, child);
			else
				walk_error(w, child, errno);
		} else if (S_ISREG(st.st_mode)) {
			walk_file(w, child, &st);
		}
		g_free(child);
		if (atomic_load(&w->shared->epoch) != w->epoch)
			w->stopped = true;
	}
	closedir(dir);
}

/* Walks msg->root and always ends with scan_done (unless the hub is
 * stopping), so the ui knows when no more `found` of this scan can come. */
static int
scan(butler_server *self, void *user, struct gtk_offload_scan *msg)
{
	struct walk w = { .hub = butler_server_hub(self), .shared = user };
	struct gtk_offload_scan_done done;
	int dfd;

	w.epoch = atomic_load(&w.shared->epoch);
	dfd = open(msg->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		walk_dir(&w, dfd, msg->root);
	else
		walk_error(&w, msg->root, errno);
	done = (struct gtk_offload_scan_done) { w.files, w.bytes, w.errors };
	if (!w.closed)
		(void)gtk_offload_send_ui_scan_done(w.hub, &done);
	return BUTLER_OK;
}

/* ---- the window: everything below runs on the GTK thread -------------- */

enum run_state {
	RUN_IDLE = 0,   /* Start is allowed */
	RUN_ACTIVE,     /* scanning and hashing */
	RUN_CANCELLING, /* cancelled; waiting for the scanner's scan_done */
};

enum self_test_phase {
	ST_OFF = 0,
	ST_FULL,   /* first run, to completion */
	ST_VERIFY, /* digests being recomputed off the main loop */
	ST_NEWEST, /* waiting for the newest row to be on screen */
	ST_CANCEL, /* second run, cancelled half-way */
	ST_COPY,   /* rows copied, clipboard being read back */
	ST_SHOT,   /* waiting for the window to settle, then screenshot */
	ST_CLOSE,  /* third run, the window closed (Quit) under way */
	ST_END,
};

struct app {
	GtkApplication *gapp;
	butler_hub *hub;
	struct shared shared;
	GSource *source;
	unsigned max_in_flight;
	bool quitting, failed;
	char *root; /* the folder Start hashes */

	/* the current run */
	enum run_state state;
	char outcome[512];     /* shown when idle */
	char *first_error;     /* "path: reason", the run's first error */
	GQueue todo;           /* paths found and not yet asked for */
	GHashTable *in_flight; /* request id -> struct job, which it owns */
	GPtrArray *fresh;      /* result lines not yet in the list */
	bool scan_done;
	uint64_t found, found_bytes, max_size, hashed, hashed_bytes;
	uint64_t errors, cancelled, progress_msgs;
	int64_t t_start, t_end;
	int64_t last_tick, max_stall_us, worst_stall_us;
	guint tick_id;   /* the stall meter, while a run lasts */
	guint redraw_id; /* the window's refresh */

	/* widgets */
	GtkWidget *window, *folder, *subtitle, *start, *cancel;
	GtkWidget *bar, *status, *pages, *list;
	GtkFileChooserNative *chooser;
	GtkStringList *results;       /* sha256sum lines, as they came */
	GtkMultiSelection *selection; /* the list view's model of results */
	GtkStringList *old_results;   /* a previous run's, being freed */
	guint drop_id;
	guint scroll_id; /* scroll_to_end, due */
	bool follow; /* the list shows its end: new rows scroll into view */

	/* --self-test (the strings are GOption's) */
	enum self_test_phase phase;
	char *test_dir, *shot, *expect;
	int in_flight_opt;
	unsigned failures;
	uint64_t first_total, cancel_after;
	unsigned closed_in_flight; /* requests in flight at the close */
	unsigned late_callbacks;   /* replies or progress after it: none */
	unsigned shot_tries, newest_tries, chooser_tries;
	char *copied; /* what Copy should put on the clipboard */
	gulong drawn_id;
	guint watchdog;
};

/* One request in flight; the callbacks get it as their user pointer. The
 * in_flight table owns it: a call bound to a window that has gone ends
 * without a callback. */
struct job {
	struct app *app;
	uint64_t id;
	uint64_t done; /* bytes hashed so far, from progress messages */
};

static void on_hashed(butler_server *self, int status,
    struct gtk_offload_file_hashed *reply, void *user);
static void on_progress(
    butler_server *self, struct gtk_offload_hash_progress *p, void *user);
static void self_test_run_done(struct app *app);
static void self_test_cancelled(struct app *app);

static void
check(struct app *app, bool ok, const char *what)
{
	if (ok)
		return;
	g_printerr("self-test: FAIL: %s\n", what);
	app->failures++;
}

static void
enable(struct app *app, const char *action, bool on)
{
	GAction *a;

	if (app->window == NULL) /* closed: the actions are gone */
		return;
	a = g_action_map_lookup_action(G_ACTION_MAP(app->window), action);
	g_simple_action_set_enabled(G_SIMPLE_ACTION(a), on);
}

static bool
enabled(struct app *app, const char *action)
{
	return g_action_group_get_action_enabled(
	    G_ACTION_GROUP(app->window), action);
}

/* Appends the results that arrived since the last refresh to the list in
 * one splice: one items-changed signal per refresh, not one per file. At
 * the end, not the top: rows already on screen keep their items, so GTK
 * measures no text again (putting the newest first re-binds every visible
 * row each time, about 15 ms of Pango work per refresh here). The list
 * follows the new rows if it shows its end now: scrolling up stops that,
 * scrolling back down resumes it. */
static void
flush_results(struct app *app)
{
	GPtrArray *fresh = app->fresh;
	GtkAdjustment *v
	    = gtk_scrollable_get_vadjustment(GTK_SCROLLABLE(app->list));

	if (fresh->len == 0)
		return;
	app->follow /* within 4 pixels of the end */
	    = gtk_adjustment_get_value(v) + gtk_adjustment_get_page_size(v)
	    >= gtk_adjustment_get_upper(v) - 4;
	g_ptr_array_add(fresh, NULL);
	gtk_string_list_splice(app->results,
	    g_list_model_get_n_items(G_LIST_MODEL(app->results)), 0,
	    (const char *const *)fresh->pdata);
	g_ptr_array_set_size(fresh, 0);
}

static gboolean
scroll_to_end(gpointer user)
{
	struct app *app = user;
	GtkAdjustment *v
	    = gtk_scrollable_get_vadjustment(GTK_SCROLLABLE(app->list));

	app->scroll_id = 0;
	if (app->follow)
		gtk_adjustment_set_value(v,
		    gtk_adjustment_get_upper(v)
		        - gtk_adjustment_get_page_size(v));
	return G_SOURCE_REMOVE;
}

/* New rows have made the list longer: the view has just laid them out. If
 * it follows them, it moves to its new end, right after this layout: the
 * view does not listen to its adjustment while it configures it. */
static void
on_list_grown(GtkAdjustment *v, gpointer user)
{
	struct app *app = user;

	(void)v;
	if (app->follow && app->scroll_id == 0)
		app->scroll_id = g_idle_add_full(
		    G_PRIORITY_HIGH, scroll_to_end, app, NULL);
}

static void
on_selection_changed(
    GtkSelectionModel *model, guint position, guint n, gpointer user)
{
	GtkBitset *set = gtk_selection_model_get_selection(model);

	(void)position;
	(void)n;
	enable(user, "copy", !gtk_bitset_is_empty(set));
	gtk_bitset_unref(set);
}

/* Frees a previous run's results a slice at a time, when the main loop has
 * nothing more urgent to do. */
static gboolean
drop_old_results(gpointer user)
{
	struct app *app = user;
	GListModel *old = G_LIST_MODEL(app->old_results);
	guint n = g_list_model_get_n_items(old), k = MIN(n, 2000);

	gtk_string_list_splice(app->old_results, n - k, k, NULL);
	if (n > k)
		return G_SOURCE_CONTINUE;
	g_clear_object(&app->old_results);
	app->drop_id = 0;
	return G_SOURCE_REMOVE;
}

/* Shows an empty list. Emptying a list of 100 000 rows in place would stall
 * the main loop for tens of milliseconds (every row freed, the view told),
 * so the view gets a new list and the old one is freed in slices. */
static void
clear_results(struct app *app)
{
	if (app->old_results != NULL) /* two starts in a row: free it now */
		g_object_unref(app->old_results);
	app->old_results = app->results;
	app->results = gtk_string_list_new(NULL);
	gtk_multi_selection_set_model(
	    app->selection, G_LIST_MODEL(app->results));
	enable(app, "copy", false);
	app->follow = true;
	if (app->drop_id == 0)
		app->drop_id = g_idle_add(drop_old_results, app);
}

/* Start and Open Folder… while idle, Cancel while running. */
static void
set_actions(struct app *app)
{
	enable(app, "start", app->state == RUN_IDLE);
	enable(app, "choose-folder", app->state == RUN_IDLE);
	enable(app, "cancel", app->state == RUN_ACTIVE);
}

static void
refresh(struct app *app)
{
	int64_t end
	    = app->state == RUN_IDLE ? app->t_end : g_get_monotonic_time();
	double secs = app->t_start ? (end - app->t_start) / 1e6 : 0;
	GtkProgressBar *bar = GTK_PROGRESS_BAR(app->bar);
	uint64_t done = app->hashed_bytes;
	GHashTableIter it;
	gpointer key, value;
	char text[768], *a, *b;
	const char *state;

	if (app->quitting)
		return;
	flush_results(app);
	g_hash_table_iter_init(&it, app->in_flight);
	while (g_hash_table_iter_next(&it, &key, &value))
		done += ((struct job *)value)->done;
	/* Until the whole tree is known, a fraction would be one of a moving
	 * total: the bar pulses instead. */
	if (app->t_start == 0) {
		gtk_progress_bar_set_text(bar, "");
	} else if (app->state == RUN_ACTIVE && !app->scan_done) {
		gtk_progress_bar_pulse(bar);
		a = g_format_size(app->found_bytes);
		snprintf(text, sizeof text,
		    "Scanning… %llu files found (%s), %llu hashed",
		    (unsigned long long)app->found, a,
		    (unsigned long long)app->hashed);
		gtk_progress_bar_set_text(bar, text);
		g_free(a);
	} else {
		done = MIN(done, app->found_bytes);
		gtk_progress_bar_set_fraction(bar,
		    app->found_bytes > 0 ? (double)done / app->found_bytes
		        : app->scan_done && app->errors == 0 ? 1.0
		                                             : 0.0);
		a = g_format_size(done);
		b = g_format_size(app->found_bytes);
		snprintf(text, sizeof text, "%llu of %llu files, %s of %s",
		    (unsigned long long)app->hashed,
		    (unsigned long long)app->found, a, b);
		gtk_progress_bar_set_text(bar, text);
		g_free(a);
		g_free(b);
	}

	state = app->state == RUN_ACTIVE
	    ? (app->scan_done ? "Hashing" : "Scanning and hashing")
	    : app->state == RUN_CANCELLING ? "Cancelling"
	                                   : app->outcome;
	if (app->t_start == 0)
		snprintf(text, sizeof text, "%s", state);
	else
		snprintf(text, sizeof text,
		    "%s — %.0f files/s, %.1f MB/s, %u in flight, %llu "
		    "error%s, longest main-loop stall %.1f ms",
		    state, secs > 0 ? app->hashed / secs : 0.0,
		    secs > 0 ? app->hashed_bytes / secs / 1e6 : 0.0,
		    g_hash_table_size(app->in_flight),
		    (unsigned long long)app->errors,
		    app->errors == 1 ? "" : "s", app->max_stall_us / 1000.0);
	gtk_label_set_text(GTK_LABEL(app->status), text);
	gtk_widget_set_tooltip_text(app->status, app->first_error);
	set_actions(app);
}

/* Measures how late the main loop runs a 1 ms high-priority timer: the
 * longest main-loop stall. It runs while work runs, not in an idle
 * window. */
static gboolean
on_tick(gpointer user)
{
	struct app *app = user;
	int64_t now = g_get_monotonic_time();
	int64_t late = now - app->last_tick - 1000;

	if (app->last_tick != 0 && late > app->max_stall_us)
		app->max_stall_us = late;
	if (app->max_stall_us > app->worst_stall_us)
		app->worst_stall_us = app->max_stall_us;
	app->last_tick = now;
	return G_SOURCE_CONTINUE;
}

/* Ends the run; `outcome` NULL says how it went by itself. */
static void
finish_run(struct app *app, const char *outcome)
{
	app->state = RUN_IDLE;
	if (outcome != NULL)
		snprintf(app->outcome, sizeof app->outcome, "%s", outcome);
	else if (app->errors == 0)
		snprintf(app->outcome, sizeof app->outcome, "Done");
	else if (app->hashed == 0)
		snprintf(app->outcome, sizeof app->outcome,
		    "Could not read %s", app->first_error);
	else
		snprintf(app->outcome, sizeof app->outcome,
		    "Done, %llu %s could not be read (first: %s)",
		    (unsigned long long)app->errors,
		    app->errors == 1 ? "entry" : "entries", app->first_error);
	app->t_end = g_get_monotonic_time();
	if (app->tick_id != 0)
		g_source_remove(app->tick_id);
	app->tick_id = 0;
	refresh(app);
}

static void
maybe_finish(struct app *app)
{
	if (app->state != RUN_ACTIVE || !app->scan_done
	    || !g_queue_is_empty(&app->todo)
	    || g_hash_table_size(app->in_flight) > 0)
		return;
	finish_run(app, NULL);
	if (app->phase == ST_FULL)
		self_test_run_done(app);
	else if (app->phase == ST_CANCEL) /* over before the cancel */
		self_test_cancelled(app);
}

/* Counts an error of this run, prints it and keeps the first one for the
 * status line. */
static void
run_error(struct app *app, const char *path, const char *reason)
{
	g_printerr("butler-gtk-offload: %s: %s\n", path, reason);
	app->errors++;
	if (app->first_error == NULL)
		app->first_error = g_strdup_printf("%s: %s", path, reason);
}

/* Keeps up to max_in_flight hash requests going. */
static void
pump(struct app *app)
{
	while (app->state == RUN_ACTIVE
	    && g_hash_table_size(app->in_flight) < app->max_in_flight
	    && !g_queue_is_empty(&app->todo)) {
		struct gtk_offload_hash_file req
		    = { g_queue_pop_head(&app->todo) };
		struct job *job = g_new0(struct job, 1);
		int rv;

		job->app = app;
		rv = gtk_offload_call_hasher_hash_file(
		    app->hub, &req, -1, on_hashed, on_progress, job, &job->id);
		if (rv != BUTLER_OK) {
			run_error(app, req.path, butler_strerror(rv));
			free(req.path);
			g_free(job);
			continue;
		}
		g_hash_table_insert(app->in_flight, &job->id, job);
		/* The reply and progress are for the window: once it is
		 * finalized (closed), they never run, and the request is
		 * cancelled. No reference to hold, no check in the
		 * callbacks. */
		rv = butler_glib_bind_call(app->hub, job->id, app->window);
		if (rv != BUTLER_OK) /* only for lack of memory */
			g_printerr(
			    "butler-gtk-offload: %s\n", butler_strerror(rv));
	}
	maybe_finish(app);
}

static int
on_found(butler_server *self, void *user, struct gtk_offload_found *msg)
{
	struct app *app = user;

	(void)self;
	if (app->state != RUN_ACTIVE || app->quitting)
		return BUTLER_OK; /* cancelled: the hub frees the path */
	app->found++;
	app->found_bytes += msg->size;
	if (msg->size > app->max_size)
		app->max_size = msg->size;
	g_queue_push_tail(&app->todo, msg->path);
	msg->path = NULL; /* the queue owns it now */
	pump(app);
	return BUTLER_OK;
}

static int
on_scan_error(
    butler_server *self, void *user, struct gtk_offload_scan_error *msg)
{
	struct app *app = user;

	(void)self;
	if (app->state == RUN_ACTIVE && !app->quitting)
		run_error(app, msg->path, strerror(msg->error));
	return BUTLER_OK;
}

static int
on_scan_done(
    butler_server *self, void *user, struct gtk_offload_scan_done *msg)
{
	struct app *app = user;

	(void)self;
	(void)msg; /* its errors came one by one, as scan_error */
	if (app->quitting)
		return BUTLER_OK;
	if (app->state == RUN_CANCELLING) {
		finish_run(app, "Cancelled");
		if (app->phase == ST_CANCEL)
			self_test_cancelled(app);
		return BUTLER_OK;
	}
	app->scan_done = true;
	maybe_finish(app);
	return BUTLER_OK;
}

static void
on_hashed(butler_server *self, int status,
    struct gtk_offload_file_hashed *reply, void *user)
{
	struct job *job = user;
	struct app *app = job->app;

	(void)self;
	if (app->window == NULL) /* never: the call is bound to it */
		app->late_callbacks++;
	g_hash_table_remove(app->in_flight, &job->id); /* frees job */
	if (status == BUTLER_OK && reply->error == 0) {
		g_ptr_array_add(app->fresh,
		    g_strdup_printf("%s  %s", reply->digest, reply->path));
		app->hashed++;
		app->hashed_bytes += reply->bytes;
	} else if (status == BUTLER_ECANCELED
	    || (status == BUTLER_OK && reply->error == ECANCELED)) {
		app->cancelled++;
	} else {
		run_error(app, status == BUTLER_OK ? reply->path : "(request)",
		    status == BUTLER_OK ? strerror(reply->error)
		                        : butler_strerror(status));
	}
	/* The self-test presses Cancel from here, half-way through the
	 * second run: there is certainly work left to cancel. In the third,
	 * it quits from here with work in flight: the window, held for this
	 * callback, is finalized right after it, and that cancels the other
	 * requests, their callbacks silent. */
	if (app->phase == ST_CANCEL && app->state == RUN_ACTIVE
	    && app->hashed >= app->cancel_after)
		g_signal_emit_by_name(app->cancel, "clicked");
	else if (app->phase == ST_CLOSE && app->state == RUN_ACTIVE
	    && app->hashed >= app->cancel_after / 4) {
		app->phase = ST_END;
		app->closed_in_flight = g_hash_table_size(app->in_flight);
		g_action_group_activate_action(
		    G_ACTION_GROUP(app->gapp), "quit", NULL);
		return;
	}
	pump(app);
}

static void
on_progress(
    butler_server *self, struct gtk_offload_hash_progress *p, void *user)
{
	struct job *job = user;

	(void)self;
	if (job->app->window == NULL)
		job->app->late_callbacks++;
	job->done = p->done;
	job->app->progress_msgs++;
}

/* Shows `path` as the folder Start hashes: the header bar's subtitle. */
static void
set_folder(struct app *app, const char *path)
{
	char *old = app->root;

	app->root = g_strdup(path); /* path may be app->root */
	g_free(old);
	gtk_label_set_text(GTK_LABEL(app->subtitle), app->root);
	gtk_widget_set_tooltip_text(app->subtitle, app->root);
}

static void
on_start(GSimpleAction *action, GVariant *param, gpointer user)
{
	struct app *app = user;
	struct gtk_offload_scan req = { strdup(app->root) };
	int rv;

	(void)action;
	(void)param;
	if (app->state != RUN_IDLE || app->quitting) {
		free(req.root);
		return;
	}
	clear_results(app);
	gtk_stack_set_visible_child_name(GTK_STACK(app->pages), "results");
	g_ptr_array_set_size(app->fresh, 0);
	g_clear_pointer(&app->first_error, g_free);
	app->scan_done = false;
	app->found = app->found_bytes = app->max_size = 0;
	app->hashed = app->hashed_bytes = 0;
	app->errors = app->cancelled = app->progress_msgs = 0;
	app->max_stall_us = 0;
	app->last_tick = 0;
	app->tick_id
	    = g_timeout_add_full(G_PRIORITY_HIGH, 1, on_tick, app, NULL);
	app->t_start = g_get_monotonic_time();
	app->state = RUN_ACTIVE;
	rv = req.root == NULL ? BUTLER_ENOMEM
	                      : gtk_offload_send_scanner_scan(app->hub, &req);
	if (rv != BUTLER_OK) {
		free(req.root);
		g_printerr("butler-gtk-offload: %s\n", butler_strerror(rv));
		finish_run(app, "Could not start");
		return;
	}
	refresh(app);
}

/* Stops the scanner and the hashers at their next entry or chunk and drops
 * the paths not yet asked for. The `found` messages still on their way are
 * dropped by on_found. */
static void
stop_work(struct app *app)
{
	atomic_fetch_add(&app->shared.epoch, 1);
	g_queue_clear_full(&app->todo, free);
}

/* stop_work(), and every request in flight is cancelled: each callback
 * runs, with ECANCELED, inside butler_cancel. */
static void
cancel_all(struct app *app)
{
	GList *ids = NULL;
	GHashTableIter it;
	gpointer key, value;

	stop_work(app);
	/* Each cancel edits the table: collect the ids first. */
	g_hash_table_iter_init(&it, app->in_flight);
	while (g_hash_table_iter_next(&it, &key, &value))
		ids = g_list_prepend(ids, key);
	for (GList *l = ids; l != NULL; l = l->next)
		(void)butler_cancel(app->hub, *(uint64_t *)l->data);
	g_list_free(ids);
}

static void
on_cancel(GSimpleAction *action, GVariant *param, gpointer user)
{
	struct app *app = user;

	(void)action;
	(void)param;
	if (app->state != RUN_ACTIVE)
		return;
	/* RUN_CANCELLING first: the callbacks that butler_cancel() runs
	 * must not issue new requests. */
	app->state = RUN_CANCELLING;
	cancel_all(app);
	if (app->scan_done) {
		finish_run(app, "Cancelled");
		if (app->phase == ST_CANCEL)
			self_test_cancelled(app);
	} else {
		refresh(app);
	}
}

static void
on_folder_chosen(GtkNativeDialog *dialog, int response, gpointer user)
{
	struct app *app = user;
	GFile *file;
	char *path;

	if (response != GTK_RESPONSE_ACCEPT)
		return;
	file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
	path = file != NULL ? g_file_get_path(file) : NULL;
	if (path != NULL && app->state == RUN_IDLE)
		set_folder(app, path);
	g_free(path);
	g_clear_object(&file);
}

/* Open Folder…: the desktop's own folder chooser (a portal in Flatpak),
 * GTK's dialog elsewhere, starting in the current folder. */
static void
on_choose_folder(GSimpleAction *action, GVariant *param, gpointer user)
{
	struct app *app = user;
	GFile *folder = g_file_new_for_path(app->root);

	(void)action;
	(void)param;
	if (app->chooser == NULL) {
		app->chooser = gtk_file_chooser_native_new("Choose a Folder",
		    GTK_WINDOW(app->window),
		    GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Select",
		    "_Cancel");
		gtk_native_dialog_set_modal(
		    GTK_NATIVE_DIALOG(app->chooser), TRUE);
		g_signal_connect(app->chooser, "response",
		    G_CALLBACK(on_folder_chosen), app);
	}
	(void)gtk_file_chooser_set_current_folder(
	    GTK_FILE_CHOOSER(app->chooser), folder, NULL);
	g_object_unref(folder);
	gtk_native_dialog_show(GTK_NATIVE_DIALOG(app->chooser));
}

/* Copies the selected rows, as sha256sum lines, to the clipboard. */
static void
on_copy(GSimpleAction *action, GVariant *param, gpointer user)
{
	struct app *app = user;
	GtkBitset *set = gtk_selection_model_get_selection(
	    GTK_SELECTION_MODEL(app->selection));
	GString *text = g_string_new(NULL);
	GtkBitsetIter it;
	guint pos;

	(void)action;
	(void)param;
	for (gboolean more = gtk_bitset_iter_init_first(&it, set, &pos); more;
	     more = gtk_bitset_iter_next(&it, &pos)) {
		g_string_append(
		    text, gtk_string_list_get_string(app->results, pos));
		g_string_append_c(text, '\n');
	}
	gtk_bitset_unref(set);
	if (text->len > 0)
		gdk_clipboard_set_text(
		    gtk_widget_get_clipboard(app->window), text->str);
	g_string_free(text, TRUE);
}

static void
on_select_all(GSimpleAction *action, GVariant *param, gpointer user)
{
	struct app *app = user;

	(void)action;
	(void)param;
	gtk_selection_model_select_all(GTK_SELECTION_MODEL(app->selection));
}

/* Closing the window stops the work; the application then quits (its last
 * window is gone) and shuts the hub down. The requests in flight are bound
 * to the window: when GTK finalizes it, right after this, they are
 * cancelled, and their callbacks never run. */
static gboolean
on_close(GtkWindow *window, gpointer user)
{
	struct app *app = user;

	(void)window;
	app->state = RUN_CANCELLING;
	stop_work(app);
	app->quitting = true;
	if (app->chooser != NULL)
		gtk_native_dialog_hide(GTK_NATIVE_DIALOG(app->chooser));
	return FALSE; /* let GTK destroy the window */
}

static void
on_quit(GSimpleAction *action, GVariant *param, gpointer user)
{
	struct app *app = user;

	(void)action;
	(void)param;
	if (app->window != NULL)
		gtk_window_close(GTK_WINDOW(app->window));
}

static gboolean
on_refresh(gpointer user)
{
	refresh(user);
	return G_SOURCE_CONTINUE;
}

static void
setup_row(GtkSignalListItemFactory *factory, GObject *item, gpointer user)
{
	GtkWidget *label = gtk_label_new(NULL);

	(void)factory;
	(void)user;
	gtk_label_set_xalign(GTK_LABEL(label), 0);
	gtk_label_set_ellipsize(GTK_LABEL(label), PANGO_ELLIPSIZE_MIDDLE);
	gtk_widget_add_css_class(label, "monospace");
	gtk_list_item_set_child(GTK_LIST_ITEM(item), label);
}

/* What a row shows of a result line ("digest  path"): a short digest and
 * the path. */
static char *
row_text(const char *line)
{
	return strlen(line) > 66
	    ? g_strdup_printf("%.16s…  %s", line, line + 66)
	    : g_strdup(line);
}

static void
bind_row(GtkSignalListItemFactory *factory, GObject *item, gpointer user)
{
	GtkListItem *li = GTK_LIST_ITEM(item);
	char *text = row_text(
	    gtk_string_object_get_string(gtk_list_item_get_item(li)));

	(void)factory;
	(void)user;
	gtk_label_set_text(GTK_LABEL(gtk_list_item_get_child(li)), text);
	g_free(text);
}

static const GActionEntry window_actions[] = {
	{ .name = "choose-folder", .activate = on_choose_folder },
	{ .name = "start", .activate = on_start },
	{ .name = "cancel", .activate = on_cancel },
	{ .name = "copy", .activate = on_copy },
	{ .name = "select-all", .activate = on_select_all },
};

/* The header bar's middle: the application's name over the folder. */
static GtkWidget *
title_widget(struct app *app)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
	GtkWidget *title = gtk_label_new("butler offload");

	gtk_widget_set_valign(box, GTK_ALIGN_CENTER);
	gtk_widget_add_css_class(title, "title");
	app->subtitle = gtk_label_new(NULL);
	gtk_widget_add_css_class(app->subtitle, "subtitle");
	gtk_label_set_ellipsize(
	    GTK_LABEL(app->subtitle), PANGO_ELLIPSIZE_MIDDLE);
	gtk_label_set_max_width_chars(GTK_LABEL(app->subtitle), 50);
	gtk_box_append(GTK_BOX(box), title);
	gtk_box_append(GTK_BOX(box), app->subtitle);
	return box;
}

/* Open Folder… at the start; Start, Cancel and the menu at the end. */
static GtkWidget *
header_bar(struct app *app)
{
	GtkWidget *header = gtk_header_bar_new();
	GtkWidget *menu_button = gtk_menu_button_new();
	GMenu *menu = g_menu_new(), *section = g_menu_new();

	app->folder = gtk_button_new_with_mnemonic("_Open Folder…");
	gtk_actionable_set_action_name(
	    GTK_ACTIONABLE(app->folder), "win.choose-folder");
	gtk_widget_set_tooltip_text(app->folder, "Choose the folder to hash");
	app->start = gtk_button_new_with_mnemonic("_Start");
	gtk_actionable_set_action_name(
	    GTK_ACTIONABLE(app->start), "win.start");
	gtk_widget_add_css_class(app->start, "suggested-action");
	app->cancel = gtk_button_new_with_mnemonic("_Cancel");
	gtk_actionable_set_action_name(
	    GTK_ACTIONABLE(app->cancel), "win.cancel");
	gtk_widget_add_css_class(app->cancel, "destructive-action");

	g_menu_append(section, "_Copy Selected Rows", "win.copy");
	g_menu_append(section, "Select _All", "win.select-all");
	g_menu_append_section(menu, NULL, G_MENU_MODEL(section));
	g_object_unref(section);
	section = g_menu_new();
	g_menu_append(section, "_Quit", "app.quit");
	g_menu_append_section(menu, NULL, G_MENU_MODEL(section));
	g_object_unref(section);
	gtk_menu_button_set_icon_name(
	    GTK_MENU_BUTTON(menu_button), "open-menu-symbolic");
	gtk_menu_button_set_menu_model(
	    GTK_MENU_BUTTON(menu_button), G_MENU_MODEL(menu));
	gtk_widget_set_tooltip_text(menu_button, "Main Menu");
	g_object_unref(menu);

	gtk_header_bar_set_title_widget(
	    GTK_HEADER_BAR(header), title_widget(app));
	gtk_header_bar_pack_start(GTK_HEADER_BAR(header), app->folder);
	gtk_header_bar_pack_end(GTK_HEADER_BAR(header), menu_button);
	gtk_header_bar_pack_end(GTK_HEADER_BAR(header), app->start);
	gtk_header_bar_pack_end(GTK_HEADER_BAR(header), app->cancel);
	return header;
}

/* What the window shows before the first run. */
static GtkWidget *
empty_page(void)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
	GtkWidget *icon = gtk_image_new_from_icon_name("folder-symbolic");
	GtkWidget *label
	    = gtk_label_new("Press Start to hash every file in the folder");

	gtk_widget_set_valign(box, GTK_ALIGN_CENTER);
	gtk_image_set_pixel_size(GTK_IMAGE(icon), 96);
	gtk_widget_add_css_class(icon, "dim-label");
	gtk_widget_add_css_class(label, "dim-label");
	gtk_box_append(GTK_BOX(box), icon);
	gtk_box_append(GTK_BOX(box), label);
	return box;
}

static void
on_window_destroy(GtkWidget *window, gpointer user)
{
	struct app *app = user;

	(void)window;
	app->window = NULL;
	app->list = NULL;
	if (app->scroll_id != 0)
		g_source_remove(app->scroll_id);
	app->scroll_id = 0;
}

static void self_test_mapped(GtkWidget *window, gpointer user);

static void
build_window(struct app *app)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
	GtkWidget *scroll = gtk_scrolled_window_new();
	GtkListItemFactory *factory = gtk_signal_list_item_factory_new();
	GtkAdjustment *v;

	app->window = gtk_application_window_new(app->gapp);
	gtk_window_set_title(GTK_WINDOW(app->window), "butler offload");
	gtk_window_set_default_size(GTK_WINDOW(app->window), 860, 600);
	g_action_map_add_action_entries(G_ACTION_MAP(app->window),
	    window_actions, G_N_ELEMENTS(window_actions), app);
	gtk_window_set_titlebar(GTK_WINDOW(app->window), header_bar(app));
	set_folder(app, app->root);

	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	gtk_widget_set_margin_top(box, 12);
	gtk_widget_set_margin_bottom(box, 12);
	app->bar = gtk_progress_bar_new();
	gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(app->bar), TRUE);
	gtk_progress_bar_set_pulse_step(GTK_PROGRESS_BAR(app->bar), 0.05);
	app->status = gtk_label_new(NULL);
	gtk_label_set_xalign(GTK_LABEL(app->status), 0);
	gtk_label_set_ellipsize(GTK_LABEL(app->status), PANGO_ELLIPSIZE_END);
	gtk_widget_add_css_class(app->status, "dim-label");

	g_signal_connect(factory, "setup", G_CALLBACK(setup_row), NULL);
	g_signal_connect(factory, "bind", G_CALLBACK(bind_row), NULL);
	app->results = gtk_string_list_new(NULL);
	app->selection = gtk_multi_selection_new(
	    G_LIST_MODEL(g_object_ref(app->results)));
	g_signal_connect(app->selection, "selection-changed",
	    G_CALLBACK(on_selection_changed), app);
	/* The view owns the selection; the selection a reference to the
	 * list; app->results keeps its own. */
	app->list
	    = gtk_list_view_new(GTK_SELECTION_MODEL(app->selection), factory);
	gtk_list_view_set_enable_rubberband(GTK_LIST_VIEW(app->list), TRUE);
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll), app->list);
	gtk_scrolled_window_set_has_frame(GTK_SCROLLED_WINDOW(scroll), TRUE);
	v = gtk_scrollable_get_vadjustment(GTK_SCROLLABLE(app->list));
	g_signal_connect(v, "changed", G_CALLBACK(on_list_grown), app);
	app->follow = true;

	app->pages = gtk_stack_new();
	gtk_widget_set_vexpand(app->pages, TRUE);
	gtk_stack_add_named(GTK_STACK(app->pages), empty_page(), "empty");
	gtk_stack_add_named(GTK_STACK(app->pages), scroll, "results");

	gtk_box_append(GTK_BOX(box), app->bar);
	gtk_box_append(GTK_BOX(box), app->status);
	gtk_box_append(GTK_BOX(box), app->pages);
	gtk_window_set_child(GTK_WINDOW(app->window), box);

	g_signal_connect(
	    app->window, "close-request", G_CALLBACK(on_close), app);
	g_signal_connect(
	    app->window, "destroy", G_CALLBACK(on_window_destroy), app);
	if (app->test_dir != NULL)
		g_signal_connect(
		    app->window, "map", G_CALLBACK(self_test_mapped), app);
	snprintf(app->outcome, sizeof app->outcome, "Ready");
	enable(app, "copy", false);
	app->redraw_id = g_timeout_add(REFRESH_MS, on_refresh, app);
	refresh(app);
}

/* ---- the self-test ----------------------------------------------------- */

/* The verifier thread's work: the result lines and, optionally, a
 * sha256sum listing to compare them with; `bad` is its answer. */
struct verify {
	struct app *app;
	GThread *thread;
	char **lines;
	const char *expect;
	unsigned bad;
};

static gboolean on_verified(gpointer user);
static gboolean self_test_newest(gpointer user);

/* Recomputes every digest with a fresh GChecksum in one go (no chunks, no
 * workers, no butler) and compares the whole set with sha256sum's output
 * when given. Runs on its own thread, so the window stays live meanwhile,
 * and hands the answer back through an idle callback. */
static gpointer
verify_thread(gpointer data)
{
	struct verify *v = data;
	GHashTable *want = NULL;
	unsigned bad = 0;
	guint n = 0;

	if (v->expect != NULL) {
		char *text = NULL;
		char **lines;

		if (!g_file_get_contents(v->expect, &text, NULL, NULL)) {
			g_printerr("self-test: cannot read %s\n", v->expect);
			v->bad = 1;
			g_idle_add(on_verified, v);
			return NULL;
		}
		lines = g_strsplit(text, "\n", -1);
		want = g_hash_table_new_full(
		    g_str_hash, g_str_equal, g_free, NULL);
		for (char **l = lines; *l != NULL; l++)
			if (**l != '\0')
				g_hash_table_add(want, g_strdup(*l));
		g_strfreev(lines);
		g_free(text);
	}
	for (char **l = v->lines; *l != NULL; l++, n++) {
		const char *path = strlen(*l) > 66 ? *l + 66 : "";
		char *bytes = NULL;
		gsize len = 0;
		gchar *sum = NULL;

		if (g_file_get_contents(path, &bytes, &len, NULL))
			sum = g_compute_checksum_for_data(
			    G_CHECKSUM_SHA256, (const guchar *)bytes, len);
		if (sum == NULL || strncmp(sum, *l, 64) != 0) {
			g_printerr("self-test: wrong digest: %s\n", *l);
			bad++;
		}
		if (want != NULL && !g_hash_table_contains(want, *l)) {
			g_printerr("self-test: not in sha256sum: %s\n", *l);
			bad++;
		}
		g_free(sum);
		g_free(bytes);
	}
	if (want != NULL && g_hash_table_size(want) != n) {
		g_printerr("self-test: %u results, sha256sum lists %u files\n",
		    n, g_hash_table_size(want));
		bad++;
	}
	if (want != NULL)
		g_hash_table_destroy(want);
	v->bad = bad;
	g_idle_add(on_verified, v);
	return NULL;
}

static gboolean
on_verified(gpointer user)
{
	struct verify *v = user;
	struct app *app = v->app;
	unsigned bad;

	/* The thread has returned or is about to: joining it also orders its
	 * writes before these reads (for ThreadSanitizer too). */
	g_thread_join(v->thread);
	bad = v->bad;
	g_strfreev(v->lines);
	g_free(v);
	check(app, bad == 0, "digests differ from an independent computation");
	g_print("self-test: run 1: %llu digests verified%s\n",
	    (unsigned long long)app->first_total,
	    app->expect ? " (GChecksum and sha256sum)" : " (GChecksum)");
	if (app->quitting)
		return G_SOURCE_REMOVE;
	app->phase = ST_NEWEST;
	g_timeout_add(50, self_test_newest, app);
	return G_SOURCE_REMOVE;
}

/* Whether the row that shows result line `line` is on screen, whole,
 * inside the list view. */
static bool
row_on_screen(struct app *app, const char *line)
{
	char *want = row_text(line);
	int height = gtk_widget_get_height(app->list);
	bool seen = false;

	for (GtkWidget *row = gtk_widget_get_first_child(app->list);
	     row != NULL && !seen; row = gtk_widget_get_next_sibling(row)) {
		GtkWidget *label = gtk_widget_get_first_child(row);
		graphene_rect_t r;

		if (label == NULL || !GTK_IS_LABEL(label)
		    || !gtk_widget_get_mapped(row)
		    || strcmp(gtk_label_get_text(GTK_LABEL(label)), want) != 0
		    || !gtk_widget_compute_bounds(row, app->list, &r))
			continue;
		seen = r.origin.y >= 0 && r.origin.y + r.size.height <= height;
	}
	g_free(want);
	return seen;
}

/* After run 1: more results than fit on screen, and the list followed them
 * to the newest. Tries for a second (the view scrolls when it is next laid
 * out), then starts run 2 and presses Cancel when half of the results are
 * in. */
static gboolean
self_test_newest(gpointer user)
{
	struct app *app = user;
	GListModel *results = G_LIST_MODEL(app->results);
	guint n = g_list_model_get_n_items(results);
	GtkAdjustment *v
	    = gtk_scrollable_get_vadjustment(GTK_SCROLLABLE(app->list));
	bool ok = n > 0
	    && row_on_screen(
	        app, gtk_string_list_get_string(app->results, n - 1));

	if (!ok && ++app->newest_tries < 20 && !app->quitting)
		return G_SOURCE_CONTINUE;
	check(app,
	    gtk_adjustment_get_upper(v) > gtk_adjustment_get_page_size(v),
	    "the results fit on screen: nothing to follow");
	check(app, ok, "the newest row is not on screen");
	check(app, app->follow, "the list does not follow new rows");
	if (ok)
		g_print(
		    "self-test: run 1: the newest of %u rows is on screen\n",
		    n);
	if (app->quitting)
		return G_SOURCE_REMOVE;
	app->phase = ST_CANCEL;
	app->cancel_after = app->first_total / 2;
	g_signal_emit_by_name(app->start, "clicked");
	return G_SOURCE_REMOVE;
}

static void
self_test_run_done(struct app *app)
{
	guint n = g_list_model_get_n_items(G_LIST_MODEL(app->results));
	struct verify *v = g_new0(struct verify, 1);

	app->phase = ST_VERIFY;
	app->first_total = app->hashed;
	g_print("self-test: run 1: %llu files, %.1f MB, %llu progress "
	        "messages, %.2f s, longest main-loop stall %.2f ms\n",
	    (unsigned long long)app->hashed, app->hashed_bytes / 1e6,
	    (unsigned long long)app->progress_msgs,
	    (app->t_end - app->t_start) / 1e6, app->max_stall_us / 1000.0);
	check(app, app->errors == 0, "run 1 had errors");
	check(
	    app, app->hashed == app->found, "not every file found was hashed");
	check(app, app->hashed >= 2, "too few files to cancel half-way");
	check(app, n == app->hashed, "the list does not show every result");
	check(app, butler_hub_pending(app->hub, NULL, NULL) == 0,
	    "requests pending after run 1");
	check(app, app->max_size < PROGRESS_EVERY || app->progress_msgs > 0,
	    "no progress message for a big file");
	check(app, strcmp(app->outcome, "Done") == 0, "run 1 is not Done");
	v->lines = g_new0(char *, n + 1);
	for (guint i = 0; i < n; i++)
		v->lines[i]
		    = g_strdup(gtk_string_list_get_string(app->results, i));
	v->expect = app->expect;
	v->app = app;
	v->thread = g_thread_new("verify", verify_thread, v);
}

/* Renders the window as it is now, with its own renderer, into a PNG.
 * Returns NULL on success, or what went wrong. */
static const char *
save_screenshot(GtkWidget *w, const char *file)
{
	int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
	GdkPaintable *paintable = gtk_widget_paintable_new(w);
	GtkSnapshot *snapshot = gtk_snapshot_new();
	GskRenderer *renderer = gtk_native_get_renderer(GTK_NATIVE(w));
	GskRenderNode *node;
	GdkTexture *texture = NULL;
	const char *error = NULL;

	gdk_paintable_snapshot(
	    paintable, GDK_SNAPSHOT(snapshot), width, height);
	node = gtk_snapshot_free_to_node(snapshot);
	if (node == NULL || renderer == NULL)
		error = node == NULL ? "nothing drawn yet" : "no renderer";
	else
		texture = gsk_renderer_render_texture(
		    renderer, node, &GRAPHENE_RECT_INIT(0, 0, width, height));
	if (error == NULL && texture == NULL)
		error = "rendering failed";
	else if (error == NULL && !gdk_texture_save_to_png(texture, file))
		error = "cannot write the file";
	if (texture != NULL)
		g_object_unref(texture);
	if (node != NULL)
		gsk_render_node_unref(node);
	g_object_unref(paintable);
	return error;
}

/* Takes the screenshot once the window has settled (tries a few frames
 * more if it has not drawn itself yet), then quits the way Ctrl+Q does. */
static gboolean
self_test_shot(gpointer user)
{
	struct app *app = user;
	const char *error = save_screenshot(app->window, app->shot);
	GStatBuf st;

	if (error != NULL && ++app->shot_tries < 10) {
		g_printerr("self-test: screenshot: %s; trying again\n", error);
		return G_SOURCE_CONTINUE;
	}
	check(app, error == NULL, "cannot save the screenshot");
	check(app, g_stat(app->shot, &st) == 0 && st.st_size > 0,
	    "the screenshot is empty");
	if (error == NULL)
		g_print("self-test: screenshot %dx%d saved to %s\n",
		    gtk_widget_get_width(app->window),
		    gtk_widget_get_height(app->window), app->shot);
	/* Last, a run that the window's closing interrupts (on_hashed()). */
	app->phase = ST_CLOSE;
	g_signal_emit_by_name(app->start, "clicked");
	return G_SOURCE_REMOVE;
}

/* The clipboard, read back through GDK: what Copy put there. */
static void
self_test_pasted(GObject *clipboard, GAsyncResult *result, gpointer user)
{
	struct app *app = user;
	GError *error = NULL;
	char *text = gdk_clipboard_read_text_finish(
	    GDK_CLIPBOARD(clipboard), result, &error);

	if (error != NULL)
		g_printerr("self-test: clipboard: %s\n", error->message);
	check(app, text != NULL && strcmp(text, app->copied) == 0,
	    "Copy did not put the selected rows on the clipboard");
	if (text != NULL && strcmp(text, app->copied) == 0)
		g_print("self-test: copy: %d selected rows on the clipboard\n",
		    COPY_ROWS);
	g_clear_error(&error);
	g_free(text);
	g_clear_pointer(&app->copied, g_free);
	if (app->quitting)
		return;
	/* Let the window lay out and draw its final state first. */
	app->phase = ST_SHOT;
	g_timeout_add(300, self_test_shot, app);
}

/* Selects the last rows (on screen: the list follows the newest), copies
 * them with the action Ctrl+C runs and reads the clipboard back. */
static void
self_test_copy(struct app *app)
{
	guint n = g_list_model_get_n_items(G_LIST_MODEL(app->results));
	GString *want = g_string_new(NULL);

	app->phase = ST_COPY;
	check(
	    app, !enabled(app, "copy"), "Copy is available with no selection");
	check(app, n >= COPY_ROWS, "too few rows to copy");
	if (n < COPY_ROWS) {
		g_string_free(want, TRUE);
		app->phase = ST_SHOT;
		g_timeout_add(300, self_test_shot, app);
		return;
	}
	for (guint i = n - COPY_ROWS; i < n; i++)
		g_string_append_printf(
		    want, "%s\n", gtk_string_list_get_string(app->results, i));
	app->copied = g_string_free(want, FALSE);
	gtk_selection_model_select_range(GTK_SELECTION_MODEL(app->selection),
	    n - COPY_ROWS, COPY_ROWS, TRUE);
	check(app, enabled(app, "copy"),
	    "Copy is not available for a selection");
	g_action_group_activate_action(
	    G_ACTION_GROUP(app->window), "copy", NULL);
	gdk_clipboard_read_text_async(gtk_widget_get_clipboard(app->window),
	    NULL, self_test_pasted, app);
}

static void
self_test_cancelled(struct app *app)
{
	g_print("self-test: run 2: cancelled after %llu of %llu files "
	        "(%llu requests cancelled), longest main-loop stall %.2f ms\n",
	    (unsigned long long)app->hashed,
	    (unsigned long long)app->first_total,
	    (unsigned long long)app->cancelled, app->max_stall_us / 1000.0);
	check(app, app->hashed < app->first_total, "the cancel came too late");
	check(app, g_hash_table_size(app->in_flight) == 0,
	    "requests in flight after cancel");
	check(app, g_queue_is_empty(&app->todo), "paths queued after cancel");
	check(app, butler_hub_pending(app->hub, NULL, NULL) == 0,
	    "requests pending in the hub after cancel");
	check(app,
	    enabled(app, "start") && gtk_widget_is_sensitive(app->start),
	    "Start is not available after cancel");
	check(app,
	    !enabled(app, "cancel") && !gtk_widget_is_sensitive(app->cancel),
	    "Cancel is still available after cancel");
	check(app, app->errors == 0, "run 2 had errors");
	self_test_copy(app);
}

static bool
has_accel(struct app *app, const char *action, const char *accel)
{
	char **accels
	    = gtk_application_get_accels_for_action(app->gapp, action);
	bool found = accels != NULL
	    && g_strv_contains((const char *const *)accels, accel);

	g_strfreev(accels);
	return found;
}

/* The folder chooser, shown by Open Folder…, loads its folder in the
 * background: waits up to 3 s for it to show the current folder, closes
 * it, then picks the test folder the way the chooser's answer does and
 * presses Start. */
static gboolean
self_test_chooser(gpointer user)
{
	struct app *app = user;
	GtkNativeDialog *dialog = GTK_NATIVE_DIALOG(app->chooser);
	GFile *folder = dialog != NULL
	    ? gtk_file_chooser_get_current_folder(GTK_FILE_CHOOSER(dialog))
	    : NULL;
	char *path = folder != NULL ? g_file_get_path(folder) : NULL;
	bool ok = g_strcmp0(path, app->root) == 0;

	g_clear_object(&folder);
	if (!ok && dialog != NULL && ++app->chooser_tries < 60
	    && !app->quitting) {
		g_free(path);
		return G_SOURCE_CONTINUE;
	}
	check(app, ok, "the folder chooser does not show the current folder");
	if (ok)
		g_print("self-test: the folder chooser shows %s\n", path);
	g_free(path);
	if (dialog != NULL)
		gtk_native_dialog_hide(dialog);
	if (app->quitting)
		return G_SOURCE_REMOVE;
	set_folder(app, app->test_dir);
	g_signal_emit_by_name(app->start, "clicked");
	return G_SOURCE_REMOVE;
}

/* Checks what makes the window a GNOME application's, then presses Open
 * Folder…. */
static gboolean
self_test_begin(gpointer user)
{
	struct app *app = user;
	GtkWidget *titlebar = gtk_window_get_titlebar(GTK_WINDOW(app->window));

	app->phase = ST_FULL;
	check(app,
	    g_strcmp0(
	        g_application_get_application_id(G_APPLICATION(app->gapp)),
	        APP_ID)
	        == 0,
	    "wrong application id");
	check(app,
	    gtk_window_get_application(GTK_WINDOW(app->window)) == app->gapp,
	    "the window does not belong to the application");
	check(app, has_accel(app, "app.quit", "<Control>q"),
	    "Ctrl+Q does not quit");
	check(app, has_accel(app, "win.copy", "<Control>c"),
	    "Ctrl+C does not copy");
	check(app, GTK_IS_HEADER_BAR(titlebar), "no header bar");
	check(app,
	    titlebar != NULL && gtk_widget_is_ancestor(app->start, titlebar)
	        && gtk_widget_is_ancestor(app->cancel, titlebar)
	        && gtk_widget_is_ancestor(app->folder, titlebar),
	    "the buttons are not in the header bar");
	check(app, gtk_widget_has_css_class(app->start, "suggested-action"),
	    "Start is not the suggested action");
	check(app, gtk_widget_has_css_class(app->cancel, "destructive-action"),
	    "Cancel is not a destructive action");
	check(app, gtk_widget_is_sensitive(app->start), "Start is disabled");
	check(app, !gtk_widget_is_sensitive(app->cancel),
	    "Cancel is enabled before a run");
	g_print("self-test: %s: header bar, actions and shortcuts checked\n",
	    APP_ID);

	g_signal_emit_by_name(app->folder, "clicked");
	check(app,
	    app->chooser != NULL
	        && gtk_native_dialog_get_visible(
	            GTK_NATIVE_DIALOG(app->chooser)),
	    "Open Folder… shows no folder chooser");
	g_timeout_add(50, self_test_chooser, app);
	return G_SOURCE_REMOVE;
}

/* The self-test starts once the window has drawn itself: the first frame
 * waits for fontconfig to load, which is no stall of the work's making. */
static void
self_test_drawn(GdkFrameClock *clock, gpointer user)
{
	struct app *app = user;

	g_signal_handler_disconnect(clock, app->drawn_id);
	g_timeout_add(200, self_test_begin, app);
}

static void
self_test_mapped(GtkWidget *window, gpointer user)
{
	struct app *app = user;

	app->drawn_id = g_signal_connect(gtk_widget_get_frame_clock(window),
	    "after-paint", G_CALLBACK(self_test_drawn), app);
}

static gboolean
self_test_timeout(gpointer user)
{
	struct app *app = user;

	app->watchdog = 0; /* GLib removes it */
	check(app, false, "timed out");
	if (app->window != NULL)
		gtk_window_close(GTK_WINDOW(app->window));
	return G_SOURCE_REMOVE;
}

/* ---- the application --------------------------------------------------- */

/* Starts the hub on the GTK thread, which then drains the ui server: runs
 * once, in the primary instance, before the first window. */
static void
on_startup(GApplication *gapp, gpointer user)
{
	static const GActionEntry app_actions[] = {
		{ .name = "quit", .activate = on_quit },
	};
	static const struct {
		const char *action;
		const char *accels[2];
	} shortcuts[] = {
		{ "app.quit", { "<Control>q", NULL } },
		{ "win.copy", { "<Control>c", NULL } },
		{ "win.select-all", { "<Control>a", NULL } },
		{ "win.choose-folder", { "<Control>o", NULL } },
	};
	struct app *app = user;
	struct gtk_offload_ui_handlers ui = { .found = on_found,
		.scan_error = on_scan_error,
		.scan_done = on_scan_done };
	struct gtk_offload_scanner_handlers scanner
	    = { .on_start = run_in_background, .scan = scan };
	struct gtk_offload_hasher_handlers hasher
	    = { .on_start = run_in_background, .hash_file = hash_file };
	int rv;

	g_action_map_add_action_entries(
	    G_ACTION_MAP(gapp), app_actions, G_N_ELEMENTS(app_actions), app);
	for (size_t i = 0; i < G_N_ELEMENTS(shortcuts); i++)
		gtk_application_set_accels_for_action(GTK_APPLICATION(gapp),
		    shortcuts[i].action, shortcuts[i].accels);

	rv = butler_hub_new(&app->hub, &gtk_offload_spec);
	if (rv == BUTLER_OK)
		rv = gtk_offload_ui_register(app->hub, &ui, app);
	if (rv == BUTLER_OK)
		rv = gtk_offload_scanner_register(
		    app->hub, &scanner, &app->shared);
	if (rv == BUTLER_OK)
		rv = gtk_offload_hasher_register(
		    app->hub, &hasher, &app->shared);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(app->hub);
	/* The adapter's source runs below GTK's layout and drawing
	 * (BUTLER_GLIB_PRIORITY): a steady stream of results cannot keep the
	 * window from repainting. */
	if (rv == BUTLER_OK)
		rv = butler_glib_attach(
		    app->hub, GTK_OFFLOAD_SERVER_UI, NULL, 64, &app->source);
	if (rv != BUTLER_OK) {
		g_printerr("butler-gtk-offload: %s\n", butler_strerror(rv));
		butler_hub_free(app->hub);
		app->hub = NULL;
		app->failed = true;
		return;
	}
	if (app->test_dir != NULL)
		app->watchdog = g_timeout_add_seconds(
		    SELF_TEST_LIMIT_S, self_test_timeout, app);
}

static void
on_activate(GApplication *gapp, gpointer user)
{
	struct app *app = user;

	(void)gapp;
	if (app->failed)
		return;
	if (app->window == NULL)
		build_window(app);
	gtk_window_present(GTK_WINDOW(app->window));
}

/* butler-gtk-offload DIRECTORY, here or in a second launch: the folder to
 * hash next. */
static void
on_open(
    GApplication *gapp, GFile **files, int n, const char *hint, gpointer user)
{
	struct app *app = user;
	char *path = n > 0 ? g_file_get_path(files[0]) : NULL;

	(void)hint;
	on_activate(gapp, user);
	if (app->window != NULL && path != NULL && app->state == RUN_IDLE)
		set_folder(app, path);
	g_free(path);
}

/* The last window is gone, every request was cancelled: stop draining on
 * GLib, then stop the servers, dropping queued work. */
static void
on_shutdown(GApplication *gapp, gpointer user)
{
	struct app *app = user;
	size_t pending;

	(void)gapp;
	if (app->tick_id != 0)
		g_source_remove(app->tick_id);
	if (app->redraw_id != 0)
		g_source_remove(app->redraw_id);
	if (app->watchdog != 0)
		g_source_remove(app->watchdog);
	if (app->drop_id != 0)
		g_source_remove(app->drop_id);
	if (app->scroll_id != 0)
		g_source_remove(app->scroll_id);
	app->tick_id = app->redraw_id = app->watchdog = app->drop_id = 0;
	app->scroll_id = 0;
	if (app->chooser != NULL) {
		gtk_native_dialog_destroy(GTK_NATIVE_DIALOG(app->chooser));
		g_clear_object(&app->chooser);
	}
	if (app->hub == NULL)
		return;
	g_source_destroy(app->source);
	g_source_unref(app->source);
	/* None: those the window's finalize did not cancel had ended. */
	pending = butler_hub_pending(app->hub, NULL, NULL);
	butler_hub_stop(app->hub, BUTLER_STOP_DISCARD);
	fprintf(stderr, "longest main-loop stall: %.2f ms\n",
	    app->worst_stall_us / 1000.0);
	fprintf(stderr, "requests still pending: %zu\n", pending);
	butler_hub_free(app->hub);
	app->hub = NULL;
}

/* After GApplication has parsed the options, before it registers on the
 * session bus: the self-test runs as a separate instance (two tests at
 * once, or one beside a running window, must not meet on the bus). */
static int
on_local_options(GApplication *gapp, GVariantDict *options, gpointer user)
{
	struct app *app = user;

	(void)options;
	if (app->in_flight_opt <= 0
	    || (app->test_dir == NULL) != (app->shot == NULL)) {
		g_printerr("butler-gtk-offload: --in-flight needs N > 0, "
		           "--self-test and --screenshot go together "
		           "(see --help)\n");
		return 2;
	}
	app->max_in_flight = (unsigned)app->in_flight_opt;
	if (app->test_dir != NULL) {
		g_application_set_flags(gapp,
		    g_application_get_flags(gapp) | G_APPLICATION_NON_UNIQUE);
	}
	if (!gtk_init_check()) {
		g_printerr("butler-gtk-offload: cannot open a display\n");
		return 1;
	}
	return -1; /* go on */
}

int
main(int argc, char **argv)
{
	struct app app = { .max_in_flight = 8, .in_flight_opt = 8 };
	const GOptionEntry options[] = {
		{ "in-flight", 0, 0, G_OPTION_ARG_INT, &app.in_flight_opt,
		    "Hash requests kept in flight (default 8)", "N" },
		{ "self-test", 0, 0, G_OPTION_ARG_FILENAME, &app.test_dir,
		    "Drive the window by itself on DIR, check it, quit",
		    "DIR" },
		{ "screenshot", 0, 0, G_OPTION_ARG_FILENAME, &app.shot,
		    "With --self-test: save a screenshot to FILE", "FILE" },
		{ "expect", 0, 0, G_OPTION_ARG_FILENAME, &app.expect,
		    "With --self-test: sha256sum output to compare with",
		    "SUMS" },
		{ 0 },
	};
	int status;

	app.root = g_strdup(DEFAULT_ROOT);
	app.in_flight
	    = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	app.fresh = g_ptr_array_new_with_free_func(g_free);
	g_queue_init(&app.todo);
	atomic_init(&app.shared.epoch, 0);
	g_set_application_name("butler offload");

	app.gapp = gtk_application_new(APP_ID, G_APPLICATION_HANDLES_OPEN);
	g_application_add_main_option_entries(
	    G_APPLICATION(app.gapp), options);
	g_application_set_option_context_parameter_string(
	    G_APPLICATION(app.gapp), "[DIRECTORY]");
	g_application_set_option_context_summary(G_APPLICATION(app.gapp),
	    "Hashes every regular file under DIRECTORY (default " DEFAULT_ROOT
	    ") on a pool of butler\nservers while the window stays "
	    "responsive.");
	g_signal_connect(app.gapp, "handle-local-options",
	    G_CALLBACK(on_local_options), &app);
	g_signal_connect(app.gapp, "startup", G_CALLBACK(on_startup), &app);
	g_signal_connect(app.gapp, "activate", G_CALLBACK(on_activate), &app);
	g_signal_connect(app.gapp, "open", G_CALLBACK(on_open), &app);
	g_signal_connect(app.gapp, "shutdown", G_CALLBACK(on_shutdown), &app);
	status = g_application_run(G_APPLICATION(app.gapp), argc, argv);
	g_object_unref(app.gapp);

	g_queue_clear_full(&app.todo, free);
	g_hash_table_destroy(app.in_flight);
	g_ptr_array_unref(app.fresh);
	g_clear_object(&app.old_results);
	g_clear_object(&app.results);
	g_free(app.first_error);
	g_free(app.copied);
	g_free(app.root);

	if (app.test_dir != NULL && status == 0) {
		check(
		    &app, app.phase == ST_END, "the self-test did not finish");
		g_print("self-test: run 3: window closed with %u requests in "
		        "flight, %u callbacks after\n",
		    app.closed_in_flight, app.late_callbacks);
		check(&app, app.closed_in_flight > 0,
		    "no request in flight when the window closed");
		check(&app, app.late_callbacks == 0,
		    "a callback ran after its window was destroyed");
		g_print("self-test: %s\n", app.failures ? "FAILED" : "passed");
		status = app.failures ? 1 : 0;
	} else if (app.failed) {
		status = 1;
	}
	g_free(app.test_dir);
	g_free(app.shot);
	g_free(app.expect);
	return status;
}
