/* The tool relay: like relay.c, one answer written through the request's reply, but produced by the
 * engine's tool loop, after the request's MCP servers have their tool lists (a server still starting is
 * waited for, up to mcp.settle_timeout_ms and the request's deadline). Tool calls are counted in the
 * access log's tally and in /metrics. */
#include "tools.h"
#include "relay.h"
#include "reply.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/metrics.h"
#include "../engine/conf.h"
#include "../engine/mcp.h"
#include "../engine/toolloop.h"
#include "../io/loop.h"
#include "../server/req.h"

#include <stdlib.h>
#include <string.h>

struct toolrun {
    struct lx_req_handler handler;
    struct lx_req *req;              /* hold: released in run_end */
    struct lx_reply reply;
    struct lx_toolset_spec spec;     /* owned */
    json_t *body;                    /* owned */
    struct lx_tools_wait *wait;      /* owned until the servers settled */
    struct lx_toolloop *loop;        /* NULL before it starts and once done */
    uint64_t at;
    long ms;
};

/* Waiting for a request's servers to have their tool lists. */
struct lx_tools_wait {
    struct lx_mcp_wait **waits;      /* owned array; an entry is NULL once that server settled */
    size_t n_waits, pending;
    struct settle_arg *args;         /* owned: one per wait, and one for the kick */
    struct lx_timer *kick;           /* owned: the extra hold on pending, dropped from the loop */
    void (*cb)(void *arg);
    void *arg;
};

struct settle_arg {
    struct lx_tools_wait *w;
    size_t i;
};

static bool known(const char *name, const char **url)
{
    struct lx_mcp_server *s = lx_mcp_find(name);
    *url = s && lx_mcp_server_conf(s)->transport == LX_MCP_HTTP ? lx_mcp_server_conf(s)->url : NULL;
    return s != NULL;
}

static json_t *listed(const char *name)
{
    struct lx_mcp_server *s = lx_mcp_find(name);
    return s ? lx_mcp_server_tools(s) : NULL;
}

int lx_tools_parse(struct lx_req *req, const char *model, json_t *body, struct lx_toolset_spec *spec,
                   struct lx_error *err)
{
    const struct lx_alias *a = model ? lx_engine_alias(req->cfg->engine, model) : NULL;
    return lx_toolset_parse(json_object_get(body, "tools"), a ? (const char *const *)a->mcp : NULL, a ? a->n_mcp : 0,
                            known, spec, err);
}

/* ---- waiting for the servers ---- */

void lx_tools_wait_cancel(struct lx_tools_wait *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_waits; i++)
        lx_mcp_wait_cancel(w->waits[i]);
    free(w->waits);
    free(w->args);
    lx_timer_free(w->kick);
    free(w);
}

static void settled_cb(void *ctx)
{
    struct settle_arg *a = ctx;
    struct lx_tools_wait *w = a->w;
    if (a->i < w->n_waits)
        w->waits[a->i] = NULL;
    if (--w->pending == 0) {
        void (*cb)(void *) = w->cb;
        void *arg = w->arg;
        lx_tools_wait_cancel(w);
        cb(arg);
    }
}

static void kick_cb(void *arg)
{
    struct lx_tools_wait *w = arg;
    settled_cb(&w->args[w->n_waits]);
}

struct lx_tools_wait *lx_tools_wait(struct lx_req *req, const struct lx_toolset_spec *spec, uint64_t at,
                                    void (*cb)(void *arg), void *arg)
{
    long wait_ms = req->cfg->mcp->settle_timeout_ms;
    if (at) {
        long left = (long)((int64_t)at - (int64_t)lx_now_ms());
        if (left < wait_ms)
            wait_ms = left > 0 ? left : 0;
    }
    struct lx_tools_wait *w = lx_calloc(1, sizeof *w);
    w->cb = cb;
    w->arg = arg;
    /* One wait per server (a settled one answers from the loop at once), plus one that holds the count
     * above zero until every wait is registered. */
    w->n_waits = spec->n_servers;
    w->waits = lx_calloc(w->n_waits + 1, sizeof *w->waits);
    w->args = lx_calloc(w->n_waits + 1, sizeof *w->args);
    w->pending = w->n_waits + 1;
    for (size_t i = 0; i <= w->n_waits; i++)
        w->args[i] = (struct settle_arg){w, i};
    for (size_t i = 0; i < w->n_waits; i++)
        w->waits[i] = lx_mcp_when_settled(lx_mcp_find(spec->servers[i].name), wait_ms, settled_cb, &w->args[i]);
    w->kick = lx_timer_new(kick_cb, w);
    lx_timer_start(w->kick, 0);
    return w;
}

