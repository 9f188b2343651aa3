/* GET /v1/models: every provider's models, fetched concurrently, plus configured models and aliases. */
#ifndef LX_MODELS_H
#define LX_MODELS_H

struct lx_req;

void lx_models_handle(struct lx_req *req);

#endif
