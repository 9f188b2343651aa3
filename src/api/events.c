/* The observers' event stream. Once the first observer arrives, every event published goes into one ring
 * (core/evring.h) and a zero-delay timer is set; each observer is a position in that ring, and the timer
 * (from the loop, never from inside a publisher, which may be a libcurl callback or MHD's) writes every
 * observer its matching events while its output queue has room. An observer more than observer_queue
 * events behind, or whose position the ring has overwritten, is cut: a final `observer.cut` event says
 * how many matching events it lost, they count in llmux_events_dropped_total{sink="sse"}, and its stream
 * ends. So an observer costs at most one output queue (server/req.h's high watermark) and a position.
 *
 * Access: the admin address (admin_listen), or an admin key (auth.keys[].admin) on the main address, or
 * anyone when there are no keys (llmux then listens on loopback only); lx_auth_is_admin decides. */
#include "events.h"
#include "../core/bus.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/confread.h"
#include "../core/errors.h"
#include "../core/evring.h"
#include "../core/log.h"
#include "../core/metrics.h"
#include "../io/loop.h"
#include "../server/auth.h"
#include "../server/req.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct observer {
    struct lx_req_handler handler; /* what the request tells us */
    struct lx_req *req;            /* hold: released in observer_free */
    lx_ev_mask types;
    char *model;                   /* owned: the ?model= filter, or NULL */
    uint64_t pos;                  /* the next ring position to look at */
    struct observer *prev, *next;
};

static struct {
    struct lx_events_conf conf;    /* the config applied last */
    struct lx_evring ring;         /* owned, once armed */
    bool armed;                    /* recording: an observer came */
    struct observer *all;          /* owned: the live observers */
    long n;
    struct lx_timer *pump;         /* owned: writes to the observers from the loop */
    struct lx_timer *keepalive;    /* owned */
} E = {.conf = {.ring_size = 10000, .observer_queue = 1000, .keepalive_ms = 15000}};

/* ---- configuration ---- */

const char *const lx_events_conf_keys[] = {"events", NULL};

int lx_events_conf_parse(struct lx_config *cfg, json_t *root, char *err, size_t errlen)
{
    static const char *const keys[] = {"ring_size", "observer_queue", "keepalive_ms", NULL};
    struct lx_events_conf *c = cfg->events = lx_calloc(1, sizeof *c);
    *c = (struct lx_events_conf){.ring_size = 10000, .observer_queue = 1000, .keepalive_ms = 15000};
    json_t *ev;
    if (lx_conf_object(root, "events", "", &ev, err, errlen) != LX_OK)
        return LX_ERR;
    if (!ev)
        return LX_OK;
    if (lx_conf_unknown_keys(ev, keys, "events", err, errlen) != LX_OK ||
        lx_conf_long(ev, "ring_size", "events", 1, 10000000, &c->ring_size, err, errlen) != LX_OK ||
        lx_conf_long(ev, "observer_queue", "events", 1, 10000000, &c->observer_queue, err, errlen) != LX_OK ||
        lx_conf_long(ev, "keepalive_ms", "events", 100, 3600000, &c->keepalive_ms, err, errlen) != LX_OK)
        return LX_ERR;
    if (c->observer_queue > c->ring_size) {
        lx_conf_err(err, errlen, "events.observer_queue: must not exceed events.ring_size (%ld)", c->ring_size);
        return LX_ERR;
    }
    return LX_OK;
}

void lx_events_conf_free(struct lx_config *cfg)
{
    free(cfg->events);
    cfg->events = NULL;
}

void lx_events_apply(const struct lx_events_conf *c)
{
    if (E.armed && c->ring_size != E.conf.ring_size)
        lx_warn("reload: events.ring_size takes effect at the next restart");
    long ring = E.armed ? E.conf.ring_size : c->ring_size;
    E.conf = *c;
    E.conf.ring_size = ring;
    if (E.conf.observer_queue > ring)
        E.conf.observer_queue = ring;
}

/* ---- observers ---- */

static void observer_free(void *arg)
{
    struct observer *o = arg;
    struct lx_req *req = o->req;
    free(o->model);
    free(o);
    lx_req_release(req);
}

