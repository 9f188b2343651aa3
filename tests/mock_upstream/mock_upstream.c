/* mock_upstream.c: a scriptable OpenAI-compatible upstream for llmux's integration tests and benchmarks.
 * HTTP/1.1 is parsed and written by hand on libevent bufferevents so faults can be injected at byte level;
 * directives in the request's model string ("gpt-x;latency=100;fault=stall_midstream") script each reply. */

/*
 * Rules of this file:
 * - One thread, one event loop. Waiting is always a libevent timer, never a sleep.
 * - A connection is never freed in the middle of a call chain: code marks it (conn_doom) and the libevent
 *   callback that started the work frees it on the way out (conn_settle), so nested calls such as
 *   "response done -> parse the next request -> answer it" never touch freed memory.
 * - A response body goes out one piece per write: the next piece is queued only once the output buffer
 *   has drained to the kernel (write callback) and the pacing timer, if any, has fired.
 * - Out of memory aborts (xmalloc, must): a mock that half-works under memory pressure would make test
 *   failures lie about llmux.
 */

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>

#define MAX_HEAD_BYTES (64 * 1024)
#define MAX_BODY_BYTES (64 * 1024 * 1024)
#define MAX_CHUNK_LINE 4096
#define BIG_CONTENT_BYTES (10 * 1024 * 1024)
#define BIG_STREAM_PIECE (16 * 1024)
#define BIG_MARKER "MOCK_UPSTREAM_BIG_CONTENT"
#define SPLIT_PACE_MS 1
/* Long enough for the partial headers to reach the peer before the RST overtakes them. */
#define RESET_DELAY_MS 10
#define MAX_DIRECTIVE_MS (24L * 3600 * 1000)

/* ---- allocation (out of memory aborts, see the top of the file) ---- */

static void oom(void)
{
    fputs("mock-upstream: out of memory\n", stderr);
    abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom();
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom();
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        oom();
    return p;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        oom();
    return d;
}

/* jansson returns NULL on allocation failure or a bad pack format; both are fatal here. */
static json_t *must(json_t *j)
{
    if (!j) {
        fputs("mock-upstream: jansson failed\n", stderr);
        abort();
    }
    return j;
}

static struct evbuffer *new_buf(void)
{
    struct evbuffer *b = evbuffer_new();
    if (!b)
        oom();
    return b;
}

static void buf_add(struct evbuffer *b, const void *data, size_t n)
{
    if (n && evbuffer_add(b, data, n) != 0)
        oom();
}

static void buf_move(struct evbuffer *dst, struct evbuffer *src)
{
    if (evbuffer_add_buffer(dst, src) != 0)
        oom();
}

struct strbuf {
    char *s; /* owned; always NUL-terminated once anything was added */
    size_t len, cap;
};

