/* The "mcp_servers" config section: one MCP server per key, Streamable HTTP ({"url", "headers"}) or
 * stdio ({"command", "args", "env"}), with timeouts. Parsed by its owner (the MCP client), with its own
 * ${VAR} expansion so that a server whose variable is unset is kept, disabled, like a provider.
 * Moves to src/engine/mcp_conf.c. */
#include "mcp.h"
#include "conf.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/confread.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LX_MCP_DEFAULT_TIMEOUT_MS 30000
#define LX_MCP_DEFAULT_CONNECT_MS 10000
#define LX_MCP_DEFAULT_REFRESH_MS 300000

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A copy of v with ${VAR} expanded; NULL with *missing (owned) naming the first unset variable. */
static char *expand(json_t *v, char **missing)
{
    return lx_env_expand(json_string_value(v), missing);
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || strstr(s, "__"))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return false;
    return true;
}

/* Headers llmux sets itself on every MCP request: a configured one would clash. */
static bool reserved_header(const char *name)
{
    static const char *const reserved[] = {"content-type", "accept", "mcp-session-id", "mcp-protocol-version",
                                           "mcp-method", "mcp-name", "last-event-id", "content-length", NULL};
    for (size_t i = 0; reserved[i]; i++)
        if (strcasecmp(reserved[i], name) == 0)
            return true;
    return strncasecmp(name, "mcp-param-", 10) == 0;
}

/* A string list (args). Expands each. */
static int string_list(json_t *v, const char *path, char ***out, size_t *n, char **missing, char *err, size_t errlen)
{
    if (!json_is_array(v)) {
        set_err(err, errlen, "%s: expected an array of strings", path);
        return LX_ERR;
    }
    *out = lx_calloc(json_array_size(v) + 1, sizeof **out);
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (!json_is_string(item)) {
            set_err(err, errlen, "%s[%zu]: expected a string", path, i);
            return LX_ERR;
        }
        char *s = expand(item, missing);
        if (!s)
            return LX_OK; /* the caller disables the server */
        (*out)[(*n)++] = s;
    }
    return LX_OK;
}

/* An object of strings ("headers" → "Name: value", "env" → "NAME=value"). */
static int string_map(json_t *v, const char *path, bool headers, char ***out, size_t *n, char **missing, char *err,
                      size_t errlen)
{
    if (!json_is_object(v)) {
        set_err(err, errlen, "%s: expected an object of strings", path);
        return LX_ERR;
    }
    *out = lx_calloc(json_object_size(v) + 1, sizeof **out);
    const char *key;
    json_t *item;
    json_object_foreach(v, key, item) {
        if (!json_is_string(item)) {
            set_err(err, errlen, "%s.%s: expected a string", path, key);
            return LX_ERR;
        }
        if (headers && (!lx_conf_header_part(key, true) || reserved_header(key))) {
            set_err(err, errlen, "%s.%s: %s", path, key,
                    lx_conf_header_part(key, true) ? "llmux sets this header itself" : "not a valid header name");
            return LX_ERR;
        }
        if (!headers && (!*key || strchr(key, '='))) {
            set_err(err, errlen, "%s.%s: not a valid environment variable name", path, key);
            return LX_ERR;
        }
        char *s = expand(item, missing);
        if (!s)
            return LX_OK;
        if (headers && !lx_conf_header_part(s, false)) {
            free(s);
            set_err(err, errlen, "%s.%s: the value must not contain line breaks", path, key);
            return LX_ERR;
        }
        (*out)[(*n)++] = lx_sprintf(headers ? "%s: %s" : "%s=%s", key, s);
        free(s);
    }
    return LX_OK;
}

static int parse_tool_timeouts(json_t *v, const char *path, struct lx_mcp_server_conf *s, char *err, size_t errlen)
{
    if (!json_is_object(v)) {
        set_err(err, errlen, "%s: expected an object of tool names to milliseconds", path);
        return LX_ERR;
    }
    s->tool_timeouts = lx_calloc(json_object_size(v) + 1, sizeof *s->tool_timeouts);
    const char *key;
    json_t *item;
    json_object_foreach(v, key, item) {
        long ms = 0;
        if (lx_conf_long(v, key, path, 1, 86400000, &ms, err, errlen) != LX_OK)
            return LX_ERR;
        s->tool_timeouts[s->n_tool_timeouts++] = (struct lx_mcp_tool_timeout){lx_strdup(key), ms};
    }
    return LX_OK;
}

