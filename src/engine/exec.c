/* The resilient call. A plan has lanes (each a fallback chain of targets); lanes start one after another
 * (hedging), all at once (a race), or only when the running ones have failed. Each target gets its
 * provider's retries with jittered exponential backoff, waits for a capacity slot when its provider is at
 * max_concurrency, and is skipped while the provider cools down. The first lane to produce a real answer
 * (a non-stream success, or a stream chunk with content) commits: the others are cancelled at that
 * moment, and from then on nothing is retried, because the client has seen bytes. A stream's opening
 * (the role chunk) is held back until then, so that another lane can still answer without the client
 * seeing two beginnings; when the plan has one target only, there is no other answerer, so the opening
 * goes to the client at once (the first event as soon as the upstream's) and a retry's own opening is
 * dropped.
 *
 * Callback contexts: lane_chunk may run inside libcurl (lx_call's on_chunk); cancelling other calls and
 * releasing capacity from there is allowed (both defer what must be deferred). Everything else runs from
 * loop callbacks (timers, lx_call's on_done). */
#include "exec.h"
#include "call.h"
#include "capacity.h"
#include "router.h"
#include "../../providers/provider.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/passthru.h"
#include "../core/log.h"
#include "../core/metrics.h"
#include "../io/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum lane_state {
    LANE_IDLE,    /* not started */
    LANE_WAITING, /* queued for a capacity slot */
    LANE_BACKOFF, /* waiting to retry */
    LANE_RUNNING, /* a call is in flight */
    LANE_ENDED,   /* failed for good, lost the race, or done */
};

struct lane {
    struct lx_exec *x;          /* borrowed: the owner */
    size_t idx;
    const struct lx_lane *plan; /* borrowed from x->plan */
    size_t t;                   /* current target */
    long attempt;               /* retries made on the current target */
    enum lane_state st;
    struct lx_call *call;       /* owned until its on_done; NULL otherwise */
    struct lx_cap_wait *wait;   /* owned while LANE_WAITING */
    struct lx_capacity *slot;   /* the live capacity whose slot the lane holds (its target's provider), or NULL */
    struct lx_cap_claim *claim; /* owned: the fleet-wide claim of the current attempt (Redis), or NULL */
    struct lx_timer *backoff;   /* owned */
    struct held *pending;       /* owned: stream chunks held back until this lane commits, in order */
    size_t n_pending;
    /* the attempt in flight, for call.finished */
    uint8_t span[8];            /* its span id (zero when nothing traces it) */
    int64_t call_start_ns;
    char *response_model;       /* owned: the model its answer named, once seen (at most 95 bytes) */
};

/* A chunk held back: JSON, or bytes (the pass-through path). */
struct held {
    json_t *json;                 /* owned, or NULL */
    struct lx_answer_bytes *bytes; /* owned (lx_answer_bytes_dup), or NULL */
};

struct lx_exec {
    struct lx_plan plan;        /* owned */
    struct lx_chat tmpl;        /* body: a reference; model unused */
    const struct lx_exec_ops *ops;
    void *owner;                /* borrowed */
    struct lane *lanes;         /* owned: one per plan lane; &lane1 when there is one */
    struct lane lane1;
    size_t started;             /* lanes started so far */
    struct lx_timer *kick;      /* owned: starts the first lane(s) once the caller is done (lx_timer_soon) */
    struct lx_timer *hedge;     /* owned: starts the next lane hedge_ms later */
    struct lx_timer *deadline;  /* owned */
    uint64_t deadline_at;       /* lx_now_ms() value; 0 = none */
    long deadline_ms;
    long winner;                /* lane index, or -1 */
    bool done;
    bool announced;             /* on_commit was called */
    bool opened;                /* a lone target's opening went to the owner before the commit */
    struct lx_error last;       /* the latest failure: what the client gets when every lane fails */
    const struct lx_target *last_target; /* borrowed from plan: whose failure `last` is */
    int retries, fallbacks;
    bool client_usage;          /* the client asked for stream usage (calls always ask, for metrics) */
    char *request_id;           /* owned: tmpl.request_id points here */
    double t_start, t_commit;   /* lx_now_ms_f; t_commit = 0 before the first content */
    long prompt_tokens, completion_tokens; /* the winner's latest usage report */
    struct lx_tally *tally;     /* borrowed: the owner's, or NULL */
};

static void lane_attempt(struct lane *L);
static void hedge_cb(void *arg);
static void lane_failed(struct lane *L, const struct lx_error *err);
static void publish_call_end(struct lane *L, const char *outcome, const struct lx_error *err);

static void drop_pending(struct lane *L)
{
    for (size_t i = 0; i < L->n_pending; i++) {
        json_decref(L->pending[i].json);
        free(L->pending[i].bytes);
    }
    free(L->pending);
    L->pending = NULL;
    L->n_pending = 0;
}

