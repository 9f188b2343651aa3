/* Unit tests for src/engine/exec.c: the retry policy (which failures are retried, the backoff delays),
 * and the lane machine on a real loop: retries, fallbacks, hedging and races, what commits a stream,
 * cancelling, the deadline and the capacity queue. The calls go to local providers: the mock, and a
 * scripted one that fails on demand and counts its calls. */
#include "../unit.h"
#include "../../../providers/provider.h"
#include "../../../src/config.h"
#include "../../../src/core/common.h"
#include "../../../src/core/conf.h"
#include "../../../src/engine/capacity.h"
#include "../../../src/engine/conf.h"
#include "../../../src/engine/exec.h"
#include "../../../src/engine/router.h"
#include "../../../src/io/loop.h"

static void expect_retry(int status, const char *code, bool want)
{
    struct lx_error e = {0};
    lx_error_set(&e, status, NULL, NULL, code, "x");
    assert_int_equal(lx_exec_retryable(&e), want);
    lx_error_clear(&e);
}

static void test_retryable(void **state)
{
    (void)state;
    int yes[] = {429, 500, 502, 503, 504, 529};
    for (size_t i = 0; i < LX_ARRAY_LEN(yes); i++)
        expect_retry(yes[i], NULL, true);
    expect_retry(502, "upstream_unreachable", true); /* connect errors */
    int no[] = {400, 401, 403, 404, 413, 422, 501};
    for (size_t i = 0; i < LX_ARRAY_LEN(no); i++)
        expect_retry(no[i], NULL, false);
    /* Our own verdicts are not retried on the same provider. */
    expect_retry(504, "upstream_timeout", false);
    expect_retry(504, "deadline_exceeded", false);
    expect_retry(429, "provider_at_capacity", false);
    expect_retry(503, "provider_cooldown", false);
    /* A spent quota is not refilled by a retry; an oversized answer would only come back oversized. */
    expect_retry(429, "insufficient_quota", false);
    expect_retry(402, "billing_error", false);
    expect_retry(502, "upstream_response_too_large", false);
    expect_retry(429, "rate_limit_exceeded", true);
}

static void test_backoff_full_jitter(void **state)
{
    (void)state;
    /* The ceiling doubles per retry: random values land in [0, base·2^n]. */
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, NULL, 0), 0);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, NULL, 100), 100);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, NULL, 101), 0);
    assert_int_equal(lx_exec_backoff_ms(2, 100, 10000, NULL, 400), 400);
    assert_int_equal(lx_exec_backoff_ms(2, 100, 10000, NULL, 401), 0);
    for (uint64_t r = 0; r < 5000; r += 7)
        assert_true(lx_exec_backoff_ms(3, 100, 10000, NULL, r * 2654435761u) <= 800);
    /* Capped by max_delay_ms however many retries came before. */
    for (uint64_t r = 0; r < 5000; r += 7)
        assert_true(lx_exec_backoff_ms(40, 100, 1500, NULL, r * 2654435761u) <= 1500);
}

static void test_backoff_retry_after(void **state)
{
    (void)state;
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "2", 0), 2000);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "0.5", 3), 500);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "60", 0), 10000); /* capped */
    /* An HTTP date or garbage falls back to the backoff. */
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "Wed, 21 Oct 2015 07:28:00 GMT", 50), 50);
    assert_int_equal(lx_exec_backoff_ms(0, 100, 10000, "-3", 50), 50);
}

/* ---- the lane machine on a real loop ---- */

/* A scripted local provider: its config state says how each call goes. */
struct script {
    int fail_first;      /* the first N calls fail with `status` */
    int status;          /* 503 unless set */
    long latency_ms;     /* before the answer (or the failure) */
    bool preamble_fails; /* a failing stream call first sends its role chunk */
    int calls, freed;    /* calls started, states freed */
};

struct script_call {
    struct script *sc;
    bool fail, stream;
    int step;
    char *model;
};

static void *script_start(const struct lx_provider_conf *p, const struct lx_chat *chat, long *delay_ms,
                          const char **dropped)
{
    struct script *sc = p->state;
    struct script_call *c = lx_calloc(1, sizeof *c);
    c->sc = sc;
    c->fail = ++sc->calls <= sc->fail_first;
    c->stream = chat->stream;
    c->model = lx_strdup(chat->model);
    *delay_ms = sc->latency_ms;
    *dropped = NULL;
    return c;
}

static json_t *chunk_of(const struct script_call *c, json_t *delta, const char *finish)
{
    return json_pack("{s:s,s:s,s:[{s:i,s:o,s:o}]}", "object", "chat.completion.chunk", "model", c->model, "choices",
                     "index", 0, "delta", delta, "finish_reason", finish ? json_string(finish) : json_null());
}

