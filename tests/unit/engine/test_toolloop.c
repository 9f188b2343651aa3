/* Unit tests for src/toolloop.c on a real loop: the built-in mock provider as the model, and this binary as
 * a scripted MCP stdio server (tests/unit/engine/mcp_fake.h). A round of server tools, the answer built from
 * their results, the stream the client sees, the round limit, client tools, and cancellation. */
#include "../unit.h"
#include "mcp_fake.h"
#include "../../../src/core/buf.h"
#include "../../../src/io/child.h"
#include "../../../src/core/common.h"
#include "../../../src/config.h"
#include "../../../src/core/conf.h"
#include "../../../src/engine/exec.h"
#include "../../../src/core/log.h"
#include "../../../src/io/loop.h"
#include "../../../src/engine/mcp.h"
#include "../../../src/engine/toolloop.h"
#include "../../../src/engine/toolset.h"

#include <signal.h>

static struct lx_config *cfg;

struct seen {
    json_t *completion;
    json_t *chunks;   /* every chunk the client would see */
    json_t *events;   /* on_tool: "started:TOOL" / "finished:TOOL:OUTCOME" */
    struct lx_error err;
    int done;
    char *label;
};

static void on_commit(void *owner, const char *label, const char *dropped)
{
    (void)dropped;
    struct seen *s = owner;
    free(s->label);
    s->label = lx_strdup(label);
}

static void on_chunk(void *owner, json_t *chunk)
{
    json_array_append(((struct seen *)owner)->chunks, chunk);
}

static void on_tool(void *owner, const struct lx_tool_event *ev)
{
    struct seen *s = owner;
    char *e = ev->finished ? lx_sprintf("finished:%s:%s", ev->tool, ev->outcome) : lx_sprintf("started:%s", ev->tool);
    json_array_append_new(s->events, json_string(e));
    free(e);
}

static void on_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct seen *s = owner;
    s->completion = completion;
    if (err)
        lx_error_copy(&s->err, err);
    s->done++;
    lx_loop_stop();
}

static const struct lx_toolloop_ops ops = {.on_commit = on_commit, .on_chunk = on_chunk, .on_tool = on_tool, .on_done = on_done};

static void settled_cb(void *ctx)
{
    (void)ctx;
    lx_loop_stop();
}

static bool known(const char *name, const char **url)
{
    *url = NULL;
    return lx_mcp_find(name) != NULL;
}

static json_t *listed(const char *name)
{
    return lx_mcp_server_tools(lx_mcp_find(name));
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (lx_loop_init() != LX_OK)
        return -1;
    char err[256];
    const char *conf = "{\"providers\": {\"m\": {\"type\": \"mock\"}}}";
    cfg = lx_config_load_buffer(conf, strlen(conf), err, sizeof err);
    char *args[] = {"--fake", "adder"};
    struct lx_mcp_server_conf sc = {.name = "fake", .transport = LX_MCP_STDIO, .command = mcp_self, .args = args,
                                    .n_args = 2, .timeout_ms = 5000, .connect_timeout_ms = 5000};
    struct lx_mcp_conf mc = {.servers = &sc, .n_servers = 1};
    lx_mcp_apply(&mc);
    lx_mcp_when_settled(lx_mcp_find("fake"), 20000, settled_cb, NULL);
    mcp_run_loop();
    return cfg ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mcp_stop_all();
    lx_config_unref(cfg);
    lx_child_shutdown();
    lx_loop_free();
    return 0;
}

/* Run one request through the loop. */
static struct seen run(const char *body_json, bool stream, int max_rounds, struct lx_tally *tally)
{
    struct seen s = {.chunks = json_array(), .events = json_array()};
    json_t *body = json_loads(body_json, 0, NULL);
    assert_non_null(body);
    struct lx_toolset_spec spec;
    struct lx_error err = {0};
    const char *alias[] = {"fake"};
    assert_int_equal(lx_toolset_parse(json_object_get(body, "tools"), alias, 1, known, &spec, &err), LX_OK);
    struct lx_toolset ts;
    lx_toolset_build(&spec, listed, &ts);
    lx_toolset_spec_free(&spec);
    struct lx_toolloop_params p = {.cfg = cfg, .model = "m/x", .body = body, .ts = &ts, .stream = stream,
                                   .include_usage = stream, .req_id = 7, .max_rounds = max_rounds,
                                   .max_result_bytes = 1000, .tally = tally};
    struct lx_toolloop *l = lx_toolloop_start(&p, &ops, &s, &err);
    assert_non_null(l);
    assert_int_equal(ts.n_refs, 0); /* taken over */
    json_decref(body);
    mcp_run_loop();
    assert_int_equal(s.done, 1);
    return s;
}

