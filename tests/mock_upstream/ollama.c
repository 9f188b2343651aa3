/* ollama.c: the mock's Ollama dialect (the native API, not its /v1 layer): POST /api/chat answered as one
 * JSON object or as an NDJSON stream (streaming is the default), POST /api/embed and GET /api/tags, with
 * Ollama's {"error": "..."} bodies. Shapes follow Ollama's docs/api.md examples. */

#include "mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TYPE "application/json; charset=utf-8" /* what Go's gin puts on JSON replies */
#define NDJSON_TYPE "application/x-ndjson"
#define RUN_ERROR "an error was encountered while running the model"
#define MIDSTREAM_LINES 2 /* content lines before fault=midstream_error's error line */
#define LOAD_NS 1000000LL

/* The reply to one chat request, used for the JSON body and as the NDJSON line source. */
struct chat_reply {
    struct event_source src; /* first: the core streams through it */
    char *model;             /* owned */
    char *text;              /* owned: the message content */
    size_t text_len;
    size_t *cuts;            /* owned: content line i holds text[cuts[i] .. cuts[i+1]) */
    size_t npieces;
    json_t *tool_calls;      /* owned; NULL unless the answer is a tool call */
    const char *done_reason; /* static string */
    long long prompt_tokens, eval_count;
    int midstream_error;     /* fault=midstream_error: an error line follows the first content lines */
};

/* ---- errors ---- */

/* Every Ollama error body is built here. */
static void reply_ollama_error(struct conn *c, int status, const char *message)
{
    reply_json_as(c, status, JSON_TYPE, must(json_pack("{s:o}", "error", json_string_lossy(message))), JSON_COMPACT,
                  NULL);
}

static void ollama_error(struct conn *c, int status, enum call_error why, const char *message)
{
    char msg[32];
    switch (why) {
    case CALL_ERR_AUTH: message = "unauthorized"; break;
    case CALL_ERR_JSON:
        message = evbuffer_get_length(c->req.body) ? "invalid character in request body" : "missing request body";
        break;
    case CALL_ERR_STATUS:
        snprintf(msg, sizeof msg, "mock error %d", status);
        message = msg;
        break;
    case CALL_ERR_DIRECTIVE:
    case CALL_ERR_INVALID: break;
    }
    reply_ollama_error(c, status, message);
}

/* Ollama streams unless "stream": false. */
static int ollama_wants_stream(json_t *body)
{
    return !json_is_false(json_object_get(body, "stream"));
}

/* ---- /api/chat ---- */

/* The first problem Go's decoding or the handler would report, or NULL. */
static const char *invalid_chat(json_t *body, char *buf, size_t len)
{
    json_t *model = json_object_get(body, "model");
    json_t *messages = json_object_get(body, "messages");
    json_t *options = json_object_get(body, "options");
    if (!json_is_string(model) || json_string_length(model) == 0)
        return "model is required";
    if (messages && !json_is_array(messages) && !json_is_null(messages))
        return "json: cannot unmarshal messages into Go struct field ChatRequest.messages of type []api.Message";
    if (options && !json_is_object(options) && !json_is_null(options))
        return "json: cannot unmarshal options into Go struct field ChatRequest.options of type "
               "map[string]interface {}";
    size_t i, k;
    json_t *m, *image;
    json_array_foreach(messages, i, m) {
        json_t *content = json_object_get(m, "content");
        if (content && !json_is_string(content) && !json_is_null(content))
            return "json: cannot unmarshal array into Go struct field Message.messages.content of type string";
        json_array_foreach(json_object_get(m, "images"), k, image) {
            long bad = json_is_string(image) ? base64_bad_byte(json_string_value(image)) : 0;
            if (bad >= 0) {
                snprintf(buf, len, "illegal base64 data at input byte %ld", bad);
                return buf;
            }
        }
    }
    return NULL;
}

static void chat_reply_free(struct chat_reply *r)
{
    free(r->model);
    free(r->text);
    free(r->cuts);
    json_decref(r->tool_calls);
    free(r);
}

