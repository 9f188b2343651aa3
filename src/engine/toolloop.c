/* The tool loop (see toolloop.h). One round = one exec (the routing plan is made again from the config
 * each round); the round's answer is gathered (stream chunks as they pass, or the completion), its
 * server tool calls run at once through the MCP client, and their results are appended to the
 * conversation for the next round.
 *
 * Callback contexts: round_chunk may run inside libcurl (exec's on_chunk): it only gathers and forwards
 * chunks. Everything else runs from loop callbacks (exec's on_done, MCP call results, the kick timer).
 * The loop frees itself right after its owner's on_done. Moves to src/engine/toolloop.c. */
#include "toolloop.h"
#include "../core/buf.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "exec.h"
#include "../core/log.h"
#include "../io/loop.h"
#include "router.h"
#include "toolset.h"
#include "../core/pivot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tool_run {
    struct lx_toolloop *l;
    char *id, *name, *arguments;   /* owned: the model's call */
    const struct lx_tool_ref *ref; /* borrowed from l->ts; NULL: not a tool llmux offered */
    struct lx_mcp_call *call;      /* in flight, or NULL */
    char *output;                  /* owned: what the model gets */
    const char *outcome;           /* static */
    double duration_ms;
    bool at_deadline;              /* its timeout is what was left of the request's deadline */
    struct lx_ev_span span;        /* its tool.started / tool.finished events and trace span */
};

struct lx_toolloop {
    struct lx_config *cfg;          /* ref held */
    char *model;                    /* owned */
    json_t *body;                   /* owned: the conversation so far, tools replaced */
    struct lx_toolset ts;           /* owned */
    bool stream, include_usage;
    uint64_t req_id;
    char *request_id;               /* owned */
    uint64_t deadline;
    long deadline_ms;
    int max_rounds;
    long max_calls, calls_run;      /* the cap on server tool calls (0: none), and those run so far */
    size_t max_result;
    const struct lx_toolloop_ops *ops;
    void *owner;                    /* borrowed */
    struct lx_tally *tally;         /* borrowed: the owner's */
    const struct lx_ev_origin *origin; /* borrowed: the client request the events are about, or NULL */
    struct lx_exec *exec;           /* the round's model call, or NULL */
    struct lx_timer *kick;          /* owned: starts the next round from the loop */
    struct lx_timer *idle;          /* owned: keep-alives while a stream's tool calls run */
    int rounds;                     /* rounds of tool calls made */
    bool committed, role_sent;
    char *id;                       /* owned: the stream's chunk id (the first round's) */
    json_int_t created;
    /* the current round's answer, gathered from its stream */
    struct lx_buf content;
    json_t *acc_calls;              /* owned: [{id, name, arguments}] by index */
    char *finish;                   /* owned */
    long round_prompt, round_completion;
    long prompt_tokens, completion_tokens; /* summed over rounds */
    struct tool_run *runs;          /* owned: the round's tool calls */
    size_t n_runs, n_left;
    json_t *log;                    /* owned: every tool call made, for "llmux.tool_calls" */
    json_t *texts;                  /* owned: [{round, content}], what the model wrote beside its tool calls
                                       (not streamed: a stream showed it as it came), for "llmux.texts" */
};

static void round_start_cb(void *arg);

#define LX_TOOL_IDLE_MS 1000

static void runs_free(struct lx_toolloop *l)
{
    for (size_t i = 0; i < l->n_runs; i++) {
        struct tool_run *r = &l->runs[i];
        if (r->call) {
            lx_mcp_call_cancel(r->call, "the request ended");
            lx_ev_tool_finished(r->l->origin, r->ref->server, r->ref->tool, "cancelled", "the request ended",
                                &r->span);
        }
        free(r->id);
        free(r->name);
        free(r->arguments);
        free(r->output);
    }
    free(l->runs);
    l->runs = NULL;
    l->n_runs = l->n_left = 0;
}

static void loop_free(struct lx_toolloop *l)
{
    runs_free(l);
    lx_timer_free(l->kick);
    lx_timer_free(l->idle);
    lx_config_unref(l->cfg);
    free(l->model);
    json_decref(l->body);
    lx_toolset_free(&l->ts);
    free(l->request_id);
    free(l->id);
    lx_buf_free(&l->content);
    json_decref(l->acc_calls);
    free(l->finish);
    json_decref(l->log);
    json_decref(l->texts);
    free(l);
}

