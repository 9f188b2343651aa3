/* A bounded in-memory cache of histories (arrays of items), for a store backend's loop half: the history
 * a response continues, or a conversation's items, kept after the store read or wrote them so the next
 * turn of a hot conversation needs no disk read and no JSON parse. Least recently used entries go first
 * when it holds more than max_entries entries or max_items item slots. Values are shared, never modified:
 * json_incref to keep one beyond the next cache call.
 *
 * Loop thread only (jansson's reference counts are not atomic). */
#ifndef LX_STORE_CACHE_H
#define LX_STORE_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct lx_hcache;

struct lx_hcache *lx_hcache_new(size_t max_entries, size_t max_items);
void lx_hcache_free(struct lx_hcache *c);

/* The items under key for owner while now < its valid_until (borrowed), or NULL. */
json_t *lx_hcache_get(struct lx_hcache *c, const char *key, const char *owner, int64_t now, int64_t *valid_until);
/* The same, for the cache's own bookkeeping: not counted in the hits and misses. */
json_t *lx_hcache_find(struct lx_hcache *c, const char *key, const char *owner, int64_t now, int64_t *valid_until);
/* Keep items (a reference is taken; the caller must not modify them) under key, replacing what was there.
 * valid_until 0: no expiry. */
void lx_hcache_put(struct lx_hcache *c, const char *key, const char *owner, json_t *items, int64_t valid_until);
void lx_hcache_drop(struct lx_hcache *c, const char *key);
/* Drop every entry whose key starts with prefix ("" : all). */
void lx_hcache_drop_prefix(struct lx_hcache *c, const char *prefix);

struct lx_hcache_stats {
    size_t entries, items;
    uint64_t hits, misses;
};
void lx_hcache_stats(const struct lx_hcache *c, struct lx_hcache_stats *st);

#endif
