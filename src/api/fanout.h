/* POST /v1/fanout: one prompt to several models, all the answers or the first. */
#ifndef LX_FANOUT_H
#define LX_FANOUT_H

struct lx_req;

void lx_fanout_handle(struct lx_req *req);

#endif
