/* loadgen.c: the benchmark's load generator. Raw HTTP/1.1 over libevent bufferevents (keep-alive, chunked
 * bodies, SSE event timing) for four measurements against one target, plus CPU and memory readings of the
 * target's processes from /proc. Prints key=value lines for bench/run.sh; see bench/README.md. */

/*
 * Modes:
 *   rps      --conns C --duration S        keep-alive request loop: requests/s and latency percentiles
 *   streams  --streams N --chunks K --interval MS --ramp-ms R
 *                                          N concurrent SSE streams: completion, timing, proxy RSS
 *   burst    --requests N --latency MS     N non-stream requests sent at once: wall time
 *   cancel   --streams N                   N streams aborted one at a time after their first event: time
 *                                          from our close() to the mock's last_abort_ms (needs --mock-port)
 *   freeport                               print a free loopback TCP port and exit
 * Common: --port P (target, on 127.0.0.1), --model M, --proxy-pids A,B (CPU and RSS), --mock-pid M (CPU),
 *         --mock-port P (the mock's /debug/stats: connections it accepted during the run),
 *         --timeout S (hard bound on the measurement), --dump FILE (streams: per-stream timings as CSV).
 * rps only: --path P and --body-file F (POST this JSON to P instead of the chat request; --model is then
 *         unused), --probe 1 (every 20 ms, GET /healthz on a connection of its own: how long the target's
 *         event loop takes to answer something that needs nothing else, under the load).
 *
 * One thread, one event_base with precise timers (libevent's default monotonic clock is coarse, 4 ms).
 * Out of memory aborts: a load generator that half-works would make the numbers lie.
 */

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define MAX_PIDS 8
#define USER_TEXT "Benchmark prompt: please stream this answer back to me in twenty small pieces, thanks."

/* ---- small helpers ---- */

static void die(const char *msg)
{
    fprintf(stderr, "loadgen: %s\n", msg);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

/* The whole file (owned), or die. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open the --body-file");
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap)
            b = xrealloc(b, cap = cap ? cap * 2 : 65536);
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return b;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* A growable sample set; percentiles by nearest rank. */
struct samples {
    double *v;
    size_t n, cap;
};

static void samples_add(struct samples *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = xrealloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double samples_pct(struct samples *s, double q)
{
    if (s->n == 0)
        return NAN;
    qsort(s->v, s->n, sizeof *s->v, cmp_double);
    size_t rank = (size_t)ceil(q * (double)s->n);
    if (rank < 1)
        rank = 1;
    return s->v[rank - 1];
}

/* ---- /proc readings ---- */

/* utime + stime in clock ticks, or -1 when the process is gone. */
static long long proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long long utime = 0, stime = 0;
    /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (long long)(utime + stime);
}

/* A "Key:  N kB" line of /proc/PID/status, in KiB; -1 when missing. */
static long proc_status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* A TcpExt counter of /proc/net/netstat (this network namespace, every socket), or -1. */
static long long tcpext_counter(const char *name)
{
    FILE *f = fopen("/proc/net/netstat", "r");
    if (!f)
        return -1;
    char names[8192], values[8192];
    long long v = -1;
    while (fgets(names, sizeof names, f) && fgets(values, sizeof values, f)) {
        if (strncmp(names, "TcpExt:", 7) != 0)
            continue;
        char *sn = NULL, *sv = NULL;
        char *n = strtok_r(names, " \n", &sn), *x = strtok_r(values, " \n", &sv);
        while (n && x) {
            if (strcmp(n, name) == 0) {
                v = atoll(x);
                break;
            }
            n = strtok_r(NULL, " \n", &sn);
            x = strtok_r(NULL, " \n", &sv);
        }
        break;
    }
    fclose(f);
    return v;
}

/* Busy clock ticks of the whole machine (every CPU), from /proc/stat. */
static long long machine_busy_ticks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    unsigned long long v[8] = { 0 };
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]);
    fclose(f);
    if (n < 8)
        return -1;
    /* user nice system idle iowait irq softirq steal: all but idle and iowait */
    return (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

struct pidset {
    pid_t pid[MAX_PIDS];
    int n;
};

static void pidset_parse(struct pidset *ps, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        die("out of memory");
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (ps->n == MAX_PIDS)
            die("too many pids");
        ps->pid[ps->n++] = (pid_t)atoi(t);
    }
    free(copy);
}

