/* Stored conversation state (issue 15): responses, conversations and their items, behind one small
 * asynchronous interface so that a backend can be replaced (SQLite on a worker thread for one process,
 * Redis shared by replicas: issue 19).
 *
 * The interface in one paragraph: fill a struct lx_store_req with a verb and its inputs, lx_store_submit
 * it with a callback; the callback runs later on the loop thread, exactly once unless the operation was
 * cancelled, with a status and, for verbs that answer, a JSON value. Data goes in and out as JSON in the
 * Responses API's own shapes (items, response objects, conversation objects, list pages), so the
 * endpoints hand values to clients as they come and a backend stores them as text. Every verb is scoped
 * to an owner (the client key's name; "" without auth): another owner's objects do not exist for it.
 *
 * Rules every backend keeps (the Redis one too):
 * - Callbacks are never called from inside lx_store_submit, and always on the loop thread.
 * - OK for a write means committed: durable through a crash of the process (kill -9), so an id may be
 *   handed to a client from the callback. What survives a power loss is the backend's documented choice.
 * - Inputs are borrowed: the backend copies or references what it keeps, so JSON handed to it must not
 *   be modified afterwards; the callback's value is borrowed for the duration of the callback
 *   (json_incref to keep it) and must not be modified either (a backend may cache it).
 * - A conversation has at most one turn in flight: TURN_BEGIN on a busy conversation answers BUSY at
 *   once, and the turn holds it until TURN_FINISH completes (whatever its status) or TURN_ABORT.
 * - Expired objects (retention) answer NOT_FOUND at once, even before they are purged.
 *
 * Threads: everything here is called on the loop thread. */
#ifndef LX_STORE_H
#define LX_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lx_redis_conf; /* io/redis.h */

enum lx_store_status {
    LX_STORE_OK,
    LX_STORE_NOT_FOUND,   /* no such object for this owner, or it expired: the client gets a 404 */
    LX_STORE_BUSY,        /* the conversation has a turn in flight, or the previous response is still in
                             progress: 409 */
    LX_STORE_UNAVAILABLE, /* the backend cannot take more work now (queue full, stopping, unreachable):
                             503, worth retrying */
    LX_STORE_ERROR,       /* the backend failed (disk full, I/O error): 500 */
};

/* What each verb reads from struct lx_store_req, and what the callback's value is. "items" are Responses
 * items (message, function_call, function_call_output, ...), each an object with a string "id". */
enum lx_store_verb {
    /* Start a turn. Reads owner, previous_response_id or conversation_id (at most one), and reserve.
     * With conversation_id: the conversation is held busy for this turn (keyed by response_id).
     * With reserve: the response object is stored at once with its status (in_progress), so its id may
     * be streamed (response.created) before the answer exists. Value: the history the turn continues,
     * an array of items oldest first (the chain of previous responses, each one's input then output; or
     * the conversation's items); [] with neither id. BUSY: conversation busy, or previous response in
     * progress. NOT_FOUND: either id unknown for this owner. */
    LX_STORE_TURN_BEGIN,
    /* End a turn that produced a response. Reads owner, response_id, response (the final response
     * object), input (this turn's input items), previous_response_id, conversation_id, store. When store,
     * the response is saved (replacing a reserved one). When conversation_id and the response's status is
     * completed or incomplete, input and then output items are appended to the conversation (the oldest
     * items beyond max_items_per_conversation are dropped). Releases the conversation. No value.
     * NOT_FOUND: the conversation was deleted meanwhile (then nothing is saved). */
    LX_STORE_TURN_FINISH,
    /* Forget a turn that will not finish (the client left, the call failed before any answer): releases
     * the conversation and deletes the reserved response if it is still in progress. Reads owner,
     * response_id, conversation_id. Idempotent; may be submitted without a callback. No value. */
    LX_STORE_TURN_ABORT,
    /* Reads owner, response_id. Value: the response object. */
    LX_STORE_RESPONSE_GET,
    /* Reads owner, response_id. No value. (Later responses that continued it keep their own items; a
     * chain walk stops where a link is missing.) */
    LX_STORE_RESPONSE_DELETE,
    /* Reads owner, response_id, page. Value: a list page of the response's own input items. */
    LX_STORE_RESPONSE_INPUT_ITEMS,
    /* Reads owner, metadata (object or NULL), items (array or NULL). Value: the conversation object
     * {"id","object":"conversation","created_at","metadata"}; the backend makes the "conv_…" id. */
    LX_STORE_CONVERSATION_CREATE,
    /* Reads owner, conversation_id. Value: the conversation object. */
    LX_STORE_CONVERSATION_GET,
    /* Reads owner, conversation_id, metadata (replaces the old). Value: the conversation object. */
    LX_STORE_CONVERSATION_UPDATE,
    /* Reads owner, conversation_id. Deletes it and its items. No value. */
    LX_STORE_CONVERSATION_DELETE,
    /* Reads owner, conversation_id, items. Appends them (trimming as TURN_FINISH does). Value: a list
     * page of the items added. BUSY while a turn is in flight. */
    LX_STORE_ITEMS_ADD,
    /* Reads owner, conversation_id, page. Value: a list page. */
    LX_STORE_ITEMS_LIST,
    /* Reads owner, conversation_id, item_id. Value: the item. */
    LX_STORE_ITEM_GET,
    /* Reads owner, conversation_id, item_id. Value: the conversation object. */
    LX_STORE_ITEM_DELETE,
    LX_STORE_VERB_COUNT
};

