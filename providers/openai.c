/* Provider type "openai": OpenAI and every server that speaks its wire format (vLLM, llama.cpp,
 * OpenRouter, Groq, ...). Requests pass through with the model renamed; answers pass through after a
 * shape check (a server that answers something else is a 502, not a confused client), with the fields
 * lax servers omit (id, object, created, model, usage) filled in so strict clients parse every answer.
 * lmstudio.c, mlx.c and huggingface.c reuse these functions with their own defaults (openai.h). */
#include "openai.h"
#include "provider.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"
#include "../src/core/passthru.h"
#include "../src/core/sse.h"

#include <stdlib.h>
#include <string.h>

const char *const lx_openai_keys[] = {"type", "base_url", "api_key", "headers", "models", "timeouts", NULL};

void lx_openai_add_headers(const struct lx_provider_conf *p, struct lx_http_request *out)
{
    if (p->api_key)
        lx_http_request_add_header(out, "Authorization: Bearer %s", p->api_key);
    for (size_t i = 0; i < p->n_headers; i++)
        lx_http_request_add_header(out, "%s", p->headers[i]);
}

/* The upstream body built from the pivot: the client's with the model renamed, and usage asked for. */
static json_t *chat_body(const struct lx_chat *chat, bool add_usage)
{
    json_t *body = json_copy(chat->body); /* shallow: only "model" and "stream_options" change */
    json_object_set_new(body, "model", json_string(chat->model));
    if (add_usage) {
        /* llmux asks for usage on every stream (for metrics and tpm) and hides it from clients that did not. */
        json_t *so = json_object_get(body, "stream_options");
        so = json_is_object(so) ? json_copy(so) : json_object();
        json_object_set_new(so, "include_usage", json_true());
        json_object_set_new(body, "stream_options", so);
    }
    return body;
}

int lx_openai_chat_request(const struct lx_provider_conf *p, const struct lx_chat *chat,
                               struct lx_http_request *out, struct lx_error *err)
{
    (void)err;
    bool add_usage = chat->stream && chat->include_usage;
    struct lx_buf bytes = {0};
    if (chat->kind == LX_CALL_CHAT && lx_passthru_request_body(&chat->bytes, chat->model, add_usage, &bytes) == LX_OK) {
        /* The pass-through path: the client's own bytes, with the model renamed. */
        size_t len;
        char *text = lx_buf_steal(&bytes, &len);
        lx_http_request_post_text(out, lx_sprintf("%s/chat/completions", p->base_url), text, len);
    } else {
        lx_buf_free(&bytes);
        lx_http_request_post_json(out, lx_sprintf("%s/chat/completions", p->base_url), chat_body(chat, add_usage));
    }
    lx_http_request_add_header(out, "Accept: %s", chat->stream ? "text/event-stream" : "application/json");
    lx_openai_add_headers(p, out);
    return LX_OK;
}

int lx_openai_chat_response_bytes(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                                  size_t len, struct lx_answer_bytes *out)
{
    (void)p;
    (void)chat;
    return lx_passthru_completion(body, len, out);
}


static void not_protocol(const struct lx_provider_conf *p, struct lx_error *err, const char *what)
{
    lx_error_set(err, 502, "upstream_error", NULL, "bad_upstream_response",
                 "Provider '%s' answered with %s.", p->name, what);
}

json_t *lx_openai_chat_response(const struct lx_provider_conf *p, const struct lx_chat *chat, const char *body,
                                    size_t len, struct lx_error *err)
{
    (void)chat;
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    if (!json_is_object(root) || !json_is_array(json_object_get(root, "choices"))) {
        /* Some servers and proxies answer 200 with an error object: relay it, not a generic 502. */
        if (!lx_error_from_answer(err, root))
            not_protocol(p, err, "a body that is not a chat completion");
        json_decref(root);
        return NULL;
    }
    lx_openai_fill(root, chat, "chat.completion", lx_wall_s());
    if (!json_is_object(json_object_get(root, "usage")))
        json_object_set_new(root, "usage", json_pack("{s:i,s:i,s:i}", "prompt_tokens", 0, "completion_tokens", 0,
                                                     "total_tokens", 0));
    return root;
}

