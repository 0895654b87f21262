// The network examples, run as programs against loopback: each server is
// started with port 0, its "listening on A:P" line read from its stdout,
// talked to with plain blocking sockets (receive timeouts: a hang fails),
// then stopped with SIGINT, which it must survive to exit 0 ("bye").
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Watchdog {
  explicit Watchdog(unsigned seconds = 60) { alarm(seconds); }
  ~Watchdog() { alarm(0); }
};

std::string Binary(const char *name) {
  const char *srcdir = getenv("TEST_SRCDIR");
  const char *ws = getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || ws == nullptr)
    return std::string("examples/") + name;
  return std::string(srcdir) + "/" + ws + "/examples/" + name;
}

// Reads a line from fd (blocking, bounded by `ms`). "" on timeout / EOF.
std::string ReadLine(int fd, int ms = 10000) {
  std::string line;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return line;
    char c;
    if (read(fd, &c, 1) != 1) return line;
    if (c == '\n') return line;
    line += c;
  }
}

// Reads everything until EOF (bounded).
std::string ReadAll(int fd, int ms = 10000) {
  std::string all;
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return all;
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return all;
    all.append(buf, (size_t)n);
  }
}

struct Proc {
  pid_t pid = -1;
  int out = -1;  // its stdout
};

Proc Start(const std::vector<std::string> &argv) {
  int p[2];
  Proc proc;
  if (pipe(p) != 0) return proc;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    std::vector<char *> args;
    for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(p[1]);
  proc.pid = pid;
  proc.out = p[0];
  return proc;
}

// Waits (bounded) for the process; its exit status, or -1 if it had to be
// killed.
int Wait(Proc &p, int ms = 10000) {
  for (int i = 0; i < ms / 10; i++) {
    int st;
    if (waitpid(p.pid, &st, WNOHANG) == p.pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(10000);
  }
  kill(p.pid, SIGKILL);
  waitpid(p.pid, nullptr, 0);
  return -1;
}

// Starts a server and returns the port it printed.
int StartServer(Proc &p, const char *name, std::vector<std::string> args = {}) {
  std::vector<std::string> argv = {Binary(name)};
  argv.insert(argv.end(), args.begin(), args.end());
  p = Start(argv);
  std::string line = ReadLine(p.out);
  const std::string prefix = "listening on 127.0.0.1:";
  if (line.compare(0, prefix.size(), prefix) != 0) {
    ADD_FAILURE() << "unexpected first line: " << line;
    return -1;
  }
  return atoi(line.c_str() + prefix.size());
}

int Dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {10, 0};  // a hang fails the read instead
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendAll(int fd, const std::string &s) {
  ASSERT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), (ssize_t)s.size());
}

std::string RecvExactly(int fd, size_t n) {
  std::string s(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, &s[got], n - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
  }
  s.resize(got);
  return s;
}

void StopWithSigint(Proc &p) {
  ASSERT_EQ(kill(p.pid, SIGINT), 0);
  std::string rest = ReadAll(p.out);
  EXPECT_NE(rest.find("shutting down"), std::string::npos) << rest;
  EXPECT_NE(rest.find("bye"), std::string::npos) << rest;
  EXPECT_EQ(Wait(p), 0);
  close(p.out);
}

TEST(Examples, EchoServerAndClient) {
  Watchdog dog;
  Proc server;
  int port = StartServer(server, "echo", {"server"});
  ASSERT_GT(port, 0);
  std::string addr = "127.0.0.1:" + std::to_string(port);

  // The example's own client.
  Proc client = Start({Binary("echo"), "client", addr, "hello", "world"});
  EXPECT_EQ(ReadAll(client.out), "hello\nworld\n");
  EXPECT_EQ(Wait(client), 0);
  close(client.out);

  // Several connections at once, interleaved.
  std::vector<int> fds;
  for (int i = 0; i < 8; i++) fds.push_back(Dial(port));
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < fds.size(); i++)
      SendAll(fds[i], "msg " + std::to_string(i * 10 + round));
    for (size_t i = 0; i < fds.size(); i++) {
      std::string want = "msg " + std::to_string(i * 10 + round);
      EXPECT_EQ(RecvExactly(fds[i], want.size()), want);
    }
  }
  // Half of them stay open across the shutdown: it must not wait for them.
  for (size_t i = 0; i < fds.size() / 2; i++) close(fds[i]);
  StopWithSigint(server);
  for (size_t i = fds.size() / 2; i < fds.size(); i++) {
    char c;
    EXPECT_EQ(recv(fds[i], &c, 1, 0), 0);  // closed by the server's exit
    close(fds[i]);
  }
  // A bad address for the client: a clean error, exit 2.
  Proc bad = Start({Binary("echo"), "client", "localhost:80", "x"});
  EXPECT_EQ(Wait(bad), 2);
  close(bad.out);
}

