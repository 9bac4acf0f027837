/* SPDX-License-Identifier: MIT */
/*
 * servers/files/files.c — the files server (files.json) and the C API of
 * butler/files.h over it.
 *
 * Each handler runs one operation with plain system calls on an io thread
 * and answers with err (the errno) and error ("<step> <path>: <text>")
 * rather than failing the request: a failed read is an answer, and the
 * request's status stays for what happened to the request itself
 * (timeout, cancel, stop). Read data is allocated once, at the size the
 * file has, and handed to the reply without a copy.
 */
#include <butler/files.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* GROW_STEP is how much more a read of a file whose size says nothing
 * (0 bytes for most of /proc) asks for at a time. */
#define GROW_STEP (64u * 1024u)

static const unsigned known_flags
    = BUTLER_FILES_ATOMIC | BUTLER_FILES_FSYNC | BUTLER_FILES_APPEND;

static void
free_data(void *data, void *ctx)
{
	(void)ctx;
	free(data);
}

struct files_buf
butler_files_buf(void *data, size_t len)
{
	return (struct files_buf) {
		.data = data, .len = len, .free_fn = free_data, .ctx = NULL
	};
}

/*
 * describe returns "<step> <path>: <text of err>", malloc()ed, or NULL
 * when out of memory. `why` replaces the errno's text when not NULL.
 */
static char *
describe(const char *step, const char *path, int err, const char *why)
{
	char buf[256];
	const char *text
	    = why != NULL ? why : strerror_r(err, buf, sizeof buf);
	size_t n = strlen(step) + strlen(path) + strlen(text) + 4;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s %s: %s", step, path, text);
	return s;
}

/* ---- the io threads --------------------------------------------------- */

/* read_at reads up to `want` bytes at `offset` into buf; returns how many
 * (fewer at the end of the file), or -1 with errno. */
static ssize_t
read_at(int fd, char *buf, size_t want, uint64_t offset)
{
	size_t got = 0;

	while (got < want) {
		ssize_t n
		    = pread(fd, buf + got, want - got, (off_t)(offset + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/*
 * read_growing reads from `offset` to the end of a file that said it was
 * empty (a /proc file, one that grew since it was opened), GROW_STEP at a
 * time, up to `length` (0: no limit).
 */
static int
read_growing(int fd, uint64_t offset, uint64_t length, struct files_buf *out)
{
	char *buf = NULL;
	size_t len = 0;

	for (;;) {
		size_t step = GROW_STEP;
		char *more;
		ssize_t n;

		if (length != 0 && length - len < step)
			step = (size_t)(length - len);
		if (step == 0)
			break;
		more = realloc(buf, len + step);
		if (more == NULL) {
			free(buf);
			return ENOMEM;
		}
		buf = more;
		n = read_at(fd, buf + len, step, offset + len);
		if (n < 0) {
			int err = errno;

			free(buf);
			return err;
		}
		len += (size_t)n;
		if ((size_t)n < step)
			break;
	}
	if (len == 0) {
		free(buf);
		buf = NULL;
	}
	*out = butler_files_buf(buf, len);
	return 0;
}

static void
do_read(const struct files_read *m, struct files_contents *out)
{
	const char *step = "open", *why = NULL;
	uint64_t avail, want;
	struct stat st;
	char *buf = NULL;
	ssize_t got;
	int fd, err;

	/* O_NONBLOCK: opening a FIFO must not block the io thread (it is
	 * refused below); it changes nothing for regular files. */
	fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		goto out_errno;
	step = "stat";
	if (fstat(fd, &st) != 0)
		goto out_errno;
	step = "read";
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		goto out_errno;
	}
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		why = "not a regular file";
		goto out_errno;
	}
	out->size = (uint64_t)st.st_size;
	if (st.st_size == 0) {
		err = read_growing(fd, m->offset, m->length, &out->data);
		if (err != 0) {
			errno = err;
			goto out_errno;
		}
		out->size = m->offset + out->data.len;
		close(fd);
		return;
	}
	avail = m->offset < out->size ? out->size - m->offset : 0;
	want = m->length == 0 || m->length > avail ? avail : m->length;
	if (want > SIZE_MAX || want > (uint64_t)SSIZE_MAX) {
		errno = EFBIG;
		goto out_errno;
	}
	if (want > 0 && (buf = malloc((size_t)want)) == NULL) {
		errno = ENOMEM;
		goto out_errno;
	}
	got = read_at(fd, buf, (size_t)want, m->offset);
	if (got < 0)
		goto out_errno;
	if (got == 0) {
		free(buf);
		buf = NULL;
	}
	out->data = butler_files_buf(buf, (size_t)got);
	close(fd);
	return;

out_errno:
	err = errno;
	free(buf);
	if (fd >= 0)
		close(fd);
	out->err = err;
	out->error = describe(step, m->path, err, why);
}

/* write_all writes len bytes of data to fd; 0 or an errno. */
static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return ENOSPC;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* sync_dir fsyncs the directory that holds `path`; 0 or an errno. */
static int
sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash == NULL ? strdup(".")
	    : slash == path       ? strdup("/")
	                          : strndup(path, (size_t)(slash - path));
	int fd, err = 0;

	if (dir == NULL)
		return ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		err = errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return err;
}

/*
 * open_temp creates a new file beside `path` for an atomic write:
 * "<dir>/.<name>.XXXXXX", six random characters, created with O_EXCL (a
 * name taken is tried again). Its name goes to *tmp. Returns the fd, or -1
 * with errno.
 */
static int
open_temp(const char *path, mode_t mode, char **tmp)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz"
	                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	const char *slash = strrchr(path, '/');
	size_t dir = slash != NULL ? (size_t)(slash - path) + 1 : 0;
	size_t n = strlen(path) + 9;
	char *name = malloc(n);

	if (name == NULL) {
		errno = ENOMEM;
		return -1;
	}
	for (int tries = 0; tries < 100; tries++) {
		unsigned char r[6];
		int fd;

		if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
			for (size_t i = 0; i < sizeof r; i++)
				r[i] = (unsigned char)(rand() + tries);
		snprintf(name, n, "%.*s.%s.", (int)dir, path, path + dir);
		for (size_t i = 0; i < sizeof r; i++) {
			char c[2] = { chars[r[i] % (sizeof chars - 1)], '\0' };

			strcat(name, c);
		}
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd >= 0) {
			*tmp = name;
			return fd;
		}
		if (errno != EEXIST)
			break;
	}
	free(name);
	return -1;
}

