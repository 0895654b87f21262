/*
 * Fuzz harness: the timer driver (timer/timer.h) against a sorted model.
 *
 * One cx_timers over a manual clock, 96 plain entries and 8 cx_sleep
 * futures, each with a counting waker, and a counting allocator. Operations:
 * register an entry (deadlines in the past, now, the future, far away;
 * re-registering a registered entry; with the allocation of the driver's
 * arrays failing), cancel one, cancel all, advance the clock and fire, fire
 * without advancing, refresh the cached clock, compact, poll a sleep
 * (cx_sleep_init_for / _until, including until CX_DEADLINE_NONE), drop a
 * sleep. Wakes delivered by cx_timers_fire may themselves register,
 * re-register or cancel entries, as real wake-ups can; so may the waker
 * drops of cx_timers_cancel_all.
 *
 * Checked: every wake the driver delivers is the model's earliest
 * registered timer by (deadline, registration order), is due (deadline <=
 * now), and fires once; cancelled or re-registered timers never fire and
 * their waker is dropped exactly once; after a fire nothing due is left;
 * cancel_all drops every registered waker once, wakes none, returns how
 * many it unregistered and leaves the driver empty; a register fails with
 * CX_ENOMEM only when the driver had to grow and the allocation failed, and
 * then changes nothing; cx_timers_count and cx_timers_next_deadline match
 * the model; the driver is well formed (check_heap: the run, the near
 * heap, the calendar and the far heap, slot table and positions, free slots
 * and chunks); a sleep is ready exactly
 * when its deadline has passed (never early) and its timer fired or it was
 * due when polled, and a sleep until CX_DEADLINE_NONE is never ready; every
 * waker reference is accounted for at the end, and an empty driver holds
 * no memory (no block live in the allocator).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_harnesses.h"
#include "fuzz/fuzz_util.h"
#include "timer/timer.h"
#include "waker/error.h"

#define H "timer"
#define FAIL(...) fz_fail(H, __VA_ARGS__)
#define CHECK(cond, ...)            \
  do {                              \
    if (!(cond)) FAIL(__VA_ARGS__); \
  } while (0)

/* More entries than the driver's inline storage, so its arrays grow. */
enum { N_ENT = 96, N_SLEEP = 8, N_REC = N_ENT + N_SLEEP };

typedef struct tm_rec {
  int id;
  cx_timer_entry *entry; /* the entry this record's waker is registered in */
  /* model */
  bool registered;
  uint64_t deadline, seq;
  /* counting waker */
  int64_t refs;   /* waker references alive */
  uint64_t wakes; /* by-value wakes received */
  uint64_t expect_wakes, drops, expect_drops;
} tm_rec;

typedef struct tm_sleep_model {
  bool inited;
  bool relative; /* sleep_for not polled yet */
  uint64_t deadline; /* CX_DEADLINE_NONE until resolved */
  uint64_t duration;
  bool fired;
} tm_sleep_model;

typedef struct tm_world {
  fz_input in;
  cx_timers t;
  uint64_t now;    /* the manual clock */
  uint64_t cached; /* model of t.now */
  uint64_t next_seq;
  cx_timer_entry ent[N_ENT];
  cx_sleep sl[N_SLEEP];
  tm_sleep_model sm[N_SLEEP];
  tm_rec rec[N_REC];
  bool firing;
  bool cancelling_all;
  size_t cancelled_by_all;
  uint64_t fire_now;
  size_t fired_in_call;
  int depth;
} tm_world;

static tm_world *g_tw;

static uint64_t tm_clock(void *ctx) { return ((tm_world *)ctx)->now; }

/* ---- counting wakers --------------------------------------------------- */

static void tm_on_fire(tm_world *w, tm_rec *r);
static void tm_on_cancel_all_drop(tm_world *w, tm_rec *r);

static int tm_clone(const void *data, cx_waker *out);
static void tm_wake(const void *data) {
  tm_rec *r = (tm_rec *)data;
  r->wakes++;
  r->refs--;
  CHECK(r->refs >= 0, "waker %d: more releases than references", r->id);
  tm_on_fire(g_tw, r);
}
static void tm_wake_by_ref(const void *data) {
  (void)data;
  FAIL("the driver woke a waker by reference");
}
static void tm_drop(const void *data) {
  tm_rec *r = (tm_rec *)data;
  r->drops++;
  r->refs--;
  CHECK(r->refs >= 0, "waker %d: more releases than references", r->id);
  if (g_tw && g_tw->cancelling_all && g_tw->depth == 0)
    tm_on_cancel_all_drop(g_tw, r);
}
static const cx_waker_vtable tm_vt = {tm_clone, tm_wake, tm_wake_by_ref,
                                      tm_drop};
