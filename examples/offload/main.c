/* SPDX-License-Identifier: MIT */
/*
 * butler-offload — the flagship demo: a GLib main loop that stays
 * responsive while thread servers do the heavy work.
 *
 * The main loop (server `ui`, an external-loop server attached to GLib)
 * asks a `scanner` server to walk a directory tree; the scanner streams
 * every regular file back as a `found` message, and every entry it cannot
 * read as a `scan_error`. The main loop keeps a bounded number of
 * `hash_file` requests in flight to a pool of four `hasher` servers, which
 * compute SHA-256 with GLib's GChecksum and post progress for big files
 * (only the latest progress counts). Replies and progress arrive on the
 * main loop as callbacks: no polling, no locks in this file.
 *
 * The digests are written in sha256sum's format, so `sha256sum -c` checks
 * them: to stdout when it is not a terminal (a pipe, a file), otherwise to
 * ./butler-offload.sha256, or wherever --output says. The terminal shows
 * one steady progress line on stderr instead (files and bytes; "scanning"
 * until the whole tree is known, then a bar), then a summary: throughput,
 * the longest main-loop stall (how late a high-priority 1 ms GLib timer
 * ran), the hub's statistics, and for the main message kinds the median
 * and 99th percentile of their time in the inbox and in the handler
 * (metrics). Ctrl-C or SIGTERM cancels the requests
 * in flight and stops everything cleanly; a second one kills at once.
 *
 * Usage: butler-offload [-o FILE] [--in-flight N] [--quiet] [DIRECTORY]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <butler/glib.h>

#include "offload.butler.h"

#define DEFAULT_ROOT "/usr/share"
#define DEFAULT_OUTPUT "butler-offload.sha256"
#define CHUNK (256 * 1024)
#define PROGRESS_EVERY (4u << 20) /* post progress every 4 MiB */
#define DRAW_MS 100               /* progress line and output flush */
#define BAR_MAX 30                /* widest progress bar, in columns */

/*
 * What the main loop tells the servers without a message. A hasher in the
 * middle of a big file or the scanner deep in a tree does not read its
 * inbox, so on Ctrl-C the main loop sets `stop` and the handlers poll it
 * between chunks and between entries.
 */
struct shared {
	atomic_bool stop;
};

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
	struct shared *shared = user;
	struct offload_file_hashed out = { .path = msg->path };
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
		if (n < 0 || atomic_load(&shared->stop)) {
			out.error = n < 0 ? errno : ECANCELED;
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
	struct shared *shared;
	uint64_t skip_dev, skip_ino; /* the digests file */
	uint64_t files, bytes;
	uint32_t errors;
	bool closed; /* the hub is stopping: sends fail */
};

static bool
walk_stopped(const struct walk *w)
{
	return w->closed || atomic_load(&w->shared->stop);
}

/* Tells the ui that `path` could not be read, and why (an errno). */
static void
walk_error(struct walk *w, const char *path, int error)
{
	struct offload_scan_error e = { strdup(path), error };
	int rv = e.path == NULL ? BUTLER_ENOMEM
	                        : offload_send_ui_scan_error(w->hub, &e);

	w->errors++;
	if (rv != BUTLER_OK) {
		free(e.path);
		w->closed = rv == BUTLER_ECLOSED;
	}
}

static void
walk_file(struct walk *w, const char *path, const struct stat *st)
{
	struct offload_found f = { strdup(path), (uint64_t)st->st_size };
	/* The ui's inbox blocks when full: the scanner waits for the main
	 * loop instead of racing ahead. */
	int rv = f.path == NULL ? BUTLER_ENOMEM
	                        : offload_send_ui_found(w->hub, &f);

	if (rv == BUTLER_OK) {
		w->files++;
		w->bytes += f.size;
		return;
	}
	free(f.path);
	if (rv == BUTLER_ECLOSED)
		w->closed = true;
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
	while (!walk_stopped(w)) {
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
		} else if (S_ISREG(st.st_mode)
		    && ((uint64_t)st.st_ino != w->skip_ino
		        || (uint64_t)st.st_dev != w->skip_dev)) {
			walk_file(w, child, &st);
		}
		g_free(child);
	}
	closedir(dir);
}

/* Walks msg->root and ends with scan_done unless the hub is stopping, so
 * the ui knows when the tree is complete. */
