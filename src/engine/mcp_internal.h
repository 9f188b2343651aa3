/* Inside the MCP client: the server object, JSON-RPC requests in flight, and the transport table that
 * mcp_http.c and mcp_stdio.c fill. Only mcp_*.c include this. Moves to src/engine/mcp_internal.h. */
#ifndef LX_MCP_INTERNAL_H
#define LX_MCP_INTERNAL_H

#include "mcp.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct lx_timer;

#define LX_MCP_V2026 "2026-07-28"
#define LX_MCP_V2025 "2025-11-25"
/* _meta keys of the 2026-07-28 revision. */
#define LX_MCP_META_VERSION "io.modelcontextprotocol/protocolVersion"
#define LX_MCP_META_CLIENT "io.modelcontextprotocol/clientInfo"
#define LX_MCP_META_CAPS "io.modelcontextprotocol/clientCapabilities"
#define LX_MCP_META_SERVER "io.modelcontextprotocol/serverInfo"

/* Which generation of the protocol a server speaks: 2026-07-28 (modern, stateless) or the initialize
 * handshake (legacy: 2025-11-25 and before). */
enum mcp_era { MCP_ERA_UNKNOWN, MCP_ERA_MODERN, MCP_ERA_LEGACY };

/* A client's life: DISABLED (config) and STOPPED are final; STARTING → NEGOTIATING → READY, and any
 * failure → BACKOFF → STARTING again. */
enum mcp_state { MCP_DISABLED, MCP_STARTING, MCP_NEGOTIATING, MCP_READY, MCP_BACKOFF, MCP_STOPPED, MCP_STATE_COUNT };
const char *mcp_state_name(enum mcp_state s);

/* Why a request got no answer. */
enum mcp_fail {
    MCP_FAIL_NONE,
    MCP_FAIL_CONNECT,   /* the server could not be reached at all */
    MCP_FAIL_TRANSPORT, /* an HTTP error status, a stream cut short, a process gone */
    MCP_FAIL_TIMEOUT,
    MCP_FAIL_SESSION,   /* the session is gone (HTTP 404 on it): initialize again and resend */
};

struct mcp_reply {
    json_t *result;      /* borrowed: the JSON-RPC result, or NULL */
    json_t *error;       /* borrowed: the JSON-RPC error object, or NULL */
    int http_status;     /* the HTTP status of the exchange (0 on stdio or without an answer) */
    enum mcp_fail fail;
    const char *detail;  /* why, when neither result nor error */
};

struct mcp_rpc;
typedef void (*mcp_rpc_cb)(struct lx_mcp_server *s, void *ctx, const struct mcp_reply *r);

/* One JSON-RPC request in flight. */
struct mcp_rpc {
    struct lx_mcp_server *srv;
    json_int_t id;
    json_t *msg;            /* owned: the request as sent */
    const char *method;     /* borrowed from msg */
    char **headers;         /* owned: extra HTTP header lines (Mcp-Name, Mcp-Param-*) */
    size_t n_headers;
    mcp_rpc_cb cb;
    void *ctx;
    struct lx_timer *timer; /* owned: the request's own timeout (internal requests), or NULL */
    void *tx;               /* the transport's per-request state, or NULL */
    bool resent;            /* already sent once more after the session came back */
    bool parked;            /* waiting for a new session */
    struct mcp_rpc *prev, *next;
};

/* What a transport does; every slot is called from the loop. */
struct mcp_transport {
    const char *name; /* "http" or "stdio" */
    /* Get ready to carry messages (spawn the child). LX_ERR with err: the attempt failed. */
    int (*start)(struct lx_mcp_server *s, char *err, size_t errlen);
    /* Send a request; its answer comes back through mcp_dispatch, or mcp_rpc_fail. Never calls either
     * before returning. */
    void (*send)(struct lx_mcp_server *s, struct mcp_rpc *rpc);
    /* Send a notification or a response to a server request (msg stolen); nothing comes back. */
    void (*notify)(struct lx_mcp_server *s, json_t *msg);
    /* The request is over (answered, failed or cancelled): drop its state, and close its response stream
     * when cancel is true. */
    void (*finish)(struct lx_mcp_server *s, struct mcp_rpc *rpc, bool cancel);
    /* Open the server's notification stream (GET, or subscriptions/listen) where the transport has one;
     * list_changed: the server announces tool list changes. */
    void (*listen)(struct lx_mcp_server *s, bool list_changed);
    /* Stop carrying messages (end the session, stop the child); every request was finished before. */
    void (*stop)(struct lx_mcp_server *s);
};

