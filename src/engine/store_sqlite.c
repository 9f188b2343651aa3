/* The SQLite store backend, loop-thread half: turns each request into an operation record (inputs copied
 * and serialised here, so the worker never shares the caller's JSON), keeps which conversations have a
 * turn in flight, queues the record on the worker thread and answers the caller when it comes back.
 * Answers that need no disk (busy, a full queue) are deferred to the loop's next turn, so no callback ever
 * runs inside lx_store_submit. The database half is store_sqlite_db.c. */
#include "store_sqlite.h"
#include "store_cache.h"
#include "store_json.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/log.h"
#include "../io/loop.h"
#include "../io/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Operations per transaction on the worker, and how often expired objects are purged. */
#define SQ_MAX_BATCH 64
#define SQ_PURGE_MS (3600L * 1000L)
/* The history cache: entries, and item slots over all of them. */
#define SQ_CACHE_ENTRIES 1024
#define SQ_CACHE_ITEMS (256u * 1024)

struct sq_store {
    struct lx_store base;
    struct sq_db *db;         /* owned; touched on the worker thread only (after open) */
    struct lx_worker *worker; /* owned */
    json_t *busy;             /* owned: conversation id → id of the response whose turn holds it */
    struct lx_timer *purge;   /* owned */
    /* The histories of hot chains ("r:" + the response a turn continues) and conversations ("c:" + its
     * id), kept exactly in step with the database: only this process writes it (the lock file), every
     * write goes through here, and entries change or go when their write completes. */
    struct lx_hcache *cache;  /* owned */
    int64_t retention_s;
    long max_items;
    uint64_t unavailable;     /* operations refused for a full queue */
};

static void items_free(struct sq_items *it)
{
    for (size_t i = 0; i < it->n; i++) {
        free(it->ids[i]);
        free(it->texts[i]);
    }
    free(it->ids);
    free(it->texts);
    memset(it, 0, sizeof *it);
}

static void op_free(struct lx_store_op *op)
{
    free(op->owner);
    free(op->response_id);
    free(op->conversation_id);
    free(op->previous_response_id);
    free(op->item_id);
    free(op->model);
    free(op->rstatus);
    free(op->envelope);
    free(op->output);
    free(op->usage);
    free(op->input);
    items_free(&op->add);
    free(op->metadata);
    free(op->after);
    json_decref(op->value);
    json_decref(op->cached);
    json_decref(op->input_json);
    json_decref(op->output_json);
    free(op);
}

static char *dup_or_null(const char *s)
{
    return s ? lx_strdup(s) : NULL;
}

static void bad(struct lx_store_op *op, const char *msg)
{
    if (op->status == LX_STORE_OK) {
        op->status = LX_STORE_ERROR;
        snprintf(op->message, sizeof op->message, "store: %s: %s", lx_store_verb_name((enum lx_store_verb)op->verb),
                 msg);
    }
}

/* Serialise items (each an object with a string "id") onto op->add; the array text of just these into
 * *joined when asked. */
static void take_items(struct lx_store_op *op, json_t *items, char **joined)
{
    if (items && !json_is_array(items)) {
        bad(op, "items must be an array");
        return;
    }
    size_t n = json_array_size(items);
    struct lx_buf b = {0};
    lx_buf_puts(&b, "[");
    op->add.ids = lx_realloc(op->add.ids, (op->add.n + n) * sizeof *op->add.ids);
    op->add.texts = lx_realloc(op->add.texts, (op->add.n + n) * sizeof *op->add.texts);
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(items, i);
        const char *id = json_string_value(json_object_get(item, "id"));
        if (!json_is_object(item) || !id) {
            bad(op, "an item without an id");
            break;
        }
        char *text = json_dumps(item, JSON_COMPACT);
        if (i)
            lx_buf_puts(&b, ",");
        lx_buf_puts(&b, text);
        op->add.ids[op->add.n] = lx_strdup(id);
        op->add.texts[op->add.n] = text;
        op->add.n++;
    }
    lx_buf_puts(&b, "]");
    if (joined)
        *joined = lx_buf_steal(&b, NULL);
    lx_buf_free(&b);
}

