/* The Prometheus metrics registry. A family holds its series in a list found by the rendered label
 * string; the number of series is bounded by the configuration (providers × listed models × statuses),
 * so a linear search with move-to-front is enough. Gauges are not kept: the /metrics handler reads them
 * where they live when it is scraped, and writes them with lx_metrics_gauge. */
#include "metrics.h"
#include "buf.h"
#include "bus.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double lx_latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define LX_NBUCKETS LX_ARRAY_LEN(lx_latency_buckets)

struct series {
    char *labels;                     /* owned: 'a="x",b="y"' */
    char *key;                        /* owned: the same as given to find, "a\0x\0b\0y\0" */
    size_t key_len;
    double value;                     /* counter value, or the histogram's sum */
    unsigned long long count;         /* histogram: observations */
    unsigned long long buckets[LX_NBUCKETS];
    struct series *next;
};

enum family_kind { FAMILY_COUNTER, FAMILY_HISTOGRAM };

struct family {
    const char *name, *help;
    enum family_kind kind;
    struct series *head;
};

static struct family f_http = {"llmux_http_requests_total", "Client requests by endpoint and HTTP status.",
                               FAMILY_COUNTER, NULL};
static struct family f_requests = {"llmux_requests_total",
                                   "Model calls (chat, embeddings, fanout members, batch items) by provider, "
                                   "model and status.",
                                   FAMILY_COUNTER, NULL};
static struct family f_duration = {"llmux_request_duration_seconds", "Model call duration, retries included.",
                                   FAMILY_HISTOGRAM, NULL};
static struct family f_ttft = {"llmux_time_to_first_token_seconds",
                               "Time from a model call's start to its first content (or its whole answer).",
                               FAMILY_HISTOGRAM, NULL};
static struct family f_tokens = {"llmux_tokens_total", "Tokens reported by providers.", FAMILY_COUNTER, NULL};
static struct family f_uperr = {"llmux_upstream_errors_total", "Failed upstream attempts by provider and reason.",
                                FAMILY_COUNTER, NULL};
static struct family f_retries = {"llmux_retries_total", "Upstream attempts repeated after a retryable failure.",
                                  FAMILY_COUNTER, NULL};
static struct family f_fallbacks = {"llmux_fallbacks_total", "Moves to the next target of a fallback list.",
                                    FAMILY_COUNTER, NULL};
static struct family f_dropped = {"llmux_connections_dropped_total",
                                  "Client connections refused (max_connections) or cut (read_timeout).",
                                  FAMILY_COUNTER, NULL};

static struct family f_tools = {"llmux_tool_calls_total", "MCP tool calls made by the tool loop, by server, tool "
                               "and outcome.", FAMILY_COUNTER, NULL};
static struct family f_tool_duration = {"llmux_tool_call_duration_seconds", "MCP tool call duration.",
                                        FAMILY_HISTOGRAM, NULL};

static struct family f_evdropped = {"llmux_events_dropped_total",
                                    "Events a sink (sse observers, webhook, otlp) dropped: a full queue, a cut "
                                    "observer, or an export that failed for good.",
                                    FAMILY_COUNTER, NULL};

static struct family *const lx_families[] = {&f_http,    &f_requests,  &f_duration, &f_ttft,
                                             &f_tokens,  &f_uperr,     &f_retries,  &f_fallbacks,
                                             &f_dropped, &f_evdropped, &f_tools,    &f_tool_duration};

static void put_label(struct lx_buf *b, const char *name, const char *value)
{
    if (b->len)
        lx_buf_append(b, ",", 1);
    lx_buf_puts(b, name);
    lx_buf_append(b, "=\"", 2);
    const char *p = value ? value : "", *run = p; /* run: the start of bytes copied as they are */
    for (; *p; p++) {
        if (*p != '\\' && *p != '"' && *p != '\n')
            continue;
        lx_buf_append(b, run, (size_t)(p - run));
        lx_buf_append(b, *p == '\n' ? "\\n" : *p == '"' ? "\\\"" : "\\\\", 2);
        run = p + 1;
    }
    lx_buf_append(b, run, (size_t)(p - run));
    lx_buf_append(b, "\"", 1);
}

