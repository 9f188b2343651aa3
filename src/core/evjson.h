/* An event as one flat JSON object, the form the SSE observers and the webhooks send: id, type, time,
 * the request it belongs to (request_id, key, model, trace_id), then the type's own fields. */
#ifndef LX_EVJSON_H
#define LX_EVJSON_H

#include "buf.h"
#include "bus.h"

#include <stddef.h>
#include <stdint.h>

/* Append ev's JSON object (compact) to b. */
void lx_event_write(const struct lx_event *ev, struct lx_buf *b);
/* ns since the epoch as RFC 3339 UTC with microseconds ("2025-01-31T12:00:00.123456Z"); out >= 32 bytes. */
void lx_rfc3339(int64_t ns, char *out, size_t len);

#endif
