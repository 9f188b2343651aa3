/* The OpenAI Responses dialect (issue 15): POST /v1/responses bodies to the chat pivot and back, and the
 * Responses event stream. Beyond the dialect table it offers what a stateful turn needs around it: the
 * turn's facts from the parsed request (id, previous_response_id, conversation, store, truncation), the
 * normalised input items to store, the history prepended (with truncation) once the store returned it, and
 * the final response object of a stream before its closing events are written (so it can be committed
 * first). Items are the Responses API's own JSON (message, function_call, function_call_output, and the
 * remote-MCP mcp_list_tools and mcp_call of a turn that ran server tools).
 * Pure translation: no loop, no store, no sockets. */
#ifndef LX_OPENAI_RESPONSES_H
#define LX_OPENAI_RESPONSES_H

#include "dialect.h"

#include <jansson.h>
#include <stdbool.h>

/* What the parsed request says about state (borrowed from rq->priv; valid while rq is). */
struct lx_responses_turn {
    const char *id;                   /* the "resp_…" id made for this response */
    const char *previous_response_id; /* or NULL */
    const char *conversation_id;      /* or NULL */
    bool store;                       /* default true */
    bool store_explicit;              /* the client said "store": true */
    bool truncation_auto;             /* truncation: "auto" (default "disabled") */
    json_t *input;                    /* this turn's input items, normalised with ids */
    json_t *tools;                    /* the request's "tools" as sent (an array): its mcp entries name the
                                       * MCP servers of the turn (engine/toolset.c checks them) */
    long max_tool_calls;              /* the cap on the turn's server tool calls; 0 = none */
};
void lx_responses_turn(const struct lx_dialect_req *rq, struct lx_responses_turn *t);
/* The response as it starts (status in_progress, no output): new reference. */
json_t *lx_responses_envelope(const struct lx_dialect_req *rq);
/* The response will not be stored (storage is off): it says "store": false. */
void lx_responses_unstored(struct lx_dialect_req *rq);

/* metadata: an object of at most 16 pairs, keys up to 64 characters, string values up to 512. LX_OK, or
 * LX_ERR with a 400 naming 'metadata'. */
int lx_responses_check_metadata(json_t *meta, struct lx_error *err);

/* Normalise a list of input items (a string is one user message) to stored items with ids, type and
 * status; param_prefix names the field in errors ("input", "items"). New reference, or NULL with a 400
 * in err. Exposed for the conversation endpoints, the fuzz target and tests. */
json_t *lx_responses_items_normalize(json_t *input, const char *param_prefix, struct lx_error *err);

/* Translate normalised items to chat messages, appended to messages. Consecutive function_call items
 * become one assistant message with tool_calls; function_call_output a tool message. LX_OK, or LX_ERR
 * with a 400 in err (an item the pivot cannot carry). */
int lx_responses_items_to_messages(json_t *items, const char *param_prefix, json_t *messages, struct lx_error *err);

/* A rough token count of items (the length of their JSON text, four bytes a token): what the history
 * budget counts. */
long lx_responses_items_tokens(json_t *items);

/* Drop the oldest whole turns (a turn starts at a user message) of history until history and input fit
 * budget tokens (budget <= 0: no limit). Returns the kept history (new reference) and the number of items
 * dropped in *dropped; when truncate is false and they do not fit, NULL with a 400
 * context_length_exceeded in err. */
json_t *lx_responses_fit(json_t *history, json_t *input, long budget, bool truncate, long *dropped,
                         struct lx_error *err);

/* Put history (items, oldest first) before this turn's input in the pivot body made by parse, after the
 * instructions: pivot's messages are rebuilt. LX_OK, or LX_ERR with err set. */
int lx_responses_set_history(const struct lx_dialect_req *rq, json_t *pivot, json_t *history, struct lx_error *err);

/* The response object of a stream as it will be once stream_end runs (status, output items complete,
 * usage): new reference, to be stored before the closing events go out. */
json_t *lx_responses_stream_response(void *st);
/* The response object of a stream that failed with err (status "failed", error set): new reference. */
json_t *lx_responses_stream_failed(void *st, const struct lx_error *err);

#endif
