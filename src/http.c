/* libmicrohttpd glue, the only file that includes microhttpd.h, and the implementation of the
 * handler-facing lx_req_* API.
 *
 * Re-entrancy rules (see STYLE.md and LIBRARY-NOTES.md):
 * - Only libevent callbacks (mhd_event_cb, mhd_timer_cb) call MHD_run.
 * - Responses are queued only from the access handler: a handler that answers later stores the answer in
 *   the request and resumes the connection; MHD then calls the access handler again, which queues it.
 * - MHD does not watch suspended connections, and 0.9.75 (edge-triggered epoll) can miss a FIN that
 *   arrives in the same read as the headers. So every request watches its own socket with EV_CLOSED
 *   (EPOLLRDHUP) from its first call to its completion: a client that leaves cancels its upstream at
 *   once, and we shutdown() the socket (or resume it) so MHD sees the close too.
 * - MHD_resume_connection is only called on a connection we suspended (the suspended flag).
 * - We accept connections ourselves (accept_cb) and hand them over with MHD_add_connection: in epoll mode
 *   MHD 0.9.75 accepts about ten per MHD_run, which leaves thousands of clients in the listen queue
 *   when the loop is busy. */
#include "http.h"
#include "common.h"
#include "config.h"
#include "dispatch.h"
#include "log.h"
#include "loop.h"
#include "req.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
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

static struct {
    struct MHD_Daemon *daemon;
    struct event *ev_epoll;  /* owned: MHD's epoll fd became readable */
    struct event *ev_timer;  /* owned: MHD_get_timeout deadline */
    struct event *ev_accept; /* owned: the listening socket is readable */
    struct event *ev_accept_pause; /* owned: resumes accepting after running out of descriptors */
    struct lx_config *cfg;   /* ref held: the config new requests get */
    int listen_fd;
    int port;
    struct lx_req *live;     /* requests MHD has not completed yet */
    size_t n_live;
    void (*on_idle)(void);   /* set while draining */
} H = {.listen_fd = -1};

static void mhd_run(void)
{
    MHD_run(H.daemon);
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout(H.daemon, &ms) == MHD_YES) {
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        evtimer_add(H.ev_timer, &tv);
    } else {
        evtimer_del(H.ev_timer);
    }
}

static void mhd_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    mhd_run();
}

static void mhd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    mhd_run();
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
    event_active(H.ev_epoll, EV_READ, 0);
}

static void client_closed_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct lx_req *req = arg;
    lx_debug("req=%llu: client closed the connection while %s", (unsigned long long)req->id,
             lx_req_state_name(req->state));
    if (req->state == LX_REQ_RESPONDING && req->queued && !req->suspended) {
        /* A whole response is with MHD, which may not have run since writing it: a client that read it
         * and closed is not gone early. If bytes were still unsent, completed_cb hears it from MHD. */
        if (req->conn)
            shutdown((int)fd, SHUT_RDWR);
        event_del(req->close_ev);
        return;
    }
    req->client_gone = true;
    lx_req_hold(req);
    notify_abort(req);
    if (req->suspended)
        wake(req);
    else if (req->conn)
        shutdown((int)fd, SHUT_RDWR); /* a state change MHD's edge-triggered epoll reports again */
    lx_req_release(req);
}

static void watch_close(struct lx_req *req)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    req->close_ev = event_new(lx_loop_base(), ci->connect_fd, EV_CLOSED, client_closed_cb, req);
    event_add(req->close_ev, NULL);
}

static void suspend(struct lx_req *req)
{
    if (req->suspended)
        return;
    MHD_suspend_connection(req->conn);
    req->suspended = true;
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
    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)req->id);
    MHD_add_response_header(r, "X-Llmux-Request", id);
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
    lx_buf_puts(&b, text ? text : "{}");
    lx_buf_append(&b, "\n", 1);
    free(text);
    lx_req_respond(req, status, "application/json", b.data, b.len);
    lx_buf_free(&b);
}