static int script_next(void *state, json_t **out, long *delay_ms, struct lx_error *err)
{
    struct script_call *c = state;
    *delay_ms = 0;
    *out = NULL;
    if (c->fail && !(c->stream && c->sc->preamble_fails && c->step == 0)) {
        lx_error_set(err, c->sc->status ? c->sc->status : 503, NULL, NULL, NULL, "scripted failure");
        return LX_ERR;
    }
    if (!c->stream) {
        *out = json_pack("{s:s,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:{s:i,s:i}}", "object", "chat.completion", "model",
                         c->model, "choices", "index", 0, "message", "role", "assistant", "content", c->model,
                         "finish_reason", "stop", "usage", "prompt_tokens", 3, "completion_tokens", 2);
        return LX_DONE;
    }
    switch (c->step++) {
    case 0: *out = chunk_of(c, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL); return LX_OK;
    case 1: *out = chunk_of(c, json_pack("{s:s}", "content", c->model), NULL); return LX_OK;
    case 2: *out = chunk_of(c, json_object(), "stop"); return LX_OK;
    default: return LX_DONE;
    }
}

static void script_free(void *state)
{
    struct script_call *c = state;
    c->sc->freed++;
    free(c->model);
    free(c);
}

static const struct lx_provider_type script_type = {
    .name = "script",
    .local_start = script_start,
    .local_next = script_next,
    .local_free = script_free,
};

static struct lx_provider_conf script_provider(const char *name, struct script *sc, long retries)
{
    return (struct lx_provider_conf){.name = (char *)name, .type = &script_type, .state = sc,
                                     .retries = {.max = retries, .base_delay_ms = 1, .max_delay_ms = 2},
                                     .timeouts = {.connect_ms = 1000, .first_byte_ms = 60000, .idle_ms = 60000,
                                                  .total_ms = 60000},
                                     .queue_timeout_ms = 60000, .max_upstream_body_bytes = 1 << 20};
}

/* A plan of lanes, each a list of targets (provider, model). */
struct target_spec {
    const struct lx_provider_conf *p;
    const char *model;
};

static struct lx_plan plan_of(long hedge_ms, size_t n_lanes, const struct target_spec *specs, const size_t *per_lane)
{
    struct lx_plan plan = {.lanes = lx_calloc(n_lanes, sizeof *plan.lanes), .n_lanes = n_lanes, .hedge_ms = hedge_ms};
    size_t k = 0;
    for (size_t l = 0; l < n_lanes; l++) {
        plan.lanes[l].targets = lx_calloc(per_lane[l], sizeof *plan.lanes[l].targets);
        for (size_t t = 0; t < per_lane[l]; t++, k++) {
            struct lx_target *tg = &plan.lanes[l].targets[plan.lanes[l].n++];
            tg->provider = specs[k].p;
            tg->model = lx_strdup(specs[k].model);
            tg->label = lx_sprintf("%s/%s", specs[k].p->name, specs[k].model);
            tg->listed = true;
        }
    }
    return plan;
}

/* What the owner of an exec was told. */
struct outcome {
    int commits, chunks, preambles, dones;
    int wins;               /* on_won calls */
    const int *calls;       /* a script's call count, read when on_won comes */
    int calls_at_win;
    char label[64];
    json_t *completion;  /* owned */
    struct lx_error err;
    bool chunk_before_commit;
    struct lx_buf text;  /* the content of the chunks, in order */
};

static void out_commit(void *owner, const char *label, const char *dropped)
{
    (void)dropped;
    struct outcome *o = owner;
    o->commits++;
    snprintf(o->label, sizeof o->label, "%s", label);
}

static void out_chunk(void *owner, json_t *chunk)
{
    struct outcome *o = owner;
    if (!o->commits)
        o->chunk_before_commit = true;
    o->chunks++;
    json_t *delta = json_object_get(json_array_get(json_object_get(chunk, "choices"), 0), "delta");
    if (json_object_get(delta, "role"))
        o->preambles++;
    const char *t = json_string_value(json_object_get(delta, "content"));
    if (t)
        lx_buf_puts(&o->text, t);
}

static void out_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct outcome *o = owner;
    o->dones++;
    o->completion = completion;
    if (err)
        lx_error_copy(&o->err, err);
    lx_loop_stop();
}

static void out_won(void *owner)
{
    struct outcome *o = owner;
    o->wins++;
    o->calls_at_win = o->calls ? *o->calls : -1;
}

static bool out_can_write(void *owner)
{
    (void)owner;
    return true;
}

