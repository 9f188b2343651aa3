/* Anthropic Messages ⇄ OpenAI chat: the maps both directions share, written once. The outbound provider
 * (providers/anthropic.c: OpenAI clients → Anthropic targets) and the inbound dialect
 * (dialects/anthropic_messages.c: Anthropic clients → any target) are mirror images: the provider's request
 * map is the dialect's answer map and the other way round, so stop reasons, usage, content blocks, tools
 * and tool_choice are translated here for both. Pure JSON in and out, including src/core/ only: that is
 * why dialects/ may include it (tests/tools/check_includes.sh lets dialects/ include the shared map
 * headers of providers/, and lets those maps include nothing but src/core/).
 *
 * Thinking in the OpenAI-shaped pivot: OpenRouter's convention, `reasoning_details`, an array of
 * {"type":"reasoning.text","text","signature","index"} and {"type":"reasoning.encrypted","data","index"}
 * (index: the thinking block's ordinal, so several blocks and their signatures stay apart), on
 * choices[].message in a completion and on choices[].delta in a stream chunk. The plain-text fields of
 * other reasoning servers (`reasoning_content`: DeepSeek, vLLM, llama.cpp; `reasoning`: OpenRouter,
 * Ollama's /v1) are read as thinking without a signature. */
#ifndef LX_ANTHROPIC_MAP_H
#define LX_ANTHROPIC_MAP_H

#include "../src/core/buf.h"
#include "../src/core/errors.h"

#include <jansson.h>
#include <stdbool.h>

/* --- stop reasons --- */
/* Anthropic stop_reason → OpenAI finish_reason (NULL for NULL): end_turn, stop_sequence, pause_turn → stop;
 * max_tokens, model_context_window_exceeded → length; tool_use → tool_calls; refusal → content_filter. */
const char *lx_anthropic_finish_reason(const char *stop_reason);
/* OpenAI finish_reason → Anthropic stop_reason: stop → end_turn (stop_sequence when a stop sequence
 * matched: `matched` true), length → max_tokens, tool_calls/function_call → tool_use, content_filter →
 * refusal. NULL or unknown → end_turn. */
const char *lx_anthropic_stop_reason(const char *finish_reason, bool matched);

/* --- usage --- */
/* Anthropic usage → OpenAI usage (new reference): prompt_tokens counts cache reads and writes, as
 * OpenAI's does; prompt_tokens_details.cached_tokens = cache reads, .cache_write_tokens (OpenRouter's
 * name) = cache writes when there were any. */
json_t *lx_anthropic_usage_to_openai(json_t *usage);
/* OpenAI usage → Anthropic usage (new reference): the inverse, with the cache_creation breakdown clients
 * expect ({ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}, writes counted as 5-minute ones). */
json_t *lx_anthropic_usage_from_openai(json_t *usage);

/* --- content: OpenAI → Anthropic --- */
/* An OpenAI image_url part → an Anthropic image block (base64 from a data: URL, else url), or NULL with a
 * 400 naming param. */
json_t *lx_anthropic_image_from_openai(json_t *part, const char *param, struct lx_error *err);
/* An OpenAI file part holding a PDF (file_data "data:application/pdf;base64,...", or llmux's file_url) →
 * an Anthropic document block, or NULL with a 400 naming param. */
json_t *lx_anthropic_document_from_openai(json_t *part, const char *param, struct lx_error *err);
/* OpenAI message content (string, null, or an array of text / image_url / file parts) → an array of
 * Anthropic blocks (new reference), or NULL with a 400 naming param (e.g. "messages[3].content"). */
json_t *lx_anthropic_blocks_from_openai(json_t *content, const char *param, struct lx_error *err);
/* One OpenAI tool call → a tool_use block (new reference); NULL when its arguments are not a JSON
 * object (empty arguments are {}). */
json_t *lx_anthropic_tool_use_from_openai(json_t *tool_call);
/* An OpenAI tool definition → an Anthropic tool (input_schema {"type":"object"} when it has none). */
json_t *lx_anthropic_tool_from_openai(json_t *tool);
/* OpenAI tool_choice (+ parallel_tool_calls false) → Anthropic tool_choice, or NULL with a 400. */
json_t *lx_anthropic_tool_choice_from_openai(json_t *tc, bool no_parallel, struct lx_error *err);
/* OpenAI message reasoning (reasoning_details, else reasoning_content / reasoning text) → thinking and
 * redacted_thinking blocks appended to blocks. */
void lx_anthropic_thinking_from_openai(json_t *msg, json_t *blocks);

/* --- content: Anthropic → OpenAI --- */
/* An Anthropic image block → an OpenAI image_url part (new reference), or NULL when its source is not
 * base64 or url (a file_id only Anthropic can read). */
json_t *lx_anthropic_image_to_openai(json_t *block);
/* A tool_use block → an OpenAI tool call (new reference): input serialised as the arguments string. */
json_t *lx_anthropic_tool_use_to_openai(json_t *block);
/* Anthropic assistant content blocks → the fields of an OpenAI assistant message set on msg: content
 * (text blocks joined; null when there are tool calls and no text), tool_calls, and when with_thinking
 * reasoning_details (thinking and redacted_thinking blocks) and reasoning_content (their text). Other
 * block types are skipped. */
void lx_anthropic_blocks_to_openai(json_t *blocks, json_t *msg, bool with_thinking);
/* An Anthropic tool → an OpenAI function tool (new reference): name, description, input_schema as
 * parameters, strict. */
json_t *lx_anthropic_tool_to_openai(json_t *tool);
/* Anthropic tool_choice → OpenAI tool_choice (new reference: "auto", "required", "none" or a named
 * function); *no_parallel set from disable_parallel_tool_use. NULL when the type is none of auto, any,
 * tool (with a name), none. */
json_t *lx_anthropic_tool_choice_to_openai(json_t *tc, bool *no_parallel);

/* --- errors --- */
/* The Anthropic error type for an error llmux answers: an Anthropic type the error already carries
 * (overloaded_error, billing_error, ...) is kept, else the status decides: 400 invalid_request_error,
 * 401 authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 408/504
 * timeout_error, 413 request_too_large, 429 rate_limit_error, 529 overloaded_error, other 5xx api_error,
 * other 4xx invalid_request_error. */
const char *lx_anthropic_error_type(const struct lx_error *err);

#endif