static void sb_add(struct strbuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = xrealloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Header values and request targets are arbitrary bytes; jansson only takes UTF-8. */
static json_t *json_string_lossy(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char *copy = xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = must(json_string(copy));
    free(copy);
    return j;
}

/* ---- connection and server state ---- */

enum conn_state {
    CONN_READING,   /* parsing a request */
    CONN_DELAYING,  /* request read, response held back by latency= or --models-delay */
    CONN_WRITING,   /* response going out piece by piece */
    CONN_STALLED,   /* deliberately silent until the peer leaves (stall_* faults) */
    CONN_RESETTING, /* partial headers flushed, RST follows after RESET_DELAY_MS */
    CONN_STATE_COUNT
};

static const char *const state_names[CONN_STATE_COUNT] = {
    [CONN_READING] = "reading",   [CONN_DELAYING] = "delaying",   [CONN_WRITING] = "writing",
    [CONN_STALLED] = "stalled",   [CONN_RESETTING] = "resetting",
};

enum parse_state { PARSE_HEAD, PARSE_BODY, PARSE_CHUNK_SIZE, PARSE_CHUNK_DATA, PARSE_CHUNK_CRLF, PARSE_TRAILER };

enum end_action { END_KEEP_ALIVE, END_CLOSE, END_RESET };
enum stop_action { STOP_CLOSE, STOP_STALL };
enum doom { DOOM_NONE, DOOM_CLOSE, DOOM_RESET, DOOM_LOST };

enum fault {
    FAULT_NONE, FAULT_REFUSE, FAULT_RESET_HEADERS, FAULT_CLOSE_MIDSTREAM, FAULT_STALL_HEADERS,
    FAULT_STALL_MIDSTREAM, FAULT_GARBAGE, FAULT_HTTP_GARBAGE, FAULT_BIG, FAULT_HTML, FAULT_COUNT
};

static const char *const fault_names[FAULT_COUNT] = {
    [FAULT_NONE] = "none", [FAULT_REFUSE] = "refuse", [FAULT_RESET_HEADERS] = "reset_headers",
    [FAULT_CLOSE_MIDSTREAM] = "close_midstream", [FAULT_STALL_HEADERS] = "stall_headers",
    [FAULT_STALL_MIDSTREAM] = "stall_midstream", [FAULT_GARBAGE] = "garbage",
    [FAULT_HTTP_GARBAGE] = "http_garbage", [FAULT_BIG] = "big", [FAULT_HTML] = "html",
};

/* What the model string asked for. */
struct script {
    long latency_ms;
    long interval_ms;
    long chunks;
    long status; /* 0 = answer normally */
    enum fault fault;
    int tool;
    long split; /* body piece size in bytes; 0 = no splitting */
};

/* The reply to one chat request, used for the JSON body and as the SSE event source. */
struct answer {
    char id[48];
    char *model;     /* owned */
    long long created;
    char *text;      /* owned: the reply text, or the tool call's arguments */
    size_t text_len;
    char *tool_name; /* owned; NULL unless the answer is a tool call */
    int big;         /* content is BIG_CONTENT_BYTES of 'a' taken from big_fill, text is unused */
    int include_usage;
    long long prompt_tokens, completion_tokens;
    size_t *cuts;    /* owned: content piece i is text[cuts[i] .. cuts[i+1]) */
    size_t npieces;
    size_t step;     /* next SSE event to emit */
};

struct request {
    enum parse_state parse;
    char *method;   /* owned */
    char *target;   /* owned */
    int http_minor;
    int keep_alive;
    int chunked;
    int conn_close, conn_keep_alive, expect_continue;
    long long content_length;      /* -1 when absent */
    unsigned long long chunk_left;
    json_t *headers;               /* owned: lowercased name -> value, repeats joined with ", " */
    struct evbuffer *body;         /* owned */
};

struct response {
    struct evbuffer *head; /* owned: status line and headers, or a fault's raw bytes */
    struct evbuffer *body; /* owned: prebuilt body; NULL when it streams from gen */
    struct answer *gen;    /* owned: SSE event source; NULL for prebuilt bodies */
    int chunked;
    size_t split;          /* write the body in pieces of this many bytes; 0 = whole */
    long pace_ms;          /* delay between body pieces */
    long stop_after;       /* body pieces to write before `stop`; -1 = never */
    enum stop_action stop;
    enum end_action end;
    long pieces_sent;
    int body_done;         /* the last piece (and chunked terminator) has been queued */
    long delay_ms;         /* wait before the first byte */
};

struct conn {
    struct conn *prev, *next;
    struct bufferevent *bev; /* owned: closes the socket when freed */
    struct event *timer;     /* owned: latency, pacing and reset delays */
    enum conn_state state;
    enum doom doom;
    int chat_active;         /* a chat response is in progress: counted in stats.active */
    struct request req;
    struct response resp;
};

static struct {
    struct event_base *base;         /* owned */
    struct evconnlistener *listener; /* owned */
    struct event *accept_retry;      /* owned */
    struct event *sig_term, *sig_int; /* owned */
    const char *require_key;         /* borrowed from argv */
    long models_delay_ms;
    struct conn *conns;              /* every open connection, for shutdown */
    json_t *last_chat;               /* owned: snapshot served by /debug/last */
    unsigned long long next_id;
    struct {
        long long requests, active, aborted, last_abort_ms, connections_total, connections_open;
    } stats;
} srv;

static char big_fill[64 * 1024]; /* 'a' bytes that big bodies reference instead of copying */

static void parse_input(struct conn *c);
static void pump(struct conn *c);

/* ---- connection lifecycle ---- */

static int transition_ok(enum conn_state from, enum conn_state to)
{
    switch (from) {
    case CONN_READING: return to == CONN_DELAYING || to == CONN_WRITING;
    case CONN_DELAYING: return to == CONN_WRITING;
    case CONN_WRITING: return to == CONN_READING || to == CONN_STALLED || to == CONN_RESETTING;
    default: return 0;
    }
}

static void conn_set_state(struct conn *c, enum conn_state to)
{
    if (!transition_ok(c->state, to)) {
        fprintf(stderr, "mock-upstream: illegal transition %s -> %s\n", state_names[c->state], state_names[to]);
        abort();
    }
    c->state = to;
}

static void arm_timer(struct conn *c, long ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (evtimer_add(c->timer, &tv) != 0) {
        fputs("mock-upstream: evtimer_add failed\n", stderr);
        abort();
    }
}

static void conn_doom(struct conn *c, enum doom how)
{
    if (c->doom == DOOM_NONE)
        c->doom = how;
}

static void request_clear(struct request *q)
{
    free(q->method);
    free(q->target);
    json_decref(q->headers);
    q->method = q->target = NULL;
    q->headers = NULL;
    q->parse = PARSE_HEAD;
    q->http_minor = 1;
    q->keep_alive = 1;
    q->chunked = q->conn_close = q->conn_keep_alive = q->expect_continue = 0;
    q->content_length = -1;
    q->chunk_left = 0;
    if (evbuffer_drain(q->body, evbuffer_get_length(q->body)) != 0)
        oom();
}

static void answer_free(struct answer *a)
{
    if (!a)
        return;
    free(a->model);
    free(a->text);
    free(a->tool_name);
    free(a->cuts);
    free(a);
}

static void response_clear(struct response *r)
{
    if (r->head)
        evbuffer_free(r->head);
    if (r->body)
        evbuffer_free(r->body);
    answer_free(r->gen);
    memset(r, 0, sizeof *r);
    r->stop_after = -1;
}

static void conn_free(struct conn *c)
{
    if (c->chat_active)
        srv.stats.active--;
    if (c->doom == DOOM_RESET) {
        /* Linger 0 turns close() into an RST. */
        struct linger lg = { 1, 0 };
        if (setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
            perror("mock-upstream: SO_LINGER");
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    /* Safe inside this bev's own callbacks: libevent holds a reference until the callback returns and
     * bufferevent_free clears our callbacks first. */
    bufferevent_free(c->bev);
    event_free(c->timer);
    request_clear(&c->req);
    evbuffer_free(c->req.body);
    response_clear(&c->resp);
    free(c);
    srv.stats.connections_open--;
}

/* Called at the end of every libevent callback that touches a connection. */
static void conn_settle(struct conn *c)
{
    if (c->doom != DOOM_NONE)
        conn_free(c);
}

/* The peer closed or reset the socket. */
static void conn_lost(struct conn *c)
{
    if (c->chat_active) {
        c->chat_active = 0;
        srv.stats.active--;
        srv.stats.aborted++;
        srv.stats.last_abort_ms = now_ms();
    }
    conn_doom(c, DOOM_LOST);
}

/* ---- response writing ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Mock Status";
    }
}

/* Clears the previous response and sets defaults that follow from the request. */
static void reply_prepare(struct conn *c)
{
    response_clear(&c->resp);
    c->resp.head = new_buf();
    c->resp.end = c->req.keep_alive ? END_KEEP_ALIVE : END_CLOSE;
}

/* length < 0: the body's size is unknown (streams): chunked, or close-delimited for HTTP/1.0 clients,
 * which cannot read chunked encoding. */
static void put_head(struct conn *c, int status, const char *ctype, long long length, const char *extra)
{
    struct response *r = &c->resp;
    if (length < 0 && c->req.http_minor == 0)
        r->end = END_CLOSE;
    r->chunked = length < 0 && c->req.http_minor == 1;
    int ok = evbuffer_add_printf(r->head, "HTTP/1.1 %d %s\r\nServer: mock-upstream\r\nContent-Type: %s\r\n",
                                 status, reason_phrase(status), ctype) >= 0;
    if (length >= 0)
        ok = ok && evbuffer_add_printf(r->head, "Content-Length: %lld\r\n", length) >= 0;
    else if (r->chunked)
        ok = ok && evbuffer_add_printf(r->head, "Transfer-Encoding: chunked\r\n") >= 0;
    if (strcmp(ctype, "text/event-stream") == 0)
        ok = ok && evbuffer_add_printf(r->head, "Cache-Control: no-cache\r\n") >= 0;
    ok = ok && evbuffer_add_printf(r->head, "Connection: %s\r\n%s\r\n",
                                   r->end == END_KEEP_ALIVE ? "keep-alive" : "close", extra ? extra : "") >= 0;
    if (!ok)
        oom();
}

static void reply_raw(struct conn *c, int status, const char *ctype, const char *body, int chunked)
{
    size_t n = strlen(body);
    put_head(c, status, ctype, chunked ? -1 : (long long)n, NULL);
    c->resp.body = new_buf();
    buf_add(c->resp.body, body, n);
}

static void reply_json(struct conn *c, int status, json_t *obj /* stolen */, const char *extra)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s)
        oom();
    size_t n = strlen(s);
    put_head(c, status, "application/json", (long long)n, extra);
    c->resp.body = new_buf();
    buf_add(c->resp.body, s, n);
    free(s);
}

/* Every error body this server sends is built here, in OpenAI's shape. code may be NULL. */
static void reply_error(struct conn *c, int status, const char *message, const char *type, const char *code)
{
    json_t *err = must(json_pack("{s:{s:o,s:s,s:n,s:s?}}", "error", "message", json_string_lossy(message),
                                 "type", type, "param", "code", code));
    reply_json(c, status, err, status == 429 ? "Retry-After: 1\r\n" : NULL);
}

/* Moves all of src to the socket, as one HTTP chunk when the response is chunked. */
static void write_piece(struct conn *c, struct evbuffer *src)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t n = evbuffer_get_length(src);
    if (n == 0)
        return; /* a zero-size chunk would end the body */
    if (c->resp.chunked && evbuffer_add_printf(out, "%zx\r\n", n) < 0)
        oom();
    buf_move(out, src);
    if (c->resp.chunked)
        buf_add(out, "\r\n", 2);
}

