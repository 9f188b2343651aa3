/* OTLP/JSON spans written directly (core/jsonw.h, which escapes every string), int64 values as decimal
 * strings (the protobuf JSON mapping of int64/fixed64), enums as their numbers. Span kinds: 1 INTERNAL, 2 SERVER,
 * 3 CLIENT; status codes: 0 UNSET, 2 ERROR. */
#include "otlp.h"
#include "common.h"
#include "jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SPAN_INTERNAL = 1, SPAN_SERVER = 2, SPAN_CLIENT = 3 };

/* A span being written: its attributes array is open until span_end, which adds the status. */
struct span {
    struct lx_jw w;
    const char *error_type;   /* status ERROR with this message when set */
    const char *error_message;
};

static void attr_str(struct span *sp, const char *key, const char *v)
{
    if (!v)
        return;
    struct lx_jw *w = &sp->w;
    lx_jw_open(w, NULL, '{');
    lx_jw_str(w, "key", key);
    lx_jw_open(w, "value", '{');
    lx_jw_str(w, "stringValue", v);
    lx_jw_close(w, '}');
    lx_jw_close(w, '}');
}

static void attr_int(struct span *sp, const char *key, long long v)
{
    struct lx_jw *w = &sp->w;
    lx_jw_open(w, NULL, '{');
    lx_jw_str(w, "key", key);
    lx_jw_open(w, "value", '{');
    lx_jw_int_str(w, "intValue", v);
    lx_jw_close(w, '}');
    lx_jw_close(w, '}');
}

static void attr_usage(struct span *sp, long input, long output)
{
    attr_int(sp, "gen_ai.usage.input_tokens", input);
    attr_int(sp, "gen_ai.usage.output_tokens", output);
}

static void put_id(struct lx_jw *w, const char *key, const uint8_t *id, size_t n)
{
    char hex[33];
    lx_hex(id, n, hex);
    lx_jw_str(w, key, hex);
}

/* The span's frame (ids, name, kind, times) and its first attributes, into b. */
static void span_begin(struct span *sp, struct lx_buf *b, const struct lx_event *ev, const uint8_t span_id[8],
                       const uint8_t *parent, const char *name, int kind, int64_t start_ns)
{
    const struct lx_trace *t = &ev->origin->trace;
    *sp = (struct span){.w = lx_jw_on(b)};
    struct lx_jw *w = &sp->w;
    lx_jw_open(w, NULL, '{');
    put_id(w, "traceId", t->trace_id, 16);
    put_id(w, "spanId", span_id, 8);
    if (parent)
        put_id(w, "parentSpanId", parent, 8);
    lx_jw_str(w, "name", name);
    lx_jw_int(w, "kind", kind);
    lx_jw_int_str(w, "startTimeUnixNano", start_ns);
    lx_jw_int_str(w, "endTimeUnixNano", ev->time_ns > start_ns ? ev->time_ns : start_ns);
    lx_jw_open(w, "attributes", '[');
    attr_str(sp, "llmux.request_id", ev->origin->request_id);
    attr_str(sp, "llmux.key", ev->origin->key);
}

/* The span failed: error.type, and status ERROR with message. */
static void span_error(struct span *sp, const char *type, const char *message)
{
    attr_str(sp, "error.type", type);
    sp->error_type = type;
    sp->error_message = message ? message : "";
}

static void span_end(struct span *sp)
{
    struct lx_jw *w = &sp->w;
    lx_jw_close(w, ']');
    if (sp->error_type) {
        lx_jw_open(w, "status", '{');
        lx_jw_int(w, "code", 2);
        if (*sp->error_message)
            lx_jw_str(w, "message", sp->error_message);
        lx_jw_close(w, '}');
    }
    lx_jw_close(w, '}');
}

/* The GenAI operation of an endpoint. */
static const char *operation_of_route(const char *route)
{
    if (!route)
        return NULL;
    if (strstr(route, "/chat/") || strstr(route, "/fanout") || strstr(route, "/batch") ||
        strstr(route, "/responses") || strstr(route, "/messages"))
        return "chat";
    if (strstr(route, "/embeddings"))
        return "embeddings";
    return NULL;
}

