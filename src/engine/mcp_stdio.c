/* MCP's stdio transport: one child process per server (child.c), newline-delimited JSON-RPC on its
 * stdin and stdout, its stderr copied to llmux's log line by line. A child that exits takes its requests
 * with it; the client core restarts it after a backoff. Moves to src/engine/mcp_stdio.c. */
#include "mcp_internal.h"
#include "../core/buf.h"
#include "../io/child.h"
#include "../core/common.h"
#include "../core/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define LX_MCP_MAX_LINE (16u * 1024 * 1024)
#define LX_MCP_STDERR_LINE 2000 /* longest stderr line copied to the log */
#define LX_MCP_STOP_GRACE_MS 2000

struct stdio_state {
    struct lx_mcp_server *srv;
    struct lx_child *child; /* owned */
    struct lx_buf out;      /* owned: a partial stdout line */
    struct lx_buf err;      /* owned: a partial stderr line */
};

static void on_stdout(void *ctx, const char *data, size_t len)
{
    struct stdio_state *st = ctx;
    lx_buf_append(&st->out, data, len);
    for (;;) {
        const char *head = lx_buf_head(&st->out);
        const char *nl = memchr(head, '\n', lx_buf_avail(&st->out));
        if (!nl)
            break;
        size_t n = (size_t)(nl - head);
        json_t *msg = n ? json_loadb(head, n, 0, NULL) : NULL;
        lx_buf_consume(&st->out, n + 1);
        if (msg) {
            struct lx_mcp_server *s = st->srv;
            mcp_dispatch(s, msg);
            json_decref(msg);
            if (s->tx_state != st)
                return; /* the dispatch stopped the transport */
        } else if (n) {
            lx_debug("mcp %s: a stdout line that is not JSON was ignored", st->srv->conf.name);
        }
    }
    if (lx_buf_avail(&st->out) > LX_MCP_MAX_LINE)
        mcp_transport_down(st->srv, "the server wrote a line longer than 16 MiB");
}

static void on_stderr(void *ctx, const char *data, size_t len)
{
    struct stdio_state *st = ctx;
    lx_buf_append(&st->err, data, len);
    for (;;) {
        const char *head = lx_buf_head(&st->err);
        const char *nl = memchr(head, '\n', lx_buf_avail(&st->err));
        size_t n = nl ? (size_t)(nl - head) : lx_buf_avail(&st->err);
        if (!nl && n < LX_MCP_STDERR_LINE)
            break;
        if (n && head[n - 1] == '\r')
            n--;
        lx_info("mcp %s (stderr): %.*s", st->srv->conf.name, (int)(n < LX_MCP_STDERR_LINE ? n : LX_MCP_STDERR_LINE),
                head);
        lx_buf_consume(&st->err, nl ? (size_t)(nl - head) + 1 : n);
    }
}

static void on_exit_cb(void *ctx, int status)
{
    struct stdio_state *st = ctx;
    char why[160];
    if (WIFEXITED(status))
        snprintf(why, sizeof why, "the server process exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "the server process was killed by signal %d", WTERMSIG(status));
    else
        snprintf(why, sizeof why, "the server process ended");
    if (st->err.len)
        on_stderr(st, "\n", 1);
    mcp_transport_down(st->srv, why);
}

static const struct lx_child_ops child_ops = {on_stdout, on_stderr, on_exit_cb};

static void stdio_stop(struct lx_mcp_server *s)
{
    struct stdio_state *st = s->tx_state;
    if (!st)
        return;
    if (st->child) {
        lx_child_close_stdin(st->child);
        lx_child_free(st->child, LX_MCP_STOP_GRACE_MS);
    }
    lx_buf_free(&st->out);
    lx_buf_free(&st->err);
    free(st);
    s->tx_state = NULL;
}

static int stdio_start(struct lx_mcp_server *s, char *err, size_t errlen)
{
    stdio_stop(s);
    struct stdio_state *st = lx_calloc(1, sizeof *st);
    st->srv = s;
    char **argv = lx_calloc(s->conf.n_args + 2, sizeof *argv);
    argv[0] = s->conf.command;
    for (size_t i = 0; i < s->conf.n_args; i++)
        argv[i + 1] = s->conf.args[i];
    st->child = lx_child_spawn(s->conf.command, argv, s->conf.env, &child_ops, st, err, errlen);
    free(argv);
    if (!st->child) {
        free(st);
        return LX_ERR;
    }
    lx_debug("mcp %s: started %s (pid %d)", s->conf.name, s->conf.command, (int)lx_child_pid(st->child));
    s->tx_state = st;
    return LX_OK;
}

static void write_line(struct lx_mcp_server *s, json_t *msg)
{
    struct stdio_state *st = s->tx_state;
    char *line = json_dumps(msg, JSON_COMPACT); /* compact JSON holds no newline */
    if (!st || !st->child || !line) {
        free(line);
        return;
    }
    size_t n = strlen(line);
    line[n] = '\n';
    /* A write that fails means the process is going: its exit fails the requests. */
    if (lx_child_write(st->child, line, n + 1) != LX_OK)
        lx_debug("mcp %s: the server's stdin is closed", s->conf.name);
    free(line);
}

static void stdio_send(struct lx_mcp_server *s, struct mcp_rpc *rpc)
{
    rpc->tx = s->tx_state;
    write_line(s, rpc->msg);
}

static void stdio_notify(struct lx_mcp_server *s, json_t *msg)
{
    write_line(s, msg);
    json_decref(msg);
}

static void stdio_finish(struct lx_mcp_server *s, struct mcp_rpc *rpc, bool cancel)
{
    (void)s;
    (void)cancel; /* one shared channel: nothing per request to close */
    rpc->tx = NULL;
}

static void stdio_listen(struct lx_mcp_server *s, bool list_changed)
{
    if (s->era != MCP_ERA_MODERN || !list_changed)
        return; /* 2025-11-25 servers send notifications on stdout as they like */
    json_int_t id;
    json_t *msg = mcp_request_json(s, "subscriptions/listen",
                                   json_pack("{s:{s:b}}", "notifications", "toolsListChanged", 1), &id);
    write_line(s, msg);
    json_decref(msg);
}

const struct mcp_transport lx_mcp_stdio_transport = {
    .name = "stdio",
    .start = stdio_start,
    .send = stdio_send,
    .notify = stdio_notify,
    .finish = stdio_finish,
    .listen = stdio_listen,
    .stop = stdio_stop,
};