/* A page request: items after the one with id `after` (NULL: from the start), at most limit (1-100,
 * checked by the caller), newest first when desc. A page value is OpenAI's list object:
 * {"object":"list","data":[...],"first_id","last_id","has_more"} (ids null when data is empty). */
struct lx_store_page {
    const char *after;
    long limit;
    bool desc;
};

/* One operation's inputs: only those its verb reads need be set. Everything is borrowed. */
struct lx_store_req {
    enum lx_store_verb verb;
    const char *owner;                /* NULL = "" */
    const char *response_id;
    const char *conversation_id;
    const char *previous_response_id;
    const char *item_id;
    json_t *response;                 /* a response object (TURN_FINISH; TURN_BEGIN's reserve) */
    bool reserve;                     /* TURN_BEGIN: store `response` (status in_progress) now */
    json_t *input;                    /* TURN_FINISH: this turn's input items */
    json_t *items;                    /* CONVERSATION_CREATE, ITEMS_ADD */
    json_t *metadata;                 /* CONVERSATION_CREATE, CONVERSATION_UPDATE */
    bool store;                       /* TURN_FINISH: keep the response itself */
    struct lx_store_page page;
};

struct lx_store_result {
    enum lx_store_status status;
    const char *message; /* borrowed: what went wrong, for logs and 5xx bodies; NULL when OK */
    json_t *value;       /* borrowed: the verb's answer, or NULL */
};

/* Loop thread, once per operation unless cancelled. */
typedef void (*lx_store_cb)(void *arg, const struct lx_store_result *res);

struct lx_store_conf {
    const char *path;                 /* the backend's location (SQLite: the database file) */
    long retention_days;              /* objects expire this long after their last change; 0 = never */
    long max_items_per_conversation;  /* a conversation keeps its newest items up to this many */
    bool synchronous_full;            /* SQLite: fsync every commit (survives power loss) */
    size_t max_queue;                 /* operations in flight before UNAVAILABLE; 0 = 4096 */
    const struct lx_redis_conf *redis; /* Redis: the connection (the top-level "redis" section), borrowed */
    long timeout_ms;                  /* Redis: one operation's budget before UNAVAILABLE; 0 = 1000 */
};

struct lx_store;
struct lx_store_op; /* a pending operation: valid until its callback ran or it was cancelled */

/* What /metrics shows of a store. */
struct lx_store_stats {
    size_t in_flight;          /* operations submitted and not yet answered */
    uint64_t operations;       /* operations answered */
    uint64_t transactions;     /* SQLite: transactions (batches of operations) */
    uint64_t cache_hits, cache_misses; /* history cache lookups */
    int up;                    /* Redis: 1 while its connection is ready, else 0; -1: no connection (SQLite) */
    uint64_t unavailable;      /* operations answered UNAVAILABLE (Redis down, slow or lost; a full queue) */
};

/* A backend: a const table, like providers (one line in lx_store_open's list to add one). */
struct lx_store_backend {
    const char *name;
    /* Open (may block: call at start-up). NULL with err filled when it cannot. */
    struct lx_store *(*open)(const struct lx_store_conf *conf, char *err, size_t errlen);
    /* Queue one operation; never calls cb from here (an immediate answer is deferred to the loop). May
     * return NULL only when cb is NULL (a fire-and-forget verb that was not queued). */
    struct lx_store_op *(*submit)(struct lx_store *st, const struct lx_store_req *rq, lx_store_cb cb, void *arg);
    /* The requester is gone: cb will not be called. A write that already started may still complete. */
    void (*cancel)(struct lx_store *st, struct lx_store_op *op);
    /* The counters for /metrics. */
    void (*stats)(struct lx_store *st, struct lx_store_stats *out);
    /* Finish what is queued (callbacks of operations not cancelled still run), then free. */
    void (*close)(struct lx_store *st);
};

/* Every backend's handle starts with this. */
struct lx_store {
    const struct lx_store_backend *backend;
};

extern const struct lx_store_backend lx_store_sqlite; /* store_sqlite.c: one process, a file */
extern const struct lx_store_backend lx_store_redis;  /* store_redis.c: replicas sharing one Redis */

static inline struct lx_store_op *lx_store_submit(struct lx_store *st, const struct lx_store_req *rq, lx_store_cb cb,
                                                  void *arg)
{
    return st->backend->submit(st, rq, cb, arg);
}

static inline void lx_store_cancel(struct lx_store *st, struct lx_store_op *op)
{
    if (op)
        st->backend->cancel(st, op);
}

static inline void lx_store_close(struct lx_store *st)
{
    if (st)
        st->backend->close(st);
}

/* Names for logs and tests. */
const char *lx_store_verb_name(enum lx_store_verb v);
const char *lx_store_status_name(enum lx_store_status s);

#endif
