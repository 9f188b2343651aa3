/* Unit tests for providers/anthropic.c: request translation, and responses, streams and errors from
 * recorded Anthropic wire data in ../shared/fixtures. */
#include "../unit.h"
#include "../anthropic_thinking_sse.h"
#include "../../../providers/provider.h"
#include "../../../src/core/common.h"

static struct lx_provider_conf conf = {
    .name = "claude", .type = &lx_provider_anthropic, .base_url = "https://api.anthropic.test", .api_key = "sk-ant",
};

static json_t *translate(const char *body_json, int *rc, struct lx_error *e, struct lx_http_request *r)
{
    json_t *body = json_loads(body_json, 0, NULL);
    assert_non_null(body);
    struct lx_chat chat = {.body = body, .model = "claude-x", .stream = json_is_true(json_object_get(body, "stream"))};
    *rc = lx_provider_anthropic.chat_request(&conf, &chat, r, e);
    json_decref(body);
    return *rc == LX_OK ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
}

static void test_request_translation(void **state)
{
    (void)state;
    const char *in =
        "{\"model\":\"claude/claude-x\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use tools.\"}]},"
        "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.jpg\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"}],"
        "\"max_completion_tokens\":300,\"stop\":\"END\",\"temperature\":0.2,\"top_p\":0.9,\"user\":\"u-7\","
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"d\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":\"required\",\"parallel_tool_calls\":false,\"seed\":4,\"presence_penalty\":1,"
        "\"stream\":true}";
    int rc;
    struct lx_error e = {0};
    struct lx_http_request r = {0};
    json_t *out = translate(in, &rc, &e, &r);
    assert_int_equal(rc, LX_OK);
    assert_string_equal(r.url, "https://api.anthropic.test/v1/messages");
    bool key = false, version = false;
    for (size_t i = 0; i < r.n_headers; i++) {
        key |= strcmp(r.headers[i], "x-api-key: sk-ant") == 0;
        version |= strcmp(r.headers[i], "anthropic-version: 2023-06-01") == 0;
    }
    assert_true(key && version);
    assert_string_equal(json_string_value(json_object_get(out, "model")), "claude-x");
    assert_string_equal(json_string_value(json_object_get(out, "system")), "Be brief.\n\nUse tools.");
    assert_int_equal(json_integer_value(json_object_get(out, "max_tokens")), 300);
    assert_string_equal(json_string_value(json_array_get(json_object_get(out, "stop_sequences"), 0)), "END");
    assert_true(json_is_true(json_object_get(out, "stream")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "metadata"), "user_id")), "u-7");
    json_t *msgs = json_object_get(out, "messages");
    /* the two user turns merged; assistant; tool result as a user turn */
    assert_int_equal(json_array_size(msgs), 3);
    json_t *u = json_array_get(msgs, 0);
    assert_string_equal(json_string_value(json_object_get(u, "role")), "user");
    json_t *ub = json_object_get(u, "content");
    assert_int_equal(json_array_size(ub), 3);
    json_t *img = json_object_get(json_array_get(ub, 1), "source");
    assert_string_equal(json_string_value(json_object_get(img, "type")), "base64");
    assert_string_equal(json_string_value(json_object_get(img, "media_type")), "image/png");
    assert_string_equal(json_string_value(json_object_get(img, "data")), "AAAA");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(ub, 2), "source"), "type")), "url");
    json_t *tu = json_array_get(json_object_get(json_array_get(msgs, 1), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(tu, "type")), "tool_use");
    assert_string_equal(json_string_value(json_object_get(tu, "id")), "call_1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(tu, "input"), "city")), "Paris");
    json_t *tr = json_array_get(json_object_get(json_array_get(msgs, 2), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(tr, "type")), "tool_result");
    assert_string_equal(json_string_value(json_object_get(tr, "tool_use_id")), "call_1");
    assert_string_equal(json_string_value(json_object_get(tr, "content")), "18C");
    json_t *tool = json_array_get(json_object_get(out, "tools"), 0);
    assert_string_equal(json_string_value(json_object_get(tool, "name")), "get_weather");
    assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "input_schema"), "type")), "object");
    json_t *tc = json_object_get(out, "tool_choice");
    assert_string_equal(json_string_value(json_object_get(tc, "type")), "any");
    assert_true(json_is_true(json_object_get(tc, "disable_parallel_tool_use")));
    assert_string_equal(r.dropped, "seed,presence_penalty");
    json_decref(out);
    lx_http_request_free(&r);
}