const char kResp[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!";
const size_t kRespLen = sizeof kResp - 1;

TEST(Examples, HttpHelloKeepAliveAndPipelining) {
  Watchdog dog;
  Proc server;
  int port = StartServer(server, "http_hello");
  ASSERT_GT(port, 0);
  const std::string req =
      "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n";

  int fd = Dial(port);
  ASSERT_GE(fd, 0);
  // One request, then another on the same connection (keep-alive).
  for (int i = 0; i < 3; i++) {
    SendAll(fd, req);
    EXPECT_EQ(RecvExactly(fd, kRespLen), kResp);
  }
  // Pipelined: five requests in one write.
  std::string five;
  for (int i = 0; i < 5; i++) five += req;
  SendAll(fd, five);
  std::string want;
  for (int i = 0; i < 5; i++) want += kResp;
  EXPECT_EQ(RecvExactly(fd, want.size()), want);
  // A request split across writes, in the middle of "\r\n\r\n".
  SendAll(fd, req.substr(0, req.size() - 3));
  usleep(20000);
  SendAll(fd, req.substr(req.size() - 3));
  EXPECT_EQ(RecvExactly(fd, kRespLen), kResp);
  // Connection: close: one answer, then end of stream.
  SendAll(fd, "GET / HTTP/1.1\r\nConnection: Close\r\n\r\n" + req);
  EXPECT_EQ(RecvExactly(fd, kRespLen), kResp);
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);
  close(fd);

  // Many connections, each pipelining 2.
  std::vector<int> fds;
  for (int i = 0; i < 20; i++) fds.push_back(Dial(port));
  for (int f : fds) SendAll(f, req + req);
  for (int f : fds) {
    EXPECT_EQ(RecvExactly(f, 2 * kRespLen), std::string(kResp) + kResp);
    close(f);
  }
  StopWithSigint(server);
}

TEST(Examples, ChatBroadcastsLines) {
  Watchdog dog;
  Proc server;
  int port = StartServer(server, "chat");
  ASSERT_GT(port, 0);
  int c[3];
  for (int i = 0; i < 3; i++) {
    c[i] = Dial(port);
    ASSERT_GE(c[i], 0);
    // Each is welcomed once the hub knows it: lines sent after that reach it.
    EXPECT_EQ(ReadLine(c[i]), "welcome " + std::to_string(i + 1));
  }
  SendAll(c[0], "hello from one\n");
  EXPECT_EQ(ReadLine(c[1]), "1: hello from one");
  EXPECT_EQ(ReadLine(c[2]), "1: hello from one");
  // Two lines in one write, one split over two writes, CRLF endings.
  SendAll(c[2], "a\r\nb\nsp");
  usleep(20000);
  SendAll(c[2], "lit\n");
  for (int i : {0, 1}) {
    EXPECT_EQ(ReadLine(c[i]), "3: a");
    EXPECT_EQ(ReadLine(c[i]), "3: b");
    EXPECT_EQ(ReadLine(c[i]), "3: split");
  }
  // One leaves: the others keep talking.
  close(c[1]);
  SendAll(c[0], "still here\n");
  EXPECT_EQ(ReadLine(c[2]), "1: still here");
  // The sender never gets its own lines: the next thing c[0] reads is
  // c[2]'s line.
  SendAll(c[2], "bye\n");
  EXPECT_EQ(ReadLine(c[0]), "3: bye");
  StopWithSigint(server);
  close(c[0]);
  close(c[2]);
}

}  // namespace
