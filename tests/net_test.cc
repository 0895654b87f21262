// net/: addresses, listeners, streams, UDP, Unix-domain sockets, over
// loopback. Every call and its error paths: refused, reset, EPIPE (the
// process survives), EADDRINUSE, early EOF, EMFILE during accept (the
// server keeps serving and does not spin), cancellation through cx_timeout,
// close with futures pending, bad arguments, allocation failure, wakes from
// other threads while a task waits on a socket.
//
// Most steps are leaf futures run with cx_executor_block_on (which copies
// the future's state into a task: the copy left here must not be dropped);
// concurrent steps are spawned and joined.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "executor/cexec.h"
#include "net/net.h"
#include "tests/testutil.h"

namespace {

using cxtest::ScopedCountingAllocator;

constexpr uint64_t kMs = CX_NSEC_PER_MSEC;

// Fails the test run instead of hanging: SIGALRM's default action ends the
// process, which Bazel reports as a failure.
struct Watchdog {
  explicit Watchdog(unsigned seconds = 60) { alarm(seconds); }
  ~Watchdog() { alarm(0); }
};

int OpenFds() {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) n++;
  closedir(d);
  return n;
}

cx_addr Addr(const char *text) {
  cx_addr a;
  EXPECT_EQ(cx_addr_parse(text, &a), CX_OK) << text;
  return a;
}

cx_listener *Listen(const char *text) {
  cx_addr a = Addr(text);
  cx_listener *l = nullptr;
  EXPECT_EQ(cx_listen(&a, 64, &l), CX_OK);
  return l;
}

cx_addr LocalAddr(cx_listener *l) {
  cx_addr a;
  EXPECT_EQ(cx_listener_local_addr(l, &a), CX_OK);
  return a;
}

// Runs one future to completion on ex and returns its output.
template <class Out, class State>
Out BlockOn(cx_executor *ex, const cx_future_vtable *vt, const State &state) {
  Out out{};
  EXPECT_EQ(cx_executor_block_on(ex, vt, &state, &out, sizeof out), CX_OK);
  return out;
}

struct Exec {
  cx_executor *ex = nullptr;
  Exec() { EXPECT_EQ(cx_executor_create(nullptr, &ex), CX_OK); }
  ~Exec() { cx_executor_destroy(ex); }
  operator cx_executor *() const { return ex; }
};

// A connected pair over a listener: *server accepted, *client connected.
void Connect(cx_executor *ex, cx_listener *l, cx_stream **server,
             cx_stream **client) {
  cx_addr a = LocalAddr(l);
  cx_accept acc;
  cx_accept_init(&acc, l, server, nullptr);
  cx_connect con;
  cx_connect_init(&con, &a, client);
  cx_join_handle *ha = nullptr, *hc = nullptr;
  ASSERT_EQ(cx_spawn(ex, &cx_accept_vtable, &acc, &ha), CX_OK);
  ASSERT_EQ(cx_spawn(ex, &cx_connect_vtable, &con, &hc), CX_OK);
  int ra = -1, rc = -1;
  EXPECT_EQ(cx_executor_join(ex, ha, &ra, sizeof ra), CX_OK);
  EXPECT_EQ(cx_executor_join(ex, hc, &rc, sizeof rc), CX_OK);
  cx_join_handle_detach(ha);
  cx_join_handle_detach(hc);
  ASSERT_EQ(ra, CX_OK);
  ASSERT_EQ(rc, CX_OK);
}

ssize_t Write(cx_executor *ex, cx_stream *s, const void *buf, size_t len) {
  cx_stream_write_all w;
  cx_stream_write_all_init(&w, s, buf, len);
  int rc = BlockOn<int>(ex, &cx_stream_write_all_vtable, w);
  return rc == CX_OK ? (ssize_t)len : rc;
}

ssize_t Read(cx_executor *ex, cx_stream *s, void *buf, size_t len) {
  cx_stream_read r;
  cx_stream_read_init(&r, s, buf, len);
  return BlockOn<ssize_t>(ex, &cx_stream_read_vtable, r);
}

// ---- addresses --------------------------------------------------------------

TEST(NetAddr, ParsesAndFormatsNumericAddresses) {
  const char *good[] = {
      "127.0.0.1:8080", "0.0.0.0:0",     "255.255.255.255:65535", "[::1]:8080",
      "[::]:0",         "[fe80::1:2]:1", "[::ffff:1.2.3.4]:80"};
  for (const char *t : good) {
    cx_addr a;
    ASSERT_EQ(cx_addr_parse(t, &a), CX_OK) << t;
    char buf[CX_ADDR_STRLEN];
    ASSERT_EQ(cx_addr_format(&a, buf, sizeof buf), CX_OK);
    EXPECT_STREQ(buf, t);
    cx_addr b;
    ASSERT_EQ(cx_addr_parse(buf, &b), CX_OK);
    EXPECT_TRUE(cx_addr_equal(&a, &b));
  }
  cx_addr a = Addr("10.1.2.3:443");
  EXPECT_EQ(cx_addr_family(&a), AF_INET);
  EXPECT_EQ(cx_addr_port(&a), 443);
  a = Addr("[2001:db8::7]:65535");
  EXPECT_EQ(cx_addr_family(&a), AF_INET6);
  EXPECT_EQ(cx_addr_port(&a), 65535);
  ASSERT_EQ(cx_addr_from_ip("::1", 9, &a), CX_OK);
  EXPECT_TRUE(cx_addr_equal(&a, &(const cx_addr &)Addr("[::1]:9")));
  ASSERT_EQ(cx_addr_from_ip("192.168.0.1", 7, &a), CX_OK);
  EXPECT_EQ(cx_addr_port(&a), 7);
}

