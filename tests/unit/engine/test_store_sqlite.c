/* Unit tests for the SQLite store backend (src/engine/store_sqlite.c, src/engine/store_sqlite_db.c) through the store
 * interface, on a real loop and a temporary database: response chains, reservations, ownership,
 * conversations and their items (paging, trimming, busy turns), expiry, persistence across a reopen,
 * schema versions, cancellation and a full queue. A second connection from the test inspects the file. */
#include "../unit.h"
#include "../../../src/core/buf.h"
#include "../../../src/core/common.h"
#include "../../../src/core/ids.h"
#include "../../../src/engine/store.h"
#include "../../../src/io/loop.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128];

struct answer {
    bool called;
    enum lx_store_status status;
    char message[256];
    json_t *value; /* owned */
};

static int pending;

static void answer_cb(void *arg, const struct lx_store_result *res)
{
    struct answer *a = arg;
    assert_false(a->called);
    a->called = true;
    a->status = res->status;
    snprintf(a->message, sizeof a->message, "%s", res->message ? res->message : "");
    a->value = json_incref(res->value);
    if (--pending == 0)
        lx_loop_stop();
}

static void hang_guard(void *arg)
{
    (void)arg;
    fail_msg("the store did not answer within 30 s");
}

static void wait_all(void)
{
    struct lx_timer *guard = lx_timer_new(hang_guard, NULL);
    lx_timer_start(guard, 30000);
    if (pending > 0)
        lx_loop_run();
    lx_timer_free(guard);
}

static struct lx_store *store_open(long retention_days, long max_items, size_t max_queue)
{
    struct lx_store_conf conf = {
        .path = path, .retention_days = retention_days, .max_items_per_conversation = max_items, .max_queue = max_queue,
    };
    char err[256] = "";
    struct lx_store *st = lx_store_sqlite.open(&conf, err, sizeof err);
    if (!st)
        fail_msg("open: %s", err);
    return st;
}

/* Submit and wait for the answer (value owned by the caller). */
static struct answer call(struct lx_store *st, const struct lx_store_req *rq)
{
    struct answer a = {0};
    pending++;
    struct lx_store_op *op = lx_store_submit(st, rq, answer_cb, &a);
    assert_non_null(op);
    assert_false(a.called); /* never from inside submit */
    wait_all();
    assert_true(a.called);
    return a;
}

static void expect(struct lx_store *st, const struct lx_store_req *rq, enum lx_store_status want)
{
    struct answer a = call(st, rq);
    if (a.status != want)
        fail_msg("%s: %s, expected %s (%s)", lx_store_verb_name(rq->verb), lx_store_status_name(a.status),
                 lx_store_status_name(want), a.message);
    json_decref(a.value);
}

static json_t *value_of(struct lx_store *st, const struct lx_store_req *rq)
{
    struct answer a = call(st, rq);
    if (a.status != LX_STORE_OK)
        fail_msg("%s: %s (%s)", lx_store_verb_name(rq->verb), lx_store_status_name(a.status), a.message);
    return a.value;
}

static json_t *msg(const char *role, const char *text)
{
    char *id = lx_id_new("msg");
    json_t *m = json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "id", id, "type", "message", "role", role, "status",
                          "completed", "content", "type", strcmp(role, "assistant") == 0 ? "output_text" : "input_text",
                          "text", text);
    free(id);
    return m;
}

static json_t *response_obj(const char *id, const char *status, const char *answer)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:n,s:o,s:{s:i,s:i,s:i},s:b}", "id", id, "object", "response", "created_at",
                     (json_int_t)lx_wall_s(), "status", status, "model", "mock/echo", "instructions", "output",
                     answer ? json_pack("[o]", msg("assistant", answer)) : json_array(), "usage", "input_tokens", 3,
                     "output_tokens", 2, "total_tokens", 5, "store", true);
}

