/* The OpenAI Responses dialect: a /v1/responses body validated and translated to the chat pivot, the
 * `response` object built from a pivot completion, and the dialect's table. The stream encoder is in
 * openai_responses_stream.c, items (normalising, translating, truncating) in openai_responses_items.c.
 * Field names and shapes follow the openai SDK's types (resources/responses/responses.d.ts). */
#include "openai_responses_priv.h"
#include "openai_chat.h"
#include "../src/core/buf.h"
#include "../src/core/json.h"
#include "../src/core/common.h"
#include "../src/core/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int type_error(struct lx_error *err, const char *param, const char *expected)
{
    lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected %s.", param, expected);
    return LX_ERR;
}

static bool present(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return v && !json_is_null(v);
}

/* Optional fields: absent and null are the same; anything else must have the type. */
static int opt_bool(json_t *root, const char *key, struct lx_error *err)
{
    return !present(root, key) || json_is_boolean(json_object_get(root, key)) ? LX_OK : type_error(err, key, "a boolean");
}

static int opt_string(json_t *root, const char *key, struct lx_error *err)
{
    return !present(root, key) || json_is_string(json_object_get(root, key)) ? LX_OK : type_error(err, key, "a string");
}

static int opt_number(json_t *root, const char *key, double min, double max, struct lx_error *err)
{
    if (!present(root, key))
        return LX_OK;
    json_t *v = json_object_get(root, key);
    if (!json_is_number(v))
        return type_error(err, key, "a number");
    double d = json_number_value(v);
    if (!(d >= min && d <= max)) {
        lx_error_bad_request(err, key, "invalid_value", "Invalid value for '%s': expected a number from %g to %g.", key, min, max);
        return LX_ERR;
    }
    return LX_OK;
}

/* ---- tools ---- */