TEST(NetAddr, RejectsBadText) {
  const char *bad[] = {"",
                       "127.0.0.1",
                       "127.0.0.1:",
                       ":80",
                       "127.0.0.1:65536",
                       "127.0.0.1:123456",
                       "127.0.0.1:-1",
                       "127.0.0.1:+80",
                       "127.0.0.1:8a",
                       " 127.0.0.1:80",
                       "127.0.0.1:80 ",
                       "127.1:80",
                       "0127.0.0.1:80",
                       "256.0.0.1:80",
                       "localhost:80",
                       "::1:80",
                       "[::1]80",
                       "[::1]:",
                       "[::1",
                       "::1]:80",
                       "[1.2.3.4]:80",
                       "[fe80::1%1]:80",
                       "[::1]:80:80",
                       "[]:80"};
  for (const char *t : bad) {
    cx_addr a;
    a.len = 99;
    EXPECT_EQ(cx_addr_parse(t, &a), CX_EINVAL) << t;
    EXPECT_EQ(a.len, 0u) << t;
  }
  cx_addr a;
  EXPECT_EQ(cx_addr_parse(nullptr, &a), CX_EINVAL);
  EXPECT_EQ(cx_addr_parse("1.2.3.4:5", nullptr), CX_EINVAL);
  EXPECT_EQ(cx_addr_from_ip("1.2.3.4:5", 1, &a), CX_EINVAL);
  EXPECT_EQ(cx_addr_from_ip("[::1]", 1, &a), CX_EINVAL);
  EXPECT_EQ(cx_addr_from_ip(nullptr, 1, &a), CX_EINVAL);
  EXPECT_EQ(cx_addr_port(nullptr), CX_EINVAL);
  EXPECT_EQ(cx_addr_family(nullptr), 0);
  EXPECT_FALSE(cx_addr_equal(nullptr, nullptr));
  char buf[8];
  EXPECT_EQ(cx_addr_format(nullptr, buf, sizeof buf), CX_EINVAL);
  a = Addr("[2001:db8::7]:65535");
  EXPECT_EQ(cx_addr_format(&a, buf, sizeof buf), CX_ENOBUFS);
  EXPECT_STREQ(buf, "");
}

TEST(NetAddr, UnixPaths) {
  cx_addr a;
  ASSERT_EQ(cx_addr_unix("/tmp/x.sock", &a), CX_OK);
  EXPECT_EQ(cx_addr_family(&a), AF_UNIX);
  EXPECT_EQ(cx_addr_port(&a), CX_EINVAL);
  char buf[CX_ADDR_STRLEN];
  ASSERT_EQ(cx_addr_format(&a, buf, sizeof buf), CX_OK);
  EXPECT_STREQ(buf, "unix:/tmp/x.sock");
  std::string long_path(200, 'a');
  EXPECT_EQ(cx_addr_unix(long_path.c_str(), &a), CX_ENAMETOOLONG);
  EXPECT_EQ(cx_addr_unix("", &a), CX_EINVAL);
  EXPECT_EQ(cx_addr_unix(nullptr, &a), CX_EINVAL);
}

// ---- listeners: synchronous errors ------------------------------------------

TEST(NetListen, BadArgumentsAndAddressInUse) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  cx_listener *l = nullptr;
  cx_addr none;
  memset(&none, 0, sizeof none);
  EXPECT_EQ(cx_listen(nullptr, 1, &l), CX_EINVAL);
  EXPECT_EQ(cx_listen(&none, 1, &l), CX_EINVAL);
  cx_addr a = Addr("127.0.0.1:0");
  EXPECT_EQ(cx_listen(&a, 1, nullptr), CX_EINVAL);

  ASSERT_EQ(cx_listen(&a, 1, &l), CX_OK);
  cx_addr bound = LocalAddr(l);
  EXPECT_NE(cx_addr_port(&bound), 0);
  cx_listener *l2 = reinterpret_cast<cx_listener *>(0x1);
  EXPECT_EQ(cx_listen(&bound, 1, &l2), CX_EADDRINUSE);
  EXPECT_EQ(l2, nullptr);
  // A UDP socket on the same port number is another namespace.
  cx_udp *u = nullptr;
  ASSERT_EQ(cx_udp_bind(&bound, &u), CX_OK);
  cx_udp *u2 = nullptr;
  EXPECT_EQ(cx_udp_bind(&bound, &u2), CX_EADDRINUSE);
  EXPECT_EQ(cx_udp_bind(nullptr, &u2), CX_EINVAL);
  cx_udp_close(u);
  cx_listener_close(l);
  cx_listener_close(nullptr);
  EXPECT_EQ(cx_listener_local_addr(nullptr, &a), CX_EINVAL);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

TEST(NetListen, AllocationFailureLeavesNothingOpen) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  cx_addr a = Addr("127.0.0.1:0");
  cx_listener *l = nullptr;
  alloc.FailAfter(0);
  EXPECT_EQ(cx_listen(&a, 1, &l), CX_ENOMEM);
  EXPECT_EQ(l, nullptr);
  cx_udp *u = nullptr;
  EXPECT_EQ(cx_udp_bind(&a, &u), CX_ENOMEM);
  EXPECT_EQ(u, nullptr);
  alloc.FailNever();
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// ---- streams ----------------------------------------------------------------

