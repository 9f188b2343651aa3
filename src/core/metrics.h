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
void lx_metrics_upstream_error(const char *provider, const char *reason);
void lx_metrics_retry(void);
void lx_metrics_fallback(void);
/* A "request finished" subscriber (core/bus.h): counts the request by route and status. */
void lx_metrics_finished_cb(const struct lx_event *ev, void *arg);
/* A connection was turned away or dropped: "max_connections" or "read_timeout". */
void lx_metrics_conn_dropped(const char *reason);

/* Append the counters and histograms to b. */
void lx_metrics_render(struct lx_buf *b);
/* Append a gauge: its HELP and TYPE lines once, then one line per value (label NULL: none). */
void lx_metrics_gauge_head(struct lx_buf *b, const char *name, const char *help);
void lx_metrics_gauge(struct lx_buf *b, const char *name, const char *label, const char *value, long v);
/* Free everything (at exit). */
void lx_metrics_shutdown(void);

#endif
