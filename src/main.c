/* llmux: command line, start-up, and the drain-then-exit shutdown. */
#include "config.h"
#include "api/admin.h"
#include "api/events.h"
#include "api/routes.h"
#include "api/state.h"
#include "core/buf.h"
#include "core/bus.h"
#include "core/common.h"
#include "core/conf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "engine/capacity.h"
#include "engine/mcp.h"
#include "io/child.h"
#include "engine/conf.h"
#include "engine/store_conf.h"
#include "io/loop.h"
#include "io/fleet.h"
#include "io/notify.h"
#include "io/otlp.h"
#include "io/redis.h"
#include "io/upstream.h"
#include "io/webhook.h"
#include "server/accesslog.h"
#include "server/auth.h"
#include "server/conf.h"
#include "server/mhd.h"
#include "server/ratelimit.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static const char lx_usage[] =
    "Usage: llmux [OPTIONS]\n"
    "\n"
    "An OpenAI-compatible LLM gateway: one thread, one event loop, thousands of requests in flight.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration file (default: the first of ./conf/llmux.json, conf/llmux.json\n"
    "                        beside the binary's directory, /etc/llmux/llmux.json)\n"
    "  -l, --listen ADDR     listen on HOST:PORT, overriding the config (port 0: any free port); without\n"
    "                        auth.keys only an explicit --listen may leave loopback\n"
    "  -t, --check-config    validate the configuration and exit: 0 when valid, 1 with the reason\n"
    "      --health-check URL  GET URL (e.g. http://127.0.0.1:8080/healthz) and exit 0 on a 2xx answer\n"
    "                        within 5 s, else 1: a container health check that needs no curl\n"
    "      --log FILE        append the access log (JSON lines) to FILE instead of stderr\n"
    "      --log-level LVL   debug, info (default), warn or error\n"
    "  -v, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Endpoints: POST /v1/chat/completions, /v1/messages, /v1/messages/count_tokens, /v1/responses,\n"
    "           /v1/conversations, /v1/embeddings, /v1/fanout, /v1/batch;\n"
    "           GET|DELETE /v1/responses/{id}, GET /v1/responses/{id}/input_items;\n"
    "           GET|POST|DELETE /v1/conversations/{id}, GET|POST /v1/conversations/{id}/items,\n"
    "           GET|DELETE /v1/conversations/{id}/items/{item_id};\n"
    "           GET /v1/models, /v1/models/{id}, /v1/providers, /v1/mcp/servers, /v1/mcp/tools, /v1/events\n"
    "           (SSE), /healthz, /metrics (Prometheus). (The /v1 prefix is optional.)\n"
    "           With admin_listen set, /healthz and /metrics are served on that address only.\n"
    "Request headers: Authorization: Bearer KEY or x-api-key (when auth.keys is set), x-llmux-timeout-ms\n"
    "           (end-to-end deadline), X-Request-Id (kept if sane, else generated; sent upstream too).\n"
    "Response headers: X-Request-Id, x-llmux-model (who answered), x-llmux-dropped-params, x-ratelimit-* (a\n"
    "           key's rpm and tpm: what is left, fleet-wide with a redis section).\n"
    "Signals: SIGTERM/SIGINT stop accepting, let in-flight requests finish (shutdown_timeout_ms), exit 0;\n"
    "           a second one stops at once. SIGHUP reloads the configuration: new requests use it,\n"
    "           requests in flight finish under the old one; a bad file is logged and ignored.\n"
    "           SIGUSR1 reopens the --log file (after logrotate moved it).\n"
    "systemd:   with NOTIFY_SOCKET set, sends READY=1, RELOADING=1 and STOPPING=1 (Type=notify).\n"
    "Environment: ${VAR} in any config string is read from the environment. STATE_DIRECTORY (set by\n"
    "           systemd's StateDirectory=) is the default state_dir; else ./var.\n"
    "Docs: README.md, docs/configuration.md, docs/api.md, docs/conversations.md, docs/concurrency.md,\n"
    "           docs/async-guide.md, docs/tools.md, docs/providers.md, docs/deploy.md, docs/events.md,\n"
    "           docs/anthropic.md, docs/scale-out.md.\n";

static struct {
    struct lx_timer *drain_timer;
    struct lx_timer *hard_timer;
    struct lx_timer *sinks_timer; /* the drain's end waits for the sinks to deliver what they hold */
    bool stopping;
    struct lx_config *cfg;   /* ref held: the running configuration */
    const char *config_path; /* borrowed from argv, or default_config */
    char *default_config;    /* owned: the config path found without --config, or NULL */
    bool bound_open;         /* listening beyond loopback by the config's word (it had auth.keys) */
    char file_listen[320];   /* "listen" as the file said at start, to notice a real change on reload */
    struct lx_fleet *fleet;  /* owned: the Redis the replicas share, when the config has a "redis" section */
} M;

