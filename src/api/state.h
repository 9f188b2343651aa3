/* The conversation store of the running process, for the endpoints that keep state (/v1/responses,
 * /v1/conversations): opened once at start-up from the first configuration's state section (a reload
 * cannot move it), and the steps those endpoints share: the owner of a request's objects, a store answer
 * turned into the client's error, and "answer this operation's value as JSON". */
#ifndef LX_API_STATE_H
#define LX_API_STATE_H

#include "../core/errors.h"
#include "../engine/store.h"

struct lx_req;
struct lx_state_conf;

/* Open the store: SQLite (make state_dir, 0700 with its parents, and lock the file) or, with
 * "backend": "redis", the Redis of the redis section (borrowed for the store's life); nothing when
 * storage is off. LX_ERR with err set. At start-up only (it may block). */
struct lx_redis_conf;
int lx_state_open(const struct lx_state_conf *sc, const struct lx_redis_conf *redis, char *err, size_t errlen);
/* A reload: the store stays as opened; say so when the new settings differ. */
void lx_state_reload(const struct lx_state_conf *sc);
/* Finish what the store holds (before the loop is freed). */
void lx_state_close(void);
/* The store, or NULL when storage is off. */
struct lx_store *lx_state_store(void);

/* Whose objects a request sees: its client key's name, or "" without auth. */
const char *lx_state_owner(const struct lx_req *req);
/* A failed store answer as the client's error (404 not_found naming param, 409, 503, 500). */
void lx_state_error(struct lx_error *err, const struct lx_store_result *res, const char *param);
/* The 400 for a request that needs storage while it is off. */
void lx_state_disabled(struct lx_error *err, const char *param);

/* Tell observers the store saved a conversation's items (the conversation.saved event): id is the
 * conversation's, or the response's for a turn outside one; items how many were saved; since_ms when the
 * write was submitted (lx_now_ms_f), for the store's time. Costs nothing when nobody listens. */
void lx_state_saved(struct lx_req *req, const char *id, long items, double since_ms);

/* Submit rq for req and answer the value as JSON 200 (or the error); `shape` may rewrite the value
 * (borrowed) into the body (new reference); NULL: the value itself. param names the id in a 404. The
 * request is held until the answer; a client that leaves cancels the operation. */
void lx_state_answer(struct lx_req *req, const struct lx_store_req *rq, const char *param,
                     json_t *(*shape)(const struct lx_store_req *rq, json_t *value));

#endif