static int
scan(butler_server *self, void *user, struct offload_scan *msg)
{
	struct walk w = { .hub = butler_server_hub(self),
		.shared = user,
		.skip_dev = msg->skip_dev,
		.skip_ino = msg->skip_ino };
	struct offload_scan_done done;
	int dfd = open(msg->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd >= 0)
		walk_dir(&w, dfd, msg->root);
	else
		walk_error(&w, msg->root, errno);
	done = (struct offload_scan_done) { w.files, w.bytes, w.errors };
	if (!w.closed)
		(void)offload_send_ui_scan_done(w.hub, &done);
	return BUTLER_OK;
}

/* ---- the main loop ---------------------------------------------------- */

struct app {
	butler_hub *hub;
	struct shared shared;
	GMainLoop *loop;
	GQueue todo;           /* paths found and not yet asked for */
	GHashTable *in_flight; /* request id -> struct job */
	unsigned max_in_flight;
	bool scan_done;
	int signal; /* the signal that cancelled the run, or 0 */
	uint64_t found, found_bytes, hashed, hashed_bytes;
	uint64_t errors, scan_errors, not_asked;
	int64_t t_start, t_end;
	int64_t last_tick, max_stall_us;
	guint signal_ids[3];
	const char *root;

	/* the digests */
	FILE *out;
	const char *out_path; /* NULL: stdout */
	GString *held;        /* for stdout on the progress line's terminal */
	int write_error;      /* the first errno writing them, or 0 */

	/* the progress line */
	bool progress; /* stderr is a terminal and not --quiet */
	bool drawing;  /* the run goes on: the line is kept up to date */
	bool shown;    /* the line is on the screen now */
};

/* One request in flight; the callbacks get it as their user pointer. */
struct job {
	struct app *app;
	uint64_t id;
	char *path;    /* for error messages */
	uint64_t done; /* bytes hashed so far, from progress messages */
};

static void on_hashed(butler_server *self, int status,
    struct offload_file_hashed *reply, void *user);
static void on_progress(
    butler_server *self, struct offload_hash_progress *p, void *user);
