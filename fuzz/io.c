/*
 * Fuzz harness: the epoll driver and registrations (io/io.h) over Unix
 * socketpairs, against a model. The first input byte picks the mode: by
 * hand (the harness polls the futures with its own counting wakers and
 * parks the driver: every wake is counted), or on an executor (each future
 * is a task; see "executor mode" below).
 *
 * Up to MAX_CONNS connections. Each is a socketpair: our end `a` is
 * registered with the driver, the peer end `b` is the harness's, used with
 * plain non-blocking syscalls. Each connection has (at most) one read
 * future and one write future, each owned by a "task": a waker target that
 * counts its references and wakes. The input is a program of op bytes, each
 * followed by an argument byte:
 *   - open a connection (socketpair + register; or with the registration's
 *     allocation failing: must give CX_ENOMEM and register nothing);
 *   - the peer writes 1..255 bytes of the connection's peer->us pattern;
 *   - the peer reads what it can and checks it against the us->peer pattern;
 *   - poll the read future (made on demand, buffer 1..64 bytes), or the
 *     write future (1..255 bytes of the pattern, or up to 64 KiB to fill the
 *     socket buffer);
 *   - drop the read / write future (pending or not), or cancel the "task"
 *     (drop both);
 *   - shut down the peer's write side, or close the peer, or shut down our
 *     write side;
 *   - deregister (+ close `a`), with futures possibly pending;
 *   - dispatch: park(0), or unpark then park(forever) (must return);
 *   - the tick race by hand (op_racy_read): see readiness, read until
 *     EAGAIN, have the peer write and dispatch, then clear with the old
 *     tick: the new data's readiness must survive.
 *
 * Checked:
 *   - bytes: every byte a read future returns is the next byte of the
 *     peer->us pattern (so each byte the peer wrote is read exactly once, in
 *     order); every byte the peer reads is the next of the us->peer pattern,
 *     and never more than the write futures reported written;
 *   - results: a read gives 0 only after the peer shut down / closed and
 *     every byte it wrote was read; CX_EBADF only once deregistered; a
 *     write gives CX_EPIPE / CX_ECONNRESET only when the peer is closed or
 *     our side shut down; nothing else;
 *   - no readiness lost: after each dispatch, a future that is pending and
 *     not woken since its last poll must not be ready by poll(2)'s level
 *     view of the fd (data or hang-up for a reader, room for a writer);
 *   - deregistration wakes each pending future once, and after it nothing
 *     wakes them again;
 *   - at the end: every task's waker references are back to 0, and the
 *     counting allocator has no live block.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz/fuzz_harnesses.h"
#include "fuzz/fuzz_util.h"
#include "executor/executor.h"
#include "io/io.h"
#include "waker/alloc.h"
#include "waker/error.h"

#define H "io"
#define FAIL(...) fz_fail(H, __VA_ARGS__)
#define CHECK(cond, ...)            \
  do {                              \
    if (!(cond)) FAIL(__VA_ARGS__); \
  } while (0)

enum { MAX_CONNS = 4, BIG_WRITE = 65536 };

/* A task: a waker target. */
typedef struct task {
  int refs;  /* live waker references */
  int woken; /* wakes since the future last pended */
  int wakes; /* all wakes */
} task;

static int t_clone(const void *d, cx_waker *out);
static void t_wake(const void *d) {
  task *t = (task *)d;
  t->woken++;
  t->wakes++;
  t->refs--;
}
static void t_wake_by_ref(const void *d) {
  task *t = (task *)d;
  t->woken++;
  t->wakes++;
}
static void t_drop(const void *d) { ((task *)d)->refs--; }
static const cx_waker_vtable t_vt = {
    .clone = t_clone,
    .wake = t_wake,
    .wake_by_ref = t_wake_by_ref,
    .drop = t_drop,
};
static int t_clone(const void *d, cx_waker *out) {
  ((task *)d)->refs++;
  out->vtable = &t_vt;
  out->data = d;
  return CX_OK;
}