static void request_span(const struct lx_event *ev, struct lx_buf *b)
{
    const struct lx_ev_request *r = &ev->request;
    const struct lx_trace *t = &ev->origin->trace;
    char name[160];
    bool routed = r->route && strcmp(r->route, "other") != 0;
    snprintf(name, sizeof name, "%s%s%s", r->method ? r->method : "HTTP", routed ? " " : "", routed ? r->route : "");
    struct span sp;
    span_begin(&sp, b, ev, t->span_id, t->has_parent ? t->parent_id : NULL, name, SPAN_SERVER, r->start_ns);
    attr_str(&sp, "http.request.method", r->method);
    if (routed)
        attr_str(&sp, "http.route", r->route);
    attr_str(&sp, "url.path", r->path);
    attr_int(&sp, "http.response.status_code", r->status);
    const char *op = operation_of_route(r->route);
    attr_str(&sp, "gen_ai.operation.name", op);
    attr_str(&sp, "gen_ai.request.model", ev->origin->model);
    if (op || r->prompt_tokens || r->completion_tokens)
        attr_usage(&sp, r->prompt_tokens, r->completion_tokens);
    attr_str(&sp, "llmux.answered_by", r->answered_by);
    attr_int(&sp, "llmux.retries", r->retries);
    attr_int(&sp, "llmux.fallbacks", r->fallbacks);
    char st[16];
    snprintf(st, sizeof st, "%d", r->status);
    if (ev->type == LX_EV_REQUEST_CANCELLED) {
        attr_str(&sp, "llmux.outcome", "cancelled");
    } else if (ev->type == LX_EV_REQUEST_FAILED) {
        const char *type = r->error ? r->error : st;
        if (r->status >= 500 || r->status < 400) /* a server span's 4xx is the client's error, not ours */
            span_error(&sp, type, type);
        else
            attr_str(&sp, "error.type", type);
    }
    span_end(&sp);
}

static void call_span(const struct lx_event *ev, struct lx_buf *b)
{
    const struct lx_ev_call *c = &ev->call;
    char name[200];
    snprintf(name, sizeof name, "%s %s", c->operation, c->model);
    struct span sp;
    span_begin(&sp, b, ev, c->span_id, ev->origin->trace.span_id, name, SPAN_CLIENT, c->start_ns);
    attr_str(&sp, "gen_ai.operation.name", c->operation);
    attr_str(&sp, "gen_ai.provider.name", c->provider_type);
    attr_str(&sp, "gen_ai.request.model", c->model);
    attr_str(&sp, "gen_ai.response.model", c->response_model);
    if (c->won)
        attr_usage(&sp, c->prompt_tokens, c->completion_tokens);
    attr_str(&sp, "llmux.provider", c->provider);
    attr_str(&sp, "llmux.target", c->label);
    attr_int(&sp, "llmux.lane", c->lane);
    attr_int(&sp, "llmux.fallback_index", c->target);
    attr_int(&sp, "llmux.attempt", c->attempt);
    attr_str(&sp, "llmux.outcome", c->outcome);
    char st[16];
    snprintf(st, sizeof st, "%d", c->status);
    if (strcmp(c->outcome, "error") == 0) {
        span_error(&sp, c->error ? c->error : st, c->error_type);
        attr_int(&sp, "http.response.status_code", c->status);
    }
    span_end(&sp);
}

static void tool_span(const struct lx_event *ev, struct lx_buf *b)
{
    const struct lx_ev_tool *t = &ev->tool;
    char name[200];
    snprintf(name, sizeof name, "execute_tool %s", t->tool ? t->tool : "");
    struct span sp;
    span_begin(&sp, b, ev, t->span_id, ev->origin->trace.span_id, name, SPAN_INTERNAL, t->start_ns);
    attr_str(&sp, "gen_ai.operation.name", "execute_tool");
    attr_str(&sp, "gen_ai.tool.name", t->tool);
    attr_str(&sp, "llmux.mcp_server", t->server);
    attr_str(&sp, "llmux.outcome", t->outcome);
    if (t->outcome && strcmp(t->outcome, "ok") != 0)
        span_error(&sp, t->outcome, t->error);
    span_end(&sp);
}

char *lx_otlp_span(const struct lx_event *ev)
{
    if (!ev->origin || !ev->origin->trace.sampled)
        return NULL;
    struct lx_buf b = {0};
    switch (ev->type) {
    case LX_EV_REQUEST_FINISHED:
    case LX_EV_REQUEST_FAILED:
    case LX_EV_REQUEST_CANCELLED: request_span(ev, &b); break;
    case LX_EV_CALL_FINISHED: call_span(ev, &b); break;
    case LX_EV_TOOL_FINISHED: tool_span(ev, &b); break;
    default: return NULL;
    }
    return lx_buf_steal(&b, NULL);
}

void lx_otlp_request(struct lx_buf *b, const char *service_name, char *const *spans, size_t n)
{
    struct lx_buf q = {0};
    struct lx_jw w = lx_jw_on(&q);
    lx_jw_str(&w, NULL, service_name);
    char *name = lx_buf_steal(&q, NULL);
    lx_buf_printf(b,
                  "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                  "{\"key\":\"service.name\",\"value\":{\"stringValue\":%s}},"
                  "{\"key\":\"service.version\",\"value\":{\"stringValue\":\"%s\"}},"
                  "{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"llmux\"}}]},"
                  "\"scopeSpans\":[{\"scope\":{\"name\":\"llmux\",\"version\":\"%s\"},\"spans\":[",
                  name, LX_VERSION, LX_VERSION);
    free(name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            lx_buf_append(b, ",", 1);
        lx_buf_puts(b, spans[i]);
    }
    lx_buf_puts(b, "]}]}]}");
}
