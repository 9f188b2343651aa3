/* The tool loop: a chat request whose model may call MCP server tools. Each round is one resilient model
 * call (exec.c); a round whose tool calls are all server tools runs them all at once (each with its
 * timeout, within the request's deadline), gives the results back to the model and goes on, up to
 * max_rounds; a round that calls a client tool, or answers, ends the loop. The owner sees one answer:
 * one stream (the rounds' text as it comes, tool activity as llmux chunks, one finish) or one completion
 * (usage summed, the tool calls listed under "llmux"). Moves to src/engine/toolloop.h. */
#ifndef LX_TOOLLOOP_H
#define LX_TOOLLOOP_H

#include "../core/errors.h"
#include "mcp.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct lx_config;
struct lx_toolset;
struct lx_tally;
struct lx_ev_origin;
struct lx_toolloop;

/* A server tool call, as the owner hears of it (metrics, logs, Responses events). */
struct lx_tool_event {
    int round;                  /* 1-based */
    const char *call_id;        /* the model's tool call id */
    const char *server, *tool;  /* NULL server: the model named a tool nobody offers */
    const char *arguments;      /* JSON text, as the model wrote it */
    bool finished;              /* false: started */
    const char *outcome;        /* finished: lx_mcp_outcome_name, or "not_found" / "bad_arguments" */
    double duration_ms;         /* finished */
    const char *output;         /* finished: the text the model gets */
};

struct lx_toolloop_ops {
    /* The first round's answer is decided (as lx_exec_ops.on_commit). */
    void (*on_commit)(void *owner, const char *label, const char *dropped);
    /* A stream chunk for the client (borrowed). May run inside a libcurl callback: touch buffers only. */
    void (*on_chunk)(void *owner, json_t *chunk);
    /* A server tool call started or finished. From the loop. May be NULL. */
    void (*on_tool)(void *owner, const struct lx_tool_event *ev);
    /* The end, exactly once unless cancelled: completion (stolen) on a non-stream success, err on failure,
     * both NULL when a stream ended well (the owner writes its terminator). From the loop. */
    void (*on_done)(void *owner, json_t *completion, const struct lx_error *err);
    /* Streams: tool calls have been running a while with nothing to send (about every second): the owner
     * writes a keep-alive, which is also how a client that left is noticed. May be NULL. */
    void (*on_idle)(void *owner);
    /* Stream backpressure, as lx_exec_ops.can_write. */
    bool (*can_write)(void *owner);
};

struct lx_toolloop_params {
    struct lx_config *cfg;       /* a reference is taken: every round routes on it */
    const char *model;           /* the client's model name */
    json_t *body;                /* the client's body (borrowed; copied): "tools" is replaced */
    const struct lx_toolset *ts; /* taken over (emptied) */
    bool stream, include_usage;
    uint64_t req_id;
    const char *request_id;
    uint64_t deadline;           /* lx_now_ms() value, 0 = none */
    long deadline_ms;
    int max_rounds;              /* rounds of server tool calls before the loop stops (default 8) */
    long max_calls;              /* server tool calls run in all (Responses' max_tool_calls); 0 = no cap.
                                  * Calls beyond it are answered "not run" and the next round may call no
                                  * tool (tool_choice none), so the model answers */
    size_t max_result_bytes;     /* of one tool's output given to the model */
    struct lx_tally *tally;      /* the request's: every model call adds to it (may be NULL) */
    const struct lx_ev_origin *origin; /* the request's (core/bus.h): its rounds' call events and spans, and
                                        * tool.started / tool.finished, are about it; it outlives the loop */
};

/* Start; the first round begins on the next loop turn. NULL with err set when the model does not route. */
struct lx_toolloop *lx_toolloop_start(const struct lx_toolloop_params *p, const struct lx_toolloop_ops *ops,
                                      void *owner, struct lx_error *err);
/* Stop everything: the model call and every tool call in flight are cancelled; no callback follows. */
void lx_toolloop_cancel(struct lx_toolloop *l);
void lx_toolloop_resume(struct lx_toolloop *l);
/* Tool calls made so far (for the access log). */
int lx_toolloop_tool_calls(const struct lx_toolloop *l);

#endif
