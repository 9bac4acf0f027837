/* SPDX-License-Identifier: MIT */
/*
 * servers/bridge/bridge.c — the bridge: its configuration, checked before
 * anything in the hub changes; its servers' names; the lifecycle of its
 * I/O; its counters.
 *
 * The I/O (dialing, accepting) opens when the first of the bridge's
 * servers (the bridge server, the proxies) starts and closes, waiting for
 * every nng callback, when the last one stops: inside butler_hub_stop(),
 * so that no nng thread touches the hub after its threads are gone, and
 * before butler_hub_free() destroys what is queued (batches, whose
 * destruction still refers to the bridge's links: so the bridge is freed
 * after the hub).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t
butler__br_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
butler__br_log(const struct butler_bridge *br, butler_log_level level,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (br->log == NULL ? level > BUTLER_LOG_WARN : level > br->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (br->log != NULL)
		br->log(level, msg, br->log_user);
	else
		fprintf(stderr, "%s\n", msg);
}

/* ---- the I/O lifecycle -------------------------------------------------- */

void
butler__br_member_start(struct butler_bridge *br)
{
	bool first;

	pthread_mutex_lock(&br->mtx);
	br->members++;
	first = !br->io_open;
	br->io_open = true;
	pthread_mutex_unlock(&br->mtx);
	if (!first)
		return;
	for (unsigned i = 0; i < br->n_lis; i++)
		butler__listener_accept(&br->lis[i]);
	for (unsigned i = 0; i < br->n_dials; i++)
		butler__link_start_dial(br->dials[i]);
}

void
butler__br_member_stop(struct butler_bridge *br)
{
	bool last;

	pthread_mutex_lock(&br->mtx);
	last = --br->members == 0 && !br->io_closed;
	pthread_mutex_unlock(&br->mtx);
	if (last)
		butler__link_close_all(br);
}

/* ---- names -------------------------------------------------------------- */

/* Adds spec and, depth first, its imports (each once), as the hub does. */
static void
add_specs(struct butler_bridge *br, const butler_spec *spec)
{
	for (unsigned i = 0; i < br->n_specs; i++)
		if (br->specs[i] == spec)
			return;
	if (br->n_specs == BUTLER_MAX_IMPORTS)
		return;
	br->specs[br->n_specs++] = spec;
	for (unsigned i = 0; i < spec->n_imports; i++)
		add_specs(br, spec->imports[i]);
}

/* A server by name ("worker", or "app.worker"), in any of the specs. */
static int
resolve(struct butler_bridge *br, const char *name, const butler_spec **sp,
    unsigned *index)
{
	const char *dot = strchr(name, '.');
	unsigned found = 0;

	for (unsigned i = 0; i < br->n_specs; i++) {
		const butler_spec *s = br->specs[i];
		const char *srv = name;

		if (dot != NULL) {
			size_t n = (size_t)(dot - name);

			if (strlen(s->app) != n
			    || strncmp(s->app, name, n) != 0)
				continue;
			srv = dot + 1;
		}
		for (unsigned j = 0; j < s->n_servers; j++)
			if (strcmp(s->servers[j].name, srv) == 0) {
				if (found++ == 0) {
					*sp = s;
					*index = j;
				}
			}
	}
	if (found == 1)
		return BUTLER_OK;
	if (found == 0)
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: no server '%s' in the hub", name);
	else
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: server name '%s' is in %u specs: name it "
		    "'app.%s'",
		    name, found, name);
	return BUTLER_EINVAL;
}

/* Every message server j of sp handles, answers or reports can travel. */
static int
check_codecs(struct butler_bridge *br, const butler_spec *sp, unsigned j)
{
	const butler_server_desc *sd = &sp->servers[j];

	for (unsigned k = 0; k < sd->n_accepts; k++) {
		const butler_msg_desc *m = &sp->messages[sd->accepts[k]];
		const butler_msg_desc *bad = NULL;

		if (m->encode == NULL)
			bad = m;
		else if (m->reply >= 0
		    && sp->messages[m->reply].encode == NULL)
			bad = &sp->messages[m->reply];
		else if (m->progress >= 0
		    && sp->messages[m->progress].encode == NULL)
			bad = &sp->messages[m->progress];
		if (bad != NULL) {
			butler__br_log(br, BUTLER_LOG_ERROR,
			    "bridge: server '%s' cannot cross a bridge: "
			    "message "
			    "'%s' has no wire codec (it holds a ptr); mark "
			    "the "
			    "server \"remote\": true to have butler-gen check "
			    "its messages",
			    sd->name, bad->name);
			return BUTLER_EINVAL;
		}
	}
	return BUTLER_OK;
}

