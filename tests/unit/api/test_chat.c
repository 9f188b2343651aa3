/* Unit tests for the request validation in src/chat.c: every 400 names its field. */
#include "../../../src/api/chat.h"
#include "../unit.h"

static void expect_400(const char *body, const char *param, const char *code)
{
    struct lx_error e = {0};
    json_t *j = lx_chat_parse(body, strlen(body), &e);
    assert_null(j);
    assert_int_equal(e.status, 400);
    if (param)
        assert_string_equal(e.param, param);
    else
        assert_null(e.param);
    assert_string_equal(e.code, code);
    assert_string_equal(e.type, "invalid_request_error");
    lx_error_clear(&e);
}

static void test_valid(void **state)
{
    (void)state;
    struct lx_error e = {0};
    const char *b = "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,"
                    "\"stream_options\":{\"include_usage\":true}}";
    json_t *j = lx_chat_parse(b, strlen(b), &e);
    assert_non_null(j);
    assert_false(lx_error_isset(&e));
    json_decref(j);
}

static void test_invalid(void **state)
{
    (void)state;
    expect_400("", NULL, "invalid_json");
    expect_400("{nope", NULL, "invalid_json");
    expect_400("[]", NULL, "invalid_json");
    expect_400("{\"messages\":[{\"role\":\"user\"}]}", "model", "missing_required_parameter");
    expect_400("{\"model\":3,\"messages\":[{\"role\":\"user\"}]}", "model", "invalid_type");
    expect_400("{\"model\":\"\",\"messages\":[{\"role\":\"user\"}]}", "model", "invalid_type");
    expect_400("{\"model\":\"m/x\"}", "messages", "missing_required_parameter");
    expect_400("{\"model\":\"m/x\",\"messages\":{}}", "messages", "invalid_type");
    expect_400("{\"model\":\"m/x\",\"messages\":[]}", "messages", "empty_array");
    expect_400("{\"model\":\"m/x\",\"messages\":[1]}", "messages[0]", "invalid_type");
    expect_400("{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\"},{\"content\":\"x\"}]}", "messages[1].role",
               "missing_required_parameter");
    expect_400("{\"model\":\"m/x\",\"messages\":[{\"role\":5}]}", "messages[0].role", "invalid_type");
    expect_400("{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\"}],\"stream\":\"yes\"}", "stream", "invalid_type");
    expect_400("{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\"}],\"stream_options\":1}", "stream_options",
               "invalid_type");
    expect_400("{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\"}],\"stream_options\":{\"include_usage\":1}}",
               "stream_options.include_usage", "invalid_type");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests_name("chat", tests, NULL, NULL);
}
