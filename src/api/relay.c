/* The relay: one exec, its answer written through the request's reply, and the shared steps. */
#include "relay.h"
#include "reply.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../engine/exec.h"
#include "../engine/router.h"
#include "../server/auth.h"
#include "../server/req.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct relay {
    struct lx_req_handler handler; /* what the request tells us */
    struct lx_req *req;            /* hold: released in relay_end */
    struct lx_exec *exec;          /* NULL once done or cancelled */
    struct lx_reply reply;
};

static void relay_end(struct relay *r)
{
    struct lx_req *req = r->req;
    lx_req_set_handler(req, NULL);
    lx_reply_clear(&r->reply);
    free(r);
    lx_req_release(req);
}

void lx_relay_commit(struct lx_req *req, const struct lx_reply *reply, const char *label, const char *dropped)
{
    lx_req_add_header(req, "X-Llmux-Model", label);
    lx_req_first_token(req, label);
    const struct lx_dialect *d = reply->dialect;
    char *named = dropped && d->dropped ? d->dropped(&reply->rq, dropped) : NULL;
    if (named || (dropped && !d->dropped))
        lx_req_add_header(req, "X-Llmux-Dropped-Params", named ? named : dropped);
    free(named);
}

static void exec_commit(void *owner, const char *label, const char *dropped)
{
    struct relay *r = owner;
    lx_relay_commit(r->req, &r->reply, label, dropped);
}

static void exec_chunk(void *owner, json_t *chunk)
{
    struct relay *r = owner;
    lx_reply_chunk(&r->reply, chunk);
}

static void exec_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct relay *r = owner;
    r->exec = NULL;
    if (err)
        lx_reply_error(&r->reply, err);
    else if (completion)
        lx_reply_completion(&r->reply, completion);
    else
        lx_reply_end(&r->reply);
    relay_end(r);
}

static bool exec_can_write(void *owner)
{
    struct relay *r = owner;
    return lx_req_can_write(r->req);
}

static void exec_chunk_bytes(void *owner, const struct lx_answer_bytes *chunk)
{
    struct relay *r = owner;
    lx_reply_chunk_bytes(&r->reply, chunk);
}

static void exec_done_bytes(void *owner, const struct lx_answer_bytes *completion)
{
    struct relay *r = owner;
    r->exec = NULL;
    lx_reply_completion_bytes(&r->reply, completion);
    relay_end(r);
}

static void exec_won(void *owner)
{
    struct relay *r = owner;
    lx_req_drop_body(r->req);
}

static const struct lx_exec_ops lx_relay_exec_ops = {
    .on_commit = exec_commit,
    .on_chunk = exec_chunk,
    .on_done = exec_done,
    .can_write = exec_can_write,
    .on_won = exec_won,
};

/* For a dialect that writes answers kept as bytes (the pass-through path). */
static const struct lx_exec_ops lx_relay_exec_bytes_ops = {
    .on_commit = exec_commit,
    .on_chunk = exec_chunk,
    .on_done = exec_done,
    .can_write = exec_can_write,
    .on_chunk_bytes = exec_chunk_bytes,
    .on_done_bytes = exec_done_bytes,
    .on_won = exec_won,
};

static void relay_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    (void)req;
    struct relay *r = LX_CONTAINER_OF(h, struct relay, handler);
    lx_exec_cancel(r->exec);
    r->exec = NULL;
    if (why)
        lx_reply_error(&r->reply, why);
    relay_end(r);
}

static void relay_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    struct relay *r = LX_CONTAINER_OF(h, struct relay, handler);
    lx_exec_resume(r->exec);
}

static const struct lx_req_handler lx_relay_handler = {
    .on_abort = relay_abort,
    .on_drain = relay_drain,
};

int lx_relay_deadline(struct lx_req *req, uint64_t *at, long *ms, struct lx_error *err)
{
    *at = 0;
    *ms = 0;
    const char *v = lx_req_header(req, "x-llmux-timeout-ms");
    if (!v)
        return LX_OK;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || end == v || *end || n < 1 || n > 86400000) {
        lx_error_bad_request(
            err, "x-llmux-timeout-ms", "invalid_header",
            "Invalid x-llmux-timeout-ms header: expected milliseconds, an integer from 1 to 86400000.");
        return LX_ERR;
    }
    /* The budget counts from the request's arrival, so time spent reading the body counts too. */
    *ms = n;
    *at = (uint64_t)req->t_start + (uint64_t)n;
    return LX_OK;
}

int lx_relay_route(struct lx_req *req, const char *model, struct lx_plan *plan, struct lx_error *err)
{
    if (!req->model)
        req->model = lx_strdup(model);
    if (lx_auth_model(req, model, err) != LX_OK || lx_route_plan(req->cfg->engine, model, plan, err) != LX_OK)
        return LX_ERR;
    return LX_OK;
}

void lx_relay_start(struct lx_req *req, const struct lx_dialect *d, struct lx_dialect_req *rq, struct lx_plan *plan,
                    struct lx_chat *chat)
{
    struct lx_error err = {0};
    uint64_t at;
    long ms;
    if (lx_relay_deadline(req, &at, &ms, &err) != LX_OK) {
        lx_plan_free(plan);
        json_decref(chat->body);
        chat->body = NULL;
        if (rq)
            lx_dialect_req_clear(rq);
        lx_reply_fail(req, d, &err);
        lx_error_clear(&err);
        return;
    }
    struct relay *r = lx_calloc(1, sizeof *r);
    r->req = lx_req_hold(req);
    lx_reply_init(&r->reply, req, d, rq);
    r->handler = lx_relay_handler;
    lx_req_set_handler(req, &r->handler);
    lx_req_announce(req);
    const struct lx_exec_ops *ops = lx_reply_takes_bytes(d) ? &lx_relay_exec_bytes_ops : &lx_relay_exec_ops;
    r->exec = lx_exec_start(plan, chat, at, ms, ops, r);
    lx_exec_set_tally(r->exec, &req->tally);
    json_decref(chat->body);
    chat->body = NULL;
}
