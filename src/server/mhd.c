/* libmicrohttpd glue, the only file that includes microhttpd.h, and the implementation of the
 * handler-facing lx_req_* API.
 *
 * Re-entrancy rules (see STYLE.md and LIBRARY-NOTES.md):
 * - Only loop callbacks (mhd_event_cb, mhd_timer_cb) call MHD_run.
 * - Responses are queued only from the access handler: a handler that answers later stores the answer in
 *   the request and resumes the connection; MHD then calls the access handler again, which queues it.
 * - MHD_resume_connection is only called on a connection we suspended (the suspended flag).
 * - We accept connections ourselves (accept_cb): in epoll mode MHD 0.9.75 accepts about ten per MHD_run,
 *   which leaves thousands of clients in the listen queue when the loop is busy. That is also where
 *   limits.max_connections turns clients away, with a 503.
 * - MHD never reads a client socket. Each client connection has a front (front.c) that reads the
 *   client, checks every request's framing, and hands MHD one whole canonical request at a time over a
 *   socketpair (MHD_add_connection gets MHD's end); MHD 0.9.75 cannot be made strict by its options,
 *   and it reads ahead, so checking what it reads from the client itself could never keep up. The front
 *   also owns the client-side time limits (limits.read_timeout_ms, keep-alive idle) and sees a client
 *   leave while MHD has its request suspended: it calls front_gone_cb.
 * - There are one or two listeners (the main address, and admin_listen), each its own MHD daemon. */
#include "mhd.h"
#include "conf.h"
#include "../core/conf.h"
#include "accesslog.h"
#include "auth.h"
#include "front.h"
#include "req.h"
#include "../api/routes.h"
#include "../core/common.h"
#include "../core/log.h"
#include "../core/metrics.h"
#include "../io/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define LX_STREAM_BLOCK (16u * 1024)

/* One listening address served by its own MHD daemon. */
struct listener {
    struct MHD_Daemon *daemon;
    struct lx_watch *ev_epoll;     /* owned: MHD's epoll fd became readable */
    struct lx_timer *ev_timer;     /* owned: MHD_get_timeout deadline */
    struct lx_watch *ev_accept;    /* owned: the listening socket is readable */
    struct lx_timer *ev_accept_pause; /* owned: resumes accepting after running out of descriptors */
    int fd;
    int port;
    bool admin;
    size_t n_conns;                /* connections MHD holds */
};

static struct {
    struct listener main, admin;   /* admin.daemon is NULL without admin_listen */
    struct lx_config *cfg;         /* ref held: the config new requests get */
    struct lx_req *live;           /* requests MHD has not completed yet */
    size_t n_live;
    struct lx_front *adding;       /* borrowed: the front MHD_add_connection is being given */
    size_t conn_limit;             /* what the descriptor limit allows on the main address */
    void (*on_idle)(void);         /* set while draining */
} H = {.main = {.fd = -1}, .admin = {.fd = -1, .admin = true}};

static void mhd_run(struct listener *l)
{
    MHD_run(l->daemon);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(l->daemon, &ms) == MHD_YES)
        lx_timer_start(l->ev_timer, ms > 86400000 ? 86400000 : (long)ms);
    else
        lx_timer_stop(l->ev_timer);
}

static void mhd_event_cb(int fd, unsigned what, void *arg)
{
    (void)fd;
    (void)what;
    mhd_run(arg);
}

static void mhd_timer_cb(void *arg)
{
    mhd_run(arg);
}

static void mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    lx_debug("mhd: %s", msg);
}

/* --- suspension and the disconnect watch --- */

static void notify_abort(struct lx_req *req)
{
    const struct lx_req_handler *h = req->handler;
    void *data = req->handler_data;
    req->handler = NULL;
    req->handler_data = NULL;
    if (h && h->on_abort)
        h->on_abort(req, data);
}

/* Resume a suspended connection so MHD handles it on the next loop turn. Any context but MHD_run's own
 * callbacks on that connection (it is suspended, so MHD is not calling us about it). */
