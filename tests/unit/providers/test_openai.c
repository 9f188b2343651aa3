/* Unit tests for providers/openai.c on recorded OpenAI bodies and streams from ../shared/fixtures. */
#include "../unit.h"
#include "../../../providers/provider.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/common.h"

static struct lx_provider_conf conf = {
    .name = "oai", .type = &lx_provider_openai, .base_url = "http://up.example/v1", .api_key = "sk-unit",
};

struct chunks {
    json_t *list;
};

static void collect(void *ctx, json_t *chunk)
{
    struct chunks *c = ctx;
    json_array_append(c->list, chunk);
}

static void test_request(void **state)
{
    (void)state;
    char *extra[] = {"OpenAI-Organization: org-1"};
    conf.headers = extra;
    conf.n_headers = 1;
    struct lx_chat chat = {.body = json_pack("{s:s,s:[{s:s,s:s}],s:b}", "model", "oai/gpt-x", "messages", "role",
                                             "user", "content", "hi", "stream", 1),
                           .model = "gpt-x", .stream = true};
    struct lx_http_request r = {0};
    struct lx_error e = {0};
    assert_int_equal(lx_provider_openai.chat_request(&conf, &chat, &r, &e), LX_OK);
    assert_string_equal(r.method, "POST");
    assert_string_equal(r.url, "http://up.example/v1/chat/completions");
    json_t *sent = json_loadb(r.body, r.body_len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(sent, "model")), "gpt-x");
    assert_true(json_is_true(json_object_get(sent, "stream")));
    /* The client's body is not modified. */
    assert_string_equal(json_string_value(json_object_get(chat.body, "model")), "oai/gpt-x");
    bool auth = false, org = false, accept = false;
    for (size_t i = 0; i < r.n_headers; i++) {
        auth |= strcmp(r.headers[i], "Authorization: Bearer sk-unit") == 0;
        org |= strcmp(r.headers[i], "OpenAI-Organization: org-1") == 0;
        accept |= strcmp(r.headers[i], "Accept: text/event-stream") == 0;
    }
    assert_true(auth && org && accept);
    json_decref(sent);
    json_decref(chat.body);
    lx_http_request_free(&r);
    conf.headers = NULL;
    conf.n_headers = 0;
}

static void test_nonstream_fixture(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("openai_chat_nonstream_tool_call.json", &len);
    struct lx_error e = {0};
    struct lx_chat chat = {0};
    json_t *c = lx_provider_openai.chat_response(&conf, &chat, body, len, &e);
    assert_non_null(c);
    json_t *tc = json_array_get(json_object_get(json_object_get(json_array_get(json_object_get(c, "choices"), 0),
                                                                "message"), "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(tc, "function"), "name")),
                        "GetWeatherArgs");
    json_decref(c);
    free(body);
}

static void test_nonstream_not_protocol(void **state)
{
    (void)state;
    struct lx_error e = {0};
    struct lx_chat chat = {0};
    assert_null(lx_provider_openai.chat_response(&conf, &chat, "<html>hi</html>", 15, &e));
    assert_int_equal(e.status, 502);
    assert_string_equal(e.code, "bad_upstream_response");
    lx_error_clear(&e);
    assert_null(lx_provider_openai.chat_response(&conf, &chat, "{\"x\":1}", 7, &e));
    assert_int_equal(e.status, 502);
    lx_error_clear(&e);
}

/* Decode a fixture fed in pieces of `step` bytes; return the chunks. */
static json_t *decode(const char *body, size_t len, size_t step, int *rc_finish, struct lx_error *e)
{
    struct lx_chat chat = {.stream = true};
    void *st = lx_provider_openai.stream_open(&conf, &chat);
    struct chunks c = {.list = json_array()};
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        if (lx_provider_openai.stream_feed(st, body + off, n, collect, &c, e) != LX_OK) {
            *rc_finish = LX_ERR;
            lx_provider_openai.stream_close(st);
            return c.list;
        }
    }
    *rc_finish = lx_provider_openai.stream_finish(st, collect, &c, e);
    lx_provider_openai.stream_close(st);
    return c.list;
}

