/* The OpenAI chat completions dialect: the pivot itself, so its requests and answers pass through as
 * they are. What it owns is the validation of a chat request (every 400 names its field), the SSE
 * framing of a stream ("data: <chunk>" events, then "data: [DONE]"), and OpenAI's error shape, as an
 * answer and as the event that ends a failed stream. */
#include "openai_chat.h"
#include "../src/core/common.h"
#include "../src/core/jscan.h"
#include "../src/core/json.h"
#include "../src/core/passthru.h"
#include "../src/core/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lx_openai_chat_validate(json_t *root, const char *prefix, bool need_model, struct lx_error *err)
{
    char param[96];
    if (!json_is_object(root)) {
        lx_error_bad_request(err, *prefix ? prefix : NULL, "invalid_type",
                             "Invalid type for '%s': expected a chat completion request object.",
                             *prefix ? prefix : "body");
        return LX_ERR;
    }
    json_t *model = json_object_get(root, "model");
    if (need_model && !model) {
        snprintf(param, sizeof param, "%smodel", prefix);
        lx_error_bad_request(err, param, "missing_required_parameter", "Missing required parameter: '%s'.", param);
        return LX_ERR;
    }
    if (need_model && (!json_is_string(model) || json_string_length(model) == 0)) {
        snprintf(param, sizeof param, "%smodel", prefix);
        lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected a non-empty string.", param);
        return LX_ERR;
    }
    json_t *messages = json_object_get(root, "messages");
    snprintf(param, sizeof param, "%smessages", prefix);
    if (!messages) {
        lx_error_bad_request(err, param, "missing_required_parameter", "Missing required parameter: '%s'.", param);
        return LX_ERR;
    }
    if (!json_is_array(messages)) {
        lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected an array.", param);
        return LX_ERR;
    }
    if (json_array_size(messages) == 0) {
        lx_error_bad_request(err, param, "empty_array", "'%s' must contain at least one message.", param);
        return LX_ERR;
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        if (!json_is_object(m)) {
            snprintf(param, sizeof param, "%smessages[%zu]", prefix, i);
            lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected an object.", param);
            return LX_ERR;
        }
        json_t *role = json_object_get(m, "role");
        if (!json_is_string(role)) {
            snprintf(param, sizeof param, "%smessages[%zu].role", prefix, i);
            lx_error_bad_request(
                err, param, role ? "invalid_type" : "missing_required_parameter",
                role ? "Invalid type for '%s': expected a string." : "Missing required parameter: '%s'.", param);
            return LX_ERR;
        }
    }
    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        snprintf(param, sizeof param, "%sstream", prefix);
        lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected a boolean.", param);
        return LX_ERR;
    }
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) {
            snprintf(param, sizeof param, "%sstream_options", prefix);
            lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected an object.", param);
            return LX_ERR;
        }
        json_t *iu = json_object_get(so, "include_usage");
        if (iu && !json_is_boolean(iu)) {
            snprintf(param, sizeof param, "%sstream_options.include_usage", prefix);
            lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected a boolean.", param);
            return LX_ERR;
        }
    }
    return LX_OK;
}

static json_t *parse(const char *body, size_t len, struct lx_dialect_req *rq, struct lx_error *err)
{
    json_t *root = lx_json_parse_object(body, len, err);
    if (!root)
        return NULL;
    if (lx_openai_chat_validate(root, "", true, err) != LX_OK) {
        json_decref(root);
        return NULL;
    }
    rq->model = lx_strdup(json_string_value(json_object_get(root, "model")));
    rq->stream = json_is_true(json_object_get(root, "stream"));
    rq->include_usage = json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    return root;
}

/* parse's checks on the bytes (core/jscan.h), for the bodies that pass them all: a valid JSON object, one
 * non-empty "model" string without escapes, a non-empty "messages" array of objects with one string
 * "role" each, "stream" a boolean or null, "stream_options" null or an object whose include_usage is a
 * boolean. A body with "tools" (maybe MCP tools, which the tool loop reads from the tree), with a member
 * given twice (jansson keeps the last), or with anything parse would refuse is LX_AGAIN: parse then
 * decides, and names the error. */
