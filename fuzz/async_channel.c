/*
 * Fuzz harness: the async MPSC channel (executor/async_channel.h) and join
 * futures (executor/join_future.h) on one executor with a manual clock,
 * against a model.
 *
 * The input is a program. Its first byte chooses the first channel's
 * capacity (1 to 4) and the teardown order; every later operation is an op
 * byte and an argument byte:
 *   - create a channel (capacity 1..4) once the previous one is gone;
 *   - spawn a sender task: it owns a clone of a sender handle and sends a
 *     byte-chosen number of numbered items, each through a cx_achan_send
 *     future, yielding between items as the input says;
 *   - spawn a receiver task: a loop of cx_achan_recv futures (a byte-chosen
 *     number of items, or until CX_EPIPE) on the harness's receiver;
 *   - clone or drop a sender handle the harness holds ("outside");
 *   - drop the receiver (at once, or, while a receiver task lives, when its
 *     future is dropped; optionally cancelling that task);
 *   - try_send / try_recv from the outside;
 *   - step the executor, or run it until idle;
 *   - cancel any task through its join handle; try_join or detach a handle;
 *   - spawn a joiner task that awaits another task's output through a
 *     cx_join_future (which takes the handle over: detach_on_drop);
 *   - fail the allocation of the next spawn or channel creation (the
 *     counting allocator of fuzz_util.h);
 *   - advance the manual clock.
 *
 * Checked after every operation and inside every poll:
 *   - the channel is one FIFO: every item received (by a recv future or
 *     try_recv) is the model queue's head, so per-sender order holds,
 *     nothing is received twice and nothing that was not sent; items carry
 *     a check word against corruption;
 *   - cx_achan_len() equals the model's length, which never exceeds the
 *     capacity; every result is the model's: a send completes CX_OK only
 *     with room, pends only when full, and completes CX_EPIPE exactly when
 *     the receiver is gone; a recv completes CX_OK only with an item,
 *     CX_EPIPE only when empty with every sender gone, and pends only when
 *     empty with a sender alive; try_send / try_recv likewise;
 *   - no wake is lost: after run_until_idle (or a step that found nothing
 *     ready) every live task waits for a reason the model confirms (a send
 *     on a full channel, a recv on an empty connected one, a join on an
 *     unfinished task), none is left yielded, unpolled, or cancelled;
 *   - a task is never polled after it completed or was cancelled; join
 *     futures and try_join report the model's result (the output, or
 *     CX_ECANCELED, CX_EALREADY, CX_EAGAIN);
 *   - cx_executor_debug_check(ex) == CX_OK;
 *   - a failed allocation gives CX_ENOMEM and changes nothing (the state
 *     was not taken: it is not dropped).
 * At the end (everything dropped, the executor destroyed): every future was
 * dropped exactly once, drop_item ran exactly once for each item left
 * inside (in FIFO order), every item sent was received or dropped, and the
 * allocator has no live block.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor/async_channel.h"
#include "executor/debug.h"
#include "executor/executor.h"
#include "executor/join_future.h"
#include "fuzz/fuzz_harnesses.h"
#include "fuzz/fuzz_util.h"
#include "waker/error.h"

#define H "async_channel"
#define FAIL(...) fz_fail(H, __VA_ARGS__)
#define CHECK(cond, ...)            \
  do {                              \
    if (!(cond)) FAIL(__VA_ARGS__); \
  } while (0)

enum {
  MAX_TASKS = 40,
  MAX_OUT_TX = 4, /* sender handles the harness holds */
  MAX_SENDERS = 256,
  MAX_CAP = 4,
  MAX_ITEMS_PER_TASK = 8,
};

#define FUT_MAGIC 0x41434821u
#define FUT_DEAD 0xdeadc0deu

typedef struct fz_item {
  uint32_t id; /* sender << 8 | seq */
  uint32_t check;
} fz_item;

static uint32_t item_check(uint32_t id) {
  return id * 0x9e3779b9u ^ 0x5bd1e995u;
}
static fz_item make_item(int sender, int seq) {
  fz_item it;
  it.id = (uint32_t)sender << 8 | (uint32_t)seq;
  it.check = item_check(it.id);
  return it;
}