typedef struct conn {
  bool open;
  int a, b;            /* ours (registered), the peer's; -1 when closed */
  cx_io_source *src;   /* NULL once deregistered */
  bool deregistered;
  bool peer_wr_shut;   /* the peer will write no more */
  bool peer_closed;
  bool our_wr_shut;
  uint64_t p2u_sent, p2u_read; /* peer -> us pattern bytes */
  uint64_t u2p_written, u2p_read;
  /* Read future. */
  bool rf_live, rf_pending;
  cx_io_read rf;
  unsigned char rbuf[64];
  task rt;
  int rt_wakes_at_dereg;
  /* Write future. */
  bool wf_live, wf_pending;
  cx_io_write wf;
  unsigned char *wbuf; /* BIG_WRITE bytes, allocated per connection */
  task wt;
  int wt_wakes_at_dereg;
  /* Executor mode: the read and write tasks (rf_live / wf_live: alive). */
  cx_join_handle *rh, *wh;
} conn;

static unsigned char p2u_byte(int c, uint64_t i) {
  return (unsigned char)(i * 31 + (uint64_t)c * 7 + (i >> 8));
}
static unsigned char u2p_byte(int c, uint64_t i) {
  return (unsigned char)(i * 17 + (uint64_t)c * 13 + 5 + (i >> 9));
}

/* The executor's role, played by the harness: a host handing out the
 * driver, as cx->host does in an executor. */
static cx_driver *g_driver;
/* Executor mode: the executor whose I/O driver g_driver is. */
static cx_executor *g_ex;
static conn *g_conns;
static int host_io_driver(cx_driver_host *h, cx_driver **out) {
  (void)h;
  *out = g_driver;
  return CX_OK;
}
static cx_driver_host g_host = {.io_driver = host_io_driver};

static cx_context ctx_for(task *t, cx_waker *w) {
  w->vtable = &t_vt;
  w->data = t;
  cx_context cx = {w, NULL, NULL, &g_host};
  return cx;
}

static short level_events(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP};
  if (poll(&p, 1, 0) != 1) return 0;
  return p.revents;
}

/* ---- ops ---------------------------------------------------------------- */

static void op_open(conn *c, bool fail_alloc) {
  if (c->open) return;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
    return; /* out of fds: nothing to check */
  if (fail_alloc) fz_alloc_fail_in(1);
  cx_io_source *s = NULL;
  task none = {0, 0, 0};
  cx_waker w;
  cx_context cx = ctx_for(&none, &w);
  int rc = cx_io_register(&cx, sv[0], &s); /* through the host */
  fz_alloc_fail_in(0);
  if (fail_alloc) {
    CHECK(rc == CX_ENOMEM && s == NULL, "register with failing alloc: %d",
          rc);
    close(sv[0]);
    close(sv[1]);
    return;
  }
  CHECK(rc == CX_OK && s != NULL, "register: %d", rc);
  unsigned char *wbuf = cx_alloc(BIG_WRITE, 1);
  if (wbuf == NULL) FAIL("harness buffer");
  memset(c, 0, sizeof *c);
  c->open = true;
  c->a = sv[0];
  c->b = sv[1];
  c->src = s;
  c->wbuf = wbuf;
}

static void op_peer_write(int ci, conn *c, unsigned n) {
  if (!c->open || c->peer_closed || c->peer_wr_shut || n == 0) return;
  unsigned char buf[255];
  for (unsigned i = 0; i < n; i++) buf[i] = p2u_byte(ci, c->p2u_sent + i);
  ssize_t w = send(c->b, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w > 0) c->p2u_sent += (uint64_t)w;
  /* EPIPE: our side closed (deregistered + closed). EAGAIN: full. */
}

static void op_peer_read(int ci, conn *c) {
  if (!c->open || c->peer_closed) return;
  unsigned char buf[4096];
  for (;;) {
    ssize_t r = recv(c->b, buf, sizeof buf, MSG_DONTWAIT);
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; i++) {
      CHECK(buf[i] == u2p_byte(ci, c->u2p_read),
            "conn %d: peer read byte %llu wrong", ci,
            (unsigned long long)c->u2p_read);
      c->u2p_read++;
    }
    CHECK(c->u2p_read <= c->u2p_written,
          "conn %d: peer read %llu > written %llu", ci,
          (unsigned long long)c->u2p_read,
          (unsigned long long)c->u2p_written);
  }
}