static void wake(struct lx_req *req)
{
    if (!req->suspended || !req->conn)
        return;
    req->suspended = false;
    MHD_resume_connection(req->conn);
    lx_watch_activate(((struct listener *)req->listener)->ev_epoll);
}

/* The front found the client gone while MHD has its request (from a libevent callback): stop the work,
 * and resume a parked connection so MHD ends it (the front has closed MHD's pair, so it fails there). */
static void front_gone_cb(void *ctx)
{
    struct lx_req *req = ctx;
    lx_debug("req=%llu: client closed the connection while %s", (unsigned long long)req->id,
             lx_req_state_name(req->state));
    req->client_gone = true;
    lx_req_hold(req);
    notify_abort(req);
    wake(req);
    lx_req_release(req);
}

static void suspend(struct lx_req *req)
{
    if (req->suspended)
        return;
    MHD_suspend_connection(req->conn);
    req->suspended = true;
    if (req->http_conn)
        lx_front_waiting(req->http_conn);
}

/* --- responses --- */

static ssize_t stream_reader_cb(void *cls, uint64_t pos, char *buf, size_t max);

static void drain_cb(void *arg)
{
    struct lx_req *req = arg;
    if (!req->client_gone && req->handler && req->handler->on_drain)
        req->handler->on_drain(req, req->handler_data);
    lx_req_release(req);
}

static void add_headers(struct lx_req *req, struct MHD_Response *r)
{
    if (req->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
    MHD_add_response_header(r, "X-Request-Id", req->request_id);
    for (size_t i = 0; i < req->n_resp_headers; i++) {
        char *line = req->resp_headers[i];
        char *colon = strchr(line, ':');
        *colon = '\0';
        MHD_add_response_header(r, line, colon + 2);
        *colon = ':';
    }
}

static enum MHD_Result queue_response(struct lx_req *req)
{
    struct MHD_Response *r;
    if (req->state == LX_REQ_STREAMING) {
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LX_STREAM_BLOCK, stream_reader_cb, req, NULL);
    } else {
        size_t len;
        char *body = lx_buf_steal(&req->out, &len);
        req->bytes_out = len;
        req->t_first_byte = lx_now_ms_f();
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    }
    if (!r)
        return MHD_NO;
    add_headers(req, r);
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, r);
    MHD_destroy_response(r);
    req->queued = true;
    return ret;
}

static ssize_t stream_reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct lx_req *req = cls;
    if (req->client_gone)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t avail = lx_buf_avail(&req->out);
    if (avail) {
        size_t n = avail < max ? avail : max;
        memcpy(buf, lx_buf_head(&req->out), n);
        lx_buf_consume(&req->out, n);
        req->bytes_out += n;
        if (!req->t_first_byte)
            req->t_first_byte = lx_now_ms_f();
        if (req->drain_wanted && lx_buf_avail(&req->out) < LX_REQ_OUT_LOW) {
            req->drain_wanted = false;
            lx_defer(drain_cb, lx_req_hold(req));
        }
        return (ssize_t)n;
    }
    if (req->out_cut)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (req->out_ended)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send yet: park the connection until the handler writes (returning 0 unsuspended would
     * make MHD spin). */
    suspend(req);
    return 0;
}

static bool req_writable(struct lx_req *req)
{
    return req->conn && !req->client_gone && req->state != LX_REQ_FINISHED;
}

void lx_req_set_handler(struct lx_req *req, const struct lx_req_handler *h, void *data)
{
    req->handler = h;
    req->handler_data = data;
}

