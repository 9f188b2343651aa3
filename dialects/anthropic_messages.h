/* The anthropic_messages dialect beyond its table: what the API layer asks of a parsed request once it
 * knows where the request is routed (the pivot cannot say everything an Anthropic request says), the
 * token estimate of count_tokens, and what the dialect's files share. */
#ifndef LX_DIALECT_ANTHROPIC_MESSAGES_H
#define LX_DIALECT_ANTHROPIC_MESSAGES_H

#include "dialect.h"

#include <stdbool.h>

/* What parse keeps in rq->priv (an object; every key optional):
 *   "native":   the client's body as it came, for a target that speaks Anthropic itself (it is sent
 *               with the model renamed instead of the pivot translated back: nothing is lost);
 *   "lost":     ["top_k", "thinking", "cache_control", ...] client parameters the pivot cannot carry,
 *               dropped (and reported in x-llmux-dropped-params) when the target is not Anthropic-type;
 *   "needs":    {"anthropic": "<why>", "pdf": "<where>"}: what the target must take, or the request is a
 *               400 (blocks only Anthropic reads: URL or file_id documents and images, server tools,
 *               search results...; PDF documents, which OpenAI-type targets read as file parts too);
 *   "thinking": true when the client enabled thinking: the target's reasoning comes back as thinking
 *               blocks (and is left out otherwise, as Anthropic does). */

/* The kinds of target the API layer routes to, as far as this dialect cares. */
struct lx_anthropic_target {
    const char *label;   /* "PROVIDER/MODEL", for the message */
    const char *type;    /* the provider type's name ("anthropic", "openai", "ollama", "mock", ...) */
    bool anthropic;      /* it speaks the Messages API itself (sends rq's native body) */
    bool reads_pdf;      /* it reads PDF documents (as OpenAI file parts or natively) */
};

/* LX_OK when target can answer the parsed request rq; else LX_ERR with a 400 in err saying which part
 * of the request needs what. */
int lx_anthropic_messages_check_target(const struct lx_dialect_req *rq, const struct lx_anthropic_target *target,
                                       struct lx_error *err);

/* The client's body for a target that speaks Anthropic (borrowed from rq), or NULL. */
json_t *lx_anthropic_messages_native(const struct lx_dialect_req *rq);

/* What the engine carries beside the pivot for targets that speak Anthropic (struct lx_chat.native, new
 * reference): {"api": "anthropic_messages", "body": the client's body, "headers": {"anthropic-version",
 * "anthropic-beta": the client's, when it sent them}, "lost": what the pivot cannot carry}. */
json_t *lx_anthropic_messages_native_request(const struct lx_dialect_req *rq, const char *version, const char *beta);

/* The dialect's dropped slot: the pivot names in `dropped` ("user,stop,...") renamed to the Anthropic
 * parameters they came from (metadata.user_id, stop_sequences, ...); an owned string or NULL. */
char *lx_anthropic_messages_dropped(const struct lx_dialect_req *rq, const char *dropped);

/* POST /v1/messages/count_tokens: validate body like a Messages request (max_tokens not required;
 * unknown and null fields ignored) and fill rq, with rq->prompt_tokens_estimate the estimate. Returns
 * the pivot (new reference, for routing) or NULL with a 400 in err. */
json_t *lx_anthropic_messages_parse_count(const char *body, size_t len, struct lx_dialect_req *rq,
                                          struct lx_error *err);

/* The token estimate for a parsed Anthropic request (see anthropic_tokens.c for the heuristic); at
 * least 1. */
long lx_anthropic_tokens_estimate(json_t *root);

/* --- shared by the dialect's files (anthropic_messages.c, anthropic_stream.c) --- */
/* An Anthropic message id for a pivot completion or chunk id (new reference). */
json_t *lx_anthropic_message_id(json_t *id);
/* A pivot tool call → a tool_use block (new reference) with an id ("toolu_llmux_<n>" when the target
 * gave none) and an object input ({} when the arguments are not a JSON object). */
json_t *lx_anthropic_tool_use_block(json_t *call, size_t n);
/* {"type":"error","error":{"type","message"}} for err (new reference). */
json_t *lx_anthropic_error_json(const struct lx_error *err);
/* The stream encoder's slots. */
void *lx_anthropic_stream_open(const struct lx_dialect_req *rq);
void lx_anthropic_stream_chunk(void *st, json_t *chunk, struct lx_buf *out);
void lx_anthropic_stream_end(void *st, struct lx_buf *out);
void lx_anthropic_stream_error(void *st, const struct lx_error *err, struct lx_buf *out);
void lx_anthropic_stream_keepalive(void *st, struct lx_buf *out);
void lx_anthropic_stream_close(void *st);

#endif
