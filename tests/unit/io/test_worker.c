/* Unit tests for src/io/worker.c on a real loop: order, threads, batches, the bound, cancellation before
 * and during a job, failures, a clean stop that drains, and an open that fails. A gate (a condition
 * variable the first job waits on) makes the worker's timing deterministic; a loop timer guards every
 * wait against a hang. */
#include "../unit.h"
#include "../../../src/core/common.h"
#include "../../../src/io/loop.h"
#include "../../../src/io/worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* The worker's resource in these tests: counts what the thread did. */
struct res {
    atomic_int opens, closes, begins, ends;
    bool fail_open, fail_commit;
    pthread_t thread; /* the worker's, seen by open */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gate_open;
    atomic_bool gated_running;
};

static pthread_t main_thread;

static int res_open(void *ctx, char *err, size_t errlen)
{
    struct res *r = ctx;
    r->thread = pthread_self();
    atomic_fetch_add(&r->opens, 1);
    if (r->fail_open) {
        snprintf(err, errlen, "cannot open the test resource");
        return LX_ERR;
    }
    return LX_OK;
}

static void res_close(void *ctx)
{
    struct res *r = ctx;
    assert_true(pthread_equal(pthread_self(), r->thread));
    atomic_fetch_add(&r->closes, 1);
}

static void res_begin(void *ctx)
{
    struct res *r = ctx;
    atomic_fetch_add(&r->begins, 1);
}

static int res_end(void *ctx)
{
    struct res *r = ctx;
    atomic_fetch_add(&r->ends, 1);
    return r->fail_commit ? LX_ERR : LX_OK;
}

static const struct lx_worker_ops res_ops = {
    .open = res_open, .close = res_close, .batch_begin = res_begin, .batch_end = res_end,
};

/* One job's record, owned by the test. */
struct tjob {
    int n;
    bool gated;         /* wait for the gate before returning */
    int rc;             /* what work returns */
    atomic_bool worked; /* work ran */
    bool done;
    enum lx_job_status status;
    bool work_on_worker, done_on_loop;
    struct res *r;
};

static int order[256];
static int n_order;
static int n_done, want_done;

static int tjob_work(void *ctx, void *arg)
{
    struct res *r = ctx;
    struct tjob *j = arg;
    j->work_on_worker = pthread_equal(pthread_self(), r->thread) && !pthread_equal(pthread_self(), main_thread);
    if (j->gated) {
        atomic_store(&r->gated_running, true);
        pthread_mutex_lock(&r->mu);
        while (!r->gate_open)
            pthread_cond_wait(&r->cv, &r->mu);
        pthread_mutex_unlock(&r->mu);
    }
    atomic_store(&j->worked, true);
    return j->rc;
}

static void tjob_done(void *arg, enum lx_job_status status)
{
    struct tjob *j = arg;
    assert_false(j->done);
    j->done = true;
    j->status = status;
    j->done_on_loop = pthread_equal(pthread_self(), main_thread);
    order[n_order++] = j->n;
    if (++n_done == want_done)
        lx_loop_stop();
}

static void hang_guard(void *arg)
{
    (void)arg;
    fail_msg("the loop waited more than 30 s for the worker");
}

/* Run the loop until want more done callbacks have run. */
static void run_until(int want)
{
    want_done = n_done + want;
    struct lx_timer *guard = lx_timer_new(hang_guard, NULL);
    lx_timer_start(guard, 30000);
    if (n_done < want_done)
        lx_loop_run();
    lx_timer_free(guard);
}