/* is_regular says whether fd is a regular file; *err is its errno if
 * not (EISDIR, EINVAL), or fstat's. */
static bool
is_regular(int fd, int *err)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		*err = errno;
	else if (!S_ISREG(st.st_mode))
		*err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
	return *err == 0;
}

static void
do_write(const struct files_write *m, struct files_written *out)
{
	bool atomic = m->flags & BUTLER_FILES_ATOMIC;
	mode_t mode = m->mode != 0 ? (mode_t)(m->mode & 07777) : 0666;
	const char *step = "open", *why = NULL;
	char *tmp = NULL;
	bool renamed = false;
	int fd = -1, err = 0;

	if ((m->flags & ~known_flags) != 0
	    || (atomic && (m->flags & BUTLER_FILES_APPEND))) {
		out->err = EINVAL;
		out->error = describe("write", m->path, EINVAL,
		    "unknown flags, or ATOMIC with APPEND");
		return;
	}
	if (atomic)
		fd = open_temp(m->path, mode, &tmp);
	else /* O_NONBLOCK: a FIFO with no reader must not block us */
		fd = open(m->path,
		    O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK
		        | (m->flags & BUTLER_FILES_APPEND ? O_APPEND
		                                          : O_TRUNC),
		    mode);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	step = "write";
	if (!atomic && !is_regular(fd, &err)) {
		why = err == EINVAL ? "not a regular file" : NULL;
		close(fd);
		goto out;
	}
	err = write_all(fd, m->data.data, m->data.len);
	if (err == 0 && (m->flags & BUTLER_FILES_FSYNC)) {
		step = "fsync";
		if (fsync(fd) != 0)
			err = errno;
	}
	/* close() may report what write() did not (a full disk on NFS). */
	if (close(fd) != 0 && err == 0) {
		step = "close";
		err = errno;
	}
	if (err == 0 && atomic) {
		step = "rename";
		if (rename(tmp, m->path) != 0)
			err = errno;
		else
			renamed = true;
	}
	if (err == 0 && atomic && (m->flags & BUTLER_FILES_FSYNC)) {
		step = "fsync";
		err = sync_dir(m->path);
	}
out:
	if (tmp != NULL && err != 0 && !renamed)
		unlink(tmp); /* nothing is left behind */
	free(tmp);
	if (err != 0) {
		out->err = err;
		out->error = describe(step, m->path, err, why);
		return;
	}
	out->bytes = m->data.len;
}

static void
do_stat(const struct files_stat *m, struct files_attrs *out)
{
	struct stat st;

	if (stat(m->path, &st) != 0) {
		out->err = errno;
		out->error = describe("stat", m->path, out->err, NULL);
		return;
	}
	out->size = (uint64_t)st.st_size;
	out->mode = (uint32_t)st.st_mode;
	out->mtime_ns
	    = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
}

static int
io_read(butler_server *self, void *user, struct files_read *msg)
{
	struct files_contents out = { 0 };
	int rv;

	(void)user;
	if (msg->path == NULL) {
		out.err = EINVAL;
		out.error = describe("read", "(null)", EINVAL, NULL);
	} else {
		do_read(msg, &out);
	}
	rv = files_reply_read(self, &out);
	if (rv != BUTLER_OK)
		files_contents_destroy(&out);
	return rv;
}

static int
io_write(butler_server *self, void *user, struct files_write *msg)
{
	struct files_written out = { 0 };
	int rv;

	(void)user;
	if (msg->path == NULL) {
		out.err = EINVAL;
		out.error = describe("write", "(null)", EINVAL, NULL);
	} else {
		do_write(msg, &out);
	}
	rv = files_reply_write(self, &out);
	if (rv != BUTLER_OK)
		files_written_destroy(&out);
	return rv;
}

