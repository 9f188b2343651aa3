/* Unit tests for src/toolset.c: MCP entries in a request's tools (checks and their 400s), alias defaults,
 * client tools passed through, and the function names server tools get. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/engine/toolset.h"

/* ev is an HTTP server, fs a stdio one. */
static bool known(const char *name, const char **url)
{
    *url = strcmp(name, "ev") == 0 ? "https://MCP.example.com/ev/mcp" : NULL;
    return strcmp(name, "ev") == 0 || strcmp(name, "fs") == 0;
}

static json_t *listed(const char *server)
{
    static json_t *ev, *fs;
    if (!ev) {
        ev = json_loads("[{\"name\":\"get-sum\",\"description\":\"Adds\",\"inputSchema\":{\"type\":\"object\"}},"
                        "{\"name\":\"echo\",\"title\":\"Echo\",\"inputSchema\":{\"type\":\"object\"}},"
                        "{\"name\":\"a.b/c\",\"inputSchema\":{\"type\":\"object\"}},"
                        "{\"name\":\"a_b_c\",\"inputSchema\":{\"type\":\"object\"}},"
                        "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
                        "\"inputSchema\":{\"type\":\"object\"}}]", 0, NULL);
        fs = json_loads("[{\"name\":\"read\",\"inputSchema\":{\"type\":\"object\"}}]", 0, NULL);
    }
    return strcmp(server, "ev") == 0 ? ev : strcmp(server, "fs") == 0 ? fs : NULL;
}

static int parse(const char *tools_json, const char *const *alias, size_t n, struct lx_toolset_spec *spec,
                 struct lx_error *err)
{
    json_t *tools = tools_json ? json_loads(tools_json, 0, NULL) : NULL;
    int rc = lx_toolset_parse(tools, alias, n, known, spec, err);
    json_decref(tools);
    return rc;
}

static void expect_400(const char *tools_json, const char *param, const char *msg)
{
    struct lx_toolset_spec spec;
    struct lx_error err = {0};
    assert_int_equal(parse(tools_json, NULL, 0, &spec, &err), LX_ERR);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, param);
    if (!strstr(err.message, msg))
        fail_msg("\"%s\" lacks \"%s\"", err.message, msg);
    lx_error_clear(&err);
}

static void test_build(void **state)
{
    (void)state;
    struct lx_toolset_spec spec;
    struct lx_error err = {0};
    const char *alias[] = {"fs", "ev"};
    assert_int_equal(parse("[{\"type\":\"function\",\"function\":{\"name\":\"ev__echo\"}},"
                           "{\"type\":\"mcp\",\"server_label\":\"ev\",\"require_approval\":\"never\","
                           "\"allowed_tools\":{\"tool_names\":[\"get-sum\",\"echo\",\"a.b/c\",\"a_b_c\","
                           "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}}]",
                           alias, 2, &spec, &err),
                     LX_OK);
    /* The request's entry for ev wins over the alias's (all tools); fs comes from the alias. */
    assert_int_equal(spec.n_servers, 2);
    assert_string_equal(spec.servers[0].name, "ev");
    assert_int_equal(spec.servers[0].n_allowed, 5);
    assert_string_equal(spec.servers[1].name, "fs");
    assert_null(spec.servers[1].allowed);
    assert_int_equal(json_array_size(spec.client_tools), 1);

    struct lx_toolset ts;
    lx_toolset_build(&spec, listed, &ts);
    assert_int_equal(json_array_size(ts.tools), 7);
    assert_int_equal(ts.n_refs, 6);
    /* The client's own ev__echo keeps its name; the server's echo gets another. */
    assert_string_equal(ts.refs[0].exposed, "ev__get-sum");
    assert_string_equal(ts.refs[1].exposed, "ev__echo_2");
    assert_string_equal(ts.refs[1].tool, "echo");
    assert_string_equal(ts.refs[2].exposed, "ev__a_b_c");
    assert_string_equal(ts.refs[2].tool, "a.b/c");
    assert_string_equal(ts.refs[3].exposed, "ev__a_b_c_2");
    assert_true(strlen(ts.refs[4].exposed) <= 64);
    assert_string_equal(ts.refs[5].exposed, "fs__read");
    assert_string_equal(ts.refs[5].server, "fs");
    json_t *fn = json_object_get(json_array_get(ts.tools, 1), "function");
    assert_string_equal(json_string_value(json_object_get(fn, "description")), "Adds");
    assert_non_null(json_object_get(fn, "parameters"));
    fn = json_object_get(json_array_get(ts.tools, 2), "function");
    assert_string_equal(json_string_value(json_object_get(fn, "description")), "Echo");
    assert_ptr_equal(lx_toolset_find(&ts, "fs__read"), &ts.refs[5]);
    assert_null(lx_toolset_find(&ts, "ev__echo"));
    lx_toolset_free(&ts);
    lx_toolset_spec_free(&spec);
}

