/* The Responses stream encoder: pivot chat.completion.chunk objects in, the Responses event sequence out
 * (response.created, response.in_progress, then per output item output_item.added, content_part.added,
 * output_text.delta / refusal.delta or function_call_arguments.delta, their .done events,
 * output_item.done, and at the end response.completed or response.incomplete; after a failure an error
 * event and response.failed). Every event carries a sequence_number from 0; no [DONE]. Items open and
 * close one at a time in output order, so every delta follows its item's added event (what strict
 * clients such as Codex check). The tool loop's activity (pivot chunks with an "llmux" object and no
 * choices) becomes remote-MCP items: mcp_list_tools with its in_progress / completed (or failed) events,
 * and an mcp_call per server tool call with in_progress, mcp_call_arguments.delta / .done, then
 * completed or failed. A round's calls run at once, so their items stay open together and close in the
 * order the calls finish. */
#include "openai_responses_priv.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"

#include <stdlib.h>
#include <string.h>

struct rs_call {
    long pivot_index;  /* the chat tool call's index */
    size_t out_index;  /* its output item */
    struct lx_buf args;
    bool open;
};

/* A server tool call's mcp_call item, open from tool_call.started to tool_call.finished. */
struct rs_mcp {
    char *call_id;    /* owned: the model's call id, which the loop's activity names */
    size_t out_index; /* its output item */
    bool open;
};

struct rs_stream {
    json_t *response;      /* owned: the response being built; its output items are updated as they close */
    long seq;              /* the next sequence_number */
    bool started, ended;
    long msg;              /* output index of the open message item, -1 when none */
    int part_kind;         /* the open content part of that message: 0 none, 1 output_text, 2 refusal */
    size_t part_index;
    struct lx_buf part;    /* the open part's text so far */
    struct rs_call *calls; /* owned */
    size_t n_calls;
    long open_call;        /* index into calls of the open one, -1 when none */
    struct rs_mcp *mcp;    /* owned */
    size_t n_mcp;
    char *finish;          /* owned: the pivot's finish_reason */
    json_t *usage;         /* owned: the pivot's last usage */
};

static json_t *output(struct rs_stream *s)
{
    return json_object_get(s->response, "output");
}

/* Append one event (obj stolen) with its sequence_number. */
static void emit(struct rs_stream *s, struct lx_buf *out, json_t *obj)
{
    json_object_set_new(obj, "sequence_number", json_integer(s->seq++));
    char *text = json_dumps(obj, JSON_COMPACT);
    lx_buf_printf(out, "event: %s\ndata: %s\n\n", json_string_value(json_object_get(obj, "type")), text);
    free(text);
    json_decref(obj);
}

static json_t *event(const char *type)
{
    return json_pack("{s:s}", "type", type);
}

static void emit_response(struct rs_stream *s, struct lx_buf *out, const char *type, json_t *resp)
{
    json_t *ev = event(type);
    json_object_set_new(ev, "response", resp);
    emit(s, out, ev);
}

static void start(struct rs_stream *s, struct lx_buf *out)
{
    if (s->started)
        return;
    s->started = true;
    emit_response(s, out, "response.created", json_deep_copy(s->response));
    emit_response(s, out, "response.in_progress", json_deep_copy(s->response));
}

static const char *item_id(struct rs_stream *s, size_t index)
{
    return json_string_value(json_object_get(json_array_get(output(s), index), "id"));
}

static json_t *item_event(struct rs_stream *s, const char *type, size_t index)
{
    return json_pack("{s:s,s:s,s:I}", "type", type, "item_id", item_id(s, index), "output_index", (json_int_t)index);
}

static json_t *part_event(struct rs_stream *s, const char *type)
{
    json_t *ev = item_event(s, type, (size_t)s->msg);
    json_object_set_new(ev, "content_index", json_integer((json_int_t)s->part_index));
    return ev;
}

static void close_part(struct rs_stream *s, struct lx_buf *out)
{
    if (!s->part_kind)
        return;
    json_t *part = json_array_get(json_object_get(json_array_get(output(s), (size_t)s->msg), "content"), s->part_index);
    const char *text = s->part.data ? s->part.data : "";
    json_t *ev;
    if (s->part_kind == 1) {
        json_object_set_new(part, "text", json_string(text));
        ev = part_event(s, "response.output_text.done");
        json_object_set_new(ev, "text", json_string(text));
        json_object_set_new(ev, "logprobs", json_array());
    } else {
        json_object_set_new(part, "refusal", json_string(text));
        ev = part_event(s, "response.refusal.done");
        json_object_set_new(ev, "refusal", json_string(text));
    }
    emit(s, out, ev);
    ev = part_event(s, "response.content_part.done");
    json_object_set_new(ev, "part", json_deep_copy(part));
    emit(s, out, ev);
    s->part_kind = 0;
    lx_buf_reset(&s->part);
}

