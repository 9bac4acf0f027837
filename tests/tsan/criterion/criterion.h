/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for <criterion/criterion.h>, used only by the ThreadSanitizer
 * build: Criterion cannot start under TSan (its BoxFort arena maps memory
 * TSan reserves; Snaipe/Criterion#274, open since 2018). It implements the
 * subset of Criterion the runtime tests use, with the same meaning: each
 * Test() runs in its own forked process with its timeout, and the run ends
 * with Criterion's summary line. Nothing else includes this file.
 */
#ifndef BUTLER_TESTS_TSAN_CRITERION_H
#define BUTLER_TESTS_TSAN_CRITERION_H

#pragma GCC system_header

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct crs_opts {
	int unused_;
	int timeout;
	int disabled;
};

struct crs_test {
	const char *suite, *name;
	void (*fn)(void);
	struct crs_opts opts;
};

static struct crs_test crs_tests[256];
static int crs_count;

static inline void
crs_register(const char *suite, const char *name, void (*fn)(void),
    struct crs_opts opts)
{
	if (crs_count < 256)
		crs_tests[crs_count++]
		    = (struct crs_test) { suite, name, fn, opts };
}

#define Test(suite, name, ...)                                                \
	static void suite##_##name##_fn_(void);                               \
	__attribute__((constructor)) static void suite##_##name##_reg_(void)  \
	{                                                                     \
		crs_register(#suite, #name, suite##_##name##_fn_,             \
		    (struct crs_opts) { 0, __VA_ARGS__ });                    \
	}                                                                     \
	static void suite##_##name##_fn_(void)

/* Set by a failed cr_expect*: the case goes on, and fails at its end. */
static int crs_expect_failed;

static inline void
crs_check(int fatal, int ok, const char *file, int line, const char *expr,
    const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	fprintf(stderr, "[----] %s:%d: Assertion Failed\n[----]   %s\n", file,
	    line, expr);
	if (fmt[0] != '\0') {
		fprintf(stderr, "[----]   ");
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fprintf(stderr, "\n");
	}
	fflush(stderr);
	if (fatal)
		_exit(1);
	crs_expect_failed = 1;
}

#define cr_assert(cond, ...)                                                  \
	crs_check(1, !!(cond), __FILE__, __LINE__, #cond, "" __VA_ARGS__)
#define cr_expect(cond, ...)                                                  \
	crs_check(0, !!(cond), __FILE__, __LINE__, #cond, "" __VA_ARGS__)
#define cr_assert_fail(...) cr_assert(0, __VA_ARGS__)
/* cr_skip_test ends the case, which passes, after saying why. */
#define cr_skip_test(...)                                                     \
	do {                                                                  \
		fprintf(stderr, "[SKIP] " __VA_ARGS__);                       \
		fprintf(stderr, "\n");                                        \
		fflush(NULL);                                                 \
		_exit(0);                                                     \
	} while (0)
#define cr_expect_eq(a, b, ...) cr_expect((a) == (b), __VA_ARGS__)
#define cr_expect_neq(a, b, ...) cr_expect((a) != (b), __VA_ARGS__)
#define cr_expect_null(p, ...) cr_expect((p) == NULL, __VA_ARGS__)
#define cr_expect_not_null(p, ...) cr_expect((p) != NULL, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...)                                           \
	cr_expect(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_null(p, ...) cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                           \
	cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...)                                          \
	cr_assert(strcmp((a), (b)) != 0, __VA_ARGS__)

int
main(int argc, char **argv)
{
	int i, passed = 0, failed = 0;
	const char *filter = NULL;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
			filter = argv[++i];
	for (i = 0; i < crs_count; i++) {
		struct crs_test *t = &crs_tests[i];
		char full[256];
		pid_t pid;
		int status = 0;

		snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
		if ((filter != NULL && strstr(full, filter) == NULL)
		    || t->opts.disabled)
			continue;
		fflush(NULL);
		/* CRS_NOFORK=1 runs the cases in this process, for a
		 * debugger. */
		pid = getenv("CRS_NOFORK") != NULL ? 0 : fork();
		if (pid == 0 && getenv("CRS_NOFORK") != NULL) {
			t->fn();
			printf("[PASS?] %s::%s\n", t->suite, t->name);
			continue;
		}
		if (pid == 0) {
			alarm(t->opts.timeout > 0 ? (unsigned)t->opts.timeout
			                          : 60);
			t->fn();
			fflush(NULL);
			_exit(crs_expect_failed);
		}
		waitpid(pid, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			passed++;
			printf("[PASS] %s::%s\n", t->suite, t->name);
		} else {
			failed++;
			printf("[FAIL] %s::%s (%s %d)\n", t->suite, t->name,
			    WIFSIGNALED(status) ? "signal" : "exit",
			    WIFSIGNALED(status) ? WTERMSIG(status)
			                        : WEXITSTATUS(status));
		}
	}
	printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | "
	       "Crashing: 0\n",
	    passed + failed, passed, failed);
	return failed ? 1 : 0;
}

#endif /* BUTLER_TESTS_TSAN_CRITERION_H */