enum { K_SEND = 1, K_RECV, K_JOIN };
enum { W_NEW = 0, W_SEND, W_RECV, W_JOIN, W_YIELD, W_DONE };

typedef struct task_rec {
  int kind;
  cx_join_handle *handle; /* held by the harness, or NULL */
  bool completed, cancel_req, output_taken;
  int drops;
  int output;
  int wait;   /* W_*: why its last poll pended */
  int target; /* joiners: the task joined */
} task_rec;

typedef struct aw {
  fz_input in;
  cx_executor *ex;
  uint64_t now;
  /* the channel */
  bool chan; /* a channel exists (some handle of it is alive) */
  size_t cap;
  cx_achan_rx *rx; /* NULL once dropped */
  bool rx_drop_pending;
  int recv_task; /* the live receiver task (its future alive), or -1 */
  cx_achan_tx *otx[MAX_OUT_TX];
  int otx_sender[MAX_OUT_TX]; /* sender id of each outside handle */
  int n_otx;
  int senders; /* live sender handles: outside + inside tasks */
  fz_item q[MAX_CAP];
  size_t qhead, qlen;
  /* per-sender next sequence number sent / taken out */
  int next_seq[MAX_SENDERS];
  int next_out[MAX_SENDERS];
  int n_sender_ids;
  uint64_t sent, received, dropped;
  bool in_rx_drop;
  /* tasks */
  task_rec t[MAX_TASKS];
  int ntasks;
  bool fail_next_alloc;
} aw;

static aw *g_w;

/* ---- model -------------------------------------------------------------- */

FZ_NO_COVERAGE static void m_push(aw *w, fz_item it) {
  CHECK(w->rx != NULL, "an item went in after the receiver was dropped");
  CHECK(w->qlen < w->cap, "an item went into a full channel (cap %zu)", w->cap);
  int s = (int)(it.id >> 8), seq = (int)(it.id & 0xff);
  CHECK(seq == w->next_seq[s], "sender %d sent seq %d, model %d", s, seq,
        w->next_seq[s]);
  w->next_seq[s]++;
  w->q[(w->qhead + w->qlen) % w->cap] = it;
  w->qlen++;
  w->sent++;
}

/* An item came out (received or dropped): it must be the queue's head. */
FZ_NO_COVERAGE static void m_take(aw *w, const fz_item *it, const char *how) {
  CHECK(w->qlen > 0, "%s: an item came out of an empty channel", how);
  CHECK(it->check == item_check(it->id), "%s: corrupt item %#x", how,
        (unsigned)it->id);
  fz_item want = w->q[w->qhead];
  int s = (int)(it->id >> 8), seq = (int)(it->id & 0xff);
  CHECK(s < w->n_sender_ids && seq < w->next_seq[s],
        "%s: item %d.%d was never sent", how, s, seq);
  CHECK(seq >= w->next_out[s], "%s: item %d.%d came out twice", how, s, seq);
  CHECK(seq == w->next_out[s], "%s: item %d.%d out of sender order (want %d)",
        how, s, seq, w->next_out[s]);
  CHECK(want.id == it->id, "%s: item %#x out of FIFO order (want %#x)", how,
        (unsigned)it->id, (unsigned)want.id);
  w->next_out[s]++;
  w->qhead = (w->qhead + 1) % w->cap;
  w->qlen--;
}

static void drop_item(void *item) {
  aw *w = g_w;
  CHECK(w->in_rx_drop, "drop_item called outside a receiver drop");
  fz_item it;
  memcpy(&it, item, sizeof it);
  m_take(w, &it, "drop_item");
  w->dropped++;
}

static bool t_finished(const task_rec *r) {
  return r->completed || (r->cancel_req && r->drops > 0);
}

static void m_chan_maybe_gone(aw *w) {
  if (w->chan && w->rx == NULL && w->senders == 0) w->chan = false;
}