static bool is_loopback(const char *listen)
{
    char *host;
    int port;
    if (lx_parse_listen(listen, &host, &port) != LX_OK)
        return false;
    bool lo = strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 || strcmp(host, "localhost") == 0;
    free(host);
    return lo;
}

/* Without client keys anyone who reaches llmux spends the provider keys behind it: a config that asks for
 * a public address without auth.keys gets loopback instead; only an explicit --listen can override. */
static void secure_listen(struct lx_config *cfg, bool explicit_listen)
{
    struct lx_server_conf *sc = cfg->server;
    if (cfg->auth->n_keys || is_loopback(sc->listen))
        return;
    if (explicit_listen) {
        lx_warn("no auth.keys configured and --listen %s is not loopback: anyone who can reach it can use the "
                "configured providers (and their API keys)", sc->listen);
        return;
    }
    char *host;
    int port;
    lx_parse_listen(sc->listen, &host, &port);
    char *lo = lx_sprintf("127.0.0.1:%d", port);
    lx_warn("no auth.keys configured: listening on %s instead of %s (add auth.keys, or pass --listen %s to "
            "expose it without keys)", lo, sc->listen, sc->listen);
    free(host);
    free(sc->listen);
    sc->listen = lo;
}

static void sinks_idle_cb(void *arg)
{
    (void)arg;
    if (lx_webhooks_pending() + lx_otlp_pending() == 0)
        lx_loop_stop();
    else
        lx_timer_start(M.sinks_timer, 20);
}

/* Every request is done: the sinks send what they hold (no more retries), then the loop stops (the drain
 * timer still bounds the wait). */
static void finish_cb(void)
{
    lx_webhooks_flush();
    lx_otlp_flush();
    sinks_idle_cb(NULL);
}

static void hard_stop_cb(void *arg)
{
    (void)arg;
    lx_loop_stop();
}

static void drain_expired_cb(void *arg)
{
    (void)arg;
    lx_warn("shutdown: %zu request(s) still in flight after the drain timeout; cancelling them", lx_http_live());
    lx_http_abort_all();
    /* Give MHD a moment to send the cut responses; stop regardless after that. */
    lx_timer_start(M.hard_timer, 1000);
}

static void publish_config(enum lx_event_type type, const char *reason, const struct lx_config *cfg)
{
    if (!lx_bus_wanted(type))
        return;
    struct lx_event ev = {.type = type,
                          .config = {.path = M.config_path, .reason = reason,
                                     .providers = cfg ? (long)cfg->engine->n_providers : 0,
                                     .aliases = cfg ? (long)cfg->engine->n_aliases : 0}};
    lx_bus_publish(&ev);
}

/* The configuration's sinks and their live state take it (start-up and reload). */
static void apply_sinks(const struct lx_config *cfg)
{
    lx_events_apply(cfg->events);
    lx_webhooks_apply(cfg->webhooks);
    lx_otlp_apply(cfg->otlp);
}

/* The providers whose fleet-wide state the heartbeat reads (those with a limit), for /v1/providers. */
static void watch_providers(const struct lx_config *cfg)
{
    if (!M.fleet)
        return;
    const struct lx_engine_conf *ec = cfg->engine;
    const char **names = lx_calloc(ec->n_providers + 1, sizeof *names);
    size_t n = 0;
    for (size_t i = 0; i < ec->n_providers; i++)
        if (ec->providers[i].max_concurrency > 0 || ec->providers[i].cooldown.failures > 0)
            names[n++] = ec->providers[i].name;
    lx_fleet_watch_providers(M.fleet, names, n);
    free(names);
}