/* Largest reply or progress struct of server j's requests. */
static size_t
answer_size(const butler_spec *sp, unsigned j)
{
	const butler_server_desc *sd = &sp->servers[j];
	size_t n = 0;

	for (unsigned k = 0; k < sd->n_accepts; k++) {
		const butler_msg_desc *m = &sp->messages[sd->accepts[k]];

		if (m->reply >= 0 && sp->messages[m->reply].size > n)
			n = sp->messages[m->reply].size;
		if (m->progress >= 0 && sp->messages[m->progress].size > n)
			n = sp->messages[m->progress].size;
	}
	return n;
}

/* ---- TLS ---------------------------------------------------------------- */

static char *
read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1 << 20)
	    && fseek(f, 0, SEEK_SET) == 0
	    && (buf = malloc((size_t)n + 1)) != NULL) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	}
	fclose(f);
	return buf;
}

int
butler__br_tls(struct butler_bridge *br, bool listen, const char *url,
    nng_tls_config **out)
{
	nng_tls_config *cfg = NULL;
	char *cert = NULL, *key = NULL;
	nng_url *u = NULL;
	int rv;

	*out = NULL;
	rv = nng_tls_config_alloc(
	    &cfg, listen ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
	if (rv == 0 && br->tls_cert != NULL) {
		cert = read_text(br->tls_cert);
		key = read_text(br->tls_key);
		rv = cert == NULL || key == NULL
		    ? NNG_ENOENT
		    : nng_tls_config_own_cert(cfg, cert, key, NULL);
	}
	if (rv == 0 && br->tls_ca != NULL)
		rv = nng_tls_config_ca_file(cfg, br->tls_ca);
	/* Verification is required: always for a dialer (it has a CA), for
	 * a listener when it has a CA for its clients. */
	if (rv == 0)
		rv = nng_tls_config_auth_mode(cfg,
		    br->tls_ca != NULL ? NNG_TLS_AUTH_MODE_REQUIRED
		                       : NNG_TLS_AUTH_MODE_NONE);
	if (rv == 0 && !listen) {
		const char *name = br->tls_name;

		if (name == NULL && (rv = nng_url_parse(&u, url)) == 0)
			name = u->u_hostname;
		if (rv == 0)
			rv = nng_tls_config_server_name(cfg, name);
	}
	if (u != NULL)
		nng_url_free(u);
	free(cert);
	free(key);
	if (rv != 0) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: TLS for %s: %s (ca %s, cert %s, key %s)", url,
		    nng_strerror(rv), br->tls_ca ? br->tls_ca : "none",
		    br->tls_cert ? br->tls_cert : "none",
		    br->tls_key ? br->tls_key : "none");
		if (cfg != NULL)
			nng_tls_config_free(cfg);
		return BUTLER_EINVAL;
	}
	*out = cfg;
	return BUTLER_OK;
}

/* ---- building ----------------------------------------------------------- */

static char *
dup_or_null(const char *s, bool *failed)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*failed = true;
	return d;
}

/* The checks of one URL: transport, host, what it needs. */
static int
check_url(struct butler_bridge *br, const char *url, bool listen)
{
	char why[256];
	bool tls = strncmp(url, "tls+tcp", 7) == 0;

	if (butler__url_check(url,
	        (br->flags & BUTLER_BRIDGE_ALLOW_REMOTE_HOSTS) != 0, listen,
	        why, sizeof why)
	    != BUTLER_OK) {
		butler__br_log(br, BUTLER_LOG_ERROR, "bridge: %s", why);
		return BUTLER_EINVAL;
	}
	if (!tls && br->secret == NULL) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: %s needs a shared secret (secret or "
		    "secret_file): "
		    "tcp:// and ipc:// links prove it in their handshake",
		    url);
		return BUTLER_EINVAL;
	}
	if (tls && listen && (br->tls_cert == NULL || br->tls_key == NULL)) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: listening on %s needs a certificate and its key "
		    "(tls_cert_file, tls_key_file)",
		    url);
		return BUTLER_EINVAL;
	}
	if (tls && !listen && br->tls_ca == NULL) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: dialing %s needs the CA that signed the "
		    "listener's certificate (tls_ca_file): certificates are "
		    "always verified",
		    url);
		return BUTLER_EINVAL;
	}
	return BUTLER_OK;
}

