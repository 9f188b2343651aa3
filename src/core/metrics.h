/* Prometheus metrics: the counters and histograms kept in memory, and their rendering in the text
 * exposition format 0.0.4 (the /metrics handler is api/admin.c). Callers pass only bounded label values
 * (configured provider and model names, fixed reasons, route names from the endpoint table), never raw
 * client input. */
#ifndef LX_METRICS_H
#define LX_METRICS_H

struct lx_buf;
struct lx_event;

/* One model call ended (chat, embeddings, a fanout member, a batch item). ttft_s < 0: no token came. */
void lx_metrics_call(const char *provider, const char *model, int status, double duration_s, double ttft_s,
                     long prompt_tokens, long completion_tokens);
/* An upstream attempt failed; reason is one of a fixed set (see exec.c). */
/* One MCP tool call: outcome is "ok", "tool_error", "rpc_error", "timeout", "unavailable", "not_found" or
 * "bad_arguments". */
void lx_metrics_tool_call(const char *server, const char *tool, const char *outcome, double duration_s);
void lx_metrics_upstream_error(const char *provider, const char *reason);
void lx_metrics_retry(void);
void lx_metrics_fallback(void);
/* A "request finished" subscriber (core/bus.h): counts the request by route and status. */
void lx_metrics_finished_cb(const struct lx_event *ev, void *arg);
/* A sink (sse, webhook, otlp) dropped n events; n = 0 makes the series exist. */
void lx_metrics_events_dropped(const char *sink, long n);
/* A connection was turned away or dropped: "max_connections" or "read_timeout". */
void lx_metrics_conn_dropped(const char *reason);

/* Append the counters and histograms to b. */
void lx_metrics_render(struct lx_buf *b);
/* Append a gauge: its HELP and TYPE lines once, then one line per value (label NULL: none). */
void lx_metrics_gauge_head(struct lx_buf *b, const char *name, const char *help);
void lx_metrics_gauge(struct lx_buf *b, const char *name, const char *label, const char *value, long v);
/* The same for counters and histograms whose values are kept elsewhere (a client library's statistics,
 * read when /metrics is scraped). cumulative[i] counts the observations <= bounds[i]. */
void lx_metrics_counter_head(struct lx_buf *b, const char *name, const char *help);
void lx_metrics_counter(struct lx_buf *b, const char *name, const char *label, const char *value,
                        unsigned long long v);
void lx_metrics_histogram_head(struct lx_buf *b, const char *name, const char *help);
void lx_metrics_histogram(struct lx_buf *b, const char *name, const char *label, const char *value,
                          const double *bounds, const unsigned long long *cumulative, unsigned n,
                          unsigned long long count, double sum);
/* Free everything (at exit). */
void lx_metrics_shutdown(void);

#endif