/* One finished turn: a user message in, the assistant's answer out. Returns the response id. */
static char *turn(struct lx_store *st, const char *owner, const char *prev, const char *conv, const char *question,
                  const char *answer_text)
{
    char *id = lx_id_new("resp");
    json_t *history = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = owner,
                                                           .previous_response_id = prev, .conversation_id = conv,
                                                           .response_id = id});
    json_decref(history);
    json_t *resp = response_obj(id, "completed", answer_text);
    json_t *input = json_pack("[o]", msg("user", question));
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_FINISH, .owner = owner, .response = resp,
                                                    .input = input, .previous_response_id = prev,
                                                    .conversation_id = conv, .store = true}));
    json_decref(resp);
    json_decref(input);
    return id;
}

/* The texts of a list of items, joined by '|'. */
static char *texts(json_t *items)
{
    struct lx_buf b = {0};
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        if (i)
            lx_buf_puts(&b, "|");
        lx_buf_puts(&b, json_string_value(json_object_get(json_array_get(json_object_get(it, "content"), 0), "text")));
    }
    return lx_buf_steal(&b, NULL);
}

static void expect_texts(json_t *items, const char *want)
{
    char *got = texts(items);
    assert_string_equal(got, want);
    free(got);
}

static long long db_scalar(const char *q)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    long long v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void db_exec(const char *q)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *e = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &e) != SQLITE_OK)
        fail_msg("%s: %s", q, e);
    sqlite3_close(db);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/lx-store-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/llmux.db", dir);
    pending = 0;
    return lx_loop_init() == LX_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lx_loop_free();
    char p[200];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

static void test_open_schema(void **state)
{
    (void)state;
    struct lx_store *st = store_open(0, 0, 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600); /* conversations are private */
    assert_int_equal(db_scalar("PRAGMA user_version"), 1);
    lx_store_close(st);
    /* A database from a newer llmux is refused rather than misread. */
    db_exec("PRAGMA user_version = 99");
    struct lx_store_conf conf = {.path = path};
    char err[256] = "";
    assert_null(lx_store_sqlite.open(&conf, err, sizeof err));
    assert_non_null(strstr(err, "schema version 99"));
    /* A path that cannot be created says which. */
    conf.path = "/nonexistent-dir/llmux.db";
    assert_null(lx_store_sqlite.open(&conf, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir/llmux.db"));
}

static void test_chain(void **state)
{
    (void)state;
    struct lx_store *st = store_open(0, 0, 0);
    /* A turn with neither id continues nothing. */
    json_t *h = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1"});
    assert_true(json_is_array(h) && json_array_size(h) == 0);
    json_decref(h);
    char *r1 = turn(st, "k1", NULL, NULL, "q1", "a1");
    char *r2 = turn(st, "k1", r1, NULL, "q2", "a2");
    char *r3 = turn(st, "k1", r2, NULL, "q3", "a3");
    h = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .previous_response_id = r3});
    expect_texts(h, "q1|a1|q2|a2|q3|a3");
    json_decref(h);
    /* A branch from the middle sees only its own past. */
    h = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .previous_response_id = r1});
    expect_texts(h, "q1|a1");
    json_decref(h);
    /* Another key: nothing exists. */
    expect(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k2", .previous_response_id = r3},
           LX_STORE_NOT_FOUND);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k2", .response_id = r3},
           LX_STORE_NOT_FOUND);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_DELETE, .owner = "k2", .response_id = r3},
           LX_STORE_NOT_FOUND);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .previous_response_id = "resp_nope"},
           LX_STORE_NOT_FOUND);
    /* Deleting a link cuts the history of what followed it there. */
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_DELETE, .owner = "k1", .response_id = r2}, LX_STORE_OK);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k1", .response_id = r2},
           LX_STORE_NOT_FOUND);
    h = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .previous_response_id = r3});
    expect_texts(h, "q3|a3");
    json_decref(h);
    free(r1);
    free(r2);
    free(r3);
    lx_store_close(st);
}