static void do_rx_drop(aw *w) {
  CHECK(w->rx != NULL, "receiver dropped twice");
  w->in_rx_drop = true;
  cx_achan_rx_drop(w->rx);
  w->in_rx_drop = false;
  CHECK(w->qlen == 0, "receiver drop left %zu items undropped", w->qlen);
  w->rx = NULL;
  w->rx_drop_pending = false;
  m_chan_maybe_gone(w);
}

FZ_NO_COVERAGE static void check_all(aw *w, const char *where) {
  const char *why = NULL;
  if (cx_executor_debug_check(w->ex, &why) != CX_OK)
    FAIL("%s: cx_executor_debug_check: %s", where, why ? why : "?");
  CHECK(w->qlen <= w->cap, "%s: model length over capacity", where);
  if (w->rx) {
    size_t n = cx_achan_len(w->rx);
    CHECK(n == w->qlen, "%s: cx_achan_len %zu, model %zu", where, n, w->qlen);
    CHECK(n <= w->cap, "%s: length %zu over capacity %zu", where, n, w->cap);
  }
  CHECK(w->sent == w->received + w->dropped + w->qlen,
        "%s: %llu sent, %llu received, %llu dropped, %zu inside", where,
        (unsigned long long)w->sent, (unsigned long long)w->received,
        (unsigned long long)w->dropped, w->qlen);
  for (int i = 0; i < w->ntasks; i++)
    CHECK(w->t[i].drops <= 1, "%s: task %d dropped %d times", where, i,
          w->t[i].drops);
}

/* After the executor went idle: no wake may have been lost. */
FZ_NO_COVERAGE static void check_idle(aw *w, const char *where) {
  CHECK(cx_executor_debug_ready_len(w->ex) == 0, "%s: ready tasks left", where);
  for (int i = 0; i < w->ntasks; i++) {
    task_rec *r = &w->t[i];
    if (r->drops > 0) continue;
    CHECK(!r->cancel_req, "%s: task %d cancelled but not dropped", where, i);
    switch (r->wait) {
      case W_SEND:
        CHECK(w->rx != NULL && w->qlen == w->cap,
              "%s: sender task %d still waits (len %zu/%zu, receiver %s): "
              "lost wake",
              where, i, w->qlen, w->cap, w->rx ? "alive" : "gone");
        break;
      case W_RECV:
        CHECK(w->qlen == 0 && w->senders > 0,
              "%s: receiver task %d still waits (len %zu, senders %d): lost "
              "wake",
              where, i, w->qlen, w->senders);
        break;
      case W_JOIN:
        CHECK(!t_finished(&w->t[r->target]),
              "%s: joiner %d still waits for finished task %d: lost wake",
              where, i, r->target);
        break;
      default:
        FAIL("%s: task %d (state %d) is neither done nor waiting", where, i,
             r->wait);
    }
  }
}

/* ---- the futures -------------------------------------------------------- */

typedef struct snd_fut {
  uint32_t magic;
  int tid, sender, n, i;
  uint8_t yield_mask;
  bool in_flight;
  cx_achan_tx *tx; /* owned */
  fz_item item;
  cx_achan_send s;
} snd_fut;

typedef struct rcv_fut {
  uint32_t magic;
  int tid, n, got;
  uint8_t yield_mask;
  bool in_flight;
  fz_item item;
  cx_achan_recv r;
} rcv_fut;

typedef struct join_fut {
  uint32_t magic;
  int tid, target;
  bool discard, inited;
  cx_join_handle *h; /* owned until the join future takes it */
  int out;
  cx_join_future jf;
} join_fut;

FZ_NO_COVERAGE static task_rec *enter_poll(aw *w, uint32_t magic, int tid) {
  CHECK(magic == FUT_MAGIC, "task %d polled after its future was dropped", tid);
  task_rec *r = &w->t[tid];
  CHECK(r->drops == 0 && !r->completed, "task %d polled after it finished",
        tid);
  CHECK(!r->cancel_req, "task %d polled after it was cancelled", tid);
  return r;
}

static cx_poll complete(task_rec *r, int *out, int v) {
  r->completed = true;
  r->output = v;
  r->wait = W_DONE;
  *out = v;
  return CX_READY;
}

