/* Events as JSON text, written directly (core/jsonw.h): the common head, then one writer per payload
 * family. A string that came from a client (a path, a model name) and is not UTF-8 becomes a marker. */
#include "evjson.h"
#include "common.h"
#include "jsonw.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void lx_rfc3339(int64_t ns, char *out, size_t len)
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, len - n, ".%06ldZ", (long)(ns % 1000000000 / 1000));
}

#define put_str lx_jw_str
#define put_int lx_jw_int
#define put_ms lx_jw_ms

static void put_hex(struct lx_jw *o, const char *k, const uint8_t *id, size_t n)
{
    bool zero = true;
    for (size_t i = 0; i < n; i++)
        zero &= id[i] == 0;
    if (zero)
        return;
    char hex[33];
    lx_hex(id, n, hex);
    lx_jw_str(o, k, hex);
}

static void request_fields(struct lx_jw *o, const struct lx_event *ev)
{
    const struct lx_ev_request *r = &ev->request;
    put_str(o, "method", r->method);
    put_str(o, "path", r->path);
    put_str(o, "route", r->route);
    if (ev->type == LX_EV_REQUEST_STARTED)
        return;
    put_str(o, "answered_by", r->answered_by);
    put_ms(o, "duration_ms", r->duration_ms);
    if (ev->type == LX_EV_REQUEST_FIRST_TOKEN)
        return;
    put_int(o, "status", r->status);
    put_str(o, "error", r->error);
    put_int(o, "prompt_tokens", r->prompt_tokens);
    put_int(o, "completion_tokens", r->completion_tokens);
    put_int(o, "calls", r->calls);
    put_int(o, "retries", r->retries);
    put_int(o, "fallbacks", r->fallbacks);
    put_ms(o, "ttfb_ms", r->ttfb_ms);
    put_int(o, "bytes_in", (long long)r->bytes_in);
    put_int(o, "bytes_out", (long long)r->bytes_out);
}

static void call_fields(struct lx_jw *o, const struct lx_event *ev)
{
    const struct lx_ev_call *c = &ev->call;
    put_str(o, "provider", c->provider);
    put_str(o, "provider_type", c->provider_type);
    put_str(o, "target", c->label);
    put_str(o, "upstream_model", c->model);
    put_str(o, "operation", c->operation);
    put_int(o, "lane", c->lane);
    put_int(o, "fallback_index", c->target);
    put_int(o, "attempt", c->attempt);
    lx_jw_bool(o, "stream", c->stream);
    put_hex(o, "span_id", c->span_id, 8);
    if (ev->type != LX_EV_CALL_FINISHED)
        return;
    put_str(o, "outcome", c->outcome);
    put_int(o, "status", c->status);
    put_str(o, "error", c->error);
    put_str(o, "error_type", c->error_type);
    put_str(o, "response_model", c->response_model);
    if (c->won) {
        put_int(o, "prompt_tokens", c->prompt_tokens);
        put_int(o, "completion_tokens", c->completion_tokens);
    }
    put_ms(o, "duration_ms", c->duration_ms);
    lx_jw_bool(o, "won", c->won);
}