/* A history with tool calls but a request without tools (a Responses turn continuing one that ran MCP
 * tools, a client that dropped its tools): Anthropic refuses tool blocks without tool definitions, so the
 * tools the history called are declared and tool_choice none keeps them from being called. */
static void test_history_tools_without_tools(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    struct lx_http_request r = {0};
    json_t *out = translate(
        "{\"model\":\"m\",\"tool_choice\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"add\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"ev__add\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"ev__add\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c3\",\"type\":\"function\",\"function\":{\"name\":\"ev__echo\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"5\"},{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"5\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c3\",\"content\":\"e\"},{\"role\":\"user\",\"content\":\"thanks\"}]}",
        &rc, &e, &r);
    assert_int_equal(rc, LX_OK);
    json_t *tools = json_object_get(out, "tools");
    assert_int_equal(json_array_size(tools), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 0), "name")), "ev__add");
    assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 1), "name")), "ev__echo");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(tools, 1), "input_schema"), "type")),
                        "object");
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "tool_choice"), "type")), "none");
    json_decref(out);
    lx_http_request_free(&r);
    /* without tool calls in the history nothing is declared */
    out = translate("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rc, &e, &r);
    assert_null(json_object_get(out, "tools"));
    assert_null(json_object_get(out, "tool_choice"));
    json_decref(out);
    lx_http_request_free(&r);
}

static void test_request_defaults_and_refusals(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    struct lx_http_request r = {0};
    json_t *out = translate("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                            "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
                            "\"response_format\":{\"type\":\"json_object\"}}", &rc, &e, &r);
    assert_int_equal(json_integer_value(json_object_get(out, "max_tokens")), 4096);
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "tool_choice"), "name")), "f");
    assert_non_null(strstr(json_string_value(json_object_get(out, "system")), "JSON object"));
    assert_null(r.dropped);
    json_decref(out);
    lx_http_request_free(&r);
    assert_null(translate("{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &rc, &e, &r));
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "n");
    lx_http_request_free(&r);
    assert_null(translate("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
                          &rc, &e, &r));
    assert_string_equal(e.param, "messages[0].content[0]");
    lx_http_request_free(&r);
    lx_error_clear(&e);
}

static void refused(const char *body, const char *param)
{
    int rc;
    struct lx_error e = {0};
    struct lx_http_request r = {0};
    assert_null(translate(body, &rc, &e, &r));
    assert_int_equal(rc, LX_ERR);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, param);
    lx_http_request_free(&r);
    lx_error_clear(&e);
}

static void test_request_refusals(void **state)
{
    (void)state;
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png,AAAA\"}}]}]}",
            "messages[0].content[0]");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x\"}}]}]}",
            "messages[0].content[0]");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}",
            "messages[0].content[0]");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", "messages[0].content[0]");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":7}]}", "messages[0].content");
    refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\","
            "\"arguments\":\"[1]\"}}]}]}", "messages[0].tool_calls[0].function.arguments");
    refused("{\"messages\":[{\"role\":\"critic\",\"content\":\"x\"}]}", "messages[0].role");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"sometimes\"}", "tool_choice");
}

static void test_request_mappings(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    struct lx_http_request r = {0};
    json_t *out = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"\"}],"
                            "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"parallel_tool_calls\":false,"
                            "\"stop\":[\"a\",\"b\"],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":"
                            "{\"type\":\"object\"}}}}", &rc, &e, &r);
    assert_int_equal(rc, LX_OK);
    json_t *tc = json_object_get(out, "tool_choice");
    assert_string_equal(json_string_value(json_object_get(tc, "type")), "auto");
    assert_true(json_is_true(json_object_get(tc, "disable_parallel_tool_use")));
    assert_int_equal(json_array_size(json_object_get(out, "stop_sequences")), 2);
    assert_non_null(strstr(json_string_value(json_object_get(out, "system")), "{\"type\":\"object\"}"));
    /* an empty assistant turn is not sent empty */
    json_t *asst = json_array_get(json_object_get(out, "messages"), 1);
    assert_int_equal(json_array_size(json_object_get(asst, "content")), 1);
    /* a tool without parameters gets an empty object schema */
    json_t *tool = json_array_get(json_object_get(out, "tools"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "input_schema"), "type")), "object");
    json_decref(out);
    lx_http_request_free(&r);
    out = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"none\"}", &rc, &e, &r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "tool_choice"), "type")), "none");
    json_decref(out);
    lx_http_request_free(&r);
    out = translate("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"auto\"}", &rc, &e, &r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "tool_choice"), "type")), "auto");
    json_decref(out);
    lx_http_request_free(&r);
}

