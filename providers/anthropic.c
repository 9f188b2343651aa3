/* Provider type "anthropic": the Messages API (POST {base_url}/v1/messages), translated both ways.
 * Request: system/developer messages → top-level system; consecutive same-role turns merged; tool
 * calls → tool_use blocks, tool results → tool_result blocks in a user turn; images → image blocks, PDF
 * file parts → document blocks; tools/tool_choice/stop/max_tokens/user mapped; response_format becomes a
 * system instruction (there is no JSON mode); n > 1 is refused; parameters with no Anthropic meaning are
 * dropped and listed in x-llmux-dropped-params. Response and stream: content blocks → message/deltas,
 * tool_use → tool_calls, thinking → reasoning_details, stop_reason → finish_reason (the matched stop
 * sequence in the choice's stop_reason, as vLLM puts it), usage (with cache tokens) → OpenAI usage. The
 * maps themselves are in anthropic_map.c, shared with the anthropic_messages dialect.
 * A client that speaks the Messages API itself (lx_chat.native) is relayed: its body goes up as it came,
 * the model renamed, with its anthropic-version and anthropic-beta, and the answer's own events (or
 * message) ride along with the pivot chunks for its dialect to write as they came. */
#include "anthropic_map.h"
#include "openai.h"
#include "provider.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"
#include "../src/core/confread.h"
#include "../src/core/sse.h"

#include <stdlib.h>
#include <string.h>

static const char *const anthropic_keys[] = {"type", "base_url", "api_key", "headers", "models", "timeouts",
                                             "max_tokens", NULL};

struct anthropic_conf {
    long max_tokens; /* sent when the client gives none (Anthropic requires it) */
};

static int anthropic_configure(struct lx_provider_conf *p, json_t *obj, const char *path, char *err, size_t errlen)
{
    struct anthropic_conf *ac = lx_calloc(1, sizeof *ac);
    ac->max_tokens = 4096;
    p->state = ac;
    return lx_conf_long(obj, "max_tokens", path, 1, 1000000, &ac->max_tokens, err, errlen);
}

static void anthropic_free_state(void *state)
{
    free(state);
}

#define LX_ANTHROPIC_API "anthropic_messages" /* the inbound dialect that speaks this type's API */

/* The key, the API version (the client's own when it spoke Anthropic), its betas, the config's headers. */
static void add_headers(const struct lx_provider_conf *p, struct lx_http_request *out, json_t *client)
{
    if (p->api_key)
        lx_http_request_add_header(out, "x-api-key: %s", p->api_key);
    const char *version = json_string_value(json_object_get(client, "anthropic-version"));
    const char *beta = json_string_value(json_object_get(client, "anthropic-beta"));
    lx_http_request_add_header(out, "anthropic-version: %s", version ? version : "2023-06-01");
    if (beta)
        lx_http_request_add_header(out, "anthropic-beta: %s", beta);
    for (size_t i = 0; i < p->n_headers; i++)
        lx_http_request_add_header(out, "%s", p->headers[i]);
}

/* The client's own body (new reference), the model renamed; top-level nulls (fields the client left
 * unset, which Anthropic refuses when it does not know them) left out. */
static json_t *native_body(json_t *native, const char *model)
{
    json_t *body = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(native, "body"), key, v) {
        if (!json_is_null(v))
            json_object_set(body, key, v);
    }
    json_object_set_new(body, "model", json_string(model));
    return body;
}

/* A client of the Messages API itself: its own body and headers. */
static int native_request(const struct lx_provider_conf *p, const struct lx_chat *chat, json_t *native,
                          struct lx_http_request *out)
{
    json_t *body = native_body(native, chat->model);
    if (chat->stream)
        json_object_set_new(body, "stream", json_true());
    else
        json_object_del(body, "stream");
    lx_http_request_post_json(out, lx_sprintf("%s/v1/messages", p->base_url), body);
    lx_http_request_add_header(out, "Accept: %s", chat->stream ? "text/event-stream" : "application/json");
    add_headers(p, out, json_object_get(native, "headers"));
    return LX_OK;
}

static void bad_param(struct lx_error *err, const char *param, const char *why)
{
    lx_error_bad_request(err, param, "unsupported_parameter", "%s", why);
}

