/* The worker thread: a bounded job queue run by one pthread, completions posted back to the loop.
 *
 * Two lists under one mutex: `queue` (loop → thread) and `finished` (thread → loop). The mutex is held
 * only to move list pointers, never while a job runs, so the loop never waits behind a disk. The thread
 * takes everything queued (up to max_batch) as one batch, so writes that pile up while a transaction
 * commits share the next one. The eventfd is written only when `finished` goes from empty to non-empty;
 * the loop reads it before taking the list, so no wake-up is lost. Cancellation is a flag (set on the
 * loop, read by the thread before it runs the job): the job record itself is freed only on the loop,
 * after its done ran, so nobody frees what the other side still holds. */
#include "worker.h"
#include "loop.h"
#include "../core/common.h"
#include "../core/log.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct lx_job {
    lx_job_work_fn work;
    lx_job_done_fn done;
    void *arg;              /* owned by the job until done */
    int rc;                 /* work's return, set on the thread before the job moves to `finished` */
    bool ran;               /* work was called (thread) */
    atomic_bool cancelled;  /* set by the loop, read by the thread */
    struct lx_job *next;
};

struct lx_worker {
    const struct lx_worker_ops *ops;
    void *ctx;                       /* borrowed: the owner's resource, used on the thread only */
    size_t max_queue, max_batch;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;             /* queue non-empty, stopping, or (at start) open finished */
    /* under mu */
    struct lx_job *queue, **queue_tail;
    struct lx_job *finished, **finished_tail;
    bool stopping;
    bool opened;                     /* open has run (start waits for it) */
    int open_rc;
    uint64_t batches, largest_batch;
    /* loop thread only */
    size_t in_flight;
    uint64_t completed;
    int efd;                         /* owned: closed in lx_worker_stop */
    struct event *ev;                /* owned: watches efd */
    char err[256];                   /* open's message */
};

static void lock(struct lx_worker *w)
{
    pthread_mutex_lock(&w->mu);
}

static void unlock(struct lx_worker *w)
{
    pthread_mutex_unlock(&w->mu);
}

/* Thread: run one batch outside the lock, then hand it to the loop. */
static void run_batch(struct lx_worker *w, struct lx_job *batch)
{
    if (w->ops->batch_begin)
        w->ops->batch_begin(w->ctx);
    for (struct lx_job *j = batch; j; j = j->next) {
        if (atomic_load(&j->cancelled))
            continue;
        j->ran = true;
        j->rc = j->work(w->ctx, j->arg);
    }
    int rc = w->ops->batch_end ? w->ops->batch_end(w->ctx) : LX_OK;
    struct lx_job *last = batch;
    for (struct lx_job *j = batch; j; j = j->next) {
        if (rc != LX_OK && j->ran)
            j->rc = LX_ERR;
        last = j;
    }
    lock(w);
    bool was_empty = w->finished == NULL;
    *w->finished_tail = batch;
    w->finished_tail = &last->next;
    unlock(w);
    if (was_empty) {
        uint64_t one = 1;
        /* Cannot block (EFD_NONBLOCK) and cannot overflow in practice; a failed write would only delay
         * completions until the next one, so it is logged, not retried. */
        if (write(w->efd, &one, sizeof one) != (ssize_t)sizeof one)
            fprintf(stderr, "llmux: worker: eventfd write failed: %s\n", strerror(errno));
    }
}

static void *worker_main(void *p)
{
    struct lx_worker *w = p;
    int rc = w->ops->open ? w->ops->open(w->ctx, w->err, sizeof w->err) : LX_OK;
    lock(w);
    w->opened = true;
    w->open_rc = rc;
    pthread_cond_broadcast(&w->wake);
    if (rc != LX_OK) {
        unlock(w);
        return NULL;
    }
    for (;;) {
        while (!w->queue && !w->stopping)
            pthread_cond_wait(&w->wake, &w->mu);
        if (!w->queue)
            break; /* stopping, and everything queued has run */
        struct lx_job *batch = w->queue, **tail = &w->queue->next;
        size_t n = 1;
        while (*tail && n < w->max_batch) {
            tail = &(*tail)->next;
            n++;
        }
        w->queue = *tail;
        if (!w->queue)
            w->queue_tail = &w->queue;
        *tail = NULL;
        w->batches++;
        if (n > w->largest_batch)
            w->largest_batch = n;
        unlock(w);
        run_batch(w, batch);
        lock(w);
    }
    unlock(w);
    if (w->ops->close)
        w->ops->close(w->ctx);
    return NULL;
}

