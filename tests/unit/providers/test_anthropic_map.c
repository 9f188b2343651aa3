/* Unit tests for providers/anthropic_map.c: each map read both ways, as the anthropic provider and the
 * anthropic_messages dialect use them. */
#include "../unit.h"
#include "../../../providers/anthropic_map.h"
#include "../../../src/core/common.h"

static json_t *js(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    if (!v)
        fail_msg("bad test JSON: %s: %s", text, e.text);
    return v;
}

/* a (borrowed or stolen, see steal) equals the JSON text b. */
static void assert_json(json_t *a, const char *b, bool steal)
{
    json_t *want = js(b);
    if (!json_equal(a, want)) {
        char *got = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", got ? got : "NULL", b);
    }
    json_decref(want);
    if (steal)
        json_decref(a);
}

static void test_stop_reasons(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"end_turn", "stop"}, {"max_tokens", "length"}, {"tool_use", "tool_calls"}, {"refusal", "content_filter"},
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(pairs); i++) {
        assert_string_equal(lx_anthropic_finish_reason(pairs[i][0]), pairs[i][1]);
        assert_string_equal(lx_anthropic_stop_reason(pairs[i][1], false), pairs[i][0]);
    }
    assert_string_equal(lx_anthropic_finish_reason("stop_sequence"), "stop");
    assert_string_equal(lx_anthropic_finish_reason("pause_turn"), "stop");
    assert_string_equal(lx_anthropic_finish_reason("model_context_window_exceeded"), "length");
    assert_string_equal(lx_anthropic_finish_reason("a_reason_from_2030"), "stop");
    assert_null(lx_anthropic_finish_reason(NULL));
    assert_string_equal(lx_anthropic_stop_reason("stop", true), "stop_sequence");
    assert_string_equal(lx_anthropic_stop_reason("length", true), "max_tokens");
    assert_string_equal(lx_anthropic_stop_reason("function_call", false), "tool_use");
    assert_string_equal(lx_anthropic_stop_reason(NULL, false), "end_turn");
    assert_string_equal(lx_anthropic_stop_reason("eos", false), "end_turn");
}

static void test_usage_both_ways(void **state)
{
    (void)state;
    json_t *a = js("{\"input_tokens\":100,\"cache_creation_input_tokens\":20,\"cache_read_input_tokens\":300,"
                   "\"output_tokens\":7,\"service_tier\":\"standard\"}");
    json_t *o = lx_anthropic_usage_to_openai(a);
    assert_json(o, "{\"prompt_tokens\":420,\"completion_tokens\":7,\"total_tokens\":427,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":300,\"cache_write_tokens\":20}}", false);
    json_t *back = lx_anthropic_usage_from_openai(o);
    assert_json(back, "{\"input_tokens\":100,\"cache_creation_input_tokens\":20,\"cache_read_input_tokens\":300,"
                      "\"cache_creation\":{\"ephemeral_5m_input_tokens\":20,\"ephemeral_1h_input_tokens\":0},"
                      "\"output_tokens\":7}", true);
    json_decref(o);
    json_decref(a);
    /* without cache writes OpenAI's usage keeps its usual shape; missing or negative counts are 0 */
    assert_json(lx_anthropic_usage_to_openai(NULL), "{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0,"
                                                    "\"prompt_tokens_details\":{\"cached_tokens\":0}}", true);
    json_t *u = js("{\"prompt_tokens\":5,\"completion_tokens\":-3}");
    assert_json(lx_anthropic_usage_from_openai(u),
                "{\"input_tokens\":5,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
                "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},"
                "\"output_tokens\":0}", true);
    json_decref(u);
}

static void test_images_both_ways(void **state)
{
    (void)state;
    struct lx_error e = {0};
    json_t *part = js("{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO\"}}");
    json_t *block = lx_anthropic_image_from_openai(part, "p", &e);
    assert_json(block, "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBO\"}}",
                false);
    assert_json(lx_anthropic_image_to_openai(block), "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO\"}}",
                true);
    json_decref(block);
    json_decref(part);
    part = js("{\"type\":\"image_url\",\"image_url\":\"https://x.test/a.jpg\"}");
    block = lx_anthropic_image_from_openai(part, "p", &e);
    assert_json(block, "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.jpg\"}}", false);
    assert_json(lx_anthropic_image_to_openai(block), "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.jpg\"}}",
                true);
    json_decref(block);
    json_decref(part);
    /* a file_id only Anthropic can read has no OpenAI form */
    block = js("{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"file_1\"}}");
    assert_null(lx_anthropic_image_to_openai(block));
    json_decref(block);
    part = js("{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png,AAAA\"}}");
    assert_null(lx_anthropic_image_from_openai(part, "messages[0].content[2]", &e));
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "messages[0].content[2]");
    json_decref(part);
    lx_error_clear(&e);
}

