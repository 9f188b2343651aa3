/* mock_upstream.c: the HTTP/1.1 core of a scriptable upstream for llmux's integration tests and benchmarks.
 * HTTP is parsed and written by hand on libevent bufferevents so faults can be injected at byte level; the
 * model endpoints (OpenAI, Anthropic and Ollama dialects, see call.c) script each reply from directives in the
 * request's model string ("gpt-x;latency=100;fault=stall_midstream"). */

/*
 * Rules of the mock (every file follows them):
 * - One thread, one event loop. Waiting is always a libevent timer, never a sleep.
 * - A connection is never freed in the middle of a call chain: code marks it (conn_doom) and the libevent
 *   callback that started the work frees it on the way out (conn_settle), so nested calls such as
 *   "response done -> parse the next request -> answer it" never touch freed memory.
 * - A response body goes out one piece per write: the next piece is queued only once the output buffer
 *   has drained to the kernel (write callback) and the pacing timer, if any, has fired. Streams are
 *   event sources (mock.h) so each event is one piece.
 * - Out of memory aborts (xmalloc, must): a mock that half-works under memory pressure would make test
 *   failures lie about llmux.
 */

#include "mock.h"

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
#include <unistd.h>

#include <event2/listener.h>
#include <event2/util.h>

#define MAX_HEAD_BYTES (64 * 1024)
#define MAX_CHUNK_LINE 4096
/* Long enough for the partial headers to reach the peer before the RST overtakes them. */
#define RESET_DELAY_MS 10

/* ---- connection and server state ---- */

static const char *const state_names[CONN_STATE_COUNT] = {
    [CONN_READING] = "reading",   [CONN_DELAYING] = "delaying",   [CONN_WRITING] = "writing",
    [CONN_STALLED] = "stalled",   [CONN_RESETTING] = "resetting",
};

struct server srv;

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

int source_next(struct event_source *src, struct evbuffer *dst)
{
    if (src->step >= src->count)
        return 0;
    src->ops->emit(src, src->step++, dst);
    return 1;
}

void source_free(struct event_source *src)
{
    if (src)
        src->ops->free(src);
}

static void response_clear(struct response *r)
{
    if (r->head)
        evbuffer_free(r->head);
    if (r->body)
        evbuffer_free(r->body);
    source_free(r->gen);
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
    case 402: return "Payment Required";
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
    case 529: return "Overloaded";
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
void put_head(struct conn *c, int status, const char *ctype, long long length, const char *extra)
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
    if (strncmp(ctype, "text/event-stream", 17) == 0)
        ok = ok && evbuffer_add_printf(r->head, "Cache-Control: no-cache\r\n") >= 0;
    if (r->retry_after_s > 0 && status >= 400)
        ok = ok && evbuffer_add_printf(r->head, "Retry-After: %ld\r\n", r->retry_after_s) >= 0;
    ok = ok && evbuffer_add_printf(r->head, "Connection: %s\r\n%s\r\n",
                                   r->end == END_KEEP_ALIVE ? "keep-alive" : "close", extra ? extra : "") >= 0;
    if (!ok)
        oom();
}

void reply_raw(struct conn *c, int status, const char *ctype, const char *body, int chunked)
{
    size_t n = strlen(body);
    put_head(c, status, ctype, chunked ? -1 : (long long)n, NULL);
    c->resp.body = new_buf();
    buf_add(c->resp.body, body, n);
}

void reply_json_as(struct conn *c, int status, const char *ctype, json_t *obj /* stolen */, size_t flags,
                   const char *extra)
{
    char *s = dump_json(obj, flags);
    json_decref(obj);
    size_t n = strlen(s);
    put_head(c, status, ctype, (long long)n, extra);
    c->resp.body = new_buf();
    buf_add(c->resp.body, s, n);
    free(s);
}

void reply_json(struct conn *c, int status, json_t *obj /* stolen */, const char *extra)
{
    reply_json_as(c, status, "application/json", obj, JSON_COMPACT, extra);
}

/* Every OpenAI-shaped error body is built here: the OpenAI dialect's and the HTTP-level failures (bad
 * request framing, unknown routes) of every dialect. The Anthropic and Ollama dialects build their own. */
