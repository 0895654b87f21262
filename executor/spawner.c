/*
 * Spawners: spawning from any thread. A spawner is the executor pointer
 * under another type: the count of live spawners is kept in the executor
 * (under mu), so cloning allocates nothing. run() does not return while a
 * spawner is alive.
 */
#include "executor/internal/executor.h"
#include "executor/internal/observe.h"

static cx_executor *cx__spawner_ex(cx_spawner *sp) {
  return (cx_executor *)sp;
}

int cx_executor_spawner(cx_executor *ex, cx_spawner **out) {
  if (out) *out = NULL;
  if (ex == NULL || out == NULL) return CX_EINVAL;
  pthread_mutex_lock(&ex->mu);
  bool closed = ex->closed;
  if (!closed) {
    ex->spawners++;
    cx__ex_ref(ex);
  }
  pthread_mutex_unlock(&ex->mu);
  if (closed) return CX_ESHUTDOWN;
  *out = (cx_spawner *)ex;
  return CX_OK;
}

int cx_spawner_clone(cx_spawner *sp, cx_spawner **out) {
  if (out) *out = NULL;
  if (sp == NULL || out == NULL) return CX_EINVAL;
  cx_executor *ex = cx__spawner_ex(sp);
  pthread_mutex_lock(&ex->mu);
  ex->spawners++;
  cx__ex_ref(ex);
  pthread_mutex_unlock(&ex->mu);
  *out = sp;
  return CX_OK;
}

void cx_spawner_drop(cx_spawner *sp) {
  if (sp == NULL) return;
  cx_executor *ex = cx__spawner_ex(sp);
  pthread_mutex_lock(&ex->mu);
  ex->spawners--;
  cx_driver *d = NULL;
  if (ex->spawners == 0) {
    /* run() may be waiting only for spawners to go: wake it if parked, and
     * if it is about to park, make that park return (spawners_gone). */
    ex->spawners_gone = true;
    d = cx__claim_unpark_locked(ex);
  }
  pthread_mutex_unlock(&ex->mu);
  if (d) cx__unpark(ex, d);
  cx__ex_unref(ex);
}

/* A spawn from any thread, with an optional name and site (observe.c). */
static int cx__spawner_spawn(cx_spawner *sp, const char *name, const char *file,
                             int line, const cx_future_vtable *vtable,
                             const void *state, cx_join_handle **handle) {
  if (handle) *handle = NULL;
  if (sp == NULL) return CX_EINVAL;
  cx_executor *ex = cx__spawner_ex(sp);
  if (cx__ex_is_current(ex))
    return cx__spawn(ex, name, file, line, vtable, state, handle);
  if (cx_future_vtable_check(vtable) != CX_OK) return CX_EINVAL;
  if (state == NULL && vtable->state_size > 0) return CX_EINVAL;
  /* ex->obs is fixed at create: readable from any thread. */
  bool debug = name || file || (ex->obs && ex->obs->track);
  /* Not local: any thread (its memory is a cx_alloc of its own). */
  cx__task *t =
      cx__task_create(vtable, state, debug ? &ex->sched_tracked : &ex->sched,
                      handle != NULL, false);
  if (t == NULL) return CX_ENOMEM;
  if (debug) cx__obs_task_init(t, name, file, line);
  pthread_mutex_lock(&ex->mu);
  if (ex->closed) {
    pthread_mutex_unlock(&ex->mu);
    cx__task_discard(t);
    return CX_ESHUTDOWN;
  }
  cx__ex_ref(ex); /* the task's */
  if (handle) *handle = cx__task_to_handle(t);
  cx_driver *d = cx__remote_push_locked(ex, true, t);
  pthread_mutex_unlock(&ex->mu);
  if (d) cx__unpark(ex, d);
  return CX_OK;
}

int cx_spawner_spawn(cx_spawner *sp, const cx_future_vtable *vtable,
                     const void *state, cx_join_handle **handle) {
  return cx__spawner_spawn(sp, NULL, NULL, 0, vtable, state, handle);
}

int cx_spawner_spawn_named(cx_spawner *sp, const char *name, const char *file,
                           int line, const cx_future_vtable *vtable,
                           const void *state, cx_join_handle **handle) {
  return cx__spawner_spawn(sp, name, file, line, vtable, state, handle);
}
