/* anthropic.c: the mock's Anthropic dialect: POST /v1/messages, answered as a message object or as the
 * Messages API's named SSE events (message_start ... message_stop), with Anthropic's error bodies and
 * x-api-key check. The wire shapes follow recorded Anthropic streams and bodies. */

#include "mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Anthropic's ping and in-stream error events, byte for byte: unlike the other events they are printed
 * with spaces after ':' and ','. */
#define PING_DATA "{\"type\": \"ping\"}"
#define OVERLOADED_DATA                                                                                      \
    "{\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}"
#define TOOL_PREAMBLE "Let me check."
#define TOOL_USE_ID "toolu_mock_1"
#define JSON_FRAGMENTS 4 /* input_json_delta pieces after the empty first one, as in recorded streams */
#define THINKING_EVENTS 4 /* content_block_start, thinking_delta, signature_delta, content_block_stop */
#define SIGNATURE "sig_mock_thinking"

/* The reply to one Messages request, used for the JSON body and as the SSE event source. */
struct message {
    struct event_source src; /* first: the core streams through it */
    unsigned long long number; /* the N of msg_mock_N, repeated in the request-id header */
    char id[48];
    char *model;              /* owned */
    char *text;               /* owned: the text block */
    size_t text_len;
    size_t *cuts;             /* owned: text delta i is text[cuts[i] .. cuts[i+1]) */
    size_t npieces;
    char *tool_name;          /* owned; NULL unless tool_use blocks follow the text */
    char *tool_names[MAX_TOOL_CALLS]; /* owned: every tool_use block's name (tool_names[0] == tool_name's) */
    int ntools;               /* tool_use blocks after the text, all with the same input */
    char *thinking;           /* owned; NULL unless the request enabled thinking: a thinking block first */
    char *tool_input;         /* owned: the tool_use input as Anthropic streams it: {"q": "..."} */
    size_t json_cuts[JSON_FRAGMENTS + 1]; /* fragment i is tool_input[json_cuts[i] .. json_cuts[i+1]) */
    const char *stop_reason;  /* static string */
    char *stop_sequence;      /* owned; NULL unless a stop sequence ended the text */
    long long input_tokens, output_tokens;
    int stream_error;         /* fault=stream_error: an error event follows the first text delta */
};

/* ---- errors ---- */

static const char *error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 500: return "api_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* Every Anthropic error body is built here: {"type":"error","error":{type,message},"request_id"}. */
static void reply_anthropic_error(struct conn *c, int status, const char *message)
{
    char rid[48], extra[96];
    snprintf(rid, sizeof rid, "req_mock_%llu", next_id());
    snprintf(extra, sizeof extra, "request-id: %s\r\n%s", rid, status == 429 ? "retry-after: 1\r\n" : "");
    reply_json(c, status,
               must(json_pack("{s:s,s:{s:s,s:o},s:s}", "type", "error", "error", "type", error_type(status),
                              "message", json_string_lossy(message), "request_id", rid)),
               extra);
}

static void anthropic_error(struct conn *c, int status, enum call_error why, const char *message)
{
    char msg[32];
    switch (why) {
    case CALL_ERR_AUTH: message = "invalid x-api-key"; break;
    case CALL_ERR_JSON: message = "The request body is not valid JSON."; break;
    case CALL_ERR_STATUS:
        snprintf(msg, sizeof msg, "mock error %d", status);
        message = msg;
        break;
    case CALL_ERR_DIRECTIVE:
    case CALL_ERR_INVALID: break;
    }
    reply_anthropic_error(c, status, message);
}

static int anthropic_authorized(const struct request *q)
{
    const char *key = header_value(q, "x-api-key");
    return key && strcmp(key, srv.require_key) == 0;
}

static int anthropic_wants_stream(json_t *body)
{
    return json_is_true(json_object_get(body, "stream"));
}

/* ---- the request ---- */

/* Text of a string or of the text blocks in an array of content blocks, joined with a space. */
static void blocks_text(json_t *content, struct strbuf *out)
{
    if (json_is_string(content)) {
        sb_add_json(out, content);
        return;
    }
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (!type || strcmp(type, "text") != 0)
            continue;
        if (out->len)
            sb_add(out, " ", 1);
        sb_add_json(out, json_object_get(block, "text"));
    }
}

