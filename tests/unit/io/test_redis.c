/* Unit tests for src/io/redis.c and src/io/redis_conf.c: the URL and the config section, then the client on a
 * real loop against a real redis-server (pipelining, AUTH, SELECT, names looked up with evdns, command
 * timeouts, a frozen server dropped and a killed one reconnected, cancel). No timing thresholds: waits
 * have hang guards only. */
#include "../unit.h"
#include "../loop_run.h"
#include "../redis_server.h"
#include "../../../src/core/common.h"
#include "../../../src/io/redis.h"


static bool run_until_state(struct lx_redis *r, enum lx_redis_state want)
{
    uint64_t end = lx_now_ms() + 20000;
    while (lx_redis_state(r) != want && lx_now_ms() < end)
        loop_turn();
    return lx_redis_state(r) == want;
}

/* One command's outcome. */
struct result {
    bool done;
    int calls;
    enum lx_redis_status st;
    enum lx_redis_reply_type type;
    long long integer;
    char str[256];
    size_t count;
};

static void result_cb(void *arg, enum lx_redis_status st, const struct lx_redis_reply *reply)
{
    struct result *res = arg;
    res->calls++;
    res->done = true;
    res->st = st;
    if (reply) {
        res->type = lx_redis_reply_type(reply);
        res->integer = lx_redis_reply_integer(reply);
        size_t len = 0;
        const char *s = lx_redis_reply_str(reply, &len);
        if (s)
            snprintf(res->str, sizeof res->str, "%.*s", (int)len, s);
        res->count = lx_redis_reply_count(reply);
    }
}

static struct lx_redis_conf conf_for(const struct test_redis *t)
{
    struct lx_redis_conf c = {0};
    char err[256];
    assert_int_equal(lx_redis_parse_url(t->url, &c.target, err, sizeof err), LX_OK);
    c.url = lx_strdup(t->url);
    c.prefix = lx_strdup("t:");
    c.timeout_ms = 2000; /* generous: the machine may be busy; the timeout test sets its own */
    c.connect_timeout_ms = 3000;
    c.reconnect_max_ms = 200;
    c.lease_ms = 15000;
    if (t->password[0])
        c.target.password = lx_strdup(t->password);
    return c;
}

static struct lx_redis_cmd *cmd(struct lx_redis *r, struct result *res, const char *a0, const char *a1,
                                const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    int argc = a2 ? 3 : a1 ? 2 : 1;
    memset(res, 0, sizeof *res);
    return lx_redis_command(r, "test", 0, result_cb, res, argc, argv, NULL);
}

/* ---- URL and config ---- */

static void test_parse_url(void **state)
{
    (void)state;
    struct lx_redis_target t;
    char err[256];
    assert_int_equal(lx_redis_parse_url("redis://cache.internal:6380/3", &t, err, sizeof err), LX_OK);
    assert_string_equal(t.host, "cache.internal");
    assert_int_equal(t.port, 6380);
    assert_int_equal(t.db, 3);
    assert_null(t.password);
    lx_redis_target_free(&t);

    assert_int_equal(lx_redis_parse_url("redis://localhost", &t, err, sizeof err), LX_OK);
    assert_int_equal(t.port, 6379);
    assert_int_equal(t.db, 0);
    lx_redis_target_free(&t);

    assert_int_equal(lx_redis_parse_url("redis://:s%40cret@10.0.0.5:6379/0", &t, err, sizeof err), LX_OK);
    assert_null(t.user);
    assert_string_equal(t.password, "s@cret");
    assert_string_equal(t.host, "10.0.0.5");
    lx_redis_target_free(&t);

    assert_int_equal(lx_redis_parse_url("redis://llmux:pw@[::1]:7000/1", &t, err, sizeof err), LX_OK);
    assert_string_equal(t.user, "llmux");
    assert_string_equal(t.password, "pw");
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 7000);
    assert_int_equal(t.db, 1);
    lx_redis_target_free(&t);

    assert_int_equal(lx_redis_parse_url("unix:/run/redis/redis.sock", &t, err, sizeof err), LX_OK);
    assert_string_equal(t.path, "/run/redis/redis.sock");
    assert_null(t.host);
    lx_redis_target_free(&t);
    assert_int_equal(lx_redis_parse_url("unix:///run/r.sock?db=4", &t, err, sizeof err), LX_OK);
    assert_string_equal(t.path, "/run/r.sock");
    assert_int_equal(t.db, 4);
    lx_redis_target_free(&t);

    const char *bad[] = {"rediss://host:6379", "http://host", "redis://", "redis://host:0", "redis://host:99999",
                         "redis://host/x",     "redis://user@host", "unix:relative.sock", "unix:/r.sock?x=1",
                         "redis://a b:1",      "redis://:%zz@host", "redis://[::1/0"};
    for (size_t i = 0; i < LX_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        assert_int_equal(lx_redis_parse_url(bad[i], &t, err, sizeof err), LX_ERR);
        assert_true(err[0] != '\0');
        assert_null(t.host);
        assert_null(t.password);
    }
    /* The TLS scheme is refused with the way out, not a bare "bad URL". */
    lx_redis_parse_url("rediss://host", &t, err, sizeof err);
    assert_non_null(strstr(err, "TLS"));
}

