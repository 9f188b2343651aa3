/* Unit tests for the MCP client's core (src/mcp_client.c) on a real loop, over the stdio transport, with
 * this binary as a scripted server (run with --fake SCENARIO): the revision chosen from each kind of
 * server/discover answer, a silent server, versions llmux does not speak, answers that are not results,
 * input the tool asks for, late answers, and what calls see meanwhile. */
#include "../unit.h"
#include "../../../src/io/child.h"
#include "../../../src/core/common.h"
#include "../../../src/core/log.h"
#include "../../../src/io/loop.h"
#include "../../../src/engine/mcp_internal.h"

#include <signal.h>
#include <unistd.h>

#include "mcp_fake.h"

/* ---- the tests (llmux's side) ---- */


static void stop_cb(void *ctx)
{
    (void)ctx;
    lx_loop_stop();
}

static struct lx_mcp_server *start(const char *scenario, enum lx_mcp_protocol proto, long connect_ms)
{
    char *args[] = {"--fake", (char *)scenario};
    struct lx_mcp_server_conf sc = {.name = "fake", .transport = LX_MCP_STDIO, .command = mcp_self, .args = args,
                                    .n_args = 2, .timeout_ms = 2000, .connect_timeout_ms = connect_ms,
                                    .tools_refresh_ms = 0, .protocol = proto};
    struct lx_mcp_conf conf = {.servers = &sc, .n_servers = 1};
    lx_mcp_apply(&conf);
    struct lx_mcp_server *s = lx_mcp_find("fake");
    assert_non_null(s);
    lx_mcp_when_settled(s, 20000, stop_cb, NULL);
    mcp_run_loop();
    return s;
}

struct got {
    enum lx_mcp_outcome outcome;
    char *detail, *text;
    int n;
};

static void got_cb(void *ctx, const struct lx_mcp_result *r)
{
    struct got *g = ctx;
    g->outcome = r->outcome;
    g->detail = r->detail ? lx_strdup(r->detail) : NULL;
    g->text = r->result ? lx_mcp_result_text(r->result, 0) : NULL;
    g->n++;
    lx_loop_stop();
}

static struct got call(struct lx_mcp_server *s, const char *tool, long timeout_ms)
{
    struct got g = {0};
    lx_mcp_call_tool(s, tool, NULL, timeout_ms, got_cb, &g);
    assert_int_equal(g.n, 0); /* never before lx_mcp_call_tool returns */
    mcp_run_loop();
    assert_int_equal(g.n, 1);
    return g;
}

static void got_free(struct got *g)
{
    free(g->detail);
    free(g->text);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return lx_loop_init();
}

static int teardown(void **state)
{
    (void)state;
    mcp_stop_all();
    lx_child_shutdown();
    lx_loop_free();
    return 0;
}

static void test_legacy_after_method_not_found(void **state)
{
    (void)state;
    struct lx_mcp_server *s = start("legacy", LX_MCP_PROTO_AUTO, 5000);
    assert_int_equal(s->state, MCP_READY);
    assert_int_equal(s->era, MCP_ERA_LEGACY);
    assert_string_equal(s->version, "2025-06-18"); /* the server's answer, not llmux's ask */
    /* Tools without a valid name or with a schema that is not an object are left out; a missing schema
     * becomes "no arguments". */
    assert_int_equal(json_array_size(lx_mcp_server_tools(s)), 2);
    assert_non_null(lx_mcp_server_tool(s, "noschema"));
    assert_null(lx_mcp_server_tool(s, "badschema"));
    struct got g = call(s, "t", 0);
    assert_int_equal(g.outcome, LX_MCP_OK);
    assert_string_equal(g.text, "fine");
    got_free(&g);
    g = call(s, "refuse", 0);
    assert_int_equal(g.outcome, LX_MCP_RPC_ERROR);
    assert_non_null(strstr(g.detail, "Unknown tool: refuse (JSON-RPC error -32602)"));
    got_free(&g);
    /* A line that is not JSON is skipped; a response without result or error fails the call. */
    g = call(s, "neither", 0);
    assert_int_equal(g.outcome, LX_MCP_UNAVAILABLE);
    assert_non_null(strstr(g.detail, "without result or error"));
    got_free(&g);
    /* An answer after the timeout is ignored; the server goes on. */
    g = call(s, "late", 100);
    assert_int_equal(g.outcome, LX_MCP_TIMEOUT);
    got_free(&g);
    assert_int_equal(lx_mcp_stats()->cancels_sent, 1);
    g = call(s, "t", 0);
    assert_int_equal(g.outcome, LX_MCP_OK);
    got_free(&g);
}