static void hold(struct lane *L, json_t *json, const struct lx_answer_bytes *bytes)
{
    L->pending = lx_realloc(L->pending, (L->n_pending + 1) * sizeof *L->pending);
    L->pending[L->n_pending++] = (struct held){
        .json = json ? json_incref(json) : NULL,
        .bytes = bytes ? lx_answer_bytes_dup(bytes) : NULL,
    };
}

static const struct lx_target *lane_target(const struct lane *L)
{
    return &L->plan->targets[L->t];
}

/* ---- policy ---- */

static bool code_is(const struct lx_error *e, const char *code)
{
    return e->code && strcmp(e->code, code) == 0;
}

/* The account behind the provider's key is out of credit (OpenAI insufficient_quota, Anthropic billing). */
static bool quota_spent(const struct lx_error *e)
{
    return code_is(e, "insufficient_quota") || code_is(e, "billing_error");
}

bool lx_exec_retryable(const struct lx_error *err)
{
    /* Our own timeouts are not retried on the same provider: a hanging provider would multiply the wait.
     * They fall back to the next target instead. Nor is a spent quota, which no retry within seconds
     * refills (another provider has its own), nor an answer over limits.max_upstream_body_bytes, which
     * would only be paid for and refused again. */
    if (code_is(err, "upstream_timeout") || code_is(err, "provider_at_capacity") ||
        code_is(err, "provider_cooldown") || code_is(err, "deadline_exceeded") || quota_spent(err) ||
        code_is(err, "upstream_response_too_large"))
        return false;
    switch (err->status) {
    case 429: case 500: case 502: case 503: case 504: case 529:
        return true;
    default:
        return false;
    }
}

/* Worth trying the next target for: what a retry would try, and the failures a retry would not fix
 * because they belong to this provider (it hangs, is full, or cools down). */
static bool fallback_worthy(const struct lx_error *err)
{
    return lx_exec_retryable(err) || code_is(err, "upstream_timeout") || code_is(err, "provider_at_capacity") ||
           code_is(err, "provider_cooldown") || quota_spent(err);
}

/* What the cooldown breaker counts as the provider failing (not its 4xx answers, not our own limits). */
static bool provider_failure(const struct lx_error *err)
{
    return err && !code_is(err, "provider_at_capacity") && !code_is(err, "provider_cooldown") &&
           !code_is(err, "deadline_exceeded") && (err->status >= 500 || code_is(err, "upstream_timeout"));
}

long lx_exec_backoff_ms(long n, long base_ms, long max_ms, const char *retry_after, uint64_t rnd)
{
    return lx_backoff_ms(n, base_ms, max_ms, retry_after, rnd);
}

/* ---- lanes ---- */

/* ran: the call ran (its outcome, failed or not, goes to the fleet's breaker). */
static void lane_release_slot_after(struct lane *L, bool ran, bool failed)
{
    if (L->slot) {
        lx_capacity_release(L->slot);
        L->slot = NULL;
    }
    if (L->claim) {
        lx_capacity_claim_end(L->claim, ran, failed);
        L->claim = NULL;
    }
}

static void lane_release_slot(struct lane *L)
{
    lane_release_slot_after(L, false, false);
}

/* Stop whatever the lane is doing; no callback of it follows. why: the exec's failure that stops it, or
 * NULL (it lost, or the owner cancelled). */
static void lane_stop(struct lane *L, const struct lx_error *why)
{
    if (L->call) {
        publish_call_end(L, why ? "error" : "cancelled", why);
        lx_call_cancel(L->call);
        L->call = NULL;
    }
    lane_release_slot(L);
    if (L->wait) {
        lx_capacity_wait_cancel(L->wait);
        L->wait = NULL;
    }
    lx_timer_stop(L->backoff);
    drop_pending(L);
    if (L->st != LANE_IDLE)
        L->st = LANE_ENDED;
}

static bool lane_active(const struct lane *L)
{
    return L->st == LANE_WAITING || L->st == LANE_BACKOFF || L->st == LANE_RUNNING;
}

static void exec_free(void *arg)
{
    struct lx_exec *x = arg;
    for (size_t i = 0; i < x->plan.n_lanes; i++) {
        lane_stop(&x->lanes[i], NULL);
        lx_timer_free(x->lanes[i].backoff);
        free(x->lanes[i].response_model);
    }
    if (x->lanes != &x->lane1)
        free(x->lanes);
    lx_timer_free(x->kick);
    lx_timer_free(x->hedge);
    lx_timer_free(x->deadline);
    lx_plan_free(&x->plan);
    json_decref(x->tmpl.body);
    json_decref(x->tmpl.native);
    lx_error_clear(&x->last);
    free(x->request_id);
    free(x);
}

static void take_usage(struct lx_exec *x, json_t *usage)
{
    if (!json_is_object(usage))
        return;
    json_t *p = json_object_get(usage, "prompt_tokens"), *c = json_object_get(usage, "completion_tokens");
    if (json_is_integer(p))
        x->prompt_tokens = (long)json_integer_value(p);
    if (json_is_integer(c))
        x->completion_tokens = (long)json_integer_value(c);
}

