/* Unit tests for the validation in src/embeddings.c: every 400 names its field, and parse errors say where. */
#include "../unit.h"
#include "../../../src/core/json.h"
#include "../../../src/api/embeddings.h"

static void expect(const char *body, int ok, const char *param, const char *code)
{
    struct lx_error e = {0};
    json_t *j = lx_embeddings_parse(body, strlen(body), &e);
    if (ok) {
        assert_non_null(j);
        json_decref(j);
        return;
    }
    assert_null(j);
    assert_int_equal(e.status, 400);
    if (param)
        assert_string_equal(e.param, param);
    assert_string_equal(e.code, code);
    lx_error_clear(&e);
}

static void test_embeddings_validation(void **state)
{
    (void)state;
    expect("{\"model\":\"p/m\",\"input\":\"one\"}", 1, NULL, NULL);
    expect("{\"model\":\"p/m\",\"input\":[\"a\",\"b\"]}", 1, NULL, NULL);
    expect("{\"model\":\"p/m\",\"input\":[[1,2],[3]]}", 1, NULL, NULL);
    expect("", 0, NULL, "invalid_json");
    expect("[1]", 0, NULL, "invalid_json");
    expect("{\"input\":\"x\"}", 0, "model", "missing_required_parameter");
    expect("{\"model\":1,\"input\":\"x\"}", 0, "model", "invalid_type");
    expect("{\"model\":\"p/m\"}", 0, "input", "missing_required_parameter");
    expect("{\"model\":\"p/m\",\"input\":[]}", 0, "input", "invalid_type");
    expect("{\"model\":\"p/m\",\"input\":[{}]}", 0, "input", "invalid_type");
    expect("{\"model\":\"p/m\",\"input\":5}", 0, "input", "invalid_type");
}

/* One parse helper for every endpoint: the same message, with line and column, as chat's. */
static void test_embeddings_parse_error_detail(void **state)
{
    (void)state;
    const char *bad = "{\"model\": \"p/m\",\n \"input\": [1,}";
    struct lx_error e = {0}, c = {0};
    assert_null(lx_embeddings_parse(bad, strlen(bad), &e));
    assert_int_equal(e.status, 400);
    assert_string_equal(e.code, "invalid_json");
    assert_non_null(strstr(e.message, "(line 2, column "));
    assert_null(lx_json_parse_object(bad, strlen(bad), &c));
    assert_string_equal(e.message, c.message);
    lx_error_clear(&e);
    lx_error_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_embeddings_validation),
                                       cmocka_unit_test(test_embeddings_parse_error_detail)};
    return cmocka_run_group_tests_name("embeddings", tests, NULL, NULL);
}