static void seen_free(struct seen *s)
{
    json_decref(s->completion);
    json_decref(s->chunks);
    json_decref(s->events);
    lx_error_clear(&s->err);
    free(s->label);
}

static void test_one_round_then_answer(void **state)
{
    (void)state;
    struct lx_tally tally = {0};
    struct seen s = run("{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\",\"content\":\"please fake__add them\"}]}",
                        false, 8, &tally);
    assert_false(lx_error_isset(&s.err));
    json_t *msg = json_object_get(json_array_get(json_object_get(s.completion, "choices"), 0), "message");
    json_t *calls = json_object_get(json_object_get(s.completion, "llmux"), "tool_calls");
    assert_int_equal(json_array_size(calls), 1);
    json_t *c = json_array_get(calls, 0);
    assert_string_equal(json_string_value(json_object_get(c, "server")), "fake");
    assert_string_equal(json_string_value(json_object_get(c, "tool")), "add");
    assert_string_equal(json_string_value(json_object_get(c, "outcome")), "ok");
    /* The answer quotes what the tool returned for the arguments the model chose. */
    json_t *args = json_loads(json_string_value(json_object_get(c, "arguments")), 0, NULL);
    char want[64];
    snprintf(want, sizeof want, "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(args, "a")) + json_integer_value(json_object_get(args, "b")));
    json_decref(args);
    assert_string_equal(json_string_value(json_object_get(c, "output")), want);
    assert_non_null(strstr(json_string_value(json_object_get(msg, "content")), want));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s.completion, "llmux"), "tool_rounds")), 1);
    /* Two model calls, their usage summed. */
    assert_int_equal(tally.calls, 2);
    json_t *usage = json_object_get(s.completion, "usage");
    assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), tally.prompt_tokens);
    assert_int_equal(json_integer_value(json_object_get(usage, "completion_tokens")), tally.completion_tokens);
    assert_string_equal(s.label, "m/x");
    assert_int_equal(json_array_size(s.events), 2);
    assert_string_equal(json_string_value(json_array_get(s.events, 1)), "finished:add:ok");
    lx_tally_clear(&tally);
    seen_free(&s);
}

static void test_stream(void **state)
{
    (void)state;
    struct seen s = run("{\"model\":\"m/x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"fake__add\"}]}",
                        true, 8, NULL);
    assert_false(lx_error_isset(&s.err));
    assert_null(s.completion);
    /* Tool activity first (no choices: SDKs skip it), then the answer's text, one finish, the usage. */
    size_t i;
    json_t *ch;
    int started = -1, finished = -1, first_text = -1, finishes = 0, usage = -1;
    struct lx_buf text = {0};
    const char *id = NULL;
    json_array_foreach(s.chunks, i, ch) {
        const char *cid = json_string_value(json_object_get(ch, "id"));
        if (!id)
            id = cid;
        assert_string_equal(cid, id); /* one stream, one id */
        json_t *llmux = json_object_get(ch, "llmux");
        const char *type = json_string_value(json_object_get(llmux, "type"));
        if (type && strcmp(type, "tool_call.started") == 0)
            started = (int)i;
        if (type && strcmp(type, "tool_call.finished") == 0)
            finished = (int)i;
        if (llmux)
            assert_int_equal(json_array_size(json_object_get(ch, "choices")), 0);
        if (json_object_get(ch, "usage"))
            usage = (int)i;
        json_t *choice = json_array_get(json_object_get(ch, "choices"), 0);
        json_t *content = json_object_get(json_object_get(choice, "delta"), "content");
        if (json_is_string(content)) {
            if (first_text < 0)
                first_text = (int)i;
            lx_buf_puts(&text, json_string_value(content));
        }
        if (json_is_string(json_object_get(choice, "finish_reason")))
            finishes++;
    }
    assert_true(started >= 0 && started < finished && finished < first_text);
    assert_int_equal(finishes, 1);
    assert_int_equal(usage, (int)json_array_size(s.chunks) - 1);
    assert_non_null(strstr(text.data, "returned"));
    lx_buf_free(&text);
    seen_free(&s);
}

