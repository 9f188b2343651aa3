/* MCP tools: gathering a server's tool list page by page, the x-mcp-header parameters that 2026-07-28
 * mirrors into HTTP headers, and the text a model sees for a tool's result. Moves to
 * src/engine/mcp_tools.c. */
#include "mcp_internal.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#define LX_MCP_MAX_PAGES 100  /* a server whose cursors never end stops here */
#define LX_MCP_MAX_TOOLS 2000

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* A tool llmux can offer: a name of 1 to 128 characters and an object schema (a missing one means "no
 * arguments"); on 2026-07-28 HTTP its x-mcp-header marks must be valid (else the revision says: drop it). */
static bool usable_tool(struct lx_mcp_server *s, json_t *t)
{
    const char *name = json_string_value(json_object_get(t, "name"));
    if (!json_is_object(t) || !name || !*name || strlen(name) > 128) {
        lx_warn("mcp %s: a tool without a valid name was left out", s->conf.name);
        return false;
    }
    json_t *schema = json_object_get(t, "inputSchema");
    if (!schema) {
        json_object_set_new(t, "inputSchema", json_pack("{s:s}", "type", "object"));
    } else if (!json_is_object(schema)) {
        lx_warn("mcp %s: tool %s was left out: its inputSchema is not an object", s->conf.name, name);
        return false;
    }
    char why[200];
    if (s->tx == &lx_mcp_http_transport && s->era == MCP_ERA_MODERN &&
        mcp_xheader_scan(json_object_get(t, "inputSchema"), NULL, why, sizeof why) != LX_OK) {
        lx_warn("mcp %s: tool %s was left out: %s", s->conf.name, name, why);
        return false;
    }
    return true;
}

static void list_page(struct lx_mcp_server *s, const char *cursor);

static void list_done(struct lx_mcp_server *s)
{
    free(s->last_error);
    s->last_error = NULL;
    json_decref(s->tools);
    s->tools = s->tools_next;
    s->tools_next = NULL;
    s->tools_at_ms = wall_ms();
    s->listing = false;
    lx_debug("mcp %s: %zu tool(s)", s->conf.name, json_array_size(s->tools));
    if (!s->stream_pending)
        mcp_settle(s);
    if (s->list_again) {
        s->list_again = false;
        mcp_tools_list(s);
    }
}

static void listed_cb(struct lx_mcp_server *s, void *ctx, const struct mcp_reply *r)
{
    (void)ctx;
    if (s->stopping || !s->listing)
        return;
    json_t *tools = r->result ? json_object_get(r->result, "tools") : NULL;
    if (!json_is_array(tools)) {
        const char *why = r->error ? json_string_value(json_object_get(r->error, "message")) : r->detail;
        lx_warn("mcp %s: tools/list failed: %s", s->conf.name, why ? why : "no tools in the answer");
        free(s->last_error);
        s->last_error = lx_sprintf("tools/list failed: %s", why ? why : "no tools in the answer");
        s->listing = s->list_again = false;
        json_decref(s->tools_next);
        s->tools_next = NULL;
        mcp_settle(s); /* with the tools it had (none at first); the next refresh tries again */
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        if (json_array_size(s->tools_next) >= LX_MCP_MAX_TOOLS)
            break;
        if (usable_tool(s, t))
            json_array_append(s->tools_next, t);
    }
    const char *cursor = json_string_value(json_object_get(r->result, "nextCursor"));
    if (cursor && *cursor && ++s->list_pages < LX_MCP_MAX_PAGES && json_array_size(s->tools_next) < LX_MCP_MAX_TOOLS) {
        list_page(s, cursor);
        return;
    }
    if (cursor && *cursor)
        lx_warn("mcp %s: the tool list was cut at %d pages / %zu tools", s->conf.name, s->list_pages,
                json_array_size(s->tools_next));
    list_done(s);
}

static void list_page(struct lx_mcp_server *s, const char *cursor)
{
    json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : NULL;
    struct mcp_rpc *rpc = mcp_rpc_start(s, "tools/list", params, s->conf.connect_timeout_ms, listed_cb, NULL);
    mcp_rpc_send(s, rpc);
}

void mcp_tools_list(struct lx_mcp_server *s)
{
    if (s->listing) {
        s->list_again = true; /* the list changed while it was being read */
        return;
    }
    s->listing = true;
    s->list_pages = 0;
    s->tools_next = json_array();
    list_page(s, NULL);
}

/* ---- x-mcp-header (2026-07-28 Streamable HTTP) ---- */

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c);
}