/* SIGHUP: load the file again; swap it in only if it is valid. The listening socket stays. */
static void reload_cb(int signo, void *arg)
{
    (void)signo;
    (void)arg;
    if (M.stopping)
        return;
    lx_notify("RELOADING=1");
    char err[1024];
    struct lx_config *cfg = lx_config_load_file(M.config_path, err, sizeof err);
    if (!cfg) {
        lx_error("reload: %s: %s; keeping the running configuration", M.config_path, err);
        publish_config(LX_EV_CONFIG_REJECTED, err, NULL);
        lx_notify("READY=1\nSTATUS=reload failed; running the previous configuration");
        return;
    }
    struct lx_server_conf *now = M.cfg->server, *next = cfg->server;
    if (M.bound_open && cfg->auth->n_keys == 0) {
        lx_error("reload: %s has no auth.keys but llmux listens on %s, beyond loopback; keeping the running "
                 "configuration (restart to change the address)", M.config_path, now->listen);
        lx_config_unref(cfg);
        publish_config(LX_EV_CONFIG_REJECTED, "the new configuration has no auth.keys but llmux listens beyond "
                                              "loopback", NULL);
        lx_notify("READY=1\nSTATUS=reload refused; running the previous configuration");
        return;
    }
    if (strcmp(next->listen, M.file_listen) != 0 && !now->listen_explicit)
        lx_warn("reload: listen changed to %s; the socket stays on %s until a restart", next->listen, now->listen);
    if ((next->admin_listen != NULL) != (now->admin_listen != NULL) ||
        (next->admin_listen && strcmp(next->admin_listen, now->admin_listen) != 0))
        lx_warn("reload: admin_listen changed; it takes effect at the next restart");
    if (!lx_redis_conf_same(cfg->redis, M.cfg->redis))
        lx_warn("reload: the redis section changed; it takes effect at the next restart");
    free(next->listen);
    next->listen = lx_strdup(now->listen);
    next->listen_explicit = now->listen_explicit;
    free(next->admin_listen);
    next->admin_listen = now->admin_listen ? lx_strdup(now->admin_listen) : NULL;
    for (size_t i = 0; i < cfg->n_warnings; i++)
        lx_warn("%s", cfg->warnings[i]);
    lx_engine_conf_apply(cfg->engine); /* the providers' live state (by name) takes the new limits */
    lx_state_reload(cfg->state);
    watch_providers(cfg);
    lx_mcp_apply(&cfg->mcp->servers);  /* MCP clients by name: unchanged servers keep their connection */
    apply_sinks(cfg);
    lx_http_set_config(cfg);
    lx_config_unref(M.cfg);
    M.cfg = cfg;
    lx_info("reload: configuration %s applied (%zu provider(s), %zu alias(es)); requests in flight keep the old one",
            M.config_path, cfg->engine->n_providers, cfg->engine->n_aliases);
    publish_config(LX_EV_CONFIG_RELOADED, NULL, cfg);
    lx_notify("READY=1\nSTATUS=configuration reloaded");
}

static void reopen_cb(int signo, void *arg)
{
    (void)signo;
    (void)arg;
    lx_access_log_reopen();
}

static void signal_cb(int signo, void *arg)
{
    (void)arg;
    struct lx_config *cfg = M.cfg;
    if (M.stopping) {
        lx_warn("second %s: stopping now", strsignal(signo));
        lx_http_abort_all();
        lx_loop_stop();
        return;
    }
    M.stopping = true;
    lx_notify("STOPPING=1");
    if (lx_bus_wanted(LX_EV_SERVER_DRAINING)) {
        char name[16];
        snprintf(name, sizeof name, "SIG%s", sigabbrev_np(signo));
        struct lx_event ev = {.type = LX_EV_SERVER_DRAINING,
                              .draining = {.signal = name, .inflight = (long)lx_http_live(),
                                           .timeout_ms = cfg->server->shutdown_timeout_ms}};
        lx_bus_publish(&ev);
    }
    lx_info("%s: draining %zu in-flight request(s), up to %ld ms", strsignal(signo), lx_http_live(),
            cfg->server->shutdown_timeout_ms);
    lx_timer_start(M.drain_timer, cfg->server->shutdown_timeout_ms);
    lx_http_quiesce(finish_cb);
}

/* The "redis" section: one connection shared by the client-key limits and the providers' state. */
static void share_start(const struct lx_config *cfg)
{
    if (!cfg->redis->url)
        return;
    M.fleet = lx_fleet_new(cfg->redis, NULL);
    lx_ratelimit_share(M.fleet);
    lx_capacity_share(M.fleet);
    lx_admin_share(M.fleet);
    watch_providers(cfg);
    char *url = lx_redis_url_redacted(cfg->redis);
    lx_info("redis: limits and provider state are shared through %s (replica %s, fail_mode %s)", url,
            lx_fleet_replica(M.fleet), cfg->redis->fail_closed ? "closed" : "open");
    free(url);
}

static void left_cb(void *arg)
{
    (void)arg;
    lx_loop_stop();
}

/* Drained: tell the fleet this replica is gone (its lease and counts), then close the connection. The
 * answer is awaited at most redis.connect_timeout_ms (the command's own timeout). */
