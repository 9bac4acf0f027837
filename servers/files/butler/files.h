/* SPDX-License-Identifier: MIT */
/**
 * @file
 * butler/files.h — file I/O off the caller's loop (servers/files, CMake
 * target butler::files).
 *
 * The files server is a pool of threads ("io", four of them) that read,
 * write and stat files for any thread of the hub; the answer comes back
 * to the caller's own thread as a callback, so a GUI main loop never
 * blocks on a disk. Underneath each operation is a butler request to
 * "io": timeouts, cancel (butler_cancel()), butler_hub_pending() and the
 * hub's stop work as for any request. Requests run in parallel: answers
 * may arrive in another order than the requests (wait for a write's
 * answer before reading what it wrote).
 *
 * Answers are the generated structs of files.butler.h (spec
 * servers/files/files.json): struct files_contents (read), struct
 * files_written (write), struct files_attrs (stat). The callback's status
 * says whether the request was answered (BUTLER_OK) or ended otherwise
 * (BUTLER_ETIMEDOUT, BUTLER_ECANCELED, BUTLER_ESTOPPED; the reply is then
 * NULL). An answered request says in its `err` field whether the I/O
 * worked: 0, or the errno that stopped it, with `error` the words for
 * it, "<step> <path>: <strerror text>" ("open /etc/x: No such file or
 * directory"; NULL only when even that string could not be allocated).
 * No error is ever a crash.
 *
 * Data is never copied. A read's data is one malloc()ed block in a
 * struct files_buf (free_fn frees it); the reply callback may keep it by
 * setting reply->data.data to NULL (and then free() it itself), or keep
 * the whole buf (copy it, then zero the field) and call its free_fn
 * later. A write's data is the caller's buf, handed over: the hub calls
 * its free_fn exactly once when the write is done or will never be done.
 *
 * The hub must hold the files spec: build it from a spec that imports it
 * ("imports": ["butler/files.json"]; link butler::files) or from
 * files_spec alone, and call butler_files_register() before
 * butler_hub_start().
 */
#ifndef BUTLER_FILES_H
#define BUTLER_FILES_H

#include <stddef.h>
#include <stdint.h>

#include <butler/butler.h>

#include "files.butler.h"

