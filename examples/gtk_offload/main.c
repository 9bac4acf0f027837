/*
 * butler-gtk-offload — a GTK 4 window that hashes a directory tree and never
 * freezes.
 *
 * The GTK main loop is the `ui` server, an external-loop server drained by
 * butler_glib_attach(). Start asks the `scanner` server to walk the
 * directory; it streams every regular file back as a `found` message. The
 * ui keeps a bounded number of `hash_file` requests in flight to a pool of
 * four `hasher` servers (SHA-256 with GLib's GChecksum); replies and
 * progress for big files arrive as callbacks on the GTK thread. Results go
 * into a GtkStringList shown by a GtkListView, which only makes widgets for
 * the rows on screen, so a hundred thousand results cost no more to show
 * than ten. Cancel cancels every request in flight and drops the paths not
 * yet asked for. A high-priority 1 ms timer measures the longest main-loop
 * stall while work runs.
 *
 * --self-test DIR drives the window by itself (start, check every digest
 * off the main loop, start again, cancel half-way, check that nothing is
 * left pending), saves a screenshot and exits 0 only if every check passed.
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

#define DEFAULT_ROOT "/usr/share"
#define CHUNK (256 * 1024)
#define PROGRESS_EVERY (4u << 20) /* post progress every 4 MiB */
#define REFRESH_MS 100            /* how often the window is updated */
#define SELF_TEST_LIMIT_S 100     /* the self-test gives up after this */

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
		if (n < 0 || atomic_load(&shared->epoch) != epoch) {
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

/* Walks dir (open as dfd) depth-first; symbolic links are not followed. */
static void
walk_dir(struct walk *w, int dfd, const char *path)
{
	DIR *dir = fdopendir(dfd);
	struct dirent *e;

	if (dir == NULL) {
		close(dfd);
		w->errors++;
		return;
	}
	while (!w->stopped && (e = readdir(dir)) != NULL) {
		struct stat st;
		char *child;

		if (strcmp(e->d_name, ".") == 0
		    || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW)
		    != 0) {
			w->errors++;
			continue;
		}
		child = g_build_filename(path, e->d_name, NULL);
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(dir), e->d_name,
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

			if (sub >= 0)
				walk_dir(w, sub, child);
			else
				w->errors++;
		} else if (S_ISREG(st.st_mode)) {
			struct gtk_offload_found f
			    = { strdup(child), (uint64_t)st.st_size };
			/* The ui's inbox blocks when full: the scanner waits
			 * for the main loop instead of racing ahead. */
			int rv = f.path == NULL
			    ? BUTLER_ENOMEM
			    : gtk_offload_send_ui_found(w->hub, &f);

			if (rv == BUTLER_OK) {
				w->files++;
				w->bytes += f.size;
			} else {
				free(f.path);
				w->closed = rv == BUTLER_ECLOSED;
				w->stopped = w->closed;
				w->errors += !w->closed;
			}
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
	int dfd = open(msg->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	w.epoch = atomic_load(&w.shared->epoch);
	if (dfd >= 0)
		walk_dir(&w, dfd, msg->root);
	else
		w.errors++;
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
	ST_CANCEL, /* second run, cancelled half-way */
	ST_SHOT,   /* waiting for the window to settle, then screenshot */
	ST_END,
};

struct app {
	butler_hub *hub;
	struct shared shared;
	GMainLoop *loop;
	GSource *source;
	unsigned max_in_flight;
	bool quitting;

	/* the current run */
	enum run_state state;
	const char *outcome;   /* shown when idle */
	GQueue todo;           /* paths found and not yet asked for */
	GHashTable *in_flight; /* request id -> struct job */
	GPtrArray *fresh;      /* result lines not yet in the list */
	bool scan_done;
	uint64_t found, found_bytes, max_size, hashed, hashed_bytes;
	uint64_t errors, cancelled, progress_msgs;
	int64_t t_start, t_end;
	int64_t last_tick, max_stall_us, worst_stall_us;
	guint tick_id; /* the stall meter, while a run lasts */

	/* widgets */
	GtkWidget *window, *entry, *start, *cancel, *bar, *status;
	GtkStringList *results;     /* sha256sum lines, as they came */
	GtkNoSelection *selection;  /* the list view's model of results */
	GtkStringList *old_results; /* a previous run's, being freed */
	guint drop_id;

	/* --self-test */
	enum self_test_phase phase;
	const char *test_dir, *shot, *expect;
	unsigned failures;
	uint64_t first_total, cancel_after;
	unsigned shot_tries;
	gulong drawn_id;
	guint watchdog;
};

/* One request in flight; the callbacks get it as their user pointer. */
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

/* Appends the results that arrived since the last refresh to the list in
 * one splice: one items-changed signal per refresh, not one per file. At
 * the end, not the top: rows already on screen keep their items, so GTK
 * measures no text again (putting the newest first re-binds every visible
 * row each time, about 15 ms of Pango work per refresh here). */
static void
flush_results(struct app *app)
{
	GPtrArray *fresh = app->fresh;

	if (fresh->len == 0)
		return;
	g_ptr_array_add(fresh, NULL);
	gtk_string_list_splice(app->results,
	    g_list_model_get_n_items(G_LIST_MODEL(app->results)), 0,
	    (const char *const *)fresh->pdata);
	g_ptr_array_set_size(fresh, 0);
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
	gtk_no_selection_set_model(app->selection, G_LIST_MODEL(app->results));
	if (app->drop_id == 0)
		app->drop_id = g_idle_add(drop_old_results, app);
}

/* Start and the entry while idle, Cancel while running; the focus follows.
 * It leaves the entry before the entry turns insensitive: GTK warns when a
 * focused text field loses the focus that way. */
static void
set_buttons(struct app *app)
{
	GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(app->window));
	bool idle = app->state == RUN_IDLE;

	gtk_widget_set_sensitive(app->cancel, app->state == RUN_ACTIVE);
	if (!idle && focus != NULL
	    && (focus == app->start || focus == app->entry
	        || gtk_widget_is_ancestor(focus, app->entry)))
		gtk_widget_grab_focus(app->cancel);
	gtk_widget_set_sensitive(app->start, idle);
	gtk_widget_set_sensitive(app->entry, idle);
	if (idle && focus == app->cancel)
		gtk_widget_grab_focus(app->start);
}

static void
refresh(struct app *app)
{
	int64_t end
	    = app->state == RUN_IDLE ? app->t_end : g_get_monotonic_time();
	double secs = app->t_start ? (end - app->t_start) / 1e6 : 0;
	uint64_t partial = 0;
	GHashTableIter it;
	gpointer key, value;
	char text[256];
	const char *state;

	if (app->quitting)
		return;
	flush_results(app);
	g_hash_table_iter_init(&it, app->in_flight);
	while (g_hash_table_iter_next(&it, &key, &value))
		partial += ((struct job *)value)->done;
	if (app->found_bytes > 0)
		gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(app->bar),
		    (double)(app->hashed_bytes + partial) / app->found_bytes);
	else
		gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(app->bar),
		    app->scan_done && app->state == RUN_IDLE ? 1.0 : 0.0);
	snprintf(text, sizeof text, "%llu of %llu%s files",
	    (unsigned long long)app->hashed, (unsigned long long)app->found,
	    app->scan_done || app->state == RUN_IDLE ? "" : "+");
	gtk_progress_bar_set_text(GTK_PROGRESS_BAR(app->bar), text);

	state = app->state == RUN_ACTIVE
	    ? (app->scan_done ? "Hashing" : "Scanning and hashing")
	    : app->state == RUN_CANCELLING ? "Cancelling"
	                                   : app->outcome;
	snprintf(text, sizeof text,
	    "%s — %.0f files/s, %.1f MB/s, %u in flight, %llu errors, "
	    "longest main-loop stall %.1f ms",
	    state, secs > 0 ? app->hashed / secs : 0.0,
	    secs > 0 ? app->hashed_bytes / secs / 1e6 : 0.0,
	    g_hash_table_size(app->in_flight), (unsigned long long)app->errors,
	    app->max_stall_us / 1000.0);
	gtk_label_set_text(GTK_LABEL(app->status), text);

	set_buttons(app);
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

