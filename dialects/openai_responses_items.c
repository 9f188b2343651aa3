/* Responses items: the client's input normalised to stored items, items translated to chat messages
 * (the pivot), the output items both answer paths build, and the history budget that truncation keeps
 * to. Items llmux cannot carry to a chat model
 * (built-in tool calls, file references) are refused with a 400 naming the item; reasoning items are
 * dropped (they only mean something to the model that wrote them); remote-MCP items are checked and
 * translated by openai_responses_mcp.c. */
#include "openai_responses_priv.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"
#include "../src/core/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_str(json_t *v)
{
    return json_is_string(v);
}

static const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* An id the client gave (kept), or a new one. */
static json_t *id_for(json_t *item, const char *prefix)
{
    const char *id = str(item, "id");
    if (id && *id)
        return json_string(id);
    char *made = lx_id_new(prefix);
    json_t *v = json_string(made);
    free(made);
    return v;
}

static json_t *status_of(json_t *item)
{
    const char *s = str(item, "status");
    if (s && (strcmp(s, "in_progress") == 0 || strcmp(s, "completed") == 0 || strcmp(s, "incomplete") == 0))
        return json_string(s);
    return json_string("completed");
}

static json_t *text_part(const char *type, const char *text)
{
    if (strcmp(type, "output_text") == 0)
        return json_pack("{s:s,s:s,s:[]}", "type", type, "text", text, "annotations");
    return json_pack("{s:s,s:s}", "type", type, "text", text);
}

/* One content part of a message, normalised; NULL with err set. */
static json_t *norm_part(json_t *part, const char *role, const char *param, struct lx_error *err)
{
    char p[256];
    bool assistant = strcmp(role, "assistant") == 0;
    if (!json_is_object(part)) {
        lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected a content part object.", param);
        return NULL;
    }
    const char *type = str(part, "type");
    snprintf(p, sizeof p, "%.200s.type", param);
    if (!type) {
        lx_error_bad_request(err, p, "missing_required_parameter", "Missing required parameter: '%s'.", p);
        return NULL;
    }
    if (strcmp(type, "input_text") == 0 || strcmp(type, "output_text") == 0 || strcmp(type, "text") == 0) {
        json_t *text = json_object_get(part, "text");
        if (!is_str(text)) {
            snprintf(p, sizeof p, "%.200s.text", param);
            lx_error_bad_request(err, p, text ? "invalid_type" : "missing_required_parameter",
                text ? "Invalid type for '%s': expected a string." : "Missing required parameter: '%s'.", p);
            return NULL;
        }
        return text_part(assistant ? "output_text" : "input_text", json_string_value(text));
    }
    if (strcmp(type, "refusal") == 0 && assistant) {
        json_t *r = json_object_get(part, "refusal");
        if (!is_str(r)) {
            snprintf(p, sizeof p, "%.200s.refusal", param);
            lx_error_bad_request(err, p, "invalid_type", "Invalid type for '%s': expected a string.", p);
            return NULL;
        }
        return json_pack("{s:s,s:O}", "type", "refusal", "refusal", r);
    }
    if (strcmp(type, "input_image") == 0 && !assistant) {
        json_t *url = json_object_get(part, "image_url");
        if (!is_str(url)) {
            snprintf(p, sizeof p, "%.200s.image_url", param);
            if (json_object_get(part, "file_id") && !json_is_null(json_object_get(part, "file_id")))
                lx_error_bad_request(err, p, "unsupported_parameter",
                    "Images by file_id need OpenAI's Files API, which llmux does not have: send '%s' (an https or "
                    "data: URL).",
                    p);
            else
                lx_error_bad_request(err, p, url ? "invalid_type" : "missing_required_parameter",
                    url ? "Invalid type for '%s': expected a string." : "Missing required parameter: '%s'.", p);
            return NULL;
        }
        const char *detail = str(part, "detail");
        return json_pack("{s:s,s:O,s:s}", "type", "input_image", "image_url", url, "detail", detail ? detail : "auto");
    }
    lx_error_bad_request(err, p, "unsupported_content_type",
        "Content part type '%s' is not supported here by llmux (messages carry input_text and input_image parts, "
        "assistant messages output_text and refusal): see '%s'.",
        type, p);
    return NULL;
}

