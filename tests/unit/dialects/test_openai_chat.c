/* Unit tests for dialects/openai_chat.c: the request validation (every 400 names its field), what parse
 * learns for the answer, the SSE framing of chunks, [DONE] and the error event, and the error body. */
#include "../unit.h"
#include "../../../dialects/dialect.h"
#include "../../../src/core/common.h"
#include "../../../src/core/passthru.h"
#include "../../../src/core/sse.h"

/* The dialect's parse, as the chat endpoint runs it. */
static json_t *lx_chat_parse(const char *body, size_t len, struct lx_error *e)
{
    struct lx_dialect_req rq = {0};
    json_t *j = lx_dialect_openai_chat.parse(body, len, &rq, e);
    lx_dialect_req_clear(&rq);
    return j;
}

/* parse_bytes leaves every body parse would refuse to parse (LX_AGAIN), so that parse names the error. */
static void expect_400(const char *body, const char *param, const char *code)
{
    struct lx_dialect_req brq = {0};
    struct lx_chat_bytes bytes;
    assert_int_equal(lx_dialect_openai_chat.parse_bytes(body, strlen(body), &brq, &bytes), LX_AGAIN);
    assert_null(brq.model);
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

static void test_request_facts(void **state)
{
    (void)state;
    const struct lx_dialect *d = &lx_dialect_openai_chat;
    struct lx_error e = {0};
    struct lx_dialect_req rq = {0};
    const char *b = "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,"
                    "\"stream_options\":{\"include_usage\":true},\"temperature\":0.5}";
    json_t *j = d->parse(b, strlen(b), &rq, &e);
    assert_non_null(j);
    assert_string_equal(rq.model, "m/x");
    assert_true(rq.stream);
    assert_true(rq.include_usage);
    /* The pivot is the client's body itself. */
    json_t *orig = json_loads(b, 0, NULL);
    assert_true(json_equal(j, orig));
    json_decref(orig);
    json_decref(j);
    lx_dialect_req_clear(&rq);
    assert_null(rq.model);
    b = "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\"}]}";
    j = d->parse(b, strlen(b), &rq, &e);
    assert_false(rq.stream);
    assert_false(rq.include_usage);
    json_decref(j);
    lx_dialect_req_clear(&rq);
}

/* parse_bytes learns what parse learns from a valid body, and leaves to parse what only the tree path
 * handles (tools, a member given twice, a model with an escape). */
static void test_parse_bytes(void **state)
{
    (void)state;
    const struct lx_dialect *d = &lx_dialect_openai_chat;
    const char *valid[] = {
        "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"temperature\":0.5}",
        " {\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"x\"}]}],\"model\":\"m/y\",\"stream\":null,\"stream_options\":null} ",
        "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\"}],\"stream\":true,\"stream_options\":{}}",
        "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\"}],\"stream\":false}",
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(valid); i++) {
        struct lx_dialect_req a = {0}, b = {0};
        struct lx_error e = {0};
        struct lx_chat_bytes bytes, want;
        assert_int_equal(d->parse_bytes(valid[i], strlen(valid[i]), &a, &bytes), LX_OK);
        /* The pass-through facts are the ones lx_passthru_request finds on its own scan. */
        assert_int_equal(lx_passthru_request(valid[i], strlen(valid[i]), &want), LX_OK);
        assert_ptr_equal(bytes.data, want.data);
        assert_int_equal(bytes.len, want.len);
        assert_int_equal(bytes.model_at, want.model_at);
        assert_int_equal(bytes.model_len, want.model_len);
        assert_int_equal(bytes.usage_asked, want.usage_asked);
        assert_int_equal(bytes.stream_options, want.stream_options);
        json_t *j = d->parse(valid[i], strlen(valid[i]), &b, &e);
        assert_non_null(j);
        assert_string_equal(a.model, b.model);
        assert_int_equal(a.stream, b.stream);
        assert_int_equal(a.include_usage, b.include_usage);
        json_decref(j);
        lx_dialect_req_clear(&a);
        lx_dialect_req_clear(&b);
    }
    const char *tree_only[] = {
        "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\"}],\"tools\":[]}",
        "{\"model\":\"m/x\",\"model\":\"m/y\",\"messages\":[{\"role\":\"user\"}]}",
        "{\"model\":\"m\\/x\",\"messages\":[{\"role\":\"user\"}]}",
        "{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\",\"role\":\"tool\"}]}",
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(tree_only); i++) {
        struct lx_dialect_req a = {0};
        struct lx_chat_bytes bytes;
        assert_int_equal(d->parse_bytes(tree_only[i], strlen(tree_only[i]), &a, &bytes), LX_AGAIN);
        assert_null(a.model);
    }
}

/* Each decoded event is kept as text. */
static int collect_cb(void *ctx, const char *event, const char *data, size_t len)
{
    (void)event;
    json_array_append_new(ctx, json_stringn(data, len));
    return LX_OK;
}

/* A recorded OpenAI stream, decoded into chunks and written again by the dialect, decodes to the same
 * chunks, then [DONE]; the answer and the error go out as they are, in OpenAI's shape. */
static void test_stream_framing(void **state)
{
    (void)state;
    const struct lx_dialect *d = &lx_dialect_openai_chat;
    size_t len;
    char *rec = read_fixture("openai_chat_stream_text_with_usage.sse", &len);
    json_t *in = json_array(), *out = json_array();
    struct lx_sse_decoder dec = {0};
    assert_int_equal(lx_sse_feed(&dec, rec, len, collect_cb, in, NULL), LX_OK);
    assert_int_equal(lx_sse_flush(&dec, collect_cb, in, NULL), LX_OK);
    lx_sse_decoder_free(&dec);
    assert_true(json_array_size(in) > 2);
    assert_string_equal(json_string_value(json_array_get(in, json_array_size(in) - 1)), "[DONE]");

    struct lx_dialect_req rq = {.stream = true};
    void *st = d->stream_open(&rq);
    struct lx_buf wire = {0};
    for (size_t i = 0; i + 1 < json_array_size(in); i++) {
        json_t *chunk = json_loads(json_string_value(json_array_get(in, i)), 0, NULL);
        assert_non_null(chunk);
        d->stream_chunk(st, chunk, &wire);
        json_decref(chunk);
    }
    d->stream_end(st, &wire);
    d->stream_close(st);
    struct lx_sse_decoder dec2 = {0};
    assert_int_equal(lx_sse_feed(&dec2, wire.data, wire.len, collect_cb, out, NULL), LX_OK);
    assert_false(lx_sse_pending(&dec2)); /* every event is whole */
    lx_sse_decoder_free(&dec2);
    assert_int_equal(json_array_size(out), json_array_size(in));
    for (size_t i = 0; i + 1 < json_array_size(in); i++) {
        json_t *a = json_loads(json_string_value(json_array_get(in, i)), 0, NULL);
        json_t *b = json_loads(json_string_value(json_array_get(out, i)), 0, NULL);
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }
    assert_string_equal(json_string_value(json_array_get(out, json_array_size(out) - 1)), "[DONE]");
    assert_non_null(strstr(wire.data, "\n\ndata: [DONE]\n\n"));
    lx_buf_free(&wire);
    json_decref(in);
    json_decref(out);
    free(rec);
}

static void test_errors_and_completion(void **state)
{
    (void)state;
    const struct lx_dialect *d = &lx_dialect_openai_chat;
    struct lx_error e = {0};
    lx_error_set(&e, 429, NULL, NULL, "rate_limit_exceeded", "slow down");
    int status = 0;
    json_t *body = d->error_body(&e, &status);
    assert_int_equal(status, 429);
    json_t *want = lx_error_json(&e);
    assert_true(json_equal(body, want));
    json_decref(body);

    struct lx_buf wire = {0};
    d->stream_error(NULL, &e, &wire);
    char *text = json_dumps(want, JSON_COMPACT);
    char *expect = lx_sprintf("data: %s\n\n", text);
    assert_string_equal(wire.data, expect);
    free(expect);
    free(text);
    json_decref(want);
    lx_buf_free(&wire);
    lx_error_clear(&e);

    size_t len;
    char *rec = read_fixture("openai_chat_nonstream_tool_call.json", &len);
    json_t *c = json_loadb(rec, len, 0, NULL);
    struct lx_dialect_req rq = {0};
    json_t *out = d->completion(&rq, c);
    assert_true(json_equal(out, c));
    json_decref(out);
    json_decref(c);
    free(rec);
}

/* Every registered dialect fills every slot the API layer calls without checking. */
static void test_registry(void **state)
{
    (void)state;
    assert_ptr_equal(lx_dialect_find("openai_chat"), &lx_dialect_openai_chat);
    assert_null(lx_dialect_find("nosuch"));
    size_t n = 0;
    for (const struct lx_dialect *d; (d = lx_dialect_at(n)); n++) {
        assert_non_null(d->name);
        assert_non_null(d->parse);
        assert_non_null(d->completion);
        assert_non_null(d->error_body);
        assert_non_null(d->stream_content_type);
        assert_non_null(d->stream_open);
        assert_non_null(d->stream_chunk);
        assert_non_null(d->stream_end);
        assert_non_null(d->stream_error);
        assert_non_null(d->stream_close);
        assert_true(!d->stream_keepalive || d->keepalive_ms > 0);
        assert_ptr_equal(lx_dialect_find(d->name), d);
    }
    assert_true(n >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),          cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_request_facts),  cmocka_unit_test(test_parse_bytes), cmocka_unit_test(test_stream_framing),
        cmocka_unit_test(test_errors_and_completion), cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests_name("openai_chat", tests, NULL, NULL);
}