static int answer_next_event(struct answer *a, struct evbuffer *dst);

/* Fills dst with the next body piece; returns 0 when the body is exhausted. */
static int next_piece(struct response *r, struct evbuffer *dst)
{
    if (r->gen)
        return answer_next_event(r->gen, dst);
    if (!r->body || evbuffer_get_length(r->body) == 0)
        return 0;
    size_t n = r->split ? r->split : evbuffer_get_length(r->body);
    if (evbuffer_remove_buffer(r->body, dst, n) < 0)
        oom();
    return 1;
}

static int has_more_pieces(const struct response *r)
{
    if (r->gen)
        return r->gen->step < r->gen->npieces + 3 + (size_t)r->gen->include_usage;
    return r->body && evbuffer_get_length(r->body) > 0;
}

/* The response has been fully handed to the kernel, or we ended it on purpose. */
static void response_finished(struct conn *c)
{
    if (c->chat_active) {
        c->chat_active = 0;
        srv.stats.active--;
    }
}

static void response_complete(struct conn *c)
{
    response_finished(c);
    switch (c->resp.end) {
    case END_KEEP_ALIVE:
        response_clear(&c->resp);
        request_clear(&c->req);
        conn_set_state(c, CONN_READING);
        parse_input(c);
        break;
    case END_CLOSE:
        conn_doom(c, DOOM_CLOSE);
        break;
    case END_RESET:
        conn_set_state(c, CONN_RESETTING);
        arm_timer(c, RESET_DELAY_MS);
        break;
    }
}

/* Queues the next body piece; called on entering CONN_WRITING, from the write callback (output drained)
 * and from the pacing timer. */
static void pump(struct conn *c)
{
    struct response *r = &c->resp;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (c->doom != DOOM_NONE || c->state != CONN_WRITING)
        return;
    if (evbuffer_get_length(out) > 0 || evtimer_pending(c->timer, NULL))
        return;
    if (!r->body_done && r->pieces_sent == r->stop_after) {
        if (r->stop == STOP_STALL) {
            conn_set_state(c, CONN_STALLED);
        } else {
            response_finished(c);
            conn_doom(c, DOOM_CLOSE);
        }
        return;
    }
    if (!r->body_done) {
        struct evbuffer *piece = new_buf();
        int more = next_piece(r, piece);
        if (more)
            write_piece(c, piece);
        evbuffer_free(piece);
        if (more) {
            r->pieces_sent++;
            /* Pacing is between pieces: the end of the body is not held back by one more interval. */
            if (r->pace_ms > 0 && has_more_pieces(r))
                arm_timer(c, r->pace_ms);
            return;
        }
        r->body_done = 1;
        if (r->chunked) {
            buf_add(out, "0\r\n\r\n", 5);
            return;
        }
    }
    response_complete(c);
}

static void reply_begin(struct conn *c)
{
    struct response *r = &c->resp;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    conn_set_state(c, CONN_WRITING);
    buf_move(out, r->head);
    if (!r->gen && r->split == 0 && r->stop_after < 0) {
        /* Nothing in a prebuilt body is paced, so it leaves with its headers in one write. */
        if (r->body)
            write_piece(c, r->body);
        if (r->chunked)
            buf_add(out, "0\r\n\r\n", 5);
        r->body_done = 1;
    }
    pump(c);
}

static void reply_start(struct conn *c)
{
    if (c->resp.delay_ms > 0) {
        conn_set_state(c, CONN_DELAYING);
        arm_timer(c, c->resp.delay_ms);
    } else {
        reply_begin(c);
    }
}

/* ---- chat answers ---- */

static long long count_words(const char *s, size_t n)
{
    long long words = 0;
    int in_word = 0;
    for (size_t i = 0; i < n; i++) {
        int space = isspace((unsigned char)s[i]);
        if (!space && !in_word)
            words++;
        in_word = !space;
    }
    return words;
}