const char *lx_req_header(struct lx_req *req, const char *name)
{
    if (!req->conn)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

void lx_req_add_header(struct lx_req *req, const char *name, const char *value)
{
    req->resp_headers = lx_realloc(req->resp_headers, (req->n_resp_headers + 1) * sizeof *req->resp_headers);
    req->resp_headers[req->n_resp_headers++] = lx_sprintf("%s: %s", name, value);
}

void lx_req_respond(struct lx_req *req, int status, const char *content_type, const char *body, size_t len)
{
    if (!req_writable(req) || req->state != LX_REQ_HANDLING)
        return;
    req->status = status;
    free(req->content_type);
    req->content_type = lx_strdup(content_type);
    lx_buf_reset(&req->out);
    lx_buf_append(&req->out, body, len);
    lx_req_set_state(req, LX_REQ_RESPONDING);
    wake(req);
}

void lx_req_respond_json(struct lx_req *req, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct lx_buf b = {0};
    lx_buf_puts(&b, text);
    lx_buf_append(&b, "\n", 1);
    free(text);
    lx_req_respond(req, status, "application/json", b.data, b.len);
    lx_buf_free(&b);
}

void lx_req_respond_error(struct lx_req *req, const struct lx_error *err)
{
    if (!req_writable(req) || req->state != LX_REQ_HANDLING)
        return;
    free(req->error_code);
    req->error_code = err->code ? lx_strdup(err->code) : lx_sprintf("http_%d", err->status);
    if (err->status == 401)
        lx_req_add_header(req, "WWW-Authenticate", "Bearer");
    if (err->retry_after)
        lx_req_add_header(req, "Retry-After", err->retry_after);
    if (lx_error_no_retry(err))
        lx_req_add_header(req, "X-Should-Retry", "false");
    lx_req_respond_json(req, err->status, lx_error_json(err));
}

void lx_req_stream_begin(struct lx_req *req, int status, const char *content_type)
{
    if (!req_writable(req) || req->state != LX_REQ_HANDLING)
        return;
    req->status = status;
    free(req->content_type);
    req->content_type = lx_strdup(content_type);
    lx_req_set_state(req, LX_REQ_STREAMING);
    wake(req);
}

void lx_req_stream_write(struct lx_req *req, const char *data, size_t len)
{
    if (!req_writable(req) || req->state != LX_REQ_STREAMING || req->out_ended)
        return;
    lx_buf_append(&req->out, data, len);
    wake(req);
}

void lx_req_stream_end(struct lx_req *req)
{
    if (!req_writable(req) || req->state != LX_REQ_STREAMING)
        return;
    req->out_ended = true;
    wake(req);
}

void lx_req_stream_cut(struct lx_req *req)
{
    if (!req_writable(req) || req->state != LX_REQ_STREAMING)
        return;
    req->out_ended = true;
    req->out_cut = true;
    wake(req);
}

bool lx_req_can_write(struct lx_req *req)
{
    if (lx_buf_avail(&req->out) < LX_REQ_OUT_HIGH)
        return true;
    req->drain_wanted = true;
    return false;
}

bool lx_req_started(const struct lx_req *req)
{
    return req->state == LX_REQ_STREAMING;
}

/* --- connections --- */

static void notify_connection_cb(void *cls, struct MHD_Connection *mc, void **socket_context,
                                 enum MHD_ConnectionNotificationCode toe)
{
    (void)mc;
    struct listener *l = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = H.adding; /* MHD_add_connection calls this before it returns */
        H.adding = NULL;
        l->n_conns++;
        return;
    }
    struct lx_front *f = *socket_context;
    if (!f)
        return;
    *socket_context = NULL;
    l->n_conns--;
    lx_front_mhd_closed(f);
}

static struct lx_front *front_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* --- MHD callbacks --- */

