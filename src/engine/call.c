/* An upstream chat call: builds the provider's request, drives the transfer, enforces the first-byte,
 * idle and total timeouts, decodes the stream, and maps every failure to an OpenAI error (502 for a
 * broken or foreign answer, 504 for a timeout, the upstream's own status for its error answers). A
 * buffered answer is bounded by limits.max_upstream_body_bytes; a stream ends at its protocol's end
 * marker, not at the end of its HTTP body. */
#include "call.h"
#include "../../providers/provider.h"
#include "../core/buf.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/log.h"
#include "../core/passthru.h"
#include "../io/loop.h"
#include "../io/upstream.h"

#include <stdlib.h>
#include <string.h>

struct lx_call {
    const struct lx_provider_conf *p; /* borrowed: the owner keeps the config alive until the call ends */
    const struct lx_provider_type *type; /* p's type (static): the deferred free may run after the config
                                          * that holds p is gone (its last request ended meanwhile) */
    struct lx_chat chat;              /* owned: body and model */
    const struct lx_call_ops *ops;
    void *owner;                      /* borrowed */
    struct lx_upstream *up;           /* owned until its on_done; NULL after */
    void *local;                      /* owned: local provider state, freed by type->local_free */
    struct lx_timer *t_local;         /* owned: the local provider's next step */
    bool local_paused;                /* a local stream waits for lx_call_resume (the client is slow) */
    void *stream;                     /* owned: decoder state, freed by type->stream_close */
    /* The provider's timeouts share one timer (a stream holds one libevent event for them, not two):
     * t_limit runs to the earliest of the armed deadlines (lx_now_ms_f; 0 = not armed). */
    struct lx_timer *t_limit;         /* owned */
    double first_at, idle_at, total_at;
    int status;
    char *retry_after;                /* owned */
    struct lx_buf body;               /* owned: non-stream or error body */
    struct lx_error err;              /* the failure decided before on_done */
    char *dropped;                    /* owned: parameters the provider dropped, or NULL */
    bool got_byte;
    bool ended;                       /* on_done was called, or cancelled */
};

static void call_free(void *arg)
{
    struct lx_call *c = arg;
    if (c->up)
        lx_upstream_cancel(c->up);
    if (c->local)
        c->type->local_free(c->local);
    lx_timer_free(c->t_local);
    if (c->stream)
        c->type->stream_close(c->stream);
    lx_timer_free(c->t_limit);
    json_decref(c->chat.body);
    json_decref(c->chat.native);
    free(c->chat.model);
    free(c->retry_after);
    free(c->dropped);
    lx_buf_free(&c->body);
    lx_error_clear(&c->err);
    free(c);
}

static void stop_timers(struct lx_call *c)
{
    lx_timer_stop(c->t_local);
    c->first_at = c->idle_at = c->total_at = 0;
    lx_timer_stop(c->t_limit);
}

/* Deliver the end to the owner (a completion as bytes when `bytes`) and schedule the free. From the loop. */
static void finish_as(struct lx_call *c, json_t *completion, const struct lx_answer_bytes *bytes,
                      const struct lx_error *err)
{
    if (c->ended) {
        json_decref(completion);
        return;
    }
    c->ended = true;
    stop_timers(c);
    if (c->up) {
        lx_upstream_cancel(c->up);
        c->up = NULL;
    }
    if (bytes)
        c->ops->on_done_bytes(c->owner, bytes);
    else
        c->ops->on_done(c->owner, completion, err && lx_error_isset(err) ? err : NULL);
    lx_defer(call_free, c);
}

static void finish(struct lx_call *c, json_t *completion, const struct lx_error *err)
{
    finish_as(c, completion, NULL, err);
}

static void emit_cb(void *ctx, json_t *chunk)
{
    struct lx_call *c = ctx;
    if (!c->ended)
        c->ops->on_chunk(c->owner, chunk);
}

static void emit_bytes_cb(void *ctx, const struct lx_answer_bytes *chunk)
{
    struct lx_call *c = ctx;
    if (!c->ended)
        c->ops->on_chunk_bytes(c->owner, chunk);
}

static void timeout_fire(struct lx_call *c, const char *which, long ms)
{
    struct lx_error e = {0};
    lx_error_set(&e, 504, "upstream_error", NULL, "upstream_timeout",
                 "Provider '%s' did not answer in time (%s of %ld ms).", c->p->name, which, ms);
    lx_warn("provider %s: %s timeout after %ld ms", c->p->name, which, ms);
    finish(c, NULL, &e);
    lx_error_clear(&e);
}

