/* Unit tests for src/child.c on a real loop: pipes both ways, exit after output, environment, signal
 * dispositions, spawn failures, and stopping a child that does not want to stop. */
#include "../unit.h"
#include "../../../src/core/buf.h"
#include "../../../src/io/child.h"
#include "../../../src/core/common.h"
#include "../../../src/io/loop.h"

#include <signal.h>
#include <sys/wait.h>

struct seen {
    struct lx_buf out, err;
    int status;
    bool exited;
    size_t out_at_exit; /* stdout bytes delivered before on_exit */
    struct lx_child *child;
};

static void on_out(void *ctx, const char *d, size_t n)
{
    lx_buf_append(&((struct seen *)ctx)->out, d, n);
}

static void on_err(void *ctx, const char *d, size_t n)
{
    lx_buf_append(&((struct seen *)ctx)->err, d, n);
}

static void on_exit_cb(void *ctx, int status)
{
    struct seen *s = ctx;
    s->status = status;
    s->exited = true;
    s->out_at_exit = s->out.len;
    lx_loop_stop();
}

static const struct lx_child_ops ops = {on_out, on_err, on_exit_cb};

static void hang_guard_cb(void *arg)
{
    (void)arg;
    fail_msg("hang guard: the loop did not finish");
}

/* Run the loop until lx_loop_stop, with a guard against hangs (not a speed check). */
static void run_loop(void)
{
    struct lx_timer *guard = lx_timer_new(hang_guard_cb, NULL);
    lx_timer_start(guard, 20000);
    lx_loop_run();
    lx_timer_free(guard);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return lx_loop_init();
}

static int teardown(void **state)
{
    (void)state;
    lx_child_shutdown();
    lx_loop_free();
    return 0;
}

static void free_seen(struct seen *s)
{
    lx_child_free(s->child, 1000);
    lx_buf_free(&s->out);
    lx_buf_free(&s->err);
}

static void test_output_then_exit(void **state)
{
    (void)state;
    struct seen s = {0};
    char err[256];
    char *argv[] = {"sh", "-c", "echo out; echo err >&2; i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done; exit 3", NULL};
    s.child = lx_child_spawn("sh", argv, NULL, &ops, &s, err, sizeof err);
    assert_non_null(s.child);
    run_loop();
    assert_true(s.exited);
    assert_true(WIFEXITED(s.status));
    assert_int_equal(WEXITSTATUS(s.status), 3);
    /* Everything it wrote arrived, and before the exit was reported. */
    assert_int_equal(s.out_at_exit, s.out.len);
    assert_true(strncmp(s.out.data, "out\nline0\n", 10) == 0);
    assert_non_null(strstr(s.out.data, "line1999\n"));
    assert_string_equal(s.err.data, "err\n");
    assert_int_equal(lx_child_count(), 0);
    free_seen(&s);
}

static void test_stdin_round_trip(void **state)
{
    (void)state;
    struct seen s = {0};
    char err[256];
    char *argv[] = {"cat", NULL};
    s.child = lx_child_spawn("cat", argv, NULL, &ops, &s, err, sizeof err);
    assert_non_null(s.child);
    /* More than a pipe holds: the rest waits in the queue until cat reads it. */
    struct lx_buf big = {0};
    for (int i = 0; i < 20000; i++)
        lx_buf_printf(&big, "message %d\n", i);
    assert_int_equal(lx_child_write(s.child, big.data, big.len), LX_OK);
    lx_child_close_stdin(s.child);
    assert_int_equal(lx_child_write(s.child, "late\n", 5), LX_ERR);
    run_loop();
    assert_true(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0);
    assert_int_equal(s.out.len, big.len);
    assert_memory_equal(s.out.data, big.data, big.len);
    assert_int_equal(lx_child_pending(s.child), 0);
    lx_buf_free(&big);
    free_seen(&s);
}

static void test_environment_and_signals(void **state)
{
    (void)state;
    struct seen s = {0};
    char err[256];
    setenv("LX_CHILD_KEEP", "kept", 1);
    setenv("LX_CHILD_OVERRIDE", "old", 1);
    char *env[] = {"LX_CHILD_OVERRIDE=new", "LX_CHILD_ADDED=added", NULL};
    /* SigIgn: llmux ignores SIGPIPE, the child must not inherit that. */
    char *argv[] = {"sh", "-c", "echo $LX_CHILD_KEEP $LX_CHILD_OVERRIDE $LX_CHILD_ADDED; grep SigIgn /proc/self/status", NULL};
    s.child = lx_child_spawn("sh", argv, env, &ops, &s, err, sizeof err);
    assert_non_null(s.child);
    run_loop();
    assert_non_null(strstr(s.out.data, "kept new added\n"));
    const char *ign = strstr(s.out.data, "SigIgn:\t");
    assert_non_null(ign);
    unsigned long long mask = strtoull(ign + 8, NULL, 16);
    /* (glibc's posix_spawn leaves its own internal signals 32 and 33 ignored: not ours to change.) */
    assert_int_equal(mask & ((1ull << (SIGPIPE - 1)) | (1ull << (SIGTERM - 1)) | (1ull << (SIGINT - 1))), 0);
    free_seen(&s);
}

/* A missing program: glibc reports it from posix_spawn (under valgrind, from the child's exit status). */
static void test_spawn_failure(void **state)
{
    (void)state;
    char err[256] = "";
    char *argv[] = {"lx-no-such-program", NULL};
    struct seen s = {0};
    s.child = lx_child_spawn("lx-no-such-program", argv, NULL, &ops, &s, err, sizeof err);
    if (s.child) {
        run_loop();
        assert_true(WIFEXITED(s.status) && WEXITSTATUS(s.status) == 127);
    } else {
        assert_non_null(strstr(err, "lx-no-such-program"));
    }
    assert_int_equal(lx_child_count(), 0);
    free_seen(&s);
}

static void stop_when_gone_cb(void *arg)
{
    (void)arg;
    if (lx_child_count() == 0)
        lx_loop_stop();
    else
        lx_timer_start(*(struct lx_timer **)arg, 10);
}

/* A child that ignores SIGTERM is killed when its grace ends, and reaped from the loop. */
static void test_free_stops_stubborn_child(void **state)
{
    (void)state;
    struct seen s = {0};
    char err[256];
    char *argv[] = {"sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done", NULL};
    s.child = lx_child_spawn("sh", argv, NULL, &ops, &s, err, sizeof err);
    assert_non_null(s.child);
    assert_true(lx_child_running(s.child));
    assert_true(lx_child_pid(s.child) > 0);
    lx_child_free(s.child, 200);
    s.child = NULL;
    struct lx_timer *poll = NULL;
    poll = lx_timer_new(stop_when_gone_cb, &poll);
    lx_timer_start(poll, 10);
    run_loop();
    lx_timer_free(poll);
    assert_int_equal(lx_child_count(), 0);
    assert_false(s.exited); /* no callback after free */
    free_seen(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_output_then_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_and_signals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_stops_stubborn_child, setup, teardown),
    };
    return cmocka_run_group_tests_name("child", tests, NULL, NULL);
}
