/* Webhook sinks: the events of chosen types, batched into JSON POSTs to each configured URL over the
 * shared libcurl multi (io/upstream.h), signed the Standard Webhooks way (core/whsign.h), retried with
 * jittered backoff, from a bounded queue whose overflow is counted (llmux_events_dropped_total
 * {sink="webhook"}). The "webhooks" section of the configuration is parsed here. */
#ifndef LX_WEBHOOK_H
#define LX_WEBHOOK_H

#include "../core/bus.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct lx_config;

struct lx_webhook_conf {
    char *url;              /* owned */
    lx_ev_mask types;
    unsigned char *key;     /* owned: the signing key (from "secret"), or NULL: unsigned */
    size_t key_len;
    long batch_max;         /* events in one POST */
    long flush_ms;          /* the longest an event waits for its batch to fill */
    long queue_max;         /* events held (waiting or being sent) before new ones are dropped */
    long timeout_ms;        /* one POST, connection included */
    long retries_max, retry_base_ms, retry_max_ms; /* a failed POST: tries again, then the batch is dropped */
};

struct lx_webhooks_conf {
    struct lx_webhook_conf *hooks; /* owned */
    size_t n;
};

/* The keys this section reads (see src/config.c's table): "webhooks". */
extern const char *const lx_webhooks_conf_keys[];
int lx_webhooks_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_webhooks_conf_free(struct lx_config *c);

/* c takes effect (start-up, reload): a webhook whose URL stays keeps its queue and takes the new
 * settings; one that went is stopped and its queue dropped (counted). */
void lx_webhooks_apply(const struct lx_webhooks_conf *c);
/* Send what is queued now, without further retries (the drain at shutdown). */
void lx_webhooks_flush(void);
/* Events queued or being sent, over every webhook. */
size_t lx_webhooks_pending(void);
/* Stop every webhook (at exit, before io/upstream shuts down). */
void lx_webhooks_shutdown(void);

#endif