static void test_conf_section(void **state)
{
    (void)state;
    char err[256];
    struct lx_redis_conf c;
    json_t *root = json_loads("{}", 0, NULL);
    assert_int_equal(lx_redis_conf_parse(root, &c, err, sizeof err), LX_OK);
    assert_null(c.url); /* off */
    json_decref(root);

    root = json_loads("{\"redis\": null}", 0, NULL);
    assert_int_equal(lx_redis_conf_parse(root, &c, err, sizeof err), LX_OK);
    assert_null(c.url);
    json_decref(root);

    root = json_loads("{\"redis\": {\"url\": \"redis://:frompath@h:1/2\", \"password\": \"fromkey\"}}", 0, NULL);
    assert_int_equal(lx_redis_conf_parse(root, &c, err, sizeof err), LX_OK);
    assert_string_equal(c.target.password, "fromkey"); /* the key wins over the URL */
    assert_string_equal(c.prefix, "llmux:");
    assert_int_equal(c.timeout_ms, 50);
    assert_int_equal(c.connect_timeout_ms, 1000);
    assert_int_equal(c.reconnect_max_ms, 2000);
    assert_int_equal(c.lease_ms, 15000);
    assert_false(c.fail_closed);
    char *shown = lx_redis_url_redacted(&c);
    assert_string_equal(shown, "redis://:***@h:1/2");
    assert_null(strstr(shown, "fromkey"));
    free(shown);
    lx_redis_conf_free(&c);
    json_decref(root);

    root = json_loads("{\"redis\": {\"url\": \"unix:/r.sock\", \"prefix\": \"{llmux}:\", \"timeout_ms\": 20, "
                      "\"fail_mode\": \"closed\", \"lease_ms\": 5000}}",
                      0, NULL);
    assert_int_equal(lx_redis_conf_parse(root, &c, err, sizeof err), LX_OK);
    assert_string_equal(c.prefix, "{llmux}:");
    assert_int_equal(c.timeout_ms, 20);
    assert_int_equal(c.lease_ms, 5000);
    assert_true(c.fail_closed);
    lx_redis_conf_free(&c);
    json_decref(root);

    struct {
        const char *json, *want;
    } bad[] = {
        {"{\"redis\": 5}", "redis: expected an object"},
        {"{\"redis\": {}}", "redis.url: required"},
        {"{\"redis\": {\"url\": \"redis://h\", \"colour\": 1}}", "redis.colour: unknown key"},
        {"{\"redis\": {\"url\": \"rediss://h\"}}", "redis.url: rediss://"},
        {"{\"redis\": {\"url\": \"redis://h\", \"timeout_ms\": 0}}", "redis.timeout_ms: expected an integer"},
        {"{\"redis\": {\"url\": \"redis://h\", \"fail_mode\": \"maybe\"}}", "redis.fail_mode: expected"},
        {"{\"redis\": {\"url\": \"redis://h\", \"prefix\": \"a b\"}}", "redis.prefix: expected printable"},
        {"{\"redis\": {\"url\": \"redis://h\", \"password\": 7}}", "redis.password: expected"},
        {"{\"redis\": {\"url\": \"redis://:topsecret@h/x\"}}", "redis.url: the path is the database"},
    };
    for (size_t i = 0; i < LX_ARRAY_LEN(bad); i++) {
        root = json_loads(bad[i].json, 0, NULL);
        assert_non_null(root);
        assert_int_equal(lx_redis_conf_parse(root, &c, err, sizeof err), LX_ERR);
        if (strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
            fail_msg("%s: got '%s', want '%s...'", bad[i].json, err, bad[i].want);
        assert_null(strstr(err, "topsecret"));
        assert_null(c.url);
        json_decref(root);
    }
}

/* ---- the client on a real server ---- */

struct states {
    enum lx_redis_state seen[64];
    int n;
};

static void state_cb(void *arg, enum lx_redis_state s)
{
    struct states *st = arg;
    if (st->n < 64)
        st->seen[st->n++] = s;
}

static void test_commands_and_pipelining(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv, false, NULL), 0);
    struct lx_redis_conf conf = conf_for(&srv);
    struct lx_redis *r = lx_redis_new(&conf);
    struct states seen = {0};
    lx_redis_on_state(r, state_cb, &seen);
    assert_int_equal(lx_redis_state(r), LX_REDIS_DOWN);

    /* Before READY: not sent, answered later with EDOWN (never from inside the call). */
    struct result early;
    cmd(r, &early, "PING", NULL, NULL);
    assert_false(early.done);
    assert_true(run_until(&early.done));
    assert_int_equal(early.st, LX_REDIS_EDOWN);

    assert_true(run_until_state(r, LX_REDIS_READY));
    assert_true(seen.n >= 3);
    assert_int_equal(seen.seen[0], LX_REDIS_CONNECTING);
    assert_int_equal(seen.seen[seen.n - 1], LX_REDIS_READY);

    struct result res;
    cmd(r, &res, "SET", "greeting", "hello\r\nworld");
    assert_true(run_until(&res.done));
    assert_int_equal(res.st, LX_REDIS_OK);
    assert_int_equal(res.type, LX_REDIS_REPLY_STATUS);
    cmd(r, &res, "GET", "greeting", NULL);
    assert_true(run_until(&res.done));
    assert_string_equal(res.str, "hello\r\nworld");
    cmd(r, &res, "GET", "nothing-here", NULL);
    assert_true(run_until(&res.done));
    assert_int_equal(res.type, LX_REDIS_REPLY_NIL);
    cmd(r, &res, "INCRBY", "greeting", "1");
    assert_true(run_until(&res.done));
    assert_int_equal(res.st, LX_REDIS_EREPLY);
    assert_int_equal(res.type, LX_REDIS_REPLY_ERROR);
    assert_non_null(strstr(res.str, "not an integer"));

    /* 1000 commands in one loop turn: all answered, in order, without waiting on each other. */
    enum { N = 1000 };
    static struct result many[N];
    for (int i = 0; i < N; i++)
        cmd(r, &many[i], "INCR", "counter", NULL);
    struct lx_redis_stats stats;
    lx_redis_stats(r, &stats);
    assert_int_equal(stats.pending, N);
    assert_true(run_until(&many[N - 1].done));
    for (int i = 0; i < N; i++) {
        assert_int_equal(many[i].st, LX_REDIS_OK);
        assert_int_equal(many[i].integer, i + 1);
        assert_int_equal(many[i].calls, 1);
    }
    cmd(r, &res, "LRANGE", "none", "0");
    assert_true(run_until(&res.done)); /* wrong arity: an error reply */
    const char *argv[] = {"RPUSH", "list", "a", "b", "c"};
    memset(&res, 0, sizeof res);
    lx_redis_command(r, "test", 0, result_cb, &res, 5, argv, NULL);
    assert_true(run_until(&res.done));
    const char *argv2[] = {"LRANGE", "list", "0", "-1"};
    memset(&res, 0, sizeof res);
    lx_redis_command(r, "test", 0, result_cb, &res, 4, argv2, NULL);
    assert_true(run_until(&res.done));
    assert_int_equal(res.type, LX_REDIS_REPLY_ARRAY);
    assert_int_equal(res.count, 3);

    /* The latency histogram counted every answered command under its op. */
    size_t nlat;
    const struct lx_redis_latency *lat = lx_redis_latencies(r, &nlat);
    assert_int_equal(nlat, 1);
    assert_string_equal(lat[0].op, "test");
    assert_true(lat[0].count >= N + 6);
    assert_int_equal(lat[0].buckets[LX_REDIS_LATENCY_BUCKETS - 1] <= lat[0].count, 1);
    lx_redis_stats(r, &stats);
    assert_int_equal(stats.connects, 1);
    assert_int_equal(stats.errors[LX_REDIS_EDOWN], 1);
    assert_true(stats.errors[LX_REDIS_EREPLY] >= 2);
    assert_int_equal(stats.pending, 0);

    /* A cancelled command's callback never runs; the connection carries on. */
    struct result cancelled;
    lx_redis_cancel(cmd(r, &cancelled, "PING", NULL, NULL));
    cmd(r, &res, "PING", NULL, NULL);
    assert_true(run_until(&res.done));
    assert_false(cancelled.done);

    /* Freed with commands in flight: their callbacks do not run. */
    struct result orphan;
    cmd(r, &orphan, "PING", NULL, NULL);
    lx_redis_free(r);
    run_ms(20);
    assert_false(orphan.done);
    lx_redis_conf_free(&conf);
    test_redis_stop(&srv);
}