static cx_poll snd_poll(void *self, cx_context *cx, void *output) {
  aw *w = g_w;
  snd_fut *f = self;
  task_rec *r = enter_poll(w, f->magic, f->tid);
  for (;;) {
    if (f->i == f->n) return complete(r, output, f->n);
    if (!f->in_flight) {
      f->item = make_item(f->sender, f->i);
      cx_achan_send_init(&f->s, f->tx, &f->item);
      f->in_flight = true;
    }
    int rc = 12345;
    bool had_room = w->rx != NULL && w->qlen < w->cap;
    bool rx_alive = w->rx != NULL;
    if (cx_achan_send_poll(&f->s, cx, &rc) == CX_PENDING) {
      CHECK(rx_alive && !had_room,
            "send of task %d pended with the channel %s (len %zu/%zu)", f->tid,
            rx_alive ? "open" : "closed", w->qlen, w->cap);
      r->wait = W_SEND;
      return CX_PENDING;
    }
    f->in_flight = false;
    if (rc == CX_OK) {
      CHECK(had_room, "send of task %d succeeded without room", f->tid);
      m_push(w, f->item);
      f->i++;
      cx_achan_send_drop(&f->s);
    } else if (rc == CX_EPIPE) {
      CHECK(!rx_alive, "send of task %d gave CX_EPIPE with the receiver alive",
            f->tid);
      cx_achan_send_drop(&f->s);
      return complete(r, output, CX_EPIPE);
    } else {
      FAIL("send of task %d gave %s", f->tid, cx_err_name(rc));
    }
    if (f->yield_mask >> (f->i & 7) & 1) {
      cx_waker_wake_by_ref(cx->waker);
      r->wait = W_YIELD;
      return CX_PENDING;
    }
  }
}

static void snd_drop(void *self) {
  aw *w = g_w;
  snd_fut *f = self;
  CHECK(f->magic == FUT_MAGIC, "sender future dropped twice");
  w->t[f->tid].drops++;
  cx_achan_send_drop(&f->s);
  cx_achan_tx_drop(f->tx);
  w->senders--;
  m_chan_maybe_gone(w);
  f->magic = FUT_DEAD;
}

static cx_poll rcv_poll(void *self, cx_context *cx, void *output) {
  aw *w = g_w;
  rcv_fut *f = self;
  task_rec *r = enter_poll(w, f->magic, f->tid);
  CHECK(w->rx != NULL, "receiver task %d polled after the receiver's drop",
        f->tid);
  for (;;) {
    if (f->n > 0 && f->got == f->n) return complete(r, output, f->got);
    if (!f->in_flight) {
      cx_achan_recv_init(&f->r, w->rx, &f->item);
      f->in_flight = true;
    }
    int rc = 12345;
    size_t len = w->qlen;
    int senders = w->senders;
    if (cx_achan_recv_poll(&f->r, cx, &rc) == CX_PENDING) {
      CHECK(len == 0 && senders > 0,
            "recv of task %d pended (len %zu, senders %d)", f->tid, len,
            senders);
      r->wait = W_RECV;
      return CX_PENDING;
    }
    f->in_flight = false;
    cx_achan_recv_drop(&f->r);
    if (rc == CX_OK) {
      m_take(w, &f->item, "recv future");
      w->received++;
      f->got++;
    } else if (rc == CX_EPIPE) {
      CHECK(len == 0 && senders == 0,
            "recv of task %d gave CX_EPIPE (len %zu, senders %d)", f->tid, len,
            senders);
      return complete(r, output, CX_EPIPE);
    } else {
      FAIL("recv of task %d gave %s", f->tid, cx_err_name(rc));
    }
    if (f->yield_mask >> (f->got & 7) & 1) {
      cx_waker_wake_by_ref(cx->waker);
      r->wait = W_YIELD;
      return CX_PENDING;
    }
  }
}

static void rcv_drop(void *self) {
  aw *w = g_w;
  rcv_fut *f = self;
  CHECK(f->magic == FUT_MAGIC, "receiver future dropped twice");
  w->t[f->tid].drops++;
  cx_achan_recv_drop(&f->r);
  CHECK(w->recv_task == f->tid, "receiver task %d is not the live one", f->tid);
  w->recv_task = -1;
  f->magic = FUT_DEAD;
  if (w->rx_drop_pending) do_rx_drop(w);
}

