/* Unit tests for the Responses dialect (dialects/openai_responses.c, openai_responses_items.c): requests
 * to the chat pivot with the errors a client sees, history and truncation, the response object from a
 * completion, and the stream encoder fed with the recorded OpenAI chat streams of ../shared/fixtures:
 * event order, sequence numbers, and the final response the stream stores. */
#include "../unit.h"
#include "../../../dialects/openai_responses.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/common.h"
#include "../../../src/core/ids.h"
#include "../../../src/core/sse.h"

static struct lx_dialect_req rq;
static struct lx_error err;

static int setup(void **state)
{
    (void)state;
    memset(&rq, 0, sizeof rq);
    memset(&err, 0, sizeof err);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lx_dialect_req_clear(&rq);
    lx_error_clear(&err);
    return 0;
}

static json_t *parse(const char *body)
{
    lx_dialect_req_clear(&rq);
    lx_error_clear(&err);
    return lx_dialect_openai_responses.parse(body, strlen(body), &rq, &err);
}

static void expect_json(json_t *got, const char *want_text)
{
    json_error_t je;
    json_t *want = json_loads(want_text, 0, &je);
    if (!want)
        fail_msg("bad expected JSON: %s", je.text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS), *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got  %s\nwant %s", g, w);
    }
    json_decref(want);
}

/* A body that must be refused: 400 with this param and code. */
static void refused(const char *body, const char *param, const char *code)
{
    json_t *pivot = parse(body);
    if (pivot) {
        char *t = json_dumps(pivot, JSON_COMPACT);
        fail_msg("accepted %s as %s", body, t);
    }
    assert_int_equal(err.status, 400);
    if (param)
        assert_string_equal(err.param ? err.param : "(null)", param);
    else
        assert_null(err.param);
    assert_string_equal(err.code ? err.code : "(null)", code);
    assert_non_null(err.message);
    assert_null(rq.priv); /* nothing kept from a refused request */
}

static void test_string_input(void **state)
{
    (void)state;
    json_t *pivot = parse("{\"model\":\"mock/echo\",\"input\":\"Hello\"}");
    assert_non_null(pivot);
    expect_json(pivot, "{\"model\":\"mock/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}");
    assert_string_equal(rq.model, "mock/echo");
    assert_false(rq.stream);
    assert_true(rq.include_usage);
    struct lx_responses_turn t;
    lx_responses_turn(&rq, &t);
    assert_true(lx_id_valid(t.id, "resp"));
    assert_null(t.previous_response_id);
    assert_null(t.conversation_id);
    assert_true(t.store);
    assert_false(t.truncation_auto);
    /* The input is kept as a stored item with an id. */
    json_t *item = json_array_get(t.input, 0);
    assert_true(lx_id_valid(json_string_value(json_object_get(item, "id")), "msg"));
    json_object_del(item, "id");
    expect_json(t.input, "[{\"type\":\"message\",\"role\":\"user\",\"status\":\"completed\","
                         "\"content\":[{\"type\":\"input_text\",\"text\":\"Hello\"}]}]");
    json_decref(pivot);
}