static void read_result(int ci, conn *c, ssize_t n) {
  if (n > 0) {
    for (ssize_t i = 0; i < n; i++) {
      CHECK(c->rbuf[i] == p2u_byte(ci, c->p2u_read),
            "conn %d: read byte %llu wrong (dup, loss or reorder)", ci,
            (unsigned long long)c->p2u_read);
      c->p2u_read++;
    }
    CHECK(c->p2u_read <= c->p2u_sent, "conn %d: read more than sent", ci);
  } else if (n == 0) {
    CHECK(c->peer_wr_shut || c->peer_closed,
          "conn %d: end of stream but the peer is still open", ci);
    CHECK(c->p2u_read == c->p2u_sent, "conn %d: end of stream with %llu unread",
          ci, (unsigned long long)(c->p2u_sent - c->p2u_read));
  } else if (n == CX_EBADF) {
    CHECK(c->deregistered, "conn %d: read EBADF while registered", ci);
  } else if (n == CX_ECONNRESET) {
    CHECK(c->peer_closed, "conn %d: read ECONNRESET, peer open", ci);
  } else {
    FAIL("conn %d: read gave %zd (%s)", ci, n, cx_strerror((int)n));
  }
}

static void op_poll_read(int ci, conn *c, unsigned arg) {
  if (!c->open) return;
  if (!c->rf_live) {
    if (c->src == NULL) return; /* nothing to read from */
    size_t len = 1 + arg % sizeof c->rbuf;
    cx_io_read_init(&c->rf, c->src, c->rbuf, len);
    c->rf_live = true;
  }
  cx_waker w;
  cx_context cx = ctx_for(&c->rt, &w);
  ssize_t n = 0;
  if (cx_io_read_poll(&c->rf, &cx, &n) == CX_PENDING) {
    CHECK(!c->deregistered, "conn %d: read pends after deregistration", ci);
    c->rf_pending = true;
    c->rt.woken = 0;
    return;
  }
  c->rf_pending = false;
  read_result(ci, c, n);
  cx_io_read_drop(&c->rf);
  c->rf_live = false;
}

static void write_result(int ci, conn *c, ssize_t n) {
  if (n > 0) {
    CHECK(!c->our_wr_shut, "conn %d: wrote after shutdown(SHUT_WR)", ci);
    c->u2p_written += (uint64_t)n;
  } else if (n == CX_EPIPE || n == CX_ECONNRESET) {
    CHECK(c->peer_closed || c->our_wr_shut, "conn %d: write %s, peer open",
          ci, cx_err_name((int)n));
  } else if (n == CX_EBADF) {
    CHECK(c->deregistered, "conn %d: write EBADF while registered", ci);
  } else {
    FAIL("conn %d: write gave %zd (%s)", ci, n, cx_strerror((int)n));
  }
}

static void op_poll_write(int ci, conn *c, unsigned arg) {
  if (!c->open) return;
  if (!c->wf_live) {
    if (c->src == NULL) return;
    size_t len = arg >= 250 ? BIG_WRITE : 1 + arg;
    for (size_t i = 0; i < len; i++)
      c->wbuf[i] = u2p_byte(ci, c->u2p_written + i);
    cx_io_write_init(&c->wf, c->src, c->wbuf, len);
    c->wf_live = true;
  }
  cx_waker w;
  cx_context cx = ctx_for(&c->wt, &w);
  ssize_t n = 0;
  if (cx_io_write_poll(&c->wf, &cx, &n) == CX_PENDING) {
    CHECK(!c->deregistered, "conn %d: write pends after deregistration", ci);
    c->wf_pending = true;
    c->wt.woken = 0;
    return;
  }
  c->wf_pending = false;
  write_result(ci, c, n);
  cx_io_write_drop(&c->wf);
  c->wf_live = false;
}

static void x_run(conn *conns);
static void x_cancel(cx_join_handle **h);

static void drop_read(conn *c) {
  if (g_ex != NULL) {
    x_cancel(&c->rh);
    return;
  }
  if (!c->rf_live) return;
  cx_io_read_drop(&c->rf);
  c->rf_live = c->rf_pending = false;
}
static void drop_write(conn *c) {
  if (g_ex != NULL) {
    x_cancel(&c->wh);
    return;
  }
  if (!c->wf_live) return;
  cx_io_write_drop(&c->wf);
  c->wf_live = c->wf_pending = false;
}