static const struct lx_exec_ops outcome_ops = {
    .on_commit = out_commit, .on_chunk = out_chunk, .on_done = out_done, .can_write = out_can_write,
    .on_won = out_won,
};

static void loop_guard_cb(void *arg)
{
    *(bool *)arg = true;
    lx_loop_stop();
}

/* Run the loop until every outcome of os[0..n) is done (10 s hang guard). */
static void run_all(struct outcome *os, size_t n)
{
    bool fired = false;
    struct lx_timer *guard = lx_timer_new(loop_guard_cb, &fired);
    lx_timer_start(guard, 10000);
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += os[i].dones > 0;
        if (done == n || fired)
            break;
        lx_loop_run();
    }
    lx_timer_free(guard);
    assert_false(fired);
    lx_loop_drain(); /* the deferred frees */
}

static void outcome_clear(struct outcome *o)
{
    json_decref(o->completion);
    lx_error_clear(&o->err);
    lx_buf_free(&o->text);
    memset(o, 0, sizeof *o);
}

static struct lx_exec *start(struct lx_plan *plan, bool stream, struct outcome *o, struct lx_tally *tally,
                             uint64_t deadline, long deadline_ms)
{
    json_t *body = json_pack("{s:[{s:s,s:s}]}", "messages", "role", "user", "content", "hi");
    struct lx_chat tmpl = {.kind = LX_CALL_CHAT, .body = body, .stream = stream, .req_id = 1, .request_id = "t"};
    struct lx_exec *x = lx_exec_start(plan, &tmpl, deadline, deadline_ms, &outcome_ops, o);
    json_decref(body);
    if (tally)
        lx_exec_set_tally(x, tally);
    return x;
}

static const char *content_of(json_t *completion)
{
    return json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(completion, "choices"), 0), "message"), "content"));
}

static int loop_setup(void **state)
{
    (void)state;
    return lx_loop_init() == LX_OK ? 0 : -1;
}

static int loop_teardown(void **state)
{
    (void)state;
    lx_capacity_shutdown();
    lx_loop_free();
    return 0;
}

static void test_retries_then_answer(void **state)
{
    (void)state;
    struct script sc = {.fail_first = 2};
    struct lx_provider_conf p = script_provider("retrying", &sc, 2);
    struct outcome o = {0};
    struct lx_tally tally = {0};
    struct lx_plan plan = plan_of(-1, 1, (struct target_spec[]){{&p, "a"}}, (size_t[]){1});
    start(&plan, false, &o, &tally, 0, 0);
    assert_int_equal(sc.calls, 0); /* nothing runs before lx_exec_start returns */
    run_all(&o, 1);
    assert_int_equal(o.dones, 1);
    assert_false(lx_error_isset(&o.err));
    assert_string_equal(content_of(o.completion), "a");
    assert_string_equal(o.label, "retrying/a");
    assert_int_equal(sc.calls, 3);
    assert_int_equal(sc.freed, 3);
    assert_int_equal(tally.retries, 2);
    assert_int_equal(tally.calls, 1);
    assert_int_equal(tally.prompt_tokens, 3);
    assert_string_equal(tally.answered_by, "retrying/a");
    assert_int_equal(o.wins, 1); /* the request could be freed once the answer was in, not before */
    lx_tally_clear(&tally);
    outcome_clear(&o);

    /* retries.max spent: the last failure is the answer. */
    sc = (struct script){.fail_first = 9};
    plan = plan_of(-1, 1, (struct target_spec[]){{&p, "a"}}, (size_t[]){1});
    start(&plan, false, &o, NULL, 0, 0);
    run_all(&o, 1);
    assert_int_equal(o.err.status, 503);
    assert_int_equal(sc.calls, 3);
    assert_int_equal(o.commits, 0);
    assert_int_equal(o.wins, 0);
    outcome_clear(&o);

    /* A 400 is the client's: not retried. */
    sc = (struct script){.fail_first = 1, .status = 400};
    plan = plan_of(-1, 1, (struct target_spec[]){{&p, "a"}}, (size_t[]){1});
    start(&plan, false, &o, NULL, 0, 0);
    run_all(&o, 1);
    assert_int_equal(o.err.status, 400);
    assert_int_equal(sc.calls, 1);
    outcome_clear(&o);
}