/* Append blocks to the last turn when it has the same role (Anthropic wants alternating turns). */
static void push_turn(json_t *messages, const char *role, json_t *blocks)
{
    size_t n = json_array_size(messages);
    json_t *last = n ? json_array_get(messages, n - 1) : NULL;
    if (last && strcmp(json_string_value(json_object_get(last, "role")), role) == 0) {
        json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_array_append_new(messages, json_pack("{s:s,s:o}", "role", role, "content", blocks));
}

/* Parameters this translation reads. Every other one (frequency_penalty, presence_penalty, logit_bias,
 * logprobs, seed, ...) has no Anthropic equivalent: it is dropped and listed in x-llmux-dropped-params. */
/* Anthropic refuses a request whose history holds tool_use or tool_result blocks but that defines no tools
 * ("Requests which include tool_use or tool_result blocks must define tools"; anthropic-sdk-python#494).
 * OpenAI accepts it, and it is common: a Responses turn continuing one that ran MCP tools, a client that
 * drops its tools once it has its answer. So the tools the history called are declared, each with an open
 * schema, and tool_choice none keeps the model from calling them. */
static void unoffered_tools(json_t *body, json_t *called)
{
    json_t *tools = json_array();
    const char *name;
    json_t *v;
    json_object_foreach(called, name, v) {
        json_array_append_new(tools, json_pack("{s:s,s:s,s:{s:s}}", "name", name, "description",
                                               "A tool called earlier in this conversation; not offered now.",
                                               "input_schema", "type", "object"));
    }
    json_object_set_new(body, "tools", tools);
    json_object_set_new(body, "tool_choice", json_pack("{s:s}", "type", "none"));
}

static const char *const anthropic_known[] = {"model", "messages", "max_tokens", "max_completion_tokens", "stop",
                                              "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls",
                                              "response_format", "user", "stream", "stream_options", "n", NULL};

static bool in_list(const char *const *list, const char *key)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], key) == 0)
            return true;
    return false;
}