/* The end: tell the owner, then go. */
static void finish(struct lx_toolloop *l, json_t *completion, const struct lx_error *err)
{
    l->ops->on_done(l->owner, completion, err);
    loop_free(l);
}

/* ---- chunks for the client ---- */

static json_t *chunk_new(struct lx_toolloop *l, json_t *choices)
{
    if (!l->id)
        l->id = lx_sprintf("chatcmpl-llmux-%llu", (unsigned long long)l->req_id);
    return json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", l->id, "object", "chat.completion.chunk", "created",
                     l->created, "model", l->model, "choices", choices);
}

static void send_delta(struct lx_toolloop *l, json_t *delta, const char *finish_reason)
{
    if (!l->role_sent) {
        json_object_set_new(delta, "role", json_string("assistant"));
        l->role_sent = true;
    }
    json_t *choice = json_pack("{s:i, s:o, s:n, s:s?}", "index", 0, "delta", delta, "logprobs", "finish_reason",
                               finish_reason);
    json_t *chunk = chunk_new(l, json_pack("[o]", choice));
    l->ops->on_chunk(l->owner, chunk);
    json_decref(chunk);
}

/* The llmux-only chunk that shows tool activity: no choices (SDKs skip it), the news under "llmux". */
static void send_activity(struct lx_toolloop *l, json_t *what)
{
    json_t *chunk = chunk_new(l, json_array());
    json_object_set_new(chunk, "llmux", what);
    l->ops->on_chunk(l->owner, chunk);
    json_decref(chunk);
}

/* ---- a round ---- */

static void round_commit(void *owner, const char *label, const char *dropped)
{
    struct lx_toolloop *l = owner;
    if (l->committed)
        return;
    l->committed = true;
    if (l->ops->on_commit)
        l->ops->on_commit(l->owner, label, dropped);
}

static void note_usage(struct lx_toolloop *l, json_t *usage)
{
    if (!json_is_object(usage))
        return;
    l->round_prompt = (long)json_integer_value(json_object_get(usage, "prompt_tokens"));
    l->round_completion = (long)json_integer_value(json_object_get(usage, "completion_tokens"));
}

/* May run inside libcurl: gather the round's answer, pass its text on. */
static void round_chunk(void *owner, json_t *chunk)
{
    struct lx_toolloop *l = owner;
    note_usage(l, json_object_get(chunk, "usage"));
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    if (!choice)
        return;
    if (!l->id && json_is_string(json_object_get(chunk, "id"))) {
        l->id = lx_strdup(json_string_value(json_object_get(chunk, "id")));
        l->created = json_integer_value(json_object_get(chunk, "created"));
    }
    json_t *delta = json_object_get(choice, "delta");
    json_t *content = json_object_get(delta, "content");
    if (json_is_string(content) && json_string_length(content) > 0) {
        lx_buf_append(&l->content, json_string_value(content), json_string_length(content));
        send_delta(l, json_pack("{s:O}", "content", content), NULL);
    }
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, tc) {
        size_t idx = (size_t)json_integer_value(json_object_get(tc, "index"));
        if (idx > 1024)
            continue;
        while (json_array_size(l->acc_calls) <= idx)
            json_array_append_new(l->acc_calls, json_pack("{s:s, s:s, s:s}", "id", "", "name", "", "arguments", ""));
        json_t *acc = json_array_get(l->acc_calls, idx);
        json_t *fn = json_object_get(tc, "function");
        const char *fields[][2] = {{"id", json_string_value(json_object_get(tc, "id"))},
                                   {"name", json_string_value(json_object_get(fn, "name"))},
                                   {"arguments", json_string_value(json_object_get(fn, "arguments"))}};
        for (size_t k = 0; k < 3; k++) {
            if (!fields[k][1])
                continue;
            char *s = lx_sprintf("%s%s", json_string_value(json_object_get(acc, fields[k][0])), fields[k][1]);
            json_object_set_new(acc, fields[k][0], json_string(s));
            free(s);
        }
    }
    const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
    if (fr) {
        free(l->finish);
        l->finish = lx_strdup(fr);
    }
}

static bool round_can_write(void *owner)
{
    struct lx_toolloop *l = owner;
    return !l->ops->can_write || l->ops->can_write(l->owner);
}

