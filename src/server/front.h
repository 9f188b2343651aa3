/* The client side of every connection, in front of libmicrohttpd. llmux reads each byte a client sends,
 * checks every request's framing with reqhead.c, and hands MHD only whole, well-framed requests in
 * canonical form, one at a time, over a socketpair; MHD's answers come back through the pair and are
 * copied to the client. So MHD never reads a byte llmux has not checked, and no request can hide inside
 * another. HTTP-layer errors (400, 408, 413, 414, 431, 501, 505, and the 503 of limits.max_connections)
 * are answered here, in OpenAI's shape, as the only response, and the connection then closes.
 *
 * A FIN from the client is a half-close, not a disconnect: every request read before it is answered. A
 * client that closed completely is found by the reset its TCP stack sends when llmux next writes to it;
 * when nothing of the answer has been written yet, llmux writes a "100 Continue" interim response (HTTP/1.1
 * clients must accept one) so that a client that left is noticed at once and its upstream work stops. */
#ifndef LX_FRONT_H
#define LX_FRONT_H

#include <stddef.h>

struct lx_config;
struct lx_error;
struct lx_front;

/* Set once by the HTTP server. client_gone(ctx): the client of the request MHD is handling (ctx from
 * lx_front_set_request) is gone; abort that request. idle(): no connection has bytes left to send or a
 * request half read (for the drain at shutdown). Both run from the loop, never inside MHD. max_head: the
 * largest request head MHD can hold, whatever limits.max_header_bytes says later. */
void lx_front_init(void (*client_gone)(void *ctx), void (*idle)(void), size_t max_head);
/* Limits for requests read from now on (a reference is taken). */
void lx_front_set_config(struct lx_config *cfg);

/* Take over an accepted client socket. Returns the socket MHD is to serve (the other end of the pair),
 * or -1 when out of descriptors (the client socket is then closed). */
int lx_front_open(int client_fd, struct lx_front **front);
/* MHD let go of its end (its close notification, or MHD_add_connection failed and closed it). */
void lx_front_mhd_closed(struct lx_front *f);
/* MHD started handling the request the front handed it: ctx is what client_gone gets. Returns when the
 * request's first byte arrived (lx_now_ms_f). */
double lx_front_set_request(struct lx_front *f, void *ctx);
/* MHD parked that request: its answer is not ready yet (a half-closed client may then be probed). */
void lx_front_waiting(struct lx_front *f);
/* MHD completed that request (its answer is all in the pair): the front goes on with the next one. */
void lx_front_request_done(struct lx_front *f);

/* Answer a client socket that MHD will never see with e (the 503 of limits.max_connections), then close. */
void lx_front_refuse(int client_fd, const struct lx_error *e);

/* Connections with bytes still to send or a request half read. */
size_t lx_front_busy(void);
/* Close every connection at once (at exit, after MHD stopped). */
void lx_front_shutdown(void);

#endif
