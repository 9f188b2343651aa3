/* The live store and what the stateful endpoints share (see state.h). */
#include "state.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/log.h"
#include "../engine/store_conf.h"
#include "../io/redis.h"
#include "../server/auth.h"
#include "../server/req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
    struct lx_store *store; /* owned: closed in lx_state_close */
    int lock_fd;            /* owned: holds the store's lock file while open, else -1 */
    char *path;             /* owned: what it opened, to notice a reload that moves it */
    long retention_days, max_items;
} S;

/* mkdir -p, owner-only for what it makes. */
static int make_dirs(const char *dir, char *err, size_t errlen)
{
    char *p = lx_strdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "state_dir: cannot create %s: %s", p, strerror(errno));
            free(p);
            return LX_ERR;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0700) == 0 || errno == EEXIST ? LX_OK : LX_ERR;
    if (rc != LX_OK)
        snprintf(err, errlen, "state_dir: cannot create %s: %s", p, strerror(errno));
    free(p);
    return rc;
}

/* The shared store: no state_dir, no lock file (every replica opens it). */
static int open_redis(const struct lx_state_conf *sc, const struct lx_redis_conf *redis, char *err, size_t errlen)
{
    struct lx_store_conf conf = sc->store;
    conf.redis = redis;
    S.store = lx_store_redis.open(&conf, err, errlen);
    if (!S.store)
        return LX_ERR;
    char *url = lx_redis_url_redacted(redis);
    S.path = lx_sprintf("redis %s", url);
    free(url);
    S.retention_days = sc->store.retention_days;
    S.max_items = sc->store.max_items_per_conversation;
    lx_info("store: %s, prefix %s (retention %ld days, at most %ld items per conversation)", S.path,
            redis->prefix ? redis->prefix : "llmux:", S.retention_days, S.max_items);
    return LX_OK;
}

int lx_state_open(const struct lx_state_conf *sc, const struct lx_redis_conf *redis, char *err, size_t errlen)
{
    if (!sc->enabled) {
        lx_info("store: off (\"store\": null): /v1/responses answers without keeping anything");
        return LX_OK;
    }
    if (sc->redis)
        return open_redis(sc, redis, err, errlen);
    char *dir = lx_strdup(sc->path);
    char *slash = strrchr(dir, '/');
    int rc = LX_OK;
    if (slash && slash != dir) {
        *slash = '\0';
        rc = make_dirs(dir, err, errlen);
    }
    free(dir);
    if (rc != LX_OK)
        return LX_ERR;
    /* One process per store: another would drop this one's streams in progress at its start, and the
     * conversations it holds busy are only known here. */
    char *lock = lx_sprintf("%s.lock", sc->path);
    S.lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (S.lock_fd < 0 || flock(S.lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "store: %s: %s", lock,
                 S.lock_fd >= 0 && errno == EWOULDBLOCK ? "another llmux uses this store (give each its own "
                                                          "state_dir or store.path)"
                                                        : strerror(errno));
        if (S.lock_fd >= 0)
            close(S.lock_fd);
        S.lock_fd = -1;
        free(lock);
        return LX_ERR;
    }
    free(lock);
    S.store = lx_store_sqlite.open(&sc->store, err, errlen);
    if (!S.store) {
        close(S.lock_fd);
        S.lock_fd = -1;
        return LX_ERR;
    }
    S.path = lx_strdup(sc->path);
    S.retention_days = sc->store.retention_days;
    S.max_items = sc->store.max_items_per_conversation;
    lx_info("store: %s (retention %ld days, at most %ld items per conversation)", sc->path, S.retention_days,
            S.max_items);
    return LX_OK;
}

void lx_state_reload(const struct lx_state_conf *sc)
{
    bool same = sc->enabled == (S.store != NULL) &&
                (!S.store || ((sc->redis ? S.store->backend == &lx_store_redis
                                         : strcmp(sc->path, S.path) == 0) &&
                              sc->store.retention_days == S.retention_days &&
                              sc->store.max_items_per_conversation == S.max_items));
    if (!same)
        lx_warn("reload: state_dir and store take effect at the next restart; the store stays %s",
                S.store ? S.path : "off");
}

void lx_state_close(void)
{
    lx_store_close(S.store);
    S.store = NULL;
    if (S.lock_fd > 0)
        close(S.lock_fd);
    S.lock_fd = -1;
    free(S.path);
    S.path = NULL;
}

struct lx_store *lx_state_store(void)
{
    return S.store;
}

const char *lx_state_owner(const struct lx_req *req)
{
    return req->auth_key ? req->auth_key->name : "";
}