/* The earliest armed deadline, 0 when none is. */
static double limits_next(const struct lx_call *c)
{
    double at = 0;
    const double d[] = {c->first_at, c->idle_at, c->total_at};
    for (size_t i = 0; i < LX_ARRAY_LEN(d); i++)
        if (d[i] > 0 && (at == 0 || d[i] < at))
            at = d[i];
    return at;
}

/* (Re)start t_limit for the earliest armed deadline. */
static void limits_arm(struct lx_call *c)
{
    double at = limits_next(c);
    if (at == 0) {
        lx_timer_stop(c->t_limit);
        return;
    }
    double left = at - lx_now_ms_f();
    lx_timer_start(c->t_limit, left > 0 ? (long)left + 1 : 0);
}

/* One of the timeouts is due (within a millisecond: libevent measures from the time it cached for the loop's
 * turn), or the timer ran early for it: the earliest due one fails the call, else the timer is re-armed. */
static void limit_cb(void *arg)
{
    struct lx_call *c = arg;
    double at = limits_next(c);
    if (at == 0)
        return;
    if (at > lx_now_ms_f() + 1) {
        limits_arm(c);
        return;
    }
    const struct lx_timeouts *t = &c->p->timeouts;
    if (at == c->first_at)
        timeout_fire(c, "first_byte_ms", t->first_byte_ms);
    else if (at == c->idle_at)
        timeout_fire(c, "idle_ms", t->idle_ms);
    else
        timeout_fire(c, "total_ms", t->total_ms);
}

/* --- local providers: one step per timer turn --- */

/* Hand out the local provider's pieces until it asks for a wait, the client is full (streams), or the
 * answer is complete. From the call's timer. */
static void local_step_cb(void *arg)
{
    struct lx_call *c = arg;
    for (;;) {
        if (c->chat.stream && !c->ops->can_write(c->owner)) {
            c->local_paused = true; /* lx_call_resume goes on */
            return;
        }
        json_t *out = NULL;
        long delay = 0;
        struct lx_error e = {0};
        int rc = c->p->type->local_next(c->local, &out, &delay, &e);
        if (rc == LX_OK) {
            emit_cb(c, out);
            json_decref(out);
            if (c->ended)
                return; /* the owner cancelled from on_chunk */
            if (delay > 0) {
                lx_timer_start(c->t_local, delay);
                return;
            }
            continue;
        }
        finish(c, rc == LX_DONE ? out : NULL, rc == LX_ERR ? &e : NULL);
        lx_error_clear(&e);
        return;
    }
}

/* --- upstream callbacks (on_headers and on_body run inside libcurl) --- */

static void up_headers(void *ctx, int status, const char *content_type, const char *retry_after)
{
    (void)content_type;
    struct lx_call *c = ctx;
    c->status = status;
    if (retry_after)
        c->retry_after = lx_strdup(retry_after);
}

static bool streaming_ok(const struct lx_call *c)
{
    return c->chat.stream && c->status >= 200 && c->status < 300;
}

static int up_body(void *ctx, const char *data, size_t len)
{
    struct lx_call *c = ctx;
    if (c->ended)
        return LX_ERR;
    if (!c->got_byte) {
        c->got_byte = true;
        c->first_at = 0;
    }
    if (streaming_ok(c)) {
        if (!c->ops->can_write(c->owner)) {
            /* The client is slow: hold the upstream instead of buffering for it. */
            c->idle_at = 0;
            limits_arm(c);
            return LX_AGAIN;
        }
        c->idle_at = lx_now_ms_f() + (double)c->p->timeouts.idle_ms;
        limits_arm(c);
        const struct lx_provider_type *t = c->p->type;
        int rc = t->stream_feed_bytes && c->ops->on_chunk_bytes && c->p->passthrough
                     ? t->stream_feed_bytes(c->stream, data, len, emit_cb, emit_bytes_cb, c, &c->err)
                     : t->stream_feed(c->stream, data, len, emit_cb, c, &c->err);
        if (rc != LX_OK) {
            if (!lx_error_isset(&c->err))
                lx_error_set(&c->err, 502, "upstream_error", NULL, "bad_upstream_response",
                             "Provider '%s' sent a malformed stream.", c->p->name);
            return LX_ERR;
        }
        if (c->ended)
            return LX_ERR;
        if (c->p->type->stream_ended && c->p->type->stream_ended(c->stream)) {
            /* The protocol said this is the end: up_done follows on the next loop turn, not when the
             * body ends, and no timeout may overtake it in between. */
            stop_timers(c);
            return LX_DONE;
        }
        return LX_OK;
    }
    if (c->body.len + len > c->p->max_upstream_body_bytes) {
        /* Refused at the first byte over, and the transfer aborted: never read (or paid for) to the end. */
        lx_error_set(&c->err, 502, "upstream_error", NULL, "upstream_response_too_large",
                     "Provider '%s' sent a response larger than limits.max_upstream_body_bytes (%zu bytes); "
                     "it was cut off there.", c->p->name, c->p->max_upstream_body_bytes);
        return LX_ERR;
    }
    lx_buf_append(&c->body, data, len);
    return LX_OK;
}

