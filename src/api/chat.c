/* The chat endpoint: whatever the dialect, a body that becomes one pivot chat request, routed under the
 * client's key and relayed; every failure is answered in the dialect's shape. */
#include "chat.h"
#include "relay.h"
#include "reply.h"
#include "tools.h"
#include "../core/common.h"
#include "../core/passthru.h"
#include "../core/pivot.h"
#include "../engine/router.h"
#include "../server/req.h"

void lx_chat_handle(struct lx_req *req, const struct lx_dialect *d)
{
    struct lx_error err = {0};
    struct lx_dialect_req rq = {0};
    struct lx_plan plan;
    /* A pivot body that passes the dialect's checks on its bytes needs no tree here: the pass-through
     * path sends those bytes, and a call to a provider that needs a tree builds one (call.c). */
    struct lx_chat_bytes bytes = {0};
    bool untreed = d->pivot_bytes && d->parse_bytes && d->parse_bytes(req->body.data, req->body.len, &rq, &bytes) == LX_OK;
    if (!untreed) {
        lx_dialect_req_clear(&rq);
        bytes = (struct lx_chat_bytes){0};
    }
    json_t *body = untreed ? NULL : d->parse(req->body.data, req->body.len, &rq, &err);
    if ((!untreed && !body) || lx_relay_route(req, rq.model, &plan, &err) != LX_OK) {
        lx_reply_fail(req, d, &err);
        lx_error_clear(&err);
        json_decref(body);
        lx_dialect_req_clear(&rq);
        return;
    }
    /* MCP tools (the request's or its alias's): the tool loop answers instead of one model call. */
    struct lx_toolset_spec spec;
    if (lx_tools_parse(req, rq.model, body, &spec, &err) != LX_OK) {
        lx_plan_free(&plan);
        lx_reply_fail(req, d, &err);
        lx_error_clear(&err);
        json_decref(body);
        lx_dialect_req_clear(&rq);
        return;
    }
    if (spec.n_servers) {
        lx_plan_free(&plan);
        if (!body)
            body = lx_passthru_tree(&bytes);
        lx_tools_start(req, d, &rq, body, &spec);
        return;
    }
    lx_toolset_spec_free(&spec);
    struct lx_chat chat = {
        .kind = LX_CALL_CHAT,
        .body = body,
        .stream = rq.stream,
        .include_usage = rq.include_usage,
        .req_id = req->id,
        .request_id = req->request_id,
        .origin = &req->origin,
    };
    /* The body may go upstream as the client sent it (the pass-through path), when it is a pivot body. */
    if (untreed)
        chat.bytes = bytes;
    else if (d->pivot_bytes && lx_passthru_request(req->body.data, req->body.len, &chat.bytes) != LX_OK)
        chat.bytes = (struct lx_chat_bytes){0};
    lx_relay_start(req, d, &rq, &plan, &chat);
}
