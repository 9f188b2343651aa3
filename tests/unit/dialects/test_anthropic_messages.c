/* Unit tests for dialects/anthropic_messages.c: Anthropic requests into the pivot (what is carried, what
 * is recorded as lost, what needs which target, the 400s), pivot completions out as Anthropic messages
 * (recorded Anthropic, OpenAI and Ollama answers through their providers), error bodies, the dropped
 * parameters' names and count_tokens. */
#include "../unit.h"
#include "../../../dialects/anthropic_messages.h"
#include "../../../providers/provider.h"
#include "../../../src/core/common.h"

static const struct lx_dialect *D = &lx_dialect_anthropic_messages;

static json_t *parse(const char *body, struct lx_dialect_req *rq, struct lx_error *e)
{
    return D->parse(body, strlen(body), rq, e);
}

static json_t *msg_at(json_t *pivot, size_t i)
{
    return json_array_get(json_object_get(pivot, "messages"), i);
}

static const char *str_at(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static bool lost(const struct lx_dialect_req *rq, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(rq->priv, "lost"), i, v)
        if (strcmp(json_string_value(v), name) == 0)
            return true;
    return false;
}

/* What Claude Code sends, field by field. */
static const char claude_code_request[] =
    "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":32000,\"stream\":true,\"temperature\":1,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code.\",\"cache_control\":{\"type\":\"ephemeral\"}},"
    "{\"type\":\"text\",\"text\":\"Be concise.\"}],"
    "\"metadata\":{\"user_id\":\"user_abc_session_1\"},\"provider_specific_fields\":null,\"context_management\":null,"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4000},\"top_k\":40,\"top_p\":0.9,\"stop_sequences\":[\"END\"],"
    "\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true},"
    "\"tools\":[{\"name\":\"Read\",\"description\":\"Read a file\",\"input_schema\":{\"type\":\"object\","
    "\"properties\":{\"file_path\":{\"type\":\"string\"}},\"required\":[\"file_path\"]}}],"
    "\"service_tier\":\"auto\","
    "\"messages\":["
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"<system-reminder>x</system-reminder>\"},"
    "{\"type\":\"text\",\"text\":\"Read a.txt and look at these\"},"
    "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBO\"}},"
    "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.jpg\"}}]},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"I should read it.\",\"signature\":\"sig\"},"
    "{\"type\":\"text\",\"text\":\"Reading.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Read\",\"input\":{\"file_path\":\"a.txt\"}},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"Read\",\"input\":{\"file_path\":\"b.txt\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"hello\"},"
    "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"is_error\":true,\"content\":[{\"type\":\"text\","
    "\"text\":\"No such file\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/gif\","
    "\"data\":\"R0lG\"}}]},{\"type\":\"text\",\"text\":\"Go on\",\"provider_specific_fields\":null}]}]}";

