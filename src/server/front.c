/* The connection front (see front.h): one record per client connection. Requests go one at a time, each
 * only once it has been read whole and found well framed. The hot endpoints are answered here, through
 * direct.c's transport; every other request goes to MHD over a socketpair, made the first time the
 * connection needs one, and its answer comes back as MHD writes it. The record lives until the client
 * socket is closed (after the last answer is sent and the client's leftovers are drained), MHD's connection
 * is closed (its close notification) and no request answered here holds it.
 *
 * The client socket is read all the time, also while a request is being answered (bytes of pipelined
 * requests wait in `in`, up to LX_FRONT_AHEAD; beyond that only its close is watched): a reset or a FIN is
 * seen at once, and the descriptor's epoll interest stays the same from one request to the next.
 *
 * Everything here runs from loop callbacks, or from the MHD glue (lx_front_set_request and friends, inside
 * MHD's callbacks, where only sockets are touched). A record is freed only at the end of a callback
 * (settle), never from inside MHD. */
#include "front.h"
#include "conf.h"
#include "direct.h"
#include "req.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/errors.h"
#include "../core/log.h"
#include "../core/metrics.h"
#include "../core/reqhead.h"
#include "../io/loop.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LX_FRONT_READ (64u * 1024)      /* bytes read from a socket per call */
#define LX_FRONT_OUT_HIGH (256u * 1024) /* stop reading MHD's answer above this many unsent bytes */
#define LX_FRONT_IDLE_MS 75000          /* keep-alive idle, and the longest a client may leave our bytes unread */
#define LX_FRONT_LINGER_MS 2000         /* after the last answer, read and drop what the client still sends */
#define LX_FRONT_MAX_LINGER 1024        /* beyond this many lingering clients, close at once */
#define LX_FRONT_LOG_TARGET 2048        /* the most of a refused request's target the access log shows */
#define LX_FRONT_AHEAD (64u * 1024)     /* most bytes of pipelined requests read while one is answered */
#define LX_FRONT_STREAM_ROOM (64u * 1024) /* stream bytes taken from a request answered here while unsent */

enum phase {
    PH_HEAD, /* reading a request head, or waiting for its first byte */
    PH_BODY, /* reading the body its head announced */
    PH_MHD,  /* the request is being answered (by MHD, or here when dreq is set): send its answer */
    PH_DONE, /* no more requests: send what is left, then close */
};

enum timer_kind {
    T_NONE,
    T_READ,   /* limits.read_timeout_ms for the request being read */
    T_IDLE,   /* keep-alive idle between requests (and between reads when read_timeout_ms is 0) */
    T_LINGER, /* LX_FRONT_LINGER_MS after the last answer */
};

struct lx_front {
    int cfd;                    /* owned: the client socket; -1 once closed */
    int afd;                    /* owned: our end of the socketpair (MHD holds the other); -1 before the
                                 * connection's first request for MHD, and once closed */
    bool mhd_open;              /* MHD still holds its end */
    void *site;                 /* borrowed: the listener's, handed to hooks.attach */
    bool direct_ok;             /* requests of the hot endpoints may be answered here */
    size_t *count;              /* borrowed: the listener's connection count, decremented when freed */
    struct lx_req *dreq;        /* hold: the request being answered here (direct.c), or NULL */
    enum phase phase;
    struct lx_buf in;           /* owned: client bytes read and not yet used */
    size_t scanned;             /* bytes of in already searched for the end of the head */
    struct lx_buf fwd;          /* owned: canonical request bytes not yet written to MHD */
    struct lx_buf body;         /* owned: the decoded body of the request being read */
    struct lx_buf out;          /* owned: bytes for the client not yet sent */
    struct lx_reqhead head;     /* the current request; its method and target are stale once it is read */
    struct lx_chunked chunked;
    uint64_t body_left;         /* LX_BODY_LENGTH: bytes still to come */
    char method[16];            /* the current request's, for the access log of an error answered here */
    char *target;               /* owned: the same, its target (its first LX_FRONT_LOG_TARGET bytes) */
    size_t target_len;
    double t_first;             /* lx_now_ms_f at the current request's first byte; 0 before it */
    void *ctx;                  /* borrowed: the request being answered (MHD's, from lx_front_set_request to
                                 * lx_front_request_done, or dreq), what hooks.client_gone gets */
    bool waiting;               /* the request's answer is not ready (MHD parked it, or it is dreq) */
    bool answered;              /* bytes of that request's answer went out */
    bool probed;                /* the 100 Continue probe went out for it */
    bool fin;                   /* the client shut its sending side (or closed): a FIN arrived */
    bool eof;                   /* ... and everything before it has been read */
    bool poked;                 /* bytes went to the client after its FIN: had it left, it would reset */
    bool hup_watched;           /* cfd is in F.hup_fd */
    bool busy;                  /* counted in F.busy */
    bool lingering;             /* counted in F.lingering */
    enum timer_kind timer_kind;
    struct lx_watch *ev;           /* owned: cfd's one watch (client_io_cb), also kicked to run client_write_cb
                                    * soon (lx_front_kick). It waits for LX_WATCH_READ: readable, until its
                                    * FIN, unless `in` holds LX_FRONT_AHEAD; LX_WATCH_WRITE: writable, while
                                    * out holds bytes the socket did not take; LX_WATCH_CLOSED: the client's
                                    * FIN while a request is answered and reading is off */
    struct lx_watch *ev_mhd_read;  /* owned: MHD wrote to the pair */
    struct lx_watch *ev_mhd_write; /* owned: the pair has room for fwd */
    struct lx_timer *timer;        /* owned: see timer_kind */
    struct lx_timer *send_timer;   /* owned: the client has taken none of our bytes for LX_FRONT_IDLE_MS;
                                    * made the first time a send waits */
    struct lx_front *prev, *next;
};

