/* Unit tests for src/server/ratelimit.c: the reserve estimate, the reset format, reserve-then-settle on
 * this replica's buckets with the x-ratelimit-* headers, and the fleet-wide admission against a real
 * redis-server: admitted later (LX_AGAIN, then the continuation), refused with the fleet's numbers, and
 * with Redis killed the two fail modes (open: local counters decide; closed: 503). Requests go through a
 * fake transport; no timing thresholds. */
#include "../unit.h"
#include "../fake_transport.h"
#include "../loop_run.h"
#include "../redis_server.h"
#include "../../../src/config.h"
#include "../../../src/core/conf.h"
#include "../../../src/io/fleet.h"
#include "../../../src/server/auth.h"
#include "../../../src/server/ratelimit.h"

static const char *const with_key[] = {"Authorization", "Bearer sk-ratelimit-test-key", NULL};

static struct lx_config *load(const char *json)
{
    char err[512];
    struct lx_config *c = lx_config_load_buffer(json, strlen(json), err, sizeof err);
    if (!c)
        fail_msg("config: %s", err);
    return c;
}

static long header_long(const struct lx_req *req, const char *name)
{
    const char *v = resp_header(req, name);
    assert_non_null(v);
    return strtol(v, NULL, 10);
}

static struct fake_req *post(struct lx_config *c, const char *route, const char *body)
{
    struct fake_req *f = fake_req_new(c, "POST", "/v1/chat/completions", body, with_key);
    f->req.route = route;
    lx_req_set_state(&f->req, LX_REQ_HANDLING);
    return f;
}

static void done(struct fake_req *f, long prompt, long completion)
{
    f->req.tally.prompt_tokens = prompt;
    f->req.tally.completion_tokens = completion;
    lx_req_finish(&f->req, true); /* the bus has no subscriber here: settle as auth's subscriber would */
    lx_ratelimit_finished(&f->req);
    lx_req_release(&f->req);
}

static void test_reset_str(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(lx_ratelimit_reset_str(0, b, sizeof b), "0ms");
    assert_string_equal(lx_ratelimit_reset_str(-5, b, sizeof b), "0ms");
    assert_string_equal(lx_ratelimit_reset_str(250, b, sizeof b), "250ms");
    assert_string_equal(lx_ratelimit_reset_str(1000, b, sizeof b), "1s");
    assert_string_equal(lx_ratelimit_reset_str(7650, b, sizeof b), "7.7s");
    assert_string_equal(lx_ratelimit_reset_str(60000, b, sizeof b), "1m0s");
    assert_string_equal(lx_ratelimit_reset_str(360000, b, sizeof b), "6m0s");
    assert_string_equal(lx_ratelimit_reset_str(3723000, b, sizeof b), "1h2m3s");
}

static void test_reserve(void **state)
{
    (void)state;
    struct lx_config *c = load("{}");
    struct {
        const char *route, *body;
        long want;
    } cases[] = {
        /* "m" + "user" + "hello world" = 16 characters: 4 tokens, plus max_tokens */
        {"/v1/chat/completions", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}],\"max_tokens\":50}", 54},
        {"/v1/chat/completions", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}]}", 4 + 1024},
        {"/v1/responses", "{\"model\":\"m\",\"input\":\"hello world\",\"max_output_tokens\":7}", 3 + 7},
        {"/v1/chat/completions", "{\"model\":\"m\",\"max_completion_tokens\":10}", 1 + 10},
        /* an inline image does not count as text: "m" "user" "image_url" are 14 characters, 4 tokens */
        {"/v1/chat/completions", "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                                 "\"image_url\":{\"url\":\"data:image/png;base64,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}]}],"
                                 "\"max_tokens\":1}", 5},
        /* a batch sums its items' budgets */
        {"/v1/batch", "{\"requests\":[{\"model\":\"m\",\"max_tokens\":5},{\"model\":\"m\",\"max_tokens\":6}]}", 1 + 11},
        /* embeddings answer no completion tokens */
        {"/v1/embeddings", "{\"model\":\"e\",\"input\":\"abcdefgh\"}", 3},
        {"/v1/chat/completions", "not json", 1024},
        {"/v1/chat/completions", "", 0},
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(cases); i++) {
        struct fake_req *f = post(c, cases[i].route, cases[i].body);
        long got = lx_ratelimit_reserve(&f->req, 1024);
        if (got != cases[i].want)
            fail_msg("%s: reserve %ld, want %ld", cases[i].body, got, cases[i].want);
        lx_req_finish(&f->req, true);
        lx_req_release(&f->req);
    }
    lx_config_unref(c);
}

