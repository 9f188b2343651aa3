/* Unit tests for src/errors.c: the OpenAI error shape and reading upstream error bodies. */
#include "unit.h"
#include "../../src/errors.h"

static void test_shape(void **state)
{
    (void)state;
    struct lx_error e = {0};
    lx_error_set(&e, 404, NULL, "model", "model_not_found", "no %s", "such");
    json_t *j = lx_error_json(&e);
    json_t *in = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(in, "message")), "no such");
    assert_string_equal(json_string_value(json_object_get(in, "type")), "invalid_request_error");
    assert_string_equal(json_string_value(json_object_get(in, "param")), "model");
    assert_string_equal(json_string_value(json_object_get(in, "code")), "model_not_found");
    json_decref(j);
    lx_error_set(&e, 502, NULL, NULL, NULL, "x");
    j = lx_error_json(&e);
    in = json_object_get(j, "error");
    assert_true(json_is_null(json_object_get(in, "param")));
    assert_true(json_is_null(json_object_get(in, "code")));
    assert_string_equal(json_string_value(json_object_get(in, "type")), "upstream_error");
    json_decref(j);
    lx_error_clear(&e);
}

static void test_from_openai_fixtures(void **state)
{
    (void)state;
    struct lx_error e = {0};
    size_t len;
    char *body = read_fixture("openai_error_429_rate_limit.json", &len);
    lx_error_from_upstream(&e, 429, body, len);
    assert_int_equal(e.status, 429);
    assert_non_null(strstr(e.message, "Rate limit reached"));
    assert_string_equal(e.code, "rate_limit_exceeded");
    assert_string_equal(e.type, "tokens");
    free(body);
    body = read_fixture("openai_error_400_context_length.json", &len);
    lx_error_from_upstream(&e, 400, body, len);
    assert_string_equal(e.param, "messages");
    assert_string_equal(e.code, "context_length_exceeded");
    free(body);
    lx_error_clear(&e);
}

static void test_from_variants(void **state)
{
    (void)state;
    struct lx_error e = {0};
    lx_error_from_upstream(&e, 500, "{\"error\":\"boom\"}", 16);
    assert_string_equal(e.message, "boom");
    lx_error_from_upstream(&e, 422, "{\"detail\":\"bad field\"}", 22);
    assert_string_equal(e.message, "bad field");
    lx_error_from_upstream(&e, 503, "<html>down</html>", 17);
    assert_string_equal(e.message, "upstream answered HTTP 503");
    assert_int_equal(e.status, 503);
    lx_error_from_upstream(&e, 500, NULL, 0);
    assert_string_equal(e.message, "upstream answered HTTP 500");
    lx_error_clear(&e);
}

static void test_type_for_status(void **state)
{
    (void)state;
    assert_string_equal(lx_error_type_for_status(400), "invalid_request_error");
    assert_string_equal(lx_error_type_for_status(401), "authentication_error");
    assert_string_equal(lx_error_type_for_status(403), "permission_error");
    assert_string_equal(lx_error_type_for_status(404), "invalid_request_error");
    assert_string_equal(lx_error_type_for_status(413), "invalid_request_error");
    assert_string_equal(lx_error_type_for_status(429), "rate_limit_error");
    assert_string_equal(lx_error_type_for_status(500), "server_error");
    assert_string_equal(lx_error_type_for_status(502), "upstream_error");
    assert_string_equal(lx_error_type_for_status(503), "service_unavailable");
    assert_string_equal(lx_error_type_for_status(504), "upstream_error");
}

static void test_copy(void **state)
{
    (void)state;
    struct lx_error a = {0}, b = {0};
    lx_error_set(&a, 429, "t", "p", "c", "m%d", 1);
    a.retry_after = strdup("3");
    lx_error_copy(&b, &a);
    lx_error_clear(&a);
    assert_int_equal(b.status, 429);
    assert_string_equal(b.message, "m1");
    assert_string_equal(b.type, "t");
    assert_string_equal(b.param, "p");
    assert_string_equal(b.code, "c");
    assert_string_equal(b.retry_after, "3");
    lx_error_copy(&b, &b);
    assert_string_equal(b.message, "m1");
    lx_error_clear(&b);
    assert_false(lx_error_isset(&b));
}

static void test_numeric_code(void **state)
{
    (void)state;
    struct lx_error e = {0};
    const char *body = "{\"error\":{\"message\":\"x\",\"code\":529,\"type\":\"overloaded_error\"}}";
    lx_error_from_upstream(&e, 529, body, strlen(body));
    assert_string_equal(e.code, "529");
    lx_error_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_from_openai_fixtures),
        cmocka_unit_test(test_from_variants),
        cmocka_unit_test(test_type_for_status),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_numeric_code),
    };
    return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
