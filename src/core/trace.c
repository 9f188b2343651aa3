/* W3C Trace Context: parsing and formatting traceparent, random ids (lx_random64: they need to be
 * unique, not secret), and the ratio sampler on the trace id's low 8 bytes, as OpenTelemetry's
 * TraceIdRatioBased does. */
#include "trace.h"
#include "common.h"

#include <stdio.h>
#include <string.h>

static double lx_ratio;

void lx_trace_set_ratio(double ratio)
{
    lx_ratio = ratio < 0 ? 0 : ratio > 1 ? 1 : ratio;
}

double lx_trace_ratio(void)
{
    return lx_ratio;
}

static void random_id(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = lx_random64();
        memcpy(out + i, &r, n - i < 8 ? n - i : 8);
    }
}

void lx_trace_span_id(uint8_t out[8])
{
    random_id(out, 8); /* xorshift never yields 0 from a non-zero state */
}

void lx_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* upper case is invalid in traceparent */
}

/* n bytes from 2n lower-case hex digits at s; false on anything else or when all are zero. */
static bool unhex(const char *s, uint8_t *out, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
        nonzero |= out[i] != 0;
    }
    return nonzero;
}

int lx_trace_parse(const char *h, struct lx_trace *t)
{
    if (!h)
        return LX_ERR;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t len = strlen(h);
    while (len && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
    if (len < LX_TRACEPARENT_LEN || hexval(h[0]) < 0 || hexval(h[1]) < 0)
        return LX_ERR;
    int version = hexval(h[0]) << 4 | hexval(h[1]);
    if (version == 0xff || (version == 0 && len != LX_TRACEPARENT_LEN) ||
        (len > LX_TRACEPARENT_LEN && h[LX_TRACEPARENT_LEN] != '-'))
        return LX_ERR;
    if (h[2] != '-' || h[35] != '-' || h[52] != '-')
        return LX_ERR;
    uint8_t tid[16], pid[8];
    int hi = hexval(h[53]), lo = hexval(h[54]);
    if (!unhex(h + 3, tid, 16) || !unhex(h + 36, pid, 8) || hi < 0 || lo < 0)
        return LX_ERR;
    memcpy(t->trace_id, tid, 16);
    memcpy(t->parent_id, pid, 8);
    t->client_flags = (uint8_t)(hi << 4 | lo);
    return LX_OK;
}

/* TraceIdRatioBased: the trace id's last 8 bytes, big-endian, below ratio × 2^64. */
static bool ratio_sampled(const uint8_t id[16], double ratio)
{
    if (ratio >= 1)
        return true;
    if (ratio <= 0)
        return false;
    uint64_t v = 0;
    for (int i = 8; i < 16; i++)
        v = v << 8 | id[i];
    return (double)v < ratio * 18446744073709551616.0;
}

void lx_trace_begin(struct lx_trace *t, const char *header)
{
    memset(t, 0, sizeof *t);
    if (lx_trace_parse(header, t) == LX_OK) {
        t->valid = t->has_parent = true;
        t->sampled = lx_ratio > 0 && (t->client_flags & 1);
    } else if (lx_ratio > 0) {
        random_id(t->trace_id, 16);
        t->valid = true;
        t->sampled = ratio_sampled(t->trace_id, lx_ratio);
    }
    if (t->valid)
        lx_trace_span_id(t->span_id);
}

bool lx_trace_upstream(const struct lx_trace *t, const uint8_t span_id[8], char *out)
{
    if (!t || !t->valid)
        return false;
    char tid[33], sid[17];
    lx_hex(t->trace_id, 16, tid);
    if (t->sampled && span_id) {
        lx_hex(span_id, 8, sid);
        snprintf(out, LX_TRACEPARENT_LEN + 1, "00-%s-%s-01", tid, sid);
        return true;
    }
    if (t->has_parent) {
        lx_hex(t->parent_id, 8, sid);
        snprintf(out, LX_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", tid, sid, t->client_flags);
        return true;
    }
    /* A new trace we do not record: the provider learns the decision and keeps the trace id. */
    lx_hex(t->span_id, 8, sid);
    snprintf(out, LX_TRACEPARENT_LEN + 1, "00-%s-%s-00", tid, sid);
    return true;
}
