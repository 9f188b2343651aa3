/* Shared basics for every llmux file: return codes, allocation wrappers, clocks.
 * Out-of-memory policy: the lx_* allocators abort the process (as redis and h2o do), so callers never
 * check for NULL from them; jansson allocates through them too (core/json.h).
 *
 * The core/ layer: plain data and pure functions every other layer uses. It includes nothing of ours
 * outside src/core/, and no library but jansson, OpenSSL and libc: no event loop, no I/O library. */
#ifndef LX_COMMON_H
#define LX_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lx_rc {
    LX_OK = 0,     /* done */
    LX_ERR = -1,   /* failed; the caller reports or propagates */
    LX_AGAIN = 1,  /* not now: try later (used for backpressure) */
    LX_DONE = 2,   /* complete: whatever follows is not needed (an upstream stream's own end was seen) */
};

#define LX_VERSION "0.1.0"

void *lx_malloc(size_t n);
void *lx_calloc(size_t count, size_t n);
void *lx_realloc(void *p, size_t n);
char *lx_strdup(const char *s);
char *lx_strndup(const char *s, size_t n);
/* Copy the n bytes at s into dst[size], cut to size - 1 and NUL-terminated, as snprintf's "%.*s" does
 * (the hot paths copy a few names per request; formatting each cost ~500 instructions). */
void lx_strcut(char *dst, size_t size, const char *s, size_t n);
/* "a" sep "b", in a new string. */
char *lx_strjoin(const char *a, const char *sep, const char *b);
char *lx_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *lx_vsprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Append s (taken over) to the growable array *list of *n strings. */
void lx_strs_push(char ***list, size_t *n, char *s);
/* Free such an array and its strings; *list and *n become empty. */
void lx_strs_free(char ***list, size_t *n);

/* Milliseconds on the monotonic clock (durations), and on the wall clock (timestamps). */
uint64_t lx_now_ms(void);
double lx_now_ms_f(void);
int64_t lx_wall_s(void);

/* A fast random number (xorshift, seeded once from the kernel): for jitter and ids, not for secrets. */
uint64_t lx_random64(void);
/* The delay before retry number n (0-based): full jitter over min(max, base·2^n), at least Retry-After
 * (seconds) when given, never above max. rnd is a uniform random 64-bit value. */
long lx_backoff_ms(long n, long base_ms, long max_ms, const char *retry_after, uint64_t rnd);

#define LX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
/* The struct of type `type` whose member `member` is at ptr. */
#define LX_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
