/* The endpoint table: (method, path) → handler, with 404 and 405 answers for the rest. */
#ifndef LX_DISPATCH_H
#define LX_DISPATCH_H

struct lx_req;

/* Hand a request whose body is complete to its endpoint (main.c gives this to the server). The handler
 * answers now or later. */
void lx_routes_dispatch(struct lx_req *req);

#endif
