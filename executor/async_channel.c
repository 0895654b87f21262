/*
 * Async channels. See async_channel.h for the contracts.
 *
 * One lock (internal/lock.h: a futex word, one atomic instruction each way
 * when uncontended) guards everything in the channel: the ring buffer, the
 * handle counts, the receiver's waker slot and the FIFO of waiting senders:
 *
 *      senders (any thread)                         receiver
 *   +-------------------------------------------+
 *   | ring buffer: head, len / capacity         | <- recv pops, then hands
 *   | rx_waker (+ rx_owner: which recv stored)  |    the freed slot to the
 *   | waiters: send <-> send <-> send (FIFO)    |    first waiting sender
 *   | senders, rx_alive, blocked thread counts  |
 *   +-------------------------------------------+
 *
 * Waiting senders are their own send futures, linked through an intrusive
 * list node (internal/list.h): no allocation. The items sit in a ring
 * (internal/ring.h) that follows the header in the same allocation. Taking an
 * item out "notifies" the first waiting sender: it is unlinked, flagged
 * `notified`, and its waker is taken out to be woken. The flag is the turn it
 * owes: if it is dropped before re-polling it hands the turn to the next
 * sender; if it re-polls and the room was taken meanwhile (try_send and
 * blocking senders do not queue) it goes back to the head. Every successful
 * send that leaves room while senders still wait notifies one more, so a free
 * slot never sits next to a sleeping sender.
 *
 * Wakers are woken and dropped only after the lock is released (a wake may
 * run arbitrary code, and dropping the last reference to a task frees it):
 * each operation gathers them in a cx__deferred and runs it after unlock.
 * The one exception is drop_item, run under the lock.
 *
 * Threads blocked in send_blocking / recv_blocking wait on conditions
 * (internal/lock.h) and are signalled alongside the wakers; they are counted so
 * that the async paths pay for a signal only when a thread waits.
 *
 * Lifetime: `senders` counts sender handles; `rx_held` is the receiver
 * handle, kept until cx_achan_rx_drop has finished waking senders. The last
 * one to go frees the channel.
 */
#define _DEFAULT_SOURCE /* syscall() for the futex lock */

#include "executor/async_channel.h"

#include <stdint.h>
#include <string.h>

#include "executor/internal/lock.h"
#include "executor/internal/ring.h"
#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/internal/current.h"

typedef struct cx__achan {
  /* Hot: what send and recv touch, together at the front. */
  cx__lock mu;
  bool rx_alive; /* the receiver was not dropped: sends can succeed */
  bool rx_held;  /* the receiver handle still holds the memory */
  uint32_t blocked_senders, blocked_receivers; /* threads in cx__cond_wait */
  cx__ring ring; /* its storage follows the header */
  size_t senders;
  cx_waker rx_waker;
  const cx_achan_recv *rx_owner; /* the recv future that stored rx_waker */
  cx__list waiters;              /* of cx_achan_send, through their link */
  /* Cold. */
  cx__cond not_full;  /* threads blocked in send_blocking */
  cx__cond not_empty; /* threads blocked in recv_blocking */
  void (*drop_item)(void *);
  size_t alloc_size;
} cx__achan;

/* Wakers to wake and to drop once the lock is released. Each operation
 * touches at most two of each. */
typedef struct cx__deferred {
  cx_waker wake[2];
  cx_waker drop[2];
  int nwake, ndrop;
} cx__deferred;

#define CX__DEFERRED_INIT \
  { {{NULL, NULL}, {NULL, NULL}}, {{NULL, NULL}, {NULL, NULL}}, 0, 0 }

static void cx__defer_wake(cx__deferred *d, cx_waker *w) {
  if (cx_waker_is_empty(w)) return;
  d->wake[d->nwake++] = *w;
  *w = CX_WAKER_EMPTY;
}

/* The same for a waker already taken out (cx__waker_take). */
static void cx__defer_wake_taken(cx__deferred *d, cx_waker w) {
  cx__defer_wake(d, &w);
}

static void cx__defer_drop(cx__deferred *d, cx_waker *w) {
  if (cx_waker_is_empty(w)) return;
  d->drop[d->ndrop++] = *w;
  *w = CX_WAKER_EMPTY;
}

