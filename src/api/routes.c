/* Endpoint table. Paths are matched with or without the "/v1" prefix (some clients set a base URL
 * without it) and with one trailing slash tolerated. A path that another known API serves gets a 404
 * that says what llmux serves and which client setting reaches it. */
#include "routes.h"
#include "admin.h"
#include "batch.h"
#include "chat.h"
#include "embeddings.h"
#include "events.h"
#include "fanout.h"
#include "conversations.h"
#include "messages.h"
#include "models.h"
#include "reply.h"
#include "responses.h"
#include "tools.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../server/auth.h"
#include "../server/conf.h"
#include "../server/req.h"

#include <stdio.h>
#include <string.h>

/* The chat completions endpoint speaks the OpenAI chat dialect (the Anthropic Messages API has its own
 * endpoint file, messages.c, for what it adds: target checks, the native relay, count_tokens; the
 * Responses API has its own, responses.c and conversations.c, for its stored state). */
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
    const struct lx_dialect *errors; /* the shape of the errors answered before the handler; NULL: OpenAI's */
};

static const struct lx_route_entry lx_routes[] = {
    {"/chat/completions", "POST", true, false, "/v1/chat/completions", openai_chat, false, NULL},
    {"/messages", "POST", true, false, "/v1/messages", lx_messages_handle, false, &lx_dialect_anthropic_messages},
    {"/messages/count_tokens", "POST", true, false, "/v1/messages/count_tokens", lx_messages_count_handle, false,
     &lx_dialect_anthropic_messages},
    {"/models", "GET", true, false, "/v1/models", lx_models_handle, false, NULL},
    {"/models/", "GET", true, false, "/v1/models/{id}", lx_model_handle, true, NULL},
    {"/embeddings", "POST", true, false, "/v1/embeddings", lx_embeddings_handle, false, NULL},
    {"/providers", "GET", true, false, "/v1/providers", lx_providers_handle, false, NULL},
    {"/fanout", "POST", true, false, "/v1/fanout", lx_fanout_handle, false, NULL},
    {"/batch", "POST", true, false, "/v1/batch", lx_batch_handle, false, NULL},
    {"/responses", "POST", true, false, "/v1/responses", lx_responses_create, false, NULL},
    {"/responses/", "*", true, false, "/v1/responses/{id}", lx_responses_resource, true, NULL},
    {"/conversations", "POST", true, false, "/v1/conversations", lx_conversations_create, false, NULL},
    {"/conversations/", "*", true, false, "/v1/conversations/{id}", lx_conversations_resource, true, NULL},
    {"/mcp/servers", "GET", true, false, "/v1/mcp/servers", lx_mcp_servers_handle, false, NULL},
    {"/mcp/tools", "GET", true, false, "/v1/mcp/tools", lx_mcp_tools_handle, false, NULL},
    {"/events", "GET", true, false, "/v1/events", lx_events_handle, false, NULL},
    {"/healthz", "GET", false, true, "/healthz", lx_admin_healthz, false, NULL},
    {"/metrics", "GET", false, true, "/metrics", lx_admin_metrics, false, NULL},
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

#define LX_SERVED "llmux serves POST /v1/chat/completions, /v1/messages, /v1/messages/count_tokens, /v1/responses, " \
                  "/v1/conversations, /v1/embeddings, /v1/fanout and /v1/batch, the stored responses and " \
                  "conversations below /v1/responses/{id} and /v1/conversations/{id}, and GET /v1/models, " \
                  "/v1/models/{id}, /v1/providers, /v1/mcp/servers, /v1/mcp/tools and /v1/events."

/* Paths of APIs llmux does not speak (yet), with what to use instead. */
static const struct {
    const char *path; /* without /v1; matches itself and anything below it */
    const char *hint;
} lx_other_apis[] = {

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

/* The hot endpoints, which the connection front answers itself (server/front.h); the rest go through
 * MHD. Only a hint of which transport carries the request: lx_routes_dispatch still decides everything. */
bool lx_routes_direct(const char *method, size_t method_len, const char *path, size_t path_len)
{
    if (method_len != 4 || memcmp(method, "POST", 4) != 0)
        return false;
    if (path_len > 1 && path[path_len - 1] == '/')
        path_len--;
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_routes); i++) {
        const struct lx_route_entry *r = &lx_routes[i];
        if (r->handle == openai_chat || r->handle == lx_embeddings_handle) {
            if (path_is(path, path_len, r))
                return true;
        }
    }
    return false;
}

