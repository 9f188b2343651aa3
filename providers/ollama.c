/* Provider type "ollama": Ollama's native API (POST {base_url}/api/chat, NDJSON streams, /api/tags,
 * /api/embed), translated both ways. Sampling parameters go into "options" (max_tokens → num_predict);
 * images must be data: URLs (Ollama takes base64, not links); tool calls get generated ids and their
 * object arguments become JSON strings; the final done:true line gives finish_reason and usage.
 * tool_choice, logit_bias, logprobs, user and others with no Ollama meaning are dropped and listed in
 * x-llmux-dropped-params; n > 1 and http image URLs are refused with 400. */
#include "openai.h"
#include "provider.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"
#include "../src/core/ndjson.h"

#include <stdlib.h>
#include <string.h>

static const char *const ollama_keys[] = {"type", "base_url", "api_key", "headers", "models", "timeouts", NULL};

static void add_headers(const struct lx_provider_conf *p, struct lx_http_request *out)
{
    lx_openai_add_headers(p, out); /* an api_key, if set, goes as a Bearer token (for proxies in front) */
}

static void bad_param(struct lx_error *err, const char *param, const char *why)
{
    lx_error_bad_request(err, param, "unsupported_parameter", "%s", why);
}

/* Parameters this translation reads; any other is dropped and reported. */
static const char *const ollama_known[] = {"model", "messages", "max_tokens", "max_completion_tokens", "stop",
                                           "temperature", "top_p", "seed", "presence_penalty", "frequency_penalty",
                                           "tools", "response_format", "stream", "stream_options", "n", NULL};

static bool in_list(const char *const *list, const char *key)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], key) == 0)
            return true;
    return false;
}

/* One OpenAI message → an Ollama message (new reference), or NULL with err. */
static json_t *ollama_message(json_t *m, size_t mi, struct lx_error *err)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *content = json_object_get(m, "content");
    struct lx_buf text = {0};
    json_t *images = json_array();
    if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part) {
            const char *type = json_string_value(json_object_get(part, "type"));
            char param[96];
            snprintf(param, sizeof param, "messages[%zu].content[%zu]", mi, i);
            if (type && strcmp(type, "text") == 0) {
                if (text.len)
                    lx_buf_append(&text, "\n", 1);
                json_t *t = json_object_get(part, "text");
                lx_buf_append(&text, json_string_value(t) ? json_string_value(t) : "", json_string_length(t));
            } else if (type && strcmp(type, "image_url") == 0) {
                json_t *iu = json_object_get(part, "image_url");
                const char *url = json_string_value(json_is_object(iu) ? json_object_get(iu, "url") : iu);
                const char *comma = url ? strchr(url, ',') : NULL;
                if (!url || strncmp(url, "data:", 5) != 0 || !comma || !strstr(url, ";base64,")) {
                    bad_param(err, param, "Ollama takes images as base64 data: URLs, not links.");
                    goto fail;
                }
                json_array_append_new(images, json_string(comma + 1));
            } else {
                bad_param(err, param, "This content part type is not supported by Ollama.");
                goto fail;
            }
        }
    } else {
        lx_content_text(content, &text);
    }
    json_t *om = json_pack("{s:s,s:s}", "role", role, "content", text.data ? text.data : "");
    lx_buf_free(&text);
    if (json_array_size(images))
        json_object_set_new(om, "images", images);
    else
        json_decref(images);
    json_t *calls = json_object_get(m, "tool_calls");
    if (json_is_array(calls) && json_array_size(calls)) {
        json_t *oc = json_array();
        size_t k;
        json_t *tc;
        json_array_foreach(calls, k, tc) {
            json_t *fn = json_object_get(tc, "function");
            const char *args = json_string_value(json_object_get(fn, "arguments"));
            json_t *obj = args && *args ? json_loads(args, JSON_DECODE_ANY, NULL) : json_object();
            if (!json_is_object(obj)) {
                json_decref(obj);
                json_decref(oc);
                json_decref(om);
                char param[96];
                snprintf(param, sizeof param, "messages[%zu].tool_calls[%zu].function.arguments", mi, k);
                bad_param(err, param, "Tool call arguments must be a JSON object.");
                return NULL;
            }
            json_array_append_new(oc, json_pack("{s:{s:O?,s:o}}", "function", "name", json_object_get(fn, "name"),
                                                "arguments", obj));
        }
        json_object_set_new(om, "tool_calls", oc);
    }
    return om;
fail:
    lx_buf_free(&text);
    json_decref(images);
    return NULL;
}