static void cx__deferred_run(cx__deferred *d) {
  for (int i = 0; i < d->nwake; i++) cx_waker_wake(&d->wake[i]);
  for (int i = 0; i < d->ndrop; i++) cx_waker_drop(&d->drop[i]);
}

static cx__achan *cx__from_tx(const cx_achan_tx *tx) {
  return (cx__achan *)tx;
}
static cx__achan *cx__from_rx(const cx_achan_rx *rx) {
  return (cx__achan *)rx;
}

/* ---- lifetime ----------------------------------------------------------- */

static size_t cx__buf_offset(void) {
  size_t a = _Alignof(max_align_t);
  return (sizeof(cx__achan) + a - 1) & ~(a - 1);
}

int cx_achan_create(size_t item_size, size_t capacity,
                    void (*drop_item)(void *item), cx_achan_tx **tx,
                    cx_achan_rx **rx) {
  if (tx) *tx = NULL;
  if (rx) *rx = NULL;
  size_t off = cx__buf_offset();
  if (tx == NULL || rx == NULL || !cx__ring_size_ok(item_size, capacity, off))
    return CX_EINVAL;
  size_t size = off + cx__ring_bytes(item_size, capacity);
  cx__achan *ch = cx_alloc(size, _Alignof(max_align_t));
  if (ch == NULL) return CX_ENOMEM;
  memset(ch, 0, sizeof *ch);
  if (!cx__lock_init(&ch->mu)) goto fail_mu;
  if (!cx__cond_init(&ch->not_full)) goto fail_full;
  if (!cx__cond_init(&ch->not_empty)) goto fail_empty;
  cx__ring_init(&ch->ring, (unsigned char *)ch + off, item_size, capacity);
  cx__list_init(&ch->waiters);
  ch->senders = 1;
  ch->rx_alive = true;
  ch->rx_held = true;
  ch->rx_waker = CX_WAKER_EMPTY;
  ch->drop_item = drop_item;
  ch->alloc_size = size;
  *tx = (cx_achan_tx *)ch;
  *rx = (cx_achan_rx *)ch;
  return CX_OK;
fail_empty:
  cx__cond_destroy(&ch->not_full);
fail_full:
  cx__lock_destroy(&ch->mu);
fail_mu:
  cx_free(ch, size, _Alignof(max_align_t));
  return CX_ENOMEM;
}

static void cx__achan_free(cx__achan *ch) {
  cx__cond_destroy(&ch->not_empty);
  cx__cond_destroy(&ch->not_full);
  cx__lock_destroy(&ch->mu);
  cx_free(ch, ch->alloc_size, _Alignof(max_align_t));
}

/* ---- the ring and the FIFO (mu held) ------------------------------------ */

/* Moves *w out, leaving the empty waker, so it can be woken or dropped
 * after the lock is released. */
static inline cx_waker cx__waker_take(cx_waker *w) {
  cx_waker taken = *w;
  *w = CX_WAKER_EMPTY;
  return taken;
}

/* Wakes or drops a waker taken out under the lock (lock released). The
 * empty waker costs a test instead of a call. Every waker in the channel
 * came from cx_waker_clone, which refuses a vtable missing a function, so
 * the vtable is called directly (what cx_waker_wake / _drop would do, minus
 * a call and their checks). */
static inline void cx__wake_taken(cx_waker *w) {
  if (w->vtable != NULL) w->vtable->wake(w->data);
}
static inline void cx__drop_taken(cx_waker *w) {
  if (w->vtable != NULL) w->vtable->drop(w->data);
}

static void cx__fifo_unlink(cx__achan *ch, cx_achan_send *s) {
  cx__list_remove(&ch->waiters, &s->link);
  s->queued = false;
}

/* Gives the first waiting sender its turn (if any): returns its waker, to
 * wake once the lock is released (empty when nobody waits). */
static inline cx_waker cx__notify_one_sender(cx__achan *ch) {
  if (cx__list_is_empty(&ch->waiters)) return CX_WAKER_EMPTY;
  cx__list_node *n = cx__list_pop_front(&ch->waiters);
  cx_achan_send *s = CX__CONTAINER_OF(n, cx_achan_send, link);
  s->queued = false;
  s->notified = true;
  return cx__waker_take(&s->waker);
}

/* Copies *item in; returns the receiver's waker to wake (maybe empty) and
 * signals a blocked receiving thread. */
