/* The request object: its checked state machine, reference counting, the output queue the transport
 * drains, the limits.max_request_ms deadline, and the whole handler-facing lx_req_* API. Nothing here
 * knows the protocol: every protocol step goes through req->transport.
 *
 * Callback contexts: lx_req_stream_write and lx_req_can_write may run inside libcurl callbacks (through a
 * handler's upstream); they only touch buffers and call transport->wake, which only resumes a connection.
 * Everything else runs from the loop. */
#include "req.h"
#include "conf.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/log.h"
#include "../io/loop.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

static uint64_t lx_req_counter;

static const char *const lx_req_state_names[LX_REQ_STATE_COUNT] = {
    [LX_REQ_RECEIVING] = "receiving", [LX_REQ_HANDLING] = "handling", [LX_REQ_RESPONDING] = "responding",
    [LX_REQ_STREAMING] = "streaming", [LX_REQ_FINISHED] = "finished",
};

/* allowed[from] is a bit set of the states `from` may move to. */
static const unsigned lx_req_allowed[LX_REQ_STATE_COUNT] = {
    [LX_REQ_RECEIVING] = 1u << LX_REQ_HANDLING | 1u << LX_REQ_RESPONDING | 1u << LX_REQ_FINISHED,
    [LX_REQ_HANDLING] = 1u << LX_REQ_RESPONDING | 1u << LX_REQ_STREAMING | 1u << LX_REQ_FINISHED,
    [LX_REQ_RESPONDING] = 1u << LX_REQ_FINISHED,
    [LX_REQ_STREAMING] = 1u << LX_REQ_FINISHED,
    [LX_REQ_FINISHED] = 0,
};

const char *lx_req_state_name(enum lx_req_state s)
{
    return s < LX_REQ_STATE_COUNT ? lx_req_state_names[s] : "invalid";
}

void lx_req_set_state(struct lx_req *req, enum lx_req_state to)
{
    if (!(lx_req_allowed[req->state] & (1u << to))) {
        lx_error("req=%llu: illegal state change %s -> %s", (unsigned long long)req->id,
                 lx_req_state_name(req->state), lx_req_state_name(to));
        assert(!"illegal request state change");
        return;
    }
    req->state = to;
}

void lx_req_init(struct lx_req *req, const struct lx_transport *t, struct lx_config *cfg, const char *method,
                 const char *path)
{
    req->id = ++lx_req_counter;
    req->refs = 1;
    req->transport = t;
    req->cfg = lx_config_ref(cfg);
    lx_strcut(req->method, sizeof req->method, method, strlen(method));
    req->path = lx_strdup(path);
    req->t_start = lx_now_ms_f();
    req->request_id = req->id_buf;
    req->origin.request_id = req->request_id;
}

struct lx_req *lx_req_new(struct lx_config *cfg, const char *method, const char *path)
{
    struct lx_req *req = lx_calloc(1, sizeof *req);
    lx_req_init(req, NULL, cfg, method, path);
    return req;
}

/* A client's X-Request-Id is kept when it is 1-128 characters of [A-Za-z0-9._:-] (it goes into logs and
 * upstream headers as is); otherwise 32 random hex digits are made up. */
void lx_req_set_request_id(struct lx_req *req, const char *client)
{
    size_t n = client ? strlen(client) : 0;
    bool ok = n > 0 && n <= LX_REQ_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = client[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
             ch == '_' || ch == ':' || ch == '-';
    }
    if (req->request_id != req->id_buf)
        free(req->request_id);
    req->request_id = req->id_buf;
    if (ok && n >= sizeof req->id_buf)
        req->request_id = lx_malloc(n + 1);
    req->origin.request_id = req->request_id;
    if (ok) {
        memcpy(req->request_id, client, n + 1);
        return;
    }
    /* Random bytes are drawn 64 ids at a time: one getrandom(2) per 64 requests, not one each. */
    static unsigned char pool[64 * 16];
    static size_t used = sizeof pool;
    unsigned char r[16];
    if (used == sizeof pool) {
        used = getrandom(pool, sizeof pool, GRND_NONBLOCK) == (ssize_t)sizeof pool ? 0 : sizeof pool;
    }
    if (used < sizeof pool) {
        memcpy(r, pool + used, sizeof r);
        used += sizeof r;
    } else {
        /* No entropy yet (early boot): unique is enough for an id. */
        uint64_t a = req->id, b = (uint64_t)(lx_now_ms_f() * 1000.0);
        memcpy(r, &a, 8);
        memcpy(r + 8, &b, 8);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof r; i++) {
        req->request_id[2 * i] = hex[r[i] >> 4];
        req->request_id[2 * i + 1] = hex[r[i] & 15];
    }
    req->request_id[2 * sizeof r] = '\0';
}