static void draw(struct app *app);
static void say(struct app *app, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static const char *
plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* Removes the progress line from the screen, if it is there. */
static void
erase(struct app *app)
{
	if (!app->shown)
		return;
	fputs("\r\033[K", stderr);
	app->shown = false;
}

/* Prints one message on stderr, above the progress line. */
static void
say(struct app *app, const char *fmt, ...)
{
	va_list ap;

	erase(app);
	fputs("butler-offload: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (app->drawing)
		draw(app);
}

/* Writes one line the way sha256sum does: a name with a backslash or a
 * newline is escaped, and the line then starts with a backslash. */
static void
write_digest(struct app *app, const char *digest, const char *path)
{
	GString *line = app->held;
	bool escape = strpbrk(path, "\\\n") != NULL;

	if (line == NULL)
		line = g_string_new(NULL);
	if (escape)
		g_string_append_c(line, '\\');
	g_string_append(line, digest);
	g_string_append(line, "  ");
	for (const char *p = path; *p != '\0'; p++) {
		if (escape && *p == '\\')
			g_string_append(line, "\\\\");
		else if (*p == '\n')
			g_string_append(line, "\\n");
		else
			g_string_append_c(line, *p);
	}
	g_string_append_c(line, '\n');
	if (app->held == NULL) {
		fwrite(line->str, 1, line->len, app->out);
		g_string_free(line, TRUE);
	}
}

/* Sends the held lines to the terminal, above the progress line. */
static void
flush_output(struct app *app)
{
	if (app->held != NULL && app->held->len > 0) {
		erase(app);
		fwrite(app->held->str, 1, app->held->len, app->out);
		g_string_truncate(app->held, 0);
	}
	if (fflush(app->out) != 0 && app->write_error == 0)
		app->write_error = errno;
}

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
	while (app->signal == 0
	    && g_hash_table_size(app->in_flight) < app->max_in_flight
	    && !g_queue_is_empty(&app->todo)) {
		struct offload_hash_file req
		    = { g_queue_pop_head(&app->todo) };
		struct job *job = g_new0(struct job, 1);
		int rv;

		job->app = app;
		job->path = g_strdup(req.path);
		rv = offload_call_hasher_hash_file(
		    app->hub, &req, -1, on_hashed, on_progress, job, &job->id);
		if (rv != BUTLER_OK) {
			say(app, "%s: %s", job->path, butler_strerror(rv));
			free(req.path);
			g_free(job->path);
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
	if (app->signal != 0)
		return BUTLER_OK; /* cancelled: the hub frees the path */
	app->found++;
	app->found_bytes += msg->size;
	g_queue_push_tail(&app->todo, msg->path);
	msg->path = NULL; /* keep it: the queue owns it now */
	pump(app);
	return BUTLER_OK;
}

static int
on_scan_error(butler_server *self, void *user, struct offload_scan_error *msg)
{
	struct app *app = user;

	(void)self;
	app->scan_errors++;
	app->errors++;
	say(app, "%s: %s", msg->path, strerror(msg->error));
	return BUTLER_OK;
}

static int
on_scan_done(butler_server *self, void *user, struct offload_scan_done *msg)
{
	struct app *app = user;

	(void)self;
	if (msg->errors > app->scan_errors) { /* reports that got lost */
		uint64_t lost = msg->errors - app->scan_errors;

		say(app, "%llu more %s could not be read",
		    (unsigned long long)lost,
		    plural(lost, "entry", "entries"));
		app->errors += msg->errors - app->scan_errors;
	}
	app->scan_done = true;
	maybe_finish(app);
	return BUTLER_OK;
}

static void
on_hashed(butler_server *self, int status, struct offload_file_hashed *reply,
    void *user)
{
	struct job *job = user;
	struct app *app = job->app;
	bool cancelled = status == BUTLER_ECANCELED
	    || (status == BUTLER_OK && reply->error == ECANCELED);

	(void)self;
	g_hash_table_remove(app->in_flight, &job->id);
	if (status == BUTLER_OK && reply->error == 0) {
		write_digest(app, reply->digest, reply->path);
		app->hashed++;
		app->hashed_bytes += reply->bytes;
	} else if (!cancelled) {
		say(app, "%s: %s", job->path,
		    status == BUTLER_OK ? strerror(reply->error)
		                        : butler_strerror(status));
		app->errors++;
	}
	g_free(job->path);
	g_free(job);
	pump(app);
}

static void
on_progress(butler_server *self, struct offload_hash_progress *p, void *user)
{
	struct job *job = user;

	(void)self;
	job->done = p->done;
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

/* Formats a byte count in SI units: "950 B", "12.3 kB", "844.1 MB". Not
 * g_format_size(): it puts a UTF-8 no-break space before the unit, which a
 * terminal in the C locale shows as garbage and which would make the
 * progress line longer in bytes than in columns. */
static const char *
format_size(char *buf, size_t size, double bytes)
{
	static const char *const units[] = { "kB", "MB", "GB", "TB", "PB" };
	unsigned u = 0;

	if (bytes < 1000) {
		snprintf(buf, size, "%.0f B", bytes);
		return buf;
	}
	bytes /= 1000;
	while (bytes >= 999.95 && u + 1 < G_N_ELEMENTS(units)) {
		bytes /= 1000;
		u++;
	}
	snprintf(buf, size, "%.1f %s", bytes, units[u]);
	return buf;
}

/* Formats "done/total UNIT" with the unit of the total. */
static void
format_pair(char *buf, size_t size, uint64_t done, uint64_t total)
{
	static const char *const units[]
	    = { "B", "kB", "MB", "GB", "TB", "PB" };
	double scale = 1;
	unsigned u = 0;

	while (
	    (double)total / scale >= 999.95 && u + 1 < G_N_ELEMENTS(units)) {
		scale *= 1000;
		u++;
	}
	snprintf(buf, size, u == 0 ? "%.0f/%.0f %s" : "%.1f/%.1f %s",
	    (double)done / scale, (double)total / scale, units[u]);
}

/*
 * The progress line. Until the scanner has walked the whole tree, a
 * percentage would be one of a moving total, so it says "scanning..." and
 * counts; then it shows a bar of the bytes hashed (big files count as they
 * go). The bar takes the columns the text leaves, so the line never wraps,
 * which would break the carriage-return redraw.
 */
static void
format_progress(const struct app *app, char *line, size_t size, size_t cols)
{
	int64_t now = g_get_monotonic_time();
	double secs = (now - app->t_start) / 1e6, rate;
	uint64_t done = app->hashed_bytes;
	GHashTableIter it;
	gpointer key, value;
	char a[32], b[32], r[32], eta[32] = "";
	char text[256], bar[BAR_MAX + 1];
	size_t len, width;
	unsigned pct;

	g_hash_table_iter_init(&it, app->in_flight);
	while (g_hash_table_iter_next(&it, &key, &value))
		done += ((struct job *)value)->done;
	rate = secs > 0 ? done / secs : 0;
	format_size(r, sizeof r, rate);
	if (!app->scan_done) {
		snprintf(line, size,
		    "scanning... found %llu files, %s | hashed %llu files, "
		    "%s | %s/s",
		    (unsigned long long)app->found,
		    format_size(a, sizeof a, (double)app->found_bytes),
		    (unsigned long long)app->hashed,
		    format_size(b, sizeof b, (double)done), r);
		return;
	}
	if (done > app->found_bytes) /* files that grew since the scan */
		done = app->found_bytes;
	pct = app->found_bytes ? (unsigned)(100.0 * done / app->found_bytes)
	                       : 100;
	format_pair(a, sizeof a, done, app->found_bytes);
	if (rate > 0 && secs >= 1) {
		unsigned left = (unsigned)((app->found_bytes - done) / rate);

		if (left >= 3600)
			snprintf(eta, sizeof eta, "  ETA %uh%02um",
			    left / 3600, left / 60 % 60);
		else if (left >= 60)
			snprintf(eta, sizeof eta, "  ETA %um%02us", left / 60,
			    left % 60);
		else
			snprintf(eta, sizeof eta, "  ETA %us", left);
	}
	snprintf(text, sizeof text, "%3u%%  %llu/%llu files  %s  %s/s%s", pct,
	    (unsigned long long)app->hashed, (unsigned long long)app->found, a,
	    r, eta);
	len = strlen(text);
	width = cols > len + 4 ? MIN(cols - len - 4, BAR_MAX) : 0;
	if (width < 10) {
		snprintf(line, size, "%s", text);
		return;
	}
	memset(bar, '#', width * pct / 100);
	memset(bar + width * pct / 100, '-', width - width * pct / 100);
	bar[width] = '\0';
	snprintf(line, size, "[%s] %s", bar, text);
}

/* Redraws the progress line in place: text first, then the rest of the
 * old line is cleared, so the screen never shows an empty line. Lines
 * held for the same terminal go above it first. */
static void
draw(struct app *app)
{
	struct winsize ws;
	size_t cols = 80, len;
	char line[512];

	flush_output(app);
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
		cols = ws.ws_col;
	format_progress(app, line, sizeof line, cols - 1);
	len = MIN(strlen(line), cols - 1);
	fprintf(stderr, "\r%.*s\033[K", (int)len, line);
	app->shown = true;
}

static gboolean
on_draw(gpointer user)
{
	struct app *app = user;

	if (app->drawing)
		draw(app);
	else
		flush_output(app);
	return G_SOURCE_CONTINUE;
}

static const char *
signal_name(int signo)
{
	return signo == SIGINT ? "SIGINT"
	    : signo == SIGTERM ? "SIGTERM"
	                       : "SIGHUP";
}

/*
 * Cancels the run: the hashers and the scanner see `stop` between chunks
 * and entries, every request in flight is cancelled (each callback runs,
 * with ECANCELED, inside butler_cancel), and the paths not yet asked for
 * are dropped. The signal sources are removed, so a second signal has its
 * default effect and kills the process if the stop ever hangs.
 */
static void
interrupt(struct app *app, int signo)
{
	GHashTableIter it;
	gpointer key, value;
	GList *ids = NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(app->signal_ids); i++)
		if (app->signal_ids[i] != 0)
			g_source_remove(app->signal_ids[i]);
	memset(app->signal_ids, 0, sizeof app->signal_ids);
	app->signal = signo;
	app->drawing = false;
	atomic_store(&app->shared.stop, true);
	app->not_asked = g_queue_get_length(&app->todo);
	g_queue_clear_full(&app->todo, free);
	say(app,
	    "%s: cancelling %u %s in flight, dropping %llu %s not asked for",
	    signal_name(signo), g_hash_table_size(app->in_flight),
	    plural(g_hash_table_size(app->in_flight), "request", "requests"),
	    (unsigned long long)app->not_asked,
	    plural(app->not_asked, "file", "files"));
	/* Each cancel edits the table: collect the ids first. */
	g_hash_table_iter_init(&it, app->in_flight);
	while (g_hash_table_iter_next(&it, &key, &value))
		ids = g_list_prepend(ids, key);
	for (GList *l = ids; l != NULL; l = l->next)
		(void)butler_cancel(app->hub, *(uint64_t *)l->data);
	g_list_free(ids);
	g_main_loop_quit(app->loop);
}

static gboolean
on_sigint(gpointer user)
{
	interrupt(user, SIGINT);
	return G_SOURCE_REMOVE;
}

static gboolean
on_sigterm(gpointer user)
{
	interrupt(user, SIGTERM);
	return G_SOURCE_REMOVE;
}

static gboolean
on_sighup(gpointer user)
{
	interrupt(user, SIGHUP);
	return G_SOURCE_REMOVE;
}

/* Returns `s` as one shell word, quoted only if it needs to be (free it
 * with g_free). */
static char *
shell_word(const char *s)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyz"
	                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                            "0123456789_./+,:=@%-";

	if (*s != '\0' && strspn(s, plain) == strlen(s))
		return g_strdup(s);
	return g_shell_quote(s);
}

/* Formats a duration: "850 ns", "12.3 us", "4.1 ms", "1.25 s" (ASCII, as
 * format_size()). */
static const char *
format_ns(char *buf, size_t size, uint64_t ns)
{
	if (ns < 1000)
		snprintf(buf, size, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, size, "%.1f us", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, size, "%.1f ms", ns / 1e6);
	else
		snprintf(buf, size, "%.2f s", ns / 1e9);
	return buf;
}

/*
 * One line per main message kind: how long its messages waited in their
 * server's inbox (from the send to the handler's start; a hash_file also
 * waits there for a free hasher) and ran in their handler, the median and
 * the 99th percentile (butler_server_kind_stats(), metrics on).
 */
static void
print_kind_times(struct app *app)
{
	static const struct {
		unsigned server, kind;
		const char *name;
	} kinds[] = {
		{ OFFLOAD_SERVER_UI, OFFLOAD_UI_FOUND, "ui/found" },
		{ OFFLOAD_SERVER_UI, OFFLOAD_UI_SCAN_ERROR, "ui/scan_error" },
		{ OFFLOAD_SERVER_HASHER, OFFLOAD_HASHER_HASH_FILE,
		    "hasher/hash_file" },
	};
	bool header = false;

	for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++) {
		butler_kind_stats ks;
		char q50[16], q99[16], h50[16], h99[16];

		if (butler_server_kind_stats(
		        app->hub, kinds[i].server, kinds[i].kind, &ks)
		        != BUTLER_OK
		    || !ks.metrics || ks.timed == 0)
			continue;
		if (!header)
			fprintf(stderr, "%-17s %8s %9s %9s %11s %9s\n",
			    "message", "count", "queue p50", "p99",
			    "handler p50", "p99");
		header = true;
		fprintf(stderr, "%-17s %8llu %9s %9s %11s %9s\n",
		    kinds[i].name, (unsigned long long)ks.timed,
		    format_ns(q50, sizeof q50, ks.queue_ns_p50),
		    format_ns(q99, sizeof q99, ks.queue_ns_p99),
		    format_ns(h50, sizeof h50, ks.handler_ns_p50),
		    format_ns(h99, sizeof h99, ks.handler_ns_p99));
	}
}

static void
print_summary(struct app *app)
{
	static const unsigned servers[] = { OFFLOAD_SERVER_UI,
		OFFLOAD_SERVER_SCANNER, OFFLOAD_SERVER_HASHER };
	double secs = (app->t_end - app->t_start) / 1e6;
	char bytes[32], total[32], rate[32];

	format_size(bytes, sizeof bytes, (double)app->hashed_bytes);
	format_size(
	    rate, sizeof rate, secs > 0 ? app->hashed_bytes / secs : 0.0);
	if (app->signal != 0)
		fprintf(stderr,
		    "butler-offload: cancelled by %s after %.2f s: %llu of "
		    "%llu%s files, %s of %s hashed\n",
		    signal_name(app->signal), secs,
		    (unsigned long long)app->hashed,
		    (unsigned long long)app->found, app->scan_done ? "" : "+",
		    bytes,
		    format_size(
		        total, sizeof total, (double)app->found_bytes));
	else
		fprintf(stderr,
		    "butler-offload: %llu %s, %s hashed in %.2f s (%.0f "
		    "files/s, %s/s)\n",
		    (unsigned long long)app->hashed,
		    plural(app->hashed, "file", "files"), bytes, secs,
		    secs > 0 ? app->hashed / secs : 0.0, rate);
	if (app->errors > 0)
		fprintf(stderr,
		    "butler-offload: %llu %s could not be read (listed "
		    "above)\n",
		    (unsigned long long)app->errors,
		    plural(app->errors, "entry", "entries"));
	if (app->out_path != NULL) {
		char *quoted = shell_word(app->out_path);

		fprintf(stderr,
		    "butler-offload: digests in %s; check them with sha256sum "
		    "-c %s\n",
		    app->out_path, quoted);
		g_free(quoted);
	}
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
	print_kind_times(app);
}

static int
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: butler-offload [-o FILE] [--in-flight N] [--quiet] "
	    "[DIRECTORY]\n"
	    "Hashes every regular file under DIRECTORY (default %s) on a "
	    "pool of\nbutler servers while the GLib main loop stays "
	    "responsive.\n\n"
	    "  -o, --output FILE  write the sha256sum-style digests to FILE "
	    "(- for stdout);\n"
	    "                     default: stdout if it is not a terminal, "
	    "else ./%s\n"
	    "  --in-flight N      hash requests kept in flight (default 8)\n"
	    "  --quiet            no progress line on the terminal\n\n"
	    "Progress, errors and statistics go to stderr. Exit status: 0 "
	    "when every file\nwas hashed, 1 when an entry could not be read "
	    "(or nothing could), 2 for\nbad usage, 128 + the signal number "
	    "after Ctrl-C or SIGTERM.\n",
	    DEFAULT_ROOT, DEFAULT_OUTPUT);
	return code;
}

