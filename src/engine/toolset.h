/* Which tools a request gets: the client's function tools as they are, plus the tools of the MCP servers it
 * names (`{"type": "mcp", "server_label": ...}` entries in "tools", and its alias's defaults), offered to
 * the model as function tools named SERVER__TOOL. Pure: the live tool lists come in as JSON, so the tool
 * loop and the tests share it. Moves to src/engine/toolset.h. */
#ifndef LX_TOOLSET_H
#define LX_TOOLSET_H

#include "../core/errors.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One MCP server a request uses, and which of its tools (NULL: all). */
struct lx_toolset_server {
    char *name;           /* owned: the configured server name */
    char **allowed;       /* owned: allowed_tools, or NULL for all */
    size_t n_allowed;
};

/* What the request asked for, before the servers' tool lists are known. */
struct lx_toolset_spec {
    struct lx_toolset_server *servers; /* owned */
    size_t n_servers;
    json_t *client_tools;              /* owned: the request's other "tools" entries, as given (an array) */
};

/* A server tool as the model sees it. */
struct lx_tool_ref {
    char *exposed; /* owned: the function name offered to the model */
    char *server;  /* owned */
    char *tool;    /* owned: the name on the server */
};

struct lx_toolset {
    json_t *tools;             /* owned: the "tools" array for the model (client tools first) */
    struct lx_tool_ref *refs;  /* owned */
    size_t n_refs;
};

/* Read the request's "tools" (may be NULL) and the alias's default servers. known(name, &url) says whether an
 * MCP server of that name is configured, and sets url to its configured URL (NULL for a stdio server):
 * an entry's server_url must be that URL. LX_OK, or LX_ERR with a 400 in err naming the parameter
 * ("tools[2].server_label", ...). */
int lx_toolset_parse(json_t *tools, const char *const *alias_servers, size_t n_alias,
                     bool (*known)(const char *name, const char **url), struct lx_toolset_spec *out,
                     struct lx_error *err);
void lx_toolset_spec_free(struct lx_toolset_spec *spec);

/* Build the tool list: the client's tools, then each server's tools (listed(name) gives its MCP tool
 * array, borrowed, or NULL) filtered by allowed_tools, as function tools with unique names of at most 64
 * characters of [A-Za-z0-9_-]. */
void lx_toolset_build(const struct lx_toolset_spec *spec, json_t *(*listed)(const char *server),
                      struct lx_toolset *out);
void lx_toolset_free(struct lx_toolset *ts);
/* The server tool offered as name, or NULL (a client tool, or a name the model made up). */
const struct lx_tool_ref *lx_toolset_find(const struct lx_toolset *ts, const char *name);

#endif