static int anthropic_chat_request(const struct lx_provider_conf *p, const struct lx_chat *chat,
                                  struct lx_http_request *out, struct lx_error *err)
{
    json_t *native = lx_chat_native(chat, LX_ANTHROPIC_API);
    if (native)
        return native_request(p, chat, native, out);
    const struct anthropic_conf *ac = p->state;
    json_t *in = chat->body;
    json_t *n = json_object_get(in, "n");
    if (json_is_integer(n) && json_integer_value(n) != 1) {
        bad_param(err, "n", "Anthropic models return one choice: n must be 1.");
        return LX_ERR;
    }
    json_t *body = json_pack("{s:s,s:I}", "model", chat->model, "max_tokens",
                             lx_chat_max_tokens(in, ac ? ac->max_tokens : 4096));
    json_t *messages = json_array();
    json_t *called = json_object(); /* names of the tools the history's assistant turns called */
    struct lx_buf system = {0};
    size_t mi;
    json_t *m;
    json_array_foreach(json_object_get(in, "messages"), mi, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (system.len)
                lx_buf_puts(&system, "\n\n");
            lx_content_text(content, &system);
        } else if (strcmp(role, "user") == 0 || strcmp(role, "assistant") == 0) {
            char param[96];
            snprintf(param, sizeof param, "messages[%zu].content", mi);
            json_t *blocks = lx_anthropic_blocks_from_openai(content, param, err);
            if (!blocks)
                goto fail;
            size_t k;
            json_t *tc;
            json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
                json_t *use = lx_anthropic_tool_use_from_openai(tc);
                if (!use) {
                    json_decref(blocks);
                    snprintf(param, sizeof param, "messages[%zu].tool_calls[%zu].function.arguments", mi, k);
                    bad_param(err, param, "Tool call arguments must be a JSON object.");
                    goto fail;
                }
                json_array_append_new(blocks, use);
                const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
                if (name && !json_object_get(called, name))
                    json_object_set_new(called, name, json_true());
            }
            if (json_array_size(blocks) == 0) /* Anthropic refuses empty turns */
                json_array_append_new(blocks, json_pack("{s:s,s:s}", "type", "text", "text", "(empty)"));
            push_turn(messages, role, blocks);
        } else if (strcmp(role, "tool") == 0) {
            struct lx_buf text = {0};
            lx_content_text(content, &text);
            json_t *block = json_pack("{s:s,s:O?,s:s}", "type", "tool_result", "tool_use_id",
                                      json_object_get(m, "tool_call_id"), "content", text.data ? text.data : "");
            lx_buf_free(&text);
            push_turn(messages, "user", json_pack("[o]", block));
        } else {
            char param[64];
            snprintf(param, sizeof param, "messages[%zu].role", mi);
            bad_param(err, param, "Unknown message role.");
            goto fail;
        }
    }
    json_t *rf = json_object_get(in, "response_format");
    const char *rft = json_string_value(json_object_get(rf, "type"));
    if (rft && strcmp(rft, "json_object") == 0) {
        lx_buf_puts(&system, system.len ? "\n\n" : "");
        lx_buf_puts(&system, "Respond with a single valid JSON object and nothing else.");
    } else if (rft && strcmp(rft, "json_schema") == 0) {
        char *schema = json_dumps(json_object_get(json_object_get(rf, "json_schema"), "schema"), JSON_COMPACT);
        lx_buf_puts(&system, system.len ? "\n\n" : "");
        lx_buf_printf(&system, "Respond with a single JSON value that matches this JSON Schema, and nothing else: %s",
                      schema ? schema : "{}");
        free(schema);
    }
    if (system.len)
        json_object_set_new(body, "system", json_string(system.data));
    json_object_set_new(body, "messages", messages);
    messages = NULL;

    json_t *stop = json_object_get(in, "stop");
    if (json_is_string(stop))
        json_object_set_new(body, "stop_sequences", json_pack("[O]", stop));
    else if (json_is_array(stop))
        json_object_set(body, "stop_sequences", stop);
    lx_copy_if_present(body, in, "temperature");
    lx_copy_if_present(body, in, "top_p");
    json_t *tools = json_object_get(in, "tools");
    if (json_is_array(tools) && json_array_size(tools)) {
        json_t *at = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t)
            json_array_append_new(at, lx_anthropic_tool_from_openai(t));
        json_object_set_new(body, "tools", at);
    }
    bool unoffered = !json_object_get(body, "tools") && json_object_size(called);
    if (unoffered)
        unoffered_tools(body, called);
    json_decref(called);
    called = NULL;
    json_t *tc = json_object_get(in, "tool_choice");
    bool no_parallel = json_is_false(json_object_get(in, "parallel_tool_calls"));
    if (unoffered) {
        /* set by unoffered_tools: whatever the client chose, there is no tool to call */
    } else if (tc && !json_is_null(tc)) {
        json_t *atc = lx_anthropic_tool_choice_from_openai(tc, no_parallel, err);
        if (!atc)
            goto fail;
        json_object_set_new(body, "tool_choice", atc);
    } else if (no_parallel && json_object_get(body, "tools")) {
        json_object_set_new(body, "tool_choice", json_pack("{s:s,s:b}", "type", "auto", "disable_parallel_tool_use", 1));
    }
    if (json_is_string(json_object_get(in, "user")))
        json_object_set_new(body, "metadata", json_pack("{s:O}", "user_id", json_object_get(in, "user")));
    if (chat->stream)
        json_object_set_new(body, "stream", json_true());

    const char *key;
    json_t *v;
    json_object_foreach(in, key, v) {
        if (!in_list(anthropic_known, key) && !json_is_null(v))
            lx_http_request_drop(out, key);
    }

    out->method = "POST";
    out->url = lx_sprintf("%s/v1/messages", p->base_url);
    out->body = json_dumps(body, JSON_COMPACT);
    out->body_len = strlen(out->body);
    json_decref(body);
    lx_buf_free(&system);
    lx_http_request_add_header(out, "Content-Type: application/json");
    lx_http_request_add_header(out, "Accept: %s", chat->stream ? "text/event-stream" : "application/json");
    add_headers(p, out, NULL);
    return LX_OK;
fail:
    json_decref(messages);
    json_decref(called);
    json_decref(body);
    lx_buf_free(&system);
    return LX_ERR;
}

static void not_protocol(const struct lx_provider_conf *p, struct lx_error *err, const char *what)
{
    lx_error_set(err, 502, "upstream_error", NULL, "bad_upstream_response", "Provider '%s' answered with %s.",
                 p->name, what);
}

