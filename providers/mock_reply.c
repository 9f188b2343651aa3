/* The mock provider's "model": reads a chat request and decides the answer. With tools it calls the
 * ones tool_choice demands (or, under "auto", the ones the last user message names), with arguments
 * generated from each tool's parameters schema; after tool results it quotes them; with
 * response_format it answers JSON valid for the schema; otherwise it echoes the last user message.
 * Parameters it cannot honour (sampling, logprobs, ...) are reported as dropped. */
#include "mock_reply.h"
#include "mock_schema.h"
#include "provider.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define LX_MOCK_MAX_N 128 /* OpenAI's limit for n */

/* Parameters the mock honours (seed trivially: it is deterministic; user has no effect anywhere). */
static const char *const honoured[] = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "n", "tools",
    "tool_choice", "parallel_tool_calls", "response_format", "seed", "stop", "user", NULL,
};

static bool is_honoured(const char *key)
{
    for (size_t i = 0; honoured[i]; i++)
        if (strcmp(honoured[i], key) == 0)
            return true;
    return false;
}

static char *dropped_list(json_t *body)
{
    struct lx_buf b = {0};
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        if (is_honoured(key) || json_is_null(v) || json_is_false(v))
            continue;
        lx_buf_printf(&b, "%s%s", b.len ? "," : "", key);
    }
    if (!b.len) {
        lx_buf_free(&b);
        return NULL;
    }
    return lx_buf_steal(&b, NULL);
}

static size_t count_words(const char *s, size_t len)
{
    size_t n = 0;
    bool in = false;
    for (size_t i = 0; i < len; i++) {
        bool sp = isspace((unsigned char)s[i]);
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

static bool is_word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Does text name the tool? Its name as a word, case-insensitive, with '_' and '-' also matched by a
 * space ("get_weather" or "get weather"). */
static bool mentions(const char *text, const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return false;
    for (const char *p = text; *p; p++) {
        if (p > text && is_word_char(p[-1]))
            continue;
        size_t i = 0;
        for (; i < n && p[i]; i++) {
            char a = (char)tolower((unsigned char)p[i]), b = (char)tolower((unsigned char)name[i]);
            if (a != b && !((b == '_' || b == '-') && a == ' '))
                break;
        }
        if (i == n && !is_word_char(p[n]))
            return true;
    }
    return false;
}

/* "use a tool", "call the tools", ...: a request for a tool that names none. */
static bool asks_for_a_tool(const char *text)
{
    static const char *const phrases[] = {"use a tool", "use the tool", "use tools", "use your tool",
                                          "call a tool", "call the tool", "call tools", "use a function",
                                          "call a function", "call the function", NULL};
    struct lx_buf low = {0};
    for (const char *p = text; *p; p++) {
        char c = (char)tolower((unsigned char)*p);
        lx_buf_append(&low, &c, 1);
    }
    bool yes = false;
    for (size_t i = 0; phrases[i] && low.data && !yes; i++)
        yes = strstr(low.data, phrases[i]) != NULL;
    lx_buf_free(&low);
    return yes;
}

/* What the conversation says: the last user message, and the tool results that end it (if any) quoted
 * as one sentence each. */
struct convo {
    struct lx_buf last_user; /* owned */
    struct lx_buf quote;     /* owned: empty unless the conversation ends with tool results */
    long words;              /* every message's words: the prompt tokens */
};

static const char *tool_name_for(json_t *assistant, json_t *id)
{
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(assistant, "tool_calls"), i, tc) {
        if (json_is_string(id) && json_equal(json_object_get(tc, "id"), id))
            return json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
    }
    return NULL;
}

static void read_convo(json_t *messages, struct convo *c)
{
    size_t n = json_array_size(messages), i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        struct lx_buf t = {0};
        lx_content_text(json_object_get(m, "content"), &t);
        c->words += (long)count_words(t.data ? t.data : "", t.len);
        if (strcmp(json_string_value(json_object_get(m, "role")), "user") == 0) {
            lx_buf_reset(&c->last_user);
            lx_buf_append(&c->last_user, t.data ? t.data : "", t.len);
        }
        lx_buf_free(&t);
    }
    size_t first = n;
    while (first > 0 &&
           strcmp(json_string_value(json_object_get(json_array_get(messages, first - 1), "role")), "tool") == 0)
        first--;
    json_t *assistant = first > 0 ? json_array_get(messages, first - 1) : NULL;
    for (i = first; i < n; i++) {
        m = json_array_get(messages, i);
        const char *name = tool_name_for(assistant, json_object_get(m, "tool_call_id"));
        struct lx_buf t = {0};
        lx_content_text(json_object_get(m, "content"), &t);
        lx_buf_printf(&c->quote, "%sThe tool %s returned: %s", c->quote.len ? " " : "", name ? name : "call",
                      t.data ? t.data : "");
        lx_buf_free(&t);
    }
    /* Both read as strings from here on, even when empty. */
    lx_buf_puts(&c->last_user, "");
    lx_buf_puts(&c->quote, "");
}

