/* Fleet-wide limits and provider state over Redis: the calls to the llmux_v1 functions (fleet.lua), the
 * holds that make an admission's outcome exact whatever the timing, this replica's own in-flight counts
 * and the heartbeat that re-asserts them. */
#include "fleet.h"
#include "loop.h"
#include "../core/common.h"
#include "../core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char lx_fleet_lua[] =
#include "fleet.lua.h"
    ;

/* This replica's share of one in-flight hash: what the heartbeat asserts. A share is kept once made,
 * zeros included (a zero is asserted too, deleting this replica's field): there is one per client key
 * and provider that was ever busy here, so the list stays as long as the configuration. */
struct share {
    char *key;      /* owned: the hash's full name */
    long n;
    struct share *next;
};

/* The last fleet-wide state seen of a provider. */
struct seen {
    char *name;     /* owned */
    struct lx_fleet_provider_state st;
    struct seen *next;
};

enum hold_kind { HOLD_KEY, HOLD_PROVIDER };

struct lx_fleet_hold {
    struct lx_fleet *f;             /* borrowed */
    enum hold_kind kind;
    char *name;                     /* owned: key or provider name ("" for anonymous clients) */
    char *k_rate;                   /* owned: key:NAME:rate, or provider:NAME:breaker */
    char *k_count;                  /* owned: key:NAME:inflight / anon:inflight, or provider:NAME:slots */
    struct lx_fleet_key key;        /* HOLD_KEY: the limits (name borrowed from ->name) */
    struct lx_fleet_provider prov;  /* HOLD_PROVIDER (name borrowed from ->name) */
    void (*key_cb)(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_admission *a);
    void (*prov_cb)(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_grant *g);
    void *arg;
    uint64_t deadline_ms;           /* the caller's verdict is due by then */
    bool waiting;                   /* on f->waiting: the caller waits for the verdict */
    bool in_flight;                 /* the admission's command has not answered yet */
    bool redis_counted;             /* Redis admitted it: its request token, reserve and unit are taken */
    bool used;                      /* the caller went ahead with it (ADMITTED seen, or lx_fleet_local) */
    struct share *share;            /* borrowed: set while it counts in this replica's share */
    uint64_t epoch;                 /* f->epoch when it was counted without Redis */
    bool finished;                  /* given back; freed once the admission answered */
    long used_tokens;
    enum lx_fleet_outcome outcome;
    struct lx_fleet_hold *wprev, *wnext; /* f->waiting */
    struct lx_fleet_hold *prev, *next;   /* f->holds: every live hold */
};

struct lx_fleet {
    struct lx_redis *r;             /* owned */
    char *prefix;                   /* owned */
    char *replica;                  /* owned */
    char *k_replicas;               /* owned */
    long timeout_ms, lease_ms, answer_ms;
    bool fail_closed;
    struct share *shares;           /* owned */
    uint64_t epoch;                 /* heartbeats sent */
    long replicas;
    struct lx_timer *beat_timer;    /* owned */
    struct lx_timer *wait_timer;    /* owned: the first waiter's deadline */
    struct lx_fleet_hold *waiting, *waiting_tail; /* by deadline (one timeout for all: FIFO) */
    struct lx_fleet_hold *holds;    /* owned */
    struct seen *seen;              /* owned */
    char **watch;                   /* owned: providers the heartbeat reads */
    size_t n_watch;
    unsigned long long unavailable[2], local[2];
    void (*leave_cb)(void *arg);
    void *leave_arg;
};

/* ---- this replica's share ---- */

static struct share *share_get(struct lx_fleet *f, const char *key)
{
    for (struct share *s = f->shares; s; s = s->next)
        if (strcmp(s->key, key) == 0)
            return s;
    struct share *s = lx_calloc(1, sizeof *s);
    s->key = lx_strdup(key);
    s->next = f->shares;
    f->shares = s;
    return s;
}