/* A user turn's own text and the text of its tool_result blocks; returns how many tool_result blocks. */
static size_t turn_text(json_t *content, struct strbuf *text, struct strbuf *results)
{
    size_t found = 0;
    blocks_text(content, text);
    size_t i;
    json_t *block;
    json_array_foreach(content, i, block) {
        const char *type = json_string_value(json_object_get(block, "type"));
        if (!type || strcmp(type, "tool_result") != 0)
            continue;
        if (found++)
            sb_add(results, " ", 1);
        struct strbuf one = { 0 };
        blocks_text(json_object_get(block, "content"), &one);
        if (one.len)
            sb_add(results, one.s, one.len);
        free(one.s);
    }
    return found;
}

/* The first problem with the request's shape, in the API's "field: problem" style, or NULL. */
static const char *invalid_request(json_t *body, char *buf, size_t len)
{
    json_t *max = json_object_get(body, "max_tokens");
    json_t *messages = json_object_get(body, "messages");
    json_t *system = json_object_get(body, "system");
    json_t *stops = json_object_get(body, "stop_sequences");
    json_t *tools = json_object_get(body, "tools");
    if (!json_is_string(json_object_get(body, "model")))
        return "model: Field required";
    if (!max)
        return "max_tokens: Field required";
    if (!json_is_integer(max))
        return "max_tokens: Input should be a valid integer";
    if (json_integer_value(max) < 1)
        return "max_tokens: Input should be greater than or equal to 1";
    if (!messages)
        return "messages: Field required";
    if (!json_is_array(messages))
        return "messages: Input should be a valid list";
    if (system && !json_is_string(system) && !json_is_array(system))
        return "system: Input should be a valid string or a list of text blocks";
    if (stops && !json_is_array(stops))
        return "stop_sequences: Input should be a valid list";
    if (tools && !json_is_array(tools))
        return "tools: Input should be a valid list";
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)) {
            snprintf(buf, len, "messages.%zu.role: Input should be 'user' or 'assistant'", i);
            return buf;
        }
        if (!json_is_string(content) && !json_is_array(content)) {
            snprintf(buf, len, "messages.%zu.content: Input should be a valid string or a list of blocks", i);
            return buf;
        }
    }
    return NULL;
}

/* ---- the answer ---- */

static void message_free(struct message *m)
{
    free(m->model);
    free(m->text);
    free(m->cuts);
    free(m->tool_name);
    for (int k = 0; k < MAX_TOOL_CALLS; k++)
        free(m->tool_names[k]);
    free(m->thinking);
    free(m->tool_input);
    free(m->stop_sequence);
    free(m);
}

static void message_emit(struct event_source *src, size_t step, struct evbuffer *dst);

static void message_source_free(struct event_source *src)
{
    message_free((struct message *)src);
}

static const struct event_source_ops message_ops = { message_emit, message_source_free };

/* Moves a cut inside tool_input forward past UTF-8 continuation bytes, since every fragment travels as a
 * JSON string of its own. */
static size_t char_start(const char *s, size_t at, size_t end)
{
    while (at < end && ((unsigned char)s[at] & 0xC0) == 0x80)
        at++;
    return at;
}

/* The tool input in Anthropic's streamed spelling, cut so the fragments break inside the key and twice
 * inside the string value, as recorded streams do ("{\"locati", "on\": \"P", "ar", "is\"}"). */
static void set_tool_input(struct message *m, const char *q, size_t qlen)
{
    json_t *value = must(json_stringn(q, qlen));
    char *quoted = dump_json(value, 0);
    json_decref(value);
    struct strbuf in = { 0 };
    sb_add(&in, "{\"q\": ", 6);
    sb_add(&in, quoted, strlen(quoted));
    sb_add(&in, "}", 1);
    free(quoted);
    size_t open = 7, close = in.len - 2; /* the string value's characters lie between these */
    m->tool_input = in.s;
    m->json_cuts[0] = 0;
    m->json_cuts[1] = 2; /* "{\"" : the key has opened */
    m->json_cuts[2] = char_start(in.s, open + (close - open) / 3, close);
    m->json_cuts[3] = char_start(in.s, open + (close - open) * 2 / 3, close);
    m->json_cuts[4] = in.len;
}

static struct message *message_new(json_t *body, const struct script *sc)
{
    struct message *m = xcalloc(1, sizeof *m);
    m->src.ops = &message_ops;
    m->model = xstrdup(json_string_value(json_object_get(body, "model")));
    m->number = next_id();
    snprintf(m->id, sizeof m->id, "msg_mock_%llu", m->number);