void lx_req_respond_error(struct lx_req *req, const struct lx_error *err)
{
    if (err->retry_after)
        lx_req_add_header(req, "Retry-After", err->retry_after);
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

/* --- MHD callbacks --- */

static void respond_too_large(struct lx_req *req)
{
    struct lx_error e = {0};
    lx_error_set(&e, 413, "invalid_request_error", NULL, "request_too_large",
                 "Request body is larger than the limit of %zu bytes (limits.max_body_bytes).",
                 req->cfg->max_body_bytes);
    lx_req_respond_error(req, &e);
    lx_error_clear(&e);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)cls;
    (void)version;
    struct lx_req *req = *con_cls;
    if (!req) {
        req = lx_req_new(H.cfg, method, url);
        req->conn = conn;
        req->next = H.live;
        if (H.live)
            H.live->prev = req;
        H.live = req;
        H.n_live++;
        *con_cls = req;
        watch_close(req);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > req->cfg->max_body_bytes) {
            /* Refuse before reading a byte of the body; MHD closes the connection after the answer. */
            req->body_too_large = true;
            lx_req_set_state(req, LX_REQ_HANDLING);
            respond_too_large(req);
            return queue_response(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->body_too_large) {
            if (req->body.len + *upload_data_size > req->cfg->max_body_bytes) {
                req->body_too_large = true;
                lx_buf_free(&req->body);
            } else {
                lx_buf_append(&req->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->state == LX_REQ_RECEIVING) {
        lx_req_set_state(req, LX_REQ_HANDLING);
        if (req->body_too_large)
            respond_too_large(req);
        else
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

static void log_request(struct lx_req *req)
{
    double now = lx_now_ms_f();
    int status = req->client_gone && !req->out_ended && req->state != LX_REQ_RESPONDING ? 499 : req->status;
    char ttfb[32] = "-";
    if (req->t_first_byte > 0)
        snprintf(ttfb, sizeof ttfb, "%.1f", req->t_first_byte - req->t_start);
    lx_info("req=%llu %s %s model=%s status=%d dur_ms=%.1f ttfb_ms=%s bytes=%llu%s", (unsigned long long)req->id,
            req->method, req->path, req->model ? req->model : "-", status, now - req->t_start, ttfb,
            (unsigned long long)req->bytes_out, req->client_gone ? " client_gone" : "");
}

static void idle_cb(void *arg)
{
    (void)arg;
    if (H.on_idle && H.n_live == 0) {
        void (*f)(void) = H.on_idle;
        H.on_idle = NULL;
        f();
    }
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct lx_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        req->client_gone = true;
    if (req->client_gone)
        notify_abort(req);
    if (req->close_ev) {
        event_free(req->close_ev);
        req->close_ev = NULL;
    }
    req->suspended = false;
    if (req->state != LX_REQ_FINISHED)
        lx_req_set_state(req, LX_REQ_FINISHED);
    log_request(req);
    if (req->prev)
        req->prev->next = req->next;
    else
        H.live = req->next;
    if (req->next)
        req->next->prev = req->prev;
    H.n_live--;
    req->conn = NULL;
    lx_req_release(req);
    if (H.on_idle && H.n_live == 0)
        lx_defer(idle_cb, NULL);
}

/* --- accepting --- */

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (H.listen_fd >= 0)
        event_add(H.ev_accept, NULL);
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    bool added = false;
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int c = accept4((int)fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment instead of spinning on a readable socket. */
                lx_warn("accept: %s; pausing new connections for 100 ms", strerror(errno));
                event_del(H.ev_accept);
                struct timeval tv = {0, 100000};
                evtimer_add(H.ev_accept_pause, &tv);
            }
            break;
        }
        /* MHD owns the socket from here, and closes it itself if it refuses it (connection limit). */
        MHD_add_connection(H.daemon, c, (struct sockaddr *)&ss, sl);
        added = true;
    }
    if (added)
        mhd_run();
}

/* --- lifecycle --- */

static int open_listener(const char *addr, char *err, size_t errlen)
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
    H.port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    lx_info("listening on http://%s%s%s:%d", strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
            H.port);
    free(host);
    return fd;
}

void lx_http_set_config(struct lx_config *cfg)
{
    struct lx_config *old = H.cfg;
    H.cfg = lx_config_ref(cfg);
    lx_config_unref(old);
}

int lx_http_start(struct lx_config *cfg, const char *addr, char *err, size_t errlen)
{
    H.cfg = lx_config_ref(cfg);
    H.listen_fd = open_listener(addr, err, errlen);
    if (H.listen_fd < 0)
        return LX_ERR;
    /* Each client may hold an upstream connection too: half the descriptors each, less some spare. */
    struct rlimit rl;
    unsigned limit = 1000;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 256)
        limit = (unsigned)((rl.rlim_cur - 64) / 2);
    H.daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                                    MHD_USE_NO_LISTEN_SOCKET,
                                0, NULL, NULL, access_cb, NULL,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, NULL,
                                MHD_OPTION_CONNECTION_LIMIT, limit,
                                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)75,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                                MHD_OPTION_NOTIFY_COMPLETED, completed_cb, NULL,
                                MHD_OPTION_END);
    if (!H.daemon) {
        snprintf(err, errlen, "cannot start the HTTP server (libmicrohttpd)");
        close(H.listen_fd);
        H.listen_fd = -1;
        return LX_ERR;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(H.daemon, MHD_DAEMON_INFO_EPOLL_FD);
    H.ev_epoll = event_new(lx_loop_base(), di->epoll_fd, EV_READ | EV_PERSIST, mhd_event_cb, NULL);
    H.ev_timer = evtimer_new(lx_loop_base(), mhd_timer_cb, NULL);
    H.ev_accept = event_new(lx_loop_base(), H.listen_fd, EV_READ | EV_PERSIST, accept_cb, NULL);
    H.ev_accept_pause = evtimer_new(lx_loop_base(), accept_resume_cb, NULL);
    event_add(H.ev_accept, NULL);
    event_add(H.ev_epoll, NULL);
    event_active(H.ev_epoll, EV_READ, 0);
    return LX_OK;
}

int lx_http_port(void)
{
    return H.port;
}

size_t lx_http_live(void)
{
    return H.n_live;
}

void lx_http_quiesce(void (*on_idle)(void))
{
    if (H.listen_fd >= 0) {
        event_del(H.ev_accept);
        evtimer_del(H.ev_accept_pause);
        close(H.listen_fd);
        H.listen_fd = -1;
    }
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

void lx_http_stop(void)
{
    if (!H.daemon)
        return;
    for (struct lx_req *req = H.live; req; req = req->next) {
        req->client_gone = true;
        notify_abort(req);
        wake(req);
    }
    MHD_run(H.daemon); /* let MHD take the resumed connections back before it closes them */
    MHD_stop_daemon(H.daemon);
    H.daemon = NULL;
    if (H.listen_fd >= 0)
        close(H.listen_fd);
    H.listen_fd = -1;
    event_free(H.ev_epoll);
    event_free(H.ev_timer);
    event_free(H.ev_accept);
    event_free(H.ev_accept_pause);
    lx_config_unref(H.cfg);
    H.cfg = NULL;
}
