/* The Redis client: hiredis 0.14 asynchronous on the loop's event_base, with the command deadlines, the
 * connect timeout, the stall check and the reconnect backoff that hiredis's libevent adapter lacks.
 *
 * Re-entrancy rules of hiredis 0.14.1 (read in its async.c), kept here:
 * - redisAsyncFree is called only from our own timers and from lx_redis_free, never from a hiredis
 *   callback: from the connect callback it frees the context under hiredis's feet, from the disconnect
 *   callback it frees it twice. A failure noticed inside a callback drops the connection from a
 *   zero-delay timer.
 * - Freeing a context runs every pending reply callback with a NULL reply, then the disconnect callback
 *   (only when the connection had been established). A failed connect calls the connect callback with
 *   REDIS_ERR and frees the context, with no disconnect callback.
 * - redisAsyncCommand* may be called from a reply callback; it refuses (REDIS_ERR) once the context is
 *   disconnecting or being freed.
 * - Commands queued before the connect completes are written once it does, so the handshake is
 *   pipelined behind the connect.
 * - redisAsyncConnect resolves a host name with a blocking getaddrinfo: names are looked up with evdns
 *   on the loop first, and hiredis only ever sees a numeric address.
 * - Every command queued in one loop turn leaves in one write (the adapter's write event): requests
 *   admitted together are pipelined without any batching here. */
#include "redis.h"
#include "loop.h"
#include "../core/common.h"
#include "../core/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double lx_redis_latency_buckets[LX_REDIS_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

struct lx_redis_cmd {
    struct lx_redis *r;                 /* borrowed: commands never outlive their client */
    const char *op;                     /* borrowed: static */
    lx_redis_cb cb;                     /* NULL once answered, timed out or cancelled */
    void *arg;
    double sent_ms;                     /* lx_now_ms_f when queued */
    uint64_t deadline_ms;
    bool handshake;
    bool waiting;                       /* finish() has not run: a callback or the handshake waits */
    struct lx_redis_cmd *prev, *next;   /* r->pending (sent order), or r->failq (next only) */
    struct lx_redis_cmd *dprev, *dnext; /* r->deadlines, by deadline; only while cb is set */
    bool on_deadlines;
};

struct lx_redis {
    struct lx_redis_conf conf;          /* owned copy */
    enum lx_redis_state state;
    uint64_t state_since_ms;
    redisAsyncContext *ac;              /* owned: the current connection, or NULL */
    struct evdns_base *dns;             /* owned: made on the first name lookup */
    bool dns_waiting;                   /* the current attempt waits for a lookup (an abandoned lookup's
                                           answer, coming later, is ignored) */
    struct lx_timer *retry_timer;       /* owned: the next connection attempt */
    struct lx_timer *conn_timer;        /* owned: connect + handshake budget */
    struct lx_timer *cmd_timer;         /* owned: the earliest deadline or stall check */
    uint64_t cmd_timer_at;              /* when cmd_timer fires; 0 = not armed */
    struct lx_timer *drop_timer;        /* owned: drops the connection outside hiredis's callbacks */
    char drop_why[160];
    struct lx_timer *failq_timer;       /* owned: answers commands that could not be sent */
    struct lx_redis_cmd *failq, **failq_tail;
    struct lx_redis_cmd *pending, *pending_tail;   /* owned: sent, not answered; freed by hiredis's call */
    struct lx_redis_cmd *deadlines, *deadlines_tail;
    size_t n_pending;
    long hs_pending;                    /* handshake commands not answered yet */
    unsigned attempt;                   /* failed attempts since the last READY: the backoff exponent */
    uint64_t rng;
    void (*handshake_fn)(void *arg, struct lx_redis *r);
    void *handshake_arg;
    void (*state_fn)(void *arg, enum lx_redis_state s);
    void *state_arg;
    const char *lib_name, *lib_code;    /* borrowed (static): the function library kept loaded, or NULL */
    bool lib_reloading;                 /* a FUNCTION LOAD after "Function not found" is in flight */
    unsigned long long connects, handshake_failures;
    unsigned long long errors[LX_REDIS_STATUS_COUNT];
    struct lx_redis_latency *lat;       /* owned */
    size_t n_lat;
    char last_error[256];
    char logged_error[256];             /* the last failure logged while down: repeats are not logged */
};

