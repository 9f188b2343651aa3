/* Parsing the API layer's section: fanout and batch limits, the model listing budget, the keep-alive. */
#include "../core/conf.h"
#include "conf.h"
#include "../core/common.h"
#include "../core/confread.h"

#include <stdlib.h>

const char *const lx_api_conf_keys[] = {"fanout", "batch", "models_timeout_ms", "keepalive_ms", NULL};

static int parse_fanout_batch(struct lx_api_conf *c, json_t *root, char *err, size_t errlen)
{
    static const char *const fkeys[] = {"max_models", NULL};
    static const char *const bkeys[] = {"max_requests", "default_concurrency", "max_concurrency", NULL};
    json_t *f, *b;
    if (lx_conf_object(root, "fanout", "", &f, err, errlen) != LX_OK ||
        lx_conf_object(root, "batch", "", &b, err, errlen) != LX_OK)
        return LX_ERR;
    if (f && (lx_conf_unknown_keys(f, fkeys, "fanout", err, errlen) != LX_OK ||
              lx_conf_long(f, "max_models", "fanout", 1, 256, &c->fanout_max_models, err, errlen) != LX_OK))
        return LX_ERR;
    if (b && (lx_conf_unknown_keys(b, bkeys, "batch", err, errlen) != LX_OK ||
              lx_conf_long(b, "max_requests", "batch", 1, 1000000, &c->batch_max_requests, err, errlen) != LX_OK ||
              lx_conf_long(b, "max_concurrency", "batch", 1, 100000, &c->batch_max_concurrency, err, errlen) !=
                  LX_OK ||
              lx_conf_long(b, "default_concurrency", "batch", 1, 100000, &c->batch_default_concurrency, err,
                           errlen) != LX_OK))
        return LX_ERR;
    if (c->batch_default_concurrency > c->batch_max_concurrency) {
        lx_conf_err(err, errlen, "batch.default_concurrency: must not exceed batch.max_concurrency (%ld)",
                c->batch_max_concurrency);
        return LX_ERR;
    }
    return LX_OK;
}


int lx_api_conf_parse(struct lx_config *cfg, json_t *root, char *err, size_t errlen)
{
    struct lx_api_conf *c = cfg->api = lx_calloc(1, sizeof *c);
    c->fanout_max_models = 16;
    c->batch_max_requests = 10000;
    c->batch_default_concurrency = 100;
    c->batch_max_concurrency = 1000;
    c->models_timeout_ms = 3000;
    if (parse_fanout_batch(c, root, err, errlen) != LX_OK ||
        lx_conf_long(root, "models_timeout_ms", "", 1, 600000, &c->models_timeout_ms, err, errlen) != LX_OK ||
        lx_conf_long(root, "keepalive_ms", "", 0, 3600000, &c->keepalive_ms, err, errlen) != LX_OK)
        return LX_ERR;
    return LX_OK;
}

void lx_api_conf_free(struct lx_config *cfg)
{
    free(cfg->api);
    cfg->api = NULL;
}