static void up_done(void *ctx, enum lx_upstream_result r, const char *detail)
{
    struct lx_call *c = ctx;
    c->up = NULL; /* lx_upstream frees itself after this returns */
    struct lx_error e = {0};
    json_t *completion = NULL;
    struct lx_answer_bytes bytes;
    const struct lx_provider_type *t = c->p->type;
    if (r == LX_UP_OK && !lx_error_isset(&c->err) && c->status >= 200 && c->status < 300 && !c->chat.stream &&
        c->chat.kind == LX_CALL_CHAT && c->ops->on_done_bytes && t->chat_response_bytes && c->p->passthrough &&
        t->chat_response_bytes(c->p, &c->chat, c->body.data, c->body.len, &bytes) == LX_OK) {
        finish_as(c, NULL, &bytes, NULL); /* the pass-through path: the upstream's bytes as they came */
        return;
    }
    if (lx_error_isset(&c->err)) {
        lx_error_copy(&e, &c->err);
    } else if (r == LX_UP_CONNECT) {
        lx_error_set(&e, 502, "upstream_error", NULL, "upstream_unreachable", "Cannot reach provider '%s': %s.",
                     c->p->name, detail);
    } else if (r == LX_UP_TIMEOUT) {
        lx_error_set(&e, 504, "upstream_error", NULL, "upstream_timeout", "Provider '%s' timed out: %s.",
                     c->p->name, detail);
    } else if (r != LX_UP_OK) {
        lx_error_set(&e, 502, "upstream_error", NULL, "bad_upstream_response",
                     "Provider '%s' failed mid-answer: %s.", c->p->name, detail);
    } else if (c->status >= 400) {
        c->p->type->error_response(c->p, c->status, c->body.data, c->body.len, &e);
        if (c->retry_after && !e.retry_after)
            e.retry_after = lx_strdup(c->retry_after);
    } else if (c->status < 200 || c->status >= 300) {
        lx_error_set(&e, 502, "upstream_error", NULL, "bad_upstream_response",
                     "Provider '%s' answered with unexpected HTTP status %d.", c->p->name, c->status);
    } else if (c->chat.stream) {
        c->p->type->stream_finish(c->stream, emit_cb, c, &e);
    } else if (c->chat.kind == LX_CALL_EMBEDDINGS) {
        completion = c->p->type->embeddings_response(c->p, &c->chat, c->body.data, c->body.len, &e);
    } else if (c->chat.kind == LX_CALL_COUNT_TOKENS) {
        completion = c->p->type->count_tokens_response(c->p, &c->chat, c->body.data, c->body.len, &e);
    } else {
        completion = c->p->type->chat_response(c->p, &c->chat, c->body.data, c->body.len, &e);
    }
    if (lx_error_isset(&e) && e.status >= 500)
        lx_warn("provider %s: %s", c->p->name, e.message);
    finish(c, completion, &e);
    lx_error_clear(&e);
}

static const struct lx_upstream_ops lx_call_upstream_ops = {
    .on_headers = up_headers,
    .on_body = up_body,
    .on_done = up_done,
};

/* What the pivot could not carry of a client's own API (chat.native's "lost") is dropped too, unless this
 * provider sends the client's own body. */
static void add_lost(struct lx_call *c)
{
    if (!c->chat.native || lx_chat_native(&c->chat, c->p->type->native_api))
        return;
    struct lx_http_request names = {.dropped = c->dropped};
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c->chat.native, "lost"), i, v) {
        if (json_is_string(v))
            lx_http_request_drop(&names, json_string_value(v));
    }
    c->dropped = names.dropped;
}