static const char *const lx_redis_state_names[LX_REDIS_STATE_COUNT] = {"down",      "resolving", "connecting",
                                                                       "handshake", "ready",     "closed"};

const char *lx_redis_state_name(enum lx_redis_state s)
{
    return s < LX_REDIS_STATE_COUNT ? lx_redis_state_names[s] : "?";
}

const char *lx_redis_status_name(enum lx_redis_status s)
{
    static const char *const names[LX_REDIS_STATUS_COUNT] = {"ok", "reply", "timeout", "connection", "down"};
    return s < LX_REDIS_STATUS_COUNT ? names[s] : "?";
}

/* ---- replies ---- */

static const redisReply *rr(const struct lx_redis_reply *r)
{
    return (const redisReply *)r;
}

enum lx_redis_reply_type lx_redis_reply_type(const struct lx_redis_reply *r)
{
    switch (rr(r)->type) {
    case REDIS_REPLY_STRING: return LX_REDIS_REPLY_STRING;
    case REDIS_REPLY_ARRAY: return LX_REDIS_REPLY_ARRAY;
    case REDIS_REPLY_INTEGER: return LX_REDIS_REPLY_INTEGER;
    case REDIS_REPLY_STATUS: return LX_REDIS_REPLY_STATUS;
    case REDIS_REPLY_ERROR: return LX_REDIS_REPLY_ERROR;
    default: return LX_REDIS_REPLY_NIL;
    }
}

long long lx_redis_reply_integer(const struct lx_redis_reply *r)
{
    return rr(r)->type == REDIS_REPLY_INTEGER ? rr(r)->integer : 0;
}

const char *lx_redis_reply_str(const struct lx_redis_reply *r, size_t *len)
{
    int t = rr(r)->type;
    if (t != REDIS_REPLY_STRING && t != REDIS_REPLY_STATUS && t != REDIS_REPLY_ERROR) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = (size_t)rr(r)->len;
    return rr(r)->str;
}

size_t lx_redis_reply_count(const struct lx_redis_reply *r)
{
    return rr(r)->type == REDIS_REPLY_ARRAY ? rr(r)->elements : 0;
}

const struct lx_redis_reply *lx_redis_reply_at(const struct lx_redis_reply *r, size_t i)
{
    if (!r || rr(r)->type != REDIS_REPLY_ARRAY || i >= rr(r)->elements)
        return NULL;
    return (const struct lx_redis_reply *)rr(r)->element[i];
}

bool lx_redis_reply_long(const struct lx_redis_reply *r, long long *out)
{
    if (!r)
        return false;
    if (rr(r)->type == REDIS_REPLY_INTEGER) {
        *out = rr(r)->integer;
        return true;
    }
    if (rr(r)->type != REDIS_REPLY_STRING || rr(r)->len == 0)
        return false;
    char *end;
    long long v = strtoll(rr(r)->str, &end, 10);
    if (*end)
        return false;
    *out = v;
    return true;
}

/* ---- state ---- */

static bool legal(enum lx_redis_state from, enum lx_redis_state to)
{
    if (to == LX_REDIS_CLOSED)
        return from != LX_REDIS_CLOSED;
    switch (from) {
    case LX_REDIS_DOWN: return to == LX_REDIS_RESOLVING || to == LX_REDIS_CONNECTING;
    case LX_REDIS_RESOLVING: return to == LX_REDIS_CONNECTING || to == LX_REDIS_DOWN;
    case LX_REDIS_CONNECTING: return to == LX_REDIS_HANDSHAKE || to == LX_REDIS_DOWN;
    case LX_REDIS_HANDSHAKE: return to == LX_REDIS_READY || to == LX_REDIS_DOWN;
    case LX_REDIS_READY: return to == LX_REDIS_DOWN;
    default: return false;
    }
}

