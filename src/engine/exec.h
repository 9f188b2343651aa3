/* One logical model call made resilient: runs a routing plan (fallbacks, hedged or raced lanes) with
 * retries, per-provider capacity queues, the cooldown breaker and an end-to-end deadline, and hands its
 * owner one answer, as if it were a single call. Chat, embeddings, fanout and batch all run through it.
 *
 * The engine/ layer: routing, this resilient call, one call with its timeouts, providers' live capacity,
 * and the providers' section of the config. It may include src/core/, src/io/ and providers/, never
 * src/server/, src/api/ or dialects/: it knows calls, not clients or their APIs. */
#ifndef LX_EXEC_H
#define LX_EXEC_H

#include "../core/errors.h"
#include "../core/tally.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct lx_answer_bytes;
struct lx_exec;
struct lx_chat;
struct lx_plan;

struct lx_exec_ops {
    /* The answer is decided: `label` ("PROVIDER/MODEL") will answer; `dropped` lists parameters its
     * provider dropped, or NULL. Comes before the first on_chunk, or before on_done on a non-stream
     * success. May be NULL. */
    void (*on_commit)(void *owner, const char *label, const char *dropped);
    /* A stream chunk of the winning lane (borrowed). May run inside a libcurl callback: touch buffers only. */
    void (*on_chunk)(void *owner, json_t *chunk);
    /* The end, exactly once unless cancelled: completion (stolen) on a non-stream success, err on failure,
     * both NULL when a stream ended well. The exec is gone after this returns. Runs from the loop. */
    void (*on_done)(void *owner, json_t *completion, const struct lx_error *err);
    /* Stream backpressure: false pauses the winning upstream until lx_exec_resume. */
    bool (*can_write)(void *owner);
    /* The pass-through path (core/passthru.h), both or neither: answers that a provider keeps as the
     * upstream's bytes come as bytes (borrowed for the call), with usage the client did not ask for already
     * cut out. A stream chunk, as on_chunk: */
    void (*on_chunk_bytes)(void *owner, const struct lx_answer_bytes *chunk);
    /* ... and a non-stream success, instead of on_done with a completion; the exec is gone after it. */
    void (*on_done_bytes)(void *owner, const struct lx_answer_bytes *completion);
    /* A lane has won: nothing will be sent upstream again (no retry, fallback or hedge), so the owner may
     * free the request's body, which tmpl's bytes point into. May be NULL. */
    void (*on_won)(void *owner);
};

/* Start on the next loop turn (no callback runs before this returns). The plan is taken over (emptied);
 * tmpl's body is shared (a reference is taken) and its model ignored. deadline: lx_now_ms() value at which
 * everything is abandoned with a 504 (0 = none); deadline_ms is the budget named in that message. */
struct lx_exec *lx_exec_start(struct lx_plan *plan, const struct lx_chat *tmpl, uint64_t deadline, long deadline_ms,
                              const struct lx_exec_ops *ops, void *owner);
/* Stop everything (upstream connections closed, queue places and pending retries dropped); no callback
 * follows. Not after on_done. */
void lx_exec_cancel(struct lx_exec *x);
/* Add this call's tokens, retries and answerer to t (which must outlive the exec or its cancel). Right after
 * lx_exec_start. */
void lx_exec_set_tally(struct lx_exec *x, struct lx_tally *t);
/* The owner drained after can_write said no. */
void lx_exec_resume(struct lx_exec *x);
/* Retries and fallbacks done so far (for logs). */
int lx_exec_retries(const struct lx_exec *x);
int lx_exec_fallbacks(const struct lx_exec *x);

/* Classification used by the retry policy, exposed for unit tests. */
bool lx_exec_retryable(const struct lx_error *err);
/* A stream chunk that carries only the role or empty content: it does not commit its lane. */
bool lx_exec_is_preamble(json_t *chunk);
/* The delay before retry number n (0-based): full jitter over min(max, base·2^n), at least Retry-After
 * (seconds) when given, never above max. rnd is a uniform random 64-bit value. */
long lx_exec_backoff_ms(long n, long base_ms, long max_ms, const char *retry_after, uint64_t rnd);

#endif
