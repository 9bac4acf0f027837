/* SPDX-License-Identifier: MIT */
/*
 * Each request has its own promise type: answering one request's promise
 * with another request's answer function does not compile.
 */
/* expect: incompatible type */
#include "requests.butler.h"

int answer(
    butler_server *self, struct rq_sum_promise sum, struct rq_add_promise add);

int
answer(
    butler_server *self, struct rq_sum_promise sum, struct rq_add_promise add)
{
	struct rq_total t = { .n = 1, .text = NULL };

	(void)sum;
	(void)add;
#ifdef BREAK
	return rq_answer_sum(self, add, &t);
#else
	return rq_answer_sum(self, sum, &t);
#endif
}