static int tm_clone(const void *data, cx_waker *out) {
  tm_rec *r = (tm_rec *)data;
  r->refs++;
  out->vtable = &tm_vt;
  out->data = r;
  return CX_OK;
}
static cx_waker tm_new_waker(tm_rec *r) {
  r->refs++;
  cx_waker w = {&tm_vt, r};
  return w;
}

/* ---- the model ---------------------------------------------------------- */

static bool before(const tm_rec *a, const tm_rec *b) {
  if (a->deadline != b->deadline) return a->deadline < b->deadline;
  return a->seq < b->seq;
}

FZ_NO_COVERAGE static tm_rec *m_min(tm_world *w) {
  tm_rec *m = NULL;
  for (int i = 0; i < N_REC; i++)
    if (w->rec[i].registered && (m == NULL || before(&w->rec[i], m)))
      m = &w->rec[i];
  return m;
}

FZ_NO_COVERAGE static size_t m_count(tm_world *w) {
  size_t n = 0;
  for (int i = 0; i < N_REC; i++) n += w->rec[i].registered;
  return n;
}

/* A registration ends by being cancelled (its waker dropped). */
static void m_unregister_dropped(tm_rec *r) {
  if (!r->registered) return;
  r->registered = false;
  r->expect_drops++;
}

static void m_register(tm_world *w, tm_rec *r, uint64_t deadline) {
  m_unregister_dropped(r);
  r->registered = true;
  r->deadline = deadline;
  r->seq = w->next_seq++;
}

/* ---- the heap walk ------------------------------------------------------ */

FZ_NO_COVERAGE static int rec_of_entry(tm_world *w, const cx_timer_entry *e) {
  if (e >= w->ent && e < w->ent + N_ENT) return (int)(e - w->ent);
  for (int k = 0; k < N_SLEEP; k++)
    if (e == &w->sl[k].entry) return N_ENT + k;
  return -1;
}

/* One node of the driver: its entry is a registered one, seen once, with
 * the model's deadline and order, and its slot points back at `tagged`. */
FZ_NO_COVERAGE static void check_node(tm_world *w, const char *where,
                                      cx__timer_node node, uint32_t tagged,
                                      bool *seen) {
  const cx_timers *t = &w->t;
  CHECK(node.slot < t->used_slots, "%s: node %u has slot %llu of %u", where,
        tagged, (unsigned long long)node.slot, t->used_slots);
  CHECK(t->pos[node.slot] == tagged, "%s: slot %llu points at %#x, not %#x",
        where, (unsigned long long)node.slot, t->pos[node.slot], tagged);
  const cx_timer_entry *e = t->slots[node.slot];
  int id = e ? rec_of_entry(w, e) : -1;
  CHECK(id >= 0, "%s: the driver holds an unknown entry", where);
  CHECK(!seen[id], "%s: entry %d in the driver twice", where, id);
  seen[id] = true;
  tm_rec *r = &w->rec[id];
  CHECK(r->registered, "%s: entry %d in the driver but not registered", where,
        id);
  CHECK(node.deadline == r->deadline && node.seq == r->seq,
        "%s: entry %d has the wrong deadline/seq", where, id);
  CHECK(e->driver == t && e->slot == node.slot,
        "%s: entry %d in the driver without its driver or slot", where, id);
}

/* A 4-ary heap: every node ordered after its parent. */
FZ_NO_COVERAGE static void check_heap_order(const char *where,
                                            const cx__timer_node *h,
                                            size_t n) {
  for (size_t i = 1; i < n; i++) {
    cx__timer_node p = h[(i - 1) / 4], c = h[i];
    CHECK(p.deadline < c.deadline ||
              (p.deadline == c.deadline && p.seq < c.seq),
          "%s: heap node %zu ordered before its parent", where, i);
  }
}

