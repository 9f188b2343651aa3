/* Unit tests for providers/mock_reply.c: which answer the mock decides on (text, tool calls, JSON, n
 * choices), the dropped parameters, and the 400s it refuses with. */
#include "../unit.h"
#include "../../../providers/mock_reply.h"
#include "../../../src/core/common.h"

static json_t *body_of(const char *text)
{
    json_error_t jerr;
    json_t *b = json_loads(text, 0, &jerr);
    if (!b)
        fail_msg("bad test body: %s", jerr.text);
    return b;
}

static int build(const char *text, struct lx_mock_reply *r, struct lx_error *e)
{
    json_t *b = body_of(text);
    int rc = lx_mock_reply_build(b, 42, r, e);
    json_decref(b);
    return rc;
}

#define TOOLS "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"," \
              "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},{\"type\":\"function\"," \
              "\"function\":{\"name\":\"get-time\"}}]"

static void test_text_echo_and_tokens(void **state)
{
    (void)state;
    struct lx_mock_reply r;
    struct lx_error e = {0};
    assert_int_equal(build("{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":"
                           "[{\"type\":\"text\",\"text\":\"hello there\"}]}]}", &r, &e), LX_OK);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.choices[0].content, "This is the llmux mock provider. You said: hello there");
    assert_string_equal(r.choices[0].finish, "stop");
    assert_int_equal(r.prompt_tokens, 4);
    assert_int_equal(r.completion_tokens, 10);
    assert_null(r.dropped);
    lx_mock_reply_free(&r);
}

static void test_auto_calls_named_tools(void **state)
{
    (void)state;
    struct lx_mock_reply r;
    struct lx_error e = {0};
    /* Both names appear, one of them written with a space for its '-'. */
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"GET_WEATHER in Rome, and get time\"}]," TOOLS "}", &r,
                           &e), LX_OK);
    assert_int_equal(r.choices[0].n_calls, 2);
    assert_string_equal(r.choices[0].calls[0].name, "get_weather");
    assert_string_equal(r.choices[0].calls[1].name, "get-time");
    assert_string_equal(r.choices[0].calls[1].arguments, "{}"); /* no parameters: {} */
    assert_null(r.choices[0].content);
    assert_string_equal(r.choices[0].finish, "tool_calls");
    lx_mock_reply_free(&r);
    /* A word that only contains a name does not name it; "use a tool" asks for the first. */
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"my_get_weathers\"}]," TOOLS "}", &r, &e), LX_OK);
    assert_int_equal(r.choices[0].n_calls, 0);
    lx_mock_reply_free(&r);
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"Please use a tool.\"}]," TOOLS "}", &r, &e), LX_OK);
    assert_int_equal(r.choices[0].n_calls, 1);
    assert_string_equal(r.choices[0].calls[0].name, "get_weather");
    lx_mock_reply_free(&r);
}

static void test_required_named_none_parallel(void **state)
{
    (void)state;
    struct lx_mock_reply r;
    struct lx_error e = {0};
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]," TOOLS ",\"tool_choice\":\"required\",\"n\":2}",
                           &r, &e), LX_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.choices[0].calls[0].name, "get_weather");
    assert_string_equal(r.choices[0].calls[0].arguments, "{\"city\":\"hi\"}");
    assert_string_not_equal(r.choices[0].calls[0].id, r.choices[1].calls[0].id);
    lx_mock_reply_free(&r);
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"get_weather\"}]," TOOLS
                           ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get-time\"}}}", &r, &e), LX_OK);
    assert_int_equal(r.choices[0].n_calls, 1);
    assert_string_equal(r.choices[0].calls[0].name, "get-time");
    lx_mock_reply_free(&r);
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"get_weather\"}]," TOOLS ",\"tool_choice\":\"none\"}", &r,
                           &e), LX_OK);
    assert_non_null(r.choices[0].content);
    lx_mock_reply_free(&r);
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"get_weather and get-time\"}]," TOOLS
                           ",\"parallel_tool_calls\":false}", &r, &e), LX_OK);
    assert_int_equal(r.choices[0].n_calls, 1);
    lx_mock_reply_free(&r);
}

static void test_tool_results_quoted(void **state)
{
    (void)state;
    struct lx_mock_reply r;
    struct lx_error e = {0};
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"use get_weather\"},{\"role\":\"assistant\","
                           "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":"
                           "\"get_weather\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":"
                           "\"sunny\"}]," TOOLS "}", &r, &e), LX_OK);
    assert_int_equal(r.choices[0].n_calls, 0);
    assert_string_equal(r.choices[0].content, "The tool get_weather returned: sunny");
    lx_mock_reply_free(&r);
}