static void test_nonstream_tool_use_fixture(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("anthropic_messages_nonstream_tool_use.json", &len);
    struct lx_error e = {0};
    struct lx_chat chat = {.model = "claude-haiku"};
    json_t *c = lx_provider_anthropic.chat_response(&conf, &chat, body, len, &e);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "object")), "chat.completion");
    json_t *choice = json_array_get(json_object_get(c, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "tool_calls");
    json_t *msg = json_object_get(choice, "message");
    assert_true(json_is_null(json_object_get(msg, "content")));
    json_t *call = json_array_get(json_object_get(msg, "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(call, "id")), "toolu_01A9HHF5Ezy3oBrKmSgfASm9");
    json_t *args = json_loads(json_string_value(json_object_get(json_object_get(call, "function"), "arguments")), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(args, "location")), "San Francisco, CA");
    json_decref(args);
    json_t *u = json_object_get(c, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 656);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 74);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 730);
    json_decref(c);
    free(body);
    assert_null(lx_provider_anthropic.chat_response(&conf, &chat, "{\"x\":1}", 7, &e));
    assert_int_equal(e.status, 502);
    lx_error_clear(&e);
}

static void collect(void *ctx, json_t *chunk)
{
    json_array_append((json_t *)ctx, chunk);
}

static json_t *decode(const char *fixture, size_t step, bool usage, int *rc, struct lx_error *e)
{
    size_t len;
    char *body = read_fixture(fixture, &len);
    struct lx_chat chat = {.stream = true, .include_usage = usage, .model = "m"};
    void *st = lx_provider_anthropic.stream_open(&conf, &chat);
    json_t *chunks = json_array();
    *rc = LX_OK;
    for (size_t off = 0; off < len && *rc == LX_OK; off += step)
        *rc = lx_provider_anthropic.stream_feed(st, body + off, len - off < step ? len - off : step, collect, chunks, e);
    if (*rc == LX_OK)
        *rc = lx_provider_anthropic.stream_finish(st, collect, chunks, e);
    lx_provider_anthropic.stream_close(st);
    free(body);
    return chunks;
}

static void test_stream_text_fixture(void **state)
{
    (void)state;
    for (size_t step = 1; step < 200; step += 37) {
        int rc;
        struct lx_error e = {0};
        json_t *chunks = decode("anthropic_messages_stream_text.sse", step, true, &rc, &e);
        assert_int_equal(rc, LX_OK);
        struct lx_buf text = {0};
        size_t i;
        json_t *c;
        const char *finish = NULL;
        json_array_foreach(chunks, i, c) {
            json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
            json_t *content = json_object_get(json_object_get(ch, "delta"), "content");
            if (json_is_string(content))
                lx_buf_puts(&text, json_string_value(content));
            if (json_is_string(json_object_get(ch, "finish_reason")))
                finish = json_string_value(json_object_get(ch, "finish_reason"));
            assert_string_equal(json_string_value(json_object_get(c, "object")), "chat.completion.chunk");
        }
        assert_string_equal(text.data, "Hello there!");
        assert_string_equal(finish, "stop");
        json_t *first = json_array_get(chunks, 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(first, "choices"), 0), "delta"), "role")), "assistant");
        json_t *last = json_array_get(chunks, json_array_size(chunks) - 1);
        assert_int_equal(json_array_size(json_object_get(last, "choices")), 0);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "usage"), "prompt_tokens")), 11);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "usage"), "completion_tokens")), 6);
        lx_buf_free(&text);
        json_decref(chunks);
    }
}

static void test_stream_tool_use_fixture(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    json_t *chunks = decode("anthropic_messages_stream_tool_use.sse", 13, false, &rc, &e);
    assert_int_equal(rc, LX_OK);
    struct lx_buf args = {0};
    const char *name = NULL, *id = NULL, *finish = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c) {
        assert_null(json_object_get(c, "usage")); /* not asked for */
        json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
        json_t *tc = json_array_get(json_object_get(json_object_get(ch, "delta"), "tool_calls"), 0);
        if (tc) {
            assert_int_equal(json_integer_value(json_object_get(tc, "index")), 0);
            json_t *fn = json_object_get(tc, "function");
            if (json_object_get(fn, "name")) {
                name = json_string_value(json_object_get(fn, "name"));
                id = json_string_value(json_object_get(tc, "id"));
            }
            lx_buf_puts(&args, json_string_value(json_object_get(fn, "arguments")));
        }
        if (json_is_string(json_object_get(ch, "finish_reason")))
            finish = json_string_value(json_object_get(ch, "finish_reason"));
    }
    assert_string_equal(name, "get_weather");
    assert_string_equal(id, "toolu_01NRLabsLyVHZPKxbKvkfSMn");
    assert_string_equal(finish, "tool_calls");
    json_t *parsed = json_loads(args.data, 0, NULL);
    assert_non_null(parsed);
    assert_non_null(strstr(json_string_value(json_object_get(parsed, "location")), "Paris"));
    json_decref(parsed);
    lx_buf_free(&args);
    json_decref(chunks);
}