static bool http_url(const char *u)
{
    const char *rest = strncmp(u, "http://", 7) == 0 ? u + 7 : strncmp(u, "https://", 8) == 0 ? u + 8 : NULL;
    return rest && *rest && *rest != '/' && !strpbrk(u, " \t\r\n");
}

static int parse_server(struct lx_mcp_server_conf *s, const char *name, json_t *obj, char *err, size_t errlen)
{
    static const char *const keys[] = {"url", "headers", "command", "args", "env", "timeout_ms",
                                       "connect_timeout_ms", "tools_refresh_ms", "tool_timeouts", "protocol",
                                       NULL};
    char path[128];
    snprintf(path, sizeof path, "mcp_servers.%s", name);
    s->name = lx_strdup(name);
    s->timeout_ms = LX_MCP_DEFAULT_TIMEOUT_MS;
    s->connect_timeout_ms = LX_MCP_DEFAULT_CONNECT_MS;
    s->tools_refresh_ms = LX_MCP_DEFAULT_REFRESH_MS;
    if (!valid_name(name)) {
        set_err(err, errlen, "%s: a server name is 1 to 32 of A-Z a-z 0-9 _ - without \"__\" (it prefixes the "
                "names of its tools)", path);
        return LX_ERR;
    }
    if (!json_is_object(obj)) {
        set_err(err, errlen, "%s: expected an object with \"url\" or \"command\"", path);
        return LX_ERR;
    }
    if (lx_conf_unknown_keys(obj, keys, path, err, errlen) != LX_OK)
        return LX_ERR;
    json_t *url = json_object_get(obj, "url"), *command = json_object_get(obj, "command");
    if (!url == !command) {
        set_err(err, errlen, "%s: give either \"url\" (Streamable HTTP) or \"command\" (stdio)", path);
        return LX_ERR;
    }
    s->transport = url ? LX_MCP_HTTP : LX_MCP_STDIO;
    const char *wrong = url ? (json_object_get(obj, "args") ? "args" : json_object_get(obj, "env") ? "env" : NULL)
                            : (json_object_get(obj, "headers") ? "headers" : NULL);
    if (wrong) {
        set_err(err, errlen, "%s.%s: only for %s servers", path, wrong, url ? "stdio (\"command\")" : "HTTP (\"url\")");
        return LX_ERR;
    }
    if (lx_conf_long(obj, "timeout_ms", path, 1, 86400000, &s->timeout_ms, err, errlen) != LX_OK ||
        lx_conf_long(obj, "connect_timeout_ms", path, 1, 600000, &s->connect_timeout_ms, err, errlen) != LX_OK ||
        lx_conf_long(obj, "tools_refresh_ms", path, 0, 86400000, &s->tools_refresh_ms, err, errlen) != LX_OK)
        return LX_ERR;
    json_t *tt = json_object_get(obj, "tool_timeouts");
    char sub[160];
    snprintf(sub, sizeof sub, "%s.tool_timeouts", path);
    if (tt && parse_tool_timeouts(tt, sub, s, err, errlen) != LX_OK)
        return LX_ERR;
    json_t *proto = json_object_get(obj, "protocol");
    if (proto) {
        const char *p = json_string_value(proto);
        if (p && strcmp(p, "auto") == 0)
            s->protocol = LX_MCP_PROTO_AUTO;
        else if (p && strcmp(p, "2026-07-28") == 0)
            s->protocol = LX_MCP_PROTO_2026;
        else if (p && strcmp(p, "2025-11-25") == 0)
            s->protocol = LX_MCP_PROTO_2025;
        else {
            set_err(err, errlen, "%s.protocol: expected \"auto\", \"2026-07-28\" or \"2025-11-25\"", path);
            return LX_ERR;
        }
    }

    char *missing = NULL;
    if (url) {
        if (!json_is_string(url)) {
            set_err(err, errlen, "%s.url: expected an http:// or https:// URL", path);
            return LX_ERR;
        }
        s->url = expand(url, &missing);
        if (s->url && !http_url(s->url)) {
            set_err(err, errlen, "%s.url: must be an http:// or https:// URL with a host", path);
            return LX_ERR;
        }
        json_t *h = json_object_get(obj, "headers");
        snprintf(sub, sizeof sub, "%s.headers", path);
        if (!missing && h && string_map(h, sub, true, &s->headers, &s->n_headers, &missing, err, errlen) != LX_OK)
            return LX_ERR;
    } else {
        if (!json_is_string(command) || json_string_length(command) == 0) {
            set_err(err, errlen, "%s.command: expected a program name or path", path);
            return LX_ERR;
        }
        s->command = expand(command, &missing);
        json_t *a = json_object_get(obj, "args"), *e = json_object_get(obj, "env");
        snprintf(sub, sizeof sub, "%s.args", path);
        if (!missing && a && string_list(a, sub, &s->args, &s->n_args, &missing, err, errlen) != LX_OK)
            return LX_ERR;
        snprintf(sub, sizeof sub, "%s.env", path);
        if (!missing && e && string_map(e, sub, false, &s->env, &s->n_env, &missing, err, errlen) != LX_OK)
            return LX_ERR;
    }
    if (missing) {
        s->disabled_reason = lx_sprintf("environment variable %s is not set (%s needs it); set it in llmux's "
                                        "environment and restart llmux", missing, path);
        free(missing);
    }
    return LX_OK;
}

