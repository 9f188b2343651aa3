/* The anthropic_messages stream encoder: pivot chat.completion.chunk objects → Anthropic's named SSE
 * events, in the order clients check. message_start first (input_tokens the target's when a chunk
 * brings them before any content, else the request's estimate: never zero); then per content block
 * content_block_start, its deltas (text_delta, input_json_delta, thinking_delta, signature_delta) and
 * content_block_stop, one block open at a time, so a text block is closed before a tool block opens and
 * every tool call is a tool_use block with its own index; message_delta (stop_reason, usage) and
 * message_stop at the end. ping keeps a silent stream alive; an error event ends a failed one. Every
 * event's `event:` name is its data's type. A target that speaks Anthropic itself attaches its own
 * events to the pivot chunks (llmux_native, see the anthropic provider): those are relayed as they came,
 * byte for byte, instead. */
#include "anthropic_messages.h"
#include "../providers/anthropic_map.h"
#include "../src/core/common.h"

#include <stdlib.h>
#include <string.h>

enum block_kind { BLOCK_NONE, BLOCK_TEXT, BLOCK_THINKING, BLOCK_TOOL };

#define ANY_REASONING (-2) /* reasoning text that names no block: continue the open one */

struct tool_map {
    json_int_t pivot; /* the pivot's tool_calls[].index */
    int block;        /* its tool_use block's index */
};

struct anthropic_stream {
    char *model;            /* owned: the client's model name, used until a chunk names the target's */
    long estimate;          /* prompt tokens estimated from the request */
    bool thinking;          /* the client enabled thinking: reasoning becomes thinking blocks */
    bool started, ended;
    enum block_kind open;   /* the block being written, if any */
    int index;              /* its index */
    int next;               /* the index of the next block */
    json_int_t reasoning;   /* the open thinking block's reasoning_details index */
    bool sealed;            /* the open thinking block has its signature: more reasoning starts a new one */
    struct tool_map *tools; /* owned */
    size_t n_tools, cap_tools;
    const char *stop;       /* static: the Anthropic stop_reason, once a finish_reason came */
    json_t *stop_seq;       /* owned: the stop sequence that matched, or NULL */
    json_t *usage;          /* owned: the last pivot usage seen, or NULL */
    size_t out_bytes;       /* text and arguments written: the output estimate when no usage comes */
    bool relayed;           /* the target's own events are being relayed */
};

/* One event (ev stolen): "event: <type>\ndata: <json>\n\n". */
static void emit(struct lx_buf *out, json_t *ev)
{
    char *text = json_dumps(ev, JSON_COMPACT);
    lx_buf_printf(out, "event: %s\ndata: %s\n\n", json_string_value(json_object_get(ev, "type")), text);
    free(text);
    json_decref(ev);
}

void *lx_anthropic_stream_open(const struct lx_dialect_req *rq)
{
    struct anthropic_stream *st = lx_calloc(1, sizeof *st);
    st->model = lx_strdup(rq->model ? rq->model : "");
    st->estimate = rq->prompt_tokens_estimate > 0 ? rq->prompt_tokens_estimate : 1;
    st->thinking = json_is_true(json_object_get(rq->priv, "thinking"));
    return st;
}

static json_int_t usage_int(json_t *usage, const char *key)
{
    return json_integer_value(json_object_get(usage, key));
}

/* message_start, from the first chunk (or none: a keep-alive before any). */
static void start(struct anthropic_stream *st, json_t *chunk, struct lx_buf *out)
{
    st->started = true;
    json_t *model = json_object_get(chunk, "model");
    if (json_string_length(model)) {
        free(st->model);
        st->model = lx_strdup(json_string_value(model));
    }
    json_t *pivot_usage = json_object_get(chunk, "usage");
    json_t *usage;
    if (usage_int(pivot_usage, "prompt_tokens") > 0) {
        usage = lx_anthropic_usage_from_openai(pivot_usage);
        json_object_set_new(usage, "output_tokens", json_integer(0));
    } else {
        json_t *none = json_object();
        usage = lx_anthropic_usage_from_openai(none);
        json_decref(none);
        json_object_set_new(usage, "input_tokens", json_integer(st->estimate));
    }
    json_t *msg = json_pack("{s:o,s:s,s:s,s:s,s:[],s:n,s:n,s:o}", "id",
                            lx_anthropic_message_id(json_object_get(chunk, "id")), "type", "message", "role",
                            "assistant", "model", st->model, "content", "stop_reason", "stop_sequence", "usage", usage);
    emit(out, json_pack("{s:s,s:o}", "type", "message_start", "message", msg));
}

static void close_block(struct anthropic_stream *st, struct lx_buf *out)
{
    if (st->open == BLOCK_NONE)
        return;
    emit(out, json_pack("{s:s,s:i}", "type", "content_block_stop", "index", st->index));
    st->open = BLOCK_NONE;
}