static void set_state(struct lx_redis *r, enum lx_redis_state to)
{
    if (r->state == to)
        return;
    assert(legal(r->state, to));
    lx_debug("redis: %s -> %s", lx_redis_state_name(r->state), lx_redis_state_name(to));
    r->state = to;
    r->state_since_ms = lx_now_ms();
    if (r->state_fn)
        r->state_fn(r->state_arg, to);
}

static void set_error(struct lx_redis *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct lx_redis *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->last_error, sizeof r->last_error, fmt, ap);
    va_end(ap);
}

static uint64_t next_random(struct lx_redis *r)
{
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    return r->rng;
}

/* ---- commands ---- */

static void observe(struct lx_redis *r, const char *op, double seconds)
{
    struct lx_redis_latency *l = NULL;
    for (size_t i = 0; i < r->n_lat && !l; i++)
        if (r->lat[i].op == op || strcmp(r->lat[i].op, op) == 0)
            l = &r->lat[i];
    if (!l) {
        r->lat = lx_realloc(r->lat, (r->n_lat + 1) * sizeof *r->lat);
        l = &r->lat[r->n_lat++];
        memset(l, 0, sizeof *l);
        l->op = op;
    }
    l->count++;
    l->sum_s += seconds;
    for (size_t i = 0; i < LX_REDIS_LATENCY_BUCKETS; i++)
        if (seconds <= lx_redis_latency_buckets[i])
            l->buckets[i]++;
}

static void deadlines_unlink(struct lx_redis *r, struct lx_redis_cmd *c)
{
    if (!c->on_deadlines)
        return;
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else
        r->deadlines = c->dnext;
    if (c->dnext)
        c->dnext->dprev = c->dprev;
    else
        r->deadlines_tail = c->dprev;
    c->dprev = c->dnext = NULL;
    c->on_deadlines = false;
}

/* Commands nearly always share one timeout, so the new one goes at (or near) the tail. */
static void deadlines_insert(struct lx_redis *r, struct lx_redis_cmd *c)
{
    struct lx_redis_cmd *after = r->deadlines_tail;
    while (after && after->deadline_ms > c->deadline_ms)
        after = after->dprev;
    c->dprev = after;
    c->dnext = after ? after->dnext : r->deadlines;
    if (c->dnext)
        c->dnext->dprev = c;
    else
        r->deadlines_tail = c;
    if (after)
        after->dnext = c;
    else
        r->deadlines = c;
    c->on_deadlines = true;
}

static void pending_unlink(struct lx_redis *r, struct lx_redis_cmd *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        r->pending = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        r->pending_tail = c->prev;
    c->prev = c->next = NULL;
    r->n_pending--;
}

