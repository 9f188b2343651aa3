/* POST /v1/messages and POST /v1/messages/count_tokens: the Anthropic Messages API (Claude Code, the
 * Anthropic SDKs) in front of any target. The dialect (dialects/anthropic_messages.c) translates; this
 * file routes, checks that every target of the route can take what the request holds, carries the
 * client's own request and its anthropic-version / anthropic-beta to targets that speak Anthropic (they
 * get it as it came, and their answer is relayed as it came), and counts tokens: the target's own count
 * when every target of the route is Anthropic-type, else the dialect's estimate. */
#include "messages.h"
#include "relay.h"
#include "reply.h"
#include "../../dialects/anthropic_messages.h"
#include "../../providers/provider.h"
#include "../core/common.h"
#include "../core/pivot.h"
#include "../engine/router.h"
#include "../server/req.h"

#include <string.h>

static bool speaks_anthropic(const struct lx_provider_conf *p)
{
    return p->type->native_api && strcmp(p->type->native_api, lx_dialect_anthropic_messages.name) == 0;
}

/* Every target of the plan must be able to answer (PDFs, blocks only Anthropic reads): else a 400 that
 * names the part of the request and the target. */
static int check_targets(const struct lx_dialect_req *rq, const struct lx_plan *plan, bool *all_anthropic,
                         struct lx_error *err)
{
    *all_anthropic = true;
    for (size_t i = 0; i < lx_plan_count(plan); i++) {
        const struct lx_target *t = lx_plan_target(plan, i);
        struct lx_anthropic_target at = {
            .label = t->label,
            .type = t->provider->type->name,
            .anthropic = speaks_anthropic(t->provider),
            .reads_pdf = t->provider->type->caps.documents,
        };
        *all_anthropic &= at.anthropic;
        if (lx_anthropic_messages_check_target(rq, &at, err) != LX_OK)
            return LX_ERR;
    }
    return LX_OK;
}

/* Parse with parse_fn, route and check; on failure the client is answered and LX_ERR returned. */
static int prepare(struct lx_req *req, json_t *(*parse_fn)(const char *, size_t, struct lx_dialect_req *, struct lx_error *),
                   struct lx_dialect_req *rq, json_t **pivot, struct lx_plan *plan, bool *all_anthropic)
{
    struct lx_error err = {0};
    *pivot = parse_fn(req->body.data, req->body.len, rq, &err);
    int rc = *pivot ? lx_relay_route(req, rq->model, plan, &err) : LX_ERR;
    if (rc == LX_OK && check_targets(rq, plan, all_anthropic, &err) != LX_OK) {
        lx_plan_free(plan);
        rc = LX_ERR;
    }
    if (rc != LX_OK) {
        lx_reply_fail(req, &lx_dialect_anthropic_messages, &err);
        lx_error_clear(&err);
        json_decref(*pivot);
        *pivot = NULL;
        lx_dialect_req_clear(rq);
    }
    return rc;
}

static json_t *native_of(struct lx_req *req, const struct lx_dialect_req *rq)
{
    return lx_anthropic_messages_native_request(rq, lx_req_header(req, "anthropic-version"),
                                                lx_req_header(req, "anthropic-beta"));
}

void lx_messages_handle(struct lx_req *req)
{
    struct lx_dialect_req rq = {0};
    struct lx_plan plan;
    json_t *pivot;
    bool all_anthropic;
    if (prepare(req, lx_dialect_anthropic_messages.parse, &rq, &pivot, &plan, &all_anthropic) != LX_OK)
        return;
    struct lx_chat chat = {
        .kind = LX_CALL_CHAT,
        .body = pivot,
        .stream = rq.stream,
        .include_usage = rq.include_usage,
        .req_id = req->id,
        .request_id = req->request_id,
        .origin = &req->origin,
        .native = native_of(req, &rq),
    };
    lx_relay_start(req, &lx_dialect_anthropic_messages, &rq, &plan, &chat);
    json_decref(chat.native); /* the exec keeps its own reference */
}

void lx_messages_count_handle(struct lx_req *req)
{
    struct lx_dialect_req rq = {0};
    struct lx_plan plan;
    json_t *pivot;
    bool all_anthropic;
    if (prepare(req, lx_anthropic_messages_parse_count, &rq, &pivot, &plan, &all_anthropic) != LX_OK)
        return;
    if (!all_anthropic) {
        /* No target of this route counts tokens itself: the dialect's estimate (docs/anthropic.md). */
        lx_req_respond_json(req, 200, json_pack("{s:I}", "input_tokens", (json_int_t)rq.prompt_tokens_estimate));
        lx_plan_free(&plan);
        json_decref(pivot);
        lx_dialect_req_clear(&rq);
        return;
    }
    struct lx_chat chat = {
        .kind = LX_CALL_COUNT_TOKENS,
        .body = pivot,
        .req_id = req->id,
        .request_id = req->request_id,
        .origin = &req->origin,
        .native = native_of(req, &rq),
    };
    lx_relay_start(req, &lx_dialect_anthropic_messages, &rq, &plan, &chat);
    json_decref(chat.native);
}
