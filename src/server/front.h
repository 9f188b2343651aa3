/* The client side of every connection, in front of libmicrohttpd. llmux reads each byte a client sends,
 * checks every request's framing with reqhead.c, and handles only whole, well-framed requests, one at a
 * time. The hot endpoints (hooks.direct: a chat completion, an embeddings call) are answered by the front
 * itself (direct.c), which writes the answer as MHD would; every other request goes to MHD in canonical
 * form over a socketpair, made when the connection first needs it, and MHD's answer comes back through the
 * pair and is copied to the client. So MHD never reads a byte llmux has not checked, no request can hide
 * inside another, and a connection that only calls the hot endpoints costs one descriptor and no MHD
 * connection. HTTP-layer errors (400, 408, 413, 414, 431, 501, 505, and the 503 of limits.max_connections)
 * are answered here, in OpenAI's shape, as the only response, and the connection then closes.
 *
 * A FIN from the client is a half-close, not a disconnect: every request read before it is answered. A
 * client that closed completely is found by the reset its TCP stack sends when llmux next writes to it;
 * when nothing of the answer has been written yet, llmux writes a "100 Continue" interim response (HTTP/1.1
 * clients must accept one) so that a client that left is noticed at once and its upstream work stops. */
#ifndef LX_FRONT_H
#define LX_FRONT_H

#include <stdbool.h>
#include <stddef.h>

struct lx_config;
struct lx_error;
struct lx_front;
struct lx_req;

/* What the HTTP server gives the front, once. All run from the loop, never inside MHD. */
struct lx_front_hooks {
    /* The client of the request being handled (ctx: from lx_front_set_request, or the front's own
     * request) is gone: abort that request. */
    void (*client_gone)(void *ctx);
    /* The client of that request sent a FIN after bytes of its answer went out: queue bytes the client
     * will skip, if the answer allows, so that one that closed for good resets. True when some will go.
     * May be called inside MHD: it only defers. NULL: no probe. */
    bool (*probe)(void *ctx);
    /* No connection has bytes left to send or a request half read (for the drain at shutdown). */
    void (*idle)(void);
    /* Give a connection to MHD (site: from lx_front_open): the front's end of a new socketpair whose other
     * end MHD serves, or -1 when that cannot be done now. */
    int (*attach)(void *site, struct lx_front *f);
    /* Is `METHOD path` one the front answers itself? NULL: none. */
    bool (*direct)(const char *method, size_t method_len, const char *path, size_t path_len);
    /* Where the requests the front answers go: the route table. */
    void (*route)(struct lx_req *req);
    /* The reason phrase of a status line, as MHD writes it. */
    const char *(*reason)(int status);
};

/* Set once by the HTTP server. max_head: the largest request head MHD can hold, whatever
 * limits.max_header_bytes says later. */
void lx_front_init(const struct lx_front_hooks *hooks, size_t max_head);
/* Limits for requests read from now on (a reference is taken). */
void lx_front_set_config(struct lx_config *cfg);

/* Take over an accepted client socket. site is handed to hooks.attach; direct_ok: requests of the hot
 * endpoints may be answered by the front; *count (when not NULL) counts the connection while it is open. */
struct lx_front *lx_front_open(int client_fd, void *site, bool direct_ok, size_t *count);
/* MHD let go of its end (its close notification, or MHD_add_connection failed and closed it). */
void lx_front_mhd_closed(struct lx_front *f);
/* MHD started handling the request the front handed it: ctx is what client_gone gets. Returns when the
 * request's first byte arrived (lx_now_ms_f). */
double lx_front_set_request(struct lx_front *f, void *ctx);
/* MHD parked that request: its answer is not ready yet (a half-closed client may then be probed). */
void lx_front_waiting(struct lx_front *f);
/* MHD completed that request (its answer is all in the pair): the front goes on with the next one. */
void lx_front_request_done(struct lx_front *f);
/* The client socket (-1 once closed). */
int lx_front_fd(const struct lx_front *f);
/* Run the connection's write callback on this loop turn: the answer of a request the front answers
 * itself has something new (direct.c; any context, libcurl callbacks included). */
void lx_front_kick(struct lx_front *f);

/* Answer a client socket that MHD will never see with e (the 503 of limits.max_connections), then close. */
void lx_front_refuse(int client_fd, const struct lx_error *e);

/* Connections with bytes still to send or a request half read. */
size_t lx_front_busy(void);
/* Requests the front is answering itself. */
size_t lx_front_serving(void);
/* Abort every request the front is answering itself (their handlers are told, their clients cut). */
void lx_front_abort_all(void);
/* Close every connection at once (at exit, after MHD stopped). */
void lx_front_shutdown(void);

#endif