static void
finish_run(struct app *app, const char *outcome)
{
	app->state = RUN_IDLE;
	app->outcome = outcome;
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
	finish_run(app, "Done");
	if (app->phase == ST_FULL)
		self_test_run_done(app);
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
			g_printerr("butler-gtk-offload: %s: %s\n", req.path,
			    butler_strerror(rv));
			free(req.path);
			g_free(job);
			app->errors++;
			continue;
		}
		g_hash_table_insert(app->in_flight, &job->id, job);
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
on_scan_done(
    butler_server *self, void *user, struct gtk_offload_scan_done *msg)
{
	struct app *app = user;

	(void)self;
	if (app->quitting)
		return BUTLER_OK;
	if (app->state == RUN_CANCELLING) {
		finish_run(app, "Cancelled");
		if (app->phase == ST_CANCEL)
			self_test_cancelled(app);
		return BUTLER_OK;
	}
	app->scan_done = true;
	app->errors += msg->errors;
	if (msg->errors > 0)
		g_printerr(
		    "butler-gtk-offload: %u entries could not be read\n",
		    msg->errors);
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
	g_hash_table_remove(app->in_flight, &job->id);
	g_free(job);
	if (status == BUTLER_OK && reply->error == 0) {
		g_ptr_array_add(app->fresh,
		    g_strdup_printf("%s  %s", reply->digest, reply->path));
		app->hashed++;
		app->hashed_bytes += reply->bytes;
	} else if (status == BUTLER_ECANCELED
	    || (status == BUTLER_OK && reply->error == ECANCELED)) {
		app->cancelled++;
	} else {
		g_printerr("butler-gtk-offload: %s: %s\n",
		    status == BUTLER_OK ? reply->path : "(request)",
		    status == BUTLER_OK ? strerror(reply->error)
		                        : butler_strerror(status));
		app->errors++;
	}
	/* The self-test presses Cancel from here, half-way through the
	 * second run: there is certainly work left to cancel. */
	if (app->phase == ST_CANCEL && app->state == RUN_ACTIVE
	    && app->hashed >= app->cancel_after)
		g_signal_emit_by_name(app->cancel, "clicked");
	pump(app);
}

