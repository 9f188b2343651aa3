/* Unit tests for the Redis store backend (src/engine/store_redis.c, src/engine/store_redis.lua) through the store
 * interface, against a real redis-server: the corners the endpoint tests do not reach (items that share an
 * id, cursors, a chain that meets another owner's response, a cancelled turn start letting go of its lock,
 * an abort Redis missed sent again on reconnect), and that no answer ever comes from inside submit. */
#include "../unit.h"
#include "../loop_run.h"
#include "../redis_server.h"
#include "../../../src/core/common.h"
#include "../../../src/engine/store.h"
#include "../../../src/io/redis.h"

#include <signal.h>

struct answer {
    bool called;
    enum lx_store_status status;
    char message[256];
    json_t *value; /* owned */
};

static void answer_cb(void *arg, const struct lx_store_result *res)
{
    struct answer *a = arg;
    assert_false(a->called);
    a->called = true;
    a->status = res->status;
    snprintf(a->message, sizeof a->message, "%s", res->message ? res->message : "");
    a->value = json_incref(res->value);
}

/* Submit and wait for the answer (which must not come from inside submit). */
static struct answer run(struct lx_store *st, struct lx_store_req rq)
{
    struct answer a = {0};
    lx_store_submit(st, &rq, answer_cb, &a);
    assert_false(a.called);
    assert_true(run_until(&a.called));
    return a;
}

struct env {
    struct test_redis srv;
    struct lx_redis_conf rconf;
    struct lx_store *st;
};

static void env_start(struct env *e, long timeout_ms)
{
    assert_int_equal(test_redis_start(&e->srv, false, NULL), 0);
    char err[256];
    assert_int_equal(lx_redis_parse_url(e->srv.url, &e->rconf.target, err, sizeof err), LX_OK);
    e->rconf.url = lx_strdup(e->srv.url);
    e->rconf.prefix = lx_strdup("u:");
    e->rconf.timeout_ms = 3000;
    e->rconf.connect_timeout_ms = 300; /* a frozen Redis is given up quickly */
    e->rconf.reconnect_max_ms = 200;
    struct lx_store_conf conf = {.retention_days = 1, .max_items_per_conversation = 100, .redis = &e->rconf,
                                 .timeout_ms = timeout_ms};
    e->st = lx_store_redis.open(&conf, err, sizeof err);
    assert_non_null(e->st);
    /* Until the first connect, operations answer UNAVAILABLE at once. */
    uint64_t end = lx_now_ms() + LX_TEST_HANG_GUARD_MS;
    for (;;) {
        struct answer a = run(e->st, (struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .response_id = "resp_x"});
        json_decref(a.value);
        if (a.status != LX_STORE_UNAVAILABLE)
            break;
        assert_true(lx_now_ms() < end);
        run_ms(20);
    }
}

static void env_stop(struct env *e)
{
    lx_store_close(e->st);
    lx_redis_conf_free(&e->rconf);
    test_redis_stop(&e->srv);
}

static json_t *item(const char *id, const char *text)
{
    return json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "id", id, "type", "message", "role", "user", "content", "type",
                     "input_text", "text", text);
}

static json_t *response(const char *id, const char *status, const char *text)
{
    return json_pack("{s:s,s:s,s:s,s:I,s:[o],s:{s:i}}", "id", id, "object", "response", "status", status,
                     "created_at", (json_int_t)1, "output", item("msg_out", text), "usage", "output_tokens", 1);
}

static const char *text_of(json_t *it)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(it, "content"), 0), "text"));
}