static int translate_tools(json_t *tools, json_t *chat_tools, struct lx_error *err)
{
    if (!json_is_array(tools))
        return type_error(err, "tools", "an array of tools");
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        char p[64];
        snprintf(p, sizeof p, "tools[%zu]", i);
        if (!json_is_object(t))
            return type_error(err, p, "a tool object");
        const char *type = json_string_value(json_object_get(t, "type"));
        snprintf(p, sizeof p, "tools[%zu].type", i);
        if (!type) {
            lx_error_bad_request(err, p, "missing_required_parameter", "Missing required parameter: '%s'.", p);
            return LX_ERR;
        }
        if (strcmp(type, "mcp") == 0)
            continue; /* the turn resolves it to a configured server (engine/toolset.c) and runs the loop */
        if (strcmp(type, "function") != 0) {
            lx_error_bad_request(err, p, "unsupported_tool_type",
                "Tool type '%s' is not supported by llmux: it runs function tools (type 'function') against every "
                "provider; OpenAI's built-in tools run only on OpenAI's servers.",
                type);
            return LX_ERR;
        }
        json_t *name = json_object_get(t, "name");
        snprintf(p, sizeof p, "tools[%zu].name", i);
        if (!json_is_string(name) || json_string_length(name) == 0) {
            lx_error_bad_request(err, p, name ? "invalid_type" : "missing_required_parameter",
                name ? "Invalid type for '%s': expected a non-empty string." : "Missing required parameter: '%s'.", p);
            return LX_ERR;
        }
        json_t *params = json_object_get(t, "parameters"), *desc = json_object_get(t, "description");
        json_t *strict = json_object_get(t, "strict");
        snprintf(p, sizeof p, "tools[%zu].parameters", i);
        if (params && !json_is_null(params) && !json_is_object(params))
            return type_error(err, p, "a JSON Schema object");
        snprintf(p, sizeof p, "tools[%zu].description", i);
        if (desc && !json_is_null(desc) && !json_is_string(desc))
            return type_error(err, p, "a string");
        snprintf(p, sizeof p, "tools[%zu].strict", i);
        if (strict && !json_is_null(strict) && !json_is_boolean(strict))
            return type_error(err, p, "a boolean");
        json_t *fn = json_pack("{s:O}", "name", name);
        if (json_is_string(desc))
            json_object_set(fn, "description", desc);
        json_object_set_new(fn, "parameters",
                            json_is_object(params) ? json_incref(params) : json_pack("{s:s,s:{}}", "type", "object", "properties"));
        if (json_is_boolean(strict))
            json_object_set(fn, "strict", strict);
        json_array_append_new(chat_tools, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    return LX_OK;
}

static bool has_tool(json_t *chat_tools, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(chat_tools, i, t) {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

/* tool_choice → the chat one (a new reference); allowed_tools narrows chat_tools. NULL with err set. */
static json_t *translate_tool_choice(json_t *tc, json_t *chat_tools, struct lx_error *err)
{
    const char *s = json_string_value(tc);
    if (s) {
        if (strcmp(s, "none") && strcmp(s, "auto") && strcmp(s, "required")) {
            lx_error_bad_request(err, "tool_choice", "invalid_value",
                "Invalid value for 'tool_choice': '%s'; expected 'none', 'auto', 'required' or a tool object.", s);
            return NULL;
        }
        return json_string(s);
    }
    if (!json_is_object(tc)) {
        type_error(err, "tool_choice", "a string or an object");
        return NULL;
    }
    const char *type = json_string_value(json_object_get(tc, "type"));
    if (type && strcmp(type, "function") == 0) {
        const char *name = json_string_value(json_object_get(tc, "name"));
        if (!name || !has_tool(chat_tools, name)) {
            lx_error_bad_request(err, "tool_choice.name", "invalid_value",
                "Invalid value for 'tool_choice.name': '%s' is not one of the function tools given.", name ? name : "");
            return NULL;
        }
        return json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name", name);
    }
    if (type && strcmp(type, "allowed_tools") == 0) {
        const char *mode = json_string_value(json_object_get(tc, "mode"));
        json_t *allowed = json_object_get(tc, "tools");
        if (!mode || (strcmp(mode, "auto") && strcmp(mode, "required")) || !json_is_array(allowed)) {
            lx_error_bad_request(err, "tool_choice", "invalid_value",
                "Invalid 'tool_choice': allowed_tools needs a mode ('auto' or 'required') and a list of tools.");
            return NULL;
        }
        /* The chat pivot has no allowed list: keep only the allowed tools. */
        for (size_t i = json_array_size(chat_tools); i-- > 0;) {
            const char *n = json_string_value(json_object_get(json_object_get(json_array_get(chat_tools, i), "function"), "name"));
            bool keep = false;
            size_t j;
            json_t *a;
            json_array_foreach(allowed, j, a) {
                const char *an = json_string_value(json_object_get(a, "name"));
                if (an && n && strcmp(an, n) == 0)
                    keep = true;
            }
            if (!keep)
                json_array_remove(chat_tools, i);
        }
        return json_string(mode);
    }
    if (type && strcmp(type, "mcp") == 0) {
        lx_error_bad_request(err, "tool_choice.type", "unsupported_tool_type",
                             "tool_choice {\"type\": \"mcp\"} is not supported by llmux: its MCP tools are offered "
                             "with tool_choice 'auto' (or 'required').");
        return NULL;
    }
    lx_error_bad_request(err, "tool_choice.type", "unsupported_tool_type",
        "tool_choice type '%s' is not supported by llmux: use 'none', 'auto', 'required', a function or allowed_tools.",
        type ? type : "");
    return NULL;
}

/* text.format → response_format (a new reference, or NULL for plain text). LX_ERR with err set. */
static int translate_text(json_t *text, json_t **response_format, struct lx_error *err)
{
    *response_format = NULL;
    if (!json_is_object(text))
        return type_error(err, "text", "an object");
    json_t *format = json_object_get(text, "format");
    if (!format || json_is_null(format))
        return LX_OK;
    if (!json_is_object(format))
        return type_error(err, "text.format", "an object");
    const char *type = json_string_value(json_object_get(format, "type"));
    if (type && strcmp(type, "text") == 0)
        return LX_OK;
    if (type && strcmp(type, "json_object") == 0) {
        *response_format = json_pack("{s:s}", "type", "json_object");
        return LX_OK;
    }
    if (type && strcmp(type, "json_schema") == 0) {
        json_t *name = json_object_get(format, "name"), *schema = json_object_get(format, "schema");
        if (!json_is_string(name)) {
            lx_error_bad_request(err, "text.format.name", name ? "invalid_type" : "missing_required_parameter",
                "text.format json_schema needs a 'name' string.");
            return LX_ERR;
        }
        if (!json_is_object(schema)) {
            lx_error_bad_request(err, "text.format.schema", schema ? "invalid_type" : "missing_required_parameter",
                "text.format json_schema needs a 'schema' object.");
            return LX_ERR;
        }
        json_t *js = json_pack("{s:O,s:O}", "name", name, "schema", schema);
        json_t *v;
        if ((v = json_object_get(format, "description")) && json_is_string(v))
            json_object_set(js, "description", v);
        if ((v = json_object_get(format, "strict")) && json_is_boolean(v))
            json_object_set(js, "strict", v);
        *response_format = json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js);
        return LX_OK;
    }
    lx_error_bad_request(err, "text.format.type", "invalid_value",
        "Invalid value for 'text.format.type': '%s'; expected 'text', 'json_object' or 'json_schema'.", type ? type : "");
    return LX_ERR;
}

/* metadata: at most 16 pairs, keys up to 64 characters, string values up to 512. */
int lx_responses_check_metadata(json_t *meta, struct lx_error *err)
{
    if (!json_is_object(meta))
        return type_error(err, "metadata", "an object of string values");
    if (json_object_size(meta) > 16) {
        lx_error_bad_request(err, "metadata", "invalid_value", "'metadata' may hold at most 16 key-value pairs.");
        return LX_ERR;
    }
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (strlen(k) > 64 || !json_is_string(v) || json_string_length(v) > 512) {
            lx_error_bad_request(err, "metadata", "invalid_value",
                "Invalid 'metadata' entry '%.64s': keys are up to 64 characters, values strings up to 512.", k);
            return LX_ERR;
        }
    }
    return LX_OK;
}

static json_t *get_or_null(json_t *root, const char *key)
{
    json_t *v = json_object_get(root, key);
    return v ? json_incref(v) : json_null();
}

/* The response object as it starts: what the client asked for, echoed in OpenAI's order. */
static json_t *envelope(json_t *root, const char *id, const char *model, const char *conv, json_t *text_cfg,
                        bool store, bool truncation_auto)
{
    json_t *reasoning = json_object_get(root, "reasoning");
    json_t *tc = json_object_get(root, "tool_choice"), *tools = json_object_get(root, "tools");
    json_t *ptc = json_object_get(root, "parallel_tool_calls"), *meta = json_object_get(root, "metadata");
    json_t *env = json_object();
    json_object_set_new(env, "id", json_string(id));
    json_object_set_new(env, "object", json_string("response"));
    json_object_set_new(env, "created_at", json_integer(lx_wall_s()));
    json_object_set_new(env, "status", json_string("in_progress"));
    json_object_set_new(env, "background", json_false());
    json_object_set_new(env, "completed_at", json_null());
    json_object_set_new(env, "error", json_null());
    json_object_set_new(env, "incomplete_details", json_null());
    json_object_set_new(env, "instructions", get_or_null(root, "instructions"));
    json_object_set_new(env, "max_output_tokens", get_or_null(root, "max_output_tokens"));
    json_object_set_new(env, "max_tool_calls", get_or_null(root, "max_tool_calls"));
    json_object_set_new(env, "model", json_string(model));
    json_object_set_new(env, "output", json_array());
    json_object_set_new(env, "parallel_tool_calls", json_boolean(!json_is_false(ptc)));
    json_object_set_new(env, "previous_response_id", get_or_null(root, "previous_response_id"));
    json_object_set_new(env, "conversation", conv ? json_pack("{s:s}", "id", conv) : json_null());
    json_object_set_new(env, "reasoning", json_is_object(reasoning)
                                              ? json_pack("{s:O,s:O}", "effort",
                                                          json_object_get(reasoning, "effort") ? json_object_get(reasoning, "effort") : json_null(),
                                                          "summary",
                                                          json_object_get(reasoning, "summary") ? json_object_get(reasoning, "summary") : json_null())
                                              : json_pack("{s:n,s:n}", "effort", "summary"));
    json_object_set_new(env, "store", json_boolean(store));
    json_object_set_new(env, "temperature", get_or_null(root, "temperature"));
    json_object_set_new(env, "text", text_cfg);
    json_object_set_new(env, "tool_choice", tc && !json_is_null(tc) ? json_incref(tc) : json_string("auto"));
    json_object_set_new(env, "tools", json_is_array(tools) ? json_incref(tools) : json_array());
    json_object_set_new(env, "top_p", get_or_null(root, "top_p"));
    json_object_set_new(env, "truncation", json_string(truncation_auto ? "auto" : "disabled"));
    json_object_set_new(env, "usage", json_null());
    json_object_set_new(env, "user", get_or_null(root, "user"));
    json_object_set_new(env, "metadata", json_is_object(meta) ? json_incref(meta) : json_object());
    return env;
}

/* Check the request's scalar fields. */
static int check_fields(json_t *root, struct lx_error *err)
{
    json_t *bg = json_object_get(root, "background");
    if (json_is_true(bg)) {
        lx_error_bad_request(err, "background", "unsupported_parameter",
            "Background responses are not supported by llmux: leave 'background' unset and stream instead.");
        return LX_ERR;
    }
    if (present(root, "prompt")) {
        lx_error_bad_request(err, "prompt", "unsupported_parameter",
            "Prompt templates live on OpenAI's servers and are not supported by llmux: send 'instructions' and 'input'.");
        return LX_ERR;
    }
    if (opt_bool(root, "stream", err) || opt_bool(root, "store", err) || opt_bool(root, "background", err) ||
        opt_bool(root, "parallel_tool_calls", err) || opt_string(root, "instructions", err) ||
        opt_string(root, "previous_response_id", err) || opt_string(root, "user", err) ||
        opt_string(root, "safety_identifier", err) || opt_string(root, "prompt_cache_key", err) ||
        opt_number(root, "temperature", 0, 2, err) || opt_number(root, "top_p", 0, 1, err))
        return LX_ERR;
    json_t *mot = json_object_get(root, "max_output_tokens");
    if (mot && !json_is_null(mot) && (!json_is_integer(mot) || json_integer_value(mot) < 1)) {
        lx_error_bad_request(err, "max_output_tokens", "invalid_value", "Invalid value for 'max_output_tokens': expected a positive integer.");
        return LX_ERR;
    }
    json_t *mtc = json_object_get(root, "max_tool_calls");
    if (mtc && !json_is_null(mtc) && (!json_is_integer(mtc) || json_integer_value(mtc) < 1)) {
        lx_error_bad_request(err, "max_tool_calls", "invalid_value", "Invalid value for 'max_tool_calls': expected a positive integer.");
        return LX_ERR;
    }
    json_t *tr = json_object_get(root, "truncation");
    const char *t = json_string_value(tr);
    if (tr && !json_is_null(tr) && (!t || (strcmp(t, "auto") && strcmp(t, "disabled")))) {
        lx_error_bad_request(err, "truncation", "invalid_value", "Invalid value for 'truncation': expected 'auto' or 'disabled'.");
        return LX_ERR;
    }
    json_t *inc = json_object_get(root, "include");
    if (inc && !json_is_null(inc) && !json_is_array(inc))
        return type_error(err, "include", "an array of strings");
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so) && !json_is_object(so))
        return type_error(err, "stream_options", "an object");
    json_t *r = json_object_get(root, "reasoning");
    if (r && !json_is_null(r) && !json_is_object(r))
        return type_error(err, "reasoning", "an object");
    return LX_OK;
}