static int
io_stat(butler_server *self, void *user, struct files_stat *msg)
{
	struct files_attrs out = { 0 };
	int rv;

	(void)user;
	if (msg->path == NULL) {
		out.err = EINVAL;
		out.error = describe("stat", "(null)", EINVAL, NULL);
	} else {
		do_stat(msg, &out);
	}
	rv = files_reply_stat(self, &out);
	if (rv != BUTLER_OK)
		files_attrs_destroy(&out);
	return rv;
}

int
butler_files_register(butler_hub *hub)
{
	return files_io_register_each(
	    hub, NULL, NULL, NULL, io_read, io_write, io_stat);
}

/* ---- the callers' side ------------------------------------------------ */

/* copy_path returns a malloc()ed copy of path for a message, or NULL
 * with *rv set. */
static char *
copy_path(butler_hub *hub, const char *path, const void *cb, int *rv)
{
	char *copy;

	*rv = BUTLER_EINVAL;
	if (hub == NULL || path == NULL || cb == NULL)
		return NULL;
	copy = strdup(path);
	*rv = copy != NULL ? BUTLER_OK : BUTLER_ENOMEM;
	return copy;
}

int
butler_files_read(butler_hub *hub, const char *path, uint64_t offset,
    uint64_t length, int timeout_ms, files_read_reply_fn cb, void *user,
    uint64_t *id)
{
	struct files_read m = { .offset = offset, .length = length };
	int rv;

	m.path = copy_path(hub, path, (const void *)(uintptr_t)cb, &rv);
	if (m.path == NULL)
		return rv;
	rv = files_call_io_read(hub, &m, timeout_ms, cb, user, id);
	if (rv != BUTLER_OK)
		free(m.path);
	return rv;
}

int
butler_files_write(butler_hub *hub, const char *path, struct files_buf data,
    unsigned flags, unsigned mode, int timeout_ms, files_write_reply_fn cb,
    void *user, uint64_t *id)
{
	struct files_write m = { .data = data, .flags = flags, .mode = mode };
	int rv;

	if ((flags & ~known_flags) != 0
	    || ((flags & BUTLER_FILES_ATOMIC)
	        && (flags & BUTLER_FILES_APPEND)))
		return BUTLER_EINVAL;
	m.path = copy_path(hub, path, (const void *)(uintptr_t)cb, &rv);
	if (m.path == NULL)
		return rv;
	rv = files_call_io_write(hub, &m, timeout_ms, cb, user, id);
	if (rv != BUTLER_OK)
		free(m.path);
	return rv;
}

int
butler_files_stat(butler_hub *hub, const char *path, int timeout_ms,
    files_stat_reply_fn cb, void *user, uint64_t *id)
{
	struct files_stat m;
	int rv;

	m.path = copy_path(hub, path, (const void *)(uintptr_t)cb, &rv);
	if (m.path == NULL)
		return rv;
	rv = files_call_io_stat(hub, &m, timeout_ms, cb, user, id);
	if (rv != BUTLER_OK)
		free(m.path);
	return rv;
}

/*
 * The blocking calls: a refusal at once leaves the message the caller's
 * (our path copy, freed here); once accepted the hub frees it, and
 * butler_taken() says which.
 */
static bool
refused(int rv)
{
	return !butler_taken(rv);
}

int
butler_files_read_wait(butler_hub *hub, const char *path, uint64_t offset,
    uint64_t length, int timeout_ms, struct files_contents *out)
{
	struct files_read m = { .offset = offset, .length = length };
	int rv;

	m.path = copy_path(hub, path, out, &rv);
	if (m.path == NULL)
		return rv;
	rv = files_call_io_read_wait(hub, &m, timeout_ms, out);
	if (refused(rv))
		free(m.path);
	return rv;
}

int
butler_files_write_wait(butler_hub *hub, const char *path,
    struct files_buf data, unsigned flags, unsigned mode, int timeout_ms,
    struct files_written *out)
{
	struct files_write m = { .data = data, .flags = flags, .mode = mode };
	int rv;

	if ((flags & ~known_flags) != 0
	    || ((flags & BUTLER_FILES_ATOMIC)
	        && (flags & BUTLER_FILES_APPEND)))
		return BUTLER_EINVAL;
	m.path = copy_path(hub, path, out, &rv);
	if (m.path == NULL)
		return rv;
	rv = files_call_io_write_wait(hub, &m, timeout_ms, out);
	if (refused(rv))
		free(m.path);
	return rv;
}

int
butler_files_stat_wait(
    butler_hub *hub, const char *path, int timeout_ms, struct files_attrs *out)
{
	struct files_stat m;
	int rv;

	m.path = copy_path(hub, path, out, &rv);
	if (m.path == NULL)
		return rv;
	rv = files_call_io_stat_wait(hub, &m, timeout_ms, out);
	if (refused(rv))
		free(m.path);
	return rv;
}
