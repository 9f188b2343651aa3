/* Requests the connection front answers itself, without MHD: the transport (struct lx_transport) of the
 * hot endpoints (a chat completion, an embeddings call) on the main address. The front has already read
 * and checked the whole request; this file makes it a struct lx_req, hands it to the route table, and
 * writes the answer the way MHD would have (status line, Date, the request's headers, Content-Length or
 * chunked framing) into the front's output. Everything else still goes to MHD (front.c decides).
 *
 * Only front.c calls these, from loop callbacks. */
#ifndef LX_DIRECT_H
#define LX_DIRECT_H

#include "../core/buf.h"

#include <stdbool.h>
#include <stddef.h>

struct lx_config;
struct lx_front;
struct lx_req;

/* What a request the front answers itself is to be given, when it is whole. */
struct lx_direct_start {
    struct lx_config *cfg;                /* borrowed: the request takes a reference */
    void (*route)(struct lx_req *req);    /* the route table */
    const char *(*reason)(int status);    /* the reason phrase of a status line */
    const char *method;                   /* borrowed, method_len bytes */
    size_t method_len;
    const char *path;                     /* borrowed: the path, without the query */
    size_t path_len;
    const char *fields;                   /* borrowed: the canonical head (lx_reqhead_parse) */
    size_t fields_len;
    struct lx_buf *body;                  /* its contents are taken over */
    double t_first;                       /* lx_now_ms_f at the request's first byte (0: now) */
    bool close;                           /* the connection closes after the answer */
};

/* Make the request and dispatch it (its handler may answer before this returns). Its answer is
 * announced by lx_front_kick(front); the front then collects it with lx_direct_pump. */
struct lx_req *lx_direct_start(struct lx_front *front, const struct lx_direct_start *s);

enum lx_direct_step {
    LX_DIRECT_WAIT, /* nothing (more) to send for now */
    LX_DIRECT_END,  /* the whole answer is in out: finish once it is sent */
    LX_DIRECT_CUT,  /* the stream failed: close the connection after what is in out */
    LX_DIRECT_GONE, /* the client is gone: finish now */
};

/* Append what is ready of the answer to out, up to about room bytes. */
enum lx_direct_step lx_direct_pump(struct lx_req *req, struct lx_buf *out, size_t room);
/* True once the status line went out (MHD's "the request was answered"). */
bool lx_direct_answered(const struct lx_req *req);
/* The front is done with the request: completed says the whole answer was sent. The request is
 * published as finished and the front's reference dropped. */
void lx_direct_finish(struct lx_req *req, bool completed);

#endif
