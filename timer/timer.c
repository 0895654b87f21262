/*
 * The timer driver: a 4-ary min-heap in an array, with a slot table.
 *
 * Why this shape (docs/design.md has the measurements). The executor needs
 * the earliest deadline (to know how long to park), "pop everything due",
 * and cancellation of any entry (dropping a sleep), with exact deadlines
 * and FIFO among equal ones. The pairing heap this replaced did all of that
 * with no allocation, but every pop chased child and sibling pointers
 * through the entries, which live in the tasks: with W4's 100,000 sleeping
 * tasks (20 MB) ~60% of the run's CPU went into those cache misses
 * (perf, cpu-clock). Here the heap is an array of 24-byte nodes
 * (deadline, registration order, slot): a pop compares four children in
 * two cache lines per level and never touches an entry. (The order is in
 * the node, not behind it: W4 has 100 timers per deadline, and reading it
 * from the slot table to break ties cost a miss per comparison.) Cancel in
 * place needs each entry's heap index, which moves on every sift; keeping
 * it in the entry would cost a miss per level again, so entries hold a
 * slot number instead, and the small `pos` array (4 bytes per timer) maps
 * slots to heap indices; the slot table maps slots to entries.
 *
 * The cost: the arrays must grow, so registering can fail (CX_ENOMEM). The
 * first CX__TIMERS_INLINE timers use storage inside cx_timers, and the
 * allocated arrays are freed when the driver becomes empty, so a driver
 * with a few timers never allocates and an idle one holds nothing.
 *
 * Heap layout: node i's children are 4i+1 .. 4i+4. The allocated heap
 * starts 3 nodes into a 64-byte aligned block, so every group of four
 * siblings (96 bytes) starts on a 32-byte boundary and spans two cache
 * lines.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "timer/timer.h"

#include <string.h>
#include <time.h>

#include "waker/alloc.h"
#include "waker/error.h"

#define CX__NO_SLOT UINT32_MAX
#define CX__BLOCK_ALIGN 64
#define CX__HEAP_PAD 3         /* nodes before heap[0]: see "Heap layout" */
#define CX__FIRST_CAP 256      /* first allocated capacity */
#define CX__MAX_CAP (1u << 30) /* slot numbers stay below CX__NO_SLOT */

uint64_t cx_clock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * CX_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t cx__default_clock(void *ctx) {
  (void)ctx;
  return cx_clock_now();
}

/* Points the arrays at the inline storage, with no slot handed out. */
static void cx__use_inline(cx_timers *t) {
  t->heap = t->inline_heap;
  t->slots = t->inline_slots;
  t->pos = t->inline_pos;
  t->cap = CX__TIMERS_INLINE;
  t->block = NULL;
  t->block_size = 0;
  t->free_slot = CX__NO_SLOT;
  t->used_slots = 0;
}

int cx_timers_init(cx_timers *t, cx_clock_fn clock, void *clock_ctx) {
  if (t == NULL) return CX_EINVAL;
  cx__use_inline(t);
  t->count = 0;
  t->next_seq = 0;
  t->clock = clock ? clock : cx__default_clock;
  t->clock_ctx = clock ? clock_ctx : NULL;
  t->now = t->clock(t->clock_ctx);
  return CX_OK;
}

uint64_t cx_timers_now(cx_timers *t) {
  if (t == NULL) return cx_clock_now();
  t->now = t->clock(t->clock_ctx);
  return t->now;
}

void cx_timer_entry_init(cx_timer_entry *e) {
  if (e == NULL) return;
  e->deadline = 0;
  e->seq = 0;
  e->driver = NULL;
  e->waker = CX_WAKER_EMPTY;
  e->slot = CX__NO_SLOT;
  e->fired = false;
}

/* ---- storage ------------------------------------------------------------ */

/* Doubles the capacity (from inline to CX__FIRST_CAP at first). */
static int cx__grow(cx_timers *t) {
  size_t cap = t->block ? t->cap * 2 : CX__FIRST_CAP;
  if (cap > CX__MAX_CAP) return CX_ENOMEM;
  size_t heap_bytes = (cap + CX__HEAP_PAD) * sizeof(cx__timer_node);
  size_t slot_bytes = cap * sizeof(cx_timer_entry *);
  size_t size = heap_bytes + slot_bytes + cap * sizeof(uint32_t);
  unsigned char *block = cx_alloc(size, CX__BLOCK_ALIGN);
  if (block == NULL) return CX_ENOMEM;
  cx__timer_node *heap = (cx__timer_node *)block + CX__HEAP_PAD;
  cx_timer_entry **slots = (cx_timer_entry **)(block + heap_bytes);
  uint32_t *pos = (uint32_t *)(block + heap_bytes + slot_bytes);
  memcpy(heap, t->heap, t->count * sizeof *heap);
  memcpy(slots, t->slots, t->used_slots * sizeof *slots);
  memcpy(pos, t->pos, t->used_slots * sizeof *pos);
  if (t->block) cx_free(t->block, t->block_size, CX__BLOCK_ALIGN);
  t->heap = heap;
  t->slots = slots;
  t->pos = pos;
  t->cap = cap;
  t->block = block;
  t->block_size = size;
  return CX_OK;
}

