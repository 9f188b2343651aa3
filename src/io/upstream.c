/* libcurl multi-socket glue on the libevent base, the only file that includes curl/curl.h.
 *
 * Re-entrancy rules (see STYLE.md):
 * - Only libevent callbacks here call curl_multi_socket_action / curl_multi_remove_handle / pause.
 * - curl's write/header callbacks call the owner's on_headers/on_body, which touch buffers and flags; if
 *   the owner cancels from there, the removal is deferred to the loop (in_curl_cb guards that).
 * - The socket callback also fires for curl's internal sockets and during cleanup: per-socket state
 *   (struct lx_sock) is kept apart from per-transfer state (struct lx_upstream).
 *
 * The end of an answer is the protocol's, not the HTTP body's: when on_body says LX_DONE (a stream's own
 * end marker was decoded), the owner gets on_done from the loop at once and the transfer is detached.
 * A detached transfer drains: its remaining bytes are discarded for up to LX_UPSTREAM_DRAIN_MS (and
 * LX_UPSTREAM_DRAIN_BYTES) so that a body ending right after its marker leaves a reusable keep-alive
 * connection; an upstream that keeps the body open past that has its connection closed. */
#include "upstream.h"
#include "loop.h"
#include "../core/common.h"
#include "../core/httpreq.h"
#include "../core/log.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#define LX_UPSTREAM_DRAIN_MS 1000          /* longest wait for the body's end after the answer was complete */
#define LX_UPSTREAM_DRAIN_BYTES (64u * 1024) /* most bytes discarded after it */
/* curl's receive buffer (CURLOPT_BUFFERSIZE, 16 KiB by default), one per transfer: a stream event is a few
 * hundred bytes, and a larger answer only takes more reads. */
#define LX_UPSTREAM_RECV_BYTES 1024L

struct lx_upstream {
    CURL *easy;                 /* owned: cleaned in upstream_free */
    struct curl_slist *headers; /* owned: one block (header_list), freed with free() */
    char *body;                 /* owned: POST body curl reads from, until it is all sent and the answer's
                                 * body has begun (free_sent_body) */
    curl_off_t body_len;
    const struct lx_upstream_ops *ops;
    void *ctx;                  /* the owner's, borrowed */
    char errbuf[CURL_ERROR_SIZE];
    char *content_type;         /* owned */
    char *retry_after;          /* owned */
    int status;
    bool headers_done;
    bool paused;
    bool cancelled;             /* no more callbacks; removal pending */
    bool owner_abort;           /* on_body returned LX_ERR */
    bool in_multi;
    bool resume_pending;        /* a deferred resume is queued */
    bool complete;              /* on_body said LX_DONE: later body bytes are discarded */
    bool conn_close;            /* the answer said Connection: close */
    struct shard *shard;        /* static: the multi handle it runs in */
    struct origin *origin;      /* static: where the connection goes back idle; NULL: not counted */
    unsigned deferred;          /* deferred callbacks holding a pointer to us: the last one settles us */
    size_t drained;             /* bytes discarded since complete */
    struct lx_timer *drain;     /* owned while draining: closes the connection when the body does not end */
    struct lx_upstream *drain_prev, *drain_next; /* in lx_draining while drain is set */
};

struct lx_sock {
    struct event *ev;    /* owned: assigned anew (not reallocated) when curl's interest changes */
    struct shard *shard; /* static: the multi handle the socket belongs to */
    curl_socket_t fd;
};

#define LX_UPSTREAM_SPARE_EASY 64 /* idle easy handles kept for the next transfers */

/* Idle keep-alive connections per plain-HTTP origin, as far as llmux can tell. curl 7.88 looks for a
 * connection to reuse by walking every connection it has to the host, busy ones included, for every new
 * transfer: with 5,000 streams in flight to one upstream, that walk was the largest cost of starting one
 * (and quadratic in the whole). When no connection to the origin has come back idle, llmux asks for a
 * fresh connection (CURLOPT_FRESH_CONNECT), which skips the walk; a wrong guess costs one connection or
 * one walk, never a failure. HTTPS origins are left to curl: HTTP/2 shares one connection. */
