/* libevent glue: the single event_base, descriptor watches, timers, deferred calls and signals.
 * Re-entrancy: every callback here runs from event_base_loop, never from inside libcurl or MHD.
 * A watch is one allocation, its struct event right behind it; a timer makes its event when first started. */
#include "loop.h"
#include "../core/common.h"
#include "../core/log.h"

#include <event2/event.h>
#include <stddef.h>
#include <stdlib.h>

struct lx_timer {
    void (*cb)(void *arg);
    void *arg;
    struct event *ev; /* owned: made when the timer starts, freed when it fires or is stopped */
};

struct lx_watch {
    void (*cb)(int fd, unsigned what, void *arg);
    void *arg;
    struct event *ev; /* points just behind this struct, into the same allocation */
    unsigned what;    /* what ev waits for (lx_watch_change), PERSIST included */
    bool kicked;      /* in lx_kicks */
};

/* The watches kicked in the open batch, in order; an entry is NULL once its watch was freed. */
static struct lx_watch **lx_kicks;
static size_t lx_n_kicks, lx_kicks_cap;
static int lx_batch_depth;

/* An object of size n followed by room for one struct event (aligned like any allocation). */
static void *alloc_with_event(size_t n, struct event **ev)
{
    size_t head = (n + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t);
    char *p = lx_calloc(1, head + event_get_struct_event_size());
    *ev = (struct event *)(p + head);
    return p;
}

struct lx_signal {
    struct event *ev; /* owned: freed in lx_loop_free */
    void (*cb)(int, void *);
    void *arg;
    struct lx_signal *next;
};

static struct event_base *lx_base;
static struct lx_signal *lx_signals;
static struct event *lx_defer_ev; /* owned: runs the deferred-call queue */

struct lx_deferred {
    void (*fn)(void *);
    void *arg;
    struct lx_deferred *next;
};

/* Deferred calls run in the order they were made, from one event made active when the queue fills. */
static struct lx_deferred *lx_defer_head, **lx_defer_tail = &lx_defer_head;

static void lx_defer_run(void)
{
    /* Take the queue as it is now; calls deferred meanwhile wait for the next turn. */
    struct lx_deferred *d = lx_defer_head;
    lx_defer_head = NULL;
    lx_defer_tail = &lx_defer_head;
    while (d) {
        struct lx_deferred *next = d->next;
        d->fn(d->arg);
        free(d);
        d = next;
    }
}

static void lx_defer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    lx_defer_run();
    if (lx_defer_head)
        event_active(lx_defer_ev, 0, 0);
}

static void lx_libevent_log_cb(int severity, const char *msg)
{
    if (severity >= EVENT_LOG_WARN)
        lx_warn("libevent: %s", msg);
}

int lx_loop_init(void)
{
    event_set_log_callback(lx_libevent_log_cb);
    struct event_config *cfg = event_config_new();
    /* EV_CLOSED (EPOLLRDHUP) is how a suspended client's disconnect is seen: insist on a backend with it. */
    event_config_require_features(cfg, EV_FEATURE_EARLY_CLOSE);
    /* Changes to a descriptor's watch within one turn reach epoll as one call, at the next poll (curl's
     * switch from waiting to write a request to reading its answer was a removal and an addition). Its one
     * hazard, a dup()ed descriptor closed while its twin is watched, does not occur: llmux never watches a
     * duplicate. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    lx_base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!lx_base) {
        lx_error("cannot create the event loop (no epoll?)");
        return LX_ERR;
    }
    lx_defer_ev = event_new(lx_base, -1, 0, lx_defer_cb, NULL);
    return LX_OK;
}

struct event_base *lx_loop_base(void)
{
    return lx_base;
}

void lx_loop_run(void)
{
    event_base_dispatch(lx_base);
}

void lx_loop_stop(void)
{
    event_base_loopbreak(lx_base);
}

void lx_loop_drain(void)
{
    for (int i = 0; i < 100 && lx_defer_head; i++)
        lx_defer_run();
}

void lx_loop_free(void)
{
    /* Deferred frees still queued at exit run now, so nothing is leaked. */
    lx_loop_drain();
    if (lx_defer_ev)
        event_free(lx_defer_ev);
    lx_defer_ev = NULL;
    while (lx_signals) {
        struct lx_signal *s = lx_signals;
        lx_signals = s->next;
        event_free(s->ev);
        free(s);
    }
    if (lx_base)
        event_base_free(lx_base);
    lx_base = NULL;
    free(lx_kicks);
    lx_kicks = NULL;
    lx_n_kicks = lx_kicks_cap = 0;
}