/* An empty driver gives its memory back (and restarts slot numbering). */
static void cx__release_if_empty(cx_timers *t) {
  if (t->count != 0) return;
  if (t->block) cx_free(t->block, t->block_size, CX__BLOCK_ALIGN);
  cx__use_inline(t);
}

/* Needs count < cap: then a free slot exists (slots in use == count). */
static uint32_t cx__slot_take(cx_timers *t) {
  uint32_t s = t->free_slot;
  if (s != CX__NO_SLOT) {
    t->free_slot = t->pos[s];
    return s;
  }
  return t->used_slots++;
}

static void cx__slot_put(cx_timers *t, uint32_t s) {
  t->slots[s] = NULL;
  t->pos[s] = t->free_slot;
  t->free_slot = s;
}

/* ---- the heap ----------------------------------------------------------- */

static inline bool cx__before(cx__timer_node a, cx__timer_node b) {
  if (a.deadline != b.deadline) return a.deadline < b.deadline;
  return a.seq < b.seq;
}

static inline void cx__place(cx_timers *t, size_t i, cx__timer_node n) {
  t->heap[i] = n;
  t->pos[n.slot] = (uint32_t)i;
}

static void cx__sift_up(cx_timers *t, size_t i, cx__timer_node n) {
  while (i > 0) {
    size_t p = (i - 1) / 4;
    if (!cx__before(n, t->heap[p])) break;
    cx__place(t, i, t->heap[p]);
    i = p;
  }
  cx__place(t, i, n);
}

static void cx__sift_down(cx_timers *t, size_t i, cx__timer_node n) {
  size_t count = t->count;
  for (;;) {
    size_t c = 4 * i + 1;
    if (c >= count) break;
    /* The heap outgrows the caches (W4: 2.4 MB) and each level's loads
     * depend on the previous level's choice, so a deep sift is a chain of
     * cache misses. The grandchildren of i are 16 consecutive nodes (384
     * bytes): fetch them all now, while this level's four are compared. */
    size_t g = 16 * i + 5;
    if (g < count) {
      const char *p = (const char *)&t->heap[g];
      for (int k = 0; k < 6; k++) __builtin_prefetch(p + 64 * k);
    }
    size_t end = c + 4 < count ? c + 4 : count;
    size_t m = c;
    for (size_t k = c + 1; k < end; k++)
      if (cx__before(t->heap[k], t->heap[m])) m = k;
    if (!cx__before(t->heap[m], n)) break;
    cx__place(t, i, t->heap[m]);
    i = m;
  }
  cx__place(t, i, n);
}

/* Puts n at index i (which holds a stale node) and restores the order. */
static void cx__resift(cx_timers *t, size_t i, cx__timer_node n) {
  if (i > 0 && cx__before(n, t->heap[(i - 1) / 4]))
    cx__sift_up(t, i, n);
  else
    cx__sift_down(t, i, n);
}

/* Takes the node at index i out of the heap (its slot stays taken). */
static void cx__heap_remove_at(cx_timers *t, size_t i) {
  size_t last = --t->count;
  if (i != last) cx__resift(t, i, t->heap[last]);
}

/* Unlinks a registered entry from its driver; its waker stays in e. */
static void cx__unlink(cx_timer_entry *e) {
  cx_timers *t = e->driver;
  uint32_t s = e->slot;
  cx__heap_remove_at(t, t->pos[s]);
  cx__slot_put(t, s);
  e->driver = NULL;
  e->slot = CX__NO_SLOT;
}

/* Takes e's waker out (the caller drops or wakes it last: that may run
 * code that frees the memory holding e, or re-enters the driver). */
static cx_waker cx__take_waker(cx_timer_entry *e) {
  cx_waker w = e->waker;
  e->waker = CX_WAKER_EMPTY;
  return w;
}

