/* A chat request that gets MCP server tools: its servers are waited for (while they start), then the
 * engine's tool loop runs and its one answer is written in the request's dialect. GET /v1/mcp/servers
 * and GET /v1/mcp/tools show what is configured. */
#ifndef LX_API_TOOLS_H
#define LX_API_TOOLS_H

#include "../../dialects/dialect.h"
#include "../engine/toolset.h"

#include <jansson.h>

struct lx_req;

/* Run body (stolen) with the tools of spec (taken over) for req, answering in d; rq is taken over. */
void lx_tools_start(struct lx_req *req, const struct lx_dialect *d, struct lx_dialect_req *rq, json_t *body,
                    struct lx_toolset_spec *spec);
/* The request's MCP servers: its "tools" entries and its alias's defaults. LX_ERR with a 400 in err. */
int lx_tools_parse(struct lx_req *req, const char *model, json_t *body, struct lx_toolset_spec *spec,
                   struct lx_error *err);

void lx_mcp_servers_handle(struct lx_req *req);
void lx_mcp_tools_handle(struct lx_req *req);

#endif
