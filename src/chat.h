/* POST /v1/chat/completions: validation, routing, and relaying one call's answer (JSON or SSE). */
#ifndef LX_CHAT_H
#define LX_CHAT_H

#include "errors.h"

#include <jansson.h>

struct lx_req;

void lx_chat_handle(struct lx_req *req);

/* Validate an OpenAI chat request body. Returns the parsed object (new reference) or NULL with err set
 * to a 400 naming the field. Exposed for unit tests and the fuzz target. */
json_t *lx_chat_parse(const char *body, size_t len, struct lx_error *err);

#endif
