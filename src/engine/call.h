/* One upstream chat call: a provider, a validated request, and the OpenAI-shaped answer it produces
 * (chunks as they arrive, then one on_done). Network providers run over lx_upstream with timeouts;
 * local providers (mock) are stepped on a timer of the call's own. A call is independent of any client request,
 * so one request can own several (fan-out, retries). */
#ifndef LX_CALL_H
#define LX_CALL_H

#include "../core/errors.h"

#include <jansson.h>
#include <stdbool.h>

struct lx_answer_bytes;
struct lx_call;
struct lx_chat;
struct lx_provider_conf;

struct lx_call_ops {
    /* A stream chunk (borrowed). May run inside a libcurl callback: touch buffers only; calling
     * lx_call_cancel from here is allowed. */
    void (*on_chunk)(void *owner, json_t *chunk);
    /* The end, exactly once unless cancelled: completion (stolen) on a non-stream success, err on any
     * failure, both NULL when a stream ended well. The call is gone after this returns. Runs from the
     * loop. */
    void (*on_done)(void *owner, json_t *completion, const struct lx_error *err);
    /* Stream backpressure: false pauses the upstream until lx_call_resume. */
    bool (*can_write)(void *owner);
    /* The pass-through path (core/passthru.h), optional: when set, the answers of a provider that can keep
     * them as the upstream's bytes come this way instead of as JSON. A chunk, as on_chunk: */
    void (*on_chunk_bytes)(void *owner, const struct lx_answer_bytes *chunk);
    /* ... and a non-stream success, instead of on_done (the bytes are borrowed for the call). */
    void (*on_done_bytes)(void *owner, const struct lx_answer_bytes *completion);
};

/* Start. chat's body and model are taken over (the struct is copied). NULL with err set when the
 * request cannot be built or sent. */
struct lx_call *lx_call_start(const struct lx_provider_conf *p, struct lx_chat *chat, const struct lx_call_ops *ops,
                              void *owner, struct lx_error *err);
/* Stop: no callback follows, the upstream connection is closed, memory is freed on the next loop turn. */
void lx_call_cancel(struct lx_call *c);
/* Client parameters the provider dropped (comma-separated), or NULL. Valid until on_done returns. */
const char *lx_call_dropped(const struct lx_call *c);
/* The owner drained after can_write said no. */
void lx_call_resume(struct lx_call *c);


#endif
