/*
 * A ring buffer of fixed-size items over caller-provided storage (private
 * to cexec): the queue inside both the blocking channel (channel.c) and the
 * async channel (async_channel.c).
 *
 * Items are copied in and out by value (item_size bytes). The ring does not
 * allocate and is not thread-safe: the channel's mutex guards it. push
 * needs room and pop an item: the callers test cx__ring_is_full /
 * cx__ring_is_empty first. Arguments are never NULL (internal helpers).
 */
#ifndef CEXEC_EXECUTOR_INTERNAL_RING_H
#define CEXEC_EXECUTOR_INTERNAL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "executor/internal/copy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx__ring {
  unsigned char *buf; /* capacity * item_size bytes */
  size_t item_size, capacity;
  size_t head; /* index of the oldest item */
  size_t len;  /* items stored */
} cx__ring;

/* True when a ring of `capacity` items of item_size bytes, plus `extra`
 * bytes of header, fits in half the address space (both nonzero). The
 * channels refuse other sizes with CX_EINVAL before allocating. */
static inline bool cx__ring_size_ok(size_t item_size, size_t capacity,
                                    size_t extra) {
  if (item_size == 0 || capacity == 0 || extra > SIZE_MAX / 2) return false;
  return capacity <= (SIZE_MAX / 2 - extra) / item_size;
}

/* Bytes of storage for the ring (size_ok must hold). */
static inline size_t cx__ring_bytes(size_t item_size, size_t capacity) {
  return item_size * capacity;
}

static inline void cx__ring_init(cx__ring *r, void *buf, size_t item_size,
                                 size_t capacity) {
  r->buf = (unsigned char *)buf;
  r->item_size = item_size;
  r->capacity = capacity;
  r->head = r->len = 0;
}

static inline bool cx__ring_is_empty(const cx__ring *r) {
  return r->len == 0;
}

static inline bool cx__ring_is_full(const cx__ring *r) {
  return r->len == r->capacity;
}

/* The i-th oldest item (i < len, or i == len for the next free slot).
 * head < capacity and i <= capacity, so one subtraction wraps the index
 * (no division on the hot path; size_ok keeps the sum from overflowing). */
static inline unsigned char *cx__ring_slot(const cx__ring *r, size_t i) {
  size_t idx = r->head + i;
  if (idx >= r->capacity) idx -= r->capacity;
  return r->buf + idx * r->item_size;
}

/* Copies *item in as the newest item. The ring must not be full. */
static inline void cx__ring_push(cx__ring *r, const void *item) {
  cx__copy_small(cx__ring_slot(r, r->len), item, r->item_size);
  r->len++;
}

/* Forgets the oldest item (after it was copied out or released). */
static inline void cx__ring_discard_oldest(cx__ring *r) {
  r->head = r->head + 1 == r->capacity ? 0 : r->head + 1;
  r->len--;
}

/* Moves the oldest item into *item. The ring must not be empty. */
static inline void cx__ring_pop(cx__ring *r, void *item) {
  cx__copy_small(item, cx__ring_slot(r, 0), r->item_size);
  cx__ring_discard_oldest(r);
}

/* Empties the ring, releasing every item with drop_item (may be NULL). */
static inline void cx__ring_drain(cx__ring *r, void (*drop_item)(void *)) {
  while (r->len > 0) {
    if (drop_item) drop_item(cx__ring_slot(r, 0));
    cx__ring_discard_oldest(r);
  }
}

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_EXECUTOR_INTERNAL_RING_H */