static void test_fallback(void **state)
{
    (void)state;
    struct script down = {.fail_first = 100}, up = {0};
    struct lx_provider_conf a = script_provider("down", &down, 0), b = script_provider("up", &up, 0);
    struct outcome o = {0};
    struct lx_tally tally = {0};
    struct lx_plan plan = plan_of(-1, 1, (struct target_spec[]){{&a, "x"}, {&b, "y"}}, (size_t[]){2});
    start(&plan, false, &o, &tally, 0, 0);
    run_all(&o, 1);
    assert_false(lx_error_isset(&o.err));
    assert_string_equal(o.label, "up/y");
    assert_int_equal(down.calls, 1);
    assert_int_equal(up.calls, 1);
    assert_int_equal(tally.fallbacks, 1);
    lx_tally_clear(&tally);
    outcome_clear(&o);
}

/* Hedged: the second lane starts hedge_ms after the first, the first answer wins and the other lane is
 * cancelled (its state freed). Raced (hedge_ms 0): both start at once. */
static void test_hedge_and_race(void **state)
{
    (void)state;
    for (long hedge = 0; hedge <= 1; hedge++) {
        struct script slow = {.latency_ms = 60000}, fast = {0};
        struct lx_provider_conf a = script_provider("slow", &slow, 0), b = script_provider("fast", &fast, 0);
        struct outcome o = {0};
        struct lx_plan plan = plan_of(hedge, 2, (struct target_spec[]){{&a, "x"}, {&b, "y"}}, (size_t[]){1, 1});
        start(&plan, hedge == 1, &o, NULL, 0, 0);
        run_all(&o, 1);
        assert_false(lx_error_isset(&o.err));
        assert_string_equal(o.label, "fast/y");
        assert_int_equal(slow.calls, 1);
        assert_int_equal(fast.calls, 1);
        assert_int_equal(slow.freed, 1); /* the loser was cancelled */
        assert_int_equal(o.commits, 1);
        outcome_clear(&o);
    }
}

/* A stream commits at its first content, not at its role chunk: a lane that fails after the preamble is
 * retried without the client seeing two beginnings, and on_commit comes before the first chunk. */
static void test_stream_commit(void **state)
{
    (void)state;
    struct script sc = {.fail_first = 1, .preamble_fails = true};
    struct lx_provider_conf p = script_provider("shaky", &sc, 1);
    struct outcome o = {.calls = &sc.calls};
    struct lx_plan plan = plan_of(-1, 1, (struct target_spec[]){{&p, "words"}}, (size_t[]){1});
    start(&plan, true, &o, NULL, 0, 0);
    run_all(&o, 1);
    /* The lone target's opening went out (on_commit) before its failure, but the request is let go only
     * at the retry's first content: the retry still had it to send. */
    assert_int_equal(o.wins, 1);
    assert_int_equal(o.calls_at_win, 2);
    assert_false(lx_error_isset(&o.err));
    assert_null(o.completion);
    assert_int_equal(sc.calls, 2);
    assert_int_equal(o.commits, 1);
    assert_false(o.chunk_before_commit);
    assert_int_equal(o.preambles, 1);
    assert_int_equal(o.chunks, 3);
    assert_string_equal(o.text.data, "words");
    outcome_clear(&o);
}

static void test_cancel_and_deadline(void **state)
{
    (void)state;
    struct script sc = {.latency_ms = 60000};
    struct lx_provider_conf p = script_provider("hangs", &sc, 0);
    struct outcome o = {0};
    struct lx_plan plan = plan_of(-1, 1, (struct target_spec[]){{&p, "x"}}, (size_t[]){1});
    struct lx_exec *x = start(&plan, false, &o, NULL, 0, 0);
    bool fired = false;
    struct lx_timer *t = lx_timer_new(loop_guard_cb, &fired);
    lx_timer_start(t, 5);
    lx_loop_run(); /* the call starts */
    lx_timer_free(t);
    assert_int_equal(sc.calls, 1);
    lx_exec_cancel(x);
    lx_loop_drain();
    assert_int_equal(o.dones, 0); /* no callback after a cancel */
    assert_int_equal(sc.freed, 1);

    sc = (struct script){.latency_ms = 60000};
    plan = plan_of(-1, 1, (struct target_spec[]){{&p, "x"}}, (size_t[]){1});
    start(&plan, false, &o, NULL, lx_now_ms() + 5, 5);
    run_all(&o, 1);
    assert_int_equal(o.err.status, 504);
    assert_string_equal(o.err.code, "deadline_exceeded");
    assert_int_equal(sc.freed, 1);
    outcome_clear(&o);
}

/* max_concurrency 1: a second exec waits in the queue, FIFO, and runs when the first is done; with
 * queue_timeout_ms passed it is a 429; after `failures` failures in a row the provider is skipped. */