static void test_parse_claude_code_request(void **state)
{
    (void)state;
    struct lx_dialect_req rq;
    struct lx_error e = {0};
    json_t *p = parse(claude_code_request, &rq, &e);
    assert_non_null(p);
    assert_string_equal(rq.model, "claude-sonnet-4-5");
    assert_true(rq.stream && rq.include_usage);
    assert_true(rq.prompt_tokens_estimate > 2 * 1600); /* two images at least */
    assert_string_equal(str_at(p, "model"), "claude-sonnet-4-5");
    assert_int_equal(json_integer_value(json_object_get(p, "max_tokens")), 32000);
    assert_true(json_is_true(json_object_get(p, "stream")));
    assert_true(json_is_true(json_object_get(json_object_get(p, "stream_options"), "include_usage")));
    assert_true(json_real_value(json_object_get(p, "top_p")) > 0.89);
    assert_int_equal(json_integer_value(json_object_get(p, "temperature")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "stop"), 0)), "END");
    assert_string_equal(str_at(p, "user"), "user_abc_session_1");
    assert_string_equal(str_at(p, "tool_choice"), "auto");
    assert_true(json_is_false(json_object_get(p, "parallel_tool_calls")));
    json_t *fn = json_object_get(json_array_get(json_object_get(p, "tools"), 0), "function");
    assert_string_equal(str_at(fn, "name"), "Read");
    assert_string_equal(str_at(json_object_get(fn, "parameters"), "type"), "object");
    assert_null(json_object_get(p, "top_k"));
    assert_null(json_object_get(p, "thinking"));

    /* system blocks → one system message; the user turn keeps its parts */
    assert_int_equal(json_array_size(json_object_get(p, "messages")), 6);
    assert_string_equal(str_at(msg_at(p, 0), "role"), "system");
    assert_string_equal(str_at(msg_at(p, 0), "content"), "You are Claude Code.\n\nBe concise.");
    json_t *parts = json_object_get(msg_at(p, 1), "content");
    assert_int_equal(json_array_size(parts), 4);
    assert_string_equal(str_at(json_object_get(json_array_get(parts, 2), "image_url"), "url"), "data:image/png;base64,iVBO");
    assert_string_equal(str_at(json_object_get(json_array_get(parts, 3), "image_url"), "url"), "https://x.test/a.jpg");
    /* the assistant turn: text and two calls, thinking left to the native body */
    json_t *a = msg_at(p, 2);
    assert_string_equal(str_at(a, "content"), "Reading.");
    assert_null(json_object_get(a, "reasoning_details"));
    json_t *calls = json_object_get(a, "tool_calls");
    assert_int_equal(json_array_size(calls), 2);
    assert_string_equal(str_at(json_array_get(calls, 1), "id"), "toolu_2");
    assert_string_equal(str_at(json_object_get(json_array_get(calls, 1), "function"), "arguments"), "{\"file_path\":\"b.txt\"}");
    /* tool results first, the error said in the text, its image in the user turn after them */
    assert_string_equal(str_at(msg_at(p, 3), "role"), "tool");
    assert_string_equal(str_at(msg_at(p, 3), "tool_call_id"), "toolu_1");
    assert_string_equal(str_at(msg_at(p, 3), "content"), "hello");
    assert_string_equal(str_at(msg_at(p, 4), "content"), "Error: No such file");
    json_t *after = json_object_get(msg_at(p, 5), "content");
    assert_string_equal(str_at(msg_at(p, 5), "role"), "user");
    assert_string_equal(str_at(json_array_get(after, 0), "text"), "Go on");
    assert_string_equal(str_at(json_object_get(json_array_get(after, 1), "image_url"), "url"), "data:image/gif;base64,R0lG");

    /* what only an Anthropic target can honour; nulls are not lost */
    assert_true(lost(&rq, "top_k") && lost(&rq, "thinking") && lost(&rq, "cache_control") && lost(&rq, "service_tier"));
    assert_false(lost(&rq, "provider_specific_fields") || lost(&rq, "context_management"));
    assert_true(json_is_true(json_object_get(rq.priv, "thinking")));
    json_t *native = lx_anthropic_messages_native(&rq);
    assert_int_equal(json_integer_value(json_object_get(native, "top_k")), 40);
    assert_null(json_object_get(rq.priv, "needs"));
    json_decref(p);
    lx_dialect_req_clear(&rq);
}

/* The pivot back out through the anthropic provider gives the client's request again, but for what the
 * pivot cannot carry (the native body carries it to Anthropic-type targets): top_k, thinking and its
 * blocks, cache_control, is_error (said in the text instead), images of tool results (in the user turn). */