static cx_poll join_poll(void *self, cx_context *cx, void *output) {
  aw *w = g_w;
  join_fut *f = self;
  task_rec *r = enter_poll(w, f->magic, f->tid);
  if (!f->inited) {
    cx_join_future_init(&f->jf, f->h, f->discard ? NULL : &f->out, sizeof(int),
                        true);
    f->h = NULL;
    f->inited = true;
  }
  task_rec *tg = &w->t[f->target];
  int rc = 12345;
  f->out = 777777;
  if (cx_join_future_poll(&f->jf, cx, &rc) == CX_PENDING) {
    CHECK(!t_finished(tg), "join of finished task %d pended", f->target);
    r->wait = W_JOIN;
    return CX_PENDING;
  }
  if (rc == CX_OK) {
    CHECK(tg->completed && !tg->output_taken,
          "join of task %d gave CX_OK (completed %d, taken %d)", f->target,
          tg->completed, tg->output_taken);
    if (!f->discard)
      CHECK(f->out == tg->output, "join of task %d gave output %d, model %d",
            f->target, f->out, tg->output);
    tg->output_taken = true;
  } else if (rc == CX_ECANCELED) {
    CHECK(!tg->completed && tg->cancel_req && tg->drops == 1,
          "join of task %d gave CX_ECANCELED", f->target);
  } else if (rc == CX_EALREADY) {
    CHECK(tg->completed && tg->output_taken,
          "join of task %d gave CX_EALREADY (completed %d, taken %d)",
          f->target, tg->completed, tg->output_taken);
  } else {
    FAIL("join of task %d gave %s", f->target, cx_err_name(rc));
  }
  return complete(r, output, rc);
}

static void join_drop(void *self) {
  aw *w = g_w;
  join_fut *f = self;
  CHECK(f->magic == FUT_MAGIC, "join future dropped twice");
  w->t[f->tid].drops++;
  if (f->inited)
    cx_join_future_drop(&f->jf);
  else
    cx_join_handle_detach(f->h);
  f->magic = FUT_DEAD;
}

static const cx_future_vtable snd_vt = {.poll = snd_poll, .drop = snd_drop, .state_size = sizeof(snd_fut), .state_align = 0, .output_size = sizeof(int)};
static const cx_future_vtable rcv_vt = {.poll = rcv_poll, .drop = rcv_drop, .state_size = sizeof(rcv_fut), .state_align = 0, .output_size = sizeof(int)};
static const cx_future_vtable join_vt = {.poll = join_poll, .drop = join_drop, .state_size = sizeof(join_fut), .state_align = 0, .output_size = sizeof(int)};

/* ---- operations --------------------------------------------------------- */

/* Spawns; with an armed allocation failure the spawn must fail with
 * CX_ENOMEM and leave the state untouched. Returns the task id or -1. */
static int do_spawn(aw *w, int kind, const cx_future_vtable *vt, void *state,
                    uint32_t *magic, int *tid_field) {
  if (w->ntasks == MAX_TASKS) return -1;
  int tid = w->ntasks;
  *tid_field = tid;
  *magic = FUT_MAGIC;
  bool fail = w->fail_next_alloc;
  w->fail_next_alloc = false;
  fz_alloc_stats before = fz_alloc_stats_get();
  if (fail) fz_alloc_fail_in(1);
  cx_join_handle *h = NULL;
  int rc = cx_spawn(w->ex, vt, state, &h);
  fz_alloc_fail_in(0);
  if (fail) {
    fz_alloc_stats after = fz_alloc_stats_get();
    CHECK(rc == CX_ENOMEM && h == NULL && after.failed == before.failed + 1,
          "spawn with a failing allocation gave %s", cx_err_name(rc));
    CHECK(*magic == FUT_MAGIC && w->t[tid].drops == 0,
          "a failed spawn dropped its state");
    return -1;
  }
  CHECK(rc == CX_OK && h != NULL, "spawn gave %s", cx_err_name(rc));
  task_rec *r = &w->t[tid];
  memset(r, 0, sizeof *r);
  r->kind = kind;
  r->handle = h;
  r->wait = W_NEW;
  w->ntasks++;
  return tid;
}