/* tpm 100, answers budgeted at 40 tokens (max_tokens 40 + 4 of text): two fit, the third waits; settling
 * an answer that used less gives the rest back. */
static void test_local_reserve_settle(void **state)
{
    (void)state;
    setenv("LX_RL_KEY", "sk-ratelimit-test-key", 1);
    struct lx_config *c = load("{\"auth\":{\"keys\":[{\"name\":\"app\",\"key\":\"${LX_RL_KEY}\",\"rpm\":100,\"tpm\":100}]}}");
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello world\"}],\"max_tokens\":40}";
    struct lx_error err = {0};
    struct fake_req *a = post(c, "/v1/chat/completions", body), *b = post(c, "/v1/chat/completions", body);
    assert_int_equal(lx_auth_admit(&a->req, &err, NULL), LX_OK);
    assert_int_equal(header_long(&a->req, "x-ratelimit-remaining-tokens"), 56);
    assert_int_equal(header_long(&a->req, "x-ratelimit-limit-tokens"), 100);
    assert_int_equal(header_long(&a->req, "x-ratelimit-remaining-requests"), 99);
    assert_int_equal(lx_auth_admit(&b->req, &err, NULL), LX_OK);
    assert_int_equal(header_long(&b->req, "x-ratelimit-remaining-tokens"), 12);
    struct fake_req *x = post(c, "/v1/chat/completions", body);
    assert_int_equal(lx_auth_admit(&x->req, &err, NULL), LX_ERR);
    assert_int_equal(err.status, 429);
    assert_string_equal(err.code, "rate_limit_exceeded");
    assert_non_null(strstr(err.message, "tokens per minute"));
    assert_true(atol(err.retry_after) >= 1);
    lx_error_clear(&err);
    done(x, 0, 0);
    /* a used 10 of its 44: 34 come back, so 12 + 34 = 46 (plus what refilled) holds another 44 */
    done(a, 4, 6);
    struct fake_req *y = post(c, "/v1/chat/completions", body);
    assert_int_equal(lx_auth_admit(&y->req, &err, NULL), LX_OK);
    long rem = header_long(&y->req, "x-ratelimit-remaining-tokens");
    assert_true(rem >= 2 && rem <= 4);
    done(b, 0, 0);
    done(y, 0, 0);
    lx_config_unref(c);
}

/* ---- fleet-wide ---- */

struct cont {
    bool called;
    struct lx_req *req;
};
static struct cont cont;

static void then_cb(struct lx_req *req, const struct lx_error *refusal)
{
    if (refusal) { /* answered as the route table answers it */
        lx_req_respond_error(req, refusal);
        return;
    }
    cont.called = true;
    cont.req = req;
}

/* Admit f through the fleet: LX_AGAIN, then either the continuation or an answer. */
static void admit_later(struct fake_req *f)
{
    struct lx_error err = {0};
    memset(&cont, 0, sizeof cont);
    assert_int_equal(lx_auth_admit(&f->req, &err, then_cb), LX_AGAIN);
    assert_false(cont.called); /* never from inside the call */
    uint64_t end = lx_now_ms() + LX_TEST_HANG_GUARD_MS;
    while (!cont.called && f->req.state == LX_REQ_HANDLING && lx_now_ms() < end)
        loop_turn();
    assert_true(cont.called || f->req.state == LX_REQ_RESPONDING);
}