static long long pidset_cpu(const struct pidset *ps)
{
    long long sum = 0;
    for (int i = 0; i < ps->n; i++) {
        long long t = proc_cpu_ticks(ps->pid[i]);
        if (t >= 0)
            sum += t;
    }
    return sum;
}

static long pidset_kib(const struct pidset *ps, const char *key)
{
    long sum = 0;
    for (int i = 0; i < ps->n; i++) {
        long v = proc_status_kib(ps->pid[i], key);
        if (v > 0)
            sum += v;
    }
    return sum;
}

/* ---- options and global state ---- */

enum mode { M_RPS, M_STREAMS, M_BURST, M_CANCEL };

static struct {
    enum mode mode;
    int port, mock_port;
    const char *model;
    int conns;
    double duration_s, timeout_s;
    int n;
    int chunks, interval_ms, latency_ms, ramp_ms;
    struct pidset proxy, mock;
    FILE *dump;             /* streams: one CSV line per finished stream (--dump FILE), for a closer look */
    const char *path;       /* rps: POST to this path (default /v1/chat/completions) */
    const char *body_file;  /* rps: the body to POST instead of the generated chat request */
    int probe;              /* rps: GET /healthz every 20 ms on its own connection */
    const char *header;     /* one more request header line ("Name: value", --header), e.g. a client key */
} O = { .conns = 64, .duration_s = 10, .timeout_s = 60, .n = 1000, .chunks = 20, .interval_ms = 50,
        .latency_ms = 0, .ramp_ms = 0, .model = "x" };

static struct {
    struct event_base *base;
    struct sockaddr_in addr;
    char *request;          /* the full request bytes, the same for every request of the run */
    size_t request_len;
    double t_start, t_stop, t_last_done;
    int running;            /* rps: still issuing new requests */
    long long completed, errors, reconnects, opened, finished;
    long inflight, max_inflight;
    long streaming, max_streaming; /* streams between their first event and their end */
    long long mismatched;   /* streams that completed with an unexpected number of events */
    char first_error[160];
    struct samples lat, ttfb, overrun, gaps;
    long rss_idle, rss_peak_sampled;
    long inflight_at_peak;
    struct event *tick;     /* the streams' ramp, every millisecond while it lasts */
    struct event *sample;   /* RSS sampling and the rps duration, every 20 ms */
    struct event *deadline;
    int stats_fd;           /* keep-alive connection to the mock's /debug/stats; -1 when closed */
    int probe_fd;           /* keep-alive connection for --probe; -1 when closed */
    struct samples probe;   /* --probe latencies */
    long long probe_errors;
} G = { .stats_fd = -1, .probe_fd = -1 };

static void note_error(const char *what)
{
    G.errors++;
    if (!G.first_error[0])
        snprintf(G.first_error, sizeof G.first_error, "%s", what);
}

