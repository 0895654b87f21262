/*
 * The epoll driver and fd registrations (docs/io.md has the full story).
 *
 *   driver                          registrations (cx_io_source, refcounted)
 *   +----------------------+        +------------------------------------+
 *   | epfd  evfd  state    |  slab  | readiness: | tick (32) | bits (16) ||
 *   | mu -> slots[idx] ----+------->| reader waker, writer waker (spin)  |
 *   |       {src, gen}     |        | fd, slot, refs                     |
 *   +----------------------+        +------------------------------------+
 *
 * epoll_data of a registration is (gen << 32 | idx): an event names a slab
 * slot and the generation it was registered under. Deregistration empties
 * the slot and bumps its generation under `mu`, so an event collected
 * before (or for a reused fd number) finds a different generation and is
 * ignored. Dispatch looks the slot up and updates the source while holding
 * `mu`, which is what keeps the source alive during that step; the wakers
 * are taken out under the source's spin lock and woken after `mu` is
 * released (a wake may run arbitrary code, even deregister).
 *
 * Park/unpark: `state` is IDLE, PARKED or NOTIFIED. park moves IDLE ->
 * PARKED before blocking and back to IDLE after; unpark exchanges in
 * NOTIFIED and writes the eventfd only if it replaced PARKED. So unparks of
 * a busy executor cost one atomic exchange and no syscall, and an unpark
 * before park makes the next park return at once.
 */
#define _GNU_SOURCE /* epoll_pwait2, O_NONBLOCK helpers */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/internal/io.h"
#include "io/io.h"
#include "waker/alloc.h"
#include "waker/error.h"

/* ---- layout ------------------------------------------------------------- */

#define CX__IO_EVENTS 128            /* events dispatched per park */
#define CX__IO_NO_SLOT UINT32_MAX    /* source not (or no longer) in the slab */
#define CX__IO_WAKE_TOKEN UINT64_MAX /* epoll_data of the unpark eventfd */

/* The readiness word: bits in the low 16 bits, the tick in the high 32. */
#define CX__IO_BITS_MASK 0xffffull
#define CX__IO_TICK_SHIFT 32

enum { CX__IDLE = 0, CX__PARKED = 1, CX__NOTIFIED = 2 };

typedef struct cx__io_slot {
  cx_io_source *src; /* NULL: free */
  uint32_t gen;      /* bumped on every release of the slot */
  uint32_t next_free;
} cx__io_slot;

typedef struct cx__io_driver {
  cx_driver base; /* first: a cx_driver * is a cx__io_driver * */
  int epfd;
  int evfd;
  _Atomic uint32_t state;  /* IDLE / PARKED / NOTIFIED */
  _Atomic uint32_t refs;   /* 1 for the owner + 1 per live source */
  _Atomic int have_pwait2; /* cleared if the kernel says ENOSYS */
  pthread_mutex_t mu;      /* guards the slab and `destroyed` */
  cx__io_slot *slots;
  uint32_t cap;
  uint32_t free_head; /* CX__IO_NO_SLOT: none free */
  bool destroyed;
  /* Used only by the (one) parking thread. */
  struct epoll_event events[CX__IO_EVENTS];
  cx_waker to_wake[2 * CX__IO_EVENTS];
} cx__io_driver;

struct cx_io_source {
  /* bits 0..15: CX_IO_* readiness; bits 32..63: the tick. */
  _Atomic uint64_t readiness;
  cx__io_driver *drv;
  int fd;
  uint32_t slot;         /* guarded by drv->mu */
  _Atomic uint32_t refs; /* registration + futures + retains */
  _Atomic uint32_t lock; /* spin lock over reader/writer */
  bool is_socket;
  cx_waker reader, writer; /* guarded by lock */
};

static const cx_driver_vtable cx__io_driver_vtable;

/* ---- small helpers ------------------------------------------------------ */

static void cx__io_driver_release(cx__io_driver *drv);