static void test_tcp_name_db_and_auth(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv, true, "s3cret-pw"), 0);
    /* A host name (localhost, from /etc/hosts through evdns), a database and a password. */
    char url[128];
    snprintf(url, sizeof url, "redis://:s3cret-pw@localhost:%d/5", srv.port);
    struct lx_redis_conf conf = {0};
    char err[256];
    assert_int_equal(lx_redis_parse_url(url, &conf.target, err, sizeof err), LX_OK);
    conf.timeout_ms = 2000;
    conf.connect_timeout_ms = 3000;
    conf.reconnect_max_ms = 200;
    struct lx_redis *r = lx_redis_new(&conf);
    assert_true(run_until_state(r, LX_REDIS_READY));
    struct result res;
    cmd(r, &res, "SET", "where", "db5");
    assert_true(run_until(&res.done));
    assert_int_equal(res.st, LX_REDIS_OK);
    assert_int_equal(test_redis_long(&srv, "EXISTS where"), 0); /* db 0 */
    redisContext *c = test_redis_connect(&srv);
    redisReply *rep = redisCommand(c, "SELECT 5");
    freeReplyObject(rep);
    rep = redisCommand(c, "GET where");
    assert_string_equal(rep->str, "db5");
    freeReplyObject(rep);
    redisFree(c);
    lx_redis_free(r);
    lx_redis_target_free(&conf.target);

    /* A wrong password: the handshake fails, the client keeps trying and never becomes READY. */
    snprintf(url, sizeof url, "redis://:wrong-pw@127.0.0.1:%d", srv.port);
    memset(&conf, 0, sizeof conf);
    assert_int_equal(lx_redis_parse_url(url, &conf.target, err, sizeof err), LX_OK);
    conf.timeout_ms = 2000;
    conf.connect_timeout_ms = 3000;
    conf.reconnect_max_ms = 100;
    r = lx_redis_new(&conf);
    struct lx_redis_stats stats;
    uint64_t end = lx_now_ms() + 20000;
    do {
        loop_turn();
        lx_redis_stats(r, &stats);
    } while (stats.handshake_failures < 2 && lx_now_ms() < end);
    assert_true(stats.handshake_failures >= 2);
    assert_int_equal(stats.connects, 0);
    assert_non_null(stats.last_error);
    assert_non_null(strstr(stats.last_error, "WRONGPASS"));
    assert_null(strstr(stats.last_error, "wrong-pw"));
    cmd(r, &res, "PING", NULL, NULL);
    assert_true(run_until(&res.done));
    assert_int_equal(res.st, LX_REDIS_EDOWN);
    lx_redis_free(r);
    lx_redis_target_free(&conf.target);
    test_redis_stop(&srv);
}

