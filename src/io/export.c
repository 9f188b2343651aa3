/* The batched exporter: a ring of serialized items, one POST in flight, its timers. A batch is the first
 * min(n, batch_max) items; they stay in the queue (and count against queue_max) until the batch is
 * delivered or dropped. Each attempt is a fresh request (the owner's headers may sign it anew). */
#include "export.h"
#include "loop.h"
#include "upstream.h"
#include "../core/buf.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/httpreq.h"
#include "../core/log.h"
#include "../core/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lx_export {
    const char *sink;            /* static */
    const struct lx_export_ops *ops;
    void *ctx;                   /* borrowed */
    char *url;                   /* owned */
    char **headers;              /* owned */
    size_t n_headers;
    struct lx_export_limits lim;
    char **q;                    /* owned: cap slots, a ring */
    size_t cap, head, n;
    size_t sending;              /* items at the head in the batch being sent (0: none) */
    char *body;                  /* owned: that batch */
    size_t body_len;
    char batch_id[48];
    int attempt;                 /* tries of that batch so far */
    struct lx_upstream *up;      /* owned until its on_done */
    int status;
    char *retry_after;           /* owned */
    struct lx_timer *flush;      /* owned: a batch is due */
    struct lx_timer *retry;      /* owned: the batch is tried again */
    struct lx_timer *timeout;    /* owned: the POST in flight took too long */
    bool stopped;                /* LX_EXPORT_STOP: until the next lx_export_set */
    bool draining;               /* no retries: what fails now is dropped */
    long dropped;
    long unlogged;               /* dropped since the last log line about it */
    uint64_t logged_at;          /* lx_now_ms of that line; 0 = none yet */
    unsigned long long batches;  /* for ids */
};

static char *q_at(const struct lx_export *x, size_t i)
{
    return x->q[(x->head + i) % x->cap];
}

static void q_pop(struct lx_export *x, size_t k)
{
    for (size_t i = 0; i < k && x->n; i++) {
        free(x->q[x->head]);
        x->q[x->head] = NULL;
        x->head = (x->head + 1) % x->cap;
        x->n--;
    }
}

/* Count k dropped items; the log says so at most once a second (an overloaded receiver would otherwise
 * flood it), with how many went since it last did. */
static void drop(struct lx_export *x, size_t k, const char *why)
{
    if (!k)
        return;
    x->dropped += (long)k;
    x->unlogged += (long)k;
    lx_metrics_events_dropped(x->sink, (long)k);
    uint64_t now = lx_now_ms();
    if (x->logged_at && now - x->logged_at < 1000)
        return;
    lx_warn("%s %s: dropped %ld item(s): %s", x->sink, x->url, x->unlogged, why);
    x->unlogged = 0;
    x->logged_at = now;
}

/* The flush is due now (a full batch, or the drain), or within flush_ms (the first item of one). */
static void schedule(struct lx_export *x)
{
    if (x->sending || x->stopped || !x->n)
        return;
    if ((long)x->n >= x->lim.batch_max || x->draining)
        lx_timer_start(x->flush, 0);
    else if (!lx_timer_pending(x->flush))
        lx_timer_start(x->flush, x->lim.flush_ms);
}

void lx_export_push(struct lx_export *x, char *item)
{
    if (x->stopped || x->n == x->cap) {
        free(item);
        drop(x, 1, x->stopped ? "the receiver asked for no more (410 Gone)" : "the queue is full (queue_max)");
        return;
    }
    x->q[(x->head + x->n) % x->cap] = item;
    x->n++;
    schedule(x);
}

static void batch_done(struct lx_export *x, bool delivered, const char *why)
{
    free(x->body);
    x->body = NULL;
    if (!delivered)
        drop(x, x->sending, why);
    q_pop(x, x->sending);
    x->sending = 0;
    x->attempt = 0;
    schedule(x);
}

static void up_headers(void *ctx, int status, const char *content_type, const char *retry_after)
{
    (void)content_type;
    struct lx_export *x = ctx;
    x->status = status;
    free(x->retry_after);
    x->retry_after = retry_after ? lx_strdup(retry_after) : NULL;
}

static int up_body(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return LX_OK; /* the receiver's answer body is not read */
}

/* The POST ended (status 0: no answer, detail says why). From the loop. */
static void attempt_over(struct lx_export *x, int status, const char *detail)
{
    lx_timer_stop(x->timeout);
    enum lx_export_verdict v = x->ops->verdict(x->ctx, status);
    char why[160];
    if (status)
        snprintf(why, sizeof why, "HTTP %d", status);
    else
        snprintf(why, sizeof why, "%s", detail);
    if (v == LX_EXPORT_DELIVERED) {
        batch_done(x, true, NULL);
        return;
    }
    if (v == LX_EXPORT_STOP) {
        lx_warn("%s %s: the receiver answered %s; nothing more goes to it until a reload", x->sink, x->url, why);
        x->stopped = true;
        x->sending = x->n;
        batch_done(x, false, "the receiver asked for no more");
        return;
    }
    if (v == LX_EXPORT_DROP || x->draining || x->attempt > x->lim.retries_max) {
        char msg[320];
        snprintf(msg, sizeof msg, "batch %s failed (%s) after %d attempt(s)%s", x->batch_id, why, x->attempt,
                 x->draining ? " while shutting down" : "");
        batch_done(x, false, msg);
        return;
    }
    long delay = lx_backoff_ms(x->attempt - 1, x->lim.retry_base_ms, x->lim.retry_max_ms, x->retry_after,
                               lx_random64());
    lx_info("%s %s: batch %s failed (%s); attempt %d in %ld ms", x->sink, x->url, x->batch_id, why, x->attempt + 1,
            delay);
    lx_timer_start(x->retry, delay);
}