#define LX_UPSTREAM_ORIGINS 64
struct origin {
    char *name; /* owned: "http://host:port" as the URL spells it */
};
static struct origin lx_origins[LX_UPSTREAM_ORIGINS];
static size_t lx_n_origins;

/* Transfers run in several curl multi handles ("shards"), each filled to LX_SHARD_TRANSFERS before the next
 * is made. curl 7.88 keeps two structures per multi handle whose cost grows with the connections it holds:
 * a socket hash of 911 buckets, searched on every socket event, and the connection cache, which
 * curl_multi_remove_handle walks from its start to the removed transfer's connection (to close it if it
 * was CURLOPT_CONNECT_ONLY, which llmux never sets) whenever that connection was left open. With 5,000
 * streams to one upstream in one multi handle, that walk was quadratic in the streams and about a tenth of
 * llmux's CPU (perf). Connections are reused only within a shard: a plain-HTTP transfer goes to a shard
 * that has an idle connection to its origin when one has, and HTTPS ones (HTTP/2 shares a connection)
 * fill the shards in order, like everything else, so that fewer than LX_SHARD_TRANSFERS transfers in
 * flight all run in the first. */
#define LX_UPSTREAM_SHARDS 16
#define LX_SHARD_TRANSFERS 1024
struct shard {
    CURLM *multi;                   /* owned */
    struct event *timer;            /* owned: curl's timeout for this multi handle */
    size_t active;                  /* transfers in it */
    long idle[LX_UPSTREAM_ORIGINS]; /* per origin (its index): transfers that ended leaving their
                                     * connection open here, minus the ones started on them since */
};
static struct shard lx_shards[LX_UPSTREAM_SHARDS];
static size_t lx_n_shards;
static long lx_keep_per_shard;  /* CURLMOPT_MAXCONNECTS of each shard */
static struct shard *lx_kick;   /* the shard a transfer is being added to (see timer_cb) */

static struct origin *origin_of(const char *url)
{
    if (strncmp(url, "http://", 7) != 0)
        return NULL;
    size_t n = 7 + strcspn(url + 7, "/?#");
    for (size_t i = 0; i < lx_n_origins; i++)
        if (strncmp(lx_origins[i].name, url, n) == 0 && lx_origins[i].name[n] == '\0')
            return &lx_origins[i];
    if (lx_n_origins == LX_UPSTREAM_ORIGINS)
        return NULL;
    struct origin *o = &lx_origins[lx_n_origins++];
    o->name = lx_strndup(url, n);
    return o;
}

/* The proxy to use, read from the environment once at start by the rules curl applies when it reads it
 * itself for every transfer (five or six getenv calls each, in curl 7.88): the scheme's variable in lower
 * case (https_proxy, then HTTPS_PROXY; http_proxy only, never HTTP_PROXY, which a CGI client can set), then
 * all_proxy or ALL_PROXY; hosts in no_proxy or NO_PROXY go direct; an empty variable counts as unset. Set
 * on each transfer, "" meaning no proxy and no exceptions, they make curl choose what it would have. */
static struct {
    char *http, *https, *no_proxy; /* owned */
} lx_proxy;

static char *env_first(const char *const *names)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v)
            return lx_strdup(v);
    }
    return lx_strdup("");
}

static CURL *lx_spare[LX_UPSTREAM_SPARE_EASY]; /* owned: reset, ready for reuse */
static size_t lx_n_spare;
static int lx_in_curl_cb;     /* depth of curl callbacks on the stack */
static struct lx_upstream *lx_draining; /* detached transfers waiting for their body's end */

/* One TLS session cache and one DNS cache for every transfer, whichever shard runs it: a new connection
 * resumes the TLS session any earlier one made, and a handle keeps no cache of its own (curl gives each
 * handle without a share a 5-session cache, 920 bytes, for as long as the handle lives). Only this thread
 * uses it, so it needs no lock callbacks. */
static CURLSH *lx_share;

/* Easy handles are reused (curl_easy_reset keeps their buffers and caches, and the share; curl_easy_init
 * is not free). */
static CURL *easy_get(void)
{
    if (lx_n_spare > 0)
        return lx_spare[--lx_n_spare];
    CURL *e = curl_easy_init();
    if (e && lx_share)
        curl_easy_setopt(e, CURLOPT_SHARE, lx_share);
    return e;
}

