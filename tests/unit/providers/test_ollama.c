/* Unit tests for providers/ollama.c on recorded Ollama bodies and NDJSON streams. */
#include "../unit.h"
#include "../../../providers/provider.h"
#include "../../../src/core/common.h"

static struct lx_provider_conf conf = {.name = "ol", .type = &lx_provider_ollama, .base_url = "http://127.0.0.1:11434"};

static void test_request(void **state)
{
    (void)state;
    json_t *body = json_loads(
        "{\"model\":\"ol/llama3.2\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is this\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,QUJD\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\","
        "\"content\":\"42\"}],\"max_tokens\":50,\"temperature\":0.1,\"stop\":[\"a\"],\"seed\":7,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"auto\",\"user\":\"u\","
        "\"response_format\":{\"type\":\"json_object\"}}", 0, NULL);
    struct lx_chat chat = {.body = body, .model = "llama3.2", .stream = false};
    struct lx_http_request r = {0};
    struct lx_error e = {0};
    assert_int_equal(lx_provider_ollama.chat_request(&conf, &chat, &r, &e), LX_OK);
    assert_string_equal(r.url, "http://127.0.0.1:11434/api/chat");
    json_t *out = json_loadb(r.body, r.body_len, 0, NULL);
    assert_true(json_is_false(json_object_get(out, "stream"))); /* Ollama's default is true: always explicit */
    assert_string_equal(json_string_value(json_object_get(out, "format")), "json");
    json_t *opts = json_object_get(out, "options");
    assert_int_equal(json_integer_value(json_object_get(opts, "num_predict")), 50);
    assert_int_equal(json_integer_value(json_object_get(opts, "seed")), 7);
    assert_string_equal(json_string_value(json_array_get(json_object_get(opts, "stop"), 0)), "a");
    json_t *msgs = json_object_get(out, "messages");
    json_t *u = json_array_get(msgs, 1);
    assert_string_equal(json_string_value(json_object_get(u, "content")), "what is this");
    assert_string_equal(json_string_value(json_array_get(json_object_get(u, "images"), 0)), "QUJD");
    json_t *tc = json_array_get(json_object_get(json_array_get(msgs, 2), "tool_calls"), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(tc, "function"), "arguments"), "x")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 3), "role")), "tool");
    assert_string_equal(r.dropped, "tool_choice,user");
    json_decref(out);
    lx_http_request_free(&r);
    json_decref(body);

    body = json_loads("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                      "\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}", 0, NULL);
    chat.body = body;
    assert_int_equal(lx_provider_ollama.chat_request(&conf, &chat, &r, &e), LX_ERR);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "messages[0].content[0]");
    lx_http_request_free(&r);
    lx_error_clear(&e);
    json_decref(body);
}

static void refused(const char *body, const char *param)
{
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    struct lx_chat chat = {.body = b, .model = "m"};
    struct lx_http_request r = {0};
    struct lx_error e = {0};
    assert_int_equal(lx_provider_ollama.chat_request(&conf, &chat, &r, &e), LX_ERR);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, param);
    lx_http_request_free(&r);
    lx_error_clear(&e);
    json_decref(b);
}

static void test_request_refusals_and_format(void **state)
{
    (void)state;
    refused("{\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "n");
    refused("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}", "messages[0].content[0]");
    refused("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"x\"}}]}]}",
            "messages[0].tool_calls[0].function.arguments");
    json_t *b = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                           "{\"type\":\"text\",\"text\":\"b\"}]}],\"stop\":\"s\",\"response_format\":{\"type\":"
                           "\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"object\"}}}}", 0, NULL);
    struct lx_chat chat = {.body = b, .model = "m", .stream = true};
    struct lx_http_request r = {0};
    struct lx_error e = {0};
    assert_int_equal(lx_provider_ollama.chat_request(&conf, &chat, &r, &e), LX_OK);
    json_t *out = json_loadb(r.body, r.body_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(out, "messages"), 0), "content")), "a\nb");
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "format"), "type")), "object");
    assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(out, "options"), "stop"), 0)), "s");
    assert_true(json_is_true(json_object_get(out, "stream")));
    json_decref(out);
    lx_http_request_free(&r);
    json_decref(b);
    /* embeddings request */
    b = json_pack("{s:s,s:[s,s]}", "model", "ol/e", "input", "a", "b");
    struct lx_chat emb = {.kind = LX_CALL_EMBEDDINGS, .body = b, .model = "e"};
    assert_int_equal(lx_provider_ollama.embeddings_request(&conf, &emb, &r, &e), LX_OK);
    assert_string_equal(r.url, "http://127.0.0.1:11434/api/embed");
    out = json_loadb(r.body, r.body_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(out, "model")), "e");
    assert_int_equal(json_array_size(json_object_get(out, "input")), 2);
    json_decref(out);
    lx_http_request_free(&r);
    json_decref(b);
    assert_null(lx_provider_ollama.embeddings_response(&conf, &emb, "{}", 2, &e));
    assert_int_equal(e.status, 502);
    lx_error_clear(&e);
}