static void test_request_round_trip_through_provider(void **state)
{
    (void)state;
    struct lx_dialect_req rq;
    struct lx_error e = {0};
    json_t *p = parse(claude_code_request, &rq, &e);
    struct lx_provider_conf conf = {.name = "claude", .type = &lx_provider_anthropic, .base_url = "https://a.test"};
    struct lx_chat chat = {.body = p, .model = "claude-sonnet-4-5-20250929", .stream = true, .include_usage = true};
    struct lx_http_request r = {0};
    assert_int_equal(lx_provider_anthropic.chat_request(&conf, &chat, &r, &e), LX_OK);
    assert_null(r.dropped);
    json_t *up = json_loadb(r.body, r.body_len, 0, NULL);
    json_t *in = lx_anthropic_messages_native(&rq);
    static const char *const same[] = {"max_tokens", "stream", "temperature", "top_p", "stop_sequences", "metadata"};
    for (size_t i = 0; i < LX_ARRAY_LEN(same); i++)
        assert_true(json_equal(json_object_get(up, same[i]), json_object_get(in, same[i])));
    assert_string_equal(str_at(up, "system"), "You are Claude Code.\n\nBe concise.");
    assert_string_equal(str_at(json_object_get(up, "tool_choice"), "type"), "auto");
    assert_true(json_is_true(json_object_get(json_object_get(up, "tool_choice"), "disable_parallel_tool_use")));
    json_t *tool = json_array_get(json_object_get(up, "tools"), 0), *tool_in = json_array_get(json_object_get(in, "tools"), 0);
    assert_true(json_equal(json_object_get(tool, "input_schema"), json_object_get(tool_in, "input_schema")));
    assert_string_equal(str_at(tool, "description"), "Read a file");
    json_t *msgs = json_object_get(up, "messages"), *msgs_in = json_object_get(in, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    /* the first user turn: its blocks as they were (cache_control aside) */
    json_t *u0 = json_object_get(json_array_get(msgs, 0), "content"), *u0_in = json_object_get(json_array_get(msgs_in, 0), "content");
    assert_true(json_equal(u0, u0_in));
    /* the assistant turn: text and tool_use blocks as they were, thinking not */
    json_t *a = json_object_get(json_array_get(msgs, 1), "content"), *a_in = json_object_get(json_array_get(msgs_in, 1), "content");
    assert_int_equal(json_array_size(a), 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(json_equal(json_array_get(a, i), json_array_get(a_in, i + 1)));
    json_t *u2 = json_object_get(json_array_get(msgs, 2), "content");
    assert_int_equal(json_array_size(u2), 4);
    assert_string_equal(str_at(json_array_get(u2, 0), "tool_use_id"), "toolu_1");
    assert_string_equal(str_at(json_array_get(u2, 0), "content"), "hello");
    assert_string_equal(str_at(json_array_get(u2, 1), "content"), "Error: No such file");
    assert_string_equal(str_at(json_array_get(u2, 2), "text"), "Go on");
    assert_string_equal(str_at(json_object_get(json_array_get(u2, 3), "source"), "media_type"), "image/gif");
    assert_null(json_object_get(up, "top_k"));
    assert_null(json_object_get(up, "thinking"));
    json_decref(up);
    lx_http_request_free(&r);
    json_decref(p);
    lx_dialect_req_clear(&rq);
}

static void refused(const char *body, const char *path)
{
    struct lx_dialect_req rq;
    struct lx_error e = {0};
    assert_null(parse(body, &rq, &e));
    assert_int_equal(e.status, 400);
    if (path) {
        assert_string_equal(e.param, path);
        assert_int_equal(strncmp(e.message, path, strlen(path)), 0);
    }
    int status;
    json_t *b = D->error_body(&e, &status);
    assert_int_equal(status, 400);
    assert_string_equal(str_at(b, "type"), "error");
    assert_string_equal(str_at(json_object_get(b, "error"), "type"), "invalid_request_error");
    assert_string_equal(str_at(json_object_get(b, "error"), "message"), e.message);
    json_decref(b);
    lx_error_clear(&e);
    lx_dialect_req_clear(&rq);
}

#define M "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void test_parse_refusals(void **state)
{
    (void)state;
    refused("", NULL);
    refused("{\"model\":", NULL);
    refused("[1]", NULL);
    refused("{\"max_tokens\":5," M "}", "model");
    refused("{\"model\":\"\",\"max_tokens\":5," M "}", "model");
    refused("{\"model\":\"m\"," M "}", "max_tokens");
    refused("{\"model\":\"m\",\"max_tokens\":-1," M "}", "max_tokens");
    refused("{\"model\":\"m\",\"max_tokens\":\"5\"," M "}", "max_tokens");
    refused("{\"model\":\"m\",\"max_tokens\":5}", "messages");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}", "messages");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":{}}", "messages");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[7]}", "messages.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages.0.role");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\"}]}", "messages.0.content");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}",
            "messages.0.content.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
            "messages.0.content.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
            "\"source\":{\"type\":\"base64\"}}]}]}", "messages.0.content.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
            "\"content\":\"x\"}]}]}", "messages.0.content.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_use\","
            "\"id\":\"a\",\"name\":\"b\",\"input\":{}}]}]}", "messages.0.content.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
            "\"name\":\"b\",\"input\":{}}]}]}", "messages.0.content.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\","
            "\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"x\"}}]}]}", "messages.0.content.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"system\":7," M "}", "system");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"system\":[{\"type\":\"image\"}]," M "}", "system.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"name\":\"f\"}]," M "}", "tools.0.input_schema");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"input_schema\":{}}]," M "}", "tools.0");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"tools\":{}," M "}", "tools");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":\"auto\"," M "}", "tool_choice");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"tool\"}," M "}", "tool_choice");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"thinking\":{\"type\":\"enabled\"}," M "}", "thinking.budget_tokens");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"thinking\":{\"type\":\"on\"}," M "}", "thinking");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"temperature\":\"hot\"," M "}", "temperature");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"top_k\":1.5," M "}", "top_k");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"stop_sequences\":\"x\"," M "}", "stop_sequences");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"stop_sequences\":[1]," M "}", "stop_sequences");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"metadata\":\"u\"," M "}", "metadata");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"stream\":\"yes\"," M "}", "stream");
    refused("{\"model\":\"m\",\"max_tokens\":5,\"output_config\":{\"format\":{\"type\":\"xml\"}}," M "}",
            "output_config.format");
}

