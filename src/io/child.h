/* Child processes on the loop: spawn a program with its stdin, stdout and stderr on non-blocking pipes
 * watched by libevent, and learn of its exit from SIGCHLD handled on the loop (for MCP stdio servers).
 * Callbacks run from loop callbacks, never from a signal handler. The owner may call lx_child_free from
 * any of them. */
#ifndef LX_CHILD_H
#define LX_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct lx_child;

struct lx_child_ops {
    /* Bytes the child wrote to stdout / stderr (split anywhere). */
    void (*on_stdout)(void *ctx, const char *data, size_t len);
    void (*on_stderr)(void *ctx, const char *data, size_t len);
    /* The child exited (status as waitpid gives it); whatever it wrote before was delivered first. The
     * last callback. */
    void (*on_exit)(void *ctx, int status);
};

/* Start file (looked up on PATH when it has no '/') with argv (argv[0] included, NULL-terminated), the
 * parent's environment plus env_add ("NAME=value" each, replacing same-named variables; may be NULL),
 * in a process group of its own (so that signals reach its own children too) with default signal
 * dispositions. NULL with err set when it cannot start (a missing program shows as an exit status of
 * 127 instead, from the child). */
struct lx_child *lx_child_spawn(const char *file, char *const argv[], char *const env_add[],
                                const struct lx_child_ops *ops, void *ctx, char *err, size_t errlen);
/* Queue bytes for stdin (written when the pipe takes them). LX_ERR once stdin is closed or broken. */
int lx_child_write(struct lx_child *c, const void *data, size_t len);
/* Bytes queued for stdin and not yet written. */
size_t lx_child_pending(const struct lx_child *c);
/* Close stdin after the queued bytes are written: the polite way to ask a stdio server to stop. */
void lx_child_close_stdin(struct lx_child *c);
/* Signal the child's process group. */
void lx_child_kill(struct lx_child *c, int signo);
pid_t lx_child_pid(const struct lx_child *c);
bool lx_child_running(const struct lx_child *c);
/* No callback follows. A child still running gets SIGTERM now and SIGKILL after grace_ms, and is reaped
 * from the loop when it exits (or by lx_child_shutdown). */
void lx_child_free(struct lx_child *c, long grace_ms);
/* Children still alive (freed or not), for tests and shutdown. */
size_t lx_child_count(void);
/* At exit, after the loop stopped and before it is freed: SIGKILL every child still alive and reap them
 * all (without callbacks; an owner that still holds one frees it afterwards as usual), and stop
 * watching SIGCHLD. */
void lx_child_shutdown(void);

#endif