static json_t *norm_message(json_t *item, const char *param, struct lx_error *err)
{
    char p[256];
    const char *role = str(item, "role");
    snprintf(p, sizeof p, "%.200s.role", param);
    if (!role) {
        lx_error_bad_request(err, p, json_object_get(item, "role") ? "invalid_type" : "missing_required_parameter",
            json_object_get(item, "role") ? "Invalid type for '%s': expected a string." : "Missing required parameter: '%s'.",
            p);
        return NULL;
    }
    if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system") && strcmp(role, "developer")) {
        lx_error_bad_request(err, p, "invalid_value",
            "Invalid value for '%s': '%s'; expected 'user', 'assistant', 'system' or 'developer'.", p, role);
        return NULL;
    }
    json_t *content = json_object_get(item, "content");
    snprintf(p, sizeof p, "%.200s.content", param);
    json_t *parts = json_array();
    if (is_str(content)) {
        json_array_append_new(parts, text_part(strcmp(role, "assistant") == 0 ? "output_text" : "input_text",
                                               json_string_value(content)));
    } else if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part) {
            char pp[256];
            snprintf(pp, sizeof pp, "%.200s[%zu]", p, i);
            json_t *np = norm_part(part, role, pp, err);
            if (!np) {
                json_decref(parts);
                return NULL;
            }
            json_array_append_new(parts, np);
        }
    } else {
        json_decref(parts);
        lx_error_bad_request(err, p, content ? "invalid_type" : "missing_required_parameter",
            content ? "Invalid type for '%s': expected a string or an array of content parts."
                    : "Missing required parameter: '%s'.",
            p);
        return NULL;
    }
    return json_pack("{s:o,s:s,s:s,s:o,s:o}", "id", id_for(item, "msg"), "type", "message", "role", role, "status",
                     status_of(item), "content", parts);
}

json_t *lx_responses_need_str(json_t *item, const char *key, const char *param, struct lx_error *err)
{
    json_t *v = json_object_get(item, key);
    if (is_str(v))
        return v;
    char p[256];
    snprintf(p, sizeof p, "%.200s.%s", param, key);
    lx_error_bad_request(err, p, v ? "invalid_type" : "missing_required_parameter",
        v ? "Invalid type for '%s': expected a string." : "Missing required parameter: '%s'.", p);
    return NULL;
}

static json_t *norm_item(json_t *item, const char *param, struct lx_error *err, bool *skip)
{
    *skip = false;
    if (!json_is_object(item)) {
        lx_error_bad_request(err, param, "invalid_type", "Invalid type for '%s': expected an item object.", param);
        return NULL;
    }
    json_t *tv = json_object_get(item, "type");
    const char *type = json_string_value(tv);
    char p[256];
    snprintf(p, sizeof p, "%.200s.type", param);
    if (tv && !type) {
        lx_error_bad_request(err, p, "invalid_type", "Invalid type for '%s': expected a string.", p);
        return NULL;
    }
    if (!type || strcmp(type, "message") == 0)
        return norm_message(item, param, err);
    if (strcmp(type, "function_call") == 0) {
        json_t *call_id = lx_responses_need_str(item, "call_id", param, err), *name = call_id ? lx_responses_need_str(item, "name", param, err) : NULL;
        json_t *args = name ? lx_responses_need_str(item, "arguments", param, err) : NULL;
        if (!args)
            return NULL;
        return json_pack("{s:o,s:s,s:o,s:O,s:O,s:O}", "id", id_for(item, "fc"), "type", "function_call", "status",
                         status_of(item), "call_id", call_id, "name", name, "arguments", args);
    }
    if (strcmp(type, "function_call_output") == 0) {
        json_t *call_id = lx_responses_need_str(item, "call_id", param, err);
        if (!call_id)
            return NULL;
        json_t *out = json_object_get(item, "output");
        if (!is_str(out) && !json_is_array(out)) {
            snprintf(p, sizeof p, "%.200s.output", param);
            lx_error_bad_request(err, p, out ? "invalid_type" : "missing_required_parameter",
                out ? "Invalid type for '%s': expected a string or an array of content parts."
                    : "Missing required parameter: '%s'.",
                p);
            return NULL;
        }
        return json_pack("{s:o,s:s,s:o,s:O,s:O}", "id", id_for(item, "fco"), "type", "function_call_output", "status",
                         status_of(item), "call_id", call_id, "output", out);
    }
    if (strcmp(type, "reasoning") == 0) {
        *skip = true;
        return NULL;
    }
    if (strncmp(type, "mcp_", 4) == 0 && (strcmp(type, "mcp_list_tools") == 0 || strcmp(type, "mcp_call") == 0 ||
                                          strcmp(type, "mcp_approval_request") == 0 ||
                                          strcmp(type, "mcp_approval_response") == 0))
        return lx_responses_mcp_norm(item, type, param, err);
    if (strcmp(type, "item_reference") == 0) {
        lx_error_bad_request(err, p, "unsupported_item_type",
            "Item references are not supported by llmux: send the item itself, or continue with "
            "previous_response_id or conversation (see '%s').",
            p);
        return NULL;
    }
    lx_error_bad_request(err, p, "unsupported_item_type",
        "Input item type '%s' is not supported by llmux: it carries messages, function_call, "
        "function_call_output, mcp_list_tools and mcp_call items (see '%s').",
        type, p);
    return NULL;
}

