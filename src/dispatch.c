/* Endpoint table. Paths are matched with or without the "/v1" prefix (some clients set a base URL
 * without it) and with one trailing slash tolerated. */
#include "dispatch.h"
#include "chat.h"
#include "embeddings.h"
#include "fanout.h"
#include "common.h"
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
    void (*handle)(struct lx_req *req);
};

static const struct lx_route_entry lx_routes[] = {
    {"/chat/completions", "POST", true, lx_chat_handle},
    {"/models", "GET", true, lx_models_handle},
    {"/embeddings", "POST", true, lx_embeddings_handle},
    {"/providers", "GET", true, lx_providers_handle},
    {"/fanout", "POST", true, lx_fanout_handle},
    {"/batch", "POST", true, lx_batch_handle},
    {"/healthz", "GET", false, health_handle},
};

static bool path_is(const char *path, size_t len, const struct lx_route_entry *r)
{
    size_t plen = strlen(r->path);
    if (r->v1 && len >= 3 + plen && memcmp(path, "/v1", 3) == 0 && memcmp(path + 3, r->path, plen) == 0 &&
        len == 3 + plen)
        return true;
    return len == plen && memcmp(path, r->path, plen) == 0;
}

void lx_dispatch(struct lx_req *req)
{
    const char *path = req->path;
    size_t len = strlen(path);
    if (len > 1 && path[len - 1] == '/')
        len--;
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    const struct lx_route_entry *match = NULL;
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_routes); i++) {
        if (!path_is(path, len, &lx_routes[i]))
            continue;
        match = &lx_routes[i];
        if (strcmp(method, lx_routes[i].method) == 0) {
            lx_routes[i].handle(req);
            return;
        }
    }
    struct lx_error e = {0};
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
