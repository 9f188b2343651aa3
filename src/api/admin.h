/* The admin endpoints: GET /healthz and GET /metrics (open without a key; on admin_listen when set). */
#ifndef LX_ADMIN_H
#define LX_ADMIN_H

struct lx_fleet;
struct lx_req;

/* The fleet shared through Redis, for /metrics and /v1/providers (NULL: none). main.c wires it. */
void lx_admin_share(struct lx_fleet *f);
struct lx_fleet *lx_admin_fleet(void);

/* Always 200 while the process serves: Redis being away degrades the limits, not the replica. */
void lx_admin_healthz(struct lx_req *req);
/* The counters of core/metrics.c, after the gauges read now: requests and connections in flight, each
 * configured provider's queue and calls in flight, and with Redis its connection, latency and errors. */
void lx_admin_metrics(struct lx_req *req);

#endif
