/* POST /v1/batch: many chat requests in one, at most `concurrency` running at once, each a resilient
 * call (exec.c) with its own retries and fallbacks. Every item is answered: in input order as one JSON
 * document, or with "stream": true as one SSE event per item in completion order. A streaming batch
 * stops starting items while the client is not reading; a client that leaves cancels running items and
 * starts no more. */
#include "batch.h"
#include "conf.h"
#include "relay.h"
#include "reply.h"
#include "../../dialects/openai_chat.h"
#include "../../providers/provider.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/json.h"
#include "../engine/exec.h"
#include "../engine/router.h"
#include "../server/auth.h"
#include "../server/req.h"

#include <stdlib.h>
#include <string.h>

struct batch;

struct item {
    struct batch *b;      /* borrowed: the owner */
    size_t idx;
    json_t *body;         /* borrowed from b->requests; NULL once answered without running */
    struct lx_exec *exec; /* NULL unless running */
    double t0;
};

struct batch {
    struct lx_req_handler handler; /* what the request tells us */
    struct lx_req *req;   /* hold: released in batch_end */
    struct lx_reply reply; /* the stream, in the OpenAI chat dialect's framing */
    json_t *requests;     /* owned reference: the items' bodies */
    json_t *results;      /* owned: one slot per item (non-stream) */
    struct item *items;   /* owned */
    size_t n, next, running, finished, concurrency;
    uint64_t deadline_at;
    long deadline_ms;
    bool stream;
    bool expired;         /* the deadline passed (a timer said so; the clock may read a hair earlier) */
    bool pumping;         /* inside pump: completions only count, pump's loop starts the next items */
};

static void batch_end(struct batch *b)
{
    struct lx_req *req = b->req;
    lx_req_set_handler(req, NULL);
    free(b->items);
    lx_reply_clear(&b->reply);
    json_decref(b->requests);
    json_decref(b->results);
    free(b);
    lx_req_release(req);
}

static void pump(struct batch *b);

/* Record item i's answer; the last one ends the response. */
static void item_answer(struct batch *b, size_t i, json_t *completion, const struct lx_error *err)
{
    json_t *r = json_object();
    json_object_set_new(r, "index", json_integer((json_int_t)i));
    json_object_set_new(r, "status", json_integer(err ? err->status : 200));
    if (b->items[i].t0 > 0)
        json_object_set_new(r, "latency_ms", json_integer((json_int_t)(lx_now_ms_f() - b->items[i].t0)));
    if (err) {
        json_t *ej = lx_error_json(err);
        json_object_set(r, "error", json_object_get(ej, "error"));
        json_decref(ej);
        json_decref(completion);
    } else {
        json_object_set_new(r, "response", completion ? completion : json_null());
    }
    if (b->stream) {
        lx_reply_chunk(&b->reply, r);
        json_decref(r);
    } else {
        json_array_set_new(b->results, i, r);
    }
    b->finished++;
}

static void maybe_finish(struct batch *b)
{
    if (b->finished < b->n)
        return;
    struct lx_req *req = b->req;
    if (b->stream) {
        lx_reply_end(&b->reply);
    } else {
        lx_req_respond_json(req, 200, json_pack("{s:s,s:O}", "object", "batch", "results", b->results));
    }
    batch_end(b);
}

static void item_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct item *it = owner;
    struct batch *b = it->b;
    it->exec = NULL;
    b->running--;
    if (err && err->code && strcmp(err->code, "deadline_exceeded") == 0)
        b->expired = true;
    item_answer(b, it->idx, completion, err);
    if (b->finished == b->n) {
        maybe_finish(b);
        return;
    }
    pump(b);
}

static void item_chunk(void *owner, json_t *chunk)
{
    (void)owner;
    (void)chunk; /* items never stream */
}

static bool item_can_write(void *owner)
{
    (void)owner;
    return true;
}

static const struct lx_exec_ops lx_batch_item_ops = {
    .on_chunk = item_chunk,
    .on_done = item_done,
    .can_write = item_can_write,
};

/* Start items while there is room (and, streaming, while the client keeps up). Exec never calls back
 * before lx_exec_start returns, so starting many here is safe. */
static void pump(struct batch *b)
{
    if (b->pumping)
        return;
    b->pumping = true;
    while (b->next < b->n && b->running < b->concurrency && (!b->stream || lx_req_can_write(b->req))) {
        struct item *it = &b->items[b->next++];
        if (!it->body)
            continue; /* answered at validation */
        struct lx_error err = {0};
        struct lx_plan plan;
        it->t0 = lx_now_ms_f();
        if (b->expired || (b->deadline_at && lx_now_ms() >= b->deadline_at)) {
            lx_error_set(&err, 504, "timeout_error", NULL, "deadline_exceeded",
                         "The request's deadline of %ld ms (x-llmux-timeout-ms) passed before this item started.",
                         b->deadline_ms);
        } else if (lx_auth_model(b->req, json_string_value(json_object_get(it->body, "model")), &err) == LX_OK &&
                   lx_route_plan(b->req->cfg->engine, json_string_value(json_object_get(it->body, "model")), &plan, &err) ==
                       LX_OK) {
            struct lx_chat tmpl = {.kind = LX_CALL_CHAT, .body = it->body, .req_id = b->req->id,
                                   .request_id = b->req->request_id, .origin = &b->req->origin};
            it->exec = lx_exec_start(&plan, &tmpl, b->deadline_at, b->deadline_ms, &lx_batch_item_ops, it);
            lx_exec_set_tally(it->exec, &b->req->tally);
            b->running++;
            continue;
        }
        item_answer(b, it->idx, NULL, &err);
        lx_error_clear(&err);
    }
    b->pumping = false;
    maybe_finish(b);
}