/* Nulls for every optional field are absent fields; tool_choice variants; output_config.format. */
static void test_parse_nulls_and_variants(void **state)
{
    (void)state;
    struct lx_dialect_req rq;
    struct lx_error e = {0};
    json_t *p = parse("{\"model\":\"m\",\"max_tokens\":0,\"system\":null,\"tools\":null,\"tool_choice\":null,"
                      "\"metadata\":null,\"stop_sequences\":null,\"thinking\":null,\"temperature\":null,\"top_k\":null,"
                      "\"top_p\":null,\"stream\":null,\"output_config\":null,"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"provider_specific_fields\":null}]}", &rq, &e);
    assert_non_null(p);
    assert_false(rq.stream);
    assert_null(json_object_get(p, "stream"));
    assert_null(json_object_get(rq.priv, "lost"));
    assert_false(json_is_true(json_object_get(rq.priv, "thinking")));
    assert_int_equal(json_object_size(p), 3); /* model, messages, max_tokens */
    json_decref(p);
    lx_dialect_req_clear(&rq);

    p = parse("{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"},"
              "\"thinking\":{\"type\":\"disabled\"},\"output_config\":{\"format\":{\"type\":\"json_schema\","
              "\"schema\":{\"type\":\"object\"}},\"effort\":\"high\"}," M "}", &rq, &e);
    assert_string_equal(str_at(json_object_get(json_object_get(p, "tool_choice"), "function"), "name"), "f");
    json_t *rf = json_object_get(p, "response_format");
    assert_string_equal(str_at(rf, "type"), "json_schema");
    assert_string_equal(str_at(json_object_get(json_object_get(rf, "json_schema"), "schema"), "type"), "object");
    assert_true(lost(&rq, "output_config.effort"));
    assert_false(lost(&rq, "thinking"));
    json_decref(p);
    lx_dialect_req_clear(&rq);

    p = parse("{\"model\":\"m\",\"max_tokens\":5,\"tool_choice\":{\"type\":\"any\"},\"messages\":["
              "{\"role\":\"system\",\"content\":\"sys in messages\"},{\"role\":\"user\",\"content\":\"x\"},"
              "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"s\"}]},"
              "{\"role\":\"assistant\",\"content\":\"The answer is (\"}]}", &rq, &e);
    assert_string_equal(str_at(p, "tool_choice"), "required");
    assert_int_equal(json_array_size(json_object_get(p, "messages")), 3); /* the thinking-only turn has no pivot form */
    assert_string_equal(str_at(msg_at(p, 0), "role"), "system");
    assert_string_equal(str_at(msg_at(p, 2), "content"), "The answer is (");
    json_decref(p);
    lx_dialect_req_clear(&rq);
}

