/*
 * butler-offload — the flagship demo: a GLib main loop that stays
 * responsive while thread servers do the heavy work.
 *
 * The main loop (server `ui`, an external-loop server attached to GLib)
 * asks a `scanner` server to walk a directory tree; the scanner streams
 * every regular file back as a `found` message. The main loop keeps a
 * bounded number of `hash_file` requests in flight to a pool of four
 * `hasher` servers, which compute SHA-256 with GLib's GChecksum and post
 * progress for big files (only the latest progress counts). Replies and
 * progress arrive on the main loop as callbacks: no polling, no locks in
 * this file. The output is sha256sum's format, so it can be checked with
 * `sha256sum -c`.
 *
 * While it runs, a high-priority 1 ms GLib timer measures how late the
 * main loop gets to it: the longest main-loop stall. Ctrl-C cancels the
 * requests in flight and stops everything cleanly.
 *
 * Usage: butler-offload [--in-flight N] [--quiet] [DIRECTORY]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <butler/glib.h>

#include "offload.butler.h"

#define DEFAULT_ROOT "/usr/share"
#define CHUNK (256 * 1024)
#define PROGRESS_EVERY (4u << 20) /* post progress every 4 MiB */

/* ---- background servers ----------------------------------------------- */

/*
 * The scanner and the hashers are background threads (Linux's SCHED_IDLE):
 * when the work saturates every core, the kernel runs the main loop the
 * moment it wakes, instead of letting a worker finish its time slice
 * (about 4 ms here with nice 10, the fallback). The price: background
 * threads only get the CPU time nothing else wants, which is what a
 * background job on a desktop should get. Runs on each server's own
 * thread, first.
 */
static int
run_in_background(butler_server *self, void *user)
{
	struct sched_param param = { 0 };

	(void)self;
	(void)user;
	if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) != 0
	    && setpriority(PRIO_PROCESS, (id_t)gettid(), 10) != 0)
		perror("butler-offload: setpriority");
	return BUTLER_OK; /* a normal priority is no reason not to start */
}

/* ---- the hasher pool: runs on worker threads -------------------------- */

static int
hash_file(butler_server *self, void *user, struct offload_hash_file *msg)
{
	struct offload_file_hashed out = { .path = msg->path };
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
	unsigned char *buf = malloc(CHUNK);
	uint64_t next_progress = PROGRESS_EVERY;
	struct stat st;
	ssize_t n;
	int fd;

	(void)user;
	msg->path = NULL; /* moved into the reply */
	fd = open(out.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || buf == NULL || fstat(fd, &st) != 0) {
		out.error = buf == NULL ? ENOMEM : errno;
		goto out;
	}
	while ((n = read(fd, buf, CHUNK)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			out.error = errno;
			goto out;
		}
		g_checksum_update(sum, buf, (gssize)n);
		out.bytes += (uint64_t)n;
		if (out.bytes >= next_progress) {
			struct offload_hash_progress p
			    = { out.bytes, (uint64_t)st.st_size };

			(void)offload_progress_hash_file(self, &p);
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
	return offload_reply_hash_file(self, &out);
}

/* ---- the scanner: walks the tree on its own thread -------------------- */

struct walk {
	butler_hub *hub;
	uint64_t files, bytes;
	uint32_t errors;
	bool stopped;
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
			struct offload_found f
			    = { strdup(child), (uint64_t)st.st_size };
			/* The ui's inbox blocks when full: the scanner waits
			 * for the main loop instead of racing ahead. */
			int rv = offload_send_ui_found(w->hub, &f);

			if (rv == BUTLER_OK) {
				w->files++;
				w->bytes += f.size;
			} else {
				free(f.path);
				w->stopped = rv == BUTLER_ECLOSED;
				w->errors += !w->stopped;
			}
		}
		g_free(child);
	}
	closedir(dir);
}

