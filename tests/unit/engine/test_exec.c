/* Unit tests for src/exec.c's retry policy: which failures are retried, and the backoff delays. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/engine/exec.h"

static void expect_retry(int status, const char *code, bool want)
{
    struct lx_error e = {0};
    lx_error_set(&e, status, NULL, NULL, code, "x");
    assert_int_equal(lx_exec_retryable(&e), want);
    lx_error_clear(&e);
}

static void test_retryable(void **state)
{
    (void)state;
    int yes[] = {429, 500, 502, 503, 504, 529};
    for (size_t i = 0; i < LX_ARRAY_LEN(yes); i++)
        expect_retry(yes[i], NULL, true);
    expect_retry(502, "upstream_unreachable", true); /* connect errors */
    int no[] = {400, 401, 403, 404, 413, 422, 501};
    for (size_t i = 0; i < LX_ARRAY_LEN(no); i++)
        expect_retry(no[i], NULL, false);
    /* Our own verdicts are not retried on the same provider. */
    expect_retry(504, "upstream_timeout", false);
    expect_retry(504, "deadline_exceeded", false);
    expect_retry(429, "provider_at_capacity", false);
    expect_retry(503, "provider_cooldown", false);
    /* A spent quota is not refilled by a retry; an oversized answer would only come back oversized. */
    expect_retry(429, "insufficient_quota", false);
    expect_retry(402, "billing_error", false);
    expect_retry(502, "upstream_response_too_large", false);
    expect_retry(429, "rate_limit_exceeded", true);
}

static void test_backoff_full_jitter(void **state)
{
    (void)state;
    /* The ceiling doubles per retry: random values land in [0, base·2^n]. */
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, NULL, 0), 0);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, NULL, 100), 100);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, NULL, 101), 0);
    assert_int_equal(lx_exec_backoff_ms(2, 100, 10000, NULL, 400), 400);
    assert_int_equal(lx_exec_backoff_ms(2, 100, 10000, NULL, 401), 0);
    for (uint64_t r = 0; r < 5000; r += 7)
        assert_true(lx_exec_backoff_ms(3, 100, 10000, NULL, r * 2654435761u) <= 800);
    /* Capped by max_delay_ms however many retries came before. */
    for (uint64_t r = 0; r < 5000; r += 7)
        assert_true(lx_exec_backoff_ms(40, 100, 1500, NULL, r * 2654435761u) <= 1500);
}

static void test_backoff_retry_after(void **state)
{
    (void)state;
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "2", 0), 2000);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "0.5", 3), 500);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "60", 0), 10000); /* capped */
    /* An HTTP date or garbage falls back to the backoff. */
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "Wed, 21 Oct 2015 07:28:00 GMT", 50), 50);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "-3", 50), 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_backoff_retry_after),
    };
    return cmocka_run_group_tests_name("exec", tests, NULL, NULL);
}
