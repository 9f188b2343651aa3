/* The SQLite store's database, used only on the worker thread (so SQLITE_OPEN_NOMUTEX is safe and no
 * connection crosses threads): schema and migrations, prepared statements, and one function per verb.
 *
 * Durability: WAL with synchronous=NORMAL by default. A transaction that committed is in the WAL file
 * when COMMIT returns, so a crash of the process (kill -9, OOM killer, segfault) loses nothing that was
 * acknowledged; what the OS had not yet written when the machine lost power may be lost (the database is
 * never corrupted). `store.synchronous: "full"` fsyncs every commit for power-loss durability too.
 * Batches: the worker runs what queued up as one transaction (BEGIN ... COMMIT), each write in its own
 * SAVEPOINT so one failed operation does not undo its neighbours. */
#include "store_sqlite.h"
#include "store_json.h"
#include "../core/common.h"
#include "../core/ids.h"
#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How far a previous_response_id chain is followed (turns). */
#define SQ_CHAIN_MAX 10000

/* Schema versions: migrations[i] takes user_version i to i+1, in one transaction. Append, never edit. */
static const char *const migrations[] = {
    /* 1: responses, conversations, conversation items */
    "CREATE TABLE responses ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " owner TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER,"               /* NULL: kept until deleted */
    " previous_response_id TEXT,"
    " conversation_id TEXT,"
    " conversation_seq INTEGER,"         /* the conversation's last item once this turn was added */
    " input TEXT NOT NULL,"              /* JSON array: this turn's input items */
    " output TEXT NOT NULL,"             /* JSON array: the output items */
    " usage TEXT,"                       /* JSON object */
    " response TEXT NOT NULL);"          /* JSON: the response object, output and usage null */
    "CREATE INDEX responses_expires ON responses(expires_at) WHERE expires_at IS NOT NULL;"
    "CREATE TABLE conversations ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " owner TEXT NOT NULL,"
    " metadata TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " expires_at INTEGER,"
    " n_items INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX conversations_expires ON conversations(expires_at) WHERE expires_at IS NOT NULL;"
    "CREATE TABLE conversation_items ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused: responses point at it */
    " conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,"
    " id TEXT NOT NULL,"
    " item TEXT NOT NULL);"
    "CREATE INDEX conversation_items_order ON conversation_items(conversation_id, seq);"
    "CREATE INDEX conversation_items_id ON conversation_items(conversation_id, id);",
};

#define LIVE "(expires_at IS NULL OR expires_at > ?3)"

enum sq_stmt_id {
    Q_RESP_PUT,
    Q_RESP_GET,
    Q_RESP_DELETE,
    Q_RESP_INPUT,
    Q_RESP_DISCARD,
    Q_CHAIN,
    Q_CONV_PUT,
    Q_CONV_GET,
    Q_CONV_META,
    Q_CONV_TOUCH,
    Q_CONV_DELETE,
    Q_ITEM_PUT,
    Q_ITEM_SEQ,
    Q_ITEM_GET,
    Q_ITEM_DELETE,
    Q_ITEMS_UPTO,
    Q_ITEMS_AFTER,
    Q_ITEMS_BEFORE,
    Q_ITEMS_TRIM,
    Q_MAX_SEQ,
    Q_PURGE_RESP,
    Q_PURGE_CONV,
    Q_COUNT
};

