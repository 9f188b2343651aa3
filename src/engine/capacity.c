/* Per-provider capacity: the in-flight count against max_concurrency, a FIFO of waiters with their own
 * timeouts, and the consecutive-failure breaker behind "cooldown", kept by provider name across reloads
 * (a short list: one entry per provider name ever configured), and the same limits fleet-wide through
 * Redis (claims). Slots freed by a finishing call are handed to waiters from a zero-delay timer, so a
 * waiter's callback never runs inside the releasing call's own teardown. */
#include "capacity.h"
#include "../../providers/provider.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/log.h"
#include "../io/fleet.h"
#include "../io/loop.h"

#include <stdlib.h>
#include <string.h>

struct lx_cap_wait {
    struct lx_capacity *cap;   /* borrowed */
    struct lx_timer *timer;    /* owned */
    void (*cb)(void *arg, bool granted);
    void *arg;
    struct lx_cap_wait *prev, *next;
};

struct lx_capacity {
    char *name;                       /* owned: the provider name this state belongs to */
    long max_concurrency;             /* the limits in force: the latest applied config's */
    struct lx_cooldown cooldown;
    long inflight;
    long queued;
    struct lx_cap_wait *head, *tail;  /* owned: FIFO */
    struct lx_timer *pump;            /* owned: hands freed slots to waiters */
    struct lx_timer *cooled;          /* owned: the cooldown's end, for provider.cooldown "left" */
    long failures;                    /* in a row */
    uint64_t cool_until;              /* lx_now_ms; 0 = not cooling */
    struct lx_cap_claim *claims;      /* fleet claims waiting for a slot (borrowed: each claim owns itself) */
    struct lx_capacity *next;
};

static struct lx_capacity *lx_capacities; /* owned: every provider name's state, until shutdown */

static void unlink_wait(struct lx_cap_wait *w)
{
    struct lx_capacity *cap = w->cap;
    if (w->prev)
        w->prev->next = w->next;
    else
        cap->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        cap->tail = w->prev;
    cap->queued--;
}

static void free_wait(struct lx_cap_wait *w)
{
    lx_timer_free(w->timer);
    free(w);
}

static bool has_room(const struct lx_capacity *cap)
{
    return cap->max_concurrency <= 0 || cap->inflight < cap->max_concurrency;
}

static void pump_cb(void *arg)
{
    struct lx_capacity *cap = arg;
    while (cap->head && has_room(cap)) {
        struct lx_cap_wait *w = cap->head;
        unlink_wait(w);
        cap->inflight++;
        void (*cb)(void *, bool) = w->cb;
        void *cb_arg = w->arg;
        free_wait(w);
        cb(cb_arg, true);
    }
}

static void wait_timeout_cb(void *arg)
{
    struct lx_cap_wait *w = arg;
    unlink_wait(w);
    void (*cb)(void *, bool) = w->cb;
    void *cb_arg = w->arg;
    free_wait(w);
    cb(cb_arg, false);
}

static void kick(struct lx_capacity *cap)
{
    if (!cap->head || !has_room(cap))
        return;
    if (!cap->pump)
        cap->pump = lx_timer_new(pump_cb, cap);
    if (!lx_timer_pending(cap->pump))
        lx_timer_start(cap->pump, 0);
}

struct lx_capacity *lx_capacity_of(const struct lx_provider_conf *p)
{
    for (struct lx_capacity *cap = lx_capacities; cap; cap = cap->next)
        if (strcmp(cap->name, p->name) == 0)
            return cap;
    struct lx_capacity *cap = lx_calloc(1, sizeof *cap);
    cap->name = lx_strdup(p->name);
    cap->max_concurrency = p->max_concurrency;
    cap->cooldown = p->cooldown;
    cap->next = lx_capacities;
    lx_capacities = cap;
    return cap;
}

void lx_capacity_apply(const struct lx_provider_conf *p)
{
    struct lx_capacity *cap = lx_capacity_of(p);
    cap->max_concurrency = p->max_concurrency;
    cap->cooldown = p->cooldown;
    kick(cap);
}

void lx_capacity_shutdown(void)
{
    while (lx_capacities) {
        struct lx_capacity *cap = lx_capacities;
        lx_capacities = cap->next;
        while (cap->head) {
            struct lx_cap_wait *w = cap->head;
            unlink_wait(w);
            free_wait(w);
        }
        lx_timer_free(cap->pump);
        lx_timer_free(cap->cooled);
        free(cap->name);
        free(cap);
    }
}

