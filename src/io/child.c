/* Child processes with non-blocking pipes on the libevent loop, reaped on SIGCHLD from the loop.
 *
 * Every child is in a list until it is reaped, owned or not: lx_child_free detaches the owner (no more
 * callbacks) and lets the process end (SIGTERM, then SIGKILL after a grace period), so no zombie is left
 * and no pid is waited for by anyone else. Exit is reported after the pipes were drained, so the last
 * lines a server wrote before dying still reach its owner. */
#include "child.h"
#include "../core/buf.h"
#include "../core/common.h"
#include "../core/log.h"
#include "loop.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define LX_CHILD_READ_CHUNK 16384

struct lx_child {
    pid_t pid;
    const struct lx_child_ops *ops; /* NULL once detached */
    void *ctx;                      /* the owner's, borrowed */
    int in_fd, out_fd, err_fd;      /* our ends; -1 when closed */
    struct event *in_ev, *out_ev, *err_ev; /* owned */
    struct lx_buf in_queue;         /* owned: bytes waiting for stdin */
    bool close_stdin_after;         /* close stdin once in_queue is written */
    bool reaped;
    bool in_reap;                   /* reaped() is on the stack: lx_child_free only detaches */
    struct lx_timer *kill_timer;    /* owned while detached and alive: SIGKILL when the grace ends */
    struct lx_child *prev, *next;   /* in lx_children until reaped (or shut down) */
};

static struct lx_child *lx_children;
static size_t lx_n_children;
static struct event *lx_sigchld_ev; /* owned: SIGCHLD on the loop; freed by lx_child_shutdown */

/* Stop watching and close a pipe. The event itself is freed with the child (destroy): this may run
 * inside that event's own callback. */
static void close_fd(int *fd, struct event *ev)
{
    if (ev)
        event_del(ev);
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void unlink_child(struct lx_child *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        lx_children = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    lx_n_children--;
}

static void destroy(struct lx_child *c)
{
    close_fd(&c->in_fd, c->in_ev);
    close_fd(&c->out_fd, c->out_ev);
    close_fd(&c->err_fd, c->err_ev);
    event_free(c->in_ev);
    event_free(c->out_ev);
    event_free(c->err_ev);
    lx_buf_free(&c->in_queue);
    lx_timer_free(c->kill_timer);
    free(c);
}

/* Read what one pipe has now. Returns false at EOF or on an error (the pipe is then closed). */
static bool read_pipe(struct lx_child *c, int *fd, struct event *ev, bool is_err)
{
    char buf[LX_CHILD_READ_CHUNK];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n > 0) {
        if (c->ops)
            (is_err ? c->ops->on_stderr : c->ops->on_stdout)(c->ctx, buf, (size_t)n);
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    close_fd(fd, ev);
    return false;
}

static void out_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lx_child *c = arg;
    read_pipe(c, &c->out_fd, c->out_ev, false);
}

static void err_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lx_child *c = arg;
    read_pipe(c, &c->err_fd, c->err_ev, true);
}

static void flush_stdin(struct lx_child *c)
{
    while (c->in_fd >= 0 && lx_buf_avail(&c->in_queue) > 0) {
        ssize_t n = write(c->in_fd, lx_buf_head(&c->in_queue), lx_buf_avail(&c->in_queue));
        if (n > 0) {
            lx_buf_consume(&c->in_queue, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            event_add(c->in_ev, NULL);
            return;
        }
        /* EPIPE: the child closed its stdin (or died); what is queued cannot be delivered. */
        lx_buf_reset(&c->in_queue);
        close_fd(&c->in_fd, c->in_ev);
        return;
    }
    if (c->in_fd >= 0 && c->close_stdin_after)
        close_fd(&c->in_fd, c->in_ev);
}

static void in_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_stdin(arg);
}

/* The child is gone: deliver what its pipes still hold (everything it wrote is in them now, unless a
 * process of its group keeps them open: then read what is there and stop), then report. */
static void reaped(struct lx_child *c, int status)
{
    c->reaped = true;
    c->in_reap = true;
    unlink_child(c);
    for (int i = 0; i < 64 && c->out_fd >= 0; i++)
        if (!read_pipe(c, &c->out_fd, c->out_ev, false) || !c->ops)
            break;
    for (int i = 0; i < 64 && c->err_fd >= 0; i++)
        if (!read_pipe(c, &c->err_fd, c->err_ev, true) || !c->ops)
            break;
    /* Leftovers of its group (npx's node, a shell's children) go with it. */
    kill(-c->pid, SIGTERM);
    const struct lx_child_ops *ops = c->ops;
    void *ctx = c->ctx;
    close_fd(&c->in_fd, c->in_ev);
    close_fd(&c->out_fd, c->out_ev);
    close_fd(&c->err_fd, c->err_ev);
    c->in_reap = false;
    if (!ops) {
        destroy(c);
        return;
    }
    /* The owner frees c (lx_child_free) whenever it likes, from on_exit or later. */
    ops->on_exit(ctx, status);
}

static void sigchld_cb(evutil_socket_t signo, short what, void *arg)
{
    (void)signo;
    (void)what;
    (void)arg;
    /* Signals coalesce: look at every child. */
    struct lx_child *c = lx_children;
    while (c) {
        struct lx_child *next = c->next;
        int status;
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid)
            reaped(c, status);
        c = next;
    }
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Move fd above 2, so that dup2 onto 0..2 in the child never meets it (a daemon may run with 0..2 closed). */
static int above_stdio(int fd)
{
    if (fd > 2)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return n;
}

static int make_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[0] = above_stdio(p[0]);
    p[1] = above_stdio(p[1]);
    return p[0] < 0 || p[1] < 0 ? -1 : 0;
}