static void easy_put(CURL *e)
{
    if (lx_n_spare < LX_UPSTREAM_SPARE_EASY) {
        curl_easy_reset(e);
        lx_spare[lx_n_spare++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static void upstream_free(struct lx_upstream *u)
{
    if (u->drain) {
        lx_timer_free(u->drain);
        if (u->drain_prev)
            u->drain_prev->drain_next = u->drain_next;
        else
            lx_draining = u->drain_next;
        if (u->drain_next)
            u->drain_next->drain_prev = u->drain_prev;
    }
    if (u->in_multi) {
        curl_multi_remove_handle(u->shard->multi, u->easy);
        u->shard->active--;
    }
    easy_put(u->easy);
    free(u->headers);
    free(u->body);
    free(u->content_type);
    free(u->retry_after);
    free(u);
}

static enum lx_upstream_result map_result(struct lx_upstream *u, CURLcode rc)
{
    if (rc == CURLE_OK)
        return LX_UP_OK;
    if (u->owner_abort)
        return LX_UP_ABORTED;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return LX_UP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return LX_UP_TIMEOUT;
    default:
        return LX_UP_BROKEN;
    }
}

static void drain_expired_cb(void *arg)
{
    struct lx_upstream *u = arg;
    lx_debug("upstream body did not end within %d ms after the answer was complete: closing the connection",
             LX_UPSTREAM_DRAIN_MS);
    upstream_free(u); /* removing the unfinished transfer closes its connection */
}

/* The owner is gone (cancelled, or told on_done) and no deferred callback holds u: free it, or, when its
 * answer was complete and the body has not ended yet, let it drain. From the loop only. */
static void upstream_settle(struct lx_upstream *u)
{
    if (u->deferred > 0 || !u->cancelled || u->drain)
        return;
    if (u->complete && u->in_multi && u->shard->multi) {
        u->drain = lx_timer_new(drain_expired_cb, u);
        u->drain_next = lx_draining;
        if (lx_draining)
            lx_draining->drain_prev = u;
        lx_draining = u;
        lx_timer_start(u->drain, LX_UPSTREAM_DRAIN_MS);
        return;
    }
    upstream_free(u);
}

static void check_multi_info(struct shard *sh)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(sh->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct lx_upstream *u = NULL;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&u);
        curl_multi_remove_handle(sh->multi, u->easy);
        u->in_multi = false;
        sh->active--;
        if (rc == CURLE_OK && u->origin && !u->conn_close)
            sh->idle[u->origin - lx_origins]++; /* the body ended: curl keeps the connection */
        if (!u->cancelled) {
            /* A complete answer stays complete whatever happened to the bytes after it. */
            enum lx_upstream_result r = u->complete ? LX_UP_OK : map_result(u, rc);
            const char *detail = u->errbuf[0] ? u->errbuf : curl_easy_strerror(rc);
            if (r == LX_UP_OK && !u->headers_done) {
                r = LX_UP_BROKEN;
                detail = "no response";
            }
            u->cancelled = true; /* on_done is the owner's last callback */
            u->ops->on_done(u->ctx, r, detail);
        }
        if (u->drain)
            upstream_free(u); /* the body ended while draining: the connection went back to the pool */
        else
            upstream_settle(u);
    }
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct shard *sh = ((struct lx_sock *)arg)->shard; /* the lx_sock may go during the action */
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    lx_loop_batch_begin(); /* what the answers' bytes woke is sent when curl is done */
    CURLMcode mc = curl_multi_socket_action(sh->multi, fd, flags, &running);
    if (mc != CURLM_OK)
        lx_error("curl_multi_socket_action: %s", curl_multi_strerror(mc));
    check_multi_info(sh);
    lx_loop_batch_end();
}