static void build_request(int stream, const char *model)
{
    char *body;
    size_t blen;
    if (O.body_file) {
        body = read_file(O.body_file, &blen);
    } else {
        body = xrealloc(NULL, 1024);
        int n = snprintf(body, 1024,
                         "{\"model\":\"%s\",\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"" USER_TEXT
                         "\"}]}",
                         model, stream ? "true" : "false");
        if (n < 0 || n >= 1024)
            die("model too long");
        blen = (size_t)n;
    }
    size_t cap = blen + 512 + (O.header ? strlen(O.header) + 2 : 0);
    G.request = xrealloc(NULL, cap);
    int n = snprintf(G.request, cap,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Accept: */*\r\n%s%sContent-Length: %zu\r\n\r\n",
                     O.path ? O.path : "/v1/chat/completions", O.port, O.header ? O.header : "",
                     O.header ? "\r\n" : "", blen);
    memcpy(G.request + n, body, blen);
    G.request_len = (size_t)n + blen;
    free(body);
}

/* ---- one HTTP/1.1 client connection ---- */

enum parse { P_HEAD, P_BODY_CL, P_BODY_EOF, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_CRLF, P_TRAILER };

struct conn {
    struct bufferevent *bev; /* owned: freed in conn_free, closes the socket */
    enum parse parse;
    int status;
    int keep_alive;
    int reused;              /* a response already completed on this connection */
    int got_bytes;           /* bytes of the current response arrived */
    long long left;          /* bytes left of the Content-Length body or of the current chunk */
    double t_open, t_sent;
    /* streams: SSE event timing */
    double t_first, t_prev;
    int events;
    int done_seen;
    int match;               /* matched prefix of "[DONE]" */
    char prev;               /* previous body byte, \r skipped */
};

static void conn_open(void);
static void on_response(struct conn *c);

static void conn_free(struct conn *c)
{
    if (O.mode == M_STREAMS && c->events > 0)
        G.streaming--;
    bufferevent_free(c->bev);
    free(c);
}

static void send_request(struct conn *c)
{
    c->parse = P_HEAD;
    c->status = 0;
    c->got_bytes = 0;
    c->events = 0;
    c->done_seen = 0;
    c->match = 0;
    c->prev = 0;
    c->t_sent = now_ms();
    if (bufferevent_write(c->bev, G.request, G.request_len) != 0)
        die("bufferevent_write failed");
}

static void check_all_done(void)
{
    if (O.mode != M_RPS && G.finished >= O.n)
        event_base_loopbreak(G.base);
    if (O.mode == M_RPS && !G.running && G.inflight == 0)
        event_base_loopbreak(G.base);
}

/* The connection ends without a complete response. */
static void conn_fail(struct conn *c, const char *why)
{
    int retry = O.mode == M_RPS && G.running && c->reused && !c->got_bytes;
    conn_free(c);
    G.inflight--;
    if (retry) {
        /* The server closed an idle keep-alive connection as we reused it: not an error of the target. */
        G.reconnects++;
        conn_open();
        return;
    }
    note_error(why);
    if (O.mode == M_RPS && G.running) {
        conn_open(); /* keep the concurrency */
        return;
    }
    G.finished++;
    check_all_done();
}

/* Scans body bytes for SSE event ends (a blank line) and the [DONE] marker. */
static void sse_scan(struct conn *c, const unsigned char *p, size_t n, double t)
{
    static const char done[] = "[DONE]";
    for (size_t i = 0; i < n; i++) {
        char ch = (char)p[i];
        if (ch == done[c->match]) {
            if (++c->match == 6) {
                c->done_seen = 1;
                c->match = 0;
            }
        } else {
            c->match = ch == '[';
        }
        if (ch == '\r')
            continue;
        if (ch == '\n' && c->prev == '\n') {
            c->events++;
            if (c->events == 1) {
                c->t_first = t;
                if (++G.streaming > G.max_streaming)
                    G.max_streaming = G.streaming;
                samples_add(&G.ttfb, t - c->t_sent);
            } else {
                samples_add(&G.gaps, t - c->t_prev);
            }
            c->t_prev = t;
            ch = 0; /* a third newline does not end another event */
        }
        c->prev = ch;
    }
}

/* Moves n body bytes out of the input, scanning them for SSE events in stream mode. */
static void take_body(struct conn *c, struct evbuffer *in, size_t n, double t)
{
    if (O.mode == M_STREAMS) {
        struct evbuffer_iovec v[16];
        size_t seen = 0;
        while (seen < n) {
            struct evbuffer_ptr ptr;
            evbuffer_ptr_set(in, &ptr, seen, EVBUFFER_PTR_SET);
            int k = evbuffer_peek(in, (ev_ssize_t)(n - seen), &ptr, v, 16);
            if (k <= 0)
                break;
            for (int i = 0; i < k && i < 16 && seen < n; i++) {
                size_t len = v[i].iov_len < n - seen ? v[i].iov_len : n - seen;
                sse_scan(c, v[i].iov_base, len, t);
                seen += len;
            }
        }
    }
    evbuffer_drain(in, n);
}

static int parse_head(struct conn *c, struct evbuffer *in)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) > 64 * 1024)
            return -1;
        return 0;
    }
    size_t len = (size_t)end.pos + 4;
    char *head = xrealloc(NULL, len + 1);
    evbuffer_remove(in, head, len);
    head[len] = '\0';
    int minor = 1, rc = 1;
    if (sscanf(head, "HTTP/1.%d %d", &minor, &c->status) != 2) {
        free(head);
        return -1;
    }
    c->keep_alive = minor == 1;
    int chunked = 0;
    long long clen = -1;
    for (char *line = strstr(head, "\r\n") + 2; *line && strncmp(line, "\r\n", 2) != 0;) {
        char *eol = strstr(line, "\r\n");
        *eol = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ')
                v++;
            if (strcasecmp(line, "content-length") == 0)
                clen = strtoll(v, NULL, 10);
            else if (strcasecmp(line, "transfer-encoding") == 0 && strcasestr(v, "chunked"))
                chunked = 1;
            else if (strcasecmp(line, "connection") == 0 && strcasestr(v, "close"))
                c->keep_alive = 0;
            else if (strcasecmp(line, "connection") == 0 && strcasestr(v, "keep-alive"))
                c->keep_alive = 1;
        }
        line = eol + 2;
    }
    free(head);
    if (c->status >= 100 && c->status < 200)
        return 1; /* an interim response: the real head follows */
    if (chunked) {
        c->parse = P_CHUNK_SIZE;
    } else if (clen >= 0) {
        c->parse = P_BODY_CL;
        c->left = clen;
    } else {
        c->parse = P_BODY_EOF;
        c->keep_alive = 0;
    }
    return rc;
}

