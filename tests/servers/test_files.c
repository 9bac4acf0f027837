/* SPDX-License-Identifier: MIT */
/*
 * tests/servers/test_files.c — servers/files through <butler/files.h>, in
 * the hub of the tests' own spec (app.json, which imports the files spec
 * and has messages 'read' and 'contents' of its own).
 *
 * The test thread owns the external-loop server 'main', makes the calls
 * and drains 'main' until the answer is in. Each case works in a fresh
 * directory under $TMPDIR (or /tmp). The cases that need privileges make
 * them as CI has them (root) and say why they skip otherwise: permission
 * denied drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this
 * thread's effective set before the hub's threads start (they inherit
 * it), as examples/offload/errors.sh does with setpriv; disk full mounts a
 * 64 KiB tmpfs in a mount namespace of this test's own process.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <butler/files.h>
#include <butler/tasks.h>

#include "app.butler.h"

#define GIB (1024ull * 1024 * 1024)
#define MIB (1024ull * 1024)

/* struct answer is the last answer a callback saw, copied out. */
struct answer {
	int calls;
	int status;
	int err;
	char error[512];
	uint64_t size, bytes;
	uint32_t mode;
	int64_t mtime_ns;
	char *data; /* taken from the reply: ours to free */
	size_t len;
};

/* struct world: the hub, the scratch directory, the frees counted. */
struct world {
	butler_hub *hub;
	char dir[256];
	atomic_int frees; /* free_fn calls of write bufs */
};

static struct world w;

static void
note_error(struct answer *a, const char *error)
{
	snprintf(a->error, sizeof a->error, "%s", error ? error : "(null)");
}

static void
on_read(
    butler_server *self, int status, struct files_contents *reply, void *user)
{
	struct answer *a = user;

	(void)self;
	a->calls++;
	a->status = status;
	if (reply == NULL)
		return;
	a->err = reply->err;
	note_error(a, reply->error);
	a->size = reply->size;
	/* Take the data: the reply's destructor then frees nothing. */
	a->data = reply->data.data;
	a->len = reply->data.len;
	reply->data.data = NULL;
}

static void
on_written(
    butler_server *self, int status, struct files_written *reply, void *user)
{
	struct answer *a = user;

	(void)self;
	a->calls++;
	a->status = status;
	if (reply == NULL)
		return;
	a->err = reply->err;
	note_error(a, reply->error);
	a->bytes = reply->bytes;
}

static void
on_attrs(
    butler_server *self, int status, struct files_attrs *reply, void *user)
{
	struct answer *a = user;

	(void)self;
	a->calls++;
	a->status = status;
	if (reply == NULL)
		return;
	a->err = reply->err;
	note_error(a, reply->error);
	a->size = reply->size;
	a->mode = reply->mode;
	a->mtime_ns = reply->mtime_ns;
}

/* The app's own servers: none of them is used here but all need a
 * handler. */
static int
app_run(butler_server *self, void *user, struct app_run *msg)
{
	(void)self, (void)user, (void)msg;
	return 0;
}

static int
app_ran(butler_server *self, void *user, struct app_ran *msg)
{
	struct app_contents c = { .n = msg->n };

	(void)user;
	return app_reply_ran(self, &c);
}

static int
app_read(butler_server *self, void *user, struct app_read *msg)
{
	(void)self, (void)user, (void)msg;
	return 0;
}

static void
make_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(w.dir, sizeof w.dir, "%s/butler-files-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(w.dir), "mkdtemp: %s", strerror(errno));
}

static void
start(void)
{
	cr_assert_eq(butler_hub_new(&w.hub, &app_spec), BUTLER_OK);
	cr_assert_eq(
	    app_main_register(w.hub, &(struct app_main_handlers) { 0 }, NULL),
	    BUTLER_OK);
	cr_assert_eq(app_one_register_each(w.hub, NULL, NULL, NULL, app_run),
	    BUTLER_OK);
	cr_assert_eq(app_two_register_each(w.hub, NULL, NULL, NULL, app_run),
	    BUTLER_OK);
	cr_assert_eq(
	    app_pool_register_each(w.hub, NULL, NULL, NULL, app_ran, app_read),
	    BUTLER_OK);
	cr_assert_eq(butler_tasks_register(w.hub), BUTLER_OK);
	cr_assert_eq(butler_files_register(w.hub), BUTLER_OK);
	cr_assert_eq(butler_hub_start(w.hub), BUTLER_OK);
}

