/* The pivot request: one validated model call as the engine and the providers see it, whatever API the
 * client spoke. Its body is OpenAI-chat-shaped (a dialect translates other APIs into it); answers come
 * back as chat.completion objects and chat.completion.chunk objects. */
#ifndef LX_PIVOT_H
#define LX_PIVOT_H

#include "trace.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct lx_ev_origin;

/* What an upstream call is for. */
enum lx_call_kind {
    LX_CALL_CHAT,
    LX_CALL_EMBEDDINGS,
    LX_CALL_COUNT_TOKENS, /* an API's own token count (native holds the client's count request) */
};

/* The pass-through path (core/passthru.h): the client's body as it was sent, when it is itself a pivot
 * body, so that a provider of the OpenAI family can send it upstream with only the model replaced instead
 * of serialising `body` again. Whoever changes `body` clears this. */
struct lx_chat_bytes {
    const char *data;       /* borrowed: the request's body (the relay holds the request while its calls run);
                             * NULL: build the upstream body from `body` */
    size_t len;
    size_t model_at;        /* the top-level "model" value, a JSON string with its quotes */
    size_t model_len;
    bool usage_asked;       /* it has stream_options.include_usage: true */
    bool stream_options;    /* it has a top-level stream_options */
};

struct lx_chat {
    enum lx_call_kind kind;
    json_t *body;      /* owned by the call: the OpenAI-shaped body (chat completion or embeddings request) */
    char *model;       /* owned by the call: the model name sent upstream (route without "PROVIDER/") */
    bool stream;       /* the client asked for a stream */
    bool include_usage;/* usage in the stream (stream_options.include_usage) */
    uint64_t req_id;   /* the gateway's request number, for generated ids */
    const char *request_id; /* borrowed: the client request's X-Request-Id, sent upstream too; or NULL */
    struct lx_chat_bytes bytes;
    /* The client's request in its own API when that is not OpenAI chat, or NULL: {"api": the dialect's
     * name, "body": the client's body, "headers": {the API's own request headers, e.g. anthropic-version},
     * "lost": [client parameters the pivot could not carry]}. A provider whose type speaks that API
     * (lx_provider_type.native_api) sends that body, the model renamed, instead of the pivot translated
     * back, and may relay the answer's own events (see lx_chat_native); for any other, call.c reports
     * "lost" in x-llmux-dropped-params. */
    json_t *native;    /* owned by the call (a reference, like body) */
    const struct lx_ev_origin *origin; /* borrowed: the client request its events are about (core/bus.h), or
                                        * NULL; it outlives the call (the owner holds the request) */
    const char *traceparent; /* sent upstream when set: the exec sets it per attempt, valid while
                              * lx_call_start runs (a call keeps no copy) */
};

/* An answer kept as the upstream's bytes on the pass-through path: a chat.completion, or one
 * chat.completion.chunk (on one line), that already has every field a client expects, with what llmux
 * must know of it. Borrowed for the duration of the callback that hands it over. */
struct lx_answer_bytes {
    const char *data;       /* the JSON object */
    size_t len;
    size_t cut_at, cut_len; /* bytes of data left out when it is written or read (cut_len 0: none) */
    size_t usage_at, usage_len; /* the "usage" member with a comma next to it, for leaving it out */
    size_t model_at, model_len; /* the "model" string's text in data, without its quotes (0 long: unknown) */
    bool has_usage;         /* it has a "usage" member (of any value) */
    bool usage_object;      /* ... and it is an object */
    long prompt_tokens;     /* usage's, when usage is an object with these integers; else -1 */
    long completion_tokens;
    bool usage_only;        /* chunk: "choices" is an empty array (the usage chunk) */
    bool preamble;          /* chunk: only the role or empty content, no finish (it does not commit a lane) */
    bool finish;            /* chunk: a choice has a finish_reason */
};

/* chat's native request when it is in the API named api, else NULL (borrowed). */
static inline json_t *lx_chat_native(const struct lx_chat *chat, const char *api)
{
    json_t *n = chat ? chat->native : NULL;
    const char *a = json_string_value(json_object_get(n, "api"));
    return n && api && a && strcmp(a, api) == 0 ? n : NULL;
}

#endif
