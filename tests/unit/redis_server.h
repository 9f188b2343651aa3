/* A real redis-server for unit tests: started in a temp directory on a unix socket or a free loopback
 * port, stopped (or killed, frozen, restarted) by the test. The test may block here: it is not the loop
 * under test. Needs redis-server on the PATH (Debian's redis-server package; `make deps` installs it), or
 * $REDIS_SERVER. Also a small synchronous client (hiredis) to look at what llmux wrote. */
#ifndef LX_TEST_REDIS_SERVER_H
#define LX_TEST_REDIS_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct test_redis {
    pid_t pid;
    char dir[128];
    char sock[200];  /* unix socket path ("" for TCP) */
    int port;        /* TCP port (0 for a unix socket) */
    char url[256];   /* what llmux's config would say */
    char password[64];
};

static void test_redis_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A loopback port nobody listens on right now. */
static int test_redis_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        abort();
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* A synchronous connection to the test server (NULL when it does not answer). Caller redisFree()s. */
static redisContext *test_redis_connect(const struct test_redis *t)
{
    struct timeval tv = {1, 0};
    redisContext *c = t->port ? redisConnectWithTimeout("127.0.0.1", t->port, tv) : redisConnectUnixWithTimeout(t->sock, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (t->password[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", t->password);
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static bool test_redis_ping(const struct test_redis *t)
{
    redisContext *c = test_redis_connect(t);
    if (!c)
        return false;
    redisReply *r = redisCommand(c, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* Servers still running when the test exits (a failed assertion skips its cleanup) are killed then. */
static pid_t test_redis_pids[64];

static void test_redis_reap_all(void)
{
    for (size_t i = 0; i < 64; i++)
        if (test_redis_pids[i] > 0) {
            kill(test_redis_pids[i], SIGKILL);
            waitpid(test_redis_pids[i], NULL, 0);
        }
}

static void test_redis_track(pid_t pid)
{
    static bool registered;
    if (!registered) {
        atexit(test_redis_reap_all);
        registered = true;
    }
    for (size_t i = 0; i < 64; i++)
        if (test_redis_pids[i] <= 0) {
            test_redis_pids[i] = pid;
            return;
        }
}

/* (Re)start the server with the directory, socket or port chosen by test_redis_start. */
static int test_redis_spawn(struct test_redis *t)
{
    const char *bin = getenv("REDIS_SERVER") ? getenv("REDIS_SERVER") : "redis-server";
    char port[16], log[200];
    snprintf(port, sizeof port, "%d", t->port);
    snprintf(log, sizeof log, "%s/redis.log", t->dir);
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--port";
    argv[n++] = port;
    if (t->port) {
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
    } else {
        argv[n++] = "--unixsocket";
        argv[n++] = t->sock;
    }
    const char *rest[] = {"--save", "", "--appendonly", "no", "--dir", t->dir, "--logfile", log,
                          "--daemonize", "no", "--protected-mode", "no", NULL};
    for (int i = 0; rest[i]; i++)
        argv[n++] = rest[i];
    if (t->password[0]) {
        argv[n++] = "--requirepass";
        argv[n++] = t->password;
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        /* Keeps off the test's output: a pipe reading the test would wait for the server to close it. */
        int null = open("/dev/null", O_RDWR);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    t->pid = pid;
    test_redis_track(pid);
    /* Hang guard: 20 s for the server to answer (valgrind and busy machines are slow). */
    for (int i = 0; i < 2000; i++) {
        if (test_redis_ping(t))
            return 0;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "%s exited at start (status %d): is Debian's redis-server installed (make deps)? "
                            "see %s\n", bin, st, log);
            t->pid = 0;
            return -1;
        }
        test_redis_sleep_ms(10);
    }
    return -1;
}

/* tcp: a free loopback port, else a unix socket. password: requirepass (NULL: none). */
static int test_redis_start(struct test_redis *t, bool tcp, const char *password)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/llmux-redis-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    if (password)
        snprintf(t->password, sizeof t->password, "%s", password);
    if (tcp) {
        t->port = test_redis_free_port();
        snprintf(t->url, sizeof t->url, "redis://127.0.0.1:%d/0", t->port);
    } else {
        snprintf(t->sock, sizeof t->sock, "%s/redis.sock", t->dir);
        snprintf(t->url, sizeof t->url, "unix:%s", t->sock);
    }
    return test_redis_spawn(t);
}

static void test_redis_signal(struct test_redis *t, int sig)
{
    if (t->pid > 0)
        kill(t->pid, sig);
}

/* Kill -9 and reap. */
static void test_redis_kill(struct test_redis *t)
{
    if (t->pid <= 0)
        return;
    kill(t->pid, SIGKILL); /* even a stopped process dies, and never runs again first */
    waitpid(t->pid, NULL, 0);
    for (size_t i = 0; i < 64; i++)
        if (test_redis_pids[i] == t->pid)
            test_redis_pids[i] = 0;
    t->pid = 0;
    if (t->sock[0])
        unlink(t->sock);
}

static void test_redis_stop(struct test_redis *t)
{
    test_redis_kill(t);
    char path[256];
    const char *files[] = {"redis.log", "dump.rdb", NULL};
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", t->dir, files[i]);
        unlink(path);
    }
    rmdir(t->dir);
}

/* One synchronous command's integer or string answer as a long (-1 on nil or error). */
static long long test_redis_long(const struct test_redis *t, const char *fmt, ...)
{
    redisContext *c = test_redis_connect(t);
    if (!c)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return v;
}

/* Run a command for its effect; true when it did not fail. */
static bool test_redis_do(const struct test_redis *t, const char *fmt, ...)
{
    redisContext *c = test_redis_connect(t);
    if (!c)
        return false;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return ok;
}

#endif
