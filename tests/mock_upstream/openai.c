/* openai.c: the mock's OpenAI dialect: POST /v1/chat/completions (JSON or an SSE stream of
 * chat.completion.chunk events, with sparse=1 for servers that omit id/created/object/usage), POST
 * /v1/embeddings and GET /v1/models. */

#include "mock.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BIG_CONTENT_BYTES (10 * 1024 * 1024)
#define BIG_STREAM_PIECE (16 * 1024)
#define BIG_MARKER "MOCK_UPSTREAM_BIG_CONTENT"

static char big_fill[64 * 1024]; /* 'a' bytes that big bodies reference instead of copying */

/* One of several tool calls asked for at once (calls=). */
struct mock_call {
    char id[48];
    char *name;    /* owned */
    char *args;    /* owned: the arguments as JSON text */
    size_t *cuts;  /* owned: argument fragment i is args[cuts[i] .. cuts[i+1]) */
    size_t npieces;
};

/* The reply to one chat request, used for the JSON body and as the SSE event source. */
struct answer {
    struct event_source src; /* first: the core streams through it */
    char id[48];
    char *model;     /* owned */
    long long created;
    char *text;      /* owned: the reply text, or the tool call's arguments */
    size_t text_len;
    char *tool_name; /* owned; NULL unless the answer is a tool call */
    char *more_tools[MAX_TOOL_CALLS]; /* owned: the names of calls 2..ntools */
    int ntools;      /* tool calls in the answer (their arguments are all text) */
    int big;         /* content is big_bytes of 'a' taken from big_fill, text is unused */
    size_t big_bytes; /* fault=big: BIG_CONTENT_BYTES; content_bytes=N: N */
    int sparse;      /* leave out id, object, created and usage, as some local servers do */
    int include_usage; /* a usage chunk goes before [DONE] */
    long long prompt_tokens, completion_tokens;
    size_t *cuts;    /* owned: content piece i is text[cuts[i] .. cuts[i+1]) */
    size_t npieces;
    struct mock_call *calls; /* owned: calls= answers (tool_name is then NULL) */
    size_t ncalls;
};

static void openai_error(struct conn *c, int status, enum call_error why, const char *message)
{
    char msg[32];
    const char *type = "server_error", *code = "server_error";
    switch (why) {
    case CALL_ERR_AUTH:
        reply_error(c, status, "Incorrect API key provided", "invalid_request_error", "invalid_api_key");
        return;
    case CALL_ERR_JSON:
        reply_error(c, status, "We could not parse the JSON body of your request.", "invalid_request_error", NULL);
        return;
    case CALL_ERR_DIRECTIVE:
        reply_error(c, status, message, "invalid_request_error", "invalid_mock_directive");
        return;
    case CALL_ERR_INVALID:
        reply_error(c, status, message, "invalid_request_error", NULL);
        return;
    case CALL_ERR_STATUS:
        break;
    }
    snprintf(msg, sizeof msg, "mock error %d", status);
    if (status == 429)
        type = code = "rate_limit_exceeded";
    else if (status == 401)
        type = "invalid_request_error", code = "invalid_api_key";
    else if (status == 400)
        type = code = "invalid_request_error";
    reply_error(c, status, msg, type, code);
}

/* ok_error=NAME: error objects as OpenAI words them, sent with HTTP 200 (as some proxies and compatible
 * servers do): the body of a JSON answer, or the first event of a stream. */
static const struct ok_error {
    const char *name, *message, *type, *param, *code;
} ok_errors[] = {
    { "insufficient_quota",
      "You exceeded your current quota, please check your plan and billing details. For more information on this "
      "error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
      "insufficient_quota", NULL, "insufficient_quota" },
    { "rate_limit_exceeded",
      "Rate limit reached for gpt-4o in organization org-mock on tokens per min (TPM): Limit 30000, Used 30000, "
      "Requested 42. Please try again in 84ms.",
      "tokens", NULL, "rate_limit_exceeded" },
    { "invalid_api_key", "Incorrect API key provided: sk-mock****. You can find your API key at "
      "https://platform.openai.com/account/api-keys.", "invalid_request_error", NULL, "invalid_api_key" },
    { "model_not_found", "The model `mock` does not exist or you do not have access to it.",
      "invalid_request_error", NULL, "model_not_found" },
    { "context_length_exceeded", "This model's maximum context length is 4097 tokens. However, your messages "
      "resulted in 4294 tokens. Please reduce the length of the messages.", "invalid_request_error", "messages",
      "context_length_exceeded" },
    { "server_error", "The server had an error while processing your request. Sorry about that!", "server_error",
      NULL, NULL },
    { "mystery", "Something unexpected happened.", "mystery_error", NULL, "mystery" },
};

