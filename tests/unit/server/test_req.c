/* Unit tests for src/server/req.c over a fake transport: a whole answer and a stream as the transport
 * takes them, backpressure and the drain wake-up, a client that leaves, limits.max_request_ms (the
 * handler answers in its own shape, or the server does), the request finished event, and freeing. */
#include "../unit.h"
#include "../fake_transport.h"
#include "../../../src/config.h"
#include "../../../src/core/bus.h"
#include "../../../src/core/conf.h"

static struct lx_config *load(const char *json)
{
    char err[512];
    struct lx_config *c = lx_config_load_buffer(json, strlen(json), err, sizeof err);
    if (!c)
        fail_msg("config: %s", err);
    return c;
}

static int setup(void **state)
{
    (void)state;
    return lx_loop_init() == LX_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lx_loop_free();
    lx_bus_shutdown();
    return 0;
}

/* What "request finished" said. */
static struct {
    int n, status;
    const char *route;
} finished;

static void finished_cb(const struct lx_event *ev, void *arg)
{
    (void)arg;
    finished.n++;
    finished.status = ev->request.status;
    finished.route = ev->request.route;
}

static void respond_now(struct lx_req *req)
{
    req->route = "/test";
    lx_req_add_header(req, "X-Test", lx_req_header(req, "x-in") ? lx_req_header(req, "x-in") : "none");
    lx_req_respond_json(req, 201, json_pack("{s:s}", "got", req->body.data));
}

static void test_whole_answer_and_finish(void **state)
{
    (void)state;
    struct lx_config *cfg = load("{}");
    lx_bus_subscribe_mask(LX_EV_REQUEST_END, finished_cb, NULL);
    memset(&finished, 0, sizeof finished);
    static const char *const headers[] = {"X-In", "yes", "X-Request-Id", "abc-123", NULL};
    struct fake_req *f = fake_req_new(cfg, "POST", "/x", "hello", headers);
    bool disposed = false;
    f->disposed = &disposed;
    assert_string_equal(f->req.request_id, "abc-123"); /* a sane client id is kept */
    lx_req_dispatch(&f->req, respond_now);
    fake_run(f, 10000);
    assert_int_equal(f->req.status, 201);
    assert_string_equal(f->req.content_type, "application/json");
    assert_string_equal(f->sent.data, "{\"got\":\"hello\"}\n");
    assert_string_equal(resp_header(&f->req, "X-Test"), "yes");
    assert_int_equal(f->req.bytes_out, f->sent.len);
    lx_req_finish(&f->req, true);
    assert_int_equal(finished.n, 1);
    assert_int_equal(finished.status, 201);
    assert_string_equal(finished.route, "/test");
    assert_null(lx_req_header(&f->req, "X-In")); /* finished: the transport's headers are gone */
    lx_req_release(&f->req);
    assert_true(disposed);
    lx_bus_unsubscribe_mask(LX_EV_REQUEST_END, finished_cb, NULL);
    lx_config_unref(cfg);
}

/* A handler that streams a lot, pausing when the queue is full and going on when it drained. */
struct streamer {
    struct lx_req_handler handler;
    struct lx_req *req;
    int left, drains, aborts;
    const struct lx_error *why_seen;
    bool answer_why;
};

static struct streamer S;

static void streamer_write(struct streamer *s)
{
    static char block[32 * 1024];
    memset(block, 'x', sizeof block);
    while (s->left > 0 && lx_req_can_write(s->req)) {
        lx_req_stream_write(s->req, block, sizeof block);
        s->left--;
    }
    if (s->left == 0) {
        lx_req_stream_end(s->req);
        lx_req_set_handler(s->req, NULL);
    }
}

static void streamer_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    struct streamer *s = LX_CONTAINER_OF(h, struct streamer, handler);
    s->drains++;
    streamer_write(s);
}

static void streamer_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    struct streamer *s = LX_CONTAINER_OF(h, struct streamer, handler);
    s->aborts++;
    s->why_seen = why;
    if (why && s->answer_why) {
        if (lx_req_started(req)) {
            lx_req_stream_write(req, "event: error\n\n", 14);
            lx_req_stream_end(req);
        } else {
            lx_req_respond_error(req, why);
        }
    }
}