static void arm_cmd_timer(struct lx_redis *r);
static void drop_soon(struct lx_redis *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void handshake_done(struct lx_redis *r)
{
    if (r->state == LX_REDIS_HANDSHAKE && r->hs_pending == 0 && !lx_timer_pending(r->drop_timer)) {
        lx_timer_stop(r->conn_timer);
        r->attempt = 0;
        r->connects++;
        r->logged_error[0] = '\0';
        char *url = lx_redis_url_redacted(&r->conf);
        lx_info("redis: connected to %s", url);
        free(url);
        set_state(r, LX_REDIS_READY);
    }
}

/* The command ended for its waiter: count it, then call back (the callback may send more commands). */
static void finish(struct lx_redis_cmd *c, enum lx_redis_status st, const redisReply *reply)
{
    struct lx_redis *r = c->r;
    lx_redis_cb cb = c->cb;
    c->cb = NULL;
    c->waiting = false;
    deadlines_unlink(r, c);
    r->errors[st]++;
    if (st == LX_REDIS_EREPLY && reply)
        set_error(r, "%s: %s", c->op, reply->str);
    else if (st == LX_REDIS_ETIMEOUT)
        set_error(r, "%s: no answer within its timeout", c->op);
    if (cb)
        cb(c->arg, st, (const struct lx_redis_reply *)reply);
    /* ECONN: the connection is gone and its handshake count with it. */
    if (c->handshake && r->state != LX_REDIS_CLOSED && st != LX_REDIS_ECONN) {
        r->hs_pending--;
        if (st == LX_REDIS_OK) {
            handshake_done(r);
        } else {
            r->handshake_failures++;
            drop_soon(r, "handshake failed (%s)", r->last_error);
        }
    }
}

/* Forget the connection ac (it is being freed by whoever called us) and schedule the next attempt. */
static void schedule_retry(struct lx_redis *r);

static void conn_lost(struct lx_redis *r, const redisAsyncContext *ac, const char *why)
{
    if (!ac || r->ac != ac)
        return;
    r->ac = NULL;
    lx_timer_stop(r->drop_timer);
    bool was_ready = r->state == LX_REDIS_READY;
    set_error(r, "%s", why && *why ? why : "connection lost");
    if (was_ready) {
        char *url = lx_redis_url_redacted(&r->conf);
        lx_warn("redis: connection to %s lost (%s); reconnecting", url, r->last_error);
        free(url);
        snprintf(r->logged_error, sizeof r->logged_error, "%s", r->last_error);
    }
    schedule_retry(r);
}

/* ---- the function library kept loaded ---- */

static void lib_load_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    struct lx_redis *r = arg;
    const char *msg = st == LX_REDIS_EREPLY ? lx_redis_reply_str(reply, NULL) : NULL;
    if (msg && strstr(msg, "unknown command"))
        lx_error("redis: FUNCTION LOAD is unknown to this server: llmux needs Redis 7.0 or newer");
    else if (msg)
        lx_error("redis: loading the %s functions failed: %s", r->lib_name, msg);
}

static void lib_reload_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    (void)reply;
    struct lx_redis *r = arg;
    r->lib_reloading = false;
    if (st != LX_REDIS_OK)
        lx_warn("redis: reloading the %s functions failed (%s)", r->lib_name, lx_redis_status_name(st));
}

/* Someone flushed the functions (FUNCTION FLUSH, a restored dump): load them again for what follows. */
static void lib_check_missing(struct lx_redis *r, const redisReply *rep)
{
    if (!r->lib_code || r->lib_reloading || rep->type != REDIS_REPLY_ERROR || !rep->str ||
        !strstr(rep->str, "Function not found"))
        return;
    r->lib_reloading = true;
    lx_warn("redis: the %s functions are gone from Redis; loading them again", r->lib_name);
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", r->lib_code};
    long timeout = r->conf.connect_timeout_ms > r->conf.timeout_ms ? r->conf.connect_timeout_ms : r->conf.timeout_ms;
    lx_redis_command(r, "function_load", timeout, lib_reload_cb, r, 4, argv, NULL);
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct lx_redis_cmd *c = privdata;
    struct lx_redis *r = c->r;
    pending_unlink(r, c);
    const redisReply *rep = reply;
    if (rep) {
        observe(r, c->op, (lx_now_ms_f() - c->sent_ms) / 1000.0);
        lib_check_missing(r, rep);
        if (c->waiting)
            finish(c, rep->type == REDIS_REPLY_ERROR ? LX_REDIS_EREPLY : LX_REDIS_OK, rep);
        else if (rep->type == REDIS_REPLY_ERROR)
            set_error(r, "%s: %s", c->op, rep->str); /* nobody waited: still worth showing */
    } else {
        conn_lost(r, ac, ac->errstr);
        if (c->waiting)
            finish(c, LX_REDIS_ECONN, NULL);
    }
    free(c);
    if (r->state != LX_REDIS_CLOSED)
        arm_cmd_timer(r);
}

static void failq_cb(void *arg)
{
    struct lx_redis *r = arg;
    struct lx_redis_cmd *q = r->failq;
    r->failq = NULL;
    r->failq_tail = &r->failq;
    while (q) {
        struct lx_redis_cmd *c = q;
        q = c->next;
        if (c->cb)
            c->cb(c->arg, LX_REDIS_EDOWN, NULL);
        free(c);
    }
}

