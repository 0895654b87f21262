/*
 * Combinators. See combinators.h for the contracts.
 *
 * Each one follows the same pattern: a child is represented by a cx_future
 * whose vtable is set to NULL the moment the child is dropped, so "is this
 * child still owed a drop?" is always `vtable != NULL`, drops happen exactly
 * once, and dropping the combinator at any point (or twice) is safe. A child
 * is dropped right after it returns CX_READY, so the resources it holds
 * (timers, channel waiter slots) go as early as possible.
 */
#include "executor/combinators.h"

#include <string.h>

#include "waker/error.h"

/* ---- helpers ------------------------------------------------------------ */

static const cx_future cx__no_future = {NULL, NULL};

static bool cx__child_ok(cx_future f, const void *out) {
  if (cx_future_vtable_check(f.vtable) != CX_OK) return false;
  if (f.state == NULL && f.vtable->state_size > 0) return false;
  if (out == NULL && f.vtable->output_size > 0) return false;
  return true;
}

/* Drops *f if still owed a drop, and marks it dropped. */
static void cx__child_drop(cx_future *f) {
  if (f->vtable == NULL) return;
  const cx_future_vtable *vt = f->vtable;
  void *state = f->state;
  *f = cx__no_future; /* first: a re-entrant drop must not drop it twice */
  if (vt->drop) vt->drop(state);
}

/* The arguments every poll needs: NULL ones make the poll a no-op that
 * returns CX_READY (see "NULL arguments" in combinators.h). */
static bool cx__poll_args_ok(const void *self, const cx_context *cx) {
  return self != NULL && cx != NULL && cx->waker != NULL;
}

/* Polls *f if still pending; when it completes, drops it. Returns true if
 * the child is done (now or earlier). */
static bool cx__child_poll(cx_future *f, cx_context *cx, void *out) {
  if (f->vtable == NULL) return true;
  if (f->vtable->poll(f->state, cx, out) == CX_PENDING) return false;
  cx__child_drop(f);
  return true;
}

/* ---- join2 -------------------------------------------------------------- */

int cx_join2_init(cx_join2 *j, cx_future a, void *out_a, cx_future b,
                  void *out_b) {
  if (j == NULL) return CX_EINVAL;
  memset(j, 0, sizeof *j);
  if (!cx__child_ok(a, out_a) || !cx__child_ok(b, out_b)) return CX_EINVAL;
  j->a = a;
  j->b = b;
  j->out_a = out_a;
  j->out_b = out_b;
  return CX_OK;
}

cx_poll cx_join2_poll(cx_join2 *j, cx_context *cx) {
  if (!cx__poll_args_ok(j, cx)) return CX_READY;
  bool a_done = cx__child_poll(&j->a, cx, j->out_a);
  bool b_done = cx__child_poll(&j->b, cx, j->out_b);
  return (a_done && b_done) ? CX_READY : CX_PENDING;
}

void cx_join2_drop(cx_join2 *j) {
  if (j == NULL) return;
  cx__child_drop(&j->a);
  cx__child_drop(&j->b);
}

CX_FUTURE_TRAMPOLINES_NO_OUTPUT(cx_join2, cx_join2)
const cx_future_vtable cx_join2_vtable =
    CX_FUTURE_VTABLE_INIT_NO_OUTPUT(cx_join2, cx_join2);

/* ---- join_all ----------------------------------------------------------- */

static bool cx__children_ok(cx_future *futures, void **outputs, size_t n) {
  if (n > 0 && futures == NULL) return false;
  for (size_t i = 0; i < n; i++) {
    if (!cx__child_ok(futures[i], outputs ? outputs[i] : NULL)) return false;
  }
  return true;
}

int cx_join_all_init(cx_join_all *j, cx_future *futures, void **outputs,
                     size_t n) {
  if (j == NULL) return CX_EINVAL;
  memset(j, 0, sizeof *j);
  if (!cx__children_ok(futures, outputs, n)) return CX_EINVAL;
  j->futures = futures;
  j->outputs = outputs;
  j->n = n;
  j->remaining = n;
  return CX_OK;
}

