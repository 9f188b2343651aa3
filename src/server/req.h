/* The client-side request object: one per HTTP request, owning the request body, the response being
 * built or streamed, and the log fields. Its life is a small state machine (lx_req_set_state checks each
 * transition) and it is freed when the last reference drops: the HTTP side holds one until MHD reports
 * the request complete, and a handler holds one while it still has work that can call back. */
#ifndef LX_REQ_H
#define LX_REQ_H

#include "../core/buf.h"
#include "../core/errors.h"
#include "../core/tally.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct lx_config;
struct lx_auth_key;
struct lx_timer;

enum lx_req_state {
    LX_REQ_RECEIVING,  /* headers in, body arriving */
    LX_REQ_HANDLING,   /* dispatched; the handler works (connection suspended) */
    LX_REQ_RESPONDING, /* a complete response is set */
    LX_REQ_STREAMING,  /* a streamed response has begun */
    LX_REQ_FINISHED,   /* MHD is done with it: sent, or the client is gone */
    LX_REQ_STATE_COUNT
};

struct lx_req;

/* What a handler is told about its request. Both run from the loop (never inside libcurl). */
struct lx_req_handler {
    /* The client is gone (or the server is shutting down): stop all work and release the hold. */
    void (*on_abort)(struct lx_req *req, void *data);
    /* The output queue drained below the low watermark after lx_req_can_write said no. */
    void (*on_drain)(struct lx_req *req, void *data);
};

#define LX_REQ_ID_MAX 128 /* longest X-Request-Id accepted from a client */

struct lx_req {
    uint64_t id;
    char request_id[LX_REQ_ID_MAX + 1]; /* X-Request-Id: the client's, or generated; returned and forwarded */
    enum lx_req_state state;
    int refs;
    struct lx_config *cfg;       /* ref held: the config this request runs under */
    char method[16];
    char *path;                  /* owned */
    struct lx_buf body;          /* owned: the request body */

    /* response */
    int status;
    char *content_type;          /* owned */
    char **resp_headers;         /* owned: "Name: value" lines */
    size_t n_resp_headers;
    struct lx_buf out;           /* owned: bytes not yet handed to MHD */
    bool out_ended;              /* the stream's last byte is in out */
    bool out_cut;                /* end the stream with an error (connection cut) */
    bool client_gone;            /* the client left before the response finished */
    bool drain_wanted;           /* a writer was told "full" and waits for on_drain */

    const struct lx_req_handler *handler; /* static table, NULL when none */
    void *handler_data;          /* the handler's, borrowed */

    /* access control (auth.c) */
    const struct lx_auth_key *auth_key; /* borrowed from cfg: the client's key, or NULL */
    void *auth_state;            /* borrowed from auth.c (lives until exit): set while counted in flight */

    /* log fields */
    const char *route;           /* static: the endpoint matched, for metrics; NULL = none */
    char *model;                 /* owned: the model asked for, once known */
    struct lx_tally tally;       /* what its model calls added up to */
    char *error_code;            /* owned: the code of the error answered, or NULL */
    uint64_t bytes_in;
    double t_start;              /* lx_now_ms_f at the first byte of headers */
    double t_first_byte;         /* when the first response byte was handed over; 0 = not yet */
    uint64_t bytes_out;

    /* http.c private */
    void *conn;                  /* borrowed from MHD: valid until the completion callback */
    bool suspended;
    bool queued;                 /* a response was queued with MHD */
    bool on_admin;               /* arrived on the admin address */
    void *listener;              /* borrowed: the http.c listener it arrived on */
    void *http_conn;             /* borrowed: the connection's front (front.c), valid while conn is */
    struct lx_timer *deadline_ev; /* owned by mhd.c: limits.max_request_ms */
    struct lx_req *prev, *next;  /* live-request list in http.c */
};

#define LX_REQ_OUT_HIGH (256u * 1024) /* stop upstream reads above this many queued bytes */
#define LX_REQ_OUT_LOW (64u * 1024)   /* and resume below this */

struct lx_req *lx_req_new(struct lx_config *cfg, const char *method, const char *path);
void lx_req_set_state(struct lx_req *req, enum lx_req_state to);
/* Keep the client's X-Request-Id when it is sane (client may be NULL), else make one up. */
void lx_req_set_request_id(struct lx_req *req, const char *client);
const char *lx_req_state_name(enum lx_req_state s);
struct lx_req *lx_req_hold(struct lx_req *req);
void lx_req_release(struct lx_req *req);

/* --- the handler-facing API (implemented in http.c) --- */
void lx_req_set_handler(struct lx_req *req, const struct lx_req_handler *h, void *data);
/* A request header, or NULL. Valid only while the client is connected; copy what you keep. */
const char *lx_req_header(struct lx_req *req, const char *name);
void lx_req_add_header(struct lx_req *req, const char *name, const char *value);
void lx_req_respond(struct lx_req *req, int status, const char *content_type, const char *body, size_t len);
void lx_req_respond_json(struct lx_req *req, int status, json_t *body /* stolen */);
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