static struct lx_redis_cmd *fail_later(struct lx_redis *r, struct lx_redis_cmd *c)
{
    r->errors[LX_REDIS_EDOWN]++;
    if (!c->cb) {
        free(c);
        return NULL;
    }
    c->next = NULL;
    *r->failq_tail = c;
    r->failq_tail = &c->next;
    if (!lx_timer_pending(r->failq_timer))
        lx_timer_start(r->failq_timer, 0);
    return c;
}

static struct lx_redis_cmd *send_cmd(struct lx_redis *r, const char *op, long timeout_ms, bool handshake,
                                     lx_redis_cb cb, void *arg, int argc, const char **argv, const size_t *argvlen)
{
    struct lx_redis_cmd *c = lx_calloc(1, sizeof *c);
    c->r = r;
    c->op = op;
    c->cb = cb;
    c->arg = arg;
    c->handshake = handshake;
    bool can_send = handshake ? r->ac != NULL : r->state == LX_REDIS_READY && r->ac;
    if (!can_send || lx_timer_pending(r->drop_timer) ||
        redisAsyncCommandArgv(r->ac, reply_cb, c, argc, argv, argvlen) != REDIS_OK) {
        if (handshake) {
            free(c);
            drop_soon(r, "cannot send the handshake");
            return NULL;
        }
        return fail_later(r, c);
    }
    c->sent_ms = lx_now_ms_f();
    c->deadline_ms = lx_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : r->conf.timeout_ms);
    c->prev = r->pending_tail;
    if (r->pending_tail)
        r->pending_tail->next = c;
    else
        r->pending = c;
    r->pending_tail = c;
    r->n_pending++;
    if (handshake)
        r->hs_pending++;
    c->waiting = cb || handshake;
    if (c->waiting)
        deadlines_insert(r, c);
    arm_cmd_timer(r);
    return cb ? c : NULL;
}

struct lx_redis_cmd *lx_redis_command(struct lx_redis *r, const char *op, long timeout_ms, lx_redis_cb cb, void *arg,
                                      int argc, const char **argv, const size_t *argvlen)
{
    return send_cmd(r, op, timeout_ms, false, cb, arg, argc, argv, argvlen);
}

void lx_redis_handshake_command(struct lx_redis *r, const char *op, lx_redis_cb cb, void *arg, int argc,
                                const char **argv, const size_t *argvlen)
{
    send_cmd(r, op, r->conf.connect_timeout_ms, true, cb, arg, argc, argv, argvlen);
}

void lx_redis_cancel(struct lx_redis_cmd *c)
{
    if (!c)
        return;
    c->cb = NULL;
    c->waiting = false;
    deadlines_unlink(c->r, c);
}

/* ---- timers ---- */

static void cmd_timer_cb(void *arg)
{
    struct lx_redis *r = arg;
    r->cmd_timer_at = 0;
    uint64_t now = lx_now_ms();
    while (r->deadlines && r->deadlines->deadline_ms <= now) {
        struct lx_redis_cmd *c = r->deadlines;
        finish(c, LX_REDIS_ETIMEOUT, NULL);
    }
    /* Replies come in order: when the oldest command has had no answer for connect_timeout_ms, the
     * connection is dead or Redis is stuck (SIGSTOP, a black-holed network): drop it and reconnect. */
    if (r->state == LX_REDIS_READY && r->pending &&
        now - (uint64_t)r->pending->sent_ms >= (uint64_t)r->conf.connect_timeout_ms)
        drop_soon(r, "no answer for %ld ms", r->conf.connect_timeout_ms);
    arm_cmd_timer(r);
}