static void count_hold(struct lx_fleet_hold *h)
{
    if (h->share)
        return;
    h->share = share_get(h->f, h->k_count);
    h->share->n++;
}

static void uncount_hold(struct lx_fleet_hold *h)
{
    if (!h->share)
        return;
    h->share->n--;
    h->share = NULL;
}

static bool counts_inflight(const struct lx_fleet_hold *h)
{
    return h->kind == HOLD_KEY ? h->key.max_inflight > 0 : h->prov.max_concurrency > 0;
}

/* ---- commands ---- */

/* FCALL fn with keys then args (NULL-terminated lists). */
static struct lx_redis_cmd *fcall(struct lx_fleet *f, const char *op, const char *fn, lx_redis_cb cb, void *arg,
                                  const char *const *keys, const char *const *args)
{
    size_t nk = 0, na = 0;
    while (keys[nk])
        nk++;
    while (args[na])
        na++;
    const char *argv[16];
    char numkeys[24];
    snprintf(numkeys, sizeof numkeys, "%zu", nk);
    size_t argc = 0;
    argv[argc++] = "FCALL";
    argv[argc++] = fn;
    argv[argc++] = numkeys;
    for (size_t i = 0; i < nk; i++)
        argv[argc++] = keys[i];
    for (size_t i = 0; i < na; i++)
        argv[argc++] = args[i];
    return lx_redis_command(f->r, op, f->answer_ms, cb, arg, (int)argc, argv, NULL);
}

static long elem_long(const struct lx_redis_reply *reply, size_t i)
{
    long long v = 0;
    lx_redis_reply_long(lx_redis_reply_at(reply, i), &v);
    return (long)v;
}

static const char *elem_refused(const struct lx_redis_reply *reply, size_t i)
{
    const char *s = lx_redis_reply_str(lx_redis_reply_at(reply, i), NULL);
    static const char *const known[] = {"requests", "tokens", "inflight", "cooldown", "capacity"};
    for (size_t k = 0; s && k < LX_ARRAY_LEN(known); k++)
        if (strcmp(s, known[k]) == 0)
            return known[k];
    return NULL;
}

/* ---- holds ---- */

static struct lx_fleet_hold *hold_new(struct lx_fleet *f, enum hold_kind kind, const char *name)
{
    struct lx_fleet_hold *h = lx_calloc(1, sizeof *h);
    h->f = f;
    h->kind = kind;
    h->name = lx_strdup(name ? name : "");
    if (kind == HOLD_KEY) {
        h->k_rate = lx_sprintf("%skey:%s:rate", f->prefix, h->name);
        h->k_count = name ? lx_sprintf("%skey:%s:inflight", f->prefix, h->name)
                          : lx_sprintf("%sanon:inflight", f->prefix);
    } else {
        h->k_rate = lx_sprintf("%sprovider:%s:breaker", f->prefix, h->name);
        h->k_count = lx_sprintf("%sprovider:%s:slots", f->prefix, h->name);
    }
    h->next = f->holds;
    if (f->holds)
        f->holds->prev = h;
    f->holds = h;
    return h;
}

static void hold_free(struct lx_fleet_hold *h)
{
    struct lx_fleet *f = h->f;
    if (h->prev)
        h->prev->next = h->next;
    else
        f->holds = h->next;
    if (h->next)
        h->next->prev = h->prev;
    free(h->name);
    free(h->k_rate);
    free(h->k_count);
    free(h);
}

static void wait_unlink(struct lx_fleet_hold *h)
{
    struct lx_fleet *f = h->f;
    if (!h->waiting)
        return;
    if (h->wprev)
        h->wprev->wnext = h->wnext;
    else
        f->waiting = h->wnext;
    if (h->wnext)
        h->wnext->wprev = h->wprev;
    else
        f->waiting_tail = h->wprev;
    h->wprev = h->wnext = NULL;
    h->waiting = false;
}

