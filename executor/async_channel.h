/*
 * Async channels: a bounded multi-producer single-consumer channel, and a
 * oneshot, whose send and recv are futures that pend instead of blocking
 * (Tokio's mpsc::channel and oneshot, in C).
 *
 * Items are fixed-size (item_size bytes) and copied in and out by value.
 * The channel is one allocation (header + ring buffer of `capacity` items);
 * the futures allocate nothing: a pending send is a node of an intrusive
 * FIFO of waiting senders, embedded in the send future itself.
 *
 * Wakeups. The receiver's waker is kept in the channel while a recv pends;
 * every send (async, try or blocking) wakes it. Waiting senders queue in
 * FIFO order; every item taken out wakes the first one. A woken sender that
 * finds the slot taken by someone faster goes back to the head of the
 * queue; a woken sender dropped before it could use its turn hands the turn
 * to the next one. So a wake is never lost, and capacity 1 works (each item
 * handed over wakes exactly the other side). Dropping a pending send or recv
 * future takes its waker back out of the channel.
 *
 * Disconnection. When the receiver is dropped, items still inside are
 * released (drop_item), every pending send wakes and completes with
 * CX_EPIPE, and later sends fail with CX_EPIPE (the item stays with the
 * caller). When the last sender is dropped, recv drains what is left and
 * then completes with CX_EPIPE.
 *
 * Ownership. cx_achan_create() returns one sender handle and the receiver
 * handle. Each sender handle (and every clone) must be dropped once with
 * cx_achan_tx_drop(); the receiver once with cx_achan_rx_drop(). The
 * channel is freed when all of them are gone. A send or recv future borrows
 * its handle: the handle must outlive the future (drop the future first).
 *
 * Thread-safety: the channel is guarded by a lock, so every function may be
 * called from any thread: tasks on different executors, or plain threads
 * (cx_achan_send_blocking / cx_achan_recv_blocking let a thread feed a task
 * or drain one). A future is polled and dropped by one thread at a time, as
 * always. Wakers are never woken or dropped with the lock held, and
 * drop_item runs with it held (it must not use the channel).
 *
 * The blocking calls park the calling OS thread: they are for plain threads.
 * Inside a task (on a thread running an executor) a call that would have to
 * wait returns CX_EDEADLK instead, since waiting would stall the whole
 * executor; one that need not wait (room to send, an item to take) works.
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
#ifndef CEXEC_ASYNC_CHANNEL_H
#define CEXEC_ASYNC_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "executor/internal/list.h" /* the type of a private field */
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_achan_tx cx_achan_tx; /* a sender handle */
typedef struct cx_achan_rx cx_achan_rx; /* the receiver handle */

/* Creates a channel for items of item_size bytes holding at most `capacity`
 * of them (>= 1). drop_item (optional) releases items the receiver never
 * took. Returns CX_OK, CX_EINVAL (a NULL out pointer, item_size or capacity
 * 0, or a size overflow), CX_ENOMEM. On error *tx and *rx are NULL. */
int cx_achan_create(size_t item_size, size_t capacity,
                    void (*drop_item)(void *item), cx_achan_tx **tx,
                    cx_achan_rx **rx);

/* A new sender handle for the same channel. Allocates nothing. CX_OK or
 * CX_EINVAL. Works after the receiver is gone (sends then fail). */
int cx_achan_tx_clone(cx_achan_tx *tx, cx_achan_tx **out);

/* Drops a sender handle; the last one disconnects the channel (a pending
 * recv wakes and, once the channel is empty, completes with CX_EPIPE). No
 * send future on this handle may be alive. NULL is a no-op. */
void cx_achan_tx_drop(cx_achan_tx *tx);

/* Drops the receiver: items left are released with drop_item, pending sends
 * wake with CX_EPIPE. No recv future on it may be alive. NULL is a no-op. */
void cx_achan_rx_drop(cx_achan_rx *rx);

/* Copies *item in without waiting. CX_OK, CX_EAGAIN (full), CX_EPIPE
 * (receiver gone), CX_EINVAL (NULL argument). Any thread, inside a task or
 * not. */
int cx_achan_try_send(cx_achan_tx *tx, const void *item);

/* Moves the oldest item into *item without waiting. CX_OK, CX_EAGAIN
 * (empty, a sender alive), CX_EPIPE (empty, every sender gone), CX_EINVAL. */
int cx_achan_try_recv(cx_achan_rx *rx, void *item);

/* Blocks the calling thread while the channel is full, then copies *item in.
 * CX_OK, CX_EPIPE (receiver gone: the item stays with the caller),
 * CX_EINVAL, CX_EDEADLK (full, inside a task: the item stays too). */
int cx_achan_send_blocking(cx_achan_tx *tx, const void *item);

/* Blocks the calling thread while the channel is empty and a sender is
 * alive. CX_OK, CX_EPIPE, CX_EINVAL, CX_EDEADLK (empty with a sender alive,
 * inside a task). */
int cx_achan_recv_blocking(cx_achan_rx *rx, void *item);

/* Items in the channel now (a snapshot). 0 for NULL. */
size_t cx_achan_len(const cx_achan_rx *rx);

/* True once the receiver was dropped (sends can only fail). True for NULL. */
bool cx_achan_is_closed(const cx_achan_tx *tx);

/* ---- the send future ---------------------------------------------------- */

/* Sends one item, waiting for room. Output: int, CX_OK (the item was copied
 * in), CX_EPIPE (receiver gone; the item was not taken) or CX_EINVAL (not
 * initialised). Fields are private. A zeroed value is a valid "empty" send
 * that can be dropped. */
