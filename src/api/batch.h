/* POST /v1/batch: many chat requests in one, bounded concurrency, answers in order or streamed as they
 * finish. */
#ifndef LX_BATCH_H
#define LX_BATCH_H

struct lx_req;

void lx_batch_handle(struct lx_req *req);

#endif