static int
scan(butler_server *self, void *user, struct offload_scan *msg)
{
	struct walk w = { .hub = butler_server_hub(self) };
	struct offload_scan_done done;
	int dfd = open(msg->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	(void)user;
	if (dfd >= 0)
		walk_dir(&w, dfd, msg->root);
	else
		w.errors++;
	done = (struct offload_scan_done) { w.files, w.bytes, w.errors };
	if (!w.stopped)
		(void)offload_send_ui_scan_done(w.hub, &done);
	return BUTLER_OK;
}

/* ---- the main loop ---------------------------------------------------- */

struct app {
	butler_hub *hub;
	GMainLoop *loop;
	GQueue todo;           /* paths found and not yet asked for */
	GHashTable *in_flight; /* request id -> struct job */
	unsigned max_in_flight;
	bool scan_done, interrupted, quiet, tty;
	uint64_t found, found_bytes, hashed, hashed_bytes, errors;
	int64_t t_start, t_end;
	int64_t last_tick, max_stall_us;
	const char *root;
};

/* One request in flight; the callbacks get it as their user pointer. */
struct job {
	struct app *app;
	uint64_t id;
	uint64_t done, total; /* from progress messages */
};

static void on_hashed(butler_server *self, int status,
    struct offload_file_hashed *reply, void *user);
static void on_progress(
    butler_server *self, struct offload_hash_progress *p, void *user);

static void
maybe_finish(struct app *app)
{
	if (app->scan_done && g_queue_is_empty(&app->todo)
	    && g_hash_table_size(app->in_flight) == 0)
		g_main_loop_quit(app->loop);
}

/* Keeps up to max_in_flight hash requests going. */
static void
pump(struct app *app)
{
	while (!app->interrupted
	    && g_hash_table_size(app->in_flight) < app->max_in_flight
	    && !g_queue_is_empty(&app->todo)) {
		struct offload_hash_file req
		    = { g_queue_pop_head(&app->todo) };
		struct job *job = g_new0(struct job, 1);
		int rv;

		job->app = app;
		rv = offload_call_hasher_hash_file(
		    app->hub, &req, -1, on_hashed, on_progress, job, &job->id);
		if (rv != BUTLER_OK) {
			fprintf(stderr, "butler-offload: %s: %s\n", req.path,
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
on_found(butler_server *self, void *user, struct offload_found *msg)
{
	struct app *app = user;

	(void)self;
	app->found++;
	app->found_bytes += msg->size;
	g_queue_push_tail(&app->todo, msg->path);
	msg->path = NULL; /* keep it: the queue owns it now */
	pump(app);
	return BUTLER_OK;
}

static int
on_scan_done(butler_server *self, void *user, struct offload_scan_done *msg)
{
	struct app *app = user;

	(void)self;
	if (msg->errors > 0)
		fprintf(stderr,
		    "butler-offload: %u entries could not be read\n",
		    msg->errors);
	app->scan_done = true;
	maybe_finish(app);
	return BUTLER_OK;
}

static void
clear_bar(const struct app *app)
{
	if (app->tty && !app->quiet)
		fputs("\r\033[K", stderr);
}

static void
on_hashed(butler_server *self, int status, struct offload_file_hashed *reply,
    void *user)
{
	struct job *job = user;
	struct app *app = job->app;

	(void)self;
	g_hash_table_remove(app->in_flight, &job->id);
	if (status == BUTLER_OK && reply->error == 0) {
		clear_bar(app);
		printf("%s  %s\n", reply->digest, reply->path);
		app->hashed++;
		app->hashed_bytes += reply->bytes;
	} else if (status != BUTLER_ECANCELED) {
		clear_bar(app);
		fprintf(stderr, "butler-offload: %s: %s\n",
		    status == BUTLER_OK ? reply->path : "(request)",
		    status == BUTLER_OK ? strerror(reply->error)
		                        : butler_strerror(status));
		app->errors++;
	}
	g_free(job);
	pump(app);
}

static void
on_progress(butler_server *self, struct offload_hash_progress *p, void *user)
{
	struct job *job = user;

	(void)self;
	job->done = p->done;
	job->total = p->total;
}

/* Measures how late the main loop runs a 1 ms high-priority timer. */
static gboolean
on_tick(gpointer user)
{
	struct app *app = user;
	int64_t now = g_get_monotonic_time(), late;

	late = now - app->last_tick - 1000;
	if (app->last_tick != 0 && late > app->max_stall_us)
		app->max_stall_us = late;
	app->last_tick = now;
	return G_SOURCE_CONTINUE;
}

static gboolean
on_draw(gpointer user)
{
	struct app *app = user;
	double secs = (g_get_monotonic_time() - app->t_start) / 1e6;
	uint64_t total = app->scan_done ? app->found : app->found + 1;
	unsigned width = 30,
	         fill = total ? (unsigned)(width * app->hashed / total) : 0;
	char bar[64];
	GHashTableIter it;
	gpointer key, value;
	double big = -1;

	if (!app->tty || app->quiet)
		return G_SOURCE_CONTINUE;
	g_hash_table_iter_init(&it, app->in_flight);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		struct job *job = value;

		if (job->total > 0 && (double)job->done / job->total > big)
			big = (double)job->done / job->total;
	}
	memset(bar, '#', fill);
	memset(bar + fill, '.', width - fill);
	bar[width] = '\0';
	fprintf(stderr,
	    "\r\033[K[%s] %llu/%llu%s files  %.1f MB/s  %u in flight%s", bar,
	    (unsigned long long)app->hashed, (unsigned long long)app->found,
	    app->scan_done ? "" : "+",
	    secs > 0 ? app->hashed_bytes / secs / 1e6 : 0.0,
	    g_hash_table_size(app->in_flight), big >= 0 ? "  (big file " : "");
	if (big >= 0)
		fprintf(stderr, "%.0f%%)", big * 100);
	fflush(stderr);
	return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint(gpointer user)
{
	struct app *app = user;
	GHashTableIter it;
	gpointer key, value;
	GList *ids = NULL;

	clear_bar(app);
	fprintf(stderr,
	    "butler-offload: interrupted, cancelling %u requests\n",
	    g_hash_table_size(app->in_flight));
	app->interrupted = true;
	/* Cancel delivers each callback (ECANCELED) right away, which edits
	 * the table: collect the ids first. */
	g_hash_table_iter_init(&it, app->in_flight);
	while (g_hash_table_iter_next(&it, &key, &value))
		ids = g_list_prepend(ids, key);
	for (GList *l = ids; l != NULL; l = l->next)
		(void)butler_cancel(app->hub, *(uint64_t *)l->data);
	g_list_free(ids);
	g_main_loop_quit(app->loop);
	return G_SOURCE_REMOVE;
}

static void
print_stats(struct app *app)
{
	static const unsigned servers[] = { OFFLOAD_SERVER_UI,
		OFFLOAD_SERVER_SCANNER, OFFLOAD_SERVER_HASHER };
	double secs = (app->t_end - app->t_start) / 1e6;

	fprintf(stderr,
	    "\n%llu files, %.1f MB hashed in %.2f s: %.0f files/s, "
	    "%.1f MB/s (%llu errors)\n",
	    (unsigned long long)app->hashed, app->hashed_bytes / 1e6, secs,
	    secs > 0 ? app->hashed / secs : 0.0,
	    secs > 0 ? app->hashed_bytes / secs / 1e6 : 0.0,
	    (unsigned long long)app->errors);
	fprintf(stderr, "longest main-loop stall: %.2f ms\n",
	    app->max_stall_us / 1000.0);
	fprintf(stderr, "%-8s %9s %9s %6s %8s %8s %8s %10s\n", "server",
	    "sent", "handled", "failed", "dropped", "hiwater", "wakeups",
	    "busy ms");
	for (size_t i = 0; i < G_N_ELEMENTS(servers); i++) {
		butler_stats st;

		if (butler_server_stats(app->hub, servers[i], &st)
		    != BUTLER_OK)
			continue;
		fprintf(stderr,
		    "%-8s %9llu %9llu %6llu %8llu %8llu %8llu %10.1f\n",
		    offload_spec.servers[servers[i]].name,
		    (unsigned long long)st.sent,
		    (unsigned long long)st.handled,
		    (unsigned long long)st.failed,
		    (unsigned long long)st.dropped,
		    (unsigned long long)st.high_water,
		    (unsigned long long)st.wakeups, st.handler_ns / 1e6);
	}
}

static int
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: butler-offload [--in-flight N] [--quiet] [DIRECTORY]\n"
	    "Hashes every regular file under DIRECTORY (default %s) on a "
	    "pool of\nbutler servers while the GLib main loop stays "
	    "responsive.\nPrints sha256sum-style lines on stdout; progress "
	    "and statistics on stderr.\n",
	    DEFAULT_ROOT);
	return code;
}

int
main(int argc, char **argv)
{
	struct app app = { .max_in_flight = 8, .root = DEFAULT_ROOT };
	struct offload_ui_handlers ui
	    = { .found = on_found, .scan_done = on_scan_done };
	struct offload_scanner_handlers scanner
	    = { .on_start = run_in_background, .scan = scan };
	struct offload_hasher_handlers hasher
	    = { .on_start = run_in_background, .hash_file = hash_file };
	struct offload_scan req;
	GSource *source = NULL;
	guint tick, draw;
	int rv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0)
			return usage(0);
		else if (strcmp(argv[i], "--quiet") == 0)
			app.quiet = true;
		else if (strcmp(argv[i], "--in-flight") == 0 && i + 1 < argc)
			app.max_in_flight = (unsigned)atoi(argv[++i]);
		else if (argv[i][0] != '-')
			app.root = argv[i];
		else
			return usage(2);
	}
	if (app.max_in_flight == 0)
		return usage(2);
	app.tty = isatty(STDERR_FILENO);
	app.in_flight = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_queue_init(&app.todo);
	app.loop = g_main_loop_new(NULL, FALSE);

	rv = butler_hub_new(&app.hub, &offload_spec);
	if (rv == BUTLER_OK)
		rv = offload_ui_register(app.hub, &ui, &app);
	if (rv == BUTLER_OK)
		rv = offload_scanner_register(app.hub, &scanner, NULL);
	if (rv == BUTLER_OK)
		rv = offload_hasher_register(app.hub, &hasher, NULL);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(app.hub);
	if (rv == BUTLER_OK)
		rv = butler_glib_attach(
		    app.hub, OFFLOAD_SERVER_UI, NULL, 64, &source);
	if (rv != BUTLER_OK) {
		fprintf(stderr, "butler-offload: %s\n", butler_strerror(rv));
		butler_hub_free(app.hub);
		return 1;
	}

	req.root = strdup(app.root);
	rv = offload_send_scanner_scan(app.hub, &req);
	if (rv != BUTLER_OK) {
		free(req.root);
		fprintf(stderr, "butler-offload: %s\n", butler_strerror(rv));
	}
	app.t_start = g_get_monotonic_time();
	tick = g_timeout_add_full(G_PRIORITY_HIGH, 1, on_tick, &app, NULL);
	draw = g_timeout_add(100, on_draw, &app);
	g_unix_signal_add(SIGINT, on_sigint, &app);
	if (rv == BUTLER_OK)
		g_main_loop_run(app.loop);
	app.t_end = g_get_monotonic_time();
	g_source_remove(tick);
	g_source_remove(draw);
	clear_bar(&app);
	fflush(stdout);

	/* Interrupted: whatever is still queued is destroyed, not hashed. */
	butler_hub_stop(app.hub,
	    app.interrupted ? BUTLER_STOP_DISCARD : BUTLER_STOP_DRAIN);
	print_stats(&app);
	fprintf(stderr, "requests still pending: %zu\n",
	    butler_hub_pending(app.hub, NULL, NULL));
	g_source_destroy(source);
	g_source_unref(source);
	butler_hub_free(app.hub);
	g_queue_clear_full(&app.todo, free);
	g_hash_table_destroy(app.in_flight);
	g_main_loop_unref(app.loop);
	return app.interrupted ? 130 : (app.errors ? 1 : 0);
}