/* Parses what has arrived; returns 1 when a response completed, 0 when more is needed, -1 on garbage. */
static int parse_input(struct conn *c, double t)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        switch (c->parse) {
        case P_HEAD: {
            int r = parse_head(c, in);
            if (r <= 0)
                return r;
            break;
        }
        case P_BODY_CL: {
            size_t have = evbuffer_get_length(in);
            size_t n = (long long)have < c->left ? have : (size_t)c->left;
            take_body(c, in, n, t);
            c->left -= (long long)n;
            return c->left == 0 ? 1 : 0;
        }
        case P_BODY_EOF:
            take_body(c, in, evbuffer_get_length(in), t);
            return 0;
        case P_CHUNK_SIZE: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
            if (!line)
                return evbuffer_get_length(in) > 1024 ? -1 : 0;
            char *end;
            c->left = strtoll(line, &end, 16);
            int bad = end == line || c->left < 0;
            free(line);
            if (bad)
                return -1;
            c->parse = c->left ? P_CHUNK_DATA : P_TRAILER;
            break;
        }
        case P_CHUNK_DATA: {
            size_t have = evbuffer_get_length(in);
            size_t n = (long long)have < c->left ? have : (size_t)c->left;
            take_body(c, in, n, t);
            c->left -= (long long)n;
            if (c->left)
                return 0;
            c->parse = P_CHUNK_CRLF;
            break;
        }
        case P_CHUNK_CRLF: {
            if (evbuffer_get_length(in) < 2)
                return 0;
            char crlf[2];
            evbuffer_remove(in, crlf, 2);
            if (crlf[0] != '\r' || crlf[1] != '\n')
                return -1;
            c->parse = P_CHUNK_SIZE;
            break;
        }
        case P_TRAILER: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
            if (!line)
                return 0;
            free(line);
            if (n == 0)
                return 1;
            break;
        }
        }
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    double t = now_ms();
    c->got_bytes = 1;
    int r = parse_input(c, t);
    if (r < 0) {
        conn_fail(c, "unparsable response");
        return;
    }
    if (r > 0)
        on_response(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        send_request(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (c->parse == P_BODY_EOF) {
            c->keep_alive = 0;
            on_response(c);
            return;
        }
        char why[128];
        int err = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof why, "connection %s%s%s", what & BEV_EVENT_EOF ? "closed early" : "error",
                 what & BEV_EVENT_ERROR ? ": " : "", what & BEV_EVENT_ERROR ? evutil_socket_error_to_string(err) : "");
        conn_fail(c, why);
    }
}

static void conn_open(void)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        die("out of memory");
    c->bev = bufferevent_socket_new(G.base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev)
        die("bufferevent_socket_new failed");
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->t_open = now_ms();
    G.inflight++;
    G.opened++;
    if (G.inflight > G.max_inflight)
        G.max_inflight = G.inflight;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&G.addr, sizeof G.addr) != 0)
        conn_fail(c, "connect failed");
}

static void on_response(struct conn *c)
{
    double t = now_ms();
    int ok = c->status == 200;
    if (!ok) {
        char why[64];
        snprintf(why, sizeof why, "HTTP status %d", c->status);
        note_error(why);
    }
    if (O.mode == M_STREAMS && O.dump)
        fprintf(O.dump, "%.3f,%.3f,%.3f,%.3f,%d,%d\n", c->t_open - G.t_start, c->t_sent - G.t_start,
                c->events ? c->t_first - G.t_start : -1.0, c->events ? c->t_prev - G.t_start : -1.0, c->events,
                c->status);
    if (O.mode == M_STREAMS) {
        if (ok && !c->done_seen) {
            note_error("stream ended without [DONE]");
            ok = 0;
        }
        if (ok) {
            G.completed++;
            if (c->events != O.chunks + 3)
                G.mismatched++;
            double ideal = (double)(O.chunks + 2) * O.interval_ms;
            samples_add(&G.overrun, c->t_prev - c->t_sent - ideal);
        }
    } else if (ok) {
        G.completed++;
        samples_add(&G.lat, t - c->t_sent);
    }
    G.t_last_done = t;
    c->reused = 1;
    if (O.mode == M_RPS && G.running) {
        if (c->keep_alive) {
            send_request(c);
        } else {
            conn_free(c);
            G.reconnects++;
            G.inflight--;
            conn_open();
        }
        return;
    }
    conn_free(c);
    G.inflight--;
    G.finished++;
    check_all_done();
}