static void chat_reply_emit(struct event_source *src, size_t step, struct evbuffer *dst);

static void chat_reply_source_free(struct event_source *src)
{
    chat_reply_free((struct chat_reply *)src);
}

static const struct event_source_ops chat_reply_ops = { chat_reply_emit, chat_reply_source_free };

/* The reply echoes the last user message, or reports the tool result when a tool message comes last. */
static struct chat_reply *chat_reply_new(json_t *body, const struct script *sc)
{
    struct chat_reply *r = xcalloc(1, sizeof *r);
    r->src.ops = &chat_reply_ops;
    r->model = xstrdup(json_string_value(json_object_get(body, "model")));
    r->midstream_error = sc->fault == FAULT_MIDSTREAM_ERROR;
    json_t *user = NULL, *tool = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(body, "messages"), i, m) {
        json_t *content = json_object_get(m, "content");
        const char *role = json_string_value(json_object_get(m, "role"));
        r->prompt_tokens += count_words(json_string_value(content) ? json_string_value(content) : "",
                                        json_string_length(content));
        tool = role && strcmp(role, "tool") == 0 ? content : NULL;
        if (role && strcmp(role, "user") == 0)
            user = content;
    }

    json_t *options = json_object_get(body, "options");
    json_t *tools = json_object_get(body, "tools");
    struct strbuf reply = { 0 };
    if (sc->tool && json_array_size(tools) > 0) {
        json_t *name = json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name");
        json_t *args = must(json_pack("{s:s%}", "q", json_is_string(user) ? json_string_value(user) : "",
                                      json_string_length(user)));
        char *dumped = dump_json(args, JSON_COMPACT);
        r->eval_count = count_words(dumped, strlen(dumped));
        free(dumped);
        /* Arguments are an object and calls carry no id, as Ollama sends them. */
        r->tool_calls = must(json_pack("[{s:{s:s,s:O}}]", "function", "name",
                                       json_is_string(name) ? json_string_value(name) : "tool", "arguments", args));
        for (int k = 1; k < sc->tool; k++) {
            json_t *t = json_array_get(tools, (size_t)k < json_array_size(tools) ? (size_t)k : 0);
            json_t *nk = json_object_get(json_object_get(t, "function"), "name");
            json_array_append_new(r->tool_calls, must(json_pack("{s:{s:s,s:O}}", "function", "name",
                                                                json_is_string(nk) ? json_string_value(nk) : "tool",
                                                                "arguments", args)));
        }
        json_decref(args);
        sb_add(&reply, "", 0);
        r->done_reason = "stop";
    } else {
        sb_add(&reply, tool ? "tool said: " : "echo: ", tool ? 11 : 6);
        sb_add_json(&reply, tool ? tool : user);
        json_t *limit = json_object_get(options, "num_predict");
        /* num_predict <= 0 means no limit (-1 infinite, -2 fill the context). */
        long long max = json_is_integer(limit) && json_integer_value(limit) > 0 ? json_integer_value(limit) : -1;
        enum reply_cut why;
        const char *stop;
        reply.len = reply_cut(reply.s, reply.len, json_object_get(options, "stop"), max, &why, &stop);
        reply.s[reply.len] = '\0';
        r->done_reason = why == REPLY_WORD_LIMIT ? "length" : "stop";
        r->eval_count = count_words(reply.s, reply.len);
    }
    r->text = reply.s;
    r->text_len = reply.len;
    r->cuts = cut_utf8(r->text, r->text_len, (size_t)sc->chunks, &r->npieces);
    if (r->midstream_error)
        r->src.count = (r->npieces < MIDSTREAM_LINES ? r->npieces : MIDSTREAM_LINES) + 1;
    else if (r->tool_calls)
        r->src.count = 2; /* the calls arrive whole in one line, then the done line */
    else
        r->src.count = r->npieces + 1;
    return r;
}