/* The observer is done (its stream ended, or its client left): no more writes; freed on the next turn. */
static void observer_end(struct observer *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else
        E.all = o->next;
    if (o->next)
        o->next->prev = o->prev;
    E.n--;
    lx_req_set_handler(o->req, NULL);
    lx_defer(observer_free, o);
}

static void write_event(struct observer *o, const char *type, uint64_t seq, const char *json, size_t len)
{
    struct lx_buf b = {0};
    if (seq)
        lx_buf_printf(&b, "id: %llu\n", (unsigned long long)seq);
    lx_buf_printf(&b, "event: %s\ndata: ", type);
    lx_buf_append(&b, json, len);
    lx_buf_append(&b, "\n\n", 2);
    lx_req_stream_write(o->req, b.data, b.len);
    lx_buf_free(&b);
}

/* A last event (observer.cut, observer.closed) and the end of the stream. */
static void close_with(struct observer *o, const char *type, json_t *data /* stolen */)
{
    json_object_set_new(data, "type", json_string(type));
    char *text = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(data);
    write_event(o, type, 0, text, strlen(text));
    free(text);
    lx_req_stream_end(o->req);
    observer_end(o);
}

/* Cut a slow observer: count what it will never get. */
static void cut(struct observer *o)
{
    const struct lx_evring *r = &E.ring;
    uint64_t first = lx_evring_first(r), from = o->pos > first ? o->pos : first;
    long dropped = o->pos < first ? (long)(first - o->pos) : 0; /* overwritten: none can be checked */
    for (uint64_t p = from; p < r->end; p++)
        dropped += lx_evring_match(lx_evring_at(r, p), o->types, o->model);
    lx_metrics_events_dropped("sse", dropped);
    lx_warn("events: observer req=%s is %llu events behind (events.observer_queue = %ld); cut after dropping %ld",
            o->req->request_id, (unsigned long long)(r->end - o->pos), E.conf.observer_queue, dropped);
    close_with(o, "observer.cut",
               json_pack("{s:I,s:s}", "dropped", (json_int_t)dropped, "reason",
                         "this observer fell further behind than events.observer_queue allows; reconnect with "
                         "Last-Event-ID to resume from what the ring still holds"));
}

/* Write o what it has not seen, while its output queue has room (else on_drain comes back here). */
static void pump_one(struct observer *o)
{
    const struct lx_evring *r = &E.ring;
    while (o->pos < r->end && o->pos >= lx_evring_first(r) && lx_req_can_write(o->req)) {
        const struct lx_evring_entry *e = lx_evring_at(r, o->pos++);
        if (lx_evring_match(e, o->types, o->model))
            write_event(o, lx_event_type_name(e->type), e->seq, e->text, e->len);
    }
    if (o->pos < lx_evring_first(r) || r->end - o->pos > (uint64_t)E.conf.observer_queue)
        cut(o);
}

static void pump_cb(void *arg)
{
    (void)arg;
    for (struct observer *o = E.all, *next; o; o = next) {
        next = o->next;
        pump_one(o);
    }
}

/* The recorder: every event into the ring, and the observers written from the loop. Runs wherever events
 * are published, so it only serializes and sets a timer. */
static void record_cb(const struct lx_event *ev, void *arg)
{
    (void)arg;
    lx_evring_push(&E.ring, ev);
    if (E.all && !lx_timer_pending(E.pump))
        lx_timer_start(E.pump, 0);
}

static void keepalive_cb(void *arg)
{
    (void)arg;
    for (struct observer *o = E.all; o; o = o->next)
        if (lx_req_can_write(o->req))
            lx_req_stream_write(o->req, ": keepalive\n\n", 13);
    if (E.all)
        lx_timer_start(E.keepalive, E.conf.keepalive_ms);
}

/* server.draining: the observers' streams end (after the event itself reached them), so the drain ends. */
static void close_all_cb(void *arg)
{
    (void)arg;
    pump_cb(NULL);
    while (E.all)
        close_with(E.all, "observer.closed", json_pack("{s:s}", "reason", "the server is shutting down"));
}

static void draining_cb(const struct lx_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
    lx_defer(close_all_cb, NULL);
}