static int
setup_exposed(struct butler_bridge *br, const butler_bridge_config *cfg)
{
	size_t scratch = 0;

	if (cfg->n_expose == 0)
		return BUTLER_OK;
	if (br->bridge_server == BUTLER_NO_SERVER) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: exposing servers needs the bridge's own server: "
		    "the hub's spec must import servers/bridge/bridge.json");
		return BUTLER_EINVAL;
	}
	br->exp = calloc(cfg->n_expose, sizeof *br->exp);
	if (br->exp == NULL)
		return BUTLER_ENOMEM;
	for (unsigned i = 0; i < cfg->n_expose; i++) {
		struct butler__exposed *x = &br->exp[i];
		const butler_server_desc *sd;
		int rv
		    = resolve(br, cfg->expose[i], &x->spec, &x->spec_server);

		if (rv != BUTLER_OK)
			return rv;
		x->server
		    = butler_hub_server(br->hub, x->spec, x->spec_server);
		sd = &x->spec->servers[x->spec_server];
		x->name = sd->name;
		for (unsigned j = 0; j < i; j++)
			if (br->exp[j].server == x->server) {
				butler__br_log(br, BUTLER_LOG_ERROR,
				    "bridge: server '%s' is exposed twice",
				    x->name);
				return BUTLER_EINVAL;
			}
		if (x->server == br->bridge_server) {
			butler__br_log(br, BUTLER_LOG_ERROR,
			    "bridge: the bridge server cannot be exposed");
			return BUTLER_EINVAL;
		}
		if ((rv = check_codecs(br, x->spec, x->spec_server))
		    != BUTLER_OK)
			return rv;
		/* A call to a server that blocks its senders would stall the
		 * bridge's one thread (and every link with it). */
		for (unsigned k = 0; k < sd->n_accepts; k++) {
			const butler_msg_desc *m
			    = &x->spec->messages[sd->accepts[k]];
			butler_full full
			    = sd->kinds != NULL ? sd->kinds[k].full : sd->full;

			if (m->size > scratch)
				scratch = m->size;
			if (m->reply >= 0 && full == BUTLER_FULL_BLOCK) {
				butler__br_log(br, BUTLER_LOG_ERROR,
				    "bridge: server '%s' blocks callers of "
				    "'%s' when full (full: block); the bridge "
				    "cannot wait on one server: expose it "
				    "with "
				    "full: fail (the bridge keeps what does "
				    "not fit, within the peers' credit)",
				    x->name, m->name);
				return BUTLER_EINVAL;
			}
		}
	}
	br->n_exp = cfg->n_expose;
	br->scratch_size = scratch;
	br->scratch = calloc(1, scratch ? scratch : 1);
	return br->scratch != NULL ? BUTLER_OK : BUTLER_ENOMEM;
}

/* The dialed link to url, made once per URL. */
static int
link_for(struct butler_bridge *br, const char *url, struct butler__link **out)
{
	struct butler__link **d;
	int rv;

	for (unsigned i = 0; i < br->n_dials; i++)
		if (strcmp(br->dials[i]->url, url) == 0) {
			*out = br->dials[i];
			return BUTLER_OK;
		}
	d = realloc(br->dials, (br->n_dials + 1) * sizeof *d);
	if (d == NULL)
		return BUTLER_ENOMEM;
	br->dials = d;
	rv = butler__link_new_dial(br, url, &d[br->n_dials]);
	if (rv != BUTLER_OK)
		return rv;
	*out = d[br->n_dials++];
	return BUTLER_OK;
}

