/* Request framing for HTTP/1.1 (RFC 9112): the one place that decides whether a request is well framed.
 * Pure functions over bytes, with no I/O: the front (front.c) runs every request a client sends through
 * them, and hands MHD only what they accepted, rewritten in one canonical form that no two parsers can
 * read differently. Lines must end in CRLF; a bare CR or LF is an error, as is any control character but
 * HTAB in a field value. */
#ifndef LX_REQHEAD_H
#define LX_REQHEAD_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lx_body { LX_BODY_NONE, LX_BODY_LENGTH, LX_BODY_CHUNKED };

struct lx_reqhead {
    /* When refused: the status to answer (400, 414, 431, 501 or 505), an error code and a message. */
    int status;
    const char *code;           /* static */
    const char *message;        /* valid until the next refusal (one buffer: the loop's thread only) */

    /* Once the request line was read (also when a later line is refused). Borrowed from the input. */
    const char *method;
    size_t method_len;
    const char *target;         /* the request-target as sent */
    size_t target_len;

    /* When well framed. */
    size_t len;                 /* bytes of the head: leading empty lines, lines, the final CRLF */
    bool http10;                /* HTTP/1.0; any other accepted version is HTTP/1.1 */
    enum lx_body body;
    uint64_t content_length;    /* LX_BODY_LENGTH */
    bool expect_continue;       /* "Expect: 100-continue": the client waits for a 100 before its body */
    bool close;                 /* no request may follow this one on the connection */
};

/* Skip the empty lines (CRLF) that may precede a request line (RFC 9112 section 2.2); returns how many
 * bytes of buf they take. A lone trailing CR is left for the next call. */
size_t lx_reqhead_skip_empty(const char *buf, size_t n);

/* Check the request head at the start of buf[0..n), of at most max bytes (limits.max_header_bytes).
 * LX_AGAIN: no complete head yet and nothing wrong so far, read more. LX_ERR: h->status, h->code and
 * h->message say why. LX_OK: h describes a well-framed request whose head is h->len bytes; when canon
 * is not NULL, the head is appended to it in canonical form, without its framing fields and the final
 * empty line (lx_reqhead_finish adds those): "METHOD SP origin-form SP HTTP/1.x", one "Name: value" line
 * per field with the surrounding whitespace trimmed, Content-Length, Transfer-Encoding, Connection,
 * Expect and Cookie left out, and for an absolute-form target its path as the target and its authority as
 * the Host. At most 100 header fields and 100 query parameters are accepted (431, 414). */
int lx_reqhead_parse(const char *buf, size_t n, size_t max, struct lx_reqhead *h, struct lx_buf *canon);

/* End a canonical head: the body's length (when the request has one), "Connection: close" when h->close
 * (or "keep-alive" for a persistent HTTP/1.0 request), and the empty line. */
void lx_reqhead_finish(struct lx_buf *canon, const struct lx_reqhead *h, uint64_t body_len);

/* A chunked request body being decoded, strictly: hex sizes without signs or spaces, extensions
 * skipped, CRLF after every line and every chunk's data, trailer fields checked like header fields and
 * dropped. Zero it to start. */
struct lx_chunked {
    int state;                  /* where in the framing the next byte falls (reqhead.c) */
    uint64_t left;              /* data bytes of the current chunk still to come */
    size_t line;                /* bytes of the current size or trailer line so far */
    size_t size_digits;
    uint64_t total;             /* data bytes decoded so far */
    size_t trailer_bytes;
    /* When refused: 400, 413 or 431 (trailers), a code and a message. */
    int status;
    const char *code;           /* static */
    const char *message;        /* static */
};

/* Feed n bytes of the body. Data goes to out (when not NULL); *used is how many of the n bytes belong to
 * the body. LX_AGAIN: all used, the body goes on. LX_OK: the body (trailers included) ended after *used
 * bytes. LX_ERR: malformed (400) or more than max_body data bytes (413), see c->status. */
int lx_chunked_feed(struct lx_chunked *c, const char *p, size_t n, size_t *used, struct lx_buf *out,
                    uint64_t max_body, size_t max_trailer);

#endif
