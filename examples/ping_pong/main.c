/* SPDX-License-Identifier: MIT */
/*
 * ping_pong — the smallest complete butler program.
 *
 * Servers ping and pong each run on their own thread and bounce a ball
 * until it has been hit HITS times; the one that hits last tells main,
 * an external-loop server drained right here on the program's own thread.
 * Everything typed below (pp_ball, pp_send_pong_ball, ...) is generated
 * from ping_pong.json by butler_generate() in CMakeLists.txt.
 */
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ping_pong.butler.h"

enum { HITS = 10 };

/* struct game is shared by every handler through the `user` pointer. */
struct game {
	butler_hub *hub;
	bool over; /* set by main's handler, on this thread */
};

static char *
dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	return d ? memcpy(d, s, n) : NULL;
}

/*
 * hit returns the ball to the other side, or ends the rally. The ball that
 * came in is the hub's and is destroyed when the handler returns; the one
 * sent out is new, and on BUTLER_OK the hub owns its string.
 */
static int
hit(butler_server *self, struct game *g, const struct pp_ball *in)
{
	const char *me = butler_server_name(self);
	int rv;

	printf("%s: hit %u (from %s)\n", me, (unsigned)in->hits + 1, in->from);
	if (in->hits + 1 == HITS) {
		struct pp_rally_over over
		    = { .hits = HITS, .last = dup_str(me) };

		rv = pp_send_main_rally_over(g->hub, &over);
		if (rv != BUTLER_OK)
			pp_rally_over_destroy(&over);
		return rv;
	}
	struct pp_ball out = { .hits = in->hits + 1, .from = dup_str(me) };

	if (strcmp(me, "ping") == 0)
		rv = pp_send_pong_ball(g->hub, &out);
	else
		rv = pp_send_ping_ball(g->hub, &out);
	if (rv != BUTLER_OK) /* on failure the ball is still ours */
		pp_ball_destroy(&out);
	return rv;
}

static int
on_ball(butler_server *self, void *user, struct pp_ball *msg)
{
	return hit(self, user, msg);
}

static int
on_rally_over(butler_server *self, void *user, struct pp_rally_over *msg)
{
	struct game *g = user;

	(void)self;
	printf("main: rally over after %u hits, %s hit last\n",
	    (unsigned)msg->hits, msg->last);
	g->over = true;
	return 0;
}

int
main(void)
{
	struct game g = { 0 };
	struct pp_ping_handlers ping = { .ball = on_ball };
	struct pp_pong_handlers pong = { .ball = on_ball };
	struct pp_main_handlers main_h = { .rally_over = on_rally_over };
	struct pp_ball serve = { .hits = 0 };
	int rv, fd;

	rv = butler_hub_new(&g.hub, &pp_spec);
	if (rv != BUTLER_OK) {
		fprintf(stderr, "ping_pong: %s\n", butler_strerror(rv));
		return 1;
	}
	pp_ping_register(g.hub, &ping, &g);
	pp_pong_register(g.hub, &pong, &g);
	pp_main_register(g.hub, &main_h, &g);
	rv = butler_hub_start(g.hub);
	if (rv != BUTLER_OK)
		goto out;

	serve.from = dup_str("main");
	rv = pp_send_ping_ball(g.hub, &serve);
	if (rv != BUTLER_OK) {
		pp_ball_destroy(&serve);
		goto out;
	}
	/* main is ours to drain: wait on its fd as any event loop would. */
	fd = butler_server_fd(g.hub, PP_SERVER_MAIN);
	while (!g.over) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 5000) <= 0) {
			fprintf(stderr, "ping_pong: the rally stalled\n");
			rv = BUTLER_ETIMEDOUT;
			break;
		}
		rv = butler_server_drain(g.hub, PP_SERVER_MAIN, 0, NULL);
		if (rv != BUTLER_OK)
			break;
	}
out:
	if (rv != BUTLER_OK)
		fprintf(stderr, "ping_pong: %s\n", butler_strerror(rv));
	butler_hub_stop(g.hub, BUTLER_STOP_DRAIN);
	butler_hub_free(g.hub);
	return rv == BUTLER_OK ? 0 : 1;
}