/* The tools the answer calls, as indexes into tools; LX_ERR with err on a bad tools/tool_choice. */
static int choose_tools(json_t *body, const struct convo *c, size_t **picked, size_t *n_picked, struct lx_error *err)
{
    json_t *tools = json_object_get(body, "tools"), *choice = json_object_get(body, "tool_choice");
    *picked = NULL;
    *n_picked = 0;
    if (tools && !json_is_null(tools) && !json_is_array(tools)) {
        lx_error_bad_request(err, "tools", "invalid_type", "Invalid type for 'tools': expected an array of tools.");
        return LX_ERR;
    }
    size_t n = json_array_size(tools), i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *type = json_object_get(t, "type");
        if (json_is_string(type) && strcmp(json_string_value(type), "function") != 0)
            continue; /* other tool kinds are never called */
        if (!json_is_string(json_object_get(json_object_get(t, "function"), "name"))) {
            char param[48];
            snprintf(param, sizeof param, "tools[%zu].function.name", i);
            lx_error_bad_request(err, param, "missing_required_parameter", "Missing required parameter: '%s'.", param);
            return LX_ERR;
        }
    }
    const char *mode = json_is_string(choice) ? json_string_value(choice) : NULL;
    const char *named = NULL;
    if (json_is_object(choice)) {
        named = json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
        if (!named) {
            lx_error_bad_request(err, "tool_choice", "invalid_value",
                                 "Invalid value for 'tool_choice': expected \"none\", \"auto\", \"required\" or "
                                 "{\"type\": \"function\", \"function\": {\"name\": ...}}.");
            return LX_ERR;
        }
    } else if (mode && strcmp(mode, "none") != 0 && strcmp(mode, "auto") != 0 && strcmp(mode, "required") != 0) {
        lx_error_bad_request(
            err, "tool_choice", "invalid_value",
            "Invalid value for 'tool_choice': expected \"none\", \"auto\", \"required\" or a named function.");
        return LX_ERR;
    } else if (!mode && choice && !json_is_null(choice)) {
        lx_error_bad_request(err, "tool_choice", "invalid_type",
                             "Invalid type for 'tool_choice': expected a string or an object.");
        return LX_ERR;
    }
    bool required = named || (mode && strcmp(mode, "required") == 0);
    if (required && n == 0) {
        lx_error_bad_request(err, "tool_choice", "invalid_value",
                             "Invalid value for 'tool_choice': it is only allowed when 'tools' are given.");
        return LX_ERR;
    }
    if (n == 0 || (mode && strcmp(mode, "none") == 0))
        return LX_OK;
    *picked = lx_calloc(n, sizeof **picked);
    json_array_foreach(tools, i, t) {
        const char *name = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (!name)
            continue;
        /* An MCP tool llmux offers as SERVER__TOOL is named by its own name too. */
        const char *own = strstr(name, "__");
        if (named ? strcmp(name, named) == 0
                  : mentions(c->last_user.data, name) || (own && own[2] && mentions(c->last_user.data, own + 2)))
            (*picked)[(*n_picked)++] = i;
        if (named && *n_picked)
            break;
    }
    if (named && *n_picked == 0) {
        lx_error_bad_request(err, "tool_choice", "invalid_value",
                             "Invalid value for 'tool_choice': no function named '%s' in 'tools'.", named);
        return LX_ERR;
    }
    /* Under "auto", tool results end the conversation: time to answer them in words. */
    if (!required && c->quote.len)
        *n_picked = 0;
    else if (*n_picked == 0 && (required || asks_for_a_tool(c->last_user.data))) {
        json_array_foreach(tools, i, t) {
            if (json_is_string(json_object_get(json_object_get(t, "function"), "name"))) {
                (*picked)[(*n_picked)++] = i;
                break;
            }
        }
    }
    if (json_is_false(json_object_get(body, "parallel_tool_calls")) && *n_picked > 1)
        *n_picked = 1;
    return LX_OK;
}