static void close_item(struct rs_stream *s, struct lx_buf *out, size_t index, const char *status)
{
    json_t *item = json_array_get(output(s), index);
    json_object_set_new(item, "status", json_string(status));
    json_t *ev = event("response.output_item.done");
    json_object_set_new(ev, "output_index", json_integer((json_int_t)index));
    json_object_set_new(ev, "item", json_deep_copy(item));
    emit(s, out, ev);
}

static void close_message(struct rs_stream *s, struct lx_buf *out, const char *status)
{
    if (s->msg < 0)
        return;
    close_part(s, out);
    close_item(s, out, (size_t)s->msg, status);
    s->msg = -1;
}

static void close_call(struct rs_stream *s, struct lx_buf *out, const char *status)
{
    if (s->open_call < 0)
        return;
    struct rs_call *c = &s->calls[s->open_call];
    json_t *item = json_array_get(output(s), c->out_index);
    const char *args = c->args.data ? c->args.data : "";
    json_object_set_new(item, "arguments", json_string(args));
    json_t *ev = item_event(s, "response.function_call_arguments.done", c->out_index);
    json_object_set_new(ev, "arguments", json_string(args));
    emit(s, out, ev);
    close_item(s, out, c->out_index, status);
    c->open = false;
    s->open_call = -1;
}

static void add_item(struct rs_stream *s, struct lx_buf *out, json_t *item)
{
    size_t index = json_array_size(output(s));
    json_array_append_new(output(s), item);
    json_t *ev = event("response.output_item.added");
    json_object_set_new(ev, "output_index", json_integer((json_int_t)index));
    json_object_set_new(ev, "item", json_deep_copy(item));
    emit(s, out, ev);
}

/* Text or refusal for the message item: opens the item and the part as needed. */
static void message_delta(struct rs_stream *s, struct lx_buf *out, int kind, const char *delta)
{
    close_call(s, out, "completed");
    if (s->msg < 0) {
        s->msg = (long)json_array_size(output(s));
        add_item(s, out, lx_responses_message_item("in_progress"));
    }
    if (s->part_kind != kind) {
        close_part(s, out);
        json_t *content = json_object_get(json_array_get(output(s), (size_t)s->msg), "content");
        s->part_index = json_array_size(content);
        s->part_kind = kind;
        json_t *part = kind == 1 ? lx_responses_text_part("") : json_pack("{s:s,s:s}", "type", "refusal", "refusal", "");
        json_array_append_new(content, part);
        json_t *ev = part_event(s, "response.content_part.added");
        json_object_set_new(ev, "part", json_deep_copy(part));
        emit(s, out, ev);
    }
    lx_buf_puts(&s->part, delta);
    json_t *ev = part_event(s, kind == 1 ? "response.output_text.delta" : "response.refusal.delta");
    json_object_set_new(ev, "delta", json_string(delta));
    if (kind == 1)
        json_object_set_new(ev, "logprobs", json_array());
    emit(s, out, ev);
}

static void call_delta(struct rs_stream *s, struct lx_buf *out, json_t *tc, size_t position)
{
    json_t *idx = json_object_get(tc, "index");
    long pivot_index = json_is_integer(idx) ? (long)json_integer_value(idx) : (long)position;
    json_t *fn = json_object_get(tc, "function");
    const char *name = json_string_value(json_object_get(fn, "name"));
    const char *args = json_string_value(json_object_get(fn, "arguments"));
    struct rs_call *c = NULL;
    for (size_t i = 0; i < s->n_calls; i++)
        if (s->calls[i].pivot_index == pivot_index)
            c = &s->calls[i];
    if (!c) {
        close_message(s, out, "completed");
        close_call(s, out, "completed");
        s->calls = lx_realloc(s->calls, (s->n_calls + 1) * sizeof *s->calls);
        c = &s->calls[s->n_calls];
        memset(c, 0, sizeof *c);
        c->pivot_index = pivot_index;
        c->out_index = json_array_size(output(s));
        c->open = true;
        s->open_call = (long)s->n_calls++;
        const char *call_id = json_string_value(json_object_get(tc, "id"));
        add_item(s, out, lx_responses_call_item(call_id ? call_id : "", name ? name : "", "", "in_progress"));
    } else if (name && *name) {
        /* A name that came after the call's first chunk still reaches the final item. */
        json_t *item = json_array_get(output(s), c->out_index);
        if (!*json_string_value(json_object_get(item, "name")))
            json_object_set_new(item, "name", json_string(name));
    }
    if (args && *args) {
        lx_buf_puts(&c->args, args);
        if (!c->open)
            return; /* a late fragment of a call already closed: kept in the final item only */
        json_t *ev = item_event(s, "response.function_call_arguments.delta", c->out_index);
        json_object_set_new(ev, "delta", json_string(args));
        emit(s, out, ev);
    }
}

