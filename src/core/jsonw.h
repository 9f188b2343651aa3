/* A small JSON text writer into a buffer: objects and arrays, keys, strings (escaped; a string that is
 * not UTF-8 becomes "(not UTF-8)", as the access log shows it), integers, one-decimal numbers, booleans,
 * null and raw JSON. For the paths that would otherwise build a jansson tree only to dump it (every event
 * a sink takes): writing the text directly costs a fraction of that. */
#ifndef LX_JSONW_H
#define LX_JSONW_H

#include "buf.h"

#include <stdbool.h>
#include <stdint.h>

struct lx_jw {
    struct lx_buf *b; /* borrowed: where the text goes */
    unsigned depth;
    uint32_t items;   /* bit d: the container at depth d has an item already (a comma comes next) */
};

/* Begin a writer on b (appending). */
static inline struct lx_jw lx_jw_on(struct lx_buf *b) { return (struct lx_jw){.b = b}; }
/* key: the member's name inside an object, NULL inside an array or at the top. */
void lx_jw_open(struct lx_jw *w, const char *key, char bracket);   /* '{' or '[' */
void lx_jw_close(struct lx_jw *w, char bracket);                   /* '}' or ']' */
void lx_jw_str(struct lx_jw *w, const char *key, const char *s);   /* s NULL: nothing is written */
void lx_jw_int(struct lx_jw *w, const char *key, long long v);
void lx_jw_int_str(struct lx_jw *w, const char *key, long long v); /* "123", as protobuf JSON writes int64 */
void lx_jw_ms(struct lx_jw *w, const char *key, double ms);        /* one decimal; null when negative */
void lx_jw_bool(struct lx_jw *w, const char *key, bool v);
void lx_jw_null(struct lx_jw *w, const char *key);
void lx_jw_raw(struct lx_jw *w, const char *key, const char *json); /* already JSON text */
/* Is s[0..n) valid UTF-8? */
bool lx_utf8_valid(const char *s, size_t n);

#endif