static void test_capacity_queue_and_cooldown(void **state)
{
    (void)state;
    struct script sc = {.latency_ms = 20};
    struct lx_provider_conf p = script_provider("narrow", &sc, 0);
    p.max_concurrency = 1;
    lx_capacity_apply(&p);
    struct outcome o[3] = {0};
    for (int i = 0; i < 3; i++) {
        struct lx_plan plan = plan_of(-1, 1, (struct target_spec[]){{&p, "q"}}, (size_t[]){1});
        start(&plan, false, &o[i], NULL, 0, 0);
    }
    bool fired = false;
    struct lx_timer *t = lx_timer_new(loop_guard_cb, &fired);
    lx_timer_start(t, 5);
    lx_loop_run();
    lx_timer_free(t);
    assert_int_equal(sc.calls, 1); /* one in flight, two waiting */
    assert_int_equal(lx_capacity_queued(lx_capacity_of(&p)), 2);
    run_all(o, 3);
    assert_int_equal(sc.calls, 3);
    for (int i = 0; i < 3; i++) {
        assert_false(lx_error_isset(&o[i].err));
        outcome_clear(&o[i]);
    }
    assert_int_equal(lx_capacity_inflight(lx_capacity_of(&p)), 0);

    /* The queue's own deadline. */
    sc = (struct script){.latency_ms = 60000};
    p.queue_timeout_ms = 1;
    struct lx_plan hold = plan_of(-1, 1, (struct target_spec[]){{&p, "h"}}, (size_t[]){1});
    struct lx_exec *holder = start(&hold, false, &o[0], NULL, 0, 0);
    struct lx_plan plan = plan_of(-1, 1, (struct target_spec[]){{&p, "w"}}, (size_t[]){1});
    start(&plan, false, &o[1], NULL, 0, 0);
    run_all(&o[1], 1);
    assert_int_equal(o[1].err.status, 429);
    assert_string_equal(o[1].err.code, "provider_at_capacity");
    lx_exec_cancel(holder);
    lx_loop_drain();
    outcome_clear(&o[0]);
    outcome_clear(&o[1]);

    /* The breaker: two failures in a row, then no call at all. */
    struct script bad = {.fail_first = 100, .status = 500};
    struct lx_provider_conf c = script_provider("cools", &bad, 0);
    c.cooldown = (struct lx_cooldown){.failures = 2, .period_ms = 600000};
    lx_capacity_apply(&c);
    for (int i = 0; i < 3; i++) {
        struct lx_plan pl = plan_of(-1, 1, (struct target_spec[]){{&c, "z"}}, (size_t[]){1});
        start(&pl, false, &o[i], NULL, 0, 0);
        run_all(&o[i], 1);
    }
    assert_int_equal(o[0].err.status, 500);
    assert_int_equal(o[1].err.status, 500);
    assert_int_equal(o[2].err.status, 503);
    assert_string_equal(o[2].err.code, "provider_cooldown");
    assert_int_equal(bad.calls, 2);
    for (int i = 0; i < 3; i++)
        outcome_clear(&o[i]);
}

/* The real mock provider, routed from a config as a chat request is: its answer, whole and streamed. */
static void test_mock_provider(void **state)
{
    (void)state;
    char err[256];
    const char *json = "{\"providers\":{\"m\":{\"type\":\"mock\",\"chunk_delay_ms\":1}},"
                       "\"aliases\":{\"fast\":[\"m/echo\"]}}";
    struct lx_config *cfg = lx_config_load_buffer(json, strlen(json), err, sizeof err);
    assert_non_null(cfg);
    lx_engine_conf_apply(cfg->engine);
    for (int stream = 0; stream < 2; stream++) {
        struct outcome o = {0};
        struct lx_plan plan;
        struct lx_error e = {0};
        assert_int_equal(lx_route_plan(cfg->engine, "fast", &plan, &e), LX_OK);
        start(&plan, stream, &o, NULL, 0, 0);
        run_all(&o, 1);
        assert_false(lx_error_isset(&o.err));
        assert_string_equal(o.label, "m/echo");
        const char *text = stream ? o.text.data : content_of(o.completion);
        assert_string_equal(text, "This is the llmux mock provider. You said: hi");
        if (stream)
            assert_true(o.chunks > 3);
        outcome_clear(&o);
    }
    lx_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_backoff_retry_after),
        cmocka_unit_test(test_retries_then_answer),
        cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_hedge_and_race),
        cmocka_unit_test(test_stream_commit),
        cmocka_unit_test(test_cancel_and_deadline),
        cmocka_unit_test(test_capacity_queue_and_cooldown),
        cmocka_unit_test(test_mock_provider),
    };
    return cmocka_run_group_tests_name("exec", tests, loop_setup, loop_teardown);
}
