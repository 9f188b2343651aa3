/* The Conversations API endpoints (POST /v1/conversations, and everything below /v1/conversations/{id}). */
#ifndef LX_API_CONVERSATIONS_H
#define LX_API_CONVERSATIONS_H

struct lx_req;

void lx_conversations_create(struct lx_req *req);
/* /v1/conversations/{id}, .../items, .../items/{item_id}: the method and the rest of the path choose. */
void lx_conversations_resource(struct lx_req *req);

#endif
