/* MCP's Streamable HTTP transport on the shared curl multi (upstream.c): every client message is its own
 * POST, answered with JSON or with an SSE stream that may carry the server's own requests and
 * notifications first; 2025-11-25 streams that end early are resumed with GET and Last-Event-ID after
 * the server's retry: delay; the server's notification stream is a GET (2025-11-25) or a
 * subscriptions/listen POST (2026-07-28), reopened when it ends. Moves to src/engine/mcp_http.c.
 *
 * Re-entrancy: upstream's on_headers/on_body run inside libcurl callbacks, so they only parse and queue
 * messages; the messages are dispatched to the client core from a deferred call (or from on_done, which
 * runs on the loop), where the core may start new transfers. */
#include "mcp_internal.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/log.h"
#include "../io/loop.h"
#include "../core/sse.h"
#include "../io/upstream.h"
#include "../core/httpreq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LX_MCP_MAX_BODY (16u * 1024 * 1024)
#define LX_MCP_RESUME_DEFAULT_MS 1000
#define LX_MCP_STREAM_BACKOFF_MAX_MS 60000

enum xfer_kind {
    X_RPC,    /* a request and its answer (resumed with GET when its stream ends early) */
    X_NOTIFY, /* a notification or a response: 202 expected */
    X_STREAM, /* the server's notification stream */
};

struct xfer {
    struct lx_mcp_server *srv;  /* borrowed; NULL once detached (the transport stopped) */
    enum xfer_kind kind;
    struct mcp_rpc *rpc;        /* X_RPC: the request until it is finished */
    json_int_t rpc_id;
    bool initialize;            /* the answer may carry Mcp-Session-Id */
    struct lx_upstream *up;     /* the transfer in flight, or NULL */
    int status;
    bool sse, session_sent, answered, resuming, saw_event;
    struct lx_buf body;         /* owned: a JSON (or error) body */
    struct lx_sse_decoder dec;  /* owned */
    json_t *inbox;              /* owned: messages waiting for dispatch, or NULL */
    unsigned holds;             /* deferred calls and dispatches on the stack holding x */
    char last_id[128];          /* where a resumed stream goes on from ("" = not resumable) */
    long retry_ms;              /* the server's retry: (-1: none) */
    long backoff_ms;            /* X_STREAM: delay before reopening */
    struct lx_timer *timer;     /* owned: resume / reopen delay */
    struct xfer *prev, *next;   /* in the state's list while attached */
};

struct http_state {
    struct xfer *xfers;
    struct xfer *stream;        /* the notification stream, or NULL */
    bool stream_unsupported;    /* the server said 405 (or has no subscriptions/listen) */
};

static void on_headers(void *ctx, int status, const char *content_type, const char *retry_after);
static int on_body(void *ctx, const char *data, size_t len);
static void on_done(void *ctx, enum lx_upstream_result result, const char *detail);
static const struct lx_upstream_ops xfer_ops = {on_headers, on_body, on_done};

static struct http_state *state(struct lx_mcp_server *s)
{
    return s->tx_state;
}

