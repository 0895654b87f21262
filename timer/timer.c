/*
 * The timer driver: a sorted run of the current tick, a calendar of
 * one-tick buckets, a near and a far heap, all in arrays, with a slot table.
 *
 * Why this shape (docs/design.md and docs/performance.md have the
 * measurements). The executor needs the earliest deadline (to know how long
 * to park), "pop everything due", and cancellation of any entry (dropping a
 * sleep), with exact deadlines and FIFO among equal ones. Entries live in
 * the futures that own them, spread over the tasks' memory, so the driver
 * keeps its own dense nodes (deadline, registration order, slot) and reads
 * an entry only to fire it.
 *
 * Round two (issue 12) kept every timer in one 4-ary array heap: with W4's
 * 100,000 timers it is 2.4 MB, deeper than the caches, and each pop's
 * sift-down was a chain of cache misses (a third of W4's CPU). Now a timer
 * waits where its tick (deadline >> tick_shift; 262 us by default) says,
 * relative to a `cursor` tick:
 *
 *   run         tick == cursor: the current tick's timers, moved from their
 *               calendar bucket and sorted once, taken from the front
 *   near heap   tick <= cursor, registered after its tick became the run's:
 *               a 4-ary heap by (deadline, registration)
 *   calendar    cursor < tick < cursor + CX__CAL_BUCKETS (1.07 s): bucket
 *               tick % CX__CAL_BUCKETS, unsorted, one tick per bucket
 *   far heap    further away when registered (it stays there: the far
 *               heap's first node is compared with the others')
 *
 * When the run and the near heap are empty while the calendar holds
 * timers, cx__refill moves the cursor to the first busy bucket's tick and
 * that bucket into the run, sorted. So each calendar timer moves once, in
 * its bucket's order, a pop moves no other node, and nothing is moved in
 * bulk but one tick (W4: 100-200 timers). The earliest timer is always the
 * first of the run, the near heap or the far heap (calendar ticks come
 * after the cursor's, and the calendar is empty whenever the run and the
 * near heap are), so cx_timers_next_deadline is exact and O(1). Ticks
 * decide only where a timer waits, never when it fires: deadlines stay
 * exact, and every node carries its registration order, so ties fire in
 * order wherever they waited.
 *
 * The cursor moves forward only when the run and the near heap are empty
 * (to the next busy tick), or, when the calendar is empty too, to "now" at
 * the next registration. A timer registered at or before the cursor's tick
 * goes to the near heap: so while the current tick's timers wait, timers
 * registered for earlier ticks join them there, and the near heap behaves
 * as the single heap of round two did for them ("pinned").
 *
 * Cancel in place. The heaps move nodes on every sift, so entries hold a
 * slot number, the slot table maps slots to entries, and `pos` maps a slot
 * to its node's place (a run, near or far heap index, or a calendar node,
 * told apart by tag bits); a run node leaves a hole. A calendar bucket is a
 * list of chunks of CX__CHUNK nodes from one pool; a timer leaves it by taking
 * the bucket's last node's place, in O(1).
 *
 * Memory. The arrays must grow, so registering can fail (CX_ENOMEM); the
 * pool is sized with them so that nothing else ever allocates. The first
 * CX__TIMERS_INLINE timers use storage inside cx_timers as a plain heap (no
 * calendar), and the allocated arrays are freed when the driver becomes
 * empty, so a driver with a few timers never allocates and an idle one
 * holds nothing. A timer takes 36 bytes (24 in its node, 12 in the slot
 * table); the run, its merge buffer and the two heaps are sized for every
 * timer, but their unused pages are never touched, and growing copies only
 * what was used.
 *
 * Heap layout: node i's children are 4i+1 .. 4i+4. Each heap starts 3 nodes
 * into a 64-byte aligned array, so every group of four siblings (96 bytes)
 * starts on a 32-byte boundary and spans two cache lines.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "timer/timer.h"

#include <string.h>
#include <time.h>

#include "waker/alloc.h"
#include "waker/error.h"

#define CX__NO_SLOT UINT32_MAX
#define CX__BLOCK_ALIGN 64
#define CX__HEAP_PAD 3    /* nodes before heap[0]: see "Heap layout" */
#define CX__FIRST_CAP 256 /* first allocated capacity */
/* Heap indices and calendar node indices stay below the pos[] tags. */
#define CX__MAX_CAP (1u << 29)
#define CX__CAL_MASK (CX__CAL_BUCKETS - 1)
#define CX__PREFETCH_MIN 4096 /* nodes (96 KB): smaller heaps sift cached */
#define CX__WARM_MAX 512      /* nodes warmed before a fire (cx__warm_slots) */
#define CX__FIRE_AHEAD 8      /* entries fetched ahead while firing the run */
_Static_assert(CX__CAL_WORDS == 64, "cal_summary has one bit per word");