static void op_deregister(int ci, conn *c) {
  if (!c->open || c->src == NULL) return;
  int rw = c->rt.wakes, ww = c->wt.wakes;
  /* A pending future not yet woken left its waker in the source: woken
   * exactly once now. One already woken (not re-polled since) left none. */
  int rexp = c->rf_pending && c->rt.woken == 0;
  int wexp = c->wf_pending && c->wt.woken == 0;
  cx_io_source *s = c->src;
  c->src = NULL;
  c->deregistered = true;
  cx_io_deregister(s); /* may free s if no future holds it */
  close(c->a);
  c->a = -1;
  if (g_ex != NULL) {
    /* The tasks' wakers are the executor's: woken, they run once more and
     * complete with CX_EBADF. */
    x_run(g_conns);
    CHECK(!c->rf_live && !c->wf_live,
          "conn %d: task still pending after deregistration", ci);
  } else {
    CHECK(c->rt.wakes == rw + rexp,
          "conn %d: deregister woke reader %d times", ci, c->rt.wakes - rw);
    CHECK(c->wt.wakes == ww + wexp,
          "conn %d: deregister woke writer %d times", ci, c->wt.wakes - ww);
  }
  c->rt_wakes_at_dereg = c->rt.wakes;
  c->wt_wakes_at_dereg = c->wt.wakes;
}

static void close_conn(conn *c) {
  if (!c->open) return;
  drop_read(c);
  drop_write(c);
  if (c->src != NULL) cx_io_deregister(c->src);
  if (c->a >= 0) close(c->a);
  if (c->b >= 0) close(c->b);
  cx_free(c->wbuf, BIG_WRITE, 1);
  c->open = false;
  /* Every future dropped and the source gone: no waker may be left. */
  CHECK(c->rt.refs == 0 && c->wt.refs == 0,
        "closed connection holds waker references (%d, %d)", c->rt.refs,
        c->wt.refs);
}

/* After a dispatch: nothing pending may be ready at the level. */
static void check_no_lost_readiness(conn *conns) {
  for (int ci = 0; ci < MAX_CONNS; ci++) {
    conn *c = &conns[ci];
    if (!c->open) continue;
    if (c->deregistered) {
      CHECK(c->rt.wakes == c->rt_wakes_at_dereg &&
                c->wt.wakes == c->wt_wakes_at_dereg,
            "conn %d: woken after deregistration", ci);
      continue;
    }
    short ev = level_events(c->a);
    if (c->rf_pending && c->rt.woken == 0)
      CHECK(!(ev & (POLLIN | POLLRDHUP | POLLHUP | POLLERR)),
            "conn %d: readable (revents %#x) but the reader was not woken",
            ci, (unsigned)ev);
    if (c->wf_pending && c->wt.woken == 0)
      CHECK(!(ev & (POLLOUT | POLLHUP | POLLERR)),
            "conn %d: writable (revents %#x) but the writer was not woken",
            ci, (unsigned)ev);
  }
}

/* The tick race, by hand (hand mode, no read future on the connection):
 * see readiness, read until EAGAIN, then (as the input says) let the peer
 * write and dispatch the event BEFORE clearing with the tick seen. If data
 * is there afterwards (poll(2)), the registration must still say readable:
 * a clear that ignored the tick would erase the event, and with an
 * edge-triggered fd no other would come. */
static void op_racy_read(int ci, conn *c, unsigned arg, conn *conns) {
  if (g_ex != NULL || !c->open || c->src == NULL || c->rf_live) return;
  task racer = {0, 0, 0};
  cx_waker w;
  cx_context cx = ctx_for(&racer, &w);
  cx_io_ready seen;
  if (cx_io_poll_ready(c->src, &cx, CX_IO_READ, &seen) == CX_PENDING) {
    cx_io_withdraw(c->src, CX_IO_READ, &w);
    CHECK(racer.refs == 0, "conn %d: withdraw left the waker", ci);
    return;
  }
  if (seen.bits & CX_IO_SHUTDOWN) return;
  for (;;) {
    unsigned char buf[256];
    ssize_t r = recv(c->a, buf, sizeof buf, MSG_DONTWAIT);
    if (r <= 0) break; /* EAGAIN, or end of stream */
    for (ssize_t i = 0; i < r; i++) {
      CHECK(buf[i] == p2u_byte(ci, c->p2u_read),
            "conn %d: racy read byte %llu wrong", ci,
            (unsigned long long)c->p2u_read);
      c->p2u_read++;
    }
  }
  if (arg & 1) {
    op_peer_write(ci, c, 1 + (arg >> 1)); /* the event in between */
    cx_driver_park(g_driver, 0);
  }
  cx_io_clear_ready(c->src, seen);
  /* Without the event in between, edges queued in epoll before this op
   * (e.g. the peer's shutdown: READ_CLOSED) are not dispatched yet: deliver
   * them before asking poll(2), which already sees them. With it, the
   * dispatch above took this connection's edge, so a clear that ignored
   * the tick would still be caught. */
  if (!(arg & 1)) cx_driver_park(g_driver, 0);
  if (level_events(c->a) & POLLIN) {
    cx_io_ready now;
    CHECK(cx_io_poll_ready(c->src, &cx, CX_IO_READ, &now) == CX_READY,
          "conn %d: data is there but the clear erased its event", ci);
  } else {
    cx_io_withdraw(c->src, CX_IO_READ, &w); /* if it pended */
  }
  CHECK(racer.refs == 0, "conn %d: racer waker left behind", ci);
  /* Every queued edge was dispatched above, one way or the other. */
  check_no_lost_readiness(conns);
}