static int ollama_chat_request(const struct lx_provider_conf *p, const struct lx_chat *chat,
                               struct lx_http_request *out, struct lx_error *err)
{
    json_t *in = chat->body;
    json_t *n = json_object_get(in, "n");
    if (json_is_integer(n) && json_integer_value(n) != 1) {
        bad_param(err, "n", "Ollama returns one choice: n must be 1.");
        return LX_ERR;
    }
    json_t *messages = json_array();
    size_t mi;
    json_t *m;
    json_array_foreach(json_object_get(in, "messages"), mi, m) {
        json_t *om = ollama_message(m, mi, err);
        if (!om) {
            json_decref(messages);
            return LX_ERR;
        }
        json_array_append_new(messages, om);
    }
    json_t *options = json_object();
    json_int_t max = lx_chat_max_tokens(in, -1);
    if (max >= 0)
        json_object_set_new(options, "num_predict", json_integer(max));
    lx_copy_if_present(options, in, "temperature");
    lx_copy_if_present(options, in, "top_p");
    lx_copy_if_present(options, in, "seed");
    lx_copy_if_present(options, in, "presence_penalty");
    lx_copy_if_present(options, in, "frequency_penalty");
    json_t *stop = json_object_get(in, "stop");
    if (json_is_string(stop))
        json_object_set_new(options, "stop", json_pack("[O]", stop));
    else if (json_is_array(stop))
        json_object_set(options, "stop", stop);
    /* Ollama streams unless told otherwise: always say which. */
    json_t *body = json_pack("{s:s,s:o,s:b}", "model", chat->model, "messages", messages, "stream", chat->stream);
    if (json_object_size(options))
        json_object_set_new(body, "options", options);
    else
        json_decref(options);
    json_t *tools = json_object_get(in, "tools");
    if (json_is_array(tools) && json_array_size(tools))
        json_object_set(body, "tools", tools); /* Ollama takes OpenAI's tool shape */
    json_t *rf = json_object_get(in, "response_format");
    const char *rft = json_string_value(json_object_get(rf, "type"));
    if (rft && strcmp(rft, "json_object") == 0)
        json_object_set_new(body, "format", json_string("json"));
    else if (rft && strcmp(rft, "json_schema") == 0)
        json_object_set(body, "format", json_object_get(json_object_get(rf, "json_schema"), "schema"));
    const char *key;
    json_t *v;
    json_object_foreach(in, key, v) {
        if (!in_list(ollama_known, key) && !json_is_null(v))
            lx_http_request_drop(out, key);
    }
    lx_http_request_post_json(out, lx_sprintf("%s/api/chat", p->base_url), body);
    add_headers(p, out);
    return LX_OK;
}

static void not_protocol(const struct lx_provider_conf *p, struct lx_error *err, const char *what)
{
    lx_error_set(err, 502, "upstream_error", NULL, "bad_upstream_response", "Provider '%s' answered with %s.",
                 p->name, what);
}

static json_t *usage_json(json_t *obj)
{
    json_int_t in = json_integer_value(json_object_get(obj, "prompt_eval_count"));
    json_int_t out = json_integer_value(json_object_get(obj, "eval_count"));
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", in, "completion_tokens", out, "total_tokens", in + out);
}

/* Ollama tool calls (object arguments, no ids) → OpenAI tool_calls; *next numbers the generated ids. */
static json_t *tool_calls(json_t *calls, const struct lx_chat *chat, int *next, bool with_index)
{
    json_t *out = json_array();
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
        json_t *fn = json_object_get(tc, "function");
        json_t *args = json_object_get(fn, "arguments");
        char *text = json_is_string(args) ? lx_strdup(json_string_value(args))
                     : args               ? json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY)
                                          : lx_strdup("{}");
        int k = (*next)++;
        json_t *call = json_pack("{s:s,s:s,s:{s:O?,s:s}}", "id", "", "type", "function", "function", "name",
                                 json_object_get(fn, "name"), "arguments", text);
        json_object_set_new(call, "id", json_sprintf("call_%llu_%d", (unsigned long long)chat->req_id, k));
        if (with_index)
            json_object_set_new(call, "index", json_integer(k));
        free(text);
        json_array_append_new(out, call);
    }
    return out;
}

static const char *finish_reason(json_t *obj, bool had_tools)
{
    const char *dr = json_string_value(json_object_get(obj, "done_reason"));
    if (dr && strcmp(dr, "length") == 0)
        return "length";
    return had_tools ? "tool_calls" : "stop";
}

