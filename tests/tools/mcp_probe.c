/* mcp-probe: llmux's MCP client on its own loop, driven by JSON lines, for tests and for the official
 * conformance suite.
 *
 *   mcp-probe CONFIG.json        CONFIG holds {"mcp_servers": {...}}; commands come on stdin, one JSON
 *                                object a line, and every answer and event goes to stdout, one JSON
 *                                object a line:
 *     {"op":"wait","server":S,"timeout_ms":N}      → {"event":"settled","server":S,"status":{...}}
 *     {"op":"status"}                              → {"event":"status","servers":[...]}
 *     {"op":"tools","server":S}                    → {"event":"tools","server":S,"tools":[...]}
 *     {"op":"call","id":I,"server":S,"tool":T,"arguments":{...},"timeout_ms":N}
 *                                                  → {"event":"result","id":I,"outcome":...,"result":...,
 *                                                     "detail":...,"text":...}
 *     {"op":"cancel","id":I}                       → {"event":"cancelled","id":I}
 *     {"op":"stats"}                               → {"event":"stats",...}
 *     {"op":"reload","config":{"mcp_servers":...}} → {"event":"reloaded"}
 *     {"op":"quit"} (or end of input)              → stops the clients and exits
 *   mcp-probe --conformance URL  what `npx @modelcontextprotocol/conformance client --command` runs: connect
 *                                to URL, list the tools, call each with arguments made from its schema,
 *                                print the results, exit 0 when every call answered. */
#include "../../src/core/buf.h"
#include "../../src/io/child.h"
#include "../../src/core/common.h"
#include "../../src/core/log.h"
#include "../../src/io/loop.h"
#include "../../src/engine/mcp.h"
#include "../../src/io/upstream.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pending {
    char *id;
    struct lx_mcp_call *call;
    struct pending *next;
};

static struct {
    struct lx_buf in;
    struct event *stdin_ev;
    struct pending *calls;
    struct lx_mcp_conf conf;
    bool quitting;
    struct lx_timer *quit_timer;
    int conformance_left, conformance_failed;
    bool conformance;
} P;

static void emit(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(o);
}

static void emit_error(const char *why)
{
    emit(json_pack("{s:s, s:s}", "event", "error", "error", why));
}

static int load_conf(json_t *root, char *err, size_t errlen)
{
    struct lx_mcp_conf c;
    if (lx_mcp_conf_parse(json_object_get(root, "mcp_servers"), &c, err, errlen) != LX_OK)
        return LX_ERR;
    lx_mcp_apply(&c);
    lx_mcp_conf_free(&P.conf);
    P.conf = c;
    return LX_OK;
}

static void quit_poll_cb(void *arg)
{
    (void)arg;
    /* Sessions are being ended and children stopped: leave when they are, or after the hang guard. */
    static int polls;
    if ((lx_upstream_active() == 0 && lx_child_count() == 0) || ++polls > 500)
        lx_loop_stop();
    else
        lx_timer_start(P.quit_timer, 10);
}

static void quit(void)
{
    if (P.quitting)
        return;
    P.quitting = true;
    while (P.calls) {
        struct pending *p = P.calls;
        P.calls = p->next;
        lx_mcp_call_cancel(p->call, "the probe is stopping");
        free(p->id);
        free(p);
    }
    lx_mcp_shutdown(false);
    if (P.stdin_ev)
        event_del(P.stdin_ev);
    lx_timer_start(P.quit_timer, 10);
}

static void call_done_cb(void *ctx, const struct lx_mcp_result *r)
{
    struct pending *p = ctx, **pp = &P.calls;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    char *text = r->result ? lx_mcp_result_text(r->result, 0) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:O?, s:s?, s:s?, s:f}", "event", "result", "id", p->id, "outcome",
                          lx_mcp_outcome_name(r->outcome), "result", r->result, "detail", r->detail, "text", text,
                          "duration_ms", r->duration_ms);
    free(text);
    emit(o);
    if (P.conformance) {
        if (r->outcome != LX_MCP_OK && r->outcome != LX_MCP_TOOL_ERROR)
            P.conformance_failed++;
        if (--P.conformance_left == 0)
            quit();
    }
    free(p->id);
    free(p);
}