/* A timer holds its event only while it runs (a request has about ten timers and most wait stopped or
 * fired for the rest of its life): the event is freed when the timer fires or is stopped, and made again
 * by the next lx_timer_start. libevent lets a callback free its own non-persistent event. */
static void lx_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lx_timer *t = arg;
    free(t->ev);
    t->ev = NULL;
    t->cb(t->arg); /* may restart t, or free it */
}

struct lx_timer *lx_timer_new(void (*cb)(void *arg), void *arg)
{
    struct lx_timer *t = lx_calloc(1, sizeof *t);
    t->cb = cb;
    t->arg = arg;
    return t;
}

void lx_timer_start(struct lx_timer *t, long ms)
{
    if (ms < 0)
        ms = 0;
    if (!t->ev) {
        t->ev = lx_malloc(event_get_struct_event_size());
        evtimer_assign(t->ev, lx_base, lx_timer_cb, t);
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t->ev, &tv);
}

void lx_timer_arm(struct lx_timer **t, void (*cb)(void *arg), void *arg, long ms)
{
    if (!*t)
        *t = lx_timer_new(cb, arg);
    lx_timer_start(*t, ms);
}

void lx_timer_soon(struct lx_timer *t)
{
    if (!t->ev) {
        t->ev = lx_malloc(event_get_struct_event_size());
        evtimer_assign(t->ev, lx_base, lx_timer_cb, t);
    } else {
        evtimer_del(t->ev);
    }
    event_active(t->ev, EV_TIMEOUT, 0);
}

void lx_timer_stop(struct lx_timer *t)
{
    if (t && t->ev) {
        evtimer_del(t->ev);
        free(t->ev);
        t->ev = NULL;
    }
}

bool lx_timer_pending(const struct lx_timer *t)
{
    return t && t->ev && evtimer_pending(t->ev, NULL);
}

void lx_timer_free(struct lx_timer *t)
{
    if (!t)
        return;
    if (t->ev)
        event_del(t->ev);
    free(t->ev);
    free(t);
}

static void lx_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lx_watch *w = arg;
    unsigned got = (what & EV_READ ? LX_WATCH_READ : 0) | (what & EV_WRITE ? LX_WATCH_WRITE : 0) |
                   (what & EV_CLOSED ? LX_WATCH_CLOSED : 0) | (what & EV_TIMEOUT ? LX_WATCH_KICK : 0);
    w->cb((int)fd, got, w->arg);
}

static short ev_kind(unsigned what)
{
    return (short)((what & LX_WATCH_READ ? EV_READ : 0) | (what & LX_WATCH_WRITE ? EV_WRITE : 0) |
                   (what & LX_WATCH_CLOSED ? EV_CLOSED : 0) | (what & LX_WATCH_PERSIST ? EV_PERSIST : 0));
}

struct lx_watch *lx_watch_new(int fd, unsigned what, void (*cb)(int fd, unsigned what, void *arg), void *arg)
{
    struct event *ev;
    struct lx_watch *w = alloc_with_event(sizeof *w, &ev);
    w->cb = cb;
    w->arg = arg;
    w->ev = ev;
    w->what = what;
    event_assign(ev, lx_base, fd, ev_kind(what), lx_watch_cb, w);
    return w;
}