static void cx__src_lock(cx_io_source *s) {
  unsigned spins = 0;
  for (;;) {
    /* acquire: pairs with the release in cx__src_unlock, so the waker slots
     * written by the previous holder are visible to us. */
    if (!atomic_exchange_explicit(&s->lock, 1, memory_order_acquire)) return;
    /* relaxed: only a hint to retry the exchange above. */
    while (atomic_load_explicit(&s->lock, memory_order_relaxed)) {
      /* The sections are a few stores long; a holder that got preempted
       * (2 cores, many threads) must get the CPU back. */
      if (++spins > 64) sched_yield();
    }
  }
}

static void cx__src_unlock(cx_io_source *s) {
  /* release: pairs with the acquire exchange in cx__src_lock. */
  atomic_store_explicit(&s->lock, 0, memory_order_release);
}

/* What epoll reported, as readiness bits. */
static uint32_t cx__bits_from_epoll(uint32_t ev) {
  uint32_t b = 0;
  if (ev & EPOLLIN) b |= CX_IO_READABLE;
  if (ev & EPOLLOUT) b |= CX_IO_WRITABLE;
  if (ev & (EPOLLRDHUP | EPOLLHUP)) b |= CX_IO_READ_CLOSED;
  if (ev & EPOLLHUP) b |= CX_IO_WRITE_CLOSED;
  if (ev & EPOLLERR) b |= CX_IO_ERROR;
  return b;
}

/* The bits that make a waiter with this interest ready. */
static uint32_t cx__interest_mask(unsigned interest) {
  uint32_t m = CX_IO_SHUTDOWN;
  if (interest & CX_IO_READ)
    m |= CX_IO_READABLE | CX_IO_READ_CLOSED | CX_IO_ERROR;
  if (interest & CX_IO_WRITE)
    m |= CX_IO_WRITABLE | CX_IO_WRITE_CLOSED | CX_IO_ERROR;
  return m;
}

static const uint32_t cx__read_wake_bits =
    CX_IO_READABLE | CX_IO_READ_CLOSED | CX_IO_ERROR | CX_IO_SHUTDOWN;
static const uint32_t cx__write_wake_bits =
    CX_IO_WRITABLE | CX_IO_WRITE_CLOSED | CX_IO_ERROR | CX_IO_SHUTDOWN;

/* Sets `bits` and advances the tick. Returns the new word. */
static uint64_t cx__readiness_set(cx_io_source *s, uint32_t bits) {
  /* relaxed: the first guess for the CAS loop. */
  uint64_t cur = atomic_load_explicit(&s->readiness, memory_order_relaxed);
  for (;;) {
    uint32_t tick = (uint32_t)(cur >> CX__IO_TICK_SHIFT) + 1;
    uint64_t next = ((uint64_t)tick << CX__IO_TICK_SHIFT) |
                    ((cur | bits) & CX__IO_BITS_MASK);
    /* acq_rel: release pairs with the acquire loads in cx_io_poll_ready
     * (a poller seeing the bits sees the tick that came with them); acquire
     * orders us after the clear we replace. The tick changes on every set,
     * which is what makes a clear with an older tick fail. */
    if (atomic_compare_exchange_weak_explicit(&s->readiness, &cur, next,
                                              memory_order_acq_rel,
                                              memory_order_relaxed))
      return next;
  }
}

/* Takes out the wakers that `bits` concern; the caller wakes them. Returns
 * how many were written to out (0..2). */
static int cx__take_wakers(cx_io_source *s, uint32_t bits, cx_waker *out) {
  int n = 0;
  cx__src_lock(s);
  if ((bits & cx__read_wake_bits) && !cx_waker_is_empty(&s->reader)) {
    out[n++] = s->reader;
    s->reader = CX_WAKER_EMPTY;
  }
  if ((bits & cx__write_wake_bits) && !cx_waker_is_empty(&s->writer)) {
    out[n++] = s->writer;
    s->writer = CX_WAKER_EMPTY;
  }
  cx__src_unlock(s);
  return n;
}

