/* A scripted MCP server for the unit tests: the test binary runs itself with --fake SCENARIO and answers
 * llmux's MCP client over stdio with plain blocking reads and writes (another process, no loop). */
#ifndef LX_TEST_MCP_FAKE_H
#define LX_TEST_MCP_FAKE_H

#include "../../../src/engine/mcp.h"
#include "../../../src/io/child.h"
#include "../../../src/io/loop.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void reply(json_t *req, const char *result_or_error_json, bool error)
{
    json_t *v = json_loads(result_or_error_json, 0, NULL);
    json_t *msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", json_object_get(req, "id"), error ? "error" : "result", v);
    char *s = json_dumps(msg, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(msg);
}

static int mcp_fake_server(const char *scenario)
{
    char line[65536];
    while (fgets(line, sizeof line, stdin)) {
        json_t *req = json_loads(line, 0, NULL);
        const char *m = json_string_value(json_object_get(req, "method"));
        if (!m || !json_object_get(req, "id")) {
            json_decref(req);
            continue; /* notifications */
        }
        bool modern = strcmp(scenario, "modern") == 0;
        if (strcmp(m, "server/discover") == 0) {
            if (strcmp(scenario, "unsupported") == 0)
                reply(req, "{\"code\":-32022,\"message\":\"Unsupported protocol version\",\"data\":{\"supported\":[\"2025-06-18\"]}}", true);
            else if (strcmp(scenario, "nocommon") == 0)
                reply(req, "{\"code\":-32022,\"message\":\"Unsupported\",\"data\":{\"supported\":[\"2030-01-01\"]}}", true);
            else if (modern)
                reply(req, "{\"supportedVersions\":[\"2026-07-28\"],\"capabilities\":{\"tools\":{}},\"resultType\":\"complete\"}", false);
            else if (strcmp(scenario, "silent") != 0)
                reply(req, "{\"code\":-32601,\"message\":\"Method not found\"}", true);
        } else if (strcmp(m, "initialize") == 0) {
            if (strcmp(scenario, "oldversion") == 0)
                reply(req, "{\"protocolVersion\":\"2024-11-05\",\"capabilities\":{}}", false);
            else
                reply(req, "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"fake\"}}", false);
        } else if (strcmp(m, "tools/list") == 0) {
            if (strcmp(scenario, "adder") == 0)
                reply(req, "{\"tools\":[{\"name\":\"add\",\"description\":\"Adds a and b\",\"inputSchema\":{\"type\":"
                           "\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"integer\"}},"
                           "\"required\":[\"a\",\"b\"]}},{\"name\":\"slow\",\"inputSchema\":{\"type\":\"object\"}}]}", false);
            else
                reply(req, "{\"tools\":[{\"name\":\"t\",\"inputSchema\":{\"type\":\"object\"}},{\"name\":\"\"},"
                           "{\"name\":\"noschema\"},{\"name\":\"badschema\",\"inputSchema\":[]}]}", false);
        } else if (strcmp(m, "tools/call") == 0) {
            const char *name = json_string_value(json_object_get(json_object_get(req, "params"), "name"));
            if (strcmp(name, "input") == 0)
                reply(req, "{\"resultType\":\"input_required\",\"inputRequests\":{}}", false);
            else if (strcmp(name, "refuse") == 0)
                reply(req, "{\"code\":-32602,\"message\":\"Unknown tool: refuse\"}", true);
            else if (strcmp(name, "neither") == 0) {
                printf("this line is not JSON\n{\"jsonrpc\":\"2.0\",\"id\":%" JSON_INTEGER_FORMAT "}\n",
                       json_integer_value(json_object_get(req, "id")));
                fflush(stdout);
            } else if (strcmp(name, "add") == 0) {
                json_t *a = json_object_get(json_object_get(req, "params"), "arguments");
                char out[128];
                snprintf(out, sizeof out, "{\"content\":[{\"type\":\"text\",\"text\":\"%" JSON_INTEGER_FORMAT "\"}]}",
                         json_integer_value(json_object_get(a, "a")) + json_integer_value(json_object_get(a, "b")));
                reply(req, out, false);
            } else if (strcmp(name, "slow") == 0) {
                sleep(30); /* until cancelled: the test stops the process */
            } else if (strcmp(name, "late") == 0) {
                usleep(400000);
                reply(req, "{\"content\":[{\"type\":\"text\",\"text\":\"too late\"}]}", false);
            } else
                reply(req, "{\"content\":[{\"type\":\"text\",\"text\":\"fine\"}]}", false);
        }
        json_decref(req);
    }
    return 0;
}

/* ---- the test side: this binary's path, and the loop ---- */

static char mcp_self[4096]; /* the command that runs the fake server */

/* From main: run as the fake server when asked (its exit status), else note this binary's path (-1). */
static int mcp_fake_main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--fake") == 0)
        return mcp_fake_server(argv[2]);
    ssize_t n = readlink("/proc/self/exe", mcp_self, sizeof mcp_self - 1);
    if (n <= 0)
        return 1;
    mcp_self[n] = '\0';
    return -1;
}

static void mcp_hang_guard_cb(void *arg)
{
    (void)arg;
    fail_msg("hang guard: the loop did not finish");
}

/* Run the loop until lx_loop_stop, with a guard against hangs (not a speed check). */
static void mcp_run_loop(void)
{
    struct lx_timer *guard = lx_timer_new(mcp_hang_guard_cb, NULL);
    lx_timer_start(guard, 30000);
    lx_loop_run();
    lx_timer_free(guard);
}

static void mcp_let_go_cb(void *arg)
{
    (void)arg;
    if (lx_child_count() == 0)
        lx_loop_stop();
}

/* Stop the MCP clients and let their children go (stdin closed, SIGTERM), the servers be freed. */
static void mcp_stop_all(void)
{
    lx_mcp_shutdown(false);
    struct lx_timer *poll = lx_timer_new(mcp_let_go_cb, NULL);
    for (int i = 0; i < 300 && lx_child_count(); i++) {
        lx_timer_start(poll, 10);
        lx_loop_run();
    }
    lx_timer_free(poll);
    lx_loop_drain();
}

#endif