/* The driver is well formed: the near heap (ticks <= cursor), the calendar
 * (one tick per bucket, within CX__CAL_BUCKETS after the cursor, busy bits
 * right, chunks full but the last), the far heap; the near heap is empty
 * only if the calendar is; slot table and positions agree both ways; free
 * slots and free chunks are free; the entries in it exactly the registered
 * ones. */
FZ_NO_COVERAGE static void check_heap(tm_world *w, const char *where) {
  const cx_timers *t = &w->t;
  bool seen[N_REC] = {false};
  size_t n = t->count;
  CHECK(n <= t->cap && t->used_slots <= t->cap,
        "%s: count %zu / used slots %u beyond capacity %zu", where, n,
        t->used_slots, t->cap);
  CHECK((t->block == NULL) == (t->cap == CX__TIMERS_INLINE),
        "%s: capacity %zu with block %p", where, t->cap, t->block);
  CHECK(n > 0 || t->block == NULL, "%s: an empty driver holds memory", where);
  bool inline_ = t->block == NULL;
  CHECK(!inline_ || (t->cnode == NULL && t->fcount == 0 &&
                     t->cal_summary == 0 && t->chunks_seen == 0 &&
                     t->run_end == 0),
        "%s: an inline driver with a calendar, a run or a far heap", where);
  size_t nrun = 0;
  const cx__timer_node *prev = NULL;
  CHECK(t->run_head <= t->run_end && t->run_end <= t->cap &&
            (t->run_head == t->run_end || t->run[t->run_head].slot != CX__HOLE),
        "%s: run [%zu, %zu) starts with a hole or is out of range", where,
        t->run_head, t->run_end);
  for (size_t i = t->run_head; i < t->run_end; i++) {
    cx__timer_node node = t->run[i];
    if (node.slot == CX__HOLE) continue;
    check_node(w, where, node, CX__IN_RUN | (uint32_t)i, seen);
    CHECK((node.deadline >> t->tick_shift) <= t->cursor,
          "%s: run node %zu after the cursor's tick", where, i);
    CHECK(prev == NULL || prev->deadline < node.deadline ||
              (prev->deadline == node.deadline && prev->seq < node.seq),
          "%s: run node %zu out of order", where, i);
    prev = &t->run[i];
    nrun++;
  }
  for (size_t i = 0; i < t->hcount; i++) {
    check_node(w, where, t->heap[i], (uint32_t)i, seen);
    CHECK(inline_ || (t->heap[i].deadline >> t->tick_shift) <= t->cursor,
          "%s: near heap node %zu after the cursor's tick", where, i);
  }
  check_heap_order(where, t->heap, t->hcount);
  for (size_t i = 0; i < t->fcount; i++)
    check_node(w, where, t->far[i], CX__IN_FAR | (uint32_t)i, seen);
  check_heap_order(where, t->far, t->fcount);
  size_t ncal = 0, nchunks_used = 0;
  for (uint32_t b = 0; !inline_ && b < CX__CAL_BUCKETS; b++) {
    bool busy = (t->cal_bits[b / 64] >> (b % 64)) & 1;
    CHECK(busy == (t->ctail[b] != UINT32_MAX),
          "%s: bucket %u busy bit wrong", where, b);
    uint32_t fill = t->cfill[b];
    for (uint32_t c = t->ctail[b]; c != UINT32_MAX; c = t->cprev[c]) {
      CHECK(c < t->chunks_seen && t->cbucket[c] == b,
            "%s: bucket %u holds chunk %u of bucket %u (seen %u)", where, b,
            c, c < t->chunks_seen ? t->cbucket[c] : 0, t->chunks_seen);
      CHECK(fill >= 1 && fill <= CX__CHUNK, "%s: chunk %u holds %u nodes",
            where, c, fill);
      CHECK(++nchunks_used <= t->chunks_seen, "%s: chunk lists loop", where);
      for (uint32_t k = 0; k < fill; k++) {
        uint32_t g = c * CX__CHUNK + k;
        cx__timer_node node = t->cnode[g];
        check_node(w, where, node, CX__IN_CAL | g, seen);
        uint64_t tick = node.deadline >> t->tick_shift;
        CHECK(tick > t->cursor && tick - t->cursor < CX__CAL_BUCKETS &&
                  (tick & (CX__CAL_BUCKETS - 1)) == b,
              "%s: tick %llu in bucket %u (cursor %llu)", where,
              (unsigned long long)tick, b, (unsigned long long)t->cursor);
        ncal++;
      }
      fill = CX__CHUNK;
    }
  }
  for (uint32_t wd = 0; !inline_ && wd < CX__CAL_WORDS; wd++)
    CHECK(((t->cal_summary >> wd) & 1) == (t->cal_bits[wd] != 0),
          "%s: calendar summary bit %u wrong", where, wd);
  CHECK(ncal == 0 || t->hcount > 0 || nrun > 0,
        "%s: the calendar holds timers, the run and near heap none", where);
  CHECK(t->hcount + t->fcount + ncal + nrun == n,
        "%s: %zu near + %zu run + %zu far + %zu calendar != count %zu", where,
        t->hcount, nrun, t->fcount, ncal, n);
  size_t nfree_chunks = 0;
  for (uint32_t c = t->free_chunk; c != UINT32_MAX; c = t->cprev[c]) {
    CHECK(c < t->chunks_seen, "%s: free chunk %u never handed out", where,
          c);
    CHECK(++nfree_chunks <= t->chunks_seen, "%s: free-chunk list loops",
          where);
  }
  CHECK(nfree_chunks + nchunks_used == t->chunks_seen &&
            t->chunks_seen <= t->nchunks,
        "%s: %zu free + %zu used chunks != %u seen (of %u)", where,
        nfree_chunks, nchunks_used, t->chunks_seen, t->nchunks);
  /* The free slots: exactly the handed-out ones not in use. */
  size_t nfree = 0;
  for (uint32_t f = t->free_slot; f != UINT32_MAX; f = t->pos[f]) {
    CHECK(f < t->used_slots && t->slots[f] == NULL,
          "%s: free slot %u in use or never handed out", where, f);
    CHECK(++nfree <= t->used_slots, "%s: free-slot list loops", where);
  }
  CHECK(nfree + n == t->used_slots, "%s: %zu free + %zu used != %u slots",
        where, nfree, n, t->used_slots);
  CHECK(n == m_count(w) && n == cx_timers_count(t),
        "%s: driver holds %zu entries, count %zu, model %zu", where, n,
        cx_timers_count(t), m_count(w));
  for (int i = 0; i < N_REC; i++) {
    CHECK(seen[i] == w->rec[i].registered,
          "%s: registered entry %d missing from the driver", where, i);
    CHECK((w->rec[i].entry->driver != NULL) == w->rec[i].registered,
          "%s: entry %d driver link wrong", where, i);
  }
}

