/* Client-key limits: this replica's token buckets and in-flight counts, the fleet-wide admission through
 * Redis with its fail modes, the reserve-then-settle of tokens, and the x-ratelimit-* headers.
 *
 * Callback contexts: the fleet's verdict arrives from a loop callback (io/fleet.c), never from inside
 * lx_ratelimit_admit; a pending admission is the request's handler until then, so a client that leaves
 * or a request that runs out of time gives its hold back from on_abort. */
#include "ratelimit.h"
#include "auth.h"
#include "conf.h"
#include "req.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/log.h"
#include "../io/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The live side of a key on this replica, found by name. Never freed before lx_ratelimit_shutdown, so
 * requests may point at it across reloads. The nameless one counts clients without a key. */
struct lx_key_state {
    char *name;             /* owned */
    double req_tokens;      /* rpm bucket */
    double tok_tokens;      /* tpm bucket; below zero after answers longer than their reserve */
    double t_req, t_tok;    /* lx_now_ms_f of the last refill; 0 = never (the bucket starts full) */
    long inflight;
    struct lx_key_state *next;
};

static struct lx_key_state *lx_key_states;
static struct lx_fleet *lx_rl_fleet;   /* borrowed from main.c, or NULL */
static bool lx_rl_degraded;            /* a fallback was logged and no admission was decided in Redis since */
static uint64_t lx_rl_warned_ms;       /* when the last fallback warning was logged (one per 30 s at most) */

void lx_ratelimit_share(struct lx_fleet *f)
{
    lx_rl_fleet = f;
}

static struct lx_key_state *key_state(const char *name)
{
    for (struct lx_key_state *s = lx_key_states; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    struct lx_key_state *s = lx_calloc(1, sizeof *s);
    s->name = lx_strdup(name);
    s->next = lx_key_states;
    lx_key_states = s;
    return s;
}

void lx_ratelimit_shutdown(void)
{
    while (lx_key_states) {
        struct lx_key_state *s = lx_key_states;
        lx_key_states = s->next;
        free(s->name);
        free(s);
    }
}

/* ---- the reserve ---- */

static bool is_budget_key(const char *key)
{
    return strcmp(key, "max_tokens") == 0 || strcmp(key, "max_completion_tokens") == 0 ||
           strcmp(key, "max_output_tokens") == 0;
}

static void walk(json_t *v, size_t *chars, long *budget, bool *found, int depth)
{
    if (depth > 64)
        return;
    if (json_is_string(v)) {
        if (strncmp(json_string_value(v), "data:", 5) != 0)
            *chars += json_string_length(v);
    } else if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child) {
            if (is_budget_key(key) && json_is_integer(child) && json_integer_value(child) > 0) {
                json_int_t n = json_integer_value(child);
                *budget = n > 100000000 - *budget ? 100000000 : *budget + (long)n;
                *found = true;
            } else {
                walk(child, chars, budget, found, depth + 1);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child) walk(child, chars, budget, found, depth + 1);
    }
}

long lx_ratelimit_reserve(const struct lx_req *req, long default_max_tokens)
{
    bool embeddings = req->route && strcmp(req->route, "/v1/embeddings") == 0;
    if (!req->body.len)
        return 0;
    json_t *root = json_loadb(req->body.data, req->body.len, 0, NULL);
    if (!root)
        return default_max_tokens;
    size_t chars = 0;
    long budget = 0;
    bool found = false;
    walk(root, &chars, &budget, &found, 0);
    json_decref(root);
    if (!found)
        budget = embeddings ? 0 : default_max_tokens;
    return (long)((chars + 3) / 4) + budget;
}

/* ---- answers ---- */

