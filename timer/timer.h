/*
 * Timers: a monotonic clock, the timer driver an executor owns, and the
 * sleep future.
 *
 * The driver (cx_timers) keeps (deadline, registration order, slot) nodes
 * in arrays: the timers of the current tick (262 us) in a sorted run (and a
 * small 4-ary heap for those registered for it later), the later ones of
 * the next 1.07 s in a calendar of one-tick buckets that feeds the run a
 * tick at a time, any later ones in a second heap (timer/timer.c explains
 * the design). A slot table maps each registration to its entry
 * (cx_timer_entry, which lives in the future that owns it) and to its
 * node's place, so an entry can be cancelled in place (O(1) in the run and
 * the calendar, O(log n) in a heap). The earliest deadline is always known
 * in O(1). Deadlines are exact (the tick only decides where a timer waits);
 * equal deadlines fire in registration order. No thread is ever started
 * for a timer: the executor asks the driver for the next deadline and parks
 * until then (or until a wake arrives), then fires what is due.
 * docs/design.md explains the choice.
 *
 * Memory. The first CX__TIMERS_INLINE (64) registrations live inside
 * cx_timers (36 bytes each, a plain heap), so an executor with a few dozen
 * sleeping tasks never allocates for its timers; beyond that the arrays are
 * allocated with cx_alloc (growing fourfold; 36 bytes touched per timer), so
 * cx_timers_register can fail with CX_ENOMEM (and cx_sleep_poll then
 * completes with CX_ENOMEM). The storage is released whenever the driver
 * becomes empty (every timer fired or cancelled, or cx_timers_cancel_all):
 * an empty driver holds no memory and needs no destroy function. A driver
 * points into itself: it must not be moved after cx_timers_init.
 *
 * NULL arguments, one rule for the whole header: no function crashes on a
 * NULL pointer. A function that returns an error code returns CX_EINVAL (and
 * changes nothing); every other function treats NULL as an empty object: it
 * does nothing and returns what an empty driver or an unregistered entry
 * would (0, false, CX_DEADLINE_NONE), as each function says.
 *
 * Thread-safety: by default a cx_timers and its entries belong to the
 * thread running the executor that owns them (sleep futures are polled and
 * dropped there), and nothing is locked. A driver shared by several threads
 * (the multi-threaded runtime's) gets a mutex with cx_timers_set_lock():
 * then cx_timers_register, cx_timer_entry_cancel, cx_timers_fire,
 * cx_timers_next_deadline, cx_timers_now, cx_timers_cancel_all and
 * cx_sleep_poll / cx_sleep_drop take it, and never hold it while waking or
 * dropping a waker (that may run code which re-enters the driver). Each
 * entry remembers the driver it was last registered in and whether it is
 * locked (entry->home, entry->locked, kept after it fires; a locked
 * driver must outlive its entries), so a sleep dropped or polled on another
 * thread than the one that registered it finds and takes the same lock; its
 * waker is then
 * either taken by cx_timers_fire (which wakes it) or dropped by the cancel,
 * exactly once. An entry of a locked driver must not move to another
 * driver. cx_timers_count() reads without the lock (a snapshot).
 * The single-threaded path pays one predictable branch per call.
 * cx_clock_now() may be called from any thread.
 *
 * Times are nanoseconds on the driver's clock; by default CLOCK_MONOTONIC,
 * the same clock as cx_clock_now().
 */
#ifndef CEXEC_TIMER_H
#define CEXEC_TIMER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t cx_clock_now(void);

#define CX_NSEC_PER_USEC UINT64_C(1000)
#define CX_NSEC_PER_MSEC UINT64_C(1000000)
#define CX_NSEC_PER_SEC UINT64_C(1000000000)
/* "No deadline": a driver with no timer reports it, and a sleep until it
 * never completes. */
#define CX_DEADLINE_NONE UINT64_MAX

/* A registration in the driver. Lives inside the future that owns it; it
 * must not move while registered. Treat the fields as private. */
typedef struct cx_timer_entry {
  struct cx_timers *driver; /* NULL when not registered */
  struct cx_timers *home;   /* last driver registered in (its lock); NULL */
  cx_waker waker;
  uint32_t slot; /* index in driver's slot table while registered */
  bool fired;
  bool locked; /* home has a lock: cancel must take it */
  /* The owner's byte, in what would be padding: cx_timer_entry_init zeroes
   * it, the driver never touches it (cx_sleep: 1 while `when` is still a
   * duration). The deadline and registration order live in the driver's
   * nodes only: an entry is 40 bytes, so a task that sleeps stays small. */
  uint8_t user;
} cx_timer_entry;

typedef uint64_t (*cx_clock_fn)(void *ctx);