static int
setup_remote(struct butler_bridge *br, const butler_bridge_config *cfg)
{
	unsigned slots = 0;

	if (cfg->n_remote == 0)
		return BUTLER_OK;
	br->groups = calloc(cfg->n_remote, sizeof *br->groups);
	if (br->groups == NULL)
		return BUTLER_ENOMEM;
	for (unsigned i = 0; i < cfg->n_remote; i++) {
		struct butler__pgroup *g = &br->groups[i];
		const butler_server_desc *sd;
		struct butler__dtarget *dt;
		struct butler__link *l;
		int rv;

		g->br = br;
		br->n_groups = i + 1;
		if (cfg->remote[i].server == NULL
		    || cfg->remote[i].url == NULL) {
			butler__br_log(br, BUTLER_LOG_ERROR,
			    "bridge: remote server %u has no name or URL", i);
			return BUTLER_EINVAL;
		}
		rv = resolve(
		    br, cfg->remote[i].server, &g->spec, &g->spec_server);
		if (rv != BUTLER_OK)
			return rv;
		g->server
		    = butler_hub_server(br->hub, g->spec, g->spec_server);
		sd = &g->spec->servers[g->spec_server];
		g->name = sd->name;
		for (unsigned j = 0; j < i; j++)
			if (br->groups[j].server == g->server) {
				butler__br_log(br, BUTLER_LOG_ERROR,
				    "bridge: server '%s' is remote twice",
				    g->name);
				return BUTLER_EINVAL;
			}
		for (unsigned j = 0; j < br->n_exp; j++)
			if (br->exp[j].server == g->server) {
				butler__br_log(br, BUTLER_LOG_ERROR,
				    "bridge: server '%s' is both remote and "
				    "exposed",
				    g->name);
				return BUTLER_EINVAL;
			}
		if (g->server == br->bridge_server
		    || sd->loop != BUTLER_LOOP_THREAD) {
			butler__br_log(br, BUTLER_LOG_ERROR,
			    "bridge: server '%s' cannot be remote: %s",
			    g->name,
			    g->server == br->bridge_server
			        ? "it is the bridge's own"
			        : "its proxy needs a loop of its own (an "
			          "external-loop server's thread is yours)");
			return BUTLER_EINVAL;
		}
		if ((rv = check_codecs(br, g->spec, g->spec_server))
		    != BUTLER_OK)
			return rv;
		if ((rv = check_url(br, cfg->remote[i].url, false))
		    != BUTLER_OK)
			return rv;
		if ((rv = link_for(br, cfg->remote[i].url, &l)) != BUTLER_OK)
			return rv;
		if (l->n_targets == BUTLER__MAX_TARGETS) {
			butler__br_log(br, BUTLER_LOG_ERROR,
			    "bridge: more than %u servers at %s",
			    BUTLER__MAX_TARGETS, l->url);
			return BUTLER_EINVAL;
		}
		dt = realloc(l->dt, (l->n_targets + 1) * sizeof *dt);
		if (dt == NULL)
			return BUTLER_ENOMEM;
		l->dt = dt;
		memset(&dt[l->n_targets], 0, sizeof *dt);
		dt[l->n_targets].g = g;
		dt[l->n_targets].server = (uint16_t)g->spec_server;
		g->link = l;
		g->target = (uint16_t)l->n_targets++;
		g->n_inst = butler_server_instances(br->hub, g->server);
		g->scratch_size = answer_size(g->spec, g->spec_server);
		slots += g->n_inst;
		if (slots > BUTLER__SLOT_MASK + 1u) {
			butler__br_log(br, BUTLER_LOG_ERROR,
			    "bridge: too many remote server instances");
			return BUTLER_EINVAL;
		}
		if ((rv = butler__proxy_install(g)) != BUTLER_OK)
			return rv;
	}
	br->slots = calloc(slots, sizeof *br->slots);
	if (br->slots == NULL)
		return BUTLER_ENOMEM;
	for (unsigned i = 0; i < br->n_groups; i++)
		for (unsigned k = 0; k < br->groups[i].n_inst; k++) {
			br->groups[i].inst[k].slot = br->n_slots;
			br->slots[br->n_slots++] = &br->groups[i].inst[k];
		}
	return BUTLER_OK;
}

