/* Resolve a client's model name to a provider: aliases first, then "PROVIDER/MODEL" split at the first
 * '/' (the model part may hold more slashes, e.g. "openrouter/meta-llama/llama-3-8b"). */
#include "router.h"
#include "buf.h"
#include "common.h"

#include <stdio.h>
#include <string.h>

static char *provider_list(const struct lx_config *c)
{
    struct lx_buf b = {0};
    for (size_t i = 0; i < c->n_providers; i++)
        lx_buf_printf(&b, "%s%s", i ? ", " : "", c->providers[i].name);
    if (!b.len)
        lx_buf_puts(&b, "none");
    return lx_buf_steal(&b, NULL);
}

int lx_route_model(const struct lx_config *c, const char *name, struct lx_route *out, struct lx_error *err)
{
    const struct lx_alias *alias = lx_config_alias(c, name);
    const char *target = alias ? alias->target : name;
    const char *slash = strchr(target, '/');
    out->provider = NULL;
    out->model = NULL;
    if (!slash || slash == target || !slash[1]) {
        char *list = provider_list(c);
        lx_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist. Use \"PROVIDER/MODEL\" with a configured provider (%s) "
                     "or an alias.", name, list);
        free(list);
        return LX_ERR;
    }
    const struct lx_provider_conf *p = lx_config_provider(c, target, (size_t)(slash - target));
    if (!p) {
        char *list = provider_list(c);
        lx_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist: no provider named '%.*s' is configured (providers: %s).",
                     name, (int)(slash - target), target, list);
        free(list);
        return LX_ERR;
    }
    if (p->disabled_reason) {
        lx_error_set(err, 503, "service_unavailable", "model", "provider_disabled",
                     "Provider '%s' is disabled: %s.", p->name, p->disabled_reason);
        return LX_ERR;
    }
    out->provider = p;
    out->model = lx_strdup(slash + 1);
    return LX_OK;
}