FZ_NO_COVERAGE static void check_all(tm_world *w, const char *where) {
  tm_rec *m = m_min(w);
  uint64_t nd = cx_timers_next_deadline(&w->t);
  CHECK(nd == (m ? m->deadline : CX_DEADLINE_NONE),
        "%s: next deadline %llu, model %llu", where, (unsigned long long)nd,
        (unsigned long long)(m ? m->deadline : CX_DEADLINE_NONE));
  CHECK(w->t.now == w->cached, "%s: cached clock %llu, model %llu", where,
        (unsigned long long)w->t.now, (unsigned long long)w->cached);
  check_heap(w, where);
  for (int i = 0; i < N_REC; i++) {
    tm_rec *r = &w->rec[i];
    CHECK(r->refs == (r->registered ? 1 : 0),
          "%s: waker %d has %lld references, model %d", where, i,
          (long long)r->refs, r->registered);
    CHECK(r->wakes == r->expect_wakes && r->drops == r->expect_drops,
          "%s: waker %d woken %llu / dropped %llu times, model %llu / %llu",
          where, i, (unsigned long long)r->wakes, (unsigned long long)r->drops,
          (unsigned long long)r->expect_wakes,
          (unsigned long long)r->expect_drops);
  }
}

/* ---- operations --------------------------------------------------------- */

static uint64_t pick_deadline(tm_world *w) {
  uint8_t b = fz_u8(&w->in);
  switch (b >> 6) {
    case 0: return w->now + (b & 63) * 10; /* ties are likely */
    case 1: return w->now >= (uint64_t)(b & 63) * 10 ? w->now - (b & 63) * 10
                                                     : 0; /* already due */
    case 2: return w->now + (uint64_t)(b & 63) * 1000 + 5;
    default:
      return (b & 1) ? UINT64_MAX - (b & 62) : w->now + (b & 62) * 100000;
  }
}