static void test_items_to_messages(void **state)
{
    (void)state;
    json_t *pivot = parse(
        "{\"model\":\"m\",\"instructions\":\"Be terse.\",\"input\":["
        "{\"role\":\"developer\",\"content\":\"Use metric units.\"},"
        "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"Weather?\"},"
        "{\"type\":\"input_image\",\"image_url\":\"https://x/y.png\",\"detail\":\"low\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Checking\"},"
        "{\"type\":\"output_text\",\"text\":\" now.\"}]},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c2\",\"name\":\"time\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"-3 C\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c2\",\"output\":[{\"type\":\"input_text\",\"text\":\"09:00\"}]},"
        "{\"type\":\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},"
        "{\"type\":\"function_call\",\"call_id\":\"c3\",\"name\":\"time\",\"arguments\":\"{}\"}]}");
    assert_non_null(pivot);
    expect_json(json_object_get(pivot, "messages"),
                "[{\"role\":\"system\",\"content\":\"Be terse.\"},"
                "{\"role\":\"system\",\"content\":\"Use metric units.\"},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\",\"detail\":\"low\"}}]},"
                "{\"role\":\"assistant\",\"content\":\"Checking now.\",\"tool_calls\":["
                "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
                "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"time\",\"arguments\":\"{}\"}}]},"
                "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"-3 C\"},"
                "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"09:00\"},"
                "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                "{\"id\":\"c3\",\"type\":\"function\",\"function\":{\"name\":\"time\",\"arguments\":\"{}\"}}]}]");
    /* The reasoning item is dropped from what is stored too; the others get ids by type. */
    struct lx_responses_turn t;
    lx_responses_turn(&rq, &t);
    assert_int_equal(json_array_size(t.input), 8);
    assert_true(lx_id_valid(json_string_value(json_object_get(json_array_get(t.input, 3), "id")), "fc"));
    assert_true(lx_id_valid(json_string_value(json_object_get(json_array_get(t.input, 5), "id")), "fco"));
    json_decref(pivot);
}

static void test_parameters(void **state)
{
    (void)state;
    json_t *pivot = parse(
        "{\"model\":\"m\",\"input\":\"x\",\"stream\":true,\"temperature\":0.2,\"top_p\":0.9,"
        "\"max_output_tokens\":64,\"user\":\"u1\",\"reasoning\":{\"effort\":\"low\"},\"store\":false,"
        "\"truncation\":\"auto\",\"metadata\":{\"a\":\"b\"},\"include\":[\"reasoning.encrypted_content\"],"
        "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"description\":\"does f\",\"parameters\":{\"type\":\"object\"},"
        "\"strict\":true},{\"type\":\"function\",\"name\":\"g\",\"parameters\":null,\"strict\":null}],"
        "\"tool_choice\":{\"type\":\"function\",\"name\":\"g\"},\"parallel_tool_calls\":false,"
        "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"out\",\"schema\":{\"type\":\"object\"},\"strict\":true}}}");
    assert_non_null(pivot);
    expect_json(pivot,
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
                "\"stream_options\":{\"include_usage\":true},\"temperature\":0.2,\"top_p\":0.9,"
                "\"max_completion_tokens\":64,\"user\":\"u1\",\"reasoning_effort\":\"low\","
                "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"does f\","
                "\"parameters\":{\"type\":\"object\"},\"strict\":true}},"
                "{\"type\":\"function\",\"function\":{\"name\":\"g\",\"parameters\":{\"type\":\"object\",\"properties\":{}}}}],"
                "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}},\"parallel_tool_calls\":false,"
                "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"out\","
                "\"schema\":{\"type\":\"object\"},\"strict\":true}}}");
    assert_true(rq.stream);
    struct lx_responses_turn t;
    lx_responses_turn(&rq, &t);
    assert_false(t.store);
    assert_true(t.truncation_auto);
    json_decref(pivot);

    /* Without tools neither tool_choice nor parallel_tool_calls goes upstream (OpenAI refuses them). */
    pivot = parse("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"auto\",\"parallel_tool_calls\":true,"
                  "\"text\":{\"format\":{\"type\":\"json_object\"}}}");
    expect_json(pivot, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"response_format\":{\"type\":\"json_object\"}}");
    json_decref(pivot);
    /* allowed_tools keeps only the tools it names. */
    pivot = parse("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"a\"},"
                  "{\"type\":\"function\",\"name\":\"b\"}],\"tool_choice\":{\"type\":\"allowed_tools\",\"mode\":\"required\","
                  "\"tools\":[{\"type\":\"function\",\"name\":\"b\"}]}}");
    assert_int_equal(json_array_size(json_object_get(pivot, "tools")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(pivot, "tools"), 0), "function"), "name")), "b");
    assert_string_equal(json_string_value(json_object_get(pivot, "tool_choice")), "required");
    json_decref(pivot);
    /* conversation as an object; input may be left out when state continues. */
    pivot = parse("{\"model\":\"m\",\"conversation\":{\"id\":\"conv_1\"}}");
    assert_non_null(pivot);
    lx_responses_turn(&rq, &t);
    assert_string_equal(t.conversation_id, "conv_1");
    assert_int_equal(json_array_size(t.input), 0);
    json_decref(pivot);
    pivot = parse("{\"model\":\"m\",\"previous_response_id\":\"resp_1\",\"input\":[]}");
    assert_non_null(pivot);
    lx_responses_turn(&rq, &t);
    assert_string_equal(t.previous_response_id, "resp_1");
    json_decref(pivot);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("", NULL, "invalid_json");
    refused("[1]", NULL, "invalid_json");
    refused("{\"input\":\"x\"}", "model", "missing_required_parameter");
    refused("{\"model\":\"\",\"input\":\"x\"}", "model", "invalid_type");
    refused("{\"model\":\"m\"}", "input", "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":[]}", "input", "empty_array");
    refused("{\"model\":\"m\",\"input\":5}", "input", "invalid_type");
    refused("{\"model\":\"m\",\"input\":[5]}", "input[0]", "invalid_type");
    refused("{\"model\":\"m\",\"input\":[{\"content\":\"x\"}]}", "input[0].role", "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "input[0].role", "invalid_value");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\"}]}", "input[0].content", "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_file\",\"file_id\":\"f\"}]}]}",
            "input[0].content[0].type", "unsupported_content_type");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\",\"file_id\":\"f\"}]}]}",
            "input[0].content[0].image_url", "unsupported_parameter");
    refused("{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_text\"}]}]}",
            "input[0].content[0].text", "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"}]}", "input[0].type",
            "unsupported_item_type");
    refused("{\"model\":\"m\",\"input\":[{\"type\":\"computer_call_output\",\"call_id\":\"c\"}]}", "input[0].type",
            "unsupported_item_type");
    refused("{\"model\":\"m\",\"input\":[{\"type\":\"function_call\",\"name\":\"f\",\"arguments\":\"{}\"}]}",
            "input[0].call_id", "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c\"}]}", "input[0].output",
            "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", "tools[0].type",
            "unsupported_tool_type");
    /* mcp tools pass to the turn (engine/toolset.c checks them); approvals are not something llmux asks. */
    refused("{\"model\":\"m\",\"input\":[{\"type\":\"mcp_approval_response\",\"approval_request_id\":\"a\","
            "\"approve\":true}]}", "input[0].type", "unsupported_item_type");
    assert_non_null(strstr(err.message, "approval"));
    refused("{\"model\":\"m\",\"input\":[{\"type\":\"mcp_call\",\"server_label\":\"s\",\"name\":\"t\"}]}",
            "input[0].arguments", "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"mcp\",\"server_label\":\"s\"}],"
            "\"tool_choice\":{\"type\":\"mcp\",\"server_label\":\"s\"}}", "tool_choice.type", "unsupported_tool_type");
    refused("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\"}]}", "tools[0].name",
            "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":\"x\",\"tools\":{}}", "tools", "invalid_type");
    refused("{\"model\":\"m\",\"input\":\"x\",\"tools\":[{\"type\":\"function\",\"name\":\"f\"}],"
            "\"tool_choice\":{\"type\":\"function\",\"name\":\"g\"}}",
            "tool_choice.name", "invalid_value");
    refused("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":\"sometimes\"}", "tool_choice", "invalid_value");
    refused("{\"model\":\"m\",\"input\":\"x\",\"tool_choice\":{\"type\":\"file_search\"}}", "tool_choice.type",
            "unsupported_tool_type");
    refused("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"yaml\"}}}", "text.format.type",
            "invalid_value");
    refused("{\"model\":\"m\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"n\"}}}",
            "text.format.schema", "missing_required_parameter");
    refused("{\"model\":\"m\",\"input\":\"x\",\"temperature\":3}", "temperature", "invalid_value");
    refused("{\"model\":\"m\",\"input\":\"x\",\"top_p\":\"1\"}", "top_p", "invalid_type");
    refused("{\"model\":\"m\",\"input\":\"x\",\"max_output_tokens\":0}", "max_output_tokens", "invalid_value");
    refused("{\"model\":\"m\",\"input\":\"x\",\"stream\":\"yes\"}", "stream", "invalid_type");
    refused("{\"model\":\"m\",\"input\":\"x\",\"store\":1}", "store", "invalid_type");
    refused("{\"model\":\"m\",\"input\":\"x\",\"truncation\":\"sometimes\"}", "truncation", "invalid_value");
    refused("{\"model\":\"m\",\"input\":\"x\",\"background\":true}", "background", "unsupported_parameter");
    refused("{\"model\":\"m\",\"input\":\"x\",\"prompt\":{\"id\":\"p\"}}", "prompt", "unsupported_parameter");
    refused("{\"model\":\"m\",\"input\":\"x\",\"previous_response_id\":\"resp_1\",\"conversation\":\"conv_1\"}",
            "conversation", "invalid_request");
    refused("{\"model\":\"m\",\"input\":\"x\",\"conversation\":5}", "conversation", "invalid_type");
    refused("{\"model\":\"m\",\"input\":\"x\",\"metadata\":{\"k\":1}}", "metadata", "invalid_value");
    char big[2048] = "{\"model\":\"m\",\"input\":\"x\",\"metadata\":{";
    for (int i = 0; i < 17; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"k%d\":\"v\"", i ? "," : "", i);
    strcat(big, "}}");
    refused(big, "metadata", "invalid_value");
}

