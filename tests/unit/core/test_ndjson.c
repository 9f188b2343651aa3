/* Unit tests for src/ndjson.c: lines split anywhere, CRLF, blank lines, a last line without newline. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/core/ndjson.h"

static int collect(void *ctx, const char *line, size_t len)
{
    struct lx_buf *b = ctx;
    lx_buf_append(b, line, len);
    lx_buf_append(b, "|", 1);
    return strstr(line, "STOP") ? LX_ERR : LX_OK;
}

static void test_splits(void **state)
{
    (void)state;
    size_t len;
    char *in = read_fixture("ollama_api_chat_stream.docs.ndjson", &len);
    struct lx_buf whole = {0};
    struct lx_ndjson_decoder d = {0};
    assert_int_equal(lx_ndjson_feed(&d, in, len, collect, &whole), LX_OK);
    assert_int_equal(lx_ndjson_finish(&d, collect, &whole), LX_OK);
    lx_ndjson_decoder_free(&d);
    assert_int_equal(d.lines, 2); /* the recording holds one content line and the done line */
    for (size_t cut = 0; cut <= len; cut += 3) {
        struct lx_buf b = {0};
        struct lx_ndjson_decoder d2 = {0};
        assert_int_equal(lx_ndjson_feed(&d2, in, cut, collect, &b), LX_OK);
        assert_int_equal(lx_ndjson_feed(&d2, in + cut, len - cut, collect, &b), LX_OK);
        assert_int_equal(lx_ndjson_finish(&d2, collect, &b), LX_OK);
        assert_string_equal(b.data, whole.data);
        lx_ndjson_decoder_free(&d2);
        lx_buf_free(&b);
    }
    lx_buf_free(&whole);
    free(in);
}

static void test_crlf_blank_and_tail(void **state)
{
    (void)state;
    struct lx_buf b = {0};
    struct lx_ndjson_decoder d = {0};
    const char *in = "{\"a\":1}\r\n\n   \n{\"b\":2}";
    assert_int_equal(lx_ndjson_feed(&d, in, strlen(in), collect, &b), LX_OK);
    assert_string_equal(b.data, "{\"a\":1}|");
    assert_int_equal(lx_ndjson_finish(&d, collect, &b), LX_OK);
    assert_string_equal(b.data, "{\"a\":1}|{\"b\":2}|");
    lx_ndjson_decoder_free(&d);
    lx_buf_free(&b);
}

static void test_limit_and_stop(void **state)
{
    (void)state;
    struct lx_buf b = {0};
    struct lx_ndjson_decoder d = {.max_line = 8};
    assert_int_equal(lx_ndjson_feed(&d, "0123456789", 10, collect, &b), LX_ERR);
    lx_ndjson_decoder_free(&d);
    struct lx_ndjson_decoder d2 = {0};
    assert_int_equal(lx_ndjson_feed(&d2, "x\nSTOP\ny\n", 9, collect, &b), LX_ERR);
    lx_ndjson_decoder_free(&d2);
    lx_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_splits),
        cmocka_unit_test(test_crlf_blank_and_tail),
        cmocka_unit_test(test_limit_and_stop),
    };
    return cmocka_run_group_tests_name("ndjson", tests, NULL, NULL);
}