static void take_usage_bytes(struct lx_exec *x, const struct lx_answer_bytes *a)
{
    if (!a->usage_object)
        return;
    if (a->prompt_tokens >= 0)
        x->prompt_tokens = a->prompt_tokens;
    if (a->completion_tokens >= 0)
        x->completion_tokens = a->completion_tokens;
}

/* A bounded word for what went wrong, for llmux_upstream_errors_total. */
static const char *error_reason(const struct lx_error *e)
{
    if (code_is(e, "upstream_timeout"))
        return "timeout";
    if (code_is(e, "upstream_unreachable"))
        return "connect";
    if (code_is(e, "provider_at_capacity"))
        return "capacity";
    if (code_is(e, "provider_cooldown"))
        return "cooldown";
    if (code_is(e, "bad_upstream_response") || code_is(e, "upstream_response_too_large"))
        return "bad_response";
    if (e->status == 429)
        return "rate_limited";
    return e->status >= 500 ? "server_error" : "client_error";
}

/* ---- events (core/bus.h): each built only when someone listens ---- */

static void call_event(struct lane *L, struct lx_event *ev, enum lx_event_type type)
{
    const struct lx_target *t = lane_target(L);
    *ev = (struct lx_event){
        .type = type,
        .origin = L->x->tmpl.origin,
        .call = {.provider = t->provider->name, .provider_type = t->provider->type->name, .model = t->model,
                 .label = t->label, .operation = L->x->tmpl.kind == LX_CALL_EMBEDDINGS ? "embeddings" : "chat",
                 .lane = (int)L->idx, .target = (int)L->t, .attempt = (int)L->attempt, .stream = L->x->tmpl.stream,
                 .start_ns = L->call_start_ns},
    };
    memcpy(ev->call.span_id, L->span, 8);
}

/* The attempt L made ended: outcome "ok", "error" (err) or "cancelled" (err, when the exec gave up). */
static void publish_call_end(struct lane *L, const char *outcome, const struct lx_error *err)
{
    if (!L->call_start_ns)
        return; /* no attempt in flight */
    struct lx_event ev;
    call_event(L, &ev, LX_EV_CALL_FINISHED);
    L->call_start_ns = 0;
    if (!lx_bus_wanted(LX_EV_CALL_FINISHED))
        return;
    struct lx_exec *x = L->x;
    ev.call.duration_ms = (double)(lx_wall_ns() - ev.call.start_ns) / 1e6;
    ev.call.outcome = outcome;
    ev.call.status = err ? err->status : strcmp(outcome, "cancelled") == 0 ? 499 : 200;
    ev.call.error = err ? err->code : NULL;
    ev.call.error_type = err ? err->type : NULL;
    ev.call.response_model = L->response_model;
    ev.call.won = x->winner == (long)L->idx;
    if (ev.call.won) {
        ev.call.prompt_tokens = x->prompt_tokens;
        ev.call.completion_tokens = x->completion_tokens;
    }
    lx_bus_publish(&ev);
}

/* Keeps the first model named in an attempt's answers (allocated then: most streams name one, once). */
static void keep_model(struct lane *L, const char *m, size_t n)
{
    if (L->response_model || n == 0)
        return;
    L->response_model = lx_strndup(m, n < 95 ? n : 95);
}

/* The model an answer (a completion or a chunk) names, kept once per attempt. */
static void note_model(struct lane *L, json_t *answer)
{
    const char *m = json_string_value(json_object_get(answer, "model"));
    if (m)
        keep_model(L, m, strlen(m));
}

/* The same for an answer kept as bytes (the pass-through path). */
static void note_model_bytes(struct lane *L, const struct lx_answer_bytes *answer)
{
    keep_model(L, answer->data + answer->model_at, answer->model_len);
}

static void publish_queue(struct lane *L, enum lx_event_type type)
{
    if (!lx_bus_wanted(type))
        return;
    const struct lx_target *t = lane_target(L);
    struct lx_capacity *cap = lx_capacity_of(t->provider);
    struct lx_event ev = {.type = type, .origin = L->x->tmpl.origin,
                          .queue = {.provider = t->provider->name, .label = t->label,
                                    .depth = lx_capacity_queued(cap) + (type == LX_EV_QUEUE_TIMEOUT),
                                    .limit = lx_capacity_limit(cap), .timeout_ms = t->provider->queue_timeout_ms}};
    lx_bus_publish(&ev);
}