/* The text of the answer when no tool is called: JSON for response_format, else words. */
static int answer_text(json_t *body, const struct convo *c, struct lx_buf *out, struct lx_error *err)
{
    const char *said = c->quote.len ? c->quote.data : c->last_user.data;
    struct lx_buf words = {0};
    if (c->quote.len)
        lx_buf_append(&words, c->quote.data, c->quote.len);
    else
        lx_buf_printf(&words, "This is the llmux mock provider. You said: %s", c->last_user.data);
    json_t *rf = json_object_get(body, "response_format");
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (rf && !json_is_null(rf) && !type) {
        lx_error_bad_request(err, "response_format.type", "missing_required_parameter",
                             "Missing required parameter: 'response_format.type'.");
        lx_buf_free(&words);
        return LX_ERR;
    }
    json_t *value = NULL;
    if (!type || strcmp(type, "text") == 0) {
        lx_buf_append(out, words.data, words.len);
    } else if (strcmp(type, "json_object") == 0) {
        value = json_pack("{s:s}", "reply", words.data);
    } else if (strcmp(type, "json_schema") == 0) {
        json_t *js = json_object_get(rf, "json_schema");
        if (!json_is_object(js)) {
            lx_error_bad_request(err, "response_format.json_schema", "missing_required_parameter",
                                 "Missing required parameter: 'response_format.json_schema'.");
            lx_buf_free(&words);
            return LX_ERR;
        }
        json_t *schema = json_object_get(js, "schema");
        /* Without a schema any object will do. */
        value = json_is_object(schema) ? lx_schema_instance(schema, said) : json_pack("{s:s}", "reply", words.data);
    } else {
        lx_error_bad_request(
            err, "response_format.type", "invalid_value",
            "Invalid value for 'response_format.type': expected \"text\", \"json_object\" or \"json_schema\".");
        lx_buf_free(&words);
        return LX_ERR;
    }
    if (value) {
        /* One line with spaces after ',' and ':', so a stream comes in several pieces. */
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        lx_buf_puts(out, text);
        free(text);
        json_decref(value);
    }
    lx_buf_free(&words);
    return LX_OK;
}

/* Cut text at the first stop sequence (stop: a string or a list of them). */
static void apply_stop(json_t *stop, struct lx_buf *text)
{
    json_t *one[1] = {stop};
    json_t **list = json_is_array(stop) ? NULL : one;
    size_t n = json_is_array(stop) ? json_array_size(stop) : 1;
    size_t cut = text->len;
    for (size_t i = 0; i < n; i++) {
        json_t *s = list ? list[i] : json_array_get(stop, i);
        if (!json_is_string(s) || json_string_length(s) == 0 || !text->data)
            continue;
        const char *at = strstr(text->data, json_string_value(s));
        if (at && (size_t)(at - text->data) < cut)
            cut = (size_t)(at - text->data);
    }
    if (cut < text->len) {
        text->len = cut;
        text->data[cut] = '\0';
    }
}

/* Cut text to max words; true when it was cut (finish_reason "length"). */
static bool apply_max_tokens(json_t *body, struct lx_buf *text)
{
    json_int_t limit = lx_chat_max_tokens(body, -1);
    if (limit < 0 || !text->data)
        return false;
    json_int_t words = 0;
    bool in = false;
    for (size_t k = 0; k < text->len; k++) {
        bool sp = isspace((unsigned char)text->data[k]);
        if (!sp && !in && ++words > limit) {
            while (k > 0 && isspace((unsigned char)text->data[k - 1]))
                k--;
            text->len = k;
            text->data[k] = '\0';
            return true;
        }
        in = !sp;
    }
    return false;
}

static int read_n(json_t *body, size_t *n, struct lx_error *err)
{
    json_t *v = json_object_get(body, "n");
    *n = 1;
    if (!v || json_is_null(v))
        return LX_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > LX_MOCK_MAX_N) {
        lx_error_bad_request(err, "n", "invalid_value", "Invalid value for 'n': expected an integer from 1 to %d.",
                             LX_MOCK_MAX_N);
        return LX_ERR;
    }
    *n = (size_t)json_integer_value(v);
    return LX_OK;
}

static bool in_bounds(json_t *prop, double v)
{
    json_t *lo = json_object_get(prop, "minimum"), *hi = json_object_get(prop, "maximum");
    return (!json_is_number(lo) || v >= json_number_value(lo)) && (!json_is_number(hi) || v <= json_number_value(hi));
}

/* The numbers the user wrote, in order, go to the tool's number parameters, as a model reads "add 2 and
 * 3" (when they fit the schema; the generated values stay otherwise). */