struct lx_req *lx_req_hold(struct lx_req *req)
{
    req->refs++;
    return req;
}

void lx_req_release(struct lx_req *req)
{
    if (--req->refs > 0)
        return;
    lx_timer_free(req->deadline);
    lx_config_unref(req->cfg);
    free(req->path);
    if (req->request_id != req->id_buf)
        free(req->request_id);
    lx_buf_free(&req->body);
    free(req->content_type);
    for (size_t i = 0; i < req->n_resp_headers; i++)
        free(req->resp_headers[i]);
    free(req->resp_headers);
    lx_buf_free(&req->out);
    free(req->model);
    free(req->error_code);
    free(req->tracestate);
    lx_tally_clear(&req->tally);
    if (req->transport)
        req->transport->dispose(req);
    else
        free(req);
}

/* --- the transport side --- */

static void wake(struct lx_req *req)
{
    if (req->transport)
        req->transport->wake(req);
}

/* Tell the handler its request is over (at most once) and forget it. */
static void notify_abort(struct lx_req *req, const struct lx_error *why)
{
    struct lx_req_handler *h = req->handler;
    req->handler = NULL;
    if (h && h->on_abort)
        h->on_abort(h, req, why);
}

static void deadline_cb(void *arg)
{
    struct lx_req *req = arg;
    if (req->client_gone || (req->state != LX_REQ_HANDLING && req->state != LX_REQ_STREAMING))
        return;
    long ms = req->cfg->server->limits.max_request_ms;
    lx_warn("req=%s: still running after limits.max_request_ms (%ld ms); cancelling it", req->request_id, ms);
    struct lx_error e = {0};
    lx_error_set(&e, 504, "timeout_error", NULL, "request_timeout",
                 "The request took longer than the gateway's limit of %ld ms (limits.max_request_ms).", ms);
    lx_req_hold(req);
    free(req->error_code);
    req->error_code = lx_strdup("request_timeout");
    notify_abort(req, &e); /* the handler stops its upstream work, and answers e in its API's shape */
    if (req->state == LX_REQ_HANDLING)
        lx_req_respond_error(req, &e);
    else if (req->state == LX_REQ_STREAMING && !req->out_ended)
        lx_req_stream_cut(req);
    lx_error_clear(&e);
    lx_req_release(req);
}

/* The client's trace context, continued (or a new one when tracing is on). */
static void begin_trace(struct lx_req *req)
{
    lx_trace_begin(&req->origin.trace, lx_req_header(req, "traceparent"));
    const char *ts = lx_req_header(req, "tracestate");
    if (req->origin.trace.has_parent && ts && *ts && strlen(ts) <= 512) {
        req->tracestate = lx_strdup(ts);
        req->origin.tracestate = req->tracestate;
    }
}

void lx_req_dispatch(struct lx_req *req, void (*route)(struct lx_req *req))
{
    lx_req_set_state(req, LX_REQ_HANDLING);
    begin_trace(req);
    long ms = req->cfg->server->limits.max_request_ms;
    if (ms > 0) {
        req->deadline = lx_timer_new(deadline_cb, req);
        lx_timer_start(req->deadline, ms);
    }
    route(req);
}

void lx_req_client_gone(struct lx_req *req)
{
    req->client_gone = true;
    lx_req_hold(req);
    notify_abort(req, NULL);
    wake(req);
    lx_req_release(req);
}

/* The event's request fields, from req. */
static void request_event(struct lx_req *req, struct lx_event *ev, enum lx_event_type type)
{
    req->origin.model = req->model;
    double now = lx_now_ms_f();
    *ev = (struct lx_event){
        .type = type,
        .origin = &req->origin,
        .request = {.req = req, .method = req->method, .path = req->path,
                    .route = req->route ? req->route : "other", .answered_by = req->tally.answered_by,
                    .error = req->error_code, .prompt_tokens = req->tally.prompt_tokens,
                    .completion_tokens = req->tally.completion_tokens, .calls = req->tally.calls,
                    .retries = req->tally.retries, .fallbacks = req->tally.fallbacks,
                    .duration_ms = now - req->t_start,
                    .ttfb_ms = req->t_first_byte > 0 ? req->t_first_byte - req->t_start : -1,
                    .bytes_in = req->bytes_in, .bytes_out = req->bytes_out,
                    .start_ns = lx_wall_ns() - (int64_t)((now - req->t_start) * 1e6)},
    };
}

