/*
 * The vocabulary of polled futures, after Rust's core::task:
 *
 *   cx_poll        Poll<T>: CX_PENDING or CX_READY.
 *   cx_waker       Waker: a data pointer plus a vtable of clone, wake,
 *                  wake_by_ref and drop (RawWakerVTable).
 *   cx_context     Context: the waker of the task being polled, and the
 *                  executor and timer driver polling it.
 *   cx_future_vtable  the Future trait for one C type: its poll and drop
 *                  functions and its layout (state size and alignment,
 *                  output size).
 *
 * Ownership of wakers. A cx_waker value owns one reference to whatever its
 * data points at. cx_waker_clone() makes a second owner; cx_waker_wake() and
 * cx_waker_drop() give the reference up (the value is emptied); a waker that
 * is neither woken nor dropped leaks its reference. The waker inside a
 * cx_context is *borrowed*: it is valid only during the poll call; a future
 * that wants to be woken later must clone it.
 *
 * An "empty" waker (vtable == NULL) is a valid value that owns nothing: every
 * operation on it is a no-op. It plays the role of Option<Waker>::None.
 *
 * Broken vtables. A non-NULL waker vtable must have all four functions
 * (cx_waker_vtable_check). Wakers enter cexec only by being cloned or
 * stored (cx_waker_clone, cx_waker_store: every future of cexec, join
 * handles, the async channels and the timers register wakers that way), and
 * both refuse a broken vtable with CX_EINVAL, so cexec never keeps a waker
 * it could not wake or drop. cx_waker_wake / _wake_by_ref / _drop on a
 * broken waker made by hand skip the missing function (a no-op: the
 * reference it stood for is then lost, never a crash).
 *
 * Thread-safety: every function here may be called from any thread, on
 * wakers whose vtable is thread-safe (all wakers made by cexec are).
 *
 * Ordering (task wakers, and what a waker vtable of your own must provide):
 * everything a thread wrote before cx_waker_wake / cx_waker_wake_by_ref
 * happens-before the poll that the wake causes, also when the task was
 * already queued or running (the wake then still writes the task's state
 * word with release; the poll starts with an acquire of it). So a future
 * may read, without locks, what its waker published before waking it.
 *
 * NULL arguments (the same rule in every cexec header): no function crashes
 * on a NULL pointer. A function returning int returns CX_EINVAL; a poll
 * function returns CX_READY at once, polling nothing, with CX_EINVAL in its
 * int result if it has one (a NULL result pointer is simply not written); a
 * drop, detach or other release function does nothing; a void init does
 * nothing (the poll then reports CX_EINVAL); a query returns the neutral
 * value its comment names. A pointer that may be NULL on purpose (an
 * optional output) says what NULL means at the function. Exceptions are
 * inline hot-path helpers, marked "must not be NULL".
 */
#ifndef CEXEC_WAKER_H
#define CEXEC_WAKER_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cx_poll { CX_PENDING = 0, CX_READY = 1 } cx_poll;

typedef struct cx_waker cx_waker;

typedef struct cx_waker_vtable {
  /* Writes a new waker for the same target into *out. Returns CX_OK, or a
   * negative code (e.g. CX_EOVERFLOW) and leaves *out empty. */
  int (*clone)(const void *data, cx_waker *out);
  /* Schedules the target and gives up this waker's reference. */
  void (*wake)(const void *data);
  /* Schedules the target; the waker keeps its reference. */
  void (*wake_by_ref)(const void *data);
  /* Gives up this waker's reference without waking. */
  void (*drop)(const void *data);
} cx_waker_vtable;

struct cx_waker {
  const cx_waker_vtable *vtable; /* NULL: the empty waker */
  const void *data;
};

/* The empty waker, owning nothing. */
#ifdef __cplusplus
#define CX_WAKER_EMPTY (cx_waker{NULL, NULL})
#else
#define CX_WAKER_EMPTY ((cx_waker){NULL, NULL})
#endif

/* True for the empty waker; NULL counts as empty. */
static inline bool cx_waker_is_empty(const cx_waker *w) {
  return w == NULL || w->vtable == NULL;
}

