/* A request's tools: its MCP entries checked and resolved to configured servers, and every server tool
 * turned into a function tool whose name says which server it is on. Moves to src/engine/toolset.c. */
#include "toolset.h"
#include "../core/buf.h"
#include "../core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LX_TOOL_NAME_MAX 64 /* OpenAI's limit on function names */

static void spec_add_server(struct lx_toolset_spec *spec, const char *name, json_t *allowed)
{
    for (size_t i = 0; i < spec->n_servers; i++)
        if (strcmp(spec->servers[i].name, name) == 0)
            return; /* the first mention decides */
    spec->servers = lx_realloc(spec->servers, (spec->n_servers + 1) * sizeof *spec->servers);
    struct lx_toolset_server *s = &spec->servers[spec->n_servers++];
    memset(s, 0, sizeof *s);
    s->name = lx_strdup(name);
    if (allowed) {
        s->allowed = lx_calloc(json_array_size(allowed) + 1, sizeof *s->allowed);
        size_t i;
        json_t *v;
        json_array_foreach(allowed, i, v) s->allowed[s->n_allowed++] = lx_strdup(json_string_value(v));
    }
}

/* allowed_tools: ["a", "b"] or {"tool_names": [...]} (OpenAI's two shapes). The array (borrowed), or NULL. */
static int read_allowed(json_t *entry, const char *param, json_t **out, struct lx_error *err)
{
    json_t *a = json_object_get(entry, "allowed_tools");
    *out = NULL;
    if (!a || json_is_null(a))
        return LX_OK;
    if (json_is_object(a))
        a = json_object_get(a, "tool_names");
    bool ok = json_is_array(a);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) ok = ok && json_is_string(v) && json_string_length(v) > 0;
    if (!ok) {
        lx_error_set(err, 400, "invalid_request_error", param, "invalid_type",
                     "Invalid '%s': expected an array of tool names (or {\"tool_names\": [...]}).", param);
        return LX_ERR;
    }
    *out = a;
    return LX_OK;
}

/* The same MCP endpoint: equal but for a trailing slash and the case of the scheme and host. */
static bool same_url(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && a[la - 1] == '/')
        la--;
    while (lb > 0 && b[lb - 1] == '/')
        lb--;
    if (la != lb)
        return false;
    const char *pa = strstr(a, "://");
    size_t host_end = pa ? (size_t)(pa - a) + 3 + strcspn(pa + 3, "/?#") : 0;
    if (host_end > la)
        host_end = la;
    return strncasecmp(a, b, host_end) == 0 && memcmp(a + host_end, b + host_end, la - host_end) == 0;
}

/* server_url is accepted only as the URL the configuration gives the server named by server_label: a
 * client written for OpenAI's remote MCP tool (which sends both) works, and no request makes llmux call
 * an address its configuration does not name. */
static int check_url(json_t *entry, size_t i, const char *label, const char *configured, struct lx_error *err)
{
    json_t *url = json_object_get(entry, "server_url");
    if (!url || json_is_null(url))
        return LX_OK;
    char param[64];
    snprintf(param, sizeof param, "tools[%zu].server_url", i);
    if (!json_is_string(url)) {
        lx_error_set(err, 400, "invalid_request_error", param, "invalid_type",
                     "Invalid type for '%s': expected a string.", param);
        return LX_ERR;
    }
    if (configured && same_url(json_string_value(url), configured))
        return LX_OK;
    lx_error_set(err, 400, "invalid_request_error", param, "unsupported_parameter",
                 "'%s' is not the URL configured for MCP server '%.64s': llmux calls only the MCP servers its "
                 "configuration names (mcp_servers), at their configured URLs; leave server_url out or send "
                 "that URL.", param, label);
    return LX_ERR;
}

static int parse_entry(json_t *entry, size_t i, bool (*known)(const char *, const char **),
                       struct lx_toolset_spec *out, struct lx_error *err)
{
    char param[64];
    static const char *const refused[] = {"headers", "authorization", "connector_id"};
    for (size_t k = 0; k < LX_ARRAY_LEN(refused); k++) {
        if (!json_object_get(entry, refused[k]))
            continue;
        snprintf(param, sizeof param, "tools[%zu].%s", i, refused[k]);
        lx_error_set(err, 400, "invalid_request_error", param, "unsupported_parameter",
                     "'%s' is not accepted: llmux calls only the MCP servers its configuration names "
                     "(mcp_servers), with the headers configured there; name one with 'server_label'.", param);
        return LX_ERR;
    }
    json_t *approval = json_object_get(entry, "require_approval");
    if (approval && !json_is_null(approval) &&
        !(json_is_string(approval) && strcmp(json_string_value(approval), "never") == 0)) {
        snprintf(param, sizeof param, "tools[%zu].require_approval", i);
        lx_error_set(err, 400, "invalid_request_error", param, "unsupported_value",
                     "llmux runs MCP tools without asking for approval: '%s' must be \"never\".", param);
        return LX_ERR;
    }
    json_t *label = json_object_get(entry, "server_label");
    snprintf(param, sizeof param, "tools[%zu].server_label", i);
    if (!json_is_string(label) || json_string_length(label) == 0) {
        lx_error_set(err, 400, "invalid_request_error", param, label ? "invalid_type" : "missing_required_parameter",
                     label ? "Invalid type for '%s': expected the name of a configured MCP server."
                           : "Missing required parameter: '%s'.",
                     param);
        return LX_ERR;
    }
    const char *configured = NULL;
    if (!known(json_string_value(label), &configured)) {
        lx_error_set(err, 400, "invalid_request_error", param, "unknown_mcp_server",
                     "No MCP server named '%.64s' is configured (GET /v1/mcp/servers lists them).",
                     json_string_value(label));
        return LX_ERR;
    }
    if (check_url(entry, i, json_string_value(label), configured, err) != LX_OK)
        return LX_ERR;
    json_t *allowed;
    snprintf(param, sizeof param, "tools[%zu].allowed_tools", i);
    if (read_allowed(entry, param, &allowed, err) != LX_OK)
        return LX_ERR;
    spec_add_server(out, json_string_value(label), allowed);
    return LX_OK;
}

