/* libmicrohttpd glue, the only file that includes microhttpd.h: the listeners, the accept loop, MHD's
 * callbacks, and the transport (struct lx_transport) of the requests it serves. Each MHD request is a
 * struct mhd_req that embeds its struct lx_req; the request API itself is server/req.c's.
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
 *   client, checks every request's framing, answers the hot endpoints itself (direct.c, as MHD would),
 *   and hands MHD every other request, one whole canonical request at a time, over a socketpair made
 *   when the connection first needs one (attach_cb: MHD_add_connection gets MHD's end); MHD 0.9.75
 *   cannot be made strict by its options, and it reads ahead, so checking what it reads from the client
 *   itself could never keep up. The front also owns the client-side time limits (limits.read_timeout_ms,
 *   keep-alive idle) and sees a client leave while its request is answered: it calls front_gone_cb.
 * - There are one or two listeners (the main address, and admin_listen), each its own MHD daemon. */
#include "mhd.h"
#include "conf.h"
#include "front.h"
#include "req.h"
#include "../core/common.h"
#include "../core/conf.h"
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
#define LX_LISTEN_BACKLOG 4096 /* connections the kernel queues before accept */

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
    size_t n_conns;                /* client connections open (their fronts) */
};

static struct {
    struct listener main, admin;   /* admin.daemon is NULL without admin_listen */
    struct lx_config *cfg;         /* ref held: the config new requests get */
    struct mhd_req *live;          /* the requests MHD has not completed yet (each holds its own reference) */
    void (*route)(struct lx_req *req); /* the route table requests are handed to */
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

/* --- requests: the transport for req.c --- */

/* MHD's record of one request: the request itself, and what only this file knows about it. */
struct mhd_req {
    struct lx_req req;            /* embedded: the request the rest of llmux sees */
    struct MHD_Connection *conn;  /* borrowed from MHD: valid until the completion callback */
    struct listener *listener;    /* borrowed: the listener it arrived on */
    struct lx_front *front;       /* borrowed: the connection's front (front.c), valid while conn is */
    bool suspended;
    bool queued;                  /* a response was queued with MHD */
    struct mhd_req *prev, *next;  /* live-request list */
};

static struct mhd_req *mhd_req_of(struct lx_req *req)
{
    return LX_CONTAINER_OF(req, struct mhd_req, req);
}

static const char *transport_header(struct lx_req *req, const char *name)
{
    struct mhd_req *r = mhd_req_of(req);
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

static const char *transport_query(struct lx_req *req, const char *name)
{
    struct mhd_req *r = mhd_req_of(req);
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

/* Resume a suspended connection so MHD handles it on the next loop turn. Any context but MHD_run's own
 * callbacks on that connection (it is suspended, so MHD is not calling us about it). */
static void transport_wake(struct lx_req *req)
{
    struct mhd_req *r = mhd_req_of(req);
    if (!r->suspended || !r->conn)
        return;
    r->suspended = false;
    MHD_resume_connection(r->conn);
    lx_watch_activate(r->listener->ev_epoll);
}

static void transport_dispose(struct lx_req *req)
{
    free(mhd_req_of(req));
}

static const struct lx_transport lx_mhd_transport = {
    .header = transport_header,
    .query = transport_query,
    .wake = transport_wake,
    .dispose = transport_dispose,
};

/* The front found the client gone while MHD has its request (from a loop callback): stop the work, and
 * resume a parked connection so MHD ends it (the front has closed MHD's pair, so it fails there). */
static void front_gone_cb(void *ctx)
{
    struct lx_req *req = ctx;
    lx_debug("req=%llu: client closed the connection while %s", (unsigned long long)req->id,
             lx_req_state_name(req->state));
    lx_req_client_gone(req);
}

static bool front_probe_cb(void *ctx)
{
    return lx_req_probe_client(ctx);
}

static void suspend(struct mhd_req *r)
{
    if (r->suspended)
        return;
    MHD_suspend_connection(r->conn);
    r->suspended = true;
    if (r->front)
        lx_front_waiting(r->front);
}

static ssize_t stream_reader_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct mhd_req *r = cls;
    ssize_t n = lx_req_stream_read(&r->req, buf, max);
    if (n > 0)
        return n;
    if (n == LX_REQ_STREAM_CUT)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == LX_REQ_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    /* Nothing to send yet: park the connection until the handler writes (returning 0 unsuspended would
     * make MHD spin). */
    suspend(r);
    return 0;
}

static void add_headers(struct lx_req *req, struct MHD_Response *resp)
{
    if (req->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    for (size_t i = 0; i < req->n_resp_headers; i++) {
        char *line = req->resp_headers[i];
        char *colon = strchr(line, ':');
        *colon = '\0';
        MHD_add_response_header(resp, line, colon + 2);
        *colon = ':';
    }
}

static enum MHD_Result queue_response(struct mhd_req *r)
{
    struct lx_req *req = &r->req;
    struct MHD_Response *resp;
    if (req->state == LX_REQ_STREAMING) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LX_STREAM_BLOCK, stream_reader_cb, r, NULL);
    } else {
        size_t len;
        char *body = lx_req_take_body(req, &len);
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    }
    if (!resp)
        return MHD_NO;
    add_headers(req, resp);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    r->queued = true;
    return ret;
}

/* --- connections --- */

static void notify_connection_cb(void *cls, struct MHD_Connection *mc, void **socket_context,
                                 enum MHD_ConnectionNotificationCode toe)
{
    (void)mc;
    struct listener *l = cls;
    (void)l;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = H.adding; /* MHD_add_connection calls this before it returns */
        H.adding = NULL;
        return;
    }
    struct lx_front *f = *socket_context;
    if (!f)
        return;
    *socket_context = NULL;
    lx_front_mhd_closed(f);
}