static json_t *items(const char *text)
{
    json_t *raw = json_loads(text, JSON_DECODE_ANY, NULL);
    struct lx_error e = {0};
    json_t *n = lx_responses_items_normalize(raw, "items", &e);
    assert_non_null(n);
    json_decref(raw);
    return n;
}

static void test_history(void **state)
{
    (void)state;
    json_t *pivot = parse("{\"model\":\"m\",\"instructions\":\"New rules.\",\"input\":\"and now?\","
                          "\"previous_response_id\":\"resp_1\"}");
    json_t *history = items("[{\"role\":\"user\",\"content\":\"first\"},{\"role\":\"assistant\",\"content\":\"one\"}]");
    assert_int_equal(lx_responses_set_history(&rq, pivot, history, &err), LX_OK);
    expect_json(json_object_get(pivot, "messages"),
                "[{\"role\":\"system\",\"content\":\"New rules.\"},{\"role\":\"user\",\"content\":\"first\"},"
                "{\"role\":\"assistant\",\"content\":\"one\"},{\"role\":\"user\",\"content\":\"and now?\"}]");
    json_decref(history);
    json_decref(pivot);
    /* Nothing at all to answer. */
    pivot = parse("{\"model\":\"m\",\"instructions\":\"x\",\"conversation\":\"conv_1\"}");
    history = json_array();
    assert_int_equal(lx_responses_set_history(&rq, pivot, history, &err), LX_ERR);
    assert_int_equal(err.status, 400);
    json_decref(history);
    json_decref(pivot);
}

