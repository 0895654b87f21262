/*
 * echo_client: the load client of W7 (tcp_echo) and W9 (idle_conns), a
 * separate process that the runner (bench W7/W9) starts pinned to the core
 * the server does not use. Plain C, no cexec: the same client measures
 * every server (cexec and the floor) in the same run.
 *
 *   echo_client --port=P [--conns=C] [--secs=S] [--server-pid=PID]
 *   echo_client --port=P --idle=N [--server-pid=PID]
 *   optional: --cpu=K (pin this process to core K)
 *
 * Echo mode (W7): opens C connections to 127.0.0.1:P and runs a closed loop
 * on each: send 64 bytes, read the 64 bytes back, check them, repeat, for S
 * seconds (default 5). Each message carries its connection number and
 * sequence number plus a pattern derived from them, so a byte echoed to the
 * wrong connection, out of order, or altered is an error. Latency is per
 * message, from the write to the last byte of its echo. Messages counted are
 * those completed inside the window; the ones in flight at its end are
 * drained (bounded) and checked but not counted. With --server-pid, the
 * server's CPU time (utime + stime, /proc/PID/stat) is read at the window's
 * start and end.
 *
 * Idle mode (W9): opens 1 connection and echoes one message on it, reads
 * the server's resident memory (/proc/PID/smaps_rollup, exact, unlike statm
 * whose counters are per-CPU approximations), then opens N more connections,
 * echoing one message on each as it is opened (so the server has accepted
 * it, allocated its buffer and is back to waiting on it: an idle connection
 * that has served a request; it also keeps the accept queue short), reads
 * the resident memory again and reports the growth per connection. The
 * connections are held, idle, during the second reading.
 *
 * Output: ONE line of JSON on stdout; exit 0, or 1 on any error (a wrong or
 * short echo, a connection error, a timeout). Every wait is bounded.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/io_bench.h"

#define MSG 64

/* --http (a cross-check of W8's wrk, not a BENCHMARKS.md figure): the
 * closed loop sends one HTTP/1.1 request and wants exactly the one response
 * both servers send (bench/io_bench.h) instead of echoing 64 bytes. */
static int http_mode;
static const char http_req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
#define HTTP_RESP_LEN (sizeof(BENCH_HTTP_RESPONSE) - 1)
#define MAX_CONNS 20000
/* Bound on draining the messages in flight when the window closes. */
#define DRAIN_NS (3ull * 1000000000ull)
/* Bound on any single blocking socket call (SO_RCVTIMEO / SO_SNDTIMEO). */
#define IO_TIMEOUT_S 5

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- latency histogram: 10 ns buckets below 100 us, 1 us up to 100 ms ---- */

#define FINE_N 10000u   /* 10 ns buckets: [0, 100 us) */
#define COARSE_N 99900u /* 1 us buckets: [100 us, 100 ms) */
static uint32_t hist[FINE_N + COARSE_N + 1]; /* last: overflow */
static uint64_t hist_n, hist_max_ns;

static void hist_add(uint64_t ns) {
  size_t b;
  if (ns < 100000u)
    b = ns / 10u;
  else if (ns < 100000000u)
    b = FINE_N + (ns - 100000u) / 1000u;
  else
    b = FINE_N + COARSE_N;
  hist[b]++;
  hist_n++;
  if (ns > hist_max_ns) hist_max_ns = ns;
}

/* The q-quantile in microseconds: the middle of the bucket holding it. */
static double hist_quantile_us(double q) {
  if (hist_n == 0) return 0;
  uint64_t rank = (uint64_t)(q * (double)hist_n);
  if (rank >= hist_n) rank = hist_n - 1;
  uint64_t cum = 0;
  for (size_t b = 0; b < FINE_N + COARSE_N + 1; b++) {
    cum += hist[b];
    if (cum > rank) {
      if (b < FINE_N) return ((double)b * 10.0 + 5.0) / 1000.0;
      if (b < FINE_N + COARSE_N) return 100.0 + (double)(b - FINE_N) + 0.5;
      return (double)hist_max_ns / 1000.0;
    }
  }
  return (double)hist_max_ns / 1000.0;
}