struct lx_call *lx_call_start(const struct lx_provider_conf *p, struct lx_chat *chat, const struct lx_call_ops *ops,
                              void *owner, struct lx_error *err)
{
    struct lx_call *c = lx_calloc(1, sizeof *c);
    c->p = p;
    c->type = p->type;
    c->chat = *chat;
    c->chat.traceparent = NULL; /* the caller's, read below before returning */
    chat->body = NULL;
    chat->model = NULL;
    /* A chat checked from its bytes comes without a tree (lx_dialect.parse_bytes): build it for a provider
     * that cannot send the bytes on (another type, "passthrough": false, a body to merge into). */
    if (c->chat.kind == LX_CALL_CHAT && !c->chat.body && c->chat.bytes.data &&
        !(p->passthrough && p->type->chat_response_bytes &&
          lx_passthru_request_ok(&c->chat.bytes, c->chat.model, c->chat.stream && c->chat.include_usage)))
        c->chat.body = lx_passthru_tree(&c->chat.bytes);
    if (!p->passthrough)
        c->chat.bytes = (struct lx_chat_bytes){0}; /* the provider builds the upstream body itself */
    chat->native = NULL;
    c->ops = ops;
    c->owner = owner;
    if (p->type->local_start) {
        long delay = 0;
        const char *dropped = NULL;
        c->local = p->type->local_start(p, &c->chat, &delay, &dropped);
        c->dropped = dropped ? lx_strdup(dropped) : NULL;
        add_lost(c);
        /* Even a refusal comes from the loop: no callback runs before lx_call_start returns. */
        c->t_local = lx_timer_new(local_step_cb, c);
        lx_timer_start(c->t_local, delay);
        return c;
    }
    struct lx_http_request hr = {0};
    int rc = c->chat.kind == LX_CALL_EMBEDDINGS     ? p->type->embeddings_request(p, &c->chat, &hr, err)
             : c->chat.kind == LX_CALL_COUNT_TOKENS ? p->type->count_tokens_request(p, &c->chat, &hr, err)
                                                    : p->type->chat_request(p, &c->chat, &hr, err);
    if (rc != LX_OK) {
        lx_http_request_free(&hr);
        call_free(c);
        return NULL;
    }
    c->dropped = hr.dropped;
    hr.dropped = NULL;
    add_lost(c);
    /* The request is built: its tree and the client's bytes (which the exec may free once it has a
     * winner) are not read again; the answer's decoders use the model, ids and flags only. */
    json_decref(c->chat.body);
    c->chat.body = NULL;
    c->chat.bytes = (struct lx_chat_bytes){0};
    if (c->chat.request_id)
        lx_http_request_add_header(&hr, "X-Request-Id: %s", c->chat.request_id);
    if (chat->traceparent) {
        lx_http_request_add_header(&hr, "traceparent: %s", chat->traceparent);
        if (c->chat.origin && c->chat.origin->tracestate)
            lx_http_request_add_header(&hr, "tracestate: %s", c->chat.origin->tracestate);
    }
    if (c->chat.stream)
        c->stream = p->type->stream_open(p, &c->chat);
    c->t_limit = lx_timer_new(limit_cb, c);
    c->up = lx_upstream_start(&hr, p->timeouts.connect_ms, &lx_call_upstream_ops, c);
    lx_http_request_free(&hr);
    if (!c->up) {
        lx_error_set(err, 502, "upstream_error", NULL, "upstream_unreachable",
                     "Cannot start a request to provider '%s'.", p->name);
        call_free(c);
        return NULL;
    }
    double now = lx_now_ms_f();
    c->first_at = now + (double)p->timeouts.first_byte_ms;
    c->total_at = now + (double)p->timeouts.total_ms;
    limits_arm(c);
    return c;
}

void lx_call_cancel(struct lx_call *c)
{
    if (!c || c->ended)
        return;
    c->ended = true;
    stop_timers(c);
    if (c->up) {
        lx_upstream_cancel(c->up); /* closes the connection now, or on the next turn inside curl */
        c->up = NULL;
    }
    /* local_step_cb may be on the stack (cancel from on_chunk): the state goes with the deferred free. */
    lx_defer(call_free, c);
}

const char *lx_call_dropped(const struct lx_call *c)
{
    return c ? c->dropped : NULL;
}

void lx_call_resume(struct lx_call *c)
{
    if (c && !c->ended && c->local && c->local_paused) {
        c->local_paused = false;
        lx_timer_start(c->t_local, 0);
    }
    if (!c || c->ended || !c->up)
        return;
    c->idle_at = lx_now_ms_f() + (double)c->p->timeouts.idle_ms;
    limits_arm(c);
    lx_upstream_resume(c->up);
}
