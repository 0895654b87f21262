/*
 * Stackless coroutines: write a future's poll function as straight-line
 * code with awaits in it, instead of a hand-made state machine.
 *
 * The technique is Duff's device, as in Protothreads and async.h: the poll
 * function's body is one `switch` on a resume point kept in the future's
 * state (a cx_coro field); every await stores its own line number there and
 * plants a `case <line>:` label, so the next poll jumps straight back to the
 * await that returned CX_PENDING. Nothing is allocated, there is no stack
 * switching, and the macros are plain C11 (they also compile as C++).
 *
 *   typedef struct my_fut {
 *     cx_coro co;        // the resume point (zero-initialise it)
 *     cx_sleep nap;      // futures being awaited live in the state...
 *     int i, rc;         // ...and so does every local used across an await
 *   } my_fut;
 *
 *   static cx_poll my_poll(void *self, cx_context *cx, void *out) {
 *     my_fut *f = self;  // re-computed at every poll: fine before BEGIN
 *     CX_CORO_BEGIN(&f->co);
 *     for (f->i = 0; f->i < 3; f->i++) {
 *       cx_sleep_init_for(&f->nap, 10 * CX_NSEC_PER_MSEC);
 *       CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
 *     }
 *     CX_RETURN(&f->co, (int *)out, f->i);
 *     CX_CORO_END(&f->co);
 *   }
 *   static void my_drop(void *self) {
 *     my_fut *f = self;
 *     cx_sleep_drop(&f->nap);   // idempotent: safe in every state
 *     cx_coro_drop(&f->co);     // drops a child of CX_AWAIT_FUTURE, if any
 *   }
 *
 * What the macros expand to (co is the cx_coro pointer, N = __LINE__):
 *
 *   CX_CORO_BEGIN(co)        switch ((co)->line) {
 *                              default: return cx__coro_trap(co, ...);
 *                              case 0:
 *   CX_AWAIT(co, e)          do { (co)->line = N;
 *                                 if (0) { case N:; }
 *                                 if ((e) == CX_PENDING) return CX_PENDING;
 *                            } while (0)
 *   CX_AWAIT_FUTURE(co, cx, f, out)
 *                            do { (co)->child = (f); (co)->line = N;
 *                                 if (0) { case N:; }
 *                                 if (cx_future_poll((co)->child, cx, out)
 *                                     == CX_PENDING) return CX_PENDING;
 *                                 cx_coro_drop(co);  // child is done
 *                            } while (0)
 *   CX_YIELD(co, cx)         do { (co)->line = N;
 *                                 cx_waker_wake_by_ref((cx)->waker);
 *                                 return CX_PENDING;
 *                                 case N:;
 *                            } while (0)
 *   CX_RETURN(co, out, v)    do { *(out) = (v); (co)->line = CX_CORO_DONE;
 *                                 return CX_READY; } while (0)
 *   CX_RETURN_VOID(co)       do { (co)->line = CX_CORO_DONE;
 *                                 return CX_READY; } while (0)
 *   CX_CORO_END(co)            (co)->line = CX_CORO_DONE; return CX_READY;
 *                            } return cx__coro_trap(co,
 * CX_CORO_MISUSE_BREAK...)
 *
 * So the first poll enters at `case 0`, runs until an await's expression
 * pends, and returns; the next poll's switch jumps to that await's label and
 * evaluates the same poll expression again. docs/coroutines.md walks through
 * a full expansion.
 *
 * THE RULES (the price of having no stack of its own):
 *   1. Locals do not survive an await or a yield. Anything whose value is
 *      needed after one lives in the state struct (f->i above, never
 *      `int i`). Locals computed afresh at the top of every poll, before
 *      CX_CORO_BEGIN (like `my_fut *f = self`), are fine. Declaring a local
 *      between BEGIN and END is allowed in C only if nothing reads it after
 *      the next await; in C++ it does not compile if an await follows in the
 *      same block (a jump may not cross an initialisation).
 *   2. At most one await / yield per source line (the line number is the
 *      label; two on one line fail to compile with "duplicate case value").
 *   3. No await or yield inside a `switch` statement of your own, since its
 *      labels would capture ours. Loops, ifs and blocks are fine. Use
 *      if/else chains instead.
 *   4. Do not `return` by hand between BEGIN and END, except CX_PENDING
 *      after arranging a wake (which is what the macros do). Finish with
 *      CX_RETURN / CX_RETURN_VOID or by reaching CX_CORO_END; a future with
 *      an output must write it before returning CX_READY.
 *   5. Every future awaited with CX_AWAIT lives in the state and must be
 *      dropped by the future's drop function, in whatever state it is. All
 *      cexec futures (cx_sleep, channel send/recv, join futures,
 *      combinators) have idempotent drops that are safe on a zeroed or
 *      initialised-but-never-polled value, so a drop function can simply
 *      drop every one of them (zero the state before spawning). A future
 *      awaited with CX_AWAIT_FUTURE is dropped by the macro when it
 *      completes, and by cx_coro_drop() if the coroutine is dropped while
 *      awaiting it. A completed cexec leaf future holds nothing, so
 *      re-initialising one in a loop needs no drop in between.
 *   6. Futures awaited in the state must not move once polled: the state is
 *      polled where the executor (or the enclosing future) put it.
 *   7. CX_AWAIT's expression is evaluated at every resume: it must be a poll
 *      call (or any expression returning cx_poll that registers cx->waker
 *      when it returns CX_PENDING), never something with one-shot side
 *      effects such as an initialisation. Initialise before the await.
 *
 * MISUSE THAT IS CAUGHT. Three mistakes used to make the poll return
 * CX_READY without writing the output, silently; the macros now trap them:
 *   - CX_CORO_MISUSE_LOST_RESUME_POINT: the poll resumed at a line that has
 *     no label in the coroutine's dispatch: an await or yield inside a
 *     `switch` of your own (rule 3), whose `case` captured ours. Caught by a
 *     `default:` in CX_CORO_BEGIN's switch.
 *   - CX_CORO_MISUSE_BREAK: a `break` at the top level of the body (outside
 *     any loop or switch of yours) left the dispatch switch. Caught after
 *     CX_CORO_END's closing brace, which only a break can reach.
 *   - CX_CORO_MISUSE_POLLED_AFTER_DONE: a poll after the coroutine finished
 *     (a future is never polled after CX_READY: waker/waker.h).
 * What happens: the coroutine is marked finished with the kind recorded
 * (cx_coro_misuse() returns it), the report hook CX_CORO_ON_MISUSE runs, and
 * the poll returns CX_READY with the output NOT written (the task finishes;
 * its drop function runs as usual, so nothing leaks). The default hook,
 * cx_coro_report_misuse(), prints one line to stderr naming the coroutine
 * (file:line of its CX_CORO_BEGIN / CX_CORO_END) and the mistake, then:
 *   - debug builds (NDEBUG not defined, e.g. Bazel's default fastbuild):
 *     abort(), like a failed assert(), so the bug cannot go unnoticed;
 *   - release builds (NDEBUG defined, e.g. `bazel build -c opt`): returns;
 *     the program goes on with the output unwritten, never aborts.
 * To report misuse your own way, define CX_CORO_ON_MISUSE(co, kind, file,
 * line) before the first #include of this header (or of executor/cexec.h);
 * it is an expression statement evaluated in the poll (tests/coro_test.cc
 * records the kind that way). Mistakes the macros cannot see (a hand-written
 * `return CX_READY` without output, a local read after an await) stay
 * yours.
 *
 * Thread-safety: none needed; a coroutine is polled and dropped by one
 * thread at a time, like every future.
 */
