/*
 * The blocking channel: a ring buffer under one mutex with two condition
 * variables (not_empty for the receiver, not_full for senders). Senders and
 * the receiver are the channel pointer under two types; the counts of each
 * live in the channel, so cloning a sender allocates nothing.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, condattr_setclock */

#include "executor/channel.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/internal/current.h"

typedef struct cx__channel {
  pthread_mutex_t mu;
  pthread_cond_t not_empty;
  pthread_cond_t not_full;
  size_t item_size, capacity;
  size_t head, len; /* ring of capacity slots */
  size_t senders;
  bool receiver_alive;
  void (*drop_item)(void *);
  unsigned char *buf;
} cx__channel;

static cx__channel *cx__ch_tx(cx_sender *tx) {
  return (cx__channel *)tx;
}
static cx__channel *cx__ch_rx(cx_receiver *rx) {
  return (cx__channel *)rx;
}

static size_t cx__ch_bytes(size_t item_size, size_t capacity) {
  return item_size * capacity;
}

int cx_channel_create(size_t item_size, size_t capacity,
                      void (*drop_item)(void *item), cx_sender **tx,
                      cx_receiver **rx) {
  if (tx) *tx = NULL;
  if (rx) *rx = NULL;
  if (tx == NULL || rx == NULL || item_size == 0 || capacity == 0)
    return CX_EINVAL;
  if (capacity > SIZE_MAX / 2 / item_size) return CX_EINVAL;
  cx__channel *ch = cx_alloc(sizeof *ch, _Alignof(cx__channel));
  if (ch == NULL) return CX_ENOMEM;
  ch->buf = cx_alloc(cx__ch_bytes(item_size, capacity), _Alignof(max_align_t));
  if (ch->buf == NULL) {
    cx_free(ch, sizeof *ch, _Alignof(cx__channel));
    return CX_ENOMEM;
  }
  pthread_mutex_init(&ch->mu, NULL);
  pthread_cond_init(&ch->not_empty, NULL);
  pthread_cond_init(&ch->not_full, NULL);
  ch->item_size = item_size;
  ch->capacity = capacity;
  ch->head = ch->len = 0;
  ch->senders = 1;
  ch->receiver_alive = true;
  ch->drop_item = drop_item;
  *tx = (cx_sender *)ch;
  *rx = (cx_receiver *)ch;
  return CX_OK;
}

static unsigned char *cx__ch_slot(cx__channel *ch, size_t i) {
  return ch->buf + ((ch->head + i) % ch->capacity) * ch->item_size;
}

/* Releases every item left (mu held or channel unshared). */
static void cx__ch_drain(cx__channel *ch) {
  while (ch->len > 0) {
    if (ch->drop_item) ch->drop_item(cx__ch_slot(ch, 0));
    ch->head = (ch->head + 1) % ch->capacity;
    ch->len--;
  }
}

static void cx__ch_free(cx__channel *ch) {
  cx__ch_drain(ch);
  pthread_cond_destroy(&ch->not_full);
  pthread_cond_destroy(&ch->not_empty);
  pthread_mutex_destroy(&ch->mu);
  cx_free(ch->buf, cx__ch_bytes(ch->item_size, ch->capacity),
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
  while (ch->receiver_alive && ch->len == ch->capacity) {
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
  memcpy(cx__ch_slot(ch, ch->len), item, ch->item_size);
  ch->len++;
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
  while (ch->len == 0) {
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
  memcpy(item, cx__ch_slot(ch, 0), ch->item_size);
  ch->head = (ch->head + 1) % ch->capacity;
  ch->len--;
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
  size_t n = ch->len;
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
  cx__ch_drain(ch);
  bool free_it = ch->senders == 0;
  /* Blocked senders must see CX_EPIPE. */
  pthread_cond_broadcast(&ch->not_full);
  pthread_mutex_unlock(&ch->mu);
  if (free_it) cx__ch_free(ch);
}
