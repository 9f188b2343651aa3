/* One request's answer written in its dialect: a JSON body (the completion, or an error in the dialect's
 * shape), or a stream of the dialect's events, begun once ("200" and its head), ended with the dialect's
 * closing events or its error event, with keep-alives while a begun stream is silent (dialects that want
 * them). Every endpoint that answers with model output writes through one of these. */
#ifndef LX_REPLY_H
#define LX_REPLY_H

#include "../../dialects/dialect.h"
#include "../core/buf.h"

#include <jansson.h>
#include <stdbool.h>

struct lx_answer_bytes;
struct lx_req;
struct lx_timer;

struct lx_reply {
    struct lx_req *req;               /* borrowed: the owner holds it */
    const struct lx_dialect *dialect; /* static */
    struct lx_dialect_req rq;         /* owned: what the dialect learned from the request */
    void *stream;                     /* owned: the dialect's stream state once begun (may be NULL) */
    bool begun;                       /* the stream's head is committed */
    bool ended;
    struct lx_timer *keepalive;       /* owned: runs while a begun stream is silent, when the dialect wants */
    long keepalive_ms;                /* its period: the config's keepalive_ms, else the dialect's */
    struct lx_buf out;                /* owned: the events being encoded, reused */
};

/* A reply to req in d. rq (may be NULL) is taken over: emptied. */
void lx_reply_init(struct lx_reply *r, struct lx_req *req, const struct lx_dialect *d, struct lx_dialect_req *rq);
void lx_reply_clear(struct lx_reply *r);

/* Commit the stream: "200" with the dialect's content type and the no-buffering headers, once. */
void lx_reply_begin(struct lx_reply *r);
/* One pivot chunk (borrowed) as the dialect's events; begins the stream first. May run inside libcurl. */
void lx_reply_chunk(struct lx_reply *r, json_t *chunk);
/* A begun stream has been silent a while (tools running): the dialect's keep-alive, or an SSE comment. */
void lx_reply_keepalive(struct lx_reply *r);
/* The stream ended well: the dialect's closing events, and the end (begun first if nothing came). */
void lx_reply_end(struct lx_reply *r);
/* err: as the dialect's error event ending the stream when it has begun, else as its error answer. */
void lx_reply_error(struct lx_reply *r, const struct lx_error *err);
/* The non-stream answer: a pivot chat.completion (stolen), in the dialect's shape. */
void lx_reply_completion(struct lx_reply *r, json_t *completion);
/* The pass-through path: a chunk, or the completion, kept as the upstream's bytes (borrowed). A dialect
 * with the bytes slots writes them as they are; for the others they are read into JSON first. */
void lx_reply_chunk_bytes(struct lx_reply *r, const struct lx_answer_bytes *chunk);
void lx_reply_completion_bytes(struct lx_reply *r, const struct lx_answer_bytes *completion);
/* Does the dialect take answers as bytes (both slots)? */
bool lx_reply_takes_bytes(const struct lx_dialect *d);

/* Answer err in d's shape, for a request that fails before it has a reply of its own. */
void lx_reply_fail(struct lx_req *req, const struct lx_dialect *d, const struct lx_error *err);

#endif
