/* Unit tests for src/api/reply.c: how the API layer drives a dialect's slots (dialects/dialect.h), with a
 * test dialect that keeps state per stream (sequence numbers, as the Responses API will), maps an
 * error's status (as Anthropic's 529 will), wraps the completion and pings while a stream is silent. */
#include "../unit.h"
#include "../fake_transport.h"
#include "../../../src/api/reply.h"
#include "../../../src/config.h"
#include "../../../src/core/conf.h"

struct test_stream {
    long seq;
    char model[32];
};

static int opens, closes;

static json_t *t_parse(const char *body, size_t len, struct lx_dialect_req *rq, struct lx_error *err)
{
    (void)body, (void)len, (void)rq, (void)err;
    return NULL;
}

static json_t *t_completion(const struct lx_dialect_req *rq, json_t *completion)
{
    return json_pack("{s:s,s:O}", "for", rq->model, "wrapped", completion);
}

static json_t *t_error_body(const struct lx_error *err, int *status)
{
    *status = err->status == 503 ? 529 : err->status;
    return json_pack("{s:s,s:{s:s}}", "type", "error", "error", "message", err->message);
}

static void *t_open(const struct lx_dialect_req *rq)
{
    opens++;
    struct test_stream *st = lx_calloc(1, sizeof *st);
    snprintf(st->model, sizeof st->model, "%s", rq->model);
    return st;
}

static void t_chunk(void *st, json_t *chunk, struct lx_buf *out)
{
    struct test_stream *s = st;
    /* two events per chunk, numbered across the stream */
    lx_buf_printf(out, "event: a\ndata: %ld\n\n", ++s->seq);
    lx_buf_printf(out, "event: b\ndata: %ld %s\n\n", ++s->seq, json_string_value(json_object_get(chunk, "t")));
}

static void t_end(void *st, struct lx_buf *out)
{
    struct test_stream *s = st;
    lx_buf_printf(out, "event: done\ndata: %ld %s\n\n", ++s->seq, s->model);
}

static void t_error(void *st, const struct lx_error *err, struct lx_buf *out)
{
    struct test_stream *s = st;
    lx_buf_printf(out, "event: error\ndata: %ld %d\n\n", ++s->seq, err->status);
}

static void t_keepalive(void *st, struct lx_buf *out)
{
    (void)st;
    lx_buf_puts(out, ": ping\n\n");
}

static void t_close(void *st)
{
    closes++;
    free(st);
}

static const struct lx_dialect test_dialect = {
    .name = "test", .parse = t_parse, .completion = t_completion, .error_body = t_error_body,
    .stream_content_type = "text/event-stream", .stream_open = t_open, .stream_chunk = t_chunk,
    .stream_end = t_end, .stream_error = t_error, .stream_keepalive = t_keepalive, .keepalive_ms = 5,
    .stream_close = t_close,
};

static struct lx_config *cfg;

static int setup(void **state)
{
    (void)state;
    char err[256];
    if (lx_loop_init() != LX_OK)
        return -1;
    cfg = lx_config_load_buffer("{}", 2, err, sizeof err);
    return cfg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lx_config_unref(cfg);
    lx_loop_free();
    return 0;
}

static struct fake_req *handling(void)
{
    struct fake_req *f = fake_req_new(cfg, "POST", "/test", "{}", NULL);
    lx_req_set_state(&f->req, LX_REQ_HANDLING);
    return f;
}

static void finish(struct fake_req *f, struct lx_reply *r)
{
    lx_reply_clear(r);
    lx_req_finish(&f->req, true);
    lx_req_release(&f->req);
}