static inline cx_waker cx__push_item(cx__achan *ch, const void *item) {
  cx__ring_push(&ch->ring, item);
  ch->rx_owner = NULL;
  if (ch->blocked_receivers > 0) cx__cond_signal(&ch->not_empty);
  return cx__waker_take(&ch->rx_waker);
}

/* Moves the oldest item out; room was made, so returns the first waiting
 * sender's waker to wake (maybe empty) and signals a blocked sending
 * thread. */
static inline cx_waker cx__pop_item(cx__achan *ch, void *item) {
  cx__ring_pop(&ch->ring, item);
  if (ch->blocked_senders > 0) cx__cond_signal(&ch->not_full);
  return cx__notify_one_sender(ch);
}

/* ---- handles ------------------------------------------------------------ */

int cx_achan_tx_clone(cx_achan_tx *tx, cx_achan_tx **out) {
  if (out) *out = NULL;
  if (tx == NULL || out == NULL) return CX_EINVAL;
  cx__achan *ch = cx__from_tx(tx);
  cx__lock_acquire(&ch->mu);
  ch->senders++;
  cx__lock_release(&ch->mu);
  *out = tx;
  return CX_OK;
}

void cx_achan_tx_drop(cx_achan_tx *tx) {
  if (tx == NULL) return;
  cx__achan *ch = cx__from_tx(tx);
  cx__deferred d = CX__DEFERRED_INIT;
  cx__lock_acquire(&ch->mu);
  ch->senders--;
  bool free_now = false;
  if (ch->senders == 0) {
    /* A pending recv must see the disconnect. */
    ch->rx_owner = NULL;
    cx__defer_wake(&d, &ch->rx_waker);
    if (ch->blocked_receivers > 0) cx__cond_broadcast(&ch->not_empty);
    free_now = !ch->rx_held;
  }
  cx__lock_release(&ch->mu);
  cx__deferred_run(&d);
  if (free_now) cx__achan_free(ch);
}

void cx_achan_rx_drop(cx_achan_rx *rx) {
  if (rx == NULL) return;
  cx__achan *ch = cx__from_rx(rx);
  cx__deferred d = CX__DEFERRED_INIT;
  cx__lock_acquire(&ch->mu);
  ch->rx_alive = false;
  cx__ring_drain(&ch->ring, ch->drop_item);
  ch->rx_owner = NULL;
  cx__defer_drop(&d, &ch->rx_waker);
  if (ch->blocked_senders > 0) cx__cond_broadcast(&ch->not_full);
  /* Wake every waiting sender, one per lock hold (no new one can queue:
   * rx_alive is false). They complete with CX_EPIPE when polled. */
  while (!cx__list_is_empty(&ch->waiters)) {
    cx__defer_wake_taken(&d, cx__notify_one_sender(ch));
    cx__lock_release(&ch->mu);
    cx__deferred_run(&d);
    d = (cx__deferred)CX__DEFERRED_INIT;
    cx__lock_acquire(&ch->mu);
  }
  ch->rx_held = false;
  bool free_now = ch->senders == 0;
  cx__lock_release(&ch->mu);
  cx__deferred_run(&d);
  if (free_now) cx__achan_free(ch);
}

bool cx_achan_is_closed(const cx_achan_tx *tx) {
  if (tx == NULL) return true;
  cx__achan *ch = cx__from_tx(tx);
  cx__lock_acquire(&ch->mu);
  bool closed = !ch->rx_alive;
  cx__lock_release(&ch->mu);
  return closed;
}

size_t cx_achan_len(const cx_achan_rx *rx) {
  if (rx == NULL) return 0;
  cx__achan *ch = cx__from_rx(rx);
  cx__lock_acquire(&ch->mu);
  size_t n = ch->ring.len;
  cx__lock_release(&ch->mu);
  return n;
}

/* ---- non-blocking and blocking calls ------------------------------------ */

int cx_achan_try_send(cx_achan_tx *tx, const void *item) {
  if (tx == NULL || item == NULL) return CX_EINVAL;
  cx__achan *ch = cx__from_tx(tx);
  cx__deferred d = CX__DEFERRED_INIT;
  int rc = CX_OK;
  cx__lock_acquire(&ch->mu);
  if (!ch->rx_alive)
    rc = CX_EPIPE;
  else if (cx__ring_is_full(&ch->ring))
    rc = CX_EAGAIN;
  else
    cx__defer_wake_taken(&d, cx__push_item(ch, item));
  cx__lock_release(&ch->mu);
  cx__deferred_run(&d);
  return rc;
}

