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

#endif