static void test_response_roundtrip(void **state)
{
    (void)state;
    struct lx_store *st = store_open(30, 0, 0);
    char *id = lx_id_new("resp");
    json_t *resp = response_obj(id, "completed", "hello");
    json_t *input = json_pack("[o,o,o]", msg("user", "one"), msg("user", "two"), msg("user", "three"));
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_FINISH, .owner = "", .response = resp,
                                                    .input = input, .store = true}));
    json_t *got = value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .response_id = id});
    assert_true(json_equal(got, resp));
    /* Keys keep their order (output and usage in place). */
    char *a = json_dumps(got, 0), *b = json_dumps(resp, 0);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(got);
    /* Input items, paged: newest first by default for OpenAI, both orders here. */
    json_t *page = value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_INPUT_ITEMS, .response_id = id,
                                                       .page = {.limit = 2, .desc = true}});
    expect_texts(json_object_get(page, "data"), "three|two");
    assert_true(json_is_true(json_object_get(page, "has_more")));
    const char *last = json_string_value(json_object_get(page, "last_id"));
    assert_string_equal(last, json_string_value(json_object_get(json_array_get(input, 1), "id")));
    json_t *next = value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_INPUT_ITEMS, .response_id = id,
                                                       .page = {.after = last, .limit = 2, .desc = true}});
    expect_texts(json_object_get(next, "data"), "one");
    assert_true(json_is_false(json_object_get(next, "has_more")));
    json_decref(next);
    json_decref(page);
    page = value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_INPUT_ITEMS, .response_id = id,
                                               .page = {.limit = 20}});
    expect_texts(json_object_get(page, "data"), "one|two|three");
    json_decref(page);
    /* Retention writes an expiry; store:false writes no response at all. */
    assert_true(db_scalar("SELECT expires_at - created_at FROM responses") >= 30 * 86400 - 5);
    char *id2 = lx_id_new("resp");
    json_t *resp2 = response_obj(id2, "completed", "unsaved");
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_FINISH, .response = resp2, .store = false}));
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .response_id = id2}, LX_STORE_NOT_FOUND);
    json_decref(resp2);
    free(id2);
    json_decref(resp);
    json_decref(input);
    lx_store_close(st);
    /* Persistence: the same answer after a reopen. */
    st = store_open(30, 0, 0);
    got = value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .response_id = id});
    assert_string_equal(json_string_value(json_object_get(got, "id")), id);
    json_decref(got);
    /* An expired response is gone at once, and purged at the next open. */
    db_exec("UPDATE responses SET expires_at = 1");
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .response_id = id}, LX_STORE_NOT_FOUND);
    lx_store_close(st);
    st = store_open(30, 0, 0);
    lx_store_close(st);
    assert_int_equal(db_scalar("SELECT count(*) FROM responses"), 0);
    free(id);
}

/* A stream's response is stored in progress before its id is streamed; the turn replaces it, or an
 * abort removes it; a restart drops what a crash left in progress. */
static void test_reserve(void **state)
{
    (void)state;
    struct lx_store *st = store_open(0, 0, 0);
    char *id = lx_id_new("resp");
    json_t *start = response_obj(id, "in_progress", NULL);
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .reserve = true,
                                                    .response = start}));
    json_t *got = value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k", .response_id = id});
    assert_string_equal(json_string_value(json_object_get(got, "status")), "in_progress");
    json_decref(got);
    /* Nothing continues a response still in progress. */
    struct answer a = call(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .previous_response_id = id});
    assert_int_equal(a.status, LX_STORE_BUSY);
    assert_non_null(strstr(a.message, "in progress"));
    json_t *done = response_obj(id, "completed", "streamed");
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_FINISH, .owner = "k", .response = done,
                                                    .store = true}));
    got = value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k", .response_id = id});
    assert_true(json_equal(got, done));
    json_decref(got);
    json_decref(done);
    json_decref(start);
    assert_int_equal(db_scalar("SELECT count(*) FROM responses"), 1);

    char *gone = lx_id_new("resp");
    start = response_obj(gone, "in_progress", NULL);
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .reserve = true,
                                                    .response = start}));
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "k", .response_id = gone}));
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k", .response_id = gone},
           LX_STORE_NOT_FOUND);
    /* An abort never removes a finished response. */
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "k", .response_id = id}));
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k", .response_id = id}, LX_STORE_OK);
    /* A crash mid-stream leaves a row in progress: the next start drops it. */
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .reserve = true,
                                                    .response = start}));
    lx_store_close(st);
    assert_int_equal(db_scalar("SELECT count(*) FROM responses WHERE status = 'in_progress'"), 1);
    st = store_open(0, 0, 0);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k", .response_id = gone},
           LX_STORE_NOT_FOUND);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k", .response_id = id}, LX_STORE_OK);
    json_decref(start);
    free(gone);
    free(id);
    lx_store_close(st);
}