/* Parameters: ?1 id, ?2 owner, ?3 now, then each statement's own. */
static const char *const sql[Q_COUNT] = {
    [Q_RESP_PUT] = "INSERT INTO responses (id, owner, model, status, created_at, expires_at, previous_response_id,"
                   " conversation_id, conversation_seq, input, output, usage, response)"
                   " VALUES (?1, ?2, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [Q_RESP_GET] = "SELECT response, output, usage FROM responses WHERE id = ?1 AND owner = ?2 AND " LIVE,
    [Q_RESP_DELETE] = "DELETE FROM responses WHERE id = ?1 AND owner = ?2 AND " LIVE,
    [Q_RESP_INPUT] = "SELECT input FROM responses WHERE id = ?1 AND owner = ?2 AND " LIVE,
    [Q_RESP_DISCARD] = "DELETE FROM responses WHERE id = ?1 AND owner = ?2 AND status = 'in_progress'",
    [Q_CHAIN] = "WITH RECURSIVE chain(id, prev, depth) AS ("
                " SELECT id, previous_response_id, 0 FROM responses WHERE id = ?1 AND owner = ?2 AND " LIVE
                " UNION ALL"
                " SELECT r.id, r.previous_response_id, c.depth + 1 FROM responses r JOIN chain c ON r.id = c.prev"
                " WHERE r.owner = ?2 AND (r.expires_at IS NULL OR r.expires_at > ?3) AND c.depth < ?4)"
                " SELECT r.status, r.input, r.output, r.conversation_id, r.conversation_seq, r.expires_at"
                " FROM chain c JOIN responses r ON r.id = c.id ORDER BY c.depth DESC",
    [Q_CONV_PUT] = "INSERT INTO conversations (id, owner, metadata, created_at, updated_at, expires_at)"
                   " VALUES (?1, ?2, ?4, ?3, ?3, ?5)",
    [Q_CONV_GET] = "SELECT metadata, created_at, expires_at FROM conversations WHERE id = ?1 AND owner = ?2 AND " LIVE,
    [Q_CONV_META] = "UPDATE conversations SET metadata = ?4, updated_at = ?3, expires_at = ?5"
                    " WHERE id = ?1 AND owner = ?2 AND " LIVE,
    [Q_CONV_TOUCH] = "UPDATE conversations SET updated_at = ?3, expires_at = ?4,"
                     " n_items = (SELECT count(*) FROM conversation_items WHERE conversation_id = ?1)"
                     " WHERE id = ?1 AND owner = ?2",
    [Q_CONV_DELETE] = "DELETE FROM conversations WHERE id = ?1 AND owner = ?2 AND " LIVE,
    [Q_ITEM_PUT] = "INSERT INTO conversation_items (conversation_id, id, item) VALUES (?1, ?4, ?5)",
    [Q_ITEM_SEQ] = "SELECT seq FROM conversation_items WHERE conversation_id = ?1 AND id = ?4"
                   " ORDER BY seq DESC LIMIT 1",
    [Q_ITEM_GET] = "SELECT item FROM conversation_items WHERE conversation_id = ?1 AND id = ?4"
                   " ORDER BY seq DESC LIMIT 1",
    [Q_ITEM_DELETE] = "DELETE FROM conversation_items WHERE conversation_id = ?1 AND id = ?4",
    [Q_ITEMS_UPTO] = "SELECT item FROM conversation_items WHERE conversation_id = ?1 AND seq <= ?4 ORDER BY seq",
    [Q_ITEMS_AFTER] = "SELECT item FROM conversation_items WHERE conversation_id = ?1 AND seq > ?4"
                      " ORDER BY seq LIMIT ?5",
    [Q_ITEMS_BEFORE] = "SELECT item FROM conversation_items WHERE conversation_id = ?1 AND seq < ?4"
                       " ORDER BY seq DESC LIMIT ?5",
    [Q_ITEMS_TRIM] = "DELETE FROM conversation_items WHERE seq IN (SELECT seq FROM conversation_items"
                     " WHERE conversation_id = ?1 ORDER BY seq LIMIT"
                     " max(0, (SELECT count(*) FROM conversation_items WHERE conversation_id = ?1) - ?4))",
    [Q_MAX_SEQ] = "SELECT coalesce(max(seq), 0) FROM conversation_items WHERE conversation_id = ?1",
    [Q_PURGE_RESP] = "DELETE FROM responses WHERE expires_at IS NOT NULL AND expires_at <= ?3",
    [Q_PURGE_CONV] = "DELETE FROM conversations WHERE expires_at IS NOT NULL AND expires_at <= ?3",
};

struct sq_db {
    char *path;               /* owned */
    int64_t retention_s;      /* 0: no expiry */
    long max_items;
    bool synchronous_full;
    sqlite3 *db;
    sqlite3_stmt *q[Q_COUNT];
    bool in_batch;            /* BEGIN succeeded */
    bool batch_broken;        /* the batch's transaction is gone (SQLite rolled it back, or BEGIN failed) */
    char batch_err[160];
};