static void
finish(void)
{
	cr_assert_eq(butler_hub_stop(w.hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	butler_hub_free(w.hub);
	w.hub = NULL;
}

/* wait_for drains 'main' until a->calls reaches n. */
static void
wait_for(struct answer *a, int n)
{
	int fd = butler_server_fd(w.hub, APP_SERVER_MAIN);

	for (int i = 0; a->calls < n; i++) {
		cr_assert_lt(i, 4000, "no answer after 20 s");
		(void)poll(
		    &(struct pollfd) { .fd = fd, .events = POLLIN }, 1, 5);
		cr_assert_eq(
		    butler_server_drain(w.hub, APP_SERVER_MAIN, 0, NULL),
		    BUTLER_OK);
	}
}

static struct answer
read_file(const char *path, uint64_t offset, uint64_t length)
{
	struct answer a = { 0 };

	cr_assert_eq(butler_files_read(w.hub, path, offset, length, 10000,
	                 on_read, &a, NULL),
	    BUTLER_OK);
	wait_for(&a, 1);
	cr_assert_eq(
	    a.status, BUTLER_OK, "status %s", butler_errname(a.status));
	return a;
}

static void
count_free(void *data, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&w.frees, 1);
	free(data);
}

static struct files_buf
counted(const char *text, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = text[i % strlen(text)];
	return (
	    struct files_buf) { .data = p, .len = len, .free_fn = count_free };
}

static struct answer
write_file(
    const char *path, struct files_buf data, unsigned flags, unsigned mode)
{
	struct answer a = { 0 };

	cr_assert_eq(butler_files_write(w.hub, path, data, flags, mode, 10000,
	                 on_written, &a, NULL),
	    BUTLER_OK);
	wait_for(&a, 1);
	cr_assert_eq(a.status, BUTLER_OK);
	return a;
}

static struct answer
stat_file(const char *path)
{
	struct answer a = { 0 };

	cr_assert_eq(butler_files_stat(w.hub, path, 10000, on_attrs, &a, NULL),
	    BUTLER_OK);
	wait_for(&a, 1);
	cr_assert_eq(a.status, BUTLER_OK);
	return a;
}

static char *
in_dir(const char *name)
{
	static char paths[8][1024];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, sizeof paths[0], "%s/%s", w.dir, name);
	return p;
}

/* files_in returns how many entries the directory holds. */
static int
files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0
		    && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
remove_dir(void)
{
	DIR *d = opendir(w.dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char p[600];

		if (strcmp(e->d_name, ".") == 0
		    || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof p, "%s/%s", w.dir, e->d_name);
		chmod(p, 0700);
		if (unlink(p) != 0)
			rmdir(p);
	}
	closedir(d);
	rmdir(w.dir);
}

/* ---- the cases -------------------------------------------------------- */

Test(files, empty_file, .timeout = 60)
{
	struct answer a;
	int fd;

	make_dir();
	fd = open(in_dir("empty"), O_CREAT | O_WRONLY, 0644);
	cr_assert(fd >= 0);
	close(fd);
	start();
	a = read_file(in_dir("empty"), 0, 0);
	cr_expect_eq(a.err, 0, "%s", a.error);
	cr_expect_eq(a.len, 0);
	cr_expect_eq(a.size, 0);
	free(a.data);
	a = read_file(in_dir("empty"), 100, 10);
	cr_expect_eq(a.err, 0);
	cr_expect_eq(a.len, 0);
	free(a.data);
	a = stat_file(in_dir("empty"));
	cr_expect_eq(a.err, 0);
	cr_expect_eq(a.size, 0);
	cr_expect(S_ISREG(a.mode));
	a = write_file(in_dir("empty2"), counted("", 0), 0, 0);
	cr_expect_eq(a.err, 0, "%s", a.error);
	cr_expect_eq(a.bytes, 0);
	finish();
	cr_expect_eq(atomic_load(&w.frees), 1);
	remove_dir();
}

