/* Inbound dialect "anthropic_messages": the Anthropic Messages API (POST /v1/messages) that Claude Code
 * and the Anthropic SDKs speak, to and from the OpenAI chat pivot. This file: the request (validated the
 * way Anthropic does, errors named by Anthropic's paths such as messages.0.content.1), the non-stream
 * answer, the error body and the table; anthropic_stream.c encodes streams, anthropic_tokens.c estimates
 * tokens. The maps shared with the anthropic provider are in providers/anthropic_map.c. */
#include "anthropic_messages.h"
#include "../providers/anthropic_map.h"
#include "../src/core/common.h"
#include "../src/core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What building the pivot collects besides the pivot itself. */
struct parse {
    json_t *lost;      /* client parameters the pivot cannot carry (unique names) */
    json_t *needs;     /* {"anthropic": why, "pdf": where} */
    struct lx_error *err;
};

static bool str_is(const char *s, const char *want)
{
    return s && strcmp(s, want) == 0;
}

/* A field that may be absent or null (Claude Code sends nulls for fields it leaves unset). */
static json_t *opt(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static int bad(struct parse *ps, const char *path, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(struct parse *ps, const char *path, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lx_error_set(ps->err, 400, "invalid_request_error", path, code, "%s: %s", path, msg);
    return LX_ERR;
}

static void lose(struct parse *ps, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(ps->lost, i, v)
        if (strcmp(json_string_value(v), name) == 0)
            return;
    json_array_append_new(ps->lost, json_string(name));
}

/* Record that the request needs a target of this kind ("anthropic", "pdf"); the first reason is kept. */
static void need(struct parse *ps, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void need(struct parse *ps, const char *kind, const char *fmt, ...)
{
    if (json_object_get(ps->needs, kind))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object_set_new(ps->needs, kind, json_string(msg));
}

static void note_cache_control(struct parse *ps, json_t *obj)
{
    if (opt(obj, "cache_control"))
        lose(ps, "cache_control");
}

static json_t *text_part(const char *text, size_t len)
{
    return json_pack("{s:s,s:s%}", "type", "text", "text", text, len);
}

/* An image block → an image_url part appended to parts. */
static int image(struct parse *ps, json_t *b, const char *path, json_t *parts)
{
    json_t *src = opt(b, "source");
    const char *type = json_string_value(opt(src, "type"));
    json_t *part = lx_anthropic_image_to_openai(b);
    if (part) {
        json_array_append_new(parts, part);
        return LX_OK;
    }
    if (str_is(type, "file")) {
        need(ps, "anthropic", "%s.source: images given by file_id are read by Anthropic-type targets only", path);
        return LX_OK;
    }
    return bad(ps, path, "invalid_value",
               "an image source must be {\"type\":\"base64\",\"media_type\",\"data\"} or {\"type\":\"url\",\"url\"}");
}

/* A document block → parts: text sources as text, PDFs as OpenAI file parts. */
static int document(struct parse *ps, json_t *b, const char *path, json_t *parts)
{
    json_t *src = opt(b, "source");
    const char *type = json_string_value(opt(src, "type"));
    json_t *title = opt(b, "title");
    if (str_is(type, "text") && json_is_string(opt(src, "data"))) {
        json_t *data = opt(src, "data");
        json_array_append_new(parts, text_part(json_string_value(data), json_string_length(data)));
    } else if (str_is(type, "content") && json_is_string(opt(src, "content"))) {
        json_t *c = opt(src, "content");
        json_array_append_new(parts, text_part(json_string_value(c), json_string_length(c)));
    } else if (str_is(type, "content") && json_is_array(opt(src, "content"))) {
        size_t i;
        json_t *cb;
        json_array_foreach(opt(src, "content"), i, cb) {
            char cp[128];
            snprintf(cp, sizeof cp, "%s.source.content.%zu", path, i);
            const char *ct = json_string_value(opt(cb, "type"));
            if (str_is(ct, "text") && json_is_string(opt(cb, "text")))
                json_array_append_new(parts, text_part(json_string_value(opt(cb, "text")),
                                                       json_string_length(opt(cb, "text"))));
            else if (str_is(ct, "image") && image(ps, cb, cp, parts) != LX_OK)
                return LX_ERR;
            else if (!str_is(ct, "text") && !str_is(ct, "image"))
                return bad(ps, cp, "invalid_value", "a document's content blocks must be text or image blocks");
        }
    } else if (str_is(type, "base64") && str_is(json_string_value(opt(src, "media_type")), "application/pdf") &&
               json_is_string(opt(src, "data"))) {
        need(ps, "pdf", "%s", path);
        json_t *file = json_pack("{s:o}", "file_data", json_sprintf("data:application/pdf;base64,%s",
                                                                    json_string_value(opt(src, "data"))));
        json_object_set_new(file, "filename", json_is_string(title) ? json_incref(title) : json_string("document.pdf"));
        json_array_append_new(parts, json_pack("{s:s,s:o}", "type", "file", "file", file));
    } else if ((str_is(type, "url") && json_is_string(opt(src, "url"))) || str_is(type, "file")) {
        need(ps, "anthropic", "%s.source: documents given by %s are read by Anthropic-type targets only", path,
             str_is(type, "url") ? "URL" : "file_id");
        if (str_is(type, "url"))
            json_array_append_new(parts, json_pack("{s:s,s:{s:O}}", "type", "file", "file", "file_url", opt(src, "url")));
    } else {
        return bad(ps, path, "invalid_value",
                   "a document source must be base64 PDF, plain text, content blocks, a URL or a file_id");
    }
    if (opt(b, "citations") || opt(b, "context"))
        lose(ps, "document.citations");
    return LX_OK;
}

/* A tool_result block → a pivot tool message appended to out; its images (which OpenAI tool messages
 * cannot hold) go to `after`, a user turn that follows the tool messages. */
static int tool_result(struct parse *ps, json_t *b, const char *path, json_t *out, json_t *after)
{
    json_t *id = opt(b, "tool_use_id");
    if (!json_is_string(id))
        return bad(ps, path, "missing_required_parameter", "tool_result blocks need a string tool_use_id");
    struct lx_buf text = {0};
    if (json_is_true(opt(b, "is_error")))
        lx_buf_puts(&text, "Error: "); /* no OpenAI tool message field says so: the text does */
    json_t *content = opt(b, "content");
    int rc = LX_OK;
    if (json_is_string(content)) {
        lx_buf_append(&text, json_string_value(content), json_string_length(content));
    } else if (json_is_array(content)) {
        size_t i;
        json_t *cb;
        bool first = true;
        json_array_foreach(content, i, cb) {
            char cp[128];
            snprintf(cp, sizeof cp, "%s.content.%zu", path, i);
            const char *ct = json_string_value(opt(cb, "type"));
            note_cache_control(ps, cb);
            if (str_is(ct, "text") && json_is_string(opt(cb, "text"))) {
                if (!first)
                    lx_buf_puts(&text, "\n");
                lx_buf_append(&text, json_string_value(opt(cb, "text")), json_string_length(opt(cb, "text")));
                first = false;
            } else if (str_is(ct, "image")) {
                rc = image(ps, cb, cp, after);
            } else if (str_is(ct, "document")) {
                rc = document(ps, cb, cp, after);
            } else if (ct) {
                need(ps, "anthropic", "%s: '%s' blocks in tool results are read by Anthropic-type targets only", cp, ct);
            } else {
                rc = bad(ps, cp, "invalid_value", "a tool result's content blocks need a type");
            }
            if (rc != LX_OK)
                break;
        }
    } else if (content) {
        rc = bad(ps, path, "invalid_type", "tool_result content must be a string or an array of blocks");
    }
    if (rc == LX_OK)
        json_array_append_new(out, json_pack("{s:s,s:O,s:s%}", "role", "tool", "tool_call_id", id, "content",
                                             text.data ? text.data : "", text.len));
    lx_buf_free(&text);
    return rc;
}

/* The blocks of a user (or system) turn → pivot messages appended to out. Tool results come first, as
 * OpenAI wants them right after the assistant's calls. */
static int user_blocks(struct parse *ps, const char *role, json_t *content, const char *path, json_t *out)
{
    json_t *parts = json_array(), *after = json_array();
    size_t i;
    json_t *b;
    int rc = LX_OK;
    json_array_foreach(content, i, b) {
        char bp[96];
        snprintf(bp, sizeof bp, "%s.%zu", path, i);
        const char *type = json_string_value(opt(b, "type"));
        note_cache_control(ps, b);
        if (!json_is_object(b) || !type) {
            rc = bad(ps, bp, "invalid_value", "content blocks must be objects with a type");
        } else if (str_is(type, "text")) {
            json_t *t = opt(b, "text");
            if (!json_is_string(t))
                rc = bad(ps, bp, "invalid_type", "text blocks need a string text");
            else
                json_array_append_new(parts, text_part(json_string_value(t), json_string_length(t)));
            if (opt(b, "citations"))
                lose(ps, "text.citations");
        } else if (str_is(role, "system")) {
            rc = bad(ps, bp, "invalid_value", "system content blocks must be text blocks");
        } else if (str_is(type, "image")) {
            rc = image(ps, b, bp, parts);
        } else if (str_is(type, "document")) {
            rc = document(ps, b, bp, parts);
        } else if (str_is(type, "tool_result")) {
            rc = tool_result(ps, b, bp, out, after);
        } else if (str_is(type, "tool_use")) {
            rc = bad(ps, bp, "invalid_value", "tool_use blocks belong in assistant messages");
        } else if (!str_is(type, "thinking") && !str_is(type, "redacted_thinking")) {
            need(ps, "anthropic", "%s: '%s' blocks are read by Anthropic-type targets only", bp, type);
        }
        if (rc != LX_OK)
            break;
    }
    if (rc == LX_OK) {
        json_array_extend(parts, after);
        size_t n = json_array_size(parts);
        json_t *p0 = json_array_get(parts, 0);
        if (n == 1 && str_is(json_string_value(json_object_get(p0, "type")), "text"))
            json_array_append_new(out, json_pack("{s:s,s:O}", "role", role, "content", json_object_get(p0, "text")));
        else if (n)
            json_array_append_new(out, json_pack("{s:s,s:O}", "role", role, "content", parts));
    }
    json_decref(parts);
    json_decref(after);
    return rc;
}

/* An assistant turn's blocks → one pivot assistant message (text and tool calls; thinking is the
 * target's own business, carried by the native body only). */
static int assistant_blocks(struct parse *ps, json_t *content, const char *path, json_t *out)
{
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        char bp[96];
        snprintf(bp, sizeof bp, "%s.%zu", path, i);
        const char *type = json_string_value(opt(b, "type"));
        note_cache_control(ps, b);
        if (!json_is_object(b) || !type)
            return bad(ps, bp, "invalid_value", "content blocks must be objects with a type");
        if (str_is(type, "text") && !json_is_string(opt(b, "text")))
            return bad(ps, bp, "invalid_type", "text blocks need a string text");
        if (str_is(type, "tool_use") && (!json_is_string(opt(b, "id")) || !json_is_string(opt(b, "name"))))
            return bad(ps, bp, "missing_required_parameter", "tool_use blocks need a string id and name");
        if (!str_is(type, "text") && !str_is(type, "tool_use") && !str_is(type, "thinking") &&
            !str_is(type, "redacted_thinking"))
            need(ps, "anthropic", "%s: '%s' blocks are read by Anthropic-type targets only", bp, type);
    }
    json_t *msg = json_pack("{s:s}", "role", "assistant");
    lx_anthropic_blocks_to_openai(content, msg, false);
    if (json_is_null(json_object_get(msg, "content")) || json_string_length(json_object_get(msg, "content")) ||
        json_object_get(msg, "tool_calls"))
        json_array_append_new(out, msg);
    else
        json_decref(msg); /* only thinking: nothing for the pivot */
    return LX_OK;
}

static int messages(struct parse *ps, json_t *root, json_t *out)
{
    json_t *msgs = opt(root, "messages");
    if (!msgs)
        return bad(ps, "messages", "missing_required_parameter", "Field required");
    if (!json_is_array(msgs))
        return bad(ps, "messages", "invalid_type", "Input should be a valid list");
    if (json_array_size(msgs) == 0)
        return bad(ps, "messages", "empty_array", "at least one message is required");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        char mp[48], cp[64];
        snprintf(mp, sizeof mp, "messages.%zu", i);
        snprintf(cp, sizeof cp, "messages.%zu.content", i);
        if (!json_is_object(m))
            return bad(ps, mp, "invalid_type", "Input should be an object");
        const char *role = json_string_value(opt(m, "role"));
        if (!str_is(role, "user") && !str_is(role, "assistant") && !str_is(role, "system")) {
            snprintf(mp, sizeof mp, "messages.%zu.role", i);
            return bad(ps, mp, "invalid_value", "Input should be 'user' or 'assistant'");
        }
        json_t *content = opt(m, "content");
        int rc = LX_OK;
        if (json_is_string(content))
            json_array_append_new(out, json_pack("{s:s,s:O}", "role", role, "content", content));
        else if (!json_is_array(content))
            rc = bad(ps, cp, content ? "invalid_type" : "missing_required_parameter",
                     "Input should be a string or a list of content blocks");
        else if (str_is(role, "assistant"))
            rc = assistant_blocks(ps, content, cp, out);
        else
            rc = user_blocks(ps, role, content, cp, out);
        if (rc != LX_OK)
            return rc;
    }
    return LX_OK;
}

static int system_prompt(struct parse *ps, json_t *root, json_t *out)
{
    json_t *sys = opt(root, "system");
    if (!sys)
        return LX_OK;
    if (json_is_string(sys)) {
        if (json_string_length(sys))
            json_array_append_new(out, json_pack("{s:s,s:O}", "role", "system", "content", sys));
        return LX_OK;
    }
    if (!json_is_array(sys))
        return bad(ps, "system", "invalid_type", "Input should be a string or a list of text blocks");
    json_t *msgs = json_array();
    int rc = user_blocks(ps, "system", sys, "system", msgs);
    /* Several text blocks make one system message: their text joined, as every target reads a string. */
    json_t *m = json_array_get(msgs, 0);
    json_t *c = json_object_get(m, "content");
    if (rc == LX_OK && json_is_array(c)) {
        struct lx_buf text = {0};
        size_t i;
        json_t *part;
        json_array_foreach(c, i, part) {
            if (i)
                lx_buf_puts(&text, "\n\n");
            lx_buf_puts(&text, json_string_value(json_object_get(part, "text")));
        }
        json_object_set_new(m, "content", json_stringn(text.data ? text.data : "", text.len));
        lx_buf_free(&text);
    }
    if (rc == LX_OK && m)
        json_array_append(out, m);
    json_decref(msgs);
    return rc;
}

/* Tool types Anthropic defines and runs or knows the schema of (web_search_20250305, bash_20250124,
 * text_editor_..., computer_..., code_execution_..., memory_...): only Anthropic-type targets take them. */
static int tools(struct parse *ps, json_t *root, json_t *pivot)
{
    json_t *list = opt(root, "tools");
    if (!list)
        return LX_OK;
    if (!json_is_array(list))
        return bad(ps, "tools", "invalid_type", "Input should be a valid list");
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t) {
        char tp[48];
        snprintf(tp, sizeof tp, "tools.%zu", i);
        const char *type = json_string_value(opt(t, "type"));
        note_cache_control(ps, t);
        if (!json_is_object(t) || !json_is_string(opt(t, "name"))) {
            json_decref(out);
            return bad(ps, tp, "missing_required_parameter", "tools need a string name");
        }
        if (type && !str_is(type, "custom")) {
            need(ps, "anthropic", "%s: the '%s' tool is defined by Anthropic; only Anthropic-type targets take it", tp,
                 type);
            continue;
        }
        if (!json_is_object(opt(t, "input_schema"))) {
            json_decref(out);
            snprintf(tp, sizeof tp, "tools.%zu.input_schema", i);
            return bad(ps, tp, "missing_required_parameter", "Field required (an object: the tool's JSON Schema)");
        }
        json_array_append_new(out, lx_anthropic_tool_to_openai(t));
    }
    if (json_array_size(out))
        json_object_set_new(pivot, "tools", out);
    else
        json_decref(out);
    return LX_OK;
}