int lx_toolset_parse(json_t *tools, const char *const *alias_servers, size_t n_alias,
                     bool (*known)(const char *name, const char **url), struct lx_toolset_spec *out,
                     struct lx_error *err)
{
    memset(out, 0, sizeof *out);
    out->client_tools = json_array();
    if (tools && !json_is_null(tools) && !json_is_array(tools)) {
        lx_error_set(err, 400, "invalid_request_error", "tools", "invalid_type",
                     "Invalid type for 'tools': expected an array.");
        lx_toolset_spec_free(out);
        return LX_ERR;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!type || strcmp(type, "mcp") != 0) {
            json_array_append(out->client_tools, t);
            continue;
        }
        if (parse_entry(t, i, known, out, err) != LX_OK) {
            lx_toolset_spec_free(out);
            return LX_ERR;
        }
    }
    for (size_t k = 0; k < n_alias; k++)
        spec_add_server(out, alias_servers[k], NULL);
    return LX_OK;
}

void lx_toolset_spec_free(struct lx_toolset_spec *spec)
{
    for (size_t i = 0; i < spec->n_servers; i++) {
        free(spec->servers[i].name);
        for (size_t k = 0; k < spec->servers[i].n_allowed; k++)
            free(spec->servers[i].allowed[k]);
        free(spec->servers[i].allowed);
    }
    free(spec->servers);
    json_decref(spec->client_tools);
    memset(spec, 0, sizeof *spec);
}

static bool allowed(const struct lx_toolset_server *s, const char *tool)
{
    if (!s->allowed)
        return true;
    for (size_t i = 0; i < s->n_allowed; i++)
        if (strcmp(s->allowed[i], tool) == 0)
            return true;
    return false;
}

static bool name_taken(const struct lx_toolset *ts, const char *name)
{
    if (lx_toolset_find(ts, name))
        return true;
    size_t i;
    json_t *t;
    json_array_foreach(ts->tools, i, t) {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (n && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

/* SERVER__TOOL in [A-Za-z0-9_-], at most 64 characters, not taken yet (a suffix _2, _3... otherwise). */
static char *exposed_name(const struct lx_toolset *ts, const char *server, const char *tool)
{
    struct lx_buf b = {0};
    lx_buf_printf(&b, "%s__", server);
    for (const char *p = tool; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        lx_buf_append(&b, ok ? &c : "_", 1);
    }
    char *base = lx_buf_steal(&b, NULL);
    if (strlen(base) > LX_TOOL_NAME_MAX - 4)
        base[LX_TOOL_NAME_MAX - 4] = '\0'; /* room for a suffix */
    char *name = lx_strdup(base);
    for (int n = 2; name_taken(ts, name); n++) {
        free(name);
        name = lx_sprintf("%s_%d", base, n);
    }
    free(base);
    return name;
}

void lx_toolset_build(const struct lx_toolset_spec *spec, json_t *(*listed)(const char *server),
                      struct lx_toolset *out)
{
    memset(out, 0, sizeof *out);
    out->tools = json_copy(spec->client_tools);
    for (size_t i = 0; i < spec->n_servers; i++) {
        const struct lx_toolset_server *s = &spec->servers[i];
        size_t k;
        json_t *t;
        json_array_foreach(listed(s->name), k, t) {
            const char *tool = json_string_value(json_object_get(t, "name"));
            if (!tool || !allowed(s, tool))
                continue;
            char *name = exposed_name(out, s->name, tool);
            json_t *fn = json_pack("{s:s, s:O}", "name", name, "parameters", json_object_get(t, "inputSchema"));
            const char *desc = json_string_value(json_object_get(t, "description"));
            if (!desc)
                desc = json_string_value(json_object_get(t, "title"));
            if (desc)
                json_object_set_new(fn, "description", json_string(desc));
            json_array_append_new(out->tools, json_pack("{s:s, s:o}", "type", "function", "function", fn));
            out->refs = lx_realloc(out->refs, (out->n_refs + 1) * sizeof *out->refs);
            out->refs[out->n_refs++] = (struct lx_tool_ref){name, lx_strdup(s->name), lx_strdup(tool)};
        }
    }
}

void lx_toolset_free(struct lx_toolset *ts)
{
    json_decref(ts->tools);
    for (size_t i = 0; i < ts->n_refs; i++) {
        free(ts->refs[i].exposed);
        free(ts->refs[i].server);
        free(ts->refs[i].tool);
    }
    free(ts->refs);
    memset(ts, 0, sizeof *ts);
}

const struct lx_tool_ref *lx_toolset_find(const struct lx_toolset *ts, const char *name)
{
    for (size_t i = 0; i < ts->n_refs; i++)
        if (strcmp(ts->refs[i].exposed, name) == 0)
            return &ts->refs[i];
    return NULL;
}
