/* The request object and its response API: one per client request, owning the request body, the
 * response being built or streamed (the output queue), and the log fields. Its life is a small state
 * machine (lx_req_set_state checks each transition), and it is freed when the last reference drops: the
 * transport holds one until it reports the request finished, and a handler holds one while it still has
 * work that can call back.
 *
 * A request knows nothing of the protocol beneath it. A transport (the MHD glue, server/mhd.c, or a
 * test's fake) embeds struct lx_req in a record of its own and fills a struct lx_transport, which req.c
 * calls to read request headers, to get new output moving and to free the record; the transport reads
 * the output with lx_req_take_body and lx_req_stream_read. So a handler runs the same over a socket or
 * without one.
 *
 * The server/ layer: the MHD glue (mhd.c, the only file that includes libmicrohttpd), the connection front
 * (front.c), this request object, client keys (auth.c) and the access log. It may include src/core/ and
 * src/io/, nothing above: the route table that requests are handed to is given to it from main.c. */
#ifndef LX_REQ_H
#define LX_REQ_H

#include "../core/buf.h"
#include "../core/bus.h"
#include "../core/errors.h"
#include "../core/tally.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct lx_config;
struct lx_auth_key;
struct lx_key_state;
struct lx_fleet_hold;
struct lx_timer;

enum lx_req_state {
    LX_REQ_RECEIVING,  /* headers in, body arriving */
    LX_REQ_HANDLING,   /* dispatched; the handler works (the transport holds the connection) */
    LX_REQ_RESPONDING, /* a complete response is set */
    LX_REQ_STREAMING,  /* a streamed response has begun */
    LX_REQ_FINISHED,   /* the transport is done with it: sent, or the client is gone */
    LX_REQ_STATE_COUNT
};

struct lx_req;

/* What a transport does for req.c. Every slot runs from the loop or, for wake, from a libcurl callback. */
struct lx_transport {
    /* A request header, or NULL. */
    const char *(*header)(struct lx_req *req, const char *name);
    /* A query parameter of the target, decoded, or NULL. May be NULL (no query parameters). */
    const char *(*query)(struct lx_req *req, const char *name);
    /* The response changed (begun, bytes queued, ended, cut): get it moving to the client. Never called
     * from inside the transport's own callbacks about this request. */
    void (*wake)(struct lx_req *req);
    /* The last reference dropped and req.c freed its fields: free the record that embeds req. */
    void (*dispose)(struct lx_req *req);
};

/* A handler that answers later embeds one of these in its state (LX_CONTAINER_OF finds the state) and
 * sets it with lx_req_set_handler. Both slots run from the loop, never inside libcurl. */
struct lx_req_handler {
    /* The request ends before the handler is done: stop all work and release the hold. why == NULL:
     * the client is gone or the server is shutting down, nothing can be written. Otherwise the server ends
     * it (limits.max_request_ms): answer with why first, in the endpoint's own shape (an error answer, or
     * the error event that ends a begun stream); what is left unanswered the server answers or cuts. */
    void (*on_abort)(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why);
    /* The output queue drained below the low watermark after lx_req_can_write said no. */
    void (*on_drain)(struct lx_req_handler *h, struct lx_req *req);
};

#define LX_REQ_ID_MAX 128 /* longest X-Request-Id accepted from a client */

struct lx_req {
    uint64_t id;
    char *request_id;   /* X-Request-Id: the client's, or generated; returned and forwarded. Points at id_buf
                         * unless a client's id is longer (then owned): most requests' ids are 32 characters */
    char id_buf[33];
    enum lx_req_state state;
    int refs;
    const struct lx_transport *transport; /* static; NULL for a record that only gets logged */
    struct lx_config *cfg;       /* ref held: the config this request runs under */
    char method[16];
    char *path;                  /* owned */
    struct lx_buf body;          /* owned: the request body */
    bool on_admin;               /* arrived on the admin address (admin_listen) */
    struct lx_timer *deadline;   /* owned: limits.max_request_ms, from dispatch to the end */

    /* response */
    int status;
    char *content_type;          /* owned */
    char **resp_headers;         /* owned: "Name: value" lines */
    size_t n_resp_headers;
    struct lx_buf out;           /* owned: bytes not yet handed to the transport */
    bool out_ended;              /* the stream's last byte is in out */
    bool out_cut;                /* end the stream with an error (connection cut) */
    bool client_gone;            /* the client left before the response finished */
    bool drain_wanted;           /* a writer was told "full" and waits for on_drain */
    bool out_mid_event;          /* the stream's bytes so far end inside an SSE event (no blank line yet) */

    struct lx_req_handler *handler; /* borrowed: the handler's, until it answers; NULL when none */

    struct lx_ev_origin origin;  /* who its events are about (core/bus.h): its id, key name, model, trace */
    bool announced;              /* request.started was published */
    char *tracestate;            /* owned: the client's tracestate (origin.tracestate), or NULL */

    /* access control (auth.c) */
    const struct lx_auth_key *auth_key; /* borrowed from cfg: the client's key, or NULL */
    struct lx_key_state *key_state;     /* borrowed from ratelimit.c (lives until exit): set while counted in flight */
    struct lx_fleet_hold *fleet_hold;   /* owned by ratelimit.c: the request's place in the fleet's counts, or NULL */
    long tpm_reserve;                   /* tokens reserved at admission, settled when it finishes */

