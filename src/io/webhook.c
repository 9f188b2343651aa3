/* Webhooks. Each configured URL has a live record, kept by URL across reloads: its settings and a
 * batched exporter (io/export.h: the bounded queue, one POST in flight, timeouts, retries). The bus
 * subscriber only serializes and queues.
 *
 * A batch: {"type":"llmux.events","timestamp":...,"data":{"count":N,"dropped":D,"events":[...]}} with the
 * headers webhook-id (msg_..., the same across the batch's retries), webhook-timestamp (each attempt's)
 * and webhook-signature. A 2xx is delivered; 410 Gone stops the webhook until a reload; anything else
 * (another status, a connection failure, timeout_ms) is retried after a jittered backoff (at least the
 * receiver's Retry-After), and after retries.max the batch is dropped and counted. */
#include "webhook.h"
#include "export.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/confread.h"
#include "../core/evjson.h"
#include "../core/httpreq.h"
#include "../core/whsign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ---- */

const char *const lx_webhooks_conf_keys[] = {"webhooks", NULL};

static void hook_conf_clear(struct lx_webhook_conf *h)
{
    free(h->url);
    free(h->key);
    memset(h, 0, sizeof *h);
}

static int parse_types(json_t *v, const char *path, lx_ev_mask *mask, char *err, size_t errlen)
{
    json_t *types = json_object_get(v, "types");
    *mask = LX_EV_ALL;
    if (!types)
        return LX_OK;
    if (!json_is_array(types) || json_array_size(types) == 0) {
        lx_conf_err(err, errlen, "%s.types: expected a non-empty list of event types", path);
        return LX_ERR;
    }
    *mask = 0;
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t) {
        const char *name = json_string_value(t);
        int type = name ? lx_event_type_find(name, strlen(name)) : -1;
        if (name && strcmp(name, "*") == 0) {
            *mask = LX_EV_ALL;
            continue;
        }
        if (type < 0) {
            lx_conf_err(err, errlen, "%s.types[%zu]: expected an event type (docs/events.md lists them)", path, i);
            return LX_ERR;
        }
        *mask |= LX_EV_BIT(type);
    }
    return LX_OK;
}

static int parse_hook(struct lx_config *cfg, struct lx_webhook_conf *h, json_t *v, const char *path, char *err,
                      size_t errlen)
{
    static const char *const keys[] = {"url", "types", "secret", "batch_max", "flush_ms", "queue_max",
                                       "timeout_ms", "retries", NULL};
    static const char *const rkeys[] = {"max", "base_delay_ms", "max_delay_ms", NULL};
    *h = (struct lx_webhook_conf){.batch_max = 100, .flush_ms = 1000, .queue_max = 10000, .timeout_ms = 10000,
                                  .retries_max = 5, .retry_base_ms = 1000, .retry_max_ms = 60000};
    if (!json_is_object(v)) {
        lx_conf_err(err, errlen, "%s: expected an object with \"url\"", path);
        return LX_ERR;
    }
    if (lx_conf_unknown_keys(v, keys, path, err, errlen) != LX_OK ||
        lx_conf_string(v, "url", path, &h->url, err, errlen) != LX_OK)
        return LX_ERR;
    if (!h->url || (strncmp(h->url, "http://", 7) != 0 && strncmp(h->url, "https://", 8) != 0)) {
        lx_conf_err(err, errlen, "%s.url: expected an http:// or https:// URL", path);
        return LX_ERR;
    }
    json_t *r;
    if (parse_types(v, path, &h->types, err, errlen) != LX_OK ||
        lx_conf_long(v, "batch_max", path, 1, 100000, &h->batch_max, err, errlen) != LX_OK ||
        lx_conf_long(v, "flush_ms", path, 1, 3600000, &h->flush_ms, err, errlen) != LX_OK ||
        lx_conf_long(v, "queue_max", path, 1, 10000000, &h->queue_max, err, errlen) != LX_OK ||
        lx_conf_long(v, "timeout_ms", path, 1, 600000, &h->timeout_ms, err, errlen) != LX_OK ||
        lx_conf_object(v, "retries", path, &r, err, errlen) != LX_OK)
        return LX_ERR;
    char rpath[96];
    snprintf(rpath, sizeof rpath, "%s.retries", path);
    if (r && (lx_conf_unknown_keys(r, rkeys, rpath, err, errlen) != LX_OK ||
              lx_conf_long(r, "max", rpath, 0, 1000, &h->retries_max, err, errlen) != LX_OK ||
              lx_conf_long(r, "base_delay_ms", rpath, 1, 3600000, &h->retry_base_ms, err, errlen) != LX_OK ||
              lx_conf_long(r, "max_delay_ms", rpath, 1, 86400000, &h->retry_max_ms, err, errlen) != LX_OK))
        return LX_ERR;
    if (h->batch_max > h->queue_max) {
        lx_conf_err(err, errlen, "%s.batch_max: must not exceed queue_max (%ld)", path, h->queue_max);
        return LX_ERR;
    }
    json_t *secret = json_object_get(v, "secret");
    if (!secret) {
        lx_config_warn(cfg, "%s: no secret: its POSTs go unsigned (no webhook-signature header)", path);
        return LX_OK;
    }
    /* Never echo the value: it is a secret. */
    if (!json_is_string(secret) || lx_whsec_decode(json_string_value(secret), &h->key, &h->key_len) != LX_OK) {
        lx_conf_err(err, errlen, "%s.secret: expected whsec_ followed by the base64 of at least 16 bytes", path);
        return LX_ERR;
    }
    return LX_OK;
}

