/* The transport of the requests the front answers itself (direct.h). Each is a struct direct_req with
 * its struct lx_req embedded; its headers are the front's canonical head, split once; its answer is
 * written as MHD writes one: "HTTP/1.1 status reason", Date, Connection: close when the connection ends,
 * Content-Type, X-Request-Id, the handler's headers, then Content-Length and the body, or
 * Transfer-Encoding: chunked and one chunk per read of the stream.
 *
 * Callback contexts: wake may run inside libcurl (through lx_req_stream_write); it only makes the
 * front's write watch active. Everything else runs from the front's loop callbacks. */
#include "direct.h"
#include "front.h"
#include "req.h"
#include "../core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LX_DIRECT_BLOCK (16u * 1024) /* most stream bytes framed as one chunk */

struct direct_req {
    struct lx_req req;       /* embedded: the request the rest of llmux sees */
    struct lx_front *front;  /* borrowed: the connection, until lx_direct_finish */
    char *fields;            /* owned: the request's header fields, "name\0value\0" each */
    size_t fields_len;
    const char *(*reason)(int status);
    bool close;              /* Connection: close in the answer */
    bool head_out;           /* the status line and headers are in the front's output */
    enum lx_direct_step end; /* LX_DIRECT_END or _CUT once the answer's end went out; else WAIT */
};

static struct direct_req *direct_of(struct lx_req *req)
{
    return LX_CONTAINER_OF(req, struct direct_req, req);
}

static const char *direct_header(struct lx_req *req, const char *name)
{
    struct direct_req *d = direct_of(req);
    const char *p = d->fields, *end = d->fields + d->fields_len;
    while (p < end) {
        const char *value = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

static void direct_wake(struct lx_req *req)
{
    struct direct_req *d = direct_of(req);
    if (d->front)
        lx_front_kick(d->front);
}

static void direct_dispose(struct lx_req *req)
{
    struct direct_req *d = direct_of(req);
    free(d->fields);
    free(d);
}

static const struct lx_transport lx_direct_transport = {
    .header = direct_header,
    .wake = direct_wake,
    .dispose = direct_dispose,
};

/* The canonical head's field lines ("Name: value\r\n" after the request line), as "name\0value\0". */
static void split_fields(struct direct_req *d, const char *head, size_t len)
{
    const char *p = memchr(head, '\n', len);
    p = p ? p + 1 : head + len;
    size_t n = (size_t)(head + len - p);
    d->fields = lx_malloc(n + 1);
    char *out = d->fields;
    const char *end = head + len;
    while (p < end) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (!eol || !colon || colon > eol)
            break;
        memcpy(out, p, (size_t)(colon - p));
        out += colon - p;
        *out++ = '\0';
        const char *v = colon + 2 <= eol ? colon + 2 : eol; /* canonical: exactly ": " before the value */
        memcpy(out, v, (size_t)(eol - v));
        out += eol - v;
        *out++ = '\0';
        p = eol + 2;
    }
    d->fields_len = (size_t)(out - d->fields);
}

struct lx_req *lx_direct_start(struct lx_front *front, const struct lx_direct_start *s)
{
    struct direct_req *d = lx_calloc(1, sizeof *d);
    struct lx_req *req = &d->req;
    char method[16];
    lx_strcut(method, sizeof method, s->method, s->method_len);
    char *path = lx_strndup(s->path, s->path_len);
    lx_req_init(req, &lx_direct_transport, s->cfg, method, path);
    free(path);
    d->front = front;
    d->reason = s->reason;
    d->close = s->close;
    split_fields(d, s->fields, s->fields_len);
    lx_req_set_request_id(req, direct_header(req, "X-Request-Id"));
    if (s->t_first > 0)
        req->t_start = s->t_first;
    req->body = *s->body;
    memset(s->body, 0, sizeof *s->body);
    lx_buf_fit(&req->body); /* kept for the request's life (retries, fallbacks) */
    req->bytes_in = req->body.len;
    lx_req_dispatch(req, s->route);
    return req;
}

/* The Date header's value, formatted once a second. */
static const char *http_date(void)
{
    static time_t last;
    static char date[40];
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return date;
}

#define put_lit(b, lit) lx_buf_append((b), lit, sizeof lit - 1)

static void put_line(struct lx_buf *out, const char *name, const char *value)
{
    lx_buf_puts(out, name);
    put_lit(out, ": ");
    lx_buf_puts(out, value);
    put_lit(out, "\r\n");
}

static void put_size(struct lx_buf *out, size_t n, int base)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[24];
    char *p = tmp + sizeof tmp;
    do
        *--p = digits[n % (size_t)base];
    while (n /= (size_t)base);
    lx_buf_append(out, p, (size_t)(tmp + sizeof tmp - p));
}