/* A message's content is a string or an array of parts; text parts are joined with a space. */
static void content_text(json_t *content, struct strbuf *out)
{
    if (json_is_string(content)) {
        sb_add(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *part;
    int first = 1;
    json_array_foreach(content, i, part) {
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 || !json_is_string(text))
            continue;
        if (!first)
            sb_add(out, " ", 1);
        sb_add(out, json_string_value(text), json_string_length(text));
        first = 0;
    }
}

/* Cuts s into at most `pieces` nearly equal non-empty byte ranges, moving each cut forward past UTF-8
 * continuation bytes so no piece splits a character. Returns pieces + 1 offsets; *count gets the number
 * of ranges. */
static size_t *cut_utf8(const char *s, size_t len, size_t pieces, size_t *count)
{
    size_t *cuts = xmalloc((pieces + 1) * sizeof *cuts);
    size_t k = 0;
    cuts[0] = 0;
    for (size_t i = 1; i <= pieces; i++) {
        size_t b = i == pieces ? len : (size_t)((unsigned long long)len * i / pieces);
        while (b < len && ((unsigned char)s[b] & 0xC0) == 0x80)
            b++;
        if (b > cuts[k])
            cuts[++k] = b;
    }
    *count = k;
    return cuts;
}

static struct answer *answer_new(json_t *body, const struct script *sc)
{
    struct answer *a = xcalloc(1, sizeof *a);
    json_t *model = json_object_get(body, "model");
    a->model = xstrdup(json_is_string(model) ? json_string_value(model) : "");
    a->created = (long long)time(NULL);
    snprintf(a->id, sizeof a->id, "chatcmpl-mock-%llu", ++srv.next_id);
    a->include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));

    struct strbuf last = { 0 };
    sb_add(&last, "", 0);
    size_t i;
    json_t *msg;
    json_array_foreach(json_object_get(body, "messages"), i, msg) {
        struct strbuf text = { 0 };
        sb_add(&text, "", 0);
        content_text(json_object_get(msg, "content"), &text);
        a->prompt_tokens += count_words(text.s, text.len);
        json_t *role = json_object_get(msg, "role");
        if (json_is_string(role) && strcmp(json_string_value(role), "user") == 0) {
            free(last.s);
            last = text;
        } else {
            free(text.s);
        }
    }

    json_t *tools = json_object_get(body, "tools");
    if (sc->fault == FAULT_BIG) {
        a->big = 1;
        a->text = xstrdup("");
        a->npieces = BIG_CONTENT_BYTES / BIG_STREAM_PIECE;
        a->completion_tokens = 1;
    } else if (sc->tool && json_array_size(tools) > 0) {
        json_t *name = json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name");
        a->tool_name = xstrdup(json_is_string(name) ? json_string_value(name) : "tool");
        json_t *args = must(json_pack("{s:s%}", "q", last.s, last.len));
        a->text = json_dumps(args, JSON_COMPACT);
        json_decref(args);
        if (!a->text)
            oom();
        a->text_len = strlen(a->text);
        a->cuts = cut_utf8(a->text, a->text_len, 3, &a->npieces);
        a->completion_tokens = count_words(a->text, a->text_len);
    } else {
        struct strbuf reply = { 0 };
        sb_add(&reply, "echo: ", 6);
        sb_add(&reply, last.s, last.len);
        a->text = reply.s;
        a->text_len = reply.len;
        a->cuts = cut_utf8(a->text, a->text_len, (size_t)sc->chunks, &a->npieces);
        a->completion_tokens = count_words(a->text, a->text_len);
    }
    free(last.s);
    return a;
}

static json_t *answer_usage(const struct answer *a)
{
    return must(json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)a->prompt_tokens, "completion_tokens",
                          (json_int_t)a->completion_tokens, "total_tokens",
                          (json_int_t)(a->prompt_tokens + a->completion_tokens)));
}

static json_t *answer_completion(const struct answer *a)
{
    json_t *message;
    if (a->tool_name)
        message = must(json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s%}}]}", "role", "assistant", "content",
                                 "tool_calls", "id", "call_mock_1", "type", "function", "function", "name",
                                 a->tool_name, "arguments", a->text, a->text_len));
    else if (a->big)
        message = must(json_pack("{s:s,s:s}", "role", "assistant", "content", BIG_MARKER));
    else
        message = must(json_pack("{s:s,s:s%}", "role", "assistant", "content", a->text, a->text_len));
    return must(json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", a->id, "object",
                          "chat.completion", "created", (json_int_t)a->created, "model", a->model, "choices",
                          "index", 0, "message", message, "logprobs", "finish_reason",
                          a->tool_name ? "tool_calls" : "stop", "usage", answer_usage(a)));
}

/* The 10 MiB completion: the JSON around the content is serialised once and the content references
 * big_fill, so a big reply costs a few hundred bytes of chain bookkeeping instead of 10 MiB. */
static struct evbuffer *big_completion_body(const struct answer *a)
{
    static const char needle[] = "\"content\":\"" BIG_MARKER "\"";
    json_t *obj = answer_completion(a);
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s)
        oom();
    /* Inside a JSON string every quote is escaped, so this raw pattern can only be the content field. */
    char *at = strstr(s, needle);
    if (!at) {
        fputs("mock-upstream: big body marker missing\n", stderr);
        abort();
    }
    struct evbuffer *b = new_buf();
    size_t head = (size_t)(at - s) + strlen("\"content\":\"");
    buf_add(b, s, head);
    for (size_t left = BIG_CONTENT_BYTES; left > 0;) {
        size_t n = left < sizeof big_fill ? left : sizeof big_fill;
        if (evbuffer_add_reference(b, big_fill, n, NULL, NULL) != 0)
            oom();
        left -= n;
    }
    const char *tail = at + strlen(needle) - 1; /* from the closing quote on */
    buf_add(b, tail, strlen(tail));
    free(s);
    return b;
}

static void add_event(struct evbuffer *dst, json_t *event /* stolen */)
{
    char *s = json_dumps(event, JSON_COMPACT);
    json_decref(event);
    if (!s)
        oom();
    buf_add(dst, "data: ", 6);
    buf_add(dst, s, strlen(s));
    buf_add(dst, "\n\n", 2);
    free(s);
}

static json_t *chunk_event(const struct answer *a, json_t *delta /* stolen */, const char *finish)
{
    return must(json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s?}]}", "id", a->id, "object",
                          "chat.completion.chunk", "created", (json_int_t)a->created, "model", a->model,
                          "choices", "index", 0, "delta", delta, "logprobs", "finish_reason", finish));
}