static void test_fit(void **state)
{
    (void)state;
    json_t *history = items("[{\"role\":\"system\",\"content\":\"rules\"},"
                            "{\"role\":\"user\",\"content\":\"q1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
                            "{\"role\":\"assistant\",\"content\":\"a1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"},"
                            "{\"role\":\"user\",\"content\":\"q2\"},"
                            "{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"{}\"},"
                            "{\"type\":\"function_call_output\",\"call_id\":\"c\",\"output\":\"r\"},"
                            "{\"role\":\"assistant\",\"content\":\"a2\"}]");
    json_t *input = items("\"q3\"");
    long all = lx_responses_items_tokens(history) + lx_responses_items_tokens(input), dropped;
    /* Enough room, or no budget: everything stays. */
    json_t *kept = lx_responses_fit(history, input, all, false, &dropped, &err);
    assert_int_equal(json_array_size(kept), 7);
    assert_int_equal(dropped, 0);
    json_decref(kept);
    kept = lx_responses_fit(history, input, 0, false, &dropped, &err);
    assert_int_equal(json_array_size(kept), 7);
    json_decref(kept);
    /* Too long with truncation disabled: a 400 that says what to do. */
    assert_null(lx_responses_fit(history, input, all - 1, false, &dropped, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "context_length_exceeded");
    assert_non_null(strstr(err.message, "'auto'"));
    lx_error_clear(&err);
    /* auto: the oldest whole turn goes (the function call and its output stay together); the rules stay. */
    kept = lx_responses_fit(history, input, all - 1, true, &dropped, &err);
    assert_int_equal(dropped, 2);
    assert_int_equal(json_array_size(kept), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(kept, 0), "role")), "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(json_array_get(kept, 1), "content"), 0), "text")), "q2");
    json_decref(kept);
    /* A budget below the input alone: only the instructions remain of the history. */
    kept = lx_responses_fit(history, input, 1, true, &dropped, &err);
    assert_int_equal(json_array_size(kept), 1);
    assert_int_equal(dropped, 6);
    json_decref(kept);
    json_decref(history);
    json_decref(input);
}

static void test_completion(void **state)
{
    (void)state;
    json_t *pivot = parse("{\"model\":\"gw/model\",\"input\":\"Weather in Edinburgh?\",\"tools\":[{\"type\":\"function\","
                          "\"name\":\"GetWeatherArgs\"}],\"metadata\":{\"t\":\"1\"}}");
    size_t len;
    char *body = read_fixture("openai_chat_nonstream_tool_call.json", &len);
    json_t *completion = json_loadb(body, len, 0, NULL);
    json_t *resp = lx_dialect_openai_responses.completion(&rq, completion);
    struct lx_responses_turn t;
    lx_responses_turn(&rq, &t);
    assert_string_equal(json_string_value(json_object_get(resp, "id")), t.id);
    assert_string_equal(json_string_value(json_object_get(resp, "object")), "response");
    assert_string_equal(json_string_value(json_object_get(resp, "model")), "gw/model");
    assert_string_equal(json_string_value(json_object_get(resp, "status")), "completed");
    assert_true(json_is_integer(json_object_get(resp, "completed_at")));
    json_t *out = json_object_get(resp, "output");
    assert_int_equal(json_array_size(out), 1);
    json_t *call = json_array_get(out, 0);
    assert_true(lx_id_valid(json_string_value(json_object_get(call, "id")), "fc"));
    json_object_del(call, "id");
    expect_json(call, "{\"type\":\"function_call\",\"status\":\"completed\",\"call_id\":\"call_Y6qJ7ofLgOrBnMD5WbVAeiRV\","
                      "\"name\":\"GetWeatherArgs\",\"arguments\":\"{\\\"city\\\":\\\"Edinburgh\\\",\\\"country\\\":\\\"UK\\\",\\\"units\\\":\\\"c\\\"}\"}");
    expect_json(json_object_get(resp, "usage"),
                "{\"input_tokens\":76,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":24,"
                "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":100}");
    expect_json(json_object_get(resp, "metadata"), "{\"t\":\"1\"}");
    assert_true(json_is_null(json_object_get(resp, "previous_response_id")));
    json_decref(resp);
    json_decref(completion);
    free(body);
    /* A cut answer is incomplete, with the reason. */
    completion = json_loads("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Once upon\"},"
                            "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}",
                            0, NULL);
    resp = lx_dialect_openai_responses.completion(&rq, completion);
    assert_string_equal(json_string_value(json_object_get(resp, "status")), "incomplete");
    expect_json(json_object_get(resp, "incomplete_details"), "{\"reason\":\"max_output_tokens\"}");
    json_t *m = json_array_get(json_object_get(resp, "output"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "incomplete");
    expect_json(json_object_get(m, "content"),
                "[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"Once upon\"}]");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(resp, "usage"), "total_tokens")), 7);
    json_decref(resp);
    json_decref(completion);
    json_decref(pivot);
    /* Errors come in OpenAI's shape with their status. */
    struct lx_error e = {0};
    lx_error_set(&e, 404, NULL, "previous_response_id", "not_found", "Previous response 'x' not found.");
    int status = 0;
    json_t *eb = lx_dialect_openai_responses.error_body(&e, &status);
    assert_int_equal(status, 404);
    assert_string_equal(json_string_value(json_object_get(json_object_get(eb, "error"), "code")), "not_found");
    json_decref(eb);
    lx_error_clear(&e);
}

/* ---- streams ---- */

struct feed {
    void *st;
    struct lx_buf *out;
};

static int chunk_cb(void *ctx, const char *event, const char *data, size_t len)
{
    (void)event;
    struct feed *f = ctx;
    if (strncmp(data, "[DONE]", 6) == 0)
        return LX_OK;
    json_t *chunk = json_loadb(data, len, 0, NULL);
    assert_non_null(chunk);
    lx_dialect_openai_responses.stream_chunk(f->st, chunk, f->out);
    json_decref(chunk);
    return LX_OK;
}