static int parse_bytes(const char *body, size_t len, struct lx_dialect_req *rq, struct lx_chat_bytes *bytes)
{
    struct lx_jval root;
    if (lx_jscan(body, len, &root) != LX_OK || root.type != LX_JOBJECT)
        return LX_AGAIN;
    enum { M_MODEL, M_MESSAGES, M_STREAM, M_SO, M_TOOLS, M_COUNT };
    struct lx_jmember m[M_COUNT] = {
        {.key = "model"}, {.key = "messages"}, {.key = "stream"}, {.key = "stream_options"}, {.key = "tools"},
    };
    if (lx_jscan_members(&root, m, M_COUNT, NULL) != LX_OK || m[M_TOOLS].count)
        return LX_AGAIN;
    for (int i = 0; i < M_COUNT; i++)
        if (m[i].count > 1)
            return LX_AGAIN;
    const struct lx_jval *model = &m[M_MODEL].val;
    if (!m[M_MODEL].count || model->type != LX_JSTRING || model->len <= 2 || memchr(model->p, '\\', model->len))
        return LX_AGAIN;
    const struct lx_jval *msgs = &m[M_MESSAGES].val;
    if (!m[M_MESSAGES].count || msgs->type != LX_JARRAY)
        return LX_AGAIN;
    struct lx_jiter it;
    struct lx_jval item;
    size_t n = 0;
    lx_jscan_items(msgs, &it);
    while (lx_jscan_next(&it, &item)) {
        struct lx_jmember role = {.key = "role"};
        if (item.type != LX_JOBJECT || lx_jscan_members(&item, &role, 1, NULL) != LX_OK || role.count != 1 ||
            role.val.type != LX_JSTRING)
            return LX_AGAIN;
        n++;
    }
    if (n == 0)
        return LX_AGAIN;
    enum lx_jtype st = m[M_STREAM].val.type;
    if (m[M_STREAM].count && st != LX_JTRUE && st != LX_JFALSE && st != LX_JNULL)
        return LX_AGAIN;
    bool include_usage = false;
    if (m[M_SO].count && m[M_SO].val.type != LX_JNULL) {
        struct lx_jmember iu = {.key = "include_usage"};
        if (m[M_SO].val.type != LX_JOBJECT || lx_jscan_members(&m[M_SO].val, &iu, 1, NULL) != LX_OK || iu.count > 1 ||
            (iu.count && iu.val.type != LX_JTRUE && iu.val.type != LX_JFALSE))
            return LX_AGAIN;
        include_usage = iu.count && iu.val.type == LX_JTRUE;
    }
    if (lx_passthru_request_scanned(body, len, &m[M_MODEL], &m[M_SO], bytes) != LX_OK)
        return LX_AGAIN;
    rq->model = lx_strndup(model->p + 1, model->len - 2);
    rq->stream = m[M_STREAM].count && st == LX_JTRUE;
    rq->include_usage = include_usage;
    return LX_OK;
}

/* The pivot is OpenAI's own answer: it goes out as it is. */
static json_t *completion(const struct lx_dialect_req *rq, json_t *c)
{
    (void)rq;
    return json_incref(c);
}

json_t *lx_openai_error_body(const struct lx_error *err, int *status)
{
    *status = err->status;
    return lx_error_json(err);
}

/* "data: <compact JSON>" and the blank line. */
static void write_event(json_t *obj, struct lx_buf *out)
{
    char *text = json_dumps(obj, JSON_COMPACT);
    lx_sse_write_data(out, text, strlen(text));
    free(text);
}

static void *stream_open(const struct lx_dialect_req *rq)
{
    (void)rq;
    return NULL; /* every event stands alone */
}

static void stream_chunk(void *st, json_t *chunk, struct lx_buf *out)
{
    (void)st;
    write_event(chunk, out);
}

static void stream_end(void *st, struct lx_buf *out)
{
    (void)st;
    lx_buf_puts(out, "data: [DONE]\n\n");
}

static void stream_error(void *st, const struct lx_error *err, struct lx_buf *out)
{
    (void)st;
    json_t *ej = lx_error_json(err);
    write_event(ej, out);
    json_decref(ej);
}

static void stream_close(void *st)
{
    (void)st;
}

/* The pass-through path: the upstream's chunk as it came, framed as an event. */
static void stream_chunk_bytes(void *st, const struct lx_answer_bytes *chunk, struct lx_buf *out)
{
    (void)st;
    lx_buf_append(out, "data: ", 6);
    lx_answer_bytes_write(chunk, out);
    lx_buf_append(out, "\n\n", 2);
}

/* ... and the upstream's completion as it came, ending in a newline as the general path's does. */
static void completion_bytes(const struct lx_dialect_req *rq, const struct lx_answer_bytes *c, struct lx_buf *out)
{
    (void)rq;
    lx_answer_bytes_write(c, out);
    if (!out->len || out->data[out->len - 1] != '\n')
        lx_buf_append(out, "\n", 1);
}

const struct lx_dialect lx_dialect_openai_chat = {
    .name = "openai_chat",
    .parse = parse,
    .parse_bytes = parse_bytes,
    .completion = completion,
    .error_body = lx_openai_error_body,
    .stream_content_type = "text/event-stream",
    .stream_open = stream_open,
    .stream_chunk = stream_chunk,
    .stream_end = stream_end,
    .stream_error = stream_error,
    .stream_keepalive = NULL, /* OpenAI's API sends none */
    .keepalive_ms = 0,
    .stream_close = stream_close,
    .pivot_bytes = true,
    .stream_chunk_bytes = stream_chunk_bytes,
    .completion_bytes = completion_bytes,
};