static void test_timeout_and_frozen_server(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv, false, NULL), 0);
    struct lx_redis_conf conf = conf_for(&srv);
    conf.timeout_ms = 100;
    conf.connect_timeout_ms = 600;
    struct lx_redis *r = lx_redis_new(&conf);
    assert_true(run_until_state(r, LX_REDIS_READY));

    /* A frozen server (SIGSTOP): the command times out on its own deadline... */
    test_redis_signal(&srv, SIGSTOP);
    struct result res, longer;
    cmd(r, &res, "PING", NULL, NULL);
    const char *argv[] = {"PING"};
    memset(&longer, 0, sizeof longer);
    lx_redis_command(r, "test", 400, result_cb, &longer, 1, argv, NULL); /* its own, longer timeout */
    assert_true(run_until(&res.done));
    assert_int_equal(res.st, LX_REDIS_ETIMEOUT);
    assert_false(longer.done);
    assert_true(run_until(&longer.done));
    assert_int_equal(longer.st, LX_REDIS_ETIMEOUT);
    /* ...and a connection that answers nothing for connect_timeout_ms is dropped. */
    assert_true(run_until_state(r, LX_REDIS_DOWN));
    struct lx_redis_stats stats;
    lx_redis_stats(r, &stats);
    assert_true(stats.errors[LX_REDIS_ETIMEOUT] >= 2);
    assert_non_null(strstr(stats.last_error, "no answer"));
    assert_int_equal(res.calls, 1); /* the late answer (or the drop) does not call back again */
    test_redis_signal(&srv, SIGCONT);
    assert_true(run_until_state(r, LX_REDIS_READY));
    cmd(r, &res, "PING", NULL, NULL);
    assert_true(run_until(&res.done));
    assert_int_equal(res.st, LX_REDIS_OK);
    lx_redis_stats(r, &stats);
    assert_true(stats.connects >= 2);
    lx_redis_free(r);
    lx_redis_conf_free(&conf);
    test_redis_stop(&srv);
}

