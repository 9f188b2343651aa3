/* The OpenTelemetry trace exporter: spans (core/otlp.h) of the sampled requests, batched into OTLP/HTTP
 * JSON POSTs to endpoint/v1/traces by a batched exporter (io/export.h), off the request path; and the
 * "otlp" section of the configuration, whose sample ratio it hands to core/trace.h. */
#ifndef LX_IO_OTLP_H
#define LX_IO_OTLP_H

#include <jansson.h>
#include <stddef.h>

struct lx_config;

struct lx_otlp_conf {
    char *url;             /* owned: endpoint + /v1/traces; NULL = tracing off */
    char **headers;        /* owned: "Name: value" lines (Authorization, ...) */
    size_t n_headers;
    double sample;         /* share of new traces recorded, 0..1 */
    char *service_name;    /* owned */
    long batch_max, flush_ms, queue_max, timeout_ms;
};

/* The keys this section reads (see src/config.c's table): "otlp". */
extern const char *const lx_otlp_conf_keys[];
int lx_otlp_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_otlp_conf_free(struct lx_config *c);

/* c takes effect (start-up, reload): the exporter starts, moves or stops; spans queued stay queued. */
void lx_otlp_apply(const struct lx_otlp_conf *c);
/* Send what is queued now, without retries (the drain at shutdown). */
void lx_otlp_flush(void);
/* Spans queued or being sent. */
size_t lx_otlp_pending(void);
/* Stop (at exit, before io/upstream shuts down). */
void lx_otlp_shutdown(void);

#endif