/* The opening fields of every chat object: model, created_at, message. */
static json_t *chat_object(const struct chat_reply *r, const char *content, size_t len, int with_calls)
{
    char now[48];
    rfc3339_now(now, sizeof now);
    json_t *message = must(json_pack("{s:s,s:s%}", "role", "assistant", "content", content, len));
    if (with_calls && r->tool_calls)
        json_object_set(message, "tool_calls", r->tool_calls);
    return must(json_pack("{s:s,s:s,s:o}", "model", r->model, "created_at", now, "message", message));
}

/* done_reason, done and the counters that close a chat: durations are nanoseconds, as Ollama reports. */
static void add_done(json_t *obj, const struct chat_reply *r)
{
    long long prompt_ns = 1000000 + r->prompt_tokens * 50000, eval_ns = r->eval_count * 20000000;
    json_t *tail = must(json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "done_reason", r->done_reason, "done", 1,
                                  "total_duration", (json_int_t)(LOAD_NS + prompt_ns + eval_ns + 500000),
                                  "load_duration", (json_int_t)LOAD_NS, "prompt_eval_count",
                                  (json_int_t)r->prompt_tokens, "prompt_eval_duration", (json_int_t)prompt_ns,
                                  "eval_count", (json_int_t)r->eval_count, "eval_duration", (json_int_t)eval_ns));
    json_object_update(obj, tail);
    json_decref(tail);
}

static void add_line(struct evbuffer *dst, json_t *obj /* stolen */)
{
    char *s = dump_json(obj, JSON_COMPACT);
    json_decref(obj);
    buf_add(dst, s, strlen(s));
    buf_add(dst, "\n", 1);
    free(s);
}

static void chat_reply_emit(struct event_source *src, size_t step, struct evbuffer *dst)
{
    struct chat_reply *r = (struct chat_reply *)src;
    if (step + 1 < r->src.count) {
        json_t *line = r->tool_calls && !r->midstream_error
                           ? chat_object(r, "", 0, 1)
                           : chat_object(r, r->text + r->cuts[step], r->cuts[step + 1] - r->cuts[step], 0);
        json_object_set_new(line, "done", json_false());
        add_line(dst, line);
    } else if (r->midstream_error) {
        add_line(dst, must(json_pack("{s:s}", "error", RUN_ERROR)));
    } else {
        json_t *line = chat_object(r, "", 0, 0);
        add_done(line, r);
        add_line(dst, line);
    }
}

static void chat_answer(struct conn *c, json_t *body, const struct script *sc, int stream)
{
    char buf[96];
    const char *invalid = invalid_chat(body, buf, sizeof buf);
    if (invalid) {
        reply_ollama_error(c, 400, invalid);
        return;
    }
    if (sc->fault == FAULT_MIDSTREAM_ERROR && !stream) {
        reply_ollama_error(c, 500, RUN_ERROR);
        return;
    }
    if (json_array_size(json_object_get(body, "messages")) == 0) {
        /* No messages only loads the model: one object, even when streaming. */
        char now[48];
        rfc3339_now(now, sizeof now);
        reply_json_as(c, 200, JSON_TYPE,
                      must(json_pack("{s:O,s:s,s:{s:s,s:s},s:s,s:b}", "model", json_object_get(body, "model"),
                                     "created_at", now, "message", "role", "assistant", "content", "",
                                     "done_reason", "load", "done", 1)),
                      JSON_COMPACT, NULL);
        return;
    }
    struct chat_reply *r = chat_reply_new(body, sc);
    if (stream) {
        put_head(c, 200, NDJSON_TYPE, -1, NULL);
        c->resp.gen = &r->src;
        c->resp.pace_ms = sc->interval_ms;
        return;
    }
    json_t *obj = chat_object(r, r->text, r->text_len, 1);
    add_done(obj, r);
    reply_json_as(c, 200, JSON_TYPE, obj, JSON_COMPACT, NULL);
    chat_reply_free(r);
}