Test(files, sparse_gigabyte_read_in_ranges, .timeout = 60)
{
	const char *path;
	struct answer a;
	int fd;

	make_dir();
	path = in_dir("sparse");
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, (off_t)GIB), 0, "%s", strerror(errno));
	cr_assert_eq(pwrite(fd, "HELLO", 5, (off_t)(512 * MIB)), 5);
	cr_assert_eq(pwrite(fd, "END!", 4, (off_t)(GIB - 4)), 4);
	close(fd);
	start();

	a = read_file(path, 0, 4096);
	cr_expect_eq(a.err, 0, "%s", a.error);
	cr_expect_eq(a.size, GIB);
	cr_assert_eq(a.len, 4096);
	for (size_t i = 0; i < a.len; i++)
		cr_assert_eq(a.data[i], 0, "byte %zu", i);
	free(a.data);

	a = read_file(path, 512 * MIB - 3, 10);
	cr_assert_eq(a.len, 10);
	cr_expect_eq(memcmp(a.data, "\0\0\0HELLO\0\0", 10), 0);
	free(a.data);

	/* Past the end: fewer bytes than asked, then none. */
	a = read_file(path, GIB - 4, 100);
	cr_assert_eq(a.len, 4);
	cr_expect_eq(memcmp(a.data, "END!", 4), 0);
	free(a.data);
	a = read_file(path, GIB + 10, 10);
	cr_expect_eq(a.err, 0);
	cr_expect_eq(a.len, 0);
	cr_expect_null(a.data);

	/* The reply's data freed by the hub when the callback leaves it:
	 * nothing to see but ASan and valgrind. */
	{
		struct files_contents c = { 0 };

		cr_assert_eq(
		    butler_files_read_wait(w.hub, path, 0, 16, 1000, &c),
		    BUTLER_EDEADLK);
	}
	a = stat_file(path);
	cr_expect_eq(a.size, GIB);
	finish();
	remove_dir();
}

Test(files, missing_file_and_directory, .timeout = 60)
{
	struct answer a;

	make_dir();
	start();
	a = read_file(in_dir("nope"), 0, 0);
	cr_expect_eq(a.err, ENOENT);
	cr_expect_null(a.data);
	cr_expect(strstr(a.error, "open ") == a.error
	        && strstr(a.error, "/nope: No such file or directory") != NULL,
	    "error: %s", a.error);
	a = stat_file(in_dir("nope"));
	cr_expect_eq(a.err, ENOENT);
	cr_expect(strstr(a.error, "stat ") == a.error, "%s", a.error);
	a = write_file(in_dir("no/such/dir"), counted("x", 10), 0, 0);
	cr_expect_eq(a.err, ENOENT, "%s", a.error);
	a = write_file(
	    in_dir("no/such/dir"), counted("x", 10), BUTLER_FILES_ATOMIC, 0);
	cr_expect_eq(a.err, ENOENT, "%s", a.error);

	/* A directory. */
	a = read_file(w.dir, 0, 0);
	cr_expect_eq(a.err, EISDIR);
	cr_expect(strstr(a.error, "Is a directory") != NULL, "%s", a.error);
	a = write_file(w.dir, counted("x", 10), 0, 0);
	cr_expect_eq(a.err, EISDIR, "%s", a.error);
	a = write_file(w.dir, counted("x", 10), BUTLER_FILES_ATOMIC, 0);
	cr_expect_eq(a.err, EISDIR, "%s", a.error);
	cr_expect_eq(files_in(w.dir), 0, "an atomic write left a file behind");
	a = stat_file(w.dir);
	cr_expect_eq(a.err, 0);
	cr_expect(S_ISDIR(a.mode));

	/* Not a regular file: refused, not read forever or blocked on. */
	cr_assert_eq(mkfifo(in_dir("fifo"), 0600), 0);
	a = read_file(in_dir("fifo"), 0, 0);
	cr_expect_eq(a.err, EINVAL);
	cr_expect(
	    strstr(a.error, "not a regular file") != NULL, "%s", a.error);
	a = write_file(in_dir("fifo"), counted("x", 10), 0, 0);
	cr_expect(a.err == ENXIO || a.err == EINVAL, "%s", a.error);
	a = read_file("/dev/zero", 0, 0);
	cr_expect_eq(a.err, EINVAL, "%s", a.error);
	finish();
	cr_expect_eq(atomic_load(&w.frees), 5);
	remove_dir();
}