cx_poll cx_join_all_poll(cx_join_all *j, cx_context *cx) {
  if (!cx__poll_args_ok(j, cx)) return CX_READY;
  for (size_t i = 0; i < j->n && j->remaining > 0; i++) {
    if (j->futures[i].vtable == NULL) continue;
    if (cx__child_poll(&j->futures[i], cx, j->outputs ? j->outputs[i] : NULL))
      j->remaining--;
  }
  return j->remaining == 0 ? CX_READY : CX_PENDING;
}

void cx_join_all_drop(cx_join_all *j) {
  if (j == NULL) return;
  for (size_t i = 0; i < j->n; i++) cx__child_drop(&j->futures[i]);
}

CX_FUTURE_TRAMPOLINES_NO_OUTPUT(cx_join_all, cx_join_all)
const cx_future_vtable cx_join_all_vtable =
    CX_FUTURE_VTABLE_INIT_NO_OUTPUT(cx_join_all, cx_join_all);

/* ---- select ------------------------------------------------------------- */

int cx_select_init(cx_select *s, cx_future *futures, void **outputs, size_t n) {
  if (s == NULL) return CX_EINVAL;
  memset(s, 0, sizeof *s);
  s->winner = SIZE_MAX;
  if (n == 0 || !cx__children_ok(futures, outputs, n)) return CX_EINVAL;
  s->futures = futures;
  s->outputs = outputs;
  s->n = n;
  return CX_OK;
}

cx_poll cx_select_poll(cx_select *s, cx_context *cx, size_t *winner) {
  if (!cx__poll_args_ok(s, cx)) {
    if (winner) *winner = SIZE_MAX;
    return CX_READY;
  }
  if (s->winner == SIZE_MAX) {
    for (size_t i = 0; i < s->n; i++) {
      if (s->futures[i].vtable == NULL) continue;
      if (cx__child_poll(&s->futures[i], cx,
                         s->outputs ? s->outputs[i] : NULL)) {
        s->winner = i;
        break;
      }
    }
    if (s->winner == SIZE_MAX) return CX_PENDING;
    /* The losers are cancelled now, not when the select is dropped. */
    cx_select_drop(s);
  }
  if (winner) *winner = s->winner;
  return CX_READY;
}

void cx_select_drop(cx_select *s) {
  if (s == NULL) return;
  for (size_t i = 0; i < s->n; i++) cx__child_drop(&s->futures[i]);
}

CX_FUTURE_TRAMPOLINES(cx_select, cx_select, size_t)
const cx_future_vtable cx_select_vtable =
    CX_FUTURE_VTABLE_INIT(cx_select, cx_select, size_t);

/* ---- and_then ----------------------------------------------------------- */

enum { CX__AT_FIRST = 0, CX__AT_SECOND = 1, CX__AT_DONE = 2 };

int cx_and_then_init(cx_and_then *a, cx_future first, void *first_out,
                     cx_and_then_fn then, void *ctx, void *second_out) {
  if (a == NULL) return CX_EINVAL;
  memset(a, 0, sizeof *a);
  a->stage = CX__AT_DONE;
  a->result = CX_EINVAL;
  if (then == NULL || !cx__child_ok(first, first_out)) return CX_EINVAL;
  a->first = first;
  a->first_out = first_out;
  a->then = then;
  a->ctx = ctx;
  a->second_out = second_out;
  a->stage = CX__AT_FIRST;
  a->result = CX_OK;
  return CX_OK;
}

static cx_poll cx__and_then_finish(cx_and_then *a, int rc, int *result) {
  a->stage = CX__AT_DONE;
  a->result = rc;
  if (result) *result = rc;
  return CX_READY;
}