    struct strbuf all = { 0 }, user = { 0 }, results = { 0 };
    size_t nresults = 0;
    blocks_text(json_object_get(body, "system"), &all);
    m->input_tokens = count_words(all.s, all.len);
    size_t i;
    json_t *msg;
    json_array_foreach(json_object_get(body, "messages"), i, msg) {
        struct strbuf text = { 0 }, res = { 0 };
        size_t n = turn_text(json_object_get(msg, "content"), &text, &res);
        m->input_tokens += count_words(text.s, text.len) + count_words(res.s, res.len);
        if (strcmp(json_string_value(json_object_get(msg, "role")), "user") == 0) {
            free(user.s);
            free(results.s);
            user = text;
            results = res;
            nresults = n;
        } else {
            free(text.s);
            free(res.s);
        }
    }
    free(all.s);

    json_t *tools = json_object_get(body, "tools");
    m->stream_error = sc->fault == FAULT_STREAM_ERROR;
    if (sc->tool && json_array_size(tools) > 0) {
        json_t *name = json_object_get(json_array_get(tools, 0), "name");
        m->tool_name = xstrdup(json_is_string(name) ? json_string_value(name) : "tool");
        m->ntools = sc->tool;
        for (int k = 0; k < m->ntools; k++) {
            json_t *nk = json_object_get(json_array_get(tools, (size_t)k < json_array_size(tools) ? (size_t)k : 0), "name");
            m->tool_names[k] = xstrdup(json_is_string(nk) ? json_string_value(nk) : "tool");
        }
        set_tool_input(m, user.s ? user.s : "", user.len);
        m->text = xstrdup(TOOL_PREAMBLE);
        m->text_len = strlen(m->text);
        m->stop_reason = "tool_use";
        m->output_tokens = count_words(m->text, m->text_len) + m->ntools * count_words(m->tool_input, strlen(m->tool_input));
    } else {
        struct strbuf reply = { 0 };
        sb_add(&reply, nresults ? "tool said: " : "echo: ", nresults ? 11 : 6);
        if (nresults && results.len)
            sb_add(&reply, results.s, results.len);
        else if (!nresults && user.len)
            sb_add(&reply, user.s, user.len);
        enum reply_cut why;
        const char *stop;
        m->text_len = reply_cut(reply.s, reply.len, json_object_get(body, "stop_sequences"),
                                json_integer_value(json_object_get(body, "max_tokens")), &why, &stop);
        reply.s[m->text_len] = '\0';
        m->text = reply.s;
        m->stop_reason = why == REPLY_WORD_LIMIT      ? "max_tokens"
                         : why == REPLY_STOP_SEQUENCE ? "stop_sequence"
                                                      : "end_turn";
        m->stop_sequence = stop ? xstrdup(stop) : NULL;
        m->output_tokens = count_words(m->text, m->text_len);
    }
    const char *think = json_string_value(json_object_get(json_object_get(body, "thinking"), "type"));
    if (think && (strcmp(think, "enabled") == 0 || strcmp(think, "adaptive") == 0) && !m->stream_error) {
        struct strbuf t = { 0 };
        sb_add(&t, "The user wrote: ", 16);
        sb_add(&t, user.s ? user.s : "", user.len);
        m->thinking = t.s ? t.s : xstrdup("");
    }
    free(user.s);
    free(results.s);
    m->cuts = cut_utf8(m->text, m->text_len, (size_t)sc->chunks, &m->npieces);
    /* message_start, [the thinking block: start, thinking_delta, signature_delta, stop], content_block_start,
     * ping, text deltas, content_block_stop, [per tool_use block: start, the input_json_deltas, stop],
     * message_delta, message_stop; or, for stream_error, the first four then error. */
    if (m->stream_error)
        m->src.count = 5;
    else
        m->src.count = 1 + (m->thinking ? THINKING_EVENTS : 0) + 2 + m->npieces + 1 +
                       (size_t)m->ntools * (JSON_FRAGMENTS + 3) + 2;
    return m;
}

/* toolu_mock_1, toolu_mock_2, ... */
static void tool_use_id(int k, char *buf, size_t len)
{
    if (k == 0)
        snprintf(buf, len, "%s", TOOL_USE_ID);
    else
        snprintf(buf, len, "toolu_mock_%d", k + 1);
}

static json_t *message_usage(const struct message *m)
{
    return must(json_pack("{s:I,s:i,s:i,s:I}", "input_tokens", (json_int_t)m->input_tokens,
                          "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0, "output_tokens",
                          (json_int_t)m->output_tokens));
}