/* CX_OK when vt has all four functions; CX_EINVAL otherwise (and for NULL,
 * which as a waker's vtable means "empty", valid but not a vtable). */
int cx_waker_vtable_check(const cx_waker_vtable *vt);

/* Makes *out a second owner of w's target. Borrows w. On error (w NULL or
 * out NULL, a vtable failing cx_waker_vtable_check, or a clone function
 * that wrote such a waker: CX_EINVAL; vtable refusal, e.g. CX_EOVERFLOW)
 * *out is left empty (when out is not NULL). Cloning the empty waker gives
 * the empty waker. */
int cx_waker_clone(const cx_waker *w, cx_waker *out);

/* Wakes w's target and consumes w (it is empty afterwards). NULL is a no-op. */
void cx_waker_wake(cx_waker *w);

/* Wakes w's target; w stays valid. NULL or empty is a no-op. */
void cx_waker_wake_by_ref(const cx_waker *w);

/* Drops w's reference without waking; w is empty afterwards. NULL is a no-op.
 */
void cx_waker_drop(cx_waker *w);

/* True when waking a and b would wake the same target (same vtable and
 * data): lets a future skip replacing a stored waker. Two empty wakers are
 * equal; NULL never equals anything. */
bool cx_waker_will_wake(const cx_waker *a, const cx_waker *b);

/* Replaces *slot with a clone of w unless they already wake the same target
 * (the usual "store the latest waker" step of a leaf future). Returns CX_OK
 * or the clone's error (CX_EINVAL for NULL arguments or a broken vtable,
 * even if *slot already holds it), in which case *slot is unchanged. Not
 * thread-safe with respect to *slot. */
int cx_waker_store(cx_waker *slot, const cx_waker *w);

/* A waker whose operations do nothing. Never needs dropping (dropping it is
 * allowed). Useful for polling a future by hand. */
cx_waker cx_waker_noop(void);

struct cx_executor;    /* executor/executor.h */
struct cx_timers;      /* timer/timer.h */
struct cx_driver_host; /* executor/driver.h */

/* What a poll function is given. All pointers are borrowed for the duration
 * of the poll call. */
typedef struct cx_context {
  const cx_waker *waker;        /* wake this to be polled again */
  struct cx_executor *executor; /* the executor polling, or NULL */
  struct cx_timers *timers;     /* the timer driver, or NULL (no sleeps) */
  struct cx_driver_host *host;  /* I/O driver access, or NULL (no I/O) */
} cx_context;

/* A context over a waker alone (no executor, no timers). w NULL gives a
 * context that cexec's polls refuse (CX_EINVAL). */
static inline cx_context cx_context_from_waker(const cx_waker *w) {
  cx_context cx = {w, NULL, NULL, NULL};
  return cx;
}

/*
 * The future interface: one vtable per C type of future, normally a static
 * const object.
 *
 * poll(self, cx, output) advances the future. It returns CX_PENDING after
 * arranging for cx->waker (or a clone) to be woken when progress is possible,
 * or CX_READY after writing exactly output_size bytes to `output` (which is
 * NULL when output_size is 0). A future is never polled again after CX_READY.
 *
 * drop(self), optional, releases what the state owns. It is called exactly
 * once for every state that was handed to cexec: after CX_READY, on
 * cancellation, or when the executor is destroyed; always on the executor's
 * thread (or the thread destroying it).
 *
 * drop_output(output), optional, releases an output nobody took (the task
 * was detached, or its handle dropped without joining).
 *
 * Spawning copies the initial state (state_size bytes) into the task's own
 * allocation; from then on the state never moves, so a future may keep
 * pointers into itself once it has been polled (as cx_sleep does).
 */
