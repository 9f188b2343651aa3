/* The openai provider's functions, shared by the OpenAI-compatible types (lmstudio, mlx, huggingface)
 * that differ only in defaults. */
#ifndef LX_PROVIDER_OPENAI_H
#define LX_PROVIDER_OPENAI_H

#include "provider.h"

#define LX_OPENAI_CAPS \
    {.chat = true, .streaming = true, .tools = true, .vision = true, .embeddings = true, .json_mode = true}

extern const char *const lx_openai_keys[];

void lx_openai_add_headers(const struct lx_provider_conf *p, struct lx_http_request *out);
/* Fill the fields lax servers omit: id, object, created, model. */
void lx_openai_fill(json_t *obj, const struct lx_chat *chat, const char *object, json_int_t created);
int lx_openai_chat_request(const struct lx_provider_conf *p, const struct lx_chat *chat, struct lx_http_request *out,
                           struct lx_error *err);
json_t *lx_openai_chat_response(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                                size_t len, struct lx_error *err);
int lx_openai_chat_response_bytes(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                                  size_t len, struct lx_answer_bytes *out);
void *lx_openai_stream_open(const struct lx_provider_conf *p, const struct lx_chat *chat);
int lx_openai_stream_feed(void *st, const char *data, size_t len, lx_chunk_fn emit, void *ctx, struct lx_error *err);
int lx_openai_stream_feed_bytes(void *st, const char *data, size_t len, lx_chunk_fn emit, lx_chunk_bytes_fn emit_bytes,
                                void *ctx, struct lx_error *err);
int lx_openai_stream_finish(void *st, lx_chunk_fn emit, void *ctx, struct lx_error *err);
bool lx_openai_stream_ended(const void *st);
void lx_openai_stream_close(void *st);
void lx_openai_error_response(const struct lx_provider_conf *p, int status, const char *body, size_t len,
                              struct lx_error *err);
int lx_openai_models_request(const struct lx_provider_conf *p, struct lx_http_request *out);
int lx_openai_models_response(const struct lx_provider_conf *p, const char *body, size_t len, json_t *ids);
int lx_openai_embeddings_request(const struct lx_provider_conf *p, const struct lx_chat *req,
                                 struct lx_http_request *out, struct lx_error *err);
json_t *lx_openai_embeddings_response(const struct lx_provider_conf *p, const struct lx_chat *req, const char *body,
                                      size_t len, struct lx_error *err);

/* The whole slot list of an OpenAI-compatible type, for the types that only change defaults. */
#define LX_OPENAI_SLOTS                                   \
    .config_keys = lx_openai_keys,                        \
    .chat_request = lx_openai_chat_request,               \
    .chat_response = lx_openai_chat_response,             \
    .chat_response_bytes = lx_openai_chat_response_bytes, \
    .stream_feed_bytes = lx_openai_stream_feed_bytes,     \
    .stream_open = lx_openai_stream_open,                 \
    .stream_feed = lx_openai_stream_feed,                 \
    .stream_finish = lx_openai_stream_finish,             \
    .stream_ended = lx_openai_stream_ended,               \
    .stream_close = lx_openai_stream_close,               \
    .error_response = lx_openai_error_response,           \
    .models_request = lx_openai_models_request,           \
    .models_response = lx_openai_models_response,         \
    .embeddings_request = lx_openai_embeddings_request,   \
    .embeddings_response = lx_openai_embeddings_response

#endif
