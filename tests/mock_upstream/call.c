/* call.c: what every model endpoint of the mock shares, whatever its dialect: the directives read from the
 * request's model string, the stats and /debug/last bookkeeping, the key check, and the faults that act on
 * the HTTP exchange rather than on the dialect's bytes. */

#include "mock.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const fault_names[FAULT_COUNT] = {
    [FAULT_NONE] = "none", [FAULT_REFUSE] = "refuse", [FAULT_RESET_HEADERS] = "reset_headers",
    [FAULT_CLOSE_MIDSTREAM] = "close_midstream", [FAULT_STALL_HEADERS] = "stall_headers",
    [FAULT_STALL_MIDSTREAM] = "stall_midstream", [FAULT_GARBAGE] = "garbage",
    [FAULT_HTTP_GARBAGE] = "http_garbage", [FAULT_BIG] = "big", [FAULT_HTML] = "html",
    [FAULT_STREAM_ERROR] = "stream_error", [FAULT_MIDSTREAM_ERROR] = "midstream_error",
    [FAULT_HOLD_OPEN] = "hold_open",
};

static const struct {
    const char *name;
    enum directive bit;
} directive_names[] = {
    { "latency", DIRECTIVE_LATENCY }, { "interval", DIRECTIVE_INTERVAL }, { "chunks", DIRECTIVE_CHUNKS },
    { "status", DIRECTIVE_STATUS },   { "split", DIRECTIVE_SPLIT },       { "tool", DIRECTIVE_TOOL },
    { "fault", DIRECTIVE_FAULT },     { "sparse", DIRECTIVE_SPARSE },     { "fail", DIRECTIVE_FAIL },
    { "retry_after", DIRECTIVE_RETRY_AFTER }, { "ok_error", DIRECTIVE_OK_ERROR },
    { "content_bytes", DIRECTIVE_CONTENT_BYTES }, { "calls", DIRECTIVE_CALLS }, { "rounds", DIRECTIVE_ROUNDS },
    { "narrate", DIRECTIVE_NARRATE },
};

int parse_number(const char *s, long min, long max, long *out)
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

static int parse_flag(const char *s, int *out)
{
    long v;
    if (parse_number(s, 0, 1, &v) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_directive(const char *item, const char *value, const struct dialect *d, struct script *sc,
                           char *err, size_t errlen)
{
    enum directive bit = 0;
    for (size_t i = 0; i < sizeof directive_names / sizeof directive_names[0]; i++)
        if (strcmp(item, directive_names[i].name) == 0)
            bit = directive_names[i].bit;
    if (!bit) {
        snprintf(err, errlen, "mock: unknown directive '%s'", item);
        return -1;
    }
    if (!(d->directives & bit)) {
        snprintf(err, errlen, "mock: directive '%s' does not apply to %s", item, d->name);
        return -1;
    }
    int rc = -1;
    switch (bit) {
    case DIRECTIVE_LATENCY: rc = parse_number(value, 0, MAX_DIRECTIVE_MS, &sc->latency_ms); break;
    case DIRECTIVE_INTERVAL: rc = parse_number(value, 0, MAX_DIRECTIVE_MS, &sc->interval_ms); break;
    case DIRECTIVE_CHUNKS: rc = parse_number(value, 1, 1000000, &sc->chunks); break;
    case DIRECTIVE_STATUS: rc = parse_number(value, 400, 599, &sc->status); break;
    case DIRECTIVE_SPLIT: rc = parse_number(value, 1, MAX_BODY_BYTES, &sc->split); break;
    case DIRECTIVE_TOOL: {
        long n;
        rc = parse_number(value, 0, MAX_TOOL_CALLS, &n);
        sc->tool = (int)n;
        break;
    }
    case DIRECTIVE_SPARSE: rc = parse_flag(value, &sc->sparse); break;
    case DIRECTIVE_NARRATE: rc = parse_flag(value, &sc->narrate); break;
    case DIRECTIVE_FAIL: rc = parse_number(value, 1, 1000000, &sc->fail); break;
    case DIRECTIVE_RETRY_AFTER: rc = parse_number(value, 1, 86400, &sc->retry_after); break;
    case DIRECTIVE_CONTENT_BYTES: rc = parse_number(value, 1, MAX_BODY_BYTES, &sc->content_bytes); break;
    case DIRECTIVE_ROUNDS: rc = parse_number(value, 1, 100, &sc->rounds); break;
    case DIRECTIVE_CALLS:
        rc = *value && strlen(value) < sizeof sc->calls &&
                     strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.+") == strlen(value)
                 ? 0
                 : -1;
        if (rc == 0)
            strcpy(sc->calls, value);
        break;
    case DIRECTIVE_OK_ERROR:
        /* The dialect knows the names (an unknown one is its 400); here only the shape is checked. */
        rc = *value && strlen(value) < sizeof sc->ok_error && strspn(value, "abcdefghijklmnopqrstuvwxyz_") == strlen(value)
                 ? 0
                 : -1;
        if (rc == 0)
            strcpy(sc->ok_error, value);
        break;
    case DIRECTIVE_FAULT:
        if (strcmp(value, "split") == 0) {
            sc->split = 1; /* the older spelling of split=1 */
            return 0;
        }
        for (int f = FAULT_REFUSE; f < FAULT_COUNT; f++) {
            if (strcmp(value, fault_names[f]) != 0)
                continue;
            if (!(d->faults & (1u << f))) {
                snprintf(err, errlen, "mock: fault '%s' does not apply to %s", value, d->name);
                return -1;
            }
            sc->fault = (enum fault)f;
            return 0;
        }
        break;
    }
    if (rc != 0)
        snprintf(err, errlen, "mock: bad value '%s' for directive '%s'", value, item);
    return rc;
}

/* "base;name=value;..." -> sc. Unknown, malformed or inapplicable directives are errors so a typo in a test
 * fails loudly instead of silently testing the happy path. */
static int parse_script(const char *model, const struct dialect *d, struct script *sc, char *err, size_t errlen)
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
        rc = parse_directive(item, value, d, sc, err, errlen);
    }
    free(copy);
    return rc;
}