/* ---- timers ---- */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    long long want = (long long)((now_ms() - G.t_start) / O.ramp_ms * O.n) + 1;
    if (want > O.n)
        want = O.n;
    while (G.opened < want)
        conn_open();
    if (G.opened >= O.n)
        event_del(G.tick);
}

static void probe_once(void);

static void sample_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    double t = now_ms();
    if (O.probe && G.running)
        probe_once();
    if (O.mode == M_RPS && G.running && t - G.t_start >= O.duration_s * 1000) {
        G.running = 0;
        G.t_stop = t;
        check_all_done();
    }
    if (O.proxy.n) {
        long rss = pidset_kib(&O.proxy, "VmRSS");
        if (rss > G.rss_peak_sampled) {
            G.rss_peak_sampled = rss;
            G.inflight_at_peak = G.inflight;
        }
    }
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fprintf(stderr, "loadgen: deadline reached with %ld in flight\n", G.inflight);
    event_base_loopbreak(G.base);
}

/* ---- cancel mode: blocking sockets, one stream at a time ---- */

static int connect_blocking(int port)
{
    struct sockaddr_in a = G.addr;
    a.sin_port = htons((uint16_t)port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One GET on a blocking keep-alive connection to port (opened when *fd < 0): the whole answer into buf
 * (NUL-terminated, Content-Length framed). Its length, or -1 with the connection closed. */
static long get_blocking(int *fd, int port, const char *req, char *buf, size_t cap)
{
    if (*fd < 0 && (*fd = connect_blocking(port)) < 0)
        return -1;
    size_t have = 0;
    int ok = write_all(*fd, req, strlen(req)) == 0;
    while (ok) {
        ssize_t r = read(*fd, buf + have, cap - 1 - have);
        if (r <= 0) {
            ok = 0;
            break;
        }
        have += (size_t)r;
        buf[have] = '\0';
        char *body = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "content-length:");
        if (body && cl && (size_t)(body + 4 - buf) + (size_t)atol(cl + 15) <= have)
            return (long)have;
        if (have >= cap - 1)
            ok = 0;
    }
    close(*fd);
    *fd = -1;
    return -1;
}

/* GET /debug/stats on a keep-alive connection to the mock; reopens it when needed (which the mock then
 * counts in connections_total). */
static int mock_stats(int *fd, long long *aborted, long long *last_abort_ms, long long *conns_total)
{
    static const char req[] = "GET /debug/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int attempt = 0; attempt < 2; attempt++) {
        char buf[4096];
        if (get_blocking(fd, O.mock_port, req, buf, sizeof buf) < 0)
            continue;
        char *a = strstr(buf, "\"aborted\":"), *l = strstr(buf, "\"last_abort_ms\":");
        char *t = strstr(buf, "\"connections_total\":");
        if (a && l && t) {
            *aborted = atoll(a + 10);
            *last_abort_ms = atoll(l + 16);
            *conns_total = atoll(t + 20);
            return 0;
        }
        close(*fd);
        *fd = -1;
    }
    return -1;
}

/* --probe: one GET /healthz, timed from the write to the whole answer, on a blocking keep-alive
 * connection (the loadgen's own loop waits meanwhile: it is the target's latency that is measured). */
static void probe_once(void)
{
    char buf[2048];
    double t0 = now_ms();
    if (get_blocking(&G.probe_fd, O.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", buf, sizeof buf) < 0 ||
        strncmp(buf, "HTTP/1.1 200", 12) != 0) {
        G.probe_errors++;
        return;
    }
    samples_add(&G.probe, now_ms() - t0);
}

/* Reads the answer up to the end of its first SSE event; 0 on success. */
static int read_first_event(int fd)
{
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        char *body = strstr(buf, "\r\n\r\n");
        if (body) {
            int status = 0;
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || status != 200)
                return -1;
            /* Chunk framing is \r\n; only SSE's blank line gives a bare \n\n. */
            if (strstr(body + 4, "\n\n"))
                return 0;
        }
        if (have >= sizeof buf - 1)
            return -1;
    }
}