uint64_t cx_clock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * CX_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t cx__default_clock(void *ctx) {
  (void)ctx;
  return cx_clock_now();
}

/* Points the arrays at the inline storage (a plain heap, no wheel), with no
 * slot handed out. */
static void cx__use_inline(cx_timers *t) {
  t->heap = t->inline_heap;
  t->slots = t->inline_slots;
  t->pos = t->inline_pos;
  t->hcount = 0;
  t->far = NULL;
  t->fcount = 0;
  t->run = t->scratch = NULL;
  t->run_head = t->run_end = 0;
  t->cnode = NULL;
  t->cprev = t->cbucket = t->ctail = t->cfill = NULL;
  t->nchunks = t->chunks_seen = 0;
  t->free_chunk = CX__NO_SLOT;
  t->cal_summary = 0;
  memset(t->cal_bits, 0, sizeof t->cal_bits);
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
  t->cursor = 0;
  t->tick_shift = CX__TICK_SHIFT;
  t->clock = clock ? clock : cx__default_clock;
  t->clock_ctx = clock ? clock_ctx : NULL;
  t->lock = NULL;
  t->now = t->clock(t->clock_ctx);
  return CX_OK;
}

int cx_timers_set_lock(cx_timers *t, pthread_mutex_t *lock) {
  if (t == NULL) return CX_EINVAL;
  t->lock = lock;
  return CX_OK;
}

/* The optional lock (timer.h, Thread-safety): one predictable branch when
 * the driver is single-threaded. */
static inline void cx__lock(const cx_timers *t) {
  if (t->lock) pthread_mutex_lock(t->lock);
}
static inline void cx__unlock(const cx_timers *t) {
  if (t->lock) pthread_mutex_unlock(t->lock);
}

uint64_t cx_timers_now(cx_timers *t) {
  if (t == NULL) return cx_clock_now();
  cx__lock(t);
  uint64_t now = t->now = t->clock(t->clock_ctx);
  cx__unlock(t);
  return now;
}

void cx_timer_entry_init(cx_timer_entry *e) {
  if (e == NULL) return;
  e->driver = NULL;
  e->home = NULL;
  e->waker = CX_WAKER_EMPTY;
  e->slot = CX__NO_SLOT;
  e->fired = false;
  e->locked = false;
  e->user = 0;
}

/* ---- the heaps ---------------------------------------------------------- */

/* Two heaps share this code: the near one (t->heap, untagged positions) and
 * the far one (t->far, positions tagged CX__IN_FAR). */
typedef struct cx__heap_ref {
  cx__timer_node *node;
  size_t *count;
  uint32_t tag;
} cx__heap_ref;

static inline cx__heap_ref cx__near(cx_timers *t) {
  cx__heap_ref h = {t->heap, &t->hcount, 0};
  return h;
}
static inline cx__heap_ref cx__far(cx_timers *t) {
  cx__heap_ref h = {t->far, &t->fcount, CX__IN_FAR};
  return h;
}

/* Branch free: W4-like loads have many equal deadlines, so which field
 * decides is unpredictable. */
static inline bool cx__before(cx__timer_node a, cx__timer_node b) {
  return (a.deadline < b.deadline) |
         ((a.deadline == b.deadline) & (a.seq < b.seq));
}

static inline void cx__place(cx_timers *t, cx__heap_ref h, size_t i,
                             cx__timer_node n) {
  h.node[i] = n;
  t->pos[n.slot] = h.tag | (uint32_t)i;
}

static void cx__sift_up(cx_timers *t, cx__heap_ref h, size_t i,
                        cx__timer_node n) {
  while (i > 0) {
    size_t p = (i - 1) / 4;
    if (!cx__before(n, h.node[p])) break;
    cx__place(t, h, i, h.node[p]);
    i = p;
  }
  cx__place(t, h, i, n);
}

static void cx__sift_down(cx_timers *t, cx__heap_ref h, size_t i,
                          cx__timer_node n) {
  size_t count = *h.count;
  for (;;) {
    size_t c = 4 * i + 1;
    if (c >= count) break;
    /* A heap larger than the caches (the far heap can be) makes a deep
     * sift a chain of cache misses, each level's loads depending on the
     * previous level's choice. The grandchildren of i are 16 consecutive
     * nodes (384 bytes): fetch them all now, while this level's four are
     * compared. A small heap (the near one, usually) is in the cache. */
    size_t g = 16 * i + 5;
    if (count >= CX__PREFETCH_MIN && g < count) {
      const char *p = (const char *)&h.node[g];
      for (int k = 0; k < 6; k++) __builtin_prefetch(p + 64 * k);
    }
    size_t end = c + 4 < count ? c + 4 : count;
    size_t m = c;
    for (size_t k = c + 1; k < end; k++)
      if (cx__before(h.node[k], h.node[m])) m = k;
    if (!cx__before(h.node[m], n)) break;
    cx__place(t, h, i, h.node[m]);
    i = m;
  }
  cx__place(t, h, i, n);
}

