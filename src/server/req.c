/* Request object lifecycle: creation, the checked state machine, and reference counting. */
#include "req.h"
#include "../core/conf.h"
#include "../core/common.h"
#include "../core/log.h"

#include <assert.h>
#include <stdio.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>

static uint64_t lx_req_counter;

static const char *const lx_req_state_names[LX_REQ_STATE_COUNT] = {
    [LX_REQ_RECEIVING] = "receiving", [LX_REQ_HANDLING] = "handling", [LX_REQ_RESPONDING] = "responding",
    [LX_REQ_STREAMING] = "streaming", [LX_REQ_FINISHED] = "finished",
};

/* allowed[from] is a bit set of the states `from` may move to. */
static const unsigned lx_req_allowed[LX_REQ_STATE_COUNT] = {
    [LX_REQ_RECEIVING] = 1u << LX_REQ_HANDLING | 1u << LX_REQ_RESPONDING | 1u << LX_REQ_FINISHED,
    [LX_REQ_HANDLING] = 1u << LX_REQ_RESPONDING | 1u << LX_REQ_STREAMING | 1u << LX_REQ_FINISHED,
    [LX_REQ_RESPONDING] = 1u << LX_REQ_FINISHED,
    [LX_REQ_STREAMING] = 1u << LX_REQ_FINISHED,
    [LX_REQ_FINISHED] = 0,
};

const char *lx_req_state_name(enum lx_req_state s)
{
    return s < LX_REQ_STATE_COUNT ? lx_req_state_names[s] : "invalid";
}

void lx_req_set_state(struct lx_req *req, enum lx_req_state to)
{
    if (!(lx_req_allowed[req->state] & (1u << to))) {
        lx_error("req=%llu: illegal state change %s -> %s", (unsigned long long)req->id,
                 lx_req_state_name(req->state), lx_req_state_name(to));
        assert(!"illegal request state change");
        return;
    }
    req->state = to;
}

struct lx_req *lx_req_new(struct lx_config *cfg, const char *method, const char *path)
{
    struct lx_req *req = lx_calloc(1, sizeof *req);
    req->id = ++lx_req_counter;
    req->refs = 1;
    req->cfg = lx_config_ref(cfg);
    snprintf(req->method, sizeof req->method, "%s", method);
    req->path = lx_strdup(path);
    req->t_start = lx_now_ms_f();
    return req;
}

/* A client's X-Request-Id is kept when it is 1-128 characters of [A-Za-z0-9._:-] (it goes into logs and
 * upstream headers as is); otherwise 32 random hex digits are made up. */
void lx_req_set_request_id(struct lx_req *req, const char *client)
{
    size_t n = client ? strlen(client) : 0;
    bool ok = n > 0 && n <= LX_REQ_ID_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char ch = client[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
             ch == '_' || ch == ':' || ch == '-';
    }
    if (ok) {
        memcpy(req->request_id, client, n + 1);
        return;
    }
    unsigned char r[16];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        /* No entropy yet (early boot): unique is enough for an id. */
        uint64_t a = req->id, b = (uint64_t)(lx_now_ms_f() * 1000.0);
        memcpy(r, &a, 8);
        memcpy(r + 8, &b, 8);
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(req->request_id + 2 * i, 3, "%02x", r[i]);
}

struct lx_req *lx_req_hold(struct lx_req *req)
{
    req->refs++;
    return req;
}

void lx_req_release(struct lx_req *req)
{
    if (--req->refs > 0)
        return;
    lx_config_unref(req->cfg);
    free(req->path);
    lx_buf_free(&req->body);
    free(req->content_type);
    for (size_t i = 0; i < req->n_resp_headers; i++)
        free(req->resp_headers[i]);
    free(req->resp_headers);
    lx_buf_free(&req->out);
    free(req->model);
    free(req->error_code);
    lx_tally_clear(&req->tally);
    free(req);
}
