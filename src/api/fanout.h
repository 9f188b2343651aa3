/* POST /v1/fanout (one prompt to several models: all answers, or the first) and POST /v1/batch (many
 * prompts, bounded concurrency, answers in order or streamed as they finish). */
#ifndef LX_FANOUT_H
#define LX_FANOUT_H

struct lx_req;

void lx_fanout_handle(struct lx_req *req);
void lx_batch_handle(struct lx_req *req);

#endif