json_t *lx_responses_items_normalize(json_t *input, const char *prefix, struct lx_error *err)
{
    if (is_str(input)) {
        json_t *m = json_pack("{s:s,s:s}", "role", "user", "content", json_string_value(input));
        json_t *one = json_array();
        bool skip;
        json_array_append_new(one, norm_item(m, prefix, err, &skip));
        json_decref(m);
        return one;
    }
    if (!json_is_array(input)) {
        lx_error_bad_request(err, prefix, "invalid_type", "Invalid type for '%s': expected a string or an array of items.", prefix);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(input, i, item) {
        char p[256];
        snprintf(p, sizeof p, "%.200s[%zu]", prefix, i);
        bool skip;
        json_t *n = norm_item(item, p, err, &skip);
        if (skip)
            continue;
        if (!n) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, n);
    }
    return out;
}

/* ---- items → chat messages ---- */

/* The text of parts (output_text/input_text/refusal), concatenated. */
static void parts_text(json_t *content, struct lx_buf *b)
{
    if (is_str(content)) {
        lx_buf_puts(b, json_string_value(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *t = str(part, "text");
        if (!t)
            t = str(part, "refusal");
        if (t)
            lx_buf_puts(b, t);
    }
}

/* A user message's content: a string when it is one text part, else chat content parts. */
static json_t *user_content(json_t *parts)
{
    if (json_array_size(parts) == 1 && str(json_array_get(parts, 0), "text"))
        return json_string(str(json_array_get(parts, 0), "text"));
    json_t *out = json_array();
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part) {
        const char *type = str(part, "type");
        if (type && strcmp(type, "input_image") == 0)
            json_array_append_new(out, json_pack("{s:s,s:{s:O,s:s}}", "type", "image_url", "image_url", "url",
                                                 json_object_get(part, "image_url"), "detail",
                                                 str(part, "detail") ? str(part, "detail") : "auto"));
        else if (str(part, "text"))
            json_array_append_new(out, json_pack("{s:s,s:O}", "type", "text", "text", json_object_get(part, "text")));
    }
    return out;
}

/* The assistant message a tool call joins: the last one, given tool_calls, or a new one. */
static json_t *calling_message(json_t *messages, json_t **assistant)
{
    if (!*assistant) {
        *assistant = json_pack("{s:s,s:n}", "role", "assistant", "content");
        json_array_append_new(messages, *assistant);
    }
    if (!json_object_get(*assistant, "tool_calls"))
        json_object_set_new(*assistant, "tool_calls", json_array());
    return json_object_get(*assistant, "tool_calls");
}

/* A run of mcp_call items is one assistant message calling them all, then their results: the shape the
 * model produced them in (a round's calls, then the loop's tool messages). */
static void flush_results(json_t *messages, json_t *pending, json_t **assistant)
{
    if (!json_array_size(pending))
        return;
    json_array_extend(messages, pending);
    json_array_clear(pending);
    *assistant = NULL;
}

static void mcp_call_to_chat(json_t *item, json_t *messages, json_t *pending, json_t **assistant)
{
    char *name = lx_responses_mcp_function_name(item), *text = lx_responses_mcp_result_text(item);
    const char *id = str(item, "id") ? str(item, "id") : "", *args = str(item, "arguments");
    json_array_append_new(calling_message(messages, assistant),
                          json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function", "name", name,
                                    "arguments", args && *args ? args : "{}"));
    json_array_append_new(pending, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id", id, "content", text));
    free(name);
    free(text);
}

int lx_responses_items_to_messages(json_t *items, const char *prefix, json_t *messages, struct lx_error *err)
{
    json_t *assistant = NULL; /* borrowed: the last assistant message, which function calls join */
    json_t *pending = json_array(); /* the tool messages of a run of mcp_call items */
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        const char *type = str(item, "type");
        char p[256];
        snprintf(p, sizeof p, "%.200s[%zu]", prefix, i);
        if (type && strcmp(type, "mcp_list_tools") == 0)
            continue; /* what the model was offered, not something said */
        if (type && strcmp(type, "mcp_call") == 0) {
            mcp_call_to_chat(item, messages, pending, &assistant);
            continue;
        }
        flush_results(messages, pending, &assistant);
        if (!type || strcmp(type, "message") == 0) {
            const char *role = str(item, "role");
            json_t *content = json_object_get(item, "content");
            if (!role || !content) {
                lx_error_bad_request(err, p, "invalid_value", "Invalid item '%s': a message needs a role and content.", p);
                json_decref(pending);
                return LX_ERR;
            }
            json_t *m;
            if (strcmp(role, "assistant") == 0) {
                struct lx_buf b = {0};
                parts_text(content, &b);
                m = json_pack("{s:s,s:s}", "role", "assistant", "content", b.data ? b.data : "");
                lx_buf_free(&b);
                json_array_append_new(messages, m);
                assistant = m;
                continue;
            }
            if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
                /* "system": what every provider knows (OpenAI takes it for developer too). */
                struct lx_buf b = {0};
                parts_text(content, &b);
                m = json_pack("{s:s,s:s}", "role", "system", "content", b.data ? b.data : "");
                lx_buf_free(&b);
            } else {
                m = json_pack("{s:s,s:o}", "role", "user", "content",
                              is_str(content) ? json_incref(content) : user_content(content));
            }
            json_array_append_new(messages, m);
            assistant = NULL;
        } else if (strcmp(type, "function_call") == 0) {
            const char *args = str(item, "arguments");
            json_array_append_new(calling_message(messages, &assistant),
                                  json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", str(item, "call_id") ? str(item, "call_id") : "",
                                            "type", "function", "function", "name",
                                            str(item, "name") ? str(item, "name") : "", "arguments", args ? args : "{}"));
        } else if (strcmp(type, "function_call_output") == 0) {
            struct lx_buf b = {0};
            parts_text(json_object_get(item, "output"), &b);
            json_array_append_new(messages, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id",
                                                      str(item, "call_id") ? str(item, "call_id") : "", "content",
                                                      b.data ? b.data : ""));
            lx_buf_free(&b);
            assistant = NULL;
        } else if (strcmp(type, "reasoning") != 0) {
            lx_error_bad_request(err, p, "unsupported_item_type", "Item type '%s' cannot be sent to a chat model (see '%s').", type, p);
            json_decref(pending);
            return LX_ERR;
        }
    }
    flush_results(messages, pending, &assistant);
    json_decref(pending);
    return LX_OK;
}

