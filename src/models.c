/* The model list. Upstream lists are fetched at once from every enabled provider that has one; the
 * answer goes out when all are in or models_timeout_ms passes, whichever is first. A provider that is
 * down, slow or answers garbage contributes only its configured models. */
#include "models.h"
#include "buf.h"
#include "common.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "req.h"
#include "upstream.h"
#include "../providers/provider.h"

#include <stdlib.h>
#include <string.h>

struct lx_models_ctx;

struct lx_models_fetch {
    struct lx_models_ctx *ctx;
    const struct lx_provider_conf *p; /* borrowed from the request's config */
    struct lx_upstream *up;           /* NULL when done or cancelled */
    int status;
    struct lx_buf body;               /* owned */
    json_t *ids;                      /* owned: model names the upstream listed */
};

struct lx_models_ctx {
    struct lx_req *req;               /* hold: released in models_free */
    struct lx_models_fetch *fetches;  /* owned: one per provider */
    size_t n;
    size_t pending;
    struct lx_timer *timer;           /* owned */
};

static void models_free(struct lx_models_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n; i++) {
        lx_upstream_cancel(ctx->fetches[i].up);
        lx_buf_free(&ctx->fetches[i].body);
        json_decref(ctx->fetches[i].ids);
    }
    free(ctx->fetches);
    lx_timer_free(ctx->timer);
    lx_req_set_handler(ctx->req, NULL, NULL);
    lx_req_release(ctx->req);
    free(ctx);
}

static void models_free_cb(void *arg)
{
    models_free(arg);
}

static void add_model(json_t *data, json_t *seen, const char *id, const char *owner)
{
    if (json_object_get(seen, id))
        return;
    json_object_set_new(seen, id, json_true());
    json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", id, "object", "model", "created", 0,
                                          "owned_by", owner));
}

static void models_respond(struct lx_models_ctx *ctx)
{
    const struct lx_config *c = ctx->req->cfg;
    json_t *data = json_array();
    json_t *seen = json_object();
    for (size_t i = 0; i < c->n_providers; i++) {
        const struct lx_provider_conf *p = &c->providers[i];
        if (p->disabled_reason)
            continue;
        for (size_t m = 0; m < p->n_models; m++) {
            char *id = lx_sprintf("%s/%s", p->name, p->models[m]);
            add_model(data, seen, id, p->name);
            free(id);
        }
        for (size_t f = 0; f < ctx->n; f++) {
            if (ctx->fetches[f].p != p || !ctx->fetches[f].ids)
                continue;
            size_t k;
            json_t *name;
            json_array_foreach(ctx->fetches[f].ids, k, name) {
                char *id = lx_sprintf("%s/%s", p->name, json_string_value(name));
                add_model(data, seen, id, p->name);
                free(id);
            }
        }
    }
    for (size_t i = 0; i < c->n_aliases; i++)
        add_model(data, seen, c->aliases[i].name, "llmux-alias");
    json_decref(seen);
    lx_req_respond_json(ctx->req, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
    /* Free on the next turn: we may be inside our own timer's callback. Stragglers are cut now. */
    for (size_t i = 0; i < ctx->n; i++) {
        lx_upstream_cancel(ctx->fetches[i].up);
        ctx->fetches[i].up = NULL;
    }
    lx_timer_stop(ctx->timer);
    lx_req_set_handler(ctx->req, NULL, NULL);
    lx_defer(models_free_cb, ctx);
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
    if (f->body.len + len > 8u * 1024 * 1024)
        return LX_ERR;
    lx_buf_append(&f->body, data, len);
    return LX_OK;
}

static void fetch_done(void *arg, enum lx_upstream_result r, const char *detail)
{
    struct lx_models_fetch *f = arg;
    struct lx_models_ctx *ctx = f->ctx;
    f->up = NULL;
    if (r == LX_UP_OK && f->status >= 200 && f->status < 300) {
        f->ids = json_array();
        if (f->p->type->models_response(f->p, f->body.data, f->body.len, f->ids) != LX_OK) {
            lx_warn("provider %s: model list is not in the expected shape", f->p->name);
            json_decref(f->ids);
            f->ids = NULL;
        }
    } else {
        lx_warn("provider %s: cannot list models: %s", f->p->name,
                r == LX_UP_OK ? "error status from upstream" : detail);
    }
    if (--ctx->pending == 0)
        models_respond(ctx);
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
                    ctx->req->cfg->models_timeout_ms);
    }
    models_respond(ctx); /* cancels the stragglers */
}

static void models_abort(struct lx_req *req, void *data)
{
    (void)req;
    models_free(data);
}

static const struct lx_req_handler lx_models_handler = {.on_abort = models_abort};

void lx_models_handle(struct lx_req *req)
{
    const struct lx_config *c = req->cfg;
    struct lx_models_ctx *ctx = lx_calloc(1, sizeof *ctx);
    ctx->req = lx_req_hold(req);
    ctx->fetches = lx_calloc(c->n_providers, sizeof *ctx->fetches);
    lx_req_set_handler(req, &lx_models_handler, ctx);
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
        long connect_ms = p->timeouts.connect_ms < c->models_timeout_ms ? p->timeouts.connect_ms : c->models_timeout_ms;
        f->up = lx_upstream_start(&hr, connect_ms, &lx_models_upstream_ops, f);
        lx_http_request_free(&hr);
        if (f->up) {
            ctx->n++;
            ctx->pending++;
        }
    }
    if (ctx->pending == 0) {
        models_respond(ctx);
        return;
    }
    ctx->timer = lx_timer_new(models_timeout_cb, ctx);
    lx_timer_start(ctx->timer, c->models_timeout_ms);
}
