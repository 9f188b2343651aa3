/* Unit tests for src/mcp_conf.c: the "mcp_servers" section, its defaults, ${VAR} expansion and the
 * servers it disables, every refusal (and that none quotes a value), and what a reload keeps. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/engine/mcp.h"

static int parse(const char *json, struct lx_mcp_conf *c, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    if (!root)
        fail_msg("bad test JSON: %s", jerr.text);
    int rc = lx_mcp_conf_parse(root, c, err, errlen);
    json_decref(root);
    return rc;
}

static void expect_error(const char *json, const char *want)
{
    struct lx_mcp_conf c;
    char err[512] = "";
    assert_int_equal(parse(json, &c, err, sizeof err), LX_ERR);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    assert_null(strstr(err, "s3cret")); /* values never appear in messages */
    assert_int_equal(c.n_servers, 0);
}

static void test_http_and_stdio(void **state)
{
    (void)state;
    struct lx_mcp_conf c;
    char err[512];
    setenv("LX_MCP_TOKEN", "tok", 1);
    assert_int_equal(parse("{\"web\": {\"url\": \"http://127.0.0.1:3001/mcp\", \"headers\": {\"Authorization\": "
                           "\"Bearer ${LX_MCP_TOKEN}\"}, \"timeout_ms\": 5000, \"tool_timeouts\": {\"slow\": 90000}},"
                           " \"fs\": {\"command\": \"npx\", \"args\": [\"-y\", \"server-${LX_MCP_TOKEN}\"], "
                           "\"env\": {\"ROOT\": \"/tmp\"}, \"protocol\": \"2025-11-25\", \"tools_refresh_ms\": 0}}",
                           &c, err, sizeof err),
                     LX_OK);
    assert_int_equal(c.n_servers, 2);
    const struct lx_mcp_server_conf *web = &c.servers[0], *fs = &c.servers[1];
    assert_string_equal(web->name, "web");
    assert_int_equal(web->transport, LX_MCP_HTTP);
    assert_string_equal(web->url, "http://127.0.0.1:3001/mcp");
    assert_int_equal(web->n_headers, 1);
    assert_string_equal(web->headers[0], "Authorization: Bearer tok");
    assert_int_equal(web->timeout_ms, 5000);
    assert_int_equal(web->connect_timeout_ms, 10000);
    assert_int_equal(web->tools_refresh_ms, 300000);
    assert_int_equal(web->protocol, LX_MCP_PROTO_AUTO);
    assert_int_equal(lx_mcp_conf_tool_timeout(web, "slow"), 90000);
    assert_int_equal(lx_mcp_conf_tool_timeout(web, "other"), 5000);
    assert_null(web->disabled_reason);
    assert_int_equal(fs->transport, LX_MCP_STDIO);
    assert_string_equal(fs->command, "npx");
    assert_int_equal(fs->n_args, 2);
    assert_string_equal(fs->args[1], "server-tok");
    assert_int_equal(fs->n_env, 1);
    assert_string_equal(fs->env[0], "ROOT=/tmp");
    assert_int_equal(fs->protocol, LX_MCP_PROTO_2025);
    assert_int_equal(fs->tools_refresh_ms, 0);
    assert_int_equal(fs->timeout_ms, 30000);
    lx_mcp_conf_free(&c);
    assert_int_equal(c.n_servers, 0);
}

static void test_absent_section(void **state)
{
    (void)state;
    struct lx_mcp_conf c;
    char err[64];
    assert_int_equal(lx_mcp_conf_parse(NULL, &c, err, sizeof err), LX_OK);
    assert_int_equal(c.n_servers, 0);
    json_t *null = json_null();
    assert_int_equal(lx_mcp_conf_parse(null, &c, err, sizeof err), LX_OK);
    json_decref(null);
    lx_mcp_conf_free(&c);
}

