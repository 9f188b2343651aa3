/* The event bus: a growing array of (callback, argument) per event type. An unsubscription from inside a
 * callback only blanks its entry; the array is compacted once the outermost publish of that type returns.
 * Sequence numbers start at the wall clock's microseconds when the process starts, so an id a client
 * kept from before a restart is older than every new one. */
#include "bus.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct subscriber {
    lx_bus_cb cb; /* NULL: unsubscribed during a publish, removed after it */
    void *arg;
};

struct subscribers {
    struct subscriber *subs; /* owned */
    size_t n, cap;
    int publishing;          /* publishes of this type on the stack */
    bool blanks;             /* entries were blanked meanwhile */
};

static struct subscribers lx_bus[LX_EV_TYPE_COUNT];
static uint64_t lx_bus_seq;

static const char *const lx_event_names[LX_EV_TYPE_COUNT] = {
    [LX_EV_REQUEST_STARTED] = "request.started",
    [LX_EV_REQUEST_FIRST_TOKEN] = "request.first_token",
    [LX_EV_REQUEST_FINISHED] = "request.finished",
    [LX_EV_REQUEST_FAILED] = "request.failed",
    [LX_EV_REQUEST_CANCELLED] = "request.cancelled",
    [LX_EV_CALL_STARTED] = "call.started",
    [LX_EV_CALL_FINISHED] = "call.finished",
    [LX_EV_CALL_RETRY] = "call.retry",
    [LX_EV_CALL_FALLBACK] = "call.fallback",
    [LX_EV_CALL_HEDGE] = "call.hedge",
    [LX_EV_PROVIDER_COOLDOWN] = "provider.cooldown",
    [LX_EV_QUEUE_WAITING] = "queue.waiting",
    [LX_EV_QUEUE_TIMEOUT] = "queue.timeout",
    [LX_EV_TOOL_STARTED] = "tool.started",
    [LX_EV_TOOL_FINISHED] = "tool.finished",
    [LX_EV_CONVERSATION_SAVED] = "conversation.saved",
    [LX_EV_CONFIG_RELOADED] = "config.reloaded",
    [LX_EV_CONFIG_REJECTED] = "config.rejected",
    [LX_EV_SERVER_DRAINING] = "server.draining",
};

int64_t lx_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void lx_bus_subscribe(enum lx_event_type type, lx_bus_cb cb, void *arg)
{
    struct subscribers *b = &lx_bus[type];
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        b->subs = lx_realloc(b->subs, b->cap * sizeof *b->subs);
    }
    b->subs[b->n++] = (struct subscriber){cb, arg};
}

void lx_bus_subscribe_mask(lx_ev_mask mask, lx_bus_cb cb, void *arg)
{
    for (int t = 0; t < LX_EV_TYPE_COUNT; t++)
        if (mask & LX_EV_BIT(t))
            lx_bus_subscribe((enum lx_event_type)t, cb, arg);
}

static void compact(struct subscribers *b)
{
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->subs[i].cb)
            b->subs[k++] = b->subs[i];
    b->n = k;
    b->blanks = false;
}

void lx_bus_unsubscribe(enum lx_event_type type, lx_bus_cb cb, void *arg)
{
    struct subscribers *b = &lx_bus[type];
    for (size_t i = 0; i < b->n; i++) {
        if (b->subs[i].cb == cb && b->subs[i].arg == arg) {
            b->subs[i].cb = NULL;
            b->blanks = true;
            break;
        }
    }
    if (b->blanks && !b->publishing)
        compact(b);
}

void lx_bus_unsubscribe_mask(lx_ev_mask mask, lx_bus_cb cb, void *arg)
{
    for (int t = 0; t < LX_EV_TYPE_COUNT; t++)
        if (mask & LX_EV_BIT(t))
            lx_bus_unsubscribe((enum lx_event_type)t, cb, arg);
}

bool lx_bus_wanted(enum lx_event_type type)
{
    return lx_bus[type].n > 0;
}

void lx_bus_publish(struct lx_event *ev)
{
    struct subscribers *b = &lx_bus[ev->type];
    if (b->n == 0)
        return;
    if (!lx_bus_seq)
        lx_bus_seq = (uint64_t)(lx_wall_ns() / 1000);
    ev->seq = ++lx_bus_seq;
    ev->time_ns = lx_wall_ns();
    b->publishing++;
    for (size_t i = 0; i < b->n; i++) /* n and subs re-read: a callback may subscribe more */
        if (b->subs[i].cb)
            b->subs[i].cb(ev, b->subs[i].arg);
    if (--b->publishing == 0 && b->blanks)
        compact(b);
}

void lx_bus_shutdown(void)
{
    for (size_t t = 0; t < LX_EV_TYPE_COUNT; t++) {
        free(lx_bus[t].subs);
        memset(&lx_bus[t], 0, sizeof lx_bus[t]);
    }
}

const char *lx_event_type_name(enum lx_event_type type)
{
    return (unsigned)type < LX_EV_TYPE_COUNT ? lx_event_names[type] : NULL;
}

int lx_event_type_find(const char *name, size_t len)
{
    for (int t = 0; t < LX_EV_TYPE_COUNT; t++)
        if (strlen(lx_event_names[t]) == len && memcmp(lx_event_names[t], name, len) == 0)
            return t;
    return -1;
}

int lx_event_mask_parse(const char *list, lx_ev_mask *mask, char *bad, size_t bad_len)
{
    *mask = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 1 && *p == '*') {
            *mask |= LX_EV_ALL;
        } else if (len) {
            int t = lx_event_type_find(p, len);
            if (t < 0) {
                size_t n = len < bad_len - 1 ? len : bad_len - 1;
                memcpy(bad, p, n);
                bad[n] = '\0';
                return LX_ERR;
            }
            *mask |= LX_EV_BIT(t);
        }
        if (!end)
            break;
        p = end + 1;
    }
    if (!*mask)
        *mask = LX_EV_ALL;
    return LX_OK;
}

void lx_ev_tool_started(const struct lx_ev_origin *o, const char *server, const char *tool, struct lx_ev_span *span)
{
    span->start_ns = lx_wall_ns();
    lx_trace_span_id(span->id);
    if (!lx_bus_wanted(LX_EV_TOOL_STARTED))
        return;
    struct lx_event ev = {.type = LX_EV_TOOL_STARTED, .origin = o,
                          .tool = {.server = server, .tool = tool, .start_ns = span->start_ns}};
    memcpy(ev.tool.span_id, span->id, 8);
    lx_bus_publish(&ev);
}

void lx_ev_tool_finished(const struct lx_ev_origin *o, const char *server, const char *tool, const char *outcome,
                         const char *error, const struct lx_ev_span *span)
{
    if (!lx_bus_wanted(LX_EV_TOOL_FINISHED))
        return;
    struct lx_event ev = {.type = LX_EV_TOOL_FINISHED, .origin = o,
                          .tool = {.server = server, .tool = tool, .outcome = outcome, .error = error,
                                   .start_ns = span->start_ns,
                                   .duration_ms = (double)(lx_wall_ns() - span->start_ns) / 1e6}};
    memcpy(ev.tool.span_id, span->id, 8);
    lx_bus_publish(&ev);
}

void lx_ev_conversation_saved(const struct lx_ev_origin *o, const char *id, long items, double duration_ms)
{
    if (!lx_bus_wanted(LX_EV_CONVERSATION_SAVED))
        return;
    struct lx_event ev = {.type = LX_EV_CONVERSATION_SAVED, .origin = o,
                          .conversation = {.id = id, .items = items, .duration_ms = duration_ms}};
    lx_bus_publish(&ev);
}
