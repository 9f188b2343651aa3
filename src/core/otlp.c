/* OTLP/JSON spans built with jansson (so every string is escaped), int64 values as decimal strings (the
 * protobuf JSON mapping of int64/fixed64), enums as their numbers. Span kinds: 1 INTERNAL, 2 SERVER,
 * 3 CLIENT; status codes: 0 UNSET, 2 ERROR. */
#include "otlp.h"
#include "common.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SPAN_INTERNAL = 1, SPAN_SERVER = 2, SPAN_CLIENT = 3 };

static void attr(json_t *attrs, const char *key, json_t *value /* stolen */)
{
    json_array_append_new(attrs, json_pack("{s:s,s:o}", "key", key, "value", value));
}

static void attr_str(json_t *attrs, const char *key, const char *v)
{
    json_t *s = v ? json_string(v) : NULL;
    if (s)
        attr(attrs, key, json_pack("{s:o}", "stringValue", s));
}

static void attr_int(json_t *attrs, const char *key, long long v)
{
    char n[24];
    snprintf(n, sizeof n, "%lld", v);
    attr(attrs, key, json_pack("{s:s}", "intValue", n));
}

static void put_id(json_t *span, const char *key, const uint8_t *id, size_t n)
{
    char hex[33];
    lx_hex(id, n, hex);
    json_object_set_new(span, key, json_string(hex));
}

static void put_nanos(json_t *span, const char *key, int64_t ns)
{
    char n[24];
    snprintf(n, sizeof n, "%lld", (long long)ns);
    json_object_set_new(span, key, json_string(n));
}

/* The span's frame: ids, name, kind, times; its attributes array is returned (borrowed). */
static json_t *span_new(const struct lx_event *ev, const uint8_t span_id[8], const uint8_t *parent,
                        const char *name, int kind, int64_t start_ns, json_t **attrs)
{
    const struct lx_trace *t = &ev->origin->trace;
    json_t *s = json_object();
    put_id(s, "traceId", t->trace_id, 16);
    put_id(s, "spanId", span_id, 8);
    if (parent)
        put_id(s, "parentSpanId", parent, 8);
    json_t *n = json_string(name);
    json_object_set_new(s, "name", n ? n : json_string("(not UTF-8)"));
    json_object_set_new(s, "kind", json_integer(kind));
    put_nanos(s, "startTimeUnixNano", start_ns);
    put_nanos(s, "endTimeUnixNano", ev->time_ns > start_ns ? ev->time_ns : start_ns);
    *attrs = json_array();
    json_object_set_new(s, "attributes", *attrs);
    attr_str(*attrs, "llmux.request_id", ev->origin->request_id);
    attr_str(*attrs, "llmux.key", ev->origin->key);
    return s;
}

