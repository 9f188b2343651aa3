/* The Redis store backend (issue 19): every verb is one FCALL of the llmux_store_v1 library
 * (store_redis.lua), atomic in Redis, on a connection of its own, so that every replica sharing the
 * Redis continues every conversation. This file turns a request into the function's arguments (items
 * and responses serialised here, as the SQLite backend does), its answer into the verb's JSON, and keeps
 * the turns this replica runs alive in Redis: their conversation locks and in-progress responses have a
 * short TTL (RS_LOCK_MS) renewed every third of it, so a replica that dies lets go by itself.
 *
 * Why its own connection rather than the fleet's: histories are large and limits' admissions are small
 * and latency-bound; on one pipelined connection every admission would wait behind a history read.
 *
 * No history cache: another replica may change any conversation at any time, so every read goes to
 * Redis (one round trip per turn). */
#include "store.h"
#include "store_json.h"
#include "../core/common.h"
#include "../core/ids.h"
#include "../core/log.h"
#include "../io/loop.h"
#include "../io/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char lx_store_lua[] =
#include "store_redis.lua.h"
    ;

/* A turn's conversation lock and in-progress response live this long without renewal. */
#define RS_LOCK_MS 30000L

struct rs_store {
    struct lx_store base;
    struct lx_redis *r;       /* owned */
    char *prefix;             /* owned */
    long timeout_ms;          /* one operation's budget */
    long long retention_ms;   /* 0: no TTL */
    long max_items;
    json_t *held;             /* owned: conversation id → the response id whose turn this replica runs */
    json_t *reserved;         /* owned: response id → true, reserved in progress by this replica */
    struct lx_timer *renew;   /* owned */
    struct lx_store_op *ops;  /* operations awaiting Redis (a list, for close) */
    size_t in_flight;
    uint64_t operations;
    bool was_ready;           /* the connection's last state, for the log */
    uint64_t warned_ms;       /* the last UNAVAILABLE warning (lx_now_ms), and the answers not logged since */
    unsigned long long unwarned;
    uint64_t unavailable;     /* operations answered UNAVAILABLE, for /metrics */
    /* Turn aborts Redis did not take (it was away): response id → {owner, conversation}, sent again on
     * the next connect so that a conversation is free as soon as Redis is back, not a lock TTL later. */
    json_t *unreleased;       /* owned */
};

/* Function arguments: owned strings. */
struct rs_args {
    size_t n, cap;
    char **v;
};

struct lx_store_op {
    struct rs_store *st;
    enum lx_store_verb verb;
    lx_store_cb cb;
    void *arg;
    bool cancelled;
    struct lx_store_op *prev, *next; /* in st->ops while a command is in flight or waiting to be sent */
    const char *fn;            /* static: the function to call */
    struct lx_timer *wait;     /* owned: while waiting for a connection being made (see send_op) */
    uint64_t since_ms;         /* when it was submitted: its timeout_ms counts from here */
    struct rs_args args;
    char *owner, *response_id, *conversation_id, *item_id; /* owned copies */
    bool reserve;
    struct lx_store_page page; /* its after is owned */
    json_t *added;             /* ref held: ITEMS_ADD's items, for the answer's page */
    enum lx_store_status status;
    char message[256];
    json_t *value;             /* owned until handed to the callback */
};

static void arg_add(struct rs_args *a, char *owned)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = lx_realloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = owned;
}

static void arg_str(struct rs_args *a, const char *s)
{
    arg_add(a, lx_strdup(s ? s : ""));
}

static void arg_long(struct rs_args *a, long long v)
{
    arg_add(a, lx_sprintf("%lld", v));
}

static void op_free(struct lx_store_op *op)
{
    for (size_t i = 0; i < op->args.n; i++)
        free(op->args.v[i]);
    free(op->args.v);
    free(op->owner);
    free(op->response_id);
    free(op->conversation_id);
    free(op->item_id);
    free((char *)op->page.after);
    json_decref(op->added);
    json_decref(op->value);
    free(op);
}

static void set_status(struct lx_store_op *op, enum lx_store_status s, const char *fmt, const char *what)
{
    if (op->status != LX_STORE_OK)
        return;
    op->status = s;
    snprintf(op->message, sizeof op->message, fmt, what ? what : "");
}

