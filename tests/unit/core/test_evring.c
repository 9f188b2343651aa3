/* Unit tests for src/core/evring.c: entries in order, the oldest overwritten, replay positions found by
 * id, type and model filters, and each entry's text the event's JSON. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/core/evjson.h"
#include "../../../src/core/evring.h"

#include <jansson.h>

static struct lx_ev_origin origin = {.request_id = "req-1", .key = "team", .model = "smart"};

static void push_retry(struct lx_evring *r, uint64_t seq, const char *label)
{
    struct lx_event ev = {.type = LX_EV_CALL_RETRY, .seq = seq, .time_ns = 1700000000123456789LL, .origin = &origin,
                          .retry = {.provider = "p", .label = label, .attempt = 1, .max = 2, .reason = "timeout",
                                    .status = 504, .delay_ms = 40}};
    lx_evring_push(r, &ev);
}

static void test_ring(void **state)
{
    (void)state;
    struct lx_evring r;
    lx_evring_init(&r, 3);
    assert_int_equal(lx_evring_first(&r), 0);
    assert_null(lx_evring_at(&r, 0));
    push_retry(&r, 10, "p/a");
    push_retry(&r, 11, "p/b");
    struct lx_event cool = {.type = LX_EV_PROVIDER_COOLDOWN, .seq = 15, .time_ns = 1,
                            .cooldown = {.provider = "p", .entered = true, .failures = 3, .period_ms = 100}};
    lx_evring_push(&r, &cool);
    push_retry(&r, 20, "p/c"); /* overwrites seq 10 */
    assert_int_equal(lx_evring_first(&r), 1);
    assert_int_equal(r.end, 4);
    assert_null(lx_evring_at(&r, 0));
    assert_int_equal(lx_evring_at(&r, 1)->seq, 11);
    assert_int_equal(lx_evring_at(&r, 3)->seq, 20);
    assert_null(lx_evring_at(&r, 4));
    /* Replay: the first held event after an id. */
    assert_int_equal(lx_evring_after(&r, 5), 1);   /* older than the ring: all it holds */
    assert_int_equal(lx_evring_after(&r, 11), 2);
    assert_int_equal(lx_evring_after(&r, 12), 2);
    assert_int_equal(lx_evring_after(&r, 15), 3);
    assert_int_equal(lx_evring_after(&r, 20), 4);  /* nothing newer */
    /* Filters: by type, and by the model asked for or the target. */
    const struct lx_evring_entry *e = lx_evring_at(&r, 3), *c = lx_evring_at(&r, 2);
    assert_true(lx_evring_match(e, LX_EV_ALL, NULL));
    assert_false(lx_evring_match(e, LX_EV_BIT(LX_EV_CALL_FALLBACK), NULL));
    assert_true(lx_evring_match(e, LX_EV_ALL, "smart"));
    assert_true(lx_evring_match(e, LX_EV_ALL, "p/c"));
    assert_false(lx_evring_match(e, LX_EV_ALL, "p/a"));
    assert_false(lx_evring_match(c, LX_EV_ALL, "smart")); /* a provider event is about no model */
    assert_true(lx_evring_match(c, LX_EV_BIT(LX_EV_PROVIDER_COOLDOWN), NULL));
    /* The stored text is the event's JSON. */
    json_t *o = json_loads(e->text, 0, NULL);
    assert_non_null(o);
    assert_int_equal(strlen(e->text), e->len);
    assert_string_equal(json_string_value(json_object_get(o, "id")), "20");
    assert_string_equal(json_string_value(json_object_get(o, "type")), "call.retry");
    assert_string_equal(json_string_value(json_object_get(o, "time")), "2023-11-14T22:13:20.123456Z");
    assert_string_equal(json_string_value(json_object_get(o, "request_id")), "req-1");
    assert_string_equal(json_string_value(json_object_get(o, "key")), "team");
    assert_string_equal(json_string_value(json_object_get(o, "target")), "p/c");
    assert_int_equal(json_integer_value(json_object_get(o, "delay_ms")), 40);
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 504);
    json_decref(o);
    o = json_loads(c->text, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "entered");
    assert_null(json_object_get(o, "request_id"));
    json_decref(o);
    lx_evring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ring)};
    return cmocka_run_group_tests_name("evring", tests, NULL, NULL);
}