typedef struct cx_future_vtable {
  cx_poll (*poll)(void *self, cx_context *cx, void *output);
  void (*drop)(void *self);
  void (*drop_output)(void *output);
  size_t state_size;   /* bytes of state, may be 0 */
  size_t state_align;  /* power of two <= 64; 0 means alignof(max_align_t) */
  size_t output_size;  /* bytes of output, may be 0 */
  size_t output_align; /* power of two <= 64; 0 means alignof(max_align_t) */
  /* Optional, diagnostics only (the task dump, executor/observe.h): where
   * the future is suspended now. Returns a source line (> 0) and sets *file,
   * or 0 when unknown. Called on the executor's thread between polls; must
   * only read self. Coroutines get one from CX_CORO_DEBUG_LOCATION. */
  int (*debug_location)(const void *self, const char **file);
} cx_future_vtable;

/* A borrowed, type-erased future: what combinators hold. {NULL, NULL} is
 * "no future" (a combinator's dropped child). */
typedef struct cx_future {
  const cx_future_vtable *vtable;
  void *state;
} cx_future;

/* Polls f through its vtable. f.vtable must not be NULL (a hot-path
 * helper: check a vtable once with cx_future_vtable_check); cx and output
 * go to the poll function as they are. */
static inline cx_poll cx_future_poll(cx_future f, cx_context *cx,
                                     void *output) {
  return f.vtable->poll(f.state, cx, output);
}

/* Checks a vtable for the rules above (and sizes below 1 GiB each). Returns
 * CX_OK or CX_EINVAL (also for NULL). */
int cx_future_vtable_check(const cx_future_vtable *vt);

/*
 * Writing a future's vtable without writing its trampolines by hand.
 *
 * A future type T named NAME, written the way cexec's own futures are, has
 *   cx_poll NAME_poll(T *self, cx_context *cx, OUT *out);  (OUT: its output)
 *   cx_poll NAME_poll(T *self, cx_context *cx);             (no output)
 *   void NAME_drop(T *self);
 * The vtable wants functions of void pointers; these macros write them
 * (static, named cx__vt_poll_NAME and cx__vt_drop_NAME) and the vtable's
 * designated initializer, with the sizes and alignments taken from T and
 * OUT so that they cannot drift from the types:
 *
 *   CX_FUTURE_TRAMPOLINES(my_read, my_read, int)
 *   const cx_future_vtable my_read_vtable =
 *       CX_FUTURE_VTABLE_INIT(my_read, my_read, int);
 *
 * The _NO_OUTPUT forms are for futures without output (output_size 0).
 * drop_output is left NULL: an output that owns something needs its own
 * vtable initializer.
 */
#ifdef __cplusplus
#define CX__VT_ALIGNOF(type) alignof(type)
#else
#define CX__VT_ALIGNOF(type) _Alignof(type)
#endif

#define CX_FUTURE_TRAMPOLINES(name, type, out_type)                          \
  static cx_poll cx__vt_poll_##name(void *self, cx_context *cx, void *out) { \
    return name##_poll((type *)self, cx, (out_type *)out);                   \
  }                                                                          \
  static void cx__vt_drop_##name(void *self) {                               \
    name##_drop((type *)self);                                               \
  }

#define CX_FUTURE_TRAMPOLINES_NO_OUTPUT(name, type)                          \
  static cx_poll cx__vt_poll_##name(void *self, cx_context *cx, void *out) { \
    (void)out;                                                               \
    return name##_poll((type *)self, cx);                                    \
  }                                                                          \
  static void cx__vt_drop_##name(void *self) {                               \
    name##_drop((type *)self);                                               \
  }

#define CX_FUTURE_VTABLE_INIT(name, type, out_type)                       \
  {                                                                       \
    .poll = cx__vt_poll_##name, .drop = cx__vt_drop_##name,               \
    .drop_output = NULL, .state_size = sizeof(type),                      \
    .state_align = CX__VT_ALIGNOF(type), .output_size = sizeof(out_type), \
    .output_align = CX__VT_ALIGNOF(out_type)                              \
  }

#define CX_FUTURE_VTABLE_INIT_NO_OUTPUT(name, type)                          \
  {                                                                          \
    .poll = cx__vt_poll_##name, .drop = cx__vt_drop_##name,                  \
    .drop_output = NULL, .state_size = sizeof(type),                         \
    .state_align = CX__VT_ALIGNOF(type), .output_size = 0, .output_align = 0 \
  }

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_WAKER_H */