static json_t *anthropic_chat_response(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                                       size_t len, struct lx_error *err)
{
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    json_t *content = json_object_get(root, "content");
    if (!json_is_object(root) || !json_is_array(content)) {
        json_decref(root);
        not_protocol(p, err, "a body that is not an Anthropic message");
        return NULL;
    }
    json_t *msg = json_pack("{s:s}", "role", "assistant");
    lx_anthropic_blocks_to_openai(content, msg, true);
    const char *stop_reason = json_string_value(json_object_get(root, "stop_reason"));
    const char *fr = lx_anthropic_finish_reason(stop_reason);
    json_t *choice = json_pack("{s:i,s:o,s:s}", "index", 0, "message", msg, "finish_reason", fr ? fr : "stop");
    /* Which stop sequence matched, where vLLM says it: the choice's stop_reason. */
    json_t *seq = json_object_get(root, "stop_sequence");
    if (stop_reason && strcmp(stop_reason, "stop_sequence") == 0 && json_is_string(seq))
        json_object_set(choice, "stop_reason", seq);
    json_t *out = json_pack("{s:O?,s:s,s:I,s:O?,s:[o],s:o}", "id", json_object_get(root, "id"), "object",
                            "chat.completion", "created", (json_int_t)lx_wall_s(), "model",
                            json_object_get(root, "model"), "choices", choice, "usage",
                            lx_anthropic_usage_to_openai(json_object_get(root, "usage")));
    lx_openai_fill(out, chat, "chat.completion", lx_wall_s());
    if (lx_chat_native(chat, LX_ANTHROPIC_API))
        json_object_set(out, "llmux_native", root); /* the message as it came, for a client of the same API */
    json_decref(root);
    return out;
}

/* --- stream --- */

struct anthropic_stream {
    const struct lx_provider_conf *p;
    const struct lx_chat *chat;  /* borrowed */
    struct lx_sse_decoder sse;
    char *id;                    /* owned */
    char *model;                 /* owned */
    json_int_t created;
    json_t *usage;               /* owned: the latest usage seen */
    int tool_index[64];          /* content block index → OpenAI tool call index (-1: not a tool) */
    int thinking_index[64];      /* content block index → reasoning_details index (-1: not thinking) */
    int n_tools, n_thinking;
    const char *finish;          /* static string, from message_delta */
    bool started, stopped;
    bool relay;                  /* the client speaks Anthropic: each event rides along with the chunks */
    json_t *event;               /* owned: the event being decoded, {"event","data"}, until a chunk took it */
    lx_chunk_fn emit;
    void *emit_ctx;
    struct lx_error *err;
};

static void *anthropic_stream_open(const struct lx_provider_conf *p, const struct lx_chat *chat)
{
    struct anthropic_stream *st = lx_calloc(1, sizeof *st);
    st->p = p;
    st->chat = chat;
    st->created = lx_wall_s();
    st->relay = lx_chat_native(chat, LX_ANTHROPIC_API) != NULL;
    for (size_t i = 0; i < LX_ARRAY_LEN(st->tool_index); i++)
        st->tool_index[i] = st->thinking_index[i] = -1;
    return st;
}

/* Hand chunk c over (and drop it): the first chunk made of an event carries that event when relaying. */
static void hand_over(struct anthropic_stream *st, json_t *c)
{
    if (st->event) {
        json_object_set_new(c, "llmux_native", st->event);
        st->event = NULL;
    }
    st->emit(st->emit_ctx, c);
    json_decref(c);
}

/* An event no chunk took (ping, content_block_stop, a block type with no pivot form ...): a chunk of its
 * own, without choices. */
static void emit_event_alone(struct anthropic_stream *st)
{
    if (!st->event)
        return;
    json_t *c = json_pack("{s:s?,s:s,s:I,s:s?,s:[]}", "id", st->id, "object", "chat.completion.chunk", "created",
                          st->created, "model", st->model, "choices");
    lx_openai_fill(c, st->chat, "chat.completion.chunk", st->created);
    hand_over(st, c);
}

/* Emit one chunk whose choices[0] has this delta (stolen) and finish_reason, and the stop sequence that
 * matched (vLLM's choices[].stop_reason) or NULL. */