/* Marks s shut down and wakes both waiters (they will see SHUTDOWN). */
static void cx__source_shutdown(cx_io_source *s) {
  cx__readiness_set(s, CX_IO_SHUTDOWN);
  cx_waker w[2];
  int n = cx__take_wakers(s, CX_IO_SHUTDOWN, w);
  for (int i = 0; i < n; i++) cx_waker_wake(&w[i]);
}

/* Slot bookkeeping; drv->mu held. */
static int cx__slot_alloc(cx__io_driver *drv, uint32_t *idx) {
  if (drv->free_head == CX__IO_NO_SLOT) {
    uint32_t ncap = drv->cap ? drv->cap * 2 : 64;
    if (ncap <= drv->cap || ncap >= CX__IO_NO_SLOT) return CX_ENOMEM;
    cx__io_slot *ns =
        cx_alloc(sizeof(cx__io_slot) * ncap, _Alignof(cx__io_slot));
    if (ns == NULL) return CX_ENOMEM;
    if (drv->cap) memcpy(ns, drv->slots, sizeof(cx__io_slot) * drv->cap);
    for (uint32_t i = drv->cap; i < ncap; i++) {
      ns[i].src = NULL;
      ns[i].gen = 0;
      ns[i].next_free = i + 1 < ncap ? i + 1 : CX__IO_NO_SLOT;
    }
    cx_free(drv->slots, sizeof(cx__io_slot) * drv->cap, _Alignof(cx__io_slot));
    drv->free_head = drv->cap;
    drv->slots = ns;
    drv->cap = ncap;
  }
  *idx = drv->free_head;
  drv->free_head = drv->slots[*idx].next_free;
  return CX_OK;
}

static void cx__slot_free(cx__io_driver *drv, uint32_t idx) {
  drv->slots[idx].src = NULL;
  drv->slots[idx].gen++; /* events carrying the old generation are stale */
  drv->slots[idx].next_free = drv->free_head;
  drv->free_head = idx;
}

/* ---- the driver --------------------------------------------------------- */

static void cx__io_wait(cx__io_driver *drv, uint64_t timeout_ns, int *n) {
  /* relaxed: a cached capability flag; any value is safe. */
  if (atomic_load_explicit(&drv->have_pwait2, memory_order_relaxed)) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns != CX_DRIVER_FOREVER) {
      ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
      ts.tv_nsec = (long)(timeout_ns % 1000000000u);
      tsp = &ts;
    }
    *n = epoll_pwait2(drv->epfd, drv->events, CX__IO_EVENTS, tsp, NULL);
    if (*n >= 0 || errno != ENOSYS) return;
    /* relaxed: see above; from now on the millisecond fallback. */
    atomic_store_explicit(&drv->have_pwait2, 0, memory_order_relaxed);
  }
  int ms;
  if (timeout_ns == CX_DRIVER_FOREVER) {
    ms = -1;
  } else {
    /* Rounded up: waking early would only make the executor park again. */
    uint64_t m = timeout_ns / 1000000u + (timeout_ns % 1000000u != 0);
    ms = m > INT_MAX ? INT_MAX : (int)m;
  }
  *n = epoll_wait(drv->epfd, drv->events, CX__IO_EVENTS, ms);
}

static void cx__io_dispatch(cx__io_driver *drv, int n) {
  int nwake = 0;
  pthread_mutex_lock(&drv->mu);
  for (int i = 0; i < n; i++) {
    uint64_t token = drv->events[i].data.u64;
    if (token == CX__IO_WAKE_TOKEN) {
      uint64_t v;
      /* Drains the counter (level-triggered: it would fire again). */
      ssize_t r = read(drv->evfd, &v, sizeof v);
      (void)r;
      continue;
    }
    uint32_t idx = (uint32_t)token;
    uint32_t gen = (uint32_t)(token >> 32);
    if (idx >= drv->cap) continue;
    cx__io_slot *slot = &drv->slots[idx];
    if (slot->src == NULL || slot->gen != gen) continue; /* stale event */
    uint32_t bits = cx__bits_from_epoll(drv->events[i].events);
    if (bits == 0) continue;
    cx__readiness_set(slot->src, bits);
    nwake += cx__take_wakers(slot->src, bits, &drv->to_wake[nwake]);
  }
  pthread_mutex_unlock(&drv->mu);
  for (int i = 0; i < nwake; i++) cx_waker_wake(&drv->to_wake[i]);
}