static void cx__heap_push(cx_timers *t, cx__heap_ref h, cx__timer_node n) {
  cx__sift_up(t, h, (*h.count)++, n);
}

/* Takes the node at index i out of the heap. */
static void cx__heap_remove_at(cx_timers *t, cx__heap_ref h, size_t i) {
  size_t last = --*h.count;
  if (i == last) return;
  cx__timer_node n = h.node[last];
  if (i > 0 && cx__before(n, h.node[(i - 1) / 4]))
    cx__sift_up(t, h, i, n);
  else
    cx__sift_down(t, h, i, n);
}

/* ---- the calendar -------------------------------------------------------- */

/* A bucket is a list of chunks of CX__CHUNK nodes, newest last, all full
 * but the last (cfill[b] nodes), so moving a bucket reads its nodes in
 * order, and a timer leaves it by taking the last node's place. The chunks
 * come from one pool, sized when the arrays grow so that it always
 * suffices (cx__grow): registering in the calendar and moving a bucket to
 * the heap never allocate. */

static inline uint64_t cx__tick(const cx_timers *t, uint64_t deadline) {
  return deadline >> t->tick_shift;
}

static inline bool cx__cal_empty(const cx_timers *t) {
  return t->cal_summary == 0;
}

static inline void cx__cal_mark(cx_timers *t, uint32_t b) {
  t->cal_bits[b >> 6] |= UINT64_C(1) << (b & 63);
  t->cal_summary |= UINT64_C(1) << (b >> 6);
}

static inline void cx__cal_unmark(cx_timers *t, uint32_t b) {
  uint64_t w = t->cal_bits[b >> 6] &= ~(UINT64_C(1) << (b & 63));
  if (w == 0) t->cal_summary &= ~(UINT64_C(1) << (b >> 6));
}

/* The busy bucket whose tick comes first after the cursor's: buckets are
 * searched circularly from the cursor's + 1. The calendar must not be
 * empty. */
static uint32_t cx__cal_first(const cx_timers *t) {
  uint32_t start = (uint32_t)(t->cursor + 1) & CX__CAL_MASK;
  uint32_t w = start >> 6;
  uint64_t m = t->cal_bits[w] & (~UINT64_C(0) << (start & 63));
  if (m) return (w << 6) | (uint32_t)__builtin_ctzll(m);
  uint64_t later = w == 63 ? 0 : t->cal_summary & (~UINT64_C(0) << (w + 1));
  uint32_t w2 = (uint32_t)__builtin_ctzll(later ? later : t->cal_summary);
  /* Wrapped round to w itself: its bits below start are the later ticks. */
  return (w2 << 6) | (uint32_t)__builtin_ctzll(t->cal_bits[w2]);
}

static void cx__chunk_put(cx_timers *t, uint32_t c) {
  t->cprev[c] = t->free_chunk;
  t->free_chunk = c;
}

static void cx__cal_append(cx_timers *t, uint32_t b, cx__timer_node n) {
  uint32_t c = t->ctail[b];
  if (c == CX__NO_SLOT || t->cfill[b] == CX__CHUNK) {
    /* A freed chunk, else a never used one: those below chunks_seen are
     * all that was ever touched (cx__grow copies only them). Their number
     * never exceeds nchunks (cx__chunks_for). */
    uint32_t fresh = t->free_chunk;
    if (fresh != CX__NO_SLOT)
      t->free_chunk = t->cprev[fresh];
    else
      fresh = t->chunks_seen++;
    t->cprev[fresh] = c;
    t->cbucket[fresh] = b;
    if (c == CX__NO_SLOT) cx__cal_mark(t, b);
    t->ctail[b] = c = fresh;
    t->cfill[b] = 0;
  }
  uint32_t g = c * CX__CHUNK + t->cfill[b]++;
  t->cnode[g] = n;
  t->pos[n.slot] = CX__IN_CAL | g;
}

/* Takes node g out of its bucket: the bucket's last node takes its place. */
static void cx__cal_remove(cx_timers *t, uint32_t g) {
  uint32_t b = t->cbucket[g / CX__CHUNK];
  uint32_t c = t->ctail[b];
  uint32_t last = c * CX__CHUNK + --t->cfill[b];
  if (g != last) {
    cx__timer_node n = t->cnode[last];
    t->cnode[g] = n;
    t->pos[n.slot] = CX__IN_CAL | g;
  }
  if (t->cfill[b] == 0) {
    t->ctail[b] = t->cprev[c];
    t->cfill[b] = CX__CHUNK;
    cx__chunk_put(t, c);
    if (t->ctail[b] == CX__NO_SLOT) cx__cal_unmark(t, b);
  }
}

/* ---- the run ------------------------------------------------------------ */

