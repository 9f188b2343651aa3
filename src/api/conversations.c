/* The Conversations API: POST /v1/conversations; GET, POST (metadata) and DELETE /v1/conversations/{id};
 * GET (a page) and POST (append) /v1/conversations/{id}/items; GET and DELETE
 * /v1/conversations/{id}/items/{item_id}. Each is one store operation answered as it comes back; items
 * are normalised by the Responses dialect, as a turn's input is. */
#include "conversations.h"
#include "responses.h"
#include "state.h"
#include "../../dialects/openai_responses.h"
#include "../core/common.h"
#include "../core/json.h"
#include "../server/req.h"

#include <stdlib.h>
#include <string.h>

/* The body of a POST: an object ({} when empty). NULL with a 400 in err. */
static json_t *body_of(struct lx_req *req, struct lx_error *err)
{
    if (req->body.len == 0)
        return json_object();
    return lx_json_parse_object(req->body.data, req->body.len, err);
}

/* body's "items" (required or not), normalised into *items. */
static int items_of(json_t *body, bool required, json_t **items, struct lx_error *err)
{
    *items = NULL;
    json_t *v = json_object_get(body, "items");
    if (!v || json_is_null(v)) {
        if (required)
            lx_error_bad_request(err, "items", "missing_required_parameter", "Missing required parameter: 'items'.");
        return required ? LX_ERR : LX_OK;
    }
    if (!json_is_array(v)) {
        lx_error_bad_request(err, "items", "invalid_type", "Invalid type for 'items': expected an array of items.");
        return LX_ERR;
    }
    *items = lx_responses_items_normalize(v, "items", err);
    return *items ? LX_OK : LX_ERR;
}

static int metadata_of(json_t *body, json_t **meta, struct lx_error *err)
{
    *meta = json_object_get(body, "metadata");
    if (!*meta || json_is_null(*meta)) {
        *meta = NULL;
        return LX_OK;
    }
    return lx_responses_check_metadata(*meta, err);
}

static void answer_or_fail(struct lx_req *req, struct lx_store_req *rq, struct lx_error *err, const char *param,
                           json_t *(*shape)(const struct lx_store_req *rq, json_t *value))
{
    if (!lx_error_isset(err) && !lx_state_store())
        lx_state_disabled(err, NULL);
    if (lx_error_isset(err)) {
        lx_req_respond_error(req, err);
        lx_error_clear(err);
        return;
    }
    lx_state_answer(req, rq, param, shape);
}

void lx_conversations_create(struct lx_req *req)
{
    struct lx_error err = {0};
    json_t *items = NULL, *meta = NULL;
    json_t *body = body_of(req, &err);
    if (body)
        (void)(items_of(body, false, &items, &err) == LX_OK && metadata_of(body, &meta, &err) == LX_OK);
    struct lx_store_req rq = {
        .verb = LX_STORE_CONVERSATION_CREATE, .owner = lx_state_owner(req), .items = items, .metadata = meta,
    };
    answer_or_fail(req, &rq, &err, NULL, NULL);
    json_decref(items);
    json_decref(body);
}

static json_t *deleted_shape(const struct lx_store_req *rq, json_t *value)
{
    (void)value;
    return json_pack("{s:s,s:s,s:b}", "id", rq->conversation_id, "object", "conversation.deleted", "deleted", 1);
}

static void method_not_allowed(struct lx_req *req, const char *allow, struct lx_error *err)
{
    lx_req_add_header(req, "Allow", allow);
    lx_error_set(err, 405, "invalid_request_error", NULL, "method_not_allowed", "Method %s is not allowed on %s; use %s.",
                 req->method, req->path, allow);
}

void lx_conversations_resource(struct lx_req *req)
{
    /* /v1/conversations/{id}[/items[/{item_id}]] */
    const char *rest = req->path + (strncmp(req->path, "/v1/", 4) == 0 ? 3 : 0) + strlen("/conversations/");
    char *id = lx_strdup(rest);
    size_t n = strlen(id);
    if (n && id[n - 1] == '/')
        id[n - 1] = '\0';
    char *sub = strchr(id, '/'), *item = NULL;
    if (sub) {
        *sub++ = '\0';
        item = strchr(sub, '/');
        if (item)
            *item++ = '\0';
    }
    const char *m = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    struct lx_error err = {0};
    json_t *body = NULL, *items = NULL, *meta = NULL;
    struct lx_store_req rq = {.owner = lx_state_owner(req), .conversation_id = id, .item_id = item};
    json_t *(*shape)(const struct lx_store_req *, json_t *) = NULL;
    const char *param = NULL;
    if (!*id || (sub && strcmp(sub, "items") != 0) || (item && (!*item || strchr(item, '/')))) {
        lx_error_set(&err, 404, "invalid_request_error", NULL, "unknown_url", "Unknown request URL: %s %s.",
                     req->method, req->path);
    } else if (!sub) {
        req->route = "/v1/conversations/{id}";
        if (strcmp(m, "GET") == 0) {
            rq.verb = LX_STORE_CONVERSATION_GET;
        } else if (strcmp(m, "DELETE") == 0) {
            rq.verb = LX_STORE_CONVERSATION_DELETE;
            shape = deleted_shape;
        } else if (strcmp(m, "POST") == 0) {
            rq.verb = LX_STORE_CONVERSATION_UPDATE;
            if ((body = body_of(req, &err)) && metadata_of(body, &meta, &err) == LX_OK) {
                if (!json_object_get(body, "metadata"))
                    lx_error_bad_request(&err, "metadata", "missing_required_parameter",
                                         "Missing required parameter: 'metadata'.");
                rq.metadata = meta ? meta : json_object();
            }
        } else {
            method_not_allowed(req, "GET, POST, DELETE", &err);
        }
    } else if (!item) {
        req->route = "/v1/conversations/{id}/items";
        if (strcmp(m, "GET") == 0) {
            rq.verb = LX_STORE_ITEMS_LIST;
            lx_responses_page(req, &rq.page, &err);
        } else if (strcmp(m, "POST") == 0) {
            rq.verb = LX_STORE_ITEMS_ADD;
            if ((body = body_of(req, &err)))
                items_of(body, true, &items, &err);
            rq.items = items;
        } else {
            method_not_allowed(req, "GET, POST", &err);
        }
    } else {
        req->route = "/v1/conversations/{id}/items/{item_id}";
        param = "item_id";
        if (strcmp(m, "GET") == 0)
            rq.verb = LX_STORE_ITEM_GET;
        else if (strcmp(m, "DELETE") == 0)
            rq.verb = LX_STORE_ITEM_DELETE;
        else
            method_not_allowed(req, "GET, DELETE", &err);
    }
    answer_or_fail(req, &rq, &err, param, shape);
    if (rq.metadata && rq.metadata != meta)
        json_decref(rq.metadata);
    json_decref(items);
    json_decref(body);
    free(id);
}
