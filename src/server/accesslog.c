/* The access log. Lines are built with jansson (so every client-supplied string is escaped) and written
 * with one write(2) each on an O_APPEND descriptor: lines from one process never interleave, and a
 * rotated file is picked up by lx_access_log_reopen. Writing goes to the page cache and never waits for
 * the disk. */
#include "accesslog.h"
#include "auth.h"
#include "req.h"
#include "../core/bus.h"
#include "../core/common.h"
#include "../core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    int fd;     /* 2 (stderr) or owned */
    char *path; /* owned; NULL for stderr */
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
}

static json_t *ms_or_null(double ms)
{
    return ms >= 0 ? json_real((double)(long long)(ms * 10.0 + 0.5) / 10.0) : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

void lx_access_log_finished_cb(const struct lx_event *ev, void *arg)
{
    (void)arg;
    const struct lx_req *req = ev->request.req;
    int status = ev->request.status;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    double now = lx_now_ms_f();
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(when));
    json_object_set_new(o, "request_id", json_string(req->request_id));
    json_object_set_new(o, "key", str_or_null(lx_auth_key_name(req)));
    json_object_set_new(o, "method", json_string(req->method));
    /* Paths are client bytes: jansson refuses invalid UTF-8, so fall back to a marker rather than drop. */
    json_t *path = json_string(req->path);
    json_object_set_new(o, "path", path ? path : json_string("(not UTF-8)"));
    json_object_set_new(o, "status", json_integer(status));
    json_t *model = req->model ? json_string(req->model) : json_null();
    json_object_set_new(o, "model", model ? model : json_string("(not UTF-8)"));
    json_object_set_new(o, "provider", str_or_null(req->tally.answered_by));
    json_object_set_new(o, "duration_ms", ms_or_null(now - req->t_start));
    json_object_set_new(o, "ttfb_ms", ms_or_null(req->t_first_byte > 0 ? req->t_first_byte - req->t_start : -1));
    json_object_set_new(o, "prompt_tokens", json_integer(req->tally.prompt_tokens));
    json_object_set_new(o, "completion_tokens", json_integer(req->tally.completion_tokens));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)req->bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)req->bytes_out));
    json_object_set_new(o, "retries", json_integer(req->tally.retries));
    json_object_set_new(o, "fallbacks", json_integer(req->tally.fallbacks));
    if (req->tally.tool_calls) {
        json_object_set_new(o, "tool_calls", json_integer(req->tally.tool_calls));
        json_object_set_new(o, "tool_errors", json_integer(req->tally.tool_errors));
    }
    json_object_set_new(o, "error", str_or_null(req->error_code));
    json_object_set_new(o, "client_gone", json_boolean(req->client_gone));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(o);
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps's terminator becomes the newline; the write below is len + 1 bytes */
    ssize_t w;
    do
        w = write(A.fd, line, len + 1);
    while (w < 0 && errno == EINTR);
    free(line);
}