static void op_create(aw *w, uint8_t arg) {
  if (w->chan) return;
  bool fail = w->fail_next_alloc;
  w->fail_next_alloc = false;
  if (fail) fz_alloc_fail_in(1);
  cx_achan_tx *tx = NULL;
  cx_achan_rx *rx = NULL;
  size_t cap = 1 + (arg & 3);
  int rc = cx_achan_create(sizeof(fz_item), cap, drop_item, &tx, &rx);
  fz_alloc_fail_in(0);
  if (fail) {
    CHECK(rc == CX_ENOMEM && tx == NULL && rx == NULL,
          "create with a failing allocation gave %s", cx_err_name(rc));
    return;
  }
  CHECK(rc == CX_OK && tx && rx, "create gave %s", cx_err_name(rc));
  CHECK(w->n_otx == 0 && w->senders == 0 && w->qlen == 0 && w->recv_task < 0,
        "model: stale channel state");
  if (w->n_sender_ids == MAX_SENDERS) { /* out of ids: no more channels */
    cx_achan_tx_drop(tx);
    cx_achan_rx_drop(rx);
    return;
  }
  w->chan = true;
  w->cap = cap;
  w->rx = rx;
  w->qhead = 0;
  w->otx[0] = tx;
  w->otx_sender[0] = w->n_sender_ids++;
  w->n_otx = 1;
  w->senders = 1;
}

static void op_spawn_sender(aw *w, uint8_t arg) {
  if (w->n_otx == 0 || w->n_sender_ids == MAX_SENDERS) return;
  uint8_t b = fz_u8(&w->in);
  snd_fut f;
  memset(&f, 0, sizeof f);
  int rc = cx_achan_tx_clone(w->otx[arg % w->n_otx], &f.tx);
  CHECK(rc == CX_OK && f.tx, "tx_clone gave %s", cx_err_name(rc));
  w->senders++;
  f.sender = w->n_sender_ids++;
  f.n = 1 + (b & 7);
  f.yield_mask = (uint8_t)(arg >> 2 | b << 3);
  if (do_spawn(w, K_SEND, &snd_vt, &f, &f.magic, &f.tid) < 0) {
    cx_achan_tx_drop(f.tx);
    w->senders--;
  }
}

static void op_spawn_receiver(aw *w, uint8_t arg) {
  if (w->rx == NULL || w->rx_drop_pending || w->recv_task >= 0) return;
  rcv_fut f;
  memset(&f, 0, sizeof f);
  f.n = arg % 6; /* 0: until CX_EPIPE */
  f.yield_mask = (uint8_t)(arg >> 3);
  int tid = do_spawn(w, K_RECV, &rcv_vt, &f, &f.magic, &f.tid);
  if (tid >= 0) w->recv_task = tid;
}

static int pick_handle(aw *w, uint8_t arg) {
  if (w->ntasks == 0) return -1;
  for (int k = 0; k < w->ntasks; k++) {
    int i = (arg + k) % w->ntasks;
    if (w->t[i].handle) return i;
  }
  return -1;
}

static void op_spawn_joiner(aw *w, uint8_t arg) {
  int target = pick_handle(w, arg);
  if (target < 0 || w->ntasks == MAX_TASKS) return;
  join_fut f;
  memset(&f, 0, sizeof f);
  f.target = target;
  f.discard = (arg & 0x80) != 0;
  f.h = w->t[target].handle;
  int tid = do_spawn(w, K_JOIN, &join_vt, &f, &f.magic, &f.tid);
  if (tid >= 0) {
    w->t[target].handle = NULL; /* the join future owns it now */
    w->t[tid].target = target;
  }
}

static void op_cancel(aw *w, uint8_t arg) {
  int i = pick_handle(w, arg);
  if (i < 0) return;
  task_rec *r = &w->t[i];
  int rc = cx_join_handle_cancel(r->handle);
  int want = t_finished(r) ? CX_EALREADY : CX_OK;
  CHECK(rc == want, "cancel of task %d gave %s, model %s", i, cx_err_name(rc),
        cx_err_name(want));
  if (rc == CX_OK) r->cancel_req = true;
}

