/* Anthropic Messages ⇄ OpenAI chat maps shared by the anthropic provider and the anthropic_messages
 * dialect (see anthropic_map.h). */
#include "anthropic_map.h"
#include "../src/core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool str_is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

static void bad_param(struct lx_error *err, const char *param, const char *why)
{
    lx_error_set(err, 400, "invalid_request_error", param, "unsupported_parameter", "%s", why);
}

/* --- stop reasons: one table, read both ways --- */

static const struct {
    const char *anthropic, *openai;
} lx_stop_map[] = {
    /* The first row naming an OpenAI reason is its inverse. */
    {"end_turn", "stop"},           {"max_tokens", "length"},      {"tool_use", "tool_calls"},
    {"refusal", "content_filter"},  {"stop_sequence", "stop"},     {"pause_turn", "stop"},
    {"model_context_window_exceeded", "length"}, {"tool_use", "function_call"},
};

const char *lx_anthropic_finish_reason(const char *stop_reason)
{
    if (!stop_reason)
        return NULL;
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_stop_map); i++)
        if (strcmp(lx_stop_map[i].anthropic, stop_reason) == 0)
            return lx_stop_map[i].openai;
    return "stop"; /* a reason added after this table: the answer is complete */
}

const char *lx_anthropic_stop_reason(const char *finish_reason, bool matched)
{
    if (str_is(finish_reason, "stop") && matched)
        return "stop_sequence";
    for (size_t i = 0; finish_reason && i < LX_ARRAY_LEN(lx_stop_map); i++)
        if (strcmp(lx_stop_map[i].openai, finish_reason) == 0)
            return lx_stop_map[i].anthropic;
    return "end_turn";
}

/* --- usage --- */

static json_int_t int_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 0;
}

json_t *lx_anthropic_usage_to_openai(json_t *u)
{
    json_int_t in = int_at(u, "input_tokens");
    json_int_t cw = int_at(u, "cache_creation_input_tokens");
    json_int_t cr = int_at(u, "cache_read_input_tokens");
    json_int_t out = int_at(u, "output_tokens");
    json_int_t prompt = in + cw + cr;
    json_t *details = json_pack("{s:I}", "cached_tokens", cr);
    if (cw)
        json_object_set_new(details, "cache_write_tokens", json_integer(cw));
    return json_pack("{s:I,s:I,s:I,s:o}", "prompt_tokens", prompt, "completion_tokens", out, "total_tokens",
                     prompt + out, "prompt_tokens_details", details);
}

json_t *lx_anthropic_usage_from_openai(json_t *u)
{
    json_t *details = json_object_get(u, "prompt_tokens_details");
    json_int_t prompt = int_at(u, "prompt_tokens");
    json_int_t cr = int_at(details, "cached_tokens");
    json_int_t cw = int_at(details, "cache_write_tokens");
    json_int_t in = prompt - cr - cw;
    return json_pack("{s:I,s:I,s:I,s:{s:I,s:i},s:I}", "input_tokens", in > 0 ? in : 0,
                     "cache_creation_input_tokens", cw, "cache_read_input_tokens", cr, "cache_creation",
                     "ephemeral_5m_input_tokens", cw, "ephemeral_1h_input_tokens", 0, "output_tokens",
                     int_at(u, "completion_tokens"));
}

/* --- content: OpenAI → Anthropic --- */

/* Split a "data:<type>;base64,<data>" URL. False when url is not one. */
static bool data_url(const char *url, const char **type, size_t *type_len, const char **data)
{
    if (strncmp(url, "data:", 5) != 0)
        return false;
    const char *semi = strchr(url, ';');
    const char *comma = strchr(url, ',');
    if (!semi || !comma || semi > comma || strncmp(semi, ";base64,", 8) != 0)
        return false;
    *type = url + 5;
    *type_len = (size_t)(semi - url - 5);
    *data = comma + 1;
    return true;
}