static void test_json_formats_stop_and_length(void **state)
{
    (void)state;
    struct lx_mock_reply r;
    struct lx_error e = {0};
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\","
                           "\"json_schema\":{\"name\":\"n\",\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{"
                           "\"k\":{\"type\":\"integer\"}},\"required\":[\"k\"],\"additionalProperties\":false}}}}", &r, &e), LX_OK);
    assert_string_equal(r.choices[0].content, "{\"k\": 1}");
    lx_mock_reply_free(&r);
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}",
                           &r, &e), LX_OK);
    json_t *obj = json_loads(r.choices[0].content, 0, NULL);
    assert_true(json_is_string(json_object_get(obj, "reply")));
    json_decref(obj);
    lx_mock_reply_free(&r);
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}],\"stop\":\"b\"}", &r, &e), LX_OK);
    assert_string_equal(r.choices[0].content, "This is the llmux mock provider. You said: a ");
    lx_mock_reply_free(&r);
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}],\"max_tokens\":3}", &r, &e), LX_OK);
    assert_string_equal(r.choices[0].content, "This is the");
    assert_string_equal(r.choices[0].finish, "length");
    lx_mock_reply_free(&r);
}

static void test_dropped(void **state)
{
    (void)state;
    struct lx_mock_reply r;
    struct lx_error e = {0};
    assert_int_equal(build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":0,"
                           "\"logprobs\":true,\"store\":false,\"metadata\":null,\"seed\":1,\"user\":\"u\"}", &r, &e), LX_OK);
    assert_string_equal(r.dropped, "temperature,logprobs");
    lx_mock_reply_free(&r);
}

/* llmux offers MCP tools as SERVER__TOOL: the tool's own name names it, and the user's numbers fill its
 * number parameters in order (within their bounds). */
static void test_mcp_tools_and_numbers(void **state)
{
    (void)state;
    struct lx_mock_reply r;
    struct lx_error e = {0};
    assert_int_equal(build("{\"messages\":[{\"role\":\"user\",\"content\":\"Use get-sum to add 2 and 3.5, please\"}],"
                           "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"everything__echo\"}},"
                           "{\"type\":\"function\",\"function\":{\"name\":\"everything__get-sum\",\"parameters\":{"
                           "\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"number\"},\"b\":{\"type\":\"number\"},"
                           "\"n\":{\"type\":\"integer\",\"maximum\":1}},\"required\":[\"a\",\"b\",\"n\"]}}}]}", &r, &e),
                     LX_OK);
    assert_int_equal(r.choices[0].n_calls, 1);
    assert_string_equal(r.choices[0].calls[0].name, "everything__get-sum");
    json_t *args = json_loads(r.choices[0].calls[0].arguments, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(args, "a")), 2);
    assert_true(json_real_value(json_object_get(args, "b")) == 3.5);
    assert_true(json_integer_value(json_object_get(args, "n")) <= 1); /* no number left that fits */
    json_decref(args);
    lx_mock_reply_free(&r);
}

static void test_refusals(void **state)
{
    (void)state;
    static const struct { const char *body, *param; } cases[] = {
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":0}", "n"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":1.5}", "n"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}", "tool_choice"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]," TOOLS ",\"tool_choice\":\"sometimes\"}", "tool_choice"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]," TOOLS ",\"tool_choice\":{\"type\":\"function\",\"function\":"
         "{\"name\":\"nope\"}}}", "tool_choice"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":{}}", "tools"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{}}]}",
         "tools[0].function.name"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"yaml\"}}", "response_format.type"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\"}}",
         "response_format.json_schema"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct lx_mock_reply r;
        struct lx_error e = {0};
        assert_int_equal(build(cases[i].body, &r, &e), LX_ERR);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.param, cases[i].param);
        lx_error_clear(&e);
        lx_mock_reply_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_echo_and_tokens),    cmocka_unit_test(test_auto_calls_named_tools),
        cmocka_unit_test(test_required_named_none_parallel), cmocka_unit_test(test_tool_results_quoted),
        cmocka_unit_test(test_json_formats_stop_and_length), cmocka_unit_test(test_dropped),
        cmocka_unit_test(test_refusals),          cmocka_unit_test(test_mcp_tools_and_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