static struct lx_anthropic_target target(const char *type)
{
    bool anthropic = strcmp(type, "anthropic") == 0;
    return (struct lx_anthropic_target){.label = "x/model", .type = type, .anthropic = anthropic,
                                        .reads_pdf = anthropic || strcmp(type, "openai") == 0};
}

static void check(const char *body, const char *type, bool ok, const char *in_message)
{
    struct lx_dialect_req rq;
    struct lx_error e = {0};
    json_t *p = parse(body, &rq, &e);
    assert_non_null(p);
    struct lx_anthropic_target t = target(type);
    assert_int_equal(lx_anthropic_messages_check_target(&rq, &t, &e), ok ? LX_OK : LX_ERR);
    if (!ok) {
        assert_int_equal(e.status, 400);
        assert_non_null(strstr(e.message, in_message));
        assert_non_null(strstr(e.message, "x/model"));
    }
    json_decref(p);
    lx_error_clear(&e);
    lx_dialect_req_clear(&rq);
}

#define DOC(src) "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\"," \
                 "\"title\":\"Q3\",\"source\":" src "},{\"type\":\"text\",\"text\":\"Summarise\"}]}]}"

/* Documents and Anthropic-only blocks: carried where the target reads them, else a 400 naming the part. */
static void test_documents_and_targets(void **state)
{
    (void)state;
    const char *pdf = DOC("{\"type\":\"base64\",\"media_type\":\"application/pdf\",\"data\":\"JVBE\"}");
    check(pdf, "anthropic", true, NULL);
    check(pdf, "openai", true, NULL);
    check(pdf, "ollama", false, "messages.0.content.0");
    const char *url = DOC("{\"type\":\"url\",\"url\":\"https://x.test/q3.pdf\"}");
    check(url, "anthropic", true, NULL);
    check(url, "openai", false, "messages.0.content.0.source");
    const char *text = DOC("{\"type\":\"text\",\"media_type\":\"text/plain\",\"data\":\"Revenue rose.\"}");
    check(text, "ollama", true, NULL);
    const char *web = "{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}]," M "}";
    check(web, "anthropic", true, NULL);
    check(web, "openai", false, "web_search_20250305");
    const char *search = "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                         "\"search_result\",\"source\":\"s\",\"title\":\"t\",\"content\":[]}]}]}";
    check(search, "mock", false, "search_result");

    struct lx_dialect_req rq;
    struct lx_error e = {0};
    json_t *p = parse(pdf, &rq, &e);
    json_t *part = json_array_get(json_object_get(msg_at(p, 0), "content"), 0);
    assert_string_equal(str_at(part, "type"), "file");
    assert_string_equal(str_at(json_object_get(part, "file"), "file_data"), "data:application/pdf;base64,JVBE");
    assert_string_equal(str_at(json_object_get(part, "file"), "filename"), "Q3");
    json_decref(p);
    lx_dialect_req_clear(&rq);
    p = parse(text, &rq, &e);
    assert_string_equal(str_at(json_array_get(json_object_get(msg_at(p, 0), "content"), 0), "text"), "Revenue rose.");
    json_decref(p);
    lx_dialect_req_clear(&rq);
}

static void test_dropped_names(void **state)
{
    (void)state;
    struct lx_dialect_req rq;
    struct lx_error e = {0};
    json_t *p = parse(claude_code_request, &rq, &e);
    char *d = D->dropped(&rq, "tool_choice,user,stream_options,parallel_tool_calls,stop,top_k");
    assert_string_equal(d, "tool_choice,metadata.user_id,tool_choice.disable_parallel_tool_use,stop_sequences,top_k");
    free(d);
    assert_null(D->dropped(&rq, "stream_options"));
    assert_null(D->dropped(&rq, ""));
    /* what the engine carries for Anthropic-type targets: the body, the API's headers, what is lost */
    json_t *n = lx_anthropic_messages_native_request(&rq, "2023-06-01", "interleaved-thinking-2025-05-14");
    assert_string_equal(str_at(n, "api"), "anthropic_messages");
    assert_ptr_equal(json_object_get(n, "body"), lx_anthropic_messages_native(&rq));
    assert_string_equal(str_at(json_object_get(n, "headers"), "anthropic-beta"), "interleaved-thinking-2025-05-14");
    json_t *lost_names = json_object_get(n, "lost");
    assert_int_equal(json_array_size(lost_names), 4);
    assert_string_equal(json_string_value(json_array_get(lost_names, 0)), "cache_control");
    json_decref(n);
    n = lx_anthropic_messages_native_request(&rq, NULL, NULL);
    assert_int_equal(json_object_size(json_object_get(n, "headers")), 0);
    json_decref(n);
    json_decref(p);
    lx_dialect_req_clear(&rq);
}