static void test_documents_from_file_parts(void **state)
{
    (void)state;
    struct lx_error e = {0};
    json_t *part = js("{\"type\":\"file\",\"file\":{\"filename\":\"a.pdf\",\"file_data\":\"data:application/pdf;base64,JVBE\"}}");
    assert_json(lx_anthropic_document_from_openai(part, "p", &e),
                "{\"type\":\"document\",\"title\":\"a.pdf\",\"source\":{\"type\":\"base64\",\"media_type\":\"application/pdf\","
                "\"data\":\"JVBE\"}}", true);
    json_decref(part);
    part = js("{\"type\":\"file\",\"file\":{\"file_url\":\"https://x.test/a.pdf\"}}");
    assert_json(lx_anthropic_document_from_openai(part, "p", &e),
                "{\"type\":\"document\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.pdf\"}}", true);
    json_decref(part);
    part = js("{\"type\":\"file\",\"file\":{\"file_data\":\"data:text/csv;base64,YQ==\"}}");
    assert_null(lx_anthropic_document_from_openai(part, "p", &e));
    assert_string_equal(e.param, "p");
    json_decref(part);
    part = js("{\"type\":\"file\",\"file\":{\"file_id\":\"file-abc\"}}");
    assert_null(lx_anthropic_document_from_openai(part, "p", &e));
    json_decref(part);
    /* the content map takes file parts among others */
    json_t *content = js("[{\"type\":\"text\",\"text\":\"read\"},{\"type\":\"file\",\"file\":{\"file_data\":"
                         "\"data:application/pdf;base64,JVBE\"}}]");
    json_t *blocks = lx_anthropic_blocks_from_openai(content, "messages[1].content", &e);
    assert_int_equal(json_array_size(blocks), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(blocks, 1), "type")), "document");
    json_decref(blocks);
    json_decref(content);
    lx_error_clear(&e);
}

static void test_tool_use_both_ways(void **state)
{
    (void)state;
    json_t *block = js("{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"},"
                       "\"caller\":{\"type\":\"direct\"}}");
    json_t *call = lx_anthropic_tool_use_to_openai(block);
    assert_json(call, "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                      "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}", false);
    assert_json(lx_anthropic_tool_use_from_openai(call),
                "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}", true);
    json_decref(call);
    json_decref(block);
    call = js("{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}");
    assert_json(lx_anthropic_tool_use_from_openai(call), "{\"type\":\"tool_use\",\"id\":\"c\",\"name\":\"f\",\"input\":{}}", true);
    json_decref(call);
    call = js("{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}");
    assert_null(lx_anthropic_tool_use_from_openai(call));
    json_decref(call);
}

static void test_tools_and_tool_choice_both_ways(void **state)
{
    (void)state;
    json_t *tool = js("{\"name\":\"get_weather\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\","
                      "\"properties\":{\"city\":{\"type\":\"string\"}}},\"strict\":true,\"cache_control\":{\"type\":\"ephemeral\"}}");
    json_t *oai = lx_anthropic_tool_to_openai(tool);
    assert_json(oai, "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\",\"strict\":true,"
                     "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}", false);
    json_object_del(tool, "cache_control");
    char *want = json_dumps(tool, JSON_COMPACT);
    assert_json(lx_anthropic_tool_from_openai(oai), want, true);
    free(want);
    json_decref(oai);
    json_decref(tool);

    static const char *const pairs[][2] = {
        {"{\"type\":\"auto\"}", "\"auto\""},
        {"{\"type\":\"any\"}", "\"required\""},
        {"{\"type\":\"none\"}", "\"none\""},
        {"{\"type\":\"tool\",\"name\":\"f\"}", "{\"type\":\"function\",\"function\":{\"name\":\"f\"}}"},
        {"{\"type\":\"any\",\"disable_parallel_tool_use\":true}", "\"required\""},
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(pairs); i++) {
        struct lx_error e = {0};
        bool no_parallel;
        json_t *a = js(pairs[i][0]);
        json_t *o = lx_anthropic_tool_choice_to_openai(a, &no_parallel);
        assert_json(o, pairs[i][1], false);
        assert_json(lx_anthropic_tool_choice_from_openai(o, no_parallel, &e), pairs[i][0], true);
        json_decref(o);
        json_decref(a);
    }
    bool np;
    json_t *bad = js("{\"type\":\"tool\"}");
    assert_null(lx_anthropic_tool_choice_to_openai(bad, &np));
    json_decref(bad);
    bad = js("{\"type\":\"sometimes\"}");
    assert_null(lx_anthropic_tool_choice_to_openai(bad, &np));
    json_decref(bad);
}