int cx_achan_try_recv(cx_achan_rx *rx, void *item) {
  if (rx == NULL || item == NULL) return CX_EINVAL;
  cx__achan *ch = cx__from_rx(rx);
  cx__deferred d = CX__DEFERRED_INIT;
  int rc = CX_OK;
  cx__lock_acquire(&ch->mu);
  if (!cx__ring_is_empty(&ch->ring))
    cx__defer_wake_taken(&d, cx__pop_item(ch, item));
  else
    rc = ch->senders == 0 ? CX_EPIPE : CX_EAGAIN;
  cx__lock_release(&ch->mu);
  cx__deferred_run(&d);
  return rc;
}

int cx_achan_send_blocking(cx_achan_tx *tx, const void *item) {
  if (tx == NULL || item == NULL) return CX_EINVAL;
  cx__achan *ch = cx__from_tx(tx);
  cx__deferred d = CX__DEFERRED_INIT;
  int rc = CX_OK;
  cx__lock_acquire(&ch->mu);
  while (ch->rx_alive && cx__ring_is_full(&ch->ring)) {
    if (cx__current_executor() != NULL) {
      rc = CX_EDEADLK; /* inside a task: see async_channel.h */
      break;
    }
    ch->blocked_senders++;
    cx__cond_wait(&ch->not_full, &ch->mu);
    ch->blocked_senders--;
  }
  if (rc == CX_OK && !ch->rx_alive)
    rc = CX_EPIPE;
  else if (rc == CX_OK)
    cx__defer_wake_taken(&d, cx__push_item(ch, item));
  cx__lock_release(&ch->mu);
  cx__deferred_run(&d);
  return rc;
}

int cx_achan_recv_blocking(cx_achan_rx *rx, void *item) {
  if (rx == NULL || item == NULL) return CX_EINVAL;
  cx__achan *ch = cx__from_rx(rx);
  cx__deferred d = CX__DEFERRED_INIT;
  int rc = CX_OK;
  cx__lock_acquire(&ch->mu);
  while (cx__ring_is_empty(&ch->ring) && ch->senders > 0) {
    if (cx__current_executor() != NULL) {
      rc = CX_EDEADLK; /* inside a task: see async_channel.h */
      break;
    }
    ch->blocked_receivers++;
    cx__cond_wait(&ch->not_empty, &ch->mu);
    ch->blocked_receivers--;
  }
  if (!cx__ring_is_empty(&ch->ring))
    cx__defer_wake_taken(&d, cx__pop_item(ch, item));
  else if (rc == CX_OK)
    rc = CX_EPIPE;
  cx__lock_release(&ch->mu);
  cx__deferred_run(&d);
  return rc;
}

/* ---- the send future ---------------------------------------------------- */

void cx_achan_send_init(cx_achan_send *s, cx_achan_tx *tx, const void *item) {
  if (s == NULL) return;
  memset(s, 0, sizeof *s);
  s->tx = tx;
  s->item = item;
  s->waker = CX_WAKER_EMPTY;
}

static cx_poll cx__ready(int *result, int rc) {
  if (result) *result = rc;
  return CX_READY;
}

/* The send completes (lock held, released here): CX_OK after copying the
 * item in if the receiver is alive (then there is room), else CX_EPIPE. */
static cx_poll cx__send_finish(cx__achan *ch, cx_achan_send *s, int *result) {
  if (s->queued) cx__fifo_unlink(ch, s);
  cx_waker mine = cx__waker_take(&s->waker);
  cx_waker rx = CX_WAKER_EMPTY, next = CX_WAKER_EMPTY;
  int rc = CX_EPIPE;
  if (ch->rx_alive) {
    rx = cx__push_item(ch, s->item);
    /* Room left and senders waiting: pass a turn on. */
    if (!cx__ring_is_full(&ch->ring)) next = cx__notify_one_sender(ch);
    rc = CX_OK;
  }
  s->done = true;
  s->waiting = false;
  cx__lock_release(&ch->mu);
  cx__wake_taken(&rx);
  cx__wake_taken(&next);
  cx__drop_taken(&mine);
  return cx__ready(result, rc);
}