/* Events in order: role, content (or tool-call) pieces, finish, usage if asked for, [DONE]. */
static int answer_next_event(struct answer *a, struct evbuffer *dst)
{
    size_t step = a->step, n = a->npieces;
    json_t *delta;
    if (step == 0) {
        if (a->tool_name)
            delta = must(json_pack("{s:s,s:n,s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                                   "tool_calls", "index", 0, "id", "call_mock_1", "type", "function",
                                   "function", "name", a->tool_name, "arguments", ""));
        else
            delta = must(json_pack("{s:s,s:s}", "role", "assistant", "content", ""));
        add_event(dst, chunk_event(a, delta, NULL));
    } else if (step <= n) {
        const char *p = a->big ? big_fill : a->text + a->cuts[step - 1];
        size_t len = a->big ? BIG_STREAM_PIECE : a->cuts[step] - a->cuts[step - 1];
        if (a->tool_name)
            delta = must(json_pack("{s:[{s:i,s:{s:s%}}]}", "tool_calls", "index", 0, "function", "arguments", p,
                                   len));
        else
            delta = must(json_pack("{s:s%}", "content", p, len));
        add_event(dst, chunk_event(a, delta, NULL));
    } else if (step == n + 1) {
        add_event(dst, chunk_event(a, must(json_object()), a->tool_name ? "tool_calls" : "stop"));
    } else if (step == n + 2 && a->include_usage) {
        add_event(dst, must(json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", a->id, "object",
                                      "chat.completion.chunk", "created", (json_int_t)a->created, "model",
                                      a->model, "choices", "usage", answer_usage(a))));
    } else if (step == n + 2 + (size_t)a->include_usage) {
        buf_add(dst, "data: [DONE]\n\n", 14);
    } else {
        return 0;
    }
    a->step++;
    return 1;
}

/* ---- directives ---- */