/* The current tick's timers, moved from their calendar bucket and sorted
 * once (cx__refill), are taken from the front of an array: a pop moves no
 * other node, and a cancel leaves a hole (CX__HOLE) that the front skips.
 * So each such timer's pos[] entry is written once, not once per level of
 * a sift, and the tick's order costs one merge sort of a small, contiguous
 * array. */

/* Sorts n nodes of a by (deadline, registration order), with b (room for n
 * nodes) as scratch. */
static void cx__sort_nodes(cx__timer_node *a, cx__timer_node *b, size_t n) {
  enum { RUN = 8 };
  for (size_t lo = 0; lo < n; lo += RUN) { /* insertion sort of small runs */
    size_t hi = lo + RUN < n ? lo + RUN : n;
    for (size_t i = lo + 1; i < hi; i++) {
      cx__timer_node x = a[i];
      size_t j = i;
      for (; j > lo && cx__before(x, a[j - 1]); j--) a[j] = a[j - 1];
      a[j] = x;
    }
  }
  cx__timer_node *src = a, *dst = b;
  for (size_t w = RUN; w < n; w *= 2) { /* bottom-up merges */
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n,
             hi = lo + 2 * w < n ? lo + 2 * w : n;
      size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi)
        dst[k++] = cx__before(src[j], src[i]) ? src[j++] : src[i++];
      while (i < mid) dst[k++] = src[i++];
      while (j < hi) dst[k++] = src[j++];
    }
    cx__timer_node *tmp = src;
    src = dst;
    dst = tmp;
  }
  if (src != a) memcpy(a, src, n * sizeof *a);
}

static inline bool cx__run_empty(const cx_timers *t) {
  return t->run_head == t->run_end;
}

/* Moves the run's front past holes (keeps run[run_head] a live node). */
static inline void cx__run_skip_holes(cx_timers *t) {
  while (t->run_head < t->run_end && t->run[t->run_head].slot == CX__HOLE)
    t->run_head++;
}

/* Takes run node i out: the front advances, any other becomes a hole. */
static void cx__run_remove(cx_timers *t, size_t i) {
  t->run[i].slot = CX__HOLE;
  if (i == t->run_head) cx__run_skip_holes(t);
}

/* Puts node n (its slot in no structure) where its tick says: the near heap
 * at or before the cursor's tick, the calendar within CX__CAL_BUCKETS ticks
 * after it, the far heap beyond. */
static void cx__place_node(cx_timers *t, cx__timer_node n) {
  uint64_t tick = cx__tick(t, n.deadline);
  if (tick <= t->cursor)
    cx__heap_push(t, cx__near(t), n);
  else if (tick - t->cursor < CX__CAL_BUCKETS)
    cx__cal_append(t, (uint32_t)tick & CX__CAL_MASK, n);
  else
    cx__heap_push(t, cx__far(t), n);
}

/* The run and the near heap are empty and the calendar is not: moves the
 * cursor to the first busy bucket's tick and that bucket's timers into the
 * run, sorted. Never allocates: each chunk is freed once read, and the run
 * and its scratch have room for every timer. */
static void cx__refill(cx_timers *t) {
  uint32_t b = cx__cal_first(t);
  t->cursor += ((b - (uint32_t)t->cursor) & CX__CAL_MASK);
  uint32_t c = t->ctail[b], fill = t->cfill[b];
  t->ctail[b] = CX__NO_SLOT;
  cx__cal_unmark(t, b);
  size_t n = 0;
  while (c != CX__NO_SLOT) {
    const cx__timer_node *chunk = &t->cnode[(size_t)c * CX__CHUNK];
    uint32_t prev = t->cprev[c];
    if (prev != CX__NO_SLOT) {
      const char *p = (const char *)&t->cnode[(size_t)prev * CX__CHUNK];
      for (int k = 0; k < 6; k++) __builtin_prefetch(p + 64 * k);
    }
    memcpy(&t->run[n], chunk, fill * sizeof *chunk);
    n += fill;
    cx__chunk_put(t, c);
    c = prev;
    fill = CX__CHUNK;
  }
  cx__sort_nodes(t->run, t->scratch, n);
  for (size_t i = 0; i < n; i++)
    t->pos[t->run[i].slot] = CX__IN_RUN | (uint32_t)i;
  t->run_head = 0;
  t->run_end = n;
}

/* The near timers (run and near heap) are gone while the calendar holds
 * some: refill. */
static inline void cx__refill_if_needed(cx_timers *t) {
  if (t->hcount == 0 && cx__run_empty(t) && !cx__cal_empty(t)) cx__refill(t);
}

/* Inserts node n (its slot registered, in no structure). */
static void cx__insert(cx_timers *t, cx__timer_node n) {
  if (t->cnode == NULL) { /* inline: a plain heap */
    cx__heap_push(t, cx__near(t), n);
    return;
  }
  /* No near timers means an empty calendar: the cursor may move anywhere.
   * Now is where it does least harm (the top: "pinned"). */
  if (t->hcount == 0 && cx__run_empty(t)) t->cursor = cx__tick(t, t->now);
  cx__place_node(t, n);
  cx__refill_if_needed(t);
}