static void request(struct lx_dialect_req *rq, bool thinking)
{
    struct lx_error e = {0};
    json_t *p = parse(thinking ? "{\"model\":\"claude-x\",\"max_tokens\":50,\"thinking\":{\"type\":\"adaptive\"}," M "}"
                               : "{\"model\":\"claude-x\",\"max_tokens\":50," M "}", rq, &e);
    assert_non_null(p);
    json_decref(p);
}

/* A recorded body through its provider into a pivot completion, then out as an Anthropic message. */
static json_t *answer(const struct lx_provider_type *type, const char *fixture, bool thinking)
{
    struct lx_provider_conf conf = {.name = "up", .type = type, .base_url = "http://up.test"};
    size_t len;
    char *body = read_fixture(fixture, &len);
    struct lx_chat chat = {.model = "m", .req_id = 3};
    struct lx_error e = {0};
    json_t *c = type->chat_response(&conf, &chat, body, len, &e);
    assert_non_null(c);
    struct lx_dialect_req rq;
    request(&rq, thinking);
    json_t *msg = D->completion(&rq, c);
    lx_dialect_req_clear(&rq);
    json_decref(c);
    free(body);
    return msg;
}

static void test_completion_anthropic_fixture(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("anthropic_messages_nonstream_tool_use.json", &len);
    json_t *want = json_loadb(body, len, 0, NULL);
    free(body);
    json_t *got = answer(&lx_provider_anthropic, "anthropic_messages_nonstream_tool_use.json", false);
    static const char *const keys[] = {"id", "type", "role", "model", "stop_reason", "stop_sequence"};
    for (size_t i = 0; i < LX_ARRAY_LEN(keys); i++)
        assert_true(json_equal(json_object_get(want, keys[i]), json_object_get(got, keys[i])));
    json_t *wb = json_array_get(json_object_get(want, "content"), 0);
    json_t *gb = json_array_get(json_object_get(got, "content"), 0);
    assert_int_equal(json_array_size(json_object_get(got, "content")), 1);
    static const char *const bkeys[] = {"type", "id", "name", "input"};
    for (size_t i = 0; i < LX_ARRAY_LEN(bkeys); i++)
        assert_true(json_equal(json_object_get(wb, bkeys[i]), json_object_get(gb, bkeys[i])));
    static const char *const ukeys[] = {"input_tokens", "output_tokens", "cache_creation_input_tokens",
                                        "cache_read_input_tokens"};
    for (size_t i = 0; i < LX_ARRAY_LEN(ukeys); i++)
        assert_true(json_equal(json_object_get(json_object_get(want, "usage"), ukeys[i]),
                               json_object_get(json_object_get(got, "usage"), ukeys[i])));
    json_decref(got);
    json_decref(want);
}

