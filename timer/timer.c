/*
 * The timer driver: an intrusive pairing heap.
 *
 * Why a pairing heap. The executor needs three things from its timers: the
 * earliest deadline (to know how long to park), "pop everything due", and
 * cancellation of any entry (dropping a sleep). A pairing heap gives O(1)
 * insert and find-min, O(log n) amortised pop and remove, exact deadlines
 * (no tick granularity, unlike a hashed wheel, so lateness is bounded by the
 * park precision alone), and, being intrusive, no allocation at all: a sleep
 * can always be registered. A binary heap would need either a growable array
 * (allocation, which can fail) or libuv's pointer-path tree (harder to
 * cancel in place); a wheel would need a tick and cascading. See
 * docs/design.md for the measurements.
 *
 * Shape. Each node keeps its first child (`child`), its right sibling
 * (`next`), and `prev`: the parent for a first child, the left sibling
 * otherwise. The root has prev == next == NULL. Ordering is by (deadline,
 * seq): seq is a registration counter, so equal deadlines fire first-in
 * first-out.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, condattr_setclock */

#include "timer/timer.h"

#include <time.h>

#include "waker/error.h"

uint64_t cx_clock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * CX_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t cx__default_clock(void *ctx) {
  (void)ctx;
  return cx_clock_now();
}

void cx_timers_init(cx_timers *t, cx_clock_fn clock, void *clock_ctx) {
  t->root = NULL;
  t->count = 0;
  t->next_seq = 0;
  t->clock = clock ? clock : cx__default_clock;
  t->clock_ctx = clock ? clock_ctx : NULL;
  t->now = t->clock(t->clock_ctx);
}

uint64_t cx_timers_now(cx_timers *t) {
  t->now = t->clock(t->clock_ctx);
  return t->now;
}

void cx_timer_entry_init(cx_timer_entry *e) {
  e->deadline = 0;
  e->seq = 0;
  e->child = e->next = e->prev = NULL;
  e->driver = NULL;
  e->waker = CX_WAKER_EMPTY;
  e->fired = false;
}

static bool cx__before(const cx_timer_entry *a, const cx_timer_entry *b) {
  if (a->deadline != b->deadline) return a->deadline < b->deadline;
  return a->seq < b->seq;
}

/* Melds two roots (each with prev == next == NULL); returns the new root. */
static cx_timer_entry *cx__meld(cx_timer_entry *a, cx_timer_entry *b) {
  if (cx__before(b, a)) {
    cx_timer_entry *tmp = a;
    a = b;
    b = tmp;
  }
  b->next = a->child;
  if (a->child) a->child->prev = b;
  b->prev = a;
  a->child = b;
  return a;
}

/* One pairing round: melds neighbours along a sibling list (linked through
 * `next`). Returns the melded trees, linked through `next` in reverse order,
 * and their number in *count. */
static cx_timer_entry *cx__pair_round(cx_timer_entry *first, size_t *count) {
  cx_timer_entry *out = NULL;
  size_t n = 0;
  while (first) {
    cx_timer_entry *a = first;
    cx_timer_entry *b = a->next;
    a->prev = a->next = NULL;
    n++;
    if (b == NULL) {
      a->next = out;
      out = a;
      break;
    }
    first = b->next;
    b->prev = b->next = NULL;
    cx_timer_entry *m = cx__meld(a, b);
    m->next = out;
    out = m;
  }
  *count = n;
  return out;
}

/* Two-pass merges of at most this many pairs; longer lists get more pairing
 * rounds first (see cx__merge_pairs). */
#define CX__TWO_PASS_MAX 32

/* Merges a sibling list into one root. Iterative, so a long sibling list
 * (after many O(1) inserts) cannot overflow the stack.
 *
 * The classic two-pass merge (pair neighbours, then meld the pairs right to
 * left into one root) leaves the winner with about half the list as its
 * children when the list is long: after n inserts the first pop costs n
 * melds, the second n/2, then n/4... (measured: 4 ms of pops at the first
 * deadline of W4's 100,000 timers, all of it lateness). So a list longer
 * than 2 * CX__TWO_PASS_MAX gets further pairing rounds (the multipass
 * merge: a tournament) until at most CX__TWO_PASS_MAX trees are left, and
 * the winner keeps only a logarithmic number of new children. Short lists,
 * the steady state, take the two-pass merge unchanged. */
static cx_timer_entry *cx__merge_pairs(cx_timer_entry *first) {
  if (first == NULL) return NULL;
  size_t n;
  cx_timer_entry *stack = cx__pair_round(first, &n);
  while (n > CX__TWO_PASS_MAX) stack = cx__pair_round(stack, &n);
  cx_timer_entry *root = stack;
  stack = stack->next;
  root->next = NULL;
  while (stack) {
    cx_timer_entry *tree = stack;
    stack = stack->next;
    tree->next = NULL;
    root = cx__meld(root, tree);
  }
  root->prev = NULL;
  return root;
}

