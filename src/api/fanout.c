/* POST /v1/fanout. Mode "all" runs one resilient call (exec.c) per model at once and answers with every
 * result in the order of "models" (or streams their chunks interleaved, each tagged with model_index);
 * mode "first" is one call whose plan races the models, relayed exactly like a chat completion. One
 * member's failure never fails the others; a client that leaves cancels every member. */
#include "fanout.h"
#include "conf.h"
#include "relay.h"
#include "reply.h"
#include "../../dialects/openai_chat.h"
#include "../../providers/provider.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/json.h"
#include "../core/log.h"
#include "../engine/exec.h"
#include "../engine/router.h"
#include "../server/auth.h"
#include "../server/req.h"

#include <stdlib.h>
#include <string.h>

struct fanout;

struct member {
    struct fanout *f;      /* borrowed: the owner */
    size_t idx;
    struct lx_exec *exec;  /* NULL once done or cancelled */
    char *answered_by;     /* owned: the label that committed */
};

struct fanout {
    struct lx_req_handler handler; /* what the request tells us */
    struct lx_req *req;    /* hold: released in fanout_end */
    struct lx_reply reply; /* the stream, in the OpenAI chat dialect's framing */
    json_t *models;        /* owned reference: the "models" array */
    json_t *results;       /* owned: one slot per model (non-stream) */
    struct member *m;      /* owned */
    size_t n, pending;
    bool stream;
};

static void fanout_end(struct fanout *f)
{
    struct lx_req *req = f->req;
    lx_req_set_handler(req, NULL);
    for (size_t i = 0; i < f->n; i++)
        free(f->m[i].answered_by);
    free(f->m);
    lx_reply_clear(&f->reply);
    json_decref(f->models);
    json_decref(f->results);
    free(f);
    lx_req_release(req);
}

static json_t *member_result(struct fanout *f, size_t i, json_t *completion, const struct lx_error *err)
{
    json_t *r = json_object();
    json_object_set(r, "model", json_array_get(f->models, i));
    json_object_set_new(r, "status", json_integer(err ? err->status : 200));
    json_object_set_new(r, "latency_ms", json_integer((json_int_t)(lx_now_ms_f() - f->req->t_start)));
    if (err) {
        json_t *ej = lx_error_json(err);
        json_object_set(r, "error", json_object_get(ej, "error"));
        json_decref(ej);
    } else {
        if (f->m[i].answered_by)
            json_object_set_new(r, "answered_by", json_string(f->m[i].answered_by));
        json_object_set_new(r, "response", completion ? completion : json_null());
    }
    return r;
}

/* A member ended; the last one ends the response. */
static void member_finished(struct fanout *f)
{
    if (--f->pending > 0)
        return;
    struct lx_req *req = f->req;
    if (f->stream) {
        lx_reply_end(&f->reply);
    } else {
        lx_req_respond_json(req, 200, json_pack("{s:s,s:O}", "object", "fanout", "results", f->results));
    }
    fanout_end(f);
}

static void member_commit(void *owner, const char *label, const char *dropped)
{
    (void)dropped;
    struct member *m = owner;
    m->answered_by = lx_strdup(label);
}

static void member_chunk(void *owner, json_t *chunk)
{
    struct member *m = owner;
    json_t *tagged = json_copy(chunk);
    json_object_set_new(tagged, "model_index", json_integer((json_int_t)m->idx));
    lx_reply_chunk(&m->f->reply, tagged);
    json_decref(tagged);
}

static void member_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct member *m = owner;
    struct fanout *f = m->f;
    m->exec = NULL;
    if (f->stream) {
        if (err) {
            json_t *ev = lx_error_json(err);
            json_object_set_new(ev, "model_index", json_integer((json_int_t)m->idx));
            lx_reply_chunk(&f->reply, ev);
            json_decref(ev);
        }
        json_decref(completion);
    } else {
        json_array_set_new(f->results, m->idx, member_result(f, m->idx, completion, err));
    }
    member_finished(f);
}

static bool member_can_write(void *owner)
{
    struct member *m = owner;
    return lx_req_can_write(m->f->req);
}

static const struct lx_exec_ops lx_fanout_member_ops = {
    .on_commit = member_commit,
    .on_chunk = member_chunk,
    .on_done = member_done,
    .can_write = member_can_write,
};

static void fanout_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    (void)req;
    struct fanout *f = LX_CONTAINER_OF(h, struct fanout, handler);
    for (size_t i = 0; i < f->n; i++) {
        lx_exec_cancel(f->m[i].exec);
        f->m[i].exec = NULL;
    }
    if (why)
        lx_reply_error(&f->reply, why);
    fanout_end(f);
}

static void fanout_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    struct fanout *f = LX_CONTAINER_OF(h, struct fanout, handler);
    for (size_t i = 0; i < f->n; i++)
        lx_exec_resume(f->m[i].exec);
}

static const struct lx_req_handler lx_fanout_handler = {
    .on_abort = fanout_abort,
    .on_drain = fanout_drain,
};

/* Answer err (and clear it) in OpenAI's shape. */
static void answer_error(struct lx_req *req, struct lx_error *err)
{
    lx_reply_fail(req, &lx_dialect_openai_chat, err);
    lx_error_clear(err);
}

