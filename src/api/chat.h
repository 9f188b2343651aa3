/* POST /v1/chat/completions (and, with their dialects, the APIs that translate to it): the request is
 * parsed by its dialect, routed, and answered by one relayed call (relay.h). */
#ifndef LX_API_CHAT_H
#define LX_API_CHAT_H

#include "../../dialects/dialect.h"

struct lx_req;

void lx_chat_handle(struct lx_req *req, const struct lx_dialect *d);

#endif
