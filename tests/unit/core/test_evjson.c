/* Unit tests for src/core/evjson.c (and the writer it uses, src/core/jsonw.c): the RFC 3339 time, every
 * event type as valid JSON whatever its fields, escaping, and the call fields. */
#include "../unit.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/common.h"
#include "../../../src/core/evjson.h"
#include "../../../src/core/jsonw.h"

#include <jansson.h>

/* ev's JSON, parsed back (it must parse). */
static json_t *json_of(const struct lx_event *ev)
{
    struct lx_buf b = {0};
    lx_event_write(ev, &b);
    json_error_t err;
    json_t *j = json_loadb(b.data, b.len, 0, &err);
    if (!j)
        fail_msg("not JSON (%s): %s", err.text, b.data);
    lx_buf_free(&b);
    return j;
}

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
        json_t *j = json_of(&ev);
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
    json_t *j = json_of(&ev);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "7");
    assert_true(json_is_null(json_object_get(j, "key")));
    assert_string_equal(json_string_value(json_object_get(j, "outcome")), "error");
    assert_null(json_object_get(j, "prompt_tokens")); /* tokens only for the attempt that won */
    assert_null(json_object_get(j, "span_id"));       /* zero: not traced */
    assert_true(json_real_value(json_object_get(j, "duration_ms")) == 1.3);
    json_decref(j);
    ev.call.won = true;
    j = json_of(&ev);
    assert_int_equal(json_integer_value(json_object_get(j, "prompt_tokens")), 5);
    json_decref(j);
}

static void test_strings_escaped(void **state)
{
    (void)state;
    struct lx_ev_origin o = {.request_id = "r", .model = "a\"b\\c\n\t\x01 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"};
    struct lx_event ev = {.type = LX_EV_REQUEST_STARTED, .origin = &o, .request = {.path = "/p\xc0\xaf"}};
    json_t *j = json_of(&ev);
    assert_string_equal(json_string_value(json_object_get(j, "model")), o.model);
    assert_string_equal(json_string_value(json_object_get(j, "path")), "(not UTF-8)"); /* overlong */
    json_decref(j);
    static const char *const bad[] = {"\xff", "\xc3", "\xed\xa0\x80" /* surrogate */, "\xf4\x90\x80\x80" /* > U+10FFFF */,
                                      "\xe2\x28\xa1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(lx_utf8_valid(bad[i], strlen(bad[i])));
    assert_true(lx_utf8_valid("plain", 5));
    /* Nesting: commas only between items. */
    struct lx_buf b = {0};
    struct lx_jw w = lx_jw_on(&b);
    lx_jw_open(&w, NULL, '{');
    lx_jw_open(&w, "a", '[');
    lx_jw_int(&w, NULL, 1);
    lx_jw_open(&w, NULL, '{');
    lx_jw_close(&w, '}');
    lx_jw_raw(&w, NULL, "[2]");
    lx_jw_close(&w, ']');
    lx_jw_bool(&w, "t", true);
    lx_jw_ms(&w, "m", -1);
    lx_jw_str(&w, "none", NULL);
    lx_jw_close(&w, '}');
    assert_string_equal(b.data, "{\"a\":[1,{},[2]],\"t\":true,\"m\":null}");
    lx_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rfc3339), cmocka_unit_test(test_every_type_is_json),
                                       cmocka_unit_test(test_finished_fields), cmocka_unit_test(test_strings_escaped)};
    return cmocka_run_group_tests_name("evjson", tests, NULL, NULL);
}