const char *header_value(const struct request *q, const char *name)
{
    return json_string_value(json_object_get(q->headers, name));
}

int bearer_authorized(const struct request *q)
{
    const char *v = header_value(q, "authorization");
    return v && strncasecmp(v, "Bearer ", 7) == 0 && strcmp(v + 7, srv.require_key) == 0;
}

unsigned long long next_id(void)
{
    return ++srv.next_id;
}

static void remember_call(const struct request *q, json_t *body)
{
    json_decref(srv.last_call);
    srv.last_call = must(json_pack("{s:o,s:o,s:O,s:O?}", "method", json_string_lossy(q->method), "path",
                                   json_string_lossy(q->target), "headers", q->headers, "body", body));
}

/* Faults that replace the whole answer; returns 0 when sc asks for none of them. */
static int transport_fault(struct conn *c, const struct dialect *d, const struct script *sc, int stream)
{
    struct response *r = &c->resp;
    switch (sc->fault) {
    case FAULT_REFUSE:
        r->end = END_CLOSE;
        return 1;
    case FAULT_RESET_HEADERS:
        buf_add(r->head, "HTTP/1.1 200 OK\r\nContent-Ty", 27);
        r->end = END_RESET;
        return 1;
    case FAULT_HTTP_GARBAGE:
        buf_add(r->head, "SSH-2.0-OpenSSH\r\n", 17);
        r->end = END_CLOSE;
        return 1;
    case FAULT_STALL_HEADERS:
        r->stop_after = 0;
        r->stop = STOP_STALL;
        return 1;
    case FAULT_GARBAGE:
        if (stream && d->stream_type)
            reply_raw(c, 200, d->stream_type, d->stream_garbage, 1);
        else
            reply_raw(c, 200, "application/json", "this is not json <html>", 0);
        return 1;
    case FAULT_HTML:
        reply_raw(c, 200, "text/html", "<html>oops</html>", 0);
        return 1;
    default:
        return 0;
    }
}