/* Loop: run the done callbacks of every finished job. */
static void run_finished(struct lx_worker *w)
{
    lock(w);
    struct lx_job *j = w->finished;
    w->finished = NULL;
    w->finished_tail = &w->finished;
    unlock(w);
    while (j) {
        struct lx_job *next = j->next;
        enum lx_job_status st = atomic_load(&j->cancelled) ? LX_JOB_CANCELLED
                                : j->rc == LX_OK                ? LX_JOB_OK
                                                                : LX_JOB_FAILED;
        w->in_flight--;
        w->completed++;
        j->done(j->arg, st);
        free(j);
        j = next;
    }
}

static void efd_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct lx_worker *w = arg;
    uint64_t n;
    /* Reset the counter first: a job finished after this read writes it again. */
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        lx_warn("worker: eventfd read failed: %s", strerror(errno));
    run_finished(w);
}

static void worker_free(struct lx_worker *w)
{
    if (w->ev)
        event_free(w->ev);
    if (w->efd >= 0)
        close(w->efd);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

struct lx_worker *lx_worker_start(const struct lx_worker_ops *ops, void *ctx, size_t max_queue, size_t max_batch,
                                  char *err, size_t errlen)
{
    struct lx_worker *w = lx_calloc(1, sizeof *w);
    w->ops = ops;
    w->ctx = ctx;
    w->max_queue = max_queue ? max_queue : 1;
    w->max_batch = max_batch ? max_batch : 1;
    w->queue_tail = &w->queue;
    w->finished_tail = &w->finished;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        worker_free(w);
        return NULL;
    }
    w->ev = event_new(lx_loop_base(), w->efd, EV_READ | EV_PERSIST, efd_cb, w);
    if (!w->ev || event_add(w->ev, NULL) != 0) {
        snprintf(err, errlen, "cannot watch the worker's eventfd");
        worker_free(w);
        return NULL;
    }
    int prc = pthread_create(&w->thread, NULL, worker_main, w);
    if (prc != 0) {
        snprintf(err, errlen, "cannot start the worker thread: %s", strerror(prc));
        worker_free(w);
        return NULL;
    }
    lock(w);
    while (!w->opened)
        pthread_cond_wait(&w->wake, &w->mu);
    int rc = w->open_rc;
    unlock(w);
    if (rc != LX_OK) {
        pthread_join(w->thread, NULL);
        snprintf(err, errlen, "%s", w->err[0] ? w->err : "the worker's resource did not open");
        worker_free(w);
        return NULL;
    }
    return w;
}

struct lx_job *lx_worker_submit(struct lx_worker *w, lx_job_work_fn work, lx_job_done_fn done, void *arg)
{
    if (w->in_flight >= w->max_queue)
        return NULL;
    struct lx_job *j = lx_calloc(1, sizeof *j);
    j->work = work;
    j->done = done;
    j->arg = arg;
    atomic_init(&j->cancelled, false);
    lock(w);
    if (w->stopping) {
        unlock(w);
        free(j);
        return NULL;
    }
    *w->queue_tail = j;
    w->queue_tail = &j->next;
    pthread_cond_signal(&w->wake);
    unlock(w);
    w->in_flight++;
    return j;
}

void lx_job_cancel(struct lx_job *job)
{
    if (job)
        atomic_store(&job->cancelled, true);
}

void lx_worker_stats(struct lx_worker *w, struct lx_worker_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!w)
        return;
    st->in_flight = w->in_flight;
    st->completed = w->completed;
    lock(w);
    st->batches = w->batches;
    st->largest_batch = w->largest_batch;
    unlock(w);
}

void lx_worker_stop(struct lx_worker *w, struct lx_worker_stats *last)
{
    if (!w)
        return;
    lock(w);
    w->stopping = true;
    pthread_cond_broadcast(&w->wake);
    unlock(w);
    /* The queue is bounded, so this waits for at most max_queue jobs: only at shutdown. */
    pthread_join(w->thread, NULL);
    run_finished(w);
    if (last)
        lx_worker_stats(w, last);
    worker_free(w);
}