/* A response object, split for its columns: the envelope keeps output and usage in place as null. */
static void take_response(struct lx_store_op *op, json_t *resp)
{
    const char *id = json_string_value(json_object_get(resp, "id"));
    if (!json_is_object(resp) || !id) {
        bad(op, "a response object with an id is required");
        return;
    }
    if (!op->response_id)
        op->response_id = lx_strdup(id);
    const char *model = json_string_value(json_object_get(resp, "model"));
    const char *status = json_string_value(json_object_get(resp, "status"));
    op->model = lx_strdup(model ? model : "");
    op->rstatus = lx_strdup(status ? status : "completed");
    op->created_at = json_integer_value(json_object_get(resp, "created_at"));
    json_t *output = json_object_get(resp, "output"), *usage = json_object_get(resp, "usage");
    json_t *env = json_copy(resp); /* shallow: the caller's object is not touched */
    json_object_set_new(env, "output", json_null());
    json_object_set_new(env, "usage", json_null());
    op->envelope = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    op->output = json_is_array(output) ? json_dumps(output, JSON_COMPACT) : lx_strdup("[]");
    op->usage = json_is_object(usage) ? json_dumps(usage, JSON_COMPACT) : NULL;
}

static struct lx_store_op *op_new(struct sq_store *st, int verb, const struct lx_store_req *rq, lx_store_cb cb,
                                  void *arg)
{
    struct lx_store_op *op = lx_calloc(1, sizeof *op);
    op->st = st;
    op->verb = verb;
    op->cb = cb;
    op->arg = arg;
    op->owner = lx_strdup(rq->owner ? rq->owner : "");
    op->response_id = dup_or_null(rq->response_id);
    op->conversation_id = dup_or_null(rq->conversation_id);
    op->previous_response_id = dup_or_null(rq->previous_response_id);
    op->item_id = dup_or_null(rq->item_id);
    op->after = dup_or_null(rq->page.after);
    op->limit = rq->page.limit > 0 ? rq->page.limit : 20;
    op->desc = rq->page.desc;
    op->reserve = rq->reserve;
    op->store = rq->store;
    if (rq->metadata && !json_is_null(rq->metadata)) {
        if (json_is_object(rq->metadata))
            op->metadata = json_dumps(rq->metadata, JSON_COMPACT);
        else
            bad(op, "metadata must be an object");
    }
    switch (verb) {
    case LX_STORE_TURN_BEGIN:
        if (op->previous_response_id && op->conversation_id)
            bad(op, "previous_response_id and conversation_id are exclusive");
        if (op->reserve)
            take_response(op, rq->response);
        if (op->conversation_id && !op->response_id)
            bad(op, "a turn on a conversation needs its response id");
        break;
    case LX_STORE_TURN_FINISH:
        take_response(op, rq->response);
        take_items(op, rq->input, &op->input);
        op->input_json = json_is_array(rq->input) ? json_incref(rq->input) : json_array();
        op->output_json = json_is_array(json_object_get(rq->response, "output"))
                              ? json_incref(json_object_get(rq->response, "output"))
                              : json_array();
        if (op->conversation_id)
            take_items(op, json_object_get(rq->response, "output"), NULL);
        break;
    case LX_STORE_TURN_ABORT:
        break;
    case LX_STORE_RESPONSE_GET:
    case LX_STORE_RESPONSE_DELETE:
    case LX_STORE_RESPONSE_INPUT_ITEMS:
        if (!op->response_id)
            bad(op, "a response id is required");
        break;
    case LX_STORE_CONVERSATION_CREATE:
        take_items(op, rq->items, NULL);
        break;
    case LX_STORE_ITEMS_ADD:
        take_items(op, rq->items, NULL);
        /* fall through */
    case LX_STORE_CONVERSATION_GET:
    case LX_STORE_CONVERSATION_UPDATE:
    case LX_STORE_CONVERSATION_DELETE:
    case LX_STORE_ITEMS_LIST:
        if (!op->conversation_id)
            bad(op, "a conversation id is required");
        break;
    case LX_STORE_ITEM_GET:
    case LX_STORE_ITEM_DELETE:
        if (!op->conversation_id || !op->item_id)
            bad(op, "a conversation id and an item id are required");
        break;
    case SQ_PURGE:
        break;
    default:
        bad(op, "unknown operation");
    }
    return op;
}