static void arm_cmd_timer(struct lx_redis *r)
{
    uint64_t at = 0;
    if (r->deadlines)
        at = r->deadlines->deadline_ms;
    if (r->pending && r->state == LX_REDIS_READY) {
        uint64_t stall = (uint64_t)r->pending->sent_ms + (uint64_t)r->conf.connect_timeout_ms;
        if (!at || stall < at)
            at = stall;
    }
    if (!at || (r->cmd_timer_at && r->cmd_timer_at <= at))
        return; /* nothing to watch, or the armed timer comes first and re-arms itself */
    uint64_t now = lx_now_ms();
    r->cmd_timer_at = at;
    lx_timer_start(r->cmd_timer, at > now ? (long)(at - now) : 0);
}

static void drop(struct lx_redis *r)
{
    redisAsyncContext *ac = r->ac;
    if (!ac)
        return;
    r->ac = NULL;
    lx_timer_stop(r->drop_timer);
    bool was_ready = r->state == LX_REDIS_READY;
    set_error(r, "%s", r->drop_why);
    if (was_ready) {
        char *url = lx_redis_url_redacted(&r->conf);
        lx_warn("redis: dropping the connection to %s (%s); reconnecting", url, r->drop_why);
        free(url);
        snprintf(r->logged_error, sizeof r->logged_error, "%s", r->last_error);
    }
    schedule_retry(r);
    redisAsyncFree(ac); /* pending callbacks: ECONN; their waiters' new commands: EDOWN */
}

static void drop_timer_cb(void *arg)
{
    drop(arg);
}

static void drop_soon(struct lx_redis *r, const char *fmt, ...)
{
    if (lx_timer_pending(r->drop_timer) || !r->ac)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->drop_why, sizeof r->drop_why, fmt, ap);
    va_end(ap);
    lx_timer_start(r->drop_timer, 0);
}

static void conn_timer_cb(void *arg)
{
    struct lx_redis *r = arg;
    if (r->state == LX_REDIS_RESOLVING) {
        /* Not evdns_getaddrinfo_cancel: its callback comes later from a deferred queue, possibly after
         * lx_redis_free. The lookup runs on to its own timeout and its answer is ignored. */
        r->dns_waiting = false;
        set_error(r, "looking up %s took longer than %ld ms", r->conf.target.host, r->conf.connect_timeout_ms);
        schedule_retry(r);
    } else if (r->state == LX_REDIS_CONNECTING || r->state == LX_REDIS_HANDSHAKE) {
        snprintf(r->drop_why, sizeof r->drop_why, "%s took longer than %ld ms",
                 r->state == LX_REDIS_CONNECTING ? "connecting" : "the handshake", r->conf.connect_timeout_ms);
        drop(r);
    }
}

/* ---- connecting ---- */

static void log_attempt_failure(struct lx_redis *r)
{
    if (strcmp(r->logged_error, r->last_error) == 0)
        return; /* the same failure again: said once */
    snprintf(r->logged_error, sizeof r->logged_error, "%s", r->last_error);
    char *url = lx_redis_url_redacted(&r->conf);
    lx_warn("redis: cannot connect to %s (%s); retrying with backoff up to %ld ms", url, r->last_error,
            r->conf.reconnect_max_ms);
    free(url);
}

/* Equal jitter: half the ceiling plus a random half, the ceiling doubling from 100 ms up to
 * reconnect_max_ms, so a fleet that lost Redis together does not come back in step. */
static long backoff_ms(struct lx_redis *r)
{
    long ceiling = 100;
    for (unsigned i = 0; i < r->attempt && ceiling < r->conf.reconnect_max_ms; i++)
        ceiling *= 2;
    if (ceiling > r->conf.reconnect_max_ms)
        ceiling = r->conf.reconnect_max_ms;
    long half = ceiling / 2;
    return half + (long)(next_random(r) % (uint64_t)(ceiling - half + 1));
}

static void schedule_retry(struct lx_redis *r)
{
    if (r->state == LX_REDIS_CLOSED)
        return;
    lx_timer_stop(r->conn_timer);
    r->hs_pending = 0;
    if (r->state != LX_REDIS_READY && r->state != LX_REDIS_DOWN)
        log_attempt_failure(r);
    set_state(r, LX_REDIS_DOWN);
    long delay = backoff_ms(r);
    if (r->attempt < 30)
        r->attempt++;
    lx_timer_start(r->retry_timer, delay);
}