/* Assistant blocks → an OpenAI message → blocks again: text, tool calls and thinking with signatures. */
static void test_assistant_blocks_both_ways(void **state)
{
    (void)state;
    json_t *blocks = js("[{\"type\":\"thinking\",\"thinking\":\"Let me see.\",\"signature\":\"sig1\"},"
                        "{\"type\":\"redacted_thinking\",\"data\":\"enc\"},"
                        "{\"type\":\"text\",\"text\":\"I'll check \"},{\"type\":\"text\",\"text\":\"both.\"},"
                        "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"a\",\"input\":{}},"
                        "{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"b\",\"input\":{\"x\":[1,2]}},"
                        "{\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\",\"input\":{}}]");
    json_t *msg = json_object();
    lx_anthropic_blocks_to_openai(blocks, msg, true);
    assert_json(msg, "{\"content\":\"I'll check both.\",\"reasoning_content\":\"Let me see.\","
                     "\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"Let me see.\",\"signature\":\"sig1\",\"index\":0},"
                     "{\"type\":\"reasoning.encrypted\",\"data\":\"enc\",\"index\":1}],"
                     "\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
                     "{\"id\":\"t2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{\\\"x\\\":[1,2]}\"}}]}",
                false);
    json_t *again = json_array();
    lx_anthropic_thinking_from_openai(msg, again);
    assert_json(again, "[{\"type\":\"thinking\",\"thinking\":\"Let me see.\",\"signature\":\"sig1\"},"
                       "{\"type\":\"redacted_thinking\",\"data\":\"enc\"}]", true);
    json_decref(msg);
    /* without thinking, and tool calls alone give null content */
    msg = json_object();
    json_t *tools_only = js("[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"s\"},"
                            "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"a\",\"input\":{}}]");
    lx_anthropic_blocks_to_openai(tools_only, msg, false);
    assert_true(json_is_null(json_object_get(msg, "content")));
    assert_null(json_object_get(msg, "reasoning_details"));
    json_decref(msg);
    json_decref(tools_only);
    json_decref(blocks);
    /* other servers' reasoning text becomes a thinking block without a signature */
    msg = js("{\"content\":\"x\",\"reasoning_content\":\"hmm\"}");
    again = json_array();
    lx_anthropic_thinking_from_openai(msg, again);
    assert_json(again, "[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"\"}]", true);
    json_decref(msg);
    msg = js("{\"content\":\"x\",\"reasoning\":\"\"}");
    again = json_array();
    lx_anthropic_thinking_from_openai(msg, again);
    assert_int_equal(json_array_size(again), 0);
    json_decref(again);
    json_decref(msg);
}

/* The statuses of issue 16's table, and Anthropic types kept from upstream errors. */
static void test_error_types(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *type, *want;
    } cases[] = {
        {400, "invalid_request_error", "invalid_request_error"}, {401, NULL, "authentication_error"},
        {403, "permission_error", "permission_error"},           {404, "invalid_request_error", "not_found_error"},
        {413, NULL, "request_too_large"},                        {429, "tokens", "rate_limit_error"},
        {500, "server_error", "api_error"},                      {529, NULL, "overloaded_error"},
        {502, "upstream_error", "api_error"},                    {503, "service_unavailable", "overloaded_error"},
        {504, "upstream_error", "timeout_error"},                {402, NULL, "billing_error"},
        {422, NULL, "invalid_request_error"},                    {502, "overloaded_error", "overloaded_error"},
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(cases); i++) {
        struct lx_error e = {.status = cases[i].status, .type = (char *)cases[i].type};
        assert_string_equal(lx_anthropic_error_type(&e), cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_usage_both_ways),
        cmocka_unit_test(test_images_both_ways),
        cmocka_unit_test(test_documents_from_file_parts),
        cmocka_unit_test(test_tool_use_both_ways),
        cmocka_unit_test(test_tools_and_tool_choice_both_ways),
        cmocka_unit_test(test_assistant_blocks_both_ways),
        cmocka_unit_test(test_error_types),
    };
    return cmocka_run_group_tests_name("anthropic_map", tests, NULL, NULL);
}