static void emit_delta(struct anthropic_stream *st, json_t *delta, const char *finish, json_t *stop_seq)
{
    if (!delta)
        return;
    json_t *choice = json_pack("{s:i,s:o,s:s?}", "index", 0, "delta", delta, "finish_reason", finish);
    if (json_is_string(stop_seq))
        json_object_set(choice, "stop_reason", stop_seq);
    json_t *c = json_pack("{s:s?,s:s,s:I,s:s?,s:[o]}", "id", st->id, "object", "chat.completion.chunk", "created",
                          st->created, "model", st->model, "choices", choice);
    if (!c)
        return;
    lx_openai_fill(c, st->chat, "chat.completion.chunk", st->created);
    if (st->chat->include_usage)
        json_object_set_new(c, "usage", json_null());
    hand_over(st, c);
}

static bool in_range(const struct anthropic_stream *st, json_int_t idx)
{
    return idx >= 0 && idx < (json_int_t)LX_ARRAY_LEN(st->thinking_index);
}

/* A thinking block's text, signature or (redacted) data as the pivot carries it: one reasoning_details
 * entry whose index is the block's ordinal among the thinking blocks (see anthropic_map.h). */
static void emit_reasoning(struct anthropic_stream *st, json_int_t idx, const char *field, json_t *value)
{
    if (!json_is_string(value))
        return;
    json_t *d = json_pack("{s:s,s:O,s:i}", "type", strcmp(field, "data") == 0 ? "reasoning.encrypted" : "reasoning.text",
                          field, value, "index", st->thinking_index[idx]);
    emit_delta(st, json_pack("{s:[o]}", "reasoning_details", d), NULL, NULL);
}

static void merge_usage(struct anthropic_stream *st, json_t *u)
{
    if (!json_is_object(u))
        return;
    if (!st->usage)
        st->usage = json_object();
    json_object_update(st->usage, u);
}

/* Anthropic names the kind in `type`; OpenAI clients read `code`. */
static void code_from_type(struct lx_error *err)
{
    if (!err->code && err->type)
        err->code = lx_strdup(err->type);
}

/* An `error` event: its status comes from its type (overloaded_error → 529, see errors.c). */
static int stream_error(struct anthropic_stream *st, json_t *ev)
{
    if (!lx_error_from_answer(st->err, ev))
        lx_error_set(st->err, 502, "upstream_error", NULL, NULL, "Anthropic stream error");
    code_from_type(st->err);
    return LX_ERR;
}