void reply_error(struct conn *c, int status, const char *message, const char *type, const char *code)
{
    json_t *err = must(json_pack("{s:{s:o,s:s,s:n,s:s?}}", "error", "message", json_string_lossy(message),
                                 "type", type, "param", "code", code));
    reply_json(c, status, err, status == 429 && c->resp.retry_after_s <= 0 ? "Retry-After: 1\r\n" : NULL);
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

/* Fills dst with the next body piece; returns 0 when the body is exhausted. */
static int next_piece(struct response *r, struct evbuffer *dst)
{
    if (r->gen)
        return source_next(r->gen, dst);
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
        return r->gen->step < r->gen->count;
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

static void handle_stats(struct conn *c)
{
    reply_json(c, 200,
               must(json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "requests", (json_int_t)srv.stats.requests, "active",
                              (json_int_t)srv.stats.active, "max_active", (json_int_t)srv.stats.max_active,
                              "aborted", (json_int_t)srv.stats.aborted,
                              "last_abort_ms", (json_int_t)srv.stats.last_abort_ms, "connections_total",
                              (json_int_t)srv.stats.connections_total, "connections_open",
                              (json_int_t)srv.stats.connections_open)),
               NULL);
}

/* active and connections_open describe what is open right now, so a reset leaves them alone (and the
 * peak starts again from what is active). */
static void handle_reset(struct conn *c)
{
    srv.stats.requests = srv.stats.aborted = srv.stats.last_abort_ms = srv.stats.connections_total = 0;
    srv.stats.max_active = srv.stats.active;
    json_decref(srv.last_call);
    srv.last_call = NULL;
    json_decref(srv.fail_counts);
    srv.fail_counts = NULL;
    reply_json(c, 200, must(json_pack("{s:b}", "ok", 1)), NULL);
}

static void handle_last(struct conn *c)
{
    reply_json(c, 200,
               srv.last_call ? json_incref(srv.last_call)
                             : must(json_pack("{s:n,s:n,s:{},s:n}", "method", "path", "headers", "body")),
               NULL);
}

static const struct route {
    const char *method, *path;
    const struct dialect *call;      /* a model endpoint: answered by call_handle in this dialect */
    void (*handler)(struct conn *c); /* any other endpoint */
} routes[] = {
    { "POST", "/v1/chat/completions", &openai_chat_dialect, NULL },
    { "POST", "/v1/embeddings", &openai_embeddings_dialect, NULL },
    { "GET", "/v1/models", NULL, openai_models },
    { "POST", "/v1/messages", &anthropic_messages_dialect, NULL },
    { "POST", "/v1/messages/count_tokens", &anthropic_count_dialect, NULL },
    { "POST", "/api/chat", &ollama_chat_dialect, NULL },
    { "POST", "/api/embed", &ollama_embed_dialect, NULL },
    { "GET", "/api/tags", NULL, ollama_tags },
    { "GET", "/debug/last", NULL, handle_last },
    { "GET", "/debug/stats", NULL, handle_stats },
    { "POST", "/debug/reset", NULL, handle_reset },
};

static void dispatch(struct conn *c)
{
    const struct request *q = &c->req;
    size_t plen = strcspn(q->target, "?");
    reply_prepare(c);
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *rt = &routes[i];
        if (strcmp(q->method, rt->method) == 0 && strlen(rt->path) == plen && strncmp(q->target, rt->path, plen) == 0) {
            if (rt->call)
                call_handle(c, rt->call);
            else
                rt->handler(c);
            reply_start(c);
            return;
        }
    }
    struct strbuf msg = { 0 };
    sb_add(&msg, "Invalid URL (", 13);
    sb_add(&msg, q->method, strlen(q->method));
    sb_add(&msg, " ", 1);
    sb_add(&msg, q->target, plen);
    sb_add(&msg, ")", 1);
    reply_error(c, 404, msg.s, "invalid_request_error", NULL);
    free(msg.s);
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
          "Prints PORT=<n> once listening. --require-key checks Authorization: Bearer KEY (OpenAI, Ollama)\n"
          "and x-api-key: KEY (Anthropic).\n"
          "Endpoints: POST /v1/chat/completions, /v1/embeddings, /v1/messages, /v1/messages/count_tokens,\n"
          "  /api/chat, /api/embed;\n"
          "  GET /v1/models, /api/tags, /debug/last, /debug/stats; POST /debug/reset\n"
          "Directives go in the request's model: base;name=value;...\n"
          "  chats:      latency=MS chunks=N interval=MS status=CODE tool=N (0-3 calls) split=K fault=F\n"
          "              sparse=1 (/v1/chat/completions only: no id, created, object or usage)\n"
          "              content_bytes=N (/v1/chat/completions only: the content is N bytes of 'a')\n"
          "              calls=A+B (/v1/chat/completions only: call the tools named A and B, or named\n"
          "              SERVER__A, in one turn, arguments made from their schemas: numbers 2, 3, ...;\n"
          "              after rounds=N such turns (default 1) answer \"tool said: R1 | R2\";\n"
          "              narrate=1: such a turn also has the text \"calling A+B (round N)\")\n"
          "  embeddings: latency=MS interval=MS status=CODE split=K fault=F\n"
          "  both:       fail=N (only the first N calls with this model string get status (503 by\n"
          "              default) or fault; later ones answer), retry_after=S (errors carry Retry-After)\n"
          "  OpenAI:     ok_error=NAME: HTTP 200 whose body (or a stream's first event) is OpenAI's error\n"
          "              object NAME: insufficient_quota|rate_limit_exceeded|invalid_api_key|model_not_found|\n"
          "              context_length_exceeded|server_error|mystery (a type and code OpenAI does not use)\n"
          "  F, everywhere: refuse|reset_headers|close_midstream|stall_headers|stall_midstream|garbage|\n"
          "                 http_garbage|html|split\n"
          "  F, per dialect: big (/v1/chat/completions), stream_error (/v1/messages),\n"
          "                  midstream_error (/api/chat); hold_open (the three chats, streams only: every\n"
          "                  event is sent, then the body is never ended and the connection stays open)\n",
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
    json_decref(srv.last_call);
    json_decref(srv.fail_counts);
    event_base_free(srv.base);
    libevent_global_shutdown();
    return rc;
}