/* Count the call in the metrics and the owner's tally. status 499: the owner cancelled it. */
static void exec_account(struct lx_exec *x, int status)
{
    const struct lx_target *t = x->winner >= 0 ? &x->plan.lanes[x->winner].targets[x->lanes[x->winner].t]
                                               : x->last_target;
    if (!t && x->plan.n_lanes && x->plan.lanes[0].n)
        t = &x->plan.lanes[0].targets[0];
    double now = lx_now_ms_f();
    if (t)
        lx_metrics_call(t->provider->name, t->listed ? t->model : "other", status, (now - x->t_start) / 1000.0,
                        x->t_commit > 0 ? (x->t_commit - x->t_start) / 1000.0 : -1.0, x->prompt_tokens,
                        x->completion_tokens);
    struct lx_tally *ty = x->tally;
    if (!ty)
        return;
    ty->calls++;
    ty->prompt_tokens += x->prompt_tokens;
    ty->completion_tokens += x->completion_tokens;
    ty->retries += x->retries;
    ty->fallbacks += x->fallbacks;
    if (x->winner >= 0 && t) {
        free(ty->answered_by);
        ty->answered_by = lx_strdup(t->label);
    }
}

/* The end: a completion as JSON, or as bytes, or an error, or (all NULL) a stream that ended well. */
static void exec_finish_as(struct lx_exec *x, json_t *completion, const struct lx_answer_bytes *bytes,
                           const struct lx_error *err)
{
    if (x->done) {
        json_decref(completion);
        return;
    }
    x->done = true;
    if (completion)
        take_usage(x, json_object_get(completion, "usage"));
    if (bytes)
        take_usage_bytes(x, bytes);
    exec_account(x, err ? err->status : 200);
    lx_timer_stop(x->kick);
    lx_timer_stop(x->hedge);
    lx_timer_stop(x->deadline);
    for (size_t i = 0; i < x->plan.n_lanes; i++)
        lane_stop(&x->lanes[i], err);
    if (bytes)
        x->ops->on_done_bytes(x->owner, bytes);
    else
        x->ops->on_done(x->owner, completion, err);
    lx_defer(exec_free, x);
}

static void exec_finish(struct lx_exec *x, json_t *completion, const struct lx_error *err)
{
    exec_finish_as(x, completion, NULL, err);
}

/* Hand a winning chunk over, noting its usage; usage the client did not ask for is taken out. */
static void deliver(struct lx_exec *x, json_t *chunk)
{
    json_t *usage = json_object_get(chunk, "usage");
    if (usage) {
        take_usage(x, usage);
        if (!x->client_usage) {
            json_t *choices = json_object_get(chunk, "choices");
            if (json_is_array(choices) && json_array_size(choices) == 0)
                return; /* the usage-only chunk */
            json_object_del(chunk, "usage");
        }
    }
    x->ops->on_chunk(x->owner, chunk);
}

/* The same for a chunk kept as bytes: usage the client did not ask for is cut out of it. */
static void deliver_bytes(struct lx_exec *x, const struct lx_answer_bytes *chunk)
{
    struct lx_answer_bytes out = *chunk;
    if (chunk->has_usage) {
        take_usage_bytes(x, chunk);
        if (!x->client_usage) {
            if (chunk->usage_only)
                return; /* the usage-only chunk */
            out.cut_at = chunk->usage_at;
            out.cut_len = chunk->usage_len;
        }
    }
    x->ops->on_chunk_bytes(x->owner, &out);
}

static void commit(struct lane *L, const char *dropped)
{
    struct lx_exec *x = L->x;
    x->winner = (long)L->idx;
    x->t_commit = lx_now_ms_f();
    lx_timer_stop(x->hedge);
    for (size_t i = 0; i < x->plan.n_lanes; i++)
        if (i != L->idx)
            lane_stop(&x->lanes[i], NULL);
    if (x->ops->on_commit && !x->announced)
        x->ops->on_commit(x->owner, lane_target(L)->label, dropped);
    x->announced = true;
    /* No attempt starts from here on: the request it would send is not kept for the stream's life. */
    json_decref(x->tmpl.body);
    x->tmpl.body = NULL;
    x->tmpl.bytes = (struct lx_chat_bytes){0};
    if (x->ops->on_won)
        x->ops->on_won(x->owner);
    for (size_t i = 0; i < L->n_pending; i++) {
        if (L->pending[i].json)
            deliver(x, L->pending[i].json);
        else
            deliver_bytes(x, L->pending[i].bytes);
    }
    drop_pending(L);
}

static void start_lane(struct lx_exec *x)
{
    struct lane *L = &x->lanes[x->started++];
    L->st = LANE_BACKOFF; /* active from here on */
    lane_attempt(L);
}

/* A lane ended without winning: start the next one if nothing else runs, or give up. */
static void exec_progress(struct lx_exec *x)
{
    if (x->done)
        return;
    for (size_t i = 0; i < x->started; i++)
        if (lane_active(&x->lanes[i]))
            return;
    if (x->started < x->plan.n_lanes) {
        start_lane(x);
        if (!x->done && x->started < x->plan.n_lanes && x->plan.hedge_ms > 0)
            lx_timer_arm(&x->hedge, hedge_cb, x, x->plan.hedge_ms);
        return;
    }
    exec_finish(x, NULL, &x->last);
}

