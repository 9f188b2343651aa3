/* POST /v1/responses: one turn of the Responses API, through the same routing, retries, fallbacks,
 * deadlines and capacity as chat (one exec), with its state in the store:
 *
 *   parse (dialect) → route → TURN_BEGIN (history; the conversation held; a stream's response stored in
 *   progress so its id may be streamed) → budget the history → exec → answer built → TURN_FINISH (the
 *   response saved, the conversation extended) → only then the answer or the stream's closing events.
 *
 * So an id reaches the client only once its row is committed, a response.completed only once the turn
 * is, and a client that leaves before that stores nothing (TURN_ABORT drops the reservation and lets the
 * conversation go). A turn with MCP servers (mcp entries in "tools", or its alias's) runs the engine's
 * tool loop instead of one exec, once the servers have their tool lists (api/tools.c): its rounds come
 * out as the remote-MCP items (mcp_list_tools, mcp_call) before the answer, and are stored with it.
 * Also GET/DELETE /v1/responses/{id} and its input_items. */
#include "responses.h"
#include "relay.h"
#include "reply.h"
#include "state.h"
#include "tools.h"
#include "../../dialects/openai_responses.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/pivot.h"
#include "../engine/conf.h"
#include "../engine/exec.h"
#include "../engine/router.h"
#include "../engine/store_conf.h"
#include "../engine/toolloop.h"
#include "../server/req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct lx_dialect *const D = &lx_dialect_openai_responses;

struct turn {
    struct lx_req_handler handler;
    struct lx_req *req;            /* hold: released in turn_end */
    struct lx_reply reply;         /* the answer; owns the dialect's request (rq) */
    struct lx_responses_turn t;    /* borrowed from reply.rq */
    struct lx_store *store;        /* borrowed: the live store, NULL when storage is off */
    char *owner;                   /* owned */
    struct lx_store_op *op;        /* the store operation in flight, or NULL */
    bool used_store;               /* TURN_BEGIN was sent: the end is TURN_FINISH or TURN_ABORT */
    struct lx_plan plan;           /* until the exec takes it */
    json_t *pivot;                 /* owned until the exec starts */
    struct lx_exec *exec;          /* NULL once done or cancelled */
    struct lx_toolset_spec spec;   /* owned: the turn's MCP servers (none: one exec, no loop) */
    struct lx_tools_wait *wait;    /* owned while the servers settle */
    struct lx_toolloop *loop;      /* NULL before it starts, once done or cancelled */
    json_t *listed;                /* owned: the tools offered, per server (lx_tools_listed) */
    uint64_t deadline_at;
    long deadline_ms;
    json_t *response;              /* owned: the answer being committed */
    double saving_since;           /* when TURN_FINISH was submitted (lx_now_ms_f) */
    struct lx_error failure;       /* owned: the call's failure, answered once its response is saved */
};

static void turn_end(struct turn *tu)
{
    struct lx_req *req = tu->req;
    lx_req_set_handler(req, NULL);
    lx_tools_wait_cancel(tu->wait);
    lx_toolloop_cancel(tu->loop);
    lx_toolset_spec_free(&tu->spec);
    json_decref(tu->listed);
    lx_reply_clear(&tu->reply);
    lx_plan_free(&tu->plan);
    json_decref(tu->pivot);
    json_decref(tu->response);
    lx_error_clear(&tu->failure);
    free(tu->owner);
    free(tu);
    lx_req_release(req);
}

static void fail(struct turn *tu, const struct lx_error *err)
{
    lx_reply_error(&tu->reply, err);
    turn_end(tu);
}

/* Let the store forget the turn: the reservation goes, the conversation is free. Fire and forget. */
static void abort_turn(struct turn *tu)
{
    if (!tu->used_store)
        return;
    tu->used_store = false;
    struct lx_store_req rq = {
        .verb = LX_STORE_TURN_ABORT,
        .owner = tu->owner,
        .response_id = tu->t.id,
        .conversation_id = tu->t.conversation_id,
    };
    lx_store_submit(tu->store, &rq, NULL, NULL);
}

/* ---- the answer, once its turn is committed ---- */

static void write_answer(struct turn *tu)
{
    if (lx_error_isset(&tu->failure)) {
        lx_reply_error(&tu->reply, &tu->failure);
    } else if (tu->reply.rq.stream) {
        lx_reply_end(&tu->reply);
    } else {
        tu->reply.ended = true;
        lx_req_respond_json(tu->req, 200, tu->response);
        tu->response = NULL;
    }
    turn_end(tu);
}