static void test_stream_error_fixture(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    json_t *chunks = decode("anthropic_messages_stream_error_overloaded.sse", 64, false, &rc, &e);
    assert_int_equal(rc, LX_ERR);
    assert_int_equal(e.status, 529);
    assert_string_equal(e.type, "overloaded_error");
    assert_string_equal(e.message, "Overloaded");
    json_decref(chunks);
    lx_error_clear(&e);
}

/* message_stop ends the stream: stream_ended turns true with the last byte of that event (live servers
 * end it with a blank line; the recording does not, and then only the end of the body completes it). */
static void test_stream_ended_at_message_stop(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("anthropic_messages_stream_text.sse", &len);
    for (int terminated = 0; terminated < 2; terminated++) {
        struct lx_chat chat = {.stream = true, .model = "m"};
        void *st = lx_provider_anthropic.stream_open(&conf, &chat);
        json_t *chunks = json_array();
        struct lx_error e = {0};
        for (size_t i = 0; i < len; i++) {
            assert_false(lx_provider_anthropic.stream_ended(st));
            assert_int_equal(lx_provider_anthropic.stream_feed(st, body + i, 1, collect, chunks, &e), LX_OK);
        }
        assert_false(lx_provider_anthropic.stream_ended(st));
        if (terminated) {
            assert_int_equal(lx_provider_anthropic.stream_feed(st, "\n", 1, collect, chunks, &e), LX_OK);
            assert_false(lx_provider_anthropic.stream_ended(st)); /* the line is whole, the event is not */
            assert_int_equal(lx_provider_anthropic.stream_feed(st, "\n", 1, collect, chunks, &e), LX_OK);
            assert_true(lx_provider_anthropic.stream_ended(st));
        }
        assert_int_equal(lx_provider_anthropic.stream_finish(st, collect, chunks, &e), LX_OK);
        lx_provider_anthropic.stream_close(st);
        json_decref(chunks);
    }
    free(body);
}

/* Thinking in a stream (anthropic_thinking_sse.h): each thinking block becomes reasoning_details entries
 * with its own index, signature included; a redacted block its data. A stop sequence that matched is
 * named in the choice's stop_reason. */
static void test_stream_thinking_and_stop_sequence(void **state)
{
    (void)state;
    struct lx_chat chat = {.stream = true, .model = "m"};
    void *st = lx_provider_anthropic.stream_open(&conf, &chat);
    json_t *chunks = json_array();
    struct lx_error e = {0};
    size_t len = strlen(lx_test_thinking_sse);
    for (size_t off = 0; off < len; off += 29)
        assert_int_equal(lx_provider_anthropic.stream_feed(st, lx_test_thinking_sse + off, len - off < 29 ? len - off : 29,
                                                           collect, chunks, &e), LX_OK);
    assert_int_equal(lx_provider_anthropic.stream_finish(st, collect, chunks, &e), LX_OK);
    lx_provider_anthropic.stream_close(st);
    struct lx_buf thought = {0}, text = {0};
    const char *sig = NULL, *redacted = NULL, *seq = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c) {
        json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
        json_t *delta = json_object_get(ch, "delta");
        json_t *d = json_array_get(json_object_get(delta, "reasoning_details"), 0);
        if (d) {
            const char *type = json_string_value(json_object_get(d, "type"));
            json_int_t index = json_integer_value(json_object_get(d, "index"));
            if (strcmp(type, "reasoning.encrypted") == 0) {
                assert_int_equal(index, 1);
                redacted = json_string_value(json_object_get(d, "data"));
            } else {
                assert_string_equal(type, "reasoning.text");
                assert_int_equal(index, 0);
                if (json_object_get(d, "text"))
                    lx_buf_puts(&thought, json_string_value(json_object_get(d, "text")));
                if (json_object_get(d, "signature"))
                    sig = json_string_value(json_object_get(d, "signature"));
            }
        }
        if (json_is_string(json_object_get(delta, "content")))
            lx_buf_puts(&text, json_string_value(json_object_get(delta, "content")));
        if (json_is_string(json_object_get(ch, "finish_reason"))) {
            assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
            seq = json_string_value(json_object_get(ch, "stop_reason"));
        }
    }
    assert_string_equal(thought.data, "Two plus two.");
    assert_string_equal(sig, "EqQB");
    assert_string_equal(redacted, "EmwK");
    assert_string_equal(text.data, "4");
    assert_string_equal(seq, "END");
    lx_buf_free(&thought);
    lx_buf_free(&text);
    json_decref(chunks);
}

