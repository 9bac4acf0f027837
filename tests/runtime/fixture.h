/* SPDX-License-Identifier: MIT */
/*
 * fixture.h — a hand-filled descriptor table for the runtime tests, shaped
 * exactly like butler-gen's output (butler/gen.h), so the runtime can be
 * tested on its own.
 *
 * Messages: 0 `num` (32 bytes of plain data), 1 `owned` (an owned string
 * whose destruction is counted per serial), 2 `ask` (a request whose reply
 * is 3 `answer`). Every server accepts all four, kinds 1..4 in that order.
 */
#ifndef BUTLER_TESTS_FIXTURE_H
#define BUTLER_TESTS_FIXTURE_H

#include <butler/butler.h>

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct num {
	uint64_t seq;
	uint32_t producer;
	uint32_t tag;
	uint64_t pad[2];
};

struct owned {
	char *text;
	uint64_t serial;
};

struct ask {
	uint64_t x;
	uint64_t delay_us;
};

struct answer {
	uint64_t y;
	char *note;
};

enum { K_NONE = 0, K_NUM = 1, K_OWNED = 2, K_ASK = 3, K_ANSWER = 4 };
enum { M_NUM = 0, M_OWNED = 1, M_ASK = 2, M_ANSWER = 3 };

typedef int (*fx_num_fn)(butler_server *self, void *user, struct num *m);
typedef int (*fx_owned_fn)(butler_server *self, void *user, struct owned *m);
typedef int (*fx_ask_fn)(butler_server *self, void *user, struct ask *m);
typedef int (*fx_answer_fn)(butler_server *self, void *user, struct answer *m);

/* The handler table, laid out as a generated one would be. */
struct fx_handlers {
	butler_start_fn on_start;
	butler_stop_fn on_stop;
	fx_num_fn num;
	fx_owned_fn owned;
	fx_ask_fn ask;
	fx_answer_fn answer;
};

/* Destructions per serial, to prove "exactly once". */
#define FX_MAX_SERIALS (1u << 20)
static atomic_uint fx_destroyed[FX_MAX_SERIALS];
static atomic_ulong fx_destroyed_total;

static void
fx_owned_destroy(void *p)
{
	struct owned *m = p;

	free(m->text);
	m->text = NULL;
	if (m->serial < FX_MAX_SERIALS)
		atomic_fetch_add(&fx_destroyed[m->serial], 1);
	atomic_fetch_add(&fx_destroyed_total, 1);
}

static void
fx_answer_destroy(void *p)
{
	struct answer *m = p;

	free(m->note);
	m->note = NULL;
}

static int
fx_dispatch(butler_server *self, const void *handlers, void *user,
    unsigned kind, void *msg)
{
	const struct fx_handlers *h = handlers;

	switch (kind) {
	case K_NUM:
		return h->num(self, user, msg);
	case K_OWNED:
		return h->owned(self, user, msg);
	case K_ASK:
		return h->ask(self, user, msg);
	case K_ANSWER:
		return h->answer(self, user, msg);
	}
	return BUTLER_EKIND;
}

static const char *
fx_check(const void *handlers)
{
	const struct fx_handlers *h = handlers;

	if (h->num == NULL)
		return "num";
	if (h->owned == NULL)
		return "owned";
	if (h->ask == NULL)
		return "ask";
	if (h->answer == NULL)
		return "answer";
	return NULL;
}

static const unsigned fx_accepts[] = { M_NUM, M_OWNED, M_ASK, M_ANSWER };

#define FX_MAX_SERVERS 8

struct fx {
	butler_msg_desc msgs[4];
	butler_server_desc servers[FX_MAX_SERVERS];
	butler_spec spec;
};

/* fx_init fills f with n servers named s0..s{n-1}, threaded, capacity. */
static inline void
fx_init(struct fx *f, unsigned n, unsigned capacity)
{
	static const char *const names[]
	    = { "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7" };
	unsigned i;

	memset(f, 0, sizeof *f);
	f->msgs[M_NUM] = (butler_msg_desc) { "num", sizeof(struct num), NULL,
		-1, -1, 0, NULL, NULL, NULL };
	f->msgs[M_OWNED] = (butler_msg_desc) { "owned", sizeof(struct owned),
		fx_owned_destroy, -1, -1, 0, NULL, NULL, NULL };
	f->msgs[M_ASK] = (butler_msg_desc) { "ask", sizeof(struct ask), NULL,
		M_ANSWER, -1, 0, NULL, NULL, NULL };
	f->msgs[M_ANSWER]
	    = (butler_msg_desc) { "answer", sizeof(struct answer),
		      fx_answer_destroy, -1, -1, 0, NULL, NULL, NULL };
	for (i = 0; i < n; i++) {
		f->servers[i] = (butler_server_desc) {
			.name = names[i],
			.loop = BUTLER_LOOP_THREAD,
			.instances = 1,
			.capacity = capacity,
			.full = BUTLER_FULL_FAIL,
			.block_timeout_ms = -1,
			.accepts = fx_accepts,
			.n_accepts = 4,
			.handlers_size = sizeof(struct fx_handlers),
			.check = fx_check,
			.dispatch = fx_dispatch,
		};
	}
	f->spec = (butler_spec) {
		.abi = BUTLER_GEN_ABI,
		.app = "fx",
		.messages = f->msgs,
		.n_messages = 4,
		.servers = f->servers,
		.n_servers = n,
	};
}