/* The conversation id: a string or {"id": string}. */
static int conversation_id(json_t *root, const char **out, struct lx_error *err)
{
    *out = NULL;
    json_t *c = json_object_get(root, "conversation");
    if (!c || json_is_null(c))
        return LX_OK;
    if (json_is_object(c))
        c = json_object_get(c, "id");
    if (!json_is_string(c) || json_string_length(c) == 0)
        return type_error(err, "conversation", "a conversation id or {\"id\": ...}");
    *out = json_string_value(c);
    return LX_OK;
}

static json_t *rs_translate(json_t *root, struct lx_dialect_req *rq, struct lx_error *err)
{
    json_t *model = json_object_get(root, "model");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        lx_error_bad_request(err, "model", model ? "invalid_type" : "missing_required_parameter",
            model ? "Invalid type for 'model': expected a non-empty string." : "Missing required parameter: 'model'.");
        return NULL;
    }
    if (check_fields(root, err) != LX_OK)
        return NULL;
    const char *conv, *prev = json_string_value(json_object_get(root, "previous_response_id"));
    if (conversation_id(root, &conv, err) != LX_OK)
        return NULL;
    if (prev && conv) {
        lx_error_bad_request(err, "conversation", "invalid_request",
            "'previous_response_id' cannot be used together with 'conversation': pick one way to continue.");
        return NULL;
    }
    if (present(root, "metadata") && lx_responses_check_metadata(json_object_get(root, "metadata"), err) != LX_OK)
        return NULL;
    json_t *input = json_object_get(root, "input");
    json_t *items = NULL;
    if (input && !json_is_null(input)) {
        items = lx_responses_items_normalize(input, "input", err);
        if (!items)
            return NULL;
    } else {
        items = json_array();
    }
    if (json_array_size(items) == 0 && !prev && !conv) {
        lx_error_bad_request(err, "input", input ? "empty_array" : "missing_required_parameter",
            input ? "'input' must contain at least one item." : "Missing required parameter: 'input'.");
        json_decref(items);
        return NULL;
    }

    json_t *pivot = json_pack("{s:O,s:[]}", "model", model, "messages");
    json_t *chat_tools = json_array();
    json_t *text_cfg = NULL, *response_format = NULL;
    json_t *tools = json_object_get(root, "tools");
    if (tools && !json_is_null(tools) && translate_tools(tools, chat_tools, err) != LX_OK)
        goto fail;
    json_t *tc = json_object_get(root, "tool_choice");
    if (tc && !json_is_null(tc)) {
        json_t *ctc = translate_tool_choice(tc, chat_tools, err);
        if (!ctc)
            goto fail;
        if (json_array_size(chat_tools))
            json_object_set_new(pivot, "tool_choice", ctc);
        else
            json_decref(ctc);
    }
    if (json_array_size(chat_tools)) {
        json_object_set(pivot, "tools", chat_tools);
        if (present(root, "parallel_tool_calls"))
            json_object_set(pivot, "parallel_tool_calls", json_object_get(root, "parallel_tool_calls"));
    }
    json_t *text = json_object_get(root, "text");
    if (text && !json_is_null(text)) {
        if (translate_text(text, &response_format, err) != LX_OK)
            goto fail;
        text_cfg = json_deep_copy(text);
        if (!json_object_get(text_cfg, "format") || json_is_null(json_object_get(text_cfg, "format")))
            json_object_set_new(text_cfg, "format", json_pack("{s:s}", "type", "text"));
    } else {
        text_cfg = json_pack("{s:{s:s}}", "format", "type", "text");
    }
    if (response_format)
        json_object_set_new(pivot, "response_format", response_format);
    static const char *const copied[] = {"temperature", "top_p"};
    for (size_t i = 0; i < LX_ARRAY_LEN(copied); i++)
        if (present(root, copied[i]))
            json_object_set(pivot, copied[i], json_object_get(root, copied[i]));
    if (present(root, "max_output_tokens"))
        json_object_set(pivot, "max_completion_tokens", json_object_get(root, "max_output_tokens"));
    const char *user = json_string_value(json_object_get(root, "user"));
    if (!user)
        user = json_string_value(json_object_get(root, "safety_identifier"));
    if (user)
        json_object_set_new(pivot, "user", json_string(user));
    json_t *effort = json_object_get(json_object_get(root, "reasoning"), "effort");
    if (json_is_string(effort))
        json_object_set(pivot, "reasoning_effort", effort);
    bool stream = json_is_true(json_object_get(root, "stream"));
    if (stream) {
        json_object_set_new(pivot, "stream", json_true());
        json_object_set_new(pivot, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }

    bool store = !json_is_false(json_object_get(root, "store"));
    bool tr_auto = json_string_value(json_object_get(root, "truncation")) &&
                   strcmp(json_string_value(json_object_get(root, "truncation")), "auto") == 0;
    char *id = lx_id_new("resp");
    json_t *priv = json_pack("{s:s,s:o,s:O,s:o,s:o,s:o,s:b,s:b,s:b}", "id", id, "envelope",
                             envelope(root, id, json_string_value(model), conv, text_cfg, store, tr_auto), "input", items,
                             "instructions", get_or_null(root, "instructions"), "previous_response_id",
                             prev ? json_string(prev) : json_null(), "conversation", conv ? json_string(conv) : json_null(),
                             "store", store, "store_explicit", json_is_true(json_object_get(root, "store")),
                             "truncation_auto", tr_auto);
    free(id);
    text_cfg = NULL;
    json_decref(items);
    json_decref(chat_tools);
    rq->model = lx_strdup(json_string_value(model));
    rq->stream = stream;
    rq->include_usage = true;
    rq->prompt_tokens_estimate = lx_responses_items_tokens(json_object_get(priv, "input"));
    rq->priv = priv;
    struct lx_error e2 = {0};
    if (lx_responses_set_history(rq, pivot, NULL, &e2) != LX_OK) {
        /* Only an input that translates to no message can fail here: the state will bring the rest. */
        lx_error_clear(&e2);
    }
    return pivot;
fail:
    json_decref(text_cfg);
    json_decref(chat_tools);
    json_decref(items);
    json_decref(pivot);
    return NULL;
}

