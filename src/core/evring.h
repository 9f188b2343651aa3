/* The event ring: the last N events as the observers' SSE stream shows them (JSON text), kept so that an
 * observer that reconnects with Last-Event-ID gets what it missed, and so that each observer's backlog is
 * a position in one shared ring rather than a queue of its own. Positions count every event ever pushed;
 * the ring holds [first, end). */
#ifndef LX_EVRING_H
#define LX_EVRING_H

#include "bus.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lx_evring_entry {
    uint64_t seq;             /* the event's id (struct lx_event's seq) */
    enum lx_event_type type;
    char *text;               /* owned: the JSON, NUL, then the names ?model= matches, each NUL-terminated,
                               * ended by an empty one */
    size_t len;               /* of the JSON */
};

struct lx_evring {
    struct lx_evring_entry *e; /* owned: cap slots */
    size_t cap;
    uint64_t end;              /* the position the next event gets */
    size_t n;                  /* entries held: [end - n, end) */
};

void lx_evring_init(struct lx_evring *r, size_t cap);
void lx_evring_free(struct lx_evring *r);
/* Append ev (serialized now), dropping the oldest entry when full. */
void lx_evring_push(struct lx_evring *r, const struct lx_event *ev);
static inline uint64_t lx_evring_first(const struct lx_evring *r) { return r->end - r->n; }
/* The entry at pos, or NULL when the ring no longer (or does not yet) hold it. */
const struct lx_evring_entry *lx_evring_at(const struct lx_evring *r, uint64_t pos);
/* The position of the first held entry whose id is above seq (end when none). */
uint64_t lx_evring_after(const struct lx_evring *r, uint64_t seq);
/* Is e of a type in types and, when model is given, about that model (the model the client asked for,
 * the target routed to, or the model sent upstream)? */
bool lx_evring_match(const struct lx_evring_entry *e, lx_ev_mask types, const char *model);

#endif