static void cx__heap_remove(cx_timers *t, cx_timer_entry *e) {
  if (e == t->root) {
    t->root = cx__merge_pairs(e->child);
  } else {
    if (e->prev->child == e)
      e->prev->child = e->next;
    else
      e->prev->next = e->next;
    if (e->next) e->next->prev = e->prev;
    cx_timer_entry *sub = cx__merge_pairs(e->child);
    if (sub) t->root = cx__meld(t->root, sub);
  }
  e->child = e->next = e->prev = NULL;
  e->driver = NULL;
  t->count--;
}

int cx_timers_register(cx_timers *t, cx_timer_entry *e, uint64_t deadline,
                       cx_waker *waker) {
  if (t == NULL || e == NULL || waker == NULL) return CX_EINVAL;
  cx_timer_entry_cancel(e);
  e->deadline = deadline;
  e->seq = t->next_seq++;
  e->child = e->next = e->prev = NULL;
  e->driver = t;
  e->fired = false;
  e->waker = *waker;
  *waker = CX_WAKER_EMPTY;
  t->root = t->root ? cx__meld(t->root, e) : e;
  t->count++;
  return CX_OK;
}

bool cx_timer_entry_cancel(cx_timer_entry *e) {
  if (e == NULL || e->driver == NULL) return false;
  cx__heap_remove(e->driver, e);
  cx_waker_drop(&e->waker);
  return true;
}

uint64_t cx_timers_next_deadline(const cx_timers *t) {
  return t->root ? t->root->deadline : CX_DEADLINE_NONE;
}

void cx_timers_compact(cx_timers *t) {
  if (t == NULL || t->root == NULL) return;
  cx_timer_entry *first = t->root->child;
  if (first == NULL || first->next == NULL) return; /* 0 or 1 child */
  cx_timer_entry *sub = cx__merge_pairs(first);
  sub->prev = t->root; /* a first child's prev is its parent */
  t->root->child = sub;
}

size_t cx_timers_fire(cx_timers *t, uint64_t now) {
  size_t fired = 0;
  while (t->root && t->root->deadline <= now) {
    cx_timer_entry *e = t->root;
    cx__heap_remove(t, e);
    e->fired = true;
    /* The wake may run arbitrary code that touches e (e.g. a scheduler that
     * polls inline); take the waker out first. */
    cx_waker w = e->waker;
    e->waker = CX_WAKER_EMPTY;
    cx_waker_wake(&w);
    fired++;
  }
  return fired;
}

/* ---- sleep ------------------------------------------------------------- */

void cx_sleep_init_for(cx_sleep *s, uint64_t ns) {
  cx_timer_entry_init(&s->entry);
  s->deadline = CX_DEADLINE_NONE;
  s->duration = ns;
}

void cx_sleep_init_until(cx_sleep *s, uint64_t deadline_ns) {
  cx_timer_entry_init(&s->entry);
  s->deadline = deadline_ns;
  s->duration = 0;
}

static cx_poll cx__sleep_ready(int *result, int rc) {
  if (result) *result = rc;
  return CX_READY;
}

cx_poll cx_sleep_poll(cx_sleep *s, cx_context *cx, int *result) {
  if (s == NULL || cx == NULL || cx->waker == NULL)
    return cx__sleep_ready(result, CX_EINVAL);
  if (s->entry.fired) return cx__sleep_ready(result, CX_OK);
  cx_timers *t = cx->timers;
  if (t == NULL) return cx__sleep_ready(result, CX_ENOTSUP);
  if (s->deadline == CX_DEADLINE_NONE) {
    uint64_t now = cx_timers_now(t);
    s->deadline = (s->duration > CX_DEADLINE_NONE - 1 - now)
                      ? CX_DEADLINE_NONE - 1
                      : now + s->duration;
  }
  if (s->deadline <= t->now) {
    cx_timer_entry_cancel(&s->entry);
    s->entry.fired = true;
    return cx__sleep_ready(result, CX_OK);
  }
  if (s->entry.driver == t) {
    /* Already registered: only refresh the waker if the task changed. */
    int rc = cx_waker_store(&s->entry.waker, cx->waker);
    if (rc != CX_OK) return cx__sleep_ready(result, rc);
    return CX_PENDING;
  }
  cx_waker w;
  int rc = cx_waker_clone(cx->waker, &w);
  if (rc != CX_OK) return cx__sleep_ready(result, rc);
  cx_timers_register(t, &s->entry, s->deadline, &w);
  return CX_PENDING;
}

void cx_sleep_drop(cx_sleep *s) {
  if (s) cx_timer_entry_cancel(&s->entry);
}

static cx_poll cx__sleep_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_sleep_poll((cx_sleep *)self, cx, (int *)out);
}
static void cx__sleep_vt_drop(void *self) {
  cx_sleep_drop((cx_sleep *)self);
}

const cx_future_vtable cx_sleep_vtable = {.poll = cx__sleep_vt_poll,
                                          .drop = cx__sleep_vt_drop,
                                          .state_size = sizeof(cx_sleep),
                                          .state_align = _Alignof(cx_sleep),
                                          .output_size = sizeof(int)};