static void op_try_join(aw *w, uint8_t arg) {
  int i = pick_handle(w, arg);
  if (i < 0) return;
  task_rec *r = &w->t[i];
  int out = 777777;
  bool discard = arg & 0x80;
  int rc =
      cx_join_handle_try_join(r->handle, discard ? NULL : &out, sizeof out);
  int want;
  if (r->completed)
    want = r->output_taken ? CX_EALREADY : CX_OK;
  else if (t_finished(r))
    want = CX_ECANCELED;
  else
    want = CX_EAGAIN;
  CHECK(rc == want, "try_join of task %d gave %s, model %s", i, cx_err_name(rc),
        cx_err_name(want));
  if (rc == CX_OK) {
    if (!discard)
      CHECK(out == r->output, "try_join of task %d: output %d, model %d", i,
            out, r->output);
    r->output_taken = true;
  }
  CHECK(cx_join_handle_is_finished(r->handle) == t_finished(r),
        "is_finished of task %d disagrees with the model", i);
}

static void op_detach(aw *w, uint8_t arg) {
  int i = pick_handle(w, arg);
  if (i < 0) return;
  cx_join_handle_detach(w->t[i].handle);
  w->t[i].handle = NULL;
}

static void op_try_send(aw *w, uint8_t arg) {
  if (w->n_otx == 0) return;
  int k = arg % w->n_otx;
  int s = w->otx_sender[k];
  if (w->next_seq[s] > 250) return;
  fz_item it = make_item(s, w->next_seq[s]);
  int want = w->rx == NULL ? CX_EPIPE : w->qlen == w->cap ? CX_EAGAIN : CX_OK;
  int rc = cx_achan_try_send(w->otx[k], &it);
  CHECK(rc == want, "try_send gave %s, model %s (len %zu/%zu)", cx_err_name(rc),
        cx_err_name(want), w->qlen, w->cap);
  CHECK(cx_achan_is_closed(w->otx[k]) == (w->rx == NULL),
        "is_closed disagrees with the model");
  if (rc == CX_OK) m_push(w, it);
}

static void op_try_recv(aw *w) {
  if (w->rx == NULL || w->rx_drop_pending) return;
  fz_item it;
  int want = w->qlen > 0 ? CX_OK : w->senders == 0 ? CX_EPIPE : CX_EAGAIN;
  int rc = cx_achan_try_recv(w->rx, &it);
  CHECK(rc == want, "try_recv gave %s, model %s (len %zu, senders %d)",
        cx_err_name(rc), cx_err_name(want), w->qlen, w->senders);
  if (rc == CX_OK) {
    m_take(w, &it, "try_recv");
    w->received++;
  }
}

static void op_clone_tx(aw *w, uint8_t arg) {
  if (w->n_otx == 0 || w->n_otx == MAX_OUT_TX || w->n_sender_ids == MAX_SENDERS)
    return;
  cx_achan_tx *tx = NULL;
  int rc = cx_achan_tx_clone(w->otx[arg % w->n_otx], &tx);
  CHECK(rc == CX_OK && tx, "tx_clone gave %s", cx_err_name(rc));
  w->otx[w->n_otx] = tx;
  w->otx_sender[w->n_otx++] = w->n_sender_ids++;
  w->senders++;
}

static void drop_otx(aw *w, int k) {
  cx_achan_tx *tx = w->otx[k];
  w->otx[k] = w->otx[w->n_otx - 1];
  w->otx_sender[k] = w->otx_sender[w->n_otx - 1];
  w->n_otx--;
  w->senders--;
  cx_achan_tx_drop(tx);
  m_chan_maybe_gone(w);
}

static void op_drop_rx(aw *w, uint8_t arg) {
  if (w->rx == NULL || w->rx_drop_pending) return;
  if (w->recv_task < 0) {
    do_rx_drop(w);
    return;
  }
  w->rx_drop_pending = true; /* when the receiver task's future goes */
  task_rec *r = &w->t[w->recv_task];
  if ((arg & 1) && r->handle && !r->completed) {
    CHECK(cx_join_handle_cancel(r->handle) == CX_OK, "cancel failed");
    r->cancel_req = true;
  }
}