/* tool_choice "required": the mock calls a tool every round; the loop stops at the limit and says so. */
static void test_round_limit(void **state)
{
    (void)state;
    struct seen s = run("{\"model\":\"m/x\",\"tool_choice\":\"required\",\"messages\":[{\"role\":\"user\",\"content\":"
                        "\"fake__add\"}]}", false, 2, NULL);
    json_t *choice = json_array_get(json_object_get(s.completion, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "stop");
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(choice, "message"), "content")),
                           "stopped after 2 rounds"));
    assert_int_equal(json_array_size(json_object_get(json_object_get(s.completion, "llmux"), "tool_calls")), 2);
    seen_free(&s);
}

/* A client tool ends the loop: its call goes back to the client, llmux runs nothing. */
static void test_client_tool(void **state)
{
    (void)state;
    struct seen s = run("{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\",\"content\":\"weather\"}],\"tools\":[{\"type\":"
                        "\"function\",\"function\":{\"name\":\"weather\",\"parameters\":{\"type\":\"object\"}}}]}",
                        false, 8, NULL);
    json_t *choice = json_array_get(json_object_get(s.completion, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(choice, "finish_reason")), "tool_calls");
    json_t *tc = json_array_get(json_object_get(json_object_get(choice, "message"), "tool_calls"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(tc, "function"), "name")), "weather");
    assert_int_equal(json_array_size(s.events), 0);
    seen_free(&s);
}

static void cancel_cb(void *arg)
{
    lx_toolloop_cancel(arg);
    lx_loop_stop();
}

/* Cancelled while a tool runs: no callback, nothing left behind (valgrind checks the memory). */
static void test_cancel_mid_tool(void **state)
{
    (void)state;
    struct seen s = {.chunks = json_array(), .events = json_array()};
    json_t *body = json_loads("{\"model\":\"m/x\",\"messages\":[{\"role\":\"user\",\"content\":\"fake__slow\"}]}", 0, NULL);
    struct lx_toolset_spec spec;
    struct lx_error err = {0};
    const char *alias[] = {"fake"};
    assert_int_equal(lx_toolset_parse(NULL, alias, 1, known, &spec, &err), LX_OK);
    struct lx_toolset ts;
    lx_toolset_build(&spec, listed, &ts);
    lx_toolset_spec_free(&spec);
    struct lx_toolloop_params p = {.cfg = cfg, .model = "m/x", .body = body, .ts = &ts, .max_rounds = 8};
    struct lx_toolloop *l = lx_toolloop_start(&p, &ops, &s, &err);
    json_decref(body);
    struct lx_timer *t = lx_timer_new(cancel_cb, l);
    lx_timer_start(t, 300);
    mcp_run_loop();
    lx_timer_free(t);
    assert_int_equal(s.done, 0);
    assert_string_equal(json_string_value(json_array_get(s.events, 0)), "started:slow");
    seen_free(&s);
}

static void test_unknown_model(void **state)
{
    (void)state;
    struct lx_toolset ts = {.tools = json_array()};
    json_t *body = json_loads("{\"messages\":[]}", 0, NULL);
    struct lx_toolloop_params p = {.cfg = cfg, .model = "nope/x", .body = body, .ts = &ts};
    struct lx_error err = {0};
    struct seen s = {0};
    assert_null(lx_toolloop_start(&p, &ops, &s, &err));
    assert_int_equal(err.status, 404);
    lx_error_clear(&err);
    lx_toolset_free(&ts);
    json_decref(body);
}

int main(int argc, char **argv)
{
    int fake = mcp_fake_main(argc, argv);
    if (fake >= 0)
        return fake;
    lx_log_set_level(LX_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_round_then_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_tool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_mid_tool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_model, setup, teardown),
    };
    return cmocka_run_group_tests_name("toolloop", tests, NULL, NULL);
}
