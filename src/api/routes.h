/* The endpoint table: (method, path) → handler, with 404 and 405 answers for the rest.
 *
 * The api/ layer: the route table and the endpoints, with the relay (one call relayed to the client) and
 * the reply (an answer written in the client's dialect). It may include every layer below it (src/core/,
 * src/io/, src/server/, src/engine/, providers/, dialects/), never the composition root. */
#ifndef LX_ROUTES_H
#define LX_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

struct lx_req;

/* Hand a request whose body is complete to its endpoint (main.c gives this to the server). The handler
 * answers now or later. */
void lx_routes_dispatch(struct lx_req *req);
/* Is `METHOD path` (path without its query) one of the hot endpoints, which the server answers on its
 * fast path (main.c gives this to the server too)? */
bool lx_routes_direct(const char *method, size_t method_len, const char *path, size_t path_len);

#endif
