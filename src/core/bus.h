/* The event bus: what happened, told to whoever subscribed, without the teller naming them. Events are
 * typed (one payload struct per type, in the union below); subscribers register per type and run in the
 * order they subscribed, synchronously, from where the event is published (the loop). Publishing an
 * event nobody listens to costs a check (lx_bus_wanted), so a publisher can skip building its payload.
 *
 * Today one event: a client request finished (the access log, the HTTP metrics and the client keys'
 * accounting subscribe; h2o's loggers in h2o_dispose_request). Later ones (a model call's start, chunks
 * and end, a tool call, a conversation turn) add a type and a payload here, and sinks (SSE observers,
 * webhooks, OTLP) subscribe without their publishers changing. */
#ifndef LX_BUS_H
#define LX_BUS_H

#include <stdbool.h>

struct lx_req;

enum lx_event_type {
    LX_EV_REQUEST_FINISHED, /* a client request ended: answered, refused, or its client left */
    LX_EV_TYPE_COUNT
};

struct lx_event {
    enum lx_event_type type;
    union {
        struct {
            struct lx_req *req;       /* the request (server/req.h), for the subscribers that know it;
                                       * each may update only the fields it owns (auth: its key state) */
            const char *route;        /* static: the endpoint it matched, or "other" */
            int status;               /* what the client got; 499 when it left first */
        } request_finished;
    };
};

typedef void (*lx_bus_cb)(const struct lx_event *ev, void *arg);

/* cb(ev, arg) for every event of type, after the subscribers already there. */
void lx_bus_subscribe(enum lx_event_type type, lx_bus_cb cb, void *arg);
/* The subscription of cb with arg ends (no-op when there is none). */
void lx_bus_unsubscribe(enum lx_event_type type, lx_bus_cb cb, void *arg);
/* Does anyone listen to type? */
bool lx_bus_wanted(enum lx_event_type type);
/* Tell every subscriber of ev->type, in order. ev is borrowed for the calls. */
void lx_bus_publish(const struct lx_event *ev);
/* Drop every subscription (at exit). */
void lx_bus_shutdown(void);

#endif