struct sq_db *sq_db_new(const char *path, const struct lx_store_conf *conf)
{
    struct sq_db *d = lx_calloc(1, sizeof *d);
    d->path = lx_strdup(path);
    d->retention_s = conf->retention_days > 0 ? conf->retention_days * 86400 : 0;
    d->max_items = conf->max_items_per_conversation;
    d->synchronous_full = conf->synchronous_full;
    return d;
}

void sq_db_free(struct sq_db *d)
{
    if (!d)
        return;
    free(d->path);
    free(d);
}

static int exec_sql(struct sq_db *d, const char *text, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(d->db, text, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s", msg ? msg : sqlite3_errmsg(d->db));
        sqlite3_free(msg);
        return LX_ERR;
    }
    return LX_OK;
}

static int pragma_text(struct sq_db *d, const char *text, char *out, size_t outlen)
{
    sqlite3_stmt *s;
    out[0] = '\0';
    if (sqlite3_prepare_v2(d->db, text, -1, &s, NULL) != SQLITE_OK)
        return LX_ERR;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_text(s, 0))
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? LX_OK : LX_ERR;
}

static int migrate(struct sq_db *d, char *err, size_t errlen)
{
    char v[32];
    if (pragma_text(d, "PRAGMA user_version", v, sizeof v) != LX_OK) {
        snprintf(err, errlen, "cannot read the schema version: %s", sqlite3_errmsg(d->db));
        return LX_ERR;
    }
    long have = strtol(v, NULL, 10);
    long want = (long)LX_ARRAY_LEN(migrations);
    if (have > want) {
        snprintf(err, errlen, "the database has schema version %ld, newer than this llmux knows (%ld)", have, want);
        return LX_ERR;
    }
    for (long i = have; i < want; i++) {
        char set[64];
        snprintf(set, sizeof set, "PRAGMA user_version = %ld", i + 1);
        char e[200];
        if (exec_sql(d, "BEGIN IMMEDIATE", e, sizeof e) != LX_OK || exec_sql(d, migrations[i], e, sizeof e) != LX_OK ||
            exec_sql(d, set, e, sizeof e) != LX_OK || exec_sql(d, "COMMIT", e, sizeof e) != LX_OK) {
            char ignore[8];
            exec_sql(d, "ROLLBACK", ignore, sizeof ignore);
            snprintf(err, errlen, "schema migration to version %ld failed: %s", i + 1, e);
            return LX_ERR;
        }
        lx_info("store: %s: schema version %ld", d->path, i + 1);
    }
    return LX_OK;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

/* The statement q with ?1 id, ?2 owner and ?3 now bound, ready for its own parameters. */
static sqlite3_stmt *stmt(struct sq_db *d, enum sq_stmt_id q, const char *id, const char *owner)
{
    sqlite3_stmt *s = d->q[q];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    int n = sqlite3_bind_parameter_count(s);
    if (n >= 1)
        bind_text(s, 1, id);
    if (n >= 2)
        bind_text(s, 2, owner);
    if (n >= 3)
        sqlite3_bind_int64(s, 3, lx_wall_s());
    return s;
}

static int64_t expiry(const struct sq_db *d)
{
    return d->retention_s ? lx_wall_s() + d->retention_s : 0;
}

static void bind_expiry(const struct sq_db *d, sqlite3_stmt *s, int i)
{
    if (d->retention_s)
        sqlite3_bind_int64(s, i, expiry(d));
    else
        sqlite3_bind_null(s, i);
}

static int fail(struct sq_db *d, struct lx_store_op *op, const char *what)
{
    op->status = LX_STORE_ERROR;
    snprintf(op->message, sizeof op->message, "store: %s: %s", what, sqlite3_errmsg(d->db));
    return LX_ERR;
}

static void not_found(struct lx_store_op *op, const char *what, const char *id)
{
    op->status = LX_STORE_NOT_FOUND;
    snprintf(op->message, sizeof op->message, "%s '%s' not found", what, id ? id : "");
}

/* Step a statement that returns no rows. */
static int run(struct sq_db *d, struct lx_store_op *op, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? LX_OK : fail(d, op, what);
}

static json_t *column_json(sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    return t ? json_loadb((const char *)t, (size_t)sqlite3_column_bytes(s, col), 0, NULL) : NULL;
}

/* Append every item of the JSON array text to out. */
static void extend_from_text(json_t *out, sqlite3_stmt *s, int col)
{
    json_t *a = column_json(s, col);
    if (json_is_array(a))
        json_array_extend(out, a);
    json_decref(a);
}

/* ---- conversations ---- */

/* LX_OK when the conversation exists for the owner; else NOT_FOUND or ERROR in op. */
static int conversation_check(struct sq_db *d, struct lx_store_op *op, json_t **obj)
{
    sqlite3_stmt *s = stmt(d, Q_CONV_GET, op->conversation_id, op->owner);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        op->valid_until = sqlite3_column_int64(s, 2); /* NULL reads as 0: no expiry */
        if (obj) {
            json_t *meta = column_json(s, 0);
            *obj = lx_store_conversation_json(op->conversation_id, sqlite3_column_int64(s, 1), meta);
            json_decref(meta);
        }
        sqlite3_reset(s);
        return LX_OK;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return fail(d, op, "reading a conversation");
    not_found(op, "Conversation", op->conversation_id);
    return LX_ERR;
}

static int conversation_touch(struct sq_db *d, struct lx_store_op *op)
{
    sqlite3_stmt *s = stmt(d, Q_CONV_TOUCH, op->conversation_id, op->owner);
    bind_expiry(d, s, 4);
    return run(d, op, s, "updating a conversation");
}

/* Append op->add to the conversation, drop what is beyond max_items, and refresh its counters. */
static int append_items(struct sq_db *d, struct lx_store_op *op)
{
    for (size_t i = 0; i < op->add.n; i++) {
        sqlite3_stmt *s = stmt(d, Q_ITEM_PUT, op->conversation_id, NULL);
        bind_text(s, 4, op->add.ids[i]);
        bind_text(s, 5, op->add.texts[i]);
        if (run(d, op, s, "adding an item") != LX_OK)
            return LX_ERR;
    }
    if (d->max_items > 0) {
        sqlite3_stmt *s = stmt(d, Q_ITEMS_TRIM, op->conversation_id, NULL);
        sqlite3_bind_int64(s, 4, d->max_items);
        if (run(d, op, s, "trimming a conversation") != LX_OK)
            return LX_ERR;
    }
    return conversation_touch(d, op);
}

static int64_t max_seq(struct sq_db *d, struct lx_store_op *op)
{
    sqlite3_stmt *s = stmt(d, Q_MAX_SEQ, op->conversation_id, NULL);
    int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    return v;
}

/* The conversation's items up to seq (all: INT64_MAX), oldest first, appended to out. */
static int items_upto(struct sq_db *d, struct lx_store_op *op, const char *conv, int64_t seq, json_t *out)
{
    sqlite3_stmt *s = stmt(d, Q_ITEMS_UPTO, conv, NULL);
    sqlite3_bind_int64(s, 4, seq);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *item = column_json(s, 0);
        if (item)
            json_array_append_new(out, item);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? LX_OK : fail(d, op, "reading a conversation's items");
}

/* ---- verbs ---- */

/* The history a previous_response_id continues: each response of the chain, oldest first. A chain that
 * began in a conversation starts with that conversation's items up to that response. */
static int history_chain(struct sq_db *d, struct lx_store_op *op, json_t *out)
{
    sqlite3_stmt *s = stmt(d, Q_CHAIN, op->previous_response_id, op->owner);
    sqlite3_bind_int(s, 4, SQ_CHAIN_MAX);
    int rc, rows = 0;
    bool newest_in_progress = false;
    op->valid_until = 0;
    op->cacheable = true;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        rows++;
        newest_in_progress = strcmp((const char *)sqlite3_column_text(s, 0), "in_progress") == 0;
        int64_t exp = sqlite3_column_int64(s, 5);
        if (exp && (!op->valid_until || exp < op->valid_until))
            op->valid_until = exp;
        const char *conv = (const char *)sqlite3_column_text(s, 3);
        if (rows == 1 && conv) {
            op->cacheable = false; /* its start lives in a conversation, which changes */
            /* The oldest response was a conversation's turn: its context is the conversation up to it. */
            char *c = lx_strdup(conv);
            size_t before = json_array_size(out);
            int irc = items_upto(d, op, c, sqlite3_column_int64(s, 4), out);
            free(c);
            if (irc != LX_OK) {
                sqlite3_reset(s);
                return LX_ERR;
            }
            if (json_array_size(out) > before)
                continue;
            /* The conversation is gone: fall back on the response's own items. */
        }
        extend_from_text(out, s, 1);
        extend_from_text(out, s, 2);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return fail(d, op, "reading a response chain");
    if (rows == 0) {
        not_found(op, "Previous response", op->previous_response_id);
        return LX_ERR;
    }
    if (newest_in_progress) {
        op->status = LX_STORE_BUSY;
        snprintf(op->message, sizeof op->message, "Previous response '%s' is still in progress",
                 op->previous_response_id);
        return LX_ERR;
    }
    return LX_OK;
}

static int response_put(struct sq_db *d, struct lx_store_op *op, int64_t conv_seq)
{
    sqlite3_stmt *s = stmt(d, Q_RESP_PUT, op->response_id, op->owner);
    bind_text(s, 4, op->model);
    bind_text(s, 5, op->rstatus);
    sqlite3_bind_int64(s, 6, op->created_at);
    bind_expiry(d, s, 7);
    bind_text(s, 8, op->previous_response_id);
    bind_text(s, 9, op->conversation_id);
    if (op->conversation_id)
        sqlite3_bind_int64(s, 10, conv_seq);
    bind_text(s, 11, op->input ? op->input : "[]");
    bind_text(s, 12, op->output ? op->output : "[]");
    bind_text(s, 13, op->usage);
    bind_text(s, 14, op->envelope);
    return run(d, op, s, "saving a response");
}

static int turn_begin(struct sq_db *d, struct lx_store_op *op)
{
    json_t *history = json_array();
    int rc = LX_OK;
    if (op->skip_history)
        ; /* the loop has it */
    else if (op->previous_response_id)
        rc = history_chain(d, op, history);
    else if (op->conversation_id) {
        rc = conversation_check(d, op, NULL);
        if (rc == LX_OK)
            rc = items_upto(d, op, op->conversation_id, INT64_MAX, history);
    }
    if (rc == LX_OK && op->reserve)
        rc = response_put(d, op, 0);
    if (rc != LX_OK) {
        json_decref(history);
        return rc;
    }
    op->value = history;
    return LX_OK;
}

static int turn_finish(struct sq_db *d, struct lx_store_op *op)
{
    int64_t seq = 0;
    if (op->conversation_id) {
        if (conversation_check(d, op, NULL) != LX_OK)
            return LX_ERR;
        bool keep = op->rstatus && (strcmp(op->rstatus, "completed") == 0 || strcmp(op->rstatus, "incomplete") == 0);
        if (keep && append_items(d, op) != LX_OK)
            return LX_ERR;
        seq = max_seq(d, op);
    }
    if (!op->store)
        return LX_OK;
    /* Replace the row reserved at the start of a stream (same id and owner). */
    sqlite3_stmt *s = stmt(d, Q_RESP_DISCARD, op->response_id, op->owner);
    if (run(d, op, s, "replacing a response") != LX_OK)
        return LX_ERR;
    return response_put(d, op, seq);
}

static int turn_abort(struct sq_db *d, struct lx_store_op *op)
{
    if (!op->response_id)
        return LX_OK;
    return run(d, op, stmt(d, Q_RESP_DISCARD, op->response_id, op->owner), "discarding a response");
}

static int response_get(struct sq_db *d, struct lx_store_op *op)
{
    sqlite3_stmt *s = stmt(d, Q_RESP_GET, op->response_id, op->owner);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        json_t *obj = column_json(s, 0);
        if (json_is_object(obj)) {
            json_t *out = column_json(s, 1), *usage = column_json(s, 2);
            json_object_set_new(obj, "output", out ? out : json_array());
            json_object_set_new(obj, "usage", usage ? usage : json_null());
            op->value = obj;
        } else {
            json_decref(obj);
        }
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, op, "reading a response");
    if (!op->value) {
        not_found(op, "Response", op->response_id);
        return LX_ERR;
    }
    return LX_OK;
}

