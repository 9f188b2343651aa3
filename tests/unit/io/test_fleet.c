/* Unit tests for src/io/fleet.c and src/io/fleet.lua against a real redis-server: two (or three) replicas in one
 * process, each its own lx_fleet with its own connection and replica id, share client-key limits and
 * provider state exactly; a dead replica's counts expire with its lease; counts lost to a flush come back
 * with the next heartbeat; late answers are adopted or undone; Redis killed and restarted. No timing
 * thresholds: waits have hang guards, and where refill matters the bound is computed from the elapsed
 * time. */
#include "../unit.h"
#include "../loop_run.h"
#include "../redis_server.h"
#include "../../../src/core/common.h"
#include "../../../src/io/fleet.h"


static bool run_until_ready(struct lx_fleet *f)
{
    uint64_t end = lx_now_ms() + 20000;
    while (!lx_redis_ready(lx_fleet_redis(f)) && lx_now_ms() < end)
        loop_turn();
    return lx_redis_ready(lx_fleet_redis(f));
}

static struct lx_redis_conf conf_for(const struct test_redis *t, long lease_ms)
{
    struct lx_redis_conf c = {0};
    char err[256];
    assert_int_equal(lx_redis_parse_url(t->url, &c.target, err, sizeof err), LX_OK);
    c.prefix = lx_strdup("t:");
    c.timeout_ms = 3000; /* a busy machine must not turn these tests into fail-open tests */
    c.connect_timeout_ms = 5000;
    c.reconnect_max_ms = 200;
    c.lease_ms = lease_ms;
    return c;
}

/* One admission's verdict, kept with its hold. */
struct adm {
    bool done;
    int calls;
    struct lx_fleet_hold *h;
    struct lx_fleet_admission a;
};

static void adm_cb(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_admission *a)
{
    struct adm *x = arg;
    x->done = true;
    x->calls++;
    x->a = *a;
    assert_ptr_equal(h, x->h);
}

static struct lx_fleet_admission admit(struct lx_fleet *f, struct adm *x, const struct lx_fleet_key *k)
{
    memset(x, 0, sizeof *x);
    x->h = lx_fleet_admit(f, k, adm_cb, x);
    assert_false(x->done); /* never from inside the call */
    assert_true(run_until(&x->done));
    return x->a;
}

struct grant {
    bool done;
    struct lx_fleet_hold *h;
    struct lx_fleet_grant g;
};

static void grant_cb(void *arg, struct lx_fleet_hold *h, const struct lx_fleet_grant *g)
{
    struct grant *x = arg;
    x->done = true;
    x->g = *g;
    assert_ptr_equal(h, x->h);
}

static struct lx_fleet_grant acquire(struct lx_fleet *f, struct grant *x, const struct lx_fleet_provider *p)
{
    memset(x, 0, sizeof *x);
    x->h = lx_fleet_acquire(f, p, grant_cb, x);
    assert_true(run_until(&x->done));
    return x->g;
}

/* Let what was sent without a waiter (finish, release) reach Redis: commands leave in order, so once a
 * PING sent after them is answered, they ran. */
static void ping_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    (void)reply;
    assert_int_equal(st, LX_REDIS_OK);
    *(bool *)arg = true;
}

static void flush(struct lx_fleet *f)
{
    bool done = false;
    const char *argv[] = {"PING"};
    lx_redis_command(lx_fleet_redis(f), "test", 20000, ping_cb, &done, 1, argv, NULL);
    assert_true(run_until(&done));
}

struct env {
    struct test_redis srv;
    struct lx_redis_conf conf;
    struct lx_fleet *a, *b;
};

static void env_start(struct env *e, long lease_ms)
{
    assert_int_equal(test_redis_start(&e->srv, false, NULL), 0);
    e->conf = conf_for(&e->srv, lease_ms);
    e->a = lx_fleet_new(&e->conf, "replica-a");
    e->b = lx_fleet_new(&e->conf, "replica-b");
    assert_true(run_until_ready(e->a));
    assert_true(run_until_ready(e->b));
}

static void env_stop(struct env *e)
{
    lx_fleet_free(e->a);
    lx_fleet_free(e->b);
    lx_redis_conf_free(&e->conf);
    test_redis_stop(&e->srv);
}

static void test_library_loaded(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 15000);
    redisContext *c = test_redis_connect(&e.srv);
    redisReply *r = redisCommand(c, "FUNCTION LIST LIBRARYNAME %s", LX_FLEET_LIBRARY);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    freeReplyObject(r);
    redisFree(c);
    /* Both replicas are in the lease set, found by the heartbeat. */
    assert_int_equal(test_redis_long(&e.srv, "ZCARD t:replicas"), 2);
    assert_true(test_redis_long(&e.srv, "PTTL t:replicas") > 0);
    env_stop(&e);
}