TEST(NetStream, EchoOverIpv4AndIpv6) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  for (const char *where : {"127.0.0.1:0", "[::1]:0"}) {
    Exec ex;
    cx_listener *l = Listen(where);
    if (l == nullptr) continue;  // no IPv6 on this machine
    cx_stream *srv = nullptr, *cli = nullptr;
    Connect(ex, l, &srv, &cli);
    ASSERT_NE(srv, nullptr);
    ASSERT_NE(cli, nullptr);
    cx_addr peer, local;
    ASSERT_EQ(cx_stream_peer_addr(cli, &peer), CX_OK);
    ASSERT_EQ(cx_stream_local_addr(srv, &local), CX_OK);
    EXPECT_TRUE(cx_addr_equal(&peer, &local));
    EXPECT_EQ(cx_stream_set_nodelay(cli, true), CX_OK);
    int v = 0;
    socklen_t vl = sizeof v;
    getsockopt(cx_stream_fd(cli), IPPROTO_TCP, TCP_NODELAY, &v, &vl);
    EXPECT_EQ(v, 1);
    // Non-blocking and close-on-exec, both ends.
    for (cx_stream *s : {srv, cli}) {
      EXPECT_TRUE(fcntl(cx_stream_fd(s), F_GETFL) & O_NONBLOCK);
      EXPECT_TRUE(fcntl(cx_stream_fd(s), F_GETFD) & FD_CLOEXEC);
    }

    // 1 MiB each way through read / write_all: more than the socket
    // buffers, so both sides have to wait for each other.
    std::vector<unsigned char> out(1 << 20), in(1 << 20);
    for (size_t i = 0; i < out.size(); i++) out[i] = (unsigned char)(i * 7);
    cx_stream_write_all w;
    cx_stream_write_all_init(&w, cli, out.data(), out.size());
    cx_stream_read_exact r;
    cx_stream_read_exact_init(&r, srv, in.data(), in.size());
    cx_join_handle *hw, *hr;
    ASSERT_EQ(cx_spawn(ex, &cx_stream_write_all_vtable, &w, &hw), CX_OK);
    ASSERT_EQ(cx_spawn(ex, &cx_stream_read_exact_vtable, &r, &hr), CX_OK);
    int rw = -1, rr = -1;
    EXPECT_EQ(cx_executor_join(ex, hw, &rw, sizeof rw), CX_OK);
    EXPECT_EQ(cx_executor_join(ex, hr, &rr, sizeof rr), CX_OK);
    cx_join_handle_detach(hw);
    cx_join_handle_detach(hr);
    EXPECT_EQ(rw, CX_OK);
    EXPECT_EQ(rr, CX_OK);
    EXPECT_EQ(out, in);

    // Shutdown of the write side: the peer reads end of stream (0).
    EXPECT_EQ(Write(ex, srv, "bye", 3), 3);
    EXPECT_EQ(cx_stream_shutdown(srv, SHUT_WR), CX_OK);
    char buf[8];
    EXPECT_EQ(Read(ex, cli, buf, sizeof buf), 3);
    EXPECT_EQ(Read(ex, cli, buf, sizeof buf), 0);
    EXPECT_EQ(Read(ex, cli, buf, sizeof buf), 0);
    EXPECT_EQ(Read(ex, cli, buf, 0), 0);
    EXPECT_EQ(cx_stream_shutdown(srv, 12345), CX_EINVAL);

    cx_stream_close(srv);
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

TEST(NetStream, ConnectRefused) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  Exec ex;
  cx_listener *l = Listen("127.0.0.1:0");
  cx_addr a = LocalAddr(l);
  cx_listener_close(l);  // nobody listens on that port now
  cx_stream *s = nullptr;
  cx_connect c;
  cx_connect_init(&c, &a, &s);
  EXPECT_EQ(BlockOn<int>(ex, &cx_connect_vtable, c), CX_ECONNREFUSED);
  EXPECT_EQ(s, nullptr);
  cx_connect_init(&c, nullptr, &s);
  EXPECT_EQ(BlockOn<int>(ex, &cx_connect_vtable, c), CX_EINVAL);
  cx_connect_init(&c, &a, nullptr);
  EXPECT_EQ(BlockOn<int>(ex, &cx_connect_vtable, c), CX_EINVAL);
}