static void test_fleet_admission_and_fail_modes(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv, false, NULL), 0);
    setenv("LX_RL_KEY", "sk-ratelimit-test-key", 1);
    for (int closed = 0; closed <= 1; closed++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"auth\":{\"keys\":[{\"name\":\"app\",\"key\":\"${LX_RL_KEY}\",\"rpm\":2}]},"
                 "\"redis\":{\"url\":\"%s\",\"prefix\":\"rl%d:\",\"timeout_ms\":5000,\"reconnect_max_ms\":100,"
                 "\"fail_mode\":\"%s\"}}",
                 srv.url, closed, closed ? "closed" : "open");
        struct lx_config *c = load(json);
        struct lx_fleet *fleet = lx_fleet_new(c->redis, NULL);
        lx_ratelimit_share(fleet);
        uint64_t end = lx_now_ms() + LX_TEST_HANG_GUARD_MS;
        while (!lx_redis_ready(lx_fleet_redis(fleet)) && lx_now_ms() < end)
            loop_turn();
        assert_true(lx_redis_ready(lx_fleet_redis(fleet)));

        /* Two admitted by Redis (with the fleet's numbers in the headers), the third refused by it. */
        struct fake_req *f1 = post(c, "/v1/chat/completions", "{}"), *f2 = post(c, "/v1/chat/completions", "{}");
        admit_later(f1);
        assert_true(cont.called);
        assert_int_equal(header_long(&f1->req, "x-ratelimit-remaining-requests"), 1);
        assert_non_null(f1->req.fleet_hold);
        admit_later(f2);
        assert_true(cont.called);
        assert_int_equal(header_long(&f2->req, "x-ratelimit-remaining-requests"), 0);
        struct fake_req *f3 = post(c, "/v1/chat/completions", "{}");
        admit_later(f3);
        assert_false(cont.called);
        assert_int_equal(f3->req.status, 429);
        assert_string_equal(f3->req.error_code, "rate_limit_exceeded");
        done(f1, 1, 1);
        done(f2, 1, 1);
        done(f3, 0, 0);

        /* Redis killed: fail open lets the next one in on this replica's own bucket (its two requests were
         * followed there too, so it is empty as well: refused locally, then not counted); fail closed
         * answers 503. */
        test_redis_kill(&srv);
        struct fake_req *f4 = post(c, "/v1/chat/completions", "{}");
        admit_later(f4);
        if (closed) {
            assert_false(cont.called);
            assert_int_equal(f4->req.status, 503);
            assert_string_equal(f4->req.error_code, "rate_limit_unavailable");
        } else {
            assert_false(cont.called);
            assert_int_equal(f4->req.status, 429); /* the local bucket had followed the fleet's two */
            assert_true(lx_fleet_unavailable(fleet, "keys") >= 1);
        }
        done(f4, 0, 0);
        assert_int_equal(test_redis_spawn(&srv), 0);
        end = lx_now_ms() + LX_TEST_HANG_GUARD_MS;
        while (!lx_redis_ready(lx_fleet_redis(fleet)) && lx_now_ms() < end)
            loop_turn();
        /* Back (empty): decided in Redis again. */
        struct fake_req *f5 = post(c, "/v1/chat/completions", "{}");
        admit_later(f5);
        assert_true(cont.called);
        assert_int_equal(header_long(&f5->req, "x-ratelimit-remaining-requests"), 1);

        /* A client that leaves while Redis decides gives its hold back: nothing stays counted. */
        struct fake_req *f6 = post(c, "/v1/chat/completions", "{}");
        struct lx_error err = {0};
        assert_int_equal(lx_auth_admit(&f6->req, &err, then_cb), LX_AGAIN);
        lx_req_client_gone(&f6->req);
        done(f6, 0, 0);
        done(f5, 0, 0);
        lx_ratelimit_share(NULL);
        lx_fleet_free(fleet);
        lx_config_unref(c);
        run_ms(20);
    }
    test_redis_stop(&srv);
}

/* Without keys, limits.max_inflight_per_key counts anonymous clients fleet-wide as well. */
static void test_fleet_anonymous_inflight(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv, false, NULL), 0);
    char json[512];
    snprintf(json, sizeof json, "{\"limits\":{\"max_inflight_per_key\":1},\"redis\":{\"url\":\"%s\",\"timeout_ms\":5000}}",
             srv.url);
    struct lx_config *c = load(json);
    struct lx_fleet *fleet = lx_fleet_new(c->redis, NULL);
    lx_ratelimit_share(fleet);
    struct fake_req *a = fake_req_new(c, "POST", "/v1/chat/completions", "{}", NULL);
    lx_req_set_state(&a->req, LX_REQ_HANDLING);
    admit_later(a);
    assert_true(cont.called);
    assert_null(resp_header(&a->req, "x-ratelimit-limit-requests")); /* no key, no rate headers */
    struct fake_req *b = fake_req_new(c, "POST", "/v1/chat/completions", "{}", NULL);
    lx_req_set_state(&b->req, LX_REQ_HANDLING);
    admit_later(b);
    assert_int_equal(b->req.status, 429);
    assert_string_equal(b->req.error_code, "too_many_inflight");
    done(b, 0, 0);
    done(a, 0, 0);
    lx_ratelimit_share(NULL);
    lx_fleet_free(fleet);
    lx_config_unref(c);
    test_redis_stop(&srv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_str),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_local_reserve_settle),
        cmocka_unit_test(test_fleet_admission_and_fail_modes),
        cmocka_unit_test(test_fleet_anonymous_inflight),
    };
    int rc = cmocka_run_group_tests_name("ratelimit", tests, loop_setup, loop_teardown);
    lx_auth_shutdown();
    return rc;
}