static void test_rpm_fleet_wide(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 15000);
    enum { N = 6 };
    struct lx_fleet_key k = {.name = "team", .rpm = N};
    uint64_t t0 = lx_now_ms();
    int admitted = 0;
    struct adm x;
    for (int i = 0; i < 3 * N; i++) {
        struct lx_fleet_admission a = admit(i % 2 ? e.a : e.b, &x, &k);
        if (a.verdict == LX_FLEET_ADMITTED) {
            admitted++;
            assert_true(a.remaining_requests >= 0);
        } else {
            assert_int_equal(a.verdict, LX_FLEET_REFUSED);
            assert_string_equal(a.refused, "requests");
            assert_true(a.retry_after_ms > 0 && a.retry_after_ms <= 60000 / N);
            assert_true(a.reset_requests_ms > 0);
        }
        lx_fleet_finish(x.h, 0);
    }
    /* Exactly N, plus what the bucket refilled meanwhile (N per minute). */
    long refilled = (long)((lx_now_ms() - t0) * N / 60000);
    assert_true(admitted >= N && admitted <= N + refilled);
    assert_true(test_redis_long(&e.srv, "PTTL t:key:team:rate") > 0);
    env_stop(&e);
}

static void test_tpm_reserve_and_settle(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 15000);
    struct lx_fleet_key k = {.name = "tok", .tpm = 1000, .reserve = 400};
    struct adm x, y;
    struct lx_fleet_admission a = admit(e.a, &x, &k);
    assert_int_equal(a.verdict, LX_FLEET_ADMITTED);
    assert_true(a.remaining_tokens >= 600 && a.remaining_tokens <= 601);
    /* Another replica sees the reserve: 600 left cannot hold another 700. */
    k.reserve = 700;
    a = admit(e.b, &y, &k);
    assert_int_equal(a.verdict, LX_FLEET_REFUSED);
    assert_string_equal(a.refused, "tokens");
    assert_true(a.retry_after_ms > 0);
    lx_fleet_finish(y.h, 0);
    /* The first answer used 100 of its 400: 300 come back. */
    lx_fleet_finish(x.h, 100);
    flush(e.a);
    uint64_t t0 = lx_now_ms();
    k.reserve = 0;
    a = admit(e.b, &y, &k);
    assert_int_equal(a.verdict, LX_FLEET_ADMITTED);
    long refill = (long)((lx_now_ms() - t0) * 1000 / 60000) + 2;
    assert_true(a.remaining_tokens >= 900 && a.remaining_tokens <= 900 + refill);
    /* An answer longer than its reserve is charged in full: the bucket goes below zero, and the next
     * request waits for the refill. */
    lx_fleet_finish(y.h, 1500);
    flush(e.b);
    a = admit(e.a, &x, &k);
    assert_int_equal(a.verdict, LX_FLEET_REFUSED);
    assert_string_equal(a.refused, "tokens");
    assert_true(a.remaining_tokens < 0);
    assert_true(a.retry_after_ms > 30000);
    lx_fleet_finish(x.h, 0);
    /* A reserve bigger than the whole budget is capped: it waits for a full bucket, not forever. */
    test_redis_do(&e.srv, "DEL t:key:tok:rate");
    k.reserve = 5000;
    a = admit(e.a, &x, &k);
    assert_int_equal(a.verdict, LX_FLEET_ADMITTED);
    lx_fleet_finish(x.h, 10);
    env_stop(&e);
}