/* The route req names: *match for the path (any method), and the entry for its method, or NULL. */
static const struct lx_route_entry *find_route(struct lx_req *req, size_t len, const struct lx_route_entry **match)
{
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    const struct lx_route_entry *exact = NULL;
    *match = NULL;
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_routes) && !exact; i++) {
        const struct lx_route_entry *r = &lx_routes[i];
        /* With admin_listen, each address serves only its own routes; /v1/events is served on both (its
         * handler lets in the admin address, or an admin key on the main one). */
        bool both = r->handle == lx_events_handle;
        if (!path_is(req->path, len, r) || (req->cfg->server->admin_listen && !both && r->admin != req->on_admin))
            continue;
        *match = r;
        if (strcmp(method, r->method) == 0 || strcmp(r->method, "*") == 0)
            exact = r;
    }
    return exact;
}

static size_t path_len(const struct lx_req *req)
{
    size_t len = strlen(req->path);
    return len > 1 && req->path[len - 1] == '/' ? len - 1 : len;
}

/* Errors in the shape of the API the client speaks: the route's, or Anthropic's for any request that
 * names an anthropic-version (the Anthropic SDKs and Claude Code always do). */
static const struct lx_dialect *error_shape(struct lx_req *req, const struct lx_route_entry *match)
{
    return match && match->errors ? match->errors
           : lx_req_header(req, "anthropic-version") ? &lx_dialect_anthropic_messages
                                                     : &lx_dialect_openai_chat;
}

/* Admitted (or needing no admission): the endpoint, a 405 or a 404. */
static void serve(struct lx_req *req)
{
    size_t len = path_len(req);
    const struct lx_route_entry *match;
    const struct lx_route_entry *exact = find_route(req, len, &match);
    if (exact) {
        exact->handle(req);
        return;
    }
    struct lx_error e = {0};
    if (match) {
        lx_req_add_header(req, "Allow", match->method);
        lx_error_set(&e, 405, "invalid_request_error", NULL, "method_not_allowed",
                     "Method %s is not allowed on %s; use %s.", req->method, req->path, match->method);
    } else {
        not_found(req, len, &e);
    }
    lx_reply_fail(req, error_shape(req, match), &e);
    lx_error_clear(&e);
}

/* Redis decided the admission: serve, or answer its refusal. */
static void admitted(struct lx_req *req, const struct lx_error *refusal)
{
    if (!refusal) {
        serve(req);
        return;
    }
    const struct lx_route_entry *match;
    find_route(req, path_len(req), &match);
    lx_reply_fail(req, error_shape(req, match), refusal);
}

/* Access control comes before everything but the admin routes, so an unknown path without a key is a
 * 401, not a 404 that tells a stranger what exists. With Redis the admission may answer later: serve
 * runs then. */
void lx_routes_dispatch(struct lx_req *req)
{
    const struct lx_route_entry *match;
    find_route(req, path_len(req), &match);
    if (match)
        req->route = match->label;
    if (!(match && match->admin) && !req->on_admin) {
        struct lx_error e = {0};
        int rc = lx_auth_admit(req, &e, admitted);
        if (rc == LX_ERR)
            lx_reply_fail(req, error_shape(req, match), &e);
        lx_error_clear(&e);
        if (rc != LX_OK)
            return;
    }
    serve(req);
}