static void timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct shard *sh = arg;
    int running;
    lx_loop_batch_begin();
    CURLMcode mc = curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (mc != CURLM_OK)
        lx_error("curl_multi_socket_action(timeout): %s", curl_multi_strerror(mc));
    check_multi_info(sh);
    lx_loop_batch_end();
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest in a socket with one libevent event. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    struct shard *sh = userp;
    struct lx_sock *ls = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ls) {
            event_free(ls->ev);
            free(ls);
            curl_multi_assign(sh->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!ls) {
        ls = lx_calloc(1, sizeof *ls);
        ls->fd = s;
        ls->shard = sh;
        ls->ev = lx_malloc(event_get_struct_event_size());
        curl_multi_assign(sh->multi, s, ls);
    } else {
        event_del(ls->ev); /* not pending now, so it may be assigned again */
    }
    event_assign(ls->ev, lx_loop_base(), s, kind, sock_event_cb, ls);
    event_add(ls->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: only arms the libevent timer; never calls curl. The 0 ms that adding a transfer
 * asks for runs the timer in this turn of the loop (made active), not after the next poll for events: a
 * new transfer's connect starts one turn sooner. Other 0 ms timeouts wait for the next turn, so that curl
 * asking again and again cannot starve the sockets. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct shard *sh = userp;
    evtimer_del(sh->timer);
    if (timeout_ms == 0 && lx_kick == sh) {
        event_active(sh->timer, EV_TIMEOUT, 1);
    } else if (timeout_ms >= 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(sh->timer, &tv);
    }
    return 0;
}

static size_t header_cb(char *data, size_t size, size_t n, void *userp)
{
    struct lx_upstream *u = userp;
    size_t len = size * n;
    if (u->complete)
        return len; /* trailers after a complete answer */
    if (u->cancelled)
        return 0;
    if (len >= 12 && strncasecmp(data, "retry-after:", 12) == 0) {
        size_t a = 12, b = len;
        while (a < b && (data[a] == ' ' || data[a] == '\t'))
            a++;
        while (b > a && (data[b - 1] == '\r' || data[b - 1] == '\n' || data[b - 1] == ' '))
            b--;
        free(u->retry_after);
        u->retry_after = lx_strndup(data + a, b - a);
    }
    if (len >= 11 && strncasecmp(data, "connection:", 11) == 0 && memmem(data, len, "close", 5))
        u->conn_close = true;
    if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(u->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && !u->headers_done) {
            char *ct = NULL;
            curl_easy_getinfo(u->easy, CURLINFO_CONTENT_TYPE, &ct);
            u->status = (int)code;
            u->content_type = ct ? lx_strdup(ct) : NULL;
            u->headers_done = true;
            lx_in_curl_cb++;
            u->ops->on_headers(u->ctx, u->status, u->content_type, u->retry_after);
            lx_in_curl_cb--;
            if (u->cancelled)
                return 0;
        }
    }
    return len;
}

static void complete_cb(void *arg);

/* Once the answer's body flows and every byte of the request went out, curl reads the request no more: it
 * re-sends a request only on a connection that died before any answer came (and a reused handle is reset
 * first). A long stream does not keep its prompt. */