static void run_cancel(void)
{
    long long aborted = 0, last = 0, total = 0, timeouts = 0;
    if (mock_stats(&G.stats_fd, &aborted, &last, &total) != 0)
        die("cannot read the mock's /debug/stats");
    double t_end = now_ms() + O.timeout_s * 1000;
    for (int i = 0; i < O.n && now_ms() < t_end; i++) {
        int fd = connect_blocking(O.port);
        if (fd < 0) {
            note_error("connect failed");
            continue;
        }
        if (write_all(fd, G.request, G.request_len) != 0 || read_first_event(fd) != 0) {
            note_error("no first event");
            close(fd);
            continue;
        }
        double t_close = now_ms();
        close(fd);
        /* Both clocks are CLOCK_MONOTONIC on this machine; the mock keeps whole milliseconds. */
        long long before = aborted;
        double give_up = now_ms() + 5000;
        int seen = 0;
        while (now_ms() < give_up) {
            struct timespec ms = { 0, 1000 * 1000 };
            nanosleep(&ms, NULL);
            if (mock_stats(&G.stats_fd, &aborted, &last, &total) != 0)
                die("lost the mock's /debug/stats");
            if (aborted > before) {
                seen = 1;
                break;
            }
        }
        if (!seen) {
            timeouts++;
            note_error("upstream never saw the close (5 s)");
            continue;
        }
        G.completed++;
        samples_add(&G.lat, (double)last - floor(t_close));
    }
    printf("not_seen=%lld\n", timeouts);
}

/* ---- main ---- */

