/* W3C Trace Context (traceparent) for a request: continued from the client's header or begun here, a
 * span id per request and per model-call attempt, and the sampling decision the OTLP exporter asked for
 * (ParentBased(TraceIdRatioBased(sample)), the OpenTelemetry SDKs' default). Plain data and pure
 * functions, but for the process-wide sampling ratio and id generator. */
#ifndef LX_TRACE_H
#define LX_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LX_TRACEPARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */

struct lx_trace {
    uint8_t trace_id[16];
    uint8_t span_id[8];   /* this request's own span */
    uint8_t parent_id[8]; /* the client's span, when it sent a traceparent */
    uint8_t client_flags; /* the client's trace-flags byte */
    bool valid;           /* the ids are set: a traceparent came in, or tracing is on */
    bool has_parent;      /* continued from the client's traceparent */
    bool sampled;         /* this request's spans are exported */
};

/* The share of new traces that are recorded: 0 (tracing off, the default) to 1. Set by the OTLP sink. */
void lx_trace_set_ratio(double ratio);
double lx_trace_ratio(void);

/* Parse a traceparent header value into t's trace_id, parent_id and client_flags. Version 00 exactly, or a
 * later version's first four fields (the W3C rule for versions we do not know); ids all zero, upper-case
 * hex or version ff are invalid. LX_OK or LX_ERR (t untouched). */
int lx_trace_parse(const char *header, struct lx_trace *t);
/* Begin a request's trace: continue header (a client's traceparent, or NULL) when valid, else start a
 * new trace when tracing is on; a span id for the request either way. A client's sampled flag decides
 * (parent based) while tracing is on; a new trace is sampled by its id against the ratio. */
void lx_trace_begin(struct lx_trace *t, const char *header);
/* The traceparent to send upstream for a call whose span is span_id (NULL when the call has no span of
 * ours): our span when sampled, else the client's own header, else nothing. out is LX_TRACEPARENT_LEN + 1
 * bytes. false when nothing is to be sent. */
bool lx_trace_upstream(const struct lx_trace *t, const uint8_t span_id[8], char *out);
/* A new random span id (never all zero). */
void lx_trace_span_id(uint8_t out[8]);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void lx_hex(const uint8_t *in, size_t n, char *out);

#endif
