/* POST /v1/messages and POST /v1/messages/count_tokens: the Anthropic Messages API in front of any
 * target (messages.c). */
#ifndef LX_API_MESSAGES_H
#define LX_API_MESSAGES_H

struct lx_req;

void lx_messages_handle(struct lx_req *req);
void lx_messages_count_handle(struct lx_req *req);

#endif