static void share_stop(void)
{
    if (!M.fleet)
        return;
    lx_fleet_leave(M.fleet, left_cb, NULL);
    lx_loop_run();
    lx_ratelimit_share(NULL);
    lx_capacity_share(NULL);
    lx_admin_share(NULL);
    lx_fleet_free(M.fleet);
    M.fleet = NULL;
}

/* The most descriptors the table is grown to at start (a 64 Ki table is 512 KiB of kernel memory). */
#define LX_FD_TABLE_PREGROW 65536

/* Raises the descriptor limit to its hard limit, then grows the process's descriptor table to it (at most
 * LX_FD_TABLE_PREGROW) while llmux still has one thread. Linux doubles the table as descriptors are
 * opened, and in a process with more than one thread (the store's and the resolver's workers) each
 * doubling waits for an RCU grace period, 5-14 ms here, inside whatever accept4 or socket call needed the
 * slot: the loop stood still that long, several times while 1,000 streams opened (issue 14). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    rlim_t top = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LX_FD_TABLE_PREGROW ? LX_FD_TABLE_PREGROW : rl.rlim_cur;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (top > 1 && (rlim_t)fd < top - 1 && dup2(fd, (int)(top - 1)) >= 0)
        close((int)(top - 1));
    close(fd);
}

/* Where a config is looked for without --config: the working directory's conf/llmux.json, the one
 * beside the binary's directory (build/llmux started from elsewhere finds the checkout's), then
 * /etc/llmux/llmux.json. The first readable one wins; tried lists every path, for the error. */