static int parse_number(const char *s, long min, long max, long *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "base;name=value;..." -> sc. Unknown or malformed directives are errors so a typo in a test fails loudly
 * instead of silently testing the happy path. */
static int parse_script(const char *model, struct script *sc, char *err, size_t errlen)
{
    memset(sc, 0, sizeof *sc);
    sc->chunks = 4;
    char *copy = xstrdup(model);
    char *next = strchr(copy, ';');
    int rc = 0;
    while (next && rc == 0) {
        char *item = next + 1;
        next = strchr(item, ';');
        if (next)
            *next = '\0';
        while (*item == ' ')
            item++;
        size_t len = strlen(item);
        while (len && item[len - 1] == ' ')
            item[--len] = '\0';
        if (!*item)
            continue;
        char *value = strchr(item, '=');
        if (!value) {
            snprintf(err, errlen, "mock: directive '%s' has no value", item);
            rc = -1;
            break;
        }
        *value++ = '\0';
        if (strcmp(item, "latency") == 0)
            rc = parse_number(value, 0, MAX_DIRECTIVE_MS, &sc->latency_ms);
        else if (strcmp(item, "interval") == 0)
            rc = parse_number(value, 0, MAX_DIRECTIVE_MS, &sc->interval_ms);
        else if (strcmp(item, "chunks") == 0)
            rc = parse_number(value, 1, 1000000, &sc->chunks);
        else if (strcmp(item, "status") == 0)
            rc = parse_number(value, 400, 599, &sc->status);
        else if (strcmp(item, "split") == 0)
            rc = parse_number(value, 1, MAX_BODY_BYTES, &sc->split);
        else if (strcmp(item, "tool") == 0) {
            long v;
            rc = parse_number(value, 0, 1, &v);
            sc->tool = (int)v;
        } else if (strcmp(item, "fault") == 0) {
            rc = -1;
            if (strcmp(value, "split") == 0) {
                sc->split = 1; /* the older spelling of split=1 */
                rc = 0;
            }
            for (int f = FAULT_REFUSE; f < FAULT_COUNT && rc != 0; f++)
                if (strcmp(value, fault_names[f]) == 0) {
                    sc->fault = (enum fault)f;
                    rc = 0;
                }
        } else {
            snprintf(err, errlen, "mock: unknown directive '%s'", item);
            rc = -1;
            break;
        }
        if (rc != 0)
            snprintf(err, errlen, "mock: bad value '%s' for directive '%s'", value, item);
    }
    free(copy);
    return rc;
}

/* ---- endpoints ---- */

static int authorized(const struct request *q)
{
    if (!srv.require_key)
        return 1;
    const char *v = json_string_value(json_object_get(q->headers, "authorization"));
    return v && strncasecmp(v, "Bearer ", 7) == 0 && strcmp(v + 7, srv.require_key) == 0;
}

static void reply_unauthorized(struct conn *c)
{
    reply_error(c, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key");
}

static void reply_status_directive(struct conn *c, int status)
{
    char msg[32];
    const char *type = "server_error", *code = "server_error";
    snprintf(msg, sizeof msg, "mock error %d", status);
    if (status == 429)
        type = code = "rate_limit_exceeded";
    else if (status == 401)
        type = "invalid_request_error", code = "invalid_api_key";
    else if (status == 400)
        type = code = "invalid_request_error";
    reply_error(c, status, msg, type, code);
}

static void remember_chat(const struct request *q, json_t *body)
{
    json_decref(srv.last_chat);
    srv.last_chat = must(json_pack("{s:o,s:o,s:O,s:O?}", "method", json_string_lossy(q->method), "path",
                                   json_string_lossy(q->target), "headers", q->headers, "body", body));
}

static void reply_answer(struct conn *c, json_t *body, const struct script *sc, int stream)
{
    struct answer *a = answer_new(body, sc);
    if (stream) {
        put_head(c, 200, "text/event-stream", -1, NULL);
        c->resp.gen = a;
        c->resp.pace_ms = sc->interval_ms;
        return;
    }
    if (a->big) {
        struct evbuffer *b = big_completion_body(a);
        put_head(c, 200, "application/json", (long long)evbuffer_get_length(b), NULL);
        c->resp.body = b;
    } else {
        reply_json(c, 200, answer_completion(a), NULL);
    }
    answer_free(a);
}

static void handle_chat(struct conn *c)
{
    struct request *q = &c->req;
    struct response *r = &c->resp;
    size_t blen = evbuffer_get_length(q->body);
    json_error_t jerr;
    json_t *body = blen ? json_loadb((const char *)evbuffer_pullup(q->body, -1), blen, 0, &jerr) : NULL;
    struct script sc;
    char err[256];

    srv.stats.requests++;
    srv.stats.active++;
    c->chat_active = 1;
    remember_chat(q, body);
    if (!authorized(q)) {
        reply_unauthorized(c);
        goto out;
    }
    if (!json_is_object(body)) {
        reply_error(c, 400, "We could not parse the JSON body of your request.", "invalid_request_error", NULL);
        goto out;
    }
    json_t *model = json_object_get(body, "model");
    if (parse_script(json_is_string(model) ? json_string_value(model) : "", &sc, err, sizeof err) != 0) {
        reply_error(c, 400, err, "invalid_request_error", "invalid_mock_directive");
        goto out;
    }
    r->delay_ms = sc.latency_ms;
    int stream = json_is_true(json_object_get(body, "stream"));
    if (sc.status) {
        reply_status_directive(c, (int)sc.status);
        goto out;
    }
    switch (sc.fault) {
    case FAULT_REFUSE:
        r->end = END_CLOSE;
        break;
    case FAULT_RESET_HEADERS:
        buf_add(r->head, "HTTP/1.1 200 OK\r\nContent-Ty", 27);
        r->end = END_RESET;
        break;
    case FAULT_HTTP_GARBAGE:
        buf_add(r->head, "SSH-2.0-OpenSSH\r\n", 17);
        r->end = END_CLOSE;
        break;
    case FAULT_STALL_HEADERS:
        r->stop_after = 0;
        r->stop = STOP_STALL;
        break;
    case FAULT_GARBAGE:
        if (stream)
            reply_raw(c, 200, "text/event-stream", "garbage garbage\n\n", 1);
        else
            reply_raw(c, 200, "application/json", "this is not json <html>", 0);
        break;
    case FAULT_HTML:
        reply_raw(c, 200, "text/html", "<html>oops</html>", 0);
        break;
    default:
        reply_answer(c, body, &sc, stream);
        break;
    }
    if (sc.split) {
        r->split = (size_t)sc.split;
        r->pace_ms = sc.interval_ms ? sc.interval_ms : SPLIT_PACE_MS;
        if (r->gen) {
            /* Split the bytes of the whole event stream, not the events, so SSE lines break anywhere. */
            r->body = new_buf();
            while (answer_next_event(r->gen, r->body))
                ;
            answer_free(r->gen);
            r->gen = NULL;
        }
    }
    if (sc.fault == FAULT_CLOSE_MIDSTREAM || sc.fault == FAULT_STALL_MIDSTREAM) {
        r->stop = sc.fault == FAULT_CLOSE_MIDSTREAM ? STOP_CLOSE : STOP_STALL;
        if (r->gen || r->split) {
            r->stop_after = 2;
        } else {
            /* A non-stream body has no events: stop after its first half instead. */
            size_t n = r->body ? evbuffer_get_length(r->body) : 0;
            r->split = n / 2 ? n / 2 : 1;
            r->stop_after = 1;
        }
    }
out:
    json_decref(body);
}

static void handle_models(struct conn *c)
{
    c->resp.delay_ms = srv.models_delay_ms;
    if (!authorized(&c->req)) {
        reply_unauthorized(c);
        return;
    }
    reply_json(c, 200,
               must(json_pack("{s:s,s:[{s:s,s:s,s:i,s:s},{s:s,s:s,s:i,s:s}]}", "object", "list", "data", "id",
                              "mock-a", "object", "model", "created", 0, "owned_by", "mock", "id", "mock-b",
                              "object", "model", "created", 0, "owned_by", "mock")),
               NULL);
}

static void handle_stats(struct conn *c)
{
    reply_json(c, 200,
               must(json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "requests", (json_int_t)srv.stats.requests, "active",
                              (json_int_t)srv.stats.active, "aborted", (json_int_t)srv.stats.aborted,
                              "last_abort_ms", (json_int_t)srv.stats.last_abort_ms, "connections_total",
                              (json_int_t)srv.stats.connections_total, "connections_open",
                              (json_int_t)srv.stats.connections_open)),
               NULL);
}

/* active and connections_open describe what is open right now, so a reset leaves them alone. */
static void handle_reset(struct conn *c)
{
    srv.stats.requests = srv.stats.aborted = srv.stats.last_abort_ms = srv.stats.connections_total = 0;
    json_decref(srv.last_chat);
    srv.last_chat = NULL;
    reply_json(c, 200, must(json_pack("{s:b}", "ok", 1)), NULL);
}

static int route_is(const struct request *q, const char *method, const char *path, size_t path_len)
{
    return strcmp(q->method, method) == 0 && strlen(path) == path_len && strncmp(q->target, path, path_len) == 0;
}

static void dispatch(struct conn *c)
{
    const struct request *q = &c->req;
    size_t plen = strcspn(q->target, "?");
    reply_prepare(c);
    if (route_is(q, "POST", "/v1/chat/completions", plen)) {
        handle_chat(c);
    } else if (route_is(q, "GET", "/v1/models", plen)) {
        handle_models(c);
    } else if (route_is(q, "GET", "/debug/last", plen)) {
        reply_json(c, 200,
                   srv.last_chat ? json_incref(srv.last_chat)
                                 : must(json_pack("{s:n,s:n,s:{},s:n}", "method", "path", "headers", "body")),
                   NULL);
    } else if (route_is(q, "GET", "/debug/stats", plen)) {
        handle_stats(c);
    } else if (route_is(q, "POST", "/debug/reset", plen)) {
        handle_reset(c);
    } else {
        struct strbuf msg = { 0 };
        sb_add(&msg, "Invalid URL (", 13);
        sb_add(&msg, q->method, strlen(q->method));
        sb_add(&msg, " ", 1);
        sb_add(&msg, q->target, plen);
        sb_add(&msg, ")", 1);
        reply_error(c, 404, msg.s, "invalid_request_error", NULL);
        free(msg.s);
    }
    reply_start(c);
}

/* ---- request parsing ---- */

static int has_token(const char *list, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed == n && strncasecmp(p, token, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

static int header_add(struct request *q, const char *name, const char *value)
{
    if (strcmp(name, "content-length") == 0) {
        if (!*value || strspn(value, "0123456789") != strlen(value) || strlen(value) > 15)
            return -1;
        long long n = strtoll(value, NULL, 10);
        if (q->content_length >= 0 && q->content_length != n)
            return -1;
        q->content_length = n;
    } else if (strcmp(name, "transfer-encoding") == 0) {
        /* Only chunked can delimit a request body; anything else leaves its length unknown. */
        const char *last = strrchr(value, ',');
        last = last ? last + 1 : value;
        while (*last == ' ' || *last == '\t')
            last++;
        if (strcasecmp(last, "chunked") != 0)
            return -1;
        q->chunked = 1;
    } else if (strcmp(name, "connection") == 0) {
        q->conn_close |= has_token(value, "close");
        q->conn_keep_alive |= has_token(value, "keep-alive");
    } else if (strcmp(name, "expect") == 0) {
        q->expect_continue |= strcasecmp(value, "100-continue") == 0;
    }
    json_t *old = json_object_get(q->headers, name);
    if (old) {
        struct strbuf joined = { 0 };
        sb_add(&joined, json_string_value(old), json_string_length(old));
        sb_add(&joined, ", ", 2);
        sb_add(&joined, value, strlen(value));
        json_object_set_new(q->headers, name, json_string_lossy(joined.s));
        free(joined.s);
    } else if (json_object_set_new(q->headers, name, json_string_lossy(value)) != 0) {
        return -1; /* name is not UTF-8 */
    }
    return 0;
}

/* head is the NUL-terminated request line and headers, ending with the blank line. */
static int parse_head(struct request *q, char *head)
{
    char *eol = strstr(head, "\r\n");
    if (!eol)
        return -1;
    *eol = '\0';
    char *sp1 = strchr(head, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == head || sp2 == sp1 + 1)
        return -1;
    *sp1 = *sp2 = '\0';
    if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
        q->http_minor = 1;
    else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
        q->http_minor = 0;
    else
        return -1;
    q->method = xstrdup(head);
    q->target = xstrdup(sp1 + 1);
    q->headers = must(json_object());
    for (char *line = eol + 2;; line = eol + 2) {
        eol = strstr(line, "\r\n");
        if (!eol)
            return -1;
        if (eol == line)
            break;
        *eol = '\0';
        if (*line == ' ' || *line == '\t')
            return -1; /* obsolete line folding */
        char *colon = strchr(line, ':');
        if (!colon || colon == line)
            return -1;
        *colon = '\0';
        for (char *p = line; *p; p++) {
            if (*p == ' ' || *p == '\t')
                return -1;
            *p = (char)tolower((unsigned char)*p);
        }
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t')
            value++;
        size_t vlen = strlen(value);
        while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
            value[--vlen] = '\0';
        if (header_add(q, line, value) != 0)
            return -1;
    }
    q->keep_alive = q->http_minor == 1 ? !q->conn_close : q->conn_keep_alive && !q->conn_close;
    return 0;
}

static void request_fail(struct conn *c, int status, const char *message)
{
    reply_prepare(c);
    c->resp.end = END_CLOSE;
    reply_error(c, status, message, "invalid_request_error", NULL);
    reply_start(c);
}

/* Moves up to `want` body bytes from the socket buffer; returns how many moved. */
static size_t take_body(struct conn *c, size_t want)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in);
    if (n > want)
        n = want;
    if (n && evbuffer_remove_buffer(in, c->req.body, n) < 0)
        oom();
    return n;
}

static int read_head(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct request *q = &c->req;
    /* RFC 9112 asks servers to skip blank lines before a request line. */
    while (evbuffer_get_length(in) >= 2 && memcmp(evbuffer_pullup(in, 2), "\r\n", 2) == 0)
        evbuffer_drain(in, 2);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) > MAX_HEAD_BYTES)
            request_fail(c, 431, "Request headers are too large.");
        return 0;
    }
    size_t len = (size_t)end.pos + 4;
    if (len > MAX_HEAD_BYTES) {
        request_fail(c, 431, "Request headers are too large.");
        return 0;
    }
    char *head = xmalloc(len + 1);
    if (evbuffer_remove(in, head, len) != (int)len)
        oom();
    head[len] = '\0';
    int bad = memchr(head, '\0', len) != NULL || parse_head(q, head) != 0;
    free(head);
    if (bad) {
        request_fail(c, 400, "Malformed HTTP request.");
        return 0;
    }
    if (q->chunked) {
        q->parse = PARSE_CHUNK_SIZE;
    } else if (q->content_length > MAX_BODY_BYTES) {
        request_fail(c, 413, "Request body is too large.");
        return 0;
    } else {
        q->parse = PARSE_BODY;
    }
    if (q->expect_continue && q->http_minor == 1 && (q->chunked || q->content_length > 0))
        buf_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 1;
}

