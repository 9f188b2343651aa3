/* The chat completions endpoint. The answer is relayed as it comes: a stream commits "200
 * text/event-stream" at its first chunk, so any failure before that still gets its real status and
 * OpenAI error body; a failure after that ends the stream with a `data: {"error":...}` event. */
#include "chat.h"
#include "../../providers/provider.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/json.h"
#include "../core/log.h"
#include "../core/sse.h"
#include "../engine/call.h"
#include "../engine/exec.h"
#include "../engine/router.h"
#include "../server/auth.h"
#include "../server/req.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct lx_chat_ctx {
    struct lx_req_handler handler; /* what the request tells us */
    struct lx_req *req;   /* hold: released in chat_end */
    struct lx_exec *exec; /* NULL once done or cancelled */
    bool stream;
};

json_t *lx_chat_parse(const char *body, size_t len, struct lx_error *err)
{
    json_t *root = lx_json_parse_object(body, len, err);
    if (root && lx_chat_validate(root, "", true, err) != LX_OK) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int lx_chat_validate(json_t *root, const char *prefix, bool need_model, struct lx_error *err)
{
    char param[96];
    if (!json_is_object(root)) {
        lx_error_set(err, 400, "invalid_request_error", *prefix ? prefix : NULL, "invalid_type",
                     "Invalid type for '%s': expected a chat completion request object.", *prefix ? prefix : "body");
        return LX_ERR;
    }
    json_t *model = json_object_get(root, "model");
    if (need_model && !model) {
        snprintf(param, sizeof param, "%smodel", prefix);
        lx_error_set(err, 400, "invalid_request_error", param, "missing_required_parameter",
                     "Missing required parameter: '%s'.", param);
        return LX_ERR;
    }
    if (need_model && (!json_is_string(model) || json_string_length(model) == 0)) {
        snprintf(param, sizeof param, "%smodel", prefix);
        lx_error_set(err, 400, "invalid_request_error", param, "invalid_type",
                     "Invalid type for '%s': expected a non-empty string.", param);
        return LX_ERR;
    }
    json_t *messages = json_object_get(root, "messages");
    snprintf(param, sizeof param, "%smessages", prefix);
    if (!messages) {
        lx_error_set(err, 400, "invalid_request_error", param, "missing_required_parameter",
                     "Missing required parameter: '%s'.", param);
        return LX_ERR;
    }
    if (!json_is_array(messages)) {
        lx_error_set(err, 400, "invalid_request_error", param, "invalid_type",
                     "Invalid type for '%s': expected an array.", param);
        return LX_ERR;
    }
    if (json_array_size(messages) == 0) {
        lx_error_set(err, 400, "invalid_request_error", param, "empty_array",
                     "'%s' must contain at least one message.", param);
        return LX_ERR;
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        if (!json_is_object(m)) {
            snprintf(param, sizeof param, "%smessages[%zu]", prefix, i);
            lx_error_set(err, 400, "invalid_request_error", param, "invalid_type",
                         "Invalid type for '%s': expected an object.", param);
            return LX_ERR;
        }
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role)) {
            snprintf(param, sizeof param, "%smessages[%zu].role", prefix, i);
            lx_error_set(err, 400, "invalid_request_error", param,
                         role ? "invalid_type" : "missing_required_parameter",
                         role ? "Invalid type for '%s': expected a string." : "Missing required parameter: '%s'.",
                         param);
            return LX_ERR;
        }
    }
    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        snprintf(param, sizeof param, "%sstream", prefix);
        lx_error_set(err, 400, "invalid_request_error", param, "invalid_type",
                     "Invalid type for '%s': expected a boolean.", param);
        return LX_ERR;
    }
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            snprintf(param, sizeof param, "%sstream_options", prefix);
            lx_error_set(err, 400, "invalid_request_error", param, "invalid_type",
                         "Invalid type for '%s': expected an object.", param);
            return LX_ERR;
        }
        json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_boolean(iu)) {
            snprintf(param, sizeof param, "%sstream_options.include_usage", prefix);
            lx_error_set(err, 400, "invalid_request_error", param, "invalid_type",
                         "Invalid type for '%s': expected a boolean.", param);
            return LX_ERR;
        }
    }
    return LX_OK;
}

static void chat_end(struct lx_chat_ctx *ctx)
{
    struct lx_req *req = ctx->req;
    lx_req_set_handler(req, NULL);
    free(ctx);
    lx_req_release(req);
}

static void begin_stream(struct lx_req *req)
{
    if (lx_req_started(req))
        return;
    lx_req_add_header(req, "Cache-Control", "no-cache");
    lx_req_add_header(req, "X-Accel-Buffering", "no");
    lx_req_stream_begin(req, 200, "text/event-stream");
}

static void write_event(struct lx_req *req, json_t *obj)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    struct lx_buf b = {0};
    lx_sse_write_data(&b, text, strlen(text));
    lx_req_stream_write(req, b.data, b.len);
    lx_buf_free(&b);
    free(text);
}

void lx_chat_stream_begin(struct lx_req *req)
{
    begin_stream(req);
}

void lx_chat_write_event(struct lx_req *req, json_t *obj)
{
    begin_stream(req);
    write_event(req, obj);
}