static json_t *ollama_chat_response(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                                    size_t len, struct lx_error *err)
{
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    json_t *msg = json_object_get(root, "message");
    if (!json_is_object(root) || !json_is_object(msg)) {
        json_decref(root);
        not_protocol(p, err, "a body that is not an Ollama chat answer");
        return NULL;
    }
    int next = 0;
    json_t *calls = json_object_get(msg, "tool_calls");
    bool had_tools = json_is_array(calls) && json_array_size(calls);
    json_t *omsg = json_pack("{s:s,s:O?}", "role", "assistant", "content", json_object_get(msg, "content"));
    if (had_tools) {
        json_object_set_new(omsg, "tool_calls", tool_calls(calls, chat, &next, false));
        if (json_string_length(json_object_get(msg, "content")) == 0)
            json_object_set_new(omsg, "content", json_null());
    }
    json_t *out = json_pack("{s:s,s:I,s:O?,s:[{s:i,s:o,s:s}],s:o}", "object", "chat.completion", "created",
                            (json_int_t)lx_wall_s(), "model", json_object_get(root, "model"), "choices", "index", 0,
                            "message", omsg, "finish_reason", finish_reason(root, had_tools), "usage",
                            usage_json(root));
    lx_openai_fill(out, chat, "chat.completion", lx_wall_s());
    json_decref(root);
    return out;
}

struct ollama_stream {
    const struct lx_provider_conf *p;
    const struct lx_chat *chat; /* borrowed */
    struct lx_ndjson_decoder nd;
    json_int_t created;
    int next_tool;
    bool started, done;
    lx_chunk_fn emit;
    void *emit_ctx;
    struct lx_error *err;
};

static void *ollama_stream_open(const struct lx_provider_conf *p, const struct lx_chat *chat)
{
    struct ollama_stream *st = lx_calloc(1, sizeof *st);
    st->p = p;
    st->chat = chat;
    st->created = lx_wall_s();
    return st;
}

static void emit_chunk(struct ollama_stream *st, json_t *model, json_t *delta, const char *finish)
{
    json_t *c = json_pack("{s:s,s:I,s:O?,s:[{s:i,s:o,s:s?}]}", "object", "chat.completion.chunk", "created",
                          st->created, "model", model, "choices", "index", 0, "delta", delta, "finish_reason",
                          finish);
    lx_openai_fill(c, st->chat, "chat.completion.chunk", st->created);
    if (st->chat->include_usage)
        json_object_set_new(c, "usage", json_null());
    st->emit(st->emit_ctx, c);
    json_decref(c);
}

