/* Writing an answer through a dialect's slots (dialects/dialect.h). */
#include "reply.h"
#include "conf.h"
#include "../core/common.h"
#include "../core/passthru.h"
#include "../core/conf.h"
#include "../io/loop.h"
#include "../server/req.h"

#include <stdlib.h>
#include <string.h>

static void keepalive_cb(void *arg);

void lx_reply_init(struct lx_reply *r, struct lx_req *req, const struct lx_dialect *d, struct lx_dialect_req *rq)
{
    memset(r, 0, sizeof *r);
    r->req = req;
    r->dialect = d;
    if (rq) {
        r->rq = *rq;
        memset(rq, 0, sizeof *rq);
    }
}

void lx_reply_clear(struct lx_reply *r)
{
    if (r->begun)
        r->dialect->stream_close(r->stream);
    r->stream = NULL;
    lx_timer_free(r->keepalive);
    r->keepalive = NULL;
    lx_dialect_req_clear(&r->rq);
    lx_buf_free(&r->out);
}

/* Hand what the slots appended to the request. */
static void flush(struct lx_reply *r)
{
    if (!r->out.len)
        return;
    lx_req_stream_write(r->req, lx_buf_head(&r->out), lx_buf_avail(&r->out));
    lx_buf_free(&r->out); /* between a stream's events, hold no buffer */
    if (r->keepalive)
        lx_timer_start(r->keepalive, r->keepalive_ms);
}

void lx_reply_begin(struct lx_reply *r)
{
    if (r->begun)
        return;
    r->begun = true;
    lx_req_add_header(r->req, "Cache-Control", "no-cache");
    lx_req_add_header(r->req, "X-Accel-Buffering", "no");
    lx_req_stream_begin(r->req, 200, r->dialect->stream_content_type);
    r->stream = r->dialect->stream_open(&r->rq);
    const struct lx_config *cfg = r->req->cfg;
    r->keepalive_ms = cfg && cfg->api && cfg->api->keepalive_ms ? cfg->api->keepalive_ms : r->dialect->keepalive_ms;
    if (r->dialect->stream_keepalive && r->keepalive_ms > 0)
        r->keepalive = lx_timer_new(keepalive_cb, r);
}

void lx_reply_keepalive(struct lx_reply *r)
{
    if (!r->begun || r->ended)
        return;
    lx_buf_reset(&r->out);
    if (r->dialect->stream_keepalive)
        r->dialect->stream_keepalive(r->stream, &r->out);
    else
        lx_buf_puts(&r->out, ": keep-alive\n\n"); /* an SSE comment: every client skips it */
    flush(r);
}

static void keepalive_cb(void *arg)
{
    struct lx_reply *r = arg;
    if (r->ended)
        return;
    r->dialect->stream_keepalive(r->stream, &r->out);
    if (r->out.len)
        flush(r);
    else
        lx_timer_start(r->keepalive, r->keepalive_ms);
}

void lx_reply_chunk(struct lx_reply *r, json_t *chunk)
{
    if (r->ended)
        return;
    lx_reply_begin(r);
    r->dialect->stream_chunk(r->stream, chunk, &r->out);
    flush(r);
}

static void close_stream(struct lx_reply *r)
{
    r->ended = true;
    lx_timer_stop(r->keepalive);
    lx_req_stream_end(r->req);
}

void lx_reply_end(struct lx_reply *r)
{
    if (r->ended)
        return;
    lx_reply_begin(r);
    r->dialect->stream_end(r->stream, &r->out);
    flush(r);
    close_stream(r);
}

void lx_reply_fail(struct lx_req *req, const struct lx_dialect *d, const struct lx_error *err)
{
    int status = err->status;
    json_t *body = d->error_body(err, &status);
    lx_req_respond_error_body(req, err, status, body);
}

void lx_reply_error(struct lx_reply *r, const struct lx_error *err)
{
    if (r->ended)
        return;
    if (!r->begun) {
        r->ended = true;
        lx_reply_fail(r->req, r->dialect, err);
        return;
    }
    /* The status went out as 200; the log and the request's end event still say it failed. */
    struct lx_req *req = r->req;
    free(req->error_code);
    req->error_code = err->code ? lx_strdup(err->code) : lx_sprintf("http_%d", err->status);
    r->dialect->stream_error(r->stream, err, &r->out);
    flush(r);
    close_stream(r);
}

bool lx_reply_takes_bytes(const struct lx_dialect *d)
{
    return d->stream_chunk_bytes && d->completion_bytes;
}

/* Bytes of an answer read into JSON for a dialect that only takes objects (they were checked by
 * core/jscan as jansson would, so this never fails; if it ever did, the client gets a 502, not garbage). */
static json_t *bytes_json(struct lx_reply *r, const struct lx_answer_bytes *a)
{
    json_t *j = lx_answer_bytes_json(a);
    if (!j) {
        struct lx_error e = {0};
        lx_error_set(&e, 502, "upstream_error", NULL, "bad_upstream_response", "The provider's answer could not be read.");
        lx_reply_error(r, &e);
        lx_error_clear(&e);
    }
    return j;
}

void lx_reply_chunk_bytes(struct lx_reply *r, const struct lx_answer_bytes *chunk)
{
    if (r->ended)
        return;
    if (!r->dialect->stream_chunk_bytes) {
        json_t *j = bytes_json(r, chunk);
        if (j)
            lx_reply_chunk(r, j);
        json_decref(j);
        return;
    }
    lx_reply_begin(r);
    r->dialect->stream_chunk_bytes(r->stream, chunk, &r->out);
    flush(r);
}

void lx_reply_completion_bytes(struct lx_reply *r, const struct lx_answer_bytes *completion)
{
    if (!r->dialect->completion_bytes) {
        json_t *j = bytes_json(r, completion);
        if (j)
            lx_reply_completion(r, j);
        return;
    }
    r->ended = true;
    lx_buf_reset(&r->out);
    r->dialect->completion_bytes(&r->rq, completion, &r->out);
    lx_req_respond(r->req, 200, "application/json", lx_buf_head(&r->out), lx_buf_avail(&r->out));
    lx_buf_reset(&r->out);
}

void lx_reply_completion(struct lx_reply *r, json_t *completion)
{
    r->ended = true;
    json_t *body = r->dialect->completion(&r->rq, completion);
    json_decref(completion);
    lx_req_respond_json(r->req, 200, body);
}