static void test_nonstream_fixtures(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("ollama_api_chat_nonstream.docs.json", &len);
    struct lx_error e = {0};
    struct lx_chat chat = {.model = "llama3.2", .req_id = 9};
    json_t *c = lx_provider_ollama.chat_response(&conf, &chat, body, len, &e);
    assert_non_null(c);
    json_t *choice = json_array_get(json_object_get(c, "choices"), 0);
    assert_true(json_string_length(json_object_get(json_object_get(choice, "message"), "content")) > 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "stop");
    assert_true(json_integer_value(json_object_get(json_object_get(c, "usage"), "total_tokens")) > 0);
    assert_non_null(json_string_value(json_object_get(c, "id")));
    json_decref(c);
    free(body);

    body = read_fixture("ollama_api_chat_nonstream_tool_calls.docs.json", &len);
    c = lx_provider_ollama.chat_response(&conf, &chat, body, len, &e);
    choice = json_array_get(json_object_get(c, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "tool_calls");
    json_t *call = json_array_get(json_object_get(json_object_get(choice, "message"), "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(call, "id")), "call_9_0");
    json_t *fn = json_object_get(call, "function");
    assert_string_equal(json_string_value(json_object_get(fn, "name")), "get_weather");
    assert_string_equal(json_string_value(json_object_get(fn, "arguments")), "{\"city\":\"Tokyo\"}");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "usage"), "prompt_tokens")), 169);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(c, "usage"), "completion_tokens")), 18);
    json_decref(c);
    free(body);
    assert_null(lx_provider_ollama.chat_response(&conf, &chat, "<html>", 6, &e));
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
    struct lx_chat chat = {.stream = true, .include_usage = usage, .model = "m", .req_id = 3};
    void *st = lx_provider_ollama.stream_open(&conf, &chat);
    json_t *chunks = json_array();
    *rc = LX_OK;
    for (size_t off = 0; off < len && *rc == LX_OK; off += step)
        *rc = lx_provider_ollama.stream_feed(st, body + off, len - off < step ? len - off : step, collect, chunks, e);
    if (*rc == LX_OK)
        *rc = lx_provider_ollama.stream_finish(st, collect, chunks, e);
    lx_provider_ollama.stream_close(st);
    free(body);
    return chunks;
}

static void test_stream_fixture(void **state)
{
    (void)state;
    size_t len;
    char *raw = read_fixture("ollama_api_chat_stream.docs.ndjson", &len);
    /* the expected text: every line's message.content joined */
    struct lx_buf want = {0};
    for (char *line = strtok(raw, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        lx_buf_puts(&want, json_string_value(json_object_get(json_object_get(o, "message"), "content")));
        json_decref(o);
    }
    free(raw);
    for (size_t step = 1; step < 300; step += 41) {
        int rc;
        struct lx_error e = {0};
        json_t *chunks = decode("ollama_api_chat_stream.docs.ndjson", step, true, &rc, &e);
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
        }
        assert_string_equal(text.data, want.data);
        assert_string_equal(finish, "stop");
        json_t *last = json_array_get(chunks, json_array_size(chunks) - 1);
        assert_true(json_integer_value(json_object_get(json_object_get(last, "usage"), "total_tokens")) > 0);
        lx_buf_free(&text);
        json_decref(chunks);
    }
    lx_buf_free(&want);
}