/* ---- the loop ---- */

void lx_tools_count(struct lx_req *req, const struct lx_tool_event *ev)
{
    if (!ev->finished)
        return;
    req->tally.tool_calls++;
    if (strcmp(ev->outcome, "ok") != 0)
        req->tally.tool_errors++;
    /* Labels stay bounded: a tool no server offers is "other". */
    lx_metrics_tool_call(ev->server ? ev->server : "none", ev->server ? ev->tool : "other", ev->outcome,
                         ev->duration_ms / 1000.0);
}

struct lx_toolloop *lx_tools_loop_start(struct lx_req *req, const struct lx_toolset_spec *spec,
                                        const struct lx_tools_turn *turn, const struct lx_toolloop_ops *ops,
                                        void *owner, struct lx_error *err)
{
    struct lx_toolset ts;
    lx_toolset_build(spec, listed, &ts);
    const struct lx_mcp_section *m = req->cfg->mcp;
    struct lx_toolloop_params p = {
        .cfg = req->cfg,
        .model = turn->model,
        .body = turn->body,
        .ts = &ts,
        .stream = turn->stream,
        .include_usage = turn->include_usage,
        .req_id = req->id,
        .request_id = req->request_id,
        .deadline = turn->deadline_at,
        .deadline_ms = turn->deadline_ms,
        .max_rounds = (int)m->max_tool_rounds,
        .max_calls = turn->max_calls,
        .max_result_bytes = (size_t)m->max_result_bytes,
        .tally = &req->tally,
        .origin = &req->origin,
    };
    struct lx_toolloop *l = lx_toolloop_start(&p, ops, owner, err);
    lx_toolset_free(&ts);
    return l;
}

json_t *lx_tools_listed(const struct lx_toolset_spec *spec)
{
    struct lx_toolset ts;
    lx_toolset_build(spec, listed, &ts);
    json_t *out = json_array();
    for (size_t i = 0; i < spec->n_servers; i++) {
        const char *name = spec->servers[i].name;
        struct lx_mcp_server *s = lx_mcp_find(name);
        json_t *tools = json_array();
        for (size_t k = 0; k < ts.n_refs; k++)
            if (strcmp(ts.refs[k].server, name) == 0 && lx_mcp_server_tool(s, ts.refs[k].tool))
                json_array_append(tools, lx_mcp_server_tool(s, ts.refs[k].tool));
        json_t *entry = json_pack("{s:s, s:o}", "server_label", name, "tools", tools);
        if (!s || !lx_mcp_server_tools(s))
            json_object_set_new(entry, "error", json_pack("s", "The MCP server has no tool list: it is not ready "
                                                               "(GET /v1/mcp/servers says why)."));
        json_array_append_new(out, entry);
    }
    lx_toolset_free(&ts);
    return out;
}

/* ---- chat's owner of the loop ---- */

static void run_end(struct toolrun *t)
{
    struct lx_req *req = t->req;
    lx_tools_wait_cancel(t->wait);
    lx_toolloop_cancel(t->loop);
    lx_toolset_spec_free(&t->spec);
    json_decref(t->body);
    lx_req_set_handler(req, NULL);
    lx_reply_clear(&t->reply);
    free(t);
    lx_req_release(req);
}

static void loop_commit(void *owner, const char *label, const char *dropped)
{
    struct toolrun *t = owner;
    lx_req_add_header(t->req, "X-Llmux-Model", label);
    if (dropped)
        lx_req_add_header(t->req, "X-Llmux-Dropped-Params", dropped);
}

static void loop_chunk(void *owner, json_t *chunk)
{
    lx_reply_chunk(&((struct toolrun *)owner)->reply, chunk);
}

static void loop_tool(void *owner, const struct lx_tool_event *ev)
{
    lx_tools_count(((struct toolrun *)owner)->req, ev);
}

static void loop_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct toolrun *t = owner;
    t->loop = NULL;
    if (err)
        lx_reply_error(&t->reply, err);
    else if (completion)
        lx_reply_completion(&t->reply, completion);
    else
        lx_reply_end(&t->reply);
    run_end(t);
}

static bool loop_can_write(void *owner)
{
    return lx_req_can_write(((struct toolrun *)owner)->req);
}