static void put_head(struct direct_req *d, struct lx_buf *out, bool chunked, size_t len)
{
    struct lx_req *req = &d->req;
    put_lit(out, "HTTP/1.1 ");
    put_size(out, (size_t)req->status, 10);
    put_lit(out, " ");
    lx_buf_puts(out, d->reason(req->status));
    put_lit(out, "\r\nDate: ");
    lx_buf_puts(out, http_date());
    put_lit(out, "\r\n");
    if (d->close)
        put_lit(out, "Connection: close\r\n");
    if (req->content_type)
        put_line(out, "Content-Type", req->content_type);
    put_line(out, "X-Request-Id", req->request_id);
    for (size_t i = 0; i < req->n_resp_headers; i++) {
        lx_buf_puts(out, req->resp_headers[i]);
        put_lit(out, "\r\n");
        free(req->resp_headers[i]);
    }
    /* Written: a stream need not hold them for its life. */
    free(req->resp_headers);
    req->resp_headers = NULL;
    req->n_resp_headers = 0;
    if (chunked) {
        put_lit(out, "Transfer-Encoding: chunked\r\n\r\n");
    } else {
        put_lit(out, "Content-Length: ");
        put_size(out, len, 10);
        put_lit(out, "\r\n\r\n");
    }
    d->head_out = true;
}

enum lx_direct_step lx_direct_pump(struct lx_req *req, struct lx_buf *out, size_t room)
{
    struct direct_req *d = direct_of(req);
    if (req->client_gone)
        return LX_DIRECT_GONE;
    if (d->end != LX_DIRECT_WAIT)
        return d->end;
    if (req->state == LX_REQ_RESPONDING) {
        size_t len;
        char *body = lx_req_take_body(req, &len);
        put_head(d, out, false, len);
        lx_buf_append(out, body, len);
        free(body);
        return d->end = LX_DIRECT_END;
    }
    if (req->state != LX_REQ_STREAMING)
        return LX_DIRECT_WAIT;
    if (!d->head_out)
        put_head(d, out, true, 0);
    char buf[LX_DIRECT_BLOCK];
    size_t start = lx_buf_avail(out);
    for (;;) {
        size_t used = lx_buf_avail(out) - start;
        if (used >= room)
            return LX_DIRECT_WAIT;
        size_t max = room - used < sizeof buf ? room - used : sizeof buf;
        ssize_t n = lx_req_stream_read(req, buf, max);
        if (n == LX_REQ_STREAM_END) {
            put_lit(out, "0\r\n\r\n");
            return d->end = LX_DIRECT_END;
        }
        if (n == LX_REQ_STREAM_CUT)
            return d->end = LX_DIRECT_CUT;
        if (n <= 0)
            return LX_DIRECT_WAIT;
        put_size(out, (size_t)n, 16);
        put_lit(out, "\r\n");
        lx_buf_append(out, buf, (size_t)n);
        put_lit(out, "\r\n");
    }
}

bool lx_direct_answered(const struct lx_req *req)
{
    return direct_of((struct lx_req *)req)->head_out;
}

void lx_direct_finish(struct lx_req *req, bool completed)
{
    struct direct_req *d = direct_of(req);
    d->front = NULL;
    lx_req_finish(req, completed);
    lx_req_release(req);
}