static void cx__io_park(cx_driver *d, uint64_t timeout_ns) {
  cx__io_driver *drv = (cx__io_driver *)d;
  uint32_t expected = CX__IDLE;
  /* acq_rel on success: publishes PARKED before we block (an unpark that
   * sees it writes the eventfd); acquire on failure: the state was
   * NOTIFIED, and the unparker's writes (released by its exchange) must be
   * visible when we return. */
  bool parked =
      timeout_ns != 0 && atomic_compare_exchange_strong_explicit(
                             &drv->state, &expected, CX__PARKED,
                             memory_order_acq_rel, memory_order_acquire);
  if (!parked) {
    /* acquire: consumes a NOTIFIED, pairing with unpark's release
     * exchange. The park then only dispatches what is already there. */
    atomic_exchange_explicit(&drv->state, CX__IDLE, memory_order_acquire);
    timeout_ns = 0;
  }
  int n = 0;
  cx__io_wait(drv, timeout_ns, &n);
  if (parked) {
    /* acquire: pairs with the release exchange of an unpark that ended
     * this park (NOTIFIED), so its writes happen-before our return. */
    atomic_exchange_explicit(&drv->state, CX__IDLE, memory_order_acquire);
  }
  if (n > 0) cx__io_dispatch(drv, n);
}

static void cx__io_unpark(cx_driver *d) {
  cx__io_driver *drv = (cx__io_driver *)d;
  /* acq_rel: release pairs with the acquire exchange/CAS in park (our
   * earlier writes happen-before its return); an exchange rather than a
   * load so that a second unpark also publishes its writes. */
  uint32_t prev =
      atomic_exchange_explicit(&drv->state, CX__NOTIFIED, memory_order_acq_rel);
  if (prev == CX__PARKED) {
    uint64_t one = 1;
    /* Only when a thread is blocked in epoll: the one syscall of a wake. */
    ssize_t r = write(drv->evfd, &one, sizeof one);
    (void)r; /* EAGAIN: the counter is already nonzero, which is enough */
  }
}

static void cx__io_driver_release(cx__io_driver *drv) {
  /* acq_rel: release publishes our last use; the acquire of whoever
   * reaches zero pairs with every earlier release, before freeing. */
  if (atomic_fetch_sub_explicit(&drv->refs, 1, memory_order_acq_rel) != 1)
    return;
  close(drv->evfd);
  close(drv->epfd);
  cx_free(drv->slots, sizeof(cx__io_slot) * drv->cap, _Alignof(cx__io_slot));
  pthread_mutex_destroy(&drv->mu);
  cx_free(drv, sizeof *drv, _Alignof(cx__io_driver));
}

static void cx__io_destroy(cx_driver *d) {
  cx__io_driver *drv = (cx__io_driver *)d;
  pthread_mutex_lock(&drv->mu);
  drv->destroyed = true;
  uint32_t cap = drv->cap;
  pthread_mutex_unlock(&drv->mu);
  /* Shut down every registration left: its futures complete with
   * CX_EBADF. The source itself lives on until its owner deregisters. */
  for (uint32_t i = 0; i < cap; i++) {
    pthread_mutex_lock(&drv->mu);
    cx_io_source *s = drv->slots[i].src;
    if (s != NULL) {
      cx__slot_free(drv, i);
      s->slot = CX__IO_NO_SLOT;
      cx_io_source_retain(s); /* keep it while we wake outside mu */
    }
    pthread_mutex_unlock(&drv->mu);
    if (s != NULL) {
      cx__source_shutdown(s);
      cx_io_source_release(s);
    }
  }
  cx__io_driver_release(drv);
}

