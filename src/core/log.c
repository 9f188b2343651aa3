/* Leveled, timestamped log lines on stderr, one write per line so lines never interleave. */
#include "log.h"
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum lx_log_level lx_log_min = LX_LOG_INFO;
static const char *const lx_level_names[] = {"debug", "info", "warn", "error"};

void lx_log_set_level(enum lx_log_level level)
{
    lx_log_min = level;
}

int lx_log_parse_level(const char *name, enum lx_log_level *out)
{
    for (size_t i = 0; i < LX_ARRAY_LEN(lx_level_names); i++) {
        if (strcmp(name, lx_level_names[i]) == 0) {
            *out = (enum lx_log_level)i;
            return LX_OK;
        }
    }
    return LX_ERR;
}

void lx_log(enum lx_log_level level, const char *fmt, ...)
{
    if (level < lx_log_min)
        return;
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                     lx_level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* stderr may be a pipe; a short write of a log line is not worth handling. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