/* Parses as much of the input as is there; dispatches once a whole request has arrived. */
static void parse_input(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct request *q = &c->req;
    while (c->state == CONN_READING && c->doom == DOOM_NONE) {
        switch (q->parse) {
        case PARSE_HEAD:
            if (!read_head(c))
                return;
            break;
        case PARSE_BODY: {
            long long want = q->content_length < 0 ? 0 : q->content_length;
            size_t have = evbuffer_get_length(q->body);
            take_body(c, (size_t)want - have);
            if ((long long)evbuffer_get_length(q->body) < want)
                return;
            dispatch(c);
            break;
        }
        case PARSE_CHUNK_SIZE:
        case PARSE_TRAILER: {
            size_t n;
            char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
            if (!line) {
                if (evbuffer_get_length(in) > MAX_CHUNK_LINE)
                    request_fail(c, 400, "Malformed chunked request body.");
                return;
            }
            if (q->parse == PARSE_TRAILER) {
                free(line);
                if (n == 0)
                    dispatch(c); /* trailer fields are read and dropped */
                break;
            }
            char *end;
            errno = 0;
            unsigned long long size = strtoull(line, &end, 16);
            int bad = !isxdigit((unsigned char)line[0]) || errno ||
                      (*end && *end != ';' && *end != ' ' && *end != '\t');
            free(line);
            if (bad) {
                request_fail(c, 400, "Malformed chunked request body.");
                return;
            }
            if (size > MAX_BODY_BYTES - evbuffer_get_length(q->body)) {
                request_fail(c, 413, "Request body is too large.");
                return;
            }
            q->chunk_left = size;
            q->parse = size ? PARSE_CHUNK_DATA : PARSE_TRAILER;
            break;
        }
        case PARSE_CHUNK_DATA:
            q->chunk_left -= take_body(c, (size_t)q->chunk_left);
            if (q->chunk_left)
                return;
            q->parse = PARSE_CHUNK_CRLF;
            break;
        case PARSE_CHUNK_CRLF:
            if (evbuffer_get_length(in) < 2)
                return;
            if (memcmp(evbuffer_pullup(in, 2), "\r\n", 2) != 0) {
                request_fail(c, 400, "Malformed chunked request body.");
                return;
            }
            evbuffer_drain(in, 2);
            q->parse = PARSE_CHUNK_SIZE;
            break;
        }
    }
}

