/* JSON text written straight into a buffer, for the hot paths where building jansson objects would cost
 * more than the work itself (the access log line, the pass-through request body). The output is what
 * jansson's json_dumps writes for the same values: the same escapes (no JSON_ENSURE_ASCII, no
 * JSON_ESCAPE_SLASH), UTF-8 kept as it is, reals as JSON_REAL_PRECISION(n) prints them. */
#ifndef LX_JSONOUT_H
#define LX_JSONOUT_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..n) is UTF-8 that jansson accepts as a string: no overlong forms, no surrogates, nothing
 * above U+10FFFF, no NUL. */
bool lx_json_utf8_ok(const char *s, size_t n);
/* The length of the multi-byte UTF-8 sequence at p[0..n) (its first byte is 0x80 or above), 0 when it is
 * not one jansson accepts. */
size_t lx_utf8_seq(const unsigned char *p, size_t n);
/* s[0..n) as a quoted JSON string (the caller checked it with lx_json_utf8_ok). */
void lx_jsonw_str(struct lx_buf *b, const char *s, size_t n);
/* The same, or `null` for NULL, or the quoted `bad` when s is not valid UTF-8. */
void lx_jsonw_str_or(struct lx_buf *b, const char *s, const char *bad);
void lx_jsonw_int(struct lx_buf *b, long long v);
/* A real as jansson prints it with JSON_REAL_PRECISION(precision): "%.*g", with ".0" added when that
 * reads as an integer, and the exponent without '+' or leading zeros. */
void lx_jsonw_real(struct lx_buf *b, double v, int precision);

#endif
