/*
 * A small lock and a condition to wait on under it (private to cexec): what
 * the async channel guards its short critical sections with.
 *
 * Why not pthread_mutex_t: the channel's critical sections are a few dozen
 * instructions and almost never contended (W3 takes three per message on
 * one thread), and glibc's lock + unlock cost ~55 instructions through two
 * calls that check the mutex type. Here the uncontended path is one
 * compare-exchange to take the lock and one exchange to release it, inline.
 *
 * The lock (Linux): a futex word, 0 free, 1 held, 2 held and someone may
 * sleep on it. acquire: CAS 0 -> 1; on failure spin briefly, then swap in 2
 * and sleep on the futex while the swap does not return 0. release: swap in
 * 0; only if the old value was 2 wake one sleeper (the woken thread swaps
 * in 2 again, so a second sleeper is never forgotten). Not fair, not
 * recursive, no owner checks: an internal tool, used by code that never
 * blocks or calls out while holding it.
 *
 * The condition (Linux): a sequence number. cx__cond_wait reads it with the
 * lock held, releases the lock, and sleeps on the futex only while the
 * number is unchanged; cx__cond_signal / _broadcast bump it with the lock
 * held, then wake. A signal between the read and the sleep changes the
 * number, so the sleep returns at once: no wakeup is lost. Wakeups may be
 * spurious, as with pthread_cond_wait: callers re-check their predicate.
 *
 * Elsewhere (no futex), or with CX__LOCK_PTHREAD defined (to test this
 * path on Linux), both are a pthread mutex and condition variable.
 *
 * Embedded in its owner; cx__lock_init / cx__cond_init return false when
 * they fail (only the pthread path can), and need a matching _destroy.
 * Arguments are never NULL (internal helpers on hot paths).
 */
#ifndef CEXEC_EXECUTOR_INTERNAL_LOCK_H
#define CEXEC_EXECUTOR_INTERNAL_LOCK_H

#include <stdbool.h>

#if defined(__linux__) && !defined(CX__LOCK_PTHREAD)
#define CX__LOCK_FUTEX 1
#endif

#if CX__LOCK_FUTEX

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h> /* syscall(): includers define _DEFAULT_SOURCE */

typedef struct cx__lock {
  _Atomic uint32_t state; /* 0 free, 1 held, 2 held with possible sleepers */
} cx__lock;

typedef struct cx__cond {
  _Atomic uint32_t seq; /* bumped by every signal and broadcast */
} cx__cond;

static inline bool cx__lock_init(cx__lock *l) {
  atomic_init(&l->state, 0);
  return true;
}

static inline void cx__lock_destroy(cx__lock *l) {
  (void)l;
}

static inline void cx__lock_futex(_Atomic uint32_t *word, int op,
                                  uint32_t val) {
  /* EINTR, EAGAIN (the word changed) and spurious wakes all just return:
   * every caller loops on the word. */
  syscall(SYS_futex, (uint32_t *)word, op, val, NULL, NULL, 0);
}

/* Out of line, so the inline fast path stays a CAS and a branch ("unused":
 * a file may include this header and never lock). */
static __attribute__((noinline, unused)) void cx__lock_acquire_slow(
    cx__lock *l) {
  /* Spin a little first: the holder's critical section is short, and
   * sleeping costs two system calls. */
  for (int i = 0; i < 100; i++) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    uint32_t expected = 0;
    /* relaxed load: only a hint for when to try the CAS below. */
    if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
        /* acquire: pairs with cx__lock_release's release exchange, so the
         * previous holder's writes are visible to us. */
        atomic_compare_exchange_weak_explicit(&l->state, &expected, 1,
                                              memory_order_acquire,
                                              memory_order_relaxed))
      return;
  }
  /* acquire: as above. Swapping in 2 (not 1) makes the release that
   * follows wake a sleeper, since we cannot know whether others sleep. */
  while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
    cx__lock_futex(&l->state, FUTEX_WAIT_PRIVATE, 2);
}

static inline void cx__lock_acquire(cx__lock *l) {
  uint32_t expected = 0;
  /* acquire: pairs with cx__lock_release's release exchange (the previous
   * holder's writes happen-before our critical section). */
  if (atomic_compare_exchange_strong_explicit(
          &l->state, &expected, 1, memory_order_acquire, memory_order_relaxed))
    return;
  cx__lock_acquire_slow(l);
}

static inline void cx__lock_release(cx__lock *l) {
  /* release: publishes our critical section to the next acquirer (its
   * acquire CAS or exchange). The old value says whether anyone sleeps. */
  if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
    cx__lock_futex(&l->state, FUTEX_WAKE_PRIVATE, 1);
}

static inline bool cx__cond_init(cx__cond *c) {
  atomic_init(&c->seq, 0);
  return true;
}

static inline void cx__cond_destroy(cx__cond *c) {
  (void)c;
}

/* Called with l held; returns with l held, after a signal or spuriously. */
static inline void cx__cond_wait(cx__cond *c, cx__lock *l) {
  /* relaxed: seq only changes with l held, which we hold; the lock orders
   * everything else. */
  uint32_t seen = atomic_load_explicit(&c->seq, memory_order_relaxed);
  cx__lock_release(l);
  cx__lock_futex(&c->seq, FUTEX_WAIT_PRIVATE, seen);
  cx__lock_acquire(l);
}

/* Called with the lock held. Wakes one waiter (or, spuriously, more). */
static inline void cx__cond_signal(cx__cond *c) {
  /* relaxed: the bump is made under the lock, which orders the data; the
   * futex compares the word itself, so a waiter about to sleep sees it. */
  atomic_fetch_add_explicit(&c->seq, 1, memory_order_relaxed);
  cx__lock_futex(&c->seq, FUTEX_WAKE_PRIVATE, 1);
}

/* Called with the lock held. Wakes every waiter. */
static inline void cx__cond_broadcast(cx__cond *c) {
  /* relaxed: as in cx__cond_signal. */
  atomic_fetch_add_explicit(&c->seq, 1, memory_order_relaxed);
  cx__lock_futex(&c->seq, FUTEX_WAKE_PRIVATE, INT32_MAX);
}

#else /* a pthread mutex and condition variable */

#include <pthread.h>

typedef struct cx__lock {
  pthread_mutex_t mu;
} cx__lock;

typedef struct cx__cond {
  pthread_cond_t cv;
} cx__cond;

static inline bool cx__lock_init(cx__lock *l) {
  return pthread_mutex_init(&l->mu, NULL) == 0;
}

static inline void cx__lock_destroy(cx__lock *l) {
  pthread_mutex_destroy(&l->mu);
}

static inline void cx__lock_acquire(cx__lock *l) {
  pthread_mutex_lock(&l->mu);
}

static inline void cx__lock_release(cx__lock *l) {
  pthread_mutex_unlock(&l->mu);
}

static inline bool cx__cond_init(cx__cond *c) {
  return pthread_cond_init(&c->cv, NULL) == 0;
}

static inline void cx__cond_destroy(cx__cond *c) {
  pthread_cond_destroy(&c->cv);
}

static inline void cx__cond_wait(cx__cond *c, cx__lock *l) {
  pthread_cond_wait(&c->cv, &l->mu);
}

static inline void cx__cond_signal(cx__cond *c) {
  pthread_cond_signal(&c->cv);
}

static inline void cx__cond_broadcast(cx__cond *c) {
  pthread_cond_broadcast(&c->cv);
}

#endif

#endif /* CEXEC_EXECUTOR_INTERNAL_LOCK_H */
