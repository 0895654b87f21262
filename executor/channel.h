/*
 * A bounded, thread-safe multi-producer single-consumer channel of
 * fixed-size items: the seed's std::sync::mpsc::sync_channel, in C.
 *
 * Blocking calls (send, recv) park the calling OS thread: use them from
 * plain threads. Inside a task (on a thread running an executor) they would
 * stall every task of that executor, perhaps the one that would unblock
 * them, so there they return CX_EDEADLK instead of blocking; they still
 * succeed there when they need not wait (a recv on a non-empty channel).
 * try_send / try_recv never block and are safe anywhere.
 *
 * Ownership: cx_channel_create() returns one sender and the receiver. Each
 * sender (including every clone) must be dropped once with
 * cx_sender_drop(); the receiver once with cx_receiver_drop(). The channel
 * is freed when both sides are gone; items still inside are released with
 * the optional drop_item callback. Items are copied in and out by value
 * (item_size bytes).
 *
 * Disconnection: when every sender has been dropped, recv drains what is
 * left and then returns CX_EPIPE; when the receiver has been dropped, send
 * and try_send return CX_EPIPE at once (the item stays with the caller).
 *
 * Thread-safety: every function may be called from any thread; a given
 * sender or receiver handle must not be used after it was dropped.
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
#ifndef CEXEC_CHANNEL_H
#define CEXEC_CHANNEL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_sender cx_sender;
typedef struct cx_receiver cx_receiver;

/* Creates a channel for items of item_size bytes holding at most
 * `capacity` of them. drop_item (optional) releases items left in the
 * channel when it is freed. Returns CX_OK, CX_EINVAL (a NULL out pointer,
 * item_size 0, capacity 0 or too large), CX_ENOMEM. */
int cx_channel_create(size_t item_size, size_t capacity,
                      void (*drop_item)(void *item), cx_sender **tx,
                      cx_receiver **rx);

/* A new sender for the same channel (*out). CX_OK or CX_EINVAL (tx or out
 * NULL; *out is then NULL when out is not). Cloning allocates nothing. */
int cx_sender_clone(cx_sender *tx, cx_sender **out);

/* Copies *item in, blocking while the channel is full. CX_OK, CX_EPIPE
 * (receiver gone), CX_EINVAL (tx or item NULL), CX_EDEADLK (full, and called
 * inside a task: the item stays with the caller). */
int cx_channel_send(cx_sender *tx, const void *item);

/* As send, without blocking: CX_EAGAIN when full. */
int cx_channel_try_send(cx_sender *tx, const void *item);

/* Moves the oldest item into *item, blocking while the channel is empty and
 * a sender is alive. CX_OK, CX_EPIPE (empty and every sender gone),
 * CX_EINVAL (rx or item NULL), CX_EDEADLK (empty with a sender alive, inside a
 * task). */
int cx_channel_recv(cx_receiver *rx, void *item);

/* As recv, without blocking: CX_EAGAIN when empty with a sender alive. */
int cx_channel_try_recv(cx_receiver *rx, void *item);

/* Items in the channel now. 0 for NULL. */
size_t cx_channel_len(const cx_receiver *rx);

/* Drops a sender; the last one disconnects the channel (a blocked recv
 * returns CX_EPIPE once the channel is empty). NULL is a no-op. */
void cx_sender_drop(cx_sender *tx);

/* Drops the receiver: blocked and later sends return CX_EPIPE; items inside
 * are released with drop_item now. NULL is a no-op. */
void cx_receiver_drop(cx_receiver *rx);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_CHANNEL_H */