static void test_completion_openai_and_ollama_fixtures(void **state)
{
    (void)state;
    json_t *m = answer(&lx_provider_openai, "openai_chat_nonstream_tool_call.json", false);
    assert_string_equal(str_at(m, "id"), "msg_chatcmpl-ABfvx6Z4dchiW2nya1N8KMsHFrQRE");
    assert_string_equal(str_at(m, "type"), "message");
    assert_string_equal(str_at(m, "model"), "gpt-4o-2024-08-06");
    assert_string_equal(str_at(m, "stop_reason"), "tool_use");
    assert_true(json_is_null(json_object_get(m, "stop_sequence")));
    json_t *tool = json_array_get(json_object_get(m, "content"), 0);
    assert_int_equal(json_array_size(json_object_get(m, "content")), 1);
    assert_string_equal(str_at(tool, "type"), "tool_use");
    assert_string_equal(str_at(tool, "id"), "call_Y6qJ7ofLgOrBnMD5WbVAeiRV");
    assert_string_equal(str_at(json_object_get(tool, "input"), "city"), "Edinburgh");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "usage"), "input_tokens")), 76);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "usage"), "output_tokens")), 24);
    json_decref(m);

    m = answer(&lx_provider_ollama, "ollama_api_chat_nonstream.docs.json", false);
    json_t *text = json_array_get(json_object_get(m, "content"), 0);
    assert_string_equal(str_at(text, "type"), "text");
    assert_string_equal(str_at(text, "text"), "Hello! How are you today?");
    assert_string_equal(str_at(m, "stop_reason"), "end_turn");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "usage"), "input_tokens")), 26);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(m, "usage"), "output_tokens")), 298);
    json_decref(m);

    m = answer(&lx_provider_ollama, "ollama_api_chat_nonstream_tool_calls.docs.json", false);
    tool = json_array_get(json_object_get(m, "content"), 0);
    assert_string_equal(str_at(tool, "type"), "tool_use");
    assert_true(json_string_length(json_object_get(tool, "id")) > 0);
    assert_string_equal(str_at(json_object_get(tool, "input"), "city"), "Tokyo");
    assert_string_equal(str_at(m, "stop_reason"), "tool_use");
    json_decref(m);
}

/* Pivot completions the dialect must make sense of: thinking, bad arguments, no usage, a stop sequence. */
static void test_completion_edges(void **state)
{
    (void)state;
    json_t *c = json_loads("{\"id\":\"msg_x\",\"model\":\"up\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\","
                           "\"stop_reason\":\"END\",\"message\":{\"role\":\"assistant\",\"content\":\"Done\","
                           "\"reasoning_details\":[{\"type\":\"reasoning.text\",\"text\":\"Hm\",\"signature\":\"s1\",\"index\":0}],"
                           "\"tool_calls\":[{\"id\":\"\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]}}],"
                           "\"usage\":{\"prompt_tokens\":0,\"completion_tokens\":0,\"total_tokens\":0}}", 0, NULL);
    struct lx_dialect_req rq;
    request(&rq, true);
    json_t *m = D->completion(&rq, c);
    json_t *content = json_object_get(m, "content");
    assert_int_equal(json_array_size(content), 3);
    assert_string_equal(str_at(json_array_get(content, 0), "type"), "thinking");
    assert_string_equal(str_at(json_array_get(content, 0), "signature"), "s1");
    assert_string_equal(str_at(json_array_get(content, 1), "text"), "Done");
    json_t *tool = json_array_get(content, 2);
    assert_string_equal(str_at(tool, "id"), "toolu_llmux_0");
    assert_int_equal(json_object_size(json_object_get(tool, "input")), 0);
    assert_string_equal(str_at(m, "stop_reason"), "stop_sequence");
    assert_string_equal(str_at(m, "stop_sequence"), "END");
    json_t *u = json_object_get(m, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), rq.prompt_tokens_estimate);
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 1);
    json_decref(m);
    lx_dialect_req_clear(&rq);
    request(&rq, false);
    m = D->completion(&rq, c);
    assert_int_equal(json_array_size(json_object_get(m, "content")), 2); /* no thinking asked for: none shown */
    json_decref(m);
    /* a target that speaks Anthropic: its own message as it came; count_tokens' answer as it is */
    json_t *relayed = json_loads("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"x\"}}],"
                                 "\"llmux_native\":{\"id\":\"msg_up\",\"type\":\"message\",\"content\":[]}}", 0, NULL);
    m = D->completion(&rq, relayed);
    assert_ptr_equal(m, json_object_get(relayed, "llmux_native"));
    json_decref(m);
    json_decref(relayed);
    json_t *count = json_pack("{s:i}", "input_tokens", 12);
    m = D->completion(&rq, count);
    assert_ptr_equal(m, count);
    json_decref(m);
    json_decref(count);
    lx_dialect_req_clear(&rq);
    json_decref(c);
}