bool lx_capacity_try(struct lx_capacity *cap)
{
    /* Waiters go first: a newcomer never overtakes the queue. */
    if (cap->head || !has_room(cap))
        return false;
    cap->inflight++;
    return true;
}

static void poke_claims(struct lx_capacity *cap);

void lx_capacity_release(struct lx_capacity *cap)
{
    cap->inflight--;
    kick(cap);
    poke_claims(cap);
}

struct lx_cap_wait *lx_capacity_wait(struct lx_capacity *cap, long timeout_ms, void (*cb)(void *arg, bool granted),
                                     void *arg)
{
    struct lx_cap_wait *w = lx_calloc(1, sizeof *w);
    w->cap = cap;
    w->cb = cb;
    w->arg = arg;
    w->timer = lx_timer_new(wait_timeout_cb, w);
    w->prev = cap->tail;
    if (cap->tail)
        cap->tail->next = w;
    else
        cap->head = w;
    cap->tail = w;
    cap->queued++;
    lx_timer_start(w->timer, timeout_ms > 0 ? timeout_ms : 0);
    return w;
}

void lx_capacity_wait_cancel(struct lx_cap_wait *w)
{
    if (!w)
        return;
    unlink_wait(w);
    free_wait(w);
}

long lx_capacity_queued(const struct lx_capacity *cap)
{
    return cap->queued;
}

long lx_capacity_inflight(const struct lx_capacity *cap)
{
    return cap->inflight;
}

long lx_capacity_limit(const struct lx_capacity *cap)
{
    return cap->max_concurrency;
}

static void publish_cooldown(struct lx_capacity *cap, bool entered)
{
    if (!lx_bus_wanted(LX_EV_PROVIDER_COOLDOWN))
        return;
    struct lx_event ev = {.type = LX_EV_PROVIDER_COOLDOWN,
                          .cooldown = {.provider = cap->name, .entered = entered, .failures = cap->cooldown.failures,
                                       .period_ms = cap->cooldown.period_ms}};
    lx_bus_publish(&ev);
}

static void cooled_cb(void *arg)
{
    struct lx_capacity *cap = arg;
    lx_info("provider %s: cooldown over", cap->name);
    publish_cooldown(cap, false);
}

void lx_capacity_record(struct lx_capacity *cap, bool failed)
{
    if (!failed) {
        cap->failures = 0;
        return;
    }
    cap->failures++;
    if (cap->cooldown.failures > 0 && cap->failures >= cap->cooldown.failures) {
        cap->cool_until = lx_now_ms() + (uint64_t)cap->cooldown.period_ms;
        cap->failures = 0;
        lx_warn("provider %s: %ld failures in a row, cooling down for %ld ms", cap->name, cap->cooldown.failures,
                cap->cooldown.period_ms);
        if (!cap->cooled)
            cap->cooled = lx_timer_new(cooled_cb, cap);
        lx_timer_start(cap->cooled, cap->cooldown.period_ms);
        publish_cooldown(cap, true);
    }
}

long lx_capacity_cooling_ms(const struct lx_capacity *cap)
{
    uint64_t now = lx_now_ms();
    return cap->cool_until > now ? (long)(cap->cool_until - now) : 0;
}

const char *lx_capacity_name(const struct lx_capacity *cap)
{
    return cap->name;
}

long lx_capacity_cooldown_failures(const struct lx_capacity *cap)
{
    return cap->cooldown.failures;
}

/* ---- fleet-wide claims ---- */

static struct lx_fleet *lx_cap_fleet; /* borrowed from main.c, or NULL */

struct lx_cap_claim {
    struct lx_capacity *cap;        /* borrowed: lives until shutdown */
    struct lx_fleet_hold *hold;     /* the current ask's, or NULL between asks */
    uint64_t wait_until;            /* lx_now_ms: ask again until then while the fleet is full */
    long poll_ms;                   /* the next wait between asks */
    struct lx_timer *poll;          /* owned */
    void (*cb)(void *arg, struct lx_cap_claim *c, const struct lx_cap_answer *a);
    void *arg;
    bool local;                     /* went local after UNAVAILABLE: the local breaker hears its outcome */
    bool queued;                    /* on cap->claims */
    struct lx_cap_claim *prev, *next;
};

void lx_capacity_share(struct lx_fleet *f)
{
    lx_cap_fleet = f;
}