/* A stream chunk that carries nothing but the role (or empty content) does not commit: a lane may still
 * fail after it and be retried or lose a race without the client seeing two beginnings. */
bool lx_exec_is_preamble(json_t *chunk)
{
    json_t *choices = json_object_get(chunk, "choices");
    if (!json_is_array(choices) || json_array_size(choices) == 0)
        return false;
    size_t i;
    json_t *ch;
    json_array_foreach(choices, i, ch) {
        json_t *fr = json_object_get(ch, "finish_reason");
        if (fr && !json_is_null(fr))
            return false;
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(ch, "delta"), key, v) {
            if (strcmp(key, "role") == 0 || json_is_null(v))
                continue;
            if (strcmp(key, "content") == 0 && json_is_string(v) && json_string_length(v) == 0)
                continue;
            return false;
        }
    }
    return true;
}

/* The opening of a plan's only target goes to the owner at once, the first time (then it is announced:
 * with one target, who answers is known). True when this chunk is to be delivered now. */
static bool open_lone(struct lane *L)
{
    struct lx_exec *x = L->x;
    if (x->opened || x->plan.n_lanes != 1 || L->plan->n != 1)
        return false;
    x->opened = true;
    if (x->ops->on_commit)
        x->ops->on_commit(x->owner, lane_target(L)->label, lx_call_dropped(L->call));
    x->announced = true;
    return true;
}

static void lane_chunk(void *owner, json_t *chunk)
{
    struct lane *L = owner;
    struct lx_exec *x = L->x;
    if (x->done || L->st != LANE_RUNNING)
        return;
    if (x->winner == (long)L->idx) {
        deliver(x, chunk);
        return;
    }
    if (x->winner >= 0)
        return;
    note_model(L, chunk);
    if (lx_exec_is_preamble(chunk)) {
        if (open_lone(L))
            deliver(x, chunk);
        else if (!x->opened)
            hold(L, chunk, NULL);
        return;
    }
    commit(L, lx_call_dropped(L->call));
    deliver(x, chunk);
}

static void lane_chunk_bytes(void *owner, const struct lx_answer_bytes *chunk)
{
    struct lane *L = owner;
    struct lx_exec *x = L->x;
    if (x->done || L->st != LANE_RUNNING)
        return;
    if (x->winner == (long)L->idx) {
        deliver_bytes(x, chunk);
        return;
    }
    if (x->winner >= 0)
        return;
    note_model_bytes(L, chunk);
    if (chunk->preamble) {
        if (open_lone(L))
            deliver_bytes(x, chunk);
        else if (!x->opened)
            hold(L, NULL, chunk);
        return;
    }
    commit(L, lx_call_dropped(L->call));
    deliver_bytes(x, chunk);
}

static void lane_done_as(struct lane *L, json_t *completion, const struct lx_answer_bytes *bytes,
                         const struct lx_error *err);

static void lane_done(void *owner, json_t *completion, const struct lx_error *err)
{
    lane_done_as(owner, completion, NULL, err);
}

static void lane_done_bytes(void *owner, const struct lx_answer_bytes *completion)
{
    lane_done_as(owner, NULL, completion, NULL);
}

static void lane_done_as(struct lane *L, json_t *completion, const struct lx_answer_bytes *bytes,
                         const struct lx_error *err)
{
    struct lx_exec *x = L->x;
    const struct lx_target *t = lane_target(L);
    char *dropped = L->call && lx_call_dropped(L->call) ? lx_strdup(lx_call_dropped(L->call)) : NULL;
    L->call = NULL;
    bool failed = provider_failure(err);
    /* A call claimed fleet-wide reports to the fleet's breaker (the claim does); the others to this one. */
    if (!L->claim)
        lx_capacity_record(lx_capacity_of(t->provider), failed);
    lane_release_slot_after(L, true, failed);
    if (err) {
        free(dropped);
        publish_call_end(L, "error", err);
        lane_failed(L, err);
        return;
    }
    if (completion) {
        take_usage(x, json_object_get(completion, "usage"));
        note_model(L, completion);
    } else if (bytes) {
        take_usage_bytes(x, bytes);
        note_model_bytes(L, bytes);
    }
    if (x->winner < 0)
        commit(L, dropped);
    free(dropped);
    publish_call_end(L, "ok", NULL);
    L->st = LANE_ENDED;
    exec_finish_as(x, completion, bytes, NULL);
}

static bool lane_can_write(void *owner)
{
    struct lane *L = owner;
    struct lx_exec *x = L->x;
    return x->winner == (long)L->idx ? x->ops->can_write(x->owner) : true;
}

static const struct lx_call_ops lx_exec_lane_ops = {
    .on_chunk = lane_chunk,
    .on_done = lane_done,
    .can_write = lane_can_write,
};

