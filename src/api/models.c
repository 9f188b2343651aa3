/* GET /v1/models, GET /v1/models/{id} and GET /v1/providers: they probe every enabled provider's model
 * listing at once and
 * answer when all are in or models_timeout_ms passes, whichever is first. The model list is the union
 * (a provider that is down, slow or answers garbage contributes only its configured models); the
 * provider list shows each provider's capabilities and the probe's outcome as its health, and with Redis
 * the fleet-wide state of the limited ones and the Redis connection itself. */
#include "models.h"
#include "admin.h"
#include "conf.h"
#include "../../providers/provider.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/log.h"
#include "../engine/conf.h"
#include "../engine/router.h"
#include "../io/fleet.h"
#include "../io/loop.h"
#include "../io/redis.h"
#include "../io/upstream.h"
#include "../server/auth.h"
#include "../server/req.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lx_models_ctx;

struct lx_models_fetch {
    struct lx_models_ctx *ctx;
    const struct lx_provider_conf *p; /* borrowed from the request's config */
    struct lx_upstream *up;           /* NULL when done or cancelled */
    int status;
    struct lx_buf body;               /* owned */
    json_t *ids;                      /* owned: model names the upstream listed */
    double t_start, latency_ms;       /* latency_ms < 0 until the probe ended */
    char *error;                      /* owned: why the probe failed, or NULL */
};

struct lx_models_ctx {
    struct lx_req_handler handler;    /* what the request tells us */
    struct lx_req *req;               /* hold: released in models_free */
    struct lx_models_fetch *fetches;  /* owned: one per provider */
    size_t n;
    size_t pending;
    struct lx_timer *timer;           /* owned */
    void (*respond)(struct lx_models_ctx *ctx); /* builds the answer: models, one model, or providers */
    char *model_id;                   /* owned: the model GET /v1/models/{id} asks for, or NULL */
};

static void models_free(struct lx_models_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n; i++) {
        lx_upstream_cancel(ctx->fetches[i].up);
        lx_buf_free(&ctx->fetches[i].body);
        json_decref(ctx->fetches[i].ids);
        free(ctx->fetches[i].error);
    }
    free(ctx->fetches);
    lx_timer_free(ctx->timer);
    free(ctx->model_id);
    lx_req_set_handler(ctx->req, NULL);
    lx_req_release(ctx->req);
    free(ctx);
}

static void models_free_cb(void *arg)
{
    models_free(arg);
}

static void add_model(const struct lx_req *req, json_t *data, json_t *seen, const char *id, const char *owner)
{
    if (json_object_get(seen, id) || !lx_auth_model_ok(req, id))
        return;
    json_object_set_new(seen, id, json_true());
    json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model", "created", 0,
                                          "owned_by", owner));
}

/* Cut the stragglers, answer, and free on the next turn (we may be inside our own timer's callback). */
static void probe_finish(struct lx_models_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n; i++) {
        lx_upstream_cancel(ctx->fetches[i].up);
        ctx->fetches[i].up = NULL;
    }
    lx_timer_stop(ctx->timer);
    ctx->respond(ctx);
    lx_req_set_handler(ctx->req, NULL);
    lx_defer(models_free_cb, ctx);
}

/* Every model the request's key may use: configured and listed by upstreams, then aliases. */
static json_t *models_list(struct lx_models_ctx *ctx)
{
    const struct lx_engine_conf *c = ctx->req->cfg->engine;
    json_t *data = json_array();
    json_t *seen = json_object();
    for (size_t i = 0; i < c->n_providers; i++) {
        const struct lx_provider_conf *p = &c->providers[i];
        if (p->disabled_reason)
            continue;
        for (size_t m = 0; m < p->n_models; m++) {
            char *id = lx_sprintf("%s/%s", p->name, p->models[m]);
            add_model(ctx->req, data, seen, id, p->name);
            free(id);
        }
        for (size_t f = 0; f < ctx->n; f++) {
            if (ctx->fetches[f].p != p || !ctx->fetches[f].ids)
                continue;
            size_t k;
            json_t *name;
            json_array_foreach(ctx->fetches[f].ids, k, name) {
                char *id = lx_sprintf("%s/%s", p->name, json_string_value(name));
                add_model(ctx->req, data, seen, id, p->name);
                free(id);
            }
        }
    }
    for (size_t i = 0; i < c->n_aliases; i++)
        add_model(ctx->req, data, seen, c->aliases[i].name, "llmux-alias");
    json_decref(seen);
    return data;
}