static int anthropic_event(void *ctx, const char *event, const char *data, size_t len)
{
    struct anthropic_stream *st = ctx;
    if (st->stopped)
        return LX_OK; /* message_stop was the end: what follows it in the same read is not relayed either */
    json_t *ev = json_loadb(data, len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(ev) || !type) {
        json_decref(ev);
        not_protocol(st->p, st->err, "a stream event that is not an Anthropic event");
        return LX_ERR;
    }
    /* the data's "type" is authoritative; event: names repeat it (and are relayed as they came) */
    int rc = LX_OK;
    if (st->relay && strcmp(type, "error") != 0) {
        /* its event name as it came ("" when it had none, or one that is not UTF-8: then none) */
        json_t *name = json_string(event);
        st->event = json_pack("{s:o,s:s%}", "event", name ? name : json_string(""), "data", data, len);
    }
    if (strcmp(type, "message_start") == 0) {
        json_t *msg = json_object_get(ev, "message");
        free(st->id);
        free(st->model);
        st->id = json_is_string(json_object_get(msg, "id")) ? lx_strdup(json_string_value(json_object_get(msg, "id"))) : NULL;
        st->model = json_is_string(json_object_get(msg, "model")) ? lx_strdup(json_string_value(json_object_get(msg, "model"))) : NULL;
        merge_usage(st, json_object_get(msg, "usage"));
        st->started = true;
        emit_delta(st, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL, NULL);
    } else if (strcmp(type, "content_block_start") == 0) {
        json_t *block = json_object_get(ev, "content_block");
        json_int_t idx = json_integer_value(json_object_get(ev, "index"));
        const char *btype = json_string_value(json_object_get(block, "type"));
        if (btype && strcmp(btype, "tool_use") == 0 && idx >= 0 && idx < (json_int_t)LX_ARRAY_LEN(st->tool_index)) {
            int k = st->n_tools++;
            st->tool_index[idx] = k;
            emit_delta(st, json_pack("{s:[{s:i,s:O?,s:s,s:{s:O?,s:s}}]}", "tool_calls", "index", k, "id",
                                     json_object_get(block, "id"), "type", "function", "function", "name",
                                     json_object_get(block, "name"), "arguments", ""), NULL, NULL);
        } else if (btype && strcmp(btype, "text") == 0 && json_string_length(json_object_get(block, "text"))) {
            emit_delta(st, json_pack("{s:O}", "content", json_object_get(block, "text")), NULL, NULL);
        } else if (btype && strcmp(btype, "thinking") == 0 && in_range(st, idx)) {
            st->thinking_index[idx] = st->n_thinking++;
            if (json_string_length(json_object_get(block, "thinking")))
                emit_reasoning(st, idx, "text", json_object_get(block, "thinking"));
        } else if (btype && strcmp(btype, "redacted_thinking") == 0 && in_range(st, idx)) {
            st->thinking_index[idx] = st->n_thinking++;
            emit_reasoning(st, idx, "data", json_object_get(block, "data"));
        }
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_t *d = json_object_get(ev, "delta");
        const char *dtype = json_string_value(json_object_get(d, "type"));
        json_int_t idx = json_integer_value(json_object_get(ev, "index"));
        if (dtype && strcmp(dtype, "text_delta") == 0) {
            if (json_string_length(json_object_get(d, "text")))
                emit_delta(st, json_pack("{s:O}", "content", json_object_get(d, "text")), NULL, NULL);
        } else if (dtype && strcmp(dtype, "input_json_delta") == 0 && idx >= 0 &&
                   idx < (json_int_t)LX_ARRAY_LEN(st->tool_index) && st->tool_index[idx] >= 0) {
            json_t *pj = json_object_get(d, "partial_json");
            if (json_string_length(pj))
                emit_delta(st, json_pack("{s:[{s:i,s:{s:O}}]}", "tool_calls", "index", st->tool_index[idx],
                                         "function", "arguments", pj), NULL, NULL);
        } else if (dtype && strcmp(dtype, "thinking_delta") == 0 && in_range(st, idx) && st->thinking_index[idx] >= 0) {
            if (json_string_length(json_object_get(d, "thinking")))
                emit_reasoning(st, idx, "text", json_object_get(d, "thinking"));
        } else if (dtype && strcmp(dtype, "signature_delta") == 0 && in_range(st, idx) && st->thinking_index[idx] >= 0) {
            emit_reasoning(st, idx, "signature", json_object_get(d, "signature"));
        }
    } else if (strcmp(type, "message_delta") == 0) {
        merge_usage(st, json_object_get(ev, "usage"));
        json_t *delta = json_object_get(ev, "delta");
        const char *stop_reason = json_string_value(json_object_get(delta, "stop_reason"));
        st->finish = lx_anthropic_finish_reason(stop_reason);
        if (st->finish)
            emit_delta(st, json_object(), st->finish,
                       strcmp(stop_reason, "stop_sequence") == 0 ? json_object_get(delta, "stop_sequence") : NULL);
    } else if (strcmp(type, "message_stop") == 0) {
        st->stopped = true;
        if (st->chat->include_usage) {
            json_t *c = json_pack("{s:s?,s:s,s:I,s:s?,s:[],s:o}", "id", st->id, "object", "chat.completion.chunk",
                                  "created", st->created, "model", st->model, "choices", "usage",
                                  lx_anthropic_usage_to_openai(st->usage));
            lx_openai_fill(c, st->chat, "chat.completion.chunk", st->created);
            hand_over(st, c);
        }
    } else if (strcmp(type, "error") == 0) {
        rc = stream_error(st, ev);
    }
    /* ping and unknown future events: nothing to translate (relayed as they are) */
    if (rc == LX_OK)
        emit_event_alone(st);
    json_decref(st->event);
    st->event = NULL;
    json_decref(ev);
    return rc;
}

static int anthropic_stream_feed(void *state, const char *data, size_t len, lx_chunk_fn emit, void *ctx,
                                 struct lx_error *err)
{
    struct anthropic_stream *st = state;
    st->emit = emit;
    st->emit_ctx = ctx;
    st->err = err;
    if (lx_sse_feed(&st->sse, data, len, anthropic_event, st, NULL) != LX_OK) {
        if (!lx_error_isset(err))
            not_protocol(st->p, err, "a stream event larger than the limit");
        return LX_ERR;
    }
    return LX_OK;
}