bool lx_capacity_shared(const struct lx_capacity *cap)
{
    return lx_cap_fleet && (cap->max_concurrency > 0 || cap->cooldown.failures > 0);
}

bool lx_capacity_fail_closed(void)
{
    return lx_cap_fleet && lx_fleet_fail_closed(lx_cap_fleet);
}

static void claim_unqueue(struct lx_cap_claim *c)
{
    if (!c->queued)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->cap->claims = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->queued = false;
}

static void claim_ask(struct lx_cap_claim *c);

static void claim_answer(struct lx_cap_claim *c, enum lx_cap_verdict v, long cooling_ms, long inflight)
{
    struct lx_cap_answer a = {.verdict = v, .cooling_ms = cooling_ms, .inflight = inflight};
    c->cb(c->arg, c, &a);
}

static void grant_cb(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_grant *g)
{
    struct lx_cap_claim *c = arg;
    if (g->verdict == LX_FLEET_ADMITTED) {
        c->cap->inflight++; /* this replica's count follows the fleet's */
        claim_answer(c, LX_CAP_GRANTED, 0, g->inflight);
        return;
    }
    if (g->verdict == LX_FLEET_UNAVAILABLE) {
        claim_answer(c, LX_CAP_UNAVAILABLE, 0, -1);
        return;
    }
    /* Refused: this ask is over; a full provider is asked again while the wait lasts. */
    lx_fleet_release(h, LX_FLEET_OUTCOME_NONE);
    c->hold = NULL;
    uint64_t now = lx_now_ms();
    if (g->refused && strcmp(g->refused, "capacity") == 0 && now < c->wait_until) {
        c->queued = true;
        c->prev = NULL;
        c->next = c->cap->claims;
        if (c->next)
            c->next->prev = c;
        c->cap->claims = c;
        long left = (long)(c->wait_until - now);
        lx_timer_start(c->poll, c->poll_ms < left ? c->poll_ms : left);
        if (c->poll_ms < 100)
            c->poll_ms *= 2;
        return;
    }
    bool cooling = g->refused && strcmp(g->refused, "cooldown") == 0;
    claim_answer(c, cooling ? LX_CAP_COOLING : LX_CAP_FULL, g->cooling_ms, g->inflight);
}

static void claim_ask(struct lx_cap_claim *c)
{
    struct lx_capacity *cap = c->cap;
    struct lx_fleet_provider p = {.name = cap->name, .max_concurrency = cap->max_concurrency,
                                  .cooldown_failures = cap->cooldown.failures, .cooldown_ms = cap->cooldown.period_ms};
    c->hold = lx_fleet_acquire(lx_cap_fleet, &p, grant_cb, c);
}

static void poll_cb(void *arg)
{
    struct lx_cap_claim *c = arg;
    claim_unqueue(c);
    if (lx_now_ms() >= c->wait_until) {
        claim_answer(c, LX_CAP_FULL, 0, -1);
        return;
    }
    claim_ask(c);
}

/* A call of this replica ended: the claims waiting here ask again now (a slot may be free). */
static void poke_claims(struct lx_capacity *cap)
{
    for (struct lx_cap_claim *c = cap->claims; c; c = c->next)
        lx_timer_start(c->poll, 0);
}

struct lx_cap_claim *lx_capacity_claim(struct lx_capacity *cap, long wait_ms,
                                       void (*cb)(void *arg, struct lx_cap_claim *c, const struct lx_cap_answer *a),
                                       void *arg)
{
    struct lx_cap_claim *c = lx_calloc(1, sizeof *c);
    c->cap = cap;
    c->cb = cb;
    c->arg = arg;
    c->poll_ms = 10;
    c->wait_until = lx_now_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
    c->poll = lx_timer_new(poll_cb, c);
    claim_ask(c);
    return c;
}

void lx_capacity_claim_local(struct lx_cap_claim *c)
{
    if (!c)
        return;
    c->local = true;
    if (c->hold)
        lx_fleet_local(c->hold);
}

void lx_capacity_claim_end(struct lx_cap_claim *c, bool ran, bool failed)
{
    if (!c)
        return;
    claim_unqueue(c);
    lx_timer_free(c->poll);
    if (c->local && ran)
        lx_capacity_record(c->cap, failed);
    if (c->hold)
        lx_fleet_release(c->hold, !ran ? LX_FLEET_OUTCOME_NONE : failed ? LX_FLEET_OUTCOME_FAIL : LX_FLEET_OUTCOME_OK);
    free(c);
}