static json_t *ok_error_json(const struct ok_error *e)
{
    return must(json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", e->message, "type", e->type, "param",
                          e->param, "code", e->code));
}

/* Queues the ok_error= answer when the script asks for one; returns 0 when it does not. */
static int ok_error_answer(struct conn *c, const struct script *sc, int stream)
{
    if (!sc->ok_error[0])
        return 0;
    for (size_t i = 0; i < sizeof ok_errors / sizeof ok_errors[0]; i++) {
        if (strcmp(sc->ok_error, ok_errors[i].name) != 0)
            continue;
        json_t *obj = ok_error_json(&ok_errors[i]);
        if (stream) {
            char *s = dump_json(obj, JSON_COMPACT);
            json_decref(obj);
            struct strbuf ev = { 0 };
            sb_add(&ev, "data: ", 6);
            sb_add(&ev, s, strlen(s));
            sb_add(&ev, "\n\n", 2);
            reply_raw(c, 200, "text/event-stream", ev.s, 1);
            free(ev.s);
            free(s);
        } else {
            reply_json(c, 200, obj, NULL);
        }
        return 1;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "mock: unknown ok_error '%s'", sc->ok_error);
    reply_error(c, 400, msg, "invalid_request_error", "invalid_mock_directive");
    return 1;
}

static int openai_wants_stream(json_t *body)
{
    return json_is_true(json_object_get(body, "stream"));
}

/* ---- chat answers ---- */

/* A message's content is a string or an array of parts; text parts are joined with a space. */
static void content_text(json_t *content, struct strbuf *out)
{
    if (json_is_string(content)) {
        sb_add_json(out, content);
        return;
    }
    size_t i;
    json_t *part;
    int first = 1;
    json_array_foreach(content, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 || !json_is_string(text))
            continue;
        if (!first)
            sb_add(out, " ", 1);
        sb_add_json(out, text);
        first = 0;
    }
}

static void answer_free(struct answer *a)
{
    free(a->model);
    free(a->text);
    free(a->tool_name);
    for (int k = 0; k < MAX_TOOL_CALLS; k++)
        free(a->more_tools[k]);
    free(a->cuts);
    for (size_t i = 0; i < a->ncalls; i++) {
        free(a->calls[i].name);
        free(a->calls[i].args);
        free(a->calls[i].cuts);
    }
    free(a->calls);
    free(a);
}

/* Arguments for a tool's parameters schema: numbers 2, 3, 4... in property order, strings the user's
 * text, booleans true (so calls=add asks for 2 + 3). */
static char *sample_arguments(json_t *parameters, const struct strbuf *user)
{
    json_t *args = must(json_object());
    long next = 2;
    const char *key;
    json_t *prop;
    json_object_foreach(json_object_get(parameters, "properties"), key, prop) {
        const char *type = json_string_value(json_object_get(prop, "type"));
        if (!type)
            continue;
        if (strcmp(type, "number") == 0 || strcmp(type, "integer") == 0)
            json_object_set_new(args, key, json_integer(next++));
        else if (strcmp(type, "string") == 0)
            json_object_set_new(args, key, must(json_stringn(user->s, user->len)));
        else if (strcmp(type, "boolean") == 0)
            json_object_set_new(args, key, json_true());
    }
    char *s = dump_json(args, JSON_COMPACT);
    json_decref(args);
    return s;
}

/* The function tool that calls= names: the name itself, or a name ending in "__NAME" (llmux's MCP tools). */
static json_t *find_tool(json_t *tools, const char *name, size_t len)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        size_t nl = n ? strlen(n) : 0;
        if (n && ((nl == len && memcmp(n, name, len) == 0) ||
                  (nl > len + 2 && memcmp(n + nl - len, name, len) == 0 && memcmp(n + nl - len - 2, "__", 2) == 0)))
            return t;
    }
    return NULL;
}

