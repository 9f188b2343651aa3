/* The MCP client's core: the registry of live servers, each one's life (start, era probe, handshake,
 * ready, backoff), JSON-RPC requests and their timeouts, the messages servers send, and tool calls.
 * Transports (mcp_http.c, mcp_stdio.c) only move messages. Moves to src/engine/mcp.c.
 *
 * Lifetimes: a server removed by lx_mcp_apply or lx_mcp_shutdown is marked stopping, its transport
 * stopped and its calls failed at once; the object itself is freed from the loop's next turn, so a
 * callback further up the stack still holds valid memory. Results reach callers from the loop, never
 * from inside libcurl (the HTTP transport dispatches from deferred calls). */
#include "mcp_internal.h"
#include "../core/common.h"
#include "../core/log.h"
#include "../io/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LX_MCP_BACKOFF_MIN_MS 1000
#define LX_MCP_BACKOFF_MAX_MS 60000
#define LX_MCP_STABLE_MS 30000 /* up this long: the next failure starts the backoff over */

struct lx_mcp_call {
    struct lx_mcp_server *srv;
    char *tool;            /* owned */
    json_t *args;          /* owned */
    lx_mcp_call_cb cb;
    void *ctx;
    struct mcp_rpc *rpc;   /* in flight, or NULL */
    struct lx_timer *timer;/* owned: the call's timeout */
    double started_ms;
    bool delivering;       /* a deferred result is queued: cancel only forgets the callback */
    bool cancelled;
    enum lx_mcp_outcome outcome; /* what the deferred delivery reports */
    char *detail;          /* owned */
    struct lx_mcp_call *prev, *next; /* in srv->queued or srv->running */
};

struct lx_mcp_wait {
    struct lx_mcp_server *srv;
    void (*cb)(void *ctx);
    void *ctx;
    struct lx_timer *timer; /* owned */
    bool fired;
    struct lx_mcp_wait *prev, *next;
};

static struct lx_mcp_server **lx_servers;
static size_t lx_n_servers;
struct lx_mcp_stats mcp_counters;

static const char *const lx_state_names[MCP_STATE_COUNT] = {"disabled", "starting", "connecting", "ready",
                                                             "backoff", "stopped"};
static const char *const lx_outcome_names[LX_MCP_OUTCOME_COUNT] = {"ok", "tool_error", "rpc_error", "timeout",
                                                                   "unavailable"};

const char *mcp_state_name(enum mcp_state s)
{
    return s < MCP_STATE_COUNT ? lx_state_names[s] : "?";
}

const char *lx_mcp_outcome_name(enum lx_mcp_outcome o)
{
    return o < LX_MCP_OUTCOME_COUNT ? lx_outcome_names[o] : "?";
}

const struct lx_mcp_stats *lx_mcp_stats(void)
{
    return &mcp_counters;
}

bool mcp_modern(const struct lx_mcp_server *s)
{
    return s->era == MCP_ERA_MODERN || s->probing;
}

static const char *str_or(json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static void set_error(struct lx_mcp_server *s, const char *why)
{
    free(s->last_error);
    s->last_error = why ? lx_strdup(why) : NULL;
}

/* ---- JSON-RPC requests ---- */

static json_t *client_info(void)
{
    return json_pack("{s:s, s:s}", "name", "llmux", "version", LX_VERSION);
}

json_t *mcp_request_json(struct lx_mcp_server *s, const char *method, json_t *params, json_int_t *id)
{
    if (!params)
        params = json_object();
    if (mcp_modern(s)) {
        json_t *meta = json_object_get(params, "_meta");
        if (!json_is_object(meta)) {
            meta = json_object();
            json_object_set_new(params, "_meta", meta);
        }
        json_object_set_new(meta, LX_MCP_META_VERSION, json_string(LX_MCP_V2026));
        json_object_set_new(meta, LX_MCP_META_CLIENT, client_info());
        json_object_set_new(meta, LX_MCP_META_CAPS, json_object());
    }
    *id = ++s->next_id;
    /* json_pack "o" steals params. */
    return json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", (json_int_t)*id, "method", method, "params",
                     params);
}

static void rpc_unlink(struct mcp_rpc *rpc)
{
    struct lx_mcp_server *s = rpc->srv;
    if (rpc->prev)
        rpc->prev->next = rpc->next;
    else if (s->rpcs == rpc)
        s->rpcs = rpc->next;
    if (rpc->next)
        rpc->next->prev = rpc->prev;
    rpc->prev = rpc->next = NULL;
}

static void rpc_free(struct mcp_rpc *rpc)
{
    lx_timer_free(rpc->timer);
    json_decref(rpc->msg);
    for (size_t i = 0; i < rpc->n_headers; i++)
        free(rpc->headers[i]);
    free(rpc->headers);
    free(rpc);
}

