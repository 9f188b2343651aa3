/* Unit tests for src/core/trace.c: traceparent parsing by the W3C rules, the parent-based sampling, and
 * what goes upstream. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/core/trace.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_parse(void **state)
{
    (void)state;
    struct lx_trace t = {0};
    assert_int_equal(lx_trace_parse(TP, &t), LX_OK);
    char hex[33];
    lx_hex(t.trace_id, 16, hex);
    assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    lx_hex(t.parent_id, 8, hex);
    assert_string_equal(hex, "00f067aa0ba902b7");
    assert_int_equal(t.client_flags, 1);
    assert_int_equal(lx_trace_parse("  " TP " ", &t), LX_OK);
    /* A later version keeps its first four fields, and may add more after a dash. */
    assert_int_equal(lx_trace_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", &t), LX_OK);
    static const char *const bad[] = {
        NULL,
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  /* 00 has exactly four fields */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    /* version ff is invalid */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    /* all-zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    /* all-zero parent id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    /* upper case */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(lx_trace_parse(bad[i], &t), LX_ERR);
}

static void test_begin_and_upstream(void **state)
{
    (void)state;
    struct lx_trace t;
    char out[LX_TRACEPARENT_LEN + 1];
    uint8_t span[8];
    lx_trace_span_id(span);
    char span_hex[17];
    lx_hex(span, 8, span_hex);

    /* Tracing off, no header: nothing at all. */
    lx_trace_set_ratio(0);
    lx_trace_begin(&t, NULL);
    assert_false(t.valid);
    assert_false(lx_trace_upstream(&t, NULL, out));
    /* Tracing off, a client header: forwarded as it came. */
    lx_trace_begin(&t, TP);
    assert_true(t.valid && t.has_parent && !t.sampled);
    assert_true(lx_trace_upstream(&t, NULL, out));
    assert_string_equal(out, TP);
    /* Tracing on: the client's sampled flag decides; our attempt span becomes the provider's parent. */
    lx_trace_set_ratio(1);
    lx_trace_begin(&t, TP);
    assert_true(t.sampled);
    assert_true(lx_trace_upstream(&t, span, out));
    char want[LX_TRACEPARENT_LEN + 1];
    snprintf(want, sizeof want, "00-4bf92f3577b34da6a3ce929d0e0e4736-%s-01", span_hex);
    assert_string_equal(out, want);
    lx_trace_begin(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    assert_false(t.sampled);
    /* No header: a new trace, sampled at ratio 1, never at 0 (the ratio is clamped). */
    lx_trace_begin(&t, "garbage");
    assert_true(t.valid && !t.has_parent && t.sampled);
    uint8_t zero[16] = {0};
    assert_memory_not_equal(t.trace_id, zero, 16);
    assert_memory_not_equal(t.span_id, zero, 8);
    lx_trace_set_ratio(-3);
    assert_true(lx_trace_ratio() == 0);
    lx_trace_set_ratio(7);
    assert_true(lx_trace_ratio() == 1);
    /* A ratio samples about that share of new traces (by trace id, so the decision is consistent). */
    lx_trace_set_ratio(0.25);
    int sampled = 0;
    for (int i = 0; i < 4000; i++) {
        lx_trace_begin(&t, NULL);
        sampled += t.sampled;
    }
    assert_in_range(sampled, 700, 1300);
    /* An unsampled new trace still tells the provider its id, with the flag off. */
    do
        lx_trace_begin(&t, NULL);
    while (t.sampled);
    assert_true(lx_trace_upstream(&t, NULL, out));
    assert_string_equal(out + 53, "00");
    lx_trace_set_ratio(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse), cmocka_unit_test(test_begin_and_upstream)};
    return cmocka_run_group_tests_name("trace", tests, NULL, NULL);
}