static void request_deadline_cb(void *arg)
{
    struct lx_req *req = arg;
    if (req->client_gone || (req->state != LX_REQ_HANDLING && req->state != LX_REQ_STREAMING))
        return;
    long ms = req->cfg->server->limits.max_request_ms;
    lx_warn("req=%s: still running after limits.max_request_ms (%ld ms); cancelling it", req->request_id, ms);
    struct lx_error e = {0};
    lx_error_set(&e, 504, "timeout_error", NULL, "request_timeout",
                 "The request took longer than the gateway's limit of %ld ms (limits.max_request_ms).", ms);
    lx_req_hold(req);
    notify_abort(req); /* the handler stops its upstream work */
    if (req->state == LX_REQ_HANDLING) {
        lx_req_respond_error(req, &e);
    } else if (req->content_type && strncmp(req->content_type, "text/event-stream", 17) == 0) {
        json_t *ej = lx_error_json(&e);
        char *text = json_dumps(ej, JSON_COMPACT);
        json_decref(ej);
        lx_req_stream_write(req, "data: ", 6);
        lx_req_stream_write(req, text, strlen(text));
        lx_req_stream_write(req, "\n\n", 2);
        free(text);
        free(req->error_code);
        req->error_code = lx_strdup("request_timeout");
        lx_req_stream_end(req);
    } else {
        lx_req_stream_cut(req);
    }
    lx_error_clear(&e);
    lx_req_release(req);
}

static enum MHD_Result start_request(struct listener *l, struct MHD_Connection *conn, const char *url,
                                     const char *method, void **con_cls)
{
    struct lx_req *req = lx_req_new(H.cfg, method, url);
    req->conn = conn;
    req->listener = l;
    req->on_admin = l->admin;
    req->next = H.live;
    if (H.live)
        H.live->prev = req;
    H.live = req;
    H.n_live++;
    *con_cls = req;
    lx_req_set_request_id(req, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"));
    /* The front checked the head and the body's size, and times the request from its first byte. */
    struct lx_front *f = front_of(conn);
    if (f) {
        req->http_conn = f;
        double t0 = lx_front_set_request(f, req);
        if (t0 > 0)
            req->t_start = t0;
    }
    return MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)version;
    struct lx_req *req = *con_cls;
    if (!req)
        return start_request(cls, conn, url, method, con_cls);
    if (*upload_data_size) {
        /* The front handed MHD the whole body at once, within limits.max_body_bytes. */
        req->bytes_in += *upload_data_size;
        lx_buf_append(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->state == LX_REQ_RECEIVING) {
        /* The whole request is in: the request's own time limit starts. */
        lx_req_set_state(req, LX_REQ_HANDLING);
        long ms = req->cfg->server->limits.max_request_ms;
        if (ms > 0) {
            req->deadline_ev = lx_timer_new(request_deadline_cb, req);
            lx_timer_start(req->deadline_ev, ms);
        }
        lx_dispatch(req);
    }
    if (req->client_gone)
        return MHD_NO;
    if (req->queued)
        return MHD_YES;
    if (req->state == LX_REQ_RESPONDING || req->state == LX_REQ_STREAMING)
        return queue_response(req);
    suspend(req);
    return MHD_YES;
}

static void idle_cb(void *arg)
{
    (void)arg;
    if (H.on_idle && H.n_live == 0 && lx_front_busy() == 0) {
        void (*f)(void) = H.on_idle;
        H.on_idle = NULL;
        f();
    }
}

/* Nothing is live and no front has bytes to send: the drain at shutdown may end (from the loop). */
static void front_idle_cb(void)
{
    if (H.on_idle && H.n_live == 0)
        lx_defer(idle_cb, NULL);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    struct lx_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        req->client_gone = true;
    if (req->client_gone)
        notify_abort(req);
    lx_timer_free(req->deadline_ev);
    req->deadline_ev = NULL;
    (void)conn;
    req->suspended = false;
    if (req->state != LX_REQ_FINISHED)
        lx_req_set_state(req, LX_REQ_FINISHED);
    int status = req->status;
    if (status != 408 && req->client_gone && !req->out_ended)
        status = 499; /* the client left before the answer was complete */
    else if (status == 0)
        status = 499;
    lx_metrics_http(req->route ? req->route : "other", status);
    lx_auth_done(req, req->tally.prompt_tokens + req->tally.completion_tokens);
    lx_access_log(req, status);
    if (req->prev)
        req->prev->next = req->next;
    else
        H.live = req->next;
    if (req->next)
        req->next->prev = req->prev;
    H.n_live--;
    req->conn = NULL;
    struct lx_front *f = req->http_conn;
    req->http_conn = NULL;
    lx_req_release(req);
    if (f)
        lx_front_request_done(f); /* the next request may go to MHD now */
    front_idle_cb();
}

/* --- accepting --- */

/* limits.max_connections: answer 503 in OpenAI's shape and close, without handing the socket to MHD. */
static void refuse_busy(int fd)
{
    struct lx_error e = {0};
    lx_error_set(&e, 503, "service_unavailable", NULL, "server_busy",
                 "The gateway is at its connection limit (limits.max_connections = %ld); try again shortly.",
                 H.cfg->server->limits.max_connections);
    e.retry_after = lx_strdup("1");
    lx_front_refuse(fd, &e);
    lx_error_clear(&e);
    lx_metrics_conn_dropped("max_connections");
}

static void accept_resume_cb(void *arg)
{
    struct listener *l = arg;
    if (l->fd >= 0)
        lx_watch_start(l->ev_accept);
}

/* Out of descriptors: stop accepting for a moment instead of spinning on a readable socket. */
static void pause_accepting(struct listener *l)
{
    lx_watch_stop(l->ev_accept);
    lx_timer_start(l->ev_accept_pause, 100);
}

static void accept_cb(int fd, unsigned what, void *arg)
{
    (void)what;
    struct listener *l = arg;
    bool added = false;
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int c = accept4((int)fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                lx_warn("accept: %s; pausing new connections for 100 ms", strerror(errno));
                pause_accepting(l);
            }
            break;
        }
        if (!l->admin && ((long)l->n_conns >= H.cfg->server->limits.max_connections || l->n_conns >= H.conn_limit)) {
            refuse_busy(c);
            continue;
        }
        struct lx_front *f;
        int mhd_fd = lx_front_open(c, &f);
        if (mhd_fd < 0) {
            pause_accepting(l); /* no descriptors for the pair; the client was closed */
            break;
        }
        /* MHD owns its end from here, and closes it itself if it refuses it (its own limit). */
        H.adding = f;
        if (MHD_add_connection(l->daemon, mhd_fd, (struct sockaddr *)&ss, sl) != MHD_YES) {
            H.adding = NULL;
            lx_front_mhd_closed(f);
        }
        added = true;
    }
    if (added)
        mhd_run(l);
}