void lx_openai_fill(json_t *obj, const struct lx_chat *chat, const char *object, json_int_t created)
{
    if (!json_is_string(json_object_get(obj, "id")))
        json_object_set_new(obj, "id", json_sprintf("chatcmpl-llmux-%llu", (unsigned long long)(chat ? chat->req_id : 0)));
    if (!json_is_string(json_object_get(obj, "object")))
        json_object_set_new(obj, "object", json_string(object));
    if (!json_is_integer(json_object_get(obj, "created")))
        json_object_set_new(obj, "created", json_integer(created));
    if (!json_is_string(json_object_get(obj, "model")) && chat && chat->model)
        json_object_set_new(obj, "model", json_string(chat->model));
}

struct openai_stream {
    const struct lx_provider_conf *p;
    const struct lx_chat *chat;  /* borrowed: the call outlives its decoder */
    json_int_t created;          /* filled into chunks that lack it, the same for the whole stream */
    bool usage_seen;
    struct lx_sse_decoder sse;
    bool done;          /* [DONE] seen */
    bool finish_seen;   /* a choice carried a finish_reason */
    lx_chunk_fn emit;   /* set for the duration of one feed */
    lx_chunk_bytes_fn emit_bytes; /* the same, NULL unless the feed passes chunks through as bytes */
    void *emit_ctx;
    struct lx_error *err;
};

void *lx_openai_stream_open(const struct lx_provider_conf *p, const struct lx_chat *chat)
{
    struct openai_stream *st = lx_calloc(1, sizeof *st);
    st->p = p;
    st->chat = chat;
    st->created = lx_wall_s();
    return st;
}

static int openai_event(void *ctx, const char *event, const char *data, size_t len)
{
    (void)event;
    struct openai_stream *st = ctx;
    if (st->done)
        return LX_OK;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        st->done = true;
        return LX_OK;
    }
    struct lx_answer_bytes bytes;
    if (st->emit_bytes && lx_passthru_chunk(data, len, &bytes) == LX_OK) {
        st->usage_seen |= bytes.usage_object;
        st->finish_seen |= bytes.finish;
        st->emit_bytes(st->emit_ctx, &bytes);
        return LX_OK;
    }
    json_t *chunk = json_loadb(data, len, 0, NULL);
    if (!json_is_object(chunk)) {
        json_decref(chunk);
        not_protocol(st->p, st->err, "a stream event that is not JSON");
        return LX_ERR;
    }
    if (lx_error_from_answer(st->err, chunk)) {
        json_decref(chunk);
        return LX_ERR;
    }
    json_object_del(chunk, "error"); /* "error": null from lax servers: a client must not mistake it */
    lx_openai_fill(chunk, st->chat, "chat.completion.chunk", st->created);
    if (json_is_object(json_object_get(chunk, "usage")))
        st->usage_seen = true;
    size_t i;
    json_t *choice;
    json_array_foreach(json_object_get(chunk, "choices"), i, choice) {
        json_t *fr = json_object_get(choice, "finish_reason");
        if (fr && !json_is_null(fr))
            st->finish_seen = true;
    }
    st->emit(st->emit_ctx, chunk);
    json_decref(chunk);
    return LX_OK;
}

int lx_openai_stream_feed(void *state, const char *data, size_t len, lx_chunk_fn emit, void *ctx,
                              struct lx_error *err)
{
    return lx_openai_stream_feed_bytes(state, data, len, emit, NULL, ctx, err);
}

int lx_openai_stream_feed_bytes(void *state, const char *data, size_t len, lx_chunk_fn emit,
                                lx_chunk_bytes_fn emit_bytes, void *ctx, struct lx_error *err)
{
    struct openai_stream *st = state;
    st->emit = emit;
    st->emit_bytes = emit_bytes;
    st->emit_ctx = ctx;
    st->err = err;
    if (lx_sse_feed(&st->sse, data, len, openai_event, st, NULL) != LX_OK) {
        if (!lx_error_isset(err))
            not_protocol(st->p, err, "a stream event larger than the limit");
        return LX_ERR;
    }
    return LX_OK;
}