/* ---- the server's figures, from /proc ---- */

/* utime + stime of pid in seconds, or -1. */
static double proc_cpu_s(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields after the command name, which is in parentheses and may hold
   * spaces: state is field 3, utime 14, stime 15. */
  char *p = strrchr(buf, ')');
  if (p == NULL) return -1;
  unsigned long long ut = 0, st = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Resident memory of pid in bytes (smaps_rollup's exact Rss), or 0. */
static uint64_t proc_rss_bytes(long pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/smaps_rollup", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  uint64_t kb = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long long v;
    if (sscanf(line, "Rss: %llu kB", &v) == 1) {
      kb = v;
      break;
    }
  }
  fclose(f);
  return kb * 1024u;
}

/* ---- messages ---- */

/* The 64 bytes of message seq on connection id. */
static void msg_fill(unsigned char *m, uint32_t id, uint32_t seq) {
  memcpy(m, &id, 4);
  memcpy(m + 4, &seq, 4);
  for (int i = 8; i < MSG; i++)
    m[i] = (unsigned char)(id * 131u + seq * 31u + (uint32_t)i);
}

static int fail(const char *what) {
  fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
  return -1;
}

/* A connected TCP socket to 127.0.0.1:port, TCP_NODELAY, blocking with
 * bounded send/receive timeouts; -1 on error. */
static int connect_one(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    fail("connect");
    close(fd);
    return -1;
  }
  return fd;
}

/* Blocking: writes m whole, reads 64 bytes back, checks them. 0 or -1. */
static int echo_once(int fd, const unsigned char *m) {
  size_t off = 0;
  while (off < MSG) {
    ssize_t n = write(fd, m + off, MSG - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write");
    off += (size_t)n;
  }
  unsigned char r[MSG];
  off = 0;
  while (off < MSG) {
    ssize_t n = read(fd, r + off, MSG - off);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      fprintf(stderr, "echo_client: server closed the connection\n");
      return -1;
    }
    if (n < 0) return fail("read");
    off += (size_t)n;
  }
  if (memcmp(r, m, MSG) != 0) {
    fprintf(stderr, "echo_client: wrong echo\n");
    return -1;
  }
  return 0;
}

/* ---- echo mode ---- */

typedef struct conn {
  int fd;
  uint32_t id, seq;
  uint32_t got;     /* bytes of the current echo read so far */
  int done;         /* no more messages on this connection */
  uint64_t sent_ns; /* when the current message was written */
  unsigned char m[MSG], r[MSG];
} conn;