/* Feed a recorded chat stream to the encoder. */
static void feed_fixture(void *st, const char *name, struct lx_buf *out)
{
    size_t len;
    char *body = read_fixture(name, &len);
    struct lx_sse_decoder d = {0};
    struct feed f = {st, out};
    assert_int_equal(lx_sse_feed(&d, body, len, chunk_cb, &f, NULL), LX_OK);
    assert_int_equal(lx_sse_flush(&d, chunk_cb, &f, NULL), LX_OK);
    lx_sse_decoder_free(&d);
    free(body);
}

static int event_cb(void *ctx, const char *event, const char *data, size_t len)
{
    json_t *events = ctx;
    json_t *obj = json_loadb(data, len, 0, NULL);
    if (!obj)
        fail_msg("an event that is not JSON: %s", data);
    /* The SSE event name is the data's type. */
    assert_string_equal(event, json_string_value(json_object_get(obj, "type")));
    json_array_append_new(events, obj);
    return LX_OK;
}

/* The wire events as JSON objects; checks sequence numbers count from 0 and no [DONE]. */
static json_t *events_of(struct lx_buf *out)
{
    assert_null(strstr(out->data ? out->data : "", "[DONE]"));
    json_t *events = json_array();
    struct lx_sse_decoder d = {0};
    assert_int_equal(lx_sse_feed(&d, out->data, out->len, event_cb, events, NULL), LX_OK);
    assert_false(lx_sse_pending(&d));
    lx_sse_decoder_free(&d);
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
        assert_int_equal(json_integer_value(json_object_get(ev, "sequence_number")), (json_int_t)i);
    return events;
}

static const char *type_at(json_t *events, size_t i)
{
    return json_string_value(json_object_get(json_array_get(events, i), "type"));
}

/* The types in order, deltas of one kind collapsed to one "…*" entry. */
static char *shape(json_t *events)
{
    struct lx_buf b = {0};
    const char *prev = "";
    for (size_t i = 0; i < json_array_size(events); i++) {
        const char *t = type_at(events, i);
        bool delta = strstr(t, ".delta") != NULL;
        if (delta && strcmp(t, prev) == 0)
            continue;
        lx_buf_printf(&b, "%s%s%s", b.len ? " " : "", t, delta ? "*" : "");
        prev = t;
    }
    return lx_buf_steal(&b, NULL);
}

static void expect_shape(json_t *events, const char *want)
{
    char *got = shape(events);
    assert_string_equal(got, want);
    free(got);
}

/* The stream as the store sees it (stream_response before the end) is the final event's response. */
static json_t *run_stream(const char *fixture, const char *body, json_t **stored)
{
    json_decref(parse(body));
    void *st = lx_dialect_openai_responses.stream_open(&rq);
    struct lx_buf out = {0};
    feed_fixture(st, fixture, &out);
    *stored = lx_responses_stream_response(st);
    lx_dialect_openai_responses.stream_end(st, &out);
    lx_dialect_openai_responses.stream_end(st, &out); /* once only */
    lx_dialect_openai_responses.stream_close(st);
    json_t *events = events_of(&out);
    lx_buf_free(&out);
    return events;
}

static void expect_same_response(json_t *stored, json_t *final)
{
    /* completed_at is stamped when each is built. */
    json_object_del(stored, "completed_at");
    json_t *f = json_copy(final);
    json_object_del(f, "completed_at");
    assert_true(json_equal(stored, f));
    json_decref(f);
}

/* Remote-MCP items sent back as input: a tool list goes nowhere; a run of calls is one assistant message
 * calling SERVER__TOOL for each, then their results (an error's text for a failed one). */
static void test_mcp_items_to_messages(void **state)
{
    (void)state;
    json_t *pivot = parse(
        "{\"model\":\"m\",\"input\":[{\"role\":\"user\",\"content\":\"sum\"},"
        "{\"type\":\"mcp_list_tools\",\"id\":\"mcpl_1\",\"server_label\":\"ev\",\"tools\":[{\"name\":\"get-sum\"}]},"
        "{\"type\":\"mcp_call\",\"id\":\"mcp_1\",\"server_label\":\"ev\",\"name\":\"get-sum\",\"arguments\":\"{\\\"a\\\":2}\","
        "\"output\":\"2\",\"error\":null,\"status\":\"completed\"},"
        "{\"type\":\"mcp_call\",\"id\":\"mcp_2\",\"server_label\":\"ev\",\"name\":\"a.b\",\"arguments\":\"\","
        "\"error\":{\"type\":\"mcp_protocol_error\",\"code\":-32001,\"message\":\"timed out\"}},"
        "{\"role\":\"assistant\",\"content\":\"done\"}]}");
    assert_non_null(pivot);
    expect_json(json_object_get(pivot, "messages"),
                "[{\"role\":\"user\",\"content\":\"sum\"},"
                "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                "{\"id\":\"mcp_1\",\"type\":\"function\",\"function\":{\"name\":\"ev__get-sum\",\"arguments\":\"{\\\"a\\\":2}\"}},"
                "{\"id\":\"mcp_2\",\"type\":\"function\",\"function\":{\"name\":\"ev__a_b\",\"arguments\":\"{}\"}}]},"
                "{\"role\":\"tool\",\"tool_call_id\":\"mcp_1\",\"content\":\"2\"},"
                "{\"role\":\"tool\",\"tool_call_id\":\"mcp_2\",\"content\":\"timed out\"},"
                "{\"role\":\"assistant\",\"content\":\"done\"}]");
    /* Kept as sent, for the store: a failed call without a status is "failed". */
    struct lx_responses_turn t;
    lx_responses_turn(&rq, &t);
    assert_int_equal(json_array_size(t.input), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(t.input, 3), "status")), "failed");
    json_decref(pivot);
}