static void finish_cb(void *arg, const struct lx_store_result *res)
{
    struct turn *tu = arg;
    tu->op = NULL;
    tu->used_store = false; /* TURN_FINISH let the conversation go */
    if (res->status != LX_STORE_OK) {
        /* Nothing of the turn is stored: the client must not see it completed. */
        tu->used_store = true;
        abort_turn(tu);
        struct lx_error err = {0};
        lx_state_error(&err, res, "conversation");
        lx_error_clear(&tu->failure);
        fail(tu, &err);
        lx_error_clear(&err);
        return;
    }
    lx_state_saved(tu->req, tu->t.conversation_id ? tu->t.conversation_id : tu->t.id,
                   (long)(json_array_size(tu->t.input) + json_array_size(json_object_get(tu->response, "output"))),
                   tu->saving_since);
    write_answer(tu);
}

/* Save tu->response (and extend the conversation), then answer. */
static void finish(struct turn *tu)
{
    bool keep = tu->store && tu->t.store;
    if (!keep && !tu->t.conversation_id) {
        write_answer(tu);
        return;
    }
    struct lx_store_req rq = {
        .verb = LX_STORE_TURN_FINISH,
        .owner = tu->owner,
        .response_id = tu->t.id,
        .response = tu->response,
        .input = tu->t.input,
        .previous_response_id = tu->t.previous_response_id,
        .conversation_id = tu->t.conversation_id,
        .store = keep,
    };
    tu->saving_since = lx_now_ms_f();
    tu->op = lx_store_submit(tu->store, &rq, finish_cb, tu);
}

/* ---- the model call ---- */

static void exec_commit(void *owner, const char *label, const char *dropped)
{
    struct turn *tu = owner;
    lx_relay_commit(tu->req, &tu->reply, label, dropped);
}

static void exec_chunk(void *owner, json_t *chunk)
{
    struct turn *tu = owner;
    lx_reply_chunk(&tu->reply, chunk);
}

/* The model call (or the tool loop) ended: build the response and save it. */
static void answered(struct turn *tu, json_t *completion, const struct lx_error *err)
{
    if (err) {
        if (!tu->reply.begun || !tu->store || !tu->t.store) {
            /* Nothing streamed (the client gets the error's own status), or nothing to keep. */
            abort_turn(tu);
            fail(tu, err);
            return;
        }
        /* The client saw the id: keep the response, failed, then end the stream with the error. */
        lx_error_copy(&tu->failure, err);
        tu->response = lx_responses_stream_failed(tu->reply.stream, err);
    } else if (completion) {
        tu->response = D->completion(&tu->reply.rq, completion);
        json_decref(completion);
    } else {
        lx_reply_begin(&tu->reply); /* a stream that ended without a chunk still has its events */
        tu->response = lx_responses_stream_response(tu->reply.stream);
    }
    finish(tu);
}

static void exec_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct turn *tu = owner;
    tu->exec = NULL;
    answered(tu, completion, err);
}

static bool exec_can_write(void *owner)
{
    struct turn *tu = owner;
    return lx_req_can_write(tu->req);
}

static const struct lx_exec_ops lx_turn_exec_ops = {
    .on_commit = exec_commit,
    .on_chunk = exec_chunk,
    .on_done = exec_done,
    .can_write = exec_can_write,
};

/* ---- the tool loop, for a turn with MCP servers ---- */

static void loop_commit(void *owner, const char *label, const char *dropped)
{
    struct turn *tu = owner;
    lx_relay_commit(tu->req, &tu->reply, label, dropped);
    if (!tu->reply.rq.stream)
        return;
    /* What the servers offer comes first in the output, as OpenAI lists a server's tools before using them. */
    size_t i;
    json_t *l;
    json_array_foreach(tu->listed, i, l) {
        json_t *what = json_deep_copy(l);
        json_object_set_new(what, "type", json_string("mcp_list_tools"));
        json_t *chunk = json_pack("{s:[], s:o}", "choices", "llmux", what);
        lx_reply_chunk(&tu->reply, chunk);
        json_decref(chunk);
    }
}

static void loop_tool(void *owner, const struct lx_tool_event *ev)
{
    lx_tools_count(((struct turn *)owner)->req, ev);
}

