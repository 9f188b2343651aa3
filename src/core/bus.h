/* The event bus: what happened, told to whoever subscribed, without the teller naming them. Events are
 * typed (one payload struct per family of types, in the union below), each with a sequence number, a
 * wall-clock time and the client request it belongs to (its X-Request-Id, its key's NAME, never the key,
 * the model it asked for, its trace context). Subscribers register per type (or per mask of types) and
 * run in the order they subscribed, synchronously, from where the event is published.
 *
 * Cost: a publisher asks lx_bus_wanted(type) first and builds nothing when nobody listens, so an event
 * nobody wants costs one load and a branch, and no allocation. Publishing never blocks.
 *
 * Contexts: events are published from the loop and from inside libcurl callbacks (an exec's commit runs
 * in a write callback), so a subscriber only touches memory, starts timers and wakes transports; it
 * never starts or removes an upstream transfer (a sink's HTTP goes out from its own timer). Every sink
 * keeps a bounded queue and counts what it drops (llmux_events_dropped_total{sink}).
 *
 * Subscribers today: request.finished / failed / cancelled: the HTTP metrics, the client keys'
 * accounting and the access log (main.c); and the sinks: SSE observers (api/events.c), webhooks
 * (io/webhook.c) and OTLP traces (io/otlp.c). docs/events.md lists every type and field. */
#ifndef LX_BUS_H
#define LX_BUS_H

#include "trace.h"

#include <stdbool.h>
#include <stdint.h>

struct lx_req;

enum lx_event_type {
    LX_EV_REQUEST_STARTED,     /* a model request was admitted and routed (its model is known) */
    LX_EV_REQUEST_FIRST_TOKEN, /* its answer is decided: the first content is on its way to the client */
    LX_EV_REQUEST_FINISHED,    /* a client request ended answered (status < 400); every request ends in */
    LX_EV_REQUEST_FAILED,      /* ... or with an error answered (status >= 400, or an error event in a stream) */
    LX_EV_REQUEST_CANCELLED,   /* ... or with its client gone first (exactly one of the three) */
    LX_EV_CALL_STARTED,        /* one upstream attempt began */
    LX_EV_CALL_FINISHED,       /* ... and ended: answered, failed, or cancelled (lost a race, client left) */
    LX_EV_CALL_RETRY,          /* an attempt failed and the same target is tried again after a delay */
    LX_EV_CALL_FALLBACK,       /* a target failed for good and the next of its fallback list is tried */
    LX_EV_CALL_HEDGE,          /* no answer within hedge_ms: another lane starts beside the running ones */
    LX_EV_PROVIDER_COOLDOWN,   /* a provider entered or left its cooldown */
    LX_EV_QUEUE_WAITING,       /* a call queues for a provider slot (max_concurrency) */
    LX_EV_QUEUE_TIMEOUT,       /* ... and no slot freed within queue_timeout_ms */
    LX_EV_TOOL_STARTED,        /* a tool call of the tool loop began (lx_ev_tool_started) */
    LX_EV_TOOL_FINISHED,       /* ... and ended (lx_ev_tool_finished) */
    LX_EV_CONVERSATION_SAVED,  /* the conversation store saved a conversation (lx_ev_conversation_saved) */
    LX_EV_CONFIG_RELOADED,     /* SIGHUP applied a new configuration */
    LX_EV_CONFIG_REJECTED,     /* SIGHUP found the file invalid (or refused it) and kept the running one */
    LX_EV_SERVER_DRAINING,     /* SIGTERM/SIGINT: no new connections, in-flight requests finish */
    LX_EV_TYPE_COUNT
};

typedef uint64_t lx_ev_mask;
#define LX_EV_BIT(t) ((lx_ev_mask)1 << (t))
#define LX_EV_ALL (LX_EV_BIT(LX_EV_TYPE_COUNT) - 1)
/* The three ways a request ends. */
#define LX_EV_REQUEST_END \
    (LX_EV_BIT(LX_EV_REQUEST_FINISHED) | LX_EV_BIT(LX_EV_REQUEST_FAILED) | LX_EV_BIT(LX_EV_REQUEST_CANCELLED))

