/* The pivot request: one validated model call as the engine and the providers see it, whatever API the
 * client spoke. Its body is OpenAI-chat-shaped (a dialect translates other APIs into it); answers come
 * back as chat.completion objects and chat.completion.chunk objects. */
#ifndef LX_PIVOT_H
#define LX_PIVOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* What an upstream call is for. */
enum lx_call_kind { LX_CALL_CHAT, LX_CALL_EMBEDDINGS };

struct lx_chat {
    enum lx_call_kind kind;
    json_t *body;      /* owned by the call: the OpenAI-shaped body (chat completion or embeddings request) */
    char *model;       /* owned by the call: the model name sent upstream (route without "PROVIDER/") */
    bool stream;       /* the client asked for a stream */
    bool include_usage;/* usage in the stream (stream_options.include_usage) */
    uint64_t req_id;   /* the gateway's request number, for generated ids */
    const char *request_id; /* borrowed: the client request's X-Request-Id, sent upstream too; or NULL */
};

#endif