/* Walk schema; path is the chain of property names from the root (NULL when the node is not reachable
 * through "properties" alone). */
static int scan(json_t *node, json_t *path, json_t *decls, char *why, size_t whylen)
{
    if (json_is_array(node)) {
        size_t i;
        json_t *v;
        json_array_foreach(node, i, v) if (scan(v, NULL, decls, why, whylen) != LX_OK) return LX_ERR;
        return LX_OK;
    }
    if (!json_is_object(node))
        return LX_OK;
    json_t *mark = json_object_get(node, "x-mcp-header");
    if (mark) {
        const char *h = json_string_value(mark);
        if (!path || json_array_size(path) == 0) {
            snprintf(why, whylen, "x-mcp-header on a schema not reached through properties alone");
            return LX_ERR;
        }
        if (!h || !*h) {
            snprintf(why, whylen, "an empty x-mcp-header");
            return LX_ERR;
        }
        for (const char *p = h; *p; p++)
            if (!tchar((unsigned char)*p)) {
                snprintf(why, whylen, "x-mcp-header \"%.60s\" is not a header name", h);
                return LX_ERR;
            }
        const char *type = json_string_value(json_object_get(node, "type"));
        if (!type || (strcmp(type, "string") && strcmp(type, "integer") && strcmp(type, "boolean"))) {
            snprintf(why, whylen, "x-mcp-header \"%.60s\" on a parameter that is not a string, integer or boolean", h);
            return LX_ERR;
        }
        size_t i;
        json_t *d;
        json_array_foreach(decls, i, d) if (strcasecmp(json_string_value(json_object_get(d, "header")), h) == 0) {
            snprintf(why, whylen, "x-mcp-header \"%.60s\" appears twice", h);
            return LX_ERR;
        }
        json_array_append_new(decls, json_pack("{s:O, s:s}", "path", path, "header", h));
    }
    const char *key;
    json_t *v;
    json_object_foreach(node, key, v) {
        if (strcmp(key, "properties") == 0 && json_is_object(v)) {
            const char *prop;
            json_t *sub;
            json_object_foreach(v, prop, sub) {
                json_t *p = NULL;
                if (path) {
                    p = json_copy(path);
                    json_array_append_new(p, json_string(prop));
                }
                int rc = scan(sub, p, decls, why, whylen);
                json_decref(p);
                if (rc != LX_OK)
                    return LX_ERR;
            }
        } else if (strcmp(key, "x-mcp-header") != 0 && scan(v, NULL, decls, why, whylen) != LX_OK) {
            return LX_ERR;
        }
    }
    return LX_OK;
}

int mcp_xheader_scan(json_t *schema, json_t *decls, char *why, size_t whylen)
{
    json_t *mine = decls ? json_incref(decls) : json_array();
    json_t *root = json_array();
    int rc = scan(schema, root, mine, why, whylen);
    json_decref(root);
    json_decref(mine);
    return rc;
}

static void base64(const unsigned char *in, size_t n, struct lx_buf *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
        lx_buf_append(out, q, 4);
    }
}

char *mcp_header_value(const char *v, size_t len)
{
    bool plain = len > 0 && v[0] != ' ' && v[0] != '\t' && v[len - 1] != ' ' && v[len - 1] != '\t';
    for (size_t i = 0; i < len && plain; i++) {
        unsigned char c = (unsigned char)v[i];
        plain = (c >= 0x20 && c <= 0x7e) || c == '\t';
    }
    if (plain && len >= 11 && strncmp(v, "=?base64?", 9) == 0 && strncmp(v + len - 2, "?=", 2) == 0)
        plain = false; /* looks like the encoding itself */
    if (plain)
        return lx_strndup(v, len);
    struct lx_buf b = {0};
    lx_buf_puts(&b, "=?base64?");
    base64((const unsigned char *)v, len, &b);
    lx_buf_puts(&b, "?=");
    return lx_buf_steal(&b, NULL);
}

static void add_header(struct mcp_rpc *rpc, char *line)
{
    rpc->headers = lx_realloc(rpc->headers, (rpc->n_headers + 1) * sizeof *rpc->headers);
    rpc->headers[rpc->n_headers++] = line;
}