static void free_sent_body(struct lx_upstream *u)
{
    curl_off_t sent = 0;
    if (curl_easy_getinfo(u->easy, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK && sent >= u->body_len) {
        free(u->body);
        u->body = NULL;
    }
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct lx_upstream *u = userp;
    size_t len = size * n;
    if (u->body)
        free_sent_body(u);
    if (u->complete) {
        u->drained += len;
        return u->drained > LX_UPSTREAM_DRAIN_BYTES ? CURL_WRITEFUNC_ERROR : len;
    }
    if (u->cancelled)
        return CURL_WRITEFUNC_ERROR;
    lx_in_curl_cb++;
    int rc = u->ops->on_body(u->ctx, data, len);
    lx_in_curl_cb--;
    if (u->cancelled)
        return CURL_WRITEFUNC_ERROR;
    if (rc == LX_AGAIN) {
        u->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (rc == LX_DONE) {
        /* on_done may start other transfers, which curl refuses from its own callbacks: from the loop. */
        u->complete = true;
        u->deferred++;
        lx_defer(complete_cb, u);
        return len;
    }
    if (rc != LX_OK) {
        u->owner_abort = true;
        return CURL_WRITEFUNC_ERROR;
    }
    return len;
}

static struct shard *shard_new(void)
{
    if (lx_n_shards == LX_UPSTREAM_SHARDS)
        return NULL;
    struct shard *sh = &lx_shards[lx_n_shards];
    sh->multi = curl_multi_init();
    if (!sh->multi)
        return NULL;
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
    curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, lx_keep_per_shard);
    sh->timer = evtimer_new(lx_loop_base(), timer_event_cb, sh);
    lx_n_shards++;
    return sh;
}

/* The shard a transfer to origin o (NULL: not counted) runs in; *reuse says it takes an idle connection. */
static struct shard *shard_for(struct origin *o, bool *reuse)
{
    if (o) {
        size_t oi = (size_t)(o - lx_origins);
        for (size_t i = 0; i < lx_n_shards; i++)
            if (lx_shards[i].idle[oi] > 0) {
                lx_shards[i].idle[oi]--;
                *reuse = true;
                return &lx_shards[i];
            }
    }
    struct shard *least = &lx_shards[0];
    for (size_t i = 0; i < lx_n_shards; i++) {
        if (lx_shards[i].active < LX_SHARD_TRANSFERS)
            return &lx_shards[i];
        if (lx_shards[i].active < least->active)
            least = &lx_shards[i];
    }
    struct shard *sh = shard_new();
    return sh ? sh : least;
}

int lx_upstream_init(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return LX_ERR;
    /* curl's default idle-connection cache (4 per transfer in flight) shrinks as transfers end, closing
     * keep-alive connections that the next requests need again: keep up to half the descriptors, shared
     * out over the shards (but never fewer than a full shard's transfers in each). */
    struct rlimit rl;
    long keep = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < 65536)
        keep = (long)(rl.rlim_cur / 2 > 64 ? rl.rlim_cur / 2 : 64);
    else
        keep = 65536;
    static const char *const http[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
    static const char *const https[] = {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", NULL};
    static const char *const no_proxy[] = {"no_proxy", "NO_PROXY", NULL};
    lx_proxy.http = env_first(http);
    lx_proxy.https = env_first(https);
    lx_proxy.no_proxy = env_first(no_proxy);
    lx_share = curl_share_init();
    if (lx_share && (curl_share_setopt(lx_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
                     curl_share_setopt(lx_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK)) {
        curl_share_cleanup(lx_share);
        lx_share = NULL;
    }
    lx_keep_per_shard = keep / LX_UPSTREAM_SHARDS;
    if (lx_keep_per_shard < LX_SHARD_TRANSFERS)
        lx_keep_per_shard = keep < LX_SHARD_TRANSFERS ? keep : LX_SHARD_TRANSFERS;
    return shard_new() ? LX_OK : LX_ERR;
}

void lx_upstream_shutdown(void)
{
    while (lx_draining)
        upstream_free(lx_draining); /* easy handles leave the multi handle before it goes */
    while (lx_n_spare > 0)
        curl_easy_cleanup(lx_spare[--lx_n_spare]);
    while (lx_n_origins > 0)
        free(lx_origins[--lx_n_origins].name);
    while (lx_n_shards > 0) {
        struct shard *sh = &lx_shards[--lx_n_shards];
        curl_multi_cleanup(sh->multi);
        event_free(sh->timer);
        memset(sh, 0, sizeof *sh);
    }
    free(lx_proxy.http);
    free(lx_proxy.https);
    free(lx_proxy.no_proxy);
    memset(&lx_proxy, 0, sizeof lx_proxy);
    if (lx_share && curl_share_cleanup(lx_share) == CURLSHE_OK)
        lx_share = NULL; /* else a handle still uses it (a transfer left running): it stays */
    curl_global_cleanup();
}

/* req's header lines and "Expect:" (no 100-continue round trip before the body) as a curl_slist in one
 * allocation: its nodes and their text together, where curl_slist_append makes two per line. curl only reads
 * the list, for as long as the transfer lasts (it is freed with the upstream). */
static struct curl_slist *header_list(const struct lx_http_request *req)
{
    static const char expect[] = "Expect:";
    size_t n = req->n_headers + 1, text = sizeof expect;
    for (size_t i = 0; i < req->n_headers; i++)
        text += strlen(req->headers[i]) + 1;
    struct curl_slist *list = lx_malloc(n * sizeof *list + text);
    char *p = (char *)(list + n);
    for (size_t i = 0; i < n; i++) {
        const char *line = i < req->n_headers ? req->headers[i] : expect;
        size_t len = strlen(line) + 1;
        memcpy(p, line, len);
        list[i].data = p;
        list[i].next = i + 1 < n ? &list[i + 1] : NULL;
        p += len;
    }
    return list;
}

struct lx_upstream *lx_upstream_start(struct lx_http_request *req, long connect_timeout_ms,
                                      const struct lx_upstream_ops *ops, void *ctx)
{
    struct lx_upstream *u = lx_calloc(1, sizeof *u);
    u->ops = ops;
    u->ctx = ctx;
    u->easy = easy_get();
    if (!u->easy) {
        free(u);
        return NULL;
    }
    CURL *e = u->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, u);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, u->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, u);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, u);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, LX_UPSTREAM_RECV_BYTES);
    curl_easy_setopt(e, CURLOPT_PROXY, strncasecmp(req->url, "https:", 6) == 0 ? lx_proxy.https : lx_proxy.http);
    curl_easy_setopt(e, CURLOPT_NOPROXY, lx_proxy.no_proxy);
    u->origin = origin_of(req->url);
    bool reuse = false;
    u->shard = shard_for(u->origin, &reuse);
    if (u->origin && !reuse)
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16L * 1024); /* curl's smallest; the body is ours */
    u->headers = header_list(req);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, u->headers);
    if (strcmp(req->method, "DELETE") == 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
    if (strcmp(req->method, "POST") == 0) {
        u->body = req->body; /* taken: curl reads it until the transfer ends */
        req->body = NULL;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, u->body ? u->body : "");
        u->body_len = (curl_off_t)req->body_len;
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, u->body_len);
    }
    lx_kick = u->shard;
    CURLMcode mc = curl_multi_add_handle(u->shard->multi, e);
    lx_kick = NULL;
    if (mc != CURLM_OK) {
        upstream_free(u);
        return NULL;
    }
    u->in_multi = true;
    u->shard->active++;
    return u;
}