TEST(NetStream, PeerResetAndBrokenPipeDoNotKillTheProcess) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  // SIGPIPE keeps its default action (death): surviving is the test.
  signal(SIGPIPE, SIG_DFL);
  {
    Exec ex;
    cx_listener *l = Listen("127.0.0.1:0");
    cx_stream *srv = nullptr, *cli = nullptr;
    Connect(ex, l, &srv, &cli);
    // Close with SO_LINGER 0: the kernel sends RST instead of FIN.
    struct linger lin = {1, 0};
    ASSERT_EQ(
        setsockopt(cx_stream_fd(srv), SOL_SOCKET, SO_LINGER, &lin, sizeof lin),
        0);
    cx_stream_close(srv);
    char buf[16];
    EXPECT_EQ(Read(ex, cli, buf, sizeof buf), CX_ECONNRESET);
    // After the reset, writes fail with EPIPE, never a signal.
    ssize_t w = 0;
    for (int i = 0; i < 100 && w >= 0; i++) w = Write(ex, cli, "x", 1);
    EXPECT_EQ(w, CX_EPIPE);
    cx_stream_close(cli);

    // A peer that closed normally: the first write may still be accepted,
    // the RST it provokes makes a later one fail with EPIPE (or reset).
    Connect(ex, l, &srv, &cli);
    cx_stream_close(srv);
    w = 0;
    for (int i = 0; i < 1000 && w >= 0; i++) w = Write(ex, cli, "hello", 5);
    EXPECT_TRUE(w == CX_EPIPE || w == CX_ECONNRESET) << cx_err_name((int)w);
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(NetStream, ReadExactWithEarlyEof) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  {
    Exec ex;
    cx_listener *l = Listen("127.0.0.1:0");
    cx_stream *srv = nullptr, *cli = nullptr;
    Connect(ex, l, &srv, &cli);
    EXPECT_EQ(Write(ex, srv, "abc", 3), 3);
    cx_stream_close(srv);
    char buf[10] = {};
    cx_stream_read_exact r;
    cx_stream_read_exact_init(&r, cli, buf, sizeof buf);
    cx_join_handle *h;
    ASSERT_EQ(cx_spawn(ex, &cx_stream_read_exact_vtable, &r, &h), CX_OK);
    int rc = 0;
    ASSERT_EQ(cx_executor_join(ex, h, &rc, sizeof rc), CX_OK);
    cx_join_handle_detach(h);
    EXPECT_EQ(rc, CX_EPIPE);
    EXPECT_EQ(std::string(buf, 3), "abc");
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(NetStream, BadArguments) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  {
    Exec ex;
    char buf[4];
    cx_stream_read r;
    cx_stream_read_init(&r, nullptr, buf, sizeof buf);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_stream_read_vtable, r), CX_EINVAL);
    cx_stream_write w;
    cx_stream_write_init(&w, nullptr, buf, sizeof buf);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_stream_write_vtable, w), CX_EINVAL);
    cx_stream_read_exact re;
    cx_stream_read_exact_init(&re, nullptr, buf, sizeof buf);
    EXPECT_EQ(BlockOn<int>(ex, &cx_stream_read_exact_vtable, re), CX_EINVAL);
    cx_stream_write_all wa;
    cx_stream_write_all_init(&wa, nullptr, buf, sizeof buf);
    EXPECT_EQ(BlockOn<int>(ex, &cx_stream_write_all_vtable, wa), CX_EINVAL);
    cx_accept a;
    cx_stream *s = nullptr;
    cx_accept_init(&a, nullptr, &s, nullptr);
    EXPECT_EQ(BlockOn<int>(ex, &cx_accept_vtable, a), CX_EINVAL);
    EXPECT_EQ(cx_stream_set_nodelay(nullptr, true), CX_EINVAL);
    EXPECT_EQ(cx_stream_shutdown(nullptr, SHUT_WR), CX_EINVAL);
    EXPECT_EQ(cx_stream_fd(nullptr), -1);
    cx_stream_close(nullptr);
    // Zeroed futures can be dropped.
    cx_stream_read zr{};
    cx_stream_read_drop(&zr);
    cx_accept za{};
    cx_accept_drop(&za);
    cx_connect zc{};
    cx_connect_drop(&zc);
    cx_udp_recv_from zu{};
    cx_udp_recv_from_drop(&zu);
    // A NULL buffer with a nonzero length.
    cx_listener *l = Listen("127.0.0.1:0");
    cx_stream *srv = nullptr, *cli = nullptr;
    Connect(ex, l, &srv, &cli);
    cx_stream_read_init(&r, cli, nullptr, 4);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_stream_read_vtable, r), CX_EINVAL);
    // Nodelay is for TCP only... and for open streams.
    cx_stream_close(srv);
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  EXPECT_EQ(alloc.live(), 0u);
}

// Polled by hand with no executor: completes when no wait is needed,
// CX_ENOTSUP when it would have to wait.
TEST(NetStream, WithoutAnIoDriver) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  cx_listener *l = Listen("127.0.0.1:0");
  cx_stream *s = nullptr;
  cx_accept a;
  cx_accept_init(&a, l, &s, nullptr);
  cx_waker noop = cx_waker_noop();
  cx_context cx = cx_context_from_waker(&noop);
  int rc = 0;
  ASSERT_EQ(cx_accept_poll(&a, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_ENOTSUP);
  cx_accept_drop(&a);
  cx_listener_close(l);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- closing and cancelling -------------------------------------------------

// A task that closes a stream or listener once another task is waiting.
struct Closer {
  cx_sleep nap;
  cx_stream *stream;
  cx_listener *listener;
  bool started;
};
cx_poll CloserPoll(void *self, cx_context *cx, void *) {
  auto *c = static_cast<Closer *>(self);
  if (!c->started) {
    cx_sleep_init_for(&c->nap, 5 * kMs);
    c->started = true;
  }
  if (cx_sleep_poll(&c->nap, cx, nullptr) == CX_PENDING) return CX_PENDING;
  if (c->stream) cx_stream_close(c->stream);
  if (c->listener) cx_listener_close(c->listener);
  return CX_READY;
}
void CloserDrop(void *self) {
  cx_sleep_drop(&static_cast<Closer *>(self)->nap);
}
const cx_future_vtable kCloserVt = {.poll = CloserPoll,
                                    .drop = CloserDrop,
                                    .state_size = sizeof(Closer),
                                    .state_align = alignof(Closer)};

TEST(NetClose, PendingFuturesWakeWithEbadf) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  Exec ex;
  cx_listener *l = Listen("127.0.0.1:0");
  cx_stream *srv = nullptr, *cli = nullptr;
  Connect(ex, l, &srv, &cli);

  // A read pending on cli, then cli closed by another task.
  char buf[8];
  cx_stream_read r;
  cx_stream_read_init(&r, cli, buf, sizeof buf);
  cx_join_handle *hr, *hc;
  ASSERT_EQ(cx_spawn(ex, &cx_stream_read_vtable, &r, &hr), CX_OK);
  Closer c = {};
  c.stream = cli;
  ASSERT_EQ(cx_spawn(ex, &kCloserVt, &c, &hc), CX_OK);
  ssize_t n = 0;
  ASSERT_EQ(cx_executor_join(ex, hr, &n, sizeof n), CX_OK);
  EXPECT_EQ(n, CX_EBADF);
  EXPECT_EQ(cx_executor_join(ex, hc, nullptr, 0), CX_OK);
  cx_join_handle_detach(hr);
  cx_join_handle_detach(hc);

  // An accept pending, then the listener closed.
  cx_stream *s2 = nullptr;
  cx_accept a;
  cx_accept_init(&a, l, &s2, nullptr);
  cx_join_handle *ha;
  ASSERT_EQ(cx_spawn(ex, &cx_accept_vtable, &a, &ha), CX_OK);
  c = Closer{};
  c.listener = l;
  ASSERT_EQ(cx_spawn(ex, &kCloserVt, &c, &hc), CX_OK);
  int rc = 0;
  ASSERT_EQ(cx_executor_join(ex, ha, &rc, sizeof rc), CX_OK);
  EXPECT_EQ(rc, CX_EBADF);
  EXPECT_EQ(s2, nullptr);
  EXPECT_EQ(cx_executor_join(ex, hc, nullptr, 0), CX_OK);
  cx_join_handle_detach(ha);
  cx_join_handle_detach(hc);

  // Futures made after the close fail at once.
  cx_stream_write w;
  cx_stream_write_init(&w, srv, "x", 1);
  cx_stream_close(srv);
  EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_stream_write_vtable, w), CX_EBADF);
  EXPECT_EQ(alloc.live() > 0, true);  // the executor
  cx_executor_destroy(ex.ex);
  ex.ex = nullptr;
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// cx_timeout around accept, read and connect: each times out, its waker is
// withdrawn, nothing leaks, and the socket works afterwards.
struct Timed {
  cx_timeout t;
  union {
    cx_accept acc;
    cx_stream_read rd;
    cx_connect con;
  } u;
  union {
    int i;
    ssize_t n;
  } out;
};
cx_poll TimedPoll(void *self, cx_context *cx, void *out) {
  return cx_timeout_poll(&static_cast<Timed *>(self)->t, cx,
                         static_cast<int *>(out));
}
void TimedDrop(void *self) {
  cx_timeout_drop(&static_cast<Timed *>(self)->t);
}