/* The request is over: tell the transport, then the owner. */
static void rpc_complete(struct mcp_rpc *rpc, const struct mcp_reply *r, bool cancel_stream)
{
    struct lx_mcp_server *s = rpc->srv;
    rpc_unlink(rpc);
    if (rpc->tx)
        s->tx->finish(s, rpc, cancel_stream);
    rpc->tx = NULL;
    if (rpc->cb)
        rpc->cb(s, rpc->ctx, r);
    rpc_free(rpc);
}

/* Tell the server a request is abandoned: notifications/cancelled, except where closing the response
 * stream already says so (2026-07-28 over HTTP), and never for initialize. */
static void send_cancel(struct lx_mcp_server *s, struct mcp_rpc *rpc, const char *reason)
{
    if (strcmp(rpc->method, "initialize") == 0 || (s->tx == &lx_mcp_http_transport && s->era == MCP_ERA_MODERN))
        return;
    mcp_counters.cancels_sent++;
    mcp_counters.notifications_sent++;
    s->tx->notify(s, json_pack("{s:s, s:s, s:{s:I, s:s}}", "jsonrpc", "2.0", "method", "notifications/cancelled",
                               "params", "requestId", (json_int_t)rpc->id, "reason", reason));
}

/* Abandon a request: no callback. */
static void rpc_cancel(struct mcp_rpc *rpc, const char *reason)
{
    struct lx_mcp_server *s = rpc->srv;
    if (!rpc->parked)
        send_cancel(s, rpc, reason);
    rpc->cb = NULL;
    struct mcp_reply r = {.fail = MCP_FAIL_TIMEOUT, .detail = reason};
    rpc_complete(rpc, &r, true);
}

static void rpc_timeout_cb(void *arg)
{
    struct mcp_rpc *rpc = arg;
    struct lx_mcp_server *s = rpc->srv;
    if (!rpc->parked)
        send_cancel(s, rpc, "timeout");
    char why[160];
    snprintf(why, sizeof why, "no answer to %s within the timeout", rpc->method);
    struct mcp_reply r = {.fail = MCP_FAIL_TIMEOUT, .detail = why};
    rpc_complete(rpc, &r, true);
}

void mcp_rpc_send(struct lx_mcp_server *s, struct mcp_rpc *rpc)
{
    mcp_counters.rpcs_sent++;
    rpc->parked = false;
    s->tx->send(s, rpc);
}

struct mcp_rpc *mcp_rpc_start(struct lx_mcp_server *s, const char *method, json_t *params, long timeout_ms,
                              mcp_rpc_cb cb, void *ctx)
{
    struct mcp_rpc *rpc = lx_calloc(1, sizeof *rpc);
    rpc->srv = s;
    rpc->msg = mcp_request_json(s, method, params, &rpc->id);
    rpc->method = json_string_value(json_object_get(rpc->msg, "method"));
    rpc->cb = cb;
    rpc->ctx = ctx;
    if (timeout_ms > 0) {
        rpc->timer = lx_timer_new(rpc_timeout_cb, rpc);
        lx_timer_start(rpc->timer, timeout_ms);
    }
    rpc->next = s->rpcs;
    if (s->rpcs)
        s->rpcs->prev = rpc;
    s->rpcs = rpc;
    return rpc;
}

static void session_renew(struct lx_mcp_server *s);
static void go_down(struct lx_mcp_server *s, const char *why);

void mcp_rpc_fail(struct mcp_rpc *rpc, enum mcp_fail fail, int http_status, json_t *error, const char *detail)
{
    struct lx_mcp_server *s = rpc->srv;
    if (fail == MCP_FAIL_SESSION && !rpc->resent && s->era == MCP_ERA_LEGACY && strcmp(rpc->method, "initialize")) {
        /* The server forgot the session: a new one, and this request goes again once it is there. */
        if (rpc->tx)
            s->tx->finish(s, rpc, false);
        rpc->tx = NULL;
        rpc->resent = true;
        rpc->parked = true;
        session_renew(s);
        return;
    }
    struct mcp_reply r = {.error = error, .http_status = http_status, .fail = fail, .detail = detail};
    rpc_complete(rpc, &r, false);
    /* A server that cannot be reached is down for every request: try again after a backoff. A connection
     * that broke before any answer may mean the same (the process died): look at once, with a tools/list
     * that fails to connect if so. */
    if (fail == MCP_FAIL_CONNECT && s->state == MCP_READY)
        go_down(s, detail ? detail : "cannot reach the server");
    else if (fail == MCP_FAIL_TRANSPORT && http_status == 0 && s->state == MCP_READY && !s->stopping)
        mcp_tools_list(s);
}