/* Items sharing an id: GET gives the newest, a cursor starts after the newest, DELETE takes them all. */
static void test_items_sharing_an_id(void **state)
{
    (void)state;
    struct env e = {0};
    env_start(&e, 3000);
    json_t *items = json_pack("[o,o,o]", item("msg_x", "x1"), item("msg_y", "y"), item("msg_x", "x2"));
    struct answer c = run(e.st, (struct lx_store_req){.verb = LX_STORE_CONVERSATION_CREATE, .owner = "o", .items = items});
    assert_int_equal(c.status, LX_STORE_OK);
    const char *conv = json_string_value(json_object_get(c.value, "id"));
    struct answer g = run(e.st, (struct lx_store_req){.verb = LX_STORE_ITEM_GET, .owner = "o", .conversation_id = conv,
                                                     .item_id = "msg_x"});
    assert_string_equal(text_of(g.value), "x2");
    struct answer p = run(e.st, (struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "o", .conversation_id = conv,
                                                     .page = {.after = "msg_y", .limit = 10}});
    assert_int_equal(json_array_size(json_object_get(p.value, "data")), 1);
    assert_string_equal(text_of(json_array_get(json_object_get(p.value, "data"), 0)), "x2");
    struct answer unknown = run(e.st, (struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "o",
                                                           .conversation_id = conv, .page = {.after = "msg_nope", .limit = 10}});
    assert_int_equal(json_array_size(json_object_get(unknown.value, "data")), 0);
    assert_true(json_is_null(json_object_get(unknown.value, "first_id")));
    struct answer d = run(e.st, (struct lx_store_req){.verb = LX_STORE_ITEM_DELETE, .owner = "o", .conversation_id = conv,
                                                     .item_id = "msg_x"});
    assert_int_equal(d.status, LX_STORE_OK);
    assert_string_equal(json_string_value(json_object_get(d.value, "object")), "conversation");
    struct answer all = run(e.st, (struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "o", .conversation_id = conv,
                                                       .page = {.limit = 10, .desc = true}});
    json_t *data = json_object_get(all.value, "data");
    assert_int_equal(json_array_size(data), 1);
    assert_string_equal(text_of(json_array_get(data, 0)), "y");
    struct answer gone = run(e.st, (struct lx_store_req){.verb = LX_STORE_ITEM_GET, .owner = "o", .conversation_id = conv,
                                                        .item_id = "msg_x"});
    assert_int_equal(gone.status, LX_STORE_NOT_FOUND);
    assert_string_equal(gone.message, "Item 'msg_x' not found");
    assert_int_equal(test_redis_long(&e.srv, "HLEN u:conv:%s:items", conv), 2); /* y's text and id */
    json_t *vals[] = {c.value, g.value, p.value, unknown.value, d.value, all.value, gone.value};
    for (size_t i = 0; i < LX_ARRAY_LEN(vals); i++)
        json_decref(vals[i]);
    json_decref(items);
    env_stop(&e);
}

/* A chain stops at another owner's response; a reserved response is in progress for a chain on it. */
static void test_chain_owner_and_reservation(void **state)
{
    (void)state;
    struct env e = {0};
    env_start(&e, 3000);
    json_t *r1 = response("resp_1", "completed", "one"), *r2 = response("resp_2", "completed", "two");
    json_t *in1 = json_pack("[o]", item("msg_i1", "in one")), *in2 = json_pack("[o]", item("msg_i2", "in two"));
    struct answer a = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_FINISH, .owner = "other", .response_id = "resp_1",
                                                     .response = r1, .input = in1, .store = true});
    assert_int_equal(a.status, LX_STORE_OK);
    a = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_FINISH, .owner = "me", .response_id = "resp_2",
                                        .previous_response_id = "resp_1", .response = r2, .input = in2, .store = true});
    assert_int_equal(a.status, LX_STORE_OK);
    struct answer h = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "me",
                                                     .previous_response_id = "resp_2"});
    assert_int_equal(h.status, LX_STORE_OK);
    assert_int_equal(json_array_size(h.value), 2); /* resp_2's input and output only: resp_1 is not mine */
    assert_string_equal(text_of(json_array_get(h.value, 0)), "in two");
    struct answer nf = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "me",
                                                      .previous_response_id = "resp_1"});
    assert_int_equal(nf.status, LX_STORE_NOT_FOUND);
    assert_string_equal(nf.message, "Previous response 'resp_1' not found");
    json_t *r3 = response("resp_3", "in_progress", "");
    struct answer rs = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "me", .response_id = "resp_3",
                                                      .previous_response_id = "resp_2", .reserve = true, .response = r3});
    assert_int_equal(rs.status, LX_STORE_OK);
    long long ttl = test_redis_long(&e.srv, "PTTL u:resp:resp_3");
    assert_true(ttl > 0 && ttl <= 30000); /* in progress: the lock TTL, not the retention */
    struct answer busy = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "me",
                                                        .previous_response_id = "resp_3"});
    assert_int_equal(busy.status, LX_STORE_BUSY);
    assert_string_equal(busy.message, "Previous response 'resp_3' is still in progress");
    struct answer ab = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "me", .response_id = "resp_3"});
    assert_int_equal(ab.status, LX_STORE_OK);
    assert_int_equal(test_redis_long(&e.srv, "EXISTS u:resp:resp_3"), 0);
    json_t *vals[] = {h.value, nf.value, rs.value, busy.value, r1, r2, r3, in1, in2};
    for (size_t i = 0; i < LX_ARRAY_LEN(vals); i++)
        json_decref(vals[i]);
    env_stop(&e);
}