const struct dialect ollama_chat_dialect = {
    .name = "POST /api/chat",
    .directives = CHAT_DIRECTIVES,
    .faults = TRANSPORT_FAULTS | (1u << FAULT_MIDSTREAM_ERROR) | (1u << FAULT_HOLD_OPEN),
    .stream_type = NDJSON_TYPE,
    .stream_garbage = "garbage garbage\n",
    .authorized = bearer_authorized,
    .error = ollama_error,
    .wants_stream = ollama_wants_stream,
    .answer = chat_answer,
};

/* ---- /api/embed ---- */

static void embed_answer(struct conn *c, json_t *body, const struct script *sc, int stream)
{
    (void)sc;
    (void)stream;
    json_t *model = json_object_get(body, "model");
    json_t *input = json_object_get(body, "input");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        reply_ollama_error(c, 400, "model is required");
        return;
    }
    json_t *inputs;
    if (json_is_string(input))
        inputs = json_string_length(input) ? must(json_pack("[O]", input)) : must(json_array());
    else if (json_is_array(input))
        inputs = json_incref(input);
    else if (!input || json_is_null(input))
        inputs = must(json_array());
    else
        inputs = NULL;
    size_t i;
    json_t *item;
    json_array_foreach(inputs, i, item)
        if (!json_is_string(item)) {
            json_decref(inputs);
            inputs = NULL;
            break;
        }
    if (!inputs) {
        reply_ollama_error(c, 400, "invalid input type");
        return;
    }
    json_t *embeddings = must(json_array());
    long long tokens = 0;
    json_array_foreach(inputs, i, item) {
        double v[EMBED_DIMS];
        embed_vector(json_string_value(item), json_string_length(item), v);
        json_array_append_new(embeddings, embed_json(v));
        tokens += count_words(json_string_value(item), json_string_length(item));
    }
    json_t *obj = must(json_pack("{s:O,s:o}", "model", model, "embeddings", embeddings));
    /* Ollama leaves the counters out of the empty answer (omitempty). */
    if (json_array_size(inputs)) {
        json_t *counts = must(json_pack("{s:i,s:i,s:I}", "total_duration", 1, "load_duration", 1,
                                        "prompt_eval_count", (json_int_t)tokens));
        json_object_update(obj, counts);
        json_decref(counts);
    }
    json_decref(inputs);
    reply_json_as(c, 200, JSON_TYPE, obj, EMBED_DUMP_FLAGS, NULL);
}

const struct dialect ollama_embed_dialect = {
    .name = "POST /api/embed",
    .directives = EMBED_DIRECTIVES,
    .faults = TRANSPORT_FAULTS,
    .authorized = bearer_authorized,
    .error = ollama_error,
    .answer = embed_answer,
};

/* ---- /api/tags ---- */

void ollama_tags(struct conn *c)
{
    if (srv.require_key && !bearer_authorized(&c->req)) {
        ollama_error(c, 401, CALL_ERR_AUTH, NULL);
        return;
    }
    static const struct {
        const char *name, *modified_at, *digest, *family, *parameter_size;
        json_int_t size;
    } models[] = {
        { "llama-mock:latest", "2025-05-04T17:37:44.706015396-07:00",
          "6c6c616d612d6d6f636b0000000000000000000000000000000000000000001a", "llama", "3.2B", 2019393189 },
        { "qwen-mock:7b", "2025-05-10T08:06:48.639712648-07:00",
          "7177656e2d6d6f636b00000000000000000000000000000000000000000007b0", "qwen2", "7.6B", 4683075271 },
    };
    json_t *list = must(json_array());
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        json_array_append_new(
            list, must(json_pack("{s:s,s:s,s:s,s:I,s:s,s:{s:s,s:s,s:s,s:[s],s:s,s:s}}", "name", models[i].name,
                                 "model", models[i].name, "modified_at", models[i].modified_at, "size",
                                 models[i].size, "digest", models[i].digest, "details", "parent_model", "",
                                 "format", "gguf", "family", models[i].family, "families", models[i].family,
                                 "parameter_size", models[i].parameter_size, "quantization_level", "Q4_K_M")));
    reply_json_as(c, 200, JSON_TYPE, must(json_pack("{s:o}", "models", list)), JSON_COMPACT, NULL);
}