static int
setup_config(struct butler_bridge *br, const butler_bridge_config *cfg)
{
	bool failed = false;
	int rv;

	br->flags = cfg->flags;
	br->reconnect_min = cfg->reconnect_min_ms
	    ? cfg->reconnect_min_ms
	    : BUTLER__DEFAULT_RECONNECT_MIN;
	br->reconnect_max = cfg->reconnect_max_ms
	    ? cfg->reconnect_max_ms
	    : BUTLER__DEFAULT_RECONNECT_MAX;
	if (br->reconnect_max < br->reconnect_min)
		br->reconnect_max = br->reconnect_min;
	br->window = cfg->window ? cfg->window : BUTLER__DEFAULT_WINDOW;
	br->window_bytes = cfg->window_bytes
	    ? (uint32_t)(cfg->window_bytes > UINT32_MAX ? UINT32_MAX
	                                                : cfg->window_bytes)
	    : BUTLER__DEFAULT_WINDOW_BYTES;
	br->max_frame
	    = cfg->max_frame ? cfg->max_frame : BUTLER__DEFAULT_MAX_FRAME;
	if (br->max_frame < 1024 || br->max_frame > UINT32_MAX) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: max_frame %zu is out of range (1024 to 2^32-1)",
		    br->max_frame);
		return BUTLER_EINVAL;
	}
	if (cfg->secret != NULL) {
		if (cfg->secret_len < 16) {
			butler__br_log(br, BUTLER_LOG_ERROR,
			    "bridge: the shared secret is %zu bytes; it needs "
			    "at least 16",
			    cfg->secret_len);
			return BUTLER_EINVAL;
		}
		br->secret = malloc(cfg->secret_len);
		if (br->secret == NULL)
			return BUTLER_ENOMEM;
		memcpy(br->secret, cfg->secret, cfg->secret_len);
		br->secret_len = cfg->secret_len;
	} else if (cfg->secret_file != NULL) {
		char why[512];

		rv = butler__secret_read(cfg->secret_file, &br->secret,
		    &br->secret_len, why, sizeof why);
		if (rv != BUTLER_OK) {
			butler__br_log(
			    br, BUTLER_LOG_ERROR, "bridge: %s", why);
			return rv;
		}
	}
	br->tls_ca = dup_or_null(cfg->tls_ca_file, &failed);
	br->tls_cert = dup_or_null(cfg->tls_cert_file, &failed);
	br->tls_key = dup_or_null(cfg->tls_key_file, &failed);
	br->tls_name = dup_or_null(cfg->tls_server_name, &failed);
	if (failed)
		return BUTLER_ENOMEM;
	if ((br->tls_cert == NULL) != (br->tls_key == NULL)) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: a TLS certificate needs its key, and a key its "
		    "certificate");
		return BUTLER_EINVAL;
	}
	return BUTLER_OK;
}

static int
setup_listeners(struct butler_bridge *br, const butler_bridge_config *cfg)
{
	if (cfg->n_listen == 0)
		return BUTLER_OK;
	if (br->n_exp == 0) {
		butler__br_log(br, BUTLER_LOG_ERROR,
		    "bridge: listening, but exposing no server");
		return BUTLER_EINVAL;
	}
	br->lis = calloc(cfg->n_listen, sizeof *br->lis);
	if (br->lis == NULL)
		return BUTLER_ENOMEM;
	for (unsigned i = 0; i < cfg->n_listen; i++) {
		struct butler__listener *lis = &br->lis[i];
		int rv = check_url(br, cfg->listen[i], true);

		lis->br = br;
		br->n_lis = i + 1;
		if (rv != BUTLER_OK)
			return rv;
		if ((lis->url = strdup(cfg->listen[i])) == NULL)
			return BUTLER_ENOMEM;
		if ((rv = butler__listener_open(lis)) != BUTLER_OK)
			return rv;
	}
	return BUTLER_OK;
}

int
butler_bridge_new(butler_bridge **out, butler_hub *hub,
    const butler_spec *spec, const butler_bridge_config *cfg)
{
	static const butler_bridge_config none = { 0 };
	struct butler_bridge *br;
	pthread_condattr_t ca;
	int rv;

	if (out == NULL)
		return BUTLER_EINVAL;
	*out = NULL;
	if (hub == NULL || spec == NULL)
		return BUTLER_EINVAL;
	if (cfg == NULL)
		cfg = &none;
	if (butler_hub_server(hub, spec, 0) == BUTLER_NO_SERVER
	    && spec->n_servers > 0)
		return BUTLER_EINVAL; /* not the hub's spec */
	br = calloc(1, sizeof *br);
	if (br == NULL)
		return BUTLER_ENOMEM;
	br->hub = hub;
	br->log = cfg->log;
	br->log_level = cfg->log_level;
	br->log_user = cfg->log_user;
	pthread_mutex_init(&br->mtx, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&br->cond, &ca);
	pthread_condattr_destroy(&ca);
	add_specs(br, spec);
	br->bridge_server
	    = butler_hub_server(hub, &bridge_spec, BRIDGE_SERVER_BRIDGE);

	if ((rv = setup_config(br, cfg)) != BUTLER_OK
	    || (rv = setup_exposed(br, cfg)) != BUTLER_OK
	    || (rv = setup_remote(br, cfg)) != BUTLER_OK
	    || (rv = setup_listeners(br, cfg)) != BUTLER_OK)
		goto out_free;
	/* Now the hub changes: its handlers, and no more checks can fail
	 * but its own (a hub that started). */
	rv = butler__expose_install(br);
	for (unsigned i = 0; rv == BUTLER_OK && i < br->n_groups; i++)
		rv = butler__proxy_activate(&br->groups[i]);
	if (rv != BUTLER_OK)
		goto out_free;
	*out = br;
	return BUTLER_OK;

out_free:
	butler_bridge_free(br);
	return rv;
}