static void test_inflight_fleet_wide(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 15000);
    struct lx_fleet_key k = {.name = "busy", .max_inflight = 2};
    struct adm x1, x2, x3;
    assert_int_equal(admit(e.a, &x1, &k).verdict, LX_FLEET_ADMITTED);
    struct lx_fleet_admission a = admit(e.b, &x2, &k);
    assert_int_equal(a.verdict, LX_FLEET_ADMITTED);
    assert_int_equal(a.inflight, 2);
    a = admit(e.a, &x3, &k);
    assert_int_equal(a.verdict, LX_FLEET_REFUSED);
    assert_string_equal(a.refused, "inflight");
    lx_fleet_finish(x3.h, 0);
    lx_fleet_finish(x2.h, 0); /* B's request ends: A may start one */
    flush(e.b);
    assert_int_equal(admit(e.a, &x3, &k).verdict, LX_FLEET_ADMITTED);
    assert_int_equal(test_redis_long(&e.srv, "HGET t:key:busy:inflight replica-a"), 2);
    assert_int_equal(test_redis_long(&e.srv, "HEXISTS t:key:busy:inflight replica-b"), 0);
    lx_fleet_finish(x1.h, 0);
    lx_fleet_finish(x3.h, 0);
    flush(e.a);
    assert_int_equal(test_redis_long(&e.srv, "EXISTS t:key:busy:inflight"), 0);

    /* Clients without a key share limits.max_inflight_per_key under their own name. */
    struct lx_fleet_key anon = {.name = NULL, .max_inflight = 1};
    assert_int_equal(admit(e.a, &x1, &anon).verdict, LX_FLEET_ADMITTED);
    assert_int_equal(admit(e.b, &x2, &anon).verdict, LX_FLEET_REFUSED);
    assert_int_equal(test_redis_long(&e.srv, "HGET t:anon:inflight replica-a"), 1);
    lx_fleet_finish(x1.h, 0);
    lx_fleet_finish(x2.h, 0);
    env_stop(&e);
}

static void test_dead_replica_expires(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 600);
    struct lx_fleet_key k = {.name = "solo", .max_inflight = 1};
    struct lx_redis_conf conf = conf_for(&e.srv, 600);
    struct lx_fleet *c = lx_fleet_new(&conf, "replica-c");
    assert_true(run_until_ready(c));
    struct adm held, x;
    assert_int_equal(admit(c, &held, &k).verdict, LX_FLEET_ADMITTED);
    assert_int_equal(admit(e.a, &x, &k).verdict, LX_FLEET_REFUSED);
    lx_fleet_finish(x.h, 0);
    /* C dies without a word (its connection and timers go; its hold was never given back). */
    lx_fleet_free(c);
    lx_redis_conf_free(&conf);
    /* Once C's lease runs out, its unit stops counting and A gets in. */
    bool in = false;
    uint64_t end = lx_now_ms() + 20000;
    while (!in && lx_now_ms() < end) {
        in = admit(e.a, &x, &k).verdict == LX_FLEET_ADMITTED;
        if (!in)
            lx_fleet_finish(x.h, 0);
        run_ms(50);
    }
    assert_true(in);
    assert_int_equal(test_redis_long(&e.srv, "HEXISTS t:key:solo:inflight replica-c"), 0);
    lx_fleet_finish(x.h, 0);
    env_stop(&e);
}

static void test_heartbeat_heals_lost_counts(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 600); /* a heartbeat every 200 ms */
    struct lx_fleet_key k = {.name = "heal", .max_inflight = 1};
    struct adm held, x;
    assert_int_equal(admit(e.a, &held, &k).verdict, LX_FLEET_ADMITTED);
    /* Redis forgets everything (a restart without persistence, a failover to an empty replica). */
    assert_true(test_redis_do(&e.srv, "FLUSHALL"));
    /* A's next heartbeat asserts its share again: then B is refused as before. */
    uint64_t end = lx_now_ms() + 20000;
    while (test_redis_long(&e.srv, "HGET t:key:heal:inflight replica-a") != 1 && lx_now_ms() < end)
        run_ms(20);
    assert_int_equal(test_redis_long(&e.srv, "HGET t:key:heal:inflight replica-a"), 1);
    assert_int_equal(admit(e.b, &x, &k).verdict, LX_FLEET_REFUSED);
    lx_fleet_finish(x.h, 0);
    lx_fleet_finish(held.h, 0);
    flush(e.a);
    assert_int_equal(admit(e.b, &x, &k).verdict, LX_FLEET_ADMITTED);
    lx_fleet_finish(x.h, 0);

    /* The functions flushed away: the call fails once, the library is loaded again, calls work. */
    assert_true(test_redis_do(&e.srv, "FUNCTION FLUSH"));
    struct lx_fleet_admission a = admit(e.a, &x, &k);
    assert_int_equal(a.verdict, LX_FLEET_UNAVAILABLE);
    lx_fleet_finish(x.h, 0);
    bool back = false;
    end = lx_now_ms() + 20000;
    while (!back && lx_now_ms() < end) {
        back = admit(e.a, &x, &k).verdict == LX_FLEET_ADMITTED;
        lx_fleet_finish(x.h, 0);
    }
    assert_true(back);
    env_stop(&e);
}

