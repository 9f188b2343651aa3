/* A batched HTTP exporter, the sending half of the webhook and OTLP sinks: a bounded FIFO of serialized
 * items, batches POSTed one at a time (so they arrive in order) over the shared libcurl multi
 * (io/upstream.h), a timeout per POST, retries with jittered backoff (at least the receiver's
 * Retry-After), and every item it drops counted in llmux_events_dropped_total{sink}.
 *
 * lx_export_push may run anywhere an event is published (inside libcurl callbacks too): it only queues
 * and sets a timer; every POST starts from a timer. */
#ifndef LX_EXPORT_H
#define LX_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

struct lx_buf;
struct lx_http_request;
struct lx_export;

struct lx_export_limits {
    long batch_max;  /* items in one POST */
    long flush_ms;   /* the longest an item waits for its batch to fill */
    long queue_max;  /* items held (waiting or being sent) before new ones are dropped */
    long timeout_ms; /* one POST, the connection included */
    long retries_max, retry_base_ms, retry_max_ms;
};

/* What a receiver's answer means. */
enum lx_export_verdict {
    LX_EXPORT_DELIVERED,
    LX_EXPORT_RETRY, /* try the batch again (until retries_max) */
    LX_EXPORT_DROP,  /* drop the batch, go on with the next */
    LX_EXPORT_STOP,  /* drop everything and take no more until lx_export_set (410 Gone) */
};

struct lx_export_ops {
    /* The body of a batch of n items (in order) into b; dropped: items dropped so far. */
    void (*body)(void *ctx, char *const *items, size_t n, long dropped, struct lx_buf *b);
    /* Add the headers of one attempt to hr (the URL, the configured headers and Content-Type are there);
     * batch_id is the same across a batch's attempts. May be NULL. */
    void (*headers)(void *ctx, struct lx_http_request *hr, const char *batch_id);
    /* The verdict on an HTTP status (status 0: no answer: the connection failed or timed out). */
    enum lx_export_verdict (*verdict)(void *ctx, int status);
};

/* sink: the metric label and log name ("webhook", "otlp"), static. ctx is passed to ops. */
struct lx_export *lx_export_new(const char *sink, const struct lx_export_ops *ops, void *ctx);
/* The URL, the extra headers ("Name: value" lines, copied) and the limits in force from now on; a
 * smaller queue_max drops the newest items that no longer fit. Undoes LX_EXPORT_STOP. */
void lx_export_set(struct lx_export *x, const char *url, char *const *headers, size_t n_headers,
                   const struct lx_export_limits *lim);
/* Queue an item (taken over), or drop it (counted) when the queue is full or stopped. */
void lx_export_push(struct lx_export *x, char *item);
/* Send what is queued now, and no more retries (the drain at shutdown). */
void lx_export_flush(struct lx_export *x);
/* Items queued or being sent. */
size_t lx_export_pending(const struct lx_export *x);
/* Stop (a POST in flight is abandoned) and free; what is queued is counted as dropped. */
void lx_export_free(struct lx_export *x, const char *why);

#endif
