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

struct lx_chat {
    enum lx_call_kind kind;
    json_t *body;      /* owned by the call: the OpenAI-shaped body (chat completion or embeddings request) */
    char *model;       /* owned by the call: the model name sent upstream (route without "PROVIDER/") */
    bool stream;       /* the client asked for a stream */
    bool include_usage;/* usage in the stream (stream_options.include_usage) */
    uint64_t req_id;   /* the gateway's request number, for generated ids */
    const char *request_id; /* borrowed: the client request's X-Request-Id, sent upstream too; or NULL */
    /* The client's request in its own API when that is not OpenAI chat, or NULL: {"api": the dialect's
     * name, "body": the client's body, "headers": {the API's own request headers, e.g. anthropic-version},
     * "lost": [client parameters the pivot could not carry]}. A provider whose type speaks that API
     * (lx_provider_type.native_api) sends that body, the model renamed, instead of the pivot translated
     * back, and may relay the answer's own events (see lx_chat_native); for any other, call.c reports
     * "lost" in x-llmux-dropped-params. */
    json_t *native;    /* owned by the call (a reference, like body) */
    const struct lx_ev_origin *origin; /* borrowed: the client request its events are about (core/bus.h), or
                                        * NULL; it outlives the call (the owner holds the request) */
    char traceparent[LX_TRACEPARENT_LEN + 1]; /* sent upstream when set (the exec sets it per attempt) */
};

/* chat's native request when it is in the API named api, else NULL (borrowed). */
static inline json_t *lx_chat_native(const struct lx_chat *chat, const char *api)
{
    json_t *n = chat ? chat->native : NULL;
    const char *a = json_string_value(json_object_get(n, "api"));
    return n && api && a && strcmp(a, api) == 0 ? n : NULL;
}

#endif