/* tool_choice "none": the model may call no tool (a calls= turn answers instead). */
static int tool_choice_none(json_t *body)
{
    const char *tc = json_string_value(json_object_get(body, "tool_choice"));
    return tc && strcmp(tc, "none") == 0;
}

/* calls=A+B: one call of each named tool (a name no tool has is skipped). */
static void plan_calls(struct answer *a, json_t *tools, const char *spec, long round, const struct strbuf *user)
{
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, "+");
        json_t *t = find_tool(tools, p, len);
        if (t) {
            a->calls = xrealloc(a->calls, (a->ncalls + 1) * sizeof *a->calls);
            struct mock_call *mc = &a->calls[a->ncalls];
            memset(mc, 0, sizeof *mc);
            snprintf(mc->id, sizeof mc->id, "call_mock_%ld_%zu", round, a->ncalls);
            mc->name = xstrdup(json_string_value(json_object_get(json_object_get(t, "function"), "name")));
            mc->args = sample_arguments(json_object_get(json_object_get(t, "function"), "parameters"), user);
            mc->cuts = cut_utf8(mc->args, strlen(mc->args), 3, &mc->npieces);
            a->completion_tokens += count_words(mc->args, strlen(mc->args));
            a->ncalls++;
        }
        p += len;
        if (*p == '+')
            p++;
    }
}

static void answer_emit(struct event_source *src, size_t step, struct evbuffer *dst);

static void answer_source_free(struct event_source *src)
{
    answer_free((struct answer *)src);
}

static const struct event_source_ops answer_ops = { answer_emit, answer_source_free };

/* The reply echoes the last user message, or reports the tool result when a tool message comes last. */
static struct answer *answer_new(json_t *body, const struct script *sc)
{
    struct answer *a = xcalloc(1, sizeof *a);
    a->src.ops = &answer_ops;
    json_t *model = json_object_get(body, "model");
    a->model = xstrdup(json_is_string(model) ? json_string_value(model) : "");
    a->created = (long long)time(NULL);
    snprintf(a->id, sizeof a->id, "chatcmpl-mock-%llu", next_id());
    a->sparse = sc->sparse;
    a->include_usage = !sc->sparse &&
                       json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));

    struct strbuf last = { 0 }, tool = { 0 };
    sb_add(&last, "", 0);
    int tool_last = 0;
    long rounds_done = 0; /* assistant turns that called tools since the last user message */
    size_t i;
    json_t *msg;
    json_array_foreach(json_object_get(body, "messages"), i, msg) {
        struct strbuf text = { 0 };
        sb_add(&text, "", 0);
        content_text(json_object_get(msg, "content"), &text);
        a->prompt_tokens += count_words(text.s, text.len);
        const char *role = json_string_value(json_object_get(msg, "role"));
        int was_tool = tool_last;
        tool_last = role && strcmp(role, "tool") == 0;
        if (role && strcmp(role, "user") == 0) {
            free(last.s);
            last = text;
            rounds_done = 0;
        } else if (tool_last && was_tool) {
            /* Results of one turn's calls come one after another: the answer quotes them all. */
            sb_add(&tool, " | ", 3);
            sb_add(&tool, text.s, text.len);
            free(text.s);
        } else if (tool_last) {
            free(tool.s);
            tool = text;
        } else {
            if (role && strcmp(role, "assistant") == 0 && json_array_size(json_object_get(msg, "tool_calls")) > 0)
                rounds_done++;
            free(text.s);
        }
    }

    json_t *tools = json_object_get(body, "tools");
    if (sc->fault == FAULT_BIG || sc->content_bytes > 0) {
        a->big = 1;
        a->big_bytes = sc->content_bytes > 0 ? (size_t)sc->content_bytes : BIG_CONTENT_BYTES;
        a->text = xstrdup("");
        a->npieces = (a->big_bytes + BIG_STREAM_PIECE - 1) / BIG_STREAM_PIECE;
        a->completion_tokens = 1;
        if (!big_fill[0])
            memset(big_fill, 'a', sizeof big_fill);
    } else if (sc->calls[0] && json_array_size(tools) > 0 && rounds_done < (sc->rounds ? sc->rounds : 1) &&
               !tool_choice_none(body) &&
               (plan_calls(a, tools, sc->calls, rounds_done + 1, &last), a->ncalls > 0)) {
        struct strbuf say = { 0 };
        if (sc->narrate) {
            char round[32];
            sb_add(&say, "calling ", 8);
            sb_add(&say, sc->calls, strlen(sc->calls));
            snprintf(round, sizeof round, " (round %ld)", rounds_done + 1);
            sb_add(&say, round, strlen(round));
        }
        a->text = say.s ? say.s : xstrdup("");
        a->text_len = say.len;
        /* Events: role, then per call a header and its argument fragments. */
        for (size_t k = 0; k < a->ncalls; k++)
            a->npieces += 1 + a->calls[k].npieces;
    } else if (sc->tool && json_array_size(tools) > 0) {
        json_t *name = json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name");
        a->tool_name = xstrdup(json_is_string(name) ? json_string_value(name) : "tool");
        a->ntools = sc->tool;
        for (int k = 1; k < a->ntools; k++) {
            json_t *t = json_array_get(tools, (size_t)k < json_array_size(tools) ? (size_t)k : 0);
            json_t *nk = json_object_get(json_object_get(t, "function"), "name");
            a->more_tools[k - 1] = xstrdup(json_is_string(nk) ? json_string_value(nk) : "tool");
        }
        json_t *args = must(json_pack("{s:s%}", "q", last.s, last.len));
        a->text = dump_json(args, JSON_COMPACT);
        json_decref(args);
        a->text_len = strlen(a->text);
        a->cuts = cut_utf8(a->text, a->text_len, 3, &a->npieces);
        a->completion_tokens = count_words(a->text, a->text_len);
    } else {
        struct strbuf reply = { 0 };
        if (tool_last) {
            sb_add(&reply, "tool said: ", 11);
            sb_add(&reply, tool.s, tool.len);
        } else {
            sb_add(&reply, "echo: ", 6);
            sb_add(&reply, last.s, last.len);
        }
        a->text = reply.s;
        a->text_len = reply.len;
        a->cuts = cut_utf8(a->text, a->text_len, (size_t)sc->chunks, &a->npieces);
        a->completion_tokens = count_words(a->text, a->text_len);
    }
    /* Events: role, content (or first tool call) pieces, the other tool calls, finish (with the usage
     * chunk right behind it when asked for, as OpenAI sends them: no interval between the two), [DONE]. */
    a->src.count = a->npieces + 3 + (size_t)(a->ntools > 1 ? a->ntools - 1 : 0);
    free(last.s);
    free(tool.s);
    return a;
}

