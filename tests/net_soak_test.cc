// Soak: an echo server and 16 clients on one executor, connections opening
// and closing continuously for CX_SOAK_SECONDS (default 30; set
// --test_env=CX_SOAK_SECONDS=3 locally), while a chaos task makes one
// allocation fail now and then (a task spawn, a stream, a registration...).
//
// Checked: every byte a client got back is the byte it sent (a connection
// hit by an injected failure may end early, never with wrong data); most
// connections complete; at the end nothing is leaked (allocator, fds). A
// watchdog fails the test instead of letting it hang.
#include <gtest/gtest.h>

#include <dirent.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "executor/cexec.h"
#include "net/net.h"
#include "tests/testutil.h"

namespace {

using cxtest::ScopedCountingAllocator;

constexpr uint64_t kMs = CX_NSEC_PER_MSEC;

int OpenFds() {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) n++;
  closedir(d);
  return n;
}

struct Totals {
  uint64_t connections = 0;  // completed all their messages
  uint64_t aborted = 0;      // ended by an error (injected failures)
  uint64_t bytes = 0;        // echoed and checked
  uint64_t mismatches = 0;   // bytes that came back wrong: must stay 0
};

// ---- the server
// --------------------------------------------------------------

struct EchoConn {
  cx_coro co;
  cx_stream *s;
  cx_stream_read rd;
  cx_stream_write_all wr;
  ssize_t n;
  int rc;
  char buf[4096];
};

cx_poll EchoConnPoll(void *self, cx_context *cx, void *) {
  auto *f = static_cast<EchoConn *>(self);
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_stream_read_init(&f->rd, f->s, f->buf, sizeof f->buf);
    CX_AWAIT(&f->co, cx_stream_read_poll(&f->rd, cx, &f->n));
    if (f->n <= 0) break;
    cx_stream_write_all_init(&f->wr, f->s, f->buf, (size_t)f->n);
    CX_AWAIT(&f->co, cx_stream_write_all_poll(&f->wr, cx, &f->rc));
    if (f->rc != CX_OK) break;
  }
  CX_CORO_END(&f->co);
}
void EchoConnDrop(void *self) {
  auto *f = static_cast<EchoConn *>(self);
  cx_stream_read_drop(&f->rd);
  cx_stream_write_all_drop(&f->wr);
  cx_stream_close(f->s);
}
const cx_future_vtable kEchoConnVt = {.poll = EchoConnPoll,
                                      .drop = EchoConnDrop,
                                      .state_size = sizeof(EchoConn),
                                      .state_align = alignof(EchoConn)};

struct Server {
  cx_coro co;
  cx_listener *l;
  cx_accept acc;
  cx_stream *conn;
  int rc;
  uint64_t *spawn_failures;
};

cx_poll ServerPoll(void *self, cx_context *cx, void *) {
  auto *f = static_cast<Server *>(self);
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_accept_init(&f->acc, f->l, &f->conn, nullptr);
    CX_AWAIT(&f->co, cx_accept_poll(&f->acc, cx, &f->rc));
    if (f->rc == CX_EBADF) break;  // the listener was closed: done
    if (f->rc != CX_OK) continue;  // e.g. a registration without memory
    cx_stream_set_nodelay(f->conn, true);  // no Nagle/delayed-ACK stalls
    EchoConn c{};
    c.s = f->conn;
    if (cx_spawn(cx->executor, &kEchoConnVt, &c, nullptr) != CX_OK) {
      (*f->spawn_failures)++;
      cx_stream_close(f->conn);
    }
  }
  CX_CORO_END(&f->co);
}
void ServerDrop(void *self) {
  cx_accept_drop(&static_cast<Server *>(self)->acc);
}
const cx_future_vtable kServerVt = {.poll = ServerPoll,
                                    .drop = ServerDrop,
                                    .state_size = sizeof(Server),
                                    .state_align = alignof(Server)};

// ---- a client: connect, a few messages, close, again until the deadline -----

unsigned char Pattern(uint32_t seed, size_t i) {
  return (unsigned char)((seed * 2654435761u + i * 40503u) >> 13);
}

struct Client {
  cx_coro co;
  cx_addr addr;
  uint64_t deadline;
  uint32_t rng;
  Totals *totals;
  cx_connect con;
  cx_stream *s;
  cx_stream_write_all wr;
  cx_stream_read_exact rd;
  int rc, msgs, m;
  size_t len;
  uint32_t seed;
  unsigned char out[16384], in[16384];
};

uint32_t Next(uint32_t *r) {
  *r ^= *r << 13;
  *r ^= *r >> 17;
  *r ^= *r << 5;
  return *r;
}

// Counts the bytes of an echo that match, and the ones that do not.
void Check(Client *f, size_t got) {
  for (size_t i = 0; i < got; i++) {
    if (f->in[i] == Pattern(f->seed, i))
      f->totals->bytes++;
    else
      f->totals->mismatches++;
  }
}

