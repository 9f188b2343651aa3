/* Unit tests for src/sse.c: line endings, multi-line data, comments, limits, and every split position. */
#include "../unit.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/common.h"
#include "../../../src/core/sse.h"

struct collected {
    struct lx_buf all; /* "event|data\n" per event */
    int n;
    int stop_at;       /* return an error on this event number (1-based), 0 = never */
};

static int collect_cb(void *ctx, const char *event, const char *data, size_t len)
{
    struct collected *c = ctx;
    c->n++;
    lx_buf_printf(&c->all, "%s|", event);
    lx_buf_append(&c->all, data, len);
    lx_buf_append(&c->all, "\n", 1);
    return c->stop_at == c->n ? 42 : LX_OK;
}

static char *decode_whole(const char *in, size_t len, int *n)
{
    struct lx_sse_decoder d = {0};
    struct collected c = {0};
    assert_int_equal(lx_sse_feed(&d, in, len, collect_cb, &c, NULL), LX_OK);
    lx_sse_decoder_free(&d);
    *n = c.n;
    return lx_buf_steal(&c.all, NULL);
}

static void test_basic_events(void **state)
{
    (void)state;
    const char *in = "data: one\n\nevent: message_start\ndata: {\"a\":1}\n\n: comment\ndata:two\ndata: lines\n\n";
    int n;
    char *out = decode_whole(in, strlen(in), &n);
    assert_int_equal(n, 3);
    assert_string_equal(out, "|one\nmessage_start|{\"a\":1}\n|two\nlines\n");
    free(out);
}

static void test_line_endings(void **state)
{
    (void)state;
    const char *crlf = "data: a\r\n\r\ndata: b\r\r";
    int n;
    char *out = decode_whole(crlf, strlen(crlf), &n);
    assert_int_equal(n, 2);
    assert_string_equal(out, "|a\n|b\n");
    free(out);
}

static void test_no_dispatch_without_blank_line(void **state)
{
    (void)state;
    struct lx_sse_decoder d = {0};
    struct collected c = {0};
    const char *in = "data: unfinished\n";
    assert_int_equal(lx_sse_feed(&d, in, strlen(in), collect_cb, &c, NULL), LX_OK);
    assert_int_equal(c.n, 0);
    assert_true(lx_sse_pending(&d));
    lx_sse_decoder_free(&d);
    lx_buf_free(&c.all);
}

static void test_ignores_fields_without_data(void **state)
{
    (void)state;
    const char *in = "garbage garbage\n\nid: 7\nretry: 10\n\n";
    int n;
    char *out = decode_whole(in, strlen(in), &n);
    assert_int_equal(n, 0);
    free(out);
}

/* The same bytes fed in two pieces at every position (and CR/LF split across reads) give the same events. */
static void split_everywhere(const char *in, size_t len)
{
    int n_whole;
    char *whole = decode_whole(in, len, &n_whole);
    for (size_t cut = 0; cut <= len; cut++) {
        struct lx_sse_decoder d = {0};
        struct collected c = {0};
        assert_int_equal(lx_sse_feed(&d, in, cut, collect_cb, &c, NULL), LX_OK);
        assert_int_equal(lx_sse_feed(&d, in + cut, len - cut, collect_cb, &c, NULL), LX_OK);
        assert_int_equal(c.n, n_whole);
        assert_string_equal(c.all.data ? c.all.data : "", whole);
        lx_sse_decoder_free(&d);
        lx_buf_free(&c.all);
    }
    free(whole);
}

static void test_split_positions(void **state)
{
    (void)state;
    const char *in = "event: e\r\ndata: {\"x\":\"\xc3\xa9\"}\r\n\r\ndata: [DONE]\n\n";
    split_everywhere(in, strlen(in));
}

static void test_split_fixture(void **state)
{
    (void)state;
    size_t len;
    char *in = read_fixture("openai_chat_stream_tool_call.sse", &len);
    split_everywhere(in, len);
    free(in);
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    size_t len;
    char *in = read_fixture("openai_chat_stream_text_with_usage.sse", &len);
    int n_whole;
    char *whole = decode_whole(in, len, &n_whole);
    struct lx_sse_decoder d = {0};
    struct collected c = {0};
    for (size_t i = 0; i < len; i++)
        assert_int_equal(lx_sse_feed(&d, in + i, 1, collect_cb, &c, NULL), LX_OK);
    assert_int_equal(c.n, n_whole);
    assert_string_equal(c.all.data, whole);
    assert_false(lx_sse_pending(&d));
    lx_sse_decoder_free(&d);
    lx_buf_free(&c.all);
    free(whole);
    free(in);
}

