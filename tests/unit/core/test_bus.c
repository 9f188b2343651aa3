/* Unit tests for src/core/bus.c: subscribers run in order, per type, and may come and go, even from
 * inside a publish. */
#include "../unit.h"
#include "../../../src/core/bus.h"

static char trace[64];

static void note_cb(const struct lx_event *ev, void *arg)
{
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "%s%d", (const char *)arg, ev->request_finished.status);
}

static void quitter_cb(const struct lx_event *ev, void *arg)
{
    note_cb(ev, arg);
    lx_bus_unsubscribe(LX_EV_REQUEST_FINISHED, quitter_cb, arg);
}

static void publish(int status)
{
    struct lx_event ev = {.type = LX_EV_REQUEST_FINISHED, .request_finished = {.route = "other", .status = status}};
    lx_bus_publish(&ev);
}

static void test_order_and_unsubscribe(void **state)
{
    (void)state;
    assert_false(lx_bus_wanted(LX_EV_REQUEST_FINISHED));
    publish(1); /* nobody listens */
    lx_bus_subscribe(LX_EV_REQUEST_FINISHED, note_cb, "a");
    lx_bus_subscribe(LX_EV_REQUEST_FINISHED, quitter_cb, "q");
    lx_bus_subscribe(LX_EV_REQUEST_FINISHED, note_cb, "b");
    assert_true(lx_bus_wanted(LX_EV_REQUEST_FINISHED));
    trace[0] = '\0';
    publish(2);
    assert_string_equal(trace, "a2q2b2"); /* in order; q leaves from inside and b still runs */
    trace[0] = '\0';
    publish(3);
    assert_string_equal(trace, "a3b3");
    lx_bus_unsubscribe(LX_EV_REQUEST_FINISHED, note_cb, "a");
    lx_bus_unsubscribe(LX_EV_REQUEST_FINISHED, note_cb, "nobody"); /* not subscribed: nothing happens */
    trace[0] = '\0';
    publish(4);
    assert_string_equal(trace, "b4");
    lx_bus_shutdown();
    assert_false(lx_bus_wanted(LX_EV_REQUEST_FINISHED));
    trace[0] = '\0';
    publish(5);
    assert_string_equal(trace, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_order_and_unsubscribe)};
    return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