static void models_respond(struct lx_models_ctx *ctx)
{
    lx_req_respond_json(ctx->req, 200, json_pack("{s:s,s:o}", "object", "list", "data", models_list(ctx)));
}

/* The same list in the Anthropic API's shape, for clients that send anthropic-version (the Anthropic SDKs'
 * models.list, Claude Code's gateway model discovery): {id, type, display_name, created_at} entries, one
 * page. */
static void models_respond_anthropic(struct lx_models_ctx *ctx)
{
    json_t *list = models_list(ctx);
    json_t *data = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        time_t created = (time_t)json_integer_value(json_object_get(m, "created"));
        struct tm tm;
        char at[32];
        gmtime_r(&created, &tm);
        strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_array_append_new(data, json_pack("{s:O,s:s,s:O,s:s}", "id", json_object_get(m, "id"), "type", "model",
                                              "display_name", json_object_get(m, "id"), "created_at", at));
    }
    size_t n = json_array_size(data);
    json_t *first = n ? json_object_get(json_array_get(data, 0), "id") : json_null();
    json_t *last = n ? json_object_get(json_array_get(data, n - 1), "id") : json_null();
    lx_req_respond_json(ctx->req, 200, json_pack("{s:o,s:b,s:O,s:O}", "data", data, "has_more", 0, "first_id", first,
                                                 "last_id", last));
    json_decref(list);
}

/* GET /v1/models/{id}: the entry /v1/models would list, or a 404 that says why there is none. */
static void model_respond(struct lx_models_ctx *ctx)
{
    struct lx_req *req = ctx->req;
    json_t *data = models_list(ctx);
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m) {
        if (strcmp(json_string_value(json_object_get(m, "id")), ctx->model_id) == 0) {
            lx_req_respond_json(req, 200, json_incref(m));
            json_decref(data);
            return;
        }
    }
    json_decref(data);
    struct lx_error e = {0};
    struct lx_plan plan;
    if (!lx_auth_model_ok(req, ctx->model_id)) {
        lx_error_set(&e, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist or this key may not use it.", ctx->model_id);
    } else if (lx_route_plan(req->cfg->engine, ctx->model_id, &plan, &e) == LX_OK) {
        /* The provider is there but does not list it: a chat request may still reach it. */
        lx_plan_free(&plan);
        lx_error_set(&e, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' is not listed by its provider (GET /v1/models lists the models llmux knows).",
                     ctx->model_id);
    }
    lx_req_respond_error(req, &e);
    lx_error_clear(&e);
}

static json_t *caps_json(const struct lx_provider_caps *caps)
{
    return json_pack("{s:b,s:b,s:b,s:b,s:b,s:b,s:b}", "chat", caps->chat, "streaming", caps->streaming, "tools",
                     caps->tools, "vision", caps->vision, "embeddings", caps->embeddings, "json_mode",
                     caps->json_mode, "documents", caps->documents);
}

/* What this replica knows of the Redis it shares: enough to see at once whether limits are fleet-wide. */
static json_t *redis_json(struct lx_fleet *f)
{
    struct lx_redis *r = lx_fleet_redis(f);
    const struct lx_redis_conf *conf = lx_redis_conf(r);
    struct lx_redis_stats st;
    lx_redis_stats(r, &st);
    char *url = lx_redis_url_redacted(conf);
    json_t *o = json_pack("{s:s,s:s,s:b,s:I,s:s,s:I,s:s,s:s?,s:I}", "url", url, "state", lx_redis_state_name(st.state),
                          "up", st.state == LX_REDIS_READY, "state_ms", (json_int_t)(lx_now_ms() - st.state_since_ms),
                          "replica", lx_fleet_replica(f), "replicas", (json_int_t)lx_fleet_replicas(f), "fail_mode",
                          conf->fail_closed ? "closed" : "open", "last_error", st.last_error,
                          "connects", (json_int_t)st.connects);
    free(url);
    return o;
}