/* Close the open block and start block (stolen) as the next index. */
static void open_block(struct anthropic_stream *st, struct lx_buf *out, json_t *block, enum block_kind kind)
{
    close_block(st, out);
    st->index = st->next++;
    st->open = kind;
    emit(out, json_pack("{s:s,s:i,s:o}", "type", "content_block_start", "index", st->index, "content_block", block));
}

/* A content_block_delta (d stolen) for the block at index. */
static void delta(struct lx_buf *out, int index, json_t *d)
{
    emit(out, json_pack("{s:s,s:i,s:o}", "type", "content_block_delta", "index", index, "delta", d));
}

static void text(struct anthropic_stream *st, json_t *s, struct lx_buf *out)
{
    if (!json_string_length(s))
        return;
    if (st->open != BLOCK_TEXT)
        open_block(st, out, json_pack("{s:s,s:s}", "type", "text", "text", ""), BLOCK_TEXT);
    delta(out, st->index, json_pack("{s:s,s:O}", "type", "text_delta", "text", s));
    st->out_bytes += json_string_length(s);
}

/* Thinking text and/or signature for reasoning block k (ANY_REASONING: whichever is open). */
static void thinking(struct anthropic_stream *st, json_int_t k, json_t *s, json_t *sig, struct lx_buf *out)
{
    bool more = st->open == BLOCK_THINKING && !st->sealed && (k == ANY_REASONING || k == st->reasoning);
    if (!more) {
        if (!json_string_length(s) && !json_is_string(sig))
            return;
        open_block(st, out, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "", "signature", ""),
                   BLOCK_THINKING);
        st->reasoning = k;
        st->sealed = false;
    }
    if (json_string_length(s)) {
        delta(out, st->index, json_pack("{s:s,s:O}", "type", "thinking_delta", "thinking", s));
        st->out_bytes += json_string_length(s);
    }
    if (json_is_string(sig)) {
        delta(out, st->index, json_pack("{s:s,s:O}", "type", "signature_delta", "signature", sig));
        st->sealed = true;
    }
}

static void reasoning(struct anthropic_stream *st, json_t *d, struct lx_buf *out)
{
    json_t *details = json_object_get(d, "reasoning_details");
    if (json_is_array(details) && json_array_size(details)) {
        size_t i;
        json_t *r;
        json_array_foreach(details, i, r) {
            const char *type = json_string_value(json_object_get(r, "type"));
            json_t *idx = json_object_get(r, "index");
            json_int_t k = json_is_integer(idx) ? json_integer_value(idx) : ANY_REASONING;
            if (type && strcmp(type, "reasoning.encrypted") == 0 && json_is_string(json_object_get(r, "data"))) {
                open_block(st, out, json_pack("{s:s,s:O}", "type", "redacted_thinking", "data", json_object_get(r, "data")),
                           BLOCK_THINKING);
                close_block(st, out);
            } else if (type && strcmp(type, "reasoning.text") == 0) {
                thinking(st, k, json_object_get(r, "text"), json_object_get(r, "signature"), out);
            }
        }
        return;
    }
    json_t *s = json_object_get(d, "reasoning_content");
    thinking(st, ANY_REASONING, json_is_string(s) ? s : json_object_get(d, "reasoning"), NULL, out);
}

static struct tool_map *tool_find(struct anthropic_stream *st, json_int_t pivot)
{
    for (size_t i = 0; i < st->n_tools; i++)
        if (st->tools[i].pivot == pivot)
            return &st->tools[i];
    return NULL;
}

/* One tool_calls[] entry of a delta: its first fragment opens a tool_use block, arguments stream as
 * partial_json into that block. */
static void tool(struct anthropic_stream *st, json_t *tc, size_t pos, struct lx_buf *out)
{
    json_t *idx = json_object_get(tc, "index");
    json_int_t k = json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)pos;
    json_t *fn = json_object_get(tc, "function");
    struct tool_map *m = tool_find(st, k);
    if (!m) {
        json_t *id = json_object_get(tc, "id");
        json_t *name = json_object_get(fn, "name");
        json_t *block = json_pack("{s:s,s:o,s:o,s:{}}", "type", "tool_use", "id",
                                  json_string_length(id) ? json_incref(id) : json_sprintf("toolu_llmux_%zu", st->n_tools),
                                  "name", json_is_string(name) ? json_incref(name) : json_string(""), "input");
        open_block(st, out, block, BLOCK_TOOL);
        if (st->n_tools == st->cap_tools) {
            st->cap_tools = st->cap_tools ? 2 * st->cap_tools : 4;
            st->tools = lx_realloc(st->tools, st->cap_tools * sizeof *st->tools);
        }
        st->tools[st->n_tools++] = (struct tool_map){.pivot = k, .block = st->index};
        m = &st->tools[st->n_tools - 1];
    }
    json_t *args = json_object_get(fn, "arguments");
    if (json_string_length(args)) {
        /* A server that interleaves its calls' fragments: they still go to their own block. */
        delta(out, m->block, json_pack("{s:s,s:O}", "type", "input_json_delta", "partial_json", args));
        st->out_bytes += json_string_length(args);
    }
}

