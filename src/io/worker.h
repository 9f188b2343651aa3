/* A background thread for blocking work (SQLite), in the way of redis's bio.c: the loop queues jobs,
 * one thread runs them in order, and their completions come back to the loop through an eventfd that
 * libevent watches, so every `done` callback runs on the loop thread from a top-level loop callback
 * (never inside MHD or libcurl) and the loop itself never waits on a disk.
 *
 * Threads: lx_worker_submit, lx_job_cancel, lx_worker_stats and lx_worker_stop are called on the loop
 * thread only; `work` and the ops run on the worker thread only, and must not touch the loop, libevent,
 * MHD, libcurl or anything the loop owns. A job's arg belongs to the job from submit until its done. */
#ifndef LX_WORKER_H
#define LX_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lx_worker;
struct lx_job;

enum lx_job_status {
    LX_JOB_OK,        /* work returned LX_OK and the batch it ran in was committed (batch_end said LX_OK) */
    LX_JOB_FAILED,    /* work returned LX_ERR, or the batch it ran in failed as a whole */
    LX_JOB_CANCELLED, /* lx_job_cancel was called: work did not run if it had not started yet */
};

/* The resource the jobs share (a database connection), opened and closed on the worker thread. */
struct lx_worker_ops {
    /* Worker thread, once, before any job: open what the jobs use. LX_OK, or LX_ERR with err filled. */
    int (*open)(void *ctx, char *err, size_t errlen);
    /* Worker thread, once, after the queue drained at stop (and after a failed open: not called). */
    void (*close)(void *ctx);
    /* Worker thread, around every run of jobs taken from the queue at once (a batch: everything queued
     * when the thread looked, up to max_batch). batch_end returns LX_OK, or LX_ERR when the batch as a
     * whole failed (a transaction that did not commit): then every job of it completes as FAILED.
     * Either may be NULL. */
    void (*batch_begin)(void *ctx);
    int (*batch_end)(void *ctx);
};

/* Worker thread: do the job with the shared resource ctx. LX_OK or LX_ERR. */
typedef int (*lx_job_work_fn)(void *ctx, void *arg);
/* Loop thread, exactly once per submitted job: the outcome. Free arg here. After a cancel, touch nothing
 * but arg: whoever cancelled may be gone. */
typedef void (*lx_job_done_fn)(void *arg, enum lx_job_status status);

/* Start the thread and wait until ops->open has run on it (so call at start-up, not from a loop
 * callback): the worker, or NULL with err filled when the thread or open failed. At most max_queue jobs
 * are in flight (submitted and not yet done); at most max_batch run in one batch. */
struct lx_worker *lx_worker_start(const struct lx_worker_ops *ops, void *ctx, size_t max_queue, size_t max_batch,
                                  char *err, size_t errlen);

/* Queue a job; its handle stays valid until done has run. NULL (nothing queued, done never called)
 * when max_queue jobs are already in flight or the worker is stopping: the caller answers "busy". */
struct lx_job *lx_worker_submit(struct lx_worker *w, lx_job_work_fn work, lx_job_done_fn done, void *arg);

/* The requester no longer wants the result (its client left): work is skipped if it has not started,
 * and done runs with LX_JOB_CANCELLED. Only before done has run. */
void lx_job_cancel(struct lx_job *job);

struct lx_worker_stats {
    size_t in_flight;      /* submitted, done not yet run */
    uint64_t completed;    /* done callbacks run */
    uint64_t batches;      /* batches the thread ran */
    uint64_t largest_batch;
};
void lx_worker_stats(struct lx_worker *w, struct lx_worker_stats *st);

/* Stop: refuse new jobs, let the thread run everything already queued, join it (ops->close runs on it),
 * run the remaining done callbacks here, and free the worker; the final counters go to *last when it is
 * not NULL. Call before the event base is freed. NULL is a no-op. */
void lx_worker_stop(struct lx_worker *w, struct lx_worker_stats *last);

#endif
