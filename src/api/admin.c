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
#include "../server/mhd.h"
#include "../server/req.h"

#include <stdlib.h>

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
    }
    lx_metrics_render(&b);
    lx_req_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    lx_buf_free(&b);
}