static void loop_done(void *owner, json_t *completion, const struct lx_error *err)
{
    struct turn *tu = owner;
    tu->loop = NULL;
    if (completion)
        json_object_set(json_object_get(completion, "llmux"), "mcp_list_tools", tu->listed);
    answered(tu, completion, err);
}

static void loop_idle(void *owner)
{
    lx_reply_keepalive(&((struct turn *)owner)->reply);
}

static const struct lx_toolloop_ops lx_turn_loop_ops = {
    .on_commit = loop_commit,
    .on_chunk = exec_chunk,
    .on_tool = loop_tool,
    .on_done = loop_done,
    .on_idle = loop_idle,
    .can_write = exec_can_write,
};

/* The servers have their tool lists (or failed to start, or the wait ran out): run the loop. */
static void start_loop(void *arg)
{
    struct turn *tu = arg;
    tu->wait = NULL;
    tu->listed = lx_tools_listed(&tu->spec);
    struct lx_tools_turn turn = {
        .model = tu->reply.rq.model,
        .body = tu->pivot,
        .stream = tu->reply.rq.stream,
        .include_usage = true,
        .deadline_at = tu->deadline_at,
        .deadline_ms = tu->deadline_ms,
        .max_calls = tu->t.max_tool_calls,
    };
    struct lx_error err = {0};
    tu->loop = lx_tools_loop_start(tu->req, &tu->spec, &turn, &lx_turn_loop_ops, tu, &err);
    json_decref(tu->pivot);
    tu->pivot = NULL;
    if (!tu->loop) {
        abort_turn(tu);
        fail(tu, &err);
        lx_error_clear(&err);
    }
}

static void start_call(struct turn *tu)
{
    if (tu->spec.n_servers) {
        tu->wait = lx_tools_wait(tu->req, &tu->spec, tu->deadline_at, start_loop, tu);
        return;
    }
    struct lx_chat chat = {
        .kind = LX_CALL_CHAT,
        .body = tu->pivot,
        .stream = tu->reply.rq.stream,
        .include_usage = true,
        .req_id = tu->req->id,
        .request_id = tu->req->request_id,
        .origin = &tu->req->origin,
    };
    tu->exec = lx_exec_start(&tu->plan, &chat, tu->deadline_at, tu->deadline_ms, &lx_turn_exec_ops, tu);
    lx_exec_set_tally(tu->exec, &tu->req->tally);
    json_decref(tu->pivot);
    tu->pivot = NULL;
}

/* The history is in: keep to the budget, put it before the input, and call the model. */
static void begin_cb(void *arg, const struct lx_store_result *res)
{
    struct turn *tu = arg;
    tu->op = NULL;
    struct lx_error err = {0};
    if (res->status != LX_STORE_OK) {
        tu->used_store = false; /* a failed TURN_BEGIN holds nothing */
        lx_state_error(&err, res, tu->t.previous_response_id ? "previous_response_id" : "conversation");
        fail(tu, &err);
        lx_error_clear(&err);
        return;
    }
    json_t *history = res->value;
    if (json_array_size(history) > 0) {
        long dropped = 0;
        json_t *kept = lx_responses_fit(history, tu->t.input, tu->req->cfg->state->max_history_tokens,
                                        tu->t.truncation_auto, &dropped, &err);
        if (!kept || lx_responses_set_history(&tu->reply.rq, tu->pivot, kept, &err) != LX_OK) {
            json_decref(kept);
            abort_turn(tu);
            fail(tu, &err);
            lx_error_clear(&err);
            return;
        }
        json_decref(kept);
        if (dropped) {
            char n[32];
            snprintf(n, sizeof n, "%ld", dropped);
            lx_req_add_header(tu->req, "X-Llmux-History-Dropped", n);
        }
    } else if (lx_responses_set_history(&tu->reply.rq, tu->pivot, NULL, &err) != LX_OK) {
        abort_turn(tu);
        fail(tu, &err);
        lx_error_clear(&err);
        return;
    }
    start_call(tu);
}

static void turn_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    (void)req;
    struct turn *tu = LX_CONTAINER_OF(h, struct turn, handler);
    lx_exec_cancel(tu->exec);
    tu->exec = NULL;
    /* The client left: every tool call in flight is cancelled and no further round starts. */
    lx_tools_wait_cancel(tu->wait);
    tu->wait = NULL;
    lx_toolloop_cancel(tu->loop);
    tu->loop = NULL;
    if (tu->op) {
        lx_store_cancel(tu->store, tu->op);
        tu->op = NULL;
        tu->used_store = true; /* whatever it did, TURN_ABORT undoes what is not finished */
    }
    abort_turn(tu);
    if (why)
        lx_reply_error(&tu->reply, why);
    turn_end(tu);
}