cx_poll ClientPoll(void *self, cx_context *cx, void *) {
  auto *f = static_cast<Client *>(self);
  CX_CORO_BEGIN(&f->co);
  while (cx_clock_now() < f->deadline) {
    f->s = nullptr;
    cx_connect_init(&f->con, &f->addr, &f->s);
    CX_AWAIT(&f->co, cx_connect_poll(&f->con, cx, &f->rc));
    if (f->rc != CX_OK) {
      f->totals->aborted++;
      continue;
    }
    cx_stream_set_nodelay(f->s, true);
    f->msgs = 1 + (int)(Next(&f->rng) % 8);
    for (f->m = 0; f->m < f->msgs; f->m++) {
      f->len = 1 + Next(&f->rng) % sizeof f->out;
      f->seed = Next(&f->rng);
      for (size_t i = 0; i < f->len; i++) f->out[i] = Pattern(f->seed, i);
      cx_stream_write_all_init(&f->wr, f->s, f->out, f->len);
      CX_AWAIT(&f->co, cx_stream_write_all_poll(&f->wr, cx, &f->rc));
      if (f->rc != CX_OK) break;
      memset(f->in, 0, f->len);
      cx_stream_read_exact_init(&f->rd, f->s, f->in, f->len);
      CX_AWAIT(&f->co, cx_stream_read_exact_poll(&f->rd, cx, &f->rc));
      Check(f, cx_stream_read_exact_count(&f->rd));
      if (f->rc != CX_OK) break;
    }
    if (f->rc == CX_OK)
      f->totals->connections++;
    else
      f->totals->aborted++;
    cx_stream_close(f->s);
    f->s = nullptr;
  }
  CX_CORO_END(&f->co);
}
void ClientDrop(void *self) {
  auto *f = static_cast<Client *>(self);
  cx_connect_drop(&f->con);
  cx_stream_write_all_drop(&f->wr);
  cx_stream_read_exact_drop(&f->rd);
  cx_stream_close(f->s);
}
const cx_future_vtable kClientVt = {.poll = ClientPoll,
                                    .drop = ClientDrop,
                                    .state_size = sizeof(Client),
                                    .state_align = alignof(Client)};

// ---- chaos: one allocation failure every ~20 ms
// -------------------------------

struct Chaos {
  cx_coro co;
  cx_sleep nap;
  ScopedCountingAllocator *alloc;
  uint64_t deadline;
  uint32_t rng;
  uint64_t injected;
};
cx_poll ChaosPoll(void *self, cx_context *cx, void *) {
  auto *f = static_cast<Chaos *>(self);
  CX_CORO_BEGIN(&f->co);
  while (cx_clock_now() < f->deadline) {
    cx_sleep_init_for(&f->nap, (10 + Next(&f->rng) % 20) * kMs);
    CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, nullptr));
    f->alloc->FailAt(1 + Next(&f->rng) % 8);
    f->injected++;
  }
  f->alloc->FailNever();
  CX_CORO_END(&f->co);
}
void ChaosDrop(void *self) {
  cx_sleep_drop(&static_cast<Chaos *>(self)->nap);
}
const cx_future_vtable kChaosVt = {.poll = ChaosPoll,
                                   .drop = ChaosDrop,
                                   .state_size = sizeof(Chaos),
                                   .state_align = alignof(Chaos)};

TEST(NetSoak, EchoWithChurnAndAllocationFailures) {
  const char *env = getenv("CX_SOAK_SECONDS");
  int seconds = env ? atoi(env) : 30;
  if (seconds <= 0) seconds = 1;
  alarm((unsigned)seconds + 90);  // the watchdog: SIGALRM ends the run

  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  Totals totals;
  uint64_t spawn_failures = 0, injected = 0;
  {
    cx_executor *ex = nullptr;
    ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
    cx_addr a;
    ASSERT_EQ(cx_addr_parse("127.0.0.1:0", &a), CX_OK);
    cx_listener *l = nullptr;
    ASSERT_EQ(cx_listen(&a, 256, &l), CX_OK);
    cx_listener_set_backoff(l, 2 * kMs);
    ASSERT_EQ(cx_listener_local_addr(l, &a), CX_OK);

    Server srv{};
    srv.l = l;
    srv.spawn_failures = &spawn_failures;
    ASSERT_EQ(cx_spawn(ex, &kServerVt, &srv, nullptr), CX_OK);
    uint64_t deadline = cx_clock_now() + (uint64_t)seconds * CX_NSEC_PER_SEC;
    constexpr int kClients = 16;
    cx_join_handle *h[kClients];
    for (int i = 0; i < kClients; i++) {
      auto *c = static_cast<Client *>(calloc(1, sizeof(Client)));
      c->addr = a;
      c->deadline = deadline;
      c->rng = 0x9e3779b9u * (uint32_t)(i + 1);
      c->totals = &totals;
      ASSERT_EQ(cx_spawn(ex, &kClientVt, c, &h[i]), CX_OK);
      free(c);
    }
    Chaos chaos{};
    chaos.alloc = &alloc;
    chaos.deadline = deadline;
    chaos.rng = 12345;
    cx_join_handle *hc;
    ASSERT_EQ(cx_spawn(ex, &kChaosVt, &chaos, &hc), CX_OK);

    for (int i = 0; i < kClients; i++) {
      ASSERT_EQ(cx_executor_join(ex, h[i], nullptr, 0), CX_OK);
      cx_join_handle_detach(h[i]);
    }
    ASSERT_EQ(cx_executor_join(ex, hc, nullptr, 0), CX_OK);
    cx_join_handle_detach(hc);
    alloc.FailNever();
    injected = alloc.failures();
    cx_listener_close(l);  // the server's accept ends with CX_EBADF
    ASSERT_EQ(cx_executor_run(ex), CX_OK);
    cx_executor_destroy(ex);
  }
  alarm(0);
  printf(
      "soak: %d s, %llu connections, %llu aborted, %llu bytes checked, "
      "%llu allocation failures injected, %llu spawns refused\n",
      seconds, (unsigned long long)totals.connections,
      (unsigned long long)totals.aborted, (unsigned long long)totals.bytes,
      (unsigned long long)injected, (unsigned long long)spawn_failures);
  EXPECT_EQ(totals.mismatches, 0u);
  EXPECT_GT(totals.connections, 0u);
  EXPECT_GT(totals.bytes, 0u);
  if (seconds >= 3) {
    EXPECT_GT(injected, 0u);
  }
  // Injected failures end some connections; most must complete.
  EXPECT_LT(totals.aborted, totals.connections);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

}  // namespace