#ifndef CEXEC_CORO_H
#define CEXEC_CORO_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The resume point of a coroutine, embedded in its future's state.
 * Zero-initialised (or CX_CORO_INIT, or cx_coro_init) means "not started". */
typedef struct cx_coro {
  int line;        /* 0: not started; CX_CORO_DONE: finished; else a label */
  cx_future child; /* future awaited by CX_AWAIT_FUTURE, or {NULL, NULL} */
  int misuse;      /* a cx_coro_misuse_kind: 0 unless a misuse was trapped */
} cx_coro;

#define CX_CORO_DONE (-1)
#define CX_CORO_INIT \
  { 0, {NULL, NULL}, 0 }

/* The mistakes the macros trap (see MISUSE THAT IS CAUGHT above). */
typedef enum cx_coro_misuse_kind {
  CX_CORO_MISUSE_NONE = 0,
  CX_CORO_MISUSE_LOST_RESUME_POINT = 1, /* await inside a switch of yours */
  CX_CORO_MISUSE_BREAK = 2,             /* top-level break left the body */
  CX_CORO_MISUSE_POLLED_AFTER_DONE = 3  /* poll after CX_READY */
} cx_coro_misuse_kind;

/* A cx_future value (borrowed, type-erased) over a vtable and a state. */
static inline cx_future cx_future_of(const cx_future_vtable *vtable,
                                     void *state) {
  cx_future f;
  f.vtable = vtable;
  f.state = state;
  return f;
}