static void test_stream_fixtures_all_splits(void **state)
{
    (void)state;
    const char *names[] = {"openai_chat_stream_text_with_usage.sse", "openai_chat_stream_tool_call.sse",
                           "openai_chat_stream_refusal.sse", "openai_chat_stream_logprobs.sse",
                           "openai_chat_stream_finish_length.sse"};
    for (size_t f = 0; f < LX_ARRAY_LEN(names); f++) {
        size_t len;
        char *body = read_fixture(names[f], &len);
        int rc;
        struct lx_error e = {0};
        json_t *whole = decode(body, len, len, &rc, &e);
        assert_int_equal(rc, LX_OK);
        /* Every data: line but [DONE] is one chunk. */
        size_t events = 0;
        for (const char *p = body; (p = strstr(p, "data: ")); p++)
            events++;
        assert_int_equal(json_array_size(whole), events - 1);
        for (size_t step = 1; step < 64; step += 7) {
            json_t *split = decode(body, len, step, &rc, &e);
            assert_int_equal(rc, LX_OK);
            assert_true(json_equal(whole, split));
            json_decref(split);
        }
        json_decref(whole);
        free(body);
    }
}

static void test_stream_usage_passes_through(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("openai_chat_stream_text_with_usage.sse", &len);
    int rc;
    struct lx_error e = {0};
    json_t *chunks = decode(body, len, 100, &rc, &e);
    json_t *last = json_array_get(chunks, json_array_size(chunks) - 1);
    assert_true(json_is_object(json_object_get(last, "usage")));
    assert_true(json_integer_value(json_object_get(json_object_get(last, "usage"), "total_tokens")) > 0);
    json_decref(chunks);
    free(body);
}

static void test_stream_truncated(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("openai_chat_stream_tool_call.sse", &len);
    int rc;
    struct lx_error e = {0};
    json_t *chunks = decode(body, len / 2, 50, &rc, &e);
    assert_int_equal(rc, LX_ERR);
    assert_int_equal(e.status, 502);
    assert_non_null(strstr(e.message, "before it was complete"));
    json_decref(chunks);
    lx_error_clear(&e);
    free(body);
}

static void test_stream_not_sse(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    const char *html = "<html><body>502 Bad Gateway</body></html>";
    json_t *chunks = decode(html, strlen(html), 7, &rc, &e);
    assert_int_equal(rc, LX_ERR);
    assert_int_equal(json_array_size(chunks), 0);
    assert_non_null(strstr(e.message, "not an event stream"));
    json_decref(chunks);
    lx_error_clear(&e);
    const char *bad = "data: {not json\n\n";
    chunks = decode(bad, strlen(bad), 100, &rc, &e);
    assert_int_equal(rc, LX_ERR);
    assert_int_equal(e.status, 502);
    json_decref(chunks);
    lx_error_clear(&e);
}

static void test_stream_error_event(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    const char *s = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
                    "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\",\"code\":\"x\"}}\n\n";
    json_t *chunks = decode(s, strlen(s), 1000, &rc, &e);
    assert_int_equal(rc, LX_ERR);
    assert_int_equal(json_array_size(chunks), 1);
    assert_string_equal(e.message, "overloaded");
    assert_string_equal(e.type, "server_error");
    assert_int_equal(e.status, 500);
    json_decref(chunks);
    lx_error_clear(&e);
}

static void test_stream_error_event_without_terminator(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    const char *s = "data: {\"error\":{\"message\":\"quota exceeded\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}";
    json_t *chunks = decode(s, strlen(s), 1000, &rc, &e);
    assert_int_equal(rc, LX_ERR);
    assert_string_equal(e.message, "quota exceeded");
    assert_string_equal(e.code, "insufficient_quota");
    assert_int_equal(e.status, 429);
    json_decref(chunks);
    lx_error_clear(&e);
}

static void test_stream_without_done_but_finished(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    const char *s = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    json_t *chunks = decode(s, strlen(s), 1000, &rc, &e);
    assert_int_equal(rc, LX_OK);
    json_decref(chunks);
}

/* The stream's own end: stream_ended turns true with the last byte of the [DONE] event, not before, and
 * bytes after it change nothing (the call ends there even if the body stays open). */
static void test_stream_ended_at_done(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("openai_chat_stream_text_with_usage.sse", &len);
    struct lx_chat chat = {.stream = true};
    void *st = lx_provider_openai.stream_open(&conf, &chat);
    struct chunks c = {.list = json_array()};
    struct lx_error e = {0};
    for (size_t i = 0; i < len; i++) {
        assert_false(lx_provider_openai.stream_ended(st));
        assert_int_equal(lx_provider_openai.stream_feed(st, body + i, 1, collect, &c, &e), LX_OK);
    }
    assert_true(lx_provider_openai.stream_ended(st));
    size_t n = json_array_size(c.list);
    assert_int_equal(lx_provider_openai.stream_feed(st, "data: {\"junk\":1}\n\n", 19, collect, &c, &e), LX_OK);
    assert_int_equal(lx_provider_openai.stream_finish(st, collect, &c, &e), LX_OK);
    assert_int_equal(json_array_size(c.list), n);
    assert_false(lx_error_isset(&e));
    lx_provider_openai.stream_close(st);
    json_decref(c.list);
    free(body);
}