/* The round's assistant message: from the completion, or rebuilt from the stream. New reference. */
static json_t *round_message(struct lx_toolloop *l, json_t *completion)
{
    if (completion) {
        json_t *m = json_object_get(json_array_get(json_object_get(completion, "choices"), 0), "message");
        return json_is_object(m) ? json_deep_copy(m) : json_pack("{s:s, s:n}", "role", "assistant", "content");
    }
    json_t *m = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(m, "content", l->content.len ? json_stringn(l->content.data, l->content.len) : json_null());
    if (json_array_size(l->acc_calls)) {
        json_t *calls = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(l->acc_calls, i, a)
            json_array_append_new(calls, json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", json_object_get(a, "id"), "type",
                                                   "function", "function", "name", json_object_get(a, "name"),
                                                   "arguments", json_object_get(a, "arguments")));
        json_object_set_new(m, "tool_calls", calls);
    }
    return m;
}

static json_t *summed_usage(struct lx_toolloop *l)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)l->prompt_tokens, "completion_tokens",
                     (json_int_t)l->completion_tokens, "total_tokens",
                     (json_int_t)(l->prompt_tokens + l->completion_tokens));
}

/* The answer goes to the client: the last round's, with what the loop did. */
static void answer(struct lx_toolloop *l, json_t *completion, json_t *msg, const char *note)
{
    if (l->stream) {
        if (note)
            send_delta(l, json_pack("{s:s}", "content", note), NULL);
        size_t i;
        json_t *tc;
        json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
            json_t *fn = json_object_get(tc, "function");
            send_delta(l, json_pack("{s:[{s:i, s:O, s:s, s:{s:O, s:O}}]}", "tool_calls", "index", (int)i, "id",
                                    json_object_get(tc, "id"), "type", "function", "function", "name",
                                    json_object_get(fn, "name"), "arguments", json_object_get(fn, "arguments")),
                       NULL);
        }
        const char *fr = json_object_get(msg, "tool_calls") ? "tool_calls" : note ? "stop" : l->finish;
        send_delta(l, json_object(), fr ? fr : "stop");
        if (l->include_usage) {
            json_t *chunk = chunk_new(l, json_array());
            json_object_set_new(chunk, "usage", summed_usage(l));
            l->ops->on_chunk(l->owner, chunk);
            json_decref(chunk);
        }
        json_decref(msg);
        json_decref(completion);
        finish(l, NULL, NULL);
        return;
    }
    json_t *choice = json_array_get(json_object_get(completion, "choices"), 0);
    if (note) {
        json_object_set_new(msg, "content", json_string(note));
        json_object_del(msg, "tool_calls");
        json_object_set_new(choice, "finish_reason", json_string("stop"));
    }
    json_object_set_new(choice, "message", msg);
    if (json_object_get(msg, "tool_calls"))
        json_object_set_new(choice, "finish_reason", json_string("tool_calls"));
    json_object_set_new(completion, "usage", summed_usage(l));
    json_t *llmux = json_pack("{s:i, s:O}", "tool_rounds", l->rounds, "tool_calls", l->log);
    if (json_array_size(l->texts))
        json_object_set(llmux, "texts", l->texts);
    json_object_set_new(completion, "llmux", llmux);
    finish(l, completion, NULL);
}

static void run_tools(struct lx_toolloop *l, json_t *msg);

