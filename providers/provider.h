/* The provider interface: one const table of function pointers per provider type (openai, mock, ...),
 * registered in providers/registry.c. A provider only translates: it never touches sockets, and sees
 * requests and answers as JSON and bytes, so every slot can be unit-tested without a network.
 * Include rule: providers/ includes src/core/ only (and its own headers). */
#ifndef LX_PROVIDER_H
#define LX_PROVIDER_H

#include "../src/core/buf.h"
#include "../src/core/errors.h"
#include "../src/core/httpreq.h"
#include "../src/core/pivot.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lx_timeouts {
    long connect_ms;    /* TCP (and TLS) connect */
    long first_byte_ms; /* request sent → first body byte */
    long idle_ms;       /* longest silence between two body reads of a stream */
    long total_ms;      /* whole upstream exchange */
};

/* Retries of one upstream call before any byte reached the client (see exec.c). */
struct lx_retries {
    long max;           /* retries after the first attempt */
    long base_delay_ms; /* backoff: a random delay in [0, base * 2^n), full jitter */
    long max_delay_ms;  /* cap on one delay, a Retry-After included */
};

/* The breaker: after `failures` failed calls in a row the provider is skipped for period_ms. */
struct lx_cooldown {
    long failures; /* 0 = never */
    long period_ms;
};

struct lx_provider_type;

/* One configured provider (an entry of "providers"), parsed by the engine's config section: read by its
 * type's slots, and by the engine for its resilience keys. Its live counters are the engine's, by name
 * (engine/capacity.h). */
struct lx_provider_conf {
    char *name;                          /* owned */
    const struct lx_provider_type *type; /* static, from the registry */
    char *base_url;                      /* owned; no trailing '/'; NULL for local types */
    char *api_key;                       /* owned; secret: never logged or echoed */
    char **headers;                      /* owned: "Name: value" lines sent upstream */
    size_t n_headers;
    char **models;                       /* owned: configured model names (without provider prefix) */
    size_t n_models;
    struct lx_timeouts timeouts;         /* provider's own, falling back to the global ones */
    struct lx_retries retries;           /* provider's own, falling back to the global ones */
    size_t max_upstream_body_bytes;      /* limits.max_upstream_body_bytes: most bytes of one buffered
                                          * (non-stream or error) answer */
    long max_concurrency;                /* calls in flight at once; 0 = unlimited */
    long queue_timeout_ms;               /* longest wait for a free slot */
    struct lx_cooldown cooldown;
    bool passthrough;                    /* "passthrough" (default true): the OpenAI family may relay the
                                          * client's and the upstream's bytes; false: always rebuilt */
    char *disabled_reason;               /* owned; non-NULL when the provider cannot be used */
    void *state;                         /* owned by the type: freed by type->free_state */
};

/* Receives each OpenAI chat.completion.chunk a stream decoder produces (borrowed reference). */
typedef void (*lx_chunk_fn)(void *ctx, json_t *chunk);
/* The same for a chunk kept as the upstream's bytes (the pass-through path; borrowed for the call). */
typedef void (*lx_chunk_bytes_fn)(void *ctx, const struct lx_answer_bytes *chunk);

/* What a provider type can do, shown by GET /v1/providers. */
struct lx_provider_caps {
    bool chat, streaming, tools, vision, embeddings, json_mode;
    bool documents; /* reads PDF documents (OpenAI file parts, Anthropic document blocks) */
};

struct lx_provider_type {
    /* The config "type" value. */
    const char *name;
    /* Capabilities of this type. */
    struct lx_provider_caps caps;
    /* The inbound dialect whose requests this type sends upstream as they are (lx_chat.native), or NULL:
     * "anthropic_messages" for the anthropic type. */
    const char *native_api;
    /* Environment variable read for api_key when the config gives none (e.g. HF_TOKEN), or NULL. */
    const char *api_key_env;
    /* Keys a provider of this type accepts in its config object (NULL-terminated); others are refused. */
    const char *const *config_keys;
    /* base_url when the config has none; NULL: the type needs no network. */
    const char *default_base_url;
    /* Parse the type's own keys (the common ones are already in p); may set p->state. LX_OK or LX_ERR
     * with err naming the key. May be NULL. */
    int (*configure)(struct lx_provider_conf *p, json_t *obj, const char *path, char *err, size_t errlen);
    /* Free p->state. May be NULL. */
    void (*free_state)(void *state);