/* Resets a resume point to "not started" with no child and no misuse. */
static inline void cx_coro_init(cx_coro *co) {
  co->line = 0;
  co->child = cx_future_of(NULL, NULL);
  co->misuse = CX_CORO_MISUSE_NONE;
}

/* The misuse trapped on this coroutine (the last one), or
 * CX_CORO_MISUSE_NONE. */
static inline cx_coro_misuse_kind cx_coro_misuse(const cx_coro *co) {
  return (cx_coro_misuse_kind)co->misuse;
}

/* A short English description of a misuse kind (never NULL). */
static inline const char *cx_coro_misuse_str(int kind) {
  switch (kind) {
    case CX_CORO_MISUSE_NONE:
      return "no misuse";
    case CX_CORO_MISUSE_LOST_RESUME_POINT:
      return "resumed at an await whose label is not in the coroutine's "
             "dispatch: an await or yield inside a switch of your own "
             "(coro.h rule 3)";
    case CX_CORO_MISUSE_BREAK:
      return "a top-level break left the coroutine body without CX_RETURN";
    case CX_CORO_MISUSE_POLLED_AFTER_DONE:
      return "polled after it finished (returned CX_READY)";
    default:
      return "unknown misuse";
  }
}

/* The default misuse report: one line on stderr, then abort() in debug
 * builds (NDEBUG not defined), like assert(); returns in release builds.
 * `file`/`line` locate the coroutine's CX_CORO_BEGIN or CX_CORO_END. */
static inline void cx_coro_report_misuse(const cx_coro *co, int kind,
                                         const char *file, int line) {
  (void)co;
  fprintf(stderr, "cexec: coroutine misuse in the coroutine at %s:%d: %s\n",
          file, line, cx_coro_misuse_str(kind));
#ifndef NDEBUG
  abort(); /* a programming error, reported like a failed assert() */
#endif
}

#ifndef CX_CORO_ON_MISUSE
#define CX_CORO_ON_MISUSE(co, kind, file, line) \
  cx_coro_report_misuse((co), (kind), (file), (line))
#endif

/* Where the macros send a trapped misuse: records it, marks the coroutine
 * finished (so a later poll is itself reported), reports it, and returns
 * CX_READY with the output unwritten. Private to the macros. */
static inline cx_poll cx__coro_trap(cx_coro *co, int kind, const char *file,
                                    int line) {
  co->misuse = kind;
  co->line = CX_CORO_DONE;
  CX_CORO_ON_MISUSE(co, kind, file, line);
  return CX_READY;
}

/* True once the coroutine reached CX_RETURN / CX_RETURN_VOID / CX_CORO_END. */
static inline int cx_coro_is_done(const cx_coro *co) {
  return co->line == CX_CORO_DONE;
}

/* Drops the future being awaited by CX_AWAIT_FUTURE, if any (its vtable's
 * drop runs once) and forgets it. Call it from the drop function of every
 * coroutine that uses CX_AWAIT_FUTURE. Idempotent; NULL is a no-op. Does not
 * touch futures awaited with plain CX_AWAIT: drop those yourself. */