/* Opens the digests file (NULL or "-": stdout) and returns its stream,
 * or NULL after saying why not. */
static FILE *
open_output(struct app *app, const char *path)
{
	FILE *f;

	if (path == NULL && !isatty(STDOUT_FILENO))
		path = "-";
	else if (path == NULL)
		path = DEFAULT_OUTPUT;
	if (strcmp(path, "-") == 0)
		return stdout;
	f = fopen(path, "we");
	if (f == NULL)
		fprintf(
		    stderr, "butler-offload: %s: %s\n", path, strerror(errno));
	else
		app->out_path = path;
	return f;
}

int
main(int argc, char **argv)
{
	struct app app = { .max_in_flight = 8, .root = DEFAULT_ROOT };
	struct offload_ui_handlers ui = { .found = on_found,
		.scan_error = on_scan_error,
		.scan_done = on_scan_done };
	struct offload_scanner_handlers scanner
	    = { .on_start = run_in_background, .scan = scan };
	struct offload_hasher_handlers hasher
	    = { .on_start = run_in_background, .hash_file = hash_file };
	struct offload_scan req = { 0 };
	const char *output = NULL;
	bool quiet = false;
	GSource *source = NULL;
	struct stat st;
	guint tick, redraw;
	int rv, fd;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0)
			return usage(0);
		else if (strcmp(argv[i], "--quiet") == 0)
			quiet = true;
		else if (strcmp(argv[i], "--in-flight") == 0 && i + 1 < argc)
			app.max_in_flight = (unsigned)atoi(argv[++i]);
		else if ((strcmp(argv[i], "-o") == 0
		             || strcmp(argv[i], "--output") == 0)
		    && i + 1 < argc)
			output = argv[++i];
		else if (argv[i][0] != '-')
			app.root = argv[i];
		else
			return usage(2);
	}
	if (app.max_in_flight == 0)
		return usage(2);

	/* Nothing is started, and no digests file made, for a tree that
	 * cannot be walked at all: a missing path, a file, no permission. */
	fd = open(app.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "butler-offload: %s: %s\n", app.root,
		    strerror(errno));
		return 1;
	}
	close(fd);
	app.out = open_output(&app, output);
	if (app.out == NULL)
		return 1;
	/* A digests file inside the tree is not hashed while it grows. */
	if (fstat(fileno(app.out), &st) == 0 && S_ISREG(st.st_mode)) {
		req.skip_dev = (uint64_t)st.st_dev;
		req.skip_ino = (uint64_t)st.st_ino;
	}
	app.progress = !quiet && isatty(STDERR_FILENO);
	if (app.out == stdout && app.progress && isatty(STDOUT_FILENO))
		app.held = g_string_new(NULL);
	app.in_flight = g_hash_table_new(g_int64_hash, g_int64_equal);
	g_queue_init(&app.todo);
	app.loop = g_main_loop_new(NULL, FALSE);
	atomic_init(&app.shared.stop, false);

	rv = butler_hub_new(&app.hub, &offload_spec);
	/* Per-kind times in the inbox and in the handler, for the summary:
	 * a clock read per send and two per message, nothing here. */
	if (rv == BUTLER_OK)
		rv = butler_hub_enable_metrics(app.hub, BUTLER_NO_SERVER);
	if (rv == BUTLER_OK)
		rv = offload_ui_register(app.hub, &ui, &app);
	if (rv == BUTLER_OK)
		rv = offload_scanner_register(app.hub, &scanner, &app.shared);
	if (rv == BUTLER_OK)
		rv = offload_hasher_register(app.hub, &hasher, &app.shared);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(app.hub);
	if (rv == BUTLER_OK)
		rv = butler_glib_attach(
		    app.hub, OFFLOAD_SERVER_UI, NULL, 64, &source);
	if (rv == BUTLER_OK) {
		req.root = strdup(app.root);
		rv = req.root == NULL
		    ? BUTLER_ENOMEM
		    : offload_send_scanner_scan(app.hub, &req);
		if (rv != BUTLER_OK)
			free(req.root);
	}
	if (rv != BUTLER_OK) {
		fprintf(stderr, "butler-offload: %s\n", butler_strerror(rv));
		if (source != NULL) {
			g_source_destroy(source);
			g_source_unref(source);
		}
		butler_hub_free(app.hub);
		return 1;
	}

	app.t_start = g_get_monotonic_time();
	tick = g_timeout_add_full(G_PRIORITY_HIGH, 1, on_tick, &app, NULL);
	redraw = g_timeout_add(DRAW_MS, on_draw, &app);
	app.signal_ids[0] = g_unix_signal_add(SIGINT, on_sigint, &app);
	app.signal_ids[1] = g_unix_signal_add(SIGTERM, on_sigterm, &app);
	app.signal_ids[2] = g_unix_signal_add(SIGHUP, on_sighup, &app);
	app.drawing = app.progress;
	if (app.drawing)
		draw(&app);
	g_main_loop_run(app.loop);
	app.t_end = g_get_monotonic_time();
	app.drawing = false;
	g_source_remove(tick);
	g_source_remove(redraw);
	for (size_t i = 0; i < G_N_ELEMENTS(app.signal_ids); i++)
		if (app.signal_ids[i] != 0)
			g_source_remove(app.signal_ids[i]);
	erase(&app);
	flush_output(&app);
	if (app.out != stdout && fclose(app.out) != 0 && app.write_error == 0)
		app.write_error = errno;
	if (app.write_error != 0) {
		fprintf(stderr, "butler-offload: %s: %s\n",
		    app.out_path != NULL ? app.out_path : "stdout",
		    strerror(app.write_error));
		app.errors++;
	}

	/* Cancelled: whatever is still queued is destroyed, not hashed. */
	butler_hub_stop(
	    app.hub, app.signal ? BUTLER_STOP_DISCARD : BUTLER_STOP_DRAIN);
	print_summary(&app);
	fprintf(stderr, "requests still pending: %zu\n",
	    butler_hub_pending(app.hub, NULL, NULL));
	g_source_destroy(source);
	g_source_unref(source);
	butler_hub_free(app.hub);
	g_queue_clear_full(&app.todo, free);
	g_hash_table_destroy(app.in_flight);
	g_main_loop_unref(app.loop);
	if (app.held != NULL)
		g_string_free(app.held, TRUE);
	return app.signal ? 128 + app.signal : (app.errors ? 1 : 0);
}