static json_t *answer_usage(const struct answer *a)
{
    return must(json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)a->prompt_tokens, "completion_tokens",
                          (json_int_t)a->completion_tokens, "total_tokens",
                          (json_int_t)(a->prompt_tokens + a->completion_tokens)));
}

/* The fields every chunk and completion opens with; sparse servers send only the model. */
static json_t *answer_envelope(const struct answer *a, const char *object)
{
    if (a->sparse)
        return must(json_pack("{s:s}", "model", a->model));
    return must(json_pack("{s:s,s:s,s:I,s:s}", "id", a->id, "object", object, "created", (json_int_t)a->created,
                          "model", a->model));
}

static json_t *calls_json(const struct answer *a)
{
    json_t *list = must(json_array());
    for (size_t k = 0; k < a->ncalls; k++)
        json_array_append_new(list, must(json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", a->calls[k].id, "type", "function",
                                                   "function", "name", a->calls[k].name, "arguments",
                                                   a->calls[k].args)));
    return list;
}

static const char *answer_finish(const struct answer *a)
{
    return a->tool_name || a->ncalls ? "tool_calls" : "stop";
}

/* Call k (1-based past the first) of a parallel answer: the same arguments under its own id and name;
 * `index` set for stream deltas. */
static json_t *more_tool_call(const struct answer *a, int k, int with_index)
{
    char id[32];
    snprintf(id, sizeof id, "call_mock_%d", k + 1);
    json_t *call = must(json_pack("{s:s,s:s,s:{s:s,s:s%}}", "id", id, "type", "function", "function", "name",
                                  a->more_tools[k - 1], "arguments", a->text, a->text_len));
    if (with_index)
        json_object_set_new(call, "index", json_integer(k));
    return call;
}