static char *conv_create(struct lx_store *st, const char *owner, json_t *items, json_t *meta)
{
    json_t *c = value_of(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_CREATE, .owner = owner,
                                                    .items = items, .metadata = meta});
    assert_string_equal(json_string_value(json_object_get(c, "object")), "conversation");
    assert_true(lx_id_valid(json_string_value(json_object_get(c, "id")), "conv"));
    char *id = lx_strdup(json_string_value(json_object_get(c, "id")));
    json_decref(c);
    return id;
}

static void test_conversations(void **state)
{
    (void)state;
    struct lx_store *st = store_open(0, 0, 0);
    json_t *items = json_pack("[o,o]", msg("system", "be brief"), msg("user", "hi"));
    json_t *meta = json_pack("{s:s}", "topic", "demo");
    char *c = conv_create(st, "k1", items, meta);
    json_t *got = value_of(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_GET, .owner = "k1",
                                                      .conversation_id = c});
    assert_true(json_equal(json_object_get(got, "metadata"), meta));
    json_decref(got);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_GET, .owner = "k2", .conversation_id = c},
           LX_STORE_NOT_FOUND);
    json_t *meta2 = json_pack("{s:s}", "topic", "changed");
    got = value_of(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_UPDATE, .owner = "k1", .conversation_id = c,
                                              .metadata = meta2});
    assert_true(json_equal(json_object_get(got, "metadata"), meta2));
    json_decref(got);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_UPDATE, .owner = "k2", .conversation_id = c,
                                      .metadata = meta2},
           LX_STORE_NOT_FOUND);

    /* Turns on the conversation: its items are the history, and each turn appends input and output. */
    char *r1 = turn(st, "k1", NULL, c, "q1", "a1");
    char *r2 = turn(st, "k1", NULL, c, "q2", "a2");
    json_t *h = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .conversation_id = c,
                                                    .response_id = "resp_probe"});
    expect_texts(h, "be brief|hi|q1|a1|q2|a2");
    json_decref(h);
    /* That probe holds the conversation: a second turn and an item add are busy, another conversation not. */
    struct answer a = call(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .conversation_id = c,
                                                      .response_id = "resp_other"});
    assert_int_equal(a.status, LX_STORE_BUSY);
    assert_non_null(strstr(a.message, c));
    json_t *more = json_pack("[o]", msg("user", "late"));
    expect(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_ADD, .owner = "k1", .conversation_id = c, .items = more},
           LX_STORE_BUSY);
    /* The busy turn's own release is the only one that counts. */
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "k1", .conversation_id = c,
                                                    .response_id = "resp_other"}));
    expect(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_ADD, .owner = "k1", .conversation_id = c, .items = more},
           LX_STORE_BUSY);
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "k1", .conversation_id = c,
                                                    .response_id = "resp_probe"}));
    json_t *added = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_ADD, .owner = "k1",
                                                        .conversation_id = c, .items = more});
    expect_texts(json_object_get(added, "data"), "late");
    json_decref(added);

    /* Paging both ways. */
    json_t *page = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "k1", .conversation_id = c,
                                                       .page = {.limit = 3, .desc = true}});
    expect_texts(json_object_get(page, "data"), "late|a2|q2");
    assert_true(json_is_true(json_object_get(page, "has_more")));
    char *cursor = lx_strdup(json_string_value(json_object_get(page, "last_id")));
    json_decref(page);
    page = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "k1", .conversation_id = c,
                                               .page = {.after = cursor, .limit = 10, .desc = true}});
    expect_texts(json_object_get(page, "data"), "a1|q1|hi|be brief");
    assert_true(json_is_false(json_object_get(page, "has_more")));
    json_decref(page);
    page = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "k1", .conversation_id = c,
                                               .page = {.after = cursor, .limit = 10}});
    expect_texts(json_object_get(page, "data"), "a2|late");
    json_decref(page);
    page = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "k1", .conversation_id = c,
                                               .page = {.after = "msg_unknown", .limit = 10}});
    assert_int_equal(json_array_size(json_object_get(page, "data")), 0);
    assert_true(json_is_null(json_object_get(page, "first_id")));
    json_decref(page);
    free(cursor);

    /* One item, and its deletion (which answers the conversation). */
    const char *hi_id = json_string_value(json_object_get(json_array_get(items, 1), "id"));
    json_t *item = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEM_GET, .owner = "k1", .conversation_id = c,
                                                       .item_id = hi_id});
    assert_true(json_equal(item, json_array_get(items, 1)));
    json_decref(item);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_ITEM_GET, .owner = "k2", .conversation_id = c, .item_id = hi_id},
           LX_STORE_NOT_FOUND);
    got = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEM_DELETE, .owner = "k1", .conversation_id = c,
                                              .item_id = hi_id});
    assert_string_equal(json_string_value(json_object_get(got, "id")), c);
    json_decref(got);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_ITEM_GET, .owner = "k1", .conversation_id = c, .item_id = hi_id},
           LX_STORE_NOT_FOUND);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_ITEM_DELETE, .owner = "k1", .conversation_id = c,
                                      .item_id = hi_id},
           LX_STORE_NOT_FOUND);
    assert_int_equal(db_scalar("SELECT n_items FROM conversations"), 6);

    /* A chain that began in the conversation: continuing r1 by id sees the conversation up to r1. */
    h = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .previous_response_id = r1});
    expect_texts(h, "be brief|q1|a1");
    json_decref(h);

    /* A conversation deleted while a turn runs: the turn stores nothing. */
    char *r3 = lx_id_new("resp");
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .conversation_id = c,
                                                    .response_id = r3}));
    expect(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_DELETE, .owner = "k2", .conversation_id = c},
           LX_STORE_NOT_FOUND);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_DELETE, .owner = "k1", .conversation_id = c},
           LX_STORE_OK);
    json_t *resp = response_obj(r3, "completed", "orphan");
    expect(st, &(struct lx_store_req){.verb = LX_STORE_TURN_FINISH, .owner = "k1", .response = resp,
                                      .conversation_id = c, .store = true},
           LX_STORE_NOT_FOUND);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k1", .response_id = r3},
           LX_STORE_NOT_FOUND);
    assert_int_equal(db_scalar("SELECT count(*) FROM conversation_items"), 0);
    /* r1 outlives its conversation and falls back on its own items. */
    h = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .previous_response_id = r1});
    expect_texts(h, "q1|a1");
    json_decref(h);
    json_decref(resp);
    free(r1);
    free(r2);
    free(r3);
    free(c);
    json_decref(more);
    json_decref(meta);
    json_decref(meta2);
    json_decref(items);
    lx_store_close(st);
}