static void wait_add(struct lx_fleet_hold *h)
{
    struct lx_fleet *f = h->f;
    h->deadline_ms = lx_now_ms() + (uint64_t)f->timeout_ms;
    h->wprev = f->waiting_tail;
    if (f->waiting_tail)
        f->waiting_tail->wnext = h;
    else
        f->waiting = h;
    f->waiting_tail = h;
    h->waiting = true;
    if (!lx_timer_pending(f->wait_timer))
        lx_timer_start(f->wait_timer, f->timeout_ms);
}

static void seen_update(struct lx_fleet *f, const char *name, long inflight, long cooling_ms, long failures,
                        bool has_failures)
{
    struct seen *s = f->seen;
    while (s && strcmp(s->name, name) != 0)
        s = s->next;
    if (!s) {
        s = lx_calloc(1, sizeof *s);
        s->name = lx_strdup(name);
        s->next = f->seen;
        f->seen = s;
    }
    if (inflight >= 0)
        s->st.inflight = inflight;
    s->st.cooling_ms = cooling_ms;
    if (has_failures)
        s->st.failures = failures;
    s->st.seen_ms = lx_now_ms();
}

/* The caller learns the verdict (UNAVAILABLE when reply is NULL). */
static void deliver(struct lx_fleet_hold *h, const struct lx_redis_reply *reply)
{
    wait_unlink(h);
    int kind = h->kind == HOLD_KEY ? 0 : 1;
    if (!reply)
        h->f->unavailable[kind]++;
    if (h->kind == HOLD_KEY) {
        struct lx_fleet_admission a = {.verdict = LX_FLEET_UNAVAILABLE};
        if (reply) {
            a.verdict = elem_long(reply, 0) == 1 ? LX_FLEET_ADMITTED : LX_FLEET_REFUSED;
            a.refused = a.verdict == LX_FLEET_REFUSED ? elem_refused(reply, 1) : NULL;
            a.remaining_requests = elem_long(reply, 2);
            a.reset_requests_ms = elem_long(reply, 3);
            a.remaining_tokens = elem_long(reply, 4);
            a.reset_tokens_ms = elem_long(reply, 5);
            a.retry_after_ms = elem_long(reply, 6);
            a.inflight = elem_long(reply, 7);
        }
        if (a.verdict == LX_FLEET_ADMITTED)
            h->used = true;
        h->key_cb(h->arg, h, &a);
    } else {
        struct lx_fleet_grant g = {.verdict = LX_FLEET_UNAVAILABLE};
        if (reply) {
            g.verdict = elem_long(reply, 0) == 1 ? LX_FLEET_ADMITTED : LX_FLEET_REFUSED;
            g.refused = g.verdict == LX_FLEET_REFUSED ? elem_refused(reply, 1) : NULL;
            g.cooling_ms = elem_long(reply, 2);
            g.inflight = elem_long(reply, 3);
        }
        if (g.verdict == LX_FLEET_ADMITTED)
            h->used = true;
        h->prov_cb(h->arg, h, &g);
    }
}

static void settle(struct lx_fleet_hold *h);

static void admission_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    struct lx_fleet_hold *h = arg;
    struct lx_fleet *f = h->f;
    bool answered = st == LX_REDIS_OK && lx_redis_reply_count(reply) >= 4;
    if (answered && elem_long(reply, 0) == 1) {
        h->redis_counted = true;
        if (counts_inflight(h))
            count_hold(h);
    }
    if (answered && h->kind == HOLD_PROVIDER) /* inflight -1: not counted, the last seen count stays */
        seen_update(f, h->name, elem_long(reply, 3), elem_long(reply, 2), 0, false);
    if (h->waiting)
        deliver(h, answered ? reply : NULL); /* the caller may give h back here: it is settled below */
    h->in_flight = false;
    if (h->finished)
        settle(h);
}