static json_t *answer_completion(const struct answer *a)
{
    json_t *message;
    if (a->ncalls) {
        message = must(json_pack("{s:s,s:o,s:o}", "role", "assistant", "content",
                                 a->text_len ? json_stringn(a->text, a->text_len) : json_null(), "tool_calls",
                                 calls_json(a)));
    } else if (a->tool_name) {
        message = must(json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s%}}]}", "role", "assistant", "content",
                                 "tool_calls", "id", "call_mock_1", "type", "function", "function", "name",
                                 a->tool_name, "arguments", a->text, a->text_len));
        for (int k = 1; k < a->ntools; k++)
            json_array_append_new(json_object_get(message, "tool_calls"), more_tool_call(a, k, 0));
    }
    else if (a->big)
        message = must(json_pack("{s:s,s:s}", "role", "assistant", "content", BIG_MARKER));
    else
        message = must(json_pack("{s:s,s:s%}", "role", "assistant", "content", a->text, a->text_len));
    json_t *obj = answer_envelope(a, "chat.completion");
    json_object_set_new(obj, "choices",
                        must(json_pack("[{s:i,s:o,s:n,s:s}]", "index", 0, "message", message, "logprobs",
                                       "finish_reason", answer_finish(a))));
    if (!a->sparse)
        json_object_set_new(obj, "usage", answer_usage(a));
    return obj;
}

/* The big completion (10 MiB, or content_bytes=): the JSON around the content is serialised once and the
 * content references big_fill, so a big reply costs a few hundred bytes of chain bookkeeping instead of its
 * size. */
static struct evbuffer *big_completion_body(const struct answer *a)
{
    static const char needle[] = "\"content\":\"" BIG_MARKER "\"";
    json_t *obj = answer_completion(a);
    char *s = dump_json(obj, JSON_COMPACT);
    json_decref(obj);
    /* Inside a JSON string every quote is escaped, so this raw pattern can only be the content field. */
    char *at = strstr(s, needle);
    if (!at) {
        fputs("mock-upstream: big body marker missing\n", stderr);
        abort();
    }
    struct evbuffer *b = new_buf();
    size_t head = (size_t)(at - s) + strlen("\"content\":\"");
    buf_add(b, s, head);
    for (size_t left = a->big_bytes; left > 0;) {
        size_t n = left < sizeof big_fill ? left : sizeof big_fill;
        if (evbuffer_add_reference(b, big_fill, n, NULL, NULL) != 0)
            oom();
        left -= n;
    }
    const char *tail = at + strlen(needle) - 1; /* from the closing quote on */
    buf_add(b, tail, strlen(tail));
    free(s);
    return b;
}

static void add_event(struct evbuffer *dst, json_t *event /* stolen */)
{
    char *s = dump_json(event, JSON_COMPACT);
    json_decref(event);
    buf_add(dst, "data: ", 6);
    buf_add(dst, s, strlen(s));
    buf_add(dst, "\n\n", 2);
    free(s);
}

static json_t *chunk_event(const struct answer *a, json_t *delta /* stolen */, const char *finish)
{
    json_t *obj = answer_envelope(a, "chat.completion.chunk");
    json_object_set_new(obj, "choices",
                        must(json_pack("[{s:i,s:o,s:n,s:s?}]", "index", 0, "delta", delta, "logprobs",
                                       "finish_reason", finish)));
    return obj;
}

/* Step 1..npieces of a calls= stream: call k's header, then its argument fragments. */
static json_t *call_delta(const struct answer *a, size_t step)
{
    size_t s = step - 1;
    for (size_t k = 0; k < a->ncalls; k++) {
        const struct mock_call *mc = &a->calls[k];
        if (s == 0)
            return must(json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", (int)k, "id", mc->id,
                                  "type", "function", "function", "name", mc->name, "arguments", ""));
        if (s <= mc->npieces)
            return must(json_pack("{s:[{s:i,s:{s:s%}}]}", "tool_calls", "index", (int)k, "function", "arguments",
                                  mc->args + mc->cuts[s - 1], mc->cuts[s] - mc->cuts[s - 1]));
        s -= 1 + mc->npieces;
    }
    return must(json_object());
}