/* Who an event is about: one per client request, kept in the request (server/req.h) and lent to the
 * engine with each call (struct lx_chat's origin). Every string is borrowed from the request. */
struct lx_ev_origin {
    const char *request_id; /* X-Request-Id */
    const char *key;        /* the client key's name (auth.keys[].name), or NULL; never the key */
    const char *model;      /* the model the client asked for, or NULL before it is read */
    struct lx_trace trace;  /* its W3C trace context */
    const char *tracestate; /* the client's tracestate header, forwarded upstream with traceparent; or NULL */
};

/* request.*: everything the access log line has, as data. */
struct lx_ev_request {
    struct lx_req *req;      /* the request (server/req.h), for the server's own subscribers; each may update
                              * only the fields it owns (auth: its key state) */
    const char *method, *path;
    const char *route;       /* static: the endpoint it matched, or "other" */
    int status;              /* end: what the client got; 499 when it left first */
    const char *answered_by; /* first_token, end: "PROVIDER/MODEL" that answered, or NULL */
    const char *error;       /* end: the error code answered, or NULL */
    long prompt_tokens, completion_tokens;
    int calls, retries, fallbacks;
    double duration_ms;      /* first_token, end: since the request's first byte */
    double ttfb_ms;          /* end: to the first response byte; < 0: none was sent */
    uint64_t bytes_in, bytes_out;
    int64_t start_ns;        /* wall clock at the request's first byte */
};

/* call.started / call.finished: one upstream attempt. */
struct lx_ev_call {
    const char *provider;      /* the configured provider's name */
    const char *provider_type; /* its type ("openai", "anthropic", ...): gen_ai.provider.name */
    const char *model;         /* the model sent upstream */
    const char *label;         /* "PROVIDER/MODEL" as routed */
    const char *operation;     /* "chat" or "embeddings" */
    int lane;                  /* the plan lane (hedged and raced plans have several) */
    int target;                /* position in the lane's fallback list */
    int attempt;               /* retries already made on this target: 0 = first try */
    bool stream;
    uint8_t span_id[8];        /* this attempt's span; its traceparent went upstream (zero: not traced) */
    int64_t start_ns;          /* finished: wall clock when it started */
    double duration_ms;        /* finished */
    const char *outcome;       /* finished: "ok", "error" or "cancelled" */
    int status;                /* finished: 200, the failure's status, or 499 when cancelled */
    const char *error;         /* finished: the error code, or NULL */
    const char *error_type;    /* finished: the OpenAI error type, or NULL */
    const char *response_model;/* finished: the model the answer named, or NULL */
    long prompt_tokens, completion_tokens; /* finished: the answer's usage (winning attempt only) */
    bool won;                  /* finished: this attempt's answer went to the client */
};

/* call.retry */
struct lx_ev_retry {
    const char *provider, *label;
    int lane;
    int attempt;        /* the retry about to be made: 1 = the first */
    int max;            /* retries.max of the provider */
    const char *reason; /* a fixed word: timeout, connect, rate_limited, server_error, bad_response, ... */
    int status;         /* the failure's status */
    const char *error;  /* its code, or NULL */
    long delay_ms;      /* the backoff before the retry */
};

/* call.fallback */
struct lx_ev_fallback {
    const char *from, *to;                   /* labels */
    const char *from_provider, *to_provider;
    int lane;
    const char *reason;
    int status;
    const char *error;
};

/* call.hedge */
struct lx_ev_hedge {
    const char *label, *provider; /* the first target of the lane started */
    int lane;
    long hedge_ms;
};

/* provider.cooldown */
struct lx_ev_cooldown {
    const char *provider;
    bool entered;      /* false: left */
    long failures;     /* cooldown.failures: the failures in a row that started it */
    long period_ms;
};

/* queue.waiting / queue.timeout */
struct lx_ev_queue {
    const char *provider, *label;
    long depth;      /* calls waiting for the provider, this one included */
    long limit;      /* its max_concurrency */
    long timeout_ms; /* queue_timeout_ms */
};