/* fail_alloc: the allocation a growing driver makes fails. */
static void op_register_ex(tm_world *w, int i, bool fail_alloc) {
  tm_rec *r = &w->rec[i];
  uint64_t d = pick_deadline(w);
  cx_waker wk = tm_new_waker(r);
  bool grows = !r->registered && w->t.count == w->t.cap;
  if (fail_alloc) fz_alloc_fail_in(1);
  int rc = cx_timers_register(&w->t, &w->ent[i], d, &wk);
  fz_alloc_fail_in(0);
  if (fail_alloc && grows) {
    CHECK(rc == CX_ENOMEM && !cx_waker_is_empty(&wk) && !r->registered &&
              w->ent[i].driver == NULL,
          "register into a full driver with a failing allocator gave %s",
          cx_err_name(rc));
    cx_waker_drop(&wk);
    r->drops--; /* ours, not the driver's */
    return;
  }
  m_register(w, r, d);
  CHECK(rc == CX_OK && cx_waker_is_empty(&wk), "register gave %s",
        cx_err_name(rc));
  CHECK(!w->ent[i].fired, "registered entry marked fired");
}

static void op_register(tm_world *w, int i) { op_register_ex(w, i, false); }

static void op_cancel(tm_world *w, int i) {
  tm_rec *r = &w->rec[i];
  bool was = r->registered;
  m_unregister_dropped(r);
  bool rc = cx_timer_entry_cancel(&w->ent[i]);
  CHECK(rc == was, "cancel of entry %d returned %d, model %d", i, rc, was);
}

static void tm_on_fire(tm_world *w, tm_rec *r) {
  CHECK(w->firing, "waker %d woken outside cx_timers_fire", r->id);
  tm_rec *m = m_min(w);
  CHECK(r->registered, "entry %d fired although not registered (cancelled "
                       "or fired before)", r->id);
  CHECK(m == r, "entry %d fired out of order: entry %d (deadline %llu, "
                "seq %llu) is earlier than it (deadline %llu, seq %llu)",
        r->id, m->id, (unsigned long long)m->deadline,
        (unsigned long long)m->seq, (unsigned long long)r->deadline,
        (unsigned long long)r->seq);
  CHECK(r->deadline <= w->fire_now,
        "entry %d fired before its deadline (%llu > now %llu)", r->id,
        (unsigned long long)r->deadline, (unsigned long long)w->fire_now);
  CHECK(r->entry->fired && r->entry->driver == NULL,
        "entry %d woken while still registered or not marked fired", r->id);
  r->registered = false;
  r->expect_wakes++;
  w->fired_in_call++;
  if (r->id >= N_ENT) w->sm[r->id - N_ENT].fired = true;
  /* A wake-up may register or cancel timers (not nested too deep). */
  if (w->depth > 4) return;
  w->depth++;
  uint8_t b = fz_u8(&w->in);
  int j = (b >> 2) % N_ENT;
  switch (b & 3) {
    case 1: op_register(w, j); break;
    case 2: op_cancel(w, j); break;
    case 3:
      if (r->id < N_ENT) op_register(w, r->id);
      break;
    default: break;
  }
  w->depth--;
}

/* A waker dropped by cx_timers_cancel_all: its entry must already be out
 * of the driver. The drop may cancel or register other entries. */
static void tm_on_cancel_all_drop(tm_world *w, tm_rec *r) {
  CHECK(r->registered, "cancel_all dropped the waker of entry %d, which was "
                       "not registered", r->id);
  CHECK(r->entry->driver == NULL && !r->entry->fired,
        "cancel_all dropped entry %d's waker while it was still registered "
        "(or marked it fired)", r->id);
  r->registered = false;
  r->expect_drops++;
  w->cancelled_by_all++;
  w->depth++;
  uint8_t b = fz_u8(&w->in);
  int j = (b >> 2) % N_ENT;
  switch (b & 3) {
    case 1: op_register(w, j); break;
    case 2: op_cancel(w, j); break;
    default: break;
  }
  w->depth--;
}