static void other_fields(struct lx_jw *o, const struct lx_event *ev)
{
    switch (ev->type) {
    case LX_EV_CALL_RETRY:
        put_str(o, "provider", ev->retry.provider);
        put_str(o, "target", ev->retry.label);
        put_int(o, "lane", ev->retry.lane);
        put_int(o, "attempt", ev->retry.attempt);
        put_int(o, "max", ev->retry.max);
        put_str(o, "reason", ev->retry.reason);
        put_int(o, "status", ev->retry.status);
        put_str(o, "error", ev->retry.error);
        put_int(o, "delay_ms", ev->retry.delay_ms);
        break;
    case LX_EV_CALL_FALLBACK:
        put_str(o, "from", ev->fallback.from);
        put_str(o, "to", ev->fallback.to);
        put_str(o, "from_provider", ev->fallback.from_provider);
        put_str(o, "to_provider", ev->fallback.to_provider);
        put_int(o, "lane", ev->fallback.lane);
        put_str(o, "reason", ev->fallback.reason);
        put_int(o, "status", ev->fallback.status);
        put_str(o, "error", ev->fallback.error);
        break;
    case LX_EV_CALL_HEDGE:
        put_str(o, "target", ev->hedge.label);
        put_str(o, "provider", ev->hedge.provider);
        put_int(o, "lane", ev->hedge.lane);
        put_int(o, "hedge_ms", ev->hedge.hedge_ms);
        break;
    case LX_EV_PROVIDER_COOLDOWN:
        put_str(o, "provider", ev->cooldown.provider);
        put_str(o, "state", ev->cooldown.entered ? "entered" : "left");
        put_int(o, "failures", ev->cooldown.failures);
        put_int(o, "period_ms", ev->cooldown.period_ms);
        break;
    case LX_EV_QUEUE_WAITING:
    case LX_EV_QUEUE_TIMEOUT:
        put_str(o, "provider", ev->queue.provider);
        put_str(o, "target", ev->queue.label);
        put_int(o, "depth", ev->queue.depth);
        put_int(o, "limit", ev->queue.limit);
        put_int(o, "timeout_ms", ev->queue.timeout_ms);
        break;
    case LX_EV_TOOL_STARTED:
    case LX_EV_TOOL_FINISHED:
        put_str(o, "server", ev->tool.server);
        put_str(o, "tool", ev->tool.tool);
        put_hex(o, "span_id", ev->tool.span_id, 8);
        if (ev->type == LX_EV_TOOL_FINISHED) {
            put_str(o, "outcome", ev->tool.outcome);
            put_str(o, "error", ev->tool.error);
            put_ms(o, "duration_ms", ev->tool.duration_ms);
        }
        break;
    case LX_EV_CONVERSATION_SAVED:
        put_str(o, "conversation", ev->conversation.id);
        put_int(o, "items", ev->conversation.items);
        put_ms(o, "duration_ms", ev->conversation.duration_ms);
        break;
    case LX_EV_CONFIG_RELOADED:
    case LX_EV_CONFIG_REJECTED:
        put_str(o, "path", ev->config.path);
        if (ev->type == LX_EV_CONFIG_RELOADED) {
            put_int(o, "providers", ev->config.providers);
            put_int(o, "aliases", ev->config.aliases);
        } else {
            put_str(o, "reason", ev->config.reason);
        }
        break;
    case LX_EV_SERVER_DRAINING:
        put_str(o, "signal", ev->draining.signal);
        put_int(o, "inflight", ev->draining.inflight);
        put_int(o, "timeout_ms", ev->draining.timeout_ms);
        break;
    default:
        break;
    }
}

void lx_event_write(const struct lx_event *ev, struct lx_buf *b)
{
    struct lx_jw w = lx_jw_on(b), *o = &w;
    char when[40];
    lx_rfc3339(ev->time_ns, when, sizeof when);
    lx_jw_open(o, NULL, '{');
    lx_jw_int_str(o, "id", (long long)ev->seq);
    lx_jw_str(o, "type", lx_event_type_name(ev->type));
    lx_jw_str(o, "time", when);
    const struct lx_ev_origin *og = ev->origin;
    if (og) {
        put_str(o, "request_id", og->request_id);
        if (og->key)
            lx_jw_str(o, "key", og->key);
        else
            lx_jw_null(o, "key");
        put_str(o, "model", og->model);
        if (og->trace.valid)
            put_hex(o, "trace_id", og->trace.trace_id, 16);
    }
    switch (ev->type) {
    case LX_EV_REQUEST_STARTED:
    case LX_EV_REQUEST_FIRST_TOKEN:
    case LX_EV_REQUEST_FINISHED:
    case LX_EV_REQUEST_FAILED:
    case LX_EV_REQUEST_CANCELLED:
        request_fields(o, ev);
        break;
    case LX_EV_CALL_STARTED:
    case LX_EV_CALL_FINISHED:
        call_fields(o, ev);
        break;
    default:
        other_fields(o, ev);
        break;
    }
    lx_jw_close(o, '}');
}