static void start_call(const char *id, struct lx_mcp_server *s, const char *tool, json_t *args, long timeout_ms)
{
    struct pending *p = lx_calloc(1, sizeof *p);
    p->id = lx_strdup(id);
    p->next = P.calls;
    P.calls = p;
    p->call = lx_mcp_call_tool(s, tool, args, timeout_ms, call_done_cb, p);
}

struct waiter {
    char *server;
};

static void settled_cb(void *ctx)
{
    struct waiter *w = ctx;
    struct lx_mcp_server *s = lx_mcp_find(w->server);
    emit(json_pack("{s:s, s:s, s:o}", "event", "settled", "server", w->server, "status",
                   s ? lx_mcp_server_status(s) : json_null()));
    free(w->server);
    free(w);
}

static void command(json_t *cmd)
{
    const char *op = json_string_value(json_object_get(cmd, "op"));
    const char *server = json_string_value(json_object_get(cmd, "server"));
    struct lx_mcp_server *s = server ? lx_mcp_find(server) : NULL;
    if (!op) {
        emit_error("a command needs \"op\"");
    } else if (strcmp(op, "quit") == 0) {
        quit();
    } else if (strcmp(op, "status") == 0) {
        json_t *list = json_array();
        for (size_t i = 0; i < lx_mcp_count(); i++)
            json_array_append_new(list, lx_mcp_server_status(lx_mcp_at(i)));
        emit(json_pack("{s:s, s:o}", "event", "status", "servers", list));
    } else if (strcmp(op, "stats") == 0) {
        const struct lx_mcp_stats *st = lx_mcp_stats();
        emit(json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "event", "stats", "rpcs_sent",
                       (json_int_t)st->rpcs_sent, "notifications_sent", (json_int_t)st->notifications_sent,
                       "server_requests", (json_int_t)st->server_requests, "sessions_started",
                       (json_int_t)st->sessions_started, "session_expired", (json_int_t)st->session_expired,
                       "restarts", (json_int_t)st->restarts, "cancels_sent", (json_int_t)st->cancels_sent, "resumes",
                       (json_int_t)st->resumes));
    } else if (strcmp(op, "reload") == 0) {
        char err[512];
        if (load_conf(json_object_get(cmd, "config"), err, sizeof err) != LX_OK)
            emit_error(err);
        else
            emit(json_pack("{s:s}", "event", "reloaded"));
    } else if (strcmp(op, "cancel") == 0) {
        const char *id = json_string_value(json_object_get(cmd, "id"));
        for (struct pending **pp = &P.calls; *pp; pp = &(*pp)->next)
            if (id && strcmp((*pp)->id, id) == 0) {
                struct pending *p = *pp;
                *pp = p->next;
                lx_mcp_call_cancel(p->call, "cancelled by the probe");
                emit(json_pack("{s:s, s:s}", "event", "cancelled", "id", id));
                free(p->id);
                free(p);
                return;
            }
        emit_error("no such call");
    } else if (!s) {
        emit_error("no such server");
    } else if (strcmp(op, "wait") == 0) {
        struct waiter *w = lx_calloc(1, sizeof *w);
        w->server = lx_strdup(server);
        json_t *t = json_object_get(cmd, "timeout_ms");
        lx_mcp_when_settled(s, json_is_integer(t) ? (long)json_integer_value(t) : 30000, settled_cb, w);
    } else if (strcmp(op, "tools") == 0) {
        json_t *tools = lx_mcp_server_tools(s);
        emit(json_pack("{s:s, s:s, s:O?}", "event", "tools", "server", server, "tools", tools));
    } else if (strcmp(op, "call") == 0) {
        const char *id = json_string_value(json_object_get(cmd, "id"));
        const char *tool = json_string_value(json_object_get(cmd, "tool"));
        if (!id || !tool) {
            emit_error("call needs \"id\" and \"tool\"");
            return;
        }
        json_t *t = json_object_get(cmd, "timeout_ms");
        start_call(id, s, tool, json_object_get(cmd, "arguments"), json_is_integer(t) ? (long)json_integer_value(t) : 0);
    } else {
        emit_error("unknown op");
    }
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
        quit();
        return;
    }
    lx_buf_append(&P.in, buf, (size_t)n);
    char *nl;
    while (!P.quitting && (nl = memchr(lx_buf_head(&P.in), '\n', lx_buf_avail(&P.in)))) {
        size_t len = (size_t)(nl - lx_buf_head(&P.in));
        json_t *cmd = len ? json_loadb(lx_buf_head(&P.in), len, 0, NULL) : NULL;
        lx_buf_consume(&P.in, len + 1);
        if (cmd)
            command(cmd);
        else if (len)
            emit_error("a line that is not JSON");
        json_decref(cmd);
    }
}