static json_t *rs_parse(const char *body, size_t len, struct lx_dialect_req *rq, struct lx_error *err)
{
    json_t *root = lx_json_parse_object(body, len, err);
    if (!root)
        return NULL;
    json_t *pivot = rs_translate(root, rq, err);
    json_decref(root);
    if (!pivot)
        lx_dialect_req_clear(rq);
    return pivot;
}

void lx_responses_turn(const struct lx_dialect_req *rq, struct lx_responses_turn *t)
{
    json_t *p = rq->priv;
    t->id = json_string_value(json_object_get(p, "id"));
    t->previous_response_id = json_string_value(json_object_get(p, "previous_response_id"));
    t->conversation_id = json_string_value(json_object_get(p, "conversation"));
    t->store = !json_is_false(json_object_get(p, "store"));
    t->store_explicit = json_is_true(json_object_get(p, "store_explicit"));
    t->truncation_auto = json_is_true(json_object_get(p, "truncation_auto"));
    t->input = json_object_get(p, "input");
    t->tools = json_object_get(json_object_get(p, "envelope"), "tools");
    t->max_tool_calls = (long)json_integer_value(json_object_get(json_object_get(p, "envelope"), "max_tool_calls"));
}

json_t *lx_responses_envelope(const struct lx_dialect_req *rq)
{
    return json_deep_copy(json_object_get(rq->priv, "envelope"));
}