static struct mcp_rpc *rpc_find(struct lx_mcp_server *s, json_t *id)
{
    if (!json_is_integer(id))
        return NULL;
    for (struct mcp_rpc *r = s->rpcs; r; r = r->next)
        if (r->id == json_integer_value(id))
            return r;
    return NULL;
}

/* ---- calls ---- */

static void call_unlink(struct lx_mcp_call *c)
{
    struct lx_mcp_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else if (s && s->queued == c)
        s->queued = c->next;
    else if (s && s->running == c)
        s->running = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void call_push(struct lx_mcp_call **list, struct lx_mcp_call *c)
{
    c->next = *list;
    if (*list)
        (*list)->prev = c;
    *list = c;
}

static void call_free(struct lx_mcp_call *c)
{
    lx_timer_free(c->timer);
    json_decref(c->args);
    free(c->tool);
    free(c->detail);
    free(c);
}

static void call_report(struct lx_mcp_call *c, enum lx_mcp_outcome o, json_t *result, const char *detail)
{
    struct lx_mcp_result r = {.outcome = o, .result = result, .detail = detail,
                              .duration_ms = lx_now_ms_f() - c->started_ms};
    c->cb(c->ctx, &r);
}

static void call_deliver_cb(void *arg)
{
    struct lx_mcp_call *c = arg;
    if (!c->cancelled)
        call_report(c, c->outcome, NULL, c->detail);
    call_free(c);
}

/* Report a result without an answer from the loop's next turn (the caller may still be in its own call). */
static void call_fail_later(struct lx_mcp_call *c, enum lx_mcp_outcome o, const char *detail)
{
    call_unlink(c);
    lx_timer_stop(c->timer);
    if (c->rpc) {
        c->rpc->cb = NULL;
        c->rpc = NULL;
    }
    c->outcome = o;
    free(c->detail);
    c->detail = lx_strdup(detail);
    c->delivering = true;
    lx_defer(call_deliver_cb, c);
}

static void call_rpc_cb(struct lx_mcp_server *s, void *ctx, const struct mcp_reply *r)
{
    (void)s;
    struct lx_mcp_call *c = ctx;
    c->rpc = NULL;
    call_unlink(c);
    lx_timer_stop(c->timer);
    char why[512];
    if (r->result) {
        const char *rt = json_string_value(json_object_get(r->result, "resultType"));
        if (rt && strcmp(rt, "input_required") == 0)
            call_report(c, LX_MCP_TOOL_ERROR, r->result,
                        "the tool asked for input (sampling, elicitation or roots), which llmux does not provide");
        else
            call_report(c, json_is_true(json_object_get(r->result, "isError")) ? LX_MCP_TOOL_ERROR : LX_MCP_OK,
                        r->result, NULL);
    } else if (r->error) {
        snprintf(why, sizeof why, "%s (JSON-RPC error %" JSON_INTEGER_FORMAT ")",
                 str_or(json_object_get(r->error, "message"), "error"),
                 json_integer_value(json_object_get(r->error, "code")));
        call_report(c, LX_MCP_RPC_ERROR, NULL, why);
    } else {
        snprintf(why, sizeof why, "%s: %s", s->conf.name, r->detail ? r->detail : "no answer");
        call_report(c, r->fail == MCP_FAIL_TIMEOUT ? LX_MCP_TIMEOUT : LX_MCP_UNAVAILABLE, NULL, why);
    }
    call_free(c);
}

static void call_start_rpc(struct lx_mcp_call *c)
{
    struct lx_mcp_server *s = c->srv;
    json_t *params = json_pack("{s:s, s:O}", "name", c->tool, "arguments", c->args);
    c->rpc = mcp_rpc_start(s, "tools/call", params, 0, call_rpc_cb, c);
    if (mcp_modern(s))
        mcp_tools_call_headers(s, c->tool, c->args, c->rpc);
    call_push(&s->running, c);
    mcp_rpc_send(s, c->rpc);
}

static void call_timeout_cb(void *arg)
{
    struct lx_mcp_call *c = arg;
    char why[200];
    snprintf(why, sizeof why, "%s: no answer from tool %s within the timeout", c->srv->conf.name, c->tool);
    if (c->rpc) {
        struct mcp_rpc *rpc = c->rpc;
        c->rpc = NULL;
        rpc_cancel(rpc, "timeout");
    }
    call_unlink(c);
    call_report(c, LX_MCP_TIMEOUT, NULL, why);
    call_free(c);
}

struct lx_mcp_call *lx_mcp_call_tool(struct lx_mcp_server *s, const char *tool, json_t *arguments, long timeout_ms,
                                     lx_mcp_call_cb cb, void *ctx)
{
    struct lx_mcp_call *c = lx_calloc(1, sizeof *c);
    c->srv = s;
    c->tool = lx_strdup(tool);
    c->args = arguments ? json_deep_copy(arguments) : json_object();
    c->cb = cb;
    c->ctx = ctx;
    c->started_ms = lx_now_ms_f();
    c->timer = lx_timer_new(call_timeout_cb, c);
    lx_timer_start(c->timer, timeout_ms > 0 ? timeout_ms : lx_mcp_conf_tool_timeout(&s->conf, tool));
    char why[600];
    switch (s->state) {
    case MCP_READY:
        call_start_rpc(c);
        break;
    case MCP_STARTING:
    case MCP_NEGOTIATING:
        call_push(&s->queued, c); /* goes out when the server is ready */
        break;
    default:
        snprintf(why, sizeof why, "MCP server %s is %s%s%s", s->conf.name, mcp_state_name(s->state),
                 s->last_error ? ": " : "", s->last_error ? s->last_error : "");
        call_fail_later(c, LX_MCP_UNAVAILABLE, why);
        break;
    }
    return c;
}

void lx_mcp_call_cancel(struct lx_mcp_call *c, const char *reason)
{
    if (!c)
        return;
    if (c->delivering) {
        c->cancelled = true;
        return;
    }
    if (c->rpc) {
        struct mcp_rpc *rpc = c->rpc;
        c->rpc = NULL;
        rpc_cancel(rpc, reason ? reason : "cancelled");
    }
    call_unlink(c);
    call_free(c);
}

/* ---- waiting for a server to settle ---- */

static void wait_unlink(struct lx_mcp_wait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else if (w->srv && w->srv->waits == w)
        w->srv->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->srv = NULL;
}

static void wait_fire_cb(void *arg)
{
    struct lx_mcp_wait *w = arg;
    wait_unlink(w);
    w->fired = true;
    void (*cb)(void *) = w->cb;
    void *ctx = w->ctx;
    lx_timer_free(w->timer);
    free(w);
    cb(ctx);
}

struct lx_mcp_wait *lx_mcp_when_settled(struct lx_mcp_server *s, long timeout_ms, void (*cb)(void *ctx), void *ctx)
{
    struct lx_mcp_wait *w = lx_calloc(1, sizeof *w);
    w->srv = s;
    w->cb = cb;
    w->ctx = ctx;
    w->timer = lx_timer_new(wait_fire_cb, w);
    w->next = s->waits;
    if (s->waits)
        s->waits->prev = w;
    s->waits = w;
    lx_timer_start(w->timer, lx_mcp_server_settled(s) ? 0 : timeout_ms);
    return w;
}

void lx_mcp_wait_cancel(struct lx_mcp_wait *w)
{
    if (!w)
        return;
    wait_unlink(w);
    lx_timer_free(w->timer);
    free(w);
}

void mcp_settle(struct lx_mcp_server *s)
{
    s->settled = true;
    for (struct lx_mcp_wait *w = s->waits; w; w = w->next)
        lx_timer_start(w->timer, 0);
}

void mcp_stream_ready(struct lx_mcp_server *s)
{
    if (!s->stream_pending)
        return;
    s->stream_pending = false;
    if (s->tools && !s->settled)
        mcp_settle(s);
}

bool lx_mcp_server_settled(const struct lx_mcp_server *s)
{
    return s->settled || s->state == MCP_DISABLED || s->state == MCP_STOPPED;
}

/* ---- a server's life ---- */

static void negotiate(struct lx_mcp_server *s);
static void start_attempt(struct lx_mcp_server *s);

static void retry_cb(void *arg)
{
    struct lx_mcp_server *s = arg;
    s->restarts++;
    mcp_counters.restarts++;
    start_attempt(s);
}

/* Fail every request and call in flight (or waiting) with why. */
static void fail_all(struct lx_mcp_server *s, const char *why)
{
    /* Calls first, from the loop's next turn: their owners are not called from inside this one. */
    char msg[600];
    snprintf(msg, sizeof msg, "MCP server %s is unavailable: %s", s->conf.name, why);
    while (s->queued)
        call_fail_later(s->queued, LX_MCP_UNAVAILABLE, msg);
    while (s->running)
        call_fail_later(s->running, LX_MCP_UNAVAILABLE, msg);
    while (s->rpcs) {
        struct mcp_reply r = {.fail = MCP_FAIL_TRANSPORT, .detail = why};
        rpc_complete(s->rpcs, &r, true);
    }
}

/* Something failed: everything in flight fails, and another attempt comes after a backoff. */
static void go_down(struct lx_mcp_server *s, const char *why)
{
    if (s->stopping || s->state == MCP_BACKOFF)
        return;
    lx_warn("mcp %s: %s; next attempt in %ld ms", s->conf.name, why, s->backoff_ms);
    set_error(s, why);
    s->state = MCP_BACKOFF;
    lx_timer_stop(s->refresh_timer);
    s->stream_pending = false;
    fail_all(s, why);
    s->tx->stop(s);
    free(s->session_id);
    s->session_id = NULL;
    s->probing = false;
    if (s->conf.protocol == LX_MCP_PROTO_AUTO)
        s->era = MCP_ERA_UNKNOWN; /* probe again: the server may have been replaced */
    s->listing = s->list_again = false;
    json_decref(s->tools_next);
    s->tools_next = NULL;
    if (s->up_since_ms && lx_now_ms() - s->up_since_ms >= LX_MCP_STABLE_MS)
        s->backoff_ms = LX_MCP_BACKOFF_MIN_MS;
    s->up_since_ms = 0;
    lx_timer_start(s->retry_timer, s->backoff_ms);
    s->backoff_ms = s->backoff_ms * 2 > LX_MCP_BACKOFF_MAX_MS ? LX_MCP_BACKOFF_MAX_MS : s->backoff_ms * 2;
    mcp_settle(s);
}

void mcp_transport_down(struct lx_mcp_server *s, const char *why)
{
    go_down(s, why);
}

static void refresh_cb(void *arg)
{
    struct lx_mcp_server *s = arg;
    if (s->state != MCP_READY)
        return;
    mcp_tools_list(s);
    lx_timer_start(s->refresh_timer, s->conf.tools_refresh_ms);
}

static void ready(struct lx_mcp_server *s)
{
    s->state = MCP_READY;
    s->up_since_ms = lx_now_ms();
    set_error(s, NULL);
    lx_info("mcp %s: ready (%s, protocol %s%s)", s->conf.name, s->tx->name, s->version,
            s->session_id ? ", with a session" : "");
    /* Requests parked for the new session go again, then the calls that waited. */
    for (struct mcp_rpc *r = s->rpcs; r; r = r->next)
        if (r->parked)
            mcp_rpc_send(s, r);
    while (s->queued) {
        struct lx_mcp_call *c = s->queued;
        call_unlink(c);
        call_start_rpc(c);
    }
    /* The notification stream first, as the SDKs do: a server may have requests for llmux at once. */
    s->tx->listen(s, json_is_true(json_object_get(json_object_get(s->capabilities, "tools"), "listChanged")));
    mcp_tools_list(s);
    if (s->conf.tools_refresh_ms > 0)
        lx_timer_start(s->refresh_timer, s->conf.tools_refresh_ms);
}

static void set_server_facts(struct lx_mcp_server *s, json_t *caps, json_t *info)
{
    json_decref(s->capabilities);
    s->capabilities = json_is_object(caps) ? json_incref(caps) : json_object();
    json_decref(s->server_info);
    s->server_info = json_is_object(info) ? json_incref(info) : NULL;
}

static bool legacy_version(const char *v)
{
    return v && (strcmp(v, "2025-11-25") == 0 || strcmp(v, "2025-06-18") == 0 || strcmp(v, "2025-03-26") == 0);
}

static const char *static_version(const char *v)
{
    static const char *const known[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
    for (size_t i = 0; i < LX_ARRAY_LEN(known); i++)
        if (strcmp(v, known[i]) == 0)
            return known[i];
    return LX_MCP_V2025;
}

static bool list_has(json_t *list, bool (*pred)(const char *))
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) if (pred(json_string_value(v))) return true;
    return false;
}