static void test_limit(void **state)
{
    (void)state;
    struct lx_sse_decoder d = {.max_event = 16};
    struct collected c = {0};
    const char *in = "data: 0123456789abcdefXYZ\n\n";
    assert_int_equal(lx_sse_feed(&d, in, strlen(in), collect_cb, &c, NULL), LX_ERR);
    lx_sse_decoder_free(&d);
    struct lx_sse_decoder d2 = {.max_event = 16};
    for (int i = 0; i < 10; i++)
        if (lx_sse_feed(&d2, "0123456", 7, collect_cb, &c, NULL) != LX_OK)
            break;
    assert_int_equal(lx_sse_feed(&d2, "0123456", 7, collect_cb, &c, NULL), LX_ERR);
    lx_sse_decoder_free(&d2);
    lx_buf_free(&c.all);
}

static void test_callback_stops(void **state)
{
    (void)state;
    struct lx_sse_decoder d = {0};
    struct collected c = {.stop_at = 1};
    int rc = 0;
    const char *in = "data: a\n\ndata: b\n\n";
    assert_int_equal(lx_sse_feed(&d, in, strlen(in), collect_cb, &c, &rc), LX_ERR);
    assert_int_equal(rc, 42);
    assert_int_equal(c.n, 1);
    lx_sse_decoder_free(&d);
    lx_buf_free(&c.all);
}

/* MCP's resumable streams: the priming event (an id and empty data), retry:, and ids that must be ignored. */
static void test_id_and_retry(void **state)
{
    (void)state;
    struct lx_sse_decoder d;
    lx_sse_decoder_init(&d);
    struct collected c = {0};
    assert_int_equal(d.retry_ms, -1);
    assert_string_equal(lx_sse_last_id(&d), "");
    const char *in = "id: ev-1\nretry: 500\ndata: \n\n";
    assert_int_equal(lx_sse_feed(&d, in, strlen(in), collect_cb, &c, NULL), LX_OK);
    assert_int_equal(c.n, 1); /* empty data is still an event */
    assert_string_equal(lx_sse_last_id(&d), "ev-1");
    assert_int_equal(d.retry_ms, 500);
    /* retry: with anything but digits is ignored; a later id replaces the earlier one. */
    in = "retry: 5s\nretry:\nid:ev-2\ndata: x\n\n";
    assert_int_equal(lx_sse_feed(&d, in, strlen(in), collect_cb, &c, NULL), LX_OK);
    assert_int_equal(d.retry_ms, 500);
    assert_string_equal(lx_sse_last_id(&d), "ev-2");
    /* An id too long to keep whole leaves the previous one. */
    struct lx_buf big = {0};
    lx_buf_puts(&big, "id: ");
    for (int i = 0; i < 200; i++)
        lx_buf_puts(&big, "x");
    lx_buf_puts(&big, "\ndata: y\n\nid\ndata: z\n\n");
    assert_int_equal(lx_sse_feed(&d, big.data, big.len, collect_cb, &c, NULL), LX_OK);
    assert_int_equal(c.n, 4);
    assert_string_equal(lx_sse_last_id(&d), ""); /* a bare "id" resets it */
    lx_buf_free(&big);
    lx_buf_free(&c.all);
    lx_sse_decoder_free(&d);
}

static void test_encode(void **state)
{
    (void)state;
    struct lx_buf b = {0};
    lx_sse_write_data(&b, "{\"a\":1}", 7);
    assert_string_equal(b.data, "data: {\"a\":1}\n\n");
    lx_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_events),     cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_no_dispatch_without_blank_line), cmocka_unit_test(test_ignores_fields_without_data),
        cmocka_unit_test(test_split_positions),  cmocka_unit_test(test_split_fixture),
        cmocka_unit_test(test_byte_at_a_time),   cmocka_unit_test(test_limit),
        cmocka_unit_test(test_callback_stops),   cmocka_unit_test(test_encode),
        cmocka_unit_test(test_id_and_retry),
    };
    return cmocka_run_group_tests_name("sse", tests, NULL, NULL);
}