static void exec_commit(void *owner, const char *label, const char *dropped)
{
    struct lx_chat_ctx *ctx = owner;
    lx_req_add_header(ctx->req, "X-Llmux-Model", label);
    if (dropped)
        lx_req_add_header(ctx->req, "X-Llmux-Dropped-Params", dropped);
}

static void exec_chunk(void *owner, json_t *chunk)
{
    struct lx_chat_ctx *ctx = owner;
    begin_stream(ctx->req);
    write_event(ctx->req, chunk);
}

static void exec_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct lx_chat_ctx *ctx = owner;
    struct lx_req *req = ctx->req;
    ctx->exec = NULL;
    if (ctx->stream && (lx_req_started(req) || !err)) {
        begin_stream(req);
        if (err) {
            json_t *ev = lx_error_json(err);
            write_event(req, ev);
            json_decref(ev);
        } else {
            lx_req_stream_write(req, "data: [DONE]\n\n", 14);
        }
        lx_req_stream_end(req);
    } else if (err) {
        lx_req_respond_error(req, err);
    } else {
        lx_req_respond_json(req, 200, completion);
        completion = NULL;
    }
    json_decref(completion);
    chat_end(ctx);
}

static bool exec_can_write(void *owner)
{
    struct lx_chat_ctx *ctx = owner;
    return lx_req_can_write(ctx->req);
}

static const struct lx_exec_ops lx_chat_exec_ops = {
    .on_commit = exec_commit,
    .on_chunk = exec_chunk,
    .on_done = exec_done,
    .can_write = exec_can_write,
};

static void chat_abort(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    struct lx_chat_ctx *ctx = LX_CONTAINER_OF(h, struct lx_chat_ctx, handler);
    lx_exec_cancel(ctx->exec);
    ctx->exec = NULL;
    chat_end(ctx);
}

static void chat_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    struct lx_chat_ctx *ctx = LX_CONTAINER_OF(h, struct lx_chat_ctx, handler);
    lx_exec_resume(ctx->exec);
}

static const struct lx_req_handler lx_chat_handler = {
    .on_abort = chat_abort,
    .on_drain = chat_drain,
};

int lx_chat_deadline(struct lx_req *req, uint64_t *at, long *ms, struct lx_error *err)
{
    *at = 0;
    *ms = 0;
    const char *v = lx_req_header(req, "x-llmux-timeout-ms");
    if (!v)
        return LX_OK;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || end == v || *end || n < 1 || n > 86400000) {
        lx_error_set(err, 400, "invalid_request_error", "x-llmux-timeout-ms", "invalid_header",
                     "Invalid x-llmux-timeout-ms header: expected milliseconds, an integer from 1 to 86400000.");
        return LX_ERR;
    }
    /* The budget counts from the request's arrival, so time spent reading the body counts too. */
    *ms = n;
    *at = (uint64_t)req->t_start + (uint64_t)n;
    return LX_OK;
}

void lx_chat_relay(struct lx_req *req, struct lx_plan *plan, struct lx_chat *chat)
{
    struct lx_error err = {0};
    uint64_t at;
    long ms;
    if (lx_chat_deadline(req, &at, &ms, &err) != LX_OK) {
        lx_plan_free(plan);
        json_decref(chat->body);
        chat->body = NULL;
        lx_chat_respond_error(req, &err);
        return;
    }
    struct lx_chat_ctx *ctx = lx_calloc(1, sizeof *ctx);
    ctx->req = lx_req_hold(req);
    ctx->stream = chat->stream;
    ctx->handler = lx_chat_handler;
    lx_req_set_handler(req, &ctx->handler);
    ctx->exec = lx_exec_start(plan, chat, at, ms, &lx_chat_exec_ops, ctx);
    lx_exec_set_tally(ctx->exec, &req->tally);
    json_decref(chat->body);
    chat->body = NULL;
}

void lx_chat_respond_error(struct lx_req *req, struct lx_error *err)
{
    lx_req_respond_error(req, err);
    lx_error_clear(err);
}

int lx_chat_route(struct lx_req *req, json_t *body, struct lx_error *err, struct lx_plan *plan)
{
    if (!body) {
        lx_chat_respond_error(req, err);
        return LX_ERR;
    }
    const char *model = json_string_value(json_object_get(body, "model"));
    req->model = lx_strdup(model);
    if (lx_auth_model(req, model, err) != LX_OK || lx_route_plan(req->cfg->engine, model, plan, err) != LX_OK) {
        json_decref(body);
        lx_chat_respond_error(req, err);
        return LX_ERR;
    }
    return LX_OK;
}

void lx_chat_handle(struct lx_req *req)
{
    struct lx_error err = {0};
    struct lx_plan plan;
    json_t *body = lx_chat_parse(req->body.data, req->body.len, &err);
    if (lx_chat_route(req, body, &err, &plan) != LX_OK)
        return;
    struct lx_chat chat = {
        .kind = LX_CALL_CHAT,
        .body = body,
        .stream = json_is_true(json_object_get(body, "stream")),
        .include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")),
        .req_id = req->id,
        .request_id = req->request_id,
    };
    lx_chat_relay(req, &plan, &chat);
}