static void start_stream(struct lx_req *req)
{
    S.handler = (struct lx_req_handler){.on_abort = streamer_abort, .on_drain = streamer_drain};
    S.req = req;
    lx_req_set_handler(req, &S.handler);
    lx_req_stream_begin(req, 200, "text/event-stream");
    streamer_write(&S);
}

static void test_stream_backpressure(void **state)
{
    (void)state;
    struct lx_config *cfg = load("{}");
    memset(&S, 0, sizeof S);
    S.left = 40; /* 1.25 MiB: several times the high watermark */
    struct fake_req *f = fake_req_new(cfg, "GET", "/s", NULL, NULL);
    f->read_stream = false; /* a slow client: nothing read at first */
    lx_req_dispatch(&f->req, start_stream);
    assert_true(S.left > 0); /* it stopped at the high watermark */
    assert_true(lx_buf_avail(&f->req.out) >= LX_REQ_OUT_HIGH);
    f->read_stream = true; /* the client reads: below the low watermark, on_drain lets the handler go on */
    fake_run(f, 10000);
    assert_int_equal(S.left, 0);
    assert_true(S.drains > 0);
    assert_false(f->cut);
    assert_int_equal(f->sent.len, 40u * 32 * 1024);
    assert_int_equal(f->req.bytes_out, f->sent.len);
    lx_req_finish(&f->req, true);
    lx_req_release(&f->req);
    lx_config_unref(cfg);
}

static void never_answer(struct lx_req *req)
{
    S.handler = (struct lx_req_handler){.on_abort = streamer_abort, .on_drain = streamer_drain};
    S.req = req;
    lx_req_set_handler(req, &S.handler);
}

static void test_client_gone(void **state)
{
    (void)state;
    struct lx_config *cfg = load("{}");
    lx_bus_subscribe_mask(LX_EV_REQUEST_END, finished_cb, NULL);
    memset(&finished, 0, sizeof finished);
    memset(&S, 0, sizeof S);
    struct fake_req *f = fake_req_new(cfg, "POST", "/x", "{}", NULL);
    lx_req_dispatch(&f->req, never_answer);
    lx_req_client_gone(&f->req);
    assert_int_equal(S.aborts, 1);
    assert_null(S.why_seen); /* gone: nothing can be written */
    lx_req_respond(&f->req, 200, "text/plain", "late", 4); /* ignored */
    assert_int_equal(f->req.state, LX_REQ_HANDLING);
    lx_req_finish(&f->req, false);
    assert_int_equal(S.aborts, 1); /* told once */
    assert_int_equal(finished.status, 499);
    assert_string_equal(finished.route, "other");
    lx_req_release(&f->req);
    lx_bus_unsubscribe_mask(LX_EV_REQUEST_END, finished_cb, NULL);
    lx_config_unref(cfg);
}

static bool sent_ends_with(const struct fake_req *f, const char *tail)
{
    size_t n = strlen(tail);
    return f->sent.len >= n && memcmp(f->sent.data + f->sent.len - n, tail, n) == 0;
}

/* The probe of a client that sent a FIN: an SSE comment between two events of a begun SSE stream, queued
 * on the next loop turn; nothing mid-event, before the stream begins, or in another kind of stream. */
