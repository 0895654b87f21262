/*
 * Fuzz harness: the blocking MPSC channel (executor/channel.h) against a
 * model FIFO.
 *
 * Up to three channels live at once, each with its item size (1 to 100
 * bytes) and capacity (1 to 16). Operations: create (including invalid
 * arguments and a failing first or second allocation), send, try_send,
 * recv, try_recv, clone a sender, drop a sender, drop the receiver, bursts
 * of try_send / try_recv (to wrap the ring around), len. The harness is
 * single-threaded, so it calls a blocking send or recv only when the model
 * says it returns at once (room, an item, or a disconnection).
 *
 * Checked after every operation: each call's result (CX_OK, CX_EAGAIN when
 * full or empty, CX_EPIPE once the other side is gone: sends fail as soon as
 * the receiver is dropped, recv drains what is left before failing), the
 * FIFO order and the bytes of every item received, cx_channel_len, and the
 * allocator's live blocks (two per channel, freed when both sides are gone).
 * drop_item must be called exactly once for each item left when the
 * receiver goes, in FIFO order, and never otherwise. At the end every item
 * sent was received or dropped exactly once and nothing is left allocated.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor/channel.h"
#include "fuzz/fuzz_harnesses.h"
#include "fuzz/fuzz_util.h"
#include "waker/error.h"

#define H "channel"
#define FAIL(...) fz_fail(H, __VA_ARGS__)
#define CHECK(cond, ...)            \
  do {                              \
    if (!(cond)) FAIL(__VA_ARGS__); \
  } while (0)

enum { MAX_CH = 3, MAX_TX = 6, MAX_CAP = 16, MAX_ITEM = 100 };

typedef struct ch_model {
  bool exists; /* the channel's memory is alive */
  int ntx;     /* live sender handles */
  cx_sender *tx[MAX_TX];
  cx_receiver *rx; /* NULL once dropped */
  size_t item_size, cap;
  uint32_t q[MAX_CAP]; /* item sequence numbers, FIFO */
  size_t head, len;
} ch_model;

typedef struct ch_world {
  fz_input in;
  ch_model ch[MAX_CH];
  uint32_t next_seq;
  uint64_t sent, received, dropped;
  uint64_t attempts;
  /* expected drop_item calls */
  ch_model *dropping;
  size_t drop_pos;
} ch_world;

static ch_world *g_cw;

/* The bytes of item `seq` for a channel of `size`-byte items. */
static void item_bytes(uint32_t seq, size_t size, uint8_t *out) {
  uint64_t x = (uint64_t)seq * 0x9e3779b97f4a7c15u + 0x632be59bd9b4e019u;
  for (size_t j = 0; j < size; j++) {
    out[j] = (uint8_t)(x >> ((j % 8) * 8)) ^ (uint8_t)(j * 131);
    if (j % 8 == 7) x = x * 6364136223846793005u + 1442695040888963407u;
  }
}

static uint32_t m_at(const ch_model *c, size_t i) {
  return c->q[(c->head + i) % c->cap];
}

static void drop_item(void *item) {
  ch_world *w = g_cw;
  ch_model *c = w->dropping;
  CHECK(c != NULL, "drop_item called outside a receiver drop");
  CHECK(w->drop_pos < c->len, "drop_item called more times than items left");
  uint8_t want[MAX_ITEM];
  item_bytes(m_at(c, w->drop_pos), c->item_size, want);
  CHECK(memcmp(item, want, c->item_size) == 0,
        "drop_item got item %zu of %zu out of FIFO order or corrupt",
        w->drop_pos, c->len);
  w->drop_pos++;
  w->dropped++;
}

FZ_NO_COVERAGE static void check_all(ch_world *w, const char *where) {
  int64_t live = 0;
  for (int i = 0; i < MAX_CH; i++) {
    ch_model *c = &w->ch[i];
    if (!c->exists) continue;
    live += 2;
    if (c->rx) {
      size_t n = cx_channel_len(c->rx);
      CHECK(n == c->len, "%s: channel %d len %zu, model %zu", where, i, n,
            c->len);
    }
  }
  fz_alloc_stats as = fz_alloc_stats_get();
  CHECK(as.attempts == w->attempts, "%s: %llu allocation attempts, model %llu",
        where, (unsigned long long)as.attempts,
        (unsigned long long)w->attempts);
  CHECK(as.live == live, "%s: %lld live blocks, model %lld", where,
        (long long)as.live, (long long)live);
  CHECK(w->sent >= w->received + w->dropped, "%s: more items out than in",
        where);
}

static void m_maybe_freed(ch_model *c) {
  if (c->ntx == 0 && c->rx == NULL) c->exists = false;
}