static void finish_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    struct lx_fleet_hold *h = arg;
    if (st == LX_REDIS_OK && h->kind == HOLD_PROVIDER && lx_redis_reply_count(reply) >= 3) {
        long cooling = elem_long(reply, 1);
        if (elem_long(reply, 0) == 1)
            lx_warn("provider %s: %ld failures in a row across the fleet, cooling down for %ld ms", h->name,
                    h->prov.cooldown_failures, h->prov.cooldown_ms);
        seen_update(h->f, h->name, -1, cooling, elem_long(reply, 2), true);
    }
    hold_free(h);
}

/* The hold is given back and its admission has answered: put Redis right, then free it. */
static void settle(struct lx_fleet_hold *h)
{
    struct lx_fleet *f = h->f;
    /* The unit is in Redis when Redis counted it, or when a heartbeat sent after it was counted here
     * asserted it (commands leave in order, so that heartbeat ran before what is sent now). */
    bool unit_in_redis = h->redis_counted || (h->share && f->epoch > h->epoch);
    bool held = counts_inflight(h) && unit_in_redis;
    uncount_hold(h);
    char lease[24], s_held[4];
    snprintf(lease, sizeof lease, "%ld", f->lease_ms);
    snprintf(s_held, sizeof s_held, "%d", held ? 1 : 0);
    if (h->kind == HOLD_KEY) {
        long reserved = h->redis_counted ? h->key.reserve : 0;
        bool unused = h->redis_counted && !h->used;
        long used = h->used_tokens;
        bool tokens = h->key.tpm > 0 && used != reserved;
        if (!held && !tokens && !(unused && h->key.rpm > 0)) {
            hold_free(h);
            return;
        }
        char rpm[24], tpm[24], s_res[24], s_used[24];
        snprintf(rpm, sizeof rpm, "%ld", h->key.rpm);
        snprintf(tpm, sizeof tpm, "%ld", h->key.tpm);
        snprintf(s_res, sizeof s_res, "%ld", reserved);
        snprintf(s_used, sizeof s_used, "%ld", used);
        const char *keys[] = {f->k_replicas, h->k_rate, h->k_count, NULL};
        const char *args[] = {f->replica, lease, rpm, tpm, s_res, s_used, s_held, unused ? "1" : "0", NULL};
        fcall(f, "finish", LX_FLEET_FN("finish"), NULL, NULL, keys, args);
        hold_free(h);
        return;
    }
    bool report = h->prov.cooldown_failures > 0 && h->outcome != LX_FLEET_OUTCOME_NONE;
    if (!held && !report) {
        hold_free(h);
        return;
    }
    char thr[24], period[24];
    snprintf(thr, sizeof thr, "%ld", h->prov.cooldown_failures);
    snprintf(period, sizeof period, "%ld", h->prov.cooldown_ms);
    const char *outcome = h->outcome == LX_FLEET_OUTCOME_OK ? "ok" : h->outcome == LX_FLEET_OUTCOME_FAIL ? "fail" : "none";
    const char *keys[] = {f->k_replicas, h->k_count, h->k_rate, NULL};
    const char *args[] = {f->replica, lease, s_held, outcome, thr, period, NULL};
    /* The hold lives until the answer, which updates the provider's state seen here. */
    if (!fcall(f, "provider_release", LX_FLEET_FN("provider_release"), finish_cb, h, keys, args))
        hold_free(h);
}

static void give_back(struct lx_fleet_hold *h)
{
    wait_unlink(h);
    h->finished = true;
    if (!h->in_flight)
        settle(h);
}

static void wait_timer_cb(void *arg)
{
    struct lx_fleet *f = arg;
    uint64_t now = lx_now_ms();
    while (f->waiting && f->waiting->deadline_ms <= now)
        deliver(f->waiting, NULL);
    if (f->waiting)
        lx_timer_start(f->wait_timer, (long)(f->waiting->deadline_ms - now));
}