static void test_killed_and_restarted(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv, false, NULL), 0);
    struct lx_redis_conf conf = conf_for(&srv);
    struct lx_redis *r = lx_redis_new(&conf);
    assert_true(run_until_state(r, LX_REDIS_READY));

    /* Killed with a command in flight: ECONN for it, EDOWN for what follows. */
    test_redis_signal(&srv, SIGSTOP);
    struct result pending, later;
    cmd(r, &pending, "PING", NULL, NULL);
    run_ms(20);
    test_redis_kill(&srv);
    assert_true(run_until(&pending.done));
    assert_int_equal(pending.st, LX_REDIS_ECONN);
    assert_int_equal(lx_redis_state(r), LX_REDIS_DOWN);
    cmd(r, &later, "PING", NULL, NULL);
    assert_true(run_until(&later.done));
    assert_int_equal(later.st, LX_REDIS_EDOWN);
    /* Nobody listens: attempts fail with connection refused and are retried with backoff. */
    run_ms(300);
    assert_true(lx_redis_state(r) != LX_REDIS_READY);
    /* Back on the same socket: the client finds it again by itself. */
    assert_int_equal(test_redis_spawn(&srv), 0);
    assert_true(run_until_state(r, LX_REDIS_READY));
    cmd(r, &later, "PING", NULL, NULL);
    assert_true(run_until(&later.done));
    assert_int_equal(later.st, LX_REDIS_OK);
    struct lx_redis_stats stats;
    lx_redis_stats(r, &stats);
    assert_int_equal(stats.connects, 2);
    assert_true(stats.errors[LX_REDIS_ECONN] >= 1);
    lx_redis_free(r);
    lx_redis_conf_free(&conf);
    test_redis_stop(&srv);
}

/* The owner's handshake runs on every connection, before READY; a failing one keeps the client out. */
struct hs {
    int runs;
    bool fail;
    struct result res;
};