static int anthropic_stream_finish(void *state, lx_chunk_fn emit, void *ctx, struct lx_error *err)
{
    struct anthropic_stream *st = state;
    st->emit = emit;
    st->emit_ctx = ctx;
    st->err = err;
    if (!st->stopped && lx_sse_flush(&st->sse, anthropic_event, st, NULL) != LX_OK) {
        if (lx_error_isset(err) && !(err->code && strcmp(err->code, "bad_upstream_response") == 0))
            return LX_ERR; /* an error event in the last, unterminated bytes: keep the upstream's words */
        lx_error_set(err, 502, "upstream_error", NULL, "bad_upstream_response",
                     "Provider '%s' ended the stream before message_stop.", st->p->name);
        return LX_ERR;
    }
    if (st->stopped)
        return LX_OK;
    if (!st->started)
        not_protocol(st->p, err, "something that is not an Anthropic event stream");
    else
        lx_error_set(err, 502, "upstream_error", NULL, "bad_upstream_response",
                     "Provider '%s' ended the stream before message_stop.", st->p->name);
    return LX_ERR;
}

static bool anthropic_stream_ended(const void *state)
{
    const struct anthropic_stream *st = state;
    return st->stopped;
}

static void anthropic_stream_close(void *state)
{
    struct anthropic_stream *st = state;
    lx_sse_decoder_free(&st->sse);
    json_decref(st->usage);
    json_decref(st->event);
    free(st->id);
    free(st->model);
    free(st);
}

static void anthropic_error_response(const struct lx_provider_conf *p, int status, const char *body, size_t len,
                                     struct lx_error *err)
{
    (void)p;
    lx_error_from_upstream(err, status, body, len);
    code_from_type(err);
}

/* POST /v1/messages/count_tokens with the client's own count request (native_body). */
static int anthropic_count_tokens_request(const struct lx_provider_conf *p, const struct lx_chat *chat,
                                          struct lx_http_request *out, struct lx_error *err)
{
    json_t *native = lx_chat_native(chat, LX_ANTHROPIC_API);
    if (!native) {
        lx_error_set(err, 400, "invalid_request_error", NULL, "unsupported_parameter",
                     "Token counts are asked in the Messages API (POST /v1/messages/count_tokens).");
        return LX_ERR;
    }
    lx_http_request_post_json(out, lx_sprintf("%s/v1/messages/count_tokens", p->base_url),
                              native_body(native, chat->model));
    lx_http_request_add_header(out, "Accept: application/json");
    add_headers(p, out, json_object_get(native, "headers"));
    return LX_OK;
}

static json_t *anthropic_count_tokens_response(const struct lx_provider_conf *p, const struct lx_chat *chat,
                                               const char *body, size_t len, struct lx_error *err)
{
    (void)chat;
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    json_t *n = json_object_get(root, "input_tokens");
    if (!json_is_integer(n)) {
        json_decref(root);
        not_protocol(p, err, "a body that is not a token count");
        return NULL;
    }
    json_t *out = json_pack("{s:O}", "input_tokens", n);
    json_decref(root);
    return out;
}

static int anthropic_models_request(const struct lx_provider_conf *p, struct lx_http_request *out)
{
    out->method = "GET";
    out->url = lx_sprintf("%s/v1/models?limit=1000", p->base_url);
    add_headers(p, out, NULL);
    return LX_OK;
}

const struct lx_provider_type lx_provider_anthropic = {
    .name = "anthropic",
    .native_api = LX_ANTHROPIC_API,
    .caps = {.chat = true, .streaming = true, .tools = true, .vision = true, .json_mode = true, .documents = true},
    .config_keys = anthropic_keys,
    .default_base_url = "https://api.anthropic.com",
    .configure = anthropic_configure,
    .free_state = anthropic_free_state,
    .chat_request = anthropic_chat_request,
    .chat_response = anthropic_chat_response,
    .stream_open = anthropic_stream_open,
    .stream_feed = anthropic_stream_feed,
    .stream_finish = anthropic_stream_finish,
    .stream_ended = anthropic_stream_ended,
    .stream_close = anthropic_stream_close,
    .error_response = anthropic_error_response,
    .models_request = anthropic_models_request,
    .count_tokens_request = anthropic_count_tokens_request,
    .count_tokens_response = anthropic_count_tokens_response,
    .models_response = lx_openai_models_response,
};