/* The channel is full (lock held, released here): (re)register our waker
 * and wait in line, or fail if the waker cannot be cloned. */
static cx_poll cx__send_wait(cx__achan *ch, cx_achan_send *s, cx_context *cx,
                             bool had_turn, int *result) {
  cx_waker old = CX_WAKER_EMPTY;
  if (!cx_waker_will_wake(&s->waker, cx->waker)) {
    cx_waker fresh;
    int rc = cx_waker_clone(cx->waker, &fresh);
    if (rc != CX_OK) {
      if (s->queued) cx__fifo_unlink(ch, s);
      old = cx__waker_take(&s->waker);
      s->done = true;
      s->waiting = false;
      cx__lock_release(&ch->mu);
      cx__drop_taken(&old);
      return cx__ready(result, rc);
    }
    old = s->waker;
    s->waker = fresh;
  }
  if (!s->queued) {
    /* A sender that had its turn stolen keeps its place at the front. */
    if (had_turn)
      cx__list_push_front(&ch->waiters, &s->link);
    else
      cx__list_push_back(&ch->waiters, &s->link);
    s->queued = true;
  }
  s->waiting = true;
  cx__lock_release(&ch->mu);
  cx__drop_taken(&old);
  return CX_PENDING;
}

cx_poll cx_achan_send_poll(cx_achan_send *s, cx_context *cx, int *result) {
  if (s == NULL || s->tx == NULL || s->item == NULL || cx == NULL ||
      cx->waker == NULL)
    return cx__ready(result, CX_EINVAL);
  if (s->done) return cx__ready(result, CX_EALREADY);
  cx__achan *ch = cx__from_tx(s->tx);
  cx__lock_acquire(&ch->mu);
  bool had_turn = s->notified;
  s->notified = false;
  if (!ch->rx_alive || !cx__ring_is_full(&ch->ring))
    return cx__send_finish(ch, s, result);
  return cx__send_wait(ch, s, cx, had_turn, result);
}

void cx_achan_send_drop(cx_achan_send *s) {
  if (s == NULL || s->tx == NULL || s->done) return;
  s->done = true;
  if (!s->waiting) return; /* never registered, or finished */
  s->waiting = false;
  cx__achan *ch = cx__from_tx(s->tx);
  cx__deferred d = CX__DEFERRED_INIT;
  cx__lock_acquire(&ch->mu);
  if (s->queued) {
    cx__fifo_unlink(ch, s);
  } else if (s->notified && ch->rx_alive && !cx__ring_is_full(&ch->ring)) {
    /* hand our unused turn on */
    cx__defer_wake_taken(&d, cx__notify_one_sender(ch));
  }
  s->notified = false;
  cx__defer_drop(&d, &s->waker);
  cx__lock_release(&ch->mu);
  cx__deferred_run(&d);
}

CX_FUTURE_TRAMPOLINES(cx_achan_send, cx_achan_send, int)
const cx_future_vtable cx_achan_send_vtable =
    CX_FUTURE_VTABLE_INIT(cx_achan_send, cx_achan_send, int);

/* ---- the recv future ---------------------------------------------------- */

void cx_achan_recv_init(cx_achan_recv *r, cx_achan_rx *rx, void *item) {
  if (r == NULL) return;
  memset(r, 0, sizeof *r);
  r->rx = rx;
  r->item = item;
}

/* Takes our waker back out of the slot, if it is still ours (mu held). */
static cx_waker cx__recv_unregister(cx__achan *ch, cx_achan_recv *r) {
  cx_waker mine = CX_WAKER_EMPTY;
  if (r->registered && ch->rx_owner == r) {
    ch->rx_owner = NULL;
    mine = cx__waker_take(&ch->rx_waker);
  }
  r->registered = false;
  return mine;
}

/* The recv completes with rc (lock held, released here): our waker leaves
 * the slot; `next` (a sender given a turn, maybe empty) is woken. */
static cx_poll cx__recv_finish(cx__achan *ch, cx_achan_recv *r, cx_waker next,
                               int rc, int *result) {
  cx_waker mine = cx__recv_unregister(ch, r);
  r->done = true;
  cx__lock_release(&ch->mu);
  cx__wake_taken(&next);
  cx__drop_taken(&mine);
  return cx__ready(result, rc);
}