static void xfer_unlink(struct xfer *x)
{
    struct http_state *st = x->srv ? state(x->srv) : NULL;
    if (st && st->stream == x)
        st->stream = NULL;
    if (x->prev)
        x->prev->next = x->next;
    else if (st && st->xfers == x)
        st->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Free x once nothing refers to it any more. */
static void xfer_release(struct xfer *x)
{
    if (x->up || x->holds || x->rpc || (x->timer && lx_timer_pending(x->timer)))
        return;
    if (x->kind == X_STREAM && x->srv)
        return; /* a live stream is reopened, not freed */
    xfer_unlink(x);
    lx_sse_decoder_free(&x->dec);
    lx_buf_free(&x->body);
    json_decref(x->inbox);
    lx_timer_free(x->timer);
    free(x);
}

static void timer_cb(void *arg);

static struct xfer *xfer_new(struct lx_mcp_server *s, enum xfer_kind kind)
{
    struct xfer *x = lx_calloc(1, sizeof *x);
    x->srv = s;
    x->kind = kind;
    x->retry_ms = -1;
    x->backoff_ms = LX_MCP_RESUME_DEFAULT_MS;
    lx_sse_decoder_init(&x->dec);
    x->dec.max_event = LX_MCP_MAX_BODY;
    struct http_state *st = state(s);
    x->next = st->xfers;
    if (st->xfers)
        st->xfers->prev = x;
    st->xfers = x;
    return x;
}

/* Every MCP request carries these: Accept, the configured headers, the session and the revision. */
static void common_headers(struct lx_mcp_server *s, struct lx_http_request *r, bool post, const char *method)
{
    lx_http_request_add_header(r, "Accept: %s", post ? "application/json, text/event-stream" : "text/event-stream");
    for (size_t i = 0; i < s->conf.n_headers; i++)
        lx_http_request_add_header(r, "%s", s->conf.headers[i]);
    if (s->session_id)
        lx_http_request_add_header(r, "Mcp-Session-Id: %s", s->session_id);
    if (s->version)
        lx_http_request_add_header(r, "MCP-Protocol-Version: %s", s->version);
    if (method && mcp_modern(s))
        lx_http_request_add_header(r, "Mcp-Method: %s", method);
}

static void start_failed_cb(void *arg)
{
    struct xfer *x = arg;
    x->holds--;
    on_done(x, LX_UP_CONNECT, "libcurl refused the transfer");
}

static void xfer_launch(struct xfer *x, struct lx_http_request *r)
{
    x->status = 0;
    x->sse = x->answered = x->saw_event = false;
    lx_buf_reset(&x->body);
    lx_sse_decoder_free(&x->dec);
    lx_sse_decoder_init(&x->dec);
    x->dec.max_event = LX_MCP_MAX_BODY;
    x->session_sent = x->srv->session_id != NULL;
    x->up = lx_upstream_start(r, x->srv->conf.connect_timeout_ms, &xfer_ops, x);
    lx_http_request_free(r);
    if (!x->up) {
        x->holds++; /* report from the loop: never back into the caller */
        lx_defer(start_failed_cb, x);
    }
}

static void xfer_post(struct xfer *x, json_t *msg, char *const *extra, size_t n_extra)
{
    struct lx_mcp_server *s = x->srv;
    struct lx_http_request r = {0};
    lx_http_request_post_json(&r, lx_strdup(s->conf.url), json_incref(msg));
    const char *method = json_string_value(json_object_get(msg, "method"));
    common_headers(s, &r, true, method);
    for (size_t i = 0; i < n_extra; i++)
        lx_http_request_add_header(&r, "%s", extra[i]);
    xfer_launch(x, &r);
}

/* A GET of the endpoint: the 2025-11-25 notification stream, or a resumed response stream. */
static void xfer_get(struct xfer *x)
{
    struct lx_http_request r = {.method = "GET", .url = lx_strdup(x->srv->conf.url)};
    common_headers(x->srv, &r, false, NULL);
    if (x->last_id[0])
        lx_http_request_add_header(&r, "Last-Event-ID: %s", x->last_id);
    xfer_launch(x, &r);
}

/* ---- bytes in (libcurl callbacks: parse and queue only) ---- */

static void flush_cb(void *arg);

static void queue_message(struct xfer *x, json_t *msg)
{
    if (!x->inbox) {
        x->inbox = json_array();
        x->holds++;
        lx_defer(flush_cb, x);
    }
    json_t *id = json_object_get(msg, "id");
    if (x->kind == X_RPC && json_is_integer(id) && json_integer_value(id) == x->rpc_id &&
        (json_object_get(msg, "result") || json_object_get(msg, "error")) && !json_object_get(msg, "method"))
        x->answered = true;
    json_array_append_new(x->inbox, msg);
}

static int sse_event_cb(void *ctx, const char *event, const char *data, size_t len)
{
    (void)event;
    struct xfer *x = ctx;
    x->saw_event = true;
    if (len == 0)
        return LX_OK; /* the priming event: only its id matters */
    json_t *msg = json_loadb(data, len, 0, NULL);
    if (!msg) {
        lx_debug("mcp %s: an SSE event that is not JSON was ignored", x->srv ? x->srv->conf.name : "?");
        return LX_OK;
    }
    queue_message(x, msg);
    return LX_OK;
}

static void stream_ready_cb(void *arg)
{
    struct xfer *x = arg;
    x->holds--;
    if (x->srv)
        mcp_stream_ready(x->srv);
    xfer_release(x);
}

static void on_headers(void *ctx, int status, const char *content_type, const char *retry_after)
{
    (void)retry_after;
    struct xfer *x = ctx;
    x->status = status;
    if (x->kind == X_STREAM && x->srv && x->srv->stream_pending) {
        x->holds++; /* tell the core from the loop */
        lx_defer(stream_ready_cb, x);
    }
    x->sse = status / 100 == 2 && content_type && strncasecmp(content_type, "text/event-stream", 17) == 0;
    if (x->initialize && x->srv && status / 100 == 2) {
        const char *sid = lx_upstream_header(x->up, "Mcp-Session-Id");
        bool ok = sid && *sid && strlen(sid) < 256;
        for (const char *p = sid; ok && *p; p++)
            ok = *p >= 0x21 && *p <= 0x7e;
        if (ok) {
            free(x->srv->session_id);
            x->srv->session_id = lx_strdup(sid);
        }
    }
}

static int on_body(void *ctx, const char *data, size_t len)
{
    struct xfer *x = ctx;
    if (!x->srv)
        return LX_ERR;
    if (x->sse) {
        if (lx_sse_feed(&x->dec, data, len, sse_event_cb, x, NULL) != LX_OK)
            return LX_ERR;
        if (lx_sse_last_id(&x->dec)[0])
            lx_strcut(x->last_id, sizeof x->last_id, x->dec.last_id, strlen(x->dec.last_id));
        if (x->dec.retry_ms >= 0)
            x->retry_ms = x->dec.retry_ms;
        /* The answer is in: the stream has nothing more for this request. */
        return x->answered ? LX_DONE : LX_OK;
    }
    if (x->body.len + len > LX_MCP_MAX_BODY)
        return LX_ERR;
    lx_buf_append(&x->body, data, len);
    return LX_OK;
}

/* ---- on the loop ---- */

static void dispatch_inbox(struct xfer *x)
{
    json_t *box = x->inbox;
    x->inbox = NULL;
    x->holds++;
    size_t i;
    json_t *m;
    json_array_foreach(box, i, m) {
        if (!x->srv)
            break;
        mcp_dispatch(x->srv, m);
    }
    x->holds--;
    json_decref(box);
}

static void flush_cb(void *arg)
{
    struct xfer *x = arg;
    x->holds--;
    if (x->inbox)
        dispatch_inbox(x);
    xfer_release(x);
}

static void resume_later(struct xfer *x)
{
    x->resuming = true;
    if (!x->timer)
        x->timer = lx_timer_new(timer_cb, x);
    lx_timer_start(x->timer, x->retry_ms >= 0 ? x->retry_ms : LX_MCP_RESUME_DEFAULT_MS);
}

static bool mentions_session(const struct lx_buf *b)
{
    return b->data && strcasestr(b->data, "session");
}

/* A request's transfer ended with the request still unanswered. */
static void rpc_ended(struct xfer *x, enum lx_upstream_result result, const char *detail, json_t *body)
{
    struct lx_mcp_server *s = x->srv;
    struct mcp_rpc *rpc = x->rpc;
    char why[300];
    if (x->status == 0) {
        snprintf(why, sizeof why, "%s: %s", result == LX_UP_BROKEN ? "the connection broke" : "cannot reach the server",
                 detail);
        mcp_rpc_fail(rpc, result == LX_UP_BROKEN ? MCP_FAIL_TRANSPORT : MCP_FAIL_CONNECT, 0, NULL, why);
        return;
    }
    if (x->status / 100 == 2 && x->sse) {
        /* 2025-11-25 lets a server end a response stream early and be polled for the rest. */
        if (s->era == MCP_ERA_LEGACY && x->last_id[0] && result != LX_UP_ABORTED) {
            lx_debug("mcp %s: the stream of %s ended early: resuming after event %s", s->conf.name, rpc->method,
                     x->last_id);
            resume_later(x);
            return;
        }
        mcp_rpc_fail(rpc, MCP_FAIL_TRANSPORT, x->status, NULL, "the response stream ended without an answer");
        return;
    }
    if (x->status == 404 && x->session_sent) {
        mcp_rpc_fail(rpc, MCP_FAIL_SESSION, 404, NULL, "the session is gone");
        return;
    }
    if (x->status == 400 && x->session_sent && mentions_session(&x->body)) {
        /* Some servers (the SDK's examples) answer 400 rather than 404 for a session they do not know. */
        mcp_rpc_fail(rpc, MCP_FAIL_SESSION, 400, NULL, "the server does not know the session");
        return;
    }
    json_t *err = json_object_get(body, "error");
    if (x->status / 100 == 2)
        snprintf(why, sizeof why, "HTTP %d without an answer to the request", x->status);
    else
        snprintf(why, sizeof why, "HTTP %d", x->status);
    mcp_rpc_fail(rpc, MCP_FAIL_TRANSPORT, x->status, json_is_object(err) ? err : NULL, why);
}

static void stream_open(struct xfer *x);

static void stream_ended(struct xfer *x, json_t *body)
{
    struct lx_mcp_server *s = x->srv;
    struct http_state *st = state(s);
    mcp_stream_ready(s); /* no stream is an answer too */
    json_int_t code = json_integer_value(json_object_get(json_object_get(body, "error"), "code"));
    if (x->status == 405 || code == -32601 || (x->status == 404 && !x->session_sent)) {
        lx_debug("mcp %s: the server offers no notification stream: tools are refreshed on the interval only",
                 s->conf.name);
        st->stream_unsupported = true;
        xfer_unlink(x);
        x->srv = NULL;
        return;
    }
    if ((x->status == 404 || (x->status == 400 && mentions_session(&x->body))) && x->session_sent) {
        xfer_unlink(x);
        x->srv = NULL;
        mcp_session_lost(s);
        return;
    }
    /* Reopen: at the server's pace when it said one, else with a growing delay (reset by a stream that
     * carried something). */
    if (x->saw_event && x->status / 100 == 2)
        x->backoff_ms = LX_MCP_RESUME_DEFAULT_MS;
    long delay = x->retry_ms >= 0 ? x->retry_ms : x->backoff_ms;
    x->backoff_ms = x->backoff_ms * 2 > LX_MCP_STREAM_BACKOFF_MAX_MS ? LX_MCP_STREAM_BACKOFF_MAX_MS : x->backoff_ms * 2;
    if (!x->timer)
        x->timer = lx_timer_new(timer_cb, x);
    lx_timer_start(x->timer, delay);
}

static void on_done(void *ctx, enum lx_upstream_result result, const char *detail)
{
    struct xfer *x = ctx;
    x->up = NULL;
    x->holds++;
    if (x->sse && x->srv)
        lx_sse_flush(&x->dec, sse_event_cb, x, NULL);
    if (x->inbox && x->srv)
        dispatch_inbox(x);
    json_t *body = NULL;
    if (!x->sse && x->body.len && x->srv) {
        body = json_loadb(x->body.data, x->body.len, 0, NULL);
        if (body && x->status / 100 == 2 && x->kind != X_NOTIFY) {
            json_t *id = json_object_get(body, "id");
            if (x->kind == X_RPC && json_is_integer(id) && json_integer_value(id) == x->rpc_id)
                x->answered = true;
            mcp_dispatch(x->srv, body);
        }
    }
    if (x->srv) {
        if (x->kind == X_RPC && x->rpc)
            rpc_ended(x, result, detail, body);
        else if (x->kind == X_STREAM)
            stream_ended(x, body);
        else if (x->kind == X_NOTIFY && (result != LX_UP_OK || x->status / 100 != 2))
            lx_debug("mcp %s: a notification was not accepted (HTTP %d, %s)", x->srv->conf.name, x->status, detail);
    }
    json_decref(body);
    x->holds--;
    xfer_release(x);
}

static void timer_cb(void *arg)
{
    struct xfer *x = arg;
    if (!x->srv) {
        xfer_release(x);
        return;
    }
    if (x->kind == X_STREAM) {
        stream_open(x);
    } else if (x->rpc) {
        mcp_counters.resumes++;
        xfer_get(x);
    }
    xfer_release(x);
}

/* ---- the transport table ---- */

static int http_start(struct lx_mcp_server *s, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    if (!s->tx_state)
        s->tx_state = lx_calloc(1, sizeof(struct http_state));
    return LX_OK;
}

static void http_send(struct lx_mcp_server *s, struct mcp_rpc *rpc)
{
    struct xfer *x = xfer_new(s, X_RPC);
    x->rpc = rpc;
    x->rpc_id = rpc->id;
    x->initialize = strcmp(rpc->method, "initialize") == 0;
    rpc->tx = x;
    xfer_post(x, rpc->msg, rpc->headers, rpc->n_headers);
}

static void http_notify(struct lx_mcp_server *s, json_t *msg)
{
    struct xfer *x = xfer_new(s, X_NOTIFY);
    xfer_post(x, msg, NULL, 0);
    json_decref(msg);
}

static void http_finish(struct lx_mcp_server *s, struct mcp_rpc *rpc, bool cancel)
{
    (void)s;
    struct xfer *x = rpc->tx;
    x->rpc = NULL;
    /* A cancelled request's stream is closed (2026-07-28's cancellation); so is a resumed GET, which the
     * server would keep open. An answered POST stream ends by itself (on_body said LX_DONE). */
    if ((cancel || x->resuming) && x->up) {
        lx_upstream_cancel(x->up);
        x->up = NULL;
    }
    if (x->timer)
        lx_timer_stop(x->timer);
    xfer_release(x);
}

static void stream_open(struct xfer *x)
{
    struct lx_mcp_server *s = x->srv;
    if (s->era == MCP_ERA_MODERN) {
        json_int_t id;
        json_t *msg = mcp_request_json(s, "subscriptions/listen",
                                       json_pack("{s:{s:b}}", "notifications", "toolsListChanged", 1), &id);
        xfer_post(x, msg, NULL, 0);
        json_decref(msg);
    } else {
        xfer_get(x);
    }
}

static void http_listen(struct lx_mcp_server *s, bool list_changed)
{
    struct http_state *st = state(s);
    /* A 2025-11-25 server sends its own requests (ping, elicitation, ...) on the GET stream too, and waits
     * for an answer: open it whatever it announced. subscriptions/listen only carries list changes. */
    if (st->stream || st->stream_unsupported || (s->era == MCP_ERA_MODERN && !list_changed))
        return;
    st->stream = xfer_new(s, X_STREAM);
    s->stream_pending = true; /* settled once the stream answered */
    stream_open(st->stream);
}

static void http_stop(struct lx_mcp_server *s)
{
    struct http_state *st = state(s);
    if (!st)
        return;
    if (s->stopping && !s->final && s->session_id && s->era == MCP_ERA_LEGACY) {
        /* End the session (best effort: nobody waits for the answer). Not at exit: the loop is over, so
         * the DELETE would never be sent, only leaked; the server expires the session itself. */
        struct xfer *x = xfer_new(s, X_NOTIFY);
        struct lx_http_request r = {.method = "DELETE", .url = lx_strdup(s->conf.url)};
        common_headers(s, &r, false, NULL);
        xfer_launch(x, &r);
    }
    while (st->xfers) {
        struct xfer *x = st->xfers;
        xfer_unlink(x);
        x->srv = NULL;
        x->rpc = NULL;
        if (x->up && x->kind != X_NOTIFY) {
            lx_upstream_cancel(x->up);
            x->up = NULL;
        }
        if (x->timer)
            lx_timer_stop(x->timer);
        xfer_release(x);
    }
    free(st);
    s->tx_state = NULL;
}

const struct mcp_transport lx_mcp_http_transport = {
    .name = "http",
    .start = http_start,
    .send = http_send,
    .notify = http_notify,
    .finish = http_finish,
    .listen = http_listen,
    .stop = http_stop,
};