/* ---- output items ---- */

static json_int_t int_at(json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* Chat usage → Responses usage; null without one. */
json_t *lx_responses_usage(json_t *u)
{
    if (!json_is_object(u))
        return json_null();
    json_int_t in = int_at(u, "prompt_tokens"), out = int_at(u, "completion_tokens");
    json_int_t total = json_is_integer(json_object_get(u, "total_tokens")) ? int_at(u, "total_tokens") : in + out;
    return json_pack("{s:I,s:{s:I},s:I,s:{s:I},s:I}", "input_tokens", in, "input_tokens_details", "cached_tokens",
                     int_at(json_object_get(u, "prompt_tokens_details"), "cached_tokens"), "output_tokens", out,
                     "output_tokens_details", "reasoning_tokens",
                     int_at(json_object_get(u, "completion_tokens_details"), "reasoning_tokens"), "total_tokens", total);
}

json_t *lx_responses_message_item(const char *status)
{
    char *id = lx_id_new("msg");
    json_t *m = json_pack("{s:s,s:s,s:s,s:[],s:s}", "id", id, "type", "message", "status", status, "content", "role",
                          "assistant");
    free(id);
    return m;
}

json_t *lx_responses_text_part(const char *text)
{
    return json_pack("{s:s,s:[],s:[],s:s}", "type", "output_text", "annotations", "logprobs", "text", text);
}

json_t *lx_responses_call_item(const char *call_id, const char *name, const char *args, const char *status)
{
    char *id = lx_id_new("fc");
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "type", "function_call", "status", status, "arguments",
                          args, "call_id", call_id, "name", name);
    free(id);
    return c;
}