/* Takes registered slot s out of where it is (it stays counted and its slot
 * taken); refills the near heap if that emptied it. */
static void cx__remove(cx_timers *t, uint32_t s) {
  uint32_t p = t->pos[s], i = p & ~CX__POS_TAGS;
  switch (p & CX__POS_TAGS) {
    case CX__IN_CAL:
      cx__cal_remove(t, i);
      return;
    case CX__IN_FAR:
      cx__heap_remove_at(t, cx__far(t), i);
      return;
    case CX__IN_RUN:
      cx__run_remove(t, i);
      break;
    default:
      cx__heap_remove_at(t, cx__near(t), i);
      break;
  }
  cx__refill_if_needed(t);
}

/* The earliest timer's node: the first of the run, the near heap or the far
 * heap. None registered: NULL. */
static inline const cx__timer_node *cx__first(const cx_timers *t) {
  const cx__timer_node *n = t->hcount ? &t->heap[0] : NULL;
  if (t->run_head < t->run_end &&
      (n == NULL || cx__before(t->run[t->run_head], *n)))
    n = &t->run[t->run_head];
  if (t->fcount && (n == NULL || cx__before(t->far[0], *n))) n = &t->far[0];
  return n;
}

/* ---- storage ------------------------------------------------------------ */

/* Chunks for a capacity: one per CX__CHUNK timers, plus one per bucket that
 * can be busy (its last chunk may be partly filled). */
static size_t cx__chunks_for(size_t cap) {
  return cap / CX__CHUNK + (cap < CX__CAL_BUCKETS ? cap : CX__CAL_BUCKETS);
}

/* Quadruples the capacity (from inline to CX__FIRST_CAP at first). Not
 * doubling: each growth copies what was used into fresh memory, and a first
 * touch of a page costs more than the copy (W4, 100,000 timers: 600 fewer
 * page faults, ~10 ns per timer). Pages never used are never touched, so
 * the larger reservation costs address space, not memory. */