static void op_cancel_all(tm_world *w) {
  w->cancelling_all = true;
  w->cancelled_by_all = 0;
  size_t n = cx_timers_cancel_all(&w->t);
  w->cancelling_all = false;
  CHECK(n == w->cancelled_by_all, "cancel_all returned %zu, dropped %zu", n,
        w->cancelled_by_all);
  CHECK(m_count(w) == 0 && cx_timers_count(&w->t) == 0 &&
            w->t.block == NULL,
        "cancel_all left %zu timers (model %zu) or memory",
        cx_timers_count(&w->t), m_count(w));
}

static void op_fire(tm_world *w) {
  w->firing = true;
  w->fire_now = w->now;
  w->fired_in_call = 0;
  size_t n = cx_timers_fire(&w->t, w->now);
  w->firing = false;
  CHECK(n == w->fired_in_call, "fire returned %zu, %zu wakes were delivered",
        n, w->fired_in_call);
  tm_rec *m = m_min(w);
  CHECK(m == NULL || m->deadline > w->now,
        "entry %d (deadline %llu) is due at %llu but did not fire",
        m ? m->id : -1, (unsigned long long)(m ? m->deadline : 0),
        (unsigned long long)w->now);
}

static void op_sleep_poll(tm_world *w, int k) {
  cx_sleep *s = &w->sl[k];
  tm_sleep_model *sm = &w->sm[k];
  tm_rec *r = &w->rec[N_ENT + k];
  uint8_t b = fz_u8(&w->in);
  if (!sm->inited) {
    if (b & 1) {
      sm->duration = (uint64_t)(b >> 1) * 20;
      sm->deadline = CX_DEADLINE_NONE;
      sm->relative = true;
      cx_sleep_init_for(s, sm->duration);
    } else {
      sm->deadline = pick_deadline(w); /* CX_DEADLINE_NONE: never */
      sm->duration = 0;
      sm->relative = false;
      cx_sleep_init_until(s, sm->deadline);
    }
    sm->inited = true;
    sm->fired = false;
  }
  /* The model of cx_sleep_poll. */
  bool want_ready;
  if (sm->fired) {
    want_ready = true;
  } else {
    if (sm->relative) {
      w->cached = w->now; /* sleep_for reads the clock on its first poll */
      sm->deadline = sm->duration > CX_DEADLINE_NONE - 1 - w->cached
                         ? CX_DEADLINE_NONE - 1
                         : w->cached + sm->duration;
      sm->relative = false;
    }
    if (sm->deadline == CX_DEADLINE_NONE) {
      want_ready = false; /* never, and nothing registered */
    } else if (sm->deadline <= w->cached) {
      m_unregister_dropped(r);
      sm->fired = true;
      want_ready = true;
    } else {
      if (!r->registered) m_register(w, r, sm->deadline);
      want_ready = false;
    }
  }
  cx_waker wk = tm_new_waker(r); /* the "task" waker, borrowed by the poll */
  cx_context cx = {&wk, NULL, &w->t, NULL};
  int res = -1;
  cx_poll p = cx_sleep_poll(s, &cx, &res);
  cx_waker_drop(&wk);
  r->drops--; /* that drop was ours, not the driver's */
  CHECK((p == CX_READY) == want_ready, "sleep %d: poll gave %s, model %s", k,
        p == CX_READY ? "READY" : "PENDING", want_ready ? "READY" : "PENDING");
  CHECK(cx_sleep_deadline(s) == sm->deadline, "sleep %d: deadline %llu, "
        "model %llu", k, (unsigned long long)cx_sleep_deadline(s),
        (unsigned long long)sm->deadline);
  if (p == CX_READY) {
    CHECK(res == CX_OK, "sleep %d ready with %s", k, cx_err_name(res));
    CHECK(sm->deadline <= w->now, "sleep %d ready before its deadline", k);
    sm->inited = false; /* a finished sleep is re-initialised next time */
  }
  /* Without a timer driver: CX_ENOTSUP. */
  if (b & 0x80) {
    cx_sleep other;
    cx_sleep_init_for(&other, 5);
    cx_waker nw = cx_waker_noop();
    cx_context nc = {&nw, NULL, NULL, NULL};
    CHECK(cx_sleep_poll(&other, &nc, &res) == CX_READY && res == CX_ENOTSUP,
          "sleep without a driver");
    cx_sleep_drop(&other);
  }
}

static void op_sleep_drop(tm_world *w, int k) {
  m_unregister_dropped(&w->rec[N_ENT + k]);
  cx_sleep_drop(&w->sl[k]);
  cx_sleep_drop(&w->sl[k]); /* idempotent */
  w->sm[k].inited = false;
}