extern const struct mcp_transport lx_mcp_http_transport;
extern const struct mcp_transport lx_mcp_stdio_transport;

struct mcp_call_list;
struct mcp_wait_list;

struct lx_mcp_server {
    struct lx_mcp_server_conf conf;   /* owned copy */
    const struct mcp_transport *tx;
    void *tx_state;                   /* owned by the transport */
    enum mcp_state state;
    enum mcp_era era;
    bool probing;                     /* server/discover in flight: requests carry 2026-07-28's _meta */
    const char *version;              /* static: the revision in use (or being probed), NULL before */
    char *session_id;                 /* owned: Mcp-Session-Id (legacy HTTP), or NULL */
    json_t *server_info;              /* owned, or NULL */
    json_t *capabilities;             /* owned, or NULL */
    json_t *tools;                    /* owned: the current tool list, NULL before the first */
    json_t *tools_next;               /* owned: pages being gathered */
    int list_pages;
    bool listing, list_again;
    bool settled;                     /* the first attempt is over (tools listed, or failed) */
    bool stream_pending;              /* the notification stream is being opened: not settled before */
    uint64_t tools_at_ms;             /* wall clock of the last list, ms */
    json_int_t next_id;
    struct mcp_rpc *rpcs;             /* requests in flight */
    struct lx_mcp_call *queued;       /* calls waiting for READY */
    struct lx_mcp_call *running;      /* calls whose request is in flight */
    struct lx_mcp_wait *waits;
    struct lx_timer *retry_timer;     /* owned: next attempt after a failure */
    struct lx_timer *refresh_timer;   /* owned: periodic tools/list */
    long backoff_ms;
    uint64_t up_since_ms;             /* monotonic ms when it became READY, 0 when not */
    char *last_error;                 /* owned, or NULL */
    unsigned restarts;
    bool stopping;
    bool final;                /* stopped after the loop's last turn: nothing more can be sent */
};

/* The counters lx_mcp_stats shows. */
extern struct lx_mcp_stats mcp_counters;

/* --- called by transports --- */
/* A message from the server (borrowed): a response, a server request or a notification. */
void mcp_dispatch(struct lx_mcp_server *s, json_t *msg);
/* The transport's verdict on a request that got no answer. error (borrowed) may carry a JSON-RPC error
 * found in an HTTP error body. */
void mcp_rpc_fail(struct mcp_rpc *rpc, enum mcp_fail fail, int http_status, json_t *error, const char *detail);
/* The transport is gone (the process exited): fail everything, try again after a backoff. */
void mcp_transport_down(struct lx_mcp_server *s, const char *why);
/* The notification stream answered (or failed to): the server can reach llmux as well. */
void mcp_stream_ready(struct lx_mcp_server *s);
/* The session was lost outside a request (a 404 on the GET stream): initialize again. */
void mcp_session_lost(struct lx_mcp_server *s);
/* A request message for method (params stolen, may be NULL) with a fresh id, carrying 2026-07-28's
 * _meta when the server speaks it (for transports' own long-lived requests). */
json_t *mcp_request_json(struct lx_mcp_server *s, const char *method, json_t *params, json_int_t *id);
bool mcp_modern(const struct lx_mcp_server *s);

/* --- tools (mcp_tools.c) --- */
/* Start listing tools (all pages); a list already running is run once more after it. */
void mcp_tools_list(struct lx_mcp_server *s);
/* Header lines a tools/call of tool with arguments carries on 2026-07-28 HTTP: Mcp-Name and the
 * Mcp-Param-* of parameters its inputSchema marks with x-mcp-header. */
void mcp_tools_call_headers(struct lx_mcp_server *s, const char *tool, json_t *arguments, struct mcp_rpc *rpc);
/* A header value as 2026-07-28 wants it: as is when plain ASCII, else =?base64?...?=. Caller frees. */
char *mcp_header_value(const char *v, size_t len);
/* LX_OK when the x-mcp-header marks of schema are valid (why set otherwise); decls, when not NULL, gets
 * [{"path":[...], "header":"Name"}]. */
int mcp_xheader_scan(json_t *schema, json_t *decls, char *why, size_t whylen);

/* --- core helpers for mcp_tools.c --- */
/* A request (params stolen) with a timeout (0: none), registered but not sent yet. */
struct mcp_rpc *mcp_rpc_start(struct lx_mcp_server *s, const char *method, json_t *params, long timeout_ms,
                              mcp_rpc_cb cb, void *ctx);
void mcp_rpc_send(struct lx_mcp_server *s, struct mcp_rpc *rpc);
void mcp_settle(struct lx_mcp_server *s);

#endif