static void
on_progress(
    butler_server *self, struct gtk_offload_hash_progress *p, void *user)
{
	struct job *job = user;

	(void)self;
	job->done = p->done;
	job->app->progress_msgs++;
}

static void
on_start(GtkWidget *button, gpointer user)
{
	struct app *app = user;
	const char *root = gtk_editable_get_text(GTK_EDITABLE(app->entry));
	struct gtk_offload_scan req
	    = { strdup(root[0] ? root : DEFAULT_ROOT) };
	int rv;

	(void)button;
	if (app->state != RUN_IDLE || app->quitting) {
		free(req.root);
		return;
	}
	clear_results(app);
	g_ptr_array_set_size(app->fresh, 0);
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

/* Cancels every request in flight (each callback runs, with ECANCELED,
 * inside butler_cancel) and drops the paths not yet asked for. The `found`
 * messages still on their way are dropped by on_found. */
static void
cancel_all(struct app *app)
{
	GList *ids = NULL;
	GHashTableIter it;
	gpointer key, value;

	atomic_fetch_add(&app->shared.epoch, 1);
	g_queue_clear_full(&app->todo, free);
	/* Each cancel edits the table: collect the ids first. */
	g_hash_table_iter_init(&it, app->in_flight);
	while (g_hash_table_iter_next(&it, &key, &value))
		ids = g_list_prepend(ids, key);
	for (GList *l = ids; l != NULL; l = l->next)
		(void)butler_cancel(app->hub, *(uint64_t *)l->data);
	g_list_free(ids);
}

static void
on_cancel(GtkWidget *button, gpointer user)
{
	struct app *app = user;

	(void)button;
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

static gboolean
on_close(GtkWindow *window, gpointer user)
{
	struct app *app = user;

	(void)window;
	app->state = RUN_CANCELLING;
	cancel_all(app);
	app->quitting = true;
	g_main_loop_quit(app->loop);
	return FALSE; /* let GTK destroy the window */
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

/* Shows a result line ("digest  path") as a short digest and the path. */
static void
bind_row(GtkSignalListItemFactory *factory, GObject *item, gpointer user)
{
	GtkListItem *li = GTK_LIST_ITEM(item);
	const char *line
	    = gtk_string_object_get_string(gtk_list_item_get_item(li));
	char *text = strlen(line) > 66
	    ? g_strdup_printf("%.16s…  %s", line, line + 66)
	    : g_strdup(line);

	(void)factory;
	(void)user;
	gtk_label_set_text(GTK_LABEL(gtk_list_item_get_child(li)), text);
	g_free(text);
}

static void
build_window(struct app *app, const char *root)
{
	GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 8);
	GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
	GtkWidget *scroll = gtk_scrolled_window_new();
	GtkListItemFactory *factory = gtk_signal_list_item_factory_new();

	app->window = gtk_window_new();
	gtk_window_set_title(GTK_WINDOW(app->window), "butler — GTK offload");
	gtk_window_set_default_size(GTK_WINDOW(app->window), 820, 560);
	gtk_widget_set_margin_start(box, 12);
	gtk_widget_set_margin_end(box, 12);
	gtk_widget_set_margin_top(box, 12);
	gtk_widget_set_margin_bottom(box, 12);

	app->entry = gtk_entry_new();
	gtk_editable_set_text(GTK_EDITABLE(app->entry), root);
	gtk_widget_set_hexpand(app->entry, TRUE);
	/* Like the rows: the font is loaded before the first results. */
	gtk_widget_add_css_class(app->entry, "monospace");
	app->start = gtk_button_new_with_mnemonic("_Start");
	app->cancel = gtk_button_new_with_mnemonic("_Cancel");
	gtk_box_append(GTK_BOX(row), gtk_label_new("Directory:"));
	gtk_box_append(GTK_BOX(row), app->entry);
	gtk_box_append(GTK_BOX(row), app->start);
	gtk_box_append(GTK_BOX(row), app->cancel);

	app->bar = gtk_progress_bar_new();
	gtk_progress_bar_set_show_text(GTK_PROGRESS_BAR(app->bar), TRUE);
	app->status = gtk_label_new(NULL);
	gtk_label_set_xalign(GTK_LABEL(app->status), 0);
	gtk_label_set_ellipsize(GTK_LABEL(app->status), PANGO_ELLIPSIZE_END);

	g_signal_connect(factory, "setup", G_CALLBACK(setup_row), NULL);
	g_signal_connect(factory, "bind", G_CALLBACK(bind_row), NULL);
	app->results = gtk_string_list_new(NULL);
	app->selection
	    = gtk_no_selection_new(G_LIST_MODEL(g_object_ref(app->results)));
	/* The view owns the selection; the selection a reference to the
	 * list; app->results keeps its own. */
	gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(scroll),
	    gtk_list_view_new(GTK_SELECTION_MODEL(app->selection), factory));
	gtk_widget_set_vexpand(scroll, TRUE);
	gtk_scrolled_window_set_has_frame(GTK_SCROLLED_WINDOW(scroll), TRUE);

	gtk_box_append(GTK_BOX(box), row);
	gtk_box_append(GTK_BOX(box), app->bar);
	gtk_box_append(GTK_BOX(box), app->status);
	gtk_box_append(GTK_BOX(box), scroll);
	gtk_window_set_child(GTK_WINDOW(app->window), box);

	g_signal_connect(app->start, "clicked", G_CALLBACK(on_start), app);
	g_signal_connect(app->entry, "activate", G_CALLBACK(on_start), app);
	g_signal_connect(app->cancel, "clicked", G_CALLBACK(on_cancel), app);
	g_signal_connect(
	    app->window, "close-request", G_CALLBACK(on_close), app);
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
	/* Second run: press Cancel when half of the results are in. */
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

/* Takes the screenshot once the window has settled; tries a few frames
 * more if the window has not drawn itself yet. */
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
	app->phase = ST_END;
	gtk_window_close(GTK_WINDOW(app->window));
	return G_SOURCE_REMOVE;
}

static void
self_test_cancelled(struct app *app)
{
	app->phase = ST_SHOT;
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
	check(app, gtk_widget_get_sensitive(app->start),
	    "Start is not available after cancel");
	check(app, !gtk_widget_get_sensitive(app->cancel),
	    "Cancel is still available after cancel");
	check(app, app->errors == 0, "run 2 had errors");
	/* Let the window lay out and draw its final state first. */
	g_timeout_add(300, self_test_shot, app);
}

static gboolean
self_test_begin(gpointer user)
{
	struct app *app = user;

	app->phase = ST_FULL;
	g_signal_emit_by_name(app->start, "clicked");
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
	gtk_window_close(GTK_WINDOW(app->window));
	return G_SOURCE_REMOVE;
}

/* ---- main ------------------------------------------------------------- */

static int
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: butler-gtk-offload [--in-flight N] [DIRECTORY]\n"
	    "       butler-gtk-offload --self-test DIR --screenshot FILE.png "
	    "[--expect SHA256SUMS]\n"
	    "Hashes every regular file under DIRECTORY (default %s) on a "
	    "pool of\nbutler servers while the GTK window stays responsive.\n",
	    DEFAULT_ROOT);
	return code;
}

