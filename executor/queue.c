/*
 * The executor's queues.
 *
 * Tasks woken on the executor's own thread go on `local`, a plain intrusive
 * FIFO touched by that thread alone: no lock, no atomic beyond the task's
 * own state CAS. Tasks woken (or spawned) from other threads go on `remote`
 * / `spawned` under `mu`; `remote_pending` tells the executor without
 * locking that there is something to take in. A task is on at most one
 * queue at a time (its SCHEDULED bit), so one link field serves both.
 */
#include "executor/internal/executor.h"
#include "executor/internal/observe.h"

cx_driver *cx__remote_push_locked(cx_executor *ex, bool spawned, cx__task *t) {
  cx__task **head = spawned ? &ex->spawned_head : &ex->remote_head;
  cx__task **tail = spawned ? &ex->spawned_tail : &ex->remote_tail;
  t->next = NULL;
  if (*tail)
    (*tail)->next = t;
  else
    *head = t;
  *tail = t;
  ex->remote_len++;
  if (spawned) ex->remote_spawned++;
  /* Release: pairs with cx__take_remote's acquire load, which then locks mu
   * anyway; the flag only spares a busy executor the lock when it is
   * clear. */
  atomic_store_explicit(&ex->remote_pending, true, memory_order_release);
  return cx__claim_unpark_locked(ex);
}

void cx__ex_schedule(cx__scheduler *s, cx__task *t) {
  cx_executor *ex = (cx_executor *)s;
  if (cx__ex_is_current(ex)) {
    cx__local_push(ex, t);
    return;
  }
  pthread_mutex_lock(&ex->mu);
  cx_driver *d = cx__remote_push_locked(ex, false, t);
  pthread_mutex_unlock(&ex->mu);
  if (d) cx__unpark(ex, d);
}

/* Takes in remote wakes and spawns. Spawned tasks join the owned list here,
 * on the owner thread, which is the only one that touches it. */
void cx__take_remote(cx_executor *ex) {
  /* Acquire: pairs with the release store in cx__remote_push_locked (the
   * mutex below is what actually orders the lists). */
  if (!atomic_load_explicit(&ex->remote_pending, memory_order_acquire)) return;
  pthread_mutex_lock(&ex->mu);
  cx__task *spawned = ex->spawned_head;
  cx__task *woken = ex->remote_head;
  cx__obs_request *reqs = ex->obs_requests; /* observe.c */
  ex->obs_requests = NULL;
  for (cx__obs_request *r = reqs; r; r = r->next) r->taken = true;
  ex->spawned_head = ex->spawned_tail = NULL;
  ex->remote_head = ex->remote_tail = NULL;
  ex->remote_len = 0;
  /* Accepted tasks are counted as spawned and live from their spawn call
   * on (cx_executor_get_stats adds remote_spawned); from here on the owned
   * list counts them. */
  ex->stats.spawned += ex->remote_spawned;
  ex->remote_spawned = 0;
  /* Relaxed: written under mu, which the next pusher takes too. */
  atomic_store_explicit(&ex->remote_pending, false, memory_order_relaxed);
  pthread_mutex_unlock(&ex->mu);
  while (spawned) {
    cx__task *t = spawned;
    spawned = t->next;
    cx__owned_link(ex, t);
    cx__local_push(ex, t);
    if (ex->obs || t->sched == &ex->sched_tracked) cx__obs_accept(ex, t);
  }
  while (woken) {
    cx__task *t = woken;
    woken = t->next;
    cx__local_push(ex, t);
  }
  /* After the spawned tasks joined the owned list: a dump shows them. */
  if (reqs) cx__obs_serve(ex, reqs);
}

bool cx__remote_empty(cx_executor *ex) {
  pthread_mutex_lock(&ex->mu);
  bool empty = ex->remote_head == NULL && ex->spawned_head == NULL;
  pthread_mutex_unlock(&ex->mu);
  return empty;
}