static int tool_choice(struct parse *ps, json_t *root, json_t *pivot)
{
    json_t *tc = opt(root, "tool_choice");
    if (!tc)
        return LX_OK;
    bool no_parallel = false;
    json_t *otc = json_is_object(tc) ? lx_anthropic_tool_choice_to_openai(tc, &no_parallel) : NULL;
    if (!otc)
        return bad(ps, "tool_choice", "invalid_value",
                   "expected {\"type\": \"auto\"}, {\"type\": \"any\"}, {\"type\": \"tool\", \"name\": ...} or "
                   "{\"type\": \"none\"}");
    json_object_set_new(pivot, "tool_choice", otc);
    if (no_parallel)
        json_object_set_new(pivot, "parallel_tool_calls", json_false());
    return LX_OK;
}

static int number(struct parse *ps, json_t *root, const char *key, json_t *pivot)
{
    json_t *v = opt(root, key);
    if (!v)
        return LX_OK;
    if (!json_is_number(v))
        return bad(ps, key, "invalid_type", "Input should be a valid number");
    json_object_set(pivot, key, v);
    return LX_OK;
}

static int sampling(struct parse *ps, json_t *root, json_t *pivot)
{
    if (number(ps, root, "temperature", pivot) != LX_OK || number(ps, root, "top_p", pivot) != LX_OK)
        return LX_ERR;
    json_t *top_k = opt(root, "top_k");
    if (top_k && !json_is_integer(top_k))
        return bad(ps, "top_k", "invalid_type", "Input should be a valid integer");
    if (top_k)
        lose(ps, "top_k");
    json_t *stops = opt(root, "stop_sequences");
    if (stops) {
        size_t i;
        json_t *s;
        if (!json_is_array(stops))
            return bad(ps, "stop_sequences", "invalid_type", "Input should be a valid list");
        json_array_foreach(stops, i, s)
            if (!json_is_string(s))
                return bad(ps, "stop_sequences", "invalid_type", "stop sequences must be strings");
        if (json_array_size(stops))
            json_object_set(pivot, "stop", stops);
    }
    json_t *md = opt(root, "metadata");
    if (md && !json_is_object(md))
        return bad(ps, "metadata", "invalid_type", "Input should be an object");
    if (json_is_string(opt(md, "user_id")))
        json_object_set(pivot, "user", opt(md, "user_id"));
    return LX_OK;
}