static void test_completion_and_error_answers(void **state)
{
    (void)state;
    struct fake_req *f = handling();
    struct lx_dialect_req rq = {.model = lx_strdup("p/m")};
    struct lx_reply r;
    lx_reply_init(&r, &f->req, &test_dialect, &rq);
    assert_null(rq.model); /* taken over */
    lx_reply_completion(&r, json_pack("{s:s}", "object", "chat.completion"));
    fake_run(f, 10000);
    assert_int_equal(f->req.status, 200);
    assert_string_equal(f->sent.data, "{\"for\":\"p/m\",\"wrapped\":{\"object\":\"chat.completion\"}}\n");
    finish(f, &r);

    f = handling();
    lx_reply_init(&r, &f->req, &test_dialect, NULL);
    struct lx_error e = {0};
    lx_error_set(&e, 503, NULL, NULL, "overloaded", "busy");
    e.retry_after = lx_strdup("3");
    lx_reply_error(&r, &e);
    fake_run(f, 10000);
    assert_int_equal(f->req.status, 529); /* the dialect's own status */
    assert_string_equal(f->sent.data, "{\"type\":\"error\",\"error\":{\"message\":\"busy\"}}\n");
    assert_string_equal(resp_header(&f->req, "Retry-After"), "3");
    assert_string_equal(f->req.error_code, "overloaded");
    assert_int_equal(opens, 0); /* no stream was begun */
    lx_error_clear(&e);
    finish(f, &r);
}

static void test_stream_state_keepalive_and_end(void **state)
{
    (void)state;
    opens = closes = 0;
    struct fake_req *f = handling();
    struct lx_dialect_req rq = {.model = lx_strdup("p/m"), .stream = true};
    struct lx_reply r;
    lx_reply_init(&r, &f->req, &test_dialect, &rq);
    json_t *c = json_pack("{s:s}", "t", "x");
    lx_reply_chunk(&r, c); /* begins the stream */
    lx_reply_chunk(&r, c);
    json_decref(c);
    assert_int_equal(opens, 1);
    assert_string_equal(resp_header(&f->req, "Cache-Control"), "no-cache");
    /* silent now: pings come until the end */
    for (int i = 0; i < 2000 && !memmem(f->sent.data, f->sent.len, ": ping\n\n", 8); i++)
        loop_settle();
    assert_non_null(memmem(f->sent.data, f->sent.len, ": ping\n\n", 8));
    lx_reply_end(&r);
    lx_reply_end(&r); /* once only */
    fake_run(f, 10000);
    const char *want = "event: a\ndata: 1\n\nevent: b\ndata: 2 x\n\nevent: a\ndata: 3\n\nevent: b\ndata: 4 x\n\n";
    assert_int_equal(memcmp(f->sent.data, want, strlen(want)), 0);
    const char *tail = "event: done\ndata: 5 p/m\n\n";
    assert_string_equal(f->sent.data + f->sent.len - strlen(tail), tail);
    assert_int_equal(closes, 0);
    finish(f, &r);
    assert_int_equal(closes, 1);
}

static void test_stream_error_ends_it(void **state)
{
    (void)state;
    opens = closes = 0;
    struct fake_req *f = handling();
    struct lx_reply r;
    lx_reply_init(&r, &f->req, &test_dialect, NULL);
    lx_reply_begin(&r);
    struct lx_error e = {0};
    lx_error_set(&e, 502, NULL, NULL, NULL, "broke");
    lx_reply_error(&r, &e);
    lx_reply_end(&r); /* nothing follows the error event */
    json_t *c = json_pack("{s:s}", "t", "late");
    lx_reply_chunk(&r, c);
    json_decref(c);
    fake_run(f, 10000);
    assert_string_equal(f->sent.data, "event: error\ndata: 1 502\n\n");
    assert_false(f->cut);
    lx_error_clear(&e);
    finish(f, &r);
    assert_int_equal(opens, 1);
    assert_int_equal(closes, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_completion_and_error_answers),
        cmocka_unit_test(test_stream_state_keepalive_and_end),
        cmocka_unit_test(test_stream_error_ends_it),
    };
    return cmocka_run_group_tests_name("reply", tests, setup, teardown);
}