const char *lx_ratelimit_reset_str(long ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000) {
        snprintf(buf, len, "%ldms", ms);
    } else if (ms < 60000) {
        long tenths = (ms + 99) / 100;
        if (tenths % 10)
            snprintf(buf, len, "%ld.%lds", tenths / 10, tenths % 10);
        else
            snprintf(buf, len, "%lds", tenths / 10);
    } else {
        long s = (ms + 999) / 1000;
        if (s >= 3600)
            snprintf(buf, len, "%ldh%ldm%lds", s / 3600, s / 60 % 60, s % 60);
        else
            snprintf(buf, len, "%ldm%lds", s / 60, s % 60);
    }
    return buf;
}

static void budget_headers(struct lx_req *req, const char *what, long limit, long remaining, long reset_ms)
{
    char name[48], v[32];
    snprintf(name, sizeof name, "x-ratelimit-limit-%s", what);
    snprintf(v, sizeof v, "%ld", limit);
    lx_req_add_header(req, name, v);
    snprintf(name, sizeof name, "x-ratelimit-remaining-%s", what);
    snprintf(v, sizeof v, "%ld", remaining > 0 ? remaining : 0);
    lx_req_add_header(req, name, v);
    snprintf(name, sizeof name, "x-ratelimit-reset-%s", what);
    lx_req_add_header(req, name, lx_ratelimit_reset_str(reset_ms, v, sizeof v));
}

/* OpenAI's headers (its SDKs and LiteLLM read them): what is left of the key's budgets after this request. */
static void add_headers(struct lx_req *req, const struct lx_auth_key *k, const struct lx_fleet_admission *a)
{
    if (k && k->rpm)
        budget_headers(req, "requests", k->rpm, a->remaining_requests, a->reset_requests_ms);
    if (k && k->tpm)
        budget_headers(req, "tokens", k->tpm, a->remaining_tokens, a->reset_tokens_ms);
}

static void refusal(struct lx_error *err, const struct lx_auth_key *k, const struct lx_fleet_admission *a)
{
    if (a->refused && strcmp(a->refused, "inflight") == 0) {
        lx_error_set(err, 429, "rate_limit_error", NULL, "too_many_inflight",
                     "Key '%s' already has %ld requests in progress (limits.max_inflight_per_key); try again when "
                     "one finishes.", k ? k->name : "(anonymous)", a->inflight);
        err->retry_after = lx_strdup("1");
        return;
    }
    bool tokens = a->refused && strcmp(a->refused, "tokens") == 0;
    long s = (a->retry_after_ms + 999) / 1000; /* round up: a client that waits Retry-After seconds gets in */
    if (s < 1)
        s = 1;
    lx_error_set(err, 429, "rate_limit_error", NULL, "rate_limit_exceeded",
                 "Rate limit reached for key '%s': %ld %s per minute. Try again in %ld s.", k ? k->name : "",
                 k ? (tokens ? k->tpm : k->rpm) : 0, tokens ? "tokens" : "requests", s);
    err->retry_after = lx_sprintf("%ld", s);
}

/* ---- this replica's counters ---- */

static void refill(double *tokens, double *t, long per_minute, double now)
{
    if (*t == 0) {
        *tokens = (double)per_minute;
    } else {
        *tokens += (now - *t) * (double)per_minute / 60000.0;
        if (*tokens > (double)per_minute)
            *tokens = (double)per_minute;
    }
    *t = now;
}

static long full_in_ms(double tokens, long limit)
{
    return limit > 0 && tokens < (double)limit ? (long)(((double)limit - tokens) * 60000.0 / (double)limit + 0.999) : 0;
}

/* The same rule as fleet.lua's admit, on this replica's buckets. force: take without checking (Redis
 * admitted it: these counters only follow). */