typedef struct cx_achan_send {
  cx_achan_tx *tx;
  const void *item;
  cx__list_node link; /* in the FIFO of waiting senders */
  cx_waker waker;     /* guarded by the channel's lock */
  bool queued;        /* in the FIFO (guarded by the channel's lock) */
  bool notified;      /* popped and woken: owes a turn (guarded likewise) */
  bool waiting;       /* owner only: returned CX_PENDING, not finished */
  bool done;
} cx_achan_send;

/* Prepares a send of *item on tx. Borrows both: *item must stay valid and
 * unchanged until the send completes or is dropped (it is copied at
 * completion). Nothing is registered until the first poll. s NULL: no-op;
 * tx or item NULL: the poll completes with CX_EINVAL. */
void cx_achan_send_init(cx_achan_send *s, cx_achan_tx *tx, const void *item);

/* CX_READY with *result (may be NULL) set, or CX_PENDING with cx->waker
 * registered in the FIFO of waiting senders. CX_EINVAL for NULL s, cx or
 * cx->waker (or a waker cx_waker_clone refuses). */
cx_poll cx_achan_send_poll(cx_achan_send *s, cx_context *cx, int *result);

/* Withdraws a pending send (its waker leaves the channel; a turn it was
 * given passes to the next sender). Idempotent; zeroed or NULL: no-op. */
void cx_achan_send_drop(cx_achan_send *s);

/* cx_achan_send as a future: state cx_achan_send, output int. */
extern const cx_future_vtable cx_achan_send_vtable;

/* ---- the recv future ---------------------------------------------------- */

/* Receives one item. Output: int, CX_OK (the item is in *item), CX_EPIPE
 * (empty and every sender gone) or CX_EINVAL. At most one recv future per
 * receiver should pend at a time (the channel keeps one receiver waker: a
 * second pending recv takes the slot over). A zeroed value can be dropped. */
typedef struct cx_achan_recv {
  cx_achan_rx *rx;
  void *item;
  bool registered; /* our waker may be in the channel */
  bool done;
} cx_achan_recv;

/* Prepares a recv into *item (borrowed, item_size bytes, written only when
 * the recv completes with CX_OK). r NULL: no-op; rx or item NULL: the poll
 * completes with CX_EINVAL. */
void cx_achan_recv_init(cx_achan_recv *r, cx_achan_rx *rx, void *item);

/* CX_READY with *result (may be NULL) set, or CX_PENDING with cx->waker
 * stored as the receiver's waker. CX_EINVAL for NULL r, cx or cx->waker
 * (or a waker cx_waker_clone refuses). */
cx_poll cx_achan_recv_poll(cx_achan_recv *r, cx_context *cx, int *result);

/* Withdraws a pending recv (its waker leaves the channel). Idempotent;
 * zeroed or NULL: no-op. */
void cx_achan_recv_drop(cx_achan_recv *r);

/* cx_achan_recv as a future: state cx_achan_recv, output int. */
extern const cx_future_vtable cx_achan_recv_vtable;

/* ---- oneshot ------------------------------------------------------------ */

/* A channel for exactly one item: one sender, one receiver. The sender
 * either sends (cx_oneshot_send) or is dropped (cx_oneshot_tx_drop); each
 * consumes it. The receiver awaits the item with cx_oneshot_recv, which
 * completes with CX_EPIPE if the sender went away without sending. */
typedef struct cx_oneshot_tx cx_oneshot_tx;
typedef struct cx_oneshot_rx cx_oneshot_rx;

/* CX_OK, CX_EINVAL (NULL out pointer, item_size 0), CX_ENOMEM. */
int cx_oneshot_create(size_t item_size, void (*drop_item)(void *item),
                      cx_oneshot_tx **tx, cx_oneshot_rx **rx);

/* Sends *item and consumes tx (whatever the result). CX_OK, CX_EPIPE (the
 * receiver is gone: the item was not taken), CX_EINVAL (tx or item NULL;
 * tx, if not NULL, is still consumed). Never blocks; any thread. */
int cx_oneshot_send(cx_oneshot_tx *tx, const void *item);

/* Drops the sender without sending: the receiver sees CX_EPIPE. NULL is a
 * no-op. */
void cx_oneshot_tx_drop(cx_oneshot_tx *tx);

/* True once the receiver was dropped. True for NULL. */
bool cx_oneshot_is_closed(const cx_oneshot_tx *tx);

/* CX_OK, CX_EAGAIN (not sent yet), CX_EPIPE (sender gone, or the item was
 * already received), CX_EINVAL (rx or item NULL). */
int cx_oneshot_try_recv(cx_oneshot_rx *rx, void *item);

/* Blocks the calling thread until the item arrives. CX_OK, CX_EPIPE,
 * CX_EINVAL, CX_EDEADLK (not sent yet, inside a task). */
int cx_oneshot_recv_blocking(cx_oneshot_rx *rx, void *item);

/* Drops the receiver (an item sent and not received is dropped). NULL is a
 * no-op. */
void cx_oneshot_rx_drop(cx_oneshot_rx *rx);

/* The receive future: a cx_achan_recv on the oneshot's channel. Same output
 * and rules; drop it with cx_achan_recv_drop, or use cx_achan_recv_vtable. */
typedef cx_achan_recv cx_oneshot_recv;

static inline void cx_oneshot_recv_init(cx_oneshot_recv *r, cx_oneshot_rx *rx,
                                        void *item) {
  cx_achan_recv_init(r, (cx_achan_rx *)rx, item);
}

static inline cx_poll cx_oneshot_recv_poll(cx_oneshot_recv *r, cx_context *cx,
                                           int *result) {
  return cx_achan_recv_poll(r, cx, result);
}

static inline void cx_oneshot_recv_drop(cx_oneshot_recv *r) {
  cx_achan_recv_drop(r);
}

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_ASYNC_CHANNEL_H */