static void test_no_tools(void **state)
{
    (void)state;
    struct lx_toolset_spec spec;
    struct lx_error err = {0};
    assert_int_equal(parse(NULL, NULL, 0, &spec, &err), LX_OK);
    assert_int_equal(spec.n_servers, 0);
    struct lx_toolset ts;
    lx_toolset_build(&spec, listed, &ts);
    assert_int_equal(json_array_size(ts.tools), 0);
    lx_toolset_free(&ts);
    lx_toolset_spec_free(&spec);
}

/* A client written for OpenAI's remote MCP tool sends server_url beside server_label: the configured
 * URL (but for a trailing slash and the case of scheme and host) is accepted. */
static void test_configured_url(void **state)
{
    (void)state;
    const char *ok[] = {"https://MCP.example.com/ev/mcp", "https://mcp.example.com/ev/mcp/", "HTTPS://mcp.EXAMPLE.com/ev/mcp"};
    for (size_t k = 0; k < LX_ARRAY_LEN(ok); k++) {
        char json[256];
        snprintf(json, sizeof json, "[{\"type\":\"mcp\",\"server_label\":\"ev\",\"server_url\":\"%s\"}]", ok[k]);
        struct lx_toolset_spec spec;
        struct lx_error err = {0};
        assert_int_equal(parse(json, NULL, 0, &spec, &err), LX_OK);
        assert_int_equal(spec.n_servers, 1);
        lx_toolset_spec_free(&spec);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    expect_400("{}", "tools", "expected an array");
    expect_400("[{\"type\":\"mcp\"}]", "tools[0].server_label", "Missing required parameter");
    expect_400("[{\"type\":\"mcp\",\"server_label\":5}]", "tools[0].server_label", "expected the name");
    expect_400("[{\"type\":\"function\"},{\"type\":\"mcp\",\"server_label\":\"nope\"}]", "tools[1].server_label",
               "No MCP server named 'nope'");
    expect_400("[{\"type\":\"mcp\",\"server_label\":\"ev\",\"server_url\":\"http://169.254.169.254/\"}]",
               "tools[0].server_url", "not the URL configured for MCP server 'ev'");
    /* the path is compared exactly: another path on the same host is another endpoint */
    expect_400("[{\"type\":\"mcp\",\"server_label\":\"ev\",\"server_url\":\"https://mcp.example.com/EV/mcp\"}]",
               "tools[0].server_url", "not the URL configured");
    expect_400("[{\"type\":\"mcp\",\"server_label\":\"fs\",\"server_url\":\"https://mcp.example.com/ev/mcp\"}]",
               "tools[0].server_url", "not the URL configured for MCP server 'fs'");
    expect_400("[{\"type\":\"mcp\",\"server_label\":\"ev\",\"server_url\":7}]", "tools[0].server_url",
               "expected a string");
    expect_400("[{\"type\":\"mcp\",\"server_label\":\"ev\",\"headers\":{}}]", "tools[0].headers", "configured there");
    expect_400("[{\"type\":\"mcp\",\"server_label\":\"ev\",\"require_approval\":\"always\"}]",
               "tools[0].require_approval", "must be \"never\"");
    expect_400("[{\"type\":\"mcp\",\"server_label\":\"ev\",\"allowed_tools\":[1]}]", "tools[0].allowed_tools",
               "expected an array of tool names");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_no_tools),
        cmocka_unit_test(test_configured_url),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests_name("toolset", tests, NULL, NULL);
}
