/* SPDX-License-Identifier: MIT */
/*
 * servers/bridge/config.c — the JSON configuration (cJSON), secrets and
 * URLs.
 *
 * The JSON is turned into a butler_bridge_config and handed to
 * butler_bridge_new(), so the file and the C API mean the same. Every
 * problem is reported with the JSON path of the value (nodes.worker.
 * listen[0]); unknown keys are errors, as in a spec, so that a misspelled
 * key is never silently ignored.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* ---- URLs --------------------------------------------------------------- */

static bool
loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		const unsigned char *a
		    = (const unsigned char *)&in->sin_addr.s_addr;

		return a[0] == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in
		    = (const struct sockaddr_in6 *)sa;
		const unsigned char *a = in->sin6_addr.s6_addr;
		static const unsigned char one[16] = { [15] = 1 };
		static const unsigned char mapped[12]
		    = { [10] = 0xff, [11] = 0xff };

		return memcmp(a, one, 16) == 0
		    || (memcmp(a, mapped, 12) == 0 && a[12] == 127);
	}
	return false;
}

int
butler__url_check(
    const char *url, bool allow_remote, bool listen, char *why, size_t why_len)
{
	static const char *const tcp[] = { "tcp://", "tcp4://", "tcp6://",
		"tls+tcp://", "tls+tcp4://", "tls+tcp6://" };
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	nng_url *u = NULL;
	bool is_tcp = false;
	const char *host;
	int rv = BUTLER_OK;

	if (strncmp(url, "ipc://", 6) == 0) {
		if (url[6] == '\0') {
			snprintf(
			    why, why_len, "'%s' names no socket path", url);
			return BUTLER_EINVAL;
		}
		return BUTLER_OK; /* local by nature */
	}
	for (size_t i = 0; i < sizeof tcp / sizeof tcp[0]; i++)
		if (strncmp(url, tcp[i], strlen(tcp[i])) == 0)
			is_tcp = true;
	if (!is_tcp) {
		snprintf(why, why_len,
		    "unsupported URL '%s': the bridge speaks tcp://, ipc:// "
		    "and tls+tcp://",
		    url);
		return BUTLER_EINVAL;
	}
	if (nng_url_parse(&u, url) != 0) {
		snprintf(why, why_len, "malformed URL '%s'", url);
		return BUTLER_EINVAL;
	}
	host = u->u_hostname;
	if (u->u_port == NULL || u->u_port[0] == '\0'
	    || (!listen && strcmp(u->u_port, "0") == 0)) {
		snprintf(why, why_len, "URL '%s' needs a port", url);
		rv = BUTLER_EINVAL;
		goto out;
	}
	if (allow_remote)
		goto out;
	if (host == NULL || host[0] == '\0' || strcmp(host, "*") == 0) {
		snprintf(why, why_len,
		    "'%s' listens on every address; only loopback addresses "
		    "are allowed unless allow_remote_hosts is set",
		    url);
		rv = BUTLER_EINVAL;
		goto out;
	}
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
		snprintf(why, why_len, "cannot resolve the host of '%s'", url);
		rv = BUTLER_EINVAL;
		goto out;
	}
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next)
		if (!loopback(a->ai_addr)) {
			snprintf(why, why_len,
			    "'%s' is not a loopback address; other addresses "
			    "are allowed only with allow_remote_hosts "
			    "(BUTLER_BRIDGE_ALLOW_REMOTE_HOSTS)",
			    url);
			rv = BUTLER_EINVAL;
			break;
		}
	freeaddrinfo(res);
out:
	nng_url_free(u);
	return rv;
}

/* ---- the secret --------------------------------------------------------- */