/* Private: a heap or wheel node, and the inline storage of a driver. */
typedef struct cx__timer_node {
  uint64_t deadline;
  uint64_t seq;  /* the entry's registration order (ties) */
  uint64_t slot; /* index in the slot table */
} cx__timer_node;
#define CX__TIMERS_INLINE 64
/* The calendar: 2^CX__CAL_BITS buckets of one tick each. */
#define CX__CAL_BITS 12
#define CX__CAL_BUCKETS (1u << CX__CAL_BITS)
#define CX__CAL_WORDS (CX__CAL_BUCKETS / 64)
/* Default tick: 2^18 ns (262 us), so the calendar spans 1.07 s. Ticks only
 * decide where a timer waits, never when it fires. */
#define CX__TICK_SHIFT 18
#define CX__CHUNK 16 /* nodes per chunk of a calendar bucket */
/* pos[] tags: a far-heap index, a calendar node (index in cnode), a run
 * index; none: a near-heap index. */
#define CX__IN_FAR 0x40000000u
#define CX__IN_CAL 0x80000000u
#define CX__IN_RUN 0xc0000000u
#define CX__POS_TAGS 0xc0000000u
/* A cancelled node left in the run (its slot field). */
#define CX__HOLE UINT64_MAX

typedef struct cx_timers {
  cx__timer_node *heap;   /* the near heap, hcount nodes: heap[0] earliest */
  cx_timer_entry **slots; /* slot -> its entry (NULL when free) */
  uint32_t *pos; /* slot -> where its node is (tagged, see above); for a
                    free slot, the next free one */
  size_t count;  /* registered: run + near heap + calendar + far heap */
  size_t hcount; /* in the near heap */
  /* With an allocated block only: the current tick's timers, sorted, taken
   * from the front: run[run_head, run_end), holes (CX__HOLE) skipped;
   * run[run_head] is never a hole. */
  cx__timer_node *run;
  cx__timer_node *scratch; /* the run's merge buffer */
  size_t run_head, run_end;
  /* With an allocated block only (NULL / 0 inline, a plain heap): */
  cx__timer_node *far; /* the far heap, fcount nodes */
  size_t fcount;
  cx__timer_node *cnode; /* the calendar's pool: nchunks chunks */
  uint32_t *cprev;       /* chunk -> previous chunk of its bucket, or the
                            next free chunk */
  uint32_t *cbucket;     /* chunk -> its bucket */
  uint32_t *ctail;       /* bucket -> its last chunk (UINT32_MAX: empty) */
  uint32_t *cfill;       /* bucket -> nodes in its last chunk */
  uint32_t nchunks;
  uint32_t chunks_seen; /* chunks [0, chunks_seen) were ever handed out */
  uint32_t free_chunk;  /* head of the free-chunk list */
  uint64_t cursor;      /* a tick: near heap <= cursor < calendar < cursor +
                           CX__CAL_BUCKETS (timer.c) */
  uint64_t cal_summary; /* bit w: cal_bits[w] != 0 */
  uint64_t cal_bits[CX__CAL_WORDS]; /* bit b: bucket b busy */
  size_t cap;                       /* of the heaps and slots */
  uint32_t free_slot;  /* head of the free-slot list (UINT32_MAX: none) */
  uint32_t used_slots; /* slots [0, used_slots) were handed out */
  void *block;         /* the allocated arrays, or NULL (inline) */
  size_t block_size;
  uint64_t next_seq;
  uint64_t now; /* cached clock reading, refreshed by cx_timers_now() */
  /* log2 of the tick in ns (CX__TICK_SHIFT). Private; tests and fuzzing
   * lower it, while the driver is empty, to exercise the calendar with
   * small deadlines. */
  unsigned tick_shift;
  cx_clock_fn clock;
  void *clock_ctx;
  pthread_mutex_t *lock; /* NULL: single-threaded, no locking */
  cx__timer_node inline_heap[CX__TIMERS_INLINE];
  cx_timer_entry *inline_slots[CX__TIMERS_INLINE];
  uint32_t inline_pos[CX__TIMERS_INLINE];
} cx_timers;

/* Initialises an empty driver over `clock` (NULL: cx_clock_now) and reads
 * the clock once. Allocates nothing. Returns CX_OK, or CX_EINVAL if t is
 * NULL. */
int cx_timers_init(cx_timers *t, cx_clock_fn clock, void *clock_ctx);

/* Makes the driver take `lock` (NULL: none again) around every operation,
 * so that several threads may share it (see Thread-safety above). Set it
 * while no other thread uses the driver (right after init). The mutex
 * stays the caller's: it must outlive the driver's use. Returns CX_OK, or
 * CX_EINVAL if t is NULL. */
