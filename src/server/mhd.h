/* The HTTP server: libmicrohttpd in epoll mode inside the loop, with no thread of its own, behind the
 * connection front (front.h). It is the transport of server/req.h's requests. */
#ifndef LX_HTTP_H
#define LX_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct lx_config;
struct lx_req;

/* Bind the server section's listen ("HOST:PORT", port 0 = any free port), and admin_listen if set, and
 * start serving; prints the bound addresses. Each request whose body is in goes to route. Requests on
 * the main address for which direct(METHOD, path) says true are answered by the connection front itself
 * rather than MHD (the hot path, front.h); direct may be NULL. */
int lx_http_start(struct lx_config *cfg, void (*route)(struct lx_req *req),
                  bool (*direct)(const char *method, size_t method_len, const char *path, size_t path_len), char *err,
                  size_t errlen);
/* New requests run under cfg from now on (a reference is taken); requests in flight keep theirs. */
void lx_http_set_config(struct lx_config *cfg);
/* The port actually bound. */
int lx_http_port(void);
/* Stop accepting; on_idle runs (from the loop) once no request is live. */
void lx_http_quiesce(void (*on_idle)(void));
/* Abort every live request (their handlers are told, their clients cut). */
void lx_http_abort_all(void);
void lx_http_stop(void);
/* Requests in progress (any listener). */
size_t lx_http_live(void);
/* Open client connections on the main address. */
size_t lx_http_connections(void);

#endif