static void open_gate(struct res *r)
{
    pthread_mutex_lock(&r->mu);
    r->gate_open = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Block this (test) thread until the gated job is running on the worker. */
static void wait_gated_running(struct res *r)
{
    for (int i = 0; i < 30000 && !atomic_load(&r->gated_running); i++)
        usleep(1000);
    assert_true(atomic_load(&r->gated_running));
}

static struct res *res_new(void)
{
    struct res *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    return r;
}

static void res_free(struct res *r)
{
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int setup(void **state)
{
    (void)state;
    main_thread = pthread_self();
    n_order = n_done = want_done = 0;
    return lx_loop_init() == LX_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lx_loop_free();
    return 0;
}

static struct lx_worker *start(struct res *r, size_t max_queue, size_t max_batch)
{
    char err[256] = "";
    struct lx_worker *w = lx_worker_start(&res_ops, r, max_queue, max_batch, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(atomic_load(&r->opens), 1);
    return w;
}

static void test_order_and_threads(void **state)
{
    (void)state;
    struct res *r = res_new();
    struct lx_worker *w = start(r, 64, 8);
    struct tjob jobs[20] = {0};
    for (int i = 0; i < 20; i++) {
        jobs[i].n = i;
        assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &jobs[i]));
    }
    run_until(20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(jobs[i].status, LX_JOB_OK);
        assert_true(jobs[i].work_on_worker);
        assert_true(jobs[i].done_on_loop);
    }
    struct lx_worker_stats st;
    lx_worker_stats(w, &st);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.completed, 20);
    assert_true(st.largest_batch <= 8);
    lx_worker_stop(w, NULL);
    assert_int_equal(atomic_load(&r->closes), 1);
    /* Every batch was opened and closed once. */
    assert_int_equal(atomic_load(&r->begins), atomic_load(&r->ends));
    assert_int_equal((uint64_t)atomic_load(&r->begins), st.batches);
    res_free(r);
}

/* Jobs queued while one runs share the next batch, up to max_batch. */
static void test_batches(void **state)
{
    (void)state;
    struct res *r = res_new();
    struct lx_worker *w = start(r, 64, 6);
    struct tjob first = {.n = 0, .gated = true};
    assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &first));
    wait_gated_running(r);
    struct tjob more[9] = {0};
    for (int i = 0; i < 9; i++) {
        more[i].n = i + 1;
        assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &more[i]));
    }
    open_gate(r);
    run_until(10);
    struct lx_worker_stats st;
    lx_worker_stats(w, &st);
    /* [first] [6 of the 9] [the other 3] */
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.largest_batch, 6);
    for (int i = 0; i < 10; i++)
        assert_int_equal(order[i], i);
    lx_worker_stop(w, NULL);
    res_free(r);
}

static void test_bound(void **state)
{
    (void)state;
    struct res *r = res_new();
    struct lx_worker *w = start(r, 4, 16);
    struct tjob jobs[5] = {0};
    jobs[0].gated = true;
    for (int i = 0; i < 4; i++) {
        jobs[i].n = i;
        assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &jobs[i]));
    }
    /* Four in flight: the fifth is refused at once, and its done never runs. */
    assert_null(lx_worker_submit(w, tjob_work, tjob_done, &jobs[4]));
    open_gate(r);
    run_until(4);
    assert_false(jobs[4].done);
    assert_false(atomic_load(&jobs[4].worked));
    /* Room again once the four are done. */
    jobs[4].n = 4;
    assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &jobs[4]));
    run_until(1);
    assert_int_equal(jobs[4].status, LX_JOB_OK);
    lx_worker_stop(w, NULL);
    res_free(r);
}

/* A requester that leaves: a queued job never runs; a running one finishes; both report CANCELLED. */
static void test_cancel(void **state)
{
    (void)state;
    struct res *r = res_new();
    struct lx_worker *w = start(r, 16, 16);
    struct tjob running = {.n = 0, .gated = true}, queued = {.n = 1}, kept = {.n = 2};
    struct lx_job *jr = lx_worker_submit(w, tjob_work, tjob_done, &running);
    assert_non_null(jr);
    wait_gated_running(r);
    struct lx_job *jq = lx_worker_submit(w, tjob_work, tjob_done, &queued);
    assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &kept));
    lx_job_cancel(jq);
    lx_job_cancel(jr);
    open_gate(r);
    run_until(3);
    assert_true(atomic_load(&running.worked));
    assert_int_equal(running.status, LX_JOB_CANCELLED);
    assert_false(atomic_load(&queued.worked));
    assert_int_equal(queued.status, LX_JOB_CANCELLED);
    assert_true(atomic_load(&kept.worked));
    assert_int_equal(kept.status, LX_JOB_OK);
    lx_worker_stop(w, NULL);
    res_free(r);
}