Test(files, name_too_long, .timeout = 60)
{
	char name[300], *deep;
	struct answer a;
	size_t n = 0;

	make_dir();
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	deep = malloc(6000);
	cr_assert_not_null(deep);
	n = (size_t)snprintf(deep, 6000, "%s", w.dir);
	while (n < 5000)
		n += (size_t)snprintf(deep + n, 6000 - n, "/d");
	start();
	a = read_file(in_dir(name), 0, 0);
	cr_expect_eq(a.err, ENAMETOOLONG);
	cr_expect(
	    strstr(a.error, "File name too long") != NULL, "%s", a.error);
	a = stat_file(in_dir(name));
	cr_expect_eq(a.err, ENAMETOOLONG);
	a = write_file(in_dir(name), counted("x", 10), 0, 0);
	cr_expect_eq(a.err, ENAMETOOLONG);
	a = write_file(in_dir(name), counted("x", 10), BUTLER_FILES_ATOMIC, 0);
	cr_expect_eq(a.err, ENAMETOOLONG);
	a = read_file(deep, 0, 0);
	cr_expect_eq(a.err, ENAMETOOLONG, "%s", butler_errname(a.err));
	finish();
	cr_expect_eq(atomic_load(&w.frees), 2);
	free(deep);
	remove_dir();
}

/* drop_dac drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this
 * thread's effective capabilities (threads it starts inherit that). */
static bool
drop_dac(void)
{
	struct __user_cap_header_struct h
	    = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) != 0)
		return false;
	d[0].effective
	    &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
	return syscall(SYS_capset, &h, d) == 0;
}

Test(files, permission_denied, .timeout = 60)
{
	struct answer a;
	int fd;

	make_dir();
	fd = open(in_dir("locked"), O_CREAT | O_WRONLY, 0644);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "secret", 6), 6);
	close(fd);
	cr_assert_eq(chmod(in_dir("locked"), 0), 0);
	cr_assert_eq(mkdir(in_dir("ro"), 0555), 0);
	if (!drop_dac()) {
		remove_dir();
		cr_skip_test("cannot drop CAP_DAC_OVERRIDE (capset: %s)",
		    strerror(errno));
	}
	fd = open(in_dir("locked"), O_RDONLY);
	if (fd >= 0) {
		close(fd);
		remove_dir();
		cr_skip_test("a mode-000 file stays readable here");
	}
	start();
	a = read_file(in_dir("locked"), 0, 0);
	cr_expect_eq(a.err, EACCES, "%s", a.error);
	cr_expect(strstr(a.error, "Permission denied") != NULL, "%s", a.error);
	a = write_file(in_dir("locked"), counted("x", 10), 0, 0);
	cr_expect_eq(a.err, EACCES, "%s", a.error);
	a = write_file(
	    in_dir("ro/new"), counted("x", 10), BUTLER_FILES_ATOMIC, 0);
	cr_expect_eq(a.err, EACCES, "%s", a.error);
	a = stat_file(in_dir("locked"));
	cr_expect_eq(a.err, 0, "stat needs no permission on the file");
	cr_expect_eq(a.mode & 07777, 0);
	finish();
	cr_expect_eq(atomic_load(&w.frees), 2);
	remove_dir();
}

/* small_disk mounts a 64 KiB tmpfs on `dir` in a mount namespace of this
 * process alone; false when that is not permitted. */
static bool
small_disk(const char *dir)
{
	if (unshare(CLONE_NEWNS) != 0)
		return false;
	/* Nothing mounted here may reach the rest of the system. Where "/"
	 * is not a mount point (a chroot), dir bound on itself is made
	 * private instead: what is mounted on it stays here too. */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0
	    && (mount(dir, dir, "none", MS_BIND, NULL) != 0
	        || mount("none", dir, "none", MS_PRIVATE, NULL) != 0))
		return false;
	return mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k")
	    == 0;
}

