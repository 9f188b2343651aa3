/* Per-provider capacity: the in-flight count against max_concurrency, a FIFO of waiters with their own
 * timeouts, and the consecutive-failure breaker behind "cooldown", kept by provider name across reloads
 * (a short list: one entry per provider name ever configured). Slots freed by a finishing call are
 * handed to waiters from a zero-delay timer, so a waiter's callback never runs inside the releasing
 * call's own teardown. */
#include "capacity.h"
#include "../../providers/provider.h"
#include "../core/common.h"
#include "../core/log.h"
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
    long failures;                    /* in a row */
    uint64_t cool_until;              /* lx_now_ms; 0 = not cooling */
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

void lx_capacity_release(struct lx_capacity *cap)
{
    cap->inflight--;
    kick(cap);
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
    }
}

long lx_capacity_cooling_ms(const struct lx_capacity *cap)
{
    uint64_t now = lx_now_ms();
    return cap->cool_until > now ? (long)(cap->cool_until - now) : 0;
}