int
butler__secret_read(const char *path, unsigned char **out, size_t *len,
    char *why, size_t why_len)
{
	unsigned char buf[4097];
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, why_len, "cannot read the secret file '%s': %s",
		    path, strerror(errno));
		return BUTLER_EINVAL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "secret file '%s' is not a file", path);
		close(fd);
		return BUTLER_EINVAL;
	}
	/* Like ssh with its keys: a secret others can read is no secret. */
	if ((st.st_mode & 077) != 0
	    || (st.st_uid != geteuid() && st.st_uid != 0)) {
		snprintf(why, why_len,
		    "secret file '%s' may be read by others (mode %04o, owner "
		    "%u): chmod 600 it, as its owner",
		    path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		close(fd);
		return BUTLER_EINVAL;
	}
	while (got < sizeof buf
	    && (n = read(fd, buf + got, sizeof buf - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got == sizeof buf) {
		snprintf(
		    why, why_len, "secret file '%s' is over 4096 bytes", path);
		return BUTLER_EINVAL;
	}
	if (got > 0 && buf[got - 1] == '\n')
		got--;
	if (got > 0 && buf[got - 1] == '\r')
		got--;
	if (got < 16) {
		snprintf(why, why_len,
		    "the secret in '%s' is %zu bytes; it needs at least 16 "
		    "(head -c 32 /dev/urandom | base64 > file)",
		    path, got);
		return BUTLER_EINVAL;
	}
	*out = malloc(got);
	if (*out == NULL)
		return BUTLER_ENOMEM;
	memcpy(*out, buf, got);
	*len = got;
	memset(buf, 0, sizeof buf);
	return BUTLER_OK;
}

/* ---- JSON --------------------------------------------------------------- */

/* What a file's configuration needs besides butler_bridge_config. */
struct cfgfile {
	butler_bridge_config cfg;
	const char **listen, **expose;
	butler_bridge_remote *remote;
	char *dir;      /* the file's directory, for relative names */
	char *files[8]; /* names made absolute */
	unsigned n_files;
	char err[512];
};

static int
bad(struct cfgfile *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return BUTLER_EINVAL;
}

/* Unknown keys are errors (with a typo they would be silently ignored). */
static int
known(struct cfgfile *c, const cJSON *obj, const char *where,
    const char *const *keys)
{
	for (const cJSON *k = obj->child; k != NULL; k = k->next) {
		bool ok = false;

		for (const char *const *p = keys; *p != NULL; p++)
			if (strcmp(k->string, *p) == 0)
				ok = true;
		if (!ok)
			return bad(c, "%s%s%s: unknown key", where,
			    where[0] ? "." : "", k->string);
	}
	for (const cJSON *k = obj->child; k != NULL; k = k->next)
		for (const cJSON *j = k->next; j != NULL; j = j->next)
			if (strcmp(k->string, j->string) == 0)
				return bad(c, "%s%s%s: key given twice", where,
				    where[0] ? "." : "", k->string);
	return BUTLER_OK;
}

/* A file name, relative to the configuration's directory. */
static int
file_name(
    struct cfgfile *c, const cJSON *v, const char *where, const char **out)
{
	char *p;

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return bad(c, "%s: expected a file name", where);
	if (v->valuestring[0] == '/' || c->dir == NULL) {
		*out = v->valuestring;
		return BUTLER_OK;
	}
	if (c->n_files == sizeof c->files / sizeof c->files[0])
		return bad(c, "%s: too many files", where);
	p = malloc(strlen(c->dir) + strlen(v->valuestring) + 2);
	if (p == NULL)
		return BUTLER_ENOMEM;
	sprintf(p, "%s/%s", c->dir, v->valuestring);
	c->files[c->n_files++] = p;
	*out = p;
	return BUTLER_OK;
}

/* An array of strings into a fresh array of pointers (into the JSON). */
static int
strings(struct cfgfile *c, const cJSON *v, const char *where,
    const char ***out, unsigned *n)
{
	unsigned i = 0, count;

	*n = 0;
	if (v == NULL)
		return BUTLER_OK;
	if (!cJSON_IsArray(v))
		return bad(c, "%s: expected an array of strings", where);
	count = (unsigned)cJSON_GetArraySize(v);
	*out = calloc(count ? count : 1, sizeof **out);
	if (*out == NULL)
		return BUTLER_ENOMEM;
	for (const cJSON *e = v->child; e != NULL; e = e->next, i++) {
		if (!cJSON_IsString(e) || e->valuestring[0] == '\0')
			return bad(c, "%s[%u]: expected a string", where, i);
		(*out)[i] = e->valuestring;
	}
	*n = count;
	return BUTLER_OK;
}

static int
number(struct cfgfile *c, const cJSON *v, const char *where, double lo,
    double hi, double *out)
{
	if (!cJSON_IsNumber(v)
	    || v->valuedouble != (double)(long long)v->valuedouble
	    || v->valuedouble < lo || v->valuedouble > hi)
		return bad(c, "%s: expected a whole number from %.0f to %.0f",
		    where, lo, hi);
	*out = v->valuedouble;
	return BUTLER_OK;
}

static int
add_remote(struct cfgfile *c, const char *server, const char *url)
{
	butler_bridge_remote *r
	    = realloc(c->remote, (c->cfg.n_remote + 1) * sizeof *c->remote);

	if (r == NULL)
		return BUTLER_ENOMEM;
	c->remote = r;
	for (unsigned i = 0; i < c->cfg.n_remote; i++)
		if (strcmp(r[i].server, server) == 0)
			return bad(c, "server '%s' is in two nodes", server);
	r[c->cfg.n_remote].server = server;
	r[c->cfg.n_remote].url = url;
	c->cfg.n_remote++;
	return BUTLER_OK;
}

static int
nodes(struct cfgfile *c, const cJSON *all, const char *node)
{
	static const char *const node_keys[]
	    = { "listen", "servers", "doc", NULL };
	const cJSON *mine = NULL;
	char where[256];
	int rv;

	if (!cJSON_IsObject(all) || all->child == NULL)
		return bad(c, "nodes: expected an object of nodes");
	if (node == NULL)
		return bad(c,
		    "nodes: the configuration describes nodes; say "
		    "which one this process is");
	for (const cJSON *n = all->child; n != NULL; n = n->next) {
		const char **servers = NULL, **listen = NULL;
		unsigned n_servers, n_listen;

		snprintf(where, sizeof where, "nodes.%s", n->string);
		if (!cJSON_IsObject(n))
			return bad(c, "%s: expected an object", where);
		if ((rv = known(c, n, where, node_keys)) != BUTLER_OK)
			return rv;
		snprintf(where, sizeof where, "nodes.%s.listen", n->string);
		rv = strings(c, cJSON_GetObjectItemCaseSensitive(n, "listen"),
		    where, &listen, &n_listen);
		if (rv == BUTLER_OK) {
			snprintf(where, sizeof where, "nodes.%s.servers",
			    n->string);
			rv = strings(c,
			    cJSON_GetObjectItemCaseSensitive(n, "servers"),
			    where, &servers, &n_servers);
		}
		if (rv == BUTLER_OK && strcmp(n->string, node) == 0) {
			mine = n;
			c->listen = listen;
			c->cfg.listen = listen;
			c->cfg.n_listen = n_listen;
			c->expose = servers;
			c->cfg.expose = servers;
			c->cfg.n_expose = n_servers;
			continue;
		}
		if (rv == BUTLER_OK && n_servers > 0 && n_listen == 0)
			rv = bad(c,
			    "nodes.%s: has servers but no listen URL to reach "
			    "them",
			    n->string);
		for (unsigned i = 0; rv == BUTLER_OK && i < n_servers; i++)
			rv = add_remote(c, servers[i], listen[0]);
		free(servers);
		free(listen);
		if (rv != BUTLER_OK)
			return rv;
	}
	if (mine == NULL)
		return bad(c, "nodes: no node '%s'", node);
	for (unsigned i = 0; i < c->cfg.n_expose; i++)
		for (unsigned j = 0; j < c->cfg.n_remote; j++)
			if (strcmp(c->cfg.expose[i], c->remote[j].server) == 0)
				return bad(c, "server '%s' is in two nodes",
				    c->cfg.expose[i]);
	return BUTLER_OK;
}

static int
parse(struct cfgfile *c, const cJSON *root, const char *node)
{
	static const char *const keys[] = { "bridge", "doc", "listen",
		"expose", "remote", "nodes", "secret_file", "tls",
		"allow_remote_hosts", "reconnect_ms", "window", "window_bytes",
		"max_frame", NULL };
	static const char *const tls_keys[]
	    = { "ca", "cert", "key", "server_name", NULL };
	const cJSON *v;
	double d;
	int rv;

	if (!cJSON_IsObject(root))
		return bad(c, "expected an object");
	if ((rv = known(c, root, "", keys)) != BUTLER_OK)
		return rv;
	v = cJSON_GetObjectItemCaseSensitive(root, "bridge");
	if (!cJSON_IsNumber(v) || v->valuedouble != 1)
		return bad(
		    c, "bridge: must be 1 (the configuration's version)");
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "nodes")) != NULL) {
		if (cJSON_GetObjectItemCaseSensitive(root, "listen")
		    || cJSON_GetObjectItemCaseSensitive(root, "expose")
		    || cJSON_GetObjectItemCaseSensitive(root, "remote"))
			return bad(c,
			    "nodes: give either nodes or listen, "
			    "expose and remote");
		if ((rv = nodes(c, v, node)) != BUTLER_OK)
			return rv;
	} else {
		rv = strings(c,
		    cJSON_GetObjectItemCaseSensitive(root, "listen"), "listen",
		    &c->listen, &c->cfg.n_listen);
		if (rv == BUTLER_OK)
			rv = strings(c,
			    cJSON_GetObjectItemCaseSensitive(root, "expose"),
			    "expose", &c->expose, &c->cfg.n_expose);
		if (rv != BUTLER_OK)
			return rv;
		c->cfg.listen = c->listen;
		c->cfg.expose = c->expose;
		v = cJSON_GetObjectItemCaseSensitive(root, "remote");
		if (v != NULL && !cJSON_IsObject(v))
			return bad(c,
			    "remote: expected an object of server "
			    "names and URLs");
		for (const cJSON *r = v ? v->child : NULL; r; r = r->next) {
			if (!cJSON_IsString(r))
				return bad(
				    c, "remote.%s: expected a URL", r->string);
			if ((rv = add_remote(c, r->string, r->valuestring)))
				return rv;
		}
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "secret_file")) != NULL
	    && (rv = file_name(c, v, "secret_file", &c->cfg.secret_file)))
		return rv;
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "tls")) != NULL) {
		const cJSON *t;

		if (!cJSON_IsObject(v))
			return bad(c, "tls: expected an object");
		if ((rv = known(c, v, "tls", tls_keys)) != BUTLER_OK)
			return rv;
		if ((t = cJSON_GetObjectItemCaseSensitive(v, "ca"))
		    && (rv = file_name(c, t, "tls.ca", &c->cfg.tls_ca_file)))
			return rv;
		if ((t = cJSON_GetObjectItemCaseSensitive(v, "cert"))
		    && (rv
		        = file_name(c, t, "tls.cert", &c->cfg.tls_cert_file)))
			return rv;
		if ((t = cJSON_GetObjectItemCaseSensitive(v, "key"))
		    && (rv = file_name(c, t, "tls.key", &c->cfg.tls_key_file)))
			return rv;
		if ((t = cJSON_GetObjectItemCaseSensitive(v, "server_name"))) {
			if (!cJSON_IsString(t))
				return bad(c,
				    "tls.server_name: expected a "
				    "string");
			c->cfg.tls_server_name = t->valuestring;
		}
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(
	         root, "allow_remote_hosts"))) {
		if (!cJSON_IsBool(v))
			return bad(c,
			    "allow_remote_hosts: expected true or "
			    "false");
		if (cJSON_IsTrue(v))
			c->cfg.flags |= BUTLER_BRIDGE_ALLOW_REMOTE_HOSTS;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "reconnect_ms"))) {
		double lo, hi;

		if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
			return bad(c, "reconnect_ms: expected [min, max]");
		if ((rv = number(
		         c, v->child, "reconnect_ms[0]", 1, 3600000, &lo))
		    || (rv = number(c, v->child->next, "reconnect_ms[1]", lo,
		            3600000, &hi)))
			return rv;
		c->cfg.reconnect_min_ms = (unsigned)lo;
		c->cfg.reconnect_max_ms = (unsigned)hi;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "window"))) {
		if ((rv = number(c, v, "window", 1, 1 << 24, &d)))
			return rv;
		c->cfg.window = (unsigned)d;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "window_bytes"))) {
		if ((rv = number(
		         c, v, "window_bytes", 1024, 4294967295.0, &d)))
			return rv;
		c->cfg.window_bytes = (size_t)d;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "max_frame"))) {
		if ((rv = number(c, v, "max_frame", 1024, 4294967295.0, &d)))
			return rv;
		c->cfg.max_frame = (size_t)d;
	}
	return BUTLER_OK;
}

