/* SPDX-License-Identifier: MIT */
/*
 * examples/files — file I/O off the main loop with servers/files.
 *
 * The hub is built from files_demo.json, which imports the files spec:
 * one hub runs 'main' (this thread, an external-loop server main()
 * polls) and the files server's io threads. Every step is a request whose
 * answer arrives on main's thread, where the next step starts: write a
 * file atomically (temporary file, fsync, rename), stat it, then read two
 * ranges of it and a file that does not exist, all three at once. The
 * read data is taken from the replies without a copy; the error of the
 * missing file comes as its errno and its text. The last answer sends
 * 'main' a quit message.
 *
 * Usage: files_demo [DIRECTORY]   (default: a new directory in /tmp,
 * removed at the end)
 */
#define _POSIX_C_SOURCE 200809L /* mkdtemp(), strdup() */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <butler/files.h>

#include "files_demo.butler.h" /* generated from files_demo.json */

static const char text[] = "hello, files!\n";

struct demo;

/* struct part is one read: what it asks and what it brought. */
struct part {
	struct demo *d;
	char *data; /* taken from the reply: ours to free */
	size_t len;
	int err;         /* the errno, or 0 */
	char error[512]; /* ... and its words */
};

/* struct demo is the program's state, on main's thread only. */
struct demo {
	butler_hub *hub;
	char path[4096], missing[4096];
	int pending; /* reads not yet answered */
	int failures;
	bool over;
	struct part first, rest, gone;
};

static void on_read(
    butler_server *self, int status, struct files_contents *reply, void *user);

/* read_part asks for `length` bytes of `path` from `offset` (0: to the
 * end) into *part. */
static void
read_part(struct demo *d, struct part *part, const char *path, uint64_t offset,
    uint64_t length)
{
	int rv;

	part->d = d;
	rv = butler_files_read(
	    d->hub, path, offset, length, 5000, on_read, part, NULL);
	if (rv == BUTLER_OK) {
		d->pending++;
	} else {
		fprintf(stderr, "files_demo: read: %s\n", butler_strerror(rv));
		d->failures++;
	}
}

static void
on_read(
    butler_server *self, int status, struct files_contents *reply, void *user)
{
	struct part *part = user;
	struct demo *d = part->d;

	(void)self;
	if (status != BUTLER_OK) { /* timed out, cancelled, stopped */
		fprintf(
		    stderr, "files_demo: read: %s\n", butler_strerror(status));
		d->failures++;
	} else if (reply->err != 0) {
		part->err = reply->err;
		snprintf(part->error, sizeof part->error, "%s",
		    reply->error ? reply->error : strerror(reply->err));
	} else {
		/* The data is one malloc()ed block: keep it without a copy,
		 * and the reply's destructor leaves it alone. */
		part->data = reply->data.data;
		part->len = reply->data.len;
		reply->data.data = NULL;
	}
	if (--d->pending == 0
	    && fdemo_send_main_quit(d->hub, &(struct fdemo_quit) { 0 })
	        != BUTLER_OK)
		d->over = true;
}

static void
on_stat(butler_server *self, int status, struct files_attrs *reply, void *user)
{
	struct demo *d = user;

	(void)self;
	if (status != BUTLER_OK || reply->err != 0) {
		fprintf(stderr, "files_demo: %s\n",
		    status != BUTLER_OK ? butler_strerror(status)
		                        : reply->error);
		d->failures++;
		d->over = true;
		return;
	}
	printf("stat: %llu bytes, a %s, mode %04o\n",
	    (unsigned long long)reply->size,
	    S_ISREG(reply->mode) ? "regular file" : "special file",
	    (unsigned)(reply->mode & 07777));
	/* Three reads at once: the io threads answer in any order. */
	read_part(d, &d->first, d->path, 0, 5);
	read_part(d, &d->rest, d->path, 7, 0);
	read_part(d, &d->gone, d->missing, 0, 0);
	if (d->pending == 0)
		d->over = true;
}

static void
on_written(
    butler_server *self, int status, struct files_written *reply, void *user)
{
	struct demo *d = user;
	int rv;

	(void)self;
	if (status != BUTLER_OK || reply->err != 0) {
		fprintf(stderr, "files_demo: %s\n",
		    status != BUTLER_OK ? butler_strerror(status)
		                        : reply->error);
		d->failures++;
		d->over = true;
		return;
	}
	printf("wrote %llu bytes (atomically, fsynced)\n",
	    (unsigned long long)reply->bytes);
	rv = butler_files_stat(d->hub, d->path, 5000, on_stat, d, NULL);
	if (rv != BUTLER_OK) {
		fprintf(stderr, "files_demo: stat: %s\n", butler_strerror(rv));
		d->failures++;
		d->over = true;
	}
}

static int
on_quit(butler_server *self, void *user, struct fdemo_quit *msg)
{
	struct demo *d = user;

	(void)self;
	(void)msg;
	d->over = true;
	return 0;
}

int
main(int argc, char **argv)
{
	static struct demo d;
	char made[] = "/tmp/butler-files-demo-XXXXXX";
	const char *dir = argc > 1 ? argv[1] : mkdtemp(made);
	struct files_buf data;
	int fd, rv;

	if (dir == NULL) {
		fprintf(stderr, "files_demo: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(d.path, sizeof d.path, "%s/hello.txt", dir);
	snprintf(d.missing, sizeof d.missing, "%s/missing.txt", dir);

	rv = butler_hub_new(&d.hub, &fdemo_spec);
	if (rv == BUTLER_OK)
		rv = fdemo_main_register_each(d.hub, &d, NULL, NULL, on_quit);
	if (rv == BUTLER_OK)
		rv = butler_files_register(d.hub);
	if (rv == BUTLER_OK)
		rv = butler_hub_start(d.hub);
	if (rv == BUTLER_OK) {
		/* The hub owns the buffer once the call is accepted. */
		data = butler_files_buf(strdup(text), sizeof text - 1);
		rv = data.data == NULL
		    ? BUTLER_ENOMEM
		    : butler_files_write(d.hub, d.path, data,
		        BUTLER_FILES_ATOMIC | BUTLER_FILES_FSYNC, 0644, 5000,
		        on_written, &d, NULL);
		if (rv != BUTLER_OK)
			free(data.data);
	}
	fd = butler_server_fd(d.hub, FDEMO_SERVER_MAIN);
	while (rv == BUTLER_OK && !d.over) {
		poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1, -1);
		rv = butler_server_drain(d.hub, FDEMO_SERVER_MAIN, 0, NULL);
	}
	if (rv != BUTLER_OK)
		fprintf(stderr, "files_demo: %s\n", butler_strerror(rv));
	butler_hub_stop(d.hub, BUTLER_STOP_DRAIN);
	butler_hub_free(d.hub);

	if (d.first.data != NULL && d.rest.data != NULL)
		printf("read back: '%.*s' and '%.*s'\n", (int)d.first.len,
		    d.first.data, (int)(d.rest.len - 1), d.rest.data);
	if (d.gone.err != 0)
		printf("the missing file: errno %d, \"%s\"\n", d.gone.err,
		    d.gone.error);
	free(d.first.data);
	free(d.rest.data);
	unlink(d.path);
	if (argc <= 1)
		rmdir(dir);
	return rv == BUTLER_OK && d.failures == 0 && d.first.data != NULL ? 0
	                                                                  : 1;
}
