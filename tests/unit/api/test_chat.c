/* Unit tests for the chat endpoint (src/api/chat.c, with relay.c and reply.c beneath it), driven through a
 * fake transport on a real loop with the mock provider: no socket, and linked without libmicrohttpd,
 * which shows the handlers do not need the MHD glue. What a client would get: the answer, the stream,
 * the errors in the dialect's shape, and what a client leaving or the request's time limit does. */
#include "../unit.h"
#include "../fake_transport.h"
#include "../../../src/api/chat.h"
#include "../../../src/config.h"
#include "../../../src/core/conf.h"
#include "../../../src/core/sse.h"
#include "../../../src/engine/capacity.h"
#include "../../../src/engine/conf.h"
#include "../../../src/server/auth.h"

static struct lx_config *cfg;

static int setup(void **state)
{
    (void)state;
    char err[512];
    setenv("LX_TEST_CHAT_KEY", "sk-chat-test-key", 1);
    const char *json = "{\"limits\":{\"max_request_ms\":0},\"providers\":{\"m\":{\"type\":\"mock\"},"
                       "\"slow\":{\"type\":\"mock\",\"chunk_delay_ms\":20}},"
                       "\"auth\":{\"keys\":[{\"name\":\"app\",\"key\":\"${LX_TEST_CHAT_KEY}\",\"models\":[\"m/*\",\"slow/*\",\"nobody/*\"]}]}}";
    if (lx_loop_init() != LX_OK)
        return -1;
    cfg = lx_config_load_buffer(json, strlen(json), err, sizeof err);
    if (!cfg)
        fail_msg("config: %s", err);
    lx_engine_conf_apply(cfg->engine);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lx_config_unref(cfg);
    lx_capacity_shutdown();
    lx_loop_free();
    return 0;
}

static const char *const with_key[] = {"Authorization", "Bearer sk-chat-test-key", NULL};

static void chat_admitted(struct lx_req *req, const struct lx_error *refusal)
{
    assert_null(refusal);
    lx_chat_handle(req, &lx_dialect_openai_chat);
}

static void openai_chat(struct lx_req *req)
{
    struct lx_error err = {0};
    /* as the route table does: admit the key first (decided at once: no Redis here) */
    int rc = lx_auth_admit(req, &err, chat_admitted);
    assert_int_not_equal(rc, LX_AGAIN);
    if (rc != LX_OK) {
        lx_req_respond_error(req, &err);
        lx_error_clear(&err);
        return;
    }
    chat_admitted(req, NULL);
}

static struct fake_req *chat(struct lx_config *c, const char *body, const char *const *headers)
{
    struct fake_req *f = fake_req_new(c, "POST", "/v1/chat/completions", body, headers ? headers : with_key);
    lx_req_dispatch(&f->req, openai_chat);
    return f;
}

static void done(struct fake_req *f)
{
    lx_req_finish(&f->req, true);
    lx_req_release(&f->req);
    lx_loop_drain();
}

static json_t *body_json(struct fake_req *f)
{
    json_t *j = json_loadb(f->sent.data, f->sent.len, 0, NULL);
    if (!j)
        fail_msg("not JSON: %.*s", (int)f->sent.len, f->sent.data);
    return j;
}

static void test_answer(void **state)
{
    (void)state;
    struct fake_req *f = chat(cfg, "{\"model\":\"m/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL);
    fake_run(f, 10000);
    assert_int_equal(f->req.status, 200);
    assert_string_equal(f->req.content_type, "application/json");
    assert_string_equal(resp_header(&f->req, "X-Llmux-Model"), "m/echo");
    json_t *j = body_json(f);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_string_equal(json_string_value(json_object_get(msg, "content")),
                        "This is the llmux mock provider. You said: hi");
    json_decref(j);
    assert_string_equal(f->req.model, "m/echo");
    assert_string_equal(f->req.tally.answered_by, "m/echo");
    assert_true(f->req.tally.completion_tokens > 0);
    done(f);
}

/* Collect the data of each SSE event. */
static int data_cb(void *ctx, const char *event, const char *data, size_t len)
{
    (void)event;
    json_array_append_new(ctx, json_stringn(data, len));
    return LX_OK;
}

static json_t *events_of(struct fake_req *f)
{
    json_t *evs = json_array();
    struct lx_sse_decoder d = {0};
    assert_int_equal(lx_sse_feed(&d, f->sent.data, f->sent.len, data_cb, evs, NULL), LX_OK);
    assert_false(lx_sse_pending(&d));
    lx_sse_decoder_free(&d);
    return evs;
}

static void test_stream(void **state)
{
    (void)state;
    struct fake_req *f = chat(cfg, "{\"model\":\"m/echo\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                                   "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL);
    fake_run(f, 10000);
    assert_false(f->cut);
    assert_int_equal(f->req.status, 200);
    assert_string_equal(f->req.content_type, "text/event-stream");
    assert_string_equal(resp_header(&f->req, "Cache-Control"), "no-cache");
    assert_string_equal(resp_header(&f->req, "X-Llmux-Model"), "m/echo");
    json_t *evs = events_of(f);
    size_t n = json_array_size(evs);
    assert_true(n > 3);
    assert_string_equal(json_string_value(json_array_get(evs, n - 1)), "[DONE]");
    struct lx_buf text = {0};
    bool usage = false;
    for (size_t i = 0; i + 1 < n; i++) {
        json_t *c = json_loads(json_string_value(json_array_get(evs, i)), 0, NULL);
        assert_string_equal(json_string_value(json_object_get(c, "object")), "chat.completion.chunk");
        const char *t = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(c, "choices"), 0), "delta"), "content"));
        if (t)
            lx_buf_puts(&text, t);
        usage |= json_is_object(json_object_get(c, "usage"));
        json_decref(c);
    }
    assert_string_equal(text.data, "This is the llmux mock provider. You said: hi");
    assert_true(usage); /* asked for with stream_options.include_usage */
    lx_buf_free(&text);
    json_decref(evs);
    done(f);
}