/* A non-stream answer with thinking and a matched stop sequence; a PDF file part goes up as a document. */
static void test_thinking_answer_and_pdf_part(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":["
                       "{\"type\":\"thinking\",\"thinking\":\"Hm.\",\"signature\":\"sg\"},{\"type\":\"text\",\"text\":\"Done\"}],"
                       "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"###\",\"usage\":{\"input_tokens\":3,\"output_tokens\":2}}";
    struct lx_error e = {0};
    struct lx_chat chat = {.model = "m"};
    json_t *c = lx_provider_anthropic.chat_response(&conf, &chat, body, strlen(body), &e);
    json_t *choice = json_array_get(json_object_get(c, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "stop");
    assert_string_equal(json_string_value(json_object_get(choice, "stop_reason")), "###");
    json_t *msg = json_object_get(choice, "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")), "Done");
    assert_string_equal(json_string_value(json_object_get(msg, "reasoning_content")), "Hm.");
    json_t *d = json_array_get(json_object_get(msg, "reasoning_details"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "signature")), "sg");
    json_decref(c);

    int rc;
    struct lx_http_request r = {0};
    json_t *out = translate("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Sum it up\"},"
                            "{\"type\":\"file\",\"file\":{\"filename\":\"q3.pdf\",\"file_data\":\"data:application/pdf;base64,JVBERi0x\"}}]}]}",
                            &rc, &e, &r);
    assert_int_equal(rc, LX_OK);
    json_t *doc = json_array_get(json_object_get(json_array_get(json_object_get(out, "messages"), 0), "content"), 1);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), "document");
    assert_string_equal(json_string_value(json_object_get(doc, "title")), "q3.pdf");
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "source"), "data")), "JVBERi0x");
    json_decref(out);
    lx_http_request_free(&r);
}

/* A client that speaks the Messages API: its own body goes up (model renamed, top-level nulls left out)
 * with its anthropic-version and anthropic-beta, nothing is reported dropped, and every event of the
 * answer rides along with the chunks, in order, as it came: events with no pivot form in chunks of
 * their own. count_tokens goes to the upstream's own endpoint. */