Test(files, disk_full, .timeout = 60)
{
	char disk[1200];
	struct answer a;

	make_dir();
	snprintf(disk, sizeof disk, "%s", in_dir("disk"));
	cr_assert_eq(mkdir(disk, 0700), 0);
	if (!small_disk(disk)) {
		int err = errno;

		remove_dir();
		cr_skip_test("cannot mount a small tmpfs (%s): needs root "
		             "(CAP_SYS_ADMIN)",
		    strerror(err));
	}
	start();
	snprintf(disk, sizeof disk, "%s/old", in_dir("disk"));
	a = write_file(disk, counted("old", 3), 0, 0);
	cr_assert_eq(a.err, 0, "%s", a.error);
	/* 1 MiB into 64 KiB: in place, and atomically over 'old'. */
	snprintf(disk, sizeof disk, "%s/big", in_dir("disk"));
	a = write_file(disk, counted("0123456789", MIB), 0, 0);
	cr_expect_eq(a.err, ENOSPC, "%s", a.error);
	cr_expect(strstr(a.error, "write ") == a.error
	        && strstr(a.error, "No space left on device") != NULL,
	    "%s", a.error);
	cr_expect_eq(unlink(disk), 0);
	snprintf(disk, sizeof disk, "%s/old", in_dir("disk"));
	a = write_file(disk, counted("0123456789", MIB),
	    BUTLER_FILES_ATOMIC | BUTLER_FILES_FSYNC, 0);
	cr_expect_eq(a.err, ENOSPC, "%s", a.error);
	a = read_file(disk, 0, 0);
	cr_expect_eq(a.len, 3, "the atomic write changed the old file");
	cr_expect(a.data != NULL && memcmp(a.data, "old", 3) == 0);
	free(a.data);
	cr_expect_eq(files_in(in_dir("disk")), 1,
	    "a failed atomic write left its temporary file");
	finish();
	cr_expect_eq(atomic_load(&w.frees), 3);
	cr_expect_eq(umount2(in_dir("disk"), 0), 0, "%s", strerror(errno));
	remove_dir();
}

Test(files, write_then_read_back, .timeout = 60)
{
	struct answer a;
	mode_t mask = umask(022);

	umask(mask);
	make_dir();
	start();
	a = write_file(in_dir("f"), counted("abc", 9),
	    BUTLER_FILES_ATOMIC | BUTLER_FILES_FSYNC, 0600);
	cr_expect_eq(a.err, 0, "%s", a.error);
	cr_expect_eq(a.bytes, 9);
	a = write_file(in_dir("f"), counted("XY", 4), BUTLER_FILES_APPEND, 0);
	cr_expect_eq(a.err, 0, "%s", a.error);
	a = read_file(in_dir("f"), 0, 0);
	cr_assert_eq(a.len, 13);
	cr_expect_eq(memcmp(a.data, "abcabcabcXYXY", 13), 0);
	free(a.data);
	a = read_file(in_dir("f"), 3, 3);
	cr_assert_eq(a.len, 3);
	cr_expect_eq(memcmp(a.data, "abc", 3), 0);
	free(a.data);
	a = stat_file(in_dir("f"));
	cr_expect_eq(a.size, 13);
	cr_expect_eq(a.mode & 0777, 0600 & ~mask);
	cr_expect(a.mtime_ns > 0);
	/* Replaced atomically: nothing but the file is left. */
	a = write_file(in_dir("f"), counted("new", 3), BUTLER_FILES_ATOMIC, 0);
	cr_expect_eq(a.err, 0);
	cr_expect_eq(files_in(w.dir), 1);
	a = read_file(in_dir("f"), 0, 0);
	cr_expect_eq(a.len, 3);
	free(a.data);

	/* Refused at once: the buf is still ours, nothing freed. */
	{
		struct files_buf b = counted("x", 1);
		struct answer r = { 0 };

		cr_expect_eq(butler_files_write(w.hub, in_dir("f"), b,
		                 BUTLER_FILES_ATOMIC | BUTLER_FILES_APPEND, 0,
		                 -1, on_written, &r, NULL),
		    BUTLER_EINVAL);
		cr_expect_eq(butler_files_write(w.hub, in_dir("f"), b, 0x100,
		                 0, -1, on_written, &r, NULL),
		    BUTLER_EINVAL);
		cr_expect_eq(butler_files_write(w.hub, NULL, b, 0, 0, -1,
		                 on_written, &r, NULL),
		    BUTLER_EINVAL);
		cr_expect_eq(butler_files_read(
		                 w.hub, in_dir("f"), 0, 0, -1, NULL, &r, NULL),
		    BUTLER_EINVAL);
		/* (A written buf is freed after its handler returns, which
		 * may be after the answer arrived: counted at the end.) */
		b.free_fn(b.data, b.ctx);
	}
	finish();
	cr_expect_eq(atomic_load(&w.frees), 4);
	remove_dir();
}