/* A limited provider's state across the fleet, as last seen (null before anything was seen). */
static json_t *fleet_json(struct lx_fleet *f, const struct lx_provider_conf *p)
{
    struct lx_fleet_provider_state st;
    if ((p->max_concurrency <= 0 && p->cooldown.failures <= 0) || !lx_fleet_provider_seen(f, p->name, &st))
        return json_null();
    return json_pack("{s:I,s:I,s:I,s:I}", "inflight", (json_int_t)st.inflight, "cooling_ms", (json_int_t)st.cooling_ms,
                     "failures", (json_int_t)st.failures, "seen_ms_ago", (json_int_t)(lx_now_ms() - st.seen_ms));
}

static void providers_respond(struct lx_models_ctx *ctx)
{
    struct lx_fleet *fleet = lx_admin_fleet();
    const struct lx_engine_conf *c = ctx->req->cfg->engine;
    json_t *data = json_array();
    for (size_t i = 0; i < c->n_providers; i++) {
        const struct lx_provider_conf *p = &c->providers[i];
        const struct lx_models_fetch *f = NULL;
        for (size_t k = 0; k < ctx->n; k++)
            if (ctx->fetches[k].p == p)
                f = &ctx->fetches[k];
        json_t *health;
        if (p->disabled_reason)
            health = json_pack("{s:b,s:n,s:s}", "reachable", 0, "latency_ms", "error", p->disabled_reason);
        else if (!p->type->models_request)
            health = json_pack("{s:b,s:i,s:n}", "reachable", 1, "latency_ms", 0, "error"); /* local */
        else if (!f)
            health = json_pack("{s:b,s:n,s:s}", "reachable", 0, "latency_ms", "error", "probe could not start");
        else if (f->latency_ms < 0)
            health = json_pack("{s:b,s:n,s:s}", "reachable", 0, "latency_ms", "error", "no answer within models_timeout_ms");
        else
            health = json_pack("{s:b,s:f,s:s?}", "reachable", f->error == NULL, "latency_ms",
                               (double)(long)(f->latency_ms * 10) / 10, "error", f->error);
        json_t *entry = json_pack("{s:s,s:s,s:s?,s:b,s:o,s:o}", "name", p->name, "type", p->type->name, "base_url",
                                  p->base_url, "enabled", p->disabled_reason == NULL, "capabilities",
                                  caps_json(&p->type->caps), "health", health);
        if (fleet)
            json_object_set_new(entry, "fleet", fleet_json(fleet, p));
        json_array_append_new(data, entry);
    }
    json_t *answer = json_pack("{s:s,s:o}", "object", "list", "data", data);
    if (fleet)
        json_object_set_new(answer, "redis", redis_json(fleet));
    lx_req_respond_json(ctx->req, 200, answer);
}

static void fetch_headers(void *arg, int status, const char *content_type, const char *retry_after)
{
    (void)content_type;
    (void)retry_after;
    struct lx_models_fetch *f = arg;
    f->status = status;
}

static int fetch_body(void *arg, const char *data, size_t len)
{
    struct lx_models_fetch *f = arg;
    if (f->body.len + len > f->p->max_upstream_body_bytes)
        return LX_ERR;
    lx_buf_append(&f->body, data, len);
    return LX_OK;
}

static void fetch_done(void *arg, enum lx_upstream_result r, const char *detail)
{
    struct lx_models_fetch *f = arg;
    struct lx_models_ctx *ctx = f->ctx;
    f->up = NULL;
    f->latency_ms = lx_now_ms_f() - f->t_start;
    if (r == LX_UP_OK && f->status >= 200 && f->status < 300) {
        f->ids = json_array();
        if (f->p->type->models_response(f->p, f->body.data, f->body.len, f->ids) != LX_OK) {
            f->error = lx_strdup("model list is not in the expected shape");
            json_decref(f->ids);
            f->ids = NULL;
        }
    } else if (r == LX_UP_OK) {
        f->error = lx_sprintf("HTTP %d", f->status);
    } else {
        f->error = lx_strdup(detail);
    }
    if (f->error)
        lx_warn("provider %s: cannot list models: %s", f->p->name, f->error);
    if (--ctx->pending == 0)
        probe_finish(ctx);
}