static int response_delete(struct sq_db *d, struct lx_store_op *op)
{
    if (run(d, op, stmt(d, Q_RESP_DELETE, op->response_id, op->owner), "deleting a response") != LX_OK)
        return LX_ERR;
    if (sqlite3_changes(d->db) == 0) {
        not_found(op, "Response", op->response_id);
        return LX_ERR;
    }
    return LX_OK;
}

static int response_input_items(struct sq_db *d, struct lx_store_op *op)
{
    sqlite3_stmt *s = stmt(d, Q_RESP_INPUT, op->response_id, op->owner);
    int rc = sqlite3_step(s);
    json_t *all = rc == SQLITE_ROW ? column_json(s, 0) : NULL;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, op, "reading a response");
    if (rc == SQLITE_DONE) {
        not_found(op, "Response", op->response_id);
        return LX_ERR;
    }
    struct lx_store_page page = {.after = op->after, .limit = op->limit, .desc = op->desc};
    op->value = lx_store_page_of(all, &page);
    json_decref(all);
    return LX_OK;
}

static int conversation_create(struct sq_db *d, struct lx_store_op *op)
{
    op->conversation_id = lx_id_new("conv");
    sqlite3_stmt *s = stmt(d, Q_CONV_PUT, op->conversation_id, op->owner);
    bind_text(s, 4, op->metadata ? op->metadata : "{}");
    bind_expiry(d, s, 5);
    if (run(d, op, s, "creating a conversation") != LX_OK || append_items(d, op) != LX_OK)
        return LX_ERR;
    return conversation_check(d, op, &op->value);
}