/* environ with env_add applied: a new array of borrowed strings. */
static char **merged_env(char *const env_add[])
{
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    while (env_add && env_add[k])
        k++;
    char **out = lx_calloc(n + k + 1, sizeof *out);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < k && !replaced; j++)
            replaced = strncmp(env_add[j], environ[i], len) == 0 && env_add[j][len] == '=';
        if (!replaced)
            out[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        out[m++] = env_add[j];
    return out;
}

struct lx_child *lx_child_spawn(const char *file, char *const argv[], char *const env_add[],
                                const struct lx_child_ops *ops, void *ctx, char *err, size_t errlen)
{
    if (!lx_sigchld_ev) {
        lx_sigchld_ev = evsignal_new(lx_loop_base(), SIGCHLD, sigchld_cb, NULL);
        if (!lx_sigchld_ev || evsignal_add(lx_sigchld_ev, NULL) != 0) {
            if (lx_sigchld_ev)
                event_free(lx_sigchld_ev);
            lx_sigchld_ev = NULL;
            snprintf(err, errlen, "cannot watch SIGCHLD");
            return NULL;
        }
    }
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};
    if (make_pipe(in) != 0 || make_pipe(out) != 0 || make_pipe(er) != 0) {
        snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (in[i] >= 0)
                close(in[i]);
            if (out[i] >= 0)
                close(out[i]);
            if (er[i] >= 0)
                close(er[i]);
        }
        return NULL;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, er[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all, none;
    sigemptyset(&all);
    sigemptyset(&none);
    /* Each signal by name: sigfillset's set includes glibc's internal ones, which then arrive ignored. */
    for (int sig = 1; sig < SIGRTMIN; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaddset(&all, sig);
    /* llmux ignores SIGPIPE, and ignored signals survive exec: give the child the defaults. */
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
    char **envp = merged_env(env_add);
    pid_t pid;
    int rc = posix_spawnp(&pid, file, &fa, &attr, argv, envp);
    free(envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    close(er[1]);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start %s: %s", file, strerror(rc));
        close(in[1]);
        close(out[0]);
        close(er[0]);
        return NULL;
    }
    struct lx_child *c = lx_calloc(1, sizeof *c);
    c->pid = pid;
    c->ops = ops;
    c->ctx = ctx;
    c->in_fd = in[1];
    c->out_fd = out[0];
    c->err_fd = er[0];
    set_nonblock(c->in_fd);
    set_nonblock(c->out_fd);
    set_nonblock(c->err_fd);
    c->in_ev = event_new(lx_loop_base(), c->in_fd, EV_WRITE, in_cb, c);
    c->out_ev = event_new(lx_loop_base(), c->out_fd, EV_READ | EV_PERSIST, out_cb, c);
    c->err_ev = event_new(lx_loop_base(), c->err_fd, EV_READ | EV_PERSIST, err_cb, c);
    event_add(c->out_ev, NULL);
    event_add(c->err_ev, NULL);
    c->next = lx_children;
    if (lx_children)
        lx_children->prev = c;
    lx_children = c;
    lx_n_children++;
    return c;
}

int lx_child_write(struct lx_child *c, const void *data, size_t len)
{
    if (c->in_fd < 0 || c->close_stdin_after)
        return LX_ERR;
    bool idle = lx_buf_avail(&c->in_queue) == 0;
    lx_buf_append(&c->in_queue, data, len);
    if (idle)
        flush_stdin(c);
    return c->in_fd >= 0 ? LX_OK : LX_ERR;
}

size_t lx_child_pending(const struct lx_child *c)
{
    return lx_buf_avail(&c->in_queue);
}

void lx_child_close_stdin(struct lx_child *c)
{
    c->close_stdin_after = true;
    flush_stdin(c);
}

void lx_child_kill(struct lx_child *c, int signo)
{
    if (!c->reaped)
        kill(-c->pid, signo);
}

pid_t lx_child_pid(const struct lx_child *c)
{
    return c->pid;
}

bool lx_child_running(const struct lx_child *c)
{
    return !c->reaped;
}

static void kill_timer_cb(void *arg)
{
    struct lx_child *c = arg;
    if (!c->reaped) {
        lx_warn("child process %d did not stop within its grace period: killing it", (int)c->pid);
        kill(-c->pid, SIGKILL);
    }
}

void lx_child_free(struct lx_child *c, long grace_ms)
{
    if (!c)
        return;
    c->ops = NULL;
    c->ctx = NULL;
    if (c->in_reap)
        return; /* reaped() frees it */
    if (c->reaped) {
        destroy(c);
        return;
    }
    /* Closing stdin is the polite stop; SIGTERM the firm one; SIGKILL after the grace. Reaped later. */
    close_fd(&c->in_fd, c->in_ev);
    close_fd(&c->out_fd, c->out_ev);
    close_fd(&c->err_fd, c->err_ev);
    kill(-c->pid, SIGTERM);
    if (!c->kill_timer)
        c->kill_timer = lx_timer_new(kill_timer_cb, c);
    lx_timer_start(c->kill_timer, grace_ms);
}

size_t lx_child_count(void)
{
    return lx_n_children;
}

void lx_child_shutdown(void)
{
    while (lx_children) {
        struct lx_child *c = lx_children;
        kill(-c->pid, SIGKILL);
        int status;
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (c->ops) {
            /* Still owned: reaped without callbacks; its owner frees it. */
            c->reaped = true;
            unlink_child(c);
            close_fd(&c->in_fd, c->in_ev);
            close_fd(&c->out_fd, c->out_ev);
            close_fd(&c->err_fd, c->err_ev);
            continue;
        }
        reaped(c, status);
    }
    if (lx_sigchld_ev)
        event_free(lx_sigchld_ev);
    lx_sigchld_ev = NULL;
}