static bool http_url(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

json_t *lx_anthropic_image_from_openai(json_t *part, const char *param, struct lx_error *err)
{
    json_t *iu = json_object_get(part, "image_url");
    const char *url = json_string_value(json_is_object(iu) ? json_object_get(iu, "url") : iu);
    if (!url) {
        bad_param(err, param, "image_url.url must be a string.");
        return NULL;
    }
    const char *type, *data;
    size_t type_len;
    if (data_url(url, &type, &type_len, &data))
        return json_pack("{s:s,s:{s:s,s:s%,s:s}}", "type", "image", "source", "type", "base64", "media_type", type,
                         type_len, "data", data);
    if (strncmp(url, "data:", 5) == 0) {
        bad_param(err, param, "Image data URLs must be base64: data:<media type>;base64,<data>.");
        return NULL;
    }
    if (http_url(url))
        return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
    bad_param(err, param, "Images must be data: or http(s) URLs.");
    return NULL;
}

json_t *lx_anthropic_document_from_openai(json_t *part, const char *param, struct lx_error *err)
{
    json_t *file = json_object_get(part, "file");
    const char *fd = json_string_value(json_object_get(file, "file_data"));
    const char *furl = json_string_value(json_object_get(file, "file_url"));
    const char *type, *data;
    size_t type_len;
    json_t *block = NULL;
    if (fd && data_url(fd, &type, &type_len, &data) && type_len == 15 && strncmp(type, "application/pdf", 15) == 0)
        block = json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "document", "source", "type", "base64", "media_type",
                          "application/pdf", "data", data);
    else if (!fd && furl && http_url(furl))
        block = json_pack("{s:s,s:{s:s,s:s}}", "type", "document", "source", "type", "url", "url", furl);
    if (!block) {
        bad_param(err, param, "Anthropic models read files given as PDF data: file.file_data must be "
                              "data:application/pdf;base64,<data>.");
        return NULL;
    }
    json_t *name = json_object_get(file, "filename");
    if (json_is_string(name))
        json_object_set(block, "title", name);
    return block;
}

json_t *lx_anthropic_blocks_from_openai(json_t *content, const char *param, struct lx_error *err)
{
    json_t *blocks = json_array();
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text", content));
        return blocks;
    }
    if (!content || json_is_null(content))
        return blocks;
    if (!json_is_array(content)) {
        bad_param(err, param, "Message content must be a string or an array of parts.");
        json_decref(blocks);
        return NULL;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        char pp[160];
        snprintf(pp, sizeof pp, "%s[%zu]", param, i);
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *b = NULL;
        if (str_is(type, "text")) {
            json_t *text = json_object_get(part, "text");
            if (json_is_string(text))
                b = json_pack("{s:s,s:O}", "type", "text", "text", text);
            else
                bad_param(err, pp, "A text part needs a string 'text'.");
        } else if (str_is(type, "image_url")) {
            b = lx_anthropic_image_from_openai(part, pp, err);
        } else if (str_is(type, "file")) {
            b = lx_anthropic_document_from_openai(part, pp, err);
        } else {
            char why[160];
            snprintf(why, sizeof why, "Content part type '%s' is not supported by Anthropic models.",
                     type ? type : "(none)");
            bad_param(err, pp, why);
        }
        if (!b) {
            json_decref(blocks);
            return NULL;
        }
        json_array_append_new(blocks, b);
    }
    return blocks;
}

json_t *lx_anthropic_tool_use_from_openai(json_t *tc)
{
    json_t *fn = json_object_get(tc, "function");
    const char *args = json_string_value(json_object_get(fn, "arguments"));
    json_t *input = args && *args ? json_loads(args, JSON_DECODE_ANY, NULL) : json_object();
    if (!json_is_object(input)) {
        json_decref(input);
        return NULL;
    }
    return json_pack("{s:s,s:O?,s:O?,s:o}", "type", "tool_use", "id", json_object_get(tc, "id"), "name",
                     json_object_get(fn, "name"), "input", input);
}