void
butler_bridge_free(butler_bridge *br)
{
	if (br == NULL)
		return;
	pthread_mutex_lock(&br->mtx);
	if (!br->io_closed) {
		pthread_mutex_unlock(&br->mtx);
		butler__link_close_all(br);
	} else {
		pthread_mutex_unlock(&br->mtx);
	}
	for (unsigned i = 0; i < br->n_lis; i++) {
		if (br->lis[i].l != NULL)
			nng_stream_listener_free(br->lis[i].l);
		if (br->lis[i].aio != NULL)
			nng_aio_free(br->lis[i].aio);
		if (br->lis[i].tls != NULL)
			nng_tls_config_free(br->lis[i].tls);
		free(br->lis[i].url);
		free(br->lis[i].bound);
	}
	free(br->lis);
	while (br->accepted != NULL) {
		struct butler__link *l = br->accepted;

		br->accepted = l->next;
		butler__link_free(l);
	}
	for (unsigned i = 0; i < br->n_dials; i++)
		butler__link_free(br->dials[i]);
	free(br->dials);
	for (unsigned i = 0; i < br->n_groups; i++)
		butler__proxy_free(&br->groups[i]);
	free(br->groups);
	free(br->slots);
	free(br->exp);
	free(br->scratch);
	if (br->secret != NULL) {
		/* Not left in freed memory. */
		volatile unsigned char *p = br->secret;

		for (size_t i = 0; i < br->secret_len; i++)
			p[i] = 0;
		free(br->secret);
	}
	free(br->tls_ca);
	free(br->tls_cert);
	free(br->tls_key);
	free(br->tls_name);
	pthread_cond_destroy(&br->cond);
	pthread_mutex_destroy(&br->mtx);
	free(br);
}

/* ---- waiting, addresses, counters --------------------------------------- */

static bool
all_up(struct butler_bridge *br)
{
	uint32_t gen;

	for (unsigned i = 0; i < br->n_dials; i++)
		if (!butler__link_up(br->dials[i], &gen))
			return false;
	return true;
}

int
butler_bridge_wait(butler_bridge *br, int timeout_ms)
{
	struct timespec ts;
	int rv = BUTLER_OK;

	if (br == NULL)
		return BUTLER_EINVAL;
	ts = butler__br_deadline(timeout_ms >= 0 ? timeout_ms : 0);
	pthread_mutex_lock(&br->mtx);
	if (!br->io_open || br->io_closed)
		rv = BUTLER_ESTATE;
	while (rv == BUTLER_OK && !all_up(br)) {
		if (timeout_ms < 0)
			pthread_cond_wait(&br->cond, &br->mtx);
		else if (pthread_cond_timedwait(&br->cond, &br->mtx, &ts) != 0
		    && !all_up(br))
			rv = BUTLER_ETIMEDOUT;
	}
	pthread_mutex_unlock(&br->mtx);
	return rv;
}

const char *
butler_bridge_url(const butler_bridge *br, unsigned i)
{
	return br != NULL && i < br->n_lis ? br->lis[i].bound : NULL;
}

int
butler_bridge_stats(const butler_bridge *br, butler_bridge_counters *out)
{
	const struct butler__counters *c;

	if (br == NULL || out == NULL)
		return BUTLER_EINVAL;
	c = &br->st;
#define LOAD_(f) out->f = atomic_load_explicit(&c->f, memory_order_relaxed)
	LOAD_(links_up);
	LOAD_(connects);
	LOAD_(refused);
	LOAD_(lost);
	LOAD_(malformed);
	LOAD_(frames_out);
	LOAD_(frames_in);
	LOAD_(bytes_out);
	LOAD_(bytes_in);
	LOAD_(dropped);
	LOAD_(closed);
	LOAD_(credit_waits);
	LOAD_(full_retries);
#undef LOAD_
	return BUTLER_OK;
}