static json_t *message_body(const struct message *m)
{
    json_t *content = must(json_pack("[{s:s,s:s%}]", "type", "text", "text", m->text, m->text_len));
    if (m->thinking)
        json_array_insert_new(content, 0, must(json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", m->thinking,
                                                         "signature", SIGNATURE)));
    for (int k = 0; k < m->ntools; k++) {
        char id[32];
        tool_use_id(k, id, sizeof id);
        json_array_append_new(content, must(json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id, "name",
                                                      m->tool_names[k], "input",
                                                      must(json_loads(m->tool_input, 0, NULL)))));
    }
    /* Recorded 2025 bodies open with the model, unlike message_start's message. */
    return must(json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:s?,s:o}", "model", m->model, "id", m->id, "type", "message",
                          "role", "assistant", "content", content, "stop_reason", m->stop_reason, "stop_sequence",
                          m->stop_sequence, "usage", message_usage(m)));
}

static void add_raw_event(struct evbuffer *dst, const char *name, const char *data)
{
    if (evbuffer_add_printf(dst, "event: %s\ndata: %s\n\n", name, data) < 0)
        oom();
}

static void add_event(struct evbuffer *dst, const char *name, json_t *data /* stolen */)
{
    char *s = dump_json(data, JSON_COMPACT);
    json_decref(data);
    add_raw_event(dst, name, s);
    free(s);
}

static json_t *delta_event(int index, json_t *delta /* stolen */)
{
    return must(json_pack("{s:s,s:i,s:o}", "type", "content_block_delta", "index", index, "delta", delta));
}

static json_t *text_delta(const struct message *m, int index, size_t piece)
{
    size_t from = piece < m->npieces ? m->cuts[piece] : 0, to = piece < m->npieces ? m->cuts[piece + 1] : 0;
    return delta_event(index, must(json_pack("{s:s,s:s%}", "type", "text_delta", "text", m->text + from, to - from)));
}

static json_t *block_stop(int index)
{
    return must(json_pack("{s:s,s:i}", "type", "content_block_stop", "index", index));
}

/* Event `step` of the stream; the blocks are the thinking block (when asked for), the text, the tool uses. */
static void message_emit(struct event_source *src, size_t step, struct evbuffer *dst)
{
    struct message *m = (struct message *)src;
    size_t n = m->npieces;
    if (step == 0) {
        add_event(dst, "message_start",
                  must(json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:I,s:i,s:i,s:i}}}", "type",
                                 "message_start", "message", "id", m->id, "type", "message", "role", "assistant",
                                 "model", m->model, "content", "stop_reason", "stop_sequence", "usage",
                                 "input_tokens", (json_int_t)m->input_tokens, "cache_creation_input_tokens", 0,
                                 "cache_read_input_tokens", 0, "output_tokens", 1)));
        return;
    }
    step--;
    int index = 0;
    if (m->thinking) {
        if (step == 0)
            add_event(dst, "content_block_start",
                      must(json_pack("{s:s,s:i,s:{s:s,s:s,s:s}}", "type", "content_block_start", "index", 0,
                                     "content_block", "type", "thinking", "thinking", "", "signature", "")));
        else if (step == 1)
            add_event(dst, "content_block_delta",
                      delta_event(0, must(json_pack("{s:s,s:s}", "type", "thinking_delta", "thinking", m->thinking))));
        else if (step == 2)
            add_event(dst, "content_block_delta",
                      delta_event(0, must(json_pack("{s:s,s:s}", "type", "signature_delta", "signature", SIGNATURE))));
        else if (step == 3)
            add_event(dst, "content_block_stop", block_stop(0));
        if (step < THINKING_EVENTS)
            return;
        step -= THINKING_EVENTS;
        index = 1;
    }
    if (step == 0) {
        add_event(dst, "content_block_start",
                  must(json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", index,
                                 "content_block", "type", "text", "text", "")));
        return;
    }
    if (step == 1) {
        add_raw_event(dst, "ping", PING_DATA);
        return;
    }
    if (m->stream_error) {
        if (step == 2)
            add_event(dst, "content_block_delta", text_delta(m, index, 0));
        else
            add_raw_event(dst, "error", OVERLOADED_DATA);
        return;
    }
    if (step < 2 + n) {
        add_event(dst, "content_block_delta", text_delta(m, index, step - 2));
        return;
    }
    if (step == 2 + n) {
        add_event(dst, "content_block_stop", block_stop(index));
        return;
    }
    size_t t = step - (3 + n);
    if (t < (size_t)m->ntools * (JSON_FRAGMENTS + 3)) {
        int k = (int)(t / (JSON_FRAGMENTS + 3));
        int bi = index + 1 + k;
        t %= JSON_FRAGMENTS + 3;
        if (t == 0) {
            char id[32];
            tool_use_id(k, id, sizeof id);
            add_event(dst, "content_block_start",
                      must(json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type", "content_block_start", "index", bi,
                                     "content_block", "type", "tool_use", "id", id, "name", m->tool_names[k],
                                     "input")));
        } else if (t <= JSON_FRAGMENTS + 1) {
            /* An empty fragment first, as the API sends, then the input's pieces. */
            size_t from = t == 1 ? 0 : m->json_cuts[t - 2], to = t == 1 ? 0 : m->json_cuts[t - 1];
            add_event(dst, "content_block_delta",
                      delta_event(bi, must(json_pack("{s:s,s:s%}", "type", "input_json_delta", "partial_json",
                                                     m->tool_input + from, to - from))));
        } else {
            add_event(dst, "content_block_stop", block_stop(bi));
        }
        return;
    }
    t -= (size_t)m->ntools * (JSON_FRAGMENTS + 3);
    if (t == 0)
        add_event(dst, "message_delta",
                  must(json_pack("{s:s,s:{s:s,s:s?},s:{s:I}}", "type", "message_delta", "delta", "stop_reason",
                                 m->stop_reason, "stop_sequence", m->stop_sequence, "usage", "output_tokens",
                                 (json_int_t)m->output_tokens)));
    else
        add_event(dst, "message_stop", must(json_pack("{s:s}", "type", "message_stop")));
}

