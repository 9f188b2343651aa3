/* The access log. Lines are JSON built by hand with core/jsonout (every client-supplied string escaped as
 * jansson would escape it) and written with one write(2) each on an O_APPEND descriptor: lines from one
 * process never interleave, and a rotated file is picked up by lx_access_log_reopen. Writing goes to the
 * page cache and never waits for the disk. */
#include "accesslog.h"
#include "auth.h"
#include "req.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/jsonout.h"
#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    int fd;            /* 2 (stderr) or owned */
    char *path;        /* owned; NULL for stderr */
    struct lx_buf line; /* owned: the line being written, kept for the next one */
} A = {.fd = 2};

static int open_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        snprintf(err, errlen, "cannot open the log file %s: %s", path, strerror(errno));
    return fd;
}

int lx_access_log_open(const char *path, char *err, size_t errlen)
{
    if (!path)
        return LX_OK;
    int fd = open_file(path, err, errlen);
    if (fd < 0)
        return LX_ERR;
    lx_access_log_close();
    A.fd = fd;
    A.path = lx_strdup(path);
    return LX_OK;
}

void lx_access_log_reopen(void)
{
    if (!A.path)
        return;
    char err[512];
    int fd = open_file(A.path, err, sizeof err);
    if (fd < 0) {
        lx_error("%s; still writing to the old file", err);
        return;
    }
    close(A.fd);
    A.fd = fd;
    lx_info("reopened the log file %s", A.path);
}

void lx_access_log_close(void)
{
    if (A.path) {
        close(A.fd);
        free(A.path);
        A.path = NULL;
    }
    A.fd = 2;
    lx_buf_free(&A.line);
}

/* A duration in ms to one decimal, as the line has always shown it (a real, or null when unknown). */
static void put_ms(struct lx_buf *b, double ms)
{
    if (ms < 0)
        lx_buf_append(b, "null", 4);
    else
        lx_jsonw_real(b, (double)(long long)(ms * 10.0 + 0.5) / 10.0, 12);
}

/* A literal piece of the line (a key, with the punctuation around it). */
#define put_key(b, lit) lx_buf_append((b), lit, sizeof lit - 1)

/* The wall-clock time as 2026-01-02T03:04:05.678Z; the part up to the second is kept between calls. */
static size_t format_time(char *out, size_t size)
{
    static time_t last_sec = -1;
    static char last[32];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != last_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(last, sizeof last, "%Y-%m-%dT%H:%M:%S", &tm);
        last_sec = tv.tv_sec;
    }
    unsigned ms = (unsigned)(tv.tv_usec / 1000);
    size_t n = strlen(last);
    if (n + 6 > size)
        return 0;
    memcpy(out, last, n);
    out[n] = '.';
    out[n + 1] = (char)('0' + ms / 100);
    out[n + 2] = (char)('0' + ms / 10 % 10);
    out[n + 3] = (char)('0' + ms % 10);
    out[n + 4] = 'Z';
    out[n + 5] = '\0';
    return n + 5;
}

/* One JSON line per request, written by hand (the same fields, in the same order and with the same
 * escaping as jansson would write them): building it as a jansson object cost more than the rest of a
 * small request's handling. */
void lx_access_log_finished_cb(const struct lx_event *ev, void *arg)
{
    (void)arg;
    const struct lx_req *req = ev->request.req;
    int status = ev->request.status;
    char when[48];
    size_t when_len = format_time(when, sizeof when);
    double now = lx_now_ms_f();
    struct lx_buf *b = &A.line;
    lx_buf_reset(b);
    put_key(b, "{\"time\":");
    lx_jsonw_str(b, when, when_len);
    put_key(b, ",\"request_id\":");
    lx_jsonw_str_or(b, req->request_id, "");
    put_key(b, ",\"key\":");
    lx_jsonw_str_or(b, lx_auth_key_name(req), "");
    put_key(b, ",\"method\":");
    lx_jsonw_str_or(b, req->method, "");
    /* Paths and models are client bytes: what is not UTF-8 shows as a marker rather than be dropped. */
    put_key(b, ",\"path\":");
    lx_jsonw_str_or(b, req->path ? req->path : "", "(not UTF-8)");
    put_key(b, ",\"status\":");
    lx_jsonw_int(b, status);
    put_key(b, ",\"model\":");
    lx_jsonw_str_or(b, req->model, "(not UTF-8)");
    put_key(b, ",\"provider\":");
    lx_jsonw_str_or(b, req->tally.answered_by, "");
    put_key(b, ",\"duration_ms\":");
    put_ms(b, now - req->t_start);
    put_key(b, ",\"ttfb_ms\":");
    put_ms(b, req->t_first_byte > 0 ? req->t_first_byte - req->t_start : -1);
    put_key(b, ",\"prompt_tokens\":");
    lx_jsonw_int(b, req->tally.prompt_tokens);
    put_key(b, ",\"completion_tokens\":");
    lx_jsonw_int(b, req->tally.completion_tokens);
    put_key(b, ",\"bytes_in\":");
    lx_jsonw_int(b, (long long)req->bytes_in);
    put_key(b, ",\"bytes_out\":");
    lx_jsonw_int(b, (long long)req->bytes_out);
    put_key(b, ",\"retries\":");
    lx_jsonw_int(b, req->tally.retries);
    put_key(b, ",\"fallbacks\":");
    lx_jsonw_int(b, req->tally.fallbacks);
    put_key(b, ",\"calls\":");
    lx_jsonw_int(b, req->tally.calls);
    if (req->tally.tool_calls) {
        put_key(b, ",\"tool_calls\":");
        lx_jsonw_int(b, req->tally.tool_calls);
        put_key(b, ",\"tool_errors\":");
        lx_jsonw_int(b, req->tally.tool_errors);
    }
    put_key(b, ",\"error\":");
    lx_jsonw_str_or(b, req->error_code, "");
    if (req->client_gone)
        put_key(b, ",\"client_gone\":true}\n");
    else
        put_key(b, ",\"client_gone\":false}\n");
    ssize_t w;
    do
        w = write(A.fd, lx_buf_head(b), lx_buf_avail(b));
    while (w < 0 && errno == EINTR);
    if (b->cap > 64 * 1024)
        lx_buf_free(b); /* an unusually long line: do not keep its buffer */
}