/* Arguments a schema accepts, made up: for the conformance suite's generic tools. */
static json_t *sample_args(json_t *schema)
{
    json_t *args = json_object();
    const char *key;
    json_t *prop;
    json_object_foreach(json_object_get(schema, "properties"), key, prop) {
        const char *type = json_string_value(json_object_get(prop, "type"));
        if (type && (strcmp(type, "number") == 0 || strcmp(type, "integer") == 0))
            json_object_set_new(args, key, json_integer(2));
        else if (type && strcmp(type, "boolean") == 0)
            json_object_set_new(args, key, json_true());
        else if (type && strcmp(type, "string") == 0)
            json_object_set_new(args, key, json_string("llmux"));
    }
    return args;
}

static void conformance_settled_cb(void *ctx)
{
    struct lx_mcp_server *s = lx_mcp_find(ctx);
    emit(json_pack("{s:s, s:o}", "event", "settled", "status", s ? lx_mcp_server_status(s) : json_null()));
    json_t *tools = s ? lx_mcp_server_tools(s) : NULL;
    if (!s || !tools) {
        P.conformance_failed++;
        quit();
        return;
    }
    P.conformance_left = (int)json_array_size(tools);
    if (P.conformance_left == 0) {
        quit();
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *args = sample_args(json_object_get(t, "inputSchema"));
        const char *name = json_string_value(json_object_get(t, "name"));
        start_call(name, s, name, args, 20000);
        json_decref(args);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 && !(argc == 3 && strcmp(argv[1], "--conformance") == 0)) {
        fprintf(stderr, "usage: mcp-probe CONFIG.json | mcp-probe --conformance URL\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (getenv("LLMUX_LOG_LEVEL")) {
        enum lx_log_level lvl;
        if (lx_log_parse_level(getenv("LLMUX_LOG_LEVEL"), &lvl) == LX_OK)
            lx_log_set_level(lvl);
    }
    if (lx_loop_init() != LX_OK || lx_upstream_init() != LX_OK)
        return 1;
    P.quit_timer = lx_timer_new(quit_poll_cb, NULL);
    char err[512];
    json_t *root;
    if (argc == 3) {
        P.conformance = true;
        root = json_pack("{s:{s:{s:s, s:i}}}", "mcp_servers", "conformance", "url", argv[2], "connect_timeout_ms",
                         5000);
    } else {
        json_error_t jerr;
        root = json_load_file(argv[1], 0, &jerr);
        if (!root) {
            fprintf(stderr, "mcp-probe: %s: %s\n", argv[1], jerr.text);
            return 2;
        }
    }
    int rc = load_conf(root, err, sizeof err);
    json_decref(root);
    if (rc != LX_OK) {
        fprintf(stderr, "mcp-probe: %s\n", err);
        return 2;
    }
    if (P.conformance) {
        lx_mcp_when_settled(lx_mcp_find("conformance"), 20000, conformance_settled_cb, "conformance");
    } else {
        P.stdin_ev = event_new(lx_loop_base(), 0, EV_READ | EV_PERSIST, stdin_cb, NULL);
        event_add(P.stdin_ev, NULL);
    }
    emit(json_pack("{s:s}", "event", "started"));
    lx_loop_run();
    if (P.stdin_ev)
        event_free(P.stdin_ev);
    lx_timer_free(P.quit_timer);
    lx_upstream_shutdown();
    lx_loop_drain();
    lx_child_shutdown();
    lx_loop_free();
    lx_mcp_conf_free(&P.conf);
    lx_buf_free(&P.in);
    return P.conformance_failed ? 1 : 0;
}