static void answer_emit(struct event_source *src, size_t step, struct evbuffer *dst)
{
    struct answer *a = (struct answer *)src;
    size_t n = a->npieces;
    json_t *delta;
    if (step == 0 && a->ncalls) {
        add_event(dst, chunk_event(a, must(json_pack("{s:s,s:o}", "role", "assistant", "content",
                                                     a->text_len ? json_stringn(a->text, a->text_len) : json_null())),
                                   NULL));
    } else if (step > 0 && step <= n && a->ncalls) {
        add_event(dst, chunk_event(a, call_delta(a, step), NULL));
    } else if (step == 0) {
        if (a->tool_name)
            delta = must(json_pack("{s:s,s:n,s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                                   "tool_calls", "index", 0, "id", "call_mock_1", "type", "function",
                                   "function", "name", a->tool_name, "arguments", ""));
        else
            delta = must(json_pack("{s:s,s:s}", "role", "assistant", "content", ""));
        add_event(dst, chunk_event(a, delta, NULL));
    } else if (step <= n) {
        const char *p = a->big ? big_fill : a->text + a->cuts[step - 1];
        size_t len = a->big ? (step < n ? BIG_STREAM_PIECE : a->big_bytes - (n - 1) * BIG_STREAM_PIECE)
                            : a->cuts[step] - a->cuts[step - 1];
        if (a->tool_name)
            delta = must(json_pack("{s:[{s:i,s:{s:s%}}]}", "tool_calls", "index", 0, "function", "arguments", p,
                                   len));
        else
            delta = must(json_pack("{s:s%}", "content", p, len));
        add_event(dst, chunk_event(a, delta, NULL));
    } else if (a->ntools > 1 && step <= n + (size_t)a->ntools - 1) {
        int k = (int)(step - n);
        add_event(dst, chunk_event(a, must(json_pack("{s:[o]}", "tool_calls", more_tool_call(a, k, 1))), NULL));
    } else if (step == n + (a->ntools > 1 ? (size_t)a->ntools : 1)) {
        add_event(dst, chunk_event(a, must(json_object()), answer_finish(a)));
        if (a->include_usage) {
            json_t *obj = answer_envelope(a, "chat.completion.chunk");
            json_object_set_new(obj, "choices", must(json_array()));
            json_object_set_new(obj, "usage", answer_usage(a));
            add_event(dst, obj);
        }
    } else {
        buf_add(dst, "data: [DONE]\n\n", 14);
    }
}

static void chat_answer(struct conn *c, json_t *body, const struct script *sc, int stream)
{
    if (ok_error_answer(c, sc, stream))
        return;
    struct answer *a = answer_new(body, sc);
    if (stream) {
        put_head(c, 200, "text/event-stream", -1, NULL);
        c->resp.gen = &a->src;
        c->resp.pace_ms = sc->interval_ms;
        return;
    }
    if (a->big) {
        struct evbuffer *b = big_completion_body(a);
        put_head(c, 200, "application/json", (long long)evbuffer_get_length(b), NULL);
        c->resp.body = b;
    } else {
        reply_json(c, 200, answer_completion(a), NULL);
    }
    answer_free(a);
}

const struct dialect openai_chat_dialect = {
    .name = "POST /v1/chat/completions",
    .directives = CHAT_DIRECTIVES | DIRECTIVE_SPARSE | DIRECTIVE_OK_ERROR | DIRECTIVE_CONTENT_BYTES | DIRECTIVE_CALLS |
                  DIRECTIVE_ROUNDS | DIRECTIVE_NARRATE,
    .faults = TRANSPORT_FAULTS | (1u << FAULT_BIG) | (1u << FAULT_HOLD_OPEN),
    .stream_type = "text/event-stream",
    .stream_garbage = "garbage garbage\n\n",
    .authorized = bearer_authorized,
    .error = openai_error,
    .wants_stream = openai_wants_stream,
    .answer = chat_answer,
};

/* ---- embeddings ---- */