int lx_openai_stream_finish(void *state, lx_chunk_fn emit, void *ctx, struct lx_error *err)
{
    struct openai_stream *st = state;
    st->emit = emit;
    st->emit_bytes = NULL;
    st->emit_ctx = ctx;
    st->err = err;
    if (!st->done && lx_sse_flush(&st->sse, openai_event, st, NULL) != LX_OK) {
        if (lx_error_isset(err) && !(err->code && strcmp(err->code, "bad_upstream_response") == 0))
            return LX_ERR; /* an error event in the last, unterminated bytes: keep the upstream's words */
        lx_error_set(err, 502, "upstream_error", NULL, "bad_upstream_response",
                     "Provider '%s' ended the stream before it was complete.", st->p->name);
        return LX_ERR;
    }
    /* Some compatible servers end after the finish_reason chunk without [DONE]: that is a whole answer. */
    if (st->done || st->finish_seen) {
        if (st->chat && st->chat->include_usage && !st->usage_seen) {
            /* The client asked for usage and the server sent none: a final usage chunk keeps clients that
             * wait for it working; zeros say "not reported". */
            json_t *u = json_pack("{s:[],s:{s:i,s:i,s:i}}", "choices", "usage", "prompt_tokens", 0,
                                  "completion_tokens", 0, "total_tokens", 0);
            lx_openai_fill(u, st->chat, "chat.completion.chunk", st->created);
            emit(ctx, u);
            json_decref(u);
        }
        return LX_OK;
    }
    if (st->sse.events == 0)
        not_protocol(st->p, err, "something that is not an event stream");
    else
        lx_error_set(err, 502, "upstream_error", NULL, "bad_upstream_response",
                     "Provider '%s' ended the stream before it was complete.", st->p->name);
    return LX_ERR;
}

bool lx_openai_stream_ended(const void *state)
{
    const struct openai_stream *st = state;
    return st->done;
}

void lx_openai_stream_close(void *state)
{
    struct openai_stream *st = state;
    lx_sse_decoder_free(&st->sse);
    free(st);
}

void lx_openai_error_response(const struct lx_provider_conf *p, int status, const char *body, size_t len,
                                  struct lx_error *err)
{
    (void)p;
    lx_error_from_upstream(err, status, body, len);
}

int lx_openai_models_request(const struct lx_provider_conf *p, struct lx_http_request *out)
{
    out->method = "GET";
    out->url = lx_sprintf("%s/models", p->base_url);
    lx_http_request_add_header(out, "Accept: application/json");
    lx_openai_add_headers(p, out);
    return LX_OK;
}

int lx_openai_models_response(const struct lx_provider_conf *p, const char *body, size_t len, json_t *ids)
{
    (void)p;
    return lx_collect_ids(body, len, "data", "id", NULL, ids);
}

int lx_openai_embeddings_request(const struct lx_provider_conf *p, const struct lx_chat *req,
                                 struct lx_http_request *out, struct lx_error *err)
{
    (void)err;
    json_t *body = json_copy(req->body);
    json_object_set_new(body, "model", json_string(req->model));
    lx_http_request_post_json(out, lx_sprintf("%s/embeddings", p->base_url), body);
    lx_openai_add_headers(p, out);
    return LX_OK;
}

json_t *lx_openai_embeddings_response(const struct lx_provider_conf *p, const struct lx_chat *req, const char *body,
                                      size_t len, struct lx_error *err)
{
    json_t *root = json_loadb(body ? body : "", len, 0, NULL);
    if (!json_is_object(root) || !json_is_array(json_object_get(root, "data"))) {
        if (!lx_error_from_answer(err, root))
            not_protocol(p, err, "a body that is not an embeddings list");
        json_decref(root);
        return NULL;
    }
    if (!json_is_string(json_object_get(root, "object")))
        json_object_set_new(root, "object", json_string("list"));
    if (!json_is_string(json_object_get(root, "model")))
        json_object_set_new(root, "model", json_string(req->model));
    if (!json_is_object(json_object_get(root, "usage")))
        json_object_set_new(root, "usage", json_pack("{s:i,s:i}", "prompt_tokens", 0, "total_tokens", 0));
    return root;
}

const struct lx_provider_type lx_provider_openai = {
    .name = "openai",
    .caps = {.chat = true, .streaming = true, .tools = true, .vision = true, .embeddings = true, .json_mode = true,
             .documents = true}, /* OpenAI reads PDFs as file parts; the compatible servers below mostly do not */
    .config_keys = lx_openai_keys,
    .default_base_url = "https://api.openai.com/v1",
    .chat_request = lx_openai_chat_request,
    .chat_response = lx_openai_chat_response,
    .chat_response_bytes = lx_openai_chat_response_bytes,
    .stream_feed_bytes = lx_openai_stream_feed_bytes,
    .stream_open = lx_openai_stream_open,
    .stream_feed = lx_openai_stream_feed,
    .stream_finish = lx_openai_stream_finish,
    .stream_ended = lx_openai_stream_ended,
    .stream_close = lx_openai_stream_close,
    .error_response = lx_openai_error_response,
    .models_request = lx_openai_models_request,
    .models_response = lx_openai_models_response,
    .embeddings_request = lx_openai_embeddings_request,
    .embeddings_response = lx_openai_embeddings_response,
};