json_t *lx_anthropic_tool_from_openai(json_t *t)
{
    json_t *fn = json_object_get(t, "function");
    json_t *params = json_object_get(fn, "parameters");
    json_t *schema = json_is_object(params) ? json_incref(params) : json_pack("{s:s}", "type", "object");
    json_t *tool = json_pack("{s:O?,s:o}", "name", json_object_get(fn, "name"), "input_schema", schema);
    if (json_is_string(json_object_get(fn, "description")))
        json_object_set(tool, "description", json_object_get(fn, "description"));
    if (json_is_boolean(json_object_get(fn, "strict")))
        json_object_set(tool, "strict", json_object_get(fn, "strict"));
    return tool;
}

json_t *lx_anthropic_tool_choice_from_openai(json_t *tc, bool no_parallel, struct lx_error *err)
{
    json_t *out = NULL;
    const char *s = json_string_value(tc);
    if (str_is(s, "auto"))
        out = json_pack("{s:s}", "type", "auto");
    else if (str_is(s, "none"))
        out = json_pack("{s:s}", "type", "none");
    else if (str_is(s, "required"))
        out = json_pack("{s:s}", "type", "any");
    else if (json_is_object(tc)) {
        const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
        if (name)
            out = json_pack("{s:s,s:s}", "type", "tool", "name", name);
    }
    if (!out) {
        bad_param(err, "tool_choice", "tool_choice must be auto, none, required or a named function.");
        return NULL;
    }
    if (no_parallel && !str_is(json_string_value(json_object_get(out, "type")), "none"))
        json_object_set_new(out, "disable_parallel_tool_use", json_true());
    return out;
}

void lx_anthropic_thinking_from_openai(json_t *msg, json_t *blocks)
{
    json_t *details = json_object_get(msg, "reasoning_details");
    size_t i;
    json_t *d;
    if (json_is_array(details) && json_array_size(details)) {
        json_array_foreach(details, i, d) {
            const char *type = json_string_value(json_object_get(d, "type"));
            if (str_is(type, "reasoning.encrypted") && json_is_string(json_object_get(d, "data"))) {
                json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "redacted_thinking", "data",
                                                        json_object_get(d, "data")));
            } else if (str_is(type, "reasoning.text")) {
                json_t *text = json_object_get(d, "text");
                json_t *sig = json_object_get(d, "signature");
                json_array_append_new(blocks, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking",
                                                        json_is_string(text) ? json_string_value(text) : "",
                                                        "signature", json_is_string(sig) ? json_string_value(sig) : ""));
            }
        }
        return;
    }
    json_t *text = json_object_get(msg, "reasoning_content");
    if (!json_is_string(text))
        text = json_object_get(msg, "reasoning");
    if (json_string_length(text))
        json_array_append_new(blocks, json_pack("{s:s,s:O,s:s}", "type", "thinking", "thinking", text, "signature", ""));
}

/* --- content: Anthropic → OpenAI --- */