static bool is_v2026(const char *v)
{
    return v && strcmp(v, LX_MCP_V2026) == 0;
}

static void initialized_cb(struct lx_mcp_server *s, void *ctx, const struct mcp_reply *r)
{
    (void)ctx;
    char why[600];
    const char *v = r->result ? json_string_value(json_object_get(r->result, "protocolVersion")) : NULL;
    if (!r->result || !legacy_version(v)) {
        if (r->error)
            snprintf(why, sizeof why, "initialize refused: %s",
                     str_or(json_object_get(r->error, "message"), "error"));
        else if (r->result)
            snprintf(why, sizeof why, "initialize: the server wants protocol %s, which llmux does not speak",
                     v ? v : "(none)");
        else
            snprintf(why, sizeof why, "initialize: %s", r->detail ? r->detail : "no answer");
        go_down(s, why);
        return;
    }
    s->version = static_version(v);
    set_server_facts(s, json_object_get(r->result, "capabilities"), json_object_get(r->result, "serverInfo"));
    mcp_counters.notifications_sent++;
    s->tx->notify(s, json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "notifications/initialized"));
    if (s->session_id)
        mcp_counters.sessions_started++;
    ready(s);
}

/* The 2025-11-25 handshake (a server may answer an earlier revision). */
static void legacy_initialize(struct lx_mcp_server *s)
{
    s->era = MCP_ERA_LEGACY;
    s->probing = false;
    s->version = NULL; /* no MCP-Protocol-Version before the answer */
    free(s->session_id);
    s->session_id = NULL;
    json_t *params = json_pack("{s:s, s:{}, s:o}", "protocolVersion", LX_MCP_V2025, "capabilities", "clientInfo",
                               client_info());
    mcp_rpc_send(s, mcp_rpc_start(s, "initialize", params, s->conf.connect_timeout_ms, initialized_cb, NULL));
}