/* A function tool of the client's own (not one llmux made of a server tool). */
static bool client_declared(struct lx_toolloop *l, const char *name)
{
    if (!name || lx_toolset_find(&l->ts, name))
        return false;
    size_t i;
    json_t *t;
    json_array_foreach(l->ts.tools, i, t) {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

static void round_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct lx_toolloop *l = owner;
    l->exec = NULL;
    if (err) {
        json_decref(completion);
        finish(l, NULL, err);
        return;
    }
    if (completion) {
        note_usage(l, json_object_get(completion, "usage"));
        if (!l->id && json_is_string(json_object_get(completion, "id")))
            l->id = lx_strdup(json_string_value(json_object_get(completion, "id")));
        const char *fr = json_string_value(json_object_get(json_array_get(json_object_get(completion, "choices"), 0),
                                                          "finish_reason"));
        free(l->finish);
        l->finish = fr ? lx_strdup(fr) : NULL;
    }
    l->prompt_tokens += l->round_prompt;
    l->completion_tokens += l->round_completion;
    l->round_prompt = l->round_completion = 0;
    json_t *msg = round_message(l, completion);
    json_t *calls = json_object_get(msg, "tool_calls");
    if (!json_array_size(calls)) {
        json_object_del(msg, "tool_calls");
        answer(l, completion, msg, NULL);
        return;
    }
    /* A call of a tool the client declared ends the loop: the client runs its tools. Server calls of that
     * turn cannot travel with it (llmux keeps no state between requests), so they are left out. */
    json_t *client = json_array();
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
        const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
        if (client_declared(l, name))
            json_array_append(client, tc);
    }
    if (json_array_size(client)) {
        json_object_set_new(msg, "tool_calls", client);
        answer(l, completion, msg, NULL);
        return;
    }
    json_decref(client);
    if (l->rounds >= l->max_rounds) {
        char *note = lx_sprintf("[llmux stopped after %d rounds of tool calls (max_tool_rounds); the model was "
                                "still calling tools]", l->rounds);
        json_object_del(msg, "tool_calls");
        answer(l, completion, msg, note);
        free(note);
        return;
    }
    json_decref(completion);
    run_tools(l, msg);
}

static const struct lx_exec_ops round_ops = {
    .on_commit = round_commit,
    .on_chunk = round_chunk,
    .on_done = round_done,
    .can_write = round_can_write,
};

static void round_start_cb(void *arg)
{
    struct lx_toolloop *l = arg;
    struct lx_error err = {0};
    struct lx_plan plan;
    if (lx_route_plan(l->cfg->engine, l->model, &plan, &err) != LX_OK) {
        finish(l, NULL, &err);
        lx_error_clear(&err);
        return;
    }
    lx_buf_reset(&l->content);
    json_array_clear(l->acc_calls);
    free(l->finish);
    l->finish = NULL;
    struct lx_chat chat = {
        .kind = LX_CALL_CHAT,
        .body = l->body,
        .stream = l->stream,
        .include_usage = true, /* each round's usage comes back to be summed */
        .req_id = l->req_id,
        .request_id = l->request_id,
        .origin = l->origin,
    };
    l->exec = lx_exec_start(&plan, &chat, l->deadline, l->deadline_ms, &round_ops, l);
    if (l->tally)
        lx_exec_set_tally(l->exec, l->tally);
}

/* ---- tool calls ---- */

static void tools_done(struct lx_toolloop *l)
{
    /* A call stopped by the request's deadline ends the request: another round would start with no time
     * left (or, with a timer that fired a hair early, race the deadline and sometimes win). */
    for (size_t i = 0; i < l->n_runs; i++) {
        if (l->runs[i].at_deadline && strcmp(l->runs[i].outcome, "timeout") == 0) {
            struct lx_error e = {0};
            lx_error_set(&e, 504, "timeout_error", NULL, "deadline_exceeded",
                         "The request's deadline of %ld ms (x-llmux-timeout-ms) passed while tools ran.", l->deadline_ms);
            runs_free(l);
            finish(l, NULL, &e);
            lx_error_clear(&e);
            return;
        }
    }
    json_t *messages = json_object_get(l->body, "messages");
    for (size_t i = 0; i < l->n_runs; i++)
        json_array_append_new(messages, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", l->runs[i].id,
                                                  "content", l->runs[i].output));
    runs_free(l);
    lx_timer_stop(l->idle);
    lx_timer_start(l->kick, 0);
}

static void idle_cb(void *arg)
{
    struct lx_toolloop *l = arg;
    if (!l->ops->on_idle)
        return;
    lx_timer_start(l->idle, LX_TOOL_IDLE_MS);
    l->ops->on_idle(l->owner); /* last: the owner may cancel the loop from here */
}

/* The bus's four outcomes of a tool call (docs/events.md); error names what failed. */
static const char *bus_outcome(const char *outcome, const char **error)
{
    *error = NULL;
    if (strcmp(outcome, "ok") == 0 || strcmp(outcome, "timeout") == 0 || strcmp(outcome, "cancelled") == 0)
        return outcome;
    *error = outcome;
    return "error";
}