/* Retention for conversations: a change moves the expiry on; an expired conversation is gone at once with
 * its items, and purged with them at the next open, while the responses of its turns keep their own. */
static void test_conversation_expiry(void **state)
{
    (void)state;
    struct lx_store *st = store_open(30, 0, 0);
    json_t *items = json_pack("[o]", msg("user", "hello"));
    char *c = conv_create(st, "k1", items, NULL);
    char *r = turn(st, "k1", NULL, c, "q1", "a1");
    long long left = db_scalar("SELECT expires_at - updated_at FROM conversations");
    assert_true(left >= 30 * 86400 - 5 && left <= 30 * 86400);
    db_exec("UPDATE conversations SET expires_at = 1");
    expect(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_GET, .owner = "k1", .conversation_id = c},
           LX_STORE_NOT_FOUND);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "k1", .conversation_id = c,
                                      .page = {.limit = 20}},
           LX_STORE_NOT_FOUND);
    lx_store_close(st);
    st = store_open(30, 0, 0);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k1", .conversation_id = c,
                                      .response_id = "resp_late"},
           LX_STORE_NOT_FOUND);
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .owner = "k1", .response_id = r}));
    lx_store_close(st);
    assert_int_equal(db_scalar("SELECT count(*) FROM conversations"), 0);
    assert_int_equal(db_scalar("SELECT count(*) FROM conversation_items"), 0);
    assert_int_equal(db_scalar("SELECT count(*) FROM responses"), 1);
    json_decref(items);
    free(c);
    free(r);
}

