/* POST /v1/embeddings: OpenAI's embeddings shape in and out, for providers that have embeddings. */
#ifndef LX_EMBEDDINGS_H
#define LX_EMBEDDINGS_H

#include "../core/errors.h"

#include <jansson.h>

struct lx_req;

void lx_embeddings_handle(struct lx_req *req);
/* Validate an embeddings body: a new reference, or NULL with a 400 naming the field. */
json_t *lx_embeddings_parse(const char *body, size_t len, struct lx_error *err);

#endif