/* Let go of a conversation, if this turn is the one holding it. */
static void release(struct sq_store *st, const char *conv, const char *resp)
{
    const char *holder = conv ? json_string_value(json_object_get(st->busy, conv)) : NULL;
    if (holder && resp && strcmp(holder, resp) == 0)
        json_object_del(st->busy, conv);
}

static char *cache_key(const char *kind, const char *id)
{
    return lx_sprintf("%s:%s", kind, id);
}

/* a + b + c as a new array sharing their items. */
static json_t *joined(json_t *a, json_t *b, json_t *c)
{
    json_t *out = json_array();
    json_array_extend(out, a);
    json_array_extend(out, b);
    json_array_extend(out, c);
    return out;
}

static int64_t earliest(int64_t a, int64_t b)
{
    return !a ? b : !b ? a : a < b ? a : b;
}

/* What a completed operation changes in the cache, the way it changed the database. */
static void cache_after(struct sq_store *st, struct lx_store_op *op)
{
    char *key = NULL;
    if (op->verb == LX_STORE_TURN_BEGIN && op->status == LX_STORE_OK) {
        if (op->cached) {
            json_decref(op->value);
            op->value = json_incref(op->cached);
        } else if (op->previous_response_id && op->cacheable) {
            key = cache_key("r", op->previous_response_id);
            lx_hcache_put(st->cache, key, op->owner, op->value, op->valid_until);
        } else if (op->conversation_id) {
            key = cache_key("c", op->conversation_id);
            lx_hcache_put(st->cache, key, op->owner, op->value, op->valid_until);
        }
    } else if (op->verb == LX_STORE_TURN_FINISH && op->status == LX_STORE_OK) {
        int64_t now = lx_wall_s(), expires = st->retention_s ? now + st->retention_s : 0, vu = 0;
        if (op->conversation_id) {
            /* The conversation grew by this turn (trimmed like the table), if it was kept. */
            key = cache_key("c", op->conversation_id);
            json_t *had = lx_hcache_find(st->cache, key, op->owner, now, NULL);
            bool kept = strcmp(op->rstatus, "completed") == 0 || strcmp(op->rstatus, "incomplete") == 0;
            if (had && kept) {
                json_t *now_items = joined(had, op->input_json, op->output_json);
                while (st->max_items > 0 && json_array_size(now_items) > (size_t)st->max_items)
                    json_array_remove(now_items, 0);
                lx_hcache_put(st->cache, key, op->owner, now_items, expires);
                json_decref(now_items);
            }
        } else if (op->store) {
            /* The history the next turn continues: this one's, then its input and output. */
            json_t *had = NULL, *none = json_array();
            if (op->previous_response_id) {
                char *pk = cache_key("r", op->previous_response_id);
                had = lx_hcache_find(st->cache, pk, op->owner, now, &vu);
                free(pk);
            }
            if (had || !op->previous_response_id) {
                key = cache_key("r", op->response_id);
                json_t *h = joined(had ? had : none, op->input_json, op->output_json);
                lx_hcache_put(st->cache, key, op->owner, h, earliest(vu, expires));
                json_decref(h);
            }
            json_decref(none);
        }
    } else if (op->verb == SQ_PURGE) {
        lx_hcache_drop_prefix(st->cache, ""); /* expired objects went: start afresh */
    }
    free(key);
}

/* Before a write that the cache cannot follow item by item: forget what it changes. */
static void cache_before(struct sq_store *st, const struct lx_store_op *op)
{
    switch (op->verb) {
    case LX_STORE_RESPONSE_DELETE:
        lx_hcache_drop_prefix(st->cache, "r:"); /* it may be a link of any cached chain */
        break;
    case LX_STORE_CONVERSATION_DELETE:
    case LX_STORE_ITEMS_ADD:
    case LX_STORE_ITEM_DELETE: {
        char *key = cache_key("c", op->conversation_id);
        lx_hcache_drop(st->cache, key);
        free(key);
        break;
    }
    default:
        break;
    }
}

