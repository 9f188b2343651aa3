/* The MCP client: llmux's connections to the MCP servers named in config ("mcp_servers"), on the loop.
 *
 * Transports: Streamable HTTP over the shared curl multi (mcp_http.c) and stdio child processes
 * (mcp_stdio.c). Revisions: 2026-07-28 (stateless: server/discover, _meta, Mcp-Method / Mcp-Name /
 * Mcp-Param-* headers) is tried first; a server that does not speak it gets the 2025-11-25 handshake
 * (initialize, Mcp-Session-Id, MCP-Protocol-Version; 2025-06-18 and 2025-03-26 answers are accepted).
 * Each server keeps its tool list (tools/list, paged) fresh on notifications/tools/list_changed and on
 * an interval. Tool calls carry a timeout and can be cancelled. Everything runs on the loop: callbacks
 * are made from loop callbacks, never from inside libcurl. Moves to src/engine/mcp.h. */
#ifndef LX_MCP_H
#define LX_MCP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- configuration: the "mcp_servers" section ---- */

enum lx_mcp_transport { LX_MCP_HTTP, LX_MCP_STDIO };

/* Which revision to speak: try the newest and fall back (auto), or only one. */
enum lx_mcp_protocol { LX_MCP_PROTO_AUTO, LX_MCP_PROTO_2026, LX_MCP_PROTO_2025 };

struct lx_mcp_tool_timeout {
    char *tool;      /* owned */
    long timeout_ms;
};

struct lx_mcp_server_conf {
    char *name;                 /* owned: [A-Za-z0-9_-], at most 32 characters, no "__" */
    enum lx_mcp_transport transport;
    char *url;                  /* owned (http): the MCP endpoint */
    char **headers;             /* owned (http): "Name: value" lines; values are secret, never logged */
    size_t n_headers;
    char *command;              /* owned (stdio) */
    char **args;                /* owned (stdio): argv[1..] */
    size_t n_args;
    char **env;                 /* owned (stdio): "NAME=value" added to llmux's environment */
    size_t n_env;
    long timeout_ms;            /* one tool call, unless tool_timeouts names the tool (default 30000) */
    struct lx_mcp_tool_timeout *tool_timeouts; /* owned */
    size_t n_tool_timeouts;
    long connect_timeout_ms;    /* connect, handshake and tools/list requests (default 10000) */
    long tools_refresh_ms;      /* re-list tools this often; 0 = only on list_changed (default 300000) */
    enum lx_mcp_protocol protocol;
    char *disabled_reason;      /* owned; non-NULL: a ${VAR} was unset, the server is not started */
};

struct lx_mcp_conf {
    struct lx_mcp_server_conf *servers; /* owned */
    size_t n_servers;
};

/* Parse the "mcp_servers" object (section may be NULL: no servers) into out, expanding ${VAR} itself
 * (a server whose variable is unset is kept, disabled, with the reason). LX_OK, or LX_ERR with
 * "mcp_servers.NAME.key: reason" in err (values are never quoted: they may be secrets). */
int lx_mcp_conf_parse(json_t *section, struct lx_mcp_conf *out, char *err, size_t errlen);
void lx_mcp_conf_free(struct lx_mcp_conf *c);
/* Deep copy of one server's config into d (free with lx_mcp_server_conf_free). */
void lx_mcp_server_conf_copy(struct lx_mcp_server_conf *d, const struct lx_mcp_server_conf *s);
void lx_mcp_server_conf_free(struct lx_mcp_server_conf *s);
/* The configuration's section: the servers and the tool loop's limits ("mcp": {...}). */
struct lx_mcp_section {
    struct lx_mcp_conf servers;
    long max_tool_rounds;       /* mcp.max_tool_rounds: rounds of server tool calls per request (8) */
    long max_result_bytes;      /* mcp.max_result_bytes: one tool result as the model gets it (65536) */
    long settle_timeout_ms;     /* mcp.settle_timeout_ms: longest wait for a starting server's tools (10000) */
};
struct lx_config;
extern const char *const lx_mcp_section_keys[];     /* "mcp_servers", "mcp" */
extern const char *const lx_mcp_section_raw_keys[]; /* "mcp_servers": it expands its own ${VAR}s */
/* Fill c->mcp from root (after the engine's section: alias "mcp" lists are checked here). */
int lx_mcp_section_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_mcp_section_free(struct lx_config *c);

/* The timeout of one call of tool on s. */
long lx_mcp_conf_tool_timeout(const struct lx_mcp_server_conf *s, const char *tool);
/* True when a and b would run the same server the same way (a reload keeps its connection). */
bool lx_mcp_conf_same(const struct lx_mcp_server_conf *a, const struct lx_mcp_server_conf *b);