static void set_error(json_t *span, json_t *attrs, const char *type, const char *message)
{
    attr_str(attrs, "error.type", type);
    json_t *st = json_pack("{s:i}", "code", 2);
    json_t *m = message ? json_string(message) : NULL;
    if (m)
        json_object_set_new(st, "message", m);
    json_object_set_new(span, "status", st);
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

static json_t *request_span(const struct lx_event *ev)
{
    const struct lx_ev_request *r = &ev->request;
    const struct lx_trace *t = &ev->origin->trace;
    char name[160];
    bool routed = r->route && strcmp(r->route, "other") != 0;
    snprintf(name, sizeof name, "%s%s%s", r->method ? r->method : "HTTP", routed ? " " : "", routed ? r->route : "");
    json_t *attrs;
    json_t *s = span_new(ev, t->span_id, t->has_parent ? t->parent_id : NULL, name, SPAN_SERVER, r->start_ns, &attrs);
    attr_str(attrs, "http.request.method", r->method);
    if (routed)
        attr_str(attrs, "http.route", r->route);
    attr_str(attrs, "url.path", r->path);
    attr_int(attrs, "http.response.status_code", r->status);
    const char *op = operation_of_route(r->route);
    if (op)
        attr_str(attrs, "gen_ai.operation.name", op);
    attr_str(attrs, "gen_ai.request.model", ev->origin->model);
    if (op || r->prompt_tokens || r->completion_tokens) {
        attr_int(attrs, "gen_ai.usage.input_tokens", r->prompt_tokens);
        attr_int(attrs, "gen_ai.usage.output_tokens", r->completion_tokens);
    }
    attr_str(attrs, "llmux.answered_by", r->answered_by);
    attr_int(attrs, "llmux.retries", r->retries);
    attr_int(attrs, "llmux.fallbacks", r->fallbacks);
    if (ev->type == LX_EV_REQUEST_CANCELLED) {
        attr_str(attrs, "llmux.outcome", "cancelled");
    } else if (ev->type == LX_EV_REQUEST_FAILED) {
        char st[16];
        snprintf(st, sizeof st, "%d", r->status);
        const char *type = r->error ? r->error : st;
        if (r->status >= 500 || r->status < 400) /* a server span's 4xx is the client's error, not ours */
            set_error(s, attrs, type, type);
        else
            attr_str(attrs, "error.type", type);
    }
    return s;
}

static json_t *call_span(const struct lx_event *ev)
{
    const struct lx_ev_call *c = &ev->call;
    char name[200];
    snprintf(name, sizeof name, "%s %s", c->operation, c->model);
    json_t *attrs;
    json_t *s = span_new(ev, c->span_id, ev->origin->trace.span_id, name, SPAN_CLIENT, c->start_ns, &attrs);
    attr_str(attrs, "gen_ai.operation.name", c->operation);
    attr_str(attrs, "gen_ai.provider.name", c->provider_type);
    attr_str(attrs, "gen_ai.request.model", c->model);
    attr_str(attrs, "gen_ai.response.model", c->response_model);
    if (c->won) {
        attr_int(attrs, "gen_ai.usage.input_tokens", c->prompt_tokens);
        attr_int(attrs, "gen_ai.usage.output_tokens", c->completion_tokens);
    }
    attr_str(attrs, "llmux.provider", c->provider);
    attr_str(attrs, "llmux.target", c->label);
    attr_int(attrs, "llmux.lane", c->lane);
    attr_int(attrs, "llmux.fallback_index", c->target);
    attr_int(attrs, "llmux.attempt", c->attempt);
    attr_str(attrs, "llmux.outcome", c->outcome);
    if (strcmp(c->outcome, "error") == 0) {
        char st[16];
        snprintf(st, sizeof st, "%d", c->status);
        set_error(s, attrs, c->error ? c->error : st, c->error_type);
        attr_int(attrs, "http.response.status_code", c->status);
    }
    return s;
}

static json_t *tool_span(const struct lx_event *ev)
{
    const struct lx_ev_tool *t = &ev->tool;
    char name[200];
    snprintf(name, sizeof name, "execute_tool %s", t->tool ? t->tool : "");
    json_t *attrs;
    json_t *s = span_new(ev, t->span_id, ev->origin->trace.span_id, name, SPAN_INTERNAL, t->start_ns, &attrs);
    attr_str(attrs, "gen_ai.operation.name", "execute_tool");
    attr_str(attrs, "gen_ai.tool.name", t->tool);
    attr_str(attrs, "llmux.mcp_server", t->server);
    attr_str(attrs, "llmux.outcome", t->outcome);
    if (t->outcome && strcmp(t->outcome, "ok") != 0)
        set_error(s, attrs, t->outcome, t->error);
    return s;
}

char *lx_otlp_span(const struct lx_event *ev)
{
    if (!ev->origin || !ev->origin->trace.sampled)
        return NULL;
    json_t *s;
    switch (ev->type) {
    case LX_EV_REQUEST_FINISHED:
    case LX_EV_REQUEST_FAILED:
    case LX_EV_REQUEST_CANCELLED: s = request_span(ev); break;
    case LX_EV_CALL_FINISHED: s = call_span(ev); break;
    case LX_EV_TOOL_FINISHED: s = tool_span(ev); break;
    default: return NULL;
    }
    char *text = json_dumps(s, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(s);
    return text;
}

void lx_otlp_request(struct lx_buf *b, const char *service_name, char *const *spans, size_t n)
{
    json_t *svc = json_string(service_name);
    char *name = json_dumps(svc, JSON_ENCODE_ANY);
    json_decref(svc);
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
