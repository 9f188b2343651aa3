/* Fleet-wide limits and provider state, shared by every llmux replica through one Redis: the llmux_v1
 * function library (src/fleet.lua) and the calls made to it. Client keys' rpm, tpm and in-flight counts
 * are admitted in one atomic call per request and settled when it ends; providers' max_concurrency slots
 * and cooldown breaker are taken and reported per call. In src/io/ (it includes io/redis.h only), so
 * that server/auth and engine/capacity can both use it.
 *
 * A hold is one request's (or one call's) place in the fleet's accounting. The caller gets it from an
 * admission, learns the verdict from a callback, and gives it back when the request ends: whatever the
 * verdict, whatever the timing. Holds make the counts exact when Redis answers late or a client leaves
 * while its admission is in flight: the answer is always awaited (up to connect_timeout_ms, when the
 * connection is dropped), and an admission nobody used any more is undone in Redis.
 *
 * Each replica keeps its own in-flight counts (those admitted by Redis and those admitted on local
 * counters while Redis was away) and re-asserts them with a heartbeat every lease_ms / 3 and on every
 * connect, so the fleet's counts heal after a lost command, a lost connection or a Redis restart.
 *
 * Threads: the loop thread only. Callbacks never run from inside the call that started them. */
#ifndef LX_FLEET_H
#define LX_FLEET_H

#include "redis.h"

#include <stdbool.h>
#include <stddef.h>

struct lx_fleet;
struct lx_fleet_hold;

/* The function names carry the library's version (see fleet.lua). */
#define LX_FLEET_LIBRARY "llmux_v1"
#define LX_FLEET_FN(name) LX_FLEET_LIBRARY "_" name

/* Connect to conf's Redis; replica_id NULL makes a random one. The library is loaded and the counts
 * asserted on every connect. */
struct lx_fleet *lx_fleet_new(const struct lx_redis_conf *conf, const char *replica_id);
/* Only once every hold was given back (drained). Commands still in flight are dropped. */
void lx_fleet_free(struct lx_fleet *f);
/* Leave the fleet (at shutdown, once drained): this replica's lease and counts are removed; cb runs once
 * Redis answered or could not (at most connect_timeout_ms). */
void lx_fleet_leave(struct lx_fleet *f, void (*cb)(void *arg), void *arg);

struct lx_redis *lx_fleet_redis(struct lx_fleet *f);
const char *lx_fleet_replica(const struct lx_fleet *f);
bool lx_fleet_fail_closed(const struct lx_fleet *f);
/* Live replicas as of the last heartbeat (0 before the first answer). */
long lx_fleet_replicas(const struct lx_fleet *f);
/* Admissions that could not be decided in Redis (it was away or late), by feature: "keys" or
 * "providers"; and how many of those the callers then let through on local counters (fail open). */
unsigned long long lx_fleet_unavailable(const struct lx_fleet *f, const char *feature);
unsigned long long lx_fleet_fallbacks(const struct lx_fleet *f, const char *feature);

/* What Redis answered, or could not. */
enum lx_fleet_verdict {
    LX_FLEET_ADMITTED,    /* counted fleet-wide: the caller may go ahead */
    LX_FLEET_REFUSED,     /* a limit is reached fleet-wide (refused says which) */
    LX_FLEET_UNAVAILABLE, /* Redis did not answer in time (or is down): the caller's fail mode decides */
};

/* ---- client keys ---- */

struct lx_fleet_key {
    const char *name;   /* the client key's name; NULL = clients without a key (in-flight only) */
    long rpm, tpm;      /* 0 = no such limit */
    long max_inflight;  /* limits.max_inflight_per_key; 0 = none */
    long reserve;       /* tokens held back at admission for the answer (see docs/scale-out.md) */
};

struct lx_fleet_admission {
    enum lx_fleet_verdict verdict;
    const char *refused;       /* static: "requests", "tokens" or "inflight"; NULL unless REFUSED */
    long remaining_requests;   /* after this admission, fleet-wide (may be below 0 for tokens) */
    long reset_requests_ms;    /* until the rpm bucket is full again */
    long remaining_tokens;
    long reset_tokens_ms;
    long retry_after_ms;       /* REFUSED: when the refused bucket has room again */
    long inflight;             /* the key's requests in flight fleet-wide, this one included */
};

/* Admit one request. cb runs once, from the loop, within timeout_ms (UNAVAILABLE then), unless the hold
 * is given back first. The hold must be given back with lx_fleet_finish in every case. */
struct lx_fleet_hold *lx_fleet_admit(struct lx_fleet *f, const struct lx_fleet_key *k,
                                     void (*cb)(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_admission *a),
                                     void *arg);
/* After UNAVAILABLE: the caller admitted the request on this replica's own counters (fail open). It is
 * counted in this replica's share from now on, and its tokens are charged in Redis when it finishes. */
void lx_fleet_local(struct lx_fleet_hold *h);
/* The request is over (or never ran, or its client left before the verdict: then used = 0). Settles the
 * reserve against used and gives the in-flight unit back. h is gone after this call; no callback follows. */
void lx_fleet_finish(struct lx_fleet_hold *h, long used_tokens);

/* ---- providers ---- */

struct lx_fleet_provider {
    const char *name;
    long max_concurrency;   /* 0 = no fleet-wide cap (only the cooldown is read) */
    long cooldown_failures; /* the breaker's threshold; 0 = no breaker */
    long cooldown_ms;
};

struct lx_fleet_grant {
    enum lx_fleet_verdict verdict;
    const char *refused;    /* static: "cooldown" or "capacity"; NULL unless REFUSED */
    long cooling_ms;        /* cooldown: how long the provider stays skipped */
    long inflight;          /* calls in flight fleet-wide, this one included when ADMITTED; -1 when not
                               counted (no max_concurrency, or refused for the cooldown) */
};

/* Ask for a call slot (and check the cooldown). Same rules as lx_fleet_admit. */
struct lx_fleet_hold *lx_fleet_acquire(struct lx_fleet *f, const struct lx_fleet_provider *p,
                                       void (*cb)(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_grant *g),
                                       void *arg);
/* How the call went, for the breaker. */
enum lx_fleet_outcome { LX_FLEET_OUTCOME_NONE, LX_FLEET_OUTCOME_OK, LX_FLEET_OUTCOME_FAIL };
/* The call ended (or never started: NONE). Gives the slot back and reports the outcome. */
void lx_fleet_release(struct lx_fleet_hold *h, enum lx_fleet_outcome outcome);

/* The provider's fleet-wide state as last seen (from the last call's answer or heartbeat): for
 * /v1/providers and /metrics. false when nothing was seen yet. */
struct lx_fleet_provider_state {
    long inflight;
    long cooling_ms;      /* at the time it was seen, minus the time since */
    long failures;
    uint64_t seen_ms;     /* lx_now_ms when it was read */
};
bool lx_fleet_provider_seen(const struct lx_fleet *f, const char *name, struct lx_fleet_provider_state *out);
/* Providers whose state the heartbeat reads (the configured ones; call again after a reload). */
void lx_fleet_watch_providers(struct lx_fleet *f, const char *const *names, size_t n);

#endif