static void feed_json(void *st, const char *chunk, struct lx_buf *out)
{
    json_t *c = json_loads(chunk, 0, NULL);
    assert_non_null(c);
    lx_dialect_openai_responses.stream_chunk(st, c, out);
    json_decref(c);
}

/* The tool loop's activity as remote-MCP items: a round's text, its tool list, two calls open at once that
 * finish in the other order, then the last round's text. */
static void test_stream_mcp(void **state)
{
    (void)state;
    json_decref(parse("{\"model\":\"m\",\"input\":\"x\",\"stream\":true,\"tools\":[{\"type\":\"mcp\",\"server_label\":\"t\"}]}"));
    void *st = lx_dialect_openai_responses.stream_open(&rq);
    struct lx_buf out = {0};
    feed_json(st, "{\"choices\":[],\"llmux\":{\"type\":\"mcp_list_tools\",\"server_label\":\"t\",\"tools\":["
                  "{\"name\":\"add\",\"description\":\"Add\",\"inputSchema\":{\"type\":\"object\"}}]}}", &out);
    feed_json(st, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me see.\"}}]}", &out);
    feed_json(st, "{\"choices\":[],\"llmux\":{\"type\":\"tool_call.started\",\"id\":\"c1\",\"server\":\"t\","
                  "\"tool\":\"add\",\"arguments\":\"{\\\"a\\\":2}\"}}", &out);
    feed_json(st, "{\"choices\":[],\"llmux\":{\"type\":\"tool_call.started\",\"id\":\"c2\",\"server\":\"t\","
                  "\"tool\":\"hang\",\"arguments\":\"{}\"}}", &out);
    feed_json(st, "{\"choices\":[],\"llmux\":{\"type\":\"tool_call.finished\",\"id\":\"c2\",\"server\":\"t\","
                  "\"tool\":\"hang\",\"outcome\":\"timeout\",\"output\":\"Error: too slow\"}}", &out);
    feed_json(st, "{\"choices\":[],\"llmux\":{\"type\":\"tool_call.finished\",\"id\":\"c1\",\"server\":\"t\","
                  "\"tool\":\"add\",\"outcome\":\"ok\",\"output\":\"5\"}}", &out);
    feed_json(st, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"5\"},\"finish_reason\":\"stop\"}]}", &out);
    json_t *stored = lx_responses_stream_response(st);
    lx_dialect_openai_responses.stream_end(st, &out);
    lx_dialect_openai_responses.stream_close(st);
    json_t *events = events_of(&out);
    lx_buf_free(&out);
    expect_shape(events, "response.created response.in_progress "
                         "response.output_item.added response.mcp_list_tools.in_progress response.mcp_list_tools.completed "
                         "response.output_item.done "
                         "response.output_item.added response.content_part.added response.output_text.delta* "
                         "response.output_text.done response.content_part.done response.output_item.done "
                         "response.output_item.added response.mcp_call.in_progress response.mcp_call_arguments.delta* "
                         "response.mcp_call_arguments.done "
                         "response.output_item.added response.mcp_call.in_progress response.mcp_call_arguments.delta* "
                         "response.mcp_call_arguments.done "
                         "response.mcp_call.failed response.output_item.done response.mcp_call.completed "
                         "response.output_item.done "
                         "response.output_item.added response.content_part.added response.output_text.delta* "
                         "response.output_text.done response.content_part.done response.output_item.done response.completed");
    for (size_t i = 0; i < json_array_size(events); i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(events, i), "sequence_number")), (json_int_t)i);
    json_t *final = json_object_get(json_array_get(events, json_array_size(events) - 1), "response");
    json_t *o = json_object_get(final, "output");
    assert_int_equal(json_array_size(o), 5);
    expect_json(json_object_get(json_array_get(o, 0), "tools"),
                "[{\"name\":\"add\",\"input_schema\":{\"type\":\"object\"},\"description\":\"Add\",\"annotations\":null}]");
    json_t *add = json_array_get(o, 2), *hang = json_array_get(o, 3);
    assert_string_equal(json_string_value(json_object_get(add, "type")), "mcp_call");
    assert_string_equal(json_string_value(json_object_get(add, "arguments")), "{\"a\":2}");
    assert_string_equal(json_string_value(json_object_get(add, "output")), "5");
    assert_string_equal(json_string_value(json_object_get(add, "status")), "completed");
    assert_true(json_is_null(json_object_get(add, "error")));
    assert_string_equal(json_string_value(json_object_get(hang, "status")), "failed");
    assert_true(json_is_null(json_object_get(hang, "output")));
    expect_json(json_object_get(hang, "error"), "{\"type\":\"mcp_protocol_error\",\"code\":-32001,\"message\":\"Error: too slow\"}");
    expect_same_response(stored, final);
    json_decref(stored);
    json_decref(events);
}