/* What a server/discover probe says about the server (2026-07-28 "Backward Compatibility"). */
static void discovered_cb(struct lx_mcp_server *s, void *ctx, const struct mcp_reply *r)
{
    (void)ctx;
    s->probing = false;
    char why[600];
    json_t *versions = r->result ? json_object_get(r->result, "supportedVersions") : NULL;
    if (json_is_array(versions)) {
        if (list_has(versions, is_v2026)) {
            s->era = MCP_ERA_MODERN;
            s->version = LX_MCP_V2026;
            json_t *meta = json_object_get(r->result, "_meta");
            set_server_facts(s, json_object_get(r->result, "capabilities"), json_object_get(meta, LX_MCP_META_SERVER));
            ready(s);
        } else if (list_has(versions, legacy_version) && s->conf.protocol == LX_MCP_PROTO_AUTO) {
            legacy_initialize(s);
        } else {
            go_down(s, "the server supports none of the protocol revisions llmux speaks");
        }
        return;
    }
    json_int_t code = r->error ? json_integer_value(json_object_get(r->error, "code")) : 0;
    if (code == -32022) { /* UnsupportedProtocolVersion: a 2026-era server that wants another revision */
        json_t *supported = json_object_get(json_object_get(r->error, "data"), "supported");
        if (list_has(supported, legacy_version) && s->conf.protocol == LX_MCP_PROTO_AUTO)
            legacy_initialize(s);
        else
            go_down(s, "the server supports none of the protocol revisions llmux speaks");
        return;
    }
    if (code == -32020 || code == -32021) {
        snprintf(why, sizeof why, "server/discover refused: %s", str_or(json_object_get(r->error, "message"), "error"));
        go_down(s, why);
        return;
    }
    /* Nothing the server said is a 2026-07-28 answer. Connection trouble (or, over HTTP, a timeout or a
     * 5xx) says nothing about the revision: try later. Anything else marks an initialize-era server
     * (on stdio a silent one too, as the revision says). */
    bool http = s->tx == &lx_mcp_http_transport;
    if (r->fail == MCP_FAIL_CONNECT || (http && (r->fail == MCP_FAIL_TIMEOUT || r->http_status >= 500 ||
                                                 (r->fail == MCP_FAIL_TRANSPORT && r->http_status == 0)))) {
        snprintf(why, sizeof why, "%s", r->detail ? r->detail : "no answer");
        go_down(s, why);
        return;
    }
    if (s->conf.protocol == LX_MCP_PROTO_2026) {
        go_down(s, "the server does not speak protocol 2026-07-28 (server/discover failed)");
        return;
    }
    legacy_initialize(s);
}