static const struct lx_upstream_ops lx_models_upstream_ops = {
    .on_headers = fetch_headers,
    .on_body = fetch_body,
    .on_done = fetch_done,
};

static void models_timeout_cb(void *arg)
{
    struct lx_models_ctx *ctx = arg;
    for (size_t i = 0; i < ctx->n; i++) {
        if (ctx->fetches[i].up)
            lx_warn("provider %s: model list timed out after %ld ms", ctx->fetches[i].p->name,
                    ctx->req->cfg->api->models_timeout_ms);
    }
    probe_finish(ctx); /* cancels the stragglers */
}

static void models_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    if (why)
        lx_req_respond_error(req, why);
    models_free(LX_CONTAINER_OF(h, struct lx_models_ctx, handler));
}

static const struct lx_req_handler lx_models_handler = {.on_abort = models_abort};

static void probe_start(struct lx_req *req, void (*respond)(struct lx_models_ctx *ctx), const char *model_id)
{
    const struct lx_engine_conf *c = req->cfg->engine;
    long budget_ms = req->cfg->api->models_timeout_ms;
    struct lx_models_ctx *ctx = lx_calloc(1, sizeof *ctx);
    ctx->respond = respond;
    ctx->model_id = model_id ? lx_strdup(model_id) : NULL;
    ctx->req = lx_req_hold(req);
    ctx->fetches = lx_calloc(c->n_providers, sizeof *ctx->fetches);
    ctx->handler = lx_models_handler;
    lx_req_set_handler(req, &ctx->handler);
    for (size_t i = 0; i < c->n_providers; i++) {
        const struct lx_provider_conf *p = &c->providers[i];
        if (p->disabled_reason || !p->type->models_request)
            continue;
        struct lx_http_request hr = {0};
        if (p->type->models_request(p, &hr) != LX_OK) {
            lx_http_request_free(&hr);
            continue;
        }
        struct lx_models_fetch *f = &ctx->fetches[ctx->n];
        f->ctx = ctx;
        f->p = p;
        f->t_start = lx_now_ms_f();
        f->latency_ms = -1;
        long connect_ms = p->timeouts.connect_ms < budget_ms ? p->timeouts.connect_ms : budget_ms;
        f->up = lx_upstream_start(&hr, connect_ms, &lx_models_upstream_ops, f);
        lx_http_request_free(&hr);
        if (f->up) {
            ctx->n++;
            ctx->pending++;
        }
    }
    ctx->timer = lx_timer_new(models_timeout_cb, ctx);
    if (ctx->pending == 0) {
        probe_finish(ctx);
        return;
    }
    lx_timer_start(ctx->timer, budget_ms);
}

void lx_models_handle(struct lx_req *req)
{
    probe_start(req, lx_req_header(req, "anthropic-version") ? models_respond_anthropic : models_respond, NULL);
}

/* An alias or a model the config names is answered at once (UIs check their model at start-up); any
 * other name waits for the upstream lists. */
void lx_model_handle(struct lx_req *req)
{
    const char *id = req->path + (strncmp(req->path, "/v1/", 4) == 0 ? 3 : 0) + strlen("/models/");
    char *want = lx_strdup(id);
    size_t n = strlen(want);
    if (n > 1 && want[n - 1] == '/')
        want[n - 1] = '\0';
    const struct lx_engine_conf *c = req->cfg->engine;
    const char *owner = lx_engine_alias(c, want) ? "llmux-alias" : NULL;
    const char *slash = strchr(want, '/');
    const struct lx_provider_conf *p = slash ? lx_engine_provider(c, want, (size_t)(slash - want)) : NULL;
    for (size_t i = 0; p && !p->disabled_reason && !owner && i < p->n_models; i++)
        if (strcmp(p->models[i], slash + 1) == 0)
            owner = p->name;
    if (owner && lx_auth_model_ok(req, want))
        lx_req_respond_json(req, 200, json_pack("{s:s,s:s,s:i,s:s}", "id", want, "object", "model", "created", 0,
                                                "owned_by", owner));
    else
        probe_start(req, model_respond, want);
    free(want);
}

void lx_providers_handle(struct lx_req *req)
{
    probe_start(req, providers_respond, NULL);
}