/* ---- remote MCP items ---- */

static void simple_item_event(struct rs_stream *s, struct lx_buf *out, const char *type, size_t index)
{
    emit(s, out, item_event(s, type, index));
}

static void list_tools(struct rs_stream *s, struct lx_buf *out, json_t *what)
{
    json_t *item = lx_responses_list_tools_item(what);
    json_t *tools = json_incref(json_object_get(item, "tools"));
    json_object_set_new(item, "tools", json_array()); /* listed once in_progress is out, as OpenAI does */
    size_t index = json_array_size(output(s));
    add_item(s, out, item);
    simple_item_event(s, out, "response.mcp_list_tools.in_progress", index);
    json_object_set_new(item, "tools", tools);
    simple_item_event(s, out, json_is_string(json_object_get(item, "error")) ? "response.mcp_list_tools.failed"
                                                                             : "response.mcp_list_tools.completed",
                      index);
    json_t *ev = event("response.output_item.done");
    json_object_set_new(ev, "output_index", json_integer((json_int_t)index));
    json_object_set_new(ev, "item", json_deep_copy(item));
    emit(s, out, ev);
}

static void mcp_started(struct rs_stream *s, struct lx_buf *out, json_t *what)
{
    const char *call_id = json_string_value(json_object_get(what, "id"));
    s->mcp = lx_realloc(s->mcp, (s->n_mcp + 1) * sizeof *s->mcp);
    struct rs_mcp *m = &s->mcp[s->n_mcp++];
    m->call_id = lx_strdup(call_id ? call_id : "");
    m->out_index = json_array_size(output(s));
    m->open = true;
    json_t *item = lx_responses_mcp_call_item(what);
    json_t *args = json_incref(json_object_get(item, "arguments"));
    json_object_set_new(item, "arguments", json_string(""));
    add_item(s, out, item);
    simple_item_event(s, out, "response.mcp_call.in_progress", m->out_index);
    json_t *ev = item_event(s, "response.mcp_call_arguments.delta", m->out_index);
    json_object_set(ev, "delta", args);
    emit(s, out, ev);
    ev = item_event(s, "response.mcp_call_arguments.done", m->out_index);
    json_object_set(ev, "arguments", args);
    emit(s, out, ev);
    json_object_set_new(item, "arguments", args);
}

static void mcp_finished(struct rs_stream *s, struct lx_buf *out, json_t *what)
{
    const char *call_id = json_string_value(json_object_get(what, "id"));
    struct rs_mcp *m = NULL;
    for (size_t i = 0; i < s->n_mcp; i++)
        if (s->mcp[i].open && strcmp(s->mcp[i].call_id, call_id ? call_id : "") == 0)
            m = &s->mcp[i];
    if (!m)
        return;
    m->open = false;
    json_t *item = json_array_get(output(s), m->out_index);
    bool ok = lx_responses_mcp_call_finish(item, what);
    simple_item_event(s, out, ok ? "response.mcp_call.completed" : "response.mcp_call.failed", m->out_index);
    json_t *ev = event("response.output_item.done");
    json_object_set_new(ev, "output_index", json_integer((json_int_t)m->out_index));
    json_object_set_new(ev, "item", json_deep_copy(item));
    emit(s, out, ev);
}

/* The tool loop's news (toolloop.c's activity chunks; mcp_list_tools from api/responses.c). */
static void activity(struct rs_stream *s, struct lx_buf *out, json_t *what)
{
    const char *type = json_string_value(json_object_get(what, "type"));
    if (!type)
        return;
    close_message(s, out, "completed");
    close_call(s, out, "completed");
    if (strcmp(type, "mcp_list_tools") == 0)
        list_tools(s, out, what);
    else if (strcmp(type, "tool_call.started") == 0)
        mcp_started(s, out, what);
    else if (strcmp(type, "tool_call.finished") == 0)
        mcp_finished(s, out, what);
}

void *lx_responses_stream_open(const struct lx_dialect_req *rq)
{
    struct rs_stream *s = lx_calloc(1, sizeof *s);
    s->response = json_deep_copy(json_object_get(rq->priv, "envelope"));
    s->msg = -1;
    s->open_call = -1;
    return s;
}