static void negotiate(struct lx_mcp_server *s)
{
    s->state = MCP_NEGOTIATING;
    if (s->conf.protocol == LX_MCP_PROTO_2025 || s->era == MCP_ERA_LEGACY) {
        legacy_initialize(s);
        return;
    }
    s->probing = true;
    s->version = LX_MCP_V2026;
    mcp_rpc_send(s, mcp_rpc_start(s, "server/discover", NULL, s->conf.connect_timeout_ms, discovered_cb, NULL));
}

static void session_renew(struct lx_mcp_server *s)
{
    if (s->state != MCP_READY)
        return; /* a handshake is already on its way */
    mcp_counters.session_expired++;
    lx_info("mcp %s: the server ended the session: initializing again", s->conf.name);
    s->state = MCP_NEGOTIATING;
    s->up_since_ms = 0;
    lx_timer_stop(s->refresh_timer);
    legacy_initialize(s);
}

void mcp_session_lost(struct lx_mcp_server *s)
{
    session_renew(s);
}

static void start_attempt(struct lx_mcp_server *s)
{
    char err[300] = "";
    s->state = MCP_STARTING;
    if (s->tx->start(s, err, sizeof err) != LX_OK) {
        s->state = MCP_NEGOTIATING; /* so that go_down runs */
        go_down(s, err);
        return;
    }
    negotiate(s);
}

