/* OTLP/JSON encoding of spans (opentelemetry-proto trace.proto in the protobuf JSON mapping, with hex
 * trace and span ids as OTLP/HTTP wants): a span from each event that ends one, with the GenAI semantic
 * conventions' attributes, and the ExportTraceServiceRequest body around a batch of them.
 *
 * Spans: one per client request (kind SERVER, "POST /v1/chat/completions", parent: the client's span
 * from traceparent), one per model-call attempt (kind CLIENT, "chat MODEL", child of its request) and
 * one per tool call (kind INTERNAL, "execute_tool TOOL", child of its request). */
#ifndef LX_OTLP_H
#define LX_OTLP_H

#include "bus.h"
#include "buf.h"

#include <stddef.h>

/* The span that ev ends, as compact JSON (owned by the caller), or NULL when ev ends no span or its
 * trace is not sampled. */
char *lx_otlp_span(const struct lx_event *ev);
/* An ExportTraceServiceRequest of n spans (each from lx_otlp_span) into b. */
void lx_otlp_request(struct lx_buf *b, const char *service_name, char *const *spans, size_t n);

#endif