/* A turn start nobody waits for any more lets go of the conversation it took; an abort that Redis missed
 * (it was away) is sent again on reconnect, so the conversation is free at once, not a lock TTL later. */
static void test_locks_let_go(void **state)
{
    (void)state;
    struct env e = {0};
    env_start(&e, 200);
    struct answer c = run(e.st, (struct lx_store_req){.verb = LX_STORE_CONVERSATION_CREATE, .owner = "o"});
    char conv[128];
    snprintf(conv, sizeof conv, "%s", json_string_value(json_object_get(c.value, "id")));
    json_decref(c.value);
    struct answer never = {0};
    struct lx_store_req begin = {.verb = LX_STORE_TURN_BEGIN, .owner = "o", .conversation_id = conv,
                                 .response_id = "resp_c"};
    struct lx_store_stats before, now;
    e.st->backend->stats(e.st, &before);
    struct lx_store_op *op = lx_store_submit(e.st, &begin, answer_cb, &never);
    lx_store_cancel(e.st, op);
    uint64_t end = lx_now_ms() + LX_TEST_HANG_GUARD_MS;
    /* The start still runs in Redis (the lock is taken), then the abort that follows its answer lets go. */
    do {
        run_ms(20);
        e.st->backend->stats(e.st, &now);
    } while ((now.operations < before.operations + 2 || now.in_flight) && lx_now_ms() < end);
    assert_false(never.called);
    assert_int_equal(test_redis_long(&e.srv, "EXISTS u:conv:%s:lock", conv), 0);
    struct answer b = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "o", .conversation_id = conv,
                                                     .response_id = "resp_d"});
    assert_int_equal(b.status, LX_STORE_OK);
    json_decref(b.value);
    assert_int_equal(test_redis_long(&e.srv, "PTTL u:conv:%s:lock", conv) > 0, 1);
    /* Redis freezes: the connection is dropped (nothing answers), and the turn's abort cannot be sent. */
    test_redis_signal(&e.srv, SIGSTOP);
    for (;;) {
        struct answer a = run(e.st, (struct lx_store_req){.verb = LX_STORE_CONVERSATION_GET, .owner = "o",
                                                         .conversation_id = conv});
        assert_int_equal(a.status, LX_STORE_UNAVAILABLE);
        if (strstr(a.message, "unreachable"))
            break;
        assert_true(lx_now_ms() < end);
        run_ms(50);
    }
    struct answer ab = run(e.st, (struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "o", .conversation_id = conv,
                                                      .response_id = "resp_d"});
    assert_int_equal(ab.status, LX_STORE_UNAVAILABLE);
    test_redis_signal(&e.srv, SIGCONT);
    while (test_redis_long(&e.srv, "EXISTS u:conv:%s:lock", conv) != 0 && lx_now_ms() < end)
        run_ms(20);
    assert_int_equal(test_redis_long(&e.srv, "EXISTS u:conv:%s:lock", conv), 0);
    env_stop(&e);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_items_sharing_an_id),
        cmocka_unit_test(test_chain_owner_and_reservation),
        cmocka_unit_test(test_locks_let_go),
    };
    return cmocka_run_group_tests_name("store_redis", tests, loop_setup, loop_teardown);
}