static void run_finished(struct tool_run *r)
{
    struct lx_toolloop *l = r->l;
    const char *error;
    const char *outcome = bus_outcome(r->outcome, &error);
    lx_ev_tool_finished(l->origin, r->ref ? r->ref->server : "", r->ref ? r->ref->tool : r->name, outcome, error,
                        &r->span);
    struct lx_tool_event ev = {.round = l->rounds, .call_id = r->id, .server = r->ref ? r->ref->server : NULL,
                               .tool = r->ref ? r->ref->tool : r->name, .arguments = r->arguments, .finished = true,
                               .outcome = r->outcome, .duration_ms = r->duration_ms, .output = r->output};
    if (l->ops->on_tool)
        l->ops->on_tool(l->owner, &ev);
    json_t *entry = json_pack("{s:i, s:s, s:s?, s:s, s:s, s:s, s:s, s:f, s:s}", "round", l->rounds, "id", r->id,
                              "server", ev.server, "tool", ev.tool, "name", r->name, "arguments", r->arguments,
                              "outcome", r->outcome, "duration_ms", r->duration_ms, "output", r->output);
    json_array_append(l->log, entry);
    if (l->stream) {
        json_object_set_new(entry, "type", json_string("tool_call.finished"));
        send_activity(l, entry);
    } else {
        json_decref(entry);
    }
    if (--l->n_left == 0)
        tools_done(l);
}

static void run_result_cb(void *ctx, const struct lx_mcp_result *res)
{
    struct tool_run *r = ctx;
    r->call = NULL;
    r->outcome = lx_mcp_outcome_name(res->outcome);
    r->duration_ms = res->duration_ms;
    char *text = res->result ? lx_mcp_result_text(res->result, r->l->max_result) : NULL;
    switch (res->outcome) {
    case LX_MCP_OK:
        r->output = text;
        text = NULL;
        break;
    case LX_MCP_TOOL_ERROR:
        r->output = lx_sprintf("Error (the tool reported a failure): %s", text ? text : res->detail);
        break;
    case LX_MCP_TIMEOUT:
        r->output = lx_sprintf("Error: the tool did not answer in time (%s); it was cancelled.", res->detail);
        break;
    default:
        r->output = lx_sprintf("Error: %s", res->detail ? res->detail : "the tool could not be called");
        break;
    }
    free(text);
    run_finished(r);
}

static void run_tools(struct lx_toolloop *l, json_t *msg)
{
    l->rounds++;
    json_t *text = json_object_get(msg, "content");
    if (!l->stream && json_is_string(text) && json_string_length(text))
        json_array_append_new(l->texts, json_pack("{s:i, s:O}", "round", l->rounds, "content", text));
    json_t *calls = json_object_get(msg, "tool_calls");
    l->n_runs = l->n_left = json_array_size(calls);
    l->runs = lx_calloc(l->n_runs + 1, sizeof *l->runs);
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
        struct tool_run *r = &l->runs[i];
        json_t *fn = json_object_get(tc, "function");
        r->l = l;
        r->id = lx_strdup(json_is_string(json_object_get(tc, "id")) ? json_string_value(json_object_get(tc, "id")) : "");
        r->name = lx_strdup(json_is_string(json_object_get(fn, "name")) ? json_string_value(json_object_get(fn, "name")) : "");
        r->arguments = lx_strdup(json_is_string(json_object_get(fn, "arguments"))
                                     ? json_string_value(json_object_get(fn, "arguments"))
                                     : "{}");
        r->ref = lx_toolset_find(&l->ts, r->name);
    }
    json_array_append_new(json_object_get(l->body, "messages"), msg);
    /* Every call starts before any result is handled: the MCP client answers from the loop, never from
     * here; calls that cannot be made are answered right after. */
    size_t n = l->n_runs;
    bool *now = lx_calloc(n + 1, sizeof *now);
    for (i = 0; i < n; i++) {
        struct tool_run *r = &l->runs[i];
        const char *server = r->ref ? r->ref->server : NULL, *tool = r->ref ? r->ref->tool : r->name;
        struct lx_tool_event ev = {.round = l->rounds, .call_id = r->id, .server = server, .tool = tool,
                                   .arguments = r->arguments};
        if (l->ops->on_tool)
            l->ops->on_tool(l->owner, &ev);
        lx_ev_tool_started(l->origin, server ? server : "", tool, &r->span);
        if (l->stream)
            send_activity(l, json_pack("{s:s, s:i, s:s, s:s?, s:s, s:s, s:s}", "type", "tool_call.started", "round",
                                       l->rounds, "id", r->id, "server", server, "tool", tool, "name", r->name,
                                       "arguments", r->arguments));
        json_t *args = *r->arguments ? json_loads(r->arguments, 0, NULL) : json_object();
        struct lx_mcp_server *srv = server ? lx_mcp_find(server) : NULL;
        now[i] = true;
        if (l->max_calls && l->calls_run >= l->max_calls) {
            r->outcome = "limit";
            r->output = lx_sprintf("Error: not run: this response's max_tool_calls (%ld) was reached.", l->max_calls);
        } else if (!r->ref) {
            r->outcome = "not_found";
            r->output = lx_sprintf("Error: there is no tool named %s.", r->name);
        } else if (!json_is_object(args)) {
            r->outcome = "bad_arguments";
            r->output = lx_strdup("Error: the arguments are not a JSON object; the tool was not called.");
        } else if (!srv) {
            r->outcome = "unavailable";
            r->output = lx_sprintf("Error: MCP server %s is not configured any more.", server);
        } else {
            long timeout = lx_mcp_conf_tool_timeout(lx_mcp_server_conf(srv), tool);
            if (l->deadline) {
                long left = (long)((int64_t)l->deadline - (int64_t)lx_now_ms());
                if (left < timeout) {
                    timeout = left > 1 ? left : 1;
                    r->at_deadline = true;
                }
            }
            l->calls_run++;
            r->call = lx_mcp_call_tool(srv, tool, args, timeout, run_result_cb, r);
            now[i] = false;
        }
        json_decref(args);
    }
    bool waiting = false;
    for (i = 0; i < n && l->runs; i++) {
        if (now[i])
            run_finished(&l->runs[i]); /* the last one starts the next round (from the loop) */
        else
            waiting = true;
    }
    free(now);
    if (l->max_calls && l->calls_run >= l->max_calls && l->body)
        json_object_set_new(l->body, "tool_choice", json_string("none")); /* the next round answers */
    if (waiting && l->stream && l->runs)
        lx_timer_start(l->idle, LX_TOOL_IDLE_MS);
}

