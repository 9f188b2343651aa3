/* Endpoint table. Paths are matched with or without the "/v1" prefix (some clients set a base URL
 * without it) and with one trailing slash tolerated. A path that another known API serves gets a 404
 * that says what llmux serves and which client setting reaches it. */
#include "routes.h"
#include "admin.h"
#include "batch.h"
#include "chat.h"
#include "embeddings.h"
#include "fanout.h"
#include "conversations.h"
#include "models.h"
#include "responses.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../server/auth.h"
#include "../server/conf.h"
#include "../server/req.h"

#include <stdio.h>
#include <string.h>

/* The chat completions endpoint speaks the OpenAI chat dialect (the Anthropic Messages dialect will be a
 * further line like this one; the Responses dialect has endpoints of its own: responses.c). */
static void openai_chat(struct lx_req *req)
{
    lx_chat_handle(req, &lx_dialect_openai_chat);
}

struct lx_route_entry {
    const char *path;   /* without the /v1 prefix */
    const char *method; /* "*": the handler answers every method (and 405s itself) */
    bool v1;            /* lives under /v1 */
    bool admin;         /* open without a key; served only on admin_listen when that is set */
    const char *label;  /* the route's name in metrics */
    void (*handle)(struct lx_req *req);
    bool prefix;        /* path is a prefix followed by a non-empty rest ("/models/{id}") */
};

static const struct lx_route_entry lx_routes[] = {
    {"/chat/completions", "POST", true, false, "/v1/chat/completions", openai_chat, false},
    {"/models", "GET", true, false, "/v1/models", lx_models_handle, false},
    {"/models/", "GET", true, false, "/v1/models/{id}", lx_model_handle, true},
    {"/embeddings", "POST", true, false, "/v1/embeddings", lx_embeddings_handle, false},
    {"/providers", "GET", true, false, "/v1/providers", lx_providers_handle, false},
    {"/fanout", "POST", true, false, "/v1/fanout", lx_fanout_handle, false},
    {"/batch", "POST", true, false, "/v1/batch", lx_batch_handle, false},
    {"/responses", "POST", true, false, "/v1/responses", lx_responses_create, false},
    {"/responses/", "*", true, false, "/v1/responses/{id}", lx_responses_resource, true},
    {"/conversations", "POST", true, false, "/v1/conversations", lx_conversations_create, false},
    {"/conversations/", "*", true, false, "/v1/conversations/{id}", lx_conversations_resource, true},
    {"/healthz", "GET", false, true, "/healthz", lx_admin_healthz, false},
    {"/metrics", "GET", false, true, "/metrics", lx_admin_metrics, false},
};

static bool matches(const char *path, size_t len, const struct lx_route_entry *r)
{
    size_t plen = strlen(r->path);
    if (r->prefix)
        return len > plen && memcmp(path, r->path, plen) == 0;
    return len == plen && memcmp(path, r->path, plen) == 0;
}

/* Does path[0..len) name route r: exactly, or as its prefix with something after it? */
static bool path_is(const char *path, size_t len, const struct lx_route_entry *r)
{
    if (r->v1 && len >= 3 && memcmp(path, "/v1", 3) == 0 && matches(path + 3, len - 3, r))
        return true;
    return matches(path, len, r);
}

#define LX_SERVED "llmux serves POST /v1/chat/completions, /v1/responses, /v1/conversations, /v1/embeddings, " \
                  "/v1/fanout and /v1/batch, the stored responses and conversations below /v1/responses/{id} " \
                  "and /v1/conversations/{id}, and GET /v1/models, /v1/models/{id} and /v1/providers."

/* Paths of APIs llmux does not speak (yet), with what to use instead. */
static const struct {
    const char *path; /* without /v1; matches itself and anything below it */
    const char *hint;
} lx_other_apis[] = {
    {"/messages", "llmux does not serve the Anthropic Messages API yet; it speaks OpenAI's Chat Completions "
                  "(POST /v1/chat/completions) and reaches Claude through a provider of type \"anthropic\" "
                  "(model \"PROVIDER/claude-...\"): use an OpenAI client with base URL http://HOST:PORT/v1."},
    {"/completions", "llmux does not serve the legacy Completions API; use Chat Completions "
                     "(POST /v1/chat/completions). LangChain: ChatOpenAI instead of OpenAI; Vercel AI SDK: "
                     "openai.chat(MODEL) instead of openai.completion(MODEL)."},
    {"/assistants", "llmux does not serve the OpenAI Assistants API; use Chat Completions (POST /v1/chat/completions)."},
    {"/threads", "llmux does not serve the OpenAI Assistants API; use Chat Completions (POST /v1/chat/completions)."},
    {"/batches", "llmux does not serve OpenAI's file-based Batch API; POST /v1/batch runs many chat requests "
                 "in one call (docs/concurrency.md)."},
};

static bool under(const char *path, size_t len, const char *prefix)
{
    if (len >= 3 && memcmp(path, "/v1", 3) == 0) {
        path += 3;
        len -= 3;
    }
    size_t plen = strlen(prefix);
    return len >= plen && memcmp(path, prefix, plen) == 0 && (len == plen || path[plen] == '/');
}

static void not_found(struct lx_req *req, size_t len, struct lx_error *e)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_other_apis); i++) {
        if (under(req->path, len, lx_other_apis[i].path)) {
            lx_error_set(e, 404, "invalid_request_error", NULL, "unknown_url", "Unknown request URL: %s %s. %s %s",
                         req->method, req->path, lx_other_apis[i].hint, LX_SERVED);
            return;
        }
    }
    lx_error_set(e, 404, "invalid_request_error", NULL, "unknown_url", "Unknown request URL: %s %s. %s",
                 req->method, req->path, LX_SERVED);
}

/* Access control comes before everything but the admin routes, so an unknown path without a key is a
 * 401, not a 404 that tells a stranger what exists. */
void lx_routes_dispatch(struct lx_req *req)
{
    const char *path = req->path;
    size_t len = strlen(path);
    if (len > 1 && path[len - 1] == '/')
        len--;
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    const struct lx_route_entry *match = NULL, *exact = NULL;
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_routes) && !exact; i++) {
        const struct lx_route_entry *r = &lx_routes[i];
        /* With admin_listen, each address serves only its own routes. */
        if (!path_is(path, len, r) || (req->cfg->server->admin_listen && r->admin != req->on_admin))
            continue;
        match = r;
        if (strcmp(method, r->method) == 0 || strcmp(r->method, "*") == 0)
            exact = r;
    }
    struct lx_error e = {0};
    if (match)
        req->route = match->label;
    if (!(match && match->admin) && !req->on_admin && lx_auth_admit(req, &e) != LX_OK) {
        lx_req_respond_error(req, &e);
        lx_error_clear(&e);
        return;
    }
    if (exact) {
        exact->handle(req);
        return;
    }
    if (match) {
        lx_req_add_header(req, "Allow", match->method);
        lx_error_set(&e, 405, "invalid_request_error", NULL, "method_not_allowed",
                     "Method %s is not allowed on %s; use %s.", req->method, req->path, match->method);
    } else {
        not_found(req, len, &e);
    }
    lx_req_respond_error(req, &e);
    lx_error_clear(&e);
}