static void loop_idle(void *owner)
{
    lx_reply_keepalive(&((struct toolrun *)owner)->reply);
}

static const struct lx_toolloop_ops lx_tools_loop_ops = {
    .on_commit = loop_commit,
    .on_chunk = loop_chunk,
    .on_tool = loop_tool,
    .on_done = loop_done,
    .on_idle = loop_idle,
    .can_write = loop_can_write,
};

static void run_loop(void *arg)
{
    struct toolrun *t = arg;
    t->wait = NULL;
    struct lx_tools_turn turn = {
        .model = t->reply.rq.model,
        .body = t->body,
        .stream = t->reply.rq.stream,
        .include_usage = t->reply.rq.include_usage,
        .deadline_at = t->at,
        .deadline_ms = t->ms,
    };
    struct lx_error err = {0};
    t->loop = lx_tools_loop_start(t->req, &t->spec, &turn, &lx_tools_loop_ops, t, &err);
    if (!t->loop) {
        lx_reply_error(&t->reply, &err);
        lx_error_clear(&err);
        run_end(t);
    }
}

static void run_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    (void)req;
    struct toolrun *t = LX_CONTAINER_OF(h, struct toolrun, handler);
    /* The client left (or the server ends the request): the model call and every tool call stop, and
     * no further round starts. */
    if (why)
        lx_reply_error(&t->reply, why);
    run_end(t);
}

static void run_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    lx_toolloop_resume(LX_CONTAINER_OF(h, struct toolrun, handler)->loop);
}

static const struct lx_req_handler lx_tools_handler = {.on_abort = run_abort, .on_drain = run_drain};

void lx_tools_start(struct lx_req *req, const struct lx_dialect *d, struct lx_dialect_req *rq, json_t *body,
                    struct lx_toolset_spec *spec)
{
    struct lx_error err = {0};
    uint64_t at;
    long ms;
    if (lx_relay_deadline(req, &at, &ms, &err) != LX_OK) {
        json_decref(body);
        lx_toolset_spec_free(spec);
        lx_dialect_req_clear(rq);
        lx_reply_fail(req, d, &err);
        lx_error_clear(&err);
        return;
    }
    struct toolrun *t = lx_calloc(1, sizeof *t);
    t->req = lx_req_hold(req);
    lx_reply_init(&t->reply, req, d, rq);
    t->handler = lx_tools_handler;
    lx_req_set_handler(req, &t->handler);
    t->body = body;
    t->spec = *spec;
    memset(spec, 0, sizeof *spec);
    t->at = at;
    t->ms = ms;
    t->wait = lx_tools_wait(req, &t->spec, at, run_loop, t);
}

void lx_mcp_servers_handle(struct lx_req *req)
{
    json_t *data = json_array();
    for (size_t i = 0; i < lx_mcp_count(); i++)
        json_array_append_new(data, lx_mcp_server_status(lx_mcp_at(i)));
    lx_req_respond_json(req, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

void lx_mcp_tools_handle(struct lx_req *req)
{
    struct lx_toolset_spec spec = {.client_tools = json_array()};
    for (size_t i = 0; i < lx_mcp_count(); i++) {
        spec.servers = lx_realloc(spec.servers, (spec.n_servers + 1) * sizeof *spec.servers);
        spec.servers[spec.n_servers++] = (struct lx_toolset_server){lx_strdup(lx_mcp_server_name(lx_mcp_at(i))), NULL, 0};
    }
    struct lx_toolset ts;
    lx_toolset_build(&spec, listed, &ts);
    json_t *data = json_array();
    for (size_t i = 0; i < ts.n_refs; i++) {
        json_t *tool = lx_mcp_server_tool(lx_mcp_find(ts.refs[i].server), ts.refs[i].tool);
        json_t *o = json_pack("{s:s, s:s, s:s}", "name", ts.refs[i].exposed, "server", ts.refs[i].server, "tool",
                              ts.refs[i].tool);
        const char *keys[] = {"title", "description", "inputSchema", "outputSchema", "annotations"};
        for (size_t k = 0; k < LX_ARRAY_LEN(keys); k++)
            if (json_object_get(tool, keys[k]))
                json_object_set(o, keys[k], json_object_get(tool, keys[k]));
        json_array_append_new(data, o);
    }
    lx_toolset_free(&ts);
    lx_toolset_spec_free(&spec);
    lx_req_respond_json(req, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}