void lx_req_announce(struct lx_req *req)
{
    if (req->announced)
        return;
    req->announced = true;
    if (!lx_bus_wanted(LX_EV_REQUEST_STARTED))
        return;
    struct lx_event ev;
    request_event(req, &ev, LX_EV_REQUEST_STARTED);
    lx_bus_publish(&ev);
}

void lx_req_first_token(struct lx_req *req, const char *answered_by)
{
    if (!lx_bus_wanted(LX_EV_REQUEST_FIRST_TOKEN))
        return;
    struct lx_event ev;
    request_event(req, &ev, LX_EV_REQUEST_FIRST_TOKEN);
    ev.request.answered_by = answered_by;
    lx_bus_publish(&ev);
}

void lx_req_finish(struct lx_req *req, bool completed)
{
    if (!completed)
        req->client_gone = true;
    if (req->client_gone)
        notify_abort(req, NULL);
    lx_timer_free(req->deadline);
    req->deadline = NULL;
    if (req->state != LX_REQ_FINISHED)
        lx_req_set_state(req, LX_REQ_FINISHED);
    int status = req->status;
    if (status != 408 && req->client_gone && !req->out_ended)
        status = 499; /* the client left before the answer was complete */
    else if (status == 0)
        status = 499;
    enum lx_event_type type = status == 499                      ? LX_EV_REQUEST_CANCELLED
                              : status >= 400 || req->error_code ? LX_EV_REQUEST_FAILED
                                                                 : LX_EV_REQUEST_FINISHED;
    struct lx_event ev;
    request_event(req, &ev, type);
    ev.request.status = status;
    lx_bus_publish(&ev);
}

void lx_req_drop_body(struct lx_req *req)
{
    lx_buf_free(&req->body);
}

char *lx_req_take_body(struct lx_req *req, size_t *len)
{
    char *body = lx_buf_steal(&req->out, len);
    req->bytes_out = *len;
    req->t_first_byte = lx_now_ms_f();
    return body;
}

static void drain_cb(void *arg)
{
    struct lx_req *req = arg;
    if (!req->client_gone && req->handler && req->handler->on_drain)
        req->handler->on_drain(req->handler, req);
    lx_req_release(req);
}

ssize_t lx_req_stream_read(struct lx_req *req, char *buf, size_t max)
{
    if (req->client_gone)
        return LX_REQ_STREAM_CUT;
    size_t avail = lx_buf_avail(&req->out);
    if (avail) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, lx_buf_head(&req->out), n);
        lx_buf_consume(&req->out, n);
        if (!lx_buf_avail(&req->out))
            lx_buf_free(&req->out); /* between a stream's events, hold no buffer */
        req->bytes_out += n;
        if (!req->t_first_byte)
            req->t_first_byte = lx_now_ms_f();
        if (req->drain_wanted && lx_buf_avail(&req->out) < LX_REQ_OUT_LOW) {
            req->drain_wanted = false;
            lx_defer(drain_cb, lx_req_hold(req)); /* the transport's own callback is on the stack */
        }
        return (ssize_t)n;
    }
    if (req->out_cut)
        return LX_REQ_STREAM_CUT;
    return req->out_ended ? LX_REQ_STREAM_END : 0;
}

/* --- the handler side --- */

static bool req_writable(struct lx_req *req)
{
    return !req->client_gone && req->state != LX_REQ_FINISHED;
}

void lx_req_set_handler(struct lx_req *req, struct lx_req_handler *h)
{
    req->handler = h;
}

const char *lx_req_header(struct lx_req *req, const char *name)
{
    if (!req->transport || req->state == LX_REQ_FINISHED)
        return NULL;
    return req->transport->header(req, name);
}

const char *lx_req_query(struct lx_req *req, const char *name)
{
    if (!req->transport || !req->transport->query || req->state == LX_REQ_FINISHED)
        return NULL;
    return req->transport->query(req, name);
}