int cx_fuzz_timer(const uint8_t *data, size_t size) {
  tm_world *w = calloc(1, sizeof *w);
  if (w == NULL) return 0;
  g_tw = w;
  fz_input_init(&w->in, data, size);
  fz_alloc_install(0);
  w->now = 1000000;
  cx_timers_init(&w->t, tm_clock, w);
  /* A tick of 1, 32, 1024 or 32768 ns (timer.h: tick_shift), chosen by the
   * input's length: the deadlines below then fall in the near heap, the
   * calendar and the far heap in every proportion. */
  w->t.tick_shift = (unsigned)(size % 4) * 5;
  w->cached = w->now;
  for (int i = 0; i < N_REC; i++) {
    w->rec[i].id = i;
    w->rec[i].entry = i < N_ENT ? &w->ent[i] : &w->sl[i - N_ENT].entry;
  }
  for (int i = 0; i < N_ENT; i++) cx_timer_entry_init(&w->ent[i]);
  for (int k = 0; k < N_SLEEP; k++) cx_sleep_init_for(&w->sl[k], 0);
  check_all(w, "init");

  while (fz_more(&w->in)) {
    uint8_t op = fz_u8(&w->in);
    uint8_t a = fz_u8(&w->in);
    switch (op % 10) {
      case 0:
      case 1:
        op_register(w, a % N_ENT);
        break;
      case 2: op_cancel(w, a % N_ENT); break;
      case 3: /* advance the clock, then fire */
        w->now += (uint64_t)a * ((op & 0x80) ? 1000 : 7);
        op_fire(w);
        break;
      case 4: op_fire(w); break;
      case 5: /* refresh the cached clock reading */
        w->now += (uint64_t)(a & 15);
        w->cached = w->now;
        CHECK(cx_timers_now(&w->t) == w->now, "cx_timers_now");
        break;
      case 6:
        if (a & 1)
          cx_timers_compact(&w->t); /* a no-op now */
        else if (a & 2)
          op_register_ex(w, (a >> 2) % N_ENT, true);
        else if ((a & 0x3c) == 0) { /* rarely: it empties the driver */
          op_cancel_all(w);
          w->t.tick_shift = (unsigned)(a >> 6) * 6; /* 0, 6, 12 or 18 */
        }
        break;
      case 7: op_sleep_poll(w, a % N_SLEEP); break;
      case 8: op_sleep_drop(w, a % N_SLEEP); break;
      default: { /* bad arguments leave everything as it was */
        cx_waker wk = tm_new_waker(&w->rec[a % N_ENT]);
        CHECK(cx_timers_register(NULL, &w->ent[0], 1, &wk) == CX_EINVAL &&
                  cx_timers_register(&w->t, NULL, 1, &wk) == CX_EINVAL &&
                  cx_timers_register(&w->t, &w->ent[0], 1, NULL) == CX_EINVAL,
              "register with NULL");
        CHECK(!cx_waker_is_empty(&wk), "failed register took the waker");
        cx_waker_drop(&wk);
        w->rec[a % N_ENT].drops--;
        CHECK(!cx_timer_entry_cancel(NULL), "cancel NULL");
        cx_timers_compact(NULL);
        CHECK(cx_timers_cancel_all(NULL) == 0 && cx_timers_fire(NULL, 1) == 0 &&
                  cx_timers_count(NULL) == 0 &&
                  cx_timers_next_deadline(NULL) == CX_DEADLINE_NONE &&
                  cx_timers_init(NULL, NULL, NULL) == CX_EINVAL,
              "NULL driver");
        break;
      }
    }
    check_all(w, "op");
  }

  /* Everything still registered is cancelled (or fires, if due). */
  op_fire(w);
  for (int i = 0; i < N_ENT; i++) op_cancel(w, i);
  for (int k = 0; k < N_SLEEP; k++) op_sleep_drop(w, k);
  check_all(w, "end");
  CHECK(cx_timers_count(&w->t) == 0 && w->t.block == NULL,
        "driver not empty");
  fz_alloc_stats st = fz_alloc_stats_get();
  CHECK(st.live == 0, "%lld blocks still allocated", (long long)st.live);
  fz_alloc_uninstall();
  g_tw = NULL;
  free(w);
  return 0;
}