/* For an owner that takes answers as bytes (the pass-through path). */
static const struct lx_call_ops lx_exec_lane_bytes_ops = {
    .on_chunk = lane_chunk,
    .on_done = lane_done,
    .can_write = lane_can_write,
    .on_chunk_bytes = lane_chunk_bytes,
    .on_done_bytes = lane_done_bytes,
};

static void lane_launch(struct lane *L)
{
    struct lx_exec *x = L->x;
    const struct lx_target *t = lane_target(L);
    struct lx_chat chat = x->tmpl;
    chat.body = json_incref(x->tmpl.body);
    chat.native = json_incref(x->tmpl.native);
    chat.model = lx_strdup(t->model);
    /* Each attempt is a span of the request's trace, and the provider gets it as its parent. */
    const struct lx_ev_origin *o = x->tmpl.origin;
    memset(L->span, 0, sizeof L->span);
    if (o && o->trace.sampled)
        lx_trace_span_id(L->span);
    char traceparent[LX_TRACEPARENT_LEN + 1];
    chat.traceparent = o && lx_trace_upstream(&o->trace, o->trace.sampled ? L->span : NULL, traceparent)
                           ? traceparent
                           : NULL;
    L->call_start_ns = lx_wall_ns();
    free(L->response_model);
    L->response_model = NULL;
    if (lx_bus_wanted(LX_EV_CALL_STARTED)) {
        struct lx_event ev;
        call_event(L, &ev, LX_EV_CALL_STARTED);
        lx_bus_publish(&ev);
    }
    struct lx_error err = {0};
    L->st = LANE_RUNNING;
    const struct lx_call_ops *ops = x->ops->on_done_bytes ? &lx_exec_lane_bytes_ops : &lx_exec_lane_ops;
    L->call = lx_call_start(t->provider, &chat, ops, L, &err);
    if (!L->call) {
        lane_release_slot(L);
        publish_call_end(L, "error", &err);
        lane_failed(L, &err);
        lx_error_clear(&err);
    }
}

static void cooling_error(struct lane *L, struct lx_capacity *cap, long cooling)
{
    struct lx_error e = {0};
    lx_error_set(&e, 503, "service_unavailable", NULL, "provider_cooldown",
                 "Provider '%s' failed %ld times in a row and is skipped for another %ld ms.", lx_capacity_name(cap),
                 lx_capacity_cooldown_failures(cap), cooling);
    e.retry_after = lx_sprintf("%ld", (cooling + 999) / 1000);
    lane_failed(L, &e);
    lx_error_clear(&e);
}

static void full_error(struct lane *L, struct lx_capacity *cap, long waited_ms)
{
    struct lx_error e = {0};
    if (waited_ms > 0)
        lx_error_set(&e, 429, "rate_limit_error", NULL, "provider_at_capacity",
                     "Provider '%s' is at its max_concurrency (%ld) and no slot freed within %ld ms; try again later.",
                     lx_capacity_name(cap), lx_capacity_limit(cap), waited_ms);
    else
        lx_error_set(&e, 429, "rate_limit_error", NULL, "provider_at_capacity",
                     "Provider '%s' is at its max_concurrency (%ld); try again later.", lx_capacity_name(cap),
                     lx_capacity_limit(cap));
    e.retry_after = lx_strdup("1");
    lane_failed(L, &e);
    lx_error_clear(&e);
}

/* How long the lane may wait for a slot of its target's provider: a fallback is better than a queue;
 * with none, wait unless waiting is switched off (0). */
static long lane_wait_ms(const struct lane *L)
{
    return L->t + 1 < L->plan->n ? 0 : lane_target(L)->provider->queue_timeout_ms;
}

static void wait_cb(void *arg, bool granted)
{
    struct lane *L = arg;
    struct lx_capacity *cap = lx_capacity_of(lane_target(L)->provider);
    L->wait = NULL;
    if (granted) {
        L->slot = cap;
        lx_capacity_claim_local(L->claim);
        lane_launch(L);
        return;
    }
    publish_queue(L, LX_EV_QUEUE_TIMEOUT);
    full_error(L, cap, lane_target(L)->provider->queue_timeout_ms);
}

/* The provider's state on this replica alone: no fleet, or Redis away with fail mode open. */
static void lane_attempt_local(struct lane *L)
{
    struct lx_capacity *cap = lx_capacity_of(lane_target(L)->provider);
    long cooling = lx_capacity_cooling_ms(cap);
    if (cooling > 0) {
        cooling_error(L, cap, cooling);
        return;
    }
    if (lx_capacity_try(cap)) {
        L->slot = cap;
        lx_capacity_claim_local(L->claim);
        lane_launch(L);
        return;
    }
    long wait_ms = lane_wait_ms(L);
    if (wait_ms == 0) {
        full_error(L, cap, 0);
        return;
    }
    /* The deadline, if any, ends the wait by cancelling the whole exec. */
    L->st = LANE_WAITING;
    L->wait = lx_capacity_wait(cap, wait_ms, wait_cb, L);
    publish_queue(L, LX_EV_QUEUE_WAITING);
}