static char *default_config_path(struct lx_buf *tried)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    char *beside = NULL;
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            beside = lx_sprintf("%s/../conf/llmux.json", exe);
        }
    }
    char cwd[4096];
    char *here = lx_sprintf("%s/conf/llmux.json", getcwd(cwd, sizeof cwd) ? cwd : ".");
    const char *candidates[] = {here, beside, "/etc/llmux/llmux.json"};
    char *found = NULL;
    for (size_t i = 0; i < LX_ARRAY_LEN(candidates) && !found; i++) {
        if (!candidates[i])
            continue;
        lx_buf_printf(tried, "%s%s", tried->len ? ", " : "", candidates[i]);
        char real[4096];
        if (access(candidates[i], R_OK) == 0)
            found = lx_strdup(i == 0 ? "conf/llmux.json" : realpath(candidates[i], real) ? real : candidates[i]);
    }
    free(here);
    free(beside);
    return found;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"check-config", no_argument, NULL, 't'}, {"log-level", required_argument, NULL, 'L'},
        {"version", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
        {"health-check", required_argument, NULL, 'H'}, {"log", required_argument, NULL, 'O'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *listen_addr = NULL, *health_url = NULL, *log_path = NULL;
    bool check = false;
    lx_json_init();
    int c;
    while ((c = getopt_long(argc, argv, "c:l:tvh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'l': listen_addr = optarg; break;
        case 't': check = true; break;
        case 'L': {
            enum lx_log_level lvl;
            if (lx_log_parse_level(optarg, &lvl) != LX_OK) {
                fprintf(stderr, "llmux: --log-level: expected debug, info, warn or error\n");
                return 2;
            }
            lx_log_set_level(lvl);
            break;
        }
        case 'H': health_url = optarg; break;
        case 'O': log_path = optarg; break;
        case 'v': printf("llmux %s\n", LX_VERSION); return 0;
        case 'h': fputs(lx_usage, stdout); return 0;
        default: fputs(lx_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "llmux: unexpected argument '%s'\n%s", argv[optind], lx_usage);
        return 2;
    }
    if (health_url) {
        char herr[256];
        if (lx_upstream_check_url(health_url, 5000, herr, sizeof herr) != LX_OK) {
            fprintf(stderr, "llmux: health check of %s failed: %s\n", health_url, herr);
            return 1;
        }
        return 0;
    }
    if (!config_path) {
        struct lx_buf tried = {0};
        M.default_config = default_config_path(&tried);
        if (!M.default_config) {
            fprintf(stderr, "llmux: no configuration file found; tried %s. Pass --config FILE (a starting "
                            "config is conf/llmux.json in the source tree).\n", tried.data);
            lx_buf_free(&tried);
            return 1;
        }
        lx_buf_free(&tried);
        config_path = M.default_config;
    }

    char err[1024];
    struct lx_config *cfg = lx_config_load_file(config_path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "llmux: %s: %s\n", config_path, err);
        return 1;
    }
    snprintf(M.file_listen, sizeof M.file_listen, "%s", cfg->server->listen);
    if (listen_addr) {
        char *host;
        int port;
        if (lx_parse_listen(listen_addr, &host, &port) != LX_OK) {
            fprintf(stderr, "llmux: --listen: expected HOST:PORT, for example 127.0.0.1:8080\n");
            lx_config_unref(cfg);
            return 1;
        }
        free(host);
        free(cfg->server->listen);
        cfg->server->listen = lx_strdup(listen_addr);
        cfg->server->listen_explicit = true;
    }
    secure_listen(cfg, listen_addr != NULL);
    for (size_t i = 0; i < cfg->n_warnings; i++)
        lx_warn("%s", cfg->warnings[i]);
    if (check) {
        printf("llmux: configuration %s is valid (%zu provider(s), %zu alias(es))\n", config_path,
               cfg->engine->n_providers, cfg->engine->n_aliases);
        lx_config_unref(cfg);
        return 0;
    }

    if (lx_access_log_open(log_path, err, sizeof err) != LX_OK) {
        fprintf(stderr, "llmux: --log: %s\n", err);
        lx_config_unref(cfg);
        return 1;
    }
    /* The subscribers of a request's end (finished, failed or cancelled), in the order they run: the HTTP
     * counters, the client key's accounting (its access-log line names the key), the access log. */
    lx_bus_subscribe_mask(LX_EV_REQUEST_END, lx_metrics_finished_cb, NULL);
    lx_bus_subscribe_mask(LX_EV_REQUEST_END, lx_auth_finished_cb, NULL);
    lx_bus_subscribe_mask(LX_EV_REQUEST_END, lx_access_log_finished_cb, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    if (lx_loop_init() != LX_OK || lx_upstream_init() != LX_OK) {
        lx_error("cannot initialise the event loop or libcurl");
        return 1;
    }
    /* Handlers go in before the listening socket is announced: a supervisor (or a test) may signal as soon
     * as it sees "listening". They run from the loop, once everything below is set up. */
    lx_loop_on_signal(SIGTERM, signal_cb, NULL);
    lx_loop_on_signal(SIGINT, signal_cb, NULL);
    lx_loop_on_signal(SIGHUP, reload_cb, NULL);
    lx_loop_on_signal(SIGUSR1, reopen_cb, NULL);
    lx_engine_conf_apply(cfg->engine);
    lx_mcp_apply(&cfg->mcp->servers);
    share_start(cfg);
    if (lx_state_open(cfg->state, cfg->redis, err, sizeof err) != LX_OK ||
        lx_http_start(cfg, lx_routes_dispatch, lx_routes_direct, err, sizeof err) != LX_OK) {
        lx_error("%s", err);
        lx_http_stop();
        lx_state_close();
        share_stop();
        lx_access_log_close();
        lx_mcp_shutdown(true);
        lx_upstream_shutdown();
        lx_loop_drain();
        lx_child_shutdown();
        lx_config_unref(cfg);
        lx_capacity_shutdown();
        lx_loop_free();
        lx_bus_shutdown();
        return 1;
    }
    apply_sinks(cfg); /* before the loop runs, so the first request's events reach them */
    M.drain_timer = lx_timer_new(drain_expired_cb, NULL);
    M.hard_timer = lx_timer_new(hard_stop_cb, NULL);
    M.sinks_timer = lx_timer_new(sinks_idle_cb, NULL);
    M.cfg = cfg;
    M.config_path = config_path;
    M.bound_open = !is_loopback(cfg->server->listen) && cfg->auth->n_keys > 0 && !cfg->server->listen_explicit;
    lx_info("llmux %s ready (%zu provider(s), config %s)", LX_VERSION, cfg->engine->n_providers, config_path);
    lx_notify("READY=1");

    lx_loop_run();

    lx_http_stop();
    lx_timer_free(M.drain_timer);
    lx_timer_free(M.hard_timer);
    lx_mcp_shutdown(true); /* MCP clients: sessions are not ended (the loop is over), children are stopped below */
    lx_timer_free(M.sinks_timer);
    lx_events_shutdown();
    lx_webhooks_shutdown();
    lx_otlp_shutdown();
    lx_upstream_shutdown();
    lx_state_close(); /* the store's worker finishes its queue; before the loop goes */
    lx_loop_drain();
    share_stop();
    lx_child_shutdown();
    lx_config_unref(M.cfg);
    lx_capacity_shutdown(); /* the providers' live state owns timers: it goes before the loop */
    lx_loop_free();
    lx_auth_shutdown();
    lx_metrics_shutdown();
    lx_access_log_close();
    lx_bus_shutdown();
    lx_info("stopped");
    free(M.default_config);
    return 0;
}
