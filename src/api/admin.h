/* The admin endpoints: GET /healthz and GET /metrics (open without a key; on admin_listen when set). */
#ifndef LX_ADMIN_H
#define LX_ADMIN_H

struct lx_req;

void lx_admin_healthz(struct lx_req *req);
/* The counters of core/metrics.c, after the gauges read now: requests and connections in flight, and
 * each configured provider's queue and calls in flight. */
void lx_admin_metrics(struct lx_req *req);

#endif