static void usage(void)
{
    fputs("usage: loadgen rps|streams|burst|cancel|freeport [--port P] [--model M] [--conns C] [--duration S]\n"
          "       [--streams N | --requests N] [--chunks K] [--interval MS] [--latency MS] [--ramp-ms R]\n"
          "       [--mock-port P] [--proxy-pids A,B] [--mock-pid M] [--timeout S] [--dump FILE]\n"
          "       [--path P] [--body-file F] [--probe 1] [--header 'Name: value']\n",
          stderr);
    exit(2);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &len))
        die("cannot find a free port");
    close(fd);
    return ntohs(a.sin_port);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    if (strcmp(mode, "freeport") == 0) {
        printf("%d\n", free_port());
        return 0;
    }
    if (strcmp(mode, "rps") == 0)
        O.mode = M_RPS;
    else if (strcmp(mode, "streams") == 0)
        O.mode = M_STREAMS;
    else if (strcmp(mode, "burst") == 0)
        O.mode = M_BURST;
    else if (strcmp(mode, "cancel") == 0)
        O.mode = M_CANCEL;
    else
        usage();
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *k = argv[i], *v = argv[++i];
        if (strcmp(k, "--port") == 0)
            O.port = atoi(v);
        else if (strcmp(k, "--mock-port") == 0)
            O.mock_port = atoi(v);
        else if (strcmp(k, "--model") == 0)
            O.model = v;
        else if (strcmp(k, "--conns") == 0)
            O.conns = atoi(v);
        else if (strcmp(k, "--duration") == 0)
            O.duration_s = atof(v);
        else if (strcmp(k, "--timeout") == 0)
            O.timeout_s = atof(v);
        else if (strcmp(k, "--streams") == 0 || strcmp(k, "--requests") == 0)
            O.n = atoi(v);
        else if (strcmp(k, "--chunks") == 0)
            O.chunks = atoi(v);
        else if (strcmp(k, "--interval") == 0)
            O.interval_ms = atoi(v);
        else if (strcmp(k, "--latency") == 0)
            O.latency_ms = atoi(v);
        else if (strcmp(k, "--ramp-ms") == 0)
            O.ramp_ms = atoi(v);
        else if (strcmp(k, "--proxy-pids") == 0)
            pidset_parse(&O.proxy, v);
        else if (strcmp(k, "--mock-pid") == 0)
            pidset_parse(&O.mock, v);
        else if (strcmp(k, "--path") == 0)
            O.path = v;
        else if (strcmp(k, "--body-file") == 0)
            O.body_file = v;
        else if (strcmp(k, "--probe") == 0)
            O.probe = atoi(v);
        else if (strcmp(k, "--header") == 0)
            O.header = v;
        else if (strcmp(k, "--dump") == 0) {
            if (!(O.dump = fopen(v, "w")))
                die("cannot open the --dump file");
            fputs("open_ms,sent_ms,first_event_ms,last_event_ms,events,status\n", O.dump);
        }
        else
            usage();
    }
    if (O.port <= 0 || O.n <= 0 || O.conns <= 0 || (O.mode == M_CANCEL && O.mock_port <= 0))
        usage();
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    G.addr.sin_family = AF_INET;
    G.addr.sin_port = htons((uint16_t)O.port);
    G.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    char model[512];
    if (O.mode == M_STREAMS)
        snprintf(model, sizeof model, "%s;chunks=%d;interval=%d", O.model, O.chunks, O.interval_ms);
    else if (O.mode == M_CANCEL) /* long enough that every stream is still running when we leave */
        snprintf(model, sizeof model, "%s;chunks=20;interval=1000", O.model);
    else if (O.latency_ms > 0)
        snprintf(model, sizeof model, "%s;latency=%d", O.model, O.latency_ms);
    else
        snprintf(model, sizeof model, "%s", O.model);
    build_request(O.mode == M_STREAMS || O.mode == M_CANCEL, model);

    long long cpu0 = pidset_cpu(&O.proxy), mcpu0 = pidset_cpu(&O.mock);
    G.rss_idle = pidset_kib(&O.proxy, "VmRSS");
    long long overflows0 = tcpext_counter("ListenOverflows"), drops0 = tcpext_counter("ListenDrops");
    long long busy0 = machine_busy_ticks();
    long long conns0 = -1, conns1 = -1, ab, la;
    if (O.mock_port > 0 && mock_stats(&G.stats_fd, &ab, &la, &conns0) != 0)
        die("cannot read the mock's /debug/stats");
    double self0 = self_cpu_s();
    G.t_start = now_ms();

    if (O.mode == M_CANCEL) {
        run_cancel();
    } else {
        struct event_config *cfg = event_config_new();
        if (!cfg || event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0)
            die("event_config failed");
        G.base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!G.base)
            die("event_base_new failed");
        G.tick = event_new(G.base, -1, EV_PERSIST, tick_cb, NULL);
        G.sample = event_new(G.base, -1, EV_PERSIST, sample_cb, NULL);
        G.deadline = evtimer_new(G.base, deadline_cb, NULL);
        struct timeval tick = { 0, 1000 }, sample = { 0, 20 * 1000 };
        struct timeval dl = { (time_t)O.timeout_s, (suseconds_t)((O.timeout_s - floor(O.timeout_s)) * 1e6) };
        if (O.mode == M_STREAMS && O.ramp_ms > 0)
            event_add(G.tick, &tick);
        event_add(G.sample, &sample);
        event_add(G.deadline, &dl);
        G.running = O.mode == M_RPS;
        int initial = O.mode == M_RPS ? O.conns : O.mode == M_BURST ? O.n : O.ramp_ms > 0 ? 0 : O.n;
        for (int i = 0; i < initial; i++)
            conn_open();
        event_base_dispatch(G.base);
    }
    double t_end = now_ms();

    long long cpu1 = pidset_cpu(&O.proxy), mcpu1 = pidset_cpu(&O.mock);
    long long overflows1 = tcpext_counter("ListenOverflows"), drops1 = tcpext_counter("ListenDrops");
    long long busy1 = machine_busy_ticks();
    if (O.mock_port > 0 && mock_stats(&G.stats_fd, &ab, &la, &conns1) != 0)
        conns1 = -1;
    double tck = (double)sysconf(_SC_CLK_TCK);
    double proxy_cpu = (double)(cpu1 - cpu0) / tck, mock_cpu = (double)(mcpu1 - mcpu0) / tck;

    printf("mode=%s\n", mode);
    printf("completed=%lld\nerrors=%lld\n", G.completed, G.errors);
    if (G.first_error[0])
        printf("first_error=%s\n", G.first_error);
    double self_cpu = self_cpu_s() - self0, machine_cpu = (double)(busy1 - busy0) / tck;
    printf("proxy_cpu_s=%.2f\nmock_cpu_s=%.2f\nloadgen_cpu_s=%.2f\nmachine_cpu_s=%.2f\n", O.proxy.n ? proxy_cpu : NAN,
           O.mock.n ? mock_cpu : NAN, self_cpu, machine_cpu);
    /* Whatever else ran on the machine meanwhile (other jobs, kernel threads): a noisy neighbour shows here. */
    printf("other_cpu_s=%.2f\nwall_run_s=%.3f\n",
           machine_cpu - self_cpu - (O.proxy.n ? proxy_cpu : 0) - (O.mock.n ? mock_cpu : 0),
           (t_end - G.t_start) / 1000);
    printf("listen_overflows=%lld\nlisten_drops=%lld\n", overflows1 - overflows0, drops1 - drops0);
    /* Connections the mock accepted during the run: ours for direct, the proxy's upstream ones otherwise. */
    if (conns0 >= 0 && conns1 >= 0)
        printf("mock_conns_opened=%lld\n", conns1 - conns0);
    switch (O.mode) {
    case M_RPS: {
        double elapsed = (G.t_last_done > 0 ? G.t_last_done : t_end) - G.t_start;
        printf("reconnects=%lld\nelapsed_s=%.3f\nrps=%.0f\n", G.reconnects, elapsed / 1000,
               (double)G.completed / (elapsed / 1000));
        printf("p50_ms=%.3f\np99_ms=%.3f\n", samples_pct(&G.lat, 0.50), samples_pct(&G.lat, 0.99));
        if (O.probe)
            printf("probes=%zu\nprobe_errors=%lld\nprobe_p50_ms=%.3f\nprobe_p99_ms=%.3f\nprobe_max_ms=%.3f\n", G.probe.n,
                   G.probe_errors, samples_pct(&G.probe, 0.50), samples_pct(&G.probe, 0.99),
                   samples_pct(&G.probe, 1.0));
        printf("proxy_cpu_s_per_10k=%.3f\nmock_cpu_s_per_10k=%.3f\n",
               O.proxy.n && G.completed ? proxy_cpu / (double)G.completed * 10000 : NAN,
               O.mock.n && G.completed ? mock_cpu / (double)G.completed * 10000 : NAN);
        break;
    }
    case M_STREAMS: {
        long hwm = pidset_kib(&O.proxy, "VmHWM");
        long peak = hwm > G.rss_peak_sampled ? hwm : G.rss_peak_sampled;
        printf("streams=%d\nmax_inflight=%ld\nmax_streaming=%ld\nevent_mismatch=%lld\nelapsed_s=%.3f\n", O.n,
               G.max_inflight, G.max_streaming, G.mismatched, (t_end - G.t_start) / 1000);
        printf("ttfb_p50_ms=%.1f\nttfb_p99_ms=%.1f\n", samples_pct(&G.ttfb, 0.5), samples_pct(&G.ttfb, 0.99));
        printf("overrun_p50_ms=%.1f\noverrun_p99_ms=%.1f\noverrun_max_ms=%.1f\n", samples_pct(&G.overrun, 0.5),
               samples_pct(&G.overrun, 0.99), samples_pct(&G.overrun, 1.0));
        printf("gap_p50_ms=%.1f\ngap_p99_ms=%.1f\n", samples_pct(&G.gaps, 0.5), samples_pct(&G.gaps, 0.99));
        if (O.proxy.n)
            /* Per stream the proxy actually held at once: a proxy that queues clients instead of serving them
             * holds fewer than --streams, and dividing by --streams would flatter it. */
            printf("rss_idle_kib=%ld\nrss_peak_kib=%ld\nrss_sampled_peak_kib=%ld\ninflight_at_peak=%ld\n"
                   "rss_per_stream_kib=%.1f\nrss_per_requested_stream_kib=%.1f\n",
                   G.rss_idle, peak, G.rss_peak_sampled, G.inflight_at_peak,
                   G.max_streaming ? (double)(peak - G.rss_idle) / (double)G.max_streaming : NAN,
                   (double)(peak - G.rss_idle) / O.n);
        break;
    }
    case M_BURST:
        printf("requests=%d\nwall_s=%.3f\np50_ms=%.1f\np99_ms=%.1f\n", O.n,
               ((G.t_last_done > 0 ? G.t_last_done : t_end) - G.t_start) / 1000, samples_pct(&G.lat, 0.5),
               samples_pct(&G.lat, 0.99));
        break;
    case M_CANCEL:
        printf("streams=%d\np50_ms=%.0f\np99_ms=%.0f\nmax_ms=%.0f\nelapsed_s=%.3f\n", O.n, samples_pct(&G.lat, 0.5),
               samples_pct(&G.lat, 0.99), samples_pct(&G.lat, 1.0), (t_end - G.t_start) / 1000);
        break;
    }
    return 0;
}
