/* Unit tests for src/core/evjson.c: the RFC 3339 time, and every event type as JSON, whatever its fields. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/core/evjson.h"

#include <jansson.h>

static void test_rfc3339(void **state)
{
    (void)state;
    char when[40];
    lx_rfc3339(1700000000123456789LL, when, sizeof when);
    assert_string_equal(when, "2023-11-14T22:13:20.123456Z");
    lx_rfc3339(0, when, sizeof when);
    assert_string_equal(when, "1970-01-01T00:00:00.000000Z");
}

/* Every type serializes, and client strings that are not UTF-8 do not break the JSON. */
static void test_every_type_is_json(void **state)
{
    (void)state;
    struct lx_ev_origin o = {.request_id = "r", .model = "bad\xff", .trace = {.valid = true, .trace_id = {1}}};
    for (int t = 0; t < LX_EV_TYPE_COUNT; t++) {
        struct lx_event ev = {.type = (enum lx_event_type)t, .seq = 1, .time_ns = 0, .origin = &o};
        /* every field zero: the writers take NULL strings */
        json_t *j = lx_event_json(&ev);
        char *s = json_dumps(j, JSON_COMPACT);
        assert_non_null(strstr(s, lx_event_type_name(ev.type)));
        assert_non_null(strstr(s, "(not UTF-8)"));
        assert_non_null(strstr(s, "\"trace_id\":\"01000000000000000000000000000000\""));
        free(s);
        json_decref(j);
    }
}

static void test_finished_fields(void **state)
{
    (void)state;
    struct lx_ev_origin o = {.request_id = "r", .key = NULL, .model = "smart"};
    struct lx_event ev = {.type = LX_EV_CALL_FINISHED, .seq = 7, .origin = &o,
                          .call = {.provider = "up", .label = "up/b", .outcome = "error", .status = 503,
                                   .error = "server_error", .prompt_tokens = 5, .duration_ms = 1.26}};
    json_t *j = lx_event_json(&ev);
    assert_true(json_is_null(json_object_get(j, "key")));
    assert_string_equal(json_string_value(json_object_get(j, "outcome")), "error");
    assert_null(json_object_get(j, "prompt_tokens")); /* tokens only for the attempt that won */
    assert_null(json_object_get(j, "span_id"));       /* zero: not traced */
    assert_true(json_real_value(json_object_get(j, "duration_ms")) == 1.3);
    json_decref(j);
    ev.call.won = true;
    j = lx_event_json(&ev);
    assert_int_equal(json_integer_value(json_object_get(j, "prompt_tokens")), 5);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rfc3339), cmocka_unit_test(test_every_type_is_json),
                                       cmocka_unit_test(test_finished_fields)};
    return cmocka_run_group_tests_name("evjson", tests, NULL, NULL);
}