void lx_mcp_server_conf_free(struct lx_mcp_server_conf *s)
{
    free(s->name);
    free(s->url);
    for (size_t i = 0; i < s->n_headers; i++)
        free(s->headers[i]);
    free(s->headers);
    free(s->command);
    for (size_t i = 0; i < s->n_args; i++)
        free(s->args[i]);
    free(s->args);
    for (size_t i = 0; i < s->n_env; i++)
        free(s->env[i]);
    free(s->env);
    for (size_t i = 0; i < s->n_tool_timeouts; i++)
        free(s->tool_timeouts[i].tool);
    free(s->tool_timeouts);
    free(s->disabled_reason);
    memset(s, 0, sizeof *s);
}

static char **copy_list(char *const *l, size_t n)
{
    char **out = lx_calloc(n + 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = lx_strdup(l[i]);
    return out;
}

void lx_mcp_server_conf_copy(struct lx_mcp_server_conf *d, const struct lx_mcp_server_conf *s)
{
    *d = *s;
    d->name = s->name ? lx_strdup(s->name) : NULL;
    d->url = s->url ? lx_strdup(s->url) : NULL;
    d->command = s->command ? lx_strdup(s->command) : NULL;
    d->disabled_reason = s->disabled_reason ? lx_strdup(s->disabled_reason) : NULL;
    d->headers = copy_list(s->headers, s->n_headers);
    d->args = copy_list(s->args, s->n_args);
    d->env = copy_list(s->env, s->n_env);
    d->tool_timeouts = lx_calloc(s->n_tool_timeouts + 1, sizeof *d->tool_timeouts);
    for (size_t i = 0; i < s->n_tool_timeouts; i++)
        d->tool_timeouts[i] = (struct lx_mcp_tool_timeout){lx_strdup(s->tool_timeouts[i].tool),
                                                           s->tool_timeouts[i].timeout_ms};
}

int lx_mcp_conf_parse(json_t *section, struct lx_mcp_conf *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!section || json_is_null(section))
        return LX_OK;
    if (!json_is_object(section)) {
        set_err(err, errlen, "mcp_servers: expected an object of server names to {\"url\": ...} or "
                "{\"command\": ...}");
        return LX_ERR;
    }
    out->servers = lx_calloc(json_object_size(section) + 1, sizeof *out->servers);
    const char *key;
    json_t *v;
    json_object_foreach(section, key, v) {
        if (parse_server(&out->servers[out->n_servers++], key, v, err, errlen) != LX_OK) {
            lx_mcp_conf_free(out);
            return LX_ERR;
        }
    }
    return LX_OK;
}

