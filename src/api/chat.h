/* POST /v1/chat/completions: validation, routing, and relaying one call's answer (JSON or SSE). */
#ifndef LX_API_CHAT_H
#define LX_API_CHAT_H

#include "../core/errors.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct lx_req;
struct lx_chat;
struct lx_provider_conf;

void lx_chat_handle(struct lx_req *req);

struct lx_plan;
/* Run one resilient call (exec.c) for req and relay its answer (JSON, or SSE when chat->stream). The plan
 * and chat's body are taken; chat's model is unused. Shared by the endpoints that answer with one model
 * call (chat, embeddings). */
void lx_chat_relay(struct lx_req *req, struct lx_plan *plan, struct lx_chat *chat);
/* The common start of a one-call endpoint: body is a validated request (NULL: err says why). Records
 * the model for the log and routes it; on failure answers the client (body freed) and returns LX_ERR. */
int lx_chat_route(struct lx_req *req, json_t *body, struct lx_error *err, struct lx_plan *plan);
/* The end-to-end deadline from the x-llmux-timeout-ms header: *at (lx_now_ms clock, 0 = none) and the
 * budget *ms. LX_ERR with a 400 in err when the header is malformed. */
int lx_chat_deadline(struct lx_req *req, uint64_t *at, long *ms, struct lx_error *err);
/* Commit "200 text/event-stream" with the stream headers, once. */
void lx_chat_stream_begin(struct lx_req *req);
/* One SSE data event of obj, and the stream's 200 head (once) before the first. */
void lx_chat_write_event(struct lx_req *req, json_t *obj);
/* Answer err (and clear it), with the headers that go with its kind. */
void lx_chat_respond_error(struct lx_req *req, struct lx_error *err);

/* Validate an OpenAI chat request body. Returns the parsed object (new reference) or NULL with err set
 * to a 400 naming the field. Exposed for unit tests and the fuzz target. */
json_t *lx_chat_parse(const char *body, size_t len, struct lx_error *err);
/* The checks of lx_chat_parse on a parsed value; params in errors are prefixed ("requests[3]."). Without
 * need_model, "model" is not looked at (fanout takes "models"). LX_OK, or LX_ERR with a 400 in err. */
int lx_chat_validate(json_t *root, const char *prefix, bool need_model, struct lx_error *err);

#endif