/* The body minus the fanout keys, plus names joined for the log. NULL with err set when invalid. */
static json_t *fanout_parse(struct lx_req *req, json_t **models, bool *first, struct lx_error *err)
{
    json_t *root = lx_json_parse_object(req->body.data, req->body.len, err);
    if (!root)
        return NULL;
    json_t *ms = json_object_get(root, "models");
    json_t *mode = json_object_get(root, "mode");
    long max = req->cfg->api->fanout_max_models;
    if (json_object_get(root, "model")) {
        lx_error_bad_request(err, "model", "invalid_parameter",
                             "/v1/fanout takes 'models' (a list of model names), not 'model'.");
    } else if (!ms) {
        lx_error_bad_request(err, "models", "missing_required_parameter", "Missing required parameter: 'models'.");
    } else if (!json_is_array(ms) || json_array_size(ms) == 0 || (long)json_array_size(ms) > max) {
        lx_error_bad_request(err, "models", "invalid_value", "'models' must be an array of 1 to %ld model names.", max);
    } else if (mode && (!json_is_string(mode) || (strcmp(json_string_value(mode), "all") != 0 &&
                                                   strcmp(json_string_value(mode), "first") != 0))) {
        lx_error_bad_request(err, "mode", "invalid_value", "'mode' must be \"all\" or \"first\".");
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(ms, i, v) {
            if (!json_is_string(v) || json_string_length(v) == 0) {
                char param[32];
                snprintf(param, sizeof param, "models[%zu]", i);
                lx_error_bad_request(err, param, "invalid_type",
                                     "Invalid type for '%s': expected a non-empty model name.", param);
                break;
            }
        }
    }
    if (!lx_error_isset(err))
        lx_openai_chat_validate(root, "", false, err);
    if (lx_error_isset(err)) {
        json_decref(root);
        return NULL;
    }
    *first = mode && strcmp(json_string_value(mode), "first") == 0;
    *models = json_incref(ms);
    /* What goes upstream: the chat body without the fanout keys (OpenAI refuses unknown parameters). */
    json_t *body = json_copy(root);
    json_object_del(body, "models");
    json_object_del(body, "mode");
    json_decref(root);
    return body;
}

void lx_fanout_handle(struct lx_req *req)
{
    struct lx_error err = {0};
    json_t *models = NULL;
    bool first = false;
    json_t *body = fanout_parse(req, &models, &first, &err);
    if (!body) {
        answer_error(req, &err);
        return;
    }
    size_t n = json_array_size(models);
    const char **names = lx_calloc(n, sizeof *names);
    struct lx_buf label = {0};
    for (size_t i = 0; i < n; i++) {
        names[i] = json_string_value(json_array_get(models, i));
        lx_buf_printf(&label, "%s%s", i ? "," : "", names[i]);
    }
    req->model = lx_buf_steal(&label, NULL);
    for (size_t i = 0; i < n; i++) {
        if (lx_auth_model(req, names[i], &err) != LX_OK) {
            free(names);
            json_decref(models);
            json_decref(body);
            answer_error(req, &err);
            return;
        }
    }
    struct lx_chat tmpl = {
        .kind = LX_CALL_CHAT,
        .body = body,
        .stream = json_is_true(json_object_get(body, "stream")),
        .include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")),
        .req_id = req->id,
        .request_id = req->request_id,
        .origin = &req->origin,
    };
    if (first) {
        /* One call racing the models: it answers like a chat completion, with x-llmux-model. */
        struct lx_plan plan;
        if (lx_route_race(req->cfg->engine, names, n, &plan, &err) != LX_OK) {
            json_decref(body);
            answer_error(req, &err);
        } else {
            struct lx_dialect_req rq = {.stream = tmpl.stream, .include_usage = tmpl.include_usage};
            lx_relay_start(req, &lx_dialect_openai_chat, &rq, &plan, &tmpl);
        }
        free(names);
        json_decref(models);
        return;
    }
    uint64_t at;
    long ms;
    if (lx_relay_deadline(req, &at, &ms, &err) != LX_OK) {
        free(names);
        json_decref(models);
        json_decref(body);
        answer_error(req, &err);
        return;
    }
    struct fanout *f = lx_calloc(1, sizeof *f);
    f->req = lx_req_hold(req);
    f->models = models;
    f->n = n;
    f->stream = tmpl.stream;
    f->results = json_array();
    f->m = lx_calloc(n, sizeof *f->m);
    lx_reply_init(&f->reply, req, &lx_dialect_openai_chat, NULL);
    f->handler = lx_fanout_handler;
    lx_req_set_handler(req, &f->handler);
    lx_req_announce(req);
    /* Members that cannot be routed are answered now; the rest run. pending counts both, so the answer
     * goes out only after the loop below has finished. */
    f->pending = n + 1;
    for (size_t i = 0; i < n; i++) {
        f->m[i].f = f;
        f->m[i].idx = i;
        json_array_append_new(f->results, json_null());
    }
    for (size_t i = 0; i < n; i++) {
        struct lx_plan plan;
        struct lx_error e = {0};
        if (lx_route_plan(req->cfg->engine, names[i], &plan, &e) != LX_OK) {
            member_done(&f->m[i], NULL, &e);
            lx_error_clear(&e);
            continue;
        }
        f->m[i].exec = lx_exec_start(&plan, &tmpl, at, ms, &lx_fanout_member_ops, &f->m[i]);
        lx_exec_set_tally(f->m[i].exec, &req->tally);
    }
    free(names);
    json_decref(body);
    member_finished(f);
}