/* A conversation keeps its newest max_items_per_conversation items. */
static void test_trim(void **state)
{
    (void)state;
    struct lx_store *st = store_open(0, 4, 0);
    json_t *items = json_pack("[o,o,o]", msg("user", "1"), msg("user", "2"), msg("user", "3"));
    char *c = conv_create(st, "", items, NULL);
    free(turn(st, "", NULL, c, "4", "5"));
    json_t *page = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .conversation_id = c,
                                                       .page = {.limit = 100}});
    expect_texts(json_object_get(page, "data"), "2|3|4|5");
    json_decref(page);
    json_decref(items);
    free(c);
    lx_store_close(st);
}

/* The history cache answers exactly what the database would: the same turns read hot (cached) and cold
 * (after a reopen), for chains, a branch, a conversation that is trimmed, and after deletions. */
static void test_cache_matches_db(void **state)
{
    (void)state;
    struct lx_store *st = store_open(30, 5, 0);
    char *ids[6];
    ids[0] = turn(st, "k", NULL, NULL, "q0", "a0");
    for (int i = 1; i < 6; i++) {
        char q[8], a[8];
        snprintf(q, sizeof q, "q%d", i);
        snprintf(a, sizeof a, "a%d", i);
        ids[i] = turn(st, "k", ids[i - 1], NULL, q, a); /* each continues the last: hot */
    }
    char *branch = turn(st, "k", ids[2], NULL, "qb", "ab");
    char *c = conv_create(st, "k", NULL, NULL);
    for (int i = 0; i < 4; i++)
        free(turn(st, "k", NULL, c, "cq", "ca"));
    char *probe = "resp_probe_hot";
    json_t *hot[8];
    const char *prevs[] = {ids[5], ids[3], branch, ids[0]};
    for (int i = 0; i < 4; i++)
        hot[i] = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .previous_response_id = prevs[i]});
    hot[4] = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .conversation_id = c,
                                                 .response_id = probe});
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "k", .conversation_id = c,
                                                    .response_id = probe}));
    expect_texts(hot[0], "q0|a0|q1|a1|q2|a2|q3|a3|q4|a4|q5|a5");
    expect_texts(hot[4], "ca|cq|ca|cq|ca"); /* the newest five */
    /* Another owner gets nothing from the cache either. */
    expect(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "x", .previous_response_id = ids[5]},
           LX_STORE_NOT_FOUND);
    lx_store_close(st);
    st = store_open(30, 5, 0);
    for (int i = 0; i < 4; i++) {
        json_t *cold = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k",
                                                           .previous_response_id = prevs[i]});
        assert_true(json_equal(cold, hot[i]));
        json_decref(cold);
        json_decref(hot[i]);
    }
    json_t *cold = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .conversation_id = c,
                                                       .response_id = probe});
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "k", .conversation_id = c,
                                                    .response_id = probe}));
    assert_true(json_equal(cold, hot[4]));
    json_decref(cold);
    json_decref(hot[4]);
    /* Now hot again; a deleted link cuts the cached chain as it cuts the table's. */
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .previous_response_id = ids[5]}));
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_DELETE, .owner = "k", .response_id = ids[3]}));
    json_t *cut = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .previous_response_id = ids[5]});
    expect_texts(cut, "q4|a4|q5|a5");
    json_decref(cut);
    /* An item deleted from the conversation is gone from its next turn's history. */
    json_t *page = value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_LIST, .owner = "k", .conversation_id = c,
                                                       .page = {.limit = 1, .desc = true}});
    const char *newest = json_string_value(json_object_get(page, "first_id"));
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_ITEM_DELETE, .owner = "k", .conversation_id = c,
                                                    .item_id = newest}));
    json_decref(page);
    json_t *h = value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .owner = "k", .conversation_id = c,
                                                    .response_id = probe});
    expect_texts(h, "ca|cq|ca|cq");
    json_decref(h);
    json_decref(value_of(st, &(struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .owner = "k", .conversation_id = c,
                                                    .response_id = probe}));
    for (int i = 0; i < 6; i++)
        free(ids[i]);
    free(branch);
    free(c);
    lx_store_close(st);
}

