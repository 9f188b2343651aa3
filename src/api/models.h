/* GET /v1/models and GET /v1/providers: concurrent probes of every provider. */
#ifndef LX_MODELS_H
#define LX_MODELS_H

struct lx_req;

void lx_models_handle(struct lx_req *req);
/* GET /v1/models/{id} (openai's models.retrieve): one entry of that list, or 404 model_not_found. */
void lx_model_handle(struct lx_req *req);
/* GET /v1/providers: every provider's type, base_url, capabilities and health, probed now. */
void lx_providers_handle(struct lx_req *req);

#endif
