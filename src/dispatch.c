/* Endpoint table. Paths are matched with or without the "/v1" prefix (some clients set a base URL
 * without it) and with one trailing slash tolerated. */
#include "dispatch.h"
#include "auth.h"
#include "chat.h"
#include "embeddings.h"
#include "fanout.h"
#include "common.h"
#include "http.h"
#include "metrics.h"
#include "models.h"
#include "req.h"

#include <stdio.h>
#include <string.h>

static void health_handle(struct lx_req *req)
{
    json_t *body = json_pack("{s:s}", "status", "ok");
    lx_req_respond_json(req, 200, body);
}

struct lx_route_entry {
    const char *path;   /* without the /v1 prefix */
    const char *method;
    bool v1;            /* lives under /v1 */
    bool admin;         /* open without a key; served only on admin_listen when that is set */
    const char *label;  /* the route's name in metrics */
    void (*handle)(struct lx_req *req);
};

static const struct lx_route_entry lx_routes[] = {
    {"/chat/completions", "POST", true, false, "/v1/chat/completions", lx_chat_handle},
    {"/models", "GET", true, false, "/v1/models", lx_models_handle},
    {"/embeddings", "POST", true, false, "/v1/embeddings", lx_embeddings_handle},
    {"/providers", "GET", true, false, "/v1/providers", lx_providers_handle},
    {"/fanout", "POST", true, false, "/v1/fanout", lx_fanout_handle},
    {"/batch", "POST", true, false, "/v1/batch", lx_batch_handle},
    {"/healthz", "GET", false, true, "/healthz", health_handle},
    {"/metrics", "GET", false, true, "/metrics", lx_metrics_handle},
};

static bool path_is(const char *path, size_t len, const struct lx_route_entry *r)
{
    size_t plen = strlen(r->path);
    if (r->v1 && len >= 3 + plen && memcmp(path, "/v1", 3) == 0 && memcmp(path + 3, r->path, plen) == 0 &&
        len == 3 + plen)
        return true;
    return len == plen && memcmp(path, r->path, plen) == 0;
}

/* Access control comes before everything but the admin routes, so an unknown path without a key is a
 * 401, not a 404 that tells a stranger what exists. */
void lx_dispatch(struct lx_req *req)
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
        if (!path_is(path, len, r) || (lx_http_has_admin() && r->admin != req->on_admin))
            continue;
        match = r;
        if (strcmp(method, r->method) == 0)
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
        lx_error_set(&e, 404, "invalid_request_error", NULL, "unknown_url", "Unknown request URL: %s %s.",
                     req->method, req->path);
    }
    lx_req_respond_error(req, &e);
    lx_error_clear(&e);
}