/* ---- messages from servers ---- */

static void answer_server_request(struct lx_mcp_server *s, json_t *id, const char *method)
{
    mcp_counters.server_requests++;
    json_t *reply;
    if (strcmp(method, "ping") == 0) {
        reply = json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id", id, "result");
    } else {
        /* llmux declares no client capabilities: no sampling, elicitation or roots. */
        lx_debug("mcp %s: refusing the server's %s request", s->conf.name, method);
        reply = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error", "code", -32601, "message",
                          "llmux does not offer this method to MCP servers");
    }
    s->tx->notify(s, reply);
}

static void server_notification(struct lx_mcp_server *s, const char *method, json_t *params)
{
    if (strcmp(method, "notifications/tools/list_changed") == 0) {
        lx_debug("mcp %s: tool list changed", s->conf.name);
        if (s->state == MCP_READY)
            mcp_tools_list(s);
    } else if (strcmp(method, "notifications/message") == 0) {
        json_t *data = json_object_get(params, "data");
        char *text = json_is_string(data) ? lx_strdup(json_string_value(data)) : json_dumps(data, JSON_COMPACT);
        lx_debug("mcp %s: [%s] %.500s", s->conf.name, str_or(json_object_get(params, "level"), "log"),
                 text ? text : "");
        free(text);
    }
    /* progress, subscriptions/acknowledged, resources and prompts news: nothing to do. */
}

void mcp_dispatch(struct lx_mcp_server *s, json_t *msg)
{
    if (s->stopping)
        return;
    if (json_is_array(msg)) {
        size_t i;
        json_t *m;
        json_array_foreach(msg, i, m) mcp_dispatch(s, m);
        return;
    }
    if (!json_is_object(msg))
        return;
    json_t *method = json_object_get(msg, "method"), *id = json_object_get(msg, "id");
    if (json_is_string(method)) {
        if (id && !json_is_null(id))
            answer_server_request(s, id, json_string_value(method));
        else
            server_notification(s, json_string_value(method), json_object_get(msg, "params"));
        return;
    }
    json_t *result = json_object_get(msg, "result"), *error = json_object_get(msg, "error");
    struct mcp_rpc *rpc = rpc_find(s, id);
    if (!rpc || rpc->parked) {
        lx_debug("mcp %s: an answer to no request in flight (late or cancelled): ignored", s->conf.name);
        return;
    }
    if (!result && !json_is_object(error)) {
        mcp_rpc_fail(rpc, MCP_FAIL_TRANSPORT, 0, NULL, "a JSON-RPC response without result or error");
        return;
    }
    struct mcp_reply r = {.result = result, .error = json_is_object(error) ? error : NULL};
    rpc_complete(rpc, &r, false);
}

/* ---- the registry ---- */

static void server_free_cb(void *arg)
{
    struct lx_mcp_server *s = arg;
    lx_timer_free(s->retry_timer);
    lx_timer_free(s->refresh_timer);
    json_decref(s->tools);
    json_decref(s->tools_next);
    json_decref(s->server_info);
    json_decref(s->capabilities);
    free(s->session_id);
    free(s->last_error);
    lx_mcp_server_conf_free(&s->conf);
    free(s);
}

static struct lx_mcp_server *server_new(const struct lx_mcp_server_conf *conf)
{
    struct lx_mcp_server *s = lx_calloc(1, sizeof *s);
    lx_mcp_server_conf_copy(&s->conf, conf);
    s->tx = conf->transport == LX_MCP_HTTP ? &lx_mcp_http_transport : &lx_mcp_stdio_transport;
    s->era = conf->protocol == LX_MCP_PROTO_2025 ? MCP_ERA_LEGACY : MCP_ERA_UNKNOWN;
    s->backoff_ms = LX_MCP_BACKOFF_MIN_MS;
    s->retry_timer = lx_timer_new(retry_cb, s);
    s->refresh_timer = lx_timer_new(refresh_cb, s);
    s->state = MCP_STOPPED; /* until lx_mcp_apply starts it */
    if (conf->disabled_reason) {
        s->state = MCP_DISABLED;
        set_error(s, conf->disabled_reason);
        lx_warn("mcp %s is disabled: %s", conf->name, conf->disabled_reason);
    }
    return s;
}

/* Stop s and free it from the loop's next turn. */
static void server_stop(struct lx_mcp_server *s)
{
    s->stopping = true;
    lx_timer_stop(s->retry_timer);
    lx_timer_stop(s->refresh_timer);
    fail_all(s, "the server was removed from the configuration or llmux is stopping");
    if (s->state != MCP_DISABLED && s->state != MCP_BACKOFF)
        s->tx->stop(s);
    s->state = MCP_STOPPED;
    while (s->waits) {
        struct lx_mcp_wait *w = s->waits;
        wait_unlink(w);
        lx_timer_start(w->timer, 0); /* the waiter learns it now */
    }
    lx_defer(server_free_cb, s);
}