static int cx__grow(cx_timers *t) {
  size_t cap = t->block ? t->cap * 4 : CX__FIRST_CAP;
  if (cap > CX__MAX_CAP) return CX_ENOMEM;
  size_t nchunks = cx__chunks_for(cap);
  /* Each array of nodes starts on a 64-byte boundary ("Heap layout"). */
  size_t heap_bytes =
      ((cap + CX__HEAP_PAD) * sizeof(cx__timer_node) + 63) & ~(size_t)63;
  size_t cnode_bytes = nchunks * CX__CHUNK * sizeof(cx__timer_node);
  size_t slot_bytes = cap * sizeof(cx_timer_entry *);
  size_t run_bytes = cap * sizeof(cx__timer_node);
  size_t size = 2 * heap_bytes + 2 * run_bytes + cnode_bytes + slot_bytes +
                (cap + 2 * nchunks + 2 * CX__CAL_BUCKETS) * sizeof(uint32_t);
  unsigned char *block = cx_alloc(size, CX__BLOCK_ALIGN);
  if (block == NULL) return CX_ENOMEM;
  unsigned char *p = block;
  cx__timer_node *heap = (cx__timer_node *)p + CX__HEAP_PAD;
  p += heap_bytes;
  cx__timer_node *far = (cx__timer_node *)p + CX__HEAP_PAD;
  p += heap_bytes;
  cx__timer_node *run = (cx__timer_node *)p;
  p += run_bytes;
  cx__timer_node *scratch = (cx__timer_node *)p;
  p += run_bytes;
  cx__timer_node *cnode = (cx__timer_node *)p;
  p += cnode_bytes;
  cx_timer_entry **slots = (cx_timer_entry **)p;
  p += slot_bytes;
  uint32_t *pos = (uint32_t *)p;
  uint32_t *cprev = pos + cap;
  uint32_t *cbucket = cprev + nchunks;
  uint32_t *ctail = cbucket + nchunks;
  uint32_t *cfill = ctail + CX__CAL_BUCKETS;
  size_t used = t->used_slots, seen = t->chunks_seen;
  bool from_inline = t->block == NULL;
  memcpy(slots, t->slots, used * sizeof *slots);
  memcpy(pos, t->pos, used * sizeof *pos);
  memcpy(heap, t->heap, t->hcount * sizeof *heap);
  if (t->block) {
    /* Only what was ever used is copied: untouched pages stay untouched. */
    memcpy(far, t->far, t->fcount * sizeof *far);
    memcpy(run, t->run, t->run_end * sizeof *run);
    memcpy(cnode, t->cnode, seen * CX__CHUNK * sizeof *cnode);
    memcpy(cprev, t->cprev, seen * sizeof *cprev);
    memcpy(cbucket, t->cbucket, seen * sizeof *cbucket);
    memcpy(ctail, t->ctail, CX__CAL_BUCKETS * sizeof *ctail);
    memcpy(cfill, t->cfill, CX__CAL_BUCKETS * sizeof *cfill);
    cx_free(t->block, t->block_size, CX__BLOCK_ALIGN);
  } else {
    /* From inline (a plain heap) to near heap, calendar and far heap: the
     * cursor starts at the earliest timer's tick, so it and those of the
     * same tick stay in the near heap; the others move (each keeps its
     * node, so its order among ties). */
    for (size_t b = 0; b < CX__CAL_BUCKETS; b++) ctail[b] = CX__NO_SLOT;
  }
  t->heap = heap;
  t->far = far;
  t->run = run;
  t->scratch = scratch;
  t->cnode = cnode;
  t->slots = slots;
  t->pos = pos;
  t->cprev = cprev;
  t->cbucket = cbucket;
  t->ctail = ctail;
  t->cfill = cfill;
  t->nchunks = (uint32_t)nchunks;
  t->cap = cap;
  t->block = block;
  t->block_size = size;
  if (from_inline && t->hcount > 0) {
    size_t n = t->hcount;
    t->hcount = 0;
    t->cursor = cx__tick(t, t->inline_heap[0].deadline);
    for (size_t i = 0; i < n; i++) cx__place_node(t, t->inline_heap[i]);
  }
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

/* ---- entries ------------------------------------------------------------ */

/* Unlinks a registered entry from its driver; its waker stays in e. */
static void cx__unlink(cx_timer_entry *e) {
  cx_timers *t = e->driver;
  uint32_t s = e->slot;
  t->count--;
  cx__remove(t, s);
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

/* cx_timers_register under t's lock (if any): the waker it replaces goes
 * to *old, for the caller to drop after unlocking. */
static int cx__register(cx_timers *t, cx_timer_entry *e, uint64_t deadline,
                        cx_waker *waker, cx_waker *old_out) {
  if (e->driver != t && t->count == t->cap) {
    int rc = cx__grow(t);
    if (rc != CX_OK) return rc; /* nothing changed, not even next_seq */
  }
  uint64_t seq = t->next_seq++;
  cx_waker old = CX_WAKER_EMPTY;
  if (e->driver == t) {
    /* Re-registration: the entry keeps its slot and moves to its new
     * place. */
    old = cx__take_waker(e);
    cx__remove(t, e->slot);
    cx__timer_node n = {deadline, seq, e->slot};
    cx__insert(t, n);
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
    cx__insert(t, n);
  }
  e->fired = false;
  e->home = t;
  e->locked = t->lock != NULL;
  e->waker = *waker;
  *waker = CX_WAKER_EMPTY;
  *old_out = old;
  return CX_OK;
}

int cx_timers_register(cx_timers *t, cx_timer_entry *e, uint64_t deadline,
                       cx_waker *waker) {
  if (t == NULL || e == NULL || waker == NULL) return CX_EINVAL;
  cx_waker old = CX_WAKER_EMPTY;
  cx__lock(t);
  int rc = cx__register(t, e, deadline, waker, &old);
  cx__unlock(t);
  cx_waker_drop(&old); /* last, unlocked: it may run arbitrary code */
  return rc;
}

/* Unlinks a registered e and returns its waker (the caller drops it). */
static cx_waker cx__cancel(cx_timer_entry *e) {
  cx_timers *t = e->driver;
  cx__unlink(e);
  cx_waker w = cx__take_waker(e);
  cx__release_if_empty(t);
  return w;
}

bool cx_timer_entry_cancel(cx_timer_entry *e) {
  if (e == NULL) return false;
  bool was = false;
  cx_waker w = CX_WAKER_EMPTY;
  /* `locked` and `home` are written only by registration (a poll of the
   * entry's owner), never by a fire: reading them here races with nothing.
   * An unlocked entry never looks at its driver once unregistered (the
   * driver may be gone by then). */
  if (!e->locked) {
    if (e->driver == NULL) return false;
    w = cx__cancel(e);
    was = true;
  } else {
    /* e->driver is read under the lock: a fire on another thread may be
     * unlinking e right now. Whoever unlinks e takes its waker. */
    cx_timers *home = e->home;
    pthread_mutex_lock(home->lock);
    if (e->driver != NULL) {
      w = cx__cancel(e);
      was = true;
    }
    pthread_mutex_unlock(home->lock);
  }
  cx_waker_drop(&w);
  return was;
}

size_t cx_timers_cancel_all(cx_timers *t) {
  if (t == NULL) return 0;
  size_t n = 0;
  for (;;) {
    cx__lock(t);
    if (t->count == 0) {
      cx__unlock(t);
      break;
    }
    /* The calendar's timers first, then the heaps' and the run's from
     * their last nodes: none of it sifts or refills, and the near timers
     * keep the earliest while the calendar holds any (a dropped waker may
     * look). */
    uint32_t s;
    if (!cx__cal_empty(t)) {
      uint32_t b = cx__cal_first(t); /* its last node: nothing moves */
      uint32_t g = t->ctail[b] * CX__CHUNK + t->cfill[b] - 1;
      s = (uint32_t)t->cnode[g].slot;
      cx__cal_remove(t, g);
    } else if (t->fcount > 0) {
      s = (uint32_t)t->far[--t->fcount].slot;
    } else if (t->hcount > 0) {
      s = (uint32_t)t->heap[--t->hcount].slot;
    } else { /* the run's last live node (its front is live) */
      while (t->run[t->run_end - 1].slot == CX__HOLE) t->run_end--;
      s = (uint32_t)t->run[--t->run_end].slot;
    }
    cx_timer_entry *e = t->slots[s];
    t->count--;
    cx__slot_put(t, s);
    e->driver = NULL;
    e->slot = CX__NO_SLOT;
    cx_waker w = cx__take_waker(e);
    cx__release_if_empty(t);
    cx__unlock(t);
    cx_waker_drop(&w); /* may free e's memory, or cancel/register others */
    n++;
  }
  return n;
}

uint64_t cx_timers_next_deadline(const cx_timers *t) {
  if (t == NULL) return CX_DEADLINE_NONE;
  cx__lock(t);
  const cx__timer_node *n = cx__first(t);
  uint64_t d = n ? n->deadline : CX_DEADLINE_NONE;
  cx__unlock(t);
  return d;
}

void cx_timers_compact(cx_timers *t) {
  (void)t;
}

/* Wakers taken per locked round of cx_timers_fire: fire never allocates,
 * so a locked driver wakes what is due in batches of this many. */
#define CX__FIRE_BATCH 32

/* cx_timers_fire for a locked driver: the due entries are unlinked (and
 * marked fired) under the lock, their wakers woken after unlocking, so a
 * wake that re-enters the driver (schedules a task that a worker polls at
 * once, a registration) does not deadlock, and a cancel racing with us on
 * another thread finds each entry either still registered (it drops the
 * waker) or already unlinked (we wake it), never both. */
static size_t cx__fire_locked(cx_timers *t, uint64_t now) {
  size_t fired = 0;
  for (;;) {
    cx_waker batch[CX__FIRE_BATCH];
    size_t n = 0;
    pthread_mutex_lock(t->lock);
    const cx__timer_node *first;
    while (n < CX__FIRE_BATCH && (first = cx__first(t)) != NULL &&
           first->deadline <= now) {
      cx_timer_entry *e = t->slots[first->slot];
      cx__unlink(e);
      e->fired = true;
      batch[n++] = cx__take_waker(e);
    }
    cx__release_if_empty(t);
    pthread_mutex_unlock(t->lock);
    for (size_t i = 0; i < n; i++) cx_waker_wake(&batch[i]);
    fired += n;
    if (n < CX__FIRE_BATCH) return fired;
  }
}

/* Before a batch of pops: the near timers (one tick's) and their slot-table
 * lines went cold while the executor polled and parked, and each pop would
 * miss on them one dependent load at a time. Their addresses are all known
 * now: ask for them all at once. */
/* always_inline: a function that only prefetches looks pure to gcc's IPA
 * (no side effect, nothing returned), and its calls were deleted as dead
 * code. Inlined into cx_timers_fire, the prefetches stay. */
static inline __attribute__((always_inline)) void cx__warm_slots(
    const cx_timers *t, const cx__timer_node *nodes, size_t n) {
  if (n > CX__WARM_MAX) n = CX__WARM_MAX;
  const char *h = (const char *)nodes;
  for (size_t off = 0; off < n * sizeof(cx__timer_node); off += 64)
    __builtin_prefetch(h + off);
  for (size_t i = 0; i < n; i++) {
    if (nodes[i].slot == CX__HOLE) continue;
    __builtin_prefetch(&t->pos[nodes[i].slot], 1);
    __builtin_prefetch(&t->slots[nodes[i].slot]);
  }
}

/* Starts loading the entry of the run's node `ahead` pops from now (and the
 * line after it: an entry may straddle two), if there is one. */
static inline __attribute__((always_inline)) void cx__fetch_entry_ahead(
    const cx_timers *t, size_t ahead) {
  size_t i = t->run_head + ahead;
  if (i >= t->run_end || t->run[i].slot == CX__HOLE) return;
  const char *e = (const char *)t->slots[t->run[i].slot];
  __builtin_prefetch(e, 1);
  __builtin_prefetch(e + sizeof(cx_timer_entry) - 1, 1);
}

size_t cx_timers_fire(cx_timers *t, uint64_t now) {
  if (t == NULL) return 0;
  if (t->lock) return cx__fire_locked(t, now);
  size_t fired = 0;
  if (t->hcount > 0 && t->heap[0].deadline <= now)
    cx__warm_slots(t, t->heap, t->hcount);
  if (!cx__run_empty(t) && t->run[t->run_head].deadline <= now) {
    cx__warm_slots(t, &t->run[t->run_head], t->run_end - t->run_head);
    for (size_t k = 0; k < CX__FIRE_AHEAD; k++) cx__fetch_entry_ahead(t, k);
  }
  const cx__timer_node *first;
  while ((first = cx__first(t)) != NULL && first->deadline <= now) {
    /* Each entry lives in its own task, far away in memory: a pop that
     * waited for it would wait for one cache miss per timer. The run's
     * order is known, so the entries are fetched CX__FIRE_AHEAD pops
     * ahead (their slot-table lines were warmed above). */
    cx__fetch_entry_ahead(t, CX__FIRE_AHEAD);
    cx_timer_entry *e = t->slots[first->slot];
    cx__unlink(e);
    e->fired = true;
    cx_waker w = cx__take_waker(e);
    if (t->count > 0)
      /* The next entry, wherever it is (a heap's first): start loading it
       * while this wake runs. */
      __builtin_prefetch(t->slots[cx__first(t)->slot]);
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
  s->when = ns;
  s->entry.user = 1; /* a duration until the first poll */
}

void cx_sleep_init_until(cx_sleep *s, uint64_t deadline_ns) {
  if (s == NULL) return;
  cx_timer_entry_init(&s->entry);
  s->when = deadline_ns;
}

static cx_poll cx__sleep_ready(int *result, int rc) {
  if (result) *result = rc;
  return CX_READY;
}

/* Resolves a sleep_for's deadline from `now`. */
static void cx__sleep_resolve(cx_sleep *s, uint64_t now) {
  s->when = (s->when > CX_DEADLINE_NONE - 1 - now) ? CX_DEADLINE_NONE - 1
                                                   : now + s->when;
  s->entry.user = 0;
}

/* cx_sleep_poll on a locked driver. Every look at the entry is under the
 * lock (a fire on another worker writes it); the waker is cloned before
 * locking and every waker is dropped after unlocking. The clock is read on
 * each poll: no single thread refreshes t->now here. */
static cx_poll cx__sleep_poll_locked(cx_sleep *s, cx_timers *t, cx_context *cx,
                                     int *result) {
  cx_waker nw = CX_WAKER_EMPTY, old = CX_WAKER_EMPTY;
  /* Cloned unconditionally: whether it is needed is known only under the
   * lock, and a clone there could run arbitrary code. */
  int clone_rc = cx_waker_clone(cx->waker, &nw);
  cx_poll p = CX_PENDING;
  int rc = CX_OK;
  pthread_mutex_lock(t->lock);
  cx_timer_entry *e = &s->entry;
  uint64_t now = t->now = t->clock(t->clock_ctx);
  if (e->fired) {
    p = CX_READY;
  } else {
    if (s->entry.user) cx__sleep_resolve(s, now);
    if (s->when == CX_DEADLINE_NONE) {
      /* never ready, and nothing to wake it */
    } else if (s->when <= now) {
      if (e->driver != NULL) old = cx__cancel(e);
      e->fired = true;
      p = CX_READY;
    } else if (clone_rc != CX_OK) {
      p = CX_READY;
      rc = clone_rc;
    } else if (e->driver == t) {
      /* Registered: refresh the waker only if the task changed. */
      if (!cx_waker_will_wake(&e->waker, cx->waker)) {
        old = e->waker;
        e->waker = nw;
        nw = CX_WAKER_EMPTY;
      }
    } else {
      rc = cx__register(t, e, s->when, &nw, &old);
      if (rc != CX_OK) p = CX_READY; /* nw stays ours: dropped below */
    }
  }
  pthread_mutex_unlock(t->lock);
  cx_waker_drop(&old);
  cx_waker_drop(&nw);
  if (p == CX_READY && result) *result = rc;
  return p;
}

cx_poll cx_sleep_poll(cx_sleep *s, cx_context *cx, int *result) {
  if (s == NULL || cx == NULL || cx->waker == NULL)
    return cx__sleep_ready(result, CX_EINVAL);
  cx_timers *t = cx->timers;
  if (t != NULL && t->lock != NULL)
    return cx__sleep_poll_locked(s, t, cx, result);
  if (s->entry.fired) return cx__sleep_ready(result, CX_OK);
  if (t == NULL) return cx__sleep_ready(result, CX_ENOTSUP);
  if (s->entry.user) cx__sleep_resolve(s, cx_timers_now(t));
  /* Until "no deadline": never ready, and nothing to wake it. */
  if (s->when == CX_DEADLINE_NONE) return CX_PENDING;
  if (s->when <= t->now) {
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
  rc = cx_timers_register(t, &s->entry, s->when, &w);
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