static void claim_cb(void *arg, struct lx_cap_claim *c, const struct lx_cap_answer *a)
{
    struct lane *L = arg;
    struct lx_capacity *cap = lx_capacity_of(lane_target(L)->provider);
    (void)c;
    switch (a->verdict) {
    case LX_CAP_GRANTED:
        L->slot = cap;
        lane_launch(L);
        return;
    case LX_CAP_COOLING:
        lane_release_slot(L);
        cooling_error(L, cap, a->cooling_ms);
        return;
    case LX_CAP_FULL:
        lane_release_slot(L);
        full_error(L, cap, lane_wait_ms(L));
        return;
    case LX_CAP_UNAVAILABLE:
        if (!lx_capacity_fail_closed()) {
            lane_attempt_local(L); /* fail open: this replica's own count and breaker decide */
            return;
        }
        lane_release_slot(L);
        struct lx_error e = {0};
        lx_error_set(&e, 503, "service_unavailable", NULL, "provider_state_unavailable",
                     "Provider '%s' is limited fleet-wide and its shared state (Redis) cannot be checked right now "
                     "(redis.fail_mode is \"closed\"); try again shortly.", lx_capacity_name(cap));
        e.retry_after = lx_strdup("1");
        lane_failed(L, &e);
        lx_error_clear(&e);
        return;
    }
}

static void lane_attempt(struct lane *L)
{
    struct lx_capacity *cap = lx_capacity_of(lane_target(L)->provider);
    if (lx_capacity_shared(cap)) {
        L->st = LANE_WAITING;
        L->claim = lx_capacity_claim(cap, lane_wait_ms(L), claim_cb, L);
        return;
    }
    lane_attempt_local(L);
}

static void backoff_cb(void *arg)
{
    struct lane *L = arg;
    lane_attempt(L);
}

static void lane_failed(struct lane *L, const struct lx_error *err)
{
    struct lx_exec *x = L->x;
    if (x->done)
        return;
    if (x->winner == (long)L->idx) {
        /* The client has seen this lane's bytes: nothing can be retried now. */
        L->st = LANE_ENDED;
        exec_finish(x, NULL, err);
        return;
    }
    drop_pending(L);
    lx_error_clear(&x->last);
    lx_error_copy(&x->last, err);
    const struct lx_target *t = lane_target(L);
    const struct lx_provider_conf *p = t->provider;
    x->last_target = t;
    lx_metrics_upstream_error(p->name, error_reason(err));
    if (lx_exec_retryable(err) && L->attempt < p->retries.max) {
        long delay = lx_exec_backoff_ms(L->attempt, p->retries.base_delay_ms, p->retries.max_delay_ms,
                                        err->retry_after, lx_random64());
        /* A retry that could only start after the deadline is not worth waiting for. */
        bool fits = !x->deadline_at || lx_now_ms() + (uint64_t)delay < x->deadline_at;
        if (fits) {
            L->attempt++;
            x->retries++;
            lx_metrics_retry();
            lx_info("req=%llu: retry %ld/%ld of %s in %ld ms after %d: %s", (unsigned long long)x->tmpl.req_id,
                    L->attempt, p->retries.max, t->label, delay, err->status, err->message);
            if (lx_bus_wanted(LX_EV_CALL_RETRY)) {
                struct lx_event ev = {.type = LX_EV_CALL_RETRY, .origin = x->tmpl.origin,
                                      .retry = {.provider = p->name, .label = t->label, .lane = (int)L->idx,
                                                .attempt = (int)L->attempt, .max = (int)p->retries.max,
                                                .reason = error_reason(err), .status = err->status,
                                                .error = err->code, .delay_ms = delay}};
                lx_bus_publish(&ev);
            }
            L->st = LANE_BACKOFF;
            lx_timer_arm(&L->backoff, backoff_cb, L, delay);
            return;
        }
    }
    if (fallback_worthy(err) && L->t + 1 < L->plan->n) {
        L->t++;
        L->attempt = 0;
        x->fallbacks++;
        lx_metrics_fallback();
        lx_info("req=%llu: falling back from %s to %s after %d: %s", (unsigned long long)x->tmpl.req_id, t->label,
                lane_target(L)->label, err->status, err->message);
        if (lx_bus_wanted(LX_EV_CALL_FALLBACK)) {
            const struct lx_target *to = lane_target(L);
            struct lx_event ev = {.type = LX_EV_CALL_FALLBACK, .origin = x->tmpl.origin,
                                  .fallback = {.from = t->label, .to = to->label, .from_provider = p->name,
                                               .to_provider = to->provider->name, .lane = (int)L->idx,
                                               .reason = error_reason(err), .status = err->status,
                                               .error = err->code}};
            lx_bus_publish(&ev);
        }
        L->st = LANE_BACKOFF;
        lane_attempt(L);
        return;
    }
    L->st = LANE_ENDED;
    exec_progress(x);
}

/* ---- exec ---- */

