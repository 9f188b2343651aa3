/* The OpenAI chat completions dialect's extras, for the endpoints of the same family that take chat
 * requests inside their own bodies (/v1/fanout, /v1/batch). The dialect itself is lx_dialect_openai_chat. */
#ifndef LX_DIALECT_OPENAI_CHAT_H
#define LX_DIALECT_OPENAI_CHAT_H

#include "dialect.h"

#include <jansson.h>
#include <stdbool.h>

/* The checks of the dialect's parse on a parsed value; params in errors are prefixed ("requests[3].").
 * Without need_model, "model" is not looked at (fanout takes "models"). LX_OK, or LX_ERR with a 400 in
 * err. */
int lx_openai_chat_validate(json_t *root, const char *prefix, bool need_model, struct lx_error *err);

/* The error body of OpenAI's APIs ({"error":{...}} with err's status): the error_body slot of this
 * dialect and of the Responses dialect. */
json_t *lx_openai_error_body(const struct lx_error *err, int *status);

#endif