int cx_timers_register(cx_timers *t, cx_timer_entry *e, uint64_t deadline,
                       cx_waker *waker) {
  if (t == NULL || e == NULL || waker == NULL) return CX_EINVAL;
  if (e->driver != t && t->count == t->cap) {
    int rc = cx__grow(t);
    if (rc != CX_OK) return rc; /* nothing changed, not even next_seq */
  }
  uint64_t seq = t->next_seq++;
  cx_waker old = CX_WAKER_EMPTY;
  if (e->driver == t) {
    /* Re-registration: the entry keeps its slot and moves in the heap. */
    old = cx__take_waker(e);
    cx__timer_node n = {deadline, seq, e->slot};
    cx__resift(t, t->pos[e->slot], n);
  } else {
    if (e->driver) { /* registered in another driver: leave it first */
      old = cx__take_waker(e);
      cx_timers *other = e->driver;
      cx__unlink(e);
      cx__release_if_empty(other);
    }
    uint32_t s = cx__slot_take(t);
    t->slots[s] = e;
    e->driver = t;
    e->slot = s;
    t->count++;
    cx__timer_node n = {deadline, seq, s};
    cx__sift_up(t, t->count - 1, n);
  }
  e->deadline = deadline;
  e->seq = seq;
  e->fired = false;
  e->waker = *waker;
  *waker = CX_WAKER_EMPTY;
  cx_waker_drop(&old); /* last: it may run arbitrary code */
  return CX_OK;
}

bool cx_timer_entry_cancel(cx_timer_entry *e) {
  if (e == NULL || e->driver == NULL) return false;
  cx_timers *t = e->driver;
  cx__unlink(e);
  cx_waker w = cx__take_waker(e);
  cx__release_if_empty(t);
  cx_waker_drop(&w);
  return true;
}

size_t cx_timers_cancel_all(cx_timers *t) {
  if (t == NULL) return 0;
  size_t n = 0;
  while (t->count > 0) {
    /* The last node: removing it needs no sift. */
    uint32_t s = (uint32_t)t->heap[t->count - 1].slot;
    cx_timer_entry *e = t->slots[s];
    t->count--;
    cx__slot_put(t, s);
    e->driver = NULL;
    e->slot = CX__NO_SLOT;
    cx_waker w = cx__take_waker(e);
    cx__release_if_empty(t);
    cx_waker_drop(&w); /* may free e's memory, or cancel/register others */
    n++;
  }
  return n;
}

uint64_t cx_timers_next_deadline(const cx_timers *t) {
  return (t && t->count) ? t->heap[0].deadline : CX_DEADLINE_NONE;
}

void cx_timers_compact(cx_timers *t) {
  (void)t;
}

size_t cx_timers_fire(cx_timers *t, uint64_t now) {
  if (t == NULL) return 0;
  size_t fired = 0;
  while (t->count > 0 && t->heap[0].deadline <= now) {
    cx_timer_entry *e = t->slots[t->heap[0].slot];
    cx__unlink(e);
    e->fired = true;
    cx_waker w = cx__take_waker(e);
    if (t->count > 0)
      /* The next entry to fire lives in another task, far away in memory:
       * start loading it while this wake runs. */
      __builtin_prefetch(t->slots[t->heap[0].slot]);
    else
      cx__release_if_empty(t);
    /* The wake may run arbitrary code that touches e or the driver (a
     * scheduler that polls inline, a cancel, a new registration). */
    cx_waker_wake(&w);
    fired++;
  }
  return fired;
}

/* ---- sleep ------------------------------------------------------------- */

void cx_sleep_init_for(cx_sleep *s, uint64_t ns) {
  if (s == NULL) return;
  cx_timer_entry_init(&s->entry);
  s->deadline = CX_DEADLINE_NONE;
  s->duration = ns;
  s->relative = true;
}

void cx_sleep_init_until(cx_sleep *s, uint64_t deadline_ns) {
  if (s == NULL) return;
  cx_timer_entry_init(&s->entry);
  s->deadline = deadline_ns;
  s->duration = 0;
  s->relative = false;
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
  if (s->relative) {
    uint64_t now = cx_timers_now(t);
    s->deadline = (s->duration > CX_DEADLINE_NONE - 1 - now)
                      ? CX_DEADLINE_NONE - 1
                      : now + s->duration;
    s->relative = false;
  }
  /* Until "no deadline": never ready, and nothing to wake it. */
  if (s->deadline == CX_DEADLINE_NONE) return CX_PENDING;
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
  rc = cx_timers_register(t, &s->entry, s->deadline, &w);
  if (rc != CX_OK) {
    cx_waker_drop(&w); /* a failed register leaves it with us */
    return cx__sleep_ready(result, rc);
  }
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