struct lx_fleet_hold *lx_fleet_admit(struct lx_fleet *f, const struct lx_fleet_key *k,
                                     void (*cb)(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_admission *a),
                                     void *arg)
{
    struct lx_fleet_hold *h = hold_new(f, HOLD_KEY, k->name);
    h->key = *k;
    h->key.name = k->name ? h->name : NULL;
    if (h->key.reserve < 0)
        h->key.reserve = 0;
    h->key_cb = cb;
    h->arg = arg;
    char lease[24], rpm[24], tpm[24], reserve[24], maxi[24];
    snprintf(lease, sizeof lease, "%ld", f->lease_ms);
    snprintf(rpm, sizeof rpm, "%ld", k->rpm);
    snprintf(tpm, sizeof tpm, "%ld", k->tpm);
    snprintf(reserve, sizeof reserve, "%ld", h->key.reserve);
    snprintf(maxi, sizeof maxi, "%ld", k->max_inflight);
    const char *keys[] = {f->k_replicas, h->k_rate, h->k_count, NULL};
    const char *args[] = {f->replica, lease, rpm, tpm, reserve, maxi, NULL};
    wait_add(h);
    h->in_flight = true;
    fcall(f, "admit", LX_FLEET_FN("admit"), admission_cb, h, keys, args);
    return h;
}

void lx_fleet_local(struct lx_fleet_hold *h)
{
    if (h->used)
        return;
    h->used = true;
    h->f->local[h->kind == HOLD_KEY ? 0 : 1]++;
    if (counts_inflight(h) && !h->share) {
        count_hold(h);
        h->epoch = h->f->epoch;
    }
}

void lx_fleet_finish(struct lx_fleet_hold *h, long used_tokens)
{
    h->used_tokens = used_tokens > 0 ? used_tokens : 0;
    give_back(h);
}

struct lx_fleet_hold *lx_fleet_acquire(struct lx_fleet *f, const struct lx_fleet_provider *p,
                                       void (*cb)(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_grant *g),
                                       void *arg)
{
    struct lx_fleet_hold *h = hold_new(f, HOLD_PROVIDER, p->name);
    h->prov = *p;
    h->prov.name = h->name;
    h->prov_cb = cb;
    h->arg = arg;
    char lease[24], maxc[24];
    snprintf(lease, sizeof lease, "%ld", f->lease_ms);
    snprintf(maxc, sizeof maxc, "%ld", p->max_concurrency);
    const char *keys[] = {f->k_replicas, h->k_count, h->k_rate, NULL};
    const char *args[] = {f->replica, lease, maxc, NULL};
    wait_add(h);
    h->in_flight = true;
    fcall(f, "provider_acquire", LX_FLEET_FN("provider_acquire"), admission_cb, h, keys, args);
    return h;
}

void lx_fleet_release(struct lx_fleet_hold *h, enum lx_fleet_outcome outcome)
{
    h->outcome = outcome;
    give_back(h);
}

/* ---- heartbeat ---- */

static void state_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    struct lx_fleet *f = arg;
    if (st != LX_REDIS_OK)
        return;
    for (size_t i = 0; i < f->n_watch && 1 + 3 * i + 2 < lx_redis_reply_count(reply); i++)
        seen_update(f, f->watch[i], elem_long(reply, 1 + 3 * i), elem_long(reply, 2 + 3 * i),
                    elem_long(reply, 3 + 3 * i), true);
}

static void beat_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    struct lx_fleet *f = arg;
    if (st == LX_REDIS_OK)
        f->replicas = elem_long(reply, 0);
}