static const cx_driver_vtable cx__io_driver_vtable = {
    .park = cx__io_park,
    .unpark = cx__io_unpark,
    .destroy = cx__io_destroy,
};

int cx_io_driver_create(cx_driver **out) {
  if (out == NULL) return CX_EINVAL;
  *out = NULL;
  cx__io_driver *drv = cx_alloc(sizeof *drv, _Alignof(cx__io_driver));
  if (drv == NULL) return CX_ENOMEM;
  memset(drv, 0, sizeof *drv);
  drv->base.vtable = &cx__io_driver_vtable;
  drv->free_head = CX__IO_NO_SLOT;
  drv->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (drv->epfd < 0) {
    int rc = cx_error_from_errno(errno);
    cx_free(drv, sizeof *drv, _Alignof(cx__io_driver));
    return rc;
  }
  drv->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = CX__IO_WAKE_TOKEN};
  if (drv->evfd < 0 || epoll_ctl(drv->epfd, EPOLL_CTL_ADD, drv->evfd, &ev)) {
    int rc = cx_error_from_errno(errno);
    if (drv->evfd >= 0) close(drv->evfd);
    close(drv->epfd);
    cx_free(drv, sizeof *drv, _Alignof(cx__io_driver));
    return rc;
  }
  pthread_mutex_init(&drv->mu, NULL);
  /* relaxed: nobody else sees drv yet. */
  atomic_init(&drv->state, CX__IDLE);
  atomic_init(&drv->refs, 1);
  atomic_init(&drv->have_pwait2, 1);
  *out = &drv->base;
  return CX_OK;
}

void cx__io_driver_force_epoll_wait(cx_driver *d) {
  /* relaxed: a capability flag, read by the parking thread (see wait). */
  atomic_store_explicit(&((cx__io_driver *)d)->have_pwait2, 0,
                        memory_order_relaxed);
}

int cx_io_driver_is_io(const cx_driver *d) {
  return d != NULL && d->vtable == &cx__io_driver_vtable;
}

/* ---- registrations ------------------------------------------------------ */

int cx_io_register(cx_context *cx, int fd, cx_io_source **out) {
  if (out != NULL) *out = NULL;
  if (cx == NULL || out == NULL || fd < 0) return CX_EINVAL;
  if (cx->host == NULL || cx->host->io_driver == NULL) return CX_ENOTSUP;
  cx_driver *d = NULL;
  int rc = cx->host->io_driver(cx->host, &d);
  if (rc != CX_OK) return rc;
  if (!cx_io_driver_is_io(d)) return CX_ENOTSUP;
  return cx_io_register_on(d, fd, out);
}