static void op_step(aw *w) {
  int rc = cx_executor_step(w->ex);
  CHECK(rc == 0 || rc == 1, "step gave %d", rc);
  if (rc == 0) check_idle(w, "step");
}

static void op_idle(aw *w) {
  int rc = cx_executor_run_until_idle(w->ex);
  CHECK(rc >= 0, "run_until_idle gave %s", cx_err_name(rc));
  check_idle(w, "run_until_idle");
}

static uint64_t fz_clock(void *ctx) {
  return ((aw *)ctx)->now;
}

int cx_fuzz_async_channel(const uint8_t *data, size_t size) {
  aw *w = calloc(1, sizeof *w);
  if (w == NULL) return 0;
  g_w = w;
  w->recv_task = -1;
  fz_input_init(&w->in, data, size);
  fz_alloc_install(0);
  cx_executor_options opts = {.clock = fz_clock, .clock_ctx = w};
  int rc = cx_executor_create(&opts, &w->ex);
  CHECK(rc == CX_OK, "executor create gave %s", cx_err_name(rc));
  uint8_t setup = fz_u8(&w->in);
  op_create(w, setup);

  while (fz_more(&w->in)) {
    uint8_t op = fz_u8(&w->in);
    uint8_t arg = fz_u8(&w->in);
    switch (op % 18) {
      case 0:
        op_create(w, arg);
        break;
      case 1:
      case 2:
        op_spawn_sender(w, arg);
        break;
      case 3:
        op_spawn_receiver(w, arg);
        break;
      case 4:
        op_clone_tx(w, arg);
        break;
      case 5:
        if (w->n_otx > 0) drop_otx(w, arg % w->n_otx);
        break;
      case 6:
        op_drop_rx(w, arg);
        break;
      case 7:
        op_try_send(w, arg);
        break;
      case 8:
        op_try_recv(w);
        break;
      case 9:
      case 10:
        op_step(w);
        break;
      case 11:
        op_idle(w);
        break;
      case 12:
        op_cancel(w, arg);
        break;
      case 13:
        op_spawn_joiner(w, arg);
        break;
      case 14:
        op_try_join(w, arg);
        break;
      case 15:
        op_detach(w, arg);
        break;
      case 16:
        w->fail_next_alloc = true;
        break;
      default:
        w->now += arg;
        break;
    }
    check_all(w, "op");
  }

  /* Teardown: maybe drain first; then destroy the executor (cancelling
   * every unfinished task), detach the handles, drop the outside handles. */
  if (setup & 0x10) op_idle(w);
  if (setup & 0x20) {
    while (w->n_otx > 0) drop_otx(w, w->n_otx - 1);
    check_all(w, "teardown");
  }
  rc = cx_executor_destroy(w->ex);
  CHECK(rc == CX_OK, "executor destroy gave %s", cx_err_name(rc));
  for (int i = 0; i < w->ntasks; i++) {
    task_rec *r = &w->t[i];
    CHECK(r->drops == 1, "task %d's future dropped %d times", i, r->drops);
    if (r->handle) {
      CHECK(cx_join_handle_is_finished(r->handle),
            "task %d unfinished after destroy", i);
      cx_join_handle_detach(r->handle);
      r->handle = NULL;
    }
  }
  CHECK(w->recv_task < 0 && !w->rx_drop_pending, "receiver task left");
  while (w->n_otx > 0) drop_otx(w, w->n_otx - 1);
  CHECK(w->senders == 0, "model: %d senders left", w->senders);
  if (w->rx) {
    /* Every sender gone: try_recv drains what is left, then CX_EPIPE. */
    if (setup & 0x40)
      while (w->qlen > 0) op_try_recv(w);
    op_try_recv(w);
    do_rx_drop(w);
  }
  fz_finish_items_and_memory(H, w->sent, w->received, w->dropped);
  g_w = NULL;
  free(w);
  return 0;
}