static struct lx_front *front_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* --- MHD callbacks --- */

static enum MHD_Result start_request(struct listener *l, struct MHD_Connection *conn, const char *url,
                                     const char *method, void **con_cls)
{
    struct mhd_req *r = lx_calloc(1, sizeof *r);
    struct lx_req *req = &r->req;
    lx_req_init(req, &lx_mhd_transport, H.cfg, method, url);
    r->conn = conn;
    r->listener = l;
    req->on_admin = l->admin;
    r->next = H.live;
    if (H.live)
        H.live->prev = r;
    H.live = r;
    H.n_live++;
    *con_cls = r;
    lx_req_set_request_id(req, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id"));
    /* The front checked the head and the body's size, and times the request from its first byte. */
    struct lx_front *f = front_of(conn);
    if (f) {
        r->front = f;
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
    struct mhd_req *r = *con_cls;
    if (!r)
        return start_request(cls, conn, url, method, con_cls);
    struct lx_req *req = &r->req;
    if (*upload_data_size) {
        /* The front handed MHD the whole body at once, within limits.max_body_bytes. */
        req->bytes_in += *upload_data_size;
        lx_buf_append(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->state == LX_REQ_RECEIVING)
        lx_req_dispatch(req, H.route); /* the whole request is in */
    if (req->client_gone)
        return MHD_NO;
    if (r->queued)
        return MHD_YES;
    if (req->state == LX_REQ_RESPONDING || req->state == LX_REQ_STREAMING)
        return queue_response(r);
    suspend(r);
    return MHD_YES;
}

static void idle_cb(void *arg)
{
    (void)arg;
    if (H.on_idle && lx_http_live() == 0 && lx_front_busy() == 0) {
        void (*f)(void) = H.on_idle;
        H.on_idle = NULL;
        f();
    }
}

/* Nothing is live and no front has bytes to send: the drain at shutdown may end (from the loop). */
static void front_idle_cb(void)
{
    if (H.on_idle && lx_http_live() == 0)
        lx_defer(idle_cb, NULL);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct mhd_req *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    r->suspended = false;
    lx_req_finish(&r->req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (r->prev)
        r->prev->next = r->next;
    else
        H.live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    H.n_live--;
    r->conn = NULL;
    struct lx_front *f = r->front;
    r->front = NULL;
    lx_req_release(&r->req);
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

/* Everything the kernel has queued (the listen backlog is LX_LISTEN_BACKLOG): under load one turn of the
 * loop relays events for thousands of streams, and accepting only a slice of the queue per turn left new
 * clients waiting in it for many turns (their first event late at 5,000 streams). */
static void accept_cb(int fd, unsigned what, void *arg)
{
    (void)what;
    struct listener *l = arg;
    for (int i = 0; i < LX_LISTEN_BACKLOG; i++) {
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
        lx_front_open(c, l, !l->admin, &l->n_conns);
    }
}

/* The front needs MHD for a request of this connection (hooks.attach): a socketpair, MHD's end added to
 * the listener's daemon. From the front's loop callbacks, never inside MHD. */
static int attach_cb(void *site, struct lx_front *f)
{
    struct listener *l = site;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        lx_warn("cannot hand a request to the HTTP server: socketpair: %s", strerror(errno));
        return -1;
    }
    /* MHD keeps the address for its own use only: the client's, as if MHD had accepted it. */
    struct sockaddr_storage ss = {.ss_family = AF_UNIX};
    socklen_t sl = sizeof ss;
    if (getpeername(lx_front_fd(f), (struct sockaddr *)&ss, &sl) != 0)
        sl = sizeof(sa_family_t);
    /* MHD owns its end from here, and closes it itself if it refuses it (its own limit). */
    H.adding = f;
    if (MHD_add_connection(l->daemon, sv[1], (struct sockaddr *)&ss, sl) != MHD_YES) {
        H.adding = NULL;
        close(sv[0]);
        return -1;
    }
    lx_watch_activate(l->ev_epoll);
    return sv[0];
}

static const char *reason_cb(int status)
{
    const char *r = MHD_get_reason_phrase_for((unsigned)status);
    return r && *r ? r : "Unknown";
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
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, LX_LISTEN_BACKLOG) != 0) {
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

int lx_http_start(struct lx_config *cfg, void (*route)(struct lx_req *req),
                  bool (*direct)(const char *method, size_t method_len, const char *path, size_t path_len), char *err,
                  size_t errlen)
{
    H.route = route;
    H.cfg = lx_config_ref(cfg);
    lx_front_set_config(cfg);
    /* Each client takes its socket and may hold an upstream connection; one that MHD serves takes the pair
     * to MHD too: a third of the descriptors each, less some spare. */
    struct rlimit rl;
    unsigned limit = 250;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 256)
        limit = (unsigned)((rl.rlim_cur - 64) / 3);
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
    struct lx_front_hooks hooks = {
        .client_gone = front_gone_cb,
        .probe = front_probe_cb,
        .idle = front_idle_cb,
        .attach = attach_cb,
        .direct = direct,
        .route = route,
        .reason = reason_cb,
    };
    lx_front_init(&hooks, pool - 32 * 1024);
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

size_t lx_http_live(void)
{
    return H.n_live + lx_front_serving();
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
    if (lx_http_live() == 0)
        lx_defer(idle_cb, NULL);
}

void lx_http_abort_all(void)
{
    for (struct mhd_req *r = H.live; r; r = r->next)
        if (r->req.state != LX_REQ_FINISHED)
            lx_req_client_gone(&r->req);
    lx_front_abort_all();
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
    for (struct mhd_req *r = H.live; r; r = r->next)
        lx_req_client_gone(&r->req);
    lx_front_abort_all();
    listener_stop(&H.main);
    listener_stop(&H.admin);
    lx_front_shutdown();
    lx_config_unref(H.cfg);
    H.cfg = NULL;
}
