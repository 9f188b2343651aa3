/* The one libevent event_base every llmux module runs on, with descriptor watches, timers, deferred
 * calls and signals for the modules that must not see libevent.
 *
 * The io/ layer: the only files that include event2/, curl/, pthread.h and hiredis/. They may include
 * src/core/ and each other, nothing above: the loop (this file), the libcurl multi glue (upstream),
 * sd_notify (notify), the Redis client (redis, its config section redis_conf) and the fleet-wide state
 * kept through it (fleet); later the worker thread. */
#ifndef LX_LOOP_H
#define LX_LOOP_H

#include <stdbool.h>

struct event_base;
struct lx_timer;
struct lx_watch;

int lx_loop_init(void);
/* The base, for the io/ files (upstream.c) that hand it to a library. */
struct event_base *lx_loop_base(void);
/* Run until lx_loop_stop. */
void lx_loop_run(void);
void lx_loop_stop(void);
/* Run the deferred calls still queued (at exit, before freeing what they may touch). */
void lx_loop_drain(void);
/* Drain, then free the base: every lx_timer must be freed before this. */
void lx_loop_free(void);

/* One-shot timer; restarting a running timer moves its deadline. */
struct lx_timer *lx_timer_new(void (*cb)(void *arg), void *arg);
void lx_timer_start(struct lx_timer *t, long ms);
/* Start *t, making it first when it is NULL: for a timer most owners never need (stop, pending and free
 * all take NULL). */
void lx_timer_arm(struct lx_timer **t, void (*cb)(void *arg), void *arg, long ms);
/* Fire t on this turn of the loop, after the callbacks already due, rather than on the next turn as
 * lx_timer_start(t, 0) does (after the loop has polled again). Stop and pending work as for a started
 * timer. Not for a callback that starts its own timer this way again: the loop would not poll meanwhile. */
void lx_timer_soon(struct lx_timer *t);
void lx_timer_stop(struct lx_timer *t);
bool lx_timer_pending(const struct lx_timer *t);
void lx_timer_free(struct lx_timer *t);

/* A descriptor watch: cb(fd, what, arg) runs from the loop when fd is ready for what was asked. Without
 * LX_WATCH_PERSIST a watch fires once per lx_watch_start. LX_WATCH_CLOSED is the peer closing
 * (EPOLLRDHUP), seen even while nothing is read. */
enum {
    LX_WATCH_READ = 1,
    LX_WATCH_WRITE = 2,
    LX_WATCH_CLOSED = 4,
    LX_WATCH_PERSIST = 8,
    LX_WATCH_KICK = 16, /* what the callback gets for lx_watch_kick (never asked for) */
};
struct lx_watch *lx_watch_new(int fd, unsigned what, void (*cb)(int fd, unsigned what, void *arg), void *arg);
/* Arm the watch (again); a no-op on an armed persistent one. */
void lx_watch_start(struct lx_watch *w);
void lx_watch_stop(struct lx_watch *w);
/* Run the callback on this loop turn as if fd were readable, armed or not. */
void lx_watch_activate(struct lx_watch *w);
/* Add `on` to what the watch waits for and take `off` out (READ, WRITE, CLOSED; PERSIST stays as the watch
 * was made): one watch, one libevent event, for all a socket's interests. Nothing left stops it; no change
 * is a no-op; a kick still due survives the change. */
void lx_watch_change(struct lx_watch *w, unsigned on, unsigned off);
/* The callback gets LX_WATCH_KICK (not READ, as from lx_watch_activate). Run the callback as
 * lx_watch_activate does, but when an I/O batch is open (lx_loop_batch_begin), at its
 * end instead, once however often it was kicked: bytes a batch produced for a socket go out when the batch
 * is done, not after every other callback of the loop turn (under load, a turn is long). */
void lx_watch_kick(struct lx_watch *w);
/* Stop and free; NULL is fine. */
void lx_watch_free(struct lx_watch *w);
/* An I/O batch: the callbacks kicked inside it run at its end (batches may nest; the outermost ends it). */
void lx_loop_batch_begin(void);
void lx_loop_batch_end(void);

/* Call fn(arg) from the loop on its next turn, outside any library callback: the place to free objects
 * whose owners are still on the stack, and to call into libcurl or MHD from their own callbacks. */
void lx_defer(void (*fn)(void *arg), void *arg);

/* Persistent signal handler run from the loop (not from the signal context). */
int lx_loop_on_signal(int signo, void (*cb)(int signo, void *arg), void *arg);

#endif
