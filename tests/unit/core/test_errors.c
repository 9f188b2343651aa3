/* Unit tests for src/errors.c: the OpenAI error shape and reading upstream error bodies. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/core/errors.h"

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

/* Errors inside a 200 or a stream event carry no status: it comes from their code, then their type. */
static void test_status_for_kind(void **state)
{
    (void)state;
    assert_int_equal(lx_error_status_for_kind("insufficient_quota", "insufficient_quota", 502), 429);
    assert_int_equal(lx_error_status_for_kind("tokens", "rate_limit_exceeded", 502), 429);
    /* OpenAI's bad key comes with type invalid_request_error: the code decides. */
    assert_int_equal(lx_error_status_for_kind("invalid_request_error", "invalid_api_key", 502), 401);
    assert_int_equal(lx_error_status_for_kind("invalid_request_error", "model_not_found", 502), 404);
    assert_int_equal(lx_error_status_for_kind("invalid_request_error", "context_length_exceeded", 502), 400);
    assert_int_equal(lx_error_status_for_kind("invalid_request_error", "some_new_code", 502), 400);
    assert_int_equal(lx_error_status_for_kind("server_error", NULL, 502), 500);
    /* Anthropic's types. */
    assert_int_equal(lx_error_status_for_kind("overloaded_error", NULL, 502), 529);
    assert_int_equal(lx_error_status_for_kind("rate_limit_error", NULL, 502), 429);
    assert_int_equal(lx_error_status_for_kind("authentication_error", NULL, 502), 401);
    assert_int_equal(lx_error_status_for_kind("permission_error", NULL, 502), 403);
    assert_int_equal(lx_error_status_for_kind("not_found_error", NULL, 502), 404);
    assert_int_equal(lx_error_status_for_kind("request_too_large", NULL, 502), 413);
    assert_int_equal(lx_error_status_for_kind("billing_error", NULL, 502), 402);
    assert_int_equal(lx_error_status_for_kind("api_error", NULL, 502), 500);
    assert_int_equal(lx_error_status_for_kind("timeout_error", NULL, 502), 504);
    /* Unknown, or nothing at all: the default. */
    assert_int_equal(lx_error_status_for_kind("mystery_error", "mystery", 502), 502);
    assert_int_equal(lx_error_status_for_kind(NULL, NULL, 503), 503);
}

static void test_from_answer(void **state)
{
    (void)state;
    struct lx_error e = {0};
    size_t len;
    char *body = read_fixture("openai_error_429_rate_limit.json", &len);
    json_t *root = json_loadb(body, len, 0, NULL);
    assert_true(lx_error_from_answer(&e, root));
    assert_int_equal(e.status, 429);
    assert_string_equal(e.type, "tokens");
    assert_string_equal(e.code, "rate_limit_exceeded");
    assert_non_null(strstr(e.message, "Rate limit reached"));
    json_decref(root);
    free(body);
    root = json_pack("{s:s}", "error", "model is loading");
    assert_true(lx_error_from_answer(&e, root));
    assert_int_equal(e.status, 502);
    assert_string_equal(e.message, "model is loading");
    json_decref(root);
    lx_error_clear(&e);
    /* Not error objects: nothing is set. */
    const char *not_errors[] = {"{\"choices\":[]}", "{\"error\":null}", "{\"error\":3}", "[1]"};
    for (size_t i = 0; i < LX_ARRAY_LEN(not_errors); i++) {
        root = json_loads(not_errors[i], JSON_DECODE_ANY, NULL);
        assert_false(lx_error_from_answer(&e, root));
        assert_false(lx_error_isset(&e));
        json_decref(root);
    }
    assert_false(lx_error_from_answer(&e, NULL));
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
        cmocka_unit_test(test_status_for_kind),
        cmocka_unit_test(test_from_answer),
    };
    return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