static void connect_cb(const redisAsyncContext *ac, int status)
{
    struct lx_redis *r = ac->data;
    if (r->ac != ac)
        return;
    if (status != REDIS_OK) {
        conn_lost(r, ac, ac->errstr); /* hiredis frees ac when we return */
        return;
    }
    set_state(r, LX_REDIS_HANDSHAKE);
    handshake_done(r); /* nothing to wait for without AUTH, SELECT or the owner's commands */
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    (void)status;
    conn_lost(ac->data, ac, ac->errstr);
}

static void connect_to(struct lx_redis *r, const char *ip)
{
    const struct lx_redis_target *t = &r->conf.target;
    redisAsyncContext *ac = ip ? redisAsyncConnect(ip, t->port) : redisAsyncConnectUnix(t->path);
    if (!ac)
        abort(); /* out of memory: the allocation policy of common.h */
    if (ac->err) {
        set_error(r, "%s", ac->errstr);
        redisAsyncFree(ac); /* no callback was set: nothing runs */
        set_state(r, LX_REDIS_CONNECTING);
        schedule_retry(r);
        return;
    }
    ac->data = r;
    redisLibeventAttach(ac, lx_loop_base());
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    r->ac = ac;
    set_state(r, LX_REDIS_CONNECTING);
    r->hs_pending = 0;
    if (t->password) {
        const char *argv[3] = {"AUTH", t->user ? t->user : t->password, t->password};
        lx_redis_handshake_command(r, "auth", NULL, NULL, t->user ? 3 : 2, argv, NULL);
    }
    if (t->db) {
        char db[24];
        snprintf(db, sizeof db, "%ld", t->db);
        const char *argv[2] = {"SELECT", db};
        lx_redis_handshake_command(r, "select", NULL, NULL, 2, argv, NULL);
    }
    if (r->lib_code) {
        const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", r->lib_code};
        lx_redis_handshake_command(r, "function_load", lib_load_cb, r, 4, argv, NULL);
    }
    if (r->handshake_fn && r->ac)
        r->handshake_fn(r->handshake_arg, r);
}