static void local_decide(struct lx_key_state *s, const struct lx_auth_key *k, long max_inflight, long reserve,
                         bool force, struct lx_fleet_admission *a)
{
    memset(a, 0, sizeof *a);
    double now = lx_now_ms_f();
    long rpm = k ? k->rpm : 0, tpm = k ? k->tpm : 0;
    if (rpm)
        refill(&s->req_tokens, &s->t_req, rpm, now);
    if (tpm)
        refill(&s->tok_tokens, &s->t_tok, tpm, now);
    double need = (double)(reserve < tpm ? reserve : tpm);
    if (need < 1)
        need = 1;
    a->verdict = LX_FLEET_ADMITTED;
    if (!force && max_inflight && s->inflight >= max_inflight) {
        a->refused = "inflight";
        a->retry_after_ms = 1000;
    } else if (!force && rpm && s->req_tokens < 1.0) {
        a->refused = "requests";
        a->retry_after_ms = (long)((1.0 - s->req_tokens) * 60000.0 / (double)rpm + 0.999);
    } else if (!force && tpm && s->tok_tokens < need) {
        a->refused = "tokens";
        a->retry_after_ms = (long)((need - s->tok_tokens) * 60000.0 / (double)tpm + 0.999);
    }
    if (a->refused) {
        a->verdict = LX_FLEET_REFUSED;
    } else {
        if (rpm)
            s->req_tokens -= 1.0;
        if (tpm)
            s->tok_tokens -= (double)reserve;
        s->inflight++;
    }
    a->remaining_requests = (long)s->req_tokens;
    a->reset_requests_ms = full_in_ms(s->req_tokens, rpm);
    a->remaining_tokens = (long)s->tok_tokens;
    a->reset_tokens_ms = full_in_ms(s->tok_tokens, tpm);
    a->inflight = s->inflight;
}

/* ---- fleet-wide admission ---- */

struct pending {
    struct lx_req_handler h;    /* the request's handler while Redis decides */
    struct lx_req *req;         /* held */
    const struct lx_auth_key *k;
    struct lx_key_state *s;
    long max_inflight;
    struct lx_fleet_hold *hold; /* given back here unless handed to the request */
    void (*then)(struct lx_req *req, const struct lx_error *refusal);
};

static void pending_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    (void)why; /* before any answer: req.c answers a timeout itself */
    struct pending *p = LX_CONTAINER_OF(h, struct pending, h);
    lx_fleet_finish(p->hold, 0);
    req->tpm_reserve = 0;
    free(p);
    lx_req_release(req);
}

static void pending_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)h;
    (void)req;
}

static void unavailable_error(struct lx_error *err)
{
    lx_error_set(err, 503, "service_unavailable", NULL, "rate_limit_unavailable",
                 "The fleet's shared rate limits (Redis) cannot be checked right now and redis.fail_mode is "
                 "\"closed\"; try again shortly.");
    err->retry_after = lx_strdup("1");
}

/* Logged once per outage, and at most every 30 s when Redis keeps answering late now and then (the
 * metrics count every one). */
static void note_unavailable(bool closed)
{
    uint64_t now = lx_now_ms();
    if (lx_rl_degraded || (lx_rl_warned_ms && now - lx_rl_warned_ms < 30000))
        return;
    lx_rl_degraded = true;
    lx_rl_warned_ms = now;
    const struct lx_redis *r = lx_fleet_redis(lx_rl_fleet);
    char why[96];
    if (lx_redis_ready(r))
        snprintf(why, sizeof why, "no answer within redis.timeout_ms, %ld ms", lx_redis_conf(r)->timeout_ms);
    else
        snprintf(why, sizeof why, "the connection is %s", lx_redis_state_name(lx_redis_state(r)));
    lx_warn("redis: client-key limits cannot be decided in Redis (%s); %s", why,
            closed ? "refusing limited requests with 503 (redis.fail_mode \"closed\")"
                   : "each replica falls back to its own counters (redis.fail_mode \"open\")");
}