int
main(int argc, char **argv)
{
	struct app app = { .max_in_flight = 8, .outcome = "Ready" };
	struct gtk_offload_ui_handlers ui
	    = { .found = on_found, .scan_done = on_scan_done };
	struct gtk_offload_scanner_handlers scanner
	    = { .on_start = run_in_background, .scan = scan };
	struct gtk_offload_hasher_handlers hasher
	    = { .on_start = run_in_background, .hash_file = hash_file };
	const char *root = DEFAULT_ROOT;
	guint redraw;
	size_t pending;
	int rv, code;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0)
			return usage(0);
		else if (strcmp(argv[i], "--in-flight") == 0 && i + 1 < argc)
			app.max_in_flight = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--self-test") == 0 && i + 1 < argc)
			app.test_dir = argv[++i];
		else if (strcmp(argv[i], "--screenshot") == 0 && i + 1 < argc)
			app.shot = argv[++i];
		else if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc)
			app.expect = argv[++i];
		else if (argv[i][0] != '-')
			root = argv[i];
		else
			return usage(2);
	}
	if (app.max_in_flight == 0
	    || (app.test_dir == NULL) != (app.shot == NULL))
		return usage(2);
	if (app.test_dir != NULL)
		root = app.test_dir;

	if (!gtk_init_check()) {
		fprintf(stderr, "butler-gtk-offload: cannot open a display\n");
		return 1;
	}
	app.loop = g_main_loop_new(NULL, FALSE);
	app.in_flight = g_hash_table_new(g_int64_hash, g_int64_equal);
	app.fresh = g_ptr_array_new_with_free_func(g_free);
	g_queue_init(&app.todo);
	atomic_init(&app.shared.epoch, 0);

	rv = butler_hub_new(&app.hub, &gtk_offload_spec);
	if (rv == BUTLER_OK)
		rv = gtk_offload_ui_register(app.hub, &ui, &app);
	if (rv == BUTLER_OK)
		rv = gtk_offload_scanner_register(
		    app.hub, &scanner, &app.shared);
	if (rv == BUTLER_OK)
		rv = gtk_offload_hasher_register(
		    app.hub, &hasher, &app.shared);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(app.hub);
	if (rv == BUTLER_OK)
		rv = butler_glib_attach(
		    app.hub, GTK_OFFLOAD_SERVER_UI, NULL, 64, &app.source);
	if (rv != BUTLER_OK) {
		fprintf(
		    stderr, "butler-gtk-offload: %s\n", butler_strerror(rv));
		butler_hub_free(app.hub);
		return 1;
	}
	/* The adapter's source runs below GTK's layout and drawing
	 * (BUTLER_GLIB_PRIORITY): a steady stream of results cannot keep the
	 * window from repainting. */

	build_window(&app, root);
	redraw = g_timeout_add(REFRESH_MS, on_refresh, &app);
	if (app.test_dir != NULL) {
		g_signal_connect(
		    app.window, "map", G_CALLBACK(self_test_mapped), &app);
		app.watchdog = g_timeout_add_seconds(
		    SELF_TEST_LIMIT_S, self_test_timeout, &app);
	}
	gtk_window_present(GTK_WINDOW(app.window));
	g_main_loop_run(app.loop);

	/* Quit: the window is gone and every request was cancelled. Stop
	 * draining on GLib, then stop the servers, dropping queued work. */
	if (app.tick_id != 0)
		g_source_remove(app.tick_id);
	g_source_remove(redraw);
	if (app.watchdog != 0)
		g_source_remove(app.watchdog);
	g_source_destroy(app.source);
	g_source_unref(app.source);
	pending = butler_hub_pending(app.hub, NULL, NULL);
	butler_hub_stop(app.hub, BUTLER_STOP_DISCARD);
	fprintf(stderr, "longest main-loop stall: %.2f ms\n",
	    app.worst_stall_us / 1000.0);
	fprintf(stderr, "requests still pending: %zu\n", pending);
	butler_hub_free(app.hub);
	g_queue_clear_full(&app.todo, free);
	g_hash_table_destroy(app.in_flight);
	g_ptr_array_unref(app.fresh);
	if (app.drop_id != 0)
		g_source_remove(app.drop_id);
	g_clear_object(&app.old_results);
	g_object_unref(app.results);
	g_main_loop_unref(app.loop);

	code = 0;
	if (app.test_dir != NULL) {
		check(
		    &app, app.phase == ST_END, "the self-test did not finish");
		g_print("self-test: %s\n", app.failures ? "FAILED" : "passed");
		code = app.failures ? 1 : 0;
	}
	return code;
}