/* The target's own event {"event": its SSE event name, "" if none, "data"}, written as it came. */
static void relay(struct anthropic_stream *st, json_t *native, struct lx_buf *out)
{
    json_t *name = json_object_get(native, "event"), *data = json_object_get(native, "data");
    if (!json_is_string(name) || !json_is_string(data))
        return;
    st->started = st->relayed = true;
    if (json_string_length(name)) {
        lx_buf_puts(out, "event: ");
        lx_buf_append(out, json_string_value(name), json_string_length(name));
        lx_buf_puts(out, "\n");
    }
    /* every byte of the data as it came (NULs included), one data: line per line of it */
    const char *p = json_string_value(data), *end = p + json_string_length(data);
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        lx_buf_puts(out, "data: ");
        lx_buf_append(out, p, (size_t)((nl ? nl : end) - p));
        lx_buf_puts(out, "\n");
        if (!nl)
            break;
        p = nl + 1;
    }
    lx_buf_puts(out, "\n");
}

void lx_anthropic_stream_chunk(void *state, json_t *chunk, struct lx_buf *out)
{
    struct anthropic_stream *st = state;
    if (st->ended)
        return;
    json_t *native = json_object_get(chunk, "llmux_native");
    if (json_is_object(native) || st->relayed) {
        relay(st, native, out); /* a relayed stream's other chunks carry nothing of their own */
        return;
    }
    if (!st->started)
        start(st, chunk, out);
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        json_decref(st->usage);
        st->usage = json_incref(usage);
    }
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    if (json_integer_value(json_object_get(choice, "index")) != 0)
        return; /* Anthropic has one answer: n > 1 is never asked for */
    json_t *d = json_object_get(choice, "delta");
    if (st->thinking)
        reasoning(st, d, out);
    text(st, json_object_get(d, "content"), out);
    text(st, json_object_get(d, "refusal"), out);
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(d, "tool_calls"), i, tc)
        tool(st, tc, i, out);
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    if (finish) {
        json_t *seq = json_object_get(choice, "stop_reason");
        st->stop = lx_anthropic_stop_reason(finish, json_is_string(seq));
        json_decref(st->stop_seq);
        st->stop_seq = json_is_string(seq) ? json_incref(seq) : NULL;
    }
}

void lx_anthropic_stream_end(void *state, struct lx_buf *out)
{
    struct anthropic_stream *st = state;
    if (st->ended || st->relayed) /* a relayed stream ended with the target's own message_stop */
        return;
    if (!st->started)
        start(st, NULL, out);
    close_block(st, out);
    const char *stop = st->stop ? st->stop : "end_turn";
    if (st->n_tools && strcmp(stop, "end_turn") == 0)
        stop = "tool_use"; /* servers that say "stop" after calling tools */
    json_t *usage;
    if (st->usage) {
        usage = lx_anthropic_usage_from_openai(st->usage);
        json_object_del(usage, "cache_creation");
        if (usage_int(st->usage, "prompt_tokens") <= 0) /* none reported: message_start's estimate stands */
            json_object_del(usage, "input_tokens");
    } else {
        usage = json_pack("{s:I}", "output_tokens", (json_int_t)(st->out_bytes + 3) / 4);
    }
    emit(out, json_pack("{s:s,s:{s:s,s:O},s:o}", "type", "message_delta", "delta", "stop_reason", stop,
                        "stop_sequence", st->stop_seq ? st->stop_seq : json_null(), "usage", usage));
    emit(out, json_pack("{s:s}", "type", "message_stop"));
    st->ended = true;
}

void lx_anthropic_stream_error(void *state, const struct lx_error *err, struct lx_buf *out)
{
    struct anthropic_stream *st = state;
    if (st->ended)
        return;
    emit(out, lx_anthropic_error_json(err));
    st->ended = true;
}

void lx_anthropic_stream_keepalive(void *state, struct lx_buf *out)
{
    struct anthropic_stream *st = state;
    if (st->ended)
        return;
    if (!st->started)
        start(st, NULL, out);
    emit(out, json_pack("{s:s}", "type", "ping"));
}

void lx_anthropic_stream_close(void *state)
{
    struct anthropic_stream *st = state;
    if (!st)
        return;
    free(st->model);
    free(st->tools);
    json_decref(st->stop_seq);
    json_decref(st->usage);
    free(st);
}