static void test_late_answers(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 15000);
    struct lx_redis_conf conf = conf_for(&e.srv, 15000);
    conf.timeout_ms = 100; /* the caller's budget */
    struct lx_fleet *f = lx_fleet_new(&conf, "replica-late");
    assert_true(run_until_ready(f));
    struct lx_fleet_key k = {.name = "late", .rpm = 10, .max_inflight = 5};
    struct adm x, y;
    uint64_t t0 = lx_now_ms();

    /* Redis frozen: the caller hears UNAVAILABLE at its deadline and goes ahead on local counters. */
    test_redis_signal(&e.srv, SIGSTOP);
    struct lx_fleet_admission a = admit(f, &x, &k);
    assert_int_equal(a.verdict, LX_FLEET_UNAVAILABLE);
    lx_fleet_local(x.h);
    /* A second caller gives its hold back before any verdict (its client left). */
    memset(&y, 0, sizeof y);
    y.h = lx_fleet_admit(f, &k, adm_cb, &y);
    lx_fleet_finish(y.h, 0);
    test_redis_signal(&e.srv, SIGCONT);
    /* Both late answers said "admitted": the first is adopted (it runs), the second undone. The first
     * flush sees the answers (and the undoing sent), the second sees it done. */
    flush(f);
    flush(f);
    assert_int_equal(test_redis_long(&e.srv, "HGET t:key:late:inflight replica-late"), 1);
    assert_int_equal(x.calls, 1);
    assert_false(y.done);
    assert_int_equal(lx_fleet_unavailable(f, "keys"), 1);
    assert_int_equal(lx_fleet_fallbacks(f, "keys"), 1);
    /* One request token is spent (x's), not two: the next admission has 10 - 1 - 1 left. */
    a = admit(e.a, &y, &k);
    assert_int_equal(a.verdict, LX_FLEET_ADMITTED);
    assert_true(a.remaining_requests >= 8 && a.remaining_requests <= 8 + (long)((lx_now_ms() - t0) * 10 / 60000));
    lx_fleet_finish(y.h, 0);
    lx_fleet_finish(x.h, 0);
    flush(f);
    assert_int_equal(test_redis_long(&e.srv, "HEXISTS t:key:late:inflight replica-late"), 0);
    lx_fleet_free(f);
    lx_redis_conf_free(&conf);
    env_stop(&e);
}

static void test_redis_killed_and_back(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 900);
    struct lx_fleet_key k = {.name = "outage", .max_inflight = 1};
    test_redis_kill(&e.srv);
    /* Down: UNAVAILABLE, not a hang; the caller's fail mode decides (here: open, on local counters). */
    struct adm x, y;
    assert_int_equal(admit(e.a, &x, &k).verdict, LX_FLEET_UNAVAILABLE);
    lx_fleet_local(x.h);
    assert_false(lx_fleet_fail_closed(e.a));
    /* Back (empty): the reconnect's heartbeat asserts A's local share, so sharing resumes exactly. */
    assert_int_equal(test_redis_spawn(&e.srv), 0);
    assert_true(run_until_ready(e.a));
    assert_true(run_until_ready(e.b));
    assert_int_equal(test_redis_long(&e.srv, "HGET t:key:outage:inflight replica-a"), 1);
    assert_int_equal(admit(e.b, &y, &k).verdict, LX_FLEET_REFUSED);
    lx_fleet_finish(y.h, 0);
    lx_fleet_finish(x.h, 0);
    flush(e.a);
    assert_int_equal(admit(e.b, &y, &k).verdict, LX_FLEET_ADMITTED);
    lx_fleet_finish(y.h, 0);
    env_stop(&e);
}