/* thinking: {"type":"enabled","budget_tokens":N} | {"type":"adaptive"} | {"type":"disabled"}. */
static int thinking(struct parse *ps, json_t *root, bool *on)
{
    json_t *th = opt(root, "thinking");
    *on = false;
    if (!th)
        return LX_OK;
    const char *type = json_string_value(opt(th, "type"));
    if (!json_is_object(th) || !(str_is(type, "enabled") || str_is(type, "adaptive") || str_is(type, "disabled")))
        return bad(ps, "thinking", "invalid_value", "expected {\"type\": \"enabled\", \"budget_tokens\": N}, "
                                                     "{\"type\": \"adaptive\"} or {\"type\": \"disabled\"}");
    if (str_is(type, "enabled") && !json_is_integer(opt(th, "budget_tokens")))
        return bad(ps, "thinking.budget_tokens", "missing_required_parameter", "Field required (an integer)");
    *on = !str_is(type, "disabled");
    if (*on)
        lose(ps, "thinking");
    return LX_OK;
}

/* output_config.format json_schema → response_format; the rest of output_config has no pivot form. */
static int output_config(struct parse *ps, json_t *root, json_t *pivot)
{
    json_t *oc = opt(root, "output_config");
    if (!oc)
        return LX_OK;
    if (!json_is_object(oc))
        return bad(ps, "output_config", "invalid_type", "Input should be an object");
    json_t *fmt = opt(oc, "format");
    if (fmt) {
        if (!str_is(json_string_value(opt(fmt, "type")), "json_schema") || !json_is_object(opt(fmt, "schema")))
            return bad(ps, "output_config.format", "invalid_value",
                       "expected {\"type\": \"json_schema\", \"schema\": {...}}");
        json_object_set_new(pivot, "response_format",
                            json_pack("{s:s,s:{s:s,s:O}}", "type", "json_schema", "json_schema", "name", "output",
                                      "schema", opt(fmt, "schema")));
    }
    if (opt(oc, "effort"))
        lose(ps, "output_config.effort");
    return LX_OK;
}