static ch_model *pick_ch(ch_world *w) {
  uint8_t b = fz_u8(&w->in);
  ch_model *c = &w->ch[b % MAX_CH];
  return c->exists ? c : NULL;
}

static void op_create(ch_world *w) {
  uint8_t a = fz_u8(&w->in), b = fz_u8(&w->in);
  int slot = -1;
  for (int i = 0; i < MAX_CH; i++)
    if (!w->ch[i].exists) {
      slot = i;
      break;
    }
  static const size_t sizes[8] = {1, 2, 3, 4, 8, 13, 24, MAX_ITEM};
  size_t item_size = sizes[a & 7];
  size_t cap = 1 + (b & 15);
  cx_sender *tx = (cx_sender *)w;
  cx_receiver *rx = (cx_receiver *)w;
  int bad = (a >> 3) & 7; /* 1: size 0, 2: capacity 0, 3: overflow */
  if (bad >= 1 && bad <= 3) {
    /* bad 3: a ring of more than SIZE_MAX / 2 bytes. */
    size_t huge = SIZE_MAX / 2 / item_size + 1;
    int rc = cx_channel_create(bad == 1 ? 0 : item_size,
                               bad == 2 ? 0 : bad == 3 ? huge : cap,
                               drop_item, &tx, &rx);
    CHECK(rc == CX_EINVAL && tx == NULL && rx == NULL,
          "create with bad arguments (%d) gave %s", bad, cx_err_name(rc));
    rc = cx_channel_create(item_size, cap, drop_item, NULL, &rx);
    CHECK(rc == CX_EINVAL, "create with NULL tx gave %s", cx_err_name(rc));
    return;
  }
  if (slot < 0) return;
  int fail = (a >> 6) & 3; /* 1: first allocation fails, 2: second */
  if (fail == 1 || fail == 2) fz_alloc_fail_in((uint64_t)fail);
  int rc = cx_channel_create(item_size, cap, drop_item, &tx, &rx);
  fz_alloc_fail_in(0);
  if (fail == 1 || fail == 2) {
    w->attempts += (uint64_t)fail;
    CHECK(rc == CX_ENOMEM && tx == NULL && rx == NULL,
          "create with allocation %d failing gave %s", fail, cx_err_name(rc));
    return;
  }
  w->attempts += 2;
  CHECK(rc == CX_OK && tx != NULL && rx != NULL, "create gave %s",
        cx_err_name(rc));
  ch_model *c = &w->ch[slot];
  memset(c, 0, sizeof *c);
  c->exists = true;
  c->ntx = 1;
  c->tx[0] = tx;
  c->rx = rx;
  c->item_size = item_size;
  c->cap = cap;
}

static void do_send(ch_world *w, ch_model *c, int ti, bool block) {
  uint8_t item[MAX_ITEM];
  uint32_t seq = w->next_seq;
  item_bytes(seq, c->item_size, item);
  int want;
  if (c->rx == NULL)
    want = CX_EPIPE;
  else if (c->len == c->cap)
    want = CX_EAGAIN;
  else
    want = CX_OK;
  if (block && want == CX_EAGAIN) return; /* would block forever */
  int rc = block ? cx_channel_send(c->tx[ti], item)
                 : cx_channel_try_send(c->tx[ti], item);
  CHECK(rc == want, "%ssend gave %s, model %s (len %zu/%zu, receiver %s)",
        block ? "" : "try_", cx_err_name(rc), cx_err_name(want), c->len,
        c->cap, c->rx ? "alive" : "gone");
  if (rc != CX_OK) return;
  c->q[(c->head + c->len) % c->cap] = seq;
  c->len++;
  w->next_seq++;
  w->sent++;
}

static void do_recv(ch_world *w, ch_model *c, bool block) {
  if (c->rx == NULL) return;
  int want;
  if (c->len > 0)
    want = CX_OK;
  else if (c->ntx == 0)
    want = CX_EPIPE;
  else
    want = CX_EAGAIN;
  if (block && want == CX_EAGAIN) return; /* would block forever */
  uint8_t item[MAX_ITEM + 8];
  memset(item, 0xa5, sizeof item);
  int rc = block ? cx_channel_recv(c->rx, item) : cx_channel_try_recv(c->rx, item);
  CHECK(rc == want, "%srecv gave %s, model %s (len %zu, senders %d)",
        block ? "" : "try_", cx_err_name(rc), cx_err_name(want), c->len,
        c->ntx);
  for (size_t j = c->item_size; j < sizeof item; j++)
    CHECK(item[j] == 0xa5, "recv wrote past the item");
  if (rc != CX_OK) return;
  uint8_t expect[MAX_ITEM];
  item_bytes(c->q[c->head], c->item_size, expect);
  CHECK(memcmp(item, expect, c->item_size) == 0,
        "recv gave the wrong item (FIFO order broken or corrupt)");
  c->head = (c->head + 1) % c->cap;
  c->len--;
  w->received++;
}