/* ---- the live clients ---- */

struct lx_mcp_server;
struct lx_mcp_call;

/* What became of a tool call. */
enum lx_mcp_outcome {
    LX_MCP_OK,          /* the tool ran; result holds its CallToolResult */
    LX_MCP_TOOL_ERROR,  /* the tool ran and reported failure (isError: true); result holds it */
    LX_MCP_RPC_ERROR,   /* the server refused the call (a JSON-RPC error: unknown tool, bad arguments) */
    LX_MCP_TIMEOUT,     /* no answer within the timeout: the call was cancelled */
    LX_MCP_UNAVAILABLE, /* the server could not be reached, or went away mid-call */
    LX_MCP_OUTCOME_COUNT
};

/* "ok", "tool_error", "rpc_error", "timeout", "unavailable": metric labels and log fields. */
const char *lx_mcp_outcome_name(enum lx_mcp_outcome o);

struct lx_mcp_result {
    enum lx_mcp_outcome outcome;
    json_t *result;     /* borrowed for the callback: the CallToolResult, or NULL */
    const char *detail; /* borrowed for the callback: why, when not OK (no secrets); else NULL */
    double duration_ms; /* from lx_mcp_call_tool to the answer */
};

typedef void (*lx_mcp_call_cb)(void *ctx, const struct lx_mcp_result *r);

/* Start the clients of conf's servers, stop those no longer named, restart changed ones; unchanged ones
 * keep their connection, session and tool list. conf is copied. */
void lx_mcp_apply(const struct lx_mcp_conf *conf);
/* Stop every client: end sessions (best effort, unless loop_over: the loop will not run again, so nothing
 * could be sent), stop child processes. In-flight calls get LX_MCP_UNAVAILABLE. */
void lx_mcp_shutdown(bool loop_over);

size_t lx_mcp_count(void);
struct lx_mcp_server *lx_mcp_at(size_t i);
struct lx_mcp_server *lx_mcp_find(const char *name);
const char *lx_mcp_server_name(const struct lx_mcp_server *s);
const struct lx_mcp_server_conf *lx_mcp_server_conf(const struct lx_mcp_server *s);
/* The server's tools as it listed them (a JSON array of Tool objects, borrowed; valid until the next
 * loop turn), or NULL before the first list arrived. */
json_t *lx_mcp_server_tools(const struct lx_mcp_server *s);
/* The tool named name, or NULL. */
json_t *lx_mcp_server_tool(const struct lx_mcp_server *s, const char *name);
/* {"name","transport","url"|"command","protocol","state","healthy","tools","error","server_info",...}
 * for GET /v1/mcp/servers (new reference; header values never appear). */
json_t *lx_mcp_server_status(const struct lx_mcp_server *s);
/* True once the first tool list arrived (or the server failed to start): waiting is over. */
bool lx_mcp_server_settled(const struct lx_mcp_server *s);

/* Call cb once s is settled (at once, from the loop, when it already is), or after timeout_ms with
 * whatever it has. Returns a handle for lx_mcp_wait_cancel. */
struct lx_mcp_wait;
struct lx_mcp_wait *lx_mcp_when_settled(struct lx_mcp_server *s, long timeout_ms, void (*cb)(void *ctx),
                                        void *ctx);
void lx_mcp_wait_cancel(struct lx_mcp_wait *w);

/* Call tool with arguments (borrowed; NULL = {}) on s; timeout_ms 0 = the configured one. cb runs once,
 * from the loop (never before this returns), unless the call is cancelled first. */
struct lx_mcp_call *lx_mcp_call_tool(struct lx_mcp_server *s, const char *tool, json_t *arguments,
                                     long timeout_ms, lx_mcp_call_cb cb, void *ctx);
/* Cancel: the server is told (notifications/cancelled, or the response stream is closed); no callback
 * follows. */
void lx_mcp_call_cancel(struct lx_mcp_call *c, const char *reason);

/* The text a model should see for a CallToolResult: text parts as they are, other content described in
 * brackets ([image: image/png, 1234 bytes], [resource: uri] with its text), structuredContent as JSON
 * when no text says it; at most max_bytes (longer: cut, with a note). Caller frees. */
char *lx_mcp_result_text(const json_t *result, size_t max_bytes);

/* Counters for /metrics and tests. */
struct lx_mcp_stats {
    uint64_t rpcs_sent, notifications_sent, server_requests, sessions_started, session_expired,
        restarts, cancels_sent, resumes;
};
const struct lx_mcp_stats *lx_mcp_stats(void);

#endif