static struct {
    struct lx_config *cfg;      /* ref held: the limits new requests are read under */
    struct lx_front_hooks hooks;
    size_t max_head;            /* the largest head MHD's connection pool takes */
    size_t serving;             /* requests being answered here */
    struct lx_front *all;
    size_t busy;                /* records with bytes to send or a request half read */
    size_t lingering;
    int hup_fd;                 /* owned: an epoll set of half-closed clients, reporting only their reset */
    struct lx_watch *hup_ev;    /* owned: hup_fd is readable */
} F = {.hup_fd = -1};

static void enter_done(struct lx_front *f);
static void flush_client(struct lx_front *f);
static void watch_client(struct lx_front *f);
static void half_closed(struct lx_front *f);
static void log_cut_short(struct lx_front *f);
static void send_timeout_cb(void *arg);

/* --- bookkeeping --- */

static void front_free(struct lx_front *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        F.all = f->next;
    if (f->next)
        f->next->prev = f->prev;
    if (f->busy)
        F.busy--;
    if (f->lingering)
        F.lingering--;
    if (f->count)
        (*f->count)--;
    if (f->cfd >= 0)
        close(f->cfd);
    if (f->afd >= 0)
        close(f->afd);
    struct lx_watch *ws[] = {f->ev, f->ev_mhd_read, f->ev_mhd_write};
    for (size_t i = 0; i < LX_ARRAY_LEN(ws); i++)
        lx_watch_free(ws[i]);
    lx_timer_free(f->timer);
    lx_timer_free(f->send_timer);
    lx_buf_free(&f->in);
    lx_buf_free(&f->fwd);
    lx_buf_free(&f->body);
    lx_buf_free(&f->out);
    free(f->target);
    free(f);
}

/* The end of every callback: keep the busy count, and free the record once both sides are closed. */
static void settle(struct lx_front *f)
{
    size_t before = F.busy;
    bool busy = f->cfd >= 0 && (lx_buf_avail(&f->out) > 0 || f->phase == PH_BODY ||
                                (f->phase == PH_HEAD && lx_buf_avail(&f->in) > 0));
    if (busy != f->busy) {
        f->busy = busy;
        if (busy)
            F.busy++;
        else
            F.busy--;
    }
    if (f->cfd < 0 && f->afd < 0 && !f->mhd_open && !f->dreq)
        front_free(f);
    if (before && !F.busy && F.hooks.idle)
        F.hooks.idle();
}

static void timer_start(struct lx_front *f, enum timer_kind kind, long ms)
{
    f->timer_kind = kind;
    lx_timer_start(f->timer, ms);
}

static void timer_stop(struct lx_front *f)
{
    f->timer_kind = T_NONE;
    lx_timer_stop(f->timer);
}

/* The timer for the request about to be read: read_timeout_ms from its first byte, or, without that
 * limit, a keep-alive idle's worth of silence. */
static void arm_read_timer(struct lx_front *f)
{
    long ms = F.cfg->server->limits.read_timeout_ms;
    timer_start(f, ms > 0 ? T_READ : T_IDLE, ms > 0 ? ms : LX_FRONT_IDLE_MS);
}

static void hup_unwatch(struct lx_front *f)
{
    if (f->hup_watched)
        epoll_ctl(F.hup_fd, EPOLL_CTL_DEL, f->cfd, NULL);
    f->hup_watched = false;
}

/* What cfd's watch waits for: `on` added, `off` taken out; nothing once cfd is closed. */
static void client_want(struct lx_front *f, unsigned on, unsigned off)
{
    if (f->cfd >= 0)
        lx_watch_change(f->ev, on, off);
}

static void close_client(struct lx_front *f)
{
    if (f->cfd < 0)
        return;
    hup_unwatch(f);
    client_want(f, 0, LX_WATCH_READ | LX_WATCH_WRITE | LX_WATCH_CLOSED);
    lx_timer_stop(f->send_timer);
    timer_stop(f);
    close(f->cfd);
    f->cfd = -1;
    lx_buf_free(&f->out);
    if (f->lingering)
        F.lingering--;
    f->lingering = false;
}

