/* The embeddings endpoint: validation, routing, and one upstream call relayed as JSON. */
#include "embeddings.h"
#include "relay.h"
#include "reply.h"
#include "../../providers/provider.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/json.h"
#include "../engine/router.h"
#include "../server/req.h"

#include <string.h>

static bool valid_input(json_t *in)
{
    if (json_is_string(in))
        return true;
    if (!json_is_array(in) || json_array_size(in) == 0)
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(in, i, v) {
        /* strings, or token arrays (arrays of integers) */
        if (!json_is_string(v) && !json_is_integer(v) && !json_is_array(v))
            return false;
    }
    return true;
}

json_t *lx_embeddings_parse(const char *body, size_t len, struct lx_error *err)
{
    json_t *root = lx_json_parse_object(body, len, err); /* the same words (line, column) as chat */
    if (!root)
        return NULL;
    json_t *model = json_object_get(root, "model");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        lx_error_bad_request(err, "model", model ? "invalid_type" : "missing_required_parameter", "%s",
                             model ? "Invalid type for 'model': expected a non-empty string."
                                   : "Missing required parameter: 'model'.");
        json_decref(root);
        return NULL;
    }
    json_t *input = json_object_get(root, "input");
    if (!valid_input(input)) {
        lx_error_bad_request(err, "input", input ? "invalid_type" : "missing_required_parameter", "%s",
                             input ? "'input' must be a string or a non-empty array of strings or token arrays."
                                   : "Missing required parameter: 'input'.");
        json_decref(root);
        return NULL;
    }
    return root;
}

void lx_embeddings_handle(struct lx_req *req)
{
    /* Embeddings answer in OpenAI's shapes: the openai_chat dialect's errors, and its completion slot
     * passes the pivot's (here the embeddings list) through as it is. */
    const struct lx_dialect *d = &lx_dialect_openai_chat;
    struct lx_error err = {0};
    struct lx_plan plan;
    json_t *body = lx_embeddings_parse(req->body.data, req->body.len, &err);
    if (!body || lx_relay_route(req, json_string_value(json_object_get(body, "model")), &plan, &err) != LX_OK) {
        lx_reply_fail(req, d, &err);
        lx_error_clear(&err);
        json_decref(body);
        return;
    }
    for (size_t i = 0; i < lx_plan_count(&plan); i++) {
        const struct lx_provider_conf *p = lx_plan_target(&plan, i)->provider;
        if (!p->type->embeddings_request) {
            lx_error_bad_request(&err, "model", "embeddings_not_supported",
                                 "Provider '%s' (type %s) does not offer embeddings.", p->name, p->type->name);
            json_decref(body);
            lx_plan_free(&plan);
            lx_reply_fail(req, d, &err);
            lx_error_clear(&err);
            return;
        }
    }
    struct lx_chat call = {.kind = LX_CALL_EMBEDDINGS, .body = body, .req_id = req->id, .request_id = req->request_id,
                            .origin = &req->origin};
    lx_relay_start(req, d, NULL, &plan, &call);
}