cx_poll cx_achan_recv_poll(cx_achan_recv *r, cx_context *cx, int *result) {
  if (r == NULL || r->rx == NULL || r->item == NULL || cx == NULL ||
      cx->waker == NULL)
    return cx__ready(result, CX_EINVAL);
  if (r->done) return cx__ready(result, CX_EALREADY);
  cx__achan *ch = cx__from_rx(r->rx);
  cx__lock_acquire(&ch->mu);
  if (!cx__ring_is_empty(&ch->ring))
    return cx__recv_finish(ch, r, cx__pop_item(ch, r->item), CX_OK, result);
  if (ch->senders == 0)
    return cx__recv_finish(ch, r, CX_WAKER_EMPTY, CX_EPIPE, result);
  /* Empty: keep (or put) our waker in the slot. */
  cx_waker old = CX_WAKER_EMPTY;
  if (ch->rx_owner != r || !cx_waker_will_wake(&ch->rx_waker, cx->waker)) {
    /* Cloned straight into the slot: copying a clone made on the stack
     * in as one 16-byte value stalled on store forwarding. */
    old = cx__waker_take(&ch->rx_waker);
    int rc = cx_waker_clone(cx->waker, &ch->rx_waker);
    if (rc != CX_OK) {
      ch->rx_waker = old; /* the failed clone left the slot empty */
      return cx__recv_finish(ch, r, CX_WAKER_EMPTY, rc, result);
    }
    ch->rx_owner = r;
  }
  r->registered = true;
  cx__lock_release(&ch->mu);
  cx__drop_taken(&old);
  return CX_PENDING;
}

void cx_achan_recv_drop(cx_achan_recv *r) {
  if (r == NULL || r->rx == NULL || r->done) return;
  r->done = true;
  if (!r->registered) return;
  cx__achan *ch = cx__from_rx(r->rx);
  cx__lock_acquire(&ch->mu);
  cx_waker mine = cx__recv_unregister(ch, r);
  cx__lock_release(&ch->mu);
  cx__drop_taken(&mine);
}

CX_FUTURE_TRAMPOLINES(cx_achan_recv, cx_achan_recv, int)
const cx_future_vtable cx_achan_recv_vtable =
    CX_FUTURE_VTABLE_INIT(cx_achan_recv, cx_achan_recv, int);

/* ---- oneshot: a capacity-1 channel with a single, single-use sender ------ */

int cx_oneshot_create(size_t item_size, void (*drop_item)(void *item),
                      cx_oneshot_tx **tx, cx_oneshot_rx **rx) {
  if (tx) *tx = NULL;
  if (rx) *rx = NULL;
  if (tx == NULL || rx == NULL) return CX_EINVAL;
  cx_achan_tx *atx;
  cx_achan_rx *arx;
  int rc = cx_achan_create(item_size, 1, drop_item, &atx, &arx);
  if (rc != CX_OK) return rc;
  *tx = (cx_oneshot_tx *)atx;
  *rx = (cx_oneshot_rx *)arx;
  return CX_OK;
}

int cx_oneshot_send(cx_oneshot_tx *tx, const void *item) {
  if (tx == NULL) return CX_EINVAL;
  /* The only sender sends once into an empty slot: never CX_EAGAIN. */
  int rc = item ? cx_achan_try_send((cx_achan_tx *)tx, item) : CX_EINVAL;
  cx_achan_tx_drop((cx_achan_tx *)tx);
  return rc;
}

void cx_oneshot_tx_drop(cx_oneshot_tx *tx) {
  cx_achan_tx_drop((cx_achan_tx *)tx);
}

bool cx_oneshot_is_closed(const cx_oneshot_tx *tx) {
  return cx_achan_is_closed((const cx_achan_tx *)tx);
}

int cx_oneshot_try_recv(cx_oneshot_rx *rx, void *item) {
  return cx_achan_try_recv((cx_achan_rx *)rx, item);
}

int cx_oneshot_recv_blocking(cx_oneshot_rx *rx, void *item) {
  return cx_achan_recv_blocking((cx_achan_rx *)rx, item);
}

void cx_oneshot_rx_drop(cx_oneshot_rx *rx) {
  cx_achan_rx_drop((cx_achan_rx *)rx);
}