static void batch_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    (void)req;
    struct batch *b = LX_CONTAINER_OF(h, struct batch, handler);
    for (size_t i = 0; i < b->n; i++) {
        lx_exec_cancel(b->items[i].exec);
        b->items[i].exec = NULL;
    }
    if (why)
        lx_reply_error(&b->reply, why);
    batch_end(b);
}

static void batch_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    pump(LX_CONTAINER_OF(h, struct batch, handler));
}

static const struct lx_req_handler lx_batch_handler = {
    .on_abort = batch_abort,
    .on_drain = batch_drain,
};

static json_t *batch_parse(struct lx_req *req, long *concurrency, bool *stream, struct lx_error *err)
{
    const struct lx_api_conf *c = req->cfg->api;
    json_t *root = lx_json_parse_object(req->body.data, req->body.len, err);
    if (!root)
        return NULL;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "requests") != 0 && strcmp(key, "concurrency") != 0 && strcmp(key, "stream") != 0) {
            lx_error_bad_request(
                err, key, "unknown_parameter",
                "Unrecognized request argument supplied: '%s' (a batch takes requests, concurrency, stream).", key);
            goto bad;
        }
    }
    json_t *rs = json_object_get(root, "requests");
    json_t *cc = json_object_get(root, "concurrency");
    json_t *st = json_object_get(root, "stream");
    if (!rs) {
        lx_error_bad_request(err, "requests", "missing_required_parameter", "Missing required parameter: 'requests'.");
    } else if (!json_is_array(rs) || json_array_size(rs) == 0 || (long)json_array_size(rs) > c->batch_max_requests) {
        lx_error_bad_request(err, "requests", "invalid_value",
                             "'requests' must be an array of 1 to %ld chat completion requests.",
                             c->batch_max_requests);
    } else if (cc && !json_is_null(cc) &&
               (!json_is_integer(cc) || json_integer_value(cc) < 1 || json_integer_value(cc) > c->batch_max_concurrency)) {
        lx_error_bad_request(err, "concurrency", "invalid_value", "'concurrency' must be an integer from 1 to %ld.",
                             c->batch_max_concurrency);
    } else if (st && !json_is_boolean(st) && !json_is_null(st)) {
        lx_error_bad_request(err, "stream", "invalid_type", "Invalid type for 'stream': expected a boolean.");
    }
    if (lx_error_isset(err))
        goto bad;
    *concurrency = json_is_integer(cc) ? (long)json_integer_value(cc) : c->batch_default_concurrency;
    *stream = json_is_true(st);
    return root;
bad:
    json_decref(root);
    return NULL;
}

/* An item's own problems answer that item only. */
static int item_validate(json_t *item, size_t i, struct lx_error *err)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "requests[%zu].", i);
    if (lx_openai_chat_validate(item, prefix, true, err) != LX_OK)
        return LX_ERR;
    if (json_is_true(json_object_get(item, "stream"))) {
        snprintf(prefix, sizeof prefix, "requests[%zu].stream", i);
        lx_error_bad_request(
            err, prefix, "invalid_value",
            "Batch items cannot stream; set \"stream\": true on the batch to get each answer as it finishes.");
        return LX_ERR;
    }
    return LX_OK;
}

void lx_batch_handle(struct lx_req *req)
{
    struct lx_error err = {0};
    long concurrency = 0;
    bool stream = false;
    uint64_t at = 0;
    long ms = 0;
    json_t *root = batch_parse(req, &concurrency, &stream, &err);
    if (!root || lx_relay_deadline(req, &at, &ms, &err) != LX_OK) {
        json_decref(root);
        lx_reply_fail(req, &lx_dialect_openai_chat, &err);
        lx_error_clear(&err);
        return;
    }
    struct batch *b = lx_calloc(1, sizeof *b);
    b->req = lx_req_hold(req);
    b->requests = json_incref(json_object_get(root, "requests"));
    json_decref(root);
    b->n = json_array_size(b->requests);
    b->concurrency = (size_t)concurrency;
    b->stream = stream;
    b->deadline_at = at;
    b->deadline_ms = ms;
    b->results = json_array();
    b->items = lx_calloc(b->n, sizeof *b->items);
    req->model = lx_sprintf("batch:%zu", b->n);
    lx_req_announce(req);
    lx_reply_init(&b->reply, req, &lx_dialect_openai_chat, NULL);
    b->handler = lx_batch_handler;
    lx_req_set_handler(req, &b->handler);
    if (stream)
        lx_reply_begin(&b->reply); /* the batch is valid: progress events follow */
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = &b->items[i];
        it->b = b;
        it->idx = i;
        json_array_append_new(b->results, json_null());
    }
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = &b->items[i];
        json_t *body = json_array_get(b->requests, i);
        if (item_validate(body, i, &err) != LX_OK) {
            item_answer(b, i, NULL, &err);
            lx_error_clear(&err);
            continue;
        }
        it->body = body;
    }
    pump(b);
}
