/* The event ring: a circular array of serialized events. One allocation per event holds its JSON and the
 * names a model filter compares against. */
#include "evring.h"
#include "buf.h"
#include "common.h"
#include "evjson.h"

#include <stdlib.h>
#include <string.h>

void lx_evring_init(struct lx_evring *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->cap = cap ? cap : 1;
    r->e = lx_calloc(r->cap, sizeof *r->e);
}

void lx_evring_free(struct lx_evring *r)
{
    for (size_t i = 0; i < r->cap && r->e; i++)
        free(r->e[i].text);
    free(r->e);
    memset(r, 0, sizeof *r);
}

static void add_name(struct lx_buf *b, const char *s)
{
    if (s && *s)
        lx_buf_append(b, s, strlen(s) + 1);
}

void lx_evring_push(struct lx_evring *r, const struct lx_event *ev)
{
    struct lx_evring_entry *e = &r->e[r->end % r->cap];
    free(e->text);
    struct lx_buf b = {0};
    lx_event_write(ev, &b);
    e->len = b.len;
    lx_buf_append(&b, "", 1);
    if (ev->origin)
        add_name(&b, ev->origin->model);
    switch (ev->type) {
    case LX_EV_CALL_STARTED:
    case LX_EV_CALL_FINISHED:
        add_name(&b, ev->call.label);
        add_name(&b, ev->call.model);
        break;
    case LX_EV_CALL_RETRY: add_name(&b, ev->retry.label); break;
    case LX_EV_CALL_FALLBACK:
        add_name(&b, ev->fallback.from);
        add_name(&b, ev->fallback.to);
        break;
    case LX_EV_CALL_HEDGE: add_name(&b, ev->hedge.label); break;
    case LX_EV_QUEUE_WAITING:
    case LX_EV_QUEUE_TIMEOUT: add_name(&b, ev->queue.label); break;
    default: break;
    }
    lx_buf_append(&b, "", 1);
    e->text = lx_buf_steal(&b, NULL);
    e->seq = ev->seq;
    e->type = ev->type;
    r->end++;
    if (r->n < r->cap)
        r->n++;
}

const struct lx_evring_entry *lx_evring_at(const struct lx_evring *r, uint64_t pos)
{
    if (pos < lx_evring_first(r) || pos >= r->end)
        return NULL;
    return &r->e[pos % r->cap];
}

uint64_t lx_evring_after(const struct lx_evring *r, uint64_t seq)
{
    uint64_t lo = lx_evring_first(r), hi = r->end; /* ids increase with positions: binary search */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (r->e[mid % r->cap].seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool lx_evring_match(const struct lx_evring_entry *e, lx_ev_mask types, const char *model)
{
    if (!(types & LX_EV_BIT(e->type)))
        return false;
    if (!model)
        return true;
    for (const char *s = e->text + e->len + 1; *s; s += strlen(s) + 1)
        if (strcmp(s, model) == 0)
            return true;
    return false;
}