int lx_webhooks_conf_parse(struct lx_config *cfg, json_t *root, char *err, size_t errlen)
{
    struct lx_webhooks_conf *c = cfg->webhooks = lx_calloc(1, sizeof *c);
    json_t *list = json_object_get(root, "webhooks");
    if (!list)
        return LX_OK;
    if (!json_is_array(list)) {
        lx_conf_err(err, errlen, "webhooks: expected a list of webhooks");
        return LX_ERR;
    }
    c->hooks = lx_calloc(json_array_size(list) + 1, sizeof *c->hooks);
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        char path[48];
        snprintf(path, sizeof path, "webhooks[%zu]", i);
        if (parse_hook(cfg, &c->hooks[c->n++], v, path, err, errlen) != LX_OK)
            return LX_ERR;
        for (size_t j = 0; j + 1 < c->n; j++) {
            if (strcmp(c->hooks[j].url, c->hooks[i].url) == 0) {
                lx_conf_err(err, errlen, "%s.url: the same URL as webhooks[%zu]", path, j);
                return LX_ERR;
            }
        }
    }
    return LX_OK;
}

void lx_webhooks_conf_free(struct lx_config *cfg)
{
    struct lx_webhooks_conf *c = cfg->webhooks;
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        hook_conf_clear(&c->hooks[i]);
    free(c->hooks);
    free(c);
    cfg->webhooks = NULL;
}

/* ---- the sink ---- */

struct webhook {
    struct lx_webhook_conf c;   /* owned copies of the settings in force */
    struct lx_export *x;        /* owned */
    struct webhook *next;
};

static struct webhook *lx_webhooks; /* owned: one per configured URL */

static void event_cb(const struct lx_event *ev, void *arg)
{
    struct webhook *w = arg;
    struct lx_buf b = {0};
    lx_event_write(ev, &b);
    lx_export_push(w->x, lx_buf_steal(&b, NULL));
}

static void body_cb(void *ctx, char *const *items, size_t n, long dropped, struct lx_buf *b)
{
    (void)ctx;
    char when[40];
    lx_rfc3339(lx_wall_ns(), when, sizeof when);
    lx_buf_printf(b, "{\"type\":\"llmux.events\",\"timestamp\":\"%s\",\"data\":{\"count\":%zu,\"dropped\":%ld,"
                     "\"events\":[", when, n, dropped);
    for (size_t i = 0; i < n; i++) {
        if (i)
            lx_buf_append(b, ",", 1);
        lx_buf_puts(b, items[i]);
    }
    lx_buf_puts(b, "]}}");
}

