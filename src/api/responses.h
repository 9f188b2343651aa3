/* The Responses API endpoints: POST /v1/responses (a turn, with its state in the store), GET and DELETE
 * /v1/responses/{id}, GET /v1/responses/{id}/input_items, POST /v1/responses/{id}/cancel (refused: no
 * background responses). */
#ifndef LX_API_RESPONSES_H
#define LX_API_RESPONSES_H

#include "../engine/store.h"
#include "../core/errors.h"

struct lx_req;

void lx_responses_create(struct lx_req *req);
/* Everything below /v1/responses/: the method and the rest of the path choose. */
void lx_responses_resource(struct lx_req *req);

/* The after, limit (1-100, default 20) and order (asc | desc, default desc) query parameters of a list
 * request. LX_ERR with a 400 in err. */
int lx_responses_page(struct lx_req *req, struct lx_store_page *page, struct lx_error *err);

#endif
