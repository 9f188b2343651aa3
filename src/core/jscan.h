/* A JSON scanner that builds nothing: it checks text as jansson's parser would accept it and reports where
 * values lie, so the pass-through path (core/passthru.h) can read the few fields llmux needs from a body
 * and send the body on as it came. Whatever it does not judge (a \u0000 escape, more than 18 digits of
 * integer, an exponent of three digits, nesting beyond LX_JSCAN_MAX_DEPTH, a key with an escape) is
 * LX_AGAIN, like malformed text: the caller then goes the way of jansson, which decides. */
#ifndef LX_JSCAN_H
#define LX_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

#define LX_JSCAN_MAX_DEPTH 64

enum lx_jtype { LX_JSTRING, LX_JINT, LX_JREAL, LX_JOBJECT, LX_JARRAY, LX_JTRUE, LX_JFALSE, LX_JNULL };

/* A value: its type and its text (a string's with its quotes). */
struct lx_jval {
    enum lx_jtype type;
    const char *p;
    size_t len;
};

/* One member of an object that the caller looks for. */
struct lx_jmember {
    const char *key;    /* in: the key, as plain text */
    size_t count;       /* out: how often it came (jansson keeps the last) */
    struct lx_jval val; /* out, when count > 0: the last value */
    size_t cut_at;      /* out, when count == 1: the member with one comma next to it, as offsets from the */
    size_t cut_len;     /* object's first byte: leaving these bytes out leaves a valid object without it */
};

/* p[0..n) is exactly one JSON value, whitespace around it allowed: LX_OK with *v, else LX_AGAIN. */
int lx_jscan(const char *p, size_t n, struct lx_jval *v);
/* Walk the members of obj (an LX_JOBJECT from lx_jscan or from within one), filling the wanted ones and
 * *n_members (may be NULL). LX_AGAIN when one of its keys has an escape. */
int lx_jscan_members(const struct lx_jval *obj, struct lx_jmember *want, size_t n_want, size_t *n_members);

/* The items of an LX_JARRAY, one at a time. */
struct lx_jiter {
    const char *p, *end;
};
void lx_jscan_items(const struct lx_jval *arr, struct lx_jiter *it);
bool lx_jscan_next(struct lx_jiter *it, struct lx_jval *item);
/* Items in an array. */
size_t lx_jscan_count(const struct lx_jval *arr);
/* The members of an LX_JOBJECT, one at a time: *key is the key as an LX_JSTRING (with its quotes; it may
 * hold escapes). */
void lx_jscan_fields(const struct lx_jval *obj, struct lx_jiter *it);
bool lx_jscan_next_field(struct lx_jiter *it, struct lx_jval *key, struct lx_jval *val);

/* v is a string whose text is s (no escapes compared). */
bool lx_jval_is(const struct lx_jval *v, const char *s);
/* v is an LX_JINT that fits: its value. */
bool lx_jval_int(const struct lx_jval *v, long long *out);

#endif
