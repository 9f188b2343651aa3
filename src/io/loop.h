/* The one libevent event_base every llmux module runs on, with timers and deferred calls for modules
 * that must not see libevent (providers, handlers). */
#ifndef LX_LOOP_H
#define LX_LOOP_H

#include <stdbool.h>

struct event_base;
struct lx_timer;

int lx_loop_init(void);
/* The base, for the glue files (http.c, upstream.c) that register their own fds. */
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
void lx_timer_stop(struct lx_timer *t);
bool lx_timer_pending(const struct lx_timer *t);
void lx_timer_free(struct lx_timer *t);

/* Call fn(arg) from the loop on its next turn, outside any library callback: the place to free objects
 * whose owners are still on the stack, and to call into libcurl or MHD from their own callbacks. */
void lx_defer(void (*fn)(void *arg), void *arg);

/* Persistent signal handler run from the loop (not from the signal context). */
int lx_loop_on_signal(int signo, void (*cb)(int signo, void *arg), void *arg);

#endif
