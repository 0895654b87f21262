/*
 * Timers: a monotonic clock, the timer driver an executor owns, and the
 * sleep future.
 *
 * The driver (cx_timers) is an intrusive pairing heap of cx_timer_entry
 * nodes ordered by (deadline, registration order): registering is O(1) and
 * allocates nothing, the earliest deadline is always at the root, and an
 * entry can be cancelled in place. No thread is ever started for a timer:
 * the executor asks the driver for the next deadline and parks until then
 * (or until a wake arrives), then fires what is due. docs/design.md explains
 * why a heap and not a wheel.
 *
 * Thread-safety: a cx_timers and its entries belong to the thread running
 * the executor that owns them (sleep futures are polled and dropped there).
 * cx_clock_now() may be called from any thread.
 *
 * Times are nanoseconds on the driver's clock; by default CLOCK_MONOTONIC,
 * the same clock as cx_clock_now().
 */
#ifndef CEXEC_TIMER_H
#define CEXEC_TIMER_H

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
#define CX_DEADLINE_NONE UINT64_MAX

/* A registration in the driver. Lives inside the future that owns it; it
 * must not move while registered. Treat the fields as private. */
typedef struct cx_timer_entry {
  uint64_t deadline;
  uint64_t seq; /* registration order: FIFO among equal deadlines */
  struct cx_timer_entry *child, *next, *prev; /* pairing-heap links */
  struct cx_timers *driver;                   /* NULL when not registered */
  cx_waker waker;
  bool fired;
} cx_timer_entry;

typedef uint64_t (*cx_clock_fn)(void *ctx);

typedef struct cx_timers {
  cx_timer_entry *root;
  size_t count;
  uint64_t next_seq;
  uint64_t now; /* cached clock reading, refreshed by cx_timers_now() */
  cx_clock_fn clock;
  void *clock_ctx;
} cx_timers;

/* Initialises an empty driver over `clock` (NULL: cx_clock_now). */
void cx_timers_init(cx_timers *t, cx_clock_fn clock, void *clock_ctx);

/* Reads the clock, caches it in t->now and returns it. */
uint64_t cx_timers_now(cx_timers *t);

/* Initialises an entry as not registered. */
void cx_timer_entry_init(cx_timer_entry *e);

/* Registers e to fire at `deadline`, taking ownership of `waker` (moved in:
 * the caller's value is emptied). If e is already registered it is first
 * cancelled (its old waker dropped). Returns CX_EINVAL for NULL arguments
 * (the waker is then left with the caller). */
int cx_timers_register(cx_timers *t, cx_timer_entry *e, uint64_t deadline,
                       cx_waker *waker);

/* Unregisters e (if registered) and drops its waker. Returns true if it was
 * registered. Safe on a fired or never-registered entry. */
bool cx_timer_entry_cancel(cx_timer_entry *e);

/* Earliest registered deadline, or CX_DEADLINE_NONE when empty. */
uint64_t cx_timers_next_deadline(const cx_timers *t);

/* Does ahead of time the restructuring the next pops would do: melds the
 * root's children (the entries registered since the last pop or compaction,
 * O(1) each) into one tree. Costs O(those entries) now, so that popping the
 * root when its deadline comes costs O(log n) instead of O(n). The executor
 * calls it before parking until a deadline; NULL or empty: no-op. */
void cx_timers_compact(cx_timers *t);

/* Fires, in (deadline, registration) order, every entry whose deadline is
 * <= now: unregisters it, sets its `fired` flag and wakes (consumes) its
 * waker. Returns how many fired. Entries registered by those wakes with a
 * deadline <= now fire in the same call. */
size_t cx_timers_fire(cx_timers *t, uint64_t now);

static inline size_t cx_timers_count(const cx_timers *t) {
  return t->count;
}

/*
 * The sleep future. Output: an int, CX_OK when the deadline has passed, or
 * CX_ENOTSUP when polled without a timer driver (cx->timers == NULL), or the
 * waker's clone error. Dropping it before it fires cancels its timer.
 *
 * Embed a cx_sleep in your own future's state and call cx_sleep_poll /
 * cx_sleep_drop, or spawn it directly with cx_sleep_vtable.
 */
typedef struct cx_sleep {
  cx_timer_entry entry;
  uint64_t deadline; /* CX_DEADLINE_NONE until resolved (sleep_for) */
  uint64_t duration;
} cx_sleep;

/* Sleep `ns` nanoseconds counted from the first poll. */
void cx_sleep_init_for(cx_sleep *s, uint64_t ns);
/* Sleep until the driver's clock reads at least `deadline_ns`. */
void cx_sleep_init_until(cx_sleep *s, uint64_t deadline_ns);

/* Polls: CX_READY with *result set, or CX_PENDING with the current task's
 * waker registered. `result` may be NULL. */
cx_poll cx_sleep_poll(cx_sleep *s, cx_context *cx, int *result);

/* Cancels the timer if registered. Idempotent. */
void cx_sleep_drop(cx_sleep *s);

/* The deadline (CX_DEADLINE_NONE before the first poll of a sleep_for). */
static inline uint64_t cx_sleep_deadline(const cx_sleep *s) {
  return s->deadline;
}

/* cx_sleep as a spawnable future: state cx_sleep, output int. */
extern const cx_future_vtable cx_sleep_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_TIMER_H */