/* done:true ends the stream: stream_ended turns true with that line's newline, not before. */
static void test_stream_ended_at_done(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("ollama_api_chat_stream.docs.ndjson", &len);
    struct lx_chat chat = {.stream = true, .model = "m"};
    void *st = lx_provider_ollama.stream_open(&conf, &chat);
    json_t *chunks = json_array();
    struct lx_error e = {0};
    for (size_t i = 0; i < len; i++) {
        assert_false(lx_provider_ollama.stream_ended(st));
        assert_int_equal(lx_provider_ollama.stream_feed(st, body + i, 1, collect, chunks, &e), LX_OK);
    }
    assert_true(lx_provider_ollama.stream_ended(st));
    assert_int_equal(lx_provider_ollama.stream_finish(st, collect, chunks, &e), LX_OK);
    lx_provider_ollama.stream_close(st);
    json_decref(chunks);
    free(body);
}

static void test_stream_tool_calls_fixture(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    json_t *chunks = decode("ollama_api_chat_stream_tool_calls.docs.ndjson", 17, false, &rc, &e);
    assert_int_equal(rc, LX_OK);
    json_t *call = NULL;
    const char *finish = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(chunks, i, c) {
        json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
        json_t *tc = json_array_get(json_object_get(json_object_get(ch, "delta"), "tool_calls"), 0);
        if (tc)
            call = tc;
        if (json_is_string(json_object_get(ch, "finish_reason")))
            finish = json_string_value(json_object_get(ch, "finish_reason"));
    }
    assert_non_null(call);
    assert_int_equal(json_integer_value(json_object_get(call, "index")), 0);
    assert_string_equal(json_string_value(json_object_get(call, "id")), "call_3_0");
    assert_string_equal(json_string_value(json_object_get(json_object_get(call, "function"), "arguments")), "{\"city\":\"Tokyo\"}");
    assert_string_equal(finish, "tool_calls");
    json_decref(chunks);
}

static void test_stream_midstream_error_fixture(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    json_t *chunks = decode("ollama_error_midstream.docs.ndjson", 50, false, &rc, &e);
    assert_int_equal(rc, LX_ERR);
    assert_true(json_array_size(chunks) > 1); /* the text before the error was relayed */
    assert_non_null(strstr(e.message, "error was encountered"));
    json_decref(chunks);
    lx_error_clear(&e);
}

static void test_error_and_models_and_embed(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("ollama_error.docs.json", &len);
    struct lx_error e = {0};
    lx_provider_ollama.error_response(&conf, 404, body, len, &e);
    assert_int_equal(e.status, 404);
    assert_true(strlen(e.message) > 0 && !strstr(e.message, "upstream answered"));
    lx_error_clear(&e);
    free(body);
    body = read_fixture("ollama_api_tags.docs.json", &len);
    json_t *ids = json_array();
    assert_int_equal(lx_provider_ollama.models_response(&conf, body, len, ids), LX_OK);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), "deepseek-r1:latest");
    json_decref(ids);
    free(body);
    body = read_fixture("ollama_api_embed_multi.docs.json", &len);
    struct lx_chat req = {.model = "all-minilm"};
    json_t *out = lx_provider_ollama.embeddings_response(&conf, &req, body, len, &e);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "object")), "list");
    json_t *data = json_object_get(out, "data");
    assert_true(json_array_size(data) >= 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 1), "index")), 1);
    assert_true(json_array_size(json_object_get(json_array_get(data, 0), "embedding")) > 0);
    json_decref(out);
    /* encoding_format base64: little-endian float32 */
    req.body = json_pack("{s:s}", "encoding_format", "base64");
    const char *one = "{\"embeddings\":[[1.0,-2.0]]}";
    out = lx_provider_ollama.embeddings_response(&conf, &req, one, strlen(one), &e);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(out, "data"), 0), "embedding")),
                        "AACAPwAAAMA=");
    json_decref(out);
    json_decref(req.body);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_request_refusals_and_format),
        cmocka_unit_test(test_nonstream_fixtures),
        cmocka_unit_test(test_stream_fixture),
        cmocka_unit_test(test_stream_ended_at_done),
        cmocka_unit_test(test_stream_tool_calls_fixture),
        cmocka_unit_test(test_stream_midstream_error_fixture),
        cmocka_unit_test(test_error_and_models_and_embed),
    };
    return cmocka_run_group_tests_name("ollama", tests, NULL, NULL);
}
