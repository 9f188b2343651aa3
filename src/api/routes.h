/* The endpoint table: (method, path) → handler, with 404 and 405 answers for the rest. */
#ifndef LX_DISPATCH_H
#define LX_DISPATCH_H

struct lx_req;

/* Called by http.c once a request's body is complete. The handler answers now or later. */
void lx_dispatch(struct lx_req *req);

#endif
