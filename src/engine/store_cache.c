/* The history cache: a chained hash table over the keys and a doubly linked list in use order. */
#include "store_cache.h"
#include "../core/common.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *key, *owner;       /* owned */
    json_t *items;           /* ref held */
    size_t n;                /* json_array_size(items) */
    int64_t valid_until;
    struct entry *hnext;     /* hash chain */
    struct entry *prev, *next; /* use order: head is the most recent */
};

struct lx_hcache {
    struct entry **table;
    size_t nbuckets;
    struct entry *head, *tail;
    size_t entries, items, max_entries, max_items;
    uint64_t hits, misses;
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

struct lx_hcache *lx_hcache_new(size_t max_entries, size_t max_items)
{
    struct lx_hcache *c = lx_calloc(1, sizeof *c);
    c->max_entries = max_entries ? max_entries : 1;
    c->max_items = max_items;
    c->nbuckets = 64;
    while (c->nbuckets < c->max_entries * 2)
        c->nbuckets *= 2;
    c->table = lx_calloc(c->nbuckets, sizeof *c->table);
    return c;
}

static struct entry **slot(struct lx_hcache *c, const char *key)
{
    struct entry **pp = &c->table[hash(key) & (c->nbuckets - 1)];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->hnext;
    return pp;
}

static void unlink_use(struct lx_hcache *c, struct entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(struct lx_hcache *c, struct entry *e)
{
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static void remove_entry(struct lx_hcache *c, struct entry **pp)
{
    struct entry *e = *pp;
    *pp = e->hnext;
    unlink_use(c, e);
    c->entries--;
    c->items -= e->n;
    json_decref(e->items);
    free(e->key);
    free(e->owner);
    free(e);
}

void lx_hcache_drop(struct lx_hcache *c, const char *key)
{
    struct entry **pp = slot(c, key);
    if (*pp)
        remove_entry(c, pp);
}

static json_t *lookup(struct lx_hcache *c, const char *key, const char *owner, int64_t now, int64_t *valid_until,
                      bool count)
{
    struct entry **pp = slot(c, key), *e = *pp;
    if (e && e->valid_until && now >= e->valid_until) {
        remove_entry(c, pp);
        e = NULL;
    }
    if (!e || strcmp(e->owner, owner) != 0) {
        c->misses += count;
        return NULL;
    }
    c->hits += count;
    unlink_use(c, e);
    push_front(c, e);
    if (valid_until)
        *valid_until = e->valid_until;
    return e->items;
}

json_t *lx_hcache_get(struct lx_hcache *c, const char *key, const char *owner, int64_t now, int64_t *valid_until)
{
    return lookup(c, key, owner, now, valid_until, true);
}

json_t *lx_hcache_find(struct lx_hcache *c, const char *key, const char *owner, int64_t now, int64_t *valid_until)
{
    return lookup(c, key, owner, now, valid_until, false);
}

void lx_hcache_put(struct lx_hcache *c, const char *key, const char *owner, json_t *items, int64_t valid_until)
{
    size_t n = json_array_size(items);
    if (c->max_items && n > c->max_items)
        return; /* larger than the whole cache: not worth evicting everything for */
    lx_hcache_drop(c, key);
    struct entry *e = lx_calloc(1, sizeof *e);
    e->key = lx_strdup(key);
    e->owner = lx_strdup(owner);
    e->items = json_incref(items);
    e->n = n;
    e->valid_until = valid_until;
    struct entry **pp = slot(c, key);
    e->hnext = *pp;
    *pp = e;
    push_front(c, e);
    c->entries++;
    c->items += n;
    while (c->tail && (c->entries > c->max_entries || (c->max_items && c->items > c->max_items)))
        lx_hcache_drop(c, c->tail->key);
}

void lx_hcache_drop_prefix(struct lx_hcache *c, const char *prefix)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry **pp = &c->table[i];
        while (*pp) {
            if (strncmp((*pp)->key, prefix, plen) == 0)
                remove_entry(c, pp);
            else
                pp = &(*pp)->hnext;
        }
    }
}

void lx_hcache_stats(const struct lx_hcache *c, struct lx_hcache_stats *st)
{
    st->entries = c->entries;
    st->items = c->items;
    st->hits = c->hits;
    st->misses = c->misses;
}

void lx_hcache_free(struct lx_hcache *c)
{
    if (!c)
        return;
    lx_hcache_drop_prefix(c, "");
    free(c->table);
    free(c);
}