void lx_mcp_conf_free(struct lx_mcp_conf *c)
{
    for (size_t i = 0; i < c->n_servers; i++)
        lx_mcp_server_conf_free(&c->servers[i]);
    free(c->servers);
    memset(c, 0, sizeof *c);
}

long lx_mcp_conf_tool_timeout(const struct lx_mcp_server_conf *s, const char *tool)
{
    for (size_t i = 0; i < s->n_tool_timeouts; i++)
        if (strcmp(s->tool_timeouts[i].tool, tool) == 0)
            return s->tool_timeouts[i].timeout_ms;
    return s->timeout_ms;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_list(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

bool lx_mcp_conf_same(const struct lx_mcp_server_conf *a, const struct lx_mcp_server_conf *b)
{
    /* Timeouts and the refresh interval apply to a running client too: only what reaches the server counts. */
    return a->transport == b->transport && a->protocol == b->protocol && same_str(a->name, b->name) &&
           same_str(a->url, b->url) && same_str(a->command, b->command) &&
           same_str(a->disabled_reason, b->disabled_reason) && same_list(a->headers, a->n_headers, b->headers, b->n_headers) &&
           same_list(a->args, a->n_args, b->args, b->n_args) && same_list(a->env, a->n_env, b->env, b->n_env);
}

const char *const lx_mcp_section_keys[] = {"mcp_servers", "mcp", NULL};
const char *const lx_mcp_section_raw_keys[] = {"mcp_servers", NULL};

int lx_mcp_section_parse(struct lx_config *c, json_t *root, char *err, size_t errlen)
{
    static const char *const keys[] = {"max_tool_rounds", "max_result_bytes", "settle_timeout_ms", NULL};
    struct lx_mcp_section *m = c->mcp = lx_calloc(1, sizeof *m);
    m->max_tool_rounds = 8;
    m->max_result_bytes = 65536;
    m->settle_timeout_ms = 10000;
    json_t *limits;
    if (lx_conf_object(root, "mcp", "", &limits, err, errlen) != LX_OK)
        return LX_ERR;
    if (limits && (lx_conf_unknown_keys(limits, keys, "mcp", err, errlen) != LX_OK ||
                   lx_conf_long(limits, "max_tool_rounds", "mcp", 1, 100, &m->max_tool_rounds, err, errlen) != LX_OK ||
                   lx_conf_long(limits, "max_result_bytes", "mcp", 256, 16L << 20, &m->max_result_bytes, err, errlen) !=
                       LX_OK ||
                   lx_conf_long(limits, "settle_timeout_ms", "mcp", 0, 600000, &m->settle_timeout_ms, err, errlen) !=
                       LX_OK))
        return LX_ERR;
    if (lx_mcp_conf_parse(json_object_get(root, "mcp_servers"), &m->servers, err, errlen) != LX_OK)
        return LX_ERR;
    for (size_t i = 0; i < m->servers.n_servers; i++)
        if (m->servers.servers[i].disabled_reason)
            lx_config_warn(c, "MCP server '%s' is disabled: %s", m->servers.servers[i].name,
                           m->servers.servers[i].disabled_reason);
    /* Aliases name servers by their config name. */
    const struct lx_engine_conf *e = c->engine;
    for (size_t i = 0; e && i < e->n_aliases; i++)
        for (size_t k = 0; k < e->aliases[i].n_mcp; k++) {
            bool found = false;
            for (size_t j = 0; j < m->servers.n_servers && !found; j++)
                found = strcmp(m->servers.servers[j].name, e->aliases[i].mcp[k]) == 0;
            if (!found) {
                lx_conf_err(err, errlen, "aliases.%s.mcp[%zu]: no MCP server named '%s' (mcp_servers)",
                            e->aliases[i].name, k, e->aliases[i].mcp[k]);
                return LX_ERR;
            }
        }
    return LX_OK;
}

void lx_mcp_section_free(struct lx_config *c)
{
    if (!c->mcp)
        return;
    lx_mcp_conf_free(&c->mcp->servers);
    free(c->mcp);
    c->mcp = NULL;
}
