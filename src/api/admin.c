/* GET /healthz and GET /metrics. */
#include "admin.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/metrics.h"
#include "../engine/capacity.h"
#include "../engine/conf.h"
#include "../engine/store.h"
#include "state.h"
#include "../io/fleet.h"
#include "../io/redis.h"
#include "../server/mhd.h"
#include "../server/req.h"

#include <stdlib.h>

static struct lx_fleet *lx_admin_the_fleet; /* borrowed from main.c */

void lx_admin_share(struct lx_fleet *f)
{
    lx_admin_the_fleet = f;
}

struct lx_fleet *lx_admin_fleet(void)
{
    return lx_admin_the_fleet;
}

void lx_admin_healthz(struct lx_req *req)
{
    lx_req_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* One gauge per configured provider, read from its live capacity. */
static void provider_gauge(struct lx_buf *b, const struct lx_engine_conf *ec, const char *name, const char *help,
                           long (*read)(const struct lx_capacity *))
{
    lx_metrics_gauge_head(b, name, help);
    for (size_t i = 0; i < ec->n_providers; i++)
        lx_metrics_gauge(b, name, "provider", ec->providers[i].name, read(lx_capacity_of(&ec->providers[i])));
}

/* The Redis connection and the fleet's state as this replica sees it. */
static void redis_metrics(struct lx_buf *b, const struct lx_engine_conf *ec, struct lx_fleet *f)
{
    const struct lx_redis *r = lx_fleet_redis(f);
    struct lx_redis_stats st;
    lx_redis_stats(r, &st);
    lx_metrics_gauge_head(b, "llmux_redis_up", "1 while the connection to Redis is ready, else 0.");
    lx_metrics_gauge(b, "llmux_redis_up", NULL, NULL, st.state == LX_REDIS_READY);
    lx_metrics_gauge_head(b, "llmux_redis_pending_commands", "Commands sent to Redis and not answered yet.");
    lx_metrics_gauge(b, "llmux_redis_pending_commands", NULL, NULL, (long)st.pending);
    lx_metrics_counter_head(b, "llmux_redis_connects_total", "Connections to Redis that became ready.");
    lx_metrics_counter(b, "llmux_redis_connects_total", NULL, NULL, st.connects);
    lx_metrics_counter_head(b, "llmux_redis_errors_total",
                            "Redis commands that failed, by kind: reply (an error answer), timeout, connection "
                            "(lost with the command sent), down (not sent: not connected).");
    for (int k = LX_REDIS_EREPLY; k < LX_REDIS_STATUS_COUNT; k++)
        lx_metrics_counter(b, "llmux_redis_errors_total", "kind", lx_redis_status_name(k), st.errors[k]);
    size_t n;
    const struct lx_redis_latency *lat = lx_redis_latencies(r, &n);
    lx_metrics_histogram_head(b, "llmux_redis_command_duration_seconds",
                              "Redis command latency, from sending to the answer, by operation.");
    for (size_t i = 0; i < n; i++)
        lx_metrics_histogram(b, "llmux_redis_command_duration_seconds", "op", lat[i].op, lx_redis_latency_buckets,
                             lat[i].buckets, LX_REDIS_LATENCY_BUCKETS, lat[i].count, lat[i].sum_s);
    lx_metrics_counter_head(b, "llmux_redis_undecided_total",
                            "Admissions Redis could not decide in time (down or late), by feature: keys (client-key "
                            "limits) or providers (max_concurrency, cooldown).");
    lx_metrics_counter(b, "llmux_redis_undecided_total", "feature", "keys", lx_fleet_unavailable(f, "keys"));
    lx_metrics_counter(b, "llmux_redis_undecided_total", "feature", "providers", lx_fleet_unavailable(f, "providers"));
    lx_metrics_counter_head(b, "llmux_redis_fail_open_total",
                            "Of those, the ones let through on this replica's own counters (redis.fail_mode open).");
    lx_metrics_counter(b, "llmux_redis_fail_open_total", "feature", "keys", lx_fleet_fallbacks(f, "keys"));
    lx_metrics_counter(b, "llmux_redis_fail_open_total", "feature", "providers", lx_fleet_fallbacks(f, "providers"));
    lx_metrics_gauge_head(b, "llmux_fleet_replicas", "Live llmux replicas sharing this Redis, as of the last heartbeat.");
    lx_metrics_gauge(b, "llmux_fleet_replicas", NULL, NULL, lx_fleet_replicas(f));
    lx_metrics_gauge_head(b, "llmux_fleet_upstream_inflight",
                          "Calls in flight to a provider across the fleet, as last seen (providers with a limit).");
    for (size_t i = 0; i < ec->n_providers; i++) {
        struct lx_fleet_provider_state ps;
        if (lx_fleet_provider_seen(f, ec->providers[i].name, &ps))
            lx_metrics_gauge(b, "llmux_fleet_upstream_inflight", "provider", ec->providers[i].name, ps.inflight);
    }
}

void lx_admin_metrics(struct lx_req *req)
{
    struct lx_buf b = {0};
    lx_metrics_gauge_head(&b, "llmux_build_info", "The running version.");
    lx_metrics_gauge(&b, "llmux_build_info", "version", LX_VERSION, 1);
    lx_metrics_gauge_head(&b, "llmux_inflight_requests", "Client requests being received, handled or answered.");
    lx_metrics_gauge(&b, "llmux_inflight_requests", NULL, NULL, (long)lx_http_live());
    lx_metrics_gauge_head(&b, "llmux_connections", "Open client connections on the main address.");
    lx_metrics_gauge(&b, "llmux_connections", NULL, NULL, (long)lx_http_connections());
    provider_gauge(&b, req->cfg->engine, "llmux_queue_depth", "Calls waiting for a provider slot (max_concurrency).",
                   lx_capacity_queued);
    provider_gauge(&b, req->cfg->engine, "llmux_upstream_inflight", "Calls in flight to a provider.",
                   lx_capacity_inflight);
    struct lx_store *st = lx_state_store();
    if (st) {
        struct lx_store_stats ss;
        st->backend->stats(st, &ss);
        lx_metrics_gauge_head(&b, "llmux_store_in_flight", "Conversation store operations waiting or running.");
        lx_metrics_gauge(&b, "llmux_store_in_flight", NULL, NULL, (long)ss.in_flight);
        lx_buf_printf(&b,
                      "# HELP llmux_store_operations_total Conversation store operations done on its worker thread.\n"
                      "# TYPE llmux_store_operations_total counter\nllmux_store_operations_total %llu\n"
                      "# HELP llmux_store_transactions_total Transactions they took (writes that queue up share one).\n"
                      "# TYPE llmux_store_transactions_total counter\nllmux_store_transactions_total %llu\n"
                      "# HELP llmux_store_history_cache_total History lookups answered from memory, or not.\n"
                      "# TYPE llmux_store_history_cache_total counter\n"
                      "llmux_store_history_cache_total{result=\"hit\"} %llu\n"
                      "llmux_store_history_cache_total{result=\"miss\"} %llu\n",
                      (unsigned long long)ss.operations, (unsigned long long)ss.transactions,
                      (unsigned long long)ss.cache_hits, (unsigned long long)ss.cache_misses);
        lx_buf_printf(&b,
                      "# HELP llmux_store_unavailable_total Conversation store operations answered 503 "
                      "store_unavailable.\n# TYPE llmux_store_unavailable_total counter\n"
                      "llmux_store_unavailable_total %llu\n",
                      (unsigned long long)ss.unavailable);
        if (ss.up >= 0) {
            lx_metrics_gauge_head(&b, "llmux_store_up", "1 while the conversation store's Redis connection is ready.");
            lx_metrics_gauge(&b, "llmux_store_up", NULL, NULL, ss.up);
        }
    }
    if (lx_admin_the_fleet)
        redis_metrics(&b, req->cfg->engine, lx_admin_the_fleet);
    lx_metrics_render(&b);
    lx_req_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    lx_buf_free(&b);
}