static void test_probe_client(void **state)
{
    (void)state;
    struct lx_config *cfg = load("{}");
    memset(&S, 0, sizeof S);
    struct fake_req *f = fake_req_new(cfg, "POST", "/s", "{}", NULL);
    lx_req_dispatch(&f->req, never_answer);
    assert_false(lx_req_probe_client(&f->req)); /* nothing begun: the front's 100 Continue is the probe */
    lx_req_stream_begin(&f->req, 200, "text/event-stream");
    lx_req_stream_write(&f->req, "data: a\n\n", 9);
    loop_settle();
    assert_true(sent_ends_with(f, "data: a\n\n"));
    assert_true(lx_req_probe_client(&f->req));
    assert_true(sent_ends_with(f, "data: a\n\n")); /* deferred: not inside the caller */
    loop_settle();
    assert_true(sent_ends_with(f, "data: a\n\n: keep-alive\n\n"));
    lx_req_stream_write(&f->req, "data: b\n", 8); /* an event not ended yet */
    loop_settle();
    assert_false(lx_req_probe_client(&f->req));
    lx_req_stream_write(&f->req, "\n", 1);
    lx_req_stream_write(&f->req, "data: c\r\n\r\n", 11);
    assert_true(lx_req_probe_client(&f->req));
    lx_req_client_gone(&f->req); /* gone before the probe's turn: it writes nothing */
    size_t before = f->sent.len;
    loop_settle();
    assert_int_equal(f->sent.len, before);
    lx_req_finish(&f->req, false);
    lx_req_release(&f->req);

    f = fake_req_new(cfg, "POST", "/s", "{}", NULL);
    lx_req_dispatch(&f->req, never_answer);
    lx_req_stream_begin(&f->req, 200, "application/x-ndjson");
    lx_req_stream_write(&f->req, "{}\n\n", 4);
    assert_false(lx_req_probe_client(&f->req)); /* not SSE: no harmless bytes to send */
    lx_req_client_gone(&f->req);
    lx_req_finish(&f->req, false);
    lx_req_release(&f->req);
    lx_config_unref(cfg);
}

/* limits.max_request_ms: the handler is told why and answers it; one that does not is answered by the
 * server (an error before the stream began, a cut after). */
static void test_request_deadline(void **state)
{
    (void)state;
    struct lx_config *cfg = load("{\"limits\":{\"max_request_ms\":5}}");
    for (int answers = 0; answers < 2; answers++) {
        memset(&S, 0, sizeof S);
        S.answer_why = answers;
        struct fake_req *f = fake_req_new(cfg, "POST", "/x", "{}", NULL);
        lx_req_dispatch(&f->req, never_answer);
        fake_run(f, 10000);
        assert_int_equal(S.aborts, 1);
        assert_non_null(S.why_seen);
        assert_int_equal(f->req.status, 504);
        assert_string_equal(f->req.error_code, "request_timeout");
        assert_string_equal(resp_header(&f->req, "X-Should-Retry"), "false");
        json_t *body = json_loads(f->sent.data, 0, NULL);
        assert_string_equal(json_string_value(json_object_get(json_object_get(body, "error"), "code")), "request_timeout");
        json_decref(body);
        lx_req_finish(&f->req, true);
        lx_req_release(&f->req);
    }
    for (int answers = 0; answers < 2; answers++) {
        memset(&S, 0, sizeof S);
        S.answer_why = answers;
        S.left = 1000000; /* a stream that would go on and on, slowly */
        struct fake_req *f = fake_req_new(cfg, "POST", "/x", "{}", NULL);
        f->read_stream = false;
        lx_req_dispatch(&f->req, start_stream);
        f->read_stream = true;
        fake_run(f, 10000);
        assert_int_equal(S.aborts, 1);
        assert_int_equal(f->req.status, 200);
        assert_string_equal(f->req.error_code, "request_timeout");
        if (answers) {
            assert_false(f->cut); /* the handler's own closing event */
            assert_non_null(memmem(f->sent.data, f->sent.len, "event: error\n\n", 14));
        } else {
            assert_true(f->cut);
        }
        lx_req_finish(&f->req, true);
        lx_req_release(&f->req);
    }
    lx_config_unref(cfg);
}

static void test_request_id(void **state)
{
    (void)state;
    struct lx_config *cfg = load("{}");
    static const char *const bad[] = {"X-Request-Id", "has space", NULL};
    struct fake_req *f = fake_req_new(cfg, "GET", "/", NULL, bad);
    assert_int_equal(strlen(f->req.request_id), 32); /* made up: 32 hex digits */
    for (size_t i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", f->req.request_id[i]));
    lx_req_finish(&f->req, true);
    lx_req_release(&f->req);
    lx_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_answer_and_finish), cmocka_unit_test(test_stream_backpressure),
        cmocka_unit_test(test_client_gone),             cmocka_unit_test(test_request_deadline),
        cmocka_unit_test(test_request_id),              cmocka_unit_test(test_probe_client),
    };
    return cmocka_run_group_tests_name("req", tests, setup, teardown);
}
