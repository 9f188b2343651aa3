/* The list of dialects, and what every dialect shares. Adding a dialect: its own file, and one line here. */
#include "dialect.h"
#include "../src/core/common.h"

#include <stdlib.h>
#include <string.h>

static const struct lx_dialect *const lx_dialects[] = {
    &lx_dialect_openai_chat,
    &lx_dialect_anthropic_messages,
    &lx_dialect_openai_responses,
};

const struct lx_dialect *lx_dialect_find(const char *name)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_dialects); i++)
        if (strcmp(lx_dialects[i]->name, name) == 0)
            return lx_dialects[i];
    return NULL;
}

const struct lx_dialect *lx_dialect_at(size_t i)
{
    return i < LX_ARRAY_LEN(lx_dialects) ? lx_dialects[i] : NULL;
}

void lx_dialect_req_clear(struct lx_dialect_req *rq)
{
    free(rq->model);
    json_decref(rq->priv);
    memset(rq, 0, sizeof *rq);
}
