/* A transport without a socket (struct lx_transport of src/server/req.h), for unit tests that drive
 * requests: request headers from a list, the answer collected as a transport would send it (a whole
 * body, or the stream's bytes as they are queued), and a loop run until the answer is complete. */
#ifndef LX_FAKE_TRANSPORT_H
#define LX_FAKE_TRANSPORT_H

#include "unit.h"
#include "../../src/core/buf.h"
#include "../../src/core/common.h"
#include "../../src/io/loop.h"
#include "../../src/server/req.h"

#include <strings.h>

struct fake_req {
    struct lx_req req;          /* embedded, as a transport's record holds it */
    const char *const *headers; /* borrowed: "Name", "value", ..., NULL */
    int wakes;
    bool done;                  /* the whole answer is out (a body, or the stream's end or cut) */
    bool cut;                   /* the stream ended with an error */
    bool read_stream;           /* copy stream bytes out after each wake, as MHD would (default) */
    struct lx_timer *collect;   /* owned: takes the output after a wake */
    struct lx_buf sent;         /* owned: what the client would have got, body or stream bytes */
    bool *disposed;             /* set when the record is freed, if given */
};

static struct fake_req *fake_of(struct lx_req *req)
{
    return LX_CONTAINER_OF(req, struct fake_req, req);
}

static const char *fake_header(struct lx_req *req, const char *name)
{
    const char *const *h = fake_of(req)->headers;
    for (size_t i = 0; h && h[i]; i += 2)
        if (strcasecmp(h[i], name) == 0)
            return h[i + 1];
    return NULL;
}

/* Take what the request has for its client, as MHD's access handler and content reader would. */
static void fake_collect(struct fake_req *f)
{
    struct lx_req *req = &f->req;
    if (f->done)
        return;
    if (req->state == LX_REQ_RESPONDING) {
        size_t len;
        char *body = lx_req_take_body(req, &len);
        lx_buf_append(&f->sent, body, len);
        free(body);
        f->done = true;
    } else if (req->state == LX_REQ_STREAMING && f->read_stream) {
        char buf[16384];
        ssize_t n;
        while ((n = lx_req_stream_read(req, buf, sizeof buf)) > 0)
            lx_buf_append(&f->sent, buf, (size_t)n);
        if (n == LX_REQ_STREAM_END || n == LX_REQ_STREAM_CUT) {
            f->done = true;
            f->cut = n == LX_REQ_STREAM_CUT;
        }
    }
    if (f->done)
        lx_loop_stop();
}

static void fake_collect_cb(void *arg)
{
    fake_collect(arg);
}

/* Like MHD, the fake takes the output on a later loop turn (a timer: after the loop has polled, as a
 * socket's readiness would), not inside the writer's call. */
static void fake_wake(struct lx_req *req)
{
    struct fake_req *f = fake_of(req);
    f->wakes++;
    if (!lx_timer_pending(f->collect))
        lx_timer_start(f->collect, 0);
}

static void fake_dispose(struct lx_req *req)
{
    struct fake_req *f = fake_of(req);
    if (f->disposed)
        *f->disposed = true;
    lx_timer_free(f->collect);
    lx_buf_free(&f->sent);
    free(f);
}

static const struct lx_transport fake_transport = {
    .header = fake_header,
    .wake = fake_wake,
    .dispose = fake_dispose,
};

/* A request whose whole body is in, not yet dispatched. */
static struct fake_req *fake_req_new(struct lx_config *cfg, const char *method, const char *path, const char *body,
                                     const char *const *headers)
{
    struct fake_req *f = lx_calloc(1, sizeof *f);
    lx_req_init(&f->req, &fake_transport, cfg, method, path);
    f->headers = headers;
    lx_req_set_request_id(&f->req, fake_header(&f->req, "X-Request-Id"));
    f->read_stream = true;
    f->collect = lx_timer_new(fake_collect_cb, f);
    if (body)
        lx_buf_puts(&f->req.body, body);
    f->req.bytes_in = f->req.body.len;
    return f;
}

static bool fake_guard_fired;

static void fake_guard_cb(void *arg)
{
    (void)arg;
    fake_guard_fired = true;
    lx_loop_stop();
}

/* Run the loop until f's answer is complete, or at most ms (a hang guard; the test then fails). */
static void fake_run(struct fake_req *f, long ms)
{
    fake_collect(f);
    if (f->done)
        return;
    struct lx_timer *guard = lx_timer_new(fake_guard_cb, NULL);
    fake_guard_fired = false;
    lx_timer_start(guard, ms);
    lx_loop_run();
    lx_timer_free(guard);
    if (fake_guard_fired)
        fail_msg("no complete answer within %ld ms (state %s)", ms, lx_req_state_name(f->req.state));
}

/* Run the loop for the deferred calls and zero-delay timers now queued. */
static void loop_settle(void)
{
    struct lx_timer *t = lx_timer_new(fake_guard_cb, NULL);
    lx_timer_start(t, 1);
    lx_loop_run();
    lx_timer_free(t);
    lx_loop_drain();
}

/* The response header `name` of req, or NULL. */
static const char *resp_header(const struct lx_req *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->n_resp_headers; i++)
        if (strncasecmp(req->resp_headers[i], name, n) == 0 && req->resp_headers[i][n] == ':')
            return req->resp_headers[i] + n + 2;
    return NULL;
}

#endif