#ifdef __cplusplus
extern "C" {
#endif

/** BUTLER_FILES_ATOMIC: write a temporary file beside the target and
 * rename() it over the target, so that readers see the old file or the new
 * one, never a part; on failure the target is untouched. */
#define BUTLER_FILES_ATOMIC 0x1u
/** BUTLER_FILES_FSYNC: fsync() the file (and, with ATOMIC, its directory)
 * before answering, so the data survives a crash once answered. */
#define BUTLER_FILES_FSYNC 0x2u
/** BUTLER_FILES_APPEND: append to the file instead of replacing its
 * content (not with ATOMIC). */
#define BUTLER_FILES_APPEND 0x4u

/**
 * butler_files_register installs the files server's handlers in `hub`,
 * which must hold the files spec. Before butler_hub_start() only. Returns
 * BUTLER_OK, BUTLER_EINVAL when the hub holds no files spec, BUTLER_ESTATE
 * after the start. Any thread.
 */
BUTLER_API int butler_files_register(butler_hub *hub);

/**
 * butler_files_buf returns a struct files_buf holding `len` bytes at
 * `data`, a malloc()ed block that its free_fn releases with free(): what
 * butler_files_write() takes. Any thread.
 */
BUTLER_API struct files_buf butler_files_buf(void *data, size_t len);

/**
 * butler_files_read reads up to `length` bytes of regular file `path` from
 * `offset` (length 0: to the end of the file; offset and length 0: the
 * whole file) and answers cb(self, status, reply, user) on the calling
 * thread: reply->data (reply->data.len bytes: fewer than asked at the end
 * of the file, none past it), reply->size (the file's size when it was
 * opened; a file that grows meanwhile is read up to that size), or
 * reply->err and reply->error. The reply is destroyed after the callback,
 * data included, unless the callback takes it (see above). A directory
 * gives EISDIR, another file that is not a regular one EINVAL.
 *
 * `path` is copied. timeout_ms: -1 for none. On success *id (may be NULL)
 * names the request for butler_cancel(). Returns BUTLER_OK, BUTLER_EINVAL
 * (NULL hub, path or cb; no files spec in the hub), BUTLER_ENOMEM, or what
 * butler_call() returns (BUTLER_ESTATE when the calling thread speaks for
 * no server of the hub, BUTLER_EFULL, BUTLER_ECLOSED). The calling thread
 * must speak for a server of the hub, as for butler_call().
 */
BUTLER_API int butler_files_read(butler_hub *hub, const char *path,
    uint64_t offset, uint64_t length, int timeout_ms, files_read_reply_fn cb,
    void *user, uint64_t *id /* OUT: may be NULL */);

/**
 * butler_files_write writes `data` to `path` as `flags` (BUTLER_FILES_*)
 * say, creating the file with permissions `mode` (0: 0666) less the
 * umask, and answers cb(self, status, reply, user) on the calling thread:
 * reply->bytes (data.len), or reply->err and reply->error. An ATOMIC write
 * that fails leaves the old file as it was and no temporary file behind.
 *
 * Ownership: on BUTLER_OK the hub owns `data` and calls its free_fn (if not
 * NULL) exactly once, after the write or instead of it (cancelled, timed
 * out or discarded by a stop before it ran). On failure `data` is still
 * the caller's. `path` is copied. Errors, timeout_ms, *id and the calling
 * thread as butler_files_read(); BUTLER_EINVAL also for unknown flags or
 * ATOMIC with APPEND.
 */
BUTLER_API int butler_files_write(butler_hub *hub, const char *path,
    struct files_buf data, unsigned flags, unsigned mode, int timeout_ms,
    files_write_reply_fn cb, void *user, uint64_t *id /* OUT: may be NULL */);

/**
 * butler_files_stat looks `path` up (following symbolic links) and answers
 * cb(self, status, reply, user) on the calling thread: reply->size,
 * reply->mode (st_mode), reply->mtime_ns, or reply->err and reply->error.
 * Errors, timeout_ms, *id and the calling thread as butler_files_read().
 */
BUTLER_API int butler_files_stat(butler_hub *hub, const char *path,
    int timeout_ms, files_stat_reply_fn cb, void *user,
    uint64_t *id /* OUT: may be NULL */);

/**
 * butler_files_read_wait is butler_files_read() for a thread that speaks
 * for no server of the hub (a plain pthread, main around the hub's run): it
 * blocks until the answer and, on BUTLER_OK, fills *out, whose owned
 * fields (error, data) the caller then frees with files_contents_destroy().
 * Other results as butler_call_wait(): BUTLER_ETIMEDOUT, BUTLER_ESTOPPED,
 * BUTLER_ECLOSED (refused: the hub had begun to stop),
 * BUTLER_EDEADLK from a server's own thread, BUTLER_ESTATE before
 * butler_hub_start(), BUTLER_EINVAL, BUTLER_ENOMEM. Any thread.
 */
BUTLER_API int butler_files_read_wait(butler_hub *hub, const char *path,
    uint64_t offset, uint64_t length, int timeout_ms,
    struct files_contents *out /* OUT: on BUTLER_OK only */);

/**
 * butler_files_write_wait is butler_files_write() for a thread that speaks
 * for no server of the hub, blocking; *out as butler_files_read_wait().
 * Ownership of `data` follows butler_call_wait(): refused at once
 * (BUTLER_EINVAL, EDEADLK, ESTATE, EFULL, ENOMEM) it is still the
 * caller's, otherwise the hub frees it (butler_taken() says which). Any
 * thread.
 */
BUTLER_API int butler_files_write_wait(butler_hub *hub, const char *path,
    struct files_buf data, unsigned flags, unsigned mode, int timeout_ms,
    struct files_written *out /* OUT: on BUTLER_OK only */);

/**
 * butler_files_stat_wait is butler_files_stat() for a thread that speaks
 * for no server of the hub, blocking; *out as butler_files_read_wait().
 * Any thread.
 */
BUTLER_API int butler_files_stat_wait(butler_hub *hub, const char *path,
    int timeout_ms, struct files_attrs *out /* OUT: on BUTLER_OK only */);

#ifdef __cplusplus
}
#endif

#endif /* BUTLER_FILES_H */
