/* Server-sent events: an incremental decoder for upstream streams (bytes may be split anywhere) and the
 * encoder for what llmux writes to clients. */
#ifndef LX_SSE_H
#define LX_SSE_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Called once per complete event. data is NUL-terminated (multi-line data joined with '\n'); event is ""
 * when the stream gave no "event:" field. Returns LX_OK to go on, anything else stops the feed. */
typedef int (*lx_sse_event_cb)(void *ctx, const char *event, const char *data, size_t len);

struct lx_sse_decoder {
    struct lx_buf line;   /* owned: the partial line carried between feeds */
    struct lx_buf data;   /* owned: data lines of the event being assembled */
    char event[64];       /* "event:" value of the event being assembled (truncated if longer) */
    bool has_data;        /* a data: line was seen since the last dispatch */
    bool skip_lf;         /* the last byte was '\r': a following '\n' belongs to the same line end */
    size_t max_event;     /* limit on one line or event's data, bytes (0 = 1 MiB default) */
    size_t events;        /* events dispatched so far */
    /* The WHATWG "last event ID" and reconnection time, for streams that are resumed (MCP's
     * Last-Event-ID polling): set from id: and retry: fields as they are read. */
    char *last_id;        /* owned: NULL until an id: field with a value; ids of 128 bytes or more are
                           * dropped, not truncated (allocated: few streams carry ids, and each holds a decoder) */
    long retry_ms;        /* the last valid retry: value; -1 until one (set by lx_sse_decoder_init) */
};

/* Zero d and mark retry_ms unset. A merely zeroed decoder decodes the same; only its retry_ms cannot
 * tell "none given" from "retry: 0". */
void lx_sse_decoder_init(struct lx_sse_decoder *d);

/* Feed bytes. Returns LX_OK, or LX_ERR when an event exceeds max_event or cb stopped the feed
 * (then *cb_rc holds cb's return when cb_rc is not NULL). */
int lx_sse_feed(struct lx_sse_decoder *d, const char *p, size_t n, lx_sse_event_cb cb, void *ctx, int *cb_rc);
/* At the end of the body: treat a last line without its line end, and an event without its blank
 * line, as complete (servers and recordings cut the final terminator). Same returns as lx_sse_feed. */
int lx_sse_flush(struct lx_sse_decoder *d, lx_sse_event_cb cb, void *ctx, int *cb_rc);
/* True when bytes of an unfinished event are pending (a stream cut mid-event). */
bool lx_sse_pending(const struct lx_sse_decoder *d);
void lx_sse_decoder_free(struct lx_sse_decoder *d);
/* The last event ID: "" until an id: field gave one. */
static inline const char *lx_sse_last_id(const struct lx_sse_decoder *d) { return d->last_id ? d->last_id : ""; }

/* Append "data: <payload>\n\n" (payload must hold no newline: compact JSON never does). */
void lx_sse_write_data(struct lx_buf *out, const char *payload, size_t len);

#endif
