/* The API layer's section of the configuration: limits of /v1/fanout and /v1/batch, the budget of the
 * model listing probes, and the keep-alive of silent streams. Parsed from "fanout", "batch",
 * "models_timeout_ms" and "keepalive_ms". */
#ifndef LX_API_CONF_H
#define LX_API_CONF_H

#include <jansson.h>
#include <stddef.h>

struct lx_config;

struct lx_api_conf {
    long fanout_max_models;     /* most entries in a /v1/fanout "models" list */
    long batch_max_requests;    /* most items in one /v1/batch */
    long batch_default_concurrency;
    long batch_max_concurrency;
    long models_timeout_ms;     /* budget for fetching upstream model lists in GET /v1/models */
    long keepalive_ms;          /* silence before a begun stream gets a keep-alive (0: each dialect's own) */
};

/* The keys this section reads (see src/config.c's table). */
extern const char *const lx_api_conf_keys[];
/* Fill c->api from root. LX_ERR with "key.path: reason" in err. */
int lx_api_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_api_conf_free(struct lx_config *c);

#endif
