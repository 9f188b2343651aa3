/* Prometheus metrics: counters and histograms kept in memory, rendered by GET /metrics in the text
 * exposition format 0.0.4. Callers pass only bounded label values (configured provider and model names,
 * fixed reasons, route names from the endpoint table), never raw client input. */
#ifndef LX_METRICS_H
#define LX_METRICS_H

struct lx_req;

/* One model call ended (chat, embeddings, a fanout member, a batch item). ttft_s < 0: no token came. */
void lx_metrics_call(const char *provider, const char *model, int status, double duration_s, double ttft_s,
                     long prompt_tokens, long completion_tokens);
/* An upstream attempt failed; reason is one of a fixed set (see exec.c). */
void lx_metrics_upstream_error(const char *provider, const char *reason);
void lx_metrics_retry(void);
void lx_metrics_fallback(void);
/* A client request ended; route is the endpoint's path or "other". */
void lx_metrics_http(const char *route, int status);
/* A connection was turned away or dropped: "max_connections" or "read_timeout". */
void lx_metrics_conn_dropped(const char *reason);

/* GET /metrics. */
void lx_metrics_handle(struct lx_req *req);
/* Free everything (at exit). */
void lx_metrics_shutdown(void);

#endif