static int
fx_ignore_num(butler_server *self, void *user, struct num *m)
{
	(void)self;
	(void)user;
	(void)m;
	return 0;
}

static int
fx_ignore_owned(butler_server *self, void *user, struct owned *m)
{
	(void)self;
	(void)user;
	(void)m;
	return 0;
}

static int
fx_ignore_ask(butler_server *self, void *user, struct ask *m)
{
	(void)self;
	(void)user;
	(void)m;
	return 0;
}

static int
fx_ignore_answer(butler_server *self, void *user, struct answer *m)
{
	(void)self;
	(void)user;
	(void)m;
	return 0;
}

/* fx_handlers_default: every handler set, doing nothing. */
static inline struct fx_handlers
fx_handlers_default(void)
{
	return (struct fx_handlers) { NULL, NULL, fx_ignore_num,
		fx_ignore_owned, fx_ignore_ask, fx_ignore_answer };
}

static inline int
fx_register(
    butler_hub *hub, unsigned server, const struct fx_handlers *h, void *user)
{
	return butler_hub_set_handlers(
	    hub, server, h, sizeof *h, h->on_start, h->on_stop, user);
}

/* fx_hub creates a hub for f with table h (and user) on every server. */
static inline butler_hub *
fx_hub(struct fx *f, const struct fx_handlers *h, void *user)
{
	butler_hub *hub;

	cr_assert_eq(butler_hub_new(&hub, &f->spec), BUTLER_OK);
	for (unsigned i = 0; i < f->spec.n_servers; i++)
		cr_assert_eq(fx_register(hub, i, h, user), BUTLER_OK);
	return hub;
}

static inline struct owned
fx_owned(uint64_t serial)
{
	char buf[32];

	snprintf(buf, sizeof buf, "msg-%llu", (unsigned long long)serial);
	return (struct owned) { strdup(buf), serial };
}

/* fx_count_dir counts the entries of a /proc directory. */
static inline int
fx_count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * fx_count_threads counts the process's threads whose name (comm, without
 * its newline) `match` accepts.
 */
static inline int
fx_count_threads(
    bool (*match)(const char *comm, const char *arg), const char *arg)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[300], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(
		    path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue; /* the thread just exited */
		if (fgets(comm, sizeof comm, f) != NULL) {
			comm[strcspn(comm, "\n")] = '\0';
			n += match(comm, arg);
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

static inline bool
fx_is_server_name(const char *comm, const char *arg)
{
	(void)arg;
	return comm[0] == 's' && comm[1] >= '0' && comm[1] <= '9';
}

static inline bool
fx_is_named(const char *comm, const char *name)
{
	return strcmp(comm, name) == 0;
}

/*
 * fx_server_threads counts the process's threads named like the fixture's
 * servers (s0..s3, s1/0, ...). The test runner starts threads of its own, so
 * counting every thread would measure Criterion, not butler.
 */
static inline int
fx_server_threads(void)
{
	return fx_count_threads(fx_is_server_name, NULL);
}

/*
 * fx_server_threads_gone counts them once they have had time to go: a
 * joined thread can still be listed in /proc/self/task for a moment (the
 * kernel wakes pthread_join when the thread lets go of its memory, before
 * it removes the task), so a count taken right after a join can see one
 * that has ended. A thread that has not ended stays listed: waiting up to
 * 2 s does not hide a leak.
 */
static inline int
fx_server_threads_gone(void)
{
	int n = fx_server_threads();

	for (int i = 0; i < 2000 && n > 0; i++) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		n = fx_server_threads();
	}
	return n;
}

/* fx_threads_named counts the process's threads named exactly `name`
 * ("butler-monitor": the hub's monitor thread). */
static inline int
fx_threads_named(const char *name)
{
	return fx_count_threads(fx_is_named, name);
}

/* fx_quiet is a log callback that counts messages instead of printing. */
static atomic_int fx_log_count;

static inline void
fx_quiet(butler_log_level level, const char *msg, void *user)
{
	(void)level;
	(void)msg;
	(void)user;
	atomic_fetch_add(&fx_log_count, 1);
}

#define ASSERT_OK(expr)                                                       \
	do {                                                                  \
		int rv_ = (expr);                                             \
		cr_assert_eq(                                                 \
		    rv_, BUTLER_OK, "%s -> %s", #expr, butler_errname(rv_));  \
	} while (0)

#define ASSERT_ERR(expr, code)                                                \
	do {                                                                  \
		int rv_ = (expr);                                             \
		cr_assert_eq(rv_, (code), "%s -> %s, want %s", #expr,         \
		    butler_errname(rv_), butler_errname(code));               \
	} while (0)

#endif /* BUTLER_TESTS_FIXTURE_H */