void lx_responses_unstored(struct lx_dialect_req *rq)
{
    json_object_set_new(rq->priv, "store", json_false());
    json_object_set_new(json_object_get(rq->priv, "envelope"), "store", json_false());
}

int lx_responses_set_history(const struct lx_dialect_req *rq, json_t *pivot, json_t *history, struct lx_error *err)
{
    json_t *messages = json_array();
    const char *instructions = json_string_value(json_object_get(rq->priv, "instructions"));
    if (instructions && *instructions)
        json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "system", "content", instructions));
    if ((history && lx_responses_items_to_messages(history, "history", messages, err) != LX_OK) ||
        lx_responses_items_to_messages(json_object_get(rq->priv, "input"), "input", messages, err) != LX_OK) {
        json_decref(messages);
        return LX_ERR;
    }
    size_t n = json_array_size(messages);
    json_object_set_new(pivot, "messages", messages);
    if (n == 0 || (n == 1 && instructions && *instructions)) {
        lx_error_bad_request(err, "input", "empty_array", "There is nothing to answer: the input and the stored history are empty.");
        return LX_ERR;
    }
    return LX_OK;
}
/* ---- answers ---- */

static json_t *text_item(json_t *text)
{
    json_t *m = lx_responses_message_item("completed");
    json_array_append_new(json_object_get(m, "content"), lx_responses_text_part(json_string_value(text)));
    return m;
}

