/* Unit tests for src/engine/capacity.c on a real loop: slots against max_concurrency, the FIFO of waiters
 * with their timeouts and cancels, the live state kept by provider name across configs (a reload), new
 * limits applied to it, and the cooldown breaker. */
#include "../unit.h"
#include "../../../providers/provider.h"
#include "../../../src/core/common.h"
#include "../../../src/engine/capacity.h"
#include "../../../src/io/loop.h"

static int setup(void **state)
{
    (void)state;
    return lx_loop_init() == LX_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lx_capacity_shutdown();
    lx_loop_free();
    return 0;
}

/* The order waiters were answered in: "+N" granted, "-N" timed out. */
static char order[64];
static int answered;

static void wait_cb(void *arg, bool granted)
{
    size_t n = strlen(order);
    snprintf(order + n, sizeof order - n, "%c%d", granted ? '+' : '-', (int)(intptr_t)arg);
    answered++;
}

static void stop_cb(void *arg)
{
    (void)arg;
    lx_loop_stop();
}

/* Run the loop until `want` waiters were answered (or a 10 s hang guard). */
static void run_until(int want)
{
    struct lx_timer *guard = lx_timer_new(stop_cb, NULL);
    struct lx_timer *tick = NULL;
    lx_timer_start(guard, 10000);
    while (answered < want && lx_timer_pending(guard)) {
        tick = tick ? tick : lx_timer_new(stop_cb, NULL);
        lx_timer_start(tick, 1);
        lx_loop_run();
    }
    lx_timer_free(tick);
    lx_timer_free(guard);
    assert_true(answered >= want);
}

static struct lx_provider_conf provider(const char *name, long max, long failures)
{
    return (struct lx_provider_conf){.name = (char *)name, .max_concurrency = max,
                                     .cooldown = {.failures = failures, .period_ms = 600000}};
}

static void test_slots_and_fifo(void **state)
{
    (void)state;
    struct lx_provider_conf p = provider("fifo", 2, 0);
    struct lx_capacity *cap = lx_capacity_of(&p);
    order[0] = '\0';
    answered = 0;
    assert_true(lx_capacity_try(cap));
    assert_true(lx_capacity_try(cap));
    assert_false(lx_capacity_try(cap)); /* full */
    lx_capacity_wait(cap, 60000, wait_cb, (void *)1);
    lx_capacity_wait(cap, 60000, wait_cb, (void *)2);
    struct lx_cap_wait *w3 = lx_capacity_wait(cap, 60000, wait_cb, (void *)3);
    lx_capacity_wait(cap, 60000, wait_cb, (void *)4);
    assert_int_equal(lx_capacity_queued(cap), 4);
    lx_capacity_wait_cancel(w3); /* leaves the queue, never called */
    assert_int_equal(lx_capacity_queued(cap), 3);
    lx_capacity_release(cap);
    assert_int_equal(answered, 0); /* granted on a later loop turn, not inside release */
    assert_false(lx_capacity_try(cap)); /* a newcomer never overtakes the queue */
    run_until(1);
    assert_string_equal(order, "+1");
    assert_int_equal(lx_capacity_inflight(cap), 2);
    lx_capacity_release(cap);
    lx_capacity_release(cap);
    run_until(3);
    assert_string_equal(order, "+1+2+4");
    assert_int_equal(lx_capacity_queued(cap), 0);
    assert_int_equal(lx_capacity_inflight(cap), 2);
    lx_capacity_release(cap);
    lx_capacity_release(cap);
    assert_int_equal(lx_capacity_inflight(cap), 0);
}

static void test_wait_times_out(void **state)
{
    (void)state;
    struct lx_provider_conf p = provider("full", 1, 0);
    struct lx_capacity *cap = lx_capacity_of(&p);
    order[0] = '\0';
    answered = 0;
    assert_true(lx_capacity_try(cap));
    lx_capacity_wait(cap, 1, wait_cb, (void *)7);
    run_until(1);
    assert_string_equal(order, "-7");
    assert_int_equal(lx_capacity_queued(cap), 0);
    lx_capacity_release(cap);
}

/* A reload builds a new provider record of the same name: it finds the same live state, and its limits
 * become the live ones; a raised limit hands its new slots to those already waiting. */
static void test_state_by_name_across_reloads(void **state)
{
    (void)state;
    struct lx_provider_conf old = provider("same", 2, 3), fresh = provider("same", 2, 3), other = provider("else", 2, 3);
    struct lx_capacity *cap = lx_capacity_of(&old);
    assert_ptr_equal(lx_capacity_of(&fresh), cap);
    assert_ptr_not_equal(lx_capacity_of(&other), cap);
    order[0] = '\0';
    answered = 0;
    assert_true(lx_capacity_try(cap));
    assert_true(lx_capacity_try(cap));
    lx_capacity_apply(&fresh); /* the reload: the same limit */
    assert_false(lx_capacity_try(lx_capacity_of(&fresh))); /* the two calls of the old config still count */
    lx_capacity_wait(cap, 60000, wait_cb, (void *)1);
    lx_capacity_wait(cap, 60000, wait_cb, (void *)2);
    fresh.max_concurrency = 3;
    lx_capacity_apply(&fresh);
    assert_int_equal(lx_capacity_limit(cap), 3);
    run_until(1);
    assert_string_equal(order, "+1"); /* one new slot, one waiter through */
    assert_int_equal(lx_capacity_queued(cap), 1);
    fresh.max_concurrency = 0; /* unlimited */
    lx_capacity_apply(&fresh);
    run_until(2);
    assert_string_equal(order, "+1+2");
    for (int i = 0; i < 4; i++)
        lx_capacity_release(cap);
    assert_int_equal(lx_capacity_inflight(cap), 0);
}

/* The breaker cools a provider after `failures` failures in a row; a success in between starts the count
 * again; the count survives a reload. */
static void test_breaker(void **state)
{
    (void)state;
    struct lx_provider_conf p = provider("flaky", 0, 3);
    struct lx_capacity *cap = lx_capacity_of(&p);
    lx_capacity_record(cap, true);
    lx_capacity_record(cap, true);
    lx_capacity_record(cap, false);
    lx_capacity_record(cap, true);
    lx_capacity_record(cap, true);
    assert_int_equal(lx_capacity_cooling_ms(cap), 0);
    struct lx_provider_conf reloaded = provider("flaky", 0, 3);
    lx_capacity_apply(&reloaded);
    lx_capacity_record(lx_capacity_of(&reloaded), true); /* the third in a row, after the reload */
    assert_true(lx_capacity_cooling_ms(cap) > 0);
    assert_true(lx_capacity_cooling_ms(cap) <= 600000);
    struct lx_provider_conf never = provider("steady", 0, 0); /* failures 0: never cools */
    for (int i = 0; i < 10; i++)
        lx_capacity_record(lx_capacity_of(&never), true);
    assert_int_equal(lx_capacity_cooling_ms(lx_capacity_of(&never)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots_and_fifo),
        cmocka_unit_test(test_wait_times_out),
        cmocka_unit_test(test_state_by_name_across_reloads),
        cmocka_unit_test(test_breaker),
    };
    return cmocka_run_group_tests_name("capacity", tests, setup, teardown);
}
