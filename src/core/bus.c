/* The event bus: a growing array of (callback, argument) per event type. An unsubscription from inside a
 * callback only blanks its entry; the array is compacted once the outermost publish returns. */
#include "bus.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

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

void lx_bus_subscribe(enum lx_event_type type, lx_bus_cb cb, void *arg)
{
    struct subscribers *b = &lx_bus[type];
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        b->subs = lx_realloc(b->subs, b->cap * sizeof *b->subs);
    }
    b->subs[b->n++] = (struct subscriber){cb, arg};
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

bool lx_bus_wanted(enum lx_event_type type)
{
    return lx_bus[type].n > 0;
}

void lx_bus_publish(const struct lx_event *ev)
{
    struct subscribers *b = &lx_bus[ev->type];
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