void lx_state_error(struct lx_error *err, const struct lx_store_result *res, const char *param)
{
    const char *msg = res->message ? res->message : "";
    switch (res->status) {
    case LX_STORE_OK:
        break;
    case LX_STORE_NOT_FOUND:
        lx_error_set(err, 404, "invalid_request_error", param, "not_found", "%s.", msg);
        break;
    case LX_STORE_BUSY:
        lx_error_set(err, 409, "invalid_request_error", param,
                     strstr(msg, "Conversation") ? "conversation_busy" : "response_in_progress",
                     "%s; wait for it to finish, then try again.", msg);
        break;
    case LX_STORE_UNAVAILABLE:
        /* Nothing of the operation is acknowledged: no history was read or written for the client. */
        lx_error_set(err, 503, "server_error", NULL, "store_unavailable",
                     "The conversation store is unavailable (%s); try again shortly.", msg);
        free(err->retry_after);
        err->retry_after = lx_strdup("1");
        break;
    case LX_STORE_ERROR:
        lx_error_set(err, 500, "server_error", NULL, "store_error", "The conversation store failed: %s", msg);
        break;
    }
}

void lx_state_disabled(struct lx_error *err, const char *param)
{
    lx_error_set(err, 400, "invalid_request_error", param, "storage_disabled",
                 "This llmux stores no responses or conversations (\"store\": null in its configuration): send "
                 "\"store\": false and the whole history in 'input' instead.");
}

void lx_state_saved(struct lx_req *req, const char *id, long items, double since_ms)
{
    lx_ev_conversation_saved(&req->origin, id, items, lx_now_ms_f() - since_ms);
}

/* One pending answer. */
struct answer {
    struct lx_req_handler handler;
    struct lx_req *req;          /* hold: released in answer_end */
    struct lx_store_op *op;      /* until the callback */
    struct lx_store_req rq;      /* copy for shape: its ids point at ids[], its JSON inputs are cleared */
    char *ids[3];                /* owned: response, conversation and item id */
    char *param;                 /* owned */
    json_t *(*shape)(const struct lx_store_req *rq, json_t *value);
    long saved_items;            /* a write of items (a conversation made, items added): how many */
    double since_ms;             /* when it was submitted */
};

static void answer_end(struct answer *a)
{
    struct lx_req *req = a->req;
    lx_req_set_handler(req, NULL);
    for (size_t i = 0; i < LX_ARRAY_LEN(a->ids); i++)
        free(a->ids[i]);
    free(a->param);
    free(a);
    lx_req_release(req);
}

static void answer_cb(void *arg, const struct lx_store_result *res)
{
    struct answer *a = arg;
    a->op = NULL;
    if (res->status == LX_STORE_OK) {
        if (a->rq.verb == LX_STORE_CONVERSATION_CREATE || a->rq.verb == LX_STORE_ITEMS_ADD)
            lx_state_saved(a->req, a->rq.conversation_id ? a->rq.conversation_id
                                                         : json_string_value(json_object_get(res->value, "id")),
                           a->saved_items, a->since_ms);
        json_t *body = a->shape ? a->shape(&a->rq, res->value) : json_incref(res->value);
        lx_req_respond_json(a->req, 200, body ? body : json_object());
    } else {
        struct lx_error err = {0};
        lx_state_error(&err, res, a->param);
        lx_req_respond_error(a->req, &err);
        lx_error_clear(&err);
    }
    answer_end(a);
}

static void answer_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    (void)req;
    struct answer *a = LX_CONTAINER_OF(h, struct answer, handler);
    lx_store_cancel(S.store, a->op);
    if (why)
        lx_req_respond_error(a->req, why);
    answer_end(a);
}

static const struct lx_req_handler lx_answer_handler = {.on_abort = answer_abort};

void lx_state_answer(struct lx_req *req, const struct lx_store_req *rq, const char *param,
                     json_t *(*shape)(const struct lx_store_req *rq, json_t *value))
{
    struct answer *a = lx_calloc(1, sizeof *a);
    a->req = lx_req_hold(req);
    a->rq = *rq;
    a->param = param ? lx_strdup(param) : NULL;
    a->shape = shape;
    a->handler = lx_answer_handler;
    a->saved_items = (long)json_array_size(rq->items);
    a->since_ms = lx_now_ms_f();
    lx_req_set_handler(req, &a->handler);
    a->op = lx_store_submit(S.store, rq, answer_cb, a);
    /* What shape may read after this: the ids, copied; the inputs were copied by the store. */
    const char **ids[] = {&a->rq.response_id, &a->rq.conversation_id, &a->rq.item_id};
    for (size_t i = 0; i < LX_ARRAY_LEN(ids); i++) {
        a->ids[i] = *ids[i] ? lx_strdup(*ids[i]) : NULL;
        *ids[i] = a->ids[i];
    }
    a->rq.owner = NULL;
    a->rq.previous_response_id = NULL;
    a->rq.page.after = NULL;
    a->rq.response = a->rq.input = a->rq.items = a->rq.metadata = NULL;
}