static void test_native_relay(void **state)
{
    (void)state;
    json_t *native = json_loads("{\"api\":\"anthropic_messages\",\"body\":{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":9,"
                                "\"top_k\":3,\"provider_specific_fields\":null,\"stream\":true,\"messages\":[{\"role\":\"user\","
                                "\"content\":[{\"type\":\"text\",\"text\":\"hi\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]},"
                                "\"headers\":{\"anthropic-version\":\"2023-06-01\",\"anthropic-beta\":\"b1\"},\"lost\":[\"top_k\"]}",
                                0, NULL);
    json_t *pivot = json_loads("{\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, NULL);
    struct lx_chat chat = {.body = pivot, .model = "claude-x", .stream = true, .include_usage = true, .native = native};
    struct lx_http_request r = {0};
    struct lx_error e = {0};
    assert_int_equal(lx_provider_anthropic.chat_request(&conf, &chat, &r, &e), LX_OK);
    assert_null(r.dropped);
    json_t *up = json_loadb(r.body, r.body_len, 0, NULL);
    json_t *want = json_deep_copy(json_object_get(native, "body"));
    json_object_set_new(want, "model", json_string("claude-x"));
    json_object_del(want, "provider_specific_fields");
    assert_true(json_equal(up, want));
    bool version = false, beta = false;
    for (size_t i = 0; i < r.n_headers; i++) {
        version |= strcmp(r.headers[i], "anthropic-version: 2023-06-01") == 0;
        beta |= strcmp(r.headers[i], "anthropic-beta: b1") == 0;
    }
    assert_true(version && beta);
    json_decref(up);
    json_decref(want);
    lx_http_request_free(&r);

    /* the stream: every event, in order, exactly as it came */
    size_t len;
    char *body = read_fixture("anthropic_messages_stream_tool_use.sse", &len);
    void *st = lx_provider_anthropic.stream_open(&conf, &chat);
    json_t *chunks = json_array();
    for (size_t off = 0; off < len; off += 23)
        assert_int_equal(lx_provider_anthropic.stream_feed(st, body + off, len - off < 23 ? len - off : 23, collect, chunks, &e),
                         LX_OK);
    assert_int_equal(lx_provider_anthropic.stream_finish(st, collect, chunks, &e), LX_OK);
    lx_provider_anthropic.stream_close(st);
    struct lx_buf relayed = {0};
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c) {
        json_t *n = json_object_get(c, "llmux_native");
        if (n)
            lx_buf_printf(&relayed, "event: %s\ndata: %s\n\n", json_string_value(json_object_get(n, "event")),
                          json_string_value(json_object_get(n, "data")));
    }
    assert_int_equal(relayed.len, len + 2); /* the recording lacks the last blank line */
    assert_memory_equal(relayed.data, body, len);
    lx_buf_free(&relayed);
    json_decref(chunks);
    free(body);

    /* non-stream: the message as it came, beside the pivot completion */
    const char *msg = "{\"id\":\"msg_1\",\"type\":\"message\",\"model\":\"claude-x\",\"content\":[{\"type\":\"text\",\"text\":\"ok\","
                      "\"citations\":[]}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}";
    chat.stream = false;
    json_t *completion = lx_provider_anthropic.chat_response(&conf, &chat, msg, strlen(msg), &e);
    json_t *as_came = json_loads(msg, 0, NULL);
    assert_true(json_equal(json_object_get(completion, "llmux_native"), as_came));
    json_decref(as_came);
    json_decref(completion);

    /* count_tokens: the client's count request at the upstream's own endpoint */
    chat.kind = LX_CALL_COUNT_TOKENS;
    assert_int_equal(lx_provider_anthropic.count_tokens_request(&conf, &chat, &r, &e), LX_OK);
    assert_string_equal(r.url, "https://api.anthropic.test/v1/messages/count_tokens");
    lx_http_request_free(&r);
    json_t *n = lx_provider_anthropic.count_tokens_response(&conf, &chat, "{\"input_tokens\":42}", 19, &e);
    assert_int_equal(json_integer_value(json_object_get(n, "input_tokens")), 42);
    json_decref(n);
    assert_null(lx_provider_anthropic.count_tokens_response(&conf, &chat, "{}", 2, &e));
    assert_int_equal(e.status, 502);
    lx_error_clear(&e);
    /* a pivot without a native request has nothing to count with */
    chat.native = NULL;
    assert_int_equal(lx_provider_anthropic.count_tokens_request(&conf, &chat, &r, &e), LX_ERR);
    assert_int_equal(e.status, 400);
    lx_http_request_free(&r);
    lx_error_clear(&e);
    json_decref(pivot);
    json_decref(native);
}

static void test_error_fixtures(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("anthropic_error_429_rate_limit.json", &len);
    struct lx_error e = {0};
    lx_provider_anthropic.error_response(&conf, 429, body, len, &e);
    assert_int_equal(e.status, 429);
    assert_string_equal(e.type, "rate_limit_error");
    assert_string_equal(e.code, "rate_limit_error");
    assert_non_null(strstr(e.message, "rate limit"));
    free(body);
    body = read_fixture("anthropic_error_400_invalid_request.json", &len);
    lx_provider_anthropic.error_response(&conf, 400, body, len, &e);
    assert_string_equal(e.type, "invalid_request_error");
    assert_non_null(strstr(e.message, "tool_result"));
    free(body);
    lx_error_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_translation),
        cmocka_unit_test(test_history_tools_without_tools), cmocka_unit_test(test_request_defaults_and_refusals),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_request_mappings),
        cmocka_unit_test(test_nonstream_tool_use_fixture),
        cmocka_unit_test(test_stream_text_fixture),
        cmocka_unit_test(test_stream_tool_use_fixture),
        cmocka_unit_test(test_stream_error_fixture),
        cmocka_unit_test(test_stream_ended_at_message_stop),
        cmocka_unit_test(test_stream_thinking_and_stop_sequence),
        cmocka_unit_test(test_thinking_answer_and_pdf_part),
        cmocka_unit_test(test_native_relay),
        cmocka_unit_test(test_error_fixtures),
    };
    return cmocka_run_group_tests_name("anthropic", tests, NULL, NULL);
}
