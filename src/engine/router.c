/* Resolve a client's model name to a plan: aliases first, then "PROVIDER/MODEL" split at the first '/'
 * (the model part may hold more slashes, e.g. "openrouter/meta-llama/llama-3-8b"). */
#include "router.h"
#include "../core/buf.h"
#include "../core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "a, b, c": the configured providers (only the enabled ones when asked), for messages. */
static char *provider_list(const struct lx_engine_conf *c, bool enabled_only)
{
    struct lx_buf b = {0};
    for (size_t i = 0; i < c->n_providers; i++)
        if (!enabled_only || !c->providers[i].disabled_reason)
            lx_buf_printf(&b, "%s%s", b.len ? ", " : "", c->providers[i].name);
    if (!b.len)
        lx_buf_puts(&b, "none");
    return lx_buf_steal(&b, NULL);
}

/* "P/M" → target. name is what the client asked for (for messages). */
static int resolve_target(const struct lx_engine_conf *c, const char *name, const char *target, struct lx_target *out,
                          struct lx_error *err)
{
    const char *slash = strchr(target, '/');
    if (!slash || slash == target || !slash[1]) {
        char *list = provider_list(c, false);
        lx_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist. Use \"PROVIDER/MODEL\" with a configured provider (%s) "
                     "or an alias (GET /v1/models lists them).", name, list);
        free(list);
        return LX_ERR;
    }
    const struct lx_provider_conf *p = lx_engine_provider(c, target, (size_t)(slash - target));
    if (!p) {
        char *list = provider_list(c, false);
        lx_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist: no provider named '%.*s' is configured (providers: %s). "
                     "Add it under \"providers\" in the config, or use one of these.",
                     name, (int)(slash - target), target, list);
        free(list);
        return LX_ERR;
    }
    if (p->disabled_reason) {
        /* A configuration error that no retry can fix: 404, which no SDK retries (they retry 408, 409,
         * 429 and 5xx), as OpenAI answers for a model the key cannot use. */
        char *list = provider_list(c, true);
        lx_error_set(err, 404, "invalid_request_error", "model", "provider_disabled",
                     "Provider '%s' is disabled: %s. Or use a model of an enabled provider (%s).", p->name,
                     p->disabled_reason, list);
        free(list);
        return LX_ERR;
    }
    out->provider = p;
    out->model = lx_strdup(slash + 1);
    out->label = lx_strdup(target);
    /* An alias's target is configured; a "P/M" from the client is listed only if the provider lists M. */
    out->listed = target != name;
    for (size_t i = 0; i < p->n_models && !out->listed; i++)
        out->listed = strcmp(p->models[i], out->model) == 0;
    return LX_OK;
}

static void lane_free(struct lx_lane *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->targets[i].model);
        free(l->targets[i].label);
    }
    free(l->targets);
    l->targets = NULL;
    l->n = 0;
}

/* Append the targets of names[0..n) to lane; disabled ones are skipped while others remain. */
static int fill_lane(const struct lx_engine_conf *c, const char *name, char *const *targets, size_t n,
                     struct lx_lane *lane, struct lx_error *err)
{
    struct lx_error first = {0};
    lane->targets = lx_realloc(lane->targets, (lane->n + n) * sizeof *lane->targets);
    for (size_t i = 0; i < n; i++) {
        struct lx_error e = {0};
        if (resolve_target(c, name, targets[i], &lane->targets[lane->n], &e) == LX_OK) {
            lane->n++;
        } else if (!lx_error_isset(&first)) {
            lx_error_copy(&first, &e);
        }
        lx_error_clear(&e);
    }
    if (lane->n == 0) {
        lx_error_copy(err, &first);
        lx_error_clear(&first);
        return LX_ERR;
    }
    lx_error_clear(&first);
    return LX_OK;
}

int lx_route_plan(const struct lx_engine_conf *c, const char *name, struct lx_plan *plan, struct lx_error *err)
{
    memset(plan, 0, sizeof *plan);
    plan->hedge_ms = -1;
    const struct lx_alias *a = lx_engine_alias(c, name);
    char *single[1] = {(char *)name};
    char *const *targets = a ? a->targets : single;
    size_t n = a ? a->n_targets : 1;
    if (a && a->hedge_ms >= 0 && n > 1) {
        /* Hedged: one lane per model, each tried alone. */
        plan->lanes = lx_calloc(n, sizeof *plan->lanes);
        struct lx_error first = {0};
        for (size_t i = 0; i < n; i++) {
            struct lx_error e = {0};
            if (fill_lane(c, name, &targets[i], 1, &plan->lanes[plan->n_lanes], &e) == LX_OK)
                plan->n_lanes++;
            else if (!lx_error_isset(&first))
                lx_error_copy(&first, &e);
            lx_error_clear(&e);
        }
        if (plan->n_lanes == 0) {
            lx_error_copy(err, &first);
            lx_error_clear(&first);
            lx_plan_free(plan);
            return LX_ERR;
        }
        lx_error_clear(&first);
        plan->hedge_ms = plan->n_lanes > 1 ? a->hedge_ms : -1;
        return LX_OK;
    }
    plan->lanes = lx_calloc(1, sizeof *plan->lanes);
    plan->n_lanes = 1;
    if (fill_lane(c, name, targets, n, &plan->lanes[0], err) != LX_OK) {
        lx_plan_free(plan);
        return LX_ERR;
    }
    return LX_OK;
}

int lx_route_race(const struct lx_engine_conf *c, const char *const *names, size_t n, struct lx_plan *plan,
                  struct lx_error *err)
{
    memset(plan, 0, sizeof *plan);
    plan->lanes = lx_calloc(n, sizeof *plan->lanes);
    plan->hedge_ms = 0;
    for (size_t i = 0; i < n; i++) {
        struct lx_plan one;
        if (lx_route_plan(c, names[i], &one, err) != LX_OK) {
            lx_plan_free(plan);
            return LX_ERR;
        }
        /* A hedged alias races as its models in order: one lane per name keeps the race fair. */
        struct lx_lane *lane = &plan->lanes[plan->n_lanes++];
        for (size_t j = 0; j < one.n_lanes; j++) {
            lane->targets = lx_realloc(lane->targets, (lane->n + one.lanes[j].n) * sizeof *lane->targets);
            memcpy(lane->targets + lane->n, one.lanes[j].targets, one.lanes[j].n * sizeof *lane->targets);
            lane->n += one.lanes[j].n;
            free(one.lanes[j].targets);
        }
        free(one.lanes);
    }
    return LX_OK;
}

void lx_plan_free(struct lx_plan *plan)
{
    for (size_t i = 0; i < plan->n_lanes; i++)
        lane_free(&plan->lanes[i]);
    free(plan->lanes);
    plan->lanes = NULL;
    plan->n_lanes = 0;
}

size_t lx_plan_count(const struct lx_plan *plan)
{
    size_t n = 0;
    for (size_t i = 0; i < plan->n_lanes; i++)
        n += plan->lanes[i].n;
    return n;
}

const struct lx_target *lx_plan_target(const struct lx_plan *plan, size_t i)
{
    for (size_t l = 0; l < plan->n_lanes; l++) {
        if (i < plan->lanes[l].n)
            return &plan->lanes[l].targets[i];
        i -= plan->lanes[l].n;
    }
    return NULL;
}