    /* log fields */
    const char *route;           /* static: the endpoint matched, for metrics; NULL = none */
    char *model;                 /* owned: the model asked for, once known */
    struct lx_tally tally;       /* what its model calls added up to */
    char *error_code;            /* owned: the code of the error answered, or NULL */
    uint64_t bytes_in;
    double t_start;              /* lx_now_ms_f at the first byte of headers */
    double t_first_byte;         /* when the first response byte was handed over; 0 = not yet */
    uint64_t bytes_out;
};

#define LX_REQ_OUT_HIGH (256u * 1024) /* stop upstream reads above this many queued bytes */
#define LX_REQ_OUT_LOW (64u * 1024)   /* and resume below this */

/* --- lifecycle, for transports --- */

/* Set up req, zeroed memory the transport owns (and frees in t->dispose). */
void lx_req_init(struct lx_req *req, const struct lx_transport *t, struct lx_config *cfg, const char *method,
                 const char *path);
/* A request without a transport, for requests that end before any handler sees them (the front's
 * refusals): logged through lx_req_finish, then released. */
struct lx_req *lx_req_new(struct lx_config *cfg, const char *method, const char *path);
/* The whole request is in: it is handled from now on (limits.max_request_ms starts), by route. */
void lx_req_dispatch(struct lx_req *req, void (*route)(struct lx_req *req));
/* The client is gone (or the server stops): the handler is told, and output stops. */
void lx_req_client_gone(struct lx_req *req);
/* The transport is done with it: completed says the whole answer went out. request.finished, .failed or
 * .cancelled is published on the bus (core/bus.h: the access log, metrics and key accounting listen);
 * the transport then releases its reference. */
void lx_req_finish(struct lx_req *req, bool completed);
/* Publish request.started (once; the route, key and model are known by now), or request.first_token
 * with the answerer's label: for the handlers that run model calls. */
void lx_req_announce(struct lx_req *req);
void lx_req_first_token(struct lx_req *req, const char *answered_by);
/* The handler will not read the request's body again (its answer is decided): free it, so that a long
 * stream does not keep its prompt. bytes_in stays. */
void lx_req_drop_body(struct lx_req *req);
/* The whole (non-stream) response body, handed over (owned by the caller). */
char *lx_req_take_body(struct lx_req *req, size_t *len);
/* Up to max bytes of a streamed response. Returns the count, or 0 when nothing is queued yet (wait for
 * wake), LX_REQ_STREAM_END when the stream ended, LX_REQ_STREAM_CUT when it must end with an error. */
#define LX_REQ_STREAM_END ((ssize_t)-1)
#define LX_REQ_STREAM_CUT ((ssize_t)-2)
ssize_t lx_req_stream_read(struct lx_req *req, char *buf, size_t max);
/* The client sent a FIN while this request's stream is open: it may only have half-closed (its answer is
 * still due), or closed for good, which its TCP stack reveals only by resetting the connection when bytes
 * reach it. So a begun SSE stream that stands between two events, with nothing queued, gets an SSE comment
 * (which every SSE client skips) on the next turn of the loop. False when no probe can be sent (not an SSE
 * stream, nothing begun, or mid-event: then the next write pokes the client anyway). Safe to call from
 * the transport's own callbacks: the bytes are queued from a deferred callback. */
bool lx_req_probe_client(struct lx_req *req);

void lx_req_set_state(struct lx_req *req, enum lx_req_state to);
/* Keep the client's X-Request-Id when it is sane (client may be NULL), else make one up. */
void lx_req_set_request_id(struct lx_req *req, const char *client);
const char *lx_req_state_name(enum lx_req_state s);
struct lx_req *lx_req_hold(struct lx_req *req);
void lx_req_release(struct lx_req *req);

/* --- the handler-facing API --- */
void lx_req_set_handler(struct lx_req *req, struct lx_req_handler *h);
/* A request header, or NULL. Valid only while the client is connected; copy what you keep. */
const char *lx_req_header(struct lx_req *req, const char *name);
/* A query parameter ("?types=..."), decoded, or NULL; valid like lx_req_header's. */
const char *lx_req_query(struct lx_req *req, const char *name);
void lx_req_add_header(struct lx_req *req, const char *name, const char *value);
void lx_req_respond(struct lx_req *req, int status, const char *content_type, const char *body, size_t len);
void lx_req_respond_json(struct lx_req *req, int status, json_t *body /* stolen */);
/* Answer err: status, body (stolen), and the headers that go with err (Retry-After, WWW-Authenticate,
 * X-Should-Retry); its code goes to the access log. */
void lx_req_respond_error_body(struct lx_req *req, const struct lx_error *err, int status, json_t *body);
/* The same in OpenAI's shape, with err's status. */
void lx_req_respond_error(struct lx_req *req, const struct lx_error *err);
void lx_req_stream_begin(struct lx_req *req, int status, const char *content_type);
void lx_req_stream_write(struct lx_req *req, const char *data, size_t len);
void lx_req_stream_end(struct lx_req *req);
/* End a begun stream by cutting the connection (the client sees an incomplete response). */
void lx_req_stream_cut(struct lx_req *req);
/* False when the output queue is above the high watermark: pause the producer until on_drain. */
bool lx_req_can_write(struct lx_req *req);
bool lx_req_started(const struct lx_req *req);

#endif