// Spawns a Timed (its children point into the task's copy, so it is set up
// by an init function run inside the task: see TimedInit).
struct TimedSetup {
  Timed timed;
  int kind;  // 0 accept, 1 read, 2 connect
  cx_listener *l;
  cx_stream *s;
  cx_addr addr;
  cx_stream **out;
  char buf[8];
  bool ready;
};
cx_poll TimedSetupPoll(void *self, cx_context *cx, void *out) {
  auto *t = static_cast<TimedSetup *>(self);
  if (!t->ready) {
    t->ready = true;
    cx_future inner;
    if (t->kind == 0) {
      cx_accept_init(&t->timed.u.acc, t->l, t->out, nullptr);
      inner = cx_future_of(&cx_accept_vtable, &t->timed.u.acc);
    } else if (t->kind == 1) {
      cx_stream_read_init(&t->timed.u.rd, t->s, t->buf, sizeof t->buf);
      inner = cx_future_of(&cx_stream_read_vtable, &t->timed.u.rd);
    } else {
      cx_connect_init(&t->timed.u.con, &t->addr, t->out);
      inner = cx_future_of(&cx_connect_vtable, &t->timed.u.con);
    }
    EXPECT_EQ(cx_timeout_init(&t->timed.t, inner, &t->timed.out, 20 * kMs),
              CX_OK);
  }
  return TimedPoll(&t->timed, cx, out);
}
void TimedSetupDrop(void *self) {
  auto *t = static_cast<TimedSetup *>(self);
  if (t->ready) TimedDrop(&t->timed);
}
const cx_future_vtable kTimedSetupVt = {.poll = TimedSetupPoll,
                                        .drop = TimedSetupDrop,
                                        .state_size = sizeof(TimedSetup),
                                        .state_align = alignof(TimedSetup),
                                        .output_size = sizeof(int),
                                        .output_align = alignof(int)};