static void bad(struct lx_store_op *op, const char *msg)
{
    char m[200];
    snprintf(m, sizeof m, "store: %s: %s", lx_store_verb_name(op->verb), msg);
    set_status(op, LX_STORE_ERROR, "%s", m);
}

/* Items as id, JSON pairs; each must be an object with a string id. */
static void arg_items(struct lx_store_op *op, json_t *items)
{
    if (items && !json_is_array(items)) {
        bad(op, "items must be an array");
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach (items, i, item) {
        const char *id = json_string_value(json_object_get(item, "id"));
        if (!json_is_object(item) || !id) {
            bad(op, "an item without an id");
            return;
        }
        arg_str(&op->args, id);
        arg_add(&op->args, json_dumps(item, JSON_COMPACT));
    }
}

static char *dump_or(json_t *v, bool ok, const char *dflt)
{
    return ok ? json_dumps(v, JSON_COMPACT) : lx_strdup(dflt);
}

/* A response object as status, envelope (output and usage null), output, usage ('' = none). */
static void arg_response(struct lx_store_op *op, json_t *resp)
{
    const char *id = json_string_value(json_object_get(resp, "id"));
    if (!json_is_object(resp) || !id) {
        bad(op, "a response object with an id is required");
        return;
    }
    if (!op->response_id)
        op->response_id = lx_strdup(id);
    const char *status = json_string_value(json_object_get(resp, "status"));
    json_t *output = json_object_get(resp, "output"), *usage = json_object_get(resp, "usage");
    json_t *env = json_copy(resp); /* shallow: the caller's object is not touched */
    json_object_set_new(env, "output", json_null());
    json_object_set_new(env, "usage", json_null());
    arg_str(&op->args, status ? status : "completed");
    arg_add(&op->args, json_dumps(env, JSON_COMPACT));
    json_decref(env);
    arg_add(&op->args, dump_or(output, json_is_array(output), "[]"));
    arg_add(&op->args, dump_or(usage, json_is_object(usage), ""));
}

static const char *rs_status_str(json_t *resp)
{
    const char *s = json_string_value(json_object_get(resp, "status"));
    return s ? s : "completed";
}

/* The function's name and the arguments after the prefix, by verb. */
static const char *build(struct rs_store *st, struct lx_store_op *op, const struct lx_store_req *rq)
{
    struct rs_args *a = &op->args;
    const char *conv = op->conversation_id;
    switch (op->verb) {
    case LX_STORE_TURN_BEGIN:
        if (rq->previous_response_id && conv)
            bad(op, "previous_response_id and conversation_id are exclusive");
        if (rq->reserve && !op->response_id) {
            const char *id = json_string_value(json_object_get(rq->response, "id"));
            op->response_id = id ? lx_strdup(id) : NULL;
        }
        if (conv && !op->response_id)
            bad(op, "a turn on a conversation needs its response id");
        arg_str(a, rq->previous_response_id);
        arg_str(a, conv);
        arg_str(a, op->response_id);
        arg_long(a, RS_LOCK_MS);
        arg_str(a, rq->reserve ? "1" : "0");
        if (rq->reserve)
            arg_response(op, rq->response);
        return "llmux_store_v1_turn_begin";
    case LX_STORE_TURN_FINISH: {
        bool keep = conv && (strcmp(rs_status_str(rq->response), "completed") == 0 ||
                             strcmp(rs_status_str(rq->response), "incomplete") == 0);
        if (!op->response_id) {
            const char *id = json_string_value(json_object_get(rq->response, "id"));
            op->response_id = id ? lx_strdup(id) : NULL;
        }
        arg_str(a, op->response_id);
        arg_str(a, rq->previous_response_id);
        arg_str(a, conv);
        arg_str(a, rq->store ? "1" : "0");
        arg_str(a, keep ? "1" : "0");
        arg_long(a, st->max_items);
        arg_long(a, st->retention_ms);
        /* status, envelope, then input between envelope and output: the function's order */
        arg_response(op, rq->response);
        if (op->status != LX_STORE_OK)
            return NULL;
        char *output = a->v[a->n - 2], *usage = a->v[a->n - 1];
        a->n -= 2;
        arg_add(a, dump_or(rq->input, json_is_array(rq->input), "[]"));
        arg_add(a, output);
        arg_add(a, usage);
        if (keep) {
            arg_items(op, rq->input);
            arg_items(op, json_object_get(rq->response, "output"));
        }
        return "llmux_store_v1_turn_finish";
    }
    case LX_STORE_TURN_ABORT:
        arg_str(a, op->response_id);
        arg_str(a, conv);
        return "llmux_store_v1_turn_abort";
    case LX_STORE_RESPONSE_GET:
    case LX_STORE_RESPONSE_DELETE:
    case LX_STORE_RESPONSE_INPUT_ITEMS:
        if (!op->response_id)
            bad(op, "a response id is required");
        arg_str(a, op->response_id);
        return op->verb == LX_STORE_RESPONSE_GET      ? "llmux_store_v1_response_get"
               : op->verb == LX_STORE_RESPONSE_DELETE ? "llmux_store_v1_response_delete"
                                                      : "llmux_store_v1_response_input";
    case LX_STORE_CONVERSATION_CREATE:
        op->conversation_id = lx_id_new("conv");
        arg_str(a, op->conversation_id);
        arg_add(a, dump_or(rq->metadata, json_is_object(rq->metadata), "{}"));
        arg_long(a, st->retention_ms);
        arg_long(a, st->max_items);
        arg_items(op, rq->items);
        return "llmux_store_v1_conversation_create";
    default:
        break;
    }
    /* The verbs of one conversation. */
    if (!conv) {
        bad(op, "a conversation id is required");
        return NULL;
    }
    arg_str(a, conv);
    switch (op->verb) {
    case LX_STORE_CONVERSATION_GET:
        return "llmux_store_v1_conversation_get";
    case LX_STORE_CONVERSATION_UPDATE:
        arg_add(a, dump_or(rq->metadata, json_is_object(rq->metadata), "{}"));
        arg_long(a, st->retention_ms);
        return "llmux_store_v1_conversation_update";
    case LX_STORE_CONVERSATION_DELETE:
        return "llmux_store_v1_conversation_delete";
    case LX_STORE_ITEMS_ADD:
        arg_long(a, st->retention_ms);
        arg_long(a, st->max_items);
        arg_items(op, rq->items);
        op->added = json_is_array(rq->items) ? json_incref(rq->items) : json_array();
        return "llmux_store_v1_items_add";
    case LX_STORE_ITEMS_LIST:
        arg_str(a, op->page.after);
        arg_long(a, op->page.limit);
        arg_str(a, op->page.desc ? "1" : "0");
        return "llmux_store_v1_items_list";
    case LX_STORE_ITEM_GET:
    case LX_STORE_ITEM_DELETE:
        if (!op->item_id)
            bad(op, "an item id is required");
        arg_str(a, op->item_id);
        if (op->verb == LX_STORE_ITEM_GET)
            return "llmux_store_v1_item_get";
        arg_long(a, st->retention_ms);
        return "llmux_store_v1_item_delete";
    default:
        bad(op, "unknown operation");
        return NULL;
    }
}

/* ---- answers ---- */

static const char *elem_str(const struct lx_redis_reply *reply, size_t i, size_t *len)
{
    const struct lx_redis_reply *e = lx_redis_reply_at(reply, i);
    const char *s = e ? lx_redis_reply_str(e, len) : NULL;
    if (!s && len)
        *len = 0;
    return s;
}

/* Element i as JSON (NULL when absent or not JSON). */
static json_t *elem_json(const struct lx_redis_reply *reply, size_t i)
{
    size_t len;
    const char *s = elem_str(reply, i, &len);
    return s && len ? json_loadb(s, len, 0, NULL) : NULL;
}

/* Elements from..end, each an item or an array of items, as one array. */
static json_t *items_from(const struct lx_redis_reply *reply, size_t from)
{
    json_t *out = json_array();
    for (size_t i = from; i < lx_redis_reply_count(reply); i++) {
        json_t *v = elem_json(reply, i);
        if (json_is_array(v))
            json_array_extend(out, v);
        else if (json_is_object(v))
            json_array_append(out, v);
        json_decref(v);
    }
    return out;
}

static json_t *conversation_answer(struct lx_store_op *op, const struct lx_redis_reply *reply)
{
    json_t *meta = elem_json(reply, 1);
    long long created = 0;
    lx_redis_reply_long(lx_redis_reply_at(reply, 2), &created);
    json_t *v = lx_store_conversation_json(op->conversation_id, created, json_is_object(meta) ? meta : NULL);
    json_decref(meta);
    return v;
}

static void not_found(struct lx_store_op *op, const struct lx_redis_reply *reply)
{
    const char *what = elem_str(reply, 1, NULL), *id = op->conversation_id;
    switch (op->verb) {
    case LX_STORE_TURN_BEGIN:
        if (!op->conversation_id) {
            what = "Previous response";
            id = json_string_value(json_object_get(op->value, "prev"));
        }
        break;
    case LX_STORE_RESPONSE_GET:
    case LX_STORE_RESPONSE_DELETE:
    case LX_STORE_RESPONSE_INPUT_ITEMS:
        what = "Response";
        id = op->response_id;
        break;
    case LX_STORE_ITEM_GET:
    case LX_STORE_ITEM_DELETE:
        if (what && strcmp(what, "Item") == 0)
            id = op->item_id;
        break;
    default:
        break;
    }
    char m[256];
    snprintf(m, sizeof m, "%s '%s' not found", what ? what : "Conversation", id ? id : "");
    set_status(op, LX_STORE_NOT_FOUND, "%s", m);
}

/* The verb's value from an 'ok' answer. */
static json_t *value_of(struct lx_store_op *op, const struct lx_redis_reply *reply)
{
    switch (op->verb) {
    case LX_STORE_TURN_BEGIN:
        return items_from(reply, 1);
    case LX_STORE_RESPONSE_GET: {
        json_t *obj = elem_json(reply, 1);
        if (!json_is_object(obj)) {
            json_decref(obj);
            return NULL;
        }
        json_t *out = elem_json(reply, 2), *usage = elem_json(reply, 3);
        json_object_set_new(obj, "output", json_is_array(out) ? out : json_array());
        json_object_set_new(obj, "usage", json_is_object(usage) ? usage : json_null());
        if (!json_is_array(out))
            json_decref(out);
        if (!json_is_object(usage))
            json_decref(usage);
        return obj;
    }
    case LX_STORE_RESPONSE_INPUT_ITEMS: {
        json_t *all = elem_json(reply, 1);
        json_t *page = lx_store_page_of(json_is_array(all) ? all : NULL, &op->page);
        json_decref(all);
        return page;
    }
    case LX_STORE_CONVERSATION_CREATE:
    case LX_STORE_CONVERSATION_GET:
    case LX_STORE_CONVERSATION_UPDATE:
    case LX_STORE_ITEM_DELETE:
        return conversation_answer(op, reply);
    case LX_STORE_ITEMS_ADD:
        return lx_store_list_page(json_copy(op->added), false);
    case LX_STORE_ITEMS_LIST: {
        long long more = 0;
        lx_redis_reply_long(lx_redis_reply_at(reply, 1), &more);
        return lx_store_list_page(items_from(reply, 2), more != 0);
    }
    case LX_STORE_ITEM_GET:
        return elem_json(reply, 1);
    default:
        return NULL;
    }
}

static void submit_abort(struct rs_store *st, const char *owner, const char *resp, const char *conv);

/* Loop: the operation's end. */
static void post(struct lx_store_op *op)
{
    struct rs_store *st = op->st;
    if (op->verb == LX_STORE_TURN_BEGIN && op->response_id) {
        if (op->status == LX_STORE_OK && !op->cancelled) {
            /* This replica runs the turn now: keep its lock and reservation alive. */
            if (op->conversation_id)
                json_object_set_new(st->held, op->conversation_id, json_string(op->response_id));
            if (op->reserve)
                json_object_set_new(st->reserved, op->response_id, json_true());
        } else if (op->status == LX_STORE_UNAVAILABLE || (op->status == LX_STORE_OK && op->cancelled)) {
            /* Redis may hold the lock or the reservation (a late answer, or nobody wants it): undo. */
            submit_abort(st, op->owner, op->response_id, op->conversation_id);
        }
    }
    if (op->verb == LX_STORE_TURN_ABORT && op->status == LX_STORE_UNAVAILABLE && op->response_id && st->unreleased)
        json_object_set_new(st->unreleased, op->response_id,
                            json_pack("{s:s,s:s?}", "owner", op->owner, "conversation", op->conversation_id));
    if (op->status == LX_STORE_ERROR)
        lx_warn("%s", op->message);
    else if (op->status == LX_STORE_UNAVAILABLE) {
        st->unavailable++;
        /* An outage fails every request: one line per 30 s, not one per request. */
        uint64_t now = lx_now_ms();
        if (!st->warned_ms || now - st->warned_ms >= 30000) {
            lx_warn("%s (%llu more such answers since the last warning)", op->message, st->unwarned);
            st->warned_ms = now;
            st->unwarned = 0;
        } else {
            st->unwarned++;
        }
    }
    st->operations++;
    if (!op->cancelled && op->cb)
        lx_store_answer(op->cb, op->arg, op->status, op->message, op->value);
    op_free(op);
}

static void post_deferred(void *arg)
{
    post(arg);
}

static void unlink_op(struct lx_store_op *op)
{
    struct rs_store *st = op->st;
    if (op->prev)
        op->prev->next = op->next;
    else
        st->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    st->in_flight--;
}

static void reply_cb(void *arg, enum lx_redis_status rs, const struct lx_redis_reply *reply)
{
    struct lx_store_op *op = arg;
    unlink_op(op);
    const char *code = rs == LX_REDIS_OK ? elem_str(reply, 0, NULL) : NULL;
    if (rs == LX_REDIS_EREPLY) {
        /* "Function not found" (someone flushed them): io/redis.c loads them again for what follows. */
        const char *msg = lx_redis_reply_str(reply, NULL);
        set_status(op, LX_STORE_ERROR, "store: Redis refused the operation: %s", msg);
    } else if (rs != LX_REDIS_OK) {
        /* Timed out, lost or never sent: what Redis did is unknown, so nothing is acknowledged. */
        set_status(op, LX_STORE_UNAVAILABLE, "store: Redis %s", rs == LX_REDIS_ETIMEOUT ? "did not answer in time"
                                                               : rs == LX_REDIS_ECONN  ? "connection was lost"
                                                                                       : "is unreachable");
    } else if (!code) {
        set_status(op, LX_STORE_ERROR, "store: %s", "an answer from Redis that llmux does not understand");
    } else if (strcmp(code, "not_found") == 0) {
        not_found(op, reply);
    } else if (strcmp(code, "busy") == 0) {
        char m[256];
        if (op->conversation_id)
            snprintf(m, sizeof m, "Conversation '%s' %s", op->conversation_id,
                     op->verb == LX_STORE_TURN_BEGIN ? "already has a turn in progress" : "has a turn in progress");
        else
            snprintf(m, sizeof m, "Previous response '%s' is still in progress",
                     json_string_value(json_object_get(op->value, "prev")));
        set_status(op, LX_STORE_BUSY, "%s", m);
    } else {
        json_t *v = value_of(op, reply);
        json_decref(op->value);
        op->value = v;
    }
    if (op->status != LX_STORE_OK) {
        json_decref(op->value);
        op->value = NULL;
    }
    post(op);
}

/* The FCALL itself, within what is left of the operation's timeout. */
static void issue(struct rs_store *st, struct lx_store_op *op)
{
    size_t argc = op->args.n + 3;
    const char **argv = lx_calloc(argc, sizeof *argv);
    argv[0] = "FCALL";
    argv[1] = op->fn;
    argv[2] = "0";
    for (size_t i = 0; i < op->args.n; i++)
        argv[i + 3] = op->args.v[i];
    long left = st->timeout_ms - (long)(lx_now_ms() - op->since_ms);
    /* The op name is the function's, for the latency histogram (a fixed set of static strings). */
    lx_redis_command(st->r, op->fn + strlen("llmux_"), left > 0 ? left : 1, reply_cb, op, (int)argc, argv, NULL);
    free(argv);
}

static void wait_cb(void *arg)
{
    struct lx_store_op *op = arg;
    lx_timer_free(op->wait);
    op->wait = NULL;
    unlink_op(op);
    set_status(op, LX_STORE_UNAVAILABLE, "store: Redis %s", "is unreachable (connecting)");
    post(op);
}

/* A connection being made (at start, or reconnecting) is waited for within the operation's timeout, so
 * that the first requests after a start do not fail; a connection that is down answers at once. */
static void send_op(struct rs_store *st, struct lx_store_op *op, const char *fn)
{
    op->fn = fn;
    op->since_ms = lx_now_ms();
    op->next = st->ops;
    if (st->ops)
        st->ops->prev = op;
    st->ops = op;
    st->in_flight++;
    enum lx_redis_state s = lx_redis_state(st->r);
    if (s == LX_REDIS_RESOLVING || s == LX_REDIS_CONNECTING || s == LX_REDIS_HANDSHAKE) {
        op->wait = lx_timer_new(wait_cb, op);
        lx_timer_start(op->wait, st->timeout_ms);
        return;
    }
    issue(st, op);
}

static struct lx_store_op *op_new(struct rs_store *st, const struct lx_store_req *rq, lx_store_cb cb, void *arg)
{
    struct lx_store_op *op = lx_calloc(1, sizeof *op);
    op->st = st;
    op->verb = rq->verb;
    op->cb = cb;
    op->arg = arg;
    op->owner = lx_strdup(rq->owner ? rq->owner : "");
    op->response_id = rq->response_id ? lx_strdup(rq->response_id) : NULL;
    op->conversation_id = rq->conversation_id ? lx_strdup(rq->conversation_id) : NULL;
    op->item_id = rq->item_id ? lx_strdup(rq->item_id) : NULL;
    op->reserve = rq->reserve;
    op->page = (struct lx_store_page){
        .after = rq->page.after ? lx_strdup(rq->page.after) : NULL,
        .limit = rq->page.limit > 0 ? rq->page.limit : 20,
        .desc = rq->page.desc,
    };
    if (rq->metadata && !json_is_null(rq->metadata) && !json_is_object(rq->metadata))
        bad(op, "metadata must be an object");
    /* For the messages of BUSY and NOT_FOUND on a chain. */
    if (rq->verb == LX_STORE_TURN_BEGIN && rq->previous_response_id)
        op->value = json_pack("{s:s}", "prev", rq->previous_response_id);
    return op;
}

static struct lx_store_op *rs_submit(struct lx_store *base, const struct lx_store_req *rq, lx_store_cb cb, void *arg)
{
    struct rs_store *st = (struct rs_store *)base;
    struct lx_store_op *op = op_new(st, rq, cb, arg);
    struct lx_store_op *handle = cb ? op : NULL; /* a fire-and-forget op frees itself: hand out no pointer */
    arg_str(&op->args, st->prefix);
    arg_str(&op->args, op->owner);
    const char *fn = build(st, op, rq);
    if (op->status != LX_STORE_OK || !fn) {
        lx_defer(post_deferred, op);
        return handle;
    }
    if (rq->verb == LX_STORE_TURN_FINISH || rq->verb == LX_STORE_TURN_ABORT) {
        /* The turn ends here: no more renewals (the function lets go of the lock in Redis). */
        const char *holder = op->conversation_id ? json_string_value(json_object_get(st->held, op->conversation_id))
                                                 : NULL;
        if (holder && op->response_id && strcmp(holder, op->response_id) == 0)
            json_object_del(st->held, op->conversation_id);
        if (op->response_id)
            json_object_del(st->reserved, op->response_id);
        if (rq->verb == LX_STORE_TURN_ABORT && !op->response_id) {
            lx_defer(post_deferred, op);
            return handle;
        }
    }
    send_op(st, op, fn);
    return handle;
}

static void submit_abort(struct rs_store *st, const char *owner, const char *resp, const char *conv)
{
    struct lx_store_req rq = {
        .verb = LX_STORE_TURN_ABORT, .owner = owner, .response_id = resp, .conversation_id = conv};
    rs_submit(&st->base, &rq, NULL, NULL);
}

static void rs_cancel(struct lx_store *base, struct lx_store_op *op)
{
    (void)base;
    /* The command still runs (a turn's lock may be taken): post() undoes what nobody wants any more. */
    op->cancelled = true;
}

static void rs_stats(struct lx_store *base, struct lx_store_stats *out)
{
    struct rs_store *st = (struct rs_store *)base;
    *out = (struct lx_store_stats){.in_flight = st->in_flight,
                                   .operations = st->operations,
                                   .up = lx_redis_ready(st->r) ? 1 : 0,
                                   .unavailable = st->unavailable};
}

static void renew_cb(void *arg)
{
    struct rs_store *st = arg;
    lx_timer_start(st->renew, RS_LOCK_MS / 3);
    if (!json_object_size(st->held) && !json_object_size(st->reserved))
        return;
    struct rs_args a = {0};
    arg_str(&a, "FCALL");
    arg_str(&a, "llmux_store_v1_renew");
    arg_str(&a, "0");
    arg_str(&a, st->prefix);
    arg_long(&a, RS_LOCK_MS);
    const char *k;
    json_t *v;
    json_object_foreach (st->held, k, v) {
        arg_str(&a, "c");
        arg_str(&a, k);
        arg_str(&a, json_string_value(v));
    }
    json_object_foreach (st->reserved, k, v) {
        arg_str(&a, "r");
        arg_str(&a, k);
        arg_str(&a, "");
    }
    lx_redis_command(st->r, "store_renew", st->timeout_ms, NULL, NULL, (int)a.n, (const char **)a.v, NULL);
    for (size_t i = 0; i < a.n; i++)
        free(a.v[i]);
    free(a.v);
}

/* Say when conversations stop and start working: the one thing an operator needs from this connection. */
static void state_cb(void *arg, enum lx_redis_state s)
{
    struct rs_store *st = arg;
    bool ready = s == LX_REDIS_READY;
    if (ready == st->was_ready || s == LX_REDIS_CLOSED)
        return;
    st->was_ready = ready;
    if (ready) {
        lx_info("store: redis ready: conversations are shared");
        for (struct lx_store_op *op = st->ops; op; op = op->next) {
            if (op->wait) {
                lx_timer_free(op->wait);
                op->wait = NULL;
                issue(st, op);
            }
        }
        json_t *todo = st->unreleased;
        st->unreleased = json_object();
        const char *resp;
        json_t *v;
        json_object_foreach (todo, resp, v)
            submit_abort(st, json_string_value(json_object_get(v, "owner")), resp,
                         json_string_value(json_object_get(v, "conversation")));
        json_decref(todo);
    } else
        lx_warn("store: redis unreachable: conversation requests answer 503 store_unavailable until it is back");
}

static struct lx_store *rs_open(const struct lx_store_conf *conf, char *err, size_t errlen)
{
    if (!conf->redis || !conf->redis->url) {
        snprintf(err, errlen, "store.backend \"redis\" needs the top-level \"redis\" section (its url)");
        return NULL;
    }
    struct rs_store *st = lx_calloc(1, sizeof *st);
    st->base.backend = &lx_store_redis;
    st->prefix = lx_strdup(conf->redis->prefix ? conf->redis->prefix : "llmux:");
    st->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 1000;
    st->retention_ms = conf->retention_days > 0 ? (long long)conf->retention_days * 86400000LL : 0;
    st->max_items = conf->max_items_per_conversation;
    st->held = json_object();
    st->reserved = json_object();
    st->unreleased = json_object();
    st->r = lx_redis_new(conf->redis);
    lx_redis_keep_library(st->r, "llmux_store_v1", lx_store_lua);
    lx_redis_on_state(st->r, state_cb, st);
    st->renew = lx_timer_new(renew_cb, st);
    lx_timer_start(st->renew, RS_LOCK_MS / 3);
    return &st->base;
}

static void rs_close(struct lx_store *base)
{
    struct rs_store *st = (struct rs_store *)base;
    lx_timer_free(st->renew);
    json_decref(st->unreleased); /* what is left lapses with its lock TTL */
    st->unreleased = NULL;
    lx_loop_drain(); /* answers deferred to the loop need st */
    /* What still waits for Redis is not answered once the connection goes: say so now. */
    while (st->ops) {
        struct lx_store_op *op = st->ops;
        unlink_op(op);
        lx_timer_free(op->wait);
        op->wait = NULL;
        set_status(op, LX_STORE_UNAVAILABLE, "store: %s", "closing");
        op->verb = LX_STORE_TURN_ABORT; /* nothing more to undo */
        post(op);
    }
    lx_redis_free(st->r);
    lx_loop_drain();
    lx_info("store: redis backend closed after %llu operations", (unsigned long long)st->operations);
    json_decref(st->held);
    json_decref(st->reserved);
    json_decref(st->unreleased);
    free(st->prefix);
    free(st);
}

const struct lx_store_backend lx_store_redis = {
    .name = "redis",
    .open = rs_open,
    .submit = rs_submit,
    .cancel = rs_cancel,
    .stats = rs_stats,
    .close = rs_close,
};