static void close_mhd(struct lx_front *f)
{
    if (f->afd < 0)
        return;
    lx_watch_stop(f->ev_mhd_read);
    lx_watch_stop(f->ev_mhd_write);
    close(f->afd);
    f->afd = -1;
    lx_buf_free(&f->fwd);
}

/* The client is gone (reset, a failed write, or it left our bytes unread): nothing more can reach it. */
static void client_lost(struct lx_front *f, const char *why)
{
    lx_debug("front: client connection lost (%s)", why);
    close_client(f);
    if (f->ctx)
        F.hooks.client_gone(f->ctx); /* the request is aborted; MHD then fails on our closed pair end, and
                                      * one answered here is finished by client_write_cb */
    if (f->dreq)
        lx_front_kick(f);
    else if (f->phase == PH_BODY)
        log_cut_short(f);
    enter_done(f);
}

/* --- the MHD side --- */

static void mhd_read_flow(struct lx_front *f)
{
    if (f->afd < 0)
        return;
    if (lx_buf_avail(&f->out) < LX_FRONT_OUT_HIGH)
        lx_watch_start(f->ev_mhd_read);
    else
        lx_watch_stop(f->ev_mhd_read); /* MHD's writes into the pair block until the client reads */
}

/* Move what MHD wrote into out. MHD closing its end means no more requests on this connection. */
static void read_mhd(struct lx_front *f)
{
    char buf[LX_FRONT_READ];
    while (f->afd >= 0 && lx_buf_avail(&f->out) < LX_FRONT_OUT_HIGH) {
        ssize_t n = recv(f->afd, buf, sizeof buf, 0);
        if (n > 0) {
            if (f->cfd >= 0)
                lx_buf_append(&f->out, buf, (size_t)n);
            f->answered = true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        close_mhd(f);
        if (f->dreq)
            f->head.close = true; /* MHD let go: the connection ends after the answer given here */
        else
            enter_done(f);
    }
    mhd_read_flow(f);
}

static void write_mhd(struct lx_front *f)
{
    while (f->afd >= 0 && lx_buf_avail(&f->fwd)) {
        ssize_t n = send(f->afd, lx_buf_head(&f->fwd), lx_buf_avail(&f->fwd), MSG_NOSIGNAL);
        if (n > 0) {
            lx_buf_consume(&f->fwd, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            lx_watch_start(f->ev_mhd_write);
            return;
        }
        break; /* MHD closed its end: reading the pair reports it */
    }
    lx_watch_stop(f->ev_mhd_write);
}

static void mhd_read_cb(int fd, unsigned what, void *arg)
{
    (void)fd;
    (void)what;
    struct lx_front *f = arg;
    read_mhd(f);
    flush_client(f);
    settle(f);
}

static void mhd_write_cb(int fd, unsigned what, void *arg)
{
    (void)fd;
    (void)what;
    struct lx_front *f = arg;
    write_mhd(f);
    settle(f);
}

/* --- the client side --- */

static void flush_client(struct lx_front *f)
{
    bool progress = false;
    while (f->cfd >= 0 && lx_buf_avail(&f->out)) {
        ssize_t n = send(f->cfd, lx_buf_head(&f->out), lx_buf_avail(&f->out), MSG_NOSIGNAL);
        if (n > 0) {
            lx_buf_consume(&f->out, (size_t)n);
            if (lx_buf_avail(&f->out) == 0)
                lx_buf_free(&f->out); /* between a stream's events, hold no send buffer */
            progress = true;
            f->poked |= f->fin;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            client_want(f, LX_WATCH_WRITE, 0);
            if (progress || !lx_timer_pending(f->send_timer))
                lx_timer_arm(&f->send_timer, send_timeout_cb, f, LX_FRONT_IDLE_MS);
            return;
        }
        client_lost(f, strerror(errno));
        return;
    }
    if (f->cfd < 0)
        return;
    client_want(f, 0, LX_WATCH_WRITE);
    lx_timer_stop(f->send_timer);
    mhd_read_flow(f);
    if (f->phase == PH_DONE && f->afd < 0) {
        /* Everything is sent. Shut our side and drop what the client still sends until it closes, so
         * that closing does not reset the connection before the client has read the answer. */
        if (f->lingering)
            return;
        if (f->eof) {
            /* The client's FIN is read and nothing follows it: close() sends our FIN, not a reset, so
             * there is nothing to linger for (nginx closes such a connection at once too). */
            close_client(f);
            return;
        }
        shutdown(f->cfd, SHUT_WR);
        if (F.lingering >= LX_FRONT_MAX_LINGER) {
            close_client(f);
            return;
        }
        f->lingering = true;
        F.lingering++;
        client_want(f, LX_WATCH_READ, 0);
        timer_start(f, T_LINGER, LX_FRONT_LINGER_MS);
    }
}

static void next_request(struct lx_front *f);
static void process(struct lx_front *f);

/* Collect what is ready of the answer of the request answered here, send it, and finish the request
 * once its whole answer is sent (or its client is gone). */
static void pump_direct(struct lx_front *f)
{
    while (f->dreq) {
        size_t unsent = lx_buf_avail(&f->out);
        enum lx_direct_step st = LX_DIRECT_GONE;
        if (f->cfd >= 0)
            st = lx_direct_pump(f->dreq, &f->out, unsent < LX_FRONT_STREAM_ROOM ? LX_FRONT_STREAM_ROOM - unsent : 0);
        if (lx_direct_answered(f->dreq))
            f->answered = true;
        bool added = lx_buf_avail(&f->out) > unsent;
        if (added)
            flush_client(f);
        if (st == LX_DIRECT_WAIT) {
            if (f->cfd < 0 || !added || lx_buf_avail(&f->out) > 0)
                return; /* nothing new, or the socket is full: client_write_cb comes back */
            continue;   /* the socket took it all: there may be more */
        }
        if (st != LX_DIRECT_GONE && f->cfd >= 0 && lx_buf_avail(&f->out) > 0)
            return; /* the rest goes when the socket takes it; client_write_cb comes back here */
        struct lx_req *req = f->dreq;
        f->dreq = NULL;
        f->ctx = NULL;
        F.serving--;
        lx_direct_finish(req, st == LX_DIRECT_END && f->cfd >= 0);
        if (st == LX_DIRECT_CUT) {
            enter_done(f);
        } else {
            next_request(f);
            if (f->phase == PH_HEAD)
                process(f); /* pipelined requests, or the FIN that ends the connection */
        }
        if (F.hooks.idle)
            F.hooks.idle();
        return;
    }
}

static void client_write_cb(int fd, unsigned what, void *arg)
{
    (void)fd;
    (void)what;
    struct lx_front *f = arg;
    flush_client(f);
    if (f->dreq)
        pump_direct(f);
    else if (f->phase == PH_HEAD && (lx_buf_avail(&f->in) > 0 || f->eof))
        process(f); /* lx_front_request_done left the next request for a loop callback */
    settle(f);
}

static void send_timeout_cb(void *arg)
{
    struct lx_front *f = arg;
    client_lost(f, "it read nothing for 75 s");
    settle(f);
}

/* --- answers of the HTTP layer --- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* The whole response for e, as MHD would write it: status line, Date, JSON body, and Connection: close.
 * Returns the body's length. */
static size_t append_error_response(struct lx_buf *out, const struct lx_error *e, const char *request_id)
{
    json_t *ej = lx_error_json(e);
    char *body = json_dumps(ej, JSON_COMPACT);
    json_decref(ej);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    lx_buf_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\n", e->status,
                  reason_phrase(e->status), date);
    if (request_id)
        lx_buf_printf(out, "X-Request-Id: %s\r\n", request_id);
    if (e->retry_after)
        lx_buf_printf(out, "Retry-After: %s\r\n", e->retry_after);
    size_t len = strlen(body) + 1;
    lx_buf_printf(out, "Connection: close\r\nContent-Length: %zu\r\n\r\n%s\n", len, body);
    free(body);
    return len;
}

/* The record of a request that ends here, before MHD saw it, for the access log and metrics. */
static struct lx_req *request_record(struct lx_front *f, int status, const char *code)
{
    struct lx_req *req = lx_req_new(F.cfg, f->method[0] ? f->method : "-", f->target ? f->target : "-");
    lx_req_set_request_id(req, NULL);
    if (f->t_first > 0)
        req->t_start = f->t_first;
    req->status = status;
    req->error_code = code ? lx_strdup(code) : NULL;
    req->bytes_in = f->body.len;
    return req;
}

static void log_record(struct lx_req *req)
{
    lx_req_finish(req, true);
    lx_req_release(req);
}

/* The client went away with its body half sent: 499, as for a request MHD had. */
static void log_cut_short(struct lx_front *f)
{
    struct lx_req *req = request_record(f, 499, NULL);
    req->client_gone = true;
    log_record(req);
}

/* Answer the request being read with an error of the HTTP layer; the connection then closes. */
static void reject(struct lx_front *f, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reject(struct lx_front *f, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct lx_error e = {0};
    lx_error_set(&e, status, NULL, NULL, code, "%s", msg);
    struct lx_req *req = request_record(f, status, code);
    req->bytes_out = append_error_response(&f->out, &e, req->request_id);
    req->t_first_byte = lx_now_ms_f();
    log_record(req);
    lx_error_clear(&e);
    enter_done(f);
}

/* Keep the current request's method and target for the access log, with control bytes made visible. */
static void remember_request_line(struct lx_front *f)
{
    const struct lx_reqhead *h = &f->head;
    f->method[0] = '\0';
    free(f->target);
    f->target = NULL;
    if (!h->method)
        return;
    lx_strcut(f->method, sizeof f->method, h->method, h->method_len);
    size_t n = h->target_len < LX_FRONT_LOG_TARGET ? h->target_len : LX_FRONT_LOG_TARGET;
    f->target = lx_malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h->target[i];
        f->target[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    f->target[n] = '\0';
    f->target_len = n;
}

/* --- reading requests --- */

/* The request is whole: hand it to MHD and watch the client while MHD works on it. */
/* The path of a request the front may answer itself: an origin-form target without percent-encoding
 * (MHD decodes those), HTTP/1.1, on a listener that allows it, of an endpoint hooks.direct names. */
static bool direct_path(struct lx_front *f, size_t *path_len)
{
    if (!f->direct_ok || !F.hooks.direct || f->head.http10 || !f->target || f->target[0] != '/')
        return false;
    const char *q = memchr(f->target, '?', f->target_len);
    size_t n = q ? (size_t)(q - f->target) : f->target_len;
    if (memchr(f->target, '%', n) || (!q && f->target_len < f->head.target_len))
        return false; /* percent-encoded (MHD decodes it), or longer than the copy kept of it */
    *path_len = n;
    return F.hooks.direct(f->method, strlen(f->method), f->target, n);
}

/* The request is answered here: make it and dispatch it (direct.c). */
static void serve_direct(struct lx_front *f, size_t path_len)
{
    struct lx_direct_start s = {
        .cfg = F.cfg,
        .route = F.hooks.route,
        .reason = F.hooks.reason,
        .method = f->method,
        .method_len = strlen(f->method),
        .path = f->target,
        .path_len = path_len,
        .fields = lx_buf_head(&f->fwd),
        .fields_len = lx_buf_avail(&f->fwd),
        .body = &f->body,
        .t_first = f->t_first,
        .close = f->head.close,
    };
    f->waiting = true;
    F.serving++;
    f->dreq = lx_direct_start(f, &s); /* its handler may have answered already: that kicks the write watch */
    f->ctx = f->dreq;
    lx_buf_free(&f->fwd); /* the request copied its fields; a stream may last minutes */
}

/* Give the connection to MHD for its first request that goes there: a socketpair, MHD's end added to
 * its daemon. False when that failed (out of descriptors, or MHD's own limit). */
static bool attach_mhd(struct lx_front *f)
{
    int afd = F.hooks.attach(f->site, f);
    if (afd < 0)
        return false;
    f->afd = afd;
    f->mhd_open = true;
    f->ev_mhd_read = lx_watch_new(afd, LX_WATCH_READ | LX_WATCH_PERSIST, mhd_read_cb, f);
    f->ev_mhd_write = lx_watch_new(afd, LX_WATCH_WRITE, mhd_write_cb, f);
    lx_watch_start(f->ev_mhd_read);
    return true;
}

/* The request is whole: answer it here, or hand it to MHD, and go on watching the client meanwhile. */
static void forward(struct lx_front *f)
{
    size_t path_len;
    bool direct = direct_path(f, &path_len);
    if (!direct && f->afd < 0 && !f->mhd_open && !attach_mhd(f)) {
        lx_buf_free(&f->fwd);
        reject(f, 503, "server_busy", "The gateway cannot take this request now (out of connections); try again shortly.");
        return;
    }
    f->phase = PH_MHD;
    f->answered = f->waiting = f->probed = false;
    timer_stop(f);
    if (direct) {
        serve_direct(f, path_len);
    } else {
        lx_reqhead_finish(&f->fwd, &f->head, f->body.len);
        lx_buf_append(&f->fwd, f->body.data, f->body.len);
        lx_buf_free(&f->body);
        write_mhd(f);
    }
    if (f->phase != PH_MHD)
        return;
    watch_client(f);
    if (f->fin)
        half_closed(f);
}

/* One step on a request head; false when there is nothing to do until more bytes come. */
static bool read_head(struct lx_front *f)
{
    const struct lx_limits *lim = &F.cfg->server->limits;
    size_t max = (size_t)lim->max_header_bytes < F.max_head ? (size_t)lim->max_header_bytes : F.max_head;
    size_t skip = lx_reqhead_skip_empty(lx_buf_head(&f->in), lx_buf_avail(&f->in));
    lx_buf_consume(&f->in, skip);
    f->scanned = f->scanned > skip ? f->scanned - skip : 0;
    size_t n = lx_buf_avail(&f->in);
    if (n == 0 && !skip) {
        if (f->eof)
            enter_done(f);
        return false;
    }
    /* Parse once the head looks whole (or is too long, or will get no more bytes): parsing each time a
     * few bytes trickle in would cost a slow client's head squared. */
    const char *p = lx_buf_head(&f->in);
    size_t from = f->scanned > 3 ? f->scanned - 3 : 0;
    bool whole = n >= 4 && memmem(p + from, n - from, "\r\n\r\n", 4) != NULL;
    f->scanned = n;
    if (!whole && n < max && !f->eof)
        return false;
    int rc = lx_reqhead_parse(p, n, max, &f->head, &f->fwd);
    remember_request_line(f);
    if (rc == LX_AGAIN) {
        if (f->eof)
            enter_done(f); /* a head cut short: there is nothing to answer */
        return false;
    }
    if (rc == LX_ERR) {
        reject(f, f->head.status, f->head.code, "%s", f->head.message);
        return false;
    }
    if (f->head.body == LX_BODY_LENGTH && f->head.content_length > lim->max_body_bytes) {
        lx_buf_free(&f->fwd);
        reject(f, 413, "request_too_large", "Request body is larger than the limit of %zu bytes (limits.max_body_bytes).",
               lim->max_body_bytes);
        return false;
    }
    lx_buf_consume(&f->in, f->head.len);
    f->scanned = 0;
    f->body_left = f->head.content_length;
    f->chunked = (struct lx_chunked){0};
    if (f->head.body == LX_BODY_NONE || (f->head.body == LX_BODY_LENGTH && f->body_left == 0)) {
        forward(f);
        return false;
    }
    if (f->head.expect_continue && !f->head.http10 && lx_buf_avail(&f->in) == 0) {
        lx_buf_printf(&f->out, "HTTP/1.1 100 Continue\r\n\r\n");
        flush_client(f);
    }
    f->phase = PH_BODY;
    return true;
}

/* One step on a request body; false when there is nothing to do until more bytes come. */
static bool read_body(struct lx_front *f)
{
    const struct lx_limits *lim = &F.cfg->server->limits;
    size_t n = lx_buf_avail(&f->in);
    int rc = LX_AGAIN;
    if (f->head.body == LX_BODY_LENGTH) {
        size_t take = (uint64_t)n < f->body_left ? n : (size_t)f->body_left;
        lx_buf_append(&f->body, lx_buf_head(&f->in), take);
        lx_buf_consume(&f->in, take);
        f->body_left -= take;
        if (f->body_left == 0)
            rc = LX_OK;
        if (rc == LX_OK && lx_buf_avail(&f->in) == 0)
            lx_buf_free(&f->in); /* a stream may last minutes: hold no read buffer while nothing waits */
    } else {
        size_t used;
        rc = lx_chunked_feed(&f->chunked, lx_buf_head(&f->in), n, &used, &f->body, lim->max_body_bytes,
                             (size_t)lim->max_header_bytes);
        lx_buf_consume(&f->in, used);
        if (rc == LX_ERR) {
            if (f->chunked.status == 413)
                reject(f, 413, f->chunked.code, "Request body is larger than the limit of %zu bytes (limits.max_body_bytes).",
                       lim->max_body_bytes);
            else
                reject(f, f->chunked.status, f->chunked.code, "%s", f->chunked.message);
            return false;
        }
    }
    if (rc == LX_OK) {
        forward(f);
        return false;
    }
    if (f->eof) {
        log_cut_short(f);
        enter_done(f);
    }
    return false;
}

static void process(struct lx_front *f)
{
    for (;;) {
        bool more = false;
        if (f->phase == PH_HEAD)
            more = read_head(f);
        else if (f->phase == PH_BODY)
            more = read_body(f);
        if (!more)
            return;
    }
}

static void client_read_cb(int fd, unsigned what, void *arg)
{
    (void)what;
    struct lx_front *f = arg;
    char buf[LX_FRONT_READ];
    ssize_t n = recv((int)fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (f->phase == PH_DONE) {
        /* Lingering: drop what comes until the client closes. */
        if (n <= 0)
            close_client(f);
        settle(f);
        return;
    }
    if (n < 0) {
        client_lost(f, strerror(errno));
        settle(f);
        return;
    }
    if (n == 0) {
        f->fin = f->eof = true;
        client_want(f, 0, LX_WATCH_READ);
        if (f->phase == PH_MHD)
            half_closed(f);
    } else {
        if (f->phase == PH_HEAD && lx_buf_avail(&f->in) == 0 && f->t_first == 0) {
            f->t_first = lx_now_ms_f();
            if (f->timer_kind != T_READ) /* the first request's runs from the connection's start */
                arm_read_timer(f);
        } else if (f->timer_kind == T_IDLE) {
            arm_read_timer(f);
        }
        lx_buf_append(&f->in, buf, (size_t)n);
        if (f->phase == PH_MHD)
            watch_client(f); /* pipelined bytes: stop reading once LX_FRONT_AHEAD of them wait */
    }
    process(f);
    settle(f);
}

/* While a request is read, or answered with room left in `in`, the client is read; a client that is
 * LX_FRONT_AHEAD ahead with pipelined requests is only watched for its close until then. */
static void watch_client(struct lx_front *f)
{
    if (f->cfd < 0 || f->phase == PH_DONE)
        return; /* lingering reads on its own */
    if (!f->eof && (f->phase != PH_MHD || lx_buf_avail(&f->in) < LX_FRONT_AHEAD)) {
        client_want(f, LX_WATCH_READ, LX_WATCH_CLOSED);
        return;
    }
    if (f->phase == PH_MHD && !f->fin)
        client_want(f, LX_WATCH_CLOSED, LX_WATCH_READ);
    else
        client_want(f, 0, LX_WATCH_READ | LX_WATCH_CLOSED);
}

/* A client that sent a FIN while MHD works on its request. It may only have half-closed, so the answer is
 * still due; if it closed for good, the next bytes we write make its TCP stack reset the connection, and
 * the reset watch sees that. Nothing in the TCP state tells the two apart before that (both leave our
 * socket in CLOSE_WAIT; TCP_INFO, SO_ERROR and poll say the same), so bytes must be sent: when nothing
 * has been written since the FIN and no answer is ready, a 100 Continue (which HTTP/1.1 clients must
 * accept before any answer); when a begun SSE stream is between events, an SSE comment (hooks.probe). */
static void half_closed(struct lx_front *f)
{
    if (f->cfd < 0)
        return;
    if (!f->hup_watched && epoll_ctl(F.hup_fd, EPOLL_CTL_ADD, f->cfd, &(struct epoll_event){.data.ptr = f}) == 0)
        f->hup_watched = true;
    if (f->ctx && f->answered && !f->probed && !f->poked) {
        f->probed = F.hooks.probe && F.hooks.probe(f->ctx);
        return;
    }
    if (f->waiting && !f->answered && !f->probed && !f->poked && !f->head.http10) {
        f->probed = true;
        lx_buf_printf(&f->out, "HTTP/1.1 100 Continue\r\n\r\n");
        /* Sent from the write callback: this may run inside MHD's handler, where a failed write must not
         * abort the request. */
        client_want(f, LX_WATCH_WRITE, 0);
    }
}

static bool was_reset(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err != 0)
        return true;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_CLOSE;
}

static void client_fin_cb(int fd, unsigned what, void *arg)
{
    (void)what;
    struct lx_front *f = arg;
    if (was_reset((int)fd)) {
        client_lost(f, "reset");
    } else {
        f->fin = true;
        half_closed(f);
    }
    settle(f);
}

/* cfd's one watch: one handler per call (each may free f). What it leaves unhandled epoll reports again
 * on the next poll, but for a write readiness, which fires once per wait for it, as a kick does. */
static void client_io_cb(int fd, unsigned what, void *arg)
{
    struct lx_front *f = arg;
    if (what & (LX_WATCH_WRITE | LX_WATCH_KICK)) {
        if (what & LX_WATCH_WRITE)
            client_want(f, 0, LX_WATCH_WRITE);
        client_write_cb(fd, what, f);
    } else if (what & LX_WATCH_READ) {
        client_read_cb(fd, what, f);
    } else if (what & LX_WATCH_CLOSED) {
        client_want(f, 0, LX_WATCH_CLOSED); /* once, as it was */
        client_fin_cb(fd, what, f);
    }
}

static void hup_cb(int fd, unsigned what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    struct epoll_event ev;
    /* One at a time: handling one may close another's socket. */
    while (epoll_wait(F.hup_fd, &ev, 1, 0) == 1) {
        struct lx_front *f = ev.data.ptr;
        hup_unwatch(f);
        client_lost(f, "reset after it half-closed");
        settle(f);
    }
}

static void timer_cb(void *arg)
{
    struct lx_front *f = arg;
    enum timer_kind kind = f->timer_kind;
    f->timer_kind = T_NONE;
    if (kind == T_LINGER) {
        close_client(f);
    } else if (f->phase == PH_BODY || (f->phase == PH_HEAD && lx_buf_avail(&f->in) > 0)) {
        long ms = F.cfg->server->limits.read_timeout_ms;
        lx_info("dropping a client connection that did not send a whole request within %ld ms (limits.read_timeout_ms)%s",
                ms > 0 ? ms : (long)LX_FRONT_IDLE_MS, f->phase == PH_BODY ? ": its body was still arriving" : "");
        lx_metrics_conn_dropped("read_timeout");
        reject(f, 408, "read_timeout", "The request was not received in time (limits.read_timeout_ms).");
    } else {
        if (kind == T_READ) {
            lx_info("dropping a client connection that sent no request within %ld ms (limits.read_timeout_ms)",
                    F.cfg->server->limits.read_timeout_ms);
            lx_metrics_conn_dropped("read_timeout");
        }
        enter_done(f);
    }
    settle(f);
}

/* No more requests on this connection: what MHD still has for the client is drained, then the pair is
 * closed, and the client socket once everything is sent. */
static void enter_done(struct lx_front *f)
{
    if (f->phase == PH_DONE)
        return;
    f->phase = PH_DONE;
    lx_buf_free(&f->in);
    lx_buf_free(&f->body);
    if (f->cfd >= 0) {
        hup_unwatch(f);
        client_want(f, 0, LX_WATCH_READ | LX_WATCH_CLOSED);
        timer_stop(f);
    }
    if (f->afd >= 0 && !f->ctx) {
        char buf[LX_FRONT_READ];
        ssize_t n;
        while ((n = recv(f->afd, buf, sizeof buf, 0)) > 0)
            if (f->cfd >= 0)
                lx_buf_append(&f->out, buf, (size_t)n);
    }
    close_mhd(f);
    flush_client(f);
}

/* --- the API --- */

void lx_front_init(const struct lx_front_hooks *hooks, size_t max_head)
{
    F.hooks = *hooks;
    F.max_head = max_head;
    if (F.hup_fd < 0) {
        F.hup_fd = epoll_create1(EPOLL_CLOEXEC);
        F.hup_ev = lx_watch_new(F.hup_fd, LX_WATCH_READ | LX_WATCH_PERSIST, hup_cb, NULL);
        lx_watch_start(F.hup_ev);
    }
}

void lx_front_set_config(struct lx_config *cfg)
{
    struct lx_config *old = F.cfg;
    F.cfg = lx_config_ref(cfg);
    lx_config_unref(old);
}

static struct lx_front *front_new(int cfd)
{
    struct lx_front *f = lx_calloc(1, sizeof *f);
    f->cfd = cfd;
    f->afd = -1;
    f->ev = lx_watch_new(cfd, LX_WATCH_PERSIST, client_io_cb, f);
    f->timer = lx_timer_new(timer_cb, f);
    f->next = F.all;
    if (F.all)
        F.all->prev = f;
    F.all = f;
    return f;
}

struct lx_front *lx_front_open(int client_fd, void *site, bool direct_ok, size_t *count)
{
    struct lx_front *f = front_new(client_fd);
    f->site = site;
    f->direct_ok = direct_ok;
    f->count = count;
    if (count)
        (*count)++;
    client_want(f, LX_WATCH_READ, 0);
    /* The first request's read timeout runs from the connection's start. */
    long ms = F.cfg->server->limits.read_timeout_ms;
    timer_start(f, ms > 0 ? T_READ : T_IDLE, ms > 0 ? ms : LX_FRONT_IDLE_MS);
    return f;
}

void lx_front_mhd_closed(struct lx_front *f)
{
    f->mhd_open = false;
    if (f->dreq) {
        close_mhd(f); /* idle in MHD while the request answered here goes on; the connection ends after it */
        f->head.close = true;
        settle(f);
        return;
    }
    f->ctx = NULL;
    if (f->afd >= 0)
        read_mhd(f); /* its last bytes, then the end of the pair */
    enter_done(f);
    settle(f);
}

int lx_front_fd(const struct lx_front *f)
{
    return f->cfd;
}

void lx_front_kick(struct lx_front *f)
{
    lx_watch_kick(f->ev);
}

double lx_front_set_request(struct lx_front *f, void *ctx)
{
    f->ctx = ctx;
    return f->t_first;
}

void lx_front_waiting(struct lx_front *f)
{
    f->waiting = true;
    if (f->fin)
        half_closed(f);
}

/* The request being answered is over (its answer is all out, or on its way in out): read the next. */
static void next_request(struct lx_front *f)
{
    if (f->phase != PH_MHD)
        return;
    hup_unwatch(f);
    f->t_first = 0;
    if (f->head.close) {
        enter_done(f);
        return;
    }
    f->phase = PH_HEAD;
    watch_client(f); /* after a FIN too: requests may wait before it */
    if (lx_buf_avail(&f->in)) {
        f->t_first = lx_now_ms_f();
        arm_read_timer(f);
    } else {
        timer_start(f, T_IDLE, LX_FRONT_IDLE_MS);
    }
}

void lx_front_request_done(struct lx_front *f)
{
    f->ctx = NULL;
    if (f->phase != PH_MHD)
        return;
    read_mhd(f); /* MHD wrote the whole answer before telling us: take it before the next request's */
    flush_client(f);
    next_request(f);
    /* A request waiting in `in` is read from a loop callback, not inside MHD's: it may be one answered
     * here, whose handler must not run inside MHD. */
    if (f->phase == PH_HEAD && (lx_buf_avail(&f->in) || f->eof))
        lx_front_kick(f);
    settle(f);
}

void lx_front_refuse(int client_fd, const struct lx_error *e)
{
    struct lx_front *f = front_new(client_fd);
    append_error_response(&f->out, e, NULL);
    f->phase = PH_DONE;
    flush_client(f);
    settle(f);
}

size_t lx_front_busy(void)
{
    return F.busy;
}

size_t lx_front_serving(void)
{
    return F.serving;
}

void lx_front_abort_all(void)
{
    for (struct lx_front *f = F.all; f; f = f->next)
        if (f->dreq && !f->dreq->client_gone)
            lx_req_client_gone(f->dreq);
}

void lx_front_shutdown(void)
{
    F.hooks.idle = NULL;
    for (struct lx_front *f = F.all; f; f = f->next) {
        if (!f->dreq)
            continue;
        struct lx_req *req = f->dreq;
        f->dreq = NULL;
        f->ctx = NULL;
        F.serving--;
        if (!req->client_gone)
            lx_req_client_gone(req);
        lx_direct_finish(req, false);
    }
    while (F.all)
        front_free(F.all);
    F.busy = F.lingering = 0;
    lx_watch_free(F.hup_ev);
    F.hup_ev = NULL;
    if (F.hup_fd >= 0)
        close(F.hup_fd);
    F.hup_fd = -1;
    lx_config_unref(F.cfg);
    F.cfg = NULL;
}