/* tool.started / tool.finished */
struct lx_ev_tool {
    const char *server;  /* the MCP server's configured name */
    const char *tool;
    const char *outcome; /* finished: "ok", "error", "timeout", "cancelled", ... */
    const char *error;   /* finished: what went wrong, or NULL */
    uint8_t span_id[8];
    int64_t start_ns;
    double duration_ms;  /* finished */
};

/* conversation.saved */
struct lx_ev_conversation {
    const char *id;     /* the conversation (or response) id */
    long items;         /* items (turns, messages) saved */
    double duration_ms; /* the store's time */
};

/* config.reloaded / config.rejected */
struct lx_ev_config {
    const char *path;
    long providers, aliases; /* reloaded */
    const char *reason;      /* rejected: the loader's message (it names key paths, never values) */
};

/* server.draining */
struct lx_ev_draining {
    const char *signal;  /* "SIGTERM" ... */
    long inflight;
    long timeout_ms;     /* shutdown_timeout_ms */
};

struct lx_event {
    enum lx_event_type type;
    uint64_t seq;                      /* set by lx_bus_publish: increasing over the process and past restarts */
    int64_t time_ns;                   /* set by lx_bus_publish: the wall clock */
    const struct lx_ev_origin *origin; /* the client request it belongs to, or NULL (config, server, provider) */
    union {
        struct lx_ev_request request;  /* request.* */
        struct lx_ev_call call;        /* call.started, call.finished */
        struct lx_ev_retry retry;
        struct lx_ev_fallback fallback;
        struct lx_ev_hedge hedge;
        struct lx_ev_cooldown cooldown;
        struct lx_ev_queue queue;      /* queue.* */
        struct lx_ev_tool tool;        /* tool.* */
        struct lx_ev_conversation conversation;
        struct lx_ev_config config;    /* config.* */
        struct lx_ev_draining draining;
    };
};

typedef void (*lx_bus_cb)(const struct lx_event *ev, void *arg);

/* cb(ev, arg) for every event of type, after the subscribers already there. */
void lx_bus_subscribe(enum lx_event_type type, lx_bus_cb cb, void *arg);
/* The same for every type in mask. */
void lx_bus_subscribe_mask(lx_ev_mask mask, lx_bus_cb cb, void *arg);
/* The subscription of cb with arg ends (no-op when there is none). */
void lx_bus_unsubscribe(enum lx_event_type type, lx_bus_cb cb, void *arg);
void lx_bus_unsubscribe_mask(lx_ev_mask mask, lx_bus_cb cb, void *arg);
/* Does anyone listen to type? Ask before building an event. */
bool lx_bus_wanted(enum lx_event_type type);
/* Stamp ev (seq, time) and tell every subscriber of ev->type, in order. ev is borrowed for the calls. */
void lx_bus_publish(struct lx_event *ev);
/* Drop every subscription (at exit). */
void lx_bus_shutdown(void);

/* "request.started" ...; NULL for no type. */
const char *lx_event_type_name(enum lx_event_type type);
/* The type named name[0..len), or -1. */
int lx_event_type_find(const char *name, size_t len);
/* A comma-separated list of types into a mask ("call.retry,request.failed"; "*" or "" = all). LX_ERR with
 * the first unknown name in bad (bad_len bytes). */
int lx_event_mask_parse(const char *list, lx_ev_mask *mask, char *bad, size_t bad_len);

/* For the tool loop: publish tool.started for origin's request (o may be NULL) and fill span (its id and
 * start) for the matching lx_ev_tool_finished. Strings are borrowed for the call. */
struct lx_ev_span {
    uint8_t id[8];
    int64_t start_ns;
};
void lx_ev_tool_started(const struct lx_ev_origin *o, const char *server, const char *tool, struct lx_ev_span *span);
/* outcome: "ok", "error", "timeout", "cancelled"; error: a short reason or NULL. */
void lx_ev_tool_finished(const struct lx_ev_origin *o, const char *server, const char *tool, const char *outcome,
                         const char *error, const struct lx_ev_span *span);
/* For the conversation store: publish conversation.saved. */
void lx_ev_conversation_saved(const struct lx_ev_origin *o, const char *id, long items, double duration_ms);

/* The wall clock in nanoseconds since the epoch. */
int64_t lx_wall_ns(void);

#endif