int cx_io_register_on(cx_driver *d, int fd, cx_io_source **out) {
  if (out != NULL) *out = NULL;
  if (out == NULL || fd < 0 || !cx_io_driver_is_io(d)) return CX_EINVAL;
  cx__io_driver *drv = (cx__io_driver *)d;

  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return cx_error_from_errno(errno);
  struct stat st;
  if (fstat(fd, &st) != 0) return cx_error_from_errno(errno);

  cx_io_source *s = cx_alloc(sizeof *s, _Alignof(cx_io_source));
  if (s == NULL) return CX_ENOMEM;
  memset(s, 0, sizeof *s);
  s->drv = drv;
  s->fd = fd;
  s->slot = CX__IO_NO_SLOT;
  s->is_socket = S_ISSOCK(st.st_mode);
  /* relaxed: s is not shared yet. */
  atomic_init(&s->readiness, 0);
  atomic_init(&s->refs, 1);
  atomic_init(&s->lock, 0);
  /* relaxed: the caller's own reference to drv keeps it alive here; the
   * increment only has to be atomic (as for any reference count). */
  atomic_fetch_add_explicit(&drv->refs, 1, memory_order_relaxed);

  pthread_mutex_lock(&drv->mu);
  uint32_t idx = 0, gen = 0;
  int rc = drv->destroyed ? CX_ESHUTDOWN : cx__slot_alloc(drv, &idx);
  if (rc == CX_OK) {
    drv->slots[idx].src = s;
    gen = drv->slots[idx].gen;
    s->slot = idx;
  }
  pthread_mutex_unlock(&drv->mu);
  if (rc != CX_OK) {
    cx_io_source_release(s);
    return rc;
  }

  bool set_nonblock = !(fl & O_NONBLOCK);
  if (set_nonblock && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
    rc = cx_error_from_errno(errno);
  } else {
    /* Armed once, edge-triggered, for everything: no epoll_ctl per wait. */
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.u64 = ((uint64_t)gen << 32) | idx,
    };
    if (epoll_ctl(drv->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      rc = cx_error_from_errno(errno);
      if (set_nonblock) (void)fcntl(fd, F_SETFL, fl); /* leave fd as found */
    }
  }
  if (rc != CX_OK) {
    pthread_mutex_lock(&drv->mu);
    cx__slot_free(drv, idx);
    s->slot = CX__IO_NO_SLOT;
    pthread_mutex_unlock(&drv->mu);
    cx_io_source_release(s);
    return rc;
  }
  *out = s;
  return CX_OK;
}

int cx_io_source_fd(const cx_io_source *s) {
  return s ? s->fd : -1;
}

bool cx__io_source_is_socket(const cx_io_source *s) {
  return s->is_socket;
}

