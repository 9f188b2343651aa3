/* The OTLP exporter: a bus subscriber of the events that end spans (a request's end, a call attempt's,
 * a tool call's), which encodes the span and queues it; the batched exporter sends them. Collectors'
 * answers follow the OTLP/HTTP spec: 429, 502, 503 and 504 (and no answer) are retried with backoff,
 * other failures drop the batch; both count in llmux_events_dropped_total{sink="otlp"}. */
#include "otlp.h"
#include "export.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/confread.h"
#include "../core/otlp.h"
#include "../core/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LX_OTLP_EVENTS (LX_EV_REQUEST_END | LX_EV_BIT(LX_EV_CALL_FINISHED) | LX_EV_BIT(LX_EV_TOOL_FINISHED))

static struct {
    struct lx_export *x;  /* owned while an endpoint is configured */
    char *service_name;   /* owned */
} O;

/* ---- configuration ---- */

const char *const lx_otlp_conf_keys[] = {"otlp", NULL};

static int parse_headers(struct lx_otlp_conf *c, json_t *o, char *err, size_t errlen)
{
    json_t *h;
    if (lx_conf_object(o, "headers", "otlp", &h, err, errlen) != LX_OK)
        return LX_ERR;
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v) {
        /* Never echo the value: it is likely a token. */
        if (!json_is_string(v) || strpbrk(json_string_value(v), "\r\n") || !*k || strpbrk(k, ": \r\n")) {
            lx_conf_err(err, errlen, "otlp.headers.%s: expected a header name and a string value on one line", k);
            return LX_ERR;
        }
        lx_strs_push(&c->headers, &c->n_headers, lx_sprintf("%s: %s", k, json_string_value(v)));
    }
    return LX_OK;
}

int lx_otlp_conf_parse(struct lx_config *cfg, json_t *root, char *err, size_t errlen)
{
    static const char *const keys[] = {"endpoint", "headers", "sample", "service_name", "batch_max", "flush_ms",
                                       "queue_max", "timeout_ms", NULL};
    struct lx_otlp_conf *c = cfg->otlp = lx_calloc(1, sizeof *c);
    *c = (struct lx_otlp_conf){.sample = 1.0, .batch_max = 512, .flush_ms = 1000, .queue_max = 2048,
                               .timeout_ms = 10000};
    c->service_name = lx_strdup("llmux");
    json_t *o;
    if (lx_conf_object(root, "otlp", "", &o, err, errlen) != LX_OK)
        return LX_ERR;
    if (!o)
        return LX_OK;
    char *endpoint = NULL;
    if (lx_conf_unknown_keys(o, keys, "otlp", err, errlen) != LX_OK ||
        lx_conf_string(o, "endpoint", "otlp", &endpoint, err, errlen) != LX_OK ||
        lx_conf_string(o, "service_name", "otlp", &c->service_name, err, errlen) != LX_OK ||
        lx_conf_long(o, "batch_max", "otlp", 1, 100000, &c->batch_max, err, errlen) != LX_OK ||
        lx_conf_long(o, "flush_ms", "otlp", 1, 3600000, &c->flush_ms, err, errlen) != LX_OK ||
        lx_conf_long(o, "queue_max", "otlp", 1, 10000000, &c->queue_max, err, errlen) != LX_OK ||
        lx_conf_long(o, "timeout_ms", "otlp", 1, 600000, &c->timeout_ms, err, errlen) != LX_OK ||
        parse_headers(c, o, err, errlen) != LX_OK) {
        free(endpoint);
        return LX_ERR;
    }
    json_t *sample = json_object_get(o, "sample");
    if (sample && (!json_is_number(sample) || json_number_value(sample) < 0 || json_number_value(sample) > 1)) {
        free(endpoint);
        lx_conf_err(err, errlen, "otlp.sample: expected a number from 0 to 1");
        return LX_ERR;
    }
    if (sample)
        c->sample = json_number_value(sample);
    if (!endpoint || (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0)) {
        free(endpoint);
        lx_conf_err(err, errlen, "otlp.endpoint: expected the collector's http:// or https:// base URL "
                                 "(for example http://127.0.0.1:4318)");
        return LX_ERR;
    }
    if (c->batch_max > c->queue_max) {
        free(endpoint);
        lx_conf_err(err, errlen, "otlp.batch_max: must not exceed otlp.queue_max (%ld)", c->queue_max);
        return LX_ERR;
    }
    /* The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is: the signal's path goes after it. A URL that already
     * ends with it is kept. */
    size_t n = strlen(endpoint);
    while (n > 8 && endpoint[n - 1] == '/')
        endpoint[--n] = '\0';
    c->url = n >= 10 && strcmp(endpoint + n - 10, "/v1/traces") == 0 ? lx_strdup(endpoint)
                                                                      : lx_sprintf("%s/v1/traces", endpoint);
    free(endpoint);
    return LX_OK;
}

void lx_otlp_conf_free(struct lx_config *cfg)
{
    struct lx_otlp_conf *c = cfg->otlp;
    if (!c)
        return;
    free(c->url);
    lx_strs_free(&c->headers, &c->n_headers);
    free(c->service_name);
    free(c);
    cfg->otlp = NULL;
}

/* ---- the sink ---- */

static void span_cb(const struct lx_event *ev, void *arg)
{
    (void)arg;
    char *span = lx_otlp_span(ev);
    if (span)
        lx_export_push(O.x, span);
}

static void body_cb(void *ctx, char *const *items, size_t n, long dropped, struct lx_buf *b)
{
    (void)ctx;
    (void)dropped;
    lx_otlp_request(b, O.service_name, items, n);
}

static enum lx_export_verdict verdict_cb(void *ctx, int status)
{
    (void)ctx;
    if (status >= 200 && status < 300)
        return LX_EXPORT_DELIVERED;
    if (status == 0 || status == 429 || status == 502 || status == 503 || status == 504)
        return LX_EXPORT_RETRY;
    return LX_EXPORT_DROP;
}

static const struct lx_export_ops lx_otlp_export_ops = {
    .body = body_cb,
    .verdict = verdict_cb,
};

void lx_otlp_apply(const struct lx_otlp_conf *c)
{
    lx_trace_set_ratio(c->url ? c->sample : 0);
    if (!c->url) {
        lx_otlp_shutdown();
        return;
    }
    if (!O.x) {
        O.x = lx_export_new("otlp", &lx_otlp_export_ops, NULL);
        lx_bus_subscribe_mask(LX_OTLP_EVENTS, span_cb, NULL);
    }
    free(O.service_name);
    O.service_name = lx_strdup(c->service_name);
    struct lx_export_limits lim = {.batch_max = c->batch_max, .flush_ms = c->flush_ms, .queue_max = c->queue_max,
                                   .timeout_ms = c->timeout_ms, .retries_max = 3, .retry_base_ms = 500,
                                   .retry_max_ms = 5000};
    lx_export_set(O.x, c->url, c->headers, c->n_headers, &lim);
}

void lx_otlp_flush(void)
{
    if (O.x)
        lx_export_flush(O.x);
}

size_t lx_otlp_pending(void)
{
    return O.x ? lx_export_pending(O.x) : 0;
}

void lx_otlp_shutdown(void)
{
    if (O.x) {
        lx_bus_unsubscribe_mask(LX_OTLP_EVENTS, span_cb, NULL);
        lx_export_free(O.x, "tracing was switched off or the server stopped");
        O.x = NULL;
    }
    free(O.service_name);
    O.service_name = NULL;
}