static void test_provider_slots_and_cooldown(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 15000);
    struct lx_fleet_provider p = {.name = "up", .max_concurrency = 2, .cooldown_failures = 2, .cooldown_ms = 60000};
    struct grant g1, g2, g3;
    assert_int_equal(acquire(e.a, &g1, &p).verdict, LX_FLEET_ADMITTED);
    struct lx_fleet_grant g = acquire(e.b, &g2, &p);
    assert_int_equal(g.verdict, LX_FLEET_ADMITTED);
    assert_int_equal(g.inflight, 2);
    g = acquire(e.a, &g3, &p);
    assert_int_equal(g.verdict, LX_FLEET_REFUSED);
    assert_string_equal(g.refused, "capacity");
    lx_fleet_release(g3.h, LX_FLEET_OUTCOME_NONE);
    /* Two failures in a row, one on each replica, start the cooldown for both. */
    lx_fleet_release(g1.h, LX_FLEET_OUTCOME_FAIL);
    lx_fleet_release(g2.h, LX_FLEET_OUTCOME_FAIL);
    flush(e.a);
    flush(e.b);
    g = acquire(e.a, &g1, &p);
    assert_int_equal(g.verdict, LX_FLEET_REFUSED);
    assert_string_equal(g.refused, "cooldown");
    assert_true(g.cooling_ms > 0 && g.cooling_ms <= 60000);
    lx_fleet_release(g1.h, LX_FLEET_OUTCOME_NONE);
    assert_string_equal(acquire(e.b, &g2, &p).refused, "cooldown");
    lx_fleet_release(g2.h, LX_FLEET_OUTCOME_NONE);
    struct lx_fleet_provider_state st;
    assert_true(lx_fleet_provider_seen(e.b, "up", &st));
    assert_true(st.cooling_ms > 0);
    assert_false(lx_fleet_provider_seen(e.b, "other", &st));
    assert_int_equal(test_redis_long(&e.srv, "EXISTS t:provider:up:slots"), 0);
    assert_true(test_redis_long(&e.srv, "PTTL t:provider:up:breaker") > 0);

    /* A success resets the streak: fail, ok, fail is no cooldown. */
    struct lx_fleet_provider q = {.name = "flaky", .cooldown_failures = 2, .cooldown_ms = 60000};
    enum lx_fleet_outcome seq[] = {LX_FLEET_OUTCOME_FAIL, LX_FLEET_OUTCOME_OK, LX_FLEET_OUTCOME_FAIL};
    for (size_t i = 0; i < LX_ARRAY_LEN(seq); i++) {
        g = acquire(i % 2 ? e.a : e.b, &g1, &q);
        assert_int_equal(g.verdict, LX_FLEET_ADMITTED);
        assert_int_equal(g.inflight, -1); /* no cap: nothing counted */
        lx_fleet_release(g1.h, seq[i]);
    }
    flush(e.a);
    flush(e.b);
    assert_int_equal(acquire(e.a, &g1, &q).verdict, LX_FLEET_ADMITTED);
    lx_fleet_release(g1.h, LX_FLEET_OUTCOME_OK);
    env_stop(&e);
}

static void test_watch_reads_state(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 600);
    struct lx_fleet_provider p = {.name = "seen", .max_concurrency = 3};
    const char *names[] = {"seen"};
    lx_fleet_watch_providers(e.a, names, 1);
    struct grant g1;
    assert_int_equal(acquire(e.b, &g1, &p).verdict, LX_FLEET_ADMITTED);
    /* A never called "seen": its heartbeat reads B's call in flight. */
    struct lx_fleet_provider_state st = {0};
    uint64_t end = lx_now_ms() + 20000;
    while (!(lx_fleet_provider_seen(e.a, "seen", &st) && st.inflight == 1) && lx_now_ms() < end)
        run_ms(20);
    assert_int_equal(st.inflight, 1);
    assert_true(lx_fleet_replicas(e.a) >= 2);
    lx_fleet_release(g1.h, LX_FLEET_OUTCOME_OK);
    env_stop(&e);
}

static bool left;
static void left_cb(void *arg)
{
    (void)arg;
    left = true;
}

static void test_leave(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, 15000);
    struct lx_fleet_key k = {.name = "bye", .max_inflight = 3};
    struct adm x;
    assert_int_equal(admit(e.a, &x, &k).verdict, LX_FLEET_ADMITTED);
    lx_fleet_finish(x.h, 0);
    left = false;
    lx_fleet_leave(e.a, left_cb, NULL);
    assert_true(run_until(&left));
    assert_int_equal(test_redis_long(&e.srv, "ZSCORE t:replicas replica-a"), -1);
    assert_true(test_redis_long(&e.srv, "ZSCORE t:replicas replica-b") > 0);
    env_stop(&e);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_library_loaded),
        cmocka_unit_test(test_rpm_fleet_wide),
        cmocka_unit_test(test_tpm_reserve_and_settle),
        cmocka_unit_test(test_inflight_fleet_wide),
        cmocka_unit_test(test_dead_replica_expires),
        cmocka_unit_test(test_heartbeat_heals_lost_counts),
        cmocka_unit_test(test_late_answers),
        cmocka_unit_test(test_redis_killed_and_back),
        cmocka_unit_test(test_provider_slots_and_cooldown),
        cmocka_unit_test(test_watch_reads_state),
        cmocka_unit_test(test_leave),
    };
    return cmocka_run_group_tests_name("fleet", tests, loop_setup, loop_teardown);
}
