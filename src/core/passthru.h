/* The pass-through path: OpenAI chat JSON read as bytes, for the calls where the client's API and the
 * upstream's are both the pivot's (OpenAI chat completions). A request goes upstream as the client sent
 * it with only "model" replaced; an answer that already has every field a client expects goes back as the
 * upstream sent it, with what llmux must know of it (usage, finish, whether a chunk commits) read by
 * core/jscan.h on the way. Anything unusual (a field to fill, an "error" member, a duplicate key, text
 * jscan does not judge) is LX_AGAIN: the caller takes the general path through jansson, which gives the
 * same answer field for field (tests/unit/core/test_passthru.c checks that on the recorded fixtures). */
#ifndef LX_PASSTHRU_H
#define LX_PASSTHRU_H

#include "buf.h"
#include "jscan.h"
#include "pivot.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The facts of a client's chat body that sending it on needs: LX_OK with *out, or LX_AGAIN. */
int lx_passthru_request(const char *body, size_t len, struct lx_chat_bytes *out);
/* The same from a scan the caller made already: the body's top-level "model" and "stream_options"
 * members (core/jscan.h). */
int lx_passthru_request_scanned(const char *body, size_t len, const struct lx_jmember *model,
                                const struct lx_jmember *so, struct lx_chat_bytes *out);
/* The body to send upstream: b's with its model value replaced by model, and with
 * stream_options.include_usage: true added when add_usage (and b has no stream_options of its own).
 * LX_AGAIN: it has to be built from JSON. */
int lx_passthru_request_body(const struct lx_chat_bytes *b, const char *model, bool add_usage, struct lx_buf *out);
/* Whether lx_passthru_request_body would give LX_OK. */
bool lx_passthru_request_ok(const struct lx_chat_bytes *b, const char *model, bool add_usage);
/* The jansson tree of b's body (new reference), for a body whose bytes were checked and no tree built
 * (lx_dialect.parse_bytes); NULL only if it does not parse after all. */
json_t *lx_passthru_tree(const struct lx_chat_bytes *b);

/* A 2xx non-stream chat.completion that needs nothing filled: LX_OK with *out pointing into body. */
int lx_passthru_completion(const char *body, size_t len, struct lx_answer_bytes *out);
/* One stream event's data that is a chat.completion.chunk needing nothing filled or removed. */
int lx_passthru_chunk(const char *data, size_t len, struct lx_answer_bytes *out);

/* The answer's bytes as they are to be sent (its cut left out), appended to out. */
void lx_answer_bytes_write(const struct lx_answer_bytes *a, struct lx_buf *out);
/* The answer as JSON (new reference), for the consumers that need objects. */
json_t *lx_answer_bytes_json(const struct lx_answer_bytes *a);
/* A copy that owns its bytes (one allocation, freed with free). */
struct lx_answer_bytes *lx_answer_bytes_dup(const struct lx_answer_bytes *a);

#endif
