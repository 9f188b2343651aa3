/* Unit tests for src/core/bus.c: subscribers run in order, per type, and may come and go, even from
 * inside a publish; masks, names and the type filter; events nobody wants are not stamped; the helpers
 * for the tool loop and the conversation store. */
#include "../unit.h"
#include "../../../src/core/bus.h"
#include "../../../src/core/common.h"
#include "../../../src/core/trace.h"

static char trace[64];

static void note_cb(const struct lx_event *ev, void *arg)
{
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "%s%d", (const char *)arg, ev->request.status);
}

static void quitter_cb(const struct lx_event *ev, void *arg)
{
    note_cb(ev, arg);
    lx_bus_unsubscribe(LX_EV_REQUEST_FINISHED, quitter_cb, arg);
}

static void publish(int status)
{
    struct lx_event ev = {.type = LX_EV_REQUEST_FINISHED, .request = {.route = "other", .status = status}};
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

static struct lx_event last;
static int seen;

static void copy_cb(const struct lx_event *ev, void *arg)
{
    (void)arg;
    last = *ev;
    seen++;
}

static void test_masks_stamps_and_names(void **state)
{
    (void)state;
    lx_bus_subscribe_mask(LX_EV_REQUEST_END | LX_EV_BIT(LX_EV_CALL_RETRY), copy_cb, NULL);
    assert_true(lx_bus_wanted(LX_EV_REQUEST_FAILED));
    assert_true(lx_bus_wanted(LX_EV_CALL_RETRY));
    assert_false(lx_bus_wanted(LX_EV_CALL_STARTED));
    struct lx_event a = {.type = LX_EV_CALL_STARTED};
    lx_bus_publish(&a);
    assert_int_equal(a.seq, 0); /* nobody listens: not even stamped */
    struct lx_event b = {.type = LX_EV_REQUEST_CANCELLED}, c = {.type = LX_EV_CALL_RETRY};
    seen = 0;
    lx_bus_publish(&b);
    lx_bus_publish(&c);
    assert_int_equal(seen, 2);
    assert_true(c.seq == b.seq + 1);
    assert_true(b.seq > 1000000000000000ull); /* starts at the wall clock's microseconds: ids outlive restarts */
    assert_true(b.time_ns > 0 && c.time_ns >= b.time_ns);
    assert_int_equal(last.type, LX_EV_CALL_RETRY);
    lx_bus_unsubscribe_mask(LX_EV_ALL, copy_cb, NULL);
    assert_false(lx_bus_wanted(LX_EV_REQUEST_FAILED));

    for (int t = 0; t < LX_EV_TYPE_COUNT; t++) {
        const char *n = lx_event_type_name((enum lx_event_type)t);
        assert_non_null(n);
        assert_int_equal(lx_event_type_find(n, strlen(n)), t);
    }
    assert_null(lx_event_type_name(LX_EV_TYPE_COUNT));
    assert_int_equal(lx_event_type_find("call.retr", 9), -1);
    lx_ev_mask m;
    char bad[16];
    assert_int_equal(lx_event_mask_parse("call.retry, request.failed", &m, bad, sizeof bad), LX_OK);
    assert_true(m == (LX_EV_BIT(LX_EV_CALL_RETRY) | LX_EV_BIT(LX_EV_REQUEST_FAILED)));
    assert_int_equal(lx_event_mask_parse("", &m, bad, sizeof bad), LX_OK);
    assert_true(m == LX_EV_ALL);
    assert_int_equal(lx_event_mask_parse("*", &m, bad, sizeof bad), LX_OK);
    assert_true(m == LX_EV_ALL);
    assert_int_equal(lx_event_mask_parse("call.retry,tool.finishd,x", &m, bad, sizeof bad), LX_ERR);
    assert_string_equal(bad, "tool.finishd");
    assert_int_equal(lx_event_mask_parse("a-very-long-unknown-event-type-name", &m, bad, sizeof bad), LX_ERR);
    assert_int_equal(strlen(bad), sizeof bad - 1); /* cut to fit */
    lx_bus_shutdown();
}

static void test_tool_and_conversation_helpers(void **state)
{
    (void)state;
    struct lx_ev_origin o = {.request_id = "r1", .key = "team-a", .model = "m"};
    struct lx_ev_span span;
    lx_ev_tool_started(&o, "files", "read", &span); /* nobody listens: the span is still made */
    assert_true(span.start_ns > 0);
    uint8_t zero[8] = {0};
    assert_memory_not_equal(span.id, zero, 8);
    lx_bus_subscribe_mask(LX_EV_BIT(LX_EV_TOOL_STARTED) | LX_EV_BIT(LX_EV_TOOL_FINISHED) |
                              LX_EV_BIT(LX_EV_CONVERSATION_SAVED), copy_cb, NULL);
    lx_ev_tool_started(&o, "files", "read", &span);
    assert_int_equal(last.type, LX_EV_TOOL_STARTED);
    assert_ptr_equal(last.origin, &o);
    assert_string_equal(last.tool.server, "files");
    assert_memory_equal(last.tool.span_id, span.id, 8);
    lx_ev_tool_finished(&o, "files", "read", "error", "no such file", &span);
    assert_int_equal(last.type, LX_EV_TOOL_FINISHED);
    assert_string_equal(last.tool.outcome, "error");
    assert_string_equal(last.tool.error, "no such file");
    assert_true(last.tool.start_ns == span.start_ns && last.tool.duration_ms >= 0);
    lx_ev_conversation_saved(&o, "conv_1", 4, 1.5);
    assert_int_equal(last.type, LX_EV_CONVERSATION_SAVED);
    assert_string_equal(last.conversation.id, "conv_1");
    assert_int_equal(last.conversation.items, 4);
    lx_bus_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_order_and_unsubscribe),
                                       cmocka_unit_test(test_masks_stamps_and_names),
                                       cmocka_unit_test(test_tool_and_conversation_helpers)};
    return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
