/* SPDX-License-Identifier: MIT */
/*
 * tests/bridge/test_config.c — the bridge's configuration: the JSON file
 * (both forms, every error with its path), what butler_bridge_new() refuses
 * (names, servers that cannot cross, URLs that are not loopback, secrets),
 * and a deployment file that splits one spec over two hubs; TLS with
 * certificates checked.
 */
#include <criterion/criterion.h>
#include <sys/stat.h>

#include "ext.butler.h"
#include "pair.h"

static char dir[256];
static struct side A = { .name = "A" }, B = { .name = "B" };

static void
setup(void)
{
	snprintf(
	    dir, sizeof dir, "/tmp/butler-bridge-config-%d", (int)getpid());
	mkdir(dir, 0700);
	rec.log_len = 0;
	rec.log[0] = '\0';
}

static void
teardown(void)
{
	char cmd[512];

	side_down(&A);
	side_down(&B);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	(void)system(cmd);
}

/* Writes dir/name with the given text and mode; returns its path. */
static const char *
put(const char *name, int mode, const char *fmt, ...)
{
	static char paths[8][512];
	static unsigned next;
	char *path = paths[next++ % 8];
	va_list ap;
	FILE *f;

	snprintf(path, 512, "%s/%s", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	chmod(path, (mode_t)mode);
	return path;
}

static butler_hub *
hub(void)
{
	butler_hub *h;

	cr_assert_eq(butler_hub_new(&h, &bt_spec), BUTLER_OK);
	register_all(h);
	return h;
}

/* butler_bridge_new_file() on a hub that is then freed; its result. */
static int
try_file(const char *path, const char *node)
{
	butler_hub *h = hub();
	butler_bridge *br = NULL;
	int rv = butler_bridge_new_file(
	    &br, h, &bt_spec, path, node, test_log, BUTLER_LOG_DEBUG, "cfg");

	butler_hub_free(h);
	butler_bridge_free(br);
	return rv;
}

static int
try_cfg(butler_bridge_config cfg)
{
	butler_hub *h = hub();
	butler_bridge *br = NULL;
	int rv;

	cfg.log = test_log;
	cfg.log_level = BUTLER_LOG_DEBUG;
	cfg.log_user = "cfg";
	rv = butler_bridge_new(&br, h, &bt_spec, &cfg);
	butler_hub_free(h);
	butler_bridge_free(br);
	return rv;
}

#define expect_refused(rv, text)                                              \
	do {                                                                  \
		cr_expect_eq((rv), BUTLER_EINVAL, "%s", butler_strerror(rv)); \
		cr_expect(log_has(text), "no '%s' in:\n%s", (text), rec.log); \
	} while (0)

Test(config, file_errors_name_the_path, .init = setup, .fini = teardown,
    .timeout = 60)
{
	const char *secret = put("s", 0600, "%s\n", SECRET);

	expect_refused(
	    try_file(put("a.json", 0644, "{ \"bridge\": 2 }"), NULL),
	    "bridge: must be 1");
	expect_refused(try_file(put("b.json", 0644,
	                            "{ \"bridge\": 1, "
	                            "\"listne\": [] }"),
	                   NULL),
	    "listne: unknown key");
	expect_refused(try_file(put("c.json", 0644,
	                            "{ \"bridge\": 1, "
	                            "\"nodes\": { \"w\": { "
	                            "\"listen\": [1] } } }"),
	                   "w"),
	    "nodes.w.listen[0]: expected a string");
	expect_refused(
	    try_file(put("d.json", 0644,
	                 "{ \"bridge\": 1, \"nodes\": { \"w\": {} } }"),
	        "x"),
	    "nodes: no node 'x'");
	expect_refused(try_file(put("e.json", 0644,
	                            "{ \"bridge\": 1, "
	                            "\"nodes\": { \"w\": { "
	                            "\"servers\": "
	                            "[\"worker\"] }, "
	                            "\"c\": {} } }"),
	                   "c"),
	    "nodes.w: has servers but no listen URL");
	expect_refused(try_file(put("f.json", 0644,
	                            "{ \"bridge\": 1, "
	                            "\"tls\": { \"cert\": 1 } }"),
	                   NULL),
	    "tls.cert: expected a file name");
	expect_refused(try_file(put("g.json", 0644,
	                            "{ \"bridge\": 1, "
	                            "\"window\": 0.5 }"),
	                   NULL),
	    "window: expected a whole number");
	expect_refused(try_file(put("h.json", 0644, "{ not json"), NULL),
	    "not valid JSON");
	expect_refused(try_file("/nonexistent/bridge.json", NULL),
	    "cannot read /nonexistent/bridge.json");
	/* Relative names are relative to the file. */
	put("ok.json", 0644,
	    "{ \"bridge\": 1, \"secret_file\": \"s\", \"remote\": "
	    "{ \"worker\": \"tcp://127.0.0.1:9\" } }");
	cr_expect_eq(try_file(put("ok.json", 0644,
	                          "{ \"bridge\": 1, \"secret_file\": \"s\", "
	                          "\"remote\": { \"worker\": "
	                          "\"tcp://127.0.0.1:9\" } }"),
	                 NULL),
	    BUTLER_OK, "%s", rec.log);
	(void)secret;
}

Test(config, what_new_refuses, .init = setup, .fini = teardown, .timeout = 60)
{
	butler_bridge_remote r = { "worker", "tcp://127.0.0.1:9" };
	butler_bridge_config c = config();
	const char *url;

	c.remote = &r;
	c.n_remote = 1;
	cr_expect_eq(try_cfg(c), BUTLER_OK, "%s", rec.log);

	r.server = "nobody";
	expect_refused(try_cfg(c), "no server 'nobody' in the hub");
	r.server = "bt.worker"; /* qualified by its spec's app */
	cr_expect_eq(try_cfg(c), BUTLER_OK, "%s", rec.log);
	r.server = "worker";

	r.url = "tcp://10.1.2.3:7411";
	expect_refused(try_cfg(c), "is not a loopback address");
	c.flags = BUTLER_BRIDGE_ALLOW_REMOTE_HOSTS;
	cr_expect_eq(try_cfg(c), BUTLER_OK, "%s", rec.log);
	c.flags = 0;
	r.url = "ws://127.0.0.1:7411";
	expect_refused(try_cfg(c), "unsupported URL");
	r.url = "tcp://127.0.0.1:9";

	c.secret = "short";
	c.secret_len = 5;
	expect_refused(try_cfg(c), "it needs at least 16");
	c.secret = NULL;
	expect_refused(try_cfg(c), "needs a shared secret");
	c.secret_file = put("open", 0644, "%s", SECRET);
	expect_refused(try_cfg(c), "may be read by others (mode 0644");
	c.secret_file = put("tiny", 0600, "abc\n");
	expect_refused(try_cfg(c), "is 3 bytes; it needs at least 16");
	c.secret_file = put("good", 0600, "%s\n", SECRET);
	cr_expect_eq(try_cfg(c), BUTLER_OK, "%s", rec.log);

	/* Exposing. */
	c = config();
	url = "tcp://0.0.0.0:0";
	c.listen = &url;
	c.n_listen = 1;
	c.expose = (const char *const[]) { "worker" };
	c.n_expose = 1;
	expect_refused(try_cfg(c), "is not a loopback address");
	url = "tcp://*:0";
	expect_refused(try_cfg(c), "listens on every address");
	url = "tcp://127.0.0.1:0";
	cr_expect_eq(try_cfg(c), BUTLER_OK, "%s", rec.log);
	c.expose = (const char *const[]) { "blocker" };
	expect_refused(try_cfg(c), "blocks callers of 'add' when full");
	c.expose = (const char *const[]) { "worker" };
	c.remote = &r;
	c.n_remote = 1;
	expect_refused(try_cfg(c), "is both remote and exposed");
	c.n_remote = 0;
	url = "tls+tcp://127.0.0.1:0";
	expect_refused(try_cfg(c), "needs a certificate and its key");
}

static int
on_ping(butler_server *self, void *user, struct ex_ping *msg)
{
	(void)self, (void)user, (void)msg;
	return BUTLER_OK;
}

Test(config, external_loop_cannot_be_remote, .init = setup, .fini = teardown,
    .timeout = 60)
{
	butler_bridge_remote r = { "gui", "tcp://127.0.0.1:9" };
	butler_bridge_config c = config();
	butler_bridge *br = NULL;
	butler_hub *h;

	c.remote = &r;
	c.n_remote = 1;
	cr_assert_eq(butler_hub_new(&h, &ex_spec), BUTLER_OK);
	ex_gui_register(
	    h, &(struct ex_gui_handlers) { .ping = on_ping }, NULL);
	expect_refused(butler_bridge_new(&br, h, &ex_spec, &c),
	    "its proxy needs a loop of its own");
	cr_expect_null(br);
	butler_hub_free(h);
}

/* One deployment file, two processes' worth of hubs: each is told which
 * node it is, and the same code runs split. */
Test(
    config, one_file_two_nodes, .init = setup, .fini = teardown, .timeout = 60)
{
	const char *path;
	struct bt_sum s = { 0 };
	int rv;

	put("secret", 0600, "%s\n", SECRET);
	path = put("deploy.json", 0644,
	    "{ \"bridge\": 1, \"secret_file\": \"secret\",\n"
	    "  \"reconnect_ms\": [20, 200],\n"
	    "  \"nodes\": {\n"
	    "    \"worker\": { \"listen\": [\"ipc://%s/worker.sock\"],\n"
	    "                \"servers\": [\"worker\", \"sink\"] },\n"
	    "    \"client\": {} } }\n",
	    dir);
	B.hub = hub();
	rv = butler_bridge_new_file(&B.br, B.hub, &bt_spec, path, "worker",
	    test_log, BUTLER_LOG_DEBUG, "B");
	cr_assert_eq(rv, BUTLER_OK, "%s", rec.log);
	cr_assert_eq(butler_hub_start(B.hub), BUTLER_OK);
	A.hub = hub();
	rv = butler_bridge_new_file(&A.br, A.hub, &bt_spec, path, "client",
	    test_log, BUTLER_LOG_DEBUG, "A");
	cr_assert_eq(rv, BUTLER_OK, "%s", rec.log);
	cr_assert_eq(butler_hub_start(A.hub), BUTLER_OK);
	cr_assert_eq(butler_bridge_wait(A.br, 5000), BUTLER_OK);
	rv = bt_call_worker_add_wait(
	    A.hub, &(struct bt_add) { .a = 40, .b = 2 }, 5000, &s);
	cr_expect_eq(rv, BUTLER_OK, "%s", butler_strerror(rv));
	cr_expect_eq(s.s, 42);
}

/* ---- TLS
 * ----------------------------------------------------------------------- */

static bool
openssl(const char *args)
{
	char cmd[2048];

	snprintf(cmd, sizeof cmd, "cd '%s' && openssl %s >/dev/null 2>&1", dir,
	    args);
	return system(cmd) == 0;
}

/* A CA (once), and a certificate it signs for `name` (DNS:localhost). */
static bool
make_certs(const char *ca, const char *name)
{
	char args[1024], path[512];

	put("ext.cnf", 0644, "subjectAltName=DNS:localhost\n");
	snprintf(path, sizeof path, "%s/%s.pem", dir, ca);
	snprintf(args, sizeof args,
	    "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
	    "-nodes -keyout %s.key -out %s.pem -days 2 -subj /CN=%s",
	    ca, ca, ca);
	if (access(path, F_OK) != 0 && !openssl(args))
		return false;
	snprintf(args, sizeof args,
	    "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
	    "-keyout %s.key -out %s.csr -subj /CN=localhost",
	    name, name);
	if (!openssl(args))
		return false;
	snprintf(args, sizeof args,
	    "x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial "
	    "-out %s.pem -days 2 -extfile ext.cnf",
	    name, ca, ca, name);
	return openssl(args);
}

static char *
at(const char *name)
{
	static char paths[8][512];
	static unsigned next;
	char *p = paths[next++ % 8];

	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

Test(config, tls_verifies_certificates, .init = setup, .fini = teardown,
    .timeout = 60)
{
	butler_bridge_config cb = { 0 }, ca = { 0 };
	struct bt_sum s = { 0 };
	int rv;

	if (system("command -v openssl >/dev/null") != 0
	    || !make_certs("ca", "server") || !make_certs("ca", "client")
	    || !make_certs("other", "stranger")) {
		cr_skip_test("openssl cannot make test certificates");
		return;
	}
	/* B: its certificate, and the CA its clients' must come from. */
	cb.tls_cert_file = at("server.pem");
	cb.tls_key_file = at("server.key");
	cb.tls_ca_file = at("ca.pem");
	cb.log = test_log;
	cb.log_level = BUTLER_LOG_DEBUG;
	rv = side_expose(&B, "tls+tcp://127.0.0.1:0",
	    (const char *const[]) { "worker", "sink" }, 2, cb);
	cr_assert_eq(rv, BUTLER_OK, "%s", rec.log);
	/* A: the CA that signed B's, and its own certificate. */
	ca.tls_ca_file = at("ca.pem");
	ca.tls_cert_file = at("client.pem");
	ca.tls_key_file = at("client.key");
	ca.tls_server_name = "localhost";
	ca.log = test_log;
	ca.log_level = BUTLER_LOG_DEBUG;
	ca.reconnect_min_ms = 20;
	rv = side_use(&A, butler_bridge_url(B.br, 0), ca);
	cr_assert_eq(rv, BUTLER_OK, "%s", rec.log);
	cr_assert_eq(butler_bridge_wait(A.br, 5000), BUTLER_OK, "%s", rec.log);
	rv = bt_call_worker_add_wait(
	    A.hub, &(struct bt_add) { .a = 1, .b = 2 }, 5000, &s);
	cr_expect_eq(rv, BUTLER_OK, "%s", butler_strerror(rv));
	cr_expect_eq(s.s, 3);
	side_down(&A);

	/* A client whose certificate another CA signed is refused. */
	ca.tls_cert_file = at("stranger.pem");
	ca.tls_key_file = at("stranger.key");
	rv = side_use(&A, butler_bridge_url(B.br, 0), ca);
	cr_assert_eq(rv, BUTLER_OK, "%s", rec.log);
	cr_expect_eq(butler_bridge_wait(A.br, 700), BUTLER_ETIMEDOUT);
	side_down(&A);

	/* A client that trusts another CA refuses B. */
	ca.tls_ca_file = at("other.pem");
	ca.tls_cert_file = at("client.pem");
	ca.tls_key_file = at("client.key");
	rv = side_use(&A, butler_bridge_url(B.br, 0), ca);
	cr_assert_eq(rv, BUTLER_OK, "%s", rec.log);
	cr_expect_eq(butler_bridge_wait(A.br, 700), BUTLER_ETIMEDOUT);
}