/* Status, incomplete_details and completed_at from the pivot's finish_reason. */
void lx_responses_set_outcome(json_t *resp, const char *finish)
{
    const char *reason = NULL;
    if (finish && strcmp(finish, "length") == 0)
        reason = "max_output_tokens";
    else if (finish && strcmp(finish, "content_filter") == 0)
        reason = "content_filter";
    json_object_set_new(resp, "status", json_string(reason ? "incomplete" : "completed"));
    json_object_set_new(resp, "incomplete_details", reason ? json_pack("{s:s}", "reason", reason) : json_null());
    json_object_set_new(resp, "completed_at", reason ? json_null() : json_integer(lx_wall_s()));
}

/* ---- the history budget ---- */

/* About the length of v's compact JSON text, without writing it: string and number lengths plus the
 * punctuation around them. */
static size_t json_bytes(json_t *v)
{
    size_t n = 0, i;
    const char *k;
    json_t *x;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        json_object_foreach(v, k, x)
            n += strlen(k) + 4 + json_bytes(x);
        return n + 2;
    case JSON_ARRAY:
        json_array_foreach(v, i, x)
            n += json_bytes(x) + 1;
        return n + 2;
    case JSON_STRING:
        return json_string_length(v) + 2;
    default:
        return 6;
    }
}

static long item_tokens(json_t *item)
{
    return (long)(json_bytes(item) + 3) / 4;
}

long lx_responses_items_tokens(json_t *items)
{
    long n = 0;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
        n += item_tokens(item);
    return n;
}

static bool is_user_message(json_t *item)
{
    const char *type = str(item, "type"), *role = str(item, "role");
    return (!type || strcmp(type, "message") == 0) && role && strcmp(role, "user") == 0;
}

static bool is_instruction(json_t *item)
{
    const char *role = str(item, "role");
    return role && (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0);
}

json_t *lx_responses_fit(json_t *history, json_t *input, long budget, bool truncate, long *dropped,
                         struct lx_error *err)
{
    *dropped = 0;
    size_t n = json_array_size(history);
    long total = lx_responses_items_tokens(history) + lx_responses_items_tokens(input);
    if (budget <= 0 || total <= budget)
        return json_incref(history);
    if (!truncate) {
        char a[160];
        snprintf(a, sizeof a, "%ld tokens (estimated) against a budget of %ld", total, budget);
        lx_error_bad_request(err, "truncation", "context_length_exceeded",
            "The conversation's history and input come to %s, and truncation is 'disabled'. Set truncation to "
            "'auto' to drop the oldest turns, or start a new conversation.",
            a);
        return NULL;
    }
    /* Drop whole turns from the oldest, keeping instructions (system and developer messages). */
    bool *drop = lx_calloc(n ? n : 1, sizeof *drop);
    size_t start = 0;
    while (total > budget && start < n) {
        size_t end = start + 1;
        while (end < n && !is_user_message(json_array_get(history, end)))
            end++;
        for (size_t i = start; i < end; i++) {
            json_t *item = json_array_get(history, i);
            if (is_instruction(item))
                continue;
            drop[i] = true;
            total -= item_tokens(item);
            (*dropped)++;
        }
        start = end;
    }
    json_t *kept = json_array();
    for (size_t i = 0; i < n; i++)
        if (!drop[i])
            json_array_append(kept, json_array_get(history, i));
    free(drop);
    return kept;
}