static void print_result(int conns, uint64_t msgs, double secs, uint64_t errors,
                         double cpu0, double cpu1) {
  double cpu = (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1;
  printf(
      "{\"conns\":%d,\"msgs\":%llu,\"secs\":%.3f,\"msgs_per_s\":%.1f,"
      "\"p50_us\":%.2f,\"p99_us\":%.2f,\"errors\":%llu,"
      "\"server_cpu_s\":%.3f,\"server_cpu_us_per_msg\":%.3f}\n",
      conns, (unsigned long long)msgs, secs,
      secs > 0 ? (double)msgs / secs : 0.0, hist_quantile_us(0.50),
      hist_quantile_us(0.99), (unsigned long long)errors, cpu,
      (cpu >= 0 && msgs) ? cpu * 1e6 / (double)msgs : -1.0);
  fflush(stdout);
}

/* One connection: blocking write/read, the least client overhead. */
static int run_one(int port, double secs, long spid) {
  int fd = connect_one(port);
  if (fd < 0) return 1;
  unsigned char m[MSG];
  uint64_t msgs = 0, errors = 0;
  double cpu0 = spid ? proc_cpu_s(spid) : -1;
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(secs * 1e9), t = t0;
  for (uint32_t seq = 0; t < deadline; seq++) {
    msg_fill(m, 0, seq);
    uint64_t s = now_ns();
    if (echo_once(fd, m) != 0) {
      errors++;
      break;
    }
    t = now_ns();
    hist_add(t - s);
    msgs++;
  }
  double cpu1 = spid ? proc_cpu_s(spid) : -1;
  double el = (double)(t - t0) / 1e9;
  close(fd);
  print_result(1, msgs, el, errors, cpu0, cpu1);
  return errors ? 1 : 0;
}

/* Writes c's next message (a 64-byte write into an empty socket buffer
 * completes whole; anything else is an error). */
static int conn_send(conn *c) {
  c->got = 0;
  if (http_mode) {
    c->sent_ns = now_ns();
    ssize_t n = write(c->fd, http_req, sizeof http_req - 1);
    if (n != (ssize_t)(sizeof http_req - 1))
      return fail("write (short or failed)");
    return 0;
  }
  msg_fill(c->m, c->id, c->seq);
  c->sent_ns = now_ns();
  ssize_t n = write(c->fd, c->m, MSG);
  if (n != MSG) return fail("write (short or failed)");
  return 0;
}

/* Many connections, multiplexed with epoll (level-triggered). */
static int run_many(int port, int nconns, double secs, long spid) {
  conn *cs = calloc((size_t)nconns, sizeof *cs);
  if (cs == NULL) return 1;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return fail("epoll_create1"), 1;
  for (int i = 0; i < nconns; i++) {
    cs[i].fd = connect_one(port);
    if (cs[i].fd < 0) return 1;
    cs[i].id = (uint32_t)i;
    fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
      return fail("epoll_ctl"), 1;
  }
  uint64_t msgs = 0, errors = 0;
  int live = nconns;
  double cpu0 = spid ? proc_cpu_s(spid) : -1, cpu1 = -1;
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(secs * 1e9);
  uint64_t hard = deadline + DRAIN_NS, t_end = 0;
  for (int i = 0; i < nconns; i++)
    if (conn_send(&cs[i]) != 0) return 1;
  struct epoll_event evs[256];
  while (live > 0 && errors == 0) {
    uint64_t t = now_ns();
    if (t >= deadline && t_end == 0) {
      t_end = t;
      cpu1 = spid ? proc_cpu_s(spid) : -1;
    }
    if (t >= hard) {
      fprintf(stderr, "echo_client: %d connections still waiting after drain\n",
              live);
      errors += (uint64_t)live;
      break;
    }
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0 && errno != EINTR) return fail("epoll_wait"), 1;
    for (int k = 0; k < n; k++) {
      conn *c = evs[k].data.ptr;
      if (c->done) continue;
      uint32_t want = http_mode ? (uint32_t)HTTP_RESP_LEN : MSG;
      ssize_t r = read(c->fd, c->r + c->got, want - c->got);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        if (r == 0)
          fprintf(stderr, "echo_client: server closed a connection\n");
        else
          fail("read");
        errors++;
        break;
      }
      c->got += (uint32_t)r;
      if (c->got < want) continue;
      uint64_t done = now_ns();
      if (memcmp(c->r, http_mode ? (const void *)BENCH_HTTP_RESPONSE : c->m,
                 want) != 0) {
        fprintf(stderr, "echo_client: wrong echo on connection %u\n", c->id);
        errors++;
        break;
      }
      if (done < deadline) {
        msgs++;
        hist_add(done - c->sent_ns);
        c->seq++;
        if (conn_send(c) != 0) {
          errors++;
          break;
        }
      } else {
        c->done = 1;
        live--;
      }
    }
  }
  if (t_end == 0) {
    t_end = now_ns();
    cpu1 = spid ? proc_cpu_s(spid) : -1;
  }
  for (int i = 0; i < nconns; i++) close(cs[i].fd);
  close(ep);
  free(cs);
  double el = (double)((t_end < deadline ? t_end : deadline) - t0) / 1e9;
  print_result(nconns, msgs, el, errors, cpu0, cpu1);
  return errors ? 1 : 0;
}