/* Error bodies: llmux's own errors by status, and recorded Anthropic errors through the provider come
 * out as Anthropic sent them. */
static void test_error_bodies(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *type;
    } cases[] = {{400, "invalid_request_error"}, {401, "authentication_error"}, {403, "permission_error"},
                 {404, "not_found_error"},       {413, "request_too_large"},    {429, "rate_limit_error"},
                 {500, "api_error"},             {529, "overloaded_error"}};
    for (size_t i = 0; i < LX_ARRAY_LEN(cases); i++) {
        struct lx_error e = {0};
        lx_error_set(&e, cases[i].status, lx_error_type_for_status(cases[i].status), NULL, "x", "went wrong");
        int status;
        json_t *b = D->error_body(&e, &status);
        assert_int_equal(status, cases[i].status);
        assert_string_equal(str_at(b, "type"), "error");
        assert_string_equal(str_at(json_object_get(b, "error"), "type"), cases[i].type);
        assert_string_equal(str_at(json_object_get(b, "error"), "message"), "went wrong");
        assert_int_equal(json_object_size(json_object_get(b, "error")), 2);
        json_decref(b);
        lx_error_clear(&e);
    }
    static const char *const fixtures[][2] = {{"anthropic_error_429_rate_limit.json", "429"},
                                              {"anthropic_error_400_invalid_request.json", "400"}};
    struct lx_provider_conf conf = {.name = "claude", .type = &lx_provider_anthropic, .base_url = "http://x"};
    for (size_t i = 0; i < LX_ARRAY_LEN(fixtures); i++) {
        size_t len;
        char *body = read_fixture(fixtures[i][0], &len);
        json_t *want = json_loadb(body, len, 0, NULL);
        struct lx_error e = {0};
        lx_provider_anthropic.error_response(&conf, atoi(fixtures[i][1]), body, len, &e);
        int status;
        json_t *b = D->error_body(&e, &status);
        assert_int_equal(status, atoi(fixtures[i][1]));
        assert_true(json_equal(json_object_get(b, "error"), json_object_get(want, "error")));
        json_decref(b);
        json_decref(want);
        lx_error_clear(&e);
        free(body);
    }
}

static long count(const char *body)
{
    struct lx_dialect_req rq;
    struct lx_error e = {0};
    json_t *p = lx_anthropic_messages_parse_count(body, strlen(body), &rq, &e);
    assert_non_null(p);
    assert_null(json_object_get(p, "max_tokens"));
    long n = rq.prompt_tokens_estimate;
    json_decref(p);
    lx_dialect_req_clear(&rq);
    return n;
}

/* count_tokens: no max_tokens needed, nulls ignored (Bifrost #5684), and the estimate grows as it should. */
static void test_count_tokens(void **state)
{
    (void)state;
    long hi = count("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"provider_specific_fields\":null,"
                    "\"tools\":null,\"system\":null}");
    assert_int_equal(hi, 3 + 1);
    long longer = count("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi, please summarise this text "
                        "for me in two lines\"}]}");
    assert_true(longer > hi);
    long image = count("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},"
                       "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.png\"}}]}]}");
    assert_int_equal(image, hi + 1600);
    long tools = count("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"tools\":[{\"name\":\"f\","
                       "\"input_schema\":{\"type\":\"object\"}}]}");
    assert_true(tools > hi + 350);
    struct lx_dialect_req rq;
    struct lx_error e = {0};
    assert_null(lx_anthropic_messages_parse_count("{\"messages\":[]}", 15, &rq, &e));
    assert_string_equal(e.param, "model");
    lx_error_clear(&e);
    lx_dialect_req_clear(&rq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_claude_code_request),
        cmocka_unit_test(test_request_round_trip_through_provider),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_parse_nulls_and_variants),
        cmocka_unit_test(test_documents_and_targets),
        cmocka_unit_test(test_dropped_names),
        cmocka_unit_test(test_completion_anthropic_fixture),
        cmocka_unit_test(test_completion_openai_and_ollama_fixtures),
        cmocka_unit_test(test_completion_edges),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_count_tokens),
    };
    return cmocka_run_group_tests_name("anthropic_messages", tests, NULL, NULL);
}