static void test_unset_variable_disables(void **state)
{
    (void)state;
    unsetenv("LX_MCP_UNSET");
    struct lx_mcp_conf c;
    char err[512];
    assert_int_equal(parse("{\"a\": {\"url\": \"http://h/mcp\", \"headers\": {\"X\": \"${LX_MCP_UNSET}\"}},"
                           " \"b\": {\"command\": \"x\", \"env\": {\"K\": \"${LX_MCP_UNSET}\"}},"
                           " \"c\": {\"command\": \"${LX_MCP_UNSET:-fallback}\"}}",
                           &c, err, sizeof err),
                     LX_OK);
    assert_non_null(strstr(c.servers[0].disabled_reason, "LX_MCP_UNSET is not set"));
    assert_non_null(strstr(c.servers[0].disabled_reason, "mcp_servers.a"));
    assert_non_null(c.servers[1].disabled_reason);
    assert_null(c.servers[2].disabled_reason);
    assert_string_equal(c.servers[2].command, "fallback");
    lx_mcp_conf_free(&c);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_error("[]", "mcp_servers: expected an object");
    expect_error("{\"a\": 1}", "mcp_servers.a: expected an object");
    expect_error("{\"a\": {}}", "either \"url\"");
    expect_error("{\"a\": {\"url\": \"http://h\", \"command\": \"x\"}}", "either \"url\"");
    expect_error("{\"a b\": {\"url\": \"http://h\"}}", "a server name is");
    expect_error("{\"a__b\": {\"url\": \"http://h\"}}", "without \"__\"");
    expect_error("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": {\"url\": \"http://h\"}}", "a server name is");
    expect_error("{\"a\": {\"url\": \"ftp://h\"}}", "mcp_servers.a.url: must be an http");
    expect_error("{\"a\": {\"url\": 5}}", "mcp_servers.a.url");
    expect_error("{\"a\": {\"url\": \"http://h\", \"args\": []}}", "mcp_servers.a.args: only for stdio");
    expect_error("{\"a\": {\"command\": \"x\", \"headers\": {}}}", "mcp_servers.a.headers: only for HTTP");
    expect_error("{\"a\": {\"command\": \"\"}}", "mcp_servers.a.command");
    expect_error("{\"a\": {\"command\": \"x\", \"args\": [1]}}", "mcp_servers.a.args[0]: expected a string");
    expect_error("{\"a\": {\"command\": \"x\", \"args\": \"-y\"}}", "mcp_servers.a.args: expected an array");
    expect_error("{\"a\": {\"command\": \"x\", \"env\": {\"A=B\": \"s3cret\"}}}", "not a valid environment variable");
    expect_error("{\"a\": {\"command\": \"x\", \"env\": {\"A\": 1}}}", "mcp_servers.a.env.A: expected a string");
    expect_error("{\"a\": {\"url\": \"http://h\", \"headers\": {\"Mcp-Session-Id\": \"s3cret\"}}}",
                 "llmux sets this header itself");
    expect_error("{\"a\": {\"url\": \"http://h\", \"headers\": {\"Bad Name\": \"s3cret\"}}}", "not a valid header name");
    expect_error("{\"a\": {\"url\": \"http://h\", \"headers\": {\"X\": \"s3cret\\r\\nInjected: 1\"}}}",
                 "must not contain line breaks");
    expect_error("{\"a\": {\"url\": \"http://h\", \"timeout_ms\": 0}}", "mcp_servers.a.timeout_ms");
    expect_error("{\"a\": {\"url\": \"http://h\", \"tool_timeouts\": {\"t\": \"s3cret\"}}}", "tool_timeouts.t");
    expect_error("{\"a\": {\"url\": \"http://h\", \"tool_timeouts\": []}}", "tool_timeouts: expected an object");
    expect_error("{\"a\": {\"url\": \"http://h\", \"protocol\": \"2024-11-05\"}}", "mcp_servers.a.protocol");
    expect_error("{\"a\": {\"url\": \"http://h\", \"tokens\": 1}}", "mcp_servers.a.tokens: unknown key");
}

static void test_same_and_copy(void **state)
{
    (void)state;
    struct lx_mcp_conf a, b, d;
    char err[256];
    assert_int_equal(parse("{\"s\": {\"url\": \"http://h/mcp\", \"headers\": {\"X\": \"1\"}, \"timeout_ms\": 10}}", &a,
                           err, sizeof err), LX_OK);
    assert_int_equal(parse("{\"s\": {\"url\": \"http://h/mcp\", \"headers\": {\"X\": \"1\"}, \"timeout_ms\": 99, "
                           "\"tool_timeouts\": {\"t\": 5}}}", &b, err, sizeof err), LX_OK);
    assert_int_equal(parse("{\"s\": {\"url\": \"http://h/mcp\", \"headers\": {\"X\": \"2\"}}}", &d, err, sizeof err),
                     LX_OK);
    /* Timeouts change on a live client; a header or the URL makes it another connection. */
    assert_true(lx_mcp_conf_same(&a.servers[0], &b.servers[0]));
    assert_false(lx_mcp_conf_same(&a.servers[0], &d.servers[0]));
    struct lx_mcp_server_conf copy;
    lx_mcp_server_conf_copy(&copy, &b.servers[0]);
    assert_true(lx_mcp_conf_same(&copy, &b.servers[0]));
    assert_int_equal(lx_mcp_conf_tool_timeout(&copy, "t"), 5);
    assert_ptr_not_equal(copy.headers[0], b.servers[0].headers[0]);
    lx_mcp_server_conf_free(&copy);
    lx_mcp_conf_free(&a);
    lx_mcp_conf_free(&b);
    lx_mcp_conf_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_and_stdio),       cmocka_unit_test(test_absent_section),
        cmocka_unit_test(test_unset_variable_disables), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_same_and_copy),
    };
    return cmocka_run_group_tests_name("mcp_conf", tests, NULL, NULL);
}
