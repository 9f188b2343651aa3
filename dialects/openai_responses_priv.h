/* Private to the Responses dialect's files (openai_responses.c: requests and completions;
 * openai_responses_stream.c: the stream encoder; openai_responses_items.c: items): the output-item
 * builders both answer paths share, and the stream slots the dialect table points at. */
#ifndef LX_OPENAI_RESPONSES_PRIV_H
#define LX_OPENAI_RESPONSES_PRIV_H

#include "openai_responses.h"

#include <stdbool.h>

/* Chat usage → Responses usage (input/output tokens and their details); JSON null without one. */
json_t *lx_responses_usage(json_t *chat_usage);
/* An assistant message item with a new "msg_…" id and no content yet. */
json_t *lx_responses_message_item(const char *status);
/* An output_text content part. */
json_t *lx_responses_text_part(const char *text);
/* A function_call item with a new "fc_…" id. */
json_t *lx_responses_call_item(const char *call_id, const char *name, const char *args, const char *status);
/* status, incomplete_details and completed_at of resp from the pivot's finish_reason. */
void lx_responses_set_outcome(json_t *resp, const char *finish_reason);

/* A required string field of an item (borrowed), or NULL with a 400 naming param.key in err. */
json_t *lx_responses_need_str(json_t *item, const char *key, const char *param, struct lx_error *err);

/* ---- remote MCP items (openai_responses_mcp.c) ---- */
/* An mcp_list_tools item from {"server_label", "tools": the server's MCP tool list, "error"?}. */
json_t *lx_responses_list_tools_item(json_t *listed);
/* An mcp_call item, in progress, from a tool loop call ({"server", "tool", "arguments"}). */
json_t *lx_responses_mcp_call_item(json_t *call);
/* Set item's output, error and status from the call's "outcome" and "output"; true when it went well. */
bool lx_responses_mcp_call_finish(json_t *item, json_t *call);
/* A client's mcp_list_tools or mcp_call item checked and normalised (new reference); the approval items
 * are refused. NULL with a 400 in err. */
json_t *lx_responses_mcp_norm(json_t *item, const char *type, const char *param, struct lx_error *err);
/* The function name a chat model knew the call's tool by (SERVER__TOOL, as engine/toolset.c makes it),
 * and the text it got back: owned strings. */
char *lx_responses_mcp_function_name(json_t *item);
char *lx_responses_mcp_result_text(json_t *item);

/* The stream encoder's slots (see struct lx_dialect). */
void *lx_responses_stream_open(const struct lx_dialect_req *rq);
void lx_responses_stream_chunk(void *st, json_t *chunk, struct lx_buf *out);
void lx_responses_stream_end(void *st, struct lx_buf *out);
void lx_responses_stream_error(void *st, const struct lx_error *err, struct lx_buf *out);
void lx_responses_stream_keepalive(void *st, struct lx_buf *out);
void lx_responses_stream_close(void *st);

#endif