static void dns_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    struct lx_redis *r = arg;
    if (result == EVUTIL_EAI_CANCEL || !r->dns_waiting || r->state != LX_REDIS_RESOLVING) {
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    r->dns_waiting = false;
    if (result != 0 || !res) {
        set_error(r, "cannot resolve %s: %s", r->conf.target.host, evutil_gai_strerror(result));
        if (res)
            evutil_freeaddrinfo(res);
        schedule_retry(r);
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "";
    if (res->ai_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip, sizeof ip);
    evutil_freeaddrinfo(res);
    connect_to(r, ip);
}

static bool is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void retry_timer_cb(void *arg)
{
    struct lx_redis *r = arg;
    if (r->state != LX_REDIS_DOWN)
        return;
    lx_timer_start(r->conn_timer, r->conf.connect_timeout_ms);
    const struct lx_redis_target *t = &r->conf.target;
    if (!t->host) {
        connect_to(r, NULL);
        return;
    }
    if (is_numeric(t->host)) {
        connect_to(r, t->host);
        return;
    }
    if (!r->dns)
        r->dns = evdns_base_new(lx_loop_base(), EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!r->dns) {
        set_error(r, "cannot start the DNS resolver (/etc/resolv.conf)");
        set_state(r, LX_REDIS_RESOLVING);
        schedule_retry(r);
        return;
    }
    set_state(r, LX_REDIS_RESOLVING);
    struct evutil_addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    r->dns_waiting = true;
    /* The callback may run before this returns (a name from /etc/hosts). */
    evdns_getaddrinfo(r->dns, t->host, NULL, &hints, dns_cb, r);
}

/* ---- the client ---- */

static void conf_copy(struct lx_redis_conf *dst, const struct lx_redis_conf *src)
{
    *dst = *src;
    dst->url = src->url ? lx_strdup(src->url) : NULL;
    dst->prefix = lx_strdup(src->prefix ? src->prefix : "llmux:");
    dst->target.host = src->target.host ? lx_strdup(src->target.host) : NULL;
    dst->target.path = src->target.path ? lx_strdup(src->target.path) : NULL;
    dst->target.user = src->target.user ? lx_strdup(src->target.user) : NULL;
    dst->target.password = src->target.password ? lx_strdup(src->target.password) : NULL;
    if (dst->timeout_ms <= 0)
        dst->timeout_ms = 50;
    if (dst->connect_timeout_ms <= 0)
        dst->connect_timeout_ms = 1000;
    if (dst->reconnect_max_ms < 100)
        dst->reconnect_max_ms = 100;
}

struct lx_redis *lx_redis_new(const struct lx_redis_conf *conf)
{
    struct lx_redis *r = lx_calloc(1, sizeof *r);
    conf_copy(&r->conf, conf);
    r->state = LX_REDIS_DOWN;
    r->state_since_ms = lx_now_ms();
    r->failq_tail = &r->failq;
    r->rng = lx_now_ms() * 6364136223846793005ULL ^ (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ULL;
    r->retry_timer = lx_timer_new(retry_timer_cb, r);
    r->conn_timer = lx_timer_new(conn_timer_cb, r);
    r->cmd_timer = lx_timer_new(cmd_timer_cb, r);
    r->drop_timer = lx_timer_new(drop_timer_cb, r);
    r->failq_timer = lx_timer_new(failq_cb, r);
    lx_timer_start(r->retry_timer, 0); /* the first attempt, from the loop */
    return r;
}

void lx_redis_free(struct lx_redis *r)
{
    if (!r)
        return;
    set_state(r, LX_REDIS_CLOSED);
    for (struct lx_redis_cmd *c = r->pending; c; c = c->next)
        lx_redis_cancel(c);
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    if (ac)
        redisAsyncFree(ac); /* frees every pending command through reply_cb, which calls nobody */
    r->dns_waiting = false;
    if (r->dns)
        evdns_base_free(r->dns, 1); /* fails lookups in flight at once: dns_cb ignores them */
    for (struct lx_redis_cmd *c = r->failq, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    lx_timer_free(r->retry_timer);
    lx_timer_free(r->conn_timer);
    lx_timer_free(r->cmd_timer);
    lx_timer_free(r->drop_timer);
    lx_timer_free(r->failq_timer);
    free(r->lat);
    lx_redis_conf_free(&r->conf);
    free(r);
}

void lx_redis_keep_library(struct lx_redis *r, const char *name, const char *code)
{
    r->lib_name = name;
    r->lib_code = code;
}

void lx_redis_set_handshake(struct lx_redis *r, void (*fn)(void *arg, struct lx_redis *r), void *arg)
{
    r->handshake_fn = fn;
    r->handshake_arg = arg;
}

void lx_redis_on_state(struct lx_redis *r, void (*fn)(void *arg, enum lx_redis_state s), void *arg)
{
    r->state_fn = fn;
    r->state_arg = arg;
}

enum lx_redis_state lx_redis_state(const struct lx_redis *r)
{
    return r->state;
}

bool lx_redis_ready(const struct lx_redis *r)
{
    return r && r->state == LX_REDIS_READY;
}

const struct lx_redis_conf *lx_redis_conf(const struct lx_redis *r)
{
    return &r->conf;
}

void lx_redis_stats(const struct lx_redis *r, struct lx_redis_stats *out)
{
    memset(out, 0, sizeof *out);
    out->state = r->state;
    out->connects = r->connects;
    memcpy(out->errors, r->errors, sizeof out->errors);
    out->handshake_failures = r->handshake_failures;
    out->state_since_ms = r->state_since_ms;
    out->last_error = r->last_error[0] ? r->last_error : NULL;
    out->pending = r->n_pending;
}

const struct lx_redis_latency *lx_redis_latencies(const struct lx_redis *r, size_t *n)
{
    *n = r->n_lat;
    return r->lat;
}
