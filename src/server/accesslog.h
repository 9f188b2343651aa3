/* The access log: one JSON object per line per request, to stderr or to a file that is reopened on
 * SIGUSR1 (for logrotate). */
#ifndef LX_ACCESSLOG_H
#define LX_ACCESSLOG_H

#include <stddef.h>

struct lx_event;

/* Log to path (appending, created 0640), or to stderr when path is NULL. LX_ERR with err set. */
int lx_access_log_open(const char *path, char *err, size_t errlen);
/* Reopen the file (after logrotate moved it); on failure keep the old descriptor and say why. */
void lx_access_log_reopen(void);
void lx_access_log_close(void);
/* A "request finished" subscriber (core/bus.h): the request's line, with the status the client got (499:
 * it left first). */
void lx_access_log_finished_cb(const struct lx_event *ev, void *arg);

#endif