void lx_req_add_header(struct lx_req *req, const char *name, const char *value)
{
    lx_strs_push(&req->resp_headers, &req->n_resp_headers, lx_strjoin(name, ": ", value));
}

void lx_req_respond(struct lx_req *req, int status, const char *content_type, const char *body, size_t len)
{
    if (!req_writable(req) || req->state != LX_REQ_HANDLING)
        return;
    req->status = status;
    free(req->content_type);
    req->content_type = lx_strdup(content_type);
    lx_buf_reset(&req->out);
    lx_buf_append(&req->out, body, len);
    lx_req_set_state(req, LX_REQ_RESPONDING);
    wake(req);
}

void lx_req_respond_json(struct lx_req *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct lx_buf b = {0};
    lx_buf_puts(&b, text);
    lx_buf_append(&b, "\n", 1);
    free(text);
    lx_req_respond(req, status, "application/json", b.data, b.len);
    lx_buf_free(&b);
}

void lx_req_respond_error_body(struct lx_req *req, const struct lx_error *err, int status, json_t *body)
{
    if (!req_writable(req) || req->state != LX_REQ_HANDLING) {
        json_decref(body);
        return;
    }
    free(req->error_code);
    req->error_code = err->code ? lx_strdup(err->code) : lx_sprintf("http_%d", err->status);
    if (status == 401)
        lx_req_add_header(req, "WWW-Authenticate", "Bearer");
    if (err->retry_after)
        lx_req_add_header(req, "Retry-After", err->retry_after);
    if (lx_error_no_retry(err))
        lx_req_add_header(req, "X-Should-Retry", "false");
    lx_req_respond_json(req, status, body);
}

void lx_req_respond_error(struct lx_req *req, const struct lx_error *err)
{
    lx_req_respond_error_body(req, err, err->status, lx_error_json(err));
}

void lx_req_stream_begin(struct lx_req *req, int status, const char *content_type)
{
    if (!req_writable(req) || req->state != LX_REQ_HANDLING)
        return;
    req->status = status;
    free(req->content_type);
    req->content_type = lx_strdup(content_type);
    lx_req_set_state(req, LX_REQ_STREAMING);
    wake(req);
}

void lx_req_stream_write(struct lx_req *req, const char *data, size_t len)
{
    if (!req_writable(req) || req->state != LX_REQ_STREAMING || req->out_ended)
        return;
    lx_buf_append(&req->out, data, len);
    if (len) {
        /* An SSE event ends with a blank line; the writers write whole events, so looking at the end of
         * each write is enough. */
        const char *e = data + len;
        bool blank = (len >= 2 && e[-1] == '\n' && e[-2] == '\n') ||
                     (len >= 3 && e[-1] == '\n' && e[-2] == '\r' && e[-3] == '\n');
        req->out_mid_event = !blank;
    }
    wake(req);
}

static bool probe_fits(struct lx_req *req)
{
    return req_writable(req) && req->state == LX_REQ_STREAMING && !req->out_ended &&
           !req->out_cut && !req->out_mid_event && req->content_type &&
           strncasecmp(req->content_type, "text/event-stream", 17) == 0;
}

static void probe_cb(void *arg)
{
    struct lx_req *req = arg;
    if (probe_fits(req) && lx_buf_avail(&req->out) == 0) {
        static const char comment[] = ": keep-alive\n\n";
        lx_buf_append(&req->out, comment, sizeof comment - 1);
        wake(req);
    }
    lx_req_release(req);
}

bool lx_req_probe_client(struct lx_req *req)
{
    if (!probe_fits(req))
        return false;
    lx_defer(probe_cb, lx_req_hold(req));
    return true;
}

void lx_req_stream_end(struct lx_req *req)
{
    if (!req_writable(req) || req->state != LX_REQ_STREAMING)
        return;
    req->out_ended = true;
    wake(req);
}

void lx_req_stream_cut(struct lx_req *req)
{
    if (!req_writable(req) || req->state != LX_REQ_STREAMING)
        return;
    req->out_ended = true;
    req->out_cut = true;
    wake(req);
}

bool lx_req_can_write(struct lx_req *req)
{
    if (lx_buf_avail(&req->out) < LX_REQ_OUT_HIGH)
        return true;
    req->drain_wanted = true;
    return false;
}

bool lx_req_started(const struct lx_req *req)
{
    return req->state == LX_REQ_STREAMING;
}