/* split= and the midstream faults act on whatever body the dialect queued. */
static void shape_body(struct response *r, const struct script *sc)
{
    if (sc->split) {
        r->split = (size_t)sc->split;
        r->pace_ms = sc->interval_ms ? sc->interval_ms : SPLIT_PACE_MS;
        if (r->gen) {
            /* Split the bytes of the whole stream, not its events, so lines break anywhere. */
            r->body = new_buf();
            while (source_next(r->gen, r->body))
                ;
            source_free(r->gen);
            r->gen = NULL;
        }
    }
    if (sc->fault == FAULT_HOLD_OPEN && (r->gen || r->split)) {
        /* Every event goes out, then the body stays open (no last chunk, no close) until the peer leaves:
         * a server that forgets to end the response after its stream's own end marker. A non-stream body
         * has a Content-Length, which ends it whatever the connection does. */
        r->stop = STOP_STALL;
        if (r->gen) {
            r->stop_after = (long)r->gen->count;
        } else {
            size_t n = r->body ? evbuffer_get_length(r->body) : 0;
            r->stop_after = (long)((n + r->split - 1) / r->split);
        }
    }
    if (sc->fault == FAULT_CLOSE_MIDSTREAM || sc->fault == FAULT_STALL_MIDSTREAM) {
        r->stop = sc->fault == FAULT_CLOSE_MIDSTREAM ? STOP_CLOSE : STOP_STALL;
        if (r->gen || r->split) {
            r->stop_after = 2;
        } else {
            /* A non-stream body has no events: stop after its first half instead. */
            size_t n = r->body ? evbuffer_get_length(r->body) : 0;
            r->split = n / 2 ? n / 2 : 1;
            r->stop_after = 1;
        }
    }
}

/* fail=N: counts the calls made with this exact model string (directives included) and says whether this one
 * is among the first N, which get the script's status (503 when none is given) or fault; later calls answer
 * normally. This scripts "fails twice, then works" for retry and fallback tests. */
static int fail_this_call(const char *model, struct script *sc)
{
    if (!srv.fail_counts)
        srv.fail_counts = must(json_object());
    json_t *n = json_object_get(srv.fail_counts, model);
    json_int_t seen = (n ? json_integer_value(n) : 0) + 1;
    if (json_object_set_new(srv.fail_counts, model, must(json_integer(seen))) != 0)
        oom();
    if (seen > sc->fail)
        return 0;
    if (!sc->status && sc->fault == FAULT_NONE)
        sc->status = 503;
    return 1;
}

/* Answers one model call; the caller has run reply_prepare and starts the reply afterwards. */
void call_handle(struct conn *c, const struct dialect *d)
{
    struct request *q = &c->req;
    size_t blen = evbuffer_get_length(q->body);
    json_t *body = blen ? json_loadb((const char *)evbuffer_pullup(q->body, -1), blen, 0, NULL) : NULL;
    struct script sc;
    char err[256];

    srv.stats.requests++;
    srv.stats.active++;
    if (srv.stats.active > srv.stats.max_active)
        srv.stats.max_active = srv.stats.active;
    c->chat_active = 1;
    remember_call(q, body);
    if (srv.require_key && !d->authorized(q)) {
        d->error(c, 401, CALL_ERR_AUTH, NULL);
        goto out;
    }
    if (!json_is_object(body)) {
        d->error(c, 400, CALL_ERR_JSON, NULL);
        goto out;
    }
    json_t *model = json_object_get(body, "model");
    if (parse_script(json_is_string(model) ? json_string_value(model) : "", d, &sc, err, sizeof err) != 0) {
        d->error(c, 400, CALL_ERR_DIRECTIVE, err);
        goto out;
    }
    c->resp.delay_ms = sc.latency_ms;
    if (sc.fail && !fail_this_call(json_string_value(model), &sc))
        sc.status = 0, sc.fault = FAULT_NONE;
    c->resp.retry_after_s = sc.retry_after;
    int stream = d->stream_type && d->wants_stream(body);
    if (sc.status) {
        d->error(c, (int)sc.status, CALL_ERR_STATUS, NULL);
        goto out;
    }
    if (!transport_fault(c, d, &sc, stream))
        d->answer(c, body, &sc, stream);
    shape_body(&c->resp, &sc);
out:
    json_decref(body);
}