int cx_timers_set_lock(cx_timers *t, pthread_mutex_t *lock);

/* Reads the clock, caches it in t->now and returns it. NULL: returns
 * cx_clock_now() (the clock of a driver initialised with no clock). */
uint64_t cx_timers_now(cx_timers *t);

/* Initialises an entry as not registered. NULL: no-op. */
void cx_timer_entry_init(cx_timer_entry *e);

/* Registers e to fire at `deadline`, taking ownership of `waker` (moved in:
 * the caller's value is emptied). If e is already registered in t it moves
 * to its new place in the order (its old waker dropped) without allocating;
 * if registered in another driver it is cancelled there first. Returns
 * CX_EINVAL for NULL arguments, CX_ENOMEM if the driver's arrays could not
 * grow; on error the waker is left with the caller and e is unchanged. */
int cx_timers_register(cx_timers *t, cx_timer_entry *e, uint64_t deadline,
                       cx_waker *waker);

/* Unregisters e (if registered) and drops its waker. Returns true if it was
 * registered. Safe on a fired or never-registered entry; NULL: false. */
bool cx_timer_entry_cancel(cx_timer_entry *e);

/* Unregisters every entry and drops its waker, without firing any (their
 * `fired` flag stays false); returns how many. Then the driver is empty and
 * holds no memory. For an owner that goes away (an executor's destroy):
 * dropping a waker may free the task whose state holds the entry, and may
 * cancel or register other entries; each entry is unlinked before its
 * waker is dropped, and the loop runs until the driver is empty. NULL: 0. */
size_t cx_timers_cancel_all(cx_timers *t);

/* Earliest registered deadline, or CX_DEADLINE_NONE when empty or NULL. */
uint64_t cx_timers_next_deadline(const cx_timers *t);

/* Does nothing: the array heap has no deferred work (the pairing heap it
 * replaced melded its pending children here, and the executor called it
 * before parking). Kept so that code written against it still builds. */
void cx_timers_compact(cx_timers *t);

/* Fires, in (deadline, registration) order, every entry whose deadline is
 * <= now: unregisters it, sets its `fired` flag and wakes (consumes) its
 * waker. Returns how many fired. Entries registered by those wakes with a
 * deadline <= now fire in the same call. Never allocates. NULL: 0. */
size_t cx_timers_fire(cx_timers *t, uint64_t now);

/* Registered entries. NULL: 0. */
static inline size_t cx_timers_count(const cx_timers *t) {
  return t ? t->count : 0;
}

/*
 * The sleep future. Output: an int, CX_OK when the deadline has passed, or
 * CX_ENOTSUP when polled without a timer driver (cx->timers == NULL), or
 * CX_ENOMEM when the driver could not grow, or the waker's clone error, or
 * CX_EINVAL for a NULL sleep, context or waker. Dropping it before it fires
 * cancels its timer. A sleep until CX_DEADLINE_NONE never completes (and
 * registers nothing).
 *
 * Embed a cx_sleep in your own future's state and call cx_sleep_poll /
 * cx_sleep_drop, or spawn it directly with cx_sleep_vtable.
 */
typedef struct cx_sleep {
  cx_timer_entry entry;
  /* The deadline (CX_DEADLINE_NONE: never); for a sleep_for not polled yet
   * (entry.user set), its duration. 48 bytes in all. */
  uint64_t when;
} cx_sleep;

/* Sleep `ns` nanoseconds counted from the first poll (saturating one short
 * of CX_DEADLINE_NONE, so a sleep_for always ends). NULL: no-op. */
void cx_sleep_init_for(cx_sleep *s, uint64_t ns);
/* Sleep until the driver's clock reads at least `deadline_ns`;
 * CX_DEADLINE_NONE: never. NULL: no-op. */
void cx_sleep_init_until(cx_sleep *s, uint64_t deadline_ns);

/* Polls: CX_READY with *result set, or CX_PENDING with the current task's
 * waker registered. `result` may be NULL. */
cx_poll cx_sleep_poll(cx_sleep *s, cx_context *cx, int *result);

/* Cancels the timer if registered. Idempotent. NULL: no-op. */
void cx_sleep_drop(cx_sleep *s);

/* The deadline (CX_DEADLINE_NONE before the first poll of a sleep_for).
 * NULL: CX_DEADLINE_NONE. */
static inline uint64_t cx_sleep_deadline(const cx_sleep *s) {
  return s && !s->entry.user ? s->when : CX_DEADLINE_NONE;
}

/* cx_sleep as a spawnable future: state cx_sleep, output int. */
extern const cx_future_vtable cx_sleep_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_TIMER_H */
