/* dialects/dialect_draft.c — TEMPORARY: what the draft contract (dialect_draft.h) declares outside any
 * one dialect, until issue 13's dialects/ provides it; removed with dialect_draft.h. */
#include "dialect_draft.h"

#include <stdlib.h>

void lx_dialect_req_clear(struct lx_dialect_req *rq)
{
    free(rq->model);
    rq->model = NULL;
    json_decref(rq->priv);
    rq->priv = NULL;
}