void lx_responses_stream_chunk(void *st, json_t *chunk, struct lx_buf *out)
{
    struct rs_stream *s = st;
    if (s->ended)
        return;
    start(s, out);
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        json_decref(s->usage);
        s->usage = json_incref(usage);
    }
    json_t *llmux = json_object_get(chunk, "llmux");
    if (json_is_object(llmux)) {
        activity(s, out, llmux);
        return;
    }
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    if (!choice)
        return;
    json_t *delta = json_object_get(choice, "delta");
    const char *text = json_string_value(json_object_get(delta, "content"));
    if (text && *text)
        message_delta(s, out, 1, text);
    const char *refusal = json_string_value(json_object_get(delta, "refusal"));
    if (refusal && *refusal)
        message_delta(s, out, 2, refusal);
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, tc)
        call_delta(s, out, tc, i);
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    if (finish) {
        free(s->finish);
        s->finish = lx_strdup(finish);
    }
}

/* The response as it stands once everything open is closed: a new reference (state untouched). */
static json_t *final_response(struct rs_stream *s)
{
    json_t *resp = json_deep_copy(s->response);
    json_t *out = json_object_get(resp, "output");
    bool cut = s->finish && strcmp(s->finish, "length") == 0;
    const char *open_status = cut ? "incomplete" : "completed";
    if (s->msg >= 0) {
        json_t *item = json_array_get(out, (size_t)s->msg);
        if (s->part_kind) {
            json_t *part = json_array_get(json_object_get(item, "content"), s->part_index);
            json_object_set_new(part, s->part_kind == 1 ? "text" : "refusal",
                                json_string(s->part.data ? s->part.data : ""));
        }
        json_object_set_new(item, "status", json_string(open_status));
    }
    for (size_t i = 0; i < s->n_calls; i++) {
        json_t *item = json_array_get(out, s->calls[i].out_index);
        json_object_set_new(item, "arguments", json_string(s->calls[i].args.data ? s->calls[i].args.data : ""));
        if (s->calls[i].open)
            json_object_set_new(item, "status", json_string(open_status));
    }
    lx_responses_set_outcome(resp, s->finish);
    json_object_set_new(resp, "usage", lx_responses_usage(s->usage));
    return resp;
}

json_t *lx_responses_stream_response(void *st)
{
    return final_response(st);
}

json_t *lx_responses_stream_failed(void *st, const struct lx_error *err)
{
    struct rs_stream *s = st;
    json_t *resp = final_response(s);
    json_object_set_new(resp, "status", json_string("failed"));
    json_object_set_new(resp, "incomplete_details", json_null());
    json_object_set_new(resp, "completed_at", json_null());
    json_object_set_new(resp, "error", json_pack("{s:s,s:s}", "code", err->status == 429 ? "rate_limit_exceeded" : "server_error",
                                                 "message", err->message ? err->message : "The model call failed."));
    return resp;
}

void lx_responses_stream_end(void *st, struct lx_buf *out)
{
    struct rs_stream *s = st;
    if (s->ended)
        return;
    start(s, out);
    bool cut = s->finish && strcmp(s->finish, "length") == 0;
    close_message(s, out, cut ? "incomplete" : "completed");
    close_call(s, out, cut ? "incomplete" : "completed");
    json_t *resp = final_response(s);
    const char *status = json_string_value(json_object_get(resp, "status"));
    emit_response(s, out, strcmp(status, "incomplete") == 0 ? "response.incomplete" : "response.completed", resp);
    s->ended = true;
}

void lx_responses_stream_error(void *st, const struct lx_error *err, struct lx_buf *out)
{
    struct rs_stream *s = st;
    if (s->ended)
        return;
    start(s, out);
    json_t *ev = event("error");
    json_object_set_new(ev, "code", json_string(err->code ? err->code : lx_error_type_for_status(err->status)));
    json_object_set_new(ev, "message", json_string(err->message ? err->message : "The model call failed."));
    json_object_set_new(ev, "param", err->param ? json_string(err->param) : json_null());
    emit(s, out, ev);
    emit_response(s, out, "response.failed", lx_responses_stream_failed(s, err));
    s->ended = true;
}

void lx_responses_stream_keepalive(void *st, struct lx_buf *out)
{
    (void)st;
    lx_buf_puts(out, ": keepalive\n\n");
}

void lx_responses_stream_close(void *st)
{
    struct rs_stream *s = st;
    if (!s)
        return;
    json_decref(s->response);
    lx_buf_free(&s->part);
    for (size_t i = 0; i < s->n_calls; i++)
        lx_buf_free(&s->calls[i].args);
    free(s->calls);
    for (size_t i = 0; i < s->n_mcp; i++)
        free(s->mcp[i].call_id);
    free(s->mcp);
    free(s->finish);
    json_decref(s->usage);
    free(s);
}