TEST(NetCancel, TimeoutCancelsAcceptReadAndConnect) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  {
    Exec ex;
    cx_listener *l = Listen("127.0.0.1:0");
    cx_stream *got = nullptr;
    TimedSetup ts = {};
    ts.kind = 0;
    ts.l = l;
    ts.out = &got;
    EXPECT_EQ(BlockOn<int>(ex, &kTimedSetupVt, ts), CX_ETIMEDOUT);
    EXPECT_EQ(got, nullptr);

    // The listener still works after its accept was cancelled.
    cx_stream *srv = nullptr, *cli = nullptr;
    Connect(ex, l, &srv, &cli);

    ts = TimedSetup{};
    ts.kind = 1;
    ts.s = cli;
    EXPECT_EQ(BlockOn<int>(ex, &kTimedSetupVt, ts), CX_ETIMEDOUT);
    // ...and the stream after its read was cancelled.
    EXPECT_EQ(Write(ex, srv, "ok", 2), 2);
    char buf[4];
    EXPECT_EQ(Read(ex, cli, buf, sizeof buf), 2);

    // A connect that cannot complete: the listener's queue is full and
    // nobody accepts, so the kernel drops the SYNs. Fill the queue first.
    cx_listener *full = nullptr;
    cx_addr a = Addr("127.0.0.1:0");
    ASSERT_EQ(cx_listen(&a, 1, &full), CX_OK);
    cx_addr fa = LocalAddr(full);
    std::vector<int> fillers;
    bool pending_seen = false;
    for (int i = 0; i < 16 && !pending_seen; i++) {
      cx_stream *c = nullptr;
      ts = TimedSetup{};
      ts.kind = 2;
      ts.addr = fa;
      ts.out = &c;
      int rc = BlockOn<int>(ex, &kTimedSetupVt, ts);
      if (rc == CX_ETIMEDOUT) {
        pending_seen = true;
        EXPECT_EQ(c, nullptr);
      } else {
        ASSERT_EQ(rc, CX_OK);
        fillers.push_back(0);
        cx_stream_close(c);  // stays in the accept queue as far as TCP knows
      }
    }
    EXPECT_TRUE(pending_seen);
    cx_listener_close(full);
    cx_stream_close(srv);
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// Dropping the executor with I/O futures pending drops them: no leak.
TEST(NetCancel, DestroyingTheExecutorDropsPendingIo) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  {
    Exec ex;
    cx_listener *l = Listen("127.0.0.1:0");
    cx_stream *srv = nullptr, *cli = nullptr;
    Connect(ex, l, &srv, &cli);
    char buf[8];
    cx_stream_read r;
    cx_stream_read_init(&r, cli, buf, sizeof buf);
    ASSERT_EQ(cx_spawn(ex, &cx_stream_read_vtable, &r, nullptr), CX_OK);
    cx_stream *s2 = nullptr;
    cx_accept a;
    cx_accept_init(&a, l, &s2, nullptr);
    ASSERT_EQ(cx_spawn(ex, &cx_accept_vtable, &a, nullptr), CX_OK);
    EXPECT_GE(cx_executor_run_until_idle(ex), 2);
    cx_stream_close(srv);
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// A listener and a stream outlive the executor they were registered with,
// and work on the next one (they register again).
TEST(NetStream, MovesToANewExecutorAfterTheFirstIsDestroyed) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  cx_listener *l = Listen("127.0.0.1:0");
  cx_stream *srv = nullptr, *cli = nullptr;
  {
    Exec ex;
    Connect(ex, l, &srv, &cli);  // the accept waited: l is registered
    char b[4];
    cx_stream_read r;
    cx_stream_read_init(&r, cli, b, sizeof b);
    cx_join_handle *h;
    ASSERT_EQ(cx_spawn(ex, &cx_stream_read_vtable, &r, &h), CX_OK);
    EXPECT_GE(cx_executor_run_until_idle(ex), 1);  // cli registered, waiting
    EXPECT_FALSE(cx_join_handle_is_finished(h));
    cx_join_handle_detach(h);  // destroyed with the executor
  }
  {
    Exec ex;
    EXPECT_EQ(Write(ex, srv, "abc", 3), 3);
    char b[4];
    EXPECT_EQ(Read(ex, cli, b, sizeof b), 3);
    cx_stream *s2 = nullptr, *c2 = nullptr;
    Connect(ex, l, &s2, &c2);
    cx_stream_close(s2);
    cx_stream_close(c2);
  }
  cx_stream_close(srv);
  cx_stream_close(cli);
  cx_listener_close(l);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// ---- allocation failure -----------------------------------------------------

TEST(NetAlloc, AcceptAndConnectUnderAllocationFailure) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  {
    Exec ex;
    cx_listener *l = Listen("127.0.0.1:0");
    cx_addr a = LocalAddr(l);
    // connect cannot allocate its stream: CX_ENOMEM, nothing left open.
    cx_stream *cli = nullptr;
    cx_connect c;
    cx_connect_init(&c, &a, &cli);
    cx_join_handle *hc = nullptr;
    ASSERT_EQ(cx_spawn(ex, &cx_connect_vtable, &c, &hc), CX_OK);
    alloc.FailAfter(0);
    int rc = 0;
    ASSERT_EQ(cx_executor_join(ex, hc, &rc, sizeof rc), CX_OK);
    alloc.FailNever();
    cx_join_handle_detach(hc);
    EXPECT_EQ(rc, CX_ENOMEM);
    EXPECT_EQ(cli, nullptr);

    // accept cannot allocate: it backs off (the connection is closed, the
    // client sees it end) and then accepts the next one.
    cx_listener_set_backoff(l, 5 * kMs);
    cx_stream *srv = nullptr;
    Connect(ex, l, &srv, &cli);  // warm up: registers the listener
    cx_stream_close(srv);
    cx_stream_close(cli);
    srv = cli = nullptr;
    // The client connects first (the kernel queues the connection), so
    // the accept completes on its first poll: allocation attempts are then
    // 1: the accept task, 2: the read task below, 3: the accepted stream.
    cx_connect_init(&c, &a, &cli);
    ASSERT_EQ(cx_executor_block_on(ex, &cx_connect_vtable, &c, &rc, sizeof rc),
              CX_OK);
    ASSERT_EQ(rc, CX_OK);
    uint64_t before = cx_listener_backoffs(l);
    size_t failures = alloc.failures();
    alloc.FailAt(3);
    cx_accept acc;
    cx_accept_init(&acc, l, &srv, nullptr);
    cx_join_handle *ha;
    ASSERT_EQ(cx_spawn(ex, &cx_accept_vtable, &acc, &ha), CX_OK);
    char b;
    EXPECT_EQ(Read(ex, cli, &b, 1), 0);  // dropped by the server
    EXPECT_EQ(alloc.failures(), failures + 1);
    EXPECT_EQ(cx_listener_backoffs(l), before + 1);
    cx_stream_close(cli);
    cli = nullptr;
    cx_connect_init(&c, &a, &cli);
    ASSERT_EQ(cx_executor_block_on(ex, &cx_connect_vtable, &c, &rc, sizeof rc),
              CX_OK);
    ASSERT_EQ(cx_executor_join(ex, ha, &rc, sizeof rc), CX_OK);
    cx_join_handle_detach(ha);
    EXPECT_EQ(rc, CX_OK);
    ASSERT_NE(srv, nullptr);
    cx_stream_close(srv);
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// ---- EMFILE during accept ---------------------------------------------------

// With no fd left, accept backs off instead of spinning, the connection
// the server already has keeps being served, and accepting resumes once fds
// are free again.
TEST(NetAccept, EmfileBacksOffAndKeepsServing) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  {
    Exec ex;
    cx_listener *l = Listen("127.0.0.1:0");
    cx_listener_set_backoff(l, 20 * kMs);
    cx_addr la = LocalAddr(l);
    cx_stream *srv = nullptr, *cli = nullptr;
    Connect(ex, l, &srv, &cli);  // the connection already served

    // A client socket made before the table fills up, connected after.
    int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(c2, 0);
    struct rlimit low = old;
    low.rlim_cur = (rlim_t)OpenFds() + 16;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<int> fillers;
    for (;;) {
      int f = dup(0);
      if (f < 0) break;
      fillers.push_back(f);
    }
    ASSERT_EQ(errno, EMFILE);
    ASSERT_EQ(connect(c2, &la.u.sa, la.len), 0);  // queued in the backlog

    cx_stream *acc_out = nullptr;
    cx_accept acc;
    cx_accept_init(&acc, l, &acc_out, nullptr);
    cx_join_handle *ha;
    ASSERT_EQ(cx_spawn(ex, &cx_accept_vtable, &acc, &ha), CX_OK);

    // Serve the existing connection for ~200 ms while accept cannot.
    uint64_t t0 = cx_clock_now();
    for (int i = 0; i < 20; i++) {
      char msg[16], back[16];
      snprintf(msg, sizeof msg, "ping %d", i);
      ASSERT_EQ(Write(ex, cli, msg, sizeof msg), (ssize_t)sizeof msg);
      cx_stream_read_exact r;
      cx_stream_read_exact_init(&r, srv, back, sizeof back);
      ASSERT_EQ(BlockOn<int>(ex, &cx_stream_read_exact_vtable, r), CX_OK);
      ASSERT_EQ(memcmp(msg, back, sizeof msg), 0);
      cx_sleep nap;
      cx_sleep_init_for(&nap, 10 * kMs);
      ASSERT_EQ(BlockOn<int>(ex, &cx_sleep_vtable, nap), CX_OK);
    }
    EXPECT_FALSE(cx_join_handle_is_finished(ha));
    uint64_t backoffs = cx_listener_backoffs(l);
    uint64_t polls = cx_join_handle_poll_count(ha);
    uint64_t elapsed_ms = (cx_clock_now() - t0) / kMs;
    EXPECT_GE(backoffs, 1u);
    // One try per 20 ms backoff: about elapsed/20 polls (10 on an idle
    // machine). A spinning accept would be polled thousands of times.
    EXPECT_LE(polls, elapsed_ms / 20 * 2 + 10) << "elapsed " << elapsed_ms;
    EXPECT_LE(backoffs, elapsed_ms / 20 * 2 + 10);

    for (int f : fillers) close(f);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    int rc = -1;
    ASSERT_EQ(cx_executor_join(ex, ha, &rc, sizeof rc), CX_OK);
    cx_join_handle_detach(ha);
    EXPECT_EQ(rc, CX_OK);
    ASSERT_NE(acc_out, nullptr);
    ASSERT_EQ(Write(ex, acc_out, "hi", 2), 2);
    char b[2];
    ASSERT_EQ(recv(c2, b, 2, MSG_WAITALL), 2);
    close(c2);
    cx_stream_close(acc_out);
    cx_stream_close(srv);
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  setrlimit(RLIMIT_NOFILE, &old);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// ---- UDP --------------------------------------------------------------------

TEST(NetUdp, SendToAndRecvFrom) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  for (const char *where : {"127.0.0.1:0", "[::1]:0"}) {
    Exec ex;
    cx_addr any = Addr(where);
    cx_udp *a = nullptr, *b = nullptr;
    if (cx_udp_bind(&any, &a) != CX_OK) continue;  // no IPv6 here
    ASSERT_EQ(cx_udp_bind(&any, &b), CX_OK);
    cx_addr aa, ba;
    ASSERT_EQ(cx_udp_local_addr(a, &aa), CX_OK);
    ASSERT_EQ(cx_udp_local_addr(b, &ba), CX_OK);
    EXPECT_TRUE(fcntl(cx_udp_fd(a), F_GETFD) & FD_CLOEXEC);

    // The receive pends first, the send comes from another task.
    char buf[64] = {};
    cx_addr from;
    cx_udp_recv_from r;
    cx_udp_recv_from_init(&r, b, buf, sizeof buf, &from);
    cx_join_handle *hr;
    ASSERT_EQ(cx_spawn(ex, &cx_udp_recv_from_vtable, &r, &hr), CX_OK);
    EXPECT_GE(cx_executor_run_until_idle(ex), 1);
    cx_udp_send_to s;
    cx_udp_send_to_init(&s, a, "datagram", 8, &ba);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_send_to_vtable, s), 8);
    ssize_t n = 0;
    ASSERT_EQ(cx_executor_join(ex, hr, &n, sizeof n), CX_OK);
    cx_join_handle_detach(hr);
    EXPECT_EQ(n, 8);
    EXPECT_EQ(std::string(buf, 8), "datagram");
    EXPECT_TRUE(cx_addr_equal(&from, &aa));

    // Truncation to the buffer; an empty datagram.
    cx_udp_send_to_init(&s, a, "0123456789", 10, &ba);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_send_to_vtable, s), 10);
    cx_udp_recv_from_init(&r, b, buf, 4, nullptr);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_recv_from_vtable, r), 4);
    cx_udp_send_to_init(&s, a, "", 0, &ba);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_send_to_vtable, s), 0);
    cx_udp_recv_from_init(&r, b, buf, sizeof buf, nullptr);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_recv_from_vtable, r), 0);

    // Bad arguments; a closed socket.
    cx_udp_send_to_init(&s, a, "x", 1, nullptr);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_send_to_vtable, s), CX_EINVAL);
    cx_udp_send_to_init(&s, nullptr, "x", 1, &ba);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_send_to_vtable, s), CX_EINVAL);
    cx_udp_recv_from_init(&r, nullptr, buf, 1, nullptr);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_recv_from_vtable, r), CX_EINVAL);
    cx_udp_recv_from_init(&r, b, buf, sizeof buf, nullptr);
    cx_udp_close(b);
    EXPECT_EQ(BlockOn<ssize_t>(ex, &cx_udp_recv_from_vtable, r), CX_EBADF);
    cx_udp_close(a);
  }
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// ---- Unix-domain stream sockets ---------------------------------------------