static void hedge_cb(void *arg)
{
    struct lx_exec *x = arg;
    if (x->done || x->winner >= 0 || x->started >= x->plan.n_lanes)
        return;
    const struct lx_target *first = &x->plan.lanes[x->started].targets[0];
    lx_info("req=%llu: no answer within hedge_ms=%ld, also starting %s", (unsigned long long)x->tmpl.req_id,
            x->plan.hedge_ms, first->label);
    if (lx_bus_wanted(LX_EV_CALL_HEDGE)) {
        struct lx_event ev = {.type = LX_EV_CALL_HEDGE, .origin = x->tmpl.origin,
                              .hedge = {.label = first->label, .provider = first->provider->name,
                                        .lane = (int)x->started, .hedge_ms = x->plan.hedge_ms}};
        lx_bus_publish(&ev);
    }
    start_lane(x);
    if (!x->done && x->winner < 0 && x->started < x->plan.n_lanes)
        lx_timer_arm(&x->hedge, hedge_cb, x, x->plan.hedge_ms);
}

static void kick_cb(void *arg)
{
    struct lx_exec *x = arg;
    start_lane(x);
    if (x->plan.hedge_ms == 0) {
        while (!x->done && x->winner < 0 && x->started < x->plan.n_lanes)
            start_lane(x);
    } else if (!x->done && x->winner < 0 && x->started < x->plan.n_lanes && x->plan.hedge_ms > 0) {
        lx_timer_arm(&x->hedge, hedge_cb, x, x->plan.hedge_ms);
    }
}

static void deadline_cb(void *arg)
{
    struct lx_exec *x = arg;
    struct lx_error e = {0};
    lx_error_set(&e, 504, "timeout_error", NULL, "deadline_exceeded",
                 "The request's deadline of %ld ms (x-llmux-timeout-ms) passed before an answer was complete.",
                 x->deadline_ms);
    lx_warn("req=%llu: deadline of %ld ms passed", (unsigned long long)x->tmpl.req_id, x->deadline_ms);
    exec_finish(x, NULL, &e);
    lx_error_clear(&e);
}

struct lx_exec *lx_exec_start(struct lx_plan *plan, const struct lx_chat *tmpl, uint64_t deadline, long deadline_ms,
                              const struct lx_exec_ops *ops, void *owner)
{
    struct lx_exec *x = lx_calloc(1, sizeof *x);
    x->plan = *plan;
    memset(plan, 0, sizeof *plan);
    x->tmpl = *tmpl;
    x->tmpl.body = json_incref(tmpl->body);
    x->tmpl.native = json_incref(tmpl->native);
    x->tmpl.model = NULL;
    x->request_id = tmpl->request_id ? lx_strdup(tmpl->request_id) : NULL;
    x->tmpl.request_id = x->request_id;
    /* Streams always ask for usage, so tokens are counted; deliver() hides it from clients that did not ask. */
    x->client_usage = tmpl->include_usage;
    if (tmpl->stream)
        x->tmpl.include_usage = true;
    x->t_start = lx_now_ms_f();
    x->ops = ops;
    x->owner = owner;
    x->winner = -1;
    x->lanes = x->plan.n_lanes == 1 ? &x->lane1 : lx_calloc(x->plan.n_lanes, sizeof *x->lanes);
    for (size_t i = 0; i < x->plan.n_lanes; i++) {
        struct lane *L = &x->lanes[i];
        L->x = x;
        L->idx = i;
        L->plan = &x->plan.lanes[i];
    }
    x->kick = lx_timer_new(kick_cb, x);
    x->deadline_ms = deadline_ms;
    x->deadline_at = deadline;
    if (deadline) {
        uint64_t now = lx_now_ms();
        lx_timer_arm(&x->deadline, deadline_cb, x, deadline > now ? (long)(deadline - now) : 0);
    }
    /* Started from this turn of the loop, not the next: under load a turn is long, and a stream's start
     * takes several (this kick, curl's first timeout, the connection's writability). */
    lx_timer_soon(x->kick);
    return x;
}

void lx_exec_cancel(struct lx_exec *x)
{
    if (!x || x->done)
        return;
    x->done = true;
    exec_account(x, 499);
    lx_timer_stop(x->kick);
    lx_timer_stop(x->hedge);
    lx_timer_stop(x->deadline);
    for (size_t i = 0; i < x->plan.n_lanes; i++)
        lane_stop(&x->lanes[i], NULL);
    lx_defer(exec_free, x);
}

void lx_exec_resume(struct lx_exec *x)
{
    if (!x || x->done || x->winner < 0)
        return;
    lx_call_resume(x->lanes[x->winner].call);
}

void lx_exec_set_tally(struct lx_exec *x, struct lx_tally *t)
{
    x->tally = t;
}

int lx_exec_retries(const struct lx_exec *x)
{
    return x->retries;
}

int lx_exec_fallbacks(const struct lx_exec *x)
{
    return x->fallbacks;
}
