/* Private to the SQLite store backend: the operation record both halves share. store_sqlite.c is the
 * loop-thread half (submit, cancel, busy conversations, completions); store_sqlite_db.c is the
 * worker-thread half (the database: schema, statements, one function per verb). An operation's inputs
 * are written on the loop before it is queued and only read on the worker; its results are written on
 * the worker and only read on the loop after the worker posted it back (the worker's mutex orders both). */
#ifndef LX_STORE_SQLITE_H
#define LX_STORE_SQLITE_H

#include "store.h"

#include <stdint.h>

struct lx_job;
struct sq_db;

/* The backend's own verbs, after the interface's. */
enum { SQ_PURGE = LX_STORE_VERB_COUNT };

/* Items as text, serialised on the loop so the worker never touches the caller's JSON. */
struct sq_items {
    size_t n;
    char **ids;   /* owned */
    char **texts; /* owned: each item's compact JSON */
};

struct lx_store_op {
    struct sq_store *st;
    int verb;                 /* enum lx_store_verb or SQ_PURGE */
    /* inputs (owned copies; NULL when not given) */
    char *owner;              /* never NULL: "" without auth */
    char *response_id, *conversation_id, *previous_response_id, *item_id;
    char *model, *rstatus;    /* the response's model and status */
    int64_t created_at;       /* the response's created_at */
    char *envelope;           /* the response object with output and usage set to null */
    char *output;             /* the response's output array */
    char *usage;              /* the response's usage object, or NULL */
    char *input;              /* the turn's input items, as an array */
    struct sq_items add;      /* items to append to the conversation */
    char *metadata;           /* a metadata object */
    bool reserve, store, desc;
    char *after;
    long limit;
    bool skip_history;        /* TURN_BEGIN: the history came from the cache; only reserve */
    /* results (worker) */
    bool ran;                 /* the worker ran it (a cancelled operation may not have) */
    enum lx_store_status status;
    char message[256];
    json_t *value;            /* owned until handed to the callback */
    int64_t valid_until;      /* TURN_BEGIN: when the history read first changes by expiry (0: never) */
    bool cacheable;           /* TURN_BEGIN: a chain of responses only (none began in a conversation) */
    /* loop */
    json_t *cached;           /* ref held: TURN_BEGIN's history from the cache */
    json_t *input_json, *output_json; /* refs held: TURN_FINISH's items, for the cache */
    lx_store_cb cb;
    void *arg;
    struct lx_job *job;       /* while queued on the worker */
    bool cancelled;
};

/* The worker-thread half. */
struct sq_db *sq_db_new(const char *path, const struct lx_store_conf *conf);
int sq_db_open(void *db, char *err, size_t errlen);
void sq_db_close(void *db);
void sq_db_free(struct sq_db *db);
void sq_db_batch_begin(void *db);
int sq_db_batch_end(void *db);
/* Run one operation; its outcome goes into op->status, op->message and op->value. */
int sq_db_run(void *db, void *op);

#endif