static void use_numbers(json_t *params, json_t *args, const char *text)
{
    double nums[16];
    size_t n = 0, k = 0;
    for (const char *p = text; p && *p && n < LX_ARRAY_LEN(nums);) {
        bool starts = isdigit((unsigned char)*p) || (*p == '-' && isdigit((unsigned char)p[1]));
        if (starts && (p == text || !is_word_char(p[-1]))) {
            char *end;
            nums[n++] = strtod(p, &end);
            p = end;
        } else {
            p++;
        }
    }
    const char *key;
    json_t *prop;
    json_object_foreach(json_object_get(params, "properties"), key, prop) {
        const char *type = json_string_value(json_object_get(prop, "type"));
        if (k >= n || !type || !json_object_get(args, key) || !in_bounds(prop, nums[k]))
            continue;
        bool whole = nums[k] == (double)(json_int_t)nums[k];
        if (strcmp(type, "integer") == 0 && whole)
            json_object_set_new(args, key, json_integer((json_int_t)nums[k++]));
        else if (strcmp(type, "number") == 0)
            json_object_set_new(args, key, whole ? json_integer((json_int_t)nums[k]) : json_real(nums[k])), k++;
    }
}

static char *tool_arguments(json_t *tool, const char *text)
{
    json_t *params = json_object_get(json_object_get(tool, "function"), "parameters");
    json_t *args = json_is_object(params) ? lx_schema_instance(params, text) : NULL;
    if (!json_is_object(args)) {
        json_decref(args);
        args = json_object(); /* a tool without parameters takes {} */
    } else {
        use_numbers(params, args, text);
    }
    char *s = json_dumps(args, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(args);
    return s;
}

int lx_mock_reply_build(json_t *body, uint64_t seq, struct lx_mock_reply *out, struct lx_error *err)
{
    memset(out, 0, sizeof *out);
    struct convo c = {0};
    size_t n, *picked = NULL, n_picked = 0;
    struct lx_buf text = {0};
    int rc = LX_ERR;
    read_convo(json_object_get(body, "messages"), &c);
    if (read_n(body, &n, err) != LX_OK || choose_tools(body, &c, &picked, &n_picked, err) != LX_OK)
        goto out;
    const char *finish = "stop";
    if (n_picked == 0) {
        if (answer_text(body, &c, &text, err) != LX_OK)
            goto out;
        apply_stop(json_object_get(body, "stop"), &text);
        if (apply_max_tokens(body, &text))
            finish = "length";
    }
    out->n = n;
    out->choices = lx_calloc(n, sizeof *out->choices);
    out->prompt_tokens = c.words;
    json_t *tools = json_object_get(body, "tools");
    for (size_t i = 0; i < n; i++) {
        struct lx_mock_choice *ch = &out->choices[i];
        if (n_picked == 0) {
            ch->content = lx_strndup(text.data ? text.data : "", text.len);
            ch->content_len = text.len;
            ch->finish = finish;
            out->completion_tokens += (long)count_words(ch->content, ch->content_len);
            continue;
        }
        ch->finish = "tool_calls";
        ch->calls = lx_calloc(n_picked, sizeof *ch->calls);
        ch->n_calls = n_picked;
        for (size_t k = 0; k < n_picked; k++) {
            json_t *tool = json_array_get(tools, picked[k]);
            struct lx_mock_call *call = &ch->calls[k];
            call->id = lx_sprintf("call_mock_%llu_%zu_%zu", (unsigned long long)seq, i, k);
            call->name = lx_strdup(json_string_value(json_object_get(json_object_get(tool, "function"), "name")));
            call->arguments = tool_arguments(tool, c.last_user.data);
            out->completion_tokens += 1 + (long)count_words(call->arguments, strlen(call->arguments));
        }
    }
    out->dropped = dropped_list(body);
    rc = LX_OK;
out:
    free(picked);
    lx_buf_free(&text);
    lx_buf_free(&c.last_user);
    lx_buf_free(&c.quote);
    return rc;
}

void lx_mock_reply_free(struct lx_mock_reply *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct lx_mock_choice *ch = &r->choices[i];
        free(ch->content);
        for (size_t k = 0; k < ch->n_calls; k++) {
            free(ch->calls[k].id);
            free(ch->calls[k].name);
            free(ch->calls[k].arguments);
        }
        free(ch->calls);
    }
    free(r->choices);
    free(r->dropped);
    memset(r, 0, sizeof *r);
}