static int conversation_update(struct sq_db *d, struct lx_store_op *op)
{
    sqlite3_stmt *s = stmt(d, Q_CONV_META, op->conversation_id, op->owner);
    bind_text(s, 4, op->metadata ? op->metadata : "{}");
    bind_expiry(d, s, 5);
    if (run(d, op, s, "updating a conversation") != LX_OK)
        return LX_ERR;
    return conversation_check(d, op, &op->value);
}

static int conversation_delete(struct sq_db *d, struct lx_store_op *op)
{
    if (run(d, op, stmt(d, Q_CONV_DELETE, op->conversation_id, op->owner), "deleting a conversation") != LX_OK)
        return LX_ERR;
    if (sqlite3_changes(d->db) == 0) {
        not_found(op, "Conversation", op->conversation_id);
        return LX_ERR;
    }
    return LX_OK;
}

static int items_add(struct sq_db *d, struct lx_store_op *op)
{
    if (conversation_check(d, op, NULL) != LX_OK || append_items(d, op) != LX_OK)
        return LX_ERR;
    json_t *data = json_array();
    for (size_t i = 0; i < op->add.n; i++) {
        json_t *item = json_loads(op->add.texts[i], 0, NULL);
        if (item)
            json_array_append_new(data, item);
    }
    op->value = lx_store_list_page(data, false);
    return LX_OK;
}

