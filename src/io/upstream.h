/* Upstream HTTP transfers on libcurl's multi-socket API, driven by the shared libevent loop.
 * Callbacks to the owner: on_headers and on_body run inside libcurl callbacks (touch buffers and flags
 * only; they may call lx_upstream_cancel, which then defers the removal); on_done runs from the loop
 * after the transfer left the multi handle, and is the last call: the handle is freed after it. */
#ifndef LX_UPSTREAM_H
#define LX_UPSTREAM_H

#include <stddef.h>

struct lx_http_request;
struct lx_upstream;

enum lx_upstream_result {
    LX_UP_OK,       /* the whole response was received */
    LX_UP_CONNECT,  /* could not resolve or connect */
    LX_UP_TIMEOUT,  /* connect (or curl-level) timeout */
    LX_UP_BROKEN,   /* reset, closed early, or not HTTP */
    LX_UP_ABORTED,  /* on_body asked to stop */
};

struct lx_upstream_ops {
    /* Final (non-1xx) status line and headers are in. content_type/retry_after may be NULL. */
    void (*on_headers)(void *ctx, int status, const char *content_type, const char *retry_after);
    /* Body bytes. Return LX_OK (consumed), LX_AGAIN (not consumed: pause; lx_upstream_resume redelivers
     * them), LX_DONE (consumed, and the answer is complete: on_done(LX_UP_OK) follows from the loop at
     * once, whatever the rest of the body does) or LX_ERR (abort the transfer: on_done gets
     * LX_UP_ABORTED). */
    int (*on_body)(void *ctx, const char *data, size_t len);
    /* The transfer ended; detail is a human-readable reason for failures (never contains secrets). */
    void (*on_done)(void *ctx, enum lx_upstream_result result, const char *detail);
};

int lx_upstream_init(void);
/* GET url and wait for the answer: LX_OK on a 2xx within timeout_ms, else LX_ERR with the reason in err.
 * Blocking, so only for `llmux --health-check`, which runs without the loop. */
int lx_upstream_check_url(const char *url, long timeout_ms, char *err, size_t errlen);
void lx_upstream_shutdown(void);

/* Start a transfer (method "GET", "POST" or "DELETE"). The request's body is taken (req->body becomes
 * NULL), the rest copied; NULL when libcurl refused it. */
struct lx_upstream *lx_upstream_start(struct lx_http_request *req, long connect_timeout_ms,
                                      const struct lx_upstream_ops *ops, void *ctx);
/* Stop at once: no callback follows, and the connection is closed (unless on_body already said LX_DONE:
 * then the transfer keeps its short drain, see upstream.c). Any context. */
void lx_upstream_cancel(struct lx_upstream *u);
/* A response header of the final answer (the first one of that name), for on_headers: valid until on_headers
 * returns, NULL when absent. For protocols that carry state in headers (MCP's Mcp-Session-Id). */
const char *lx_upstream_header(struct lx_upstream *u, const char *name);
/* Undo an LX_AGAIN pause. Any context (deferred to the loop). */
void lx_upstream_resume(struct lx_upstream *u);
/* Transfers in flight, draining ones included (for tests and shutdown). */
size_t lx_upstream_active(void);

#endif