void cx_io_source_retain(cx_io_source *s) {
  /* relaxed: the caller already holds a reference (as in refcount.h). */
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void cx_io_source_release(cx_io_source *s) {
  if (s == NULL) return;
  /* acq_rel: release publishes our uses of s; acquire in the thread that
   * reaches zero pairs with all of them before freeing. */
  if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
  cx__io_driver *drv = s->drv;
  cx_waker_drop(&s->reader); /* a waiter nobody withdrew */
  cx_waker_drop(&s->writer);
  cx_free(s, sizeof *s, _Alignof(cx_io_source));
  cx__io_driver_release(drv);
}

cx_poll cx_io_poll_ready(cx_io_source *s, cx_context *cx, unsigned interest,
                         cx_io_ready *ready) {
  uint32_t mask = cx__interest_mask(interest);
  /* acquire: pairs with the acq_rel CAS of cx__readiness_set. */
  uint64_t cur = atomic_load_explicit(&s->readiness, memory_order_acquire);
  if ((uint32_t)cur & mask) {
    ready->bits = (uint32_t)cur & mask;
    ready->tick = (uint32_t)(cur >> CX__IO_TICK_SHIFT);
    return CX_READY;
  }
  /* Store the waker, then look again under the same lock: dispatch sets
   * the bits before it takes the lock to collect wakers, so either it
   * finds our waker or we find its bits. */
  cx_waker old[2];
  int nold = 0;
  bool clone_failed = false;
  cx__src_lock(s);
  cx_waker *slots[2] = {(interest & CX_IO_READ) ? &s->reader : NULL,
                        (interest & CX_IO_WRITE) ? &s->writer : NULL};
  for (int i = 0; i < 2; i++) {
    if (slots[i] == NULL || cx_waker_will_wake(slots[i], cx->waker)) continue;
    cx_waker w;
    if (cx_waker_clone(cx->waker, &w) != CX_OK) {
      clone_failed = true;
      continue;
    }
    old[nold++] = *slots[i];
    *slots[i] = w;
  }
  /* acquire: as above. */
  cur = atomic_load_explicit(&s->readiness, memory_order_acquire);
  cx__src_unlock(s);
  for (int i = 0; i < nold; i++) cx_waker_drop(&old[i]);
  if ((uint32_t)cur & mask) {
    ready->bits = (uint32_t)cur & mask;
    ready->tick = (uint32_t)(cur >> CX__IO_TICK_SHIFT);
    return CX_READY;
  }
  if (clone_failed) cx_waker_wake_by_ref(cx->waker); /* retry at once */
  return CX_PENDING;
}

void cx_io_clear_ready(cx_io_source *s, cx_io_ready ready) {
  /* End of stream and shutdown are permanent: never cleared. */
  uint64_t clear = ready.bits & (CX_IO_READABLE | CX_IO_WRITABLE | CX_IO_ERROR);
  /* relaxed: the first guess for the CAS loop. */
  uint64_t cur = atomic_load_explicit(&s->readiness, memory_order_relaxed);
  for (;;) {
    if ((uint32_t)(cur >> CX__IO_TICK_SHIFT) != ready.tick)
      return; /* an event arrived after `ready` was read: keep it */
    uint64_t next = cur & ~clear;
    if (next == cur) return;
    /* acq_rel: pairs with cx__readiness_set's CAS; the tick comparison and
     * the clear are one atomic step, so no set can slip in between. */
    if (atomic_compare_exchange_weak_explicit(&s->readiness, &cur, next,
                                              memory_order_acq_rel,
                                              memory_order_relaxed))
      return;
  }
}

void cx_io_withdraw(cx_io_source *s, unsigned interest, const cx_waker *w) {
  if (s == NULL || cx_waker_is_empty(w)) return;
  cx_waker old[2];
  int n = 0;
  cx__src_lock(s);
  if ((interest & CX_IO_READ) && cx_waker_will_wake(&s->reader, w)) {
    old[n++] = s->reader;
    s->reader = CX_WAKER_EMPTY;
  }
  if ((interest & CX_IO_WRITE) && cx_waker_will_wake(&s->writer, w)) {
    old[n++] = s->writer;
    s->writer = CX_WAKER_EMPTY;
  }
  cx__src_unlock(s);
  for (int i = 0; i < n; i++) cx_waker_drop(&old[i]);
}

cx_poll cx_io_poll_op(cx_io_source *s, cx_context *cx, unsigned interest,
                      cx_io_op_fn op, void *arg, ssize_t *result) {
  for (int tries = 0; tries < 64; tries++) {
    cx_io_ready r;
    if (cx_io_poll_ready(s, cx, interest, &r) == CX_PENDING) return CX_PENDING;
    if (r.bits & CX_IO_SHUTDOWN) {
      *result = CX_EBADF;
      return CX_READY;
    }
    ssize_t n;
    do {
      n = op(s->fd, arg);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
      *result = n;
      return CX_READY;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *result = cx_error_from_errno(errno);
      return CX_READY;
    }
    cx_io_clear_ready(s, r);
  }
  cx_waker_wake_by_ref(cx->waker);
  return CX_PENDING;
}

void cx_io_deregister(cx_io_source *s) {
  if (s == NULL) return;
  cx__io_driver *drv = s->drv;
  pthread_mutex_lock(&drv->mu);
  bool was_registered = s->slot != CX__IO_NO_SLOT;
  if (was_registered) {
    cx__slot_free(drv, s->slot);
    s->slot = CX__IO_NO_SLOT;
  }
  pthread_mutex_unlock(&drv->mu);
  /* Events already collected for this slot are stale now; remove the fd so
   * no new ones come (an error means the fd is already closed: then epoll
   * dropped it itself, or it lives on in a dup whose events are stale). */
  if (was_registered) (void)epoll_ctl(drv->epfd, EPOLL_CTL_DEL, s->fd, NULL);
  cx__source_shutdown(s);
  cx_io_source_release(s);
}

void cx_io_close(cx_io_source *s) {
  if (s == NULL) return;
  int fd = s->fd;
  cx_io_deregister(s);
  close(fd);
}