/* Standard Webhooks: the batch's id, this attempt's time, and their signature. */
static void headers_cb(void *ctx, struct lx_http_request *hr, const char *batch_id)
{
    struct webhook *w = ctx;
    int64_t now = lx_wall_s();
    lx_http_request_add_header(hr, "webhook-id: %s", batch_id);
    lx_http_request_add_header(hr, "webhook-timestamp: %lld", (long long)now);
    if (w->c.key) {
        char sig[LX_WHSIG_LEN];
        lx_webhook_sign(w->c.key, w->c.key_len, batch_id, now, hr->body, hr->body_len, sig);
        lx_http_request_add_header(hr, "webhook-signature: %s", sig);
    }
}

/* Standard Webhooks: 2xx delivered, 410 Gone stops, anything else is retried. */
static enum lx_export_verdict verdict_cb(void *ctx, int status)
{
    (void)ctx;
    if (status >= 200 && status < 300)
        return LX_EXPORT_DELIVERED;
    return status == 410 ? LX_EXPORT_STOP : LX_EXPORT_RETRY;
}

static const struct lx_export_ops lx_webhook_export_ops = {
    .body = body_cb,
    .headers = headers_cb,
    .verdict = verdict_cb,
};

static void hook_set(struct webhook *w, const struct lx_webhook_conf *h)
{
    lx_bus_unsubscribe_mask(w->c.types, event_cb, w);
    hook_conf_clear(&w->c);
    w->c = *h;
    w->c.url = lx_strdup(h->url);
    w->c.key = NULL;
    if (h->key) {
        w->c.key = lx_malloc(h->key_len);
        memcpy(w->c.key, h->key, h->key_len);
    }
    struct lx_export_limits lim = {.batch_max = h->batch_max, .flush_ms = h->flush_ms, .queue_max = h->queue_max,
                                   .timeout_ms = h->timeout_ms, .retries_max = h->retries_max,
                                   .retry_base_ms = h->retry_base_ms, .retry_max_ms = h->retry_max_ms};
    lx_export_set(w->x, h->url, NULL, 0, &lim);
    lx_bus_subscribe_mask(h->types, event_cb, w);
}

static void hook_free(struct webhook *w, const char *why)
{
    lx_bus_unsubscribe_mask(w->c.types, event_cb, w);
    lx_export_free(w->x, why);
    hook_conf_clear(&w->c);
    free(w);
}

void lx_webhooks_apply(const struct lx_webhooks_conf *c)
{
    struct webhook *kept = NULL, **tail = &kept;
    for (size_t i = 0; i < c->n; i++) {
        const struct lx_webhook_conf *h = &c->hooks[i];
        struct webhook *w = NULL;
        for (struct webhook **pp = &lx_webhooks; *pp; pp = &(*pp)->next) {
            if (strcmp((*pp)->c.url, h->url) == 0) {
                w = *pp;
                *pp = w->next;
                break;
            }
        }
        if (!w) {
            w = lx_calloc(1, sizeof *w);
            w->x = lx_export_new("webhook", &lx_webhook_export_ops, w);
        }
        hook_set(w, h);
        w->next = NULL;
        *tail = w;
        tail = &w->next;
    }
    while (lx_webhooks) {
        struct webhook *w = lx_webhooks;
        lx_webhooks = w->next;
        hook_free(w, "the webhook was removed from the configuration");
    }
    lx_webhooks = kept;
}

void lx_webhooks_flush(void)
{
    for (struct webhook *w = lx_webhooks; w; w = w->next)
        lx_export_flush(w->x);
}

size_t lx_webhooks_pending(void)
{
    size_t n = 0;
    for (struct webhook *w = lx_webhooks; w; w = w->next)
        n += lx_export_pending(w->x);
    return n;
}

void lx_webhooks_shutdown(void)
{
    while (lx_webhooks) {
        struct webhook *w = lx_webhooks;
        lx_webhooks = w->next;
        hook_free(w, "the server stopped before they were delivered");
    }
}