/* One embedding per input; each input is a string or, as the API also takes, an array of token ids. */
static json_t *embedding_item(json_t *input, size_t index, int base64, long long *tokens)
{
    double v[EMBED_DIMS];
    if (json_is_string(input)) {
        embed_vector(json_string_value(input), json_string_length(input), v);
        *tokens += count_words(json_string_value(input), json_string_length(input));
    } else {
        char *s = dump_json(input, JSON_COMPACT);
        embed_vector(s, strlen(s), v);
        free(s);
        *tokens += (long long)json_array_size(input);
    }
    json_t *embedding;
    if (base64) {
        /* The API's base64 form: the float32 values' little-endian bytes. */
        unsigned char bytes[EMBED_DIMS * 4];
        for (int k = 0; k < EMBED_DIMS; k++) {
            float f = (float)v[k];
            uint32_t bits;
            memcpy(&bits, &f, sizeof bits);
            for (int b = 0; b < 4; b++)
                bytes[k * 4 + b] = (unsigned char)(bits >> (8 * b));
        }
        char *text = base64_encode(bytes, sizeof bytes);
        embedding = must(json_string(text));
        free(text);
    } else {
        embedding = embed_json(v);
    }
    return must(json_pack("{s:s,s:I,s:o}", "object", "embedding", "index", (json_int_t)index, "embedding", embedding));
}

static int is_tokens(json_t *a)
{
    if (!json_is_array(a) || json_array_size(a) == 0)
        return 0;
    size_t i;
    json_t *t;
    json_array_foreach(a, i, t)
        if (!json_is_integer(t))
            return 0;
    return 1;
}

static void embeddings_answer(struct conn *c, json_t *body, const struct script *sc, int stream)
{
    (void)stream;
    if (ok_error_answer(c, sc, 0))
        return;
    json_t *input = json_object_get(body, "input");
    json_t *format = json_object_get(body, "encoding_format");
    const char *fmt = json_string_value(format);
    if (format && !json_is_null(format) && (!fmt || (strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0))) {
        char msg[160];
        snprintf(msg, sizeof msg, "'%.64s' is not one of ['float', 'base64'] - 'encoding_format'", fmt ? fmt : "?");
        openai_error(c, 400, CALL_ERR_INVALID, msg);
        return;
    }
    if (!input) {
        openai_error(c, 400, CALL_ERR_INVALID, "'input' is a required property");
        return;
    }
    /* One string, one token array, or an array of either. */
    json_t *inputs = json_is_string(input) || is_tokens(input) ? must(json_pack("[O]", input)) : json_incref(input);
    int ok = json_is_array(inputs) && json_array_size(inputs) > 0;
    size_t i;
    json_t *item;
    json_array_foreach(inputs, i, item)
        ok = ok && ((json_is_string(item) && json_string_length(item) > 0) || is_tokens(item));
    if (!ok) {
        json_decref(inputs);
        openai_error(c, 400, CALL_ERR_INVALID,
                     "'$.input' is invalid. Please check the API reference: "
                     "https://platform.openai.com/docs/api-reference.");
        return;
    }
    int base64 = fmt && strcmp(fmt, "base64") == 0;
    long long tokens = 0;
    json_t *data = must(json_array());
    json_array_foreach(inputs, i, item)
        json_array_append_new(data, embedding_item(item, i, base64, &tokens));
    json_decref(inputs);
    reply_json_as(c, 200, "application/json",
                  must(json_pack("{s:s,s:o,s:O?,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                                 json_object_get(body, "model"), "usage", "prompt_tokens", (json_int_t)tokens,
                                 "total_tokens", (json_int_t)tokens)),
                  EMBED_DUMP_FLAGS, NULL);
}

const struct dialect openai_embeddings_dialect = {
    .name = "POST /v1/embeddings",
    .directives = EMBED_DIRECTIVES | DIRECTIVE_OK_ERROR,
    .faults = TRANSPORT_FAULTS,
    .authorized = bearer_authorized,
    .error = openai_error,
    .answer = embeddings_answer,
};

/* ---- models ---- */

void openai_models(struct conn *c)
{
    c->resp.delay_ms = srv.models_delay_ms;
    if (srv.require_key && !bearer_authorized(&c->req)) {
        openai_error(c, 401, CALL_ERR_AUTH, NULL);
        return;
    }
    reply_json(c, 200,
               must(json_pack("{s:s,s:[{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s}]}", "object", "list", "data", "id",
                              "mock-a", "object", "model", "created", 0, "owned_by", "mock", "id", "mock-b",
                              "object", "model", "created", 0, "owned_by", "mock")),
               NULL);
}