/* ---- executor mode ------------------------------------------------------
 *
 * The same program, but each read / write future runs as a task on a real
 * executor whose I/O driver (created through cx_context.host on first use)
 * is the one registrations go to. "Poll" spawns the task if there is none
 * and runs the executor until idle; "drop" cancels the task; "dispatch"
 * parks the executor's driver for 0 (the executor is not running, so the
 * harness may park it, one thread at a time) and runs until idle. A wake
 * is then a poll: after a dispatch, a task still pending must have an fd
 * that poll(2) says is not ready for it.
 */
typedef struct xtask {
  conn *c;
  int ci;
  bool write;
  cx_io_read rf;
  cx_io_write wf;
} xtask;

static cx_poll xtask_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  xtask *t = self;
  conn *c = t->c;
  ssize_t n = 0;
  if (!t->write) {
    if (cx_io_read_poll(&t->rf, cx, &n) == CX_PENDING) {
      CHECK(!c->deregistered, "conn %d: read task pends after dereg", t->ci);
      c->rf_pending = true;
      return CX_PENDING;
    }
    c->rf_pending = false;
    read_result(t->ci, c, n);
  } else {
    if (cx_io_write_poll(&t->wf, cx, &n) == CX_PENDING) {
      CHECK(!c->deregistered, "conn %d: write task pends after dereg", t->ci);
      c->wf_pending = true;
      return CX_PENDING;
    }
    c->wf_pending = false;
    write_result(t->ci, c, n);
  }
  return CX_READY;
}

static void xtask_drop(void *self) {
  xtask *t = self;
  if (!t->write) {
    cx_io_read_drop(&t->rf);
    t->c->rf_live = t->c->rf_pending = false;
  } else {
    cx_io_write_drop(&t->wf);
    t->c->wf_live = t->c->wf_pending = false;
  }
}

static const cx_future_vtable xtask_vt = {
    .poll = xtask_poll,
    .drop = xtask_drop,
    .state_size = sizeof(xtask),
    .state_align = _Alignof(xtask),
};

/* Asks the executor for its I/O driver, from inside a poll. */
static cx_poll probe_poll(void *self, cx_context *cx, void *out) {
  (void)self;
  (void)out;
  if (cx->host == NULL || cx->host->io_driver(cx->host, &g_driver) != CX_OK)
    FAIL("the executor has no I/O driver");
  return CX_READY;
}
static const cx_future_vtable probe_vt = {.poll = probe_poll};

static void x_cancel(cx_join_handle **h) {
  if (*h == NULL) return;
  cx_join_handle_cancel(*h);
  cx_join_handle_detach(*h);
  *h = NULL;
  x_run(g_conns);
}

/* Runs until idle, then lets go of the handles of finished tasks. */
static void x_run(conn *conns) {
  int rc = cx_executor_run_until_idle(g_ex);
  CHECK(rc >= 0, "run_until_idle: %d", rc);
  for (int i = 0; i < MAX_CONNS; i++) {
    conn *c = &conns[i];
    if (c->rh != NULL && !c->rf_live) {
      cx_join_handle_detach(c->rh);
      c->rh = NULL;
    }
    if (c->wh != NULL && !c->wf_live) {
      cx_join_handle_detach(c->wh);
      c->wh = NULL;
    }
  }
}