static void test_failures(void **state)
{
    (void)state;
    struct res *r = res_new();
    struct lx_worker *w = start(r, 16, 16);
    struct tjob ok = {.n = 0}, bad = {.n = 1, .rc = LX_ERR};
    assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &ok));
    assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &bad));
    run_until(2);
    assert_int_equal(ok.status, LX_JOB_OK);
    assert_int_equal(bad.status, LX_JOB_FAILED);
    /* A batch that does not commit fails every job in it, even those whose work succeeded. */
    r->fail_commit = true;
    struct tjob lost = {.n = 2};
    assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &lost));
    run_until(1);
    assert_true(atomic_load(&lost.worked));
    assert_int_equal(lost.status, LX_JOB_FAILED);
    lx_worker_stop(w, NULL);
    res_free(r);
}

/* Stop runs everything already queued and every done callback before it returns. */
static void test_stop_drains(void **state)
{
    (void)state;
    struct res *r = res_new();
    struct lx_worker *w = start(r, 64, 4);
    struct tjob jobs[50] = {0};
    jobs[0].gated = true;
    for (int i = 0; i < 50; i++) {
        jobs[i].n = i;
        assert_non_null(lx_worker_submit(w, tjob_work, tjob_done, &jobs[i]));
    }
    wait_gated_running(r);
    open_gate(r);
    lx_worker_stop(w, NULL);
    assert_int_equal(n_done, 50);
    for (int i = 0; i < 50; i++) {
        assert_true(atomic_load(&jobs[i].worked));
        assert_int_equal(jobs[i].status, LX_JOB_OK);
        assert_int_equal(order[i], i);
    }
    assert_int_equal(atomic_load(&r->closes), 1);
    res_free(r);
}

/* A done callback may queue the next job (a read, then a write). */
struct chain {
    struct lx_worker *w;
    struct tjob step[3];
    int at;
};

static void chain_done(void *arg, enum lx_job_status status);

static int chain_work(void *ctx, void *arg)
{
    struct chain *c = arg;
    return tjob_work(ctx, &c->step[c->at]);
}

static void chain_done(void *arg, enum lx_job_status status)
{
    struct chain *c = arg;
    tjob_done(&c->step[c->at], status);
    if (++c->at < 3)
        assert_non_null(lx_worker_submit(c->w, chain_work, chain_done, c));
}

static void test_done_submits(void **state)
{
    (void)state;
    struct res *r = res_new();
    struct chain c = {.w = start(r, 1, 1)};
    for (int i = 0; i < 3; i++)
        c.step[i].n = i;
    assert_non_null(lx_worker_submit(c.w, chain_work, chain_done, &c));
    run_until(3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c.step[i].status, LX_JOB_OK);
    lx_worker_stop(c.w, NULL);
    res_free(r);
}

static void test_open_fails(void **state)
{
    (void)state;
    struct res *r = res_new();
    r->fail_open = true;
    char err[256] = "";
    assert_null(lx_worker_start(&res_ops, r, 4, 4, err, sizeof err));
    assert_string_equal(err, "cannot open the test resource");
    assert_int_equal(atomic_load(&r->closes), 0);
    lx_worker_stop(NULL, NULL);
    res_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_and_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_submits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails, setup, teardown),
    };
    return cmocka_run_group_tests_name("worker", tests, NULL, NULL);
}