/* TURN_BEGIN from the cache: LX_OK when it answered (no worker job needed), else LX_AGAIN. */
static int cache_begin(struct sq_store *st, struct lx_store_op *op)
{
    const char *id = op->previous_response_id ? op->previous_response_id : op->conversation_id;
    if (!id)
        return LX_AGAIN;
    char *key = cache_key(op->previous_response_id ? "r" : "c", id);
    int64_t vu = 0;
    json_t *hit = lx_hcache_get(st->cache, key, op->owner, lx_wall_s(), &vu);
    free(key);
    if (!hit)
        return LX_AGAIN;
    op->cached = json_incref(hit);
    op->valid_until = vu;
    if (op->reserve) {
        op->skip_history = true; /* the worker only stores the reservation */
        return LX_AGAIN;
    }
    return LX_OK;
}

/* Loop: the operation's end (answered, failed or cancelled). */
static void post(struct lx_store_op *op)
{
    struct sq_store *st = op->st;
    if (op->status == LX_STORE_OK && (op->ran || op->cached))
        cache_after(st, op);
    if (op->verb == LX_STORE_TURN_FINISH || (op->verb == LX_STORE_TURN_BEGIN && (op->status != LX_STORE_OK || op->cancelled)))
        release(st, op->conversation_id, op->response_id);
    if (op->status == LX_STORE_ERROR || op->status == LX_STORE_UNAVAILABLE)
        lx_warn("%s", op->message);
    if (!op->cancelled && op->cb)
        lx_store_answer(op->cb, op->arg, op->status, op->message, op->value);
    op_free(op);
}

static void post_deferred(void *arg)
{
    post(arg);
}

static void job_done(void *arg, enum lx_job_status js)
{
    struct lx_store_op *op = arg;
    op->job = NULL;
    if (js == LX_JOB_CANCELLED)
        op->cancelled = true;
    else if (js == LX_JOB_FAILED && op->status == LX_STORE_OK) {
        /* The work succeeded but its batch did not commit: nothing of it is stored. */
        op->status = LX_STORE_ERROR;
        snprintf(op->message, sizeof op->message, "store: the transaction could not be committed");
        json_decref(op->value);
        op->value = NULL;
    }
    post(op);
}

static void answer_later(struct lx_store_op *op, enum lx_store_status status, const char *msg)
{
    if (op->status == LX_STORE_OK && status != LX_STORE_OK) {
        op->status = status;
        snprintf(op->message, sizeof op->message, "%s", msg);
    }
    lx_defer(post_deferred, op);
}

static void queue(struct sq_store *st, struct lx_store_op *op)
{
    op->job = lx_worker_submit(st->worker, sq_db_run, job_done, op);
    if (!op->job) {
        st->unavailable++;
        answer_later(op, LX_STORE_UNAVAILABLE, "store: too many operations in flight; try again");
    }
}

static struct lx_store_op *sq_submit(struct lx_store *base, const struct lx_store_req *rq, lx_store_cb cb, void *arg)
{
    struct sq_store *st = (struct sq_store *)base;
    struct lx_store_op *op = op_new(st, rq->verb, rq, cb, arg);
    struct lx_store_op *handle = cb ? op : NULL; /* a fire-and-forget op frees itself: hand out no pointer */
    if (op->status != LX_STORE_OK) {
        answer_later(op, op->status, op->message);
        return handle;
    }
    const char *conv = op->conversation_id;
    switch (rq->verb) {
    case LX_STORE_TURN_BEGIN:
        if (conv) {
            if (json_object_get(st->busy, conv)) {
                char msg[200];
                snprintf(msg, sizeof msg, "Conversation '%s' already has a turn in progress", conv);
                answer_later(op, LX_STORE_BUSY, msg);
                return handle;
            }
            json_object_set_new(st->busy, conv, json_string(op->response_id));
        }
        if (cache_begin(st, op) == LX_OK) {
            answer_later(op, LX_STORE_OK, "");
            return handle;
        }
        break;
    case LX_STORE_ITEMS_ADD:
        if (json_object_get(st->busy, conv)) {
            char msg[200];
            snprintf(msg, sizeof msg, "Conversation '%s' has a turn in progress", conv);
            answer_later(op, LX_STORE_BUSY, msg);
            return handle;
        }
        break;
    case LX_STORE_TURN_ABORT:
        release(st, conv, op->response_id);
        if (!op->response_id) {
            answer_later(op, LX_STORE_OK, "");
            return handle;
        }
        break;
    default:
        break;
    }
    cache_before(st, op);
    queue(st, op);
    return handle;
}