static void arm(void)
{
    if (E.armed)
        return;
    E.armed = true;
    lx_evring_init(&E.ring, (size_t)E.conf.ring_size);
    E.pump = lx_timer_new(pump_cb, NULL);
    E.keepalive = lx_timer_new(keepalive_cb, NULL);
    lx_bus_subscribe_mask(LX_EV_ALL, record_cb, NULL);
    lx_bus_subscribe(LX_EV_SERVER_DRAINING, draining_cb, NULL);
    lx_metrics_events_dropped("sse", 0);
}

static void observer_abort(struct lx_req_handler *h, struct lx_req *req, const struct lx_error *why)
{
    (void)req;
    struct observer *o = LX_CONTAINER_OF(h, struct observer, handler);
    if (why) { /* limits.max_request_ms: a clean end the client can resume from */
        close_with(o, "observer.closed", json_pack("{s:s}", "reason", why->message));
        return;
    }
    observer_end(o);
}

static void observer_drain(struct lx_req_handler *h, struct lx_req *req)
{
    (void)req;
    pump_one(LX_CONTAINER_OF(h, struct observer, handler));
}

static const struct lx_req_handler lx_observer_handler = {
    .on_abort = observer_abort,
    .on_drain = observer_drain,
};

static void refuse(struct lx_req *req, int status, const char *type, const char *param, const char *code,
                   const char *msg)
{
    struct lx_error e = {0};
    lx_error_set(&e, status, type, param, code, "%s", msg);
    lx_req_respond_error(req, &e);
    lx_error_clear(&e);
}

void lx_events_handle(struct lx_req *req)
{
    if (!lx_auth_is_admin(req)) {
        refuse(req, 403, "permission_error", NULL, "admin_key_required",
               "Watching the gateway's events needs an admin key (\"admin\": true in auth.keys) or the "
               "admin_listen address.");
        return;
    }
    lx_ev_mask types = LX_EV_ALL;
    const char *t = lx_req_query(req, "types");
    char bad[64];
    if (t && lx_event_mask_parse(t, &types, bad, sizeof bad) != LX_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "Unknown event type '%s' in ?types= (docs/events.md lists them).", bad);
        refuse(req, 400, "invalid_request_error", "types", "unknown_event_type", msg);
        return;
    }
    uint64_t last = 0;
    const char *lei = lx_req_header(req, "Last-Event-ID");
    if (lei && *lei) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(lei, &end, 10);
        if (errno || *end || end == lei) {
            refuse(req, 400, "invalid_request_error", "Last-Event-ID", "invalid_header",
                   "Invalid Last-Event-ID: expected the id of an event this stream sent.");
            return;
        }
        last = v;
    }
    arm();
    struct observer *o = lx_calloc(1, sizeof *o);
    o->handler = lx_observer_handler;
    o->req = lx_req_hold(req);
    o->types = types;
    const char *m = lx_req_query(req, "model");
    o->model = m && *m ? lx_strdup(m) : NULL;
    o->pos = last ? lx_evring_after(&E.ring, last) : E.ring.end;
    o->next = E.all;
    if (E.all)
        E.all->prev = o;
    E.all = o;
    E.n++;
    lx_req_set_handler(req, &o->handler);
    lx_req_add_header(req, "Cache-Control", "no-cache");
    lx_req_add_header(req, "X-Accel-Buffering", "no");
    lx_req_stream_begin(req, 200, "text/event-stream; charset=utf-8");
    lx_req_stream_write(req, "retry: 2000\n: llmux events\n\n", 28);
    if (!lx_timer_pending(E.keepalive))
        lx_timer_start(E.keepalive, E.conf.keepalive_ms);
    if (o->pos < E.ring.end)
        lx_timer_start(E.pump, 0); /* the replay */
}

long lx_events_observers(void)
{
    return E.n;
}

void lx_events_shutdown(void)
{
    while (E.all)
        observer_end(E.all); /* freed by the loop's last drain */
    if (!E.armed)
        return;
    lx_bus_unsubscribe_mask(LX_EV_ALL, record_cb, NULL);
    lx_bus_unsubscribe(LX_EV_SERVER_DRAINING, draining_cb, NULL);
    lx_timer_free(E.pump);
    lx_timer_free(E.keepalive);
    lx_evring_free(&E.ring);
    E.armed = false;
}