const char *lx_upstream_header(struct lx_upstream *u, const char *name)
{
    struct curl_header *h = NULL;
    if (!u || curl_easy_header(u->easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h)
        return NULL;
    return h->value;
}

static void deferred_settle_cb(void *arg)
{
    struct lx_upstream *u = arg;
    u->deferred--;
    upstream_settle(u);
}

void lx_upstream_cancel(struct lx_upstream *u)
{
    if (!u || u->cancelled)
        return;
    u->cancelled = true;
    if (u->deferred)
        return; /* the last deferred callback settles */
    if (lx_in_curl_cb) {
        u->deferred++; /* curl refuses remove_handle from its own callbacks */
        lx_defer(deferred_settle_cb, u);
    } else {
        upstream_settle(u); /* removing an unfinished transfer closes its connection */
    }
}

/* The answer is complete (on_body said LX_DONE): tell the owner, then drain or free. */
static void complete_cb(void *arg)
{
    struct lx_upstream *u = arg;
    u->deferred--;
    if (!u->cancelled) {
        u->cancelled = true; /* on_done is the owner's last callback */
        u->ops->on_done(u->ctx, LX_UP_OK, "complete");
    }
    upstream_settle(u);
}

static void deferred_resume_cb(void *arg)
{
    struct lx_upstream *u = arg;
    u->deferred--;
    u->resume_pending = false;
    if (u->cancelled) {
        upstream_settle(u);
        return;
    }
    if (!u->paused)
        return;
    u->paused = false;
    curl_easy_pause(u->easy, CURLPAUSE_CONT);
}

void lx_upstream_resume(struct lx_upstream *u)
{
    if (!u || u->cancelled || !u->paused || u->resume_pending)
        return;
    u->resume_pending = true;
    u->deferred++;
    lx_defer(deferred_resume_cb, u);
}

size_t lx_upstream_active(void)
{
    size_t n = 0;
    for (size_t i = 0; i < lx_n_shards; i++)
        n += lx_shards[i].active;
    return n;
}

static size_t discard_cb(char *ptr, size_t size, size_t n, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * n;
}

int lx_upstream_check_url(const char *url, long timeout_ms, char *err, size_t errlen)
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return LX_ERR;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_cb);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
        return LX_ERR;
    }
    if (status < 200 || status >= 300) {
        snprintf(err, errlen, "HTTP status %ld", status);
        return LX_ERR;
    }
    return LX_OK;
}
