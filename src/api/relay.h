/* One request answered by one resilient model call (engine/exec), relayed as it comes in the request's
 * dialect: a stream commits "200" at its first chunk, so a failure before that still gets its real
 * status and error body, and a failure after it ends the stream with the dialect's error event. Also
 * the steps every endpoint that runs model calls shares: the deadline header, and routing a model name
 * under the client's key. */
#ifndef LX_RELAY_H
#define LX_RELAY_H

#include "../../dialects/dialect.h"
#include "../core/errors.h"
#include "../core/pivot.h"

#include <stdint.h>

struct lx_req;
struct lx_plan;
struct lx_reply;

/* The end-to-end deadline from the x-llmux-timeout-ms header: *at (lx_now_ms clock, 0 = none) and the
 * budget *ms, counted from the request's arrival. LX_ERR with a 400 in err when the header is malformed. */
int lx_relay_deadline(struct lx_req *req, uint64_t *at, long *ms, struct lx_error *err);
/* model (the name the client sent) → plan, if the request's key may use it (403) and it routes (404,
 * provider disabled ...). The first model routed is what the access log shows. LX_ERR with err set. */
int lx_relay_route(struct lx_req *req, const char *model, struct lx_plan *plan, struct lx_error *err);
/* What every endpoint that relays a call says once the answer is decided (exec's on_commit): who answers
 * (X-Llmux-Model, and the request.first_token event) and what it dropped (X-Llmux-Dropped-Params, in the
 * reply's dialect's names). */
void lx_relay_commit(struct lx_req *req, const struct lx_reply *reply, const char *label, const char *dropped);
/* Run chat through plan and relay the answer in d, for req (a hold is taken until the answer is out).
 * rq, the plan and chat's body are taken over; chat's model is unused. A bad deadline header is answered
 * at once. */
void lx_relay_start(struct lx_req *req, const struct lx_dialect *d, struct lx_dialect_req *rq, struct lx_plan *plan,
                    struct lx_chat *chat);

#endif