static void never_cb(void *arg, const struct lx_store_result *res)
{
    (void)arg;
    (void)res;
    fail_msg("a cancelled operation called back");
}

/* Many turns at once: all stored (they share transactions); a full queue answers UNAVAILABLE; a
 * cancelled operation never calls back. */
static void test_burst_and_limits(void **state)
{
    (void)state;
    struct lx_store *st = store_open(0, 0, 0);
    enum { N = 200 };
    struct answer answers[N] = {{0}};
    char *ids[N];
    for (int i = 0; i < N; i++) {
        ids[i] = lx_id_new("resp");
        json_t *resp = response_obj(ids[i], "completed", "x");
        pending++;
        lx_store_submit(st, &(struct lx_store_req){.verb = LX_STORE_TURN_FINISH, .response = resp, .store = true},
                        answer_cb, &answers[i]);
        json_decref(resp);
    }
    struct lx_store_op *op = lx_store_submit(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .response_id = ids[0]},
                                             never_cb, NULL);
    lx_store_cancel(st, op);
    wait_all();
    for (int i = 0; i < N; i++) {
        assert_int_equal(answers[i].status, LX_STORE_OK);
        free(ids[i]);
    }
    assert_int_equal(db_scalar("SELECT count(*) FROM responses"), N);
    lx_store_close(st);

    st = store_open(0, 0, 2);
    struct answer small[5] = {{0}};
    for (int i = 0; i < 5; i++) {
        pending++;
        lx_store_submit(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET, .response_id = "resp_x"}, answer_cb,
                        &small[i]);
    }
    wait_all();
    int unavailable = 0;
    for (int i = 0; i < 5; i++) {
        unavailable += small[i].status == LX_STORE_UNAVAILABLE;
        assert_true(small[i].status == LX_STORE_UNAVAILABLE || small[i].status == LX_STORE_NOT_FOUND);
    }
    assert_true(unavailable >= 3); /* two in flight at most (one may be the start-up purge) */
    lx_store_close(st);
}

static void test_bad_requests(void **state)
{
    (void)state;
    /* The names logs use. */
    assert_string_equal(lx_store_verb_name(LX_STORE_TURN_BEGIN), "turn_begin");
    assert_string_equal(lx_store_verb_name(LX_STORE_ITEM_DELETE), "item_delete");
    assert_string_equal(lx_store_verb_name(LX_STORE_VERB_COUNT), "unknown");
    const char *st_names[] = {"ok", "not_found", "busy", "unavailable", "error"};
    for (int i = LX_STORE_OK; i <= LX_STORE_ERROR; i++)
        assert_string_equal(lx_store_status_name((enum lx_store_status)i), st_names[i]);
    struct lx_store *st = store_open(0, 0, 0);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_RESPONSE_GET}, LX_STORE_ERROR);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_ITEMS_LIST}, LX_STORE_ERROR);
    json_t *noid = json_pack("[{s:s}]", "type", "message");
    expect(st, &(struct lx_store_req){.verb = LX_STORE_CONVERSATION_CREATE, .items = noid}, LX_STORE_ERROR);
    expect(st, &(struct lx_store_req){.verb = LX_STORE_TURN_BEGIN, .previous_response_id = "a", .conversation_id = "b",
                                      .response_id = "c"},
           LX_STORE_ERROR);
    json_decref(noid);
    assert_int_equal(db_scalar("SELECT count(*) FROM conversations"), 0);
    /* Fire-and-forget: no handle, and nothing leaks. */
    assert_null(lx_store_submit(st, &(struct lx_store_req){.verb = LX_STORE_TURN_ABORT, .response_id = "resp_x"}, NULL,
                                NULL));
    lx_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conversation_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_matches_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_and_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_sqlite", tests, NULL, NULL);
}
