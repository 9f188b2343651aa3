/* Allocation wrappers that abort on exhaustion, the clocks every module reads, and the random numbers
 * and backoff of every retry loop. */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static void lx_oom(size_t n)
{
    fprintf(stderr, "llmux: out of memory allocating %zu bytes\n", n);
    abort();
}

void *lx_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        lx_oom(n);
    return p;
}

void *lx_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        lx_oom(count * n);
    return p;
}

void *lx_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        lx_oom(n);
    return q;
}

char *lx_strdup(const char *s)
{
    return lx_strndup(s, strlen(s));
}

char *lx_strndup(const char *s, size_t n)
{
    char *d = lx_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void lx_strcut(char *dst, size_t size, const char *s, size_t n)
{
    if (!size)
        return;
    if (n > size - 1)
        n = size - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

char *lx_strjoin(const char *a, const char *sep, const char *b)
{
    size_t na = strlen(a), ns = strlen(sep), nb = strlen(b);
    char *d = lx_malloc(na + ns + nb + 1);
    memcpy(d, a, na);
    memcpy(d + na, sep, ns);
    memcpy(d + na + ns, b, nb + 1);
    return d;
}

char *lx_vsprintf(const char *fmt, va_list ap)
{
    /* One formatting pass for the usual short strings (headers, URLs); a second only when it did not fit. */
    char small[256];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0)
        n = 0;
    char *s = lx_malloc((size_t)n + 1);
    if ((size_t)n < sizeof small)
        memcpy(s, small, (size_t)n + 1);
    else
        vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

char *lx_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = lx_vsprintf(fmt, ap);
    va_end(ap);
    return s;
}

void lx_strs_push(char ***list, size_t *n, char *s)
{
    *list = lx_realloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = s;
}

void lx_strs_free(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

uint64_t lx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

double lx_now_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int64_t lx_wall_s(void)
{
    return (int64_t)time(NULL);
}

uint64_t lx_random64(void)
{
    static uint64_t s;
    if (!s && (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s || !s))
        s = (lx_now_ms() * 6364136223846793005ULL) ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

static long parse_retry_after_ms(const char *v)
{
    if (!v)
        return 0;
    char *end;
    double s = strtod(v, &end);
    if (end == v || s < 0 || s > 86400)
        return 0; /* an HTTP date or garbage: ignored, the backoff applies */
    return (long)(s * 1000.0);
}

long lx_backoff_ms(long n, long base_ms, long max_ms, const char *retry_after, uint64_t rnd)
{
    long ceiling = base_ms;
    for (long i = 0; i < n && ceiling < max_ms; i++)
        ceiling *= 2;
    if (ceiling > max_ms)
        ceiling = max_ms;
    long delay = (long)(rnd % (uint64_t)(ceiling + 1));
    long ra = parse_retry_after_ms(retry_after);
    if (ra > delay)
        delay = ra;
    return delay > max_ms ? max_ms : delay;
}