static void verdict_cb(void *arg, struct lx_fleet_hold *hold, const struct lx_fleet_admission *a)
{
    struct pending *p = arg;
    struct lx_req *req = p->req;
    lx_req_set_handler(req, NULL);
    struct lx_error err = {0};
    bool go = false;
    if (a->verdict != LX_FLEET_UNAVAILABLE && lx_rl_degraded) {
        lx_rl_degraded = false;
        lx_info("redis: client-key limits are decided fleet-wide again");
    }
    if (a->verdict == LX_FLEET_ADMITTED) {
        struct lx_fleet_admission mine;
        local_decide(p->s, p->k, p->max_inflight, req->tpm_reserve, true, &mine);
        add_headers(req, p->k, a);
        go = true;
    } else if (a->verdict == LX_FLEET_REFUSED) {
        add_headers(req, p->k, a);
        refusal(&err, p->k, a);
    } else if (lx_fleet_fail_closed(lx_rl_fleet)) {
        note_unavailable(true);
        unavailable_error(&err);
    } else {
        note_unavailable(false);
        struct lx_fleet_admission mine;
        local_decide(p->s, p->k, p->max_inflight, req->tpm_reserve, false, &mine);
        add_headers(req, p->k, &mine);
        go = mine.verdict == LX_FLEET_ADMITTED;
        if (go)
            lx_fleet_local(hold);
        else
            refusal(&err, p->k, &mine);
    }
    if (go) {
        req->key_state = p->s;
        req->fleet_hold = hold;
        p->then(req, NULL);
    } else {
        req->tpm_reserve = 0;
        lx_fleet_finish(hold, 0);
        p->then(req, &err); /* the caller answers it, in its API's error shape */
    }
    lx_error_clear(&err);
    free(p);
    lx_req_release(req);
}

int lx_ratelimit_admit(struct lx_req *req, const struct lx_auth_key *k, long default_max_tokens,
                       struct lx_error *err,
                       void (*then)(struct lx_req *req, const struct lx_error *refusal))
{
    long max_inflight = req->cfg->server->limits.max_inflight_per_key;
    if (!k && !max_inflight)
        return LX_OK; /* nothing to count */
    struct lx_key_state *s = key_state(k ? k->name : "");
    req->tpm_reserve = k && k->tpm ? lx_ratelimit_reserve(req, default_max_tokens) : 0;
    bool limited = max_inflight || (k && (k->rpm || k->tpm));
    if (lx_rl_fleet && limited) {
        struct pending *p = lx_calloc(1, sizeof *p);
        p->h.on_abort = pending_abort;
        p->h.on_drain = pending_drain;
        p->req = lx_req_hold(req);
        p->k = k;
        p->s = s;
        p->max_inflight = max_inflight;
        p->then = then;
        struct lx_fleet_key fk = {.name = k ? k->name : NULL, .rpm = k ? k->rpm : 0, .tpm = k ? k->tpm : 0,
                                  .max_inflight = max_inflight, .reserve = req->tpm_reserve};
        lx_req_set_handler(req, &p->h);
        p->hold = lx_fleet_admit(lx_rl_fleet, &fk, verdict_cb, p);
        return LX_AGAIN;
    }
    struct lx_fleet_admission a;
    local_decide(s, k, max_inflight, req->tpm_reserve, false, &a);
    add_headers(req, k, &a);
    if (a.verdict != LX_FLEET_ADMITTED) {
        req->tpm_reserve = 0;
        refusal(err, k, &a);
        return LX_ERR;
    }
    req->key_state = s;
    return LX_OK;
}

void lx_ratelimit_finished(struct lx_req *req)
{
    long used = req->tally.prompt_tokens + req->tally.completion_tokens;
    struct lx_fleet_hold *h = req->fleet_hold;
    req->fleet_hold = NULL;
    if (h)
        lx_fleet_finish(h, used);
    struct lx_key_state *s = req->key_state;
    if (!s)
        return;
    req->key_state = NULL;
    s->inflight--;
    const struct lx_auth_key *k = req->auth_key;
    if (k && k->tpm && used != req->tpm_reserve) {
        refill(&s->tok_tokens, &s->t_tok, k->tpm, lx_now_ms_f());
        s->tok_tokens += (double)(req->tpm_reserve - used);
        if (s->tok_tokens > (double)k->tpm)
            s->tok_tokens = (double)k->tpm;
    }
    req->tpm_reserve = 0;
}