static void sq_cancel(struct lx_store *base, struct lx_store_op *op)
{
    (void)base;
    op->cancelled = true;
    if (op->job)
        lx_job_cancel(op->job);
}

static void sq_stats(struct lx_store *base, struct lx_store_stats *out)
{
    struct sq_store *st = (struct sq_store *)base;
    struct lx_worker_stats ws;
    struct lx_hcache_stats cs;
    lx_worker_stats(st->worker, &ws);
    lx_hcache_stats(st->cache, &cs);
    *out = (struct lx_store_stats){
        .in_flight = ws.in_flight,
        .operations = ws.completed,
        .transactions = ws.batches,
        .cache_hits = cs.hits,
        .cache_misses = cs.misses,
        .up = -1,
        .unavailable = st->unavailable,
    };
}

static void purge_cb(void *arg)
{
    struct sq_store *st = arg;
    struct lx_store_req rq = {0};
    queue(st, op_new(st, SQ_PURGE, &rq, NULL, NULL));
    lx_timer_start(st->purge, SQ_PURGE_MS);
}

static const struct lx_worker_ops sq_worker_ops = {
    .open = sq_db_open,
    .close = sq_db_close,
    .batch_begin = sq_db_batch_begin,
    .batch_end = sq_db_batch_end,
};

static struct lx_store *sq_open(const struct lx_store_conf *conf, char *err, size_t errlen)
{
    if (!conf->path || !*conf->path) {
        snprintf(err, errlen, "store: no database path");
        return NULL;
    }
    struct sq_store *st = lx_calloc(1, sizeof *st);
    st->base.backend = &lx_store_sqlite;
    st->db = sq_db_new(conf->path, conf);
    st->worker = lx_worker_start(&sq_worker_ops, st->db, conf->max_queue ? conf->max_queue : 4096, SQ_MAX_BATCH, err,
                                 errlen);
    if (!st->worker) {
        sq_db_free(st->db);
        free(st);
        return NULL;
    }
    st->busy = json_object();
    st->cache = lx_hcache_new(SQ_CACHE_ENTRIES, SQ_CACHE_ITEMS);
    st->retention_s = conf->retention_days > 0 ? conf->retention_days * 86400 : 0;
    st->max_items = conf->max_items_per_conversation;
    st->purge = lx_timer_new(purge_cb, st);
    purge_cb(st); /* expired objects of earlier runs go now, then hourly */
    return &st->base;
}

static void sq_close(struct lx_store *base)
{
    struct sq_store *st = (struct sq_store *)base;
    lx_timer_free(st->purge);
    /* Answers deferred to the loop need st: give them first, then what the worker still holds (its
     * callbacks may defer more refusals), then those. */
    lx_loop_drain();
    struct lx_worker_stats ws;
    lx_worker_stop(st->worker, &ws);
    lx_loop_drain();
    struct lx_hcache_stats cs;
    lx_hcache_stats(st->cache, &cs);
    lx_info("store: closed after %llu operations in %llu transactions (largest %llu); history cache lookups: "
            "%llu hit, %llu missed",
            (unsigned long long)ws.completed, (unsigned long long)ws.batches, (unsigned long long)ws.largest_batch,
            (unsigned long long)cs.hits, (unsigned long long)cs.misses);
    lx_hcache_free(st->cache);
    json_decref(st->busy);
    sq_db_free(st->db);
    free(st);
}

const struct lx_store_backend lx_store_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .submit = sq_submit,
    .cancel = sq_cancel,
    .stats = sq_stats,
    .close = sq_close,
};