json_t *lx_anthropic_image_to_openai(json_t *block)
{
    json_t *src = json_object_get(block, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    if (str_is(type, "base64")) {
        const char *mt = json_string_value(json_object_get(src, "media_type"));
        const char *data = json_string_value(json_object_get(src, "data"));
        if (!mt || !data)
            return NULL;
        return json_pack("{s:s,s:{s:o}}", "type", "image_url", "image_url", "url",
                         json_sprintf("data:%s;base64,%s", mt, data));
    }
    if (str_is(type, "url") && json_is_string(json_object_get(src, "url")))
        return json_pack("{s:s,s:{s:O}}", "type", "image_url", "image_url", "url", json_object_get(src, "url"));
    return NULL;
}

json_t *lx_anthropic_tool_use_to_openai(json_t *b)
{
    json_t *input = json_object_get(b, "input");
    char *args = input ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_t *call = json_pack("{s:O?,s:s,s:{s:O?,s:s}}", "id", json_object_get(b, "id"), "type", "function",
                             "function", "name", json_object_get(b, "name"), "arguments", args ? args : "{}");
    free(args);
    return call;
}

void lx_anthropic_blocks_to_openai(json_t *blocks, json_t *msg, bool with_thinking)
{
    struct lx_buf text = {0}, thought = {0};
    json_t *calls = json_array();
    json_t *details = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (str_is(type, "text")) {
            json_t *t = json_object_get(b, "text");
            lx_buf_append(&text, json_string_value(t) ? json_string_value(t) : "", json_string_length(t));
        } else if (str_is(type, "tool_use")) {
            json_array_append_new(calls, lx_anthropic_tool_use_to_openai(b));
        } else if (with_thinking && str_is(type, "thinking")) {
            json_t *t = json_object_get(b, "thinking");
            lx_buf_append(&thought, json_string_value(t) ? json_string_value(t) : "", json_string_length(t));
            json_array_append_new(details, json_pack("{s:s,s:O?,s:O?,s:I}", "type", "reasoning.text", "text", t,
                                                     "signature", json_object_get(b, "signature"), "index",
                                                     (json_int_t)json_array_size(details)));
        } else if (with_thinking && str_is(type, "redacted_thinking")) {
            json_array_append_new(details, json_pack("{s:s,s:O?,s:I}", "type", "reasoning.encrypted", "data",
                                                     json_object_get(b, "data"), "index",
                                                     (json_int_t)json_array_size(details)));
        }
    }
    bool tools = json_array_size(calls) > 0;
    json_object_set_new(msg, "content", text.len || !tools ? json_stringn(text.data ? text.data : "", text.len)
                                                           : json_null());
    if (tools)
        json_object_set(msg, "tool_calls", calls);
    if (json_array_size(details)) {
        json_object_set(msg, "reasoning_details", details);
        json_object_set_new(msg, "reasoning_content", json_stringn(thought.data ? thought.data : "", thought.len));
    }
    json_decref(calls);
    json_decref(details);
    lx_buf_free(&text);
    lx_buf_free(&thought);
}

json_t *lx_anthropic_tool_to_openai(json_t *t)
{
    json_t *schema = json_object_get(t, "input_schema");
    json_t *fn = json_pack("{s:O?,s:o}", "name", json_object_get(t, "name"), "parameters",
                           json_is_object(schema) ? json_incref(schema) : json_pack("{s:s}", "type", "object"));
    if (json_is_string(json_object_get(t, "description")))
        json_object_set(fn, "description", json_object_get(t, "description"));
    if (json_is_boolean(json_object_get(t, "strict")))
        json_object_set(fn, "strict", json_object_get(t, "strict"));
    return json_pack("{s:s,s:o}", "type", "function", "function", fn);
}

json_t *lx_anthropic_tool_choice_to_openai(json_t *tc, bool *no_parallel)
{
    const char *type = json_string_value(json_object_get(tc, "type"));
    *no_parallel = json_is_true(json_object_get(tc, "disable_parallel_tool_use"));
    if (str_is(type, "auto"))
        return json_string("auto");
    if (str_is(type, "any"))
        return json_string("required");
    if (str_is(type, "none")) {
        *no_parallel = false;
        return json_string("none");
    }
    if (str_is(type, "tool") && json_is_string(json_object_get(tc, "name")))
        return json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name", json_object_get(tc, "name"));
    return NULL;
}

/* --- errors --- */

const char *lx_anthropic_error_type(const struct lx_error *err)
{
    /* Types specific enough to keep whatever the status (an upstream Anthropic error, a 529 relayed). */
    static const char *const kept[] = {"overloaded_error", "billing_error", "timeout_error", "request_too_large",
                                       "rate_limit_error", "authentication_error", "permission_error",
                                       "not_found_error"};
    for (size_t i = 0; err->type && i < LX_ARRAY_LEN(kept); i++)
        if (strcmp(err->type, kept[i]) == 0)
            return kept[i];
    switch (err->status) {
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 408:
    case 504: return "timeout_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return err->status >= 500 ? "api_error" : "invalid_request_error";
    }
}
