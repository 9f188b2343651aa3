/* A chat request that gets MCP server tools: its servers are waited for (while they start), then the
 * engine's tool loop runs and its one answer is written in the request's dialect. GET /v1/mcp/servers
 * and GET /v1/mcp/tools show what is configured. */
#ifndef LX_API_TOOLS_H
#define LX_API_TOOLS_H

#include "../../dialects/dialect.h"
#include "../engine/toolset.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct lx_req;

/* Run body (stolen) with the tools of spec (taken over) for req, answering in d; rq is taken over. */
void lx_tools_start(struct lx_req *req, const struct lx_dialect *d, struct lx_dialect_req *rq, json_t *body,
                    struct lx_toolset_spec *spec);
/* The request's MCP servers: its "tools" entries and its alias's defaults. LX_ERR with a 400 in err. */
int lx_tools_parse(struct lx_req *req, const char *model, json_t *body, struct lx_toolset_spec *spec,
                   struct lx_error *err);

/* For another owner of the tool loop (api/responses.c): the pieces lx_tools_start is made of. */
struct lx_tools_wait;
struct lx_toolloop;
struct lx_toolloop_ops;
struct lx_tool_event;
/* Call cb(arg) from the loop once spec's servers have their tool lists (or failed to start), at most
 * mcp.settle_timeout_ms and until at (lx_now_ms(), 0 = none). The wait frees itself before cb runs. */
struct lx_tools_wait *lx_tools_wait(struct lx_req *req, const struct lx_toolset_spec *spec, uint64_t at,
                                    void (*cb)(void *arg), void *arg);
void lx_tools_wait_cancel(struct lx_tools_wait *w);
/* What a turn gives the loop besides the request. */
struct lx_tools_turn {
    const char *model;
    json_t *body;         /* the pivot chat body (borrowed; the loop copies it) */
    bool stream, include_usage;
    uint64_t deadline_at; /* lx_now_ms() value, 0 = none */
    long deadline_ms;
    long max_calls;       /* server tool calls in all, 0 = no cap (lx_toolloop_params.max_calls) */
};
/* Start the loop with spec's tools as listed now, the config's limits, and req's tally and origin. NULL
 * with err set when the model does not route. */
struct lx_toolloop *lx_tools_loop_start(struct lx_req *req, const struct lx_toolset_spec *spec,
                                        const struct lx_tools_turn *turn, const struct lx_toolloop_ops *ops,
                                        void *owner, struct lx_error *err);
/* A finished tool call counted in req's access log tally and in /metrics (an on_tool callback's work). */
void lx_tools_count(struct lx_req *req, const struct lx_tool_event *ev);
/* [{"server_label", "tools": the MCP tools offered (allowed_tools applied), "error"?}] per server of
 * spec: what the Responses API's mcp_list_tools items show. New reference. */
json_t *lx_tools_listed(const struct lx_toolset_spec *spec);

void lx_mcp_servers_handle(struct lx_req *req);
void lx_mcp_tools_handle(struct lx_req *req);

#endif