static void test_stream_text(void **state)
{
    (void)state;
    json_t *stored;
    json_t *events = run_stream("openai_chat_stream_text_with_usage.sse",
                                "{\"model\":\"gw/m\",\"input\":\"hi\",\"stream\":true}", &stored);
    expect_shape(events, "response.created response.in_progress response.output_item.added "
                         "response.content_part.added response.output_text.delta* response.output_text.done "
                         "response.content_part.done response.output_item.done response.completed");
    json_t *created = json_object_get(json_array_get(events, 0), "response");
    struct lx_responses_turn t;
    lx_responses_turn(&rq, &t);
    assert_string_equal(json_string_value(json_object_get(created, "id")), t.id);
    assert_string_equal(json_string_value(json_object_get(created, "status")), "in_progress");
    assert_int_equal(json_array_size(json_object_get(created, "output")), 0);
    /* The deltas add up to the done text and the final output; indexes and item ids agree. */
    struct lx_buf text = {0};
    const char *msg_id = json_string_value(json_object_get(json_object_get(json_array_get(events, 2), "item"), "id"));
    assert_true(lx_id_valid(msg_id, "msg"));
    for (size_t i = 0; i < json_array_size(events); i++) {
        json_t *ev = json_array_get(events, i);
        if (strcmp(type_at(events, i), "response.output_text.delta") == 0) {
            lx_buf_puts(&text, json_string_value(json_object_get(ev, "delta")));
            assert_string_equal(json_string_value(json_object_get(ev, "item_id")), msg_id);
            assert_int_equal(json_integer_value(json_object_get(ev, "output_index")), 0);
            assert_int_equal(json_integer_value(json_object_get(ev, "content_index")), 0);
        }
    }
    assert_true(text.len > 0);
    size_t n = json_array_size(events);
    json_t *done = json_array_get(events, n - 4);
    assert_string_equal(json_string_value(json_object_get(done, "text")), text.data);
    json_t *final = json_object_get(json_array_get(events, n - 1), "response");
    assert_string_equal(json_string_value(json_object_get(final, "status")), "completed");
    assert_string_equal(json_string_value(json_object_get(final, "model")), "gw/m");
    json_t *part = json_array_get(json_object_get(json_array_get(json_object_get(final, "output"), 0), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(part, "text")), text.data);
    assert_true(json_integer_value(json_object_get(json_object_get(final, "usage"), "total_tokens")) > 0);
    expect_same_response(stored, final);
    lx_buf_free(&text);
    json_decref(stored);
    json_decref(events);
}

static void test_stream_tool_call(void **state)
{
    (void)state;
    json_t *stored;
    json_t *events = run_stream("openai_chat_stream_tool_call.sse",
                                "{\"model\":\"m\",\"input\":\"weather?\",\"stream\":true,\"tools\":[{\"type\":\"function\","
                                "\"name\":\"get_weather\"}]}",
                                &stored);
    expect_shape(events, "response.created response.in_progress response.output_item.added "
                         "response.function_call_arguments.delta* response.function_call_arguments.done "
                         "response.output_item.done response.completed");
    json_t *added = json_object_get(json_array_get(events, 2), "item");
    assert_string_equal(json_string_value(json_object_get(added, "call_id")), "call_4XzlGBLtUe9dy3GVNV4jhq7h");
    assert_string_equal(json_string_value(json_object_get(added, "name")), "get_weather");
    assert_string_equal(json_string_value(json_object_get(added, "arguments")), "");
    assert_string_equal(json_string_value(json_object_get(added, "status")), "in_progress");
    size_t n = json_array_size(events);
    const char *args = json_string_value(json_object_get(json_array_get(events, n - 3), "arguments"));
    json_t *parsed = json_loads(args, 0, NULL);
    assert_true(json_is_object(parsed)); /* the fragments joined into the whole arguments */
    json_decref(parsed);
    json_t *final = json_object_get(json_array_get(events, n - 1), "response");
    json_t *call = json_array_get(json_object_get(final, "output"), 0);
    assert_string_equal(json_string_value(json_object_get(call, "arguments")), args);
    assert_string_equal(json_string_value(json_object_get(call, "status")), "completed");
    expect_same_response(stored, final);
    json_decref(stored);
    json_decref(events);
}

static void test_stream_refusal_and_length(void **state)
{
    (void)state;
    json_t *stored;
    json_t *events = run_stream("openai_chat_stream_refusal.sse", "{\"model\":\"m\",\"input\":\"x\",\"stream\":true}", &stored);
    expect_shape(events, "response.created response.in_progress response.output_item.added "
                         "response.content_part.added response.refusal.delta* response.refusal.done "
                         "response.content_part.done response.output_item.done response.completed");
    json_t *part = json_object_get(json_array_get(events, 3), "part");
    expect_json(part, "{\"type\":\"refusal\",\"refusal\":\"\"}");
    json_decref(stored);
    json_decref(events);

    events = run_stream("openai_chat_stream_finish_length.sse", "{\"model\":\"m\",\"input\":\"x\",\"stream\":true}", &stored);
    size_t n = json_array_size(events);
    assert_string_equal(type_at(events, n - 1), "response.incomplete");
    json_t *final = json_object_get(json_array_get(events, n - 1), "response");
    expect_json(json_object_get(final, "incomplete_details"), "{\"reason\":\"max_output_tokens\"}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(final, "output"), 0), "status")),
                        "incomplete");
    expect_same_response(stored, final);
    json_decref(stored);
    json_decref(events);
}