static int items_list(struct sq_db *d, struct lx_store_op *op)
{
    if (conversation_check(d, op, NULL) != LX_OK)
        return LX_ERR;
    int64_t from = op->desc ? INT64_MAX : 0;
    if (op->after) {
        sqlite3_stmt *s = stmt(d, Q_ITEM_SEQ, op->conversation_id, NULL);
        bind_text(s, 4, op->after);
        int rc = sqlite3_step(s);
        /* An unknown cursor gives an empty page. */
        from = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : op->desc ? 0 : INT64_MAX;
        sqlite3_reset(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return fail(d, op, "reading a conversation's items");
    }
    sqlite3_stmt *s = stmt(d, op->desc ? Q_ITEMS_BEFORE : Q_ITEMS_AFTER, op->conversation_id, NULL);
    sqlite3_bind_int64(s, 4, from);
    sqlite3_bind_int64(s, 5, op->limit + 1);
    json_t *data = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        json_t *item = column_json(s, 0);
        if (item)
            json_array_append_new(data, item);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        json_decref(data);
        return fail(d, op, "reading a conversation's items");
    }
    bool more = (long)json_array_size(data) > op->limit;
    if (more)
        json_array_remove(data, json_array_size(data) - 1);
    op->value = lx_store_list_page(data, more);
    return LX_OK;
}