static void turn_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    struct turn *tu = LX_CONTAINER_OF(h, struct turn, handler);
    lx_exec_resume(tu->exec);
    lx_toolloop_resume(tu->loop);
}

static const struct lx_req_handler lx_turn_handler = {
    .on_abort = turn_abort,
    .on_drain = turn_drain,
};

/* Requests that need storage while it is off. */
static int check_storage(const struct lx_responses_turn *t, struct lx_error *err)
{
    if (t->previous_response_id)
        lx_state_disabled(err, "previous_response_id");
    else if (t->conversation_id)
        lx_state_disabled(err, "conversation");
    else if (t->store_explicit)
        lx_state_disabled(err, "store");
    return lx_error_isset(err) ? LX_ERR : LX_OK;
}

/* The turn's MCP servers: the mcp entries of "tools" (checked as for chat: configured names only) and its
 * alias's defaults. The loop's client tools are the pivot's, already in chat's shape. */
static int parse_tools(struct lx_req *req, const struct lx_responses_turn *t, const char *model, json_t *pivot,
                       struct lx_toolset_spec *spec, struct lx_error *err)
{
    json_t *body = json_pack("{s:O}", "tools", t->tools ? t->tools : json_null());
    int rc = lx_tools_parse(req, model, body, spec, err);
    json_decref(body);
    if (rc != LX_OK)
        return LX_ERR;
    json_decref(spec->client_tools);
    json_t *tools = json_object_get(pivot, "tools");
    spec->client_tools = json_is_array(tools) ? json_copy(tools) : json_array();
    return LX_OK;
}

void lx_responses_create(struct lx_req *req)
{
    struct lx_error err = {0};
    struct lx_dialect_req rq = {0};
    json_t *pivot = D->parse(req->body.data, req->body.len, &rq, &err);
    struct lx_store *store = lx_state_store();
    struct lx_responses_turn t = {0};
    if (pivot)
        lx_responses_turn(&rq, &t);
    struct lx_plan plan = {0};
    struct lx_toolset_spec spec = {0};
    uint64_t at = 0;
    long ms = 0;
    if (!pivot || (!store && check_storage(&t, &err) != LX_OK) ||
        lx_relay_route(req, rq.model, &plan, &err) != LX_OK || parse_tools(req, &t, rq.model, pivot, &spec, &err) != LX_OK ||
        lx_relay_deadline(req, &at, &ms, &err) != LX_OK) {
        lx_reply_fail(req, D, &err);
        lx_error_clear(&err);
        json_decref(pivot);
        lx_plan_free(&plan);
        lx_toolset_spec_free(&spec);
        lx_dialect_req_clear(&rq);
        return;
    }
    if (!store)
        lx_responses_unstored(&rq);
    lx_req_announce(req);
    struct turn *tu = lx_calloc(1, sizeof *tu);
    tu->req = lx_req_hold(req);
    lx_reply_init(&tu->reply, req, D, &rq);
    lx_responses_turn(&tu->reply.rq, &tu->t);
    tu->store = store;
    tu->owner = lx_strdup(lx_state_owner(req));
    tu->plan = plan;
    tu->spec = spec;
    tu->pivot = pivot;
    tu->deadline_at = at;
    tu->deadline_ms = ms;
    tu->handler = lx_turn_handler;
    lx_req_set_handler(req, &tu->handler);
    /* A stream's response is stored before its id goes out; a continuation needs its history. */
    bool reserve = store && tu->t.store && tu->reply.rq.stream;
    if (!store || (!reserve && !tu->t.previous_response_id && !tu->t.conversation_id)) {
        start_call(tu);
        return;
    }
    json_t *start = reserve ? lx_responses_envelope(&tu->reply.rq) : NULL;
    struct lx_store_req srq = {
        .verb = LX_STORE_TURN_BEGIN,
        .owner = tu->owner,
        .response_id = tu->t.id,
        .previous_response_id = tu->t.previous_response_id,
        .conversation_id = tu->t.conversation_id,
        .reserve = reserve,
        .response = start,
    };
    tu->used_store = true;
    tu->op = lx_store_submit(store, &srq, begin_cb, tu);
    json_decref(start);
}