static void read_provider_state(struct lx_fleet *f)
{
    if (!f->n_watch)
        return;
    size_t argc = 0, n = 4 + 2 * f->n_watch;
    const char **argv = lx_calloc(n, sizeof *argv);
    char **owned = lx_calloc(2 * f->n_watch, sizeof *owned);
    char numkeys[24];
    snprintf(numkeys, sizeof numkeys, "%zu", 1 + 2 * f->n_watch);
    argv[argc++] = "FCALL_RO";
    argv[argc++] = LX_FLEET_FN("provider_state");
    argv[argc++] = numkeys;
    argv[argc++] = f->k_replicas;
    for (size_t i = 0; i < f->n_watch; i++) {
        owned[2 * i] = lx_sprintf("%sprovider:%s:slots", f->prefix, f->watch[i]);
        owned[2 * i + 1] = lx_sprintf("%sprovider:%s:breaker", f->prefix, f->watch[i]);
        argv[argc++] = owned[2 * i];
        argv[argc++] = owned[2 * i + 1];
    }
    lx_redis_command(f->r, "provider_state", f->answer_ms, state_cb, f, (int)argc, argv, NULL);
    for (size_t i = 0; i < 2 * f->n_watch; i++)
        free(owned[i]);
    free(owned);
    free(argv);
}

/* FCALL heartbeat with every share. In the handshake, or as an ordinary command when READY. lease 0:
 * leave (every field of this replica goes). */
static void send_heartbeat(struct lx_fleet *f, bool handshake, long lease_ms, lx_redis_cb cb, void *cb_arg)
{
    size_t n = 0;
    for (struct share *s = f->shares; s; s = s->next)
        n++;
    size_t argc = 0;
    const char **argv = lx_calloc(6 + 2 * n, sizeof *argv);
    char **nums = lx_calloc(n + 2, sizeof *nums);
    nums[n] = lx_sprintf("%zu", n + 1);
    nums[n + 1] = lx_sprintf("%ld", lease_ms);
    argv[argc++] = "FCALL";
    argv[argc++] = LX_FLEET_FN("heartbeat");
    argv[argc++] = nums[n];
    argv[argc++] = f->k_replicas;
    for (struct share *s = f->shares; s; s = s->next)
        argv[argc++] = s->key;
    argv[argc++] = f->replica;
    argv[argc++] = nums[n + 1];
    size_t i = 0;
    for (struct share *s = f->shares; s; s = s->next, i++) {
        nums[i] = lx_sprintf("%ld", lease_ms > 0 ? s->n : 0);
        argv[argc++] = nums[i];
    }
    if (handshake)
        lx_redis_handshake_command(f->r, "heartbeat", cb, cb_arg, (int)argc, argv, NULL);
    else
        lx_redis_command(f->r, "heartbeat", f->answer_ms, cb, cb_arg, (int)argc, argv, NULL);
    for (size_t k = 0; k < n + 2; k++)
        free(nums[k]);
    free(nums);
    free(argv);
    f->epoch++;
}

static void beat_timer_cb(void *arg)
{
    struct lx_fleet *f = arg;
    if (lx_redis_ready(f->r)) {
        send_heartbeat(f, false, f->lease_ms, beat_cb, f);
        read_provider_state(f);
    }
    lx_timer_start(f->beat_timer, f->lease_ms / 3);
}

/* After FUNCTION LOAD (lx_redis_keep_library): the replica's heartbeat is part of every handshake. */
static void handshake(void *arg, struct lx_redis *r)
{
    (void)r;
    struct lx_fleet *f = arg;
    send_heartbeat(f, true, f->lease_ms, beat_cb, f);
}

/* ---- the fleet ---- */

static char *make_replica_id(void)
{
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    for (char *p = host; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == ':')
            *p = '_';
    unsigned char rnd[4] = {0};
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        uint64_t t = lx_now_ms();
        memcpy(rnd, &t, sizeof rnd);
    }
    return lx_sprintf("%s-%d-%02x%02x%02x%02x", *host ? host : "llmux", (int)getpid(), rnd[0], rnd[1], rnd[2], rnd[3]);
}

