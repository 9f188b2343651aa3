/* Model routing: a client's model name → a plan of upstream targets. "PROVIDER/MODEL" is one target; an
 * alias may be one target, a fallback list, or a hedged list (see config.h). */
#ifndef LX_ROUTER_H
#define LX_ROUTER_H

#include "conf.h"
#include "../core/errors.h"

struct lx_target {
    const struct lx_provider_conf *provider; /* borrowed from the config */
    char *model;                             /* owned: name sent upstream */
    char *label;                             /* owned: "PROVIDER/MODEL", what x-llmux-model reports */
    bool listed;                             /* named by the config (an alias or the provider's models):
                                              * safe as a metrics label, unlike any name a client sends */
};

/* Targets tried one after another: the next when the previous fails with a retryable error, times out,
 * is out of capacity or cooling down. */
struct lx_lane {
    struct lx_target *targets; /* owned */
    size_t n;
};

/* Lanes that may run at the same time: lane 0 starts; lane i+1 starts hedge_ms after lane i (0 = all at
 * once, a race), or at once when every running lane has failed. The first lane to answer wins. */
struct lx_plan {
    struct lx_lane *lanes; /* owned */
    size_t n_lanes;
    long hedge_ms;         /* -1 when there is one lane */
};

/* LX_OK with plan filled, or LX_ERR with err set (404 model_not_found, 503 provider disabled). Disabled
 * providers are left out of lists that have other targets. */
int lx_route_plan(const struct lx_engine_conf *c, const char *name, struct lx_plan *plan, struct lx_error *err);
/* A race over several model names (fanout "first"): one lane per name, each its name's targets in order. */
int lx_route_race(const struct lx_engine_conf *c, const char *const *names, size_t n, struct lx_plan *plan,
                  struct lx_error *err);
void lx_plan_free(struct lx_plan *plan);
/* Every target of the plan, in order, for checks that apply to all (embeddings support). */
size_t lx_plan_count(const struct lx_plan *plan);
const struct lx_target *lx_plan_target(const struct lx_plan *plan, size_t i);

#endif
