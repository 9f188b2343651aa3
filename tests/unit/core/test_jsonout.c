/* Unit tests for src/core/jsonout.c: the hand-written JSON must be exactly what jansson writes for the same
 * values, so a line or body built by hand reads the same as one built with jansson. Checked against
 * jansson itself on fixed cases and on many random byte strings. */
#include "../unit.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/jsonout.h"

#include <jansson.h>

/* What jansson writes for the string s[0..n), or NULL when it refuses s. A NUL would end a C string
 * before json_string saw it, so it counts as refused (json_stringn alone would take it). */
static char *jansson_str(const char *s, size_t n)
{
    if (memchr(s, 0, n))
        return NULL;
    json_t *j = json_stringn(s, n);
    if (!j)
        return NULL;
    char *out = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    return out;
}

static void check_str(const char *s, size_t n)
{
    char *want = jansson_str(s, n);
    bool ok = lx_json_utf8_ok(s, n);
    if (ok != (want != NULL)) {
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "%02x ", (unsigned char)s[i]);
        fail_msg("jansson %s the bytes above, lx_json_utf8_ok %s them", want ? "takes" : "refuses", ok ? "takes" : "refuses");
    }
    if (ok) {
        struct lx_buf b = {0};
        lx_jsonw_str(&b, s, n);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        lx_buf_free(&b);
    }
    free(want);
}

static void test_strings_like_jansson(void **state)
{
    (void)state;
    const char *cases[] = {
        "", "plain", "quote \" and backslash \\", "\b\f\n\r\t", "\x01\x1f\x7f", "/slash/", "é ünïcødé 日本 😀",
        "\xe2\x80\xa8 line separator", "\xc0\xaf overlong", "\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 too big",
        "\xe0\x80\x80 overlong 3", "\xf0\x80\x80\x80 overlong 4", "cut \xe6\x97", "\x80 lone continuation",
        "\xff\xfe", "\xf4\x8f\xbf\xbf max",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_str(cases[i], strlen(cases[i]));
    check_str("nul \0 inside", 13);
}

static void test_random_strings_like_jansson(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    char buf[24];
    for (int round = 0; round < 200000; round++) {
        size_t n = (size_t)(s % sizeof buf);
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            /* Mostly bytes around the interesting boundaries: ASCII controls, continuation and lead bytes. */
            unsigned char c = (unsigned char)(s >> 24);
            buf[i] = (char)(round % 3 == 0 ? c : (round % 3 == 1 ? (c | 0x80) : (c & 0x3f) + 0x10));
        }
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        check_str(buf, n);
    }
}

static void test_str_or(void **state)
{
    (void)state;
    struct lx_buf b = {0};
    lx_jsonw_str_or(&b, NULL, "bad");
    lx_buf_puts(&b, ",");
    lx_jsonw_str_or(&b, "ok\"", "bad");
    lx_buf_puts(&b, ",");
    lx_jsonw_str_or(&b, "\xff", "(not UTF-8)");
    assert_string_equal(b.data, "null,\"ok\\\"\",\"(not UTF-8)\"");
    lx_buf_free(&b);
}

static void test_numbers_like_jansson(void **state)
{
    (void)state;
    long long ints[] = {0, 1, -1, 42, 9223372036854775807LL, -9223372036854775807LL - 1};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        json_t *j = json_integer(ints[i]);
        char *want = json_dumps(j, JSON_ENCODE_ANY);
        struct lx_buf b = {0};
        lx_jsonw_int(&b, ints[i]);
        assert_string_equal(b.data, want);
        lx_buf_free(&b);
        free(want);
        json_decref(j);
    }
    double reals[] = {0.0, 1.0, 0.5, 12.3, 1234567.8, 0.1, 1e-7, 1e15, 123456789012345.6, 86400000.0, -2.5, 3e300};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        for (int prec = 1; prec <= 17; prec += 4) {
            json_t *j = json_real(reals[i]);
            char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(prec));
            struct lx_buf b = {0};
            lx_jsonw_real(&b, reals[i], prec);
            assert_string_equal(b.data, want);
            lx_buf_free(&b);
            free(want);
            json_decref(j);
        }
    }
    /* The access log's durations: tenths of a millisecond, at precision 12. */
    for (long long k = 0; k < 2000000; k += (k < 2000 ? 1 : 997)) {
        double v = (double)k / 10.0;
        json_t *j = json_real(v);
        char *want = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(12));
        struct lx_buf b = {0};
        lx_jsonw_real(&b, v, 12);
        assert_string_equal(b.data, want);
        lx_buf_free(&b);
        free(want);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_like_jansson),
        cmocka_unit_test(test_random_strings_like_jansson),
        cmocka_unit_test(test_str_or),
        cmocka_unit_test(test_numbers_like_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