static void test_unsupported_version_names_legacy(void **state)
{
    (void)state;
    struct lx_mcp_server *s = start("unsupported", LX_MCP_PROTO_AUTO, 5000);
    assert_int_equal(s->state, MCP_READY);
    assert_int_equal(s->era, MCP_ERA_LEGACY);
}

static void test_no_common_version(void **state)
{
    (void)state;
    struct lx_mcp_server *s = start("nocommon", LX_MCP_PROTO_AUTO, 5000);
    assert_int_equal(s->state, MCP_BACKOFF);
    assert_non_null(strstr(s->last_error, "none of the protocol revisions"));
    json_t *st = lx_mcp_server_status(s);
    assert_false(json_is_true(json_object_get(st, "healthy")));
    assert_string_equal(json_string_value(json_object_get(st, "state")), "backoff");
    json_decref(st);
    /* Calls fail at once while it is down. */
    struct got g = call(s, "t", 0);
    assert_int_equal(g.outcome, LX_MCP_UNAVAILABLE);
    assert_non_null(strstr(g.detail, "backoff"));
    got_free(&g);
}

/* On stdio a server that does not answer the probe is an initialize-era one. */
static void test_silent_probe_falls_back(void **state)
{
    (void)state;
    struct lx_mcp_server *s = start("silent", LX_MCP_PROTO_AUTO, 200);
    assert_int_equal(s->state, MCP_READY);
    assert_int_equal(s->era, MCP_ERA_LEGACY);
}

static void test_version_llmux_does_not_speak(void **state)
{
    (void)state;
    struct lx_mcp_server *s = start("oldversion", LX_MCP_PROTO_AUTO, 5000);
    assert_int_equal(s->state, MCP_BACKOFF);
    assert_non_null(strstr(s->last_error, "2024-11-05"));
}

static void test_pinned_modern_refuses_legacy(void **state)
{
    (void)state;
    struct lx_mcp_server *s = start("legacy", LX_MCP_PROTO_2026, 5000);
    assert_int_equal(s->state, MCP_BACKOFF);
    assert_non_null(strstr(s->last_error, "does not speak protocol 2026-07-28"));
}

static void test_modern_input_required(void **state)
{
    (void)state;
    struct lx_mcp_server *s = start("modern", LX_MCP_PROTO_AUTO, 5000);
    assert_int_equal(s->era, MCP_ERA_MODERN);
    assert_string_equal(s->version, "2026-07-28");
    struct got g = call(s, "input", 0);
    assert_int_equal(g.outcome, LX_MCP_TOOL_ERROR);
    assert_non_null(strstr(g.detail, "asked for input"));
    got_free(&g);
    /* Pinned to 2025-11-25, the same server gets the handshake without a probe. */
    lx_mcp_shutdown(false);
    s = start("legacy", LX_MCP_PROTO_2025, 5000);
    assert_int_equal(s->era, MCP_ERA_LEGACY);
}

static void test_cancel_before_ready(void **state)
{
    (void)state;
    char *args[] = {"--fake", "silent"};
    struct lx_mcp_server_conf sc = {.name = "fake", .transport = LX_MCP_STDIO, .command = mcp_self, .args = args,
                                    .n_args = 2, .timeout_ms = 2000, .connect_timeout_ms = 300};
    struct lx_mcp_conf conf = {.servers = &sc, .n_servers = 1};
    lx_mcp_apply(&conf);
    struct lx_mcp_server *s = lx_mcp_find("fake");
    /* Queued while the server is still being probed; cancelled there: no callback ever. */
    struct got g = {0};
    struct lx_mcp_call *c = lx_mcp_call_tool(s, "t", NULL, 0, got_cb, &g);
    lx_mcp_call_cancel(c, "test");
    struct got g2 = {0};
    lx_mcp_call_tool(s, "t", NULL, 0, got_cb, &g2); /* this one waits and runs once ready */
    mcp_run_loop();
    assert_int_equal(g.n, 0);
    assert_int_equal(g2.n, 1);
    assert_int_equal(g2.outcome, LX_MCP_OK);
    got_free(&g2);
}

int main(int argc, char **argv)
{
    int fake = mcp_fake_main(argc, argv);
    if (fake >= 0)
        return fake;
    lx_log_set_level(LX_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_legacy_after_method_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_version_names_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_common_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_probe_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_llmux_does_not_speak, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pinned_modern_refuses_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modern_input_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_ready, setup, teardown),
    };
    return cmocka_run_group_tests_name("mcp_client", tests, NULL, NULL);
}
