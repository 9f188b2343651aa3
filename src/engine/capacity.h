/* A provider's live limits: how many calls are in flight against max_concurrency, the FIFO of calls
 * waiting for a slot (each with its own deadline), and the cooldown breaker that skips a provider after
 * too many failures in a row.
 *
 * Live state is kept by provider NAME for the life of the process, apart from any loaded config (as the
 * client keys' counters are, in server/auth.c): after a reload, the calls still running under the old
 * config and the new ones share one count against one max_concurrency, and the breaker keeps its
 * failures. The limits are those of the config applied last (lx_capacity_apply). */
#ifndef LX_CAPACITY_H
#define LX_CAPACITY_H

#include <stdbool.h>

struct lx_capacity;
struct lx_cap_wait;
struct lx_provider_conf;

/* The live state of p's name: found, or made with p's limits. Lives until lx_capacity_shutdown. */
struct lx_capacity *lx_capacity_of(const struct lx_provider_conf *p);
/* p's config takes effect: its max_concurrency and cooldown become the live limits of its name (waiters
 * get the slots a higher limit frees, on a later loop turn). */
void lx_capacity_apply(const struct lx_provider_conf *p);
/* Free every live state (at exit, once nothing is in flight or waiting; before the loop goes). */
void lx_capacity_shutdown(void);

/* Take a slot now if one is free. */
bool lx_capacity_try(struct lx_capacity *cap);
/* Give a slot back; the first waiter gets it (its callback runs on a later loop turn). */
void lx_capacity_release(struct lx_capacity *cap);

/* Wait for a slot at most timeout_ms. cb runs exactly once from the loop, unless the wait is cancelled
 * first: granted=true with the slot taken (release it when done), or false at the timeout. */
struct lx_cap_wait *lx_capacity_wait(struct lx_capacity *cap, long timeout_ms, void (*cb)(void *arg, bool granted),
                                     void *arg);
/* Leave the queue; no callback follows. A slot granted but not yet delivered goes to the next waiter. */
void lx_capacity_wait_cancel(struct lx_cap_wait *w);

/* Calls waiting right now (for metrics and logs). */
long lx_capacity_queued(const struct lx_capacity *cap);
long lx_capacity_inflight(const struct lx_capacity *cap);
/* The live max_concurrency (0 = unlimited), for messages. */
long lx_capacity_limit(const struct lx_capacity *cap);

/* The breaker. A failure is a connect error, a timeout, or an upstream 5xx/529; anything else that
 * completes the call counts as success. Returns the milliseconds the provider stays cooled down (0 = usable). */
void lx_capacity_record(struct lx_capacity *cap, bool failed);
long lx_capacity_cooling_ms(const struct lx_capacity *cap);
/* The provider's name, and its cooldown threshold in force (for messages). */
const char *lx_capacity_name(const struct lx_capacity *cap);
long lx_capacity_cooldown_failures(const struct lx_capacity *cap);

/* ---- fleet-wide, through Redis (io/fleet.h) ----
 * With a fleet, a provider that has a max_concurrency or a cooldown is limited across every replica: a
 * call claims its slot (and learns of a cooldown) in Redis, and reports how it went when it ends, so the
 * breaker counts failures in a row across the fleet. This replica's own count (lx_capacity_inflight)
 * still follows its calls. A claim that must wait for a slot asks again whenever a call of this replica
 * ends, and otherwise every 10 to 100 ms (waiters of different replicas are not served in order). */
struct lx_fleet;
struct lx_cap_claim;

/* Decide through f from now on (NULL: on this replica alone). main.c wires it. */
void lx_capacity_share(struct lx_fleet *f);
/* Does cap's provider claim its calls in Redis? (A fleet is set and the provider has a limit.) */
bool lx_capacity_shared(const struct lx_capacity *cap);
/* With redis.fail_mode "closed": claims that Redis cannot answer fail instead of going local. */
bool lx_capacity_fail_closed(void);

enum lx_cap_verdict {
    LX_CAP_GRANTED,     /* a slot is taken, fleet-wide and in this replica's count: release the local one
                           with lx_capacity_release when the call ends */
    LX_CAP_COOLING,     /* the provider cools down (cooling_ms) */
    LX_CAP_FULL,        /* max_concurrency calls in flight fleet-wide, and none ended within wait_ms */
    LX_CAP_UNAVAILABLE, /* Redis did not answer: fail closed, or go local (lx_capacity_claim_local) */
};

struct lx_cap_answer {
    enum lx_cap_verdict verdict;
    long cooling_ms;
    long inflight;      /* calls in flight fleet-wide (-1: not counted) */
};

/* Claim a slot for one call, waiting at most wait_ms for one (0: answer at once). cb runs once, from the
 * loop, unless the claim is ended first. Every claim is ended with lx_capacity_claim_end, whatever the
 * answer. */
struct lx_cap_claim *lx_capacity_claim(struct lx_capacity *cap, long wait_ms,
                                       void (*cb)(void *arg, struct lx_cap_claim *c, const struct lx_cap_answer *a),
                                       void *arg);
/* After UNAVAILABLE with fail mode open: the caller took a local slot itself (lx_capacity_try, or a
 * granted lx_capacity_wait); it counts in this replica's share, and its outcome feeds the local breaker.
 * c may be NULL (no claim: nothing to do). */
void lx_capacity_claim_local(struct lx_cap_claim *c);
/* The call ended (failed: for the breaker), or never ran. No callback follows; c is gone. */
void lx_capacity_claim_end(struct lx_cap_claim *c, bool ran, bool failed);

#endif