/* A 200 whose body is an OpenAI error object is that error, with the status its code or type maps to. */
static void test_nonstream_error_object(void **state)
{
    (void)state;
    const struct {
        const char *fixture;
        int status;
        const char *code;
    } cases[] = {
        {"openai_error_429_rate_limit.json", 429, "rate_limit_exceeded"},
        {"openai_error_401_invalid_api_key.json", 401, "invalid_api_key"},
        {"openai_error_400_context_length.json", 400, "context_length_exceeded"},
    };
    struct lx_chat chat = {0};
    for (size_t i = 0; i < LX_ARRAY_LEN(cases); i++) {
        size_t len;
        char *body = read_fixture(cases[i].fixture, &len);
        struct lx_error e = {0};
        assert_null(lx_provider_openai.chat_response(&conf, &chat, body, len, &e));
        assert_int_equal(e.status, cases[i].status);
        assert_string_equal(e.code, cases[i].code);
        assert_null(strstr(e.message, "oai")); /* the upstream's words, not "Provider 'oai' answered..." */
        lx_error_clear(&e);
        assert_null(lx_provider_openai.embeddings_response(&conf, &chat, body, len, &e));
        assert_int_equal(e.status, cases[i].status);
        lx_error_clear(&e);
        free(body);
    }
    const char *quota = "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
                        "\"param\":null,\"code\":\"insufficient_quota\"}}";
    struct lx_error e = {0};
    assert_null(lx_provider_openai.chat_response(&conf, &chat, quota, strlen(quota), &e));
    assert_int_equal(e.status, 429);
    assert_string_equal(e.type, "insufficient_quota");
    assert_string_equal(e.message, "You exceeded your current quota");
    lx_error_clear(&e);
    const char *text = "{\"error\":\"model is loading\"}";
    assert_null(lx_provider_openai.chat_response(&conf, &chat, text, strlen(text), &e));
    assert_int_equal(e.status, 502);
    assert_string_equal(e.message, "model is loading");
    lx_error_clear(&e);
}

/* "error": null in an ordinary chunk is not an error (only an object or a string is). */
static void test_stream_error_null_is_a_chunk(void **state)
{
    (void)state;
    int rc;
    struct lx_error e = {0};
    const char *s = "data: {\"error\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\n"
                    "data: [DONE]\n\n";
    json_t *chunks = decode(s, strlen(s), 1000, &rc, &e);
    assert_int_equal(rc, LX_OK);
    assert_int_equal(json_array_size(chunks), 1);
    assert_null(json_object_get(json_array_get(chunks, 0), "error"));
    json_decref(chunks);
}

static void test_models(void **state)
{
    (void)state;
    struct lx_http_request r = {0};
    assert_int_equal(lx_provider_openai.models_request(&conf, &r), LX_OK);
    assert_string_equal(r.url, "http://up.example/v1/models");
    lx_http_request_free(&r);
    json_t *ids = json_array();
    const char *b = "{\"object\":\"list\",\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"x\":1}]}";
    assert_int_equal(lx_provider_openai.models_response(&conf, b, strlen(b), ids), LX_OK);
    assert_int_equal(json_array_size(ids), 2);
    assert_int_equal(lx_provider_openai.models_response(&conf, "nope", 4, ids), LX_ERR);
    json_decref(ids);
}

static void test_error_response_fixture(void **state)
{
    (void)state;
    size_t len;
    char *body = read_fixture("openai_error_401_invalid_api_key.json", &len);
    struct lx_error e = {0};
    lx_provider_openai.error_response(&conf, 401, body, len, &e);
    assert_int_equal(e.status, 401);
    assert_string_equal(e.code, "invalid_api_key");
    lx_error_clear(&e);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_nonstream_fixture),
        cmocka_unit_test(test_nonstream_not_protocol),
        cmocka_unit_test(test_stream_fixtures_all_splits),
        cmocka_unit_test(test_stream_usage_passes_through),
        cmocka_unit_test(test_stream_truncated),
        cmocka_unit_test(test_stream_not_sse),
        cmocka_unit_test(test_stream_error_event),
        cmocka_unit_test(test_stream_without_done_but_finished),
        cmocka_unit_test(test_stream_error_event_without_terminator),
        cmocka_unit_test(test_stream_ended_at_done),
        cmocka_unit_test(test_nonstream_error_object),
        cmocka_unit_test(test_stream_error_null_is_a_chunk),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_error_response_fixture),
    };
    return cmocka_run_group_tests_name("openai", tests, NULL, NULL);
}