/* ---- idle mode ---- */

static int run_idle(int port, int n, long spid) {
  int *fds = calloc((size_t)n + 1, sizeof *fds);
  if (fds == NULL) return 1;
  unsigned char m[MSG];
  uint64_t errors = 0;
  uint64_t t0 = now_ns();
  fds[0] = connect_one(port);
  msg_fill(m, 0, 0);
  if (fds[0] < 0 || echo_once(fds[0], m) != 0) return 1;
  /* Let the server settle (nothing to do) before the base reading. */
  usleep(100000);
  uint64_t rss0 = spid ? proc_rss_bytes(spid) : 0;
  int opened = 1;
  for (int i = 1; i <= n; i++) {
    fds[i] = connect_one(port);
    if (fds[i] < 0) {
      errors++;
      break;
    }
    opened++;
    msg_fill(m, (uint32_t)i, 0);
    if (echo_once(fds[i], m) != 0) {
      errors++;
      break;
    }
  }
  usleep(100000);
  uint64_t rss1 = spid ? proc_rss_bytes(spid) : 0;
  /* Every connection still answers: none was dropped while idle. */
  for (int i = 0; i < opened && errors == 0; i += 97) {
    msg_fill(m, (uint32_t)i, 1);
    if (echo_once(fds[i], m) != 0) errors++;
  }
  double secs = (double)(now_ns() - t0) / 1e9;
  for (int i = 0; i < opened; i++) close(fds[i]);
  free(fds);
  double growth = (double)rss1 - (double)rss0;
  printf(
      "{\"conns\":%d,\"secs\":%.3f,\"rss_base_kb\":%llu,\"rss_held_kb\":%llu,"
      "\"bytes_per_conn\":%.1f,\"errors\":%llu}\n",
      n, secs, (unsigned long long)(rss0 / 1024),
      (unsigned long long)(rss1 / 1024), growth / (double)n,
      (unsigned long long)errors);
  fflush(stdout);
  return errors ? 1 : 0;
}

static int usage(void) {
  fprintf(stderr,
          "usage: echo_client --port=P [--conns=C] [--secs=S] [--idle=N]\n"
          "                   [--server-pid=PID] [--cpu=K] [--http]\n");
  return 2;
}

int main(int argc, char **argv) {
  int port = 0, conns = 1, idle = 0, cpu = -1;
  double secs = 5.0;
  long spid = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--port=", 7) == 0)
      port = atoi(a + 7);
    else if (strncmp(a, "--conns=", 8) == 0)
      conns = atoi(a + 8);
    else if (strncmp(a, "--secs=", 7) == 0)
      secs = atof(a + 7);
    else if (strncmp(a, "--idle=", 7) == 0)
      idle = atoi(a + 7);
    else if (strncmp(a, "--server-pid=", 13) == 0)
      spid = atol(a + 13);
    else if (strcmp(a, "--http") == 0)
      http_mode = 1;
    else if (strncmp(a, "--cpu=", 6) == 0)
      cpu = atoi(a + 6);
    else
      return usage();
  }
  if (port <= 0 || port > 65535 || conns < 1 || conns > MAX_CONNS || idle < 0 ||
      idle > MAX_CONNS || !(secs > 0 && secs <= 600))
    return usage();
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
      return fail("sched_setaffinity"), 1;
  }
  /* Room for every connection (W9: 10,001 of them). */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = (rlim_t)(idle > conns ? idle : conns) + 64;
    if (rl.rlim_cur < want) {
      rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  if (idle > 0) return run_idle(port, idle, spid);
  if (conns == 1 && !http_mode) return run_one(port, secs, spid);
  return run_many(port, conns, secs, spid);
}