struct lx_fleet *lx_fleet_new(const struct lx_redis_conf *conf, const char *replica_id)
{
    struct lx_fleet *f = lx_calloc(1, sizeof *f);
    f->prefix = lx_strdup(conf->prefix ? conf->prefix : "llmux:");
    f->replica = replica_id ? lx_strdup(replica_id) : make_replica_id();
    f->k_replicas = lx_sprintf("%sreplicas", f->prefix);
    f->timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 50;
    f->lease_ms = conf->lease_ms >= 300 ? conf->lease_ms : 15000;
    f->answer_ms = conf->connect_timeout_ms > f->timeout_ms ? conf->connect_timeout_ms : f->timeout_ms;
    f->fail_closed = conf->fail_closed;
    f->beat_timer = lx_timer_new(beat_timer_cb, f);
    f->wait_timer = lx_timer_new(wait_timer_cb, f);
    f->r = lx_redis_new(conf);
    lx_redis_keep_library(f->r, LX_FLEET_LIBRARY, lx_fleet_lua);
    lx_redis_set_handshake(f->r, handshake, f);
    lx_timer_start(f->beat_timer, f->lease_ms / 3);
    return f;
}

static void leave_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    (void)st;
    (void)reply;
    struct lx_fleet *f = arg;
    void (*cb)(void *) = f->leave_cb;
    f->leave_cb = NULL;
    if (cb)
        cb(f->leave_arg);
}

void lx_fleet_leave(struct lx_fleet *f, void (*cb)(void *arg), void *arg)
{
    f->leave_cb = cb;
    f->leave_arg = arg;
    lx_timer_stop(f->beat_timer);
    send_heartbeat(f, false, 0, leave_cb, f);
}

void lx_fleet_free(struct lx_fleet *f)
{
    if (!f)
        return;
    lx_redis_free(f->r); /* no callback runs: the holds still waiting for answers go below */
    while (f->holds)
        hold_free(f->holds);
    while (f->shares) {
        struct share *s = f->shares;
        f->shares = s->next;
        free(s->key);
        free(s);
    }
    while (f->seen) {
        struct seen *s = f->seen;
        f->seen = s->next;
        free(s->name);
        free(s);
    }
    for (size_t i = 0; i < f->n_watch; i++)
        free(f->watch[i]);
    free(f->watch);
    lx_timer_free(f->beat_timer);
    lx_timer_free(f->wait_timer);
    free(f->prefix);
    free(f->replica);
    free(f->k_replicas);
    free(f);
}

struct lx_redis *lx_fleet_redis(struct lx_fleet *f)
{
    return f->r;
}

const char *lx_fleet_replica(const struct lx_fleet *f)
{
    return f->replica;
}

bool lx_fleet_fail_closed(const struct lx_fleet *f)
{
    return f->fail_closed;
}

long lx_fleet_replicas(const struct lx_fleet *f)
{
    return f->replicas;
}

unsigned long long lx_fleet_unavailable(const struct lx_fleet *f, const char *feature)
{
    return f->unavailable[strcmp(feature, "keys") == 0 ? 0 : 1];
}

unsigned long long lx_fleet_fallbacks(const struct lx_fleet *f, const char *feature)
{
    return f->local[strcmp(feature, "keys") == 0 ? 0 : 1];
}

bool lx_fleet_provider_seen(const struct lx_fleet *f, const char *name, struct lx_fleet_provider_state *out)
{
    for (const struct seen *s = f->seen; s; s = s->next) {
        if (strcmp(s->name, name) != 0)
            continue;
        *out = s->st;
        uint64_t age = lx_now_ms() - s->st.seen_ms;
        out->cooling_ms = s->st.cooling_ms > (long)age ? s->st.cooling_ms - (long)age : 0;
        return true;
    }
    return false;
}

void lx_fleet_watch_providers(struct lx_fleet *f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < f->n_watch; i++)
        free(f->watch[i]);
    free(f->watch);
    f->watch = n ? lx_calloc(n, sizeof *f->watch) : NULL;
    for (size_t i = 0; i < n; i++)
        f->watch[i] = lx_strdup(names[i]);
    f->n_watch = n;
}