/* Top-level fields the translation reads; any other non-null one is lost to non-Anthropic targets. */
static const char *const lx_anthropic_read[] = {
    "model", "messages", "system", "max_tokens", "stream", "tools", "tool_choice", "temperature", "top_p", "top_k",
    "stop_sequences", "metadata", "thinking", "output_config", NULL,
};

static bool is_read(const char *key)
{
    for (size_t i = 0; lx_anthropic_read[i]; i++)
        if (strcmp(lx_anthropic_read[i], key) == 0)
            return true;
    return false;
}

/* The whole translation; `count`: for count_tokens (max_tokens not required, no stream). */
static json_t *parse_body(const char *body, size_t len, struct lx_dialect_req *rq, struct lx_error *err, bool count)
{
    memset(rq, 0, sizeof *rq);
    json_t *root = lx_json_parse_object(body, len, err);
    if (!root)
        return NULL;
    struct parse ps = {.lost = json_array(), .needs = json_object(), .err = err};
    json_t *pivot = json_object();
    json_t *msgs = json_array();
    json_t *model = opt(root, "model");
    json_t *max = opt(root, "max_tokens");
    json_t *stream = opt(root, "stream");
    bool think = false;
    int rc = LX_OK;
    if (!model)
        rc = bad(&ps, "model", "missing_required_parameter", "Field required");
    else if (!json_is_string(model) || json_string_length(model) == 0)
        rc = bad(&ps, "model", "invalid_type", "Input should be a non-empty string");
    else if (!count && !max)
        rc = bad(&ps, "max_tokens", "missing_required_parameter", "Field required");
    else if (!count && (!json_is_integer(max) || json_integer_value(max) < 0))
        rc = bad(&ps, "max_tokens", "invalid_type", "Input should be a non-negative integer");
    else if (stream && !json_is_boolean(stream))
        rc = bad(&ps, "stream", "invalid_type", "Input should be a valid boolean");
    if (rc == LX_OK)
        rc = system_prompt(&ps, root, msgs);
    if (rc == LX_OK)
        rc = messages(&ps, root, msgs);
    if (rc == LX_OK)
        rc = tools(&ps, root, pivot);
    if (rc == LX_OK)
        rc = tool_choice(&ps, root, pivot);
    if (rc == LX_OK)
        rc = sampling(&ps, root, pivot);
    if (rc == LX_OK)
        rc = thinking(&ps, root, &think);
    if (rc == LX_OK)
        rc = output_config(&ps, root, pivot);
    if (rc != LX_OK) {
        json_decref(ps.lost);
        json_decref(ps.needs);
        json_decref(pivot);
        json_decref(msgs);
        json_decref(root);
        return NULL;
    }
    note_cache_control(&ps, root);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!is_read(key) && !json_is_null(v) && strcmp(key, "cache_control") != 0)
            lose(&ps, key);
    }
    json_object_set(pivot, "model", model);
    json_object_set_new(pivot, "messages", msgs);
    rq->stream = !count && json_is_true(stream);
    if (!count)
        json_object_set(pivot, "max_tokens", max);
    if (rq->stream) {
        json_object_set_new(pivot, "stream", json_true());
        json_object_set_new(pivot, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    rq->model = lx_strdup(json_string_value(model));
    rq->include_usage = true;
    rq->prompt_tokens_estimate = lx_anthropic_tokens_estimate(root);
    rq->priv = json_pack("{s:o,s:b}", "native", root, "thinking", think);
    if (json_array_size(ps.lost))
        json_object_set(rq->priv, "lost", ps.lost);
    if (json_object_size(ps.needs))
        json_object_set(rq->priv, "needs", ps.needs);
    json_decref(ps.lost);
    json_decref(ps.needs);
    return pivot;
}

static json_t *anthropic_parse(const char *body, size_t len, struct lx_dialect_req *rq, struct lx_error *err)
{
    return parse_body(body, len, rq, err, false);
}

json_t *lx_anthropic_messages_parse_count(const char *body, size_t len, struct lx_dialect_req *rq,
                                          struct lx_error *err)
{
    return parse_body(body, len, rq, err, true);
}

/* --- what the API layer asks once the target is known --- */

int lx_anthropic_messages_check_target(const struct lx_dialect_req *rq, const struct lx_anthropic_target *t,
                                       struct lx_error *err)
{
    if (t->anthropic)
        return LX_OK;
    json_t *needs = json_object_get(rq->priv, "needs");
    const char *why = json_string_value(json_object_get(needs, "anthropic"));
    const char *pdf = json_string_value(json_object_get(needs, "pdf"));
    if (why) {
        lx_error_set(err, 400, "invalid_request_error", NULL, "unsupported_content", "%s; model '%s' is routed to '%s' (%s).",
                     why, rq->model ? rq->model : "", t->label, t->type);
        return LX_ERR;
    }
    if (pdf && !t->reads_pdf) {
        lx_error_set(err, 400, "invalid_request_error", pdf, "unsupported_content",
                     "%s: PDF documents are read by Anthropic- and OpenAI-type targets; model '%s' is routed to '%s' (%s).",
                     pdf, rq->model ? rq->model : "", t->label, t->type);
        return LX_ERR;
    }
    return LX_OK;
}

json_t *lx_anthropic_messages_native(const struct lx_dialect_req *rq)
{
    return json_object_get(rq->priv, "native");
}

/* Pivot parameters → the Anthropic parameters they came from. Not listed: the same name. */
static const char *const lx_pivot_names[][2] = {
    {"user", "metadata.user_id"},
    {"stop", "stop_sequences"},
    {"parallel_tool_calls", "tool_choice.disable_parallel_tool_use"},
    {"response_format", "output_config.format"},
    {"stream_options", NULL}, /* the dialect's own: not the client's */
};

static void add_name(struct lx_buf *b, const char *name, size_t len)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_pivot_names); i++) {
        if (strlen(lx_pivot_names[i][0]) == len && strncmp(lx_pivot_names[i][0], name, len) == 0) {
            name = lx_pivot_names[i][1];
            if (!name)
                return;
            len = strlen(name);
            break;
        }
    }
    lx_buf_printf(b, "%s%.*s", b->len ? "," : "", (int)len, name);
}