static void drop_receiver(ch_world *w, ch_model *c) {
  if (c->rx == NULL) return;
  cx_receiver *rx = c->rx;
  w->dropping = c;
  w->drop_pos = 0;
  cx_receiver_drop(rx);
  w->dropping = NULL;
  CHECK(w->drop_pos == c->len, "receiver drop released %zu of %zu items",
        w->drop_pos, c->len);
  c->len = 0;
  c->head = 0;
  c->rx = NULL;
  m_maybe_freed(c);
}

static void drop_sender(ch_world *w, ch_model *c, int ti) {
  (void)w;
  cx_sender *tx = c->tx[ti];
  c->tx[ti] = c->tx[--c->ntx];
  cx_sender_drop(tx);
  m_maybe_freed(c);
}

int cx_fuzz_channel(const uint8_t *data, size_t size) {
  ch_world *w = calloc(1, sizeof *w);
  if (w == NULL) return 0;
  g_cw = w;
  fz_input_init(&w->in, data, size);
  fz_alloc_install(0);

  while (fz_more(&w->in)) {
    uint8_t op = fz_u8(&w->in);
    if (op % 10 == 0) {
      op_create(w);
      check_all(w, "create");
      continue;
    }
    ch_model *c = pick_ch(w);
    uint8_t arg = fz_u8(&w->in);
    if (c == NULL) continue;
    int ti = c->ntx ? arg % c->ntx : -1;
    switch (op % 10) {
      case 1:
        if (ti >= 0) do_send(w, c, ti, false);
        break;
      case 2:
        if (ti >= 0) do_send(w, c, ti, true);
        break;
      case 3: do_recv(w, c, false); break;
      case 4: do_recv(w, c, true); break;
      case 5:
        if (ti >= 0 && c->ntx < MAX_TX) {
          cx_sender *tx = NULL;
          int rc = cx_sender_clone(c->tx[ti], &tx);
          CHECK(rc == CX_OK && tx != NULL, "sender clone gave %s",
                cx_err_name(rc));
          c->tx[c->ntx++] = tx;
        }
        break;
      case 6:
        if (ti >= 0) drop_sender(w, c, ti);
        break;
      case 7:
        if (arg & 1) drop_receiver(w, c);
        break;
      case 8: /* bursts wrap the ring around */
        for (int k = 0; k < 1 + (arg >> 2); k++) {
          if (arg & 1) {
            if (c->ntx) do_send(w, c, k % c->ntx, false);
          } else {
            do_recv(w, c, false);
          }
        }
        break;
      default: { /* invalid arguments change nothing */
        uint8_t item[MAX_ITEM];
        if (ti >= 0) {
          CHECK(cx_channel_try_send(c->tx[ti], NULL) == CX_EINVAL &&
                    cx_channel_send(c->tx[ti], NULL) == CX_EINVAL,
                "send of NULL");
          CHECK(cx_sender_clone(c->tx[ti], NULL) == CX_EINVAL, "clone NULL");
        }
        if (c->rx)
          CHECK(cx_channel_try_recv(c->rx, NULL) == CX_EINVAL &&
                    cx_channel_recv(c->rx, NULL) == CX_EINVAL,
                "recv into NULL");
        CHECK(cx_channel_try_send(NULL, item) == CX_EINVAL &&
                  cx_channel_try_recv(NULL, item) == CX_EINVAL &&
                  cx_channel_len(NULL) == 0,
              "NULL channel");
        cx_sender_drop(NULL);
        cx_receiver_drop(NULL);
        break;
      }
    }
    check_all(w, "op");
  }

  /* Teardown in an input-chosen order: receiver first or senders first. */
  for (int i = 0; i < MAX_CH; i++) {
    ch_model *c = &w->ch[i];
    if (!c->exists) continue;
    bool rx_first = (c->len + (size_t)i) & 1;
    if (rx_first) drop_receiver(w, c);
    while (c->ntx > 0) {
      drop_sender(w, c, c->ntx - 1);
      check_all(w, "teardown");
    }
    /* With every sender gone, recv drains what is left, then EPIPE. */
    while (c->rx && c->len > 0) do_recv(w, c, (c->len & 1) != 0);
    do_recv(w, c, true);
    drop_receiver(w, c);
    check_all(w, "teardown");
  }
  fz_finish_items_and_memory(H, w->sent, w->received, w->dropped);
  g_cw = NULL;
  free(w);
  return 0;
}