std::string TempPath(const char *name) {
  const char *dir = getenv("TEST_TMPDIR");
  std::string p = std::string(dir ? dir : "/tmp") + "/" + name + "." +
                  std::to_string(getpid());
  if (p.size() >= 100)
    p = "/tmp/" + std::string(name) + "." + std::to_string(getpid());
  unlink(p.c_str());
  return p;
}

TEST(NetUnix, ListenConnectAcceptByPath) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  int fds = OpenFds();
  std::string path = TempPath("cx_unix");
  {
    Exec ex;
    cx_addr a;
    // Nobody there yet.
    ASSERT_EQ(cx_addr_unix(path.c_str(), &a), CX_OK);
    cx_stream *cli = nullptr, *srv = nullptr;
    cx_connect c;
    cx_connect_init(&c, &a, &cli);
    EXPECT_EQ(BlockOn<int>(ex, &cx_connect_vtable, c), CX_ENOENT);

    cx_listener *l = nullptr;
    ASSERT_EQ(cx_listen(&a, 8, &l), CX_OK);
    cx_listener *l2 = nullptr;
    EXPECT_EQ(cx_listen(&a, 8, &l2), CX_EADDRINUSE);
    Connect(ex, l, &srv, &cli);
    EXPECT_EQ(cx_stream_set_nodelay(cli, true), CX_EINVAL);
    cx_addr local;
    ASSERT_EQ(cx_stream_local_addr(srv, &local), CX_OK);
    EXPECT_TRUE(cx_addr_equal(&local, &a));
    EXPECT_EQ(Write(ex, cli, "over unix", 9), 9);
    char buf[16];
    EXPECT_EQ(Read(ex, srv, buf, sizeof buf), 9);
    EXPECT_EQ(std::string(buf, 9), "over unix");
    cx_stream_close(srv);
    EXPECT_EQ(Read(ex, cli, buf, sizeof buf), 0);
    cx_stream_close(cli);
    cx_listener_close(l);
    EXPECT_NE(access(path.c_str(), F_OK), 0);  // the path was unlinked

    // A stale socket file, nobody listening: refused.
    int raw = socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_EQ(bind(raw, &a.u.sa, a.len), 0);
    close(raw);
    cx_connect_init(&c, &a, &cli);
    EXPECT_EQ(BlockOn<int>(ex, &cx_connect_vtable, c), CX_ECONNREFUSED);
    unlink(path.c_str());
  }
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(OpenFds(), fds);
}