char *lx_anthropic_messages_dropped(const struct lx_dialect_req *rq, const char *dropped)
{
    (void)rq;
    struct lx_buf b = {0};
    for (const char *p = dropped; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n)
            add_name(&b, p, n);
        p = comma ? comma + 1 : p + n;
    }
    return b.len ? lx_buf_steal(&b, NULL) : NULL;
}

json_t *lx_anthropic_messages_native_request(const struct lx_dialect_req *rq, const char *version, const char *beta)
{
    json_t *headers = json_object();
    if (version)
        json_object_set_new(headers, "anthropic-version", json_string(version));
    if (beta)
        json_object_set_new(headers, "anthropic-beta", json_string(beta));
    json_t *lost = json_object_get(rq->priv, "lost");
    return json_pack("{s:s,s:O,s:o,s:o}", "api", lx_dialect_anthropic_messages.name, "body",
                     lx_anthropic_messages_native(rq), "headers", headers, "lost",
                     lost ? json_incref(lost) : json_array());
}

/* --- answers --- */

/* "msg_..." ids are kept, others prefixed; without one, a process-unique id (one thread: a counter). */
json_t *lx_anthropic_message_id(json_t *id)
{
    static unsigned long long n;
    const char *s = json_string_value(id);
    if (s && strncmp(s, "msg_", 4) == 0)
        return json_string(s);
    if (s && *s)
        return json_sprintf("msg_%s", s);
    return json_sprintf("msg_llmux_%llx_%llu", (unsigned long long)lx_wall_s(), ++n);
}

