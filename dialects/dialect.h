/* dialects/dialect.h: the contract of an inbound wire format (issue 13; issues 15 and 16 fill it).
 *
 * An inbound wire format ("dialect"): how the clients of one API talk to llmux. A dialect only
 * translates between its API and the pivot, which is OpenAI chat completions:
 *   - requests: an OpenAI-chat-shaped JSON body (what struct lx_chat carries to the engine),
 *   - answers: chat.completion objects (non-stream) and chat.completion.chunk objects (stream),
 *   - failures: struct lx_error (status, type, code, message, param).
 * It never touches sockets, the loop, the engine or the request object, so every slot is unit-testable
 * on recorded fixtures. One const table per dialect, registered in dialects/registry.c (like providers).
 * The API layer (src/api/reply.c) drives the slots: it opens the stream encoder when the first event is
 * due, writes what the slots append, and runs the keep-alive timer.
 *
 * Include rule: dialects/ includes src/core/ only (and its own headers). */
#ifndef LX_DIALECT_H
#define LX_DIALECT_H

#include "../src/core/buf.h"
#include "../src/core/errors.h"
#include "../src/core/pivot.h"

#include <jansson.h>
#include <stdbool.h>

struct lx_answer_bytes;

/* What a dialect learned from a request that the answer needs (the client's model name, whether it
 * streams, usage wanted, an estimate of prompt tokens, ...). Owned by the caller, filled by parse,
 * freed by lx_dialect_req_clear. Dialects may keep their own extra state in `priv`. */
struct lx_dialect_req {
    char *model;          /* owned: the model name the client sent */
    bool stream;          /* the client wants a stream */
    bool include_usage;   /* usage in the stream (OpenAI stream_options.include_usage; always for others) */
    long prompt_tokens_estimate; /* for dialects that must announce input tokens before the first token */
    json_t *priv;         /* owned: dialect-specific data kept from the request (NULL if none) */
};
void lx_dialect_req_clear(struct lx_dialect_req *rq);

struct lx_dialect {
    /* Name for logs and the route table: "openai_chat", "anthropic_messages", "openai_responses". */
    const char *name;

    /* Validate the client's body and translate it to the pivot: returns a new OpenAI-chat-shaped body
     * (the engine sees only that), and fills rq. NULL with err set (a 400 naming the field, in this
     * dialect's terms) when the body is bad or asks for what cannot be translated. Parse errors of the
     * JSON itself come from the one core helper (line and column). */
    json_t *(*parse)(const char *body, size_t len, struct lx_dialect_req *rq, struct lx_error *err);
    /* The same check without building a tree, for a body that is already a pivot body (pivot_bytes): LX_OK
     * when the body is valid and rq is filled, and bytes too, from the same scan (what the pass-through
     * path needs to send the body on): the engine may go on from the bytes alone (the call builds a tree
     * only for a provider that needs one). LX_AGAIN for anything else (an error to name, a member only
     * the tree path handles), and then parse decides. NULL: always parse. */
    int (*parse_bytes)(const char *body, size_t len, struct lx_dialect_req *rq, struct lx_chat_bytes *bytes);

    /* The non-stream answer: a pivot chat.completion (borrowed) → this dialect's body (new reference). */
    json_t *(*completion)(const struct lx_dialect_req *rq, json_t *completion);

    /* The body of an error answer in this dialect's shape (new reference), and the HTTP status to send
     * (usually err->status; a dialect may map, e.g. Anthropic 529 for overload). */
    json_t *(*error_body)(const struct lx_error *err, int *status);

    /* --- streaming: a stateful encoder from pivot chunks to this dialect's wire events --- */
    const char *stream_content_type; /* "text/event-stream" */
    /* Per-stream state (Anthropic: open content blocks and their indexes; Responses: sequence numbers,
     * output items, accumulated text for the final event). NULL is a valid state for a dialect that
     * needs none. */
    void *(*stream_open)(const struct lx_dialect_req *rq);
    /* Append the wire bytes for one pivot chunk (borrowed) to out: zero, one or several events. */
    void (*stream_chunk)(void *st, json_t *chunk, struct lx_buf *out);
    /* The stream ended well: append the closing events ("data: [DONE]", message_delta + message_stop,
     * response.completed ...). */
    void (*stream_end)(void *st, struct lx_buf *out);
    /* The stream failed after it began: append the error event(s); nothing follows. */
    void (*stream_error)(void *st, const struct lx_error *err, struct lx_buf *out);
    /* While the stream is silent for keepalive_ms after its first event: append a keep-alive (Anthropic
     * `ping`, or an SSE comment). NULL: none. */
    void (*stream_keepalive)(void *st, struct lx_buf *out);
    long keepalive_ms;
    /* Free the state (NULL is fine). */
    void (*stream_close)(void *st);

    /* --- the pass-through path (src/core/passthru.h), for a dialect whose wire is the pivot's; NULL and
     * false elsewhere --- */
    /* The client's body is a pivot body as it stands: it may go upstream as the client sent it. */
    bool pivot_bytes;
    /* One chunk kept as the upstream's bytes (borrowed): append its wire event(s) to out. */
    void (*stream_chunk_bytes)(void *st, const struct lx_answer_bytes *chunk, struct lx_buf *out);
    /* The non-stream answer kept as the upstream's bytes (borrowed): append this dialect's body to out. */
    void (*completion_bytes)(const struct lx_dialect_req *rq, const struct lx_answer_bytes *completion,
                             struct lx_buf *out);
    /* x-llmux-dropped-params in this dialect's terms: `dropped` (the parameters the provider dropped,
     * comma-separated pivot names, never NULL) renamed to the client's own (Anthropic: user is
     * metadata.user_id, stop is stop_sequences, ...); a new string, or NULL for none. NULL slot: the
     * pivot's names are the client's. */
    char *(*dropped)(const struct lx_dialect_req *rq, const char *dropped);
};

/* The registry (dialects/registry.c): every dialect, by name, or NULL. */
const struct lx_dialect *lx_dialect_find(const char *name);
/* The registered dialects, for checks that hold for all of them. */
const struct lx_dialect *lx_dialect_at(size_t i);

extern const struct lx_dialect lx_dialect_openai_chat;
extern const struct lx_dialect lx_dialect_anthropic_messages;
extern const struct lx_dialect lx_dialect_openai_responses;

#endif