void lx_watch_change(struct lx_watch *w, unsigned on, unsigned off)
{
    unsigned io = LX_WATCH_READ | LX_WATCH_WRITE | LX_WATCH_CLOSED;
    unsigned what = ((w->what | (on & io)) & ~(off & io));
    if (what == w->what)
        return;
    /* event_del drops an activation not yet run: a kick (EV_TIMEOUT, see lx_watch_kick) is made again.
     * What epoll reported is reported again on the next poll (level-triggered). */
    bool kicked = event_pending(w->ev, EV_TIMEOUT, NULL) != 0;
    evutil_socket_t fd = event_get_fd(w->ev);
    event_del(w->ev);
    w->what = what;
    event_assign(w->ev, lx_base, fd, ev_kind(what), lx_watch_cb, w);
    if (what & (LX_WATCH_READ | LX_WATCH_WRITE | LX_WATCH_CLOSED))
        event_add(w->ev, NULL);
    if (kicked)
        event_active(w->ev, EV_TIMEOUT, 0);
}

void lx_watch_start(struct lx_watch *w)
{
    event_add(w->ev, NULL);
}

void lx_watch_stop(struct lx_watch *w)
{
    event_del(w->ev);
}

void lx_watch_activate(struct lx_watch *w)
{
    event_active(w->ev, EV_READ, 0);
}

void lx_watch_kick(struct lx_watch *w)
{
    if (!lx_batch_depth) {
        event_active(w->ev, EV_TIMEOUT, 0);
        return;
    }
    if (w->kicked)
        return;
    if (lx_n_kicks == lx_kicks_cap) {
        lx_kicks_cap = lx_kicks_cap ? lx_kicks_cap * 2 : 64;
        lx_kicks = lx_realloc(lx_kicks, lx_kicks_cap * sizeof *lx_kicks);
    }
    w->kicked = true;
    lx_kicks[lx_n_kicks++] = w;
}

void lx_watch_free(struct lx_watch *w)
{
    if (!w)
        return;
    if (w->kicked)
        for (size_t i = 0; i < lx_n_kicks; i++)
            if (lx_kicks[i] == w)
                lx_kicks[i] = NULL;
    event_del(w->ev);
    free(w);
}

void lx_loop_batch_begin(void)
{
    lx_batch_depth++;
}

void lx_loop_batch_end(void)
{
    if (--lx_batch_depth > 0)
        return;
    /* Kicks made by these callbacks activate as usual (no batch is open), and a watch one of them frees is
     * NULL in the list; a callback that opens a batch of its own gets a list of its own. */
    for (size_t i = 0; i < lx_n_kicks; i++) {
        struct lx_watch *w = lx_kicks[i];
        if (!w)
            continue;
        lx_kicks[i] = NULL;
        w->kicked = false;
        w->cb(event_get_fd(w->ev), LX_WATCH_KICK, w->arg);
    }
    lx_n_kicks = 0;
}

void lx_defer(void (*fn)(void *arg), void *arg)
{
    struct lx_deferred *d = lx_malloc(sizeof *d);
    d->fn = fn;
    d->arg = arg;
    d->next = NULL;
    bool was_empty = lx_defer_head == NULL;
    *lx_defer_tail = d;
    lx_defer_tail = &d->next;
    if (was_empty)
        event_active(lx_defer_ev, 0, 0);
}

static void lx_signal_cb(evutil_socket_t signo, short what, void *arg)
{
    (void)what;
    struct lx_signal *s = arg;
    s->cb((int)signo, s->arg);
}

int lx_loop_on_signal(int signo, void (*cb)(int signo, void *arg), void *arg)
{
    struct lx_signal *s = lx_calloc(1, sizeof *s);
    s->cb = cb;
    s->arg = arg;
    s->ev = evsignal_new(lx_base, signo, lx_signal_cb, s);
    if (!s->ev || evsignal_add(s->ev, NULL) != 0) {
        if (s->ev)
            event_free(s->ev);
        free(s);
        return LX_ERR;
    }
    s->next = lx_signals;
    lx_signals = s;
    return LX_OK;
}