static void up_done(void *ctx, enum lx_upstream_result r, const char *detail)
{
    struct lx_export *x = ctx;
    x->up = NULL;
    attempt_over(x, r == LX_UP_OK ? x->status : 0, detail);
}

static const struct lx_upstream_ops lx_export_upstream_ops = {
    .on_headers = up_headers,
    .on_body = up_body,
    .on_done = up_done,
};

static void timeout_cb(void *arg)
{
    struct lx_export *x = arg;
    lx_upstream_cancel(x->up);
    x->up = NULL;
    char why[64];
    snprintf(why, sizeof why, "no answer within timeout_ms (%ld ms)", x->lim.timeout_ms);
    attempt_over(x, 0, why);
}

/* One attempt of the batch in x->body. */
static void send_batch(struct lx_export *x)
{
    x->attempt++;
    x->status = 0;
    struct lx_http_request hr = {.method = "POST", .url = lx_strdup(x->url), .body = lx_malloc(x->body_len + 1)};
    memcpy(hr.body, x->body, x->body_len + 1);
    hr.body_len = x->body_len;
    lx_http_request_add_header(&hr, "Content-Type: application/json");
    lx_http_request_add_header(&hr, "User-Agent: llmux/%s", LX_VERSION);
    for (size_t i = 0; i < x->n_headers; i++)
        lx_http_request_add_header(&hr, "%s", x->headers[i]);
    if (x->ops->headers)
        x->ops->headers(x->ctx, &hr, x->batch_id);
    x->up = lx_upstream_start(&hr, x->lim.timeout_ms, &lx_export_upstream_ops, x);
    lx_http_request_free(&hr);
    if (!x->up) {
        attempt_over(x, 0, "libcurl refused the request");
        return;
    }
    lx_timer_start(x->timeout, x->lim.timeout_ms);
}

static void retry_cb(void *arg)
{
    send_batch(arg);
}

/* The next batch from the head of the queue. */
static void flush_cb(void *arg)
{
    struct lx_export *x = arg;
    if (x->sending || x->stopped || !x->n)
        return;
    x->sending = x->n < (size_t)x->lim.batch_max ? x->n : (size_t)x->lim.batch_max;
    char **items = lx_malloc(x->sending * sizeof *items);
    for (size_t i = 0; i < x->sending; i++)
        items[i] = q_at(x, i);
    struct lx_buf b = {0};
    x->ops->body(x->ctx, items, x->sending, x->dropped, &b);
    free(items);
    x->body = lx_buf_steal(&b, &x->body_len);
    snprintf(x->batch_id, sizeof x->batch_id, "msg_%llx_%llu", (unsigned long long)(lx_wall_ns() / 1000),
             ++x->batches);
    x->attempt = 0;
    send_batch(x);
}

struct lx_export *lx_export_new(const char *sink, const struct lx_export_ops *ops, void *ctx)
{
    struct lx_export *x = lx_calloc(1, sizeof *x);
    x->sink = sink;
    x->ops = ops;
    x->ctx = ctx;
    x->flush = lx_timer_new(flush_cb, x);
    x->retry = lx_timer_new(retry_cb, x);
    x->timeout = lx_timer_new(timeout_cb, x);
    lx_metrics_events_dropped(sink, 0);
    return x;
}

/* queue_max changed: items keep their order; the newest that no longer fit are dropped (never the batch
 * being sent). */
static void resize(struct lx_export *x, size_t cap)
{
    if (cap < x->sending)
        cap = x->sending;
    if (cap == x->cap)
        return;
    size_t keep = x->n < cap ? x->n : cap;
    char **q = lx_calloc(cap, sizeof *q);
    for (size_t i = 0; i < x->n; i++) {
        if (i < keep)
            q[i] = q_at(x, i);
        else
            free(q_at(x, i));
    }
    drop(x, x->n - keep, "queue_max shrank");
    free(x->q);
    x->q = q;
    x->cap = cap;
    x->head = 0;
    x->n = keep;
}

void lx_export_set(struct lx_export *x, const char *url, char *const *headers, size_t n_headers,
                   const struct lx_export_limits *lim)
{
    free(x->url);
    x->url = lx_strdup(url);
    lx_strs_free(&x->headers, &x->n_headers);
    for (size_t i = 0; i < n_headers; i++)
        lx_strs_push(&x->headers, &x->n_headers, lx_strdup(headers[i]));
    x->lim = *lim;
    resize(x, (size_t)lim->queue_max);
    x->stopped = false;
}

void lx_export_flush(struct lx_export *x)
{
    x->draining = true;
    if (lx_timer_pending(x->retry)) {
        lx_timer_stop(x->retry);
        batch_done(x, false, "the server is shutting down");
    }
    schedule(x);
}

size_t lx_export_pending(const struct lx_export *x)
{
    return x->stopped ? 0 : x->n;
}

void lx_export_free(struct lx_export *x, const char *why)
{
    if (!x)
        return;
    if (x->up)
        lx_upstream_cancel(x->up);
    drop(x, x->n, why);
    q_pop(x, x->n);
    free(x->q);
    free(x->body);
    free(x->retry_after);
    free(x->url);
    lx_strs_free(&x->headers, &x->n_headers);
    lx_timer_free(x->flush);
    lx_timer_free(x->retry);
    lx_timer_free(x->timeout);
    free(x);
}
