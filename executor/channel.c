/*
 * The blocking channel: a ring buffer (internal/ring.h) under one mutex with
 * two condition variables (not_empty for the receiver, not_full for senders).
 * Senders and the receiver are the channel pointer under two types; the counts
 * of each live in the channel, so cloning a sender allocates nothing.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, condattr_setclock */

#include "executor/channel.h"

#include <pthread.h>
#include <stdbool.h>

#include "executor/internal/ring.h"
#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/internal/current.h"

typedef struct cx__channel {
  pthread_mutex_t mu;
  pthread_cond_t not_empty;
  pthread_cond_t not_full;
  cx__ring ring; /* its storage is a second allocation */
  size_t senders;
  bool receiver_alive;
  void (*drop_item)(void *);
} cx__channel;

static cx__channel *cx__ch_tx(cx_sender *tx) {
  return (cx__channel *)tx;
}
static cx__channel *cx__ch_rx(cx_receiver *rx) {
  return (cx__channel *)rx;
}

int cx_channel_create(size_t item_size, size_t capacity,
                      void (*drop_item)(void *item), cx_sender **tx,
                      cx_receiver **rx) {
  if (tx) *tx = NULL;
  if (rx) *rx = NULL;
  if (tx == NULL || rx == NULL || !cx__ring_size_ok(item_size, capacity, 0))
    return CX_EINVAL;
  cx__channel *ch = cx_alloc(sizeof *ch, _Alignof(cx__channel));
  if (ch == NULL) return CX_ENOMEM;
  void *buf =
      cx_alloc(cx__ring_bytes(item_size, capacity), _Alignof(max_align_t));
  if (buf == NULL) {
    cx_free(ch, sizeof *ch, _Alignof(cx__channel));
    return CX_ENOMEM;
  }
  cx__ring_init(&ch->ring, buf, item_size, capacity);
  pthread_mutex_init(&ch->mu, NULL);
  pthread_cond_init(&ch->not_empty, NULL);
  pthread_cond_init(&ch->not_full, NULL);
  ch->senders = 1;
  ch->receiver_alive = true;
  ch->drop_item = drop_item;
  *tx = (cx_sender *)ch;
  *rx = (cx_receiver *)ch;
  return CX_OK;
}

static void cx__ch_free(cx__channel *ch) {
  cx__ring_drain(&ch->ring, ch->drop_item);
  pthread_cond_destroy(&ch->not_full);
  pthread_cond_destroy(&ch->not_empty);
  pthread_mutex_destroy(&ch->mu);
  cx_free(ch->ring.buf, cx__ring_bytes(ch->ring.item_size, ch->ring.capacity),
          _Alignof(max_align_t));
  cx_free(ch, sizeof *ch, _Alignof(cx__channel));
}

int cx_sender_clone(cx_sender *tx, cx_sender **out) {
  if (out) *out = NULL;
  if (tx == NULL || out == NULL) return CX_EINVAL;
  cx__channel *ch = cx__ch_tx(tx);
  pthread_mutex_lock(&ch->mu);
  ch->senders++;
  pthread_mutex_unlock(&ch->mu);
  *out = tx;
  return CX_OK;
}

static int cx__ch_send(cx_sender *tx, const void *item, bool block) {
  if (tx == NULL || item == NULL) return CX_EINVAL;
  cx__channel *ch = cx__ch_tx(tx);
  pthread_mutex_lock(&ch->mu);
  while (ch->receiver_alive && cx__ring_is_full(&ch->ring)) {
    /* Inside a task, waiting would stall the executor that runs the
     * receiver (or every other task): refuse, as cx_executor_join does. */
    int rc = !block                           ? CX_EAGAIN
             : cx__current_executor() != NULL ? CX_EDEADLK
                                              : CX_OK;
    if (rc != CX_OK) {
      pthread_mutex_unlock(&ch->mu);
      return rc;
    }
    pthread_cond_wait(&ch->not_full, &ch->mu);
  }
  if (!ch->receiver_alive) {
    pthread_mutex_unlock(&ch->mu);
    return CX_EPIPE;
  }
  cx__ring_push(&ch->ring, item);
  pthread_cond_signal(&ch->not_empty);
  pthread_mutex_unlock(&ch->mu);
  return CX_OK;
}

int cx_channel_send(cx_sender *tx, const void *item) {
  return cx__ch_send(tx, item, true);
}

int cx_channel_try_send(cx_sender *tx, const void *item) {
  return cx__ch_send(tx, item, false);
}

static int cx__ch_recv(cx_receiver *rx, void *item, bool block) {
  if (rx == NULL || item == NULL) return CX_EINVAL;
  cx__channel *ch = cx__ch_rx(rx);
  pthread_mutex_lock(&ch->mu);
  while (cx__ring_is_empty(&ch->ring)) {
    int rc = ch->senders == 0                 ? CX_EPIPE
             : !block                         ? CX_EAGAIN
             : cx__current_executor() != NULL ? CX_EDEADLK
                                              : CX_OK;
    if (rc != CX_OK) {
      pthread_mutex_unlock(&ch->mu);
      return rc;
    }
    pthread_cond_wait(&ch->not_empty, &ch->mu);
  }
  cx__ring_pop(&ch->ring, item);
  pthread_cond_signal(&ch->not_full);
  pthread_mutex_unlock(&ch->mu);
  return CX_OK;
}

int cx_channel_recv(cx_receiver *rx, void *item) {
  return cx__ch_recv(rx, item, true);
}

int cx_channel_try_recv(cx_receiver *rx, void *item) {
  return cx__ch_recv(rx, item, false);
}

size_t cx_channel_len(const cx_receiver *rx) {
  if (rx == NULL) return 0;
  cx__channel *ch = cx__ch_rx((cx_receiver *)rx);
  pthread_mutex_lock(&ch->mu);
  size_t n = ch->ring.len;
  pthread_mutex_unlock(&ch->mu);
  return n;
}

void cx_sender_drop(cx_sender *tx) {
  if (tx == NULL) return;
  cx__channel *ch = cx__ch_tx(tx);
  pthread_mutex_lock(&ch->mu);
  bool last = --ch->senders == 0;
  bool free_it = last && !ch->receiver_alive;
  /* Wake a receiver blocked on an empty channel: it must see CX_EPIPE. */
  if (last) pthread_cond_broadcast(&ch->not_empty);
  pthread_mutex_unlock(&ch->mu);
  if (free_it) cx__ch_free(ch);
}

void cx_receiver_drop(cx_receiver *rx) {
  if (rx == NULL) return;
  cx__channel *ch = cx__ch_rx(rx);
  pthread_mutex_lock(&ch->mu);
  ch->receiver_alive = false;
  cx__ring_drain(&ch->ring, ch->drop_item);
  bool free_it = ch->senders == 0;
  /* Blocked senders must see CX_EPIPE. */
  pthread_cond_broadcast(&ch->not_full);
  pthread_mutex_unlock(&ch->mu);
  if (free_it) cx__ch_free(ch);
}