/* The text of an OpenAI message content (a string or text parts), or NULL. */
static void content_text(json_t *content, struct lx_buf *out)
{
    if (json_is_string(content)) {
        lx_buf_append(out, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t))
            lx_buf_append(out, json_string_value(t), json_string_length(t));
    }
}

json_t *lx_anthropic_tool_use_block(json_t *call, size_t n)
{
    json_t *block = lx_anthropic_tool_use_from_openai(call);
    if (!block) { /* arguments that are not a JSON object: the client still gets the call, with none */
        json_t *fn = json_object_get(call, "function");
        block = json_pack("{s:s,s:O?,s:O?,s:{}}", "type", "tool_use", "id", json_object_get(call, "id"), "name",
                          json_object_get(fn, "name"), "input");
    }
    if (!json_string_length(json_object_get(block, "id")))
        json_object_set_new(block, "id", json_sprintf("toolu_llmux_%zu", n));
    if (!json_is_string(json_object_get(block, "name")))
        json_object_set_new(block, "name", json_string(""));
    return block;
}

static json_t *anthropic_completion(const struct lx_dialect_req *rq, json_t *completion)
{
    json_t *native = json_object_get(completion, "llmux_native");
    if (json_is_object(native))
        return json_incref(native); /* a target that speaks Anthropic: its message as it came */
    if (!json_is_array(json_object_get(completion, "choices")))
        return json_incref(completion); /* not a message: count_tokens' {"input_tokens": N} */
    json_t *choice = json_array_get(json_object_get(completion, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_array();
    if (json_is_true(json_object_get(rq->priv, "thinking")))
        lx_anthropic_thinking_from_openai(msg, content);
    struct lx_buf text = {0};
    content_text(json_object_get(msg, "content"), &text);
    if (!text.len)
        content_text(json_object_get(msg, "refusal"), &text);
    if (text.len)
        json_array_append_new(content, json_pack("{s:s,s:s%}", "type", "text", "text", text.data, text.len));
    size_t i;
    json_t *call;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, call)
        json_array_append_new(content, lx_anthropic_tool_use_block(call, i));
    json_t *seq = json_object_get(choice, "stop_reason");
    const char *stop = lx_anthropic_stop_reason(json_string_value(json_object_get(choice, "finish_reason")),
                                                json_is_string(seq));
    if (json_array_size(json_object_get(msg, "tool_calls")) && strcmp(stop, "end_turn") == 0)
        stop = "tool_use"; /* servers that say "stop" after calling tools */
    json_t *usage = lx_anthropic_usage_from_openai(json_object_get(completion, "usage"));
    if (json_integer_value(json_object_get(usage, "input_tokens")) == 0 &&
        json_integer_value(json_object_get(usage, "cache_read_input_tokens")) == 0)
        json_object_set_new(usage, "input_tokens", json_integer(rq->prompt_tokens_estimate));
    if (json_integer_value(json_object_get(usage, "output_tokens")) == 0 && text.len)
        json_object_set_new(usage, "output_tokens", json_integer((json_int_t)(text.len + 3) / 4));
    lx_buf_free(&text);
    json_t *model = json_object_get(completion, "model");
    return json_pack("{s:o,s:s,s:s,s:o,s:o,s:s,s:O,s:o}", "id",
                     lx_anthropic_message_id(json_object_get(completion, "id")), "type", "message", "role",
                     "assistant", "model", json_is_string(model) ? json_incref(model) : json_string(rq->model ? rq->model : ""),
                     "content", content, "stop_reason", stop, "stop_sequence", json_is_string(seq) ? seq : json_null(),
                     "usage", usage);
}

json_t *lx_anthropic_error_json(const struct lx_error *err)
{
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", lx_anthropic_error_type(err), "message",
                     err->message ? err->message : "unknown error");
}

static json_t *anthropic_error_body(const struct lx_error *err, int *status)
{
    *status = err->status ? err->status : 500;
    return lx_anthropic_error_json(err);
}

const struct lx_dialect lx_dialect_anthropic_messages = {
    .name = "anthropic_messages",
    .parse = anthropic_parse,
    .completion = anthropic_completion,
    .error_body = anthropic_error_body,
    .stream_content_type = "text/event-stream",
    .stream_open = lx_anthropic_stream_open,
    .stream_chunk = lx_anthropic_stream_chunk,
    .stream_end = lx_anthropic_stream_end,
    .stream_error = lx_anthropic_stream_error,
    .stream_keepalive = lx_anthropic_stream_keepalive,
    .keepalive_ms = 10000,
    .stream_close = lx_anthropic_stream_close,
    .dropped = lx_anthropic_messages_dropped,
};
