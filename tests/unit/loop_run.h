/* Driving the real loop (src/io/loop.c) from a unit test: a group setup that makes it, run-until helpers
 * with a hang guard (20 s: a guard against hanging, not a measure of speed). */
#ifndef LX_TEST_LOOP_RUN_H
#define LX_TEST_LOOP_RUN_H

#include "../../src/core/common.h"
#include "../../src/core/log.h"
#include "../../src/io/loop.h"

#include <event2/event.h>
#include <stdbool.h>

#define LX_TEST_HANG_GUARD_MS 20000

/* One turn of the loop (waits for the next event). */
static void loop_turn(void)
{
    event_base_loop(lx_loop_base(), EVLOOP_ONCE);
}

/* Run the loop until *flag is true; false when the hang guard ran out first. */
static bool run_until(const bool *flag)
{
    uint64_t end = lx_now_ms() + LX_TEST_HANG_GUARD_MS;
    while (!*flag && lx_now_ms() < end)
        loop_turn();
    return *flag;
}

/* Run the loop for ms milliseconds, whatever happens. */
static void run_ms(long ms)
{
    uint64_t end = lx_now_ms() + (uint64_t)ms;
    while (lx_now_ms() < end) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(lx_loop_base(), &tv);
        event_base_dispatch(lx_loop_base());
    }
}

static int loop_setup(void **state)
{
    (void)state;
    lx_log_set_level(LX_LOG_ERROR);
    return lx_loop_init() == LX_OK ? 0 : -1;
}

static int loop_teardown(void **state)
{
    (void)state;
    lx_loop_free();
    return 0;
}

#endif