// ---- wakes from other threads during I/O ------------------------------------

// A reader task waits on a socket while a plain thread feeds the other end
// byte by byte and another thread spawns tasks into the executor (each
// spawn unparks it in the middle of its epoll wait). Run under TSan.
struct Counter {
  std::atomic<int> *n;
};
cx_poll CounterPoll(void *self, cx_context *, void *) {
  static_cast<Counter *>(self)->n->fetch_add(1);
  return CX_READY;
}
const cx_future_vtable kCounterVt = {.poll = CounterPoll,
                                     .state_size = sizeof(Counter),
                                     .state_align = alignof(Counter)};

TEST(NetThreads, WakesFromOtherThreadsDuringIo) {
  Watchdog dog;
  ScopedCountingAllocator alloc;
  {
    Exec ex;
    cx_listener *l = Listen("127.0.0.1:0");
    cx_stream *srv = nullptr, *cli = nullptr;
    Connect(ex, l, &srv, &cli);
    constexpr size_t kBytes = 4096;
    std::vector<unsigned char> in(kBytes);
    cx_stream_read_exact r;
    cx_stream_read_exact_init(&r, cli, in.data(), in.size());
    cx_join_handle *hr;
    ASSERT_EQ(cx_spawn(ex, &cx_stream_read_exact_vtable, &r, &hr), CX_OK);
    cx_spawner *sp = nullptr;
    ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
    std::atomic<int> spawned_ran{0};
    int fd = cx_stream_fd(srv);
    std::thread writer([fd] {
      for (size_t i = 0; i < kBytes;) {
        unsigned char b = (unsigned char)i;
        ssize_t n = send(fd, &b, 1, MSG_NOSIGNAL);
        if (n == 1) {
          i++;
          if (i % 64 == 0) usleep(100);
        } else {
          usleep(100);
        }
      }
    });
    std::thread spawner([sp, &spawned_ran] {
      for (int i = 0; i < 200; i++) {
        Counter c = {&spawned_ran};
        EXPECT_EQ(cx_spawner_spawn(sp, &kCounterVt, &c, nullptr), CX_OK);
        usleep(200);
      }
      cx_spawner_drop(sp);
    });
    int rc = -1;
    ASSERT_EQ(cx_executor_join(ex, hr, &rc, sizeof rc), CX_OK);
    cx_join_handle_detach(hr);
    writer.join();
    spawner.join();
    EXPECT_EQ(cx_executor_run(ex), CX_OK);
    EXPECT_EQ(rc, CX_OK);
    for (size_t i = 0; i < kBytes; i++) ASSERT_EQ(in[i], (unsigned char)i);
    EXPECT_EQ(spawned_ran.load(), 200);
    cx_stream_close(srv);
    cx_stream_close(cli);
    cx_listener_close(l);
  }
  EXPECT_EQ(alloc.live(), 0u);
}

}  // namespace