/* ---- GET / DELETE /v1/responses/{id}, GET .../input_items ---- */

static json_t *deleted_shape(const struct lx_store_req *rq, json_t *value)
{
    (void)value;
    return json_pack("{s:s,s:s,s:b}", "id", rq->response_id, "object", "response", "deleted", 1);
}

/* after, limit and order of a list request; LX_ERR with a 400 in err. */
int lx_responses_page(struct lx_req *req, struct lx_store_page *page, struct lx_error *err)
{
    page->after = lx_req_query(req, "after");
    page->limit = 20;
    page->desc = true;
    const char *limit = lx_req_query(req, "limit"), *order = lx_req_query(req, "order");
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (end == limit || *end || n < 1 || n > 100) {
            lx_error_bad_request(err, "limit", "invalid_value", "Invalid 'limit': expected an integer from 1 to 100.");
            return LX_ERR;
        }
        page->limit = n;
    }
    if (order) {
        if (strcmp(order, "asc") && strcmp(order, "desc")) {
            lx_error_bad_request(err, "order", "invalid_value", "Invalid 'order': expected 'asc' or 'desc'.");
            return LX_ERR;
        }
        page->desc = strcmp(order, "desc") == 0;
    }
    return LX_OK;
}

void lx_responses_resource(struct lx_req *req)
{
    /* /v1/responses/{id}[/input_items | /cancel] */
    const char *rest = req->path + (strncmp(req->path, "/v1/", 4) == 0 ? 3 : 0) + strlen("/responses/");
    char *id = lx_strdup(rest);
    char *sub = strchr(id, '/');
    if (sub)
        *sub++ = '\0';
    size_t n = sub ? strlen(sub) : 0;
    if (sub && n && sub[n - 1] == '/')
        sub[n - 1] = '\0';
    struct lx_error err = {0};
    struct lx_store_req rq = {.owner = lx_state_owner(req), .response_id = id};
    const char *m = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    const char *allow = NULL;
    if (!*id) {
        lx_error_set(&err, 404, "invalid_request_error", NULL, "unknown_url", "Unknown request URL: %s %s.",
                     req->method, req->path);
    } else if (!sub || !*sub) {
        req->route = "/v1/responses/{id}";
        if (strcmp(m, "GET") == 0)
            rq.verb = LX_STORE_RESPONSE_GET;
        else if (strcmp(m, "DELETE") == 0)
            rq.verb = LX_STORE_RESPONSE_DELETE;
        else
            allow = "GET, DELETE";
        if (!allow && lx_req_query(req, "stream") && strcmp(lx_req_query(req, "stream"), "true") == 0)
            lx_error_bad_request(&err, "stream", "unsupported_parameter",
                                 "Streaming a stored response again is not supported: llmux keeps the finished "
                                 "response only; GET it without 'stream'.");
    } else if (strcmp(sub, "input_items") == 0) {
        req->route = "/v1/responses/{id}/input_items";
        if (strcmp(m, "GET") != 0)
            allow = "GET";
        rq.verb = LX_STORE_RESPONSE_INPUT_ITEMS;
        if (!allow)
            lx_responses_page(req, &rq.page, &err);
    } else if (strcmp(sub, "cancel") == 0) {
        req->route = "/v1/responses/{id}/cancel";
        if (strcmp(m, "POST") != 0)
            allow = "POST";
        else
            lx_error_bad_request(&err, NULL, "unsupported_operation",
                                 "Only background responses can be cancelled, and llmux runs none in the background: "
                                 "a client that closes its connection cancels its own turn.");
    } else {
        lx_error_set(&err, 404, "invalid_request_error", NULL, "unknown_url", "Unknown request URL: %s %s.",
                     req->method, req->path);
    }
    if (allow) {
        lx_req_add_header(req, "Allow", allow);
        lx_error_set(&err, 405, "invalid_request_error", NULL, "method_not_allowed",
                     "Method %s is not allowed on %s; use %s.", req->method, req->path, allow);
    }
    if (!lx_error_isset(&err) && !lx_state_store())
        lx_state_disabled(&err, NULL);
    if (lx_error_isset(&err)) {
        lx_req_respond_error(req, &err);
        lx_error_clear(&err);
    } else {
        lx_state_answer(req, &rq, NULL, rq.verb == LX_STORE_RESPONSE_DELETE ? deleted_shape : NULL);
    }
    free(id);
}