static inline void cx_coro_drop(cx_coro *co) {
  if (co == NULL || co->child.vtable == NULL) return;
  cx_future child = co->child;
  co->child = cx_future_of(NULL, NULL);
  if (child.vtable->drop) child.vtable->drop(child.state);
}

/* Opens the coroutine body. Must be the first macro, once per poll function,
 * matched by CX_CORO_END. A resume point with no label here (an await in a
 * switch of yours, or a poll after the end) lands on `default:` and is
 * trapped. */
#define CX_CORO_BEGIN(co)                                          \
  switch ((co)->line) {                                            \
    default:                                                       \
      return cx__coro_trap((co),                                   \
                           (co)->line == CX_CORO_DONE              \
                               ? CX_CORO_MISUSE_POLLED_AFTER_DONE  \
                               : CX_CORO_MISUSE_LOST_RESUME_POINT, \
                           __FILE__, __LINE__);                    \
    case 0:

/* Awaits a poll expression: evaluates `poll_expr` (which returns cx_poll),
 * and if it is CX_PENDING returns CX_PENDING from the enclosing poll
 * function; the next poll re-evaluates the same expression. Continues with
 * the next statement once it returns CX_READY. Leaf futures (cx_sleep_poll,
 * cx_join_handle_poll, cx_achan_send_poll, ...), combinators and any poll
 * function work. The awaited future stays yours to drop (rule 5). */
#define CX_AWAIT(co, poll_expr)                       \
  do {                                                \
    (co)->line = __LINE__;                            \
    if (0) {                                          \
      case __LINE__:;                                 \
    }                                                 \
    if ((poll_expr) == CX_PENDING) return CX_PENDING; \
  } while (0)

/* Awaits a cx_future (vtable + state, e.g. cx_future_of(&vt, &f->child)):
 * `fut` is evaluated once and remembered in (co)->child; each poll calls
 * its vtable's poll with `out` (which must stay valid: normally a field of
 * the state); when it is ready the macro drops it (vtable drop) and goes on.
 * If the coroutine is dropped meanwhile, cx_coro_drop() drops it. */
#define CX_AWAIT_FUTURE(co, cx, fut, out)                       \
  do {                                                          \
    (co)->child = (fut);                                        \
    (co)->line = __LINE__;                                      \
    if (0) {                                                    \
      case __LINE__:;                                           \
    }                                                           \
    if (cx_future_poll((co)->child, (cx), (out)) == CX_PENDING) \
      return CX_PENDING;                                        \
    cx_coro_drop(co);                                           \
  } while (0)

/* Gives other tasks a turn: wakes the current task (cx->waker by reference)
 * and returns CX_PENDING once; the next poll continues after the yield. */
#define CX_YIELD(co, cx)               \
  do {                                 \
    (co)->line = __LINE__;             \
    cx_waker_wake_by_ref((cx)->waker); \
    return CX_PENDING;                 \
    case __LINE__:;                    \
  } while (0)

/* Finishes the coroutine with an output: stores `value` through `out` (a
 * typed pointer to the poll function's output, e.g. (int *)out) and returns
 * CX_READY. */
#define CX_RETURN(co, out, value) \
  do {                            \
    *(out) = (value);             \
    (co)->line = CX_CORO_DONE;    \
    return CX_READY;              \
  } while (0)

/* Finishes a coroutine whose output was already written (or that has
 * none): returns CX_READY. */
#define CX_RETURN_VOID(co)     \
  do {                         \
    (co)->line = CX_CORO_DONE; \
    return CX_READY;           \
  } while (0)

/* Closes the body opened by CX_CORO_BEGIN. Reaching it finishes the
 * coroutine (CX_READY, like CX_RETURN_VOID). The code after the closing
 * brace is reached only by a `break` out of the dispatch switch: trapped. */
#define CX_CORO_END(co)      \
  (co)->line = CX_CORO_DONE; \
  return CX_READY;           \
  }                          \
  return cx__coro_trap((co), CX_CORO_MISUSE_BREAK, __FILE__, __LINE__)

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_CORO_H */