void lx_mcp_apply(const struct lx_mcp_conf *conf)
{
    struct lx_mcp_server **next = lx_calloc(conf->n_servers + 1, sizeof *next);
    bool *kept = lx_calloc(lx_n_servers + 1, sizeof *kept);
    bool *fresh = lx_calloc(conf->n_servers + 1, sizeof *fresh);
    for (size_t i = 0; i < conf->n_servers; i++) {
        const struct lx_mcp_server_conf *c = &conf->servers[i];
        struct lx_mcp_server *s = NULL;
        for (size_t j = 0; j < lx_n_servers && !s; j++)
            if (!kept[j] && lx_mcp_conf_same(&lx_servers[j]->conf, c)) {
                s = lx_servers[j];
                kept[j] = true;
            }
        if (s) {
            /* Same server: its new timeouts apply from now on (nothing keeps pointers into conf). */
            lx_mcp_server_conf_free(&s->conf);
            lx_mcp_server_conf_copy(&s->conf, c);
        } else {
            s = server_new(c);
            fresh[i] = s->state != MCP_DISABLED;
        }
        next[i] = s;
    }
    for (size_t j = 0; j < lx_n_servers; j++)
        if (!kept[j])
            server_stop(lx_servers[j]);
    free(kept);
    free(lx_servers);
    lx_servers = next;
    lx_n_servers = conf->n_servers;
    for (size_t i = 0; i < lx_n_servers; i++)
        if (fresh[i])
            start_attempt(lx_servers[i]);
    free(fresh);
}

void lx_mcp_shutdown(bool loop_over)
{
    for (size_t i = 0; i < lx_n_servers; i++) {
        lx_servers[i]->final = loop_over;
        server_stop(lx_servers[i]);
    }
    free(lx_servers);
    lx_servers = NULL;
    lx_n_servers = 0;
}

size_t lx_mcp_count(void)
{
    return lx_n_servers;
}

struct lx_mcp_server *lx_mcp_at(size_t i)
{
    return i < lx_n_servers ? lx_servers[i] : NULL;
}

struct lx_mcp_server *lx_mcp_find(const char *name)
{
    for (size_t i = 0; i < lx_n_servers; i++)
        if (strcmp(lx_servers[i]->conf.name, name) == 0)
            return lx_servers[i];
    return NULL;
}

const char *lx_mcp_server_name(const struct lx_mcp_server *s)
{
    return s->conf.name;
}

const struct lx_mcp_server_conf *lx_mcp_server_conf(const struct lx_mcp_server *s)
{
    return &s->conf;
}

json_t *lx_mcp_server_tools(const struct lx_mcp_server *s)
{
    return s->tools;
}

json_t *lx_mcp_server_tool(const struct lx_mcp_server *s, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(s->tools, i, t) if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0) return t;
    return NULL;
}

/* The URL without its query and userinfo, which may hold secrets. */
static json_t *public_url(const char *url)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    const char *at = strchr(host, '@'), *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        host = at + 1;
    size_t scheme = (size_t)(strstr(url, "://") ? strstr(url, "://") + 3 - url : 0);
    size_t rest = strcspn(host, "?#");
    char *s = lx_sprintf("%.*s%.*s", (int)scheme, url, (int)rest, host);
    json_t *j = json_string(s);
    free(s);
    return j;
}

json_t *lx_mcp_server_status(const struct lx_mcp_server *s)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b}", "name", s->conf.name, "transport", s->tx->name, "state",
                          mcp_state_name(s->state), "healthy", s->state == MCP_READY && s->tools, "session",
                          s->session_id != NULL);
    if (s->conf.url)
        json_object_set_new(o, "url", public_url(s->conf.url));
    if (s->conf.command)
        json_object_set_new(o, "command", json_string(s->conf.command));
    json_object_set_new(o, "protocol", s->state == MCP_READY && s->version ? json_string(s->version) : json_null());
    json_object_set_new(o, "tools", s->tools ? json_integer((json_int_t)json_array_size(s->tools)) : json_null());
    if (s->tools_at_ms)
        json_object_set_new(o, "tools_listed_at", json_integer((json_int_t)(s->tools_at_ms / 1000)));
    json_object_set_new(o, "server_info", s->server_info ? json_deep_copy(s->server_info) : json_null());
    json_object_set_new(o, "error", s->last_error ? json_string(s->last_error) : json_null());
    json_object_set_new(o, "restarts", json_integer(s->restarts));
    return o;
}