static json_t *chunk(const char *delta, const char *finish)
{
    char text[512];
    snprintf(text, sizeof text, "{\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}",
             delta, finish ? finish : "null");
    json_t *c = json_loads(text, 0, NULL);
    assert_non_null(c);
    return c;
}

static void push(void *st, struct lx_buf *out, const char *delta, const char *finish)
{
    json_t *c = chunk(delta, finish);
    lx_dialect_openai_responses.stream_chunk(st, c, out);
    json_decref(c);
}

/* Text then two tool calls: each item closes before the next opens, with its own output_index. */
static void test_stream_mixed(void **state)
{
    (void)state;
    json_decref(parse("{\"model\":\"m\",\"input\":\"x\",\"stream\":true}"));
    void *st = lx_dialect_openai_responses.stream_open(&rq);
    struct lx_buf out = {0};
    push(st, &out, "{\"role\":\"assistant\",\"content\":\"Let me check.\"}", NULL);
    push(st, &out, "{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"a\",\"arguments\":\"{\\\"x\\\"\"}}]}", NULL);
    push(st, &out, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]}", NULL);
    push(st, &out, "{\"tool_calls\":[{\"index\":1,\"id\":\"c2\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}", NULL);
    push(st, &out, "{}", "\"tool_calls\"");
    lx_dialect_openai_responses.stream_end(st, &out);
    lx_dialect_openai_responses.stream_close(st);
    json_t *events = events_of(&out);
    expect_shape(events, "response.created response.in_progress response.output_item.added "
                         "response.content_part.added response.output_text.delta* response.output_text.done "
                         "response.content_part.done response.output_item.done response.output_item.added "
                         "response.function_call_arguments.delta* response.function_call_arguments.done "
                         "response.output_item.done response.output_item.added response.function_call_arguments.delta* "
                         "response.function_call_arguments.done response.output_item.done response.completed");
    json_t *final = json_object_get(json_array_get(events, json_array_size(events) - 1), "response");
    json_t *output = json_object_get(final, "output");
    assert_int_equal(json_array_size(output), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(output, 1), "arguments")), "{\"x\":1}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(output, 2), "call_id")), "c2");
    /* Every event about an item names its output_index, in range. */
    for (size_t i = 2; i < json_array_size(events) - 1; i++) {
        json_t *oi = json_object_get(json_array_get(events, i), "output_index");
        assert_true(json_is_integer(oi) && json_integer_value(oi) < 3);
    }
    json_decref(events);
    lx_buf_free(&out);
}

/* A failure after the first event: an error event, then response.failed, then nothing. */
static void test_stream_error(void **state)
{
    (void)state;
    json_decref(parse("{\"model\":\"m\",\"input\":\"x\",\"stream\":true}"));
    void *st = lx_dialect_openai_responses.stream_open(&rq);
    struct lx_buf out = {0};
    push(st, &out, "{\"content\":\"partial\"}", NULL);
    struct lx_error e = {0};
    lx_error_set(&e, 502, NULL, NULL, "upstream_error", "The upstream stream broke.");
    lx_dialect_openai_responses.stream_error(st, &e, &out);
    lx_dialect_openai_responses.stream_end(st, &out); /* nothing after the failure */
    push(st, &out, "{\"content\":\"late\"}", NULL);
    json_t *failed = lx_responses_stream_failed(st, &e);
    lx_dialect_openai_responses.stream_close(st);
    json_t *events = events_of(&out);
    expect_shape(events, "response.created response.in_progress response.output_item.added "
                         "response.content_part.added response.output_text.delta* error response.failed");
    json_t *ev = json_array_get(events, json_array_size(events) - 2);
    assert_string_equal(json_string_value(json_object_get(ev, "code")), "upstream_error");
    assert_string_equal(json_string_value(json_object_get(ev, "message")), "The upstream stream broke.");
    json_t *resp = json_object_get(json_array_get(events, json_array_size(events) - 1), "response");
    assert_string_equal(json_string_value(json_object_get(resp, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(resp, "error"), "code")), "server_error");
    assert_string_equal(json_string_value(json_object_get(failed, "status")), "failed");
    json_decref(failed);
    json_decref(events);
    lx_buf_free(&out);
    lx_error_clear(&e);

    /* An answer with no chunk at all still opens and closes properly. */
    st = lx_dialect_openai_responses.stream_open(&rq);
    lx_dialect_openai_responses.stream_end(st, &out);
    lx_dialect_openai_responses.stream_keepalive(st, &out);
    lx_dialect_openai_responses.stream_close(st);
    events = events_of(&out);
    expect_shape(events, "response.created response.in_progress response.completed");
    json_decref(events);
    lx_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_string_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_items_to_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_completion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_tool_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_refusal_and_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_mixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error, setup, teardown),
    };
    return cmocka_run_group_tests_name("openai_responses", tests, NULL, NULL);
}