int
butler_bridge_new_file(butler_bridge **out, butler_hub *hub,
    const butler_spec *spec, const char *path, const char *node,
    butler_log_fn log, butler_log_level log_level, void *log_user)
{
	struct cfgfile c = { 0 };
	struct butler_bridge quiet
	    = { .log = log, .log_level = log_level, .log_user = log_user };
	cJSON *root = NULL;
	char *text = NULL;
	const char *slash;
	size_t n = 0;
	FILE *f;
	int rv = BUTLER_OK;

	if (out == NULL)
		return BUTLER_EINVAL;
	*out = NULL;
	c.cfg.log = log;
	c.cfg.log_level = log_level;
	c.cfg.log_user = log_user;
	if (path == NULL)
		return butler_bridge_new(out, hub, spec, &c.cfg);

	f = fopen(path, "rb");
	if (f == NULL) {
		butler__br_log(&quiet, BUTLER_LOG_ERROR,
		    "bridge: cannot read %s: %s", path, strerror(errno));
		return BUTLER_EINVAL;
	}
	text = malloc(1 << 20);
	if (text != NULL)
		n = fread(text, 1, 1 << 20, f);
	fclose(f);
	if (text == NULL)
		return BUTLER_ENOMEM;
	if (n == 1 << 20) {
		rv = bad(&c, "the file is over 1 MiB");
		goto out;
	}
	root = cJSON_ParseWithLength(text, n);
	if (root == NULL) {
		rv = bad(&c, "not valid JSON");
		goto out;
	}
	slash = strrchr(path, '/');
	c.dir = slash != NULL ? strndup(path, (size_t)(slash - path))
	                      : strdup(".");
	if (c.dir == NULL) {
		rv = BUTLER_ENOMEM;
		goto out;
	}
	if ((rv = parse(&c, root, node)) != BUTLER_OK)
		goto out;
	c.cfg.remote = c.remote;
	rv = butler_bridge_new(out, hub, spec, &c.cfg);
out:
	if (c.err[0] != '\0')
		butler__br_log(
		    &quiet, BUTLER_LOG_ERROR, "bridge: %s: %s", path, c.err);
	cJSON_Delete(root);
	free(text);
	free(c.listen);
	free(c.expose);
	free(c.remote);
	for (unsigned i = 0; i < c.n_files; i++)
		free(c.files[i]);
	free(c.dir);
	return rv;
}