/* The next string of a series key at *p is v: step over it. */
static bool key_next(const char **p, const char *end, const char *v)
{
    size_t n = strlen(v) + 1;
    if ((size_t)(end - *p) < n || memcmp(*p, v, n) != 0)
        return false;
    *p += n;
    return true;
}

/* Whether s's labels are these (find's list), compared as given: a lookup renders nothing. */
static bool has_labels(const struct series *s, const char *const *kv)
{
    const char *p = s->key, *end = s->key + s->key_len;
    for (size_t i = 0; kv[i]; i += 2)
        if (!key_next(&p, end, kv[i]) || !key_next(&p, end, kv[i + 1] ? kv[i + 1] : ""))
            return false;
    return p == end;
}

/* The series of f with these labels (a NULL-terminated name, value, name, value... list; a NULL value is
 * ""), created at 0. */
static struct series *find(struct family *f, const char *const *kv)
{
    struct series **pp = &f->head;
    for (struct series *s = f->head; s; pp = &s->next, s = s->next) {
        if (has_labels(s, kv)) {
            *pp = s->next; /* move to front: the busy series are found first */
            s->next = f->head;
            f->head = s;
            return s;
        }
    }
    struct lx_buf labels = {0}, key = {0};
    for (size_t i = 0; kv[i]; i += 2) {
        const char *v = kv[i + 1] ? kv[i + 1] : "";
        put_label(&labels, kv[i], v);
        lx_buf_append(&key, kv[i], strlen(kv[i]) + 1);
        lx_buf_append(&key, v, strlen(v) + 1);
    }
    struct series *s = lx_calloc(1, sizeof *s);
    s->labels = lx_buf_steal(&labels, NULL);
    s->key = lx_buf_steal(&key, &s->key_len);
    s->next = f->head;
    f->head = s;
    return s;
}

static void observe(struct series *s, double v)
{
    s->value += v;
    s->count++;
    for (size_t i = 0; i < LX_NBUCKETS; i++)
        if (v <= lx_latency_buckets[i])
            s->buckets[i]++;
}

/* An HTTP status (or any small int) as text in buf[16], without the cost of snprintf. */
static const char *status_text(char *buf, int status)
{
    char *p = buf + 15;
    *p = '\0';
    unsigned v = status < 0 ? 0u - (unsigned)status : (unsigned)status;
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    if (status < 0)
        *--p = '-';
    return p;
}

void lx_metrics_call(const char *provider, const char *model, int status, double duration_s, double ttft_s,
                     long prompt_tokens, long completion_tokens)
{
    char buf[16];
    const char *st = status_text(buf, status);
    find(&f_requests, (const char *const[]){"provider", provider, "model", model, "status", st, NULL})->value++;
    const char *const pm[] = {"provider", provider, "model", model, NULL};
    observe(find(&f_duration, pm), duration_s);
    if (ttft_s >= 0)
        observe(find(&f_ttft, pm), ttft_s);
    if (prompt_tokens > 0)
        find(&f_tokens, (const char *const[]){"provider", provider, "model", model, "kind", "prompt", NULL})->value +=
            (double)prompt_tokens;
    if (completion_tokens > 0)
        find(&f_tokens, (const char *const[]){"provider", provider, "model", model, "kind", "completion", NULL})
            ->value += (double)completion_tokens;
}

void lx_metrics_tool_call(const char *server, const char *tool, const char *outcome, double duration_s)
{
    find(&f_tools, (const char *const[]){"server", server, "tool", tool, "outcome", outcome, NULL})->value++;
    observe(find(&f_tool_duration, (const char *const[]){"server", server, "tool", tool, NULL}), duration_s);
}

void lx_metrics_upstream_error(const char *provider, const char *reason)
{
    find(&f_uperr, (const char *const[]){"provider", provider, "reason", reason, NULL})->value++;
}

void lx_metrics_retry(void)
{
    find(&f_retries, (const char *const[]){NULL})->value++;
}

void lx_metrics_fallback(void)
{
    find(&f_fallbacks, (const char *const[]){NULL})->value++;
}

void lx_metrics_finished_cb(const struct lx_event *ev, void *arg)
{
    (void)arg;
    char buf[16];
    const char *st = status_text(buf, ev->request.status);
    find(&f_http, (const char *const[]){"route", ev->request.route, "status", st, NULL})->value++;
}

