/* JSON for every llmux file: jansson allocating through the aborting lx_* allocators, so no jansson call
 * that builds, copies or dumps a value fails for want of memory (json_dumps of an object or array, or of
 * any value with JSON_ENCODE_ANY, never returns NULL); and the one parser of request bodies. */
#ifndef LX_JSON_H
#define LX_JSON_H

#include "errors.h"

#include <jansson.h>
#include <stddef.h>

/* Route jansson's allocations through lx_malloc (which aborts on exhaustion). Once, at start-up, before
 * any jansson call. */
void lx_json_init(void);

/* A request body that must be a JSON object (new reference), or NULL with a 400 invalid_json in err that
 * says where parsing failed (line and column): every endpoint's body goes through here. */
json_t *lx_json_parse_object(const char *body, size_t len, struct lx_error *err);

#endif