static int ollama_line(void *ctx, const char *line, size_t len)
{
    struct ollama_stream *st = ctx;
    if (st->done)
        return LX_OK;
    json_t *obj = json_loadb(line, len, 0, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        not_protocol(st->p, st->err, "a stream line that is not JSON");
        return LX_ERR;
    }
    json_t *error = json_object_get(obj, "error");
    if (error) {
        lx_error_set(st->err, 502, "upstream_error", NULL, "upstream_error", "%s",
                     json_is_string(error) ? json_string_value(error) : "Ollama reported an error");
        json_decref(obj);
        return LX_ERR;
    }
    json_t *model = json_object_get(obj, "model");
    json_t *msg = json_object_get(obj, "message");
    json_t *content = json_object_get(msg, "content");
    if (!content)
        content = json_object_get(obj, "response"); /* /api/generate's field, for servers that mix them */
    if (!st->started) {
        st->started = true;
        emit_chunk(st, model, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
    }
    if (json_string_length(content))
        emit_chunk(st, model, json_pack("{s:O}", "content", content), NULL);
    json_t *calls = json_object_get(msg, "tool_calls");
    if (json_is_array(calls) && json_array_size(calls))
        emit_chunk(st, model, json_pack("{s:o}", "tool_calls", tool_calls(calls, st->chat, &st->next_tool, true)),
                   NULL);
    if (json_is_true(json_object_get(obj, "done"))) {
        st->done = true;
        emit_chunk(st, model, json_object(), finish_reason(obj, st->next_tool > 0));
        if (st->chat->include_usage) {
            json_t *c = json_pack("{s:s,s:I,s:O?,s:[],s:o}", "object", "chat.completion.chunk", "created",
                                  st->created, "model", model, "choices", "usage", usage_json(obj));
            lx_openai_fill(c, st->chat, "chat.completion.chunk", st->created);
            st->emit(st->emit_ctx, c);
            json_decref(c);
        }
    }
    json_decref(obj);
    return LX_OK;
}

static int ollama_stream_feed(void *state, const char *data, size_t len, lx_chunk_fn emit, void *ctx,
                              struct lx_error *err)
{
    struct ollama_stream *st = state;
    st->emit = emit;
    st->emit_ctx = ctx;
    st->err = err;
    if (lx_ndjson_feed(&st->nd, data, len, ollama_line, st) != LX_OK) {
        if (!lx_error_isset(err))
            not_protocol(st->p, err, "a stream line larger than the limit");
        return LX_ERR;
    }
    return LX_OK;
}

static int ollama_stream_finish(void *state, lx_chunk_fn emit, void *ctx, struct lx_error *err)
{
    struct ollama_stream *st = state;
    st->emit = emit;
    st->emit_ctx = ctx;
    st->err = err;
    if (lx_ndjson_finish(&st->nd, ollama_line, st) != LX_OK)
        return LX_ERR;
    if (st->done)
        return LX_OK;
    if (!st->started)
        not_protocol(st->p, err, "something that is not an Ollama stream");
    else
        lx_error_set(err, 502, "upstream_error", NULL, "bad_upstream_response",
                     "Provider '%s' ended the stream before done:true.", st->p->name);
    return LX_ERR;
}

static bool ollama_stream_ended(const void *state)
{
    const struct ollama_stream *st = state;
    return st->done;
}

static void ollama_stream_close(void *state)
{
    struct ollama_stream *st = state;
    lx_ndjson_decoder_free(&st->nd);
    free(st);
}

static int ollama_models_request(const struct lx_provider_conf *p, struct lx_http_request *out)
{
    out->method = "GET";
    out->url = lx_sprintf("%s/api/tags", p->base_url);
    add_headers(p, out);
    return LX_OK;
}

static int ollama_models_response(const struct lx_provider_conf *p, const char *body, size_t len, json_t *ids)
{
    (void)p;
    return lx_collect_ids(body, len, "models", "name", "model", ids);
}

static int ollama_embeddings_request(const struct lx_provider_conf *p, const struct lx_chat *req,
                                     struct lx_http_request *out, struct lx_error *err)
{
    (void)err;
    json_t *body = json_pack("{s:s,s:O}", "model", req->model, "input", json_object_get(req->body, "input"));
    lx_copy_if_present(body, req->body, "dimensions");
    lx_http_request_post_json(out, lx_sprintf("%s/api/embed", p->base_url), body);
    add_headers(p, out);
    return LX_OK;
}

/* OpenAI's encoding_format "base64": the vector as little-endian float32, base64-encoded. */
static json_t *embedding_base64(json_t *vec)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = json_array_size(vec);
    unsigned char *raw = lx_malloc(n * 4 + 1);
    for (size_t i = 0; i < n; i++) {
        float f = (float)json_number_value(json_array_get(vec, i));
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int b = 0; b < 4; b++)
            raw[i * 4 + (size_t)b] = (unsigned char)(u >> (8 * b));
    }
    size_t len = n * 4;
    struct lx_buf out = {0};
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < len ? (uint32_t)raw[i + 1] << 8 : 0) |
                     (i + 2 < len ? raw[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < len ? tab[v >> 6 & 63] : '=',
                     i + 2 < len ? tab[v & 63] : '='};
        lx_buf_append(&out, q, 4);
    }
    free(raw);
    json_t *s = json_stringn(out.data ? out.data : "", out.len);
    lx_buf_free(&out);
    return s;
}

static json_t *ollama_embeddings_response(const struct lx_provider_conf *p, const struct lx_chat *req,
                                          const char *body, size_t len, struct lx_error *err)
{
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    json_t *embs = json_object_get(root, "embeddings");
    if (!json_is_array(embs)) {
        json_decref(root);
        not_protocol(p, err, "a body that is not an Ollama embeddings answer");
        return NULL;
    }
    const char *fmt = json_string_value(json_object_get(req->body, "encoding_format"));
    bool b64 = fmt && strcmp(fmt, "base64") == 0;
    json_t *data = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(embs, i, e) {
        json_t *vec = b64 ? embedding_base64(e) : json_incref(e);
        json_array_append_new(data, json_pack("{s:s,s:i,s:o}", "object", "embedding", "index", (int)i, "embedding", vec));
    }
    json_int_t tokens = json_integer_value(json_object_get(root, "prompt_eval_count"));
    json_t *out = json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model", req->model, "usage",
                            "prompt_tokens", tokens, "total_tokens", tokens);
    json_decref(root);
    return out;
}

const struct lx_provider_type lx_provider_ollama = {
    .name = "ollama",
    .caps = {.chat = true, .streaming = true, .tools = true, .vision = true, .embeddings = true, .json_mode = true},
    .config_keys = ollama_keys,
    .default_base_url = "http://127.0.0.1:11434",
    .chat_request = ollama_chat_request,
    .chat_response = ollama_chat_response,
    .stream_open = ollama_stream_open,
    .stream_feed = ollama_stream_feed,
    .stream_finish = ollama_stream_finish,
    .stream_ended = ollama_stream_ended,
    .stream_close = ollama_stream_close,
    .error_response = lx_openai_error_response,
    .models_request = ollama_models_request,
    .models_response = ollama_models_response,
    .embeddings_request = ollama_embeddings_request,
    .embeddings_response = ollama_embeddings_response,
};