void lx_metrics_events_dropped(const char *sink, long n)
{
    find(&f_evdropped, (const char *const[]){"sink", sink, NULL})->value += (double)n;
}

void lx_metrics_conn_dropped(const char *reason)
{
    find(&f_dropped, (const char *const[]){"reason", reason, NULL})->value++;
}

/* One histogram's lines; labels is the rendered 'a="x",b="y"' text, or "". */
static void histogram_lines(struct lx_buf *b, const char *name, const char *labels, const double *bounds,
                            const unsigned long long *cumulative, size_t n, unsigned long long count, double sum)
{
    const char *sep = *labels ? "," : "";
    for (size_t i = 0; i < n; i++)
        lx_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i], cumulative[i]);
    lx_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, count);
    lx_buf_printf(b, "%s_sum{%s} %.17g\n%s_count{%s} %llu\n", name, labels, sum, name, labels, count);
}

static void render_family(struct lx_buf *b, const struct family *f)
{
    lx_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                  f->kind == FAMILY_COUNTER ? "counter" : "histogram");
    if (!f->head && (f == &f_retries || f == &f_fallbacks)) {
        /* Label-less counters exist from the start, so rate() works before the first event. */
        lx_buf_printf(b, "%s 0\n", f->name);
        return;
    }
    for (const struct series *s = f->head; s; s = s->next) {
        if (f->kind == FAMILY_COUNTER) {
            if (*s->labels)
                lx_buf_printf(b, "%s{%s} %.17g\n", f->name, s->labels, s->value);
            else
                lx_buf_printf(b, "%s %.17g\n", f->name, s->value);
            continue;
        }
        histogram_lines(b, f->name, s->labels, lx_latency_buckets, s->buckets, LX_NBUCKETS, s->count, s->value);
    }
}

static void head(struct lx_buf *b, const char *name, const char *type, const char *help)
{
    lx_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void lx_metrics_gauge_head(struct lx_buf *b, const char *name, const char *help)
{
    head(b, name, "gauge", help);
}

void lx_metrics_counter_head(struct lx_buf *b, const char *name, const char *help)
{
    head(b, name, "counter", help);
}

void lx_metrics_histogram_head(struct lx_buf *b, const char *name, const char *help)
{
    head(b, name, "histogram", help);
}

/* 'name="value"' (escaped), or "" without a label. Caller frees l. */
static const char *label_text(struct lx_buf *l, const char *label, const char *value)
{
    if (label)
        put_label(l, label, value);
    return l->data ? l->data : "";
}

void lx_metrics_counter(struct lx_buf *b, const char *name, const char *label, const char *value,
                        unsigned long long v)
{
    struct lx_buf l = {0};
    const char *text = label_text(&l, label, value);
    if (*text)
        lx_buf_printf(b, "%s{%s} %llu\n", name, text, v);
    else
        lx_buf_printf(b, "%s %llu\n", name, v);
    lx_buf_free(&l);
}

void lx_metrics_histogram(struct lx_buf *b, const char *name, const char *label, const char *value,
                          const double *bounds, const unsigned long long *cumulative, unsigned n,
                          unsigned long long count, double sum)
{
    struct lx_buf l = {0};
    histogram_lines(b, name, label_text(&l, label, value), bounds, cumulative, n, count, sum);
    lx_buf_free(&l);
}

void lx_metrics_gauge(struct lx_buf *b, const char *name, const char *label, const char *value, long v)
{
    if (!label) {
        lx_buf_printf(b, "%s %ld\n", name, v);
        return;
    }
    struct lx_buf l = {0};
    put_label(&l, label, value);
    lx_buf_printf(b, "%s{%s} %ld\n", name, l.data, v);
    lx_buf_free(&l);
}

void lx_metrics_render(struct lx_buf *b)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_families); i++)
        render_family(b, lx_families[i]);
}

void lx_metrics_shutdown(void)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_families); i++) {
        struct family *f = lx_families[i];
        while (f->head) {
            struct series *s = f->head;
            f->head = s->next;
            free(s->labels);
            free(s->key);
            free(s);
        }
    }
}
