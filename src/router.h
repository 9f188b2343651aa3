/* Model routing: "PROVIDER/MODEL" or an alias → the configured provider and the model name it is sent. */
#ifndef LX_ROUTER_H
#define LX_ROUTER_H

#include "config.h"
#include "errors.h"

struct lx_route {
    const struct lx_provider_conf *provider; /* borrowed from the config */
    char *model;                             /* owned: name sent upstream */
};

/* LX_OK with out filled, or LX_ERR with err set (404 model_not_found, 503 provider disabled). */
int lx_route_model(const struct lx_config *c, const char *name, struct lx_route *out, struct lx_error *err);

#endif