/* ---- libevent callbacks ---- */

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->state == CONN_READING)
        parse_input(c);
    else if (evbuffer_get_length(bufferevent_get_input(bev)) > MAX_BODY_BYTES)
        conn_lost(c); /* the peer floods us while we answer: pipelining is not supported */
    conn_settle(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    pump(c);
    conn_settle(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_lost(c);
    conn_settle(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    switch (c->state) {
    case CONN_DELAYING: reply_begin(c); break;
    case CONN_WRITING: pump(c); break;
    case CONN_RESETTING: conn_doom(c, DOOM_RESET); break;
    default: break;
    }
    conn_settle(c);
}

static void accept_cb(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                      void *arg)
{
    (void)listener;
    (void)sa;
    (void)socklen;
    (void)arg;
    /* SSE events are small and each must leave at once, not wait for the previous one's ACK. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn *c = xcalloc(1, sizeof *c);
    c->bev = bufferevent_socket_new(srv.base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(srv.base, timer_cb, c);
    if (!c->bev || !c->timer)
        oom();
    bufferevent_set_max_single_write(c->bev, 1024 * 1024);
    c->req.body = new_buf();
    request_clear(&c->req);
    response_clear(&c->resp);
    c->state = CONN_READING;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
        fputs("mock-upstream: bufferevent_enable failed\n", stderr);
        abort();
    }
    c->next = srv.conns;
    if (srv.conns)
        srv.conns->prev = c;
    srv.conns = c;
    srv.stats.connections_total++;
    srv.stats.connections_open++;
}

static void accept_error_cb(struct evconnlistener *listener, void *arg)
{
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    fprintf(stderr, "mock-upstream: accept: %s\n", evutil_socket_error_to_string(err));
    /* Out of descriptors leaves the listener readable: pause it instead of spinning. */
    evconnlistener_disable(listener);
    struct timeval tv = { 0, 100 * 1000 };
    evtimer_add(srv.accept_retry, &tv);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    evconnlistener_enable(srv.listener);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    event_base_loopexit(srv.base, NULL);
}

/* ---- startup ---- */

static void usage(FILE *to)
{
    fputs("usage: mock-upstream [--port N] [--host ADDR] [--require-key KEY] [--models-delay MS]\n"
          "Prints PORT=<n> once listening. Directives go in the request's model: base;name=value;...\n"
          "  latency=MS chunks=N interval=MS status=CODE tool=1 split=K\n"
          "  fault=refuse|reset_headers|close_midstream|stall_headers|stall_midstream|garbage|\n"
          "        http_garbage|big|html|split\n",
          to);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        perror("mock-upstream: setrlimit(RLIMIT_NOFILE)");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    long port = 0;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        const char *val = argv[++i];
        if (strcmp(opt, "--port") == 0 && parse_number(val, 0, 65535, &port) == 0)
            continue;
        if (strcmp(opt, "--models-delay") == 0 && parse_number(val, 0, MAX_DIRECTIVE_MS, &srv.models_delay_ms) == 0)
            continue;
        if (strcmp(opt, "--host") == 0) {
            host = val;
            continue;
        }
        if (strcmp(opt, "--require-key") == 0) {
            srv.require_key = val;
            continue;
        }
        fprintf(stderr, "mock-upstream: bad option %s %s\n", opt, val);
        usage(stderr);
        return 2;
    }

    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    memset(big_fill, 'a', sizeof big_fill);

    /* libevent 2.1 reads CLOCK_MONOTONIC_COARSE by default, whose 4 ms ticks would stretch interval=1 and
     * split's 1 ms pacing to about 4 ms. */
    struct event_config *cfg = event_config_new();
    if (!cfg || event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0) {
        fputs("mock-upstream: event_config failed\n", stderr);
        return 1;
    }
    srv.base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!srv.base) {
        fputs("mock-upstream: event_base_new failed\n", stderr);
        return 1;
    }
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%ld", port);
    struct addrinfo hints = { 0 }, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "mock-upstream: %s: %s\n", host, gai_strerror(gai));
        return 1;
    }
    srv.listener = evconnlistener_new_bind(srv.base, accept_cb, NULL,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                           4096, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (!srv.listener) {
        fprintf(stderr, "mock-upstream: cannot listen on %s:%ld: %s\n", host, port, strerror(errno));
        return 1;
    }
    evconnlistener_set_error_cb(srv.listener, accept_error_cb);

    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    if (getsockname(evconnlistener_get_fd(srv.listener), (struct sockaddr *)&ss, &sslen) != 0) {
        perror("mock-upstream: getsockname");
        return 1;
    }
    int bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);

    srv.accept_retry = evtimer_new(srv.base, accept_retry_cb, NULL);
    srv.sig_term = evsignal_new(srv.base, SIGTERM, signal_cb, NULL);
    srv.sig_int = evsignal_new(srv.base, SIGINT, signal_cb, NULL);
    if (!srv.accept_retry || !srv.sig_term || !srv.sig_int || evsignal_add(srv.sig_term, NULL) != 0 ||
        evsignal_add(srv.sig_int, NULL) != 0) {
        fputs("mock-upstream: cannot set up events\n", stderr);
        return 1;
    }

    printf("PORT=%d\n", bound);
    fflush(stdout);

    int rc = event_base_dispatch(srv.base) < 0 ? 1 : 0;

    /* Free everything so valgrind runs of the test suite stay quiet. */
    while (srv.conns)
        conn_free(srv.conns);
    evconnlistener_free(srv.listener);
    event_free(srv.accept_retry);
    event_free(srv.sig_term);
    event_free(srv.sig_int);
    json_decref(srv.last_chat);
    event_base_free(srv.base);
    libevent_global_shutdown();
    return rc;
}