static void messages_answer(struct conn *c, json_t *body, const struct script *sc, int stream)
{
    char buf[128];
    const char *invalid = invalid_request(body, buf, sizeof buf);
    if (invalid) {
        reply_anthropic_error(c, 400, invalid);
        return;
    }
    if (sc->fault == FAULT_STREAM_ERROR && !stream) {
        /* What an overload looks like when not streaming. */
        reply_anthropic_error(c, 529, "Overloaded");
        return;
    }
    struct message *m = message_new(body, sc);
    char extra[64];
    snprintf(extra, sizeof extra, "request-id: req_mock_%llu\r\n", m->number);
    if (stream) {
        put_head(c, 200, "text/event-stream; charset=utf-8", -1, extra);
        c->resp.gen = &m->src;
        c->resp.pace_ms = sc->interval_ms;
        return;
    }
    reply_json(c, 200, message_body(m), extra);
    message_free(m);
}

const struct dialect anthropic_messages_dialect = {
    .name = "POST /v1/messages",
    .directives = CHAT_DIRECTIVES,
    .faults = TRANSPORT_FAULTS | (1u << FAULT_STREAM_ERROR) | (1u << FAULT_HOLD_OPEN),
    .stream_type = "text/event-stream; charset=utf-8",
    .stream_garbage = "garbage garbage\n\n",
    .authorized = anthropic_authorized,
    .error = anthropic_error,
    .wants_stream = anthropic_wants_stream,
    .answer = messages_answer,
};

/* POST /v1/messages/count_tokens: the words of the system prompt and the messages, as message_start's
 * input_tokens counts them. */
static void count_answer(struct conn *c, json_t *body, const struct script *sc, int stream)
{
    (void)stream;
    if (!json_is_string(json_object_get(body, "model")))
        return reply_anthropic_error(c, 400, "model: Field required");
    if (!json_is_array(json_object_get(body, "messages")))
        return reply_anthropic_error(c, 400, "messages: Field required");
    struct script plain = *sc;
    plain.tool = 0;
    struct message *m = message_new(body, &plain);
    reply_json(c, 200, must(json_pack("{s:I}", "input_tokens", (json_int_t)m->input_tokens)), NULL);
    message_free(m);
}

static int never_streams(json_t *body)
{
    (void)body;
    return 0;
}

const struct dialect anthropic_count_dialect = {
    .name = "POST /v1/messages/count_tokens",
    .directives = DIRECTIVE_LATENCY | DIRECTIVE_STATUS | DIRECTIVE_FAULT | DIRECTIVE_FAIL,
    .faults = TRANSPORT_FAULTS,
    .stream_type = NULL,
    .authorized = anthropic_authorized,
    .error = anthropic_error,
    .wants_stream = never_streams,
    .answer = count_answer,
};