cx_poll cx_and_then_poll(cx_and_then *a, cx_context *cx, int *result) {
  if (!cx__poll_args_ok(a, cx)) {
    if (result) *result = CX_EINVAL;
    return CX_READY;
  }
  if (a->stage == CX__AT_FIRST) {
    if (!cx__child_poll(&a->first, cx, a->first_out)) return CX_PENDING;
    cx_future second = cx__no_future;
    int rc = a->then(a->ctx, a->first_out, &second);
    if (rc != CX_OK) return cx__and_then_finish(a, rc, result);
    if (second.vtable == NULL) return cx__and_then_finish(a, CX_EINVAL, result);
    a->second = second; /* ours to drop from here on, valid or not */
    if (!cx__child_ok(second, a->second_out)) {
      cx__child_drop(&a->second);
      return cx__and_then_finish(a, CX_EINVAL, result);
    }
    a->stage = CX__AT_SECOND;
  }
  if (a->stage == CX__AT_SECOND) {
    if (!cx__child_poll(&a->second, cx, a->second_out)) return CX_PENDING;
    return cx__and_then_finish(a, CX_OK, result);
  }
  if (result) *result = a->result;
  return CX_READY;
}

void cx_and_then_drop(cx_and_then *a) {
  if (a == NULL) return;
  cx__child_drop(&a->first);
  cx__child_drop(&a->second);
}

CX_FUTURE_TRAMPOLINES(cx_and_then, cx_and_then, int)
const cx_future_vtable cx_and_then_vtable =
    CX_FUTURE_VTABLE_INIT(cx_and_then, cx_and_then, int);

/* ---- timeout ------------------------------------------------------------ */

static int cx__timeout_setup(cx_timeout *t, cx_future inner, void *inner_out) {
  if (t == NULL) return CX_EINVAL;
  memset(t, 0, sizeof *t);
  cx_sleep_init_for(&t->sleep, 0);
  t->done = true;
  t->result = CX_EINVAL;
  if (!cx__child_ok(inner, inner_out)) return CX_EINVAL;
  t->inner = inner;
  t->inner_out = inner_out;
  t->done = false;
  t->result = CX_OK;
  return CX_OK;
}

int cx_timeout_init(cx_timeout *t, cx_future inner, void *inner_out,
                    uint64_t ns) {
  int rc = cx__timeout_setup(t, inner, inner_out);
  if (rc == CX_OK) cx_sleep_init_for(&t->sleep, ns);
  return rc;
}

int cx_timeout_init_until(cx_timeout *t, cx_future inner, void *inner_out,
                          uint64_t deadline_ns) {
  int rc = cx__timeout_setup(t, inner, inner_out);
  if (rc == CX_OK) cx_sleep_init_until(&t->sleep, deadline_ns);
  return rc;
}

cx_poll cx_timeout_poll(cx_timeout *t, cx_context *cx, int *result) {
  if (!cx__poll_args_ok(t, cx)) {
    if (result) *result = CX_EINVAL;
    return CX_READY;
  }
  if (!t->done) {
    if (cx__child_poll(&t->inner, cx, t->inner_out)) {
      t->result = CX_OK;
    } else {
      int rc = CX_OK;
      if (cx_sleep_poll(&t->sleep, cx, &rc) == CX_PENDING) return CX_PENDING;
      t->result = rc == CX_OK ? CX_ETIMEDOUT : rc;
    }
    t->done = true;
    cx_timeout_drop(t); /* inner (if it lost) and the timer, now */
  }
  if (result) *result = t->result;
  return CX_READY;
}

void cx_timeout_drop(cx_timeout *t) {
  if (t == NULL) return;
  cx__child_drop(&t->inner);
  cx_sleep_drop(&t->sleep);
}

CX_FUTURE_TRAMPOLINES(cx_timeout, cx_timeout, int)
const cx_future_vtable cx_timeout_vtable =
    CX_FUTURE_VTABLE_INIT(cx_timeout, cx_timeout, int);