Test(files, discarded_writes_free_their_data_once, .timeout = 60)
{
	static struct answer many[200];
	int answered = 0, closed = 0;

	make_dir();
	start();
	for (int i = 0; i < 200; i++) {
		char name[32];

		snprintf(name, sizeof name, "f%d", i);
		cr_assert_eq(butler_files_write(w.hub, in_dir(name),
		                 counted("data", 4096), BUTLER_FILES_ATOMIC, 0,
		                 -1, on_written, &many[i], NULL),
		    BUTLER_OK);
	}
	/* Some are written, the rest destroyed unwritten: every buf is
	 * freed once and every request ends once either way. */
	cr_assert_eq(butler_hub_stop(w.hub, BUTLER_STOP_DISCARD), BUTLER_OK);
	for (int i = 0; i < 200; i++) {
		cr_expect_eq(many[i].calls, 1, "write %d ended %d times", i,
		    many[i].calls);
		if (many[i].status == BUTLER_OK)
			answered++;
		else if (many[i].status == BUTLER_ESTOPPED)
			closed++;
	}
	cr_expect_eq(answered + closed, 200);
	cr_expect_eq(atomic_load(&w.frees), 200);
	butler_hub_free(w.hub);
	remove_dir();
}

/* struct reader reads a file with the blocking call on a plain thread. */
struct reader {
	const char *path;
	int rv;
	struct files_contents c;
	struct files_attrs st;
	struct files_written wr;
};

static void *
read_blocking(void *arg)
{
	struct reader *r = arg;

	r->rv = butler_files_write_wait(w.hub, r->path,
	    butler_files_buf(strdup("blocking"), 8), BUTLER_FILES_ATOMIC, 0,
	    5000, &r->wr);
	if (r->rv == BUTLER_OK)
		r->rv = butler_files_stat_wait(w.hub, r->path, 5000, &r->st);
	if (r->rv == BUTLER_OK)
		r->rv = butler_files_read_wait(
		    w.hub, r->path, 0, 0, 5000, &r->c);
	return NULL;
}

Test(files, blocking_calls_from_a_plain_thread, .timeout = 60)
{
	struct reader r = { .rv = -1 };
	pthread_t th;

	make_dir();
	r.path = in_dir("b");
	start();
	cr_assert_eq(pthread_create(&th, NULL, read_blocking, &r), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_expect_eq(r.rv, BUTLER_OK);
	cr_expect_eq(r.wr.err, 0);
	cr_expect_eq(r.wr.bytes, 8);
	cr_expect_eq(r.st.size, 8);
	cr_expect_eq(r.c.err, 0);
	cr_expect_eq(r.c.data.len, 8);
	cr_expect(r.c.data.data != NULL
	    && memcmp(r.c.data.data, "blocking", 8) == 0);
	files_contents_destroy(&r.c);
	files_written_destroy(&r.wr);
	files_attrs_destroy(&r.st);
	finish();
	remove_dir();
}

/* The files spec alone makes a hub too, and its API refuses a hub that
 * holds no files spec. */
Test(files, hub_of_the_files_spec_alone, .timeout = 30)
{
	struct files_attrs st = { 0 };
	butler_hub *hub;

	cr_assert_eq(butler_hub_new(&hub, &files_spec), BUTLER_OK);
	cr_assert_eq(butler_files_register(hub), BUTLER_OK);
	cr_assert_eq(butler_hub_start(hub), BUTLER_OK);
	cr_expect_eq(butler_files_stat_wait(hub, "/", 5000, &st), BUTLER_OK);
	cr_expect(S_ISDIR(st.mode));
	files_attrs_destroy(&st);
	cr_assert_eq(butler_hub_stop(hub, BUTLER_STOP_DRAIN), BUTLER_OK);
	butler_hub_free(hub);

	cr_assert_eq(butler_hub_new(&hub, &tasks_spec), BUTLER_OK);
	cr_expect_eq(butler_files_register(hub), BUTLER_EINVAL);
	butler_hub_free(hub);
}