void mcp_tools_call_headers(struct lx_mcp_server *s, const char *tool, json_t *arguments, struct mcp_rpc *rpc)
{
    char *name = mcp_header_value(tool, strlen(tool));
    add_header(rpc, lx_sprintf("Mcp-Name: %s", name));
    free(name);
    json_t *t = lx_mcp_server_tool(s, tool);
    if (!t || s->tx != &lx_mcp_http_transport)
        return;
    json_t *decls = json_array();
    char why[200];
    if (mcp_xheader_scan(json_object_get(t, "inputSchema"), decls, why, sizeof why) == LX_OK) {
        size_t i;
        json_t *d;
        json_array_foreach(decls, i, d) {
            json_t *v = arguments;
            size_t k;
            json_t *step;
            json_array_foreach(json_object_get(d, "path"), k, step) v = json_object_get(v, json_string_value(step));
            char num[32];
            const char *text = NULL;
            size_t len = 0;
            if (json_is_string(v)) {
                text = json_string_value(v);
                len = json_string_length(v);
            } else if (json_is_integer(v)) {
                len = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                text = num;
            } else if (json_is_boolean(v)) {
                text = json_is_true(v) ? "true" : "false";
                len = strlen(text);
            }
            if (!text)
                continue; /* absent or null: no header */
            char *hv = mcp_header_value(text, len);
            add_header(rpc, lx_sprintf("Mcp-Param-%s: %s", json_string_value(json_object_get(d, "header")), hv));
            free(hv);
        }
    }
    json_decref(decls);
}

/* ---- a result as text for a model ---- */

/* Bytes that base64 text decodes to. */
static size_t b64_bytes(json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    while (n > 0 && (s[n - 1] == '=' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        n--;
    return n * 3 / 4;
}

static void describe(json_t *part, struct lx_buf *out)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    const char *mime = json_string_value(json_object_get(part, "mimeType"));
    if (type && strcmp(type, "text") == 0) {
        lx_buf_puts(out, json_string_value(json_object_get(part, "text")) ? json_string_value(json_object_get(part, "text")) : "");
    } else if (type && (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0)) {
        lx_buf_printf(out, "[%s: %s, %zu bytes]", type, mime ? mime : "unknown type",
                      b64_bytes(json_object_get(part, "data")));
    } else if (type && strcmp(type, "resource_link") == 0) {
        const char *name = json_string_value(json_object_get(part, "name"));
        lx_buf_printf(out, "[resource link: %s%s%s]", name ? name : "", name ? " " : "",
                      json_string_value(json_object_get(part, "uri")) ? json_string_value(json_object_get(part, "uri")) : "");
    } else if (type && strcmp(type, "resource") == 0) {
        json_t *res = json_object_get(part, "resource");
        const char *uri = json_string_value(json_object_get(res, "uri"));
        const char *text = json_string_value(json_object_get(res, "text"));
        mime = json_string_value(json_object_get(res, "mimeType"));
        if (text)
            lx_buf_printf(out, "[resource: %s]\n%s", uri ? uri : "", text);
        else
            lx_buf_printf(out, "[resource: %s, %s, %zu bytes]", uri ? uri : "", mime ? mime : "binary",
                          b64_bytes(json_object_get(res, "blob")));
    } else {
        lx_buf_printf(out, "[%s content]", type ? type : "unknown");
    }
}

char *lx_mcp_result_text(const json_t *result, size_t max_bytes)
{
    struct lx_buf out = {0};
    json_t *content = json_object_get(result, "content");
    bool text_seen = false;
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        if (out.len)
            lx_buf_puts(&out, "\n");
        describe(part, &out);
        text_seen |= json_is_string(json_object_get(part, "text"));
    }
    json_t *structured = json_object_get(result, "structuredContent");
    if (structured && !text_seen) {
        char *js = json_dumps(structured, JSON_COMPACT | JSON_ENCODE_ANY);
        if (js) {
            if (out.len)
                lx_buf_puts(&out, "\n");
            lx_buf_puts(&out, js);
            free(js);
        }
    }
    if (out.len == 0)
        lx_buf_puts(&out, "(the tool returned no content)");
    if (max_bytes && out.len > max_bytes) {
        size_t cut = max_bytes;
        while (cut > 0 && ((unsigned char)out.data[cut] & 0xC0) == 0x80)
            cut--; /* not inside a UTF-8 sequence */
        size_t total = out.len;
        out.len = cut;
        lx_buf_printf(&out, "\n[... cut: %zu of %zu bytes shown]", cut, total);
    }
    return lx_buf_steal(&out, NULL);
}
