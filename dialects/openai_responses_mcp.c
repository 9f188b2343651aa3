/* The Responses API's remote-MCP items (openai SDK: ResponseOutputItem.McpListTools and McpCall): built
 * from what llmux's tool loop reports, checked when a client sends them back as input, and turned into
 * what a chat model understands when a later turn carries them in its history (a call becomes an
 * assistant tool call and its result a tool message; a tool list goes nowhere). */
#include "openai_responses_priv.h"
#include "../src/core/buf.h"
#include "../src/core/common.h"
#include "../src/core/ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LX_FUNCTION_NAME_MAX 60 /* what engine/toolset.c keeps of SERVER__TOOL before its collision suffix */

static const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static json_t *new_id(const char *prefix)
{
    char *id = lx_id_new(prefix);
    json_t *v = json_string(id);
    free(id);
    return v;
}

json_t *lx_responses_list_tools_item(json_t *listed)
{
    json_t *tools = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(listed, "tools"), i, t) {
        if (!str(t, "name"))
            continue;
        json_t *schema = json_object_get(t, "inputSchema");
        json_t *desc = json_object_get(t, "description"), *ann = json_object_get(t, "annotations");
        json_array_append_new(tools, json_pack("{s:O,s:O,s:O,s:O}", "name", json_object_get(t, "name"), "input_schema",
                                               schema ? schema : json_null(), "description",
                                               json_is_string(desc) ? desc : json_null(), "annotations",
                                               ann ? ann : json_null()));
    }
    json_t *error = json_object_get(listed, "error");
    return json_pack("{s:o,s:s,s:s,s:o,s:O}", "id", new_id("mcpl"), "type", "mcp_list_tools", "server_label",
                     str(listed, "server_label") ? str(listed, "server_label") : "", "tools", tools, "error",
                     json_is_string(error) ? error : json_null());
}

json_t *lx_responses_mcp_call_item(json_t *call)
{
    const char *args = str(call, "arguments");
    return json_pack("{s:o,s:s,s:s,s:s,s:s,s:n,s:n,s:s}", "id", new_id("mcp"), "type", "mcp_call", "server_label",
                     str(call, "server") ? str(call, "server") : "", "name", str(call, "tool") ? str(call, "tool") : "",
                     "arguments", args ? args : "{}", "output", "error", "status", "in_progress");
}

/* The loop's outcomes as McpToolCallError: the tool's own failure is an execution error with the text
 * the model got; the others are protocol errors with a JSON-RPC code (the MCP SDK's -32001 for a request
 * timeout; -32602 for a tool or arguments the server cannot take; -32603 otherwise). */
static json_t *call_error(const char *outcome, const char *text)
{
    if (strcmp(outcome, "tool_error") == 0)
        return json_pack("{s:s,s:[{s:s,s:s}]}", "type", "mcp_tool_execution_error", "content", "type", "text", "text",
                         text);
    int code = strcmp(outcome, "timeout") == 0                                               ? -32001
               : strcmp(outcome, "not_found") == 0 || strcmp(outcome, "bad_arguments") == 0 ? -32602
                                                                                              : -32603;
    return json_pack("{s:s,s:i,s:s}", "type", "mcp_protocol_error", "code", code, "message", text);
}

bool lx_responses_mcp_call_finish(json_t *item, json_t *call)
{
    const char *outcome = str(call, "outcome"), *output = str(call, "output");
    bool ok = outcome && strcmp(outcome, "ok") == 0;
    if (!output)
        output = "";
    json_object_set_new(item, "output", ok ? json_string(output) : json_null());
    json_object_set_new(item, "error", ok ? json_null() : call_error(outcome ? outcome : "", output));
    json_object_set_new(item, "status", json_string(ok ? "completed" : "failed"));
    return ok;
}

/* ---- items sent back ---- */

json_t *lx_responses_mcp_norm(json_t *item, const char *type, const char *param, struct lx_error *err)
{
    char p[256];
    if (strcmp(type, "mcp_list_tools") == 0) {
        if (!lx_responses_need_str(item, "server_label", param, err))
            return NULL;
        json_t *tools = json_object_get(item, "tools");
        if (tools && !json_is_array(tools)) {
            snprintf(p, sizeof p, "%.200s.tools", param);
            lx_error_bad_request(err, p, "invalid_type", "Invalid type for '%s': expected an array of tools.", p);
            return NULL;
        }
        json_t *n = json_deep_copy(item);
        if (!str(n, "id") || !*str(n, "id"))
            json_object_set_new(n, "id", new_id("mcpl"));
        if (!tools)
            json_object_set_new(n, "tools", json_array());
        return n;
    }
    if (strcmp(type, "mcp_call") == 0) {
        if (!lx_responses_need_str(item, "server_label", param, err) || !lx_responses_need_str(item, "name", param, err) ||
            !lx_responses_need_str(item, "arguments", param, err))
            return NULL;
        json_t *out = json_object_get(item, "output");
        if (out && !json_is_null(out) && !json_is_string(out)) {
            snprintf(p, sizeof p, "%.200s.output", param);
            lx_error_bad_request(err, p, "invalid_type", "Invalid type for '%s': expected a string or null.", p);
            return NULL;
        }
        json_t *n = json_deep_copy(item);
        if (!str(n, "id") || !*str(n, "id"))
            json_object_set_new(n, "id", new_id("mcp"));
        if (!str(n, "status"))
            json_object_set_new(n, "status", json_string(json_object_get(n, "error") && !json_is_null(json_object_get(n, "error"))
                                                             ? "failed" : "completed"));
        return n;
    }
    /* mcp_approval_request / mcp_approval_response */
    snprintf(p, sizeof p, "%.200s.type", param);
    lx_error_bad_request(err, p, "unsupported_item_type",
                         "Item type '%s' is not supported by llmux: it runs MCP tools without approval (require_approval "
                         "\"never\"), so there is no approval to answer (see '%s').",
                         type, p);
    return NULL;
}

/* ---- items → chat ---- */

char *lx_responses_mcp_function_name(json_t *item)
{
    const char *server = str(item, "server_label"), *tool = str(item, "name");
    struct lx_buf b = {0};
    if (server && *server)
        lx_buf_printf(&b, "%s__", server);
    for (const char *p = tool ? tool : ""; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        lx_buf_append(&b, ok ? &c : "_", 1);
    }
    char *name = lx_buf_steal(&b, NULL);
    if (!name)
        name = lx_strdup("");
    if (strlen(name) > LX_FUNCTION_NAME_MAX)
        name[LX_FUNCTION_NAME_MAX] = '\0';
    return name;
}

char *lx_responses_mcp_result_text(json_t *item)
{
    const char *out = str(item, "output");
    json_t *error = json_object_get(item, "error");
    if (!error || json_is_null(error))
        return lx_strdup(out ? out : "");
    if (json_is_string(error))
        return lx_strdup(json_string_value(error));
    const char *msg = str(error, "message");
    if (msg)
        return lx_strdup(msg);
    struct lx_buf b = {0};
    size_t i;
    json_t *part;
    json_array_foreach(json_object_get(error, "content"), i, part)
        if (str(part, "text"))
            lx_buf_puts(&b, str(part, "text"));
    char *text = lx_buf_steal(&b, NULL);
    return text ? text : lx_strdup("Error: the tool call failed.");
}
