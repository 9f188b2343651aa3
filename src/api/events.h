/* GET /v1/events: the gateway's events, live, as Server-Sent Events for observers (operators, dashboards,
 * `curl -N`), filtered by ?types= and ?model=, resumable with Last-Event-ID from a ring of the latest
 * events, and the "events" section of the configuration that sizes both. An observer that falls too far
 * behind is cut with a final event that says how many events it lost, never buffered without bound. */
#ifndef LX_API_EVENTS_H
#define LX_API_EVENTS_H

#include <jansson.h>
#include <stddef.h>

struct lx_config;
struct lx_req;

struct lx_events_conf {
    long ring_size;      /* events kept for replay (Last-Event-ID) */
    long observer_queue; /* events an observer may be behind before it is cut */
    long keepalive_ms;   /* a comment line on a silent stream, so proxies and clients see it alive */
};

/* The keys this section reads (see src/config.c's table): "events". */
extern const char *const lx_events_conf_keys[];
int lx_events_conf_parse(struct lx_config *c, json_t *root, char *err, size_t errlen);
void lx_events_conf_free(struct lx_config *c);

/* c takes effect (start-up, reload). The ring is sized once, when the first observer arrives: until then
 * nothing is recorded, so a gateway nobody watches pays nothing for it. */
void lx_events_apply(const struct lx_events_conf *c);
/* The handler of GET /v1/events. */
void lx_events_handle(struct lx_req *req);
/* Observers connected now (for /metrics). */
long lx_events_observers(void);
/* Forget every observer and free the ring (at exit, after the server stopped, before the loop's last
 * drain). */
void lx_events_shutdown(void);

#endif