    /* --- network providers: translation both ways --- */
    /* Build the upstream request for a chat completion. LX_OK, or LX_ERR with err set (a 400 naming a
     * parameter the provider cannot honour). */
    int (*chat_request)(const struct lx_provider_conf *p, const struct lx_chat *chat, struct lx_http_request *out,
                        struct lx_error *err);
    /* Turn a 2xx non-stream body into a chat.completion (new reference), or NULL with err set (502 when
     * the body is not the provider's protocol). */
    json_t *(*chat_response)(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                             size_t len, struct lx_error *err);
    /* Stream decoder: open per call; feed body bytes split anywhere, emitting OpenAI chunks; finish at the
     * end of the body. feed/finish return LX_OK, or LX_ERR with err set (a bad stream or an upstream
     * error event). */
    void *(*stream_open)(const struct lx_provider_conf *p, const struct lx_chat *chat);
    int (*stream_feed)(void *st, const char *data, size_t len, lx_chunk_fn emit, void *ctx, struct lx_error *err);
    int (*stream_finish)(void *st, lx_chunk_fn emit, void *ctx, struct lx_error *err);
    /* True once the stream's own end was decoded ([DONE], message_stop, done:true): the answer is whole
     * and stream_finish may run at once. The call ends there, so an upstream that keeps its HTTP body
     * open after the end cannot hold the answer back. NULL: only the end of the body ends the stream. */
    bool (*stream_ended)(const void *st);
    void (*stream_close)(void *st);
    /* --- the pass-through path (core/passthru.h), for the types whose wire is the pivot's; NULL elsewhere.
     * chat_request sends chat->bytes itself when it can. --- */
    /* A 2xx non-stream body that already is a whole chat.completion: LX_OK with *out pointing into body;
     * LX_AGAIN: chat_response makes the answer. */
    int (*chat_response_bytes)(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                               size_t len, struct lx_answer_bytes *out);
    /* stream_feed, handing the chunks that need nothing done to them to emit_bytes as they came, and the
     * others to emit as JSON. */
    int (*stream_feed_bytes)(void *st, const char *data, size_t len, lx_chunk_fn emit, lx_chunk_bytes_fn emit_bytes,
                             void *ctx, struct lx_error *err);
    /* Map an upstream error status and body into err (status kept). */
    void (*error_response)(const struct lx_provider_conf *p, int status, const char *body, size_t len,
                           struct lx_error *err);
    /* Upstream model listing: build the request (LX_ERR: this provider has none) and read the answer,
     * appending model names (strings) to ids. */
    int (*models_request)(const struct lx_provider_conf *p, struct lx_http_request *out);
    int (*models_response)(const struct lx_provider_conf *p, const char *body, size_t len, json_t *ids);
    /* Embeddings (NULL: not supported): build the request from an OpenAI embeddings body, and turn the
     * 2xx answer into OpenAI's {"object":"list","data":[...]} (NULL with err when it is not). */
    int (*embeddings_request)(const struct lx_provider_conf *p, const struct lx_chat *req,
                              struct lx_http_request *out, struct lx_error *err);
    json_t *(*embeddings_response)(const struct lx_provider_conf *p, const struct lx_chat *req, const char *body,
                                   size_t len, struct lx_error *err);
    /* An API's own token count (NULL: none): build the request from chat->native (the client's count
     * request in this type's API), and read the answer into {"input_tokens": N} (NULL with err when it is
     * not one). */
    int (*count_tokens_request)(const struct lx_provider_conf *p, const struct lx_chat *chat,
                                struct lx_http_request *out, struct lx_error *err);
    json_t *(*count_tokens_response)(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                                     size_t len, struct lx_error *err);

    /* --- local providers (no network): the engine drives them on its own timers ---
     * local_start decides the answer (or a refusal); local_next hands it out one piece at a time, each
     * time the wait it asked for has passed and, when streaming, the client can take more (backpressure,
     * as an upstream gets it). Neither touches the loop, so a local provider is a pure function too. */
    /* The state for local_next; *delay_ms: the wait before the first local_next; *dropped: the client
     * parameters it ignores, comma-separated (borrowed from the state; NULL: none). */
    void *(*local_start)(const struct lx_provider_conf *p, const struct lx_chat *chat, long *delay_ms,
                         const char **dropped);
    /* The next piece: LX_OK with *out a stream chunk (new reference) and *delay_ms the wait before the
     * next call (0: at once); LX_DONE with *out the completion (new reference), or NULL when a stream
     * ended; LX_ERR with err set. Only local_free follows LX_DONE or LX_ERR. */
    int (*local_next)(void *state, json_t **out, long *delay_ms, struct lx_error *err);
    /* Free the state: the call ended, or was cancelled. */
    void (*local_free)(void *state);
};

/* The registry: every provider type, by config name. */
const struct lx_provider_type *lx_provider_type_find(const char *name);
/* Comma-separated list of type names, for error messages. */
const char *lx_provider_type_names(void);

extern const struct lx_provider_type lx_provider_openai;
extern const struct lx_provider_type lx_provider_anthropic;
extern const struct lx_provider_type lx_provider_ollama;
extern const struct lx_provider_type lx_provider_lmstudio;
extern const struct lx_provider_type lx_provider_mlx;
extern const struct lx_provider_type lx_provider_huggingface;
extern const struct lx_provider_type lx_provider_mock;

/* Helpers shared by the translating providers (providers/common.c). */
/* The text of an OpenAI message content (a string, or the text parts of an array), appended to out. */
void lx_content_text(json_t *content, struct lx_buf *out);
/* max_completion_tokens, else max_tokens, else dflt. */
json_int_t lx_chat_max_tokens(json_t *body, json_int_t dflt);
/* Append to ids the string field id_key (or, failing that, alt_key) of every object in body's array
 * list_key: how model lists are read. LX_ERR when the body has no such array. */
int lx_collect_ids(const char *body, size_t len, const char *list_key, const char *id_key, const char *alt_key,
                   json_t *ids);
/* Copy src[key] to dst[key] when the client sent it (and it is not null). */
void lx_copy_if_present(json_t *dst, json_t *src, const char *key);

#endif