static int item_get(struct sq_db *d, struct lx_store_op *op)
{
    if (conversation_check(d, op, NULL) != LX_OK)
        return LX_ERR;
    sqlite3_stmt *s = stmt(d, Q_ITEM_GET, op->conversation_id, NULL);
    bind_text(s, 4, op->item_id);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        op->value = column_json(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(d, op, "reading an item");
    if (!op->value) {
        not_found(op, "Item", op->item_id);
        return LX_ERR;
    }
    return LX_OK;
}

static int item_delete(struct sq_db *d, struct lx_store_op *op)
{
    if (conversation_check(d, op, NULL) != LX_OK)
        return LX_ERR;
    sqlite3_stmt *s = stmt(d, Q_ITEM_DELETE, op->conversation_id, NULL);
    bind_text(s, 4, op->item_id);
    if (run(d, op, s, "deleting an item") != LX_OK)
        return LX_ERR;
    if (sqlite3_changes(d->db) == 0) {
        not_found(op, "Item", op->item_id);
        return LX_ERR;
    }
    if (conversation_touch(d, op) != LX_OK)
        return LX_ERR;
    return conversation_check(d, op, &op->value);
}

static int purge(struct sq_db *d, struct lx_store_op *op)
{
    if (run(d, op, stmt(d, Q_PURGE_RESP, NULL, NULL), "purging responses") != LX_OK)
        return LX_ERR;
    int n = sqlite3_changes(d->db);
    if (run(d, op, stmt(d, Q_PURGE_CONV, NULL, NULL), "purging conversations") != LX_OK)
        return LX_ERR;
    int m = sqlite3_changes(d->db);
    if (n || m)
        lx_info("store: purged %d expired responses and %d expired conversations", n, m);
    return LX_OK;
}

static bool is_write(int verb)
{
    switch (verb) {
    case LX_STORE_TURN_BEGIN: /* with a reservation */
    case LX_STORE_TURN_FINISH:
    case LX_STORE_TURN_ABORT:
    case LX_STORE_RESPONSE_DELETE:
    case LX_STORE_CONVERSATION_CREATE:
    case LX_STORE_CONVERSATION_UPDATE:
    case LX_STORE_CONVERSATION_DELETE:
    case LX_STORE_ITEMS_ADD:
    case LX_STORE_ITEM_DELETE:
    case SQ_PURGE:
        return true;
    default:
        return false;
    }
}

static int dispatch(struct sq_db *d, struct lx_store_op *op)
{
    switch (op->verb) {
    case LX_STORE_TURN_BEGIN: return turn_begin(d, op);
    case LX_STORE_TURN_FINISH: return turn_finish(d, op);
    case LX_STORE_TURN_ABORT: return turn_abort(d, op);
    case LX_STORE_RESPONSE_GET: return response_get(d, op);
    case LX_STORE_RESPONSE_DELETE: return response_delete(d, op);
    case LX_STORE_RESPONSE_INPUT_ITEMS: return response_input_items(d, op);
    case LX_STORE_CONVERSATION_CREATE: return conversation_create(d, op);
    case LX_STORE_CONVERSATION_GET: return conversation_check(d, op, &op->value);
    case LX_STORE_CONVERSATION_UPDATE: return conversation_update(d, op);
    case LX_STORE_CONVERSATION_DELETE: return conversation_delete(d, op);
    case LX_STORE_ITEMS_ADD: return items_add(d, op);
    case LX_STORE_ITEMS_LIST: return items_list(d, op);
    case LX_STORE_ITEM_GET: return item_get(d, op);
    case LX_STORE_ITEM_DELETE: return item_delete(d, op);
    case SQ_PURGE: return purge(d, op);
    }
    op->status = LX_STORE_ERROR;
    snprintf(op->message, sizeof op->message, "store: unknown operation %d", op->verb);
    return LX_ERR;
}

int sq_db_run(void *db, void *arg)
{
    struct sq_db *d = db;
    struct lx_store_op *op = arg;
    op->ran = true;
    op->status = LX_STORE_OK;
    if (d->batch_broken) {
        op->status = LX_STORE_ERROR;
        snprintf(op->message, sizeof op->message, "store: %s", d->batch_err);
        return LX_ERR;
    }
    bool write = is_write(op->verb);
    char e[160];
    if (write && exec_sql(d, "SAVEPOINT op", e, sizeof e) != LX_OK) {
        op->status = LX_STORE_ERROR;
        snprintf(op->message, sizeof op->message, "store: %s", e);
        return LX_ERR;
    }
    int rc = dispatch(d, op);
    if (rc != LX_OK) {
        json_decref(op->value);
        op->value = NULL;
    }
    if (write) {
        if (rc != LX_OK)
            exec_sql(d, "ROLLBACK TO op", e, sizeof e);
        exec_sql(d, "RELEASE op", e, sizeof e);
    }
    if (d->in_batch && sqlite3_get_autocommit(d->db)) {
        /* SQLite rolled the whole transaction back (disk full, I/O error): the batch is lost. */
        d->batch_broken = true;
        snprintf(d->batch_err, sizeof d->batch_err, "the transaction was rolled back: %s", sqlite3_errmsg(d->db));
        return LX_ERR;
    }
    /* NOT_FOUND, BUSY and the like are answers, not failures of the batch. */
    return op->status == LX_STORE_ERROR ? LX_ERR : LX_OK;
}

void sq_db_batch_begin(void *db)
{
    struct sq_db *d = db;
    d->batch_broken = false;
    d->in_batch = exec_sql(d, "BEGIN", d->batch_err, sizeof d->batch_err) == LX_OK;
    if (!d->in_batch)
        d->batch_broken = true;
}

int sq_db_batch_end(void *db)
{
    struct sq_db *d = db;
    char e[160];
    bool ok = !d->batch_broken;
    if (ok && exec_sql(d, "COMMIT", e, sizeof e) != LX_OK) {
        lx_error("store: commit failed: %s", e);
        ok = false;
    }
    if (!ok && !sqlite3_get_autocommit(d->db))
        exec_sql(d, "ROLLBACK", e, sizeof e);
    d->in_batch = false;
    return ok ? LX_OK : LX_ERR;
}

int sq_db_open(void *db, char *err, size_t errlen)
{
    struct sq_db *d = db;
    /* Create the file owner-only before SQLite does (it gives its -wal and -shm files the same mode):
     * conversations are private. */
    int fd = open(d->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", d->path, strerror(errno));
        return LX_ERR;
    }
    close(fd);
    if (sqlite3_open_v2(d->path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", d->path, d->db ? sqlite3_errmsg(d->db) : "out of memory");
        sq_db_close(d);
        return LX_ERR;
    }
    /* Another process holding the file (a backup) is waited for, on this thread only. */
    sqlite3_busy_timeout(d->db, 5000);
    char mode[16], e[200];
    if (pragma_text(d, "PRAGMA journal_mode = WAL", mode, sizeof mode) != LX_OK || strcmp(mode, "wal") != 0) {
        snprintf(err, errlen, "%s: cannot use WAL mode (%s)", d->path, mode[0] ? mode : sqlite3_errmsg(d->db));
        sq_db_close(d);
        return LX_ERR;
    }
    if (exec_sql(d, d->synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", e, sizeof e) !=
            LX_OK ||
        exec_sql(d, "PRAGMA foreign_keys = ON", e, sizeof e) != LX_OK) {
        snprintf(err, errlen, "%s: %s", d->path, e);
        sq_db_close(d);
        return LX_ERR;
    }
    if (migrate(d, err, errlen) != LX_OK) {
        sq_db_close(d);
        return LX_ERR;
    }
    for (int i = 0; i < Q_COUNT; i++) {
        if (sqlite3_prepare_v3(d->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &d->q[i], NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: preparing statement %d: %s", d->path, i, sqlite3_errmsg(d->db));
            sq_db_close(d);
            return LX_ERR;
        }
    }
    /* Streams cut by a crash left responses in progress: their clients never saw them finish, and a
     * turn a client did not see finish stores nothing. */
    if (exec_sql(d, "DELETE FROM responses WHERE status = 'in_progress'", e, sizeof e) == LX_OK &&
        sqlite3_changes(d->db) > 0)
        lx_info("store: dropped %d responses left in progress by an earlier run", sqlite3_changes(d->db));
    return LX_OK;
}

void sq_db_close(void *db)
{
    struct sq_db *d = db;
    for (int i = 0; i < Q_COUNT; i++) {
        sqlite3_finalize(d->q[i]);
        d->q[i] = NULL;
    }
    if (d->db)
        sqlite3_close(d->db);
    d->db = NULL;
}