static void hs_fn(void *arg, struct lx_redis *r)
{
    struct hs *h = arg;
    h->runs++;
    const char *ok[] = {"SET", "handshook", "1"};
    const char *bad[] = {"NOSUCHCOMMAND"};
    memset(&h->res, 0, sizeof h->res);
    if (h->fail)
        lx_redis_handshake_command(r, "hs", result_cb, &h->res, 1, bad, NULL);
    else
        lx_redis_handshake_command(r, "hs", result_cb, &h->res, 3, ok, NULL);
}

static void test_handshake(void **state)
{
    (void)state;
    struct test_redis srv;
    assert_int_equal(test_redis_start(&srv, false, NULL), 0);
    struct lx_redis_conf conf = conf_for(&srv);
    struct hs h = {0};
    struct lx_redis *r = lx_redis_new(&conf);
    lx_redis_set_handshake(r, hs_fn, &h);
    assert_true(run_until_state(r, LX_REDIS_READY));
    assert_int_equal(h.runs, 1);
    assert_int_equal(test_redis_long(&srv, "GET handshook"), 1);
    lx_redis_free(r);

    struct hs bad = {.fail = true};
    r = lx_redis_new(&conf);
    lx_redis_set_handshake(r, hs_fn, &bad);
    uint64_t end = lx_now_ms() + 20000;
    while (bad.runs < 3 && lx_now_ms() < end)
        loop_turn();
    assert_true(bad.runs >= 3); /* retried, each time on a new connection */
    assert_true(lx_redis_state(r) != LX_REDIS_READY);
    struct lx_redis_stats stats;
    lx_redis_stats(r, &stats);
    assert_int_equal(stats.connects, 0);
    assert_true(stats.handshake_failures >= 2);
    lx_redis_free(r);
    lx_redis_conf_free(&conf);
    test_redis_stop(&srv);
}

static void test_nothing_listening(void **state)
{
    (void)state;
    struct lx_redis_conf conf = {0};
    char err[256];
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", test_redis_free_port());
    assert_int_equal(lx_redis_parse_url(url, &conf.target, err, sizeof err), LX_OK);
    conf.reconnect_max_ms = 100;
    struct lx_redis *r = lx_redis_new(&conf);
    run_ms(300);
    struct lx_redis_stats stats;
    lx_redis_stats(r, &stats);
    assert_true(stats.state == LX_REDIS_DOWN || stats.state == LX_REDIS_CONNECTING);
    assert_non_null(stats.last_error);
    struct result res;
    cmd(r, &res, "PING", NULL, NULL);
    assert_true(run_until(&res.done));
    assert_int_equal(res.st, LX_REDIS_EDOWN);
    lx_redis_free(r);
    lx_redis_target_free(&conf.target);

    /* A name that does not resolve. */
    memset(&conf, 0, sizeof conf);
    assert_int_equal(lx_redis_parse_url("redis://no-such-host.invalid:6379", &conf.target, err, sizeof err), LX_OK);
    conf.reconnect_max_ms = 100;
    conf.connect_timeout_ms = 2000;
    r = lx_redis_new(&conf);
    uint64_t end = lx_now_ms() + 20000;
    do {
        loop_turn();
        lx_redis_stats(r, &stats);
    } while (!stats.last_error && lx_now_ms() < end);
    assert_non_null(stats.last_error);
    assert_true(stats.state != LX_REDIS_READY);
    lx_redis_free(r);
    lx_redis_target_free(&conf.target);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(lx_redis_state_name(LX_REDIS_READY), "ready");
    assert_string_equal(lx_redis_state_name(LX_REDIS_STATE_COUNT), "?");
    assert_string_equal(lx_redis_status_name(LX_REDIS_ETIMEOUT), "timeout");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test(test_conf_section),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_commands_and_pipelining),
        cmocka_unit_test(test_tcp_name_db_and_auth),
        cmocka_unit_test(test_timeout_and_frozen_server),
        cmocka_unit_test(test_killed_and_restarted),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_nothing_listening),
    };
    return cmocka_run_group_tests_name("redis", tests, loop_setup, loop_teardown);
}