/* ---- the owner's API ---- */

struct lx_toolloop *lx_toolloop_start(const struct lx_toolloop_params *p, const struct lx_toolloop_ops *ops,
                                      void *owner, struct lx_error *err)
{
    struct lx_plan plan;
    if (lx_route_plan(p->cfg->engine, p->model, &plan, err) != LX_OK)
        return NULL;
    lx_plan_free(&plan);
    struct lx_toolloop *l = lx_calloc(1, sizeof *l);
    l->cfg = lx_config_ref(p->cfg);
    l->model = lx_strdup(p->model);
    l->ts = *p->ts;
    memset((void *)p->ts, 0, sizeof *p->ts);
    l->body = json_deep_copy(p->body);
    json_object_set(l->body, "tools", l->ts.tools);
    if (p->stream)
        json_object_set_new(l->body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    l->stream = p->stream;
    l->include_usage = p->include_usage;
    l->req_id = p->req_id;
    l->request_id = p->request_id ? lx_strdup(p->request_id) : NULL;
    l->deadline = p->deadline;
    l->deadline_ms = p->deadline_ms;
    l->max_rounds = p->max_rounds > 0 ? p->max_rounds : 8;
    l->max_calls = p->max_calls > 0 ? p->max_calls : 0;
    l->max_result = p->max_result_bytes;
    l->tally = p->tally;
    l->origin = p->origin;
    l->ops = ops;
    l->owner = owner;
    l->created = (json_int_t)lx_wall_s();
    l->acc_calls = json_array();
    l->log = json_array();
    l->texts = json_array();
    l->kick = lx_timer_new(round_start_cb, l);
    l->idle = lx_timer_new(idle_cb, l);
    lx_timer_start(l->kick, 0);
    return l;
}

void lx_toolloop_cancel(struct lx_toolloop *l)
{
    if (!l)
        return;
    if (l->exec)
        lx_exec_cancel(l->exec);
    loop_free(l);
}

void lx_toolloop_resume(struct lx_toolloop *l)
{
    if (l && l->exec)
        lx_exec_resume(l->exec);
}

int lx_toolloop_tool_calls(const struct lx_toolloop *l)
{
    return (int)json_array_size(l->log);
}