static void x_spawn(int ci, conn *c, bool write, unsigned arg) {
  if (!c->open) return;
  bool *live = write ? &c->wf_live : &c->rf_live;
  if (!*live && c->src != NULL) {
    xtask t;
    memset(&t, 0, sizeof t);
    t.c = c;
    t.ci = ci;
    t.write = write;
    if (write) {
      size_t len = arg >= 250 ? BIG_WRITE : 1 + arg;
      for (size_t i = 0; i < len; i++)
        c->wbuf[i] = u2p_byte(ci, c->u2p_written + i);
      cx_io_write_init(&t.wf, c->src, c->wbuf, len);
    } else {
      cx_io_read_init(&t.rf, c->src, c->rbuf, 1 + arg % sizeof c->rbuf);
    }
    cx_join_handle *h = NULL;
    int rc = cx_spawn(g_ex, &xtask_vt, &t, &h);
    if (rc != CX_OK) FAIL("spawn: %d", rc);
    *live = true;
    if (write)
      c->wh = h;
    else
      c->rh = h;
  }
  x_run(g_conns);
}

int cx_fuzz_io(const uint8_t *data, size_t size) {
  fz_input in;
  fz_input_init(&in, data, size);
  fz_alloc_install(0);
  conn conns[MAX_CONNS];
  memset(conns, 0, sizeof conns);
  g_conns = conns;
  g_ex = NULL;
  if (fz_u8(&in) & 1) {
    if (cx_executor_create(NULL, &g_ex) != CX_OK) FAIL("executor create");
    if (cx_spawn(g_ex, &probe_vt, NULL, NULL) != CX_OK) FAIL("spawn probe");
    x_run(conns);
  } else if (cx_io_driver_create(&g_driver) != CX_OK) {
    FAIL("driver create");
  }
  int steps = 0;
  while (fz_more(&in) && steps++ < 400) {
    uint8_t op = fz_u8(&in);
    uint8_t arg = fz_u8(&in);
    int ci = (op >> 4) % MAX_CONNS;
    conn *c = &conns[ci];
    switch (op & 15) {
      case 0:
        op_open(c, arg == 0xff);
        break;
      case 1:
        op_peer_write(ci, c, arg);
        break;
      case 2:
        op_peer_read(ci, c);
        break;
      case 3:
        if (g_ex != NULL)
          x_spawn(ci, c, false, arg);
        else
          op_poll_read(ci, c, arg);
        break;
      case 4:
        if (g_ex != NULL)
          x_spawn(ci, c, true, arg);
        else
          op_poll_write(ci, c, arg);
        break;
      case 5:
        if (arg & 1)
          drop_read(c);
        else
          drop_write(c);
        break;
      case 6: /* cancel the connection's tasks */
        drop_read(c);
        drop_write(c);
        break;
      case 7:
        if (c->open && !c->peer_closed && !c->peer_wr_shut) {
          shutdown(c->b, SHUT_WR);
          c->peer_wr_shut = true;
        }
        break;
      case 8:
        if (c->open && !c->peer_closed) {
          close(c->b);
          c->b = -1;
          c->peer_closed = true;
        }
        break;
      case 9:
        if (c->open && c->a >= 0 && !c->our_wr_shut) {
          shutdown(c->a, SHUT_WR);
          c->our_wr_shut = true;
        }
        break;
      case 10:
        op_deregister(ci, c);
        break;
      case 11:
        close_conn(c);
        break;
      case 14:
        op_racy_read(ci, c, arg, conns);
        break;
      case 12:
        cx_driver_unpark(g_driver);
        cx_driver_park(g_driver, CX_DRIVER_FOREVER); /* must return */
        if (g_ex != NULL) x_run(conns);
        check_no_lost_readiness(conns);
        break;
      default:
        cx_driver_park(g_driver, 0);
        if (g_ex != NULL) x_run(conns);
        check_no_lost_readiness(conns);
        break;
    }
  }
  for (int i = 0; i < MAX_CONNS; i++) close_conn(&conns[i]);
  if (g_ex != NULL) {
    int rc = cx_executor_destroy(g_ex); /* destroys its driver */
    CHECK(rc == CX_OK, "executor destroy: %d", rc);
    g_ex = NULL;
  } else {
    g_driver->vtable->destroy(g_driver);
  }
  g_driver = NULL;
  for (int i = 0; i < MAX_CONNS; i++)
    CHECK(conns[i].rt.refs == 0 && conns[i].wt.refs == 0,
          "conn %d: waker references leaked (%d, %d)", i, conns[i].rt.refs,
          conns[i].wt.refs);
  fz_alloc_stats st = fz_alloc_stats_get();
  CHECK(st.live == 0, "%lld blocks leaked", (long long)st.live);
  fz_alloc_uninstall();
  return 0;
}