static void expect_error(const char *body, const char *const *headers, int status, const char *code)
{
    struct fake_req *f = chat(cfg, body, headers);
    fake_run(f, 10000);
    assert_int_equal(f->req.status, status);
    json_t *j = body_json(f);
    json_t *e = json_object_get(j, "error");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_non_null(json_string_value(json_object_get(e, "message")));
    assert_string_equal(f->req.error_code, code);
    json_decref(j);
    done(f);
}

/* Every failure before an answer is an error answer in OpenAI's shape, with its real status. */
static void test_errors(void **state)
{
    (void)state;
    expect_error("{nope", NULL, 400, "invalid_json");
    expect_error("{\"model\":\"m/echo\"}", NULL, 400, "missing_required_parameter");
    expect_error("{\"model\":\"nobody/x\",\"messages\":[{\"role\":\"user\"}]}", NULL, 404, "model_not_found");
    expect_error("{\"model\":\"forbidden/x\",\"messages\":[{\"role\":\"user\"}]}", NULL, 403, "model_not_allowed");
    static const char *const no_key[] = {NULL};
    expect_error("{\"model\":\"m/echo\",\"messages\":[{\"role\":\"user\"}]}", no_key, 401, "missing_api_key");
    static const char *const bad_deadline[] = {"Authorization", "Bearer sk-chat-test-key", "x-llmux-timeout-ms", "soon",
                                               NULL};
    expect_error("{\"model\":\"m/echo\",\"messages\":[{\"role\":\"user\"}]}", bad_deadline, 400, "invalid_header");
    /* the mock refuses n out of range: its 400 passes through */
    expect_error("{\"model\":\"m/echo\",\"n\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, 400,
                 "invalid_value");
}

/* A client that leaves mid-stream: the call stops, nothing more is written, the handler lets go. */
static void test_client_leaves(void **state)
{
    (void)state;
    bool disposed = false;
    struct fake_req *f = chat(cfg, "{\"model\":\"slow/x\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                                   "\"content\":\"a long enough prompt to stream for a while\"}]}", NULL);
    f->disposed = &disposed;
    /* run until the first bytes are out */
    for (int i = 0; i < 1000 && f->sent.len == 0; i++)
        loop_settle();
    assert_true(f->sent.len > 0);
    assert_non_null(f->req.handler);
    lx_req_client_gone(&f->req);
    assert_null(f->req.handler);
    size_t sent = f->sent.len;
    for (int i = 0; i < 5; i++)
        loop_settle();
    assert_int_equal(f->sent.len, sent);
    lx_req_finish(&f->req, false);
    assert_false(disposed);
    lx_req_release(&f->req);
    assert_true(disposed); /* the handler held no reference any more */
    lx_loop_drain();
}

/* limits.max_request_ms during a stream: the dialect's error event ends it (no [DONE]). */
static void test_request_time_limit(void **state)
{
    (void)state;
    char err[256];
    const char *json = "{\"limits\":{\"max_request_ms\":60},\"providers\":{\"slow\":{\"type\":\"mock\","
                       "\"chunk_delay_ms\":30}}}";
    struct lx_config *c = lx_config_load_buffer(json, strlen(json), err, sizeof err);
    assert_non_null(c);
    static const char *const none[] = {NULL};
    struct fake_req *f = chat(c, "{\"model\":\"slow/x\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                                 "\"content\":\"one two three four five six seven eight nine ten\"}]}", none);
    fake_run(f, 10000);
    assert_false(f->cut);
    assert_int_equal(f->req.status, 200);
    json_t *evs = events_of(f);
    json_t *last = json_loads(json_string_value(json_array_get(evs, json_array_size(evs) - 1)), 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "error"), "code")), "request_timeout");
    assert_string_equal(f->req.error_code, "request_timeout");
    json_decref(last);
    json_decref(evs);
    done(f);
    lx_config_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer),        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_errors),        cmocka_unit_test(test_client_leaves),
        cmocka_unit_test(test_request_time_limit),
    };
    return cmocka_run_group_tests_name("chat", tests, setup, teardown);
}