static json_t *rs_completion(const struct lx_dialect_req *rq, json_t *completion)
{
    json_t *resp = json_deep_copy(json_object_get(rq->priv, "envelope"));
    json_t *choice = json_array_get(json_object_get(completion, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
    bool cut = finish && strcmp(finish, "length") == 0;
    json_t *output = json_object_get(resp, "output");
    /* A tool loop's answer: the tool lists it offered, then each round's text (what the model wrote beside
     * its tool calls) and server calls, in order, before the last round's message, as a stream has them. */
    json_t *llmux = json_object_get(completion, "llmux");
    size_t i, t = 0;
    json_t *v;
    json_t *texts = json_object_get(llmux, "texts");
    json_array_foreach(json_object_get(llmux, "mcp_list_tools"), i, v)
        json_array_append_new(output, lx_responses_list_tools_item(v));
    json_array_foreach(json_object_get(llmux, "tool_calls"), i, v) {
        json_int_t round = json_integer_value(json_object_get(v, "round"));
        for (json_t *tx; (tx = json_array_get(texts, t)) && json_integer_value(json_object_get(tx, "round")) <= round; t++)
            json_array_append_new(output, text_item(json_object_get(tx, "content")));
        json_t *item = lx_responses_mcp_call_item(v);
        lx_responses_mcp_call_finish(item, v);
        json_array_append_new(output, item);
    }
    const char *text = json_string_value(json_object_get(msg, "content"));
    const char *refusal = json_string_value(json_object_get(msg, "refusal"));
    if ((text && *text) || (refusal && *refusal)) {
        json_t *m = lx_responses_message_item(cut ? "incomplete" : "completed");
        json_t *content = json_object_get(m, "content");
        if (text && *text)
            json_array_append_new(content, lx_responses_text_part(text));
        if (refusal && *refusal)
            json_array_append_new(content, json_pack("{s:s,s:s}", "type", "refusal", "refusal", refusal));
        json_array_append_new(output, m);
    }
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        json_array_append_new(output, lx_responses_call_item(json_string_value(json_object_get(tc, "id")) ? json_string_value(json_object_get(tc, "id")) : "",
                                                    json_string_value(json_object_get(fn, "name")) ? json_string_value(json_object_get(fn, "name")) : "",
                                                    args ? args : "", "completed"));
    }
    lx_responses_set_outcome(resp, finish);
    json_object_set_new(resp, "usage", lx_responses_usage(json_object_get(completion, "usage")));
    return resp;
}


const struct lx_dialect lx_dialect_openai_responses = {
    .name = "openai_responses",
    .parse = rs_parse,
    .completion = rs_completion,
    .error_body = lx_openai_error_body, /* OpenAI's shape, as for chat */
    .stream_content_type = "text/event-stream",
    .stream_open = lx_responses_stream_open,
    .stream_chunk = lx_responses_stream_chunk,
    .stream_end = lx_responses_stream_end,
    .stream_error = lx_responses_stream_error,
    .stream_keepalive = lx_responses_stream_keepalive,
    .keepalive_ms = 15000,
    .stream_close = lx_responses_stream_close,
};