/* --- lifecycle --- */

static int open_listener(struct listener *l, const char *addr, char *err, size_t errlen)
{
    char *host;
    int port;
    if (lx_parse_listen(addr, &host, &port) != LX_OK) {
        snprintf(err, errlen, "listen: expected HOST:PORT, got '%s'", addr);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen: cannot resolve '%s': %s", host, gai_strerror(rc));
        free(host);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        snprintf(err, errlen, "listen: cannot listen on %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        free(host);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    lx_info("%s on http://%s%s%s:%d", l->admin ? "admin (/healthz, /metrics) listening" : "listening",
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", l->port);
    free(host);
    return fd;
}

void lx_http_set_config(struct lx_config *cfg)
{
    struct lx_config *old = H.cfg;
    H.cfg = lx_config_ref(cfg);
    lx_config_unref(old);
    lx_front_set_config(cfg);
}

static int listener_start(struct listener *l, const char *addr, unsigned limit, size_t pool, char *err,
                          size_t errlen)
{
    l->fd = open_listener(l, addr, err, errlen);
    if (l->fd < 0)
        return LX_ERR;
    l->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                                     MHD_USE_NO_LISTEN_SOCKET,
                                 0, NULL, NULL, access_cb, l,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, NULL,
                                 MHD_OPTION_CONNECTION_LIMIT, limit,
                                 /* none: MHD never waits on a client, the front times clients */
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
                                 MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
                                 MHD_OPTION_NOTIFY_CONNECTION, notify_connection_cb, l,
                                 MHD_OPTION_END);
    if (!l->daemon) {
        snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
        close(l->fd);
        l->fd = -1;
        return LX_ERR;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    l->ev_epoll = lx_watch_new(di->epoll_fd, LX_WATCH_READ | LX_WATCH_PERSIST, mhd_event_cb, l);
    l->ev_timer = lx_timer_new(mhd_timer_cb, l);
    l->ev_accept = lx_watch_new(l->fd, LX_WATCH_READ | LX_WATCH_PERSIST, accept_cb, l);
    l->ev_accept_pause = lx_timer_new(accept_resume_cb, l);
    lx_watch_start(l->ev_accept);
    lx_watch_start(l->ev_epoll);
    lx_watch_activate(l->ev_epoll);
    return LX_OK;
}

static void listener_close(struct listener *l)
{
    if (l->fd >= 0) {
        lx_watch_stop(l->ev_accept);
        lx_timer_stop(l->ev_accept_pause);
        close(l->fd);
        l->fd = -1;
    }
}

int lx_http_start(struct lx_config *cfg, char *err, size_t errlen)
{
    H.cfg = lx_config_ref(cfg);
    lx_front_set_config(cfg);
    /* Each client takes three descriptors (its socket and the pair to MHD) and may hold an upstream
     * connection too: a quarter of the descriptors each, less some spare. */
    struct rlimit rl;
    unsigned limit = 250;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 256)
        limit = (unsigned)((rl.rlim_cur - 64) / 4);
    if (cfg->server->limits.max_connections > (long)limit)
        lx_info("the descriptor limit allows about %u client connections, below limits.max_connections (%ld); "
                "raise LimitNOFILE or ulimit -n for more", limit, cfg->server->limits.max_connections);
    H.conn_limit = limit;
    /* MHD keeps the request line and headers in the connection's pool (a record for each of the at most
     * 100 fields and query parameters the front lets through, too), with room for the answer's. The pool
     * is sized once: the front holds heads to this size even when a reload raises max_header_bytes. */
    size_t pool = 64 * 1024;
    if ((size_t)cfg->server->limits.max_header_bytes + 32 * 1024 > pool)
        pool = (size_t)cfg->server->limits.max_header_bytes + 32 * 1024;
    lx_front_init(front_gone_cb, front_idle_cb, pool - 32 * 1024);
    if (listener_start(&H.main, cfg->server->listen, limit, pool, err, errlen) != LX_OK)
        return LX_ERR;
    if (cfg->server->admin_listen && listener_start(&H.admin, cfg->server->admin_listen, 64, pool, err, errlen) != LX_OK)
        return LX_ERR;
    return LX_OK;
}

int lx_http_port(void)
{
    return H.main.port;
}

bool lx_http_has_admin(void)
{
    return H.admin.daemon != NULL;
}

size_t lx_http_live(void)
{
    return H.n_live;
}

size_t lx_http_connections(void)
{
    return H.main.n_conns;
}

void lx_http_quiesce(void (*on_idle)(void))
{
    listener_close(&H.main);
    listener_close(&H.admin);
    H.on_idle = on_idle;
    if (H.n_live == 0)
        lx_defer(idle_cb, NULL);
}

void lx_http_abort_all(void)
{
    for (struct lx_req *req = H.live; req; req = req->next) {
        if (req->state == LX_REQ_FINISHED)
            continue;
        req->client_gone = true;
        lx_req_hold(req);
        notify_abort(req);
        wake(req);
        lx_req_release(req);
    }
}

static void listener_stop(struct listener *l)
{
    if (!l->daemon)
        return;
    MHD_run(l->daemon); /* let MHD take the resumed connections back before it closes them */
    MHD_stop_daemon(l->daemon);
    l->daemon = NULL;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    lx_watch_free(l->ev_epoll);
    lx_timer_free(l->ev_timer);
    lx_watch_free(l->ev_accept);
    lx_timer_free(l->ev_accept_pause);
}

void lx_http_stop(void)
{
    for (struct lx_req *req = H.live; req; req = req->next) {
        req->client_gone = true;
        notify_abort(req);
        wake(req);
    }
    listener_stop(&H.main);
    listener_stop(&H.admin);
    lx_front_shutdown();
    lx_config_unref(H.cfg);
    H.cfg = NULL;
}
