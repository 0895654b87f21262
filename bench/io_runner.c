/*
 * The runner of W7 (tcp_echo), W8 (http_hello) and W9 (idle_conns).
 *
 *   bench W7 [--conns=N] [--secs=S] [--limit]   N = 1 (default) or 100
 *   bench W8 [--secs=S] [--limit]
 *   bench W8 --own-client [--secs=S] [--limit]   echo_client --http, not
 *                                    wrk (a cross-check, workload "W8own")
 *   bench W9 [--idle=N] [--limit]               N = 10,000 (default)
 *
 * One run: the server (the floor with --limit, peer "cexec_limit"; else
 * cexec, peer "cexec") forked and pinned to core 0, listening on
 * 127.0.0.1 at a port the kernel chose, which it reports through a pipe
 * once it is ready; the load client started as its own
 * process pinned to core 1: //bench:echo_client (found next to this
 * binary, or at $BENCH_ECHO_CLIENT) for W7 and W9, `wrk -t1 -c100 -d5s
 * --latency` for W8. The client measures the server's CPU time and
 * resident memory from /proc/<server pid>/; the runner checks the client's
 * verdict and that the server is still alive, then kills the server and
 * prints ONE JSON line. W8 first checks the server's bytes itself (wrk only
 * counts status codes): two pipelined requests in one write and one split
 * over two writes must get exactly three responses.
 *
 * Every wait is bounded (client output: the run's length + 60 s).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/io_bench.h"

#define SERVER_CPU 0
#define CLIENT_CPU 1

int bench_io_is_workload(const char *w) {
  return strcmp(w, "W7") == 0 || strcmp(w, "W8") == 0 || strcmp(w, "W9") == 0;
}

static int io_usage(void) {
  fprintf(stderr,
          "usage: bench W7 [--conns=N] [--secs=S] [--limit]\n"
          "       bench W8 [--secs=S] [--limit] [--own-client]\n"
          "       bench W9 [--idle=N] [--limit]\n");
  return 2;
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0)
    perror("bench: sched_setaffinity");
}

/* Forks the server process; its pid and *port, or -1. */
static pid_t start_server(bench_proto proto, int limit, int *port) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    close(p[0]);
    /* The server dies with the runner, whatever happens to the runner. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(1);
    pin(SERVER_CPU);
    int rc = limit ? bench_io_serve_limit(proto, p[1])
                   : bench_io_serve_cexec(proto, p[1]);
    _exit(rc ? rc : 1); /* servers never return while healthy */
  }
  close(p[1]);
  /* Its port, once it is ready (bounded wait). */
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  int got = 0;
  if (poll(&pf, 1, 10000) == 1) got = (int)read(p[0], port, sizeof *port);
  close(p[0]);
  if (got != (int)sizeof *port) {
    fprintf(stderr, "bench: the server did not start\n");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
  }
  return pid;
}

/* Ends the server; 0 if it was still running (healthy), -1 if it had died. */
static int stop_server(pid_t pid, long *hwm_kb) {
  int st;
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f) {
    while (fgets(line, sizeof line, f))
      if (sscanf(line, "VmHWM: %ld kB", hwm_kb) == 1) break;
    fclose(f);
  }
  pid_t w = waitpid(pid, &st, WNOHANG);
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  if (w != 0) {
    fprintf(stderr, "bench: the server died during the run (status %d)\n", st);
    return -1;
  }
  return 0;
}

/* utime + stime of pid in seconds, or -1. */
static double proc_cpu_s(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long long ut = 0, st = 0;
  if (p == NULL || sscanf(p + 2,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                          "%llu %llu",
                          &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Runs argv (argv[0] a path, or a name looked up in PATH) pinned to the
 * client core, and reads its stdout into out (NUL-terminated) for at most
 * timeout_s. Returns its exit status, or -1. */
static int run_client(char *const argv[], char *out, size_t cap,
                      int timeout_s) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pin(CLIENT_CPU);
    /* Under SCHED_FIFO (run_all's chrt -f), a client's threads on one core
     * never preempt each other: wrk's main thread, which ends the run, would
     * wait until the busy worker thread blocks (a 2 s run took 10 s).
     * SCHED_RR at the same priority time-slices them. */
    struct sched_param sp;
    if (sched_getscheduler(0) == SCHED_FIFO && sched_getparam(0, &sp) == 0)
      sched_setscheduler(0, SCHED_RR, &sp);
    dup2(p[1], 1);
    execvp(argv[0], argv);
    fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(p[1]);
  size_t len = 0;
  uint64_t deadline = bench_now_ns() + (uint64_t)timeout_s * 1000000000u;
  int timed_out = 0;
  for (;;) {
    uint64_t t = bench_now_ns();
    if (t >= deadline) {
      timed_out = 1;
      break;
    }
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int r = poll(&pf, 1, (int)((deadline - t) / 1000000u) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue; /* the deadline check ends it */
    ssize_t n = read(p[0], out + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
    if (len == cap - 1) break;
  }
  out[len] = '\0';
  close(p[0]);
  int st;
  if (timed_out) {
    fprintf(stderr, "bench: %s timed out after %d s\n", argv[0], timeout_s);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
  }
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The echo_client binary: $BENCH_ECHO_CLIENT, else next to this binary. */
static int echo_client_path(char *path, size_t cap) {
  const char *env = getenv("BENCH_ECHO_CLIENT");
  if (env && *env) {
    snprintf(path, cap, "%s", env);
    return 0;
  }
  ssize_t n = readlink("/proc/self/exe", path, cap - 32);
  if (n <= 0) return -1;
  path[n] = '\0';
  char *slash = strrchr(path, '/');
  if (slash == NULL) return -1;
  strcpy(slash + 1, "echo_client");
  return access(path, X_OK) == 0 ? 0 : -1;
}

/* The value of "key": in a flat JSON line, as a double (NAN-free: -1 when
 * missing). */
static double json_num(const char *line, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(line, pat);
  return p ? strtod(p + strlen(pat), NULL) : -1;
}

/* The client's object without its braces (to append to ours). */
static void json_inner(const char *line, char *out, size_t cap) {
  const char *a = strchr(line, '{'), *b = strrchr(line, '}');
  if (a == NULL || b == NULL || b <= a) {
    out[0] = '\0';
    return;
  }
  size_t n = (size_t)(b - a - 1);
  if (n >= cap) n = cap - 1;
  memcpy(out, a + 1, n);
  out[n] = '\0';
}

static void print_line(const char *peer, const char *workload, uint64_t n,
                       double ns_per_op, double wall_ms, long max_rss_kb,
                       const char *fields) {
  printf(
      "{\"peer\":\"%s\",\"workload\":\"%s\",\"n\":%llu,\"ns_per_op\":%.2f,"
      "\"wall_ms\":%.3f,\"max_rss_kb\":%ld,%s}\n",
      peer, workload, (unsigned long long)n, ns_per_op, wall_ms, max_rss_kb,
      fields);
  fflush(stdout);
}

/* ---- W7 / W9: the echo client ---- */

static int run_echo(const char *w, const char *peer, int limit, int conns,
                    double secs, int idle, bench_proto proto) {
  char client[PATH_MAX];
  if (echo_client_path(client, sizeof client) != 0)
    return bench_fail(w,
                      "no echo_client next to this binary (build "
                      "//bench:echo_client, or set BENCH_ECHO_CLIENT)");
  int port;
  pid_t srv = start_server(proto, limit, &port);
  if (srv < 0) return bench_fail(w, "cannot start the server");
  char a_port[32], a_conns[32], a_secs[32], a_idle[32], a_pid[32], a_cpu[16];
  snprintf(a_port, sizeof a_port, "--port=%d", port);
  snprintf(a_conns, sizeof a_conns, "--conns=%d", conns);
  snprintf(a_secs, sizeof a_secs, "--secs=%g", secs);
  snprintf(a_idle, sizeof a_idle, "--idle=%d", idle);
  snprintf(a_pid, sizeof a_pid, "--server-pid=%d", (int)srv);
  snprintf(a_cpu, sizeof a_cpu, "--cpu=%d", CLIENT_CPU);
  char a_http[] = "--http";
  char *argv[] = {client,
                  a_port,
                  idle ? a_idle : a_conns,
                  a_secs,
                  a_pid,
                  a_cpu,
                  proto == BENCH_PROTO_HTTP ? a_http : NULL,
                  NULL};
  char out[4096];
  int rc = run_client(argv, out, sizeof out, (int)secs + 60);
  long hwm = -1;
  int srv_ok = stop_server(srv, &hwm);
  if (rc != 0) return bench_fail(w, "echo_client failed (%d): %s", rc, out);
  if (srv_ok != 0) return bench_fail(w, "server died");
  if (json_num(out, "errors") != 0)
    return bench_fail(w, "errors reported: %s", out);
  char inner[2048];
  json_inner(out, inner, sizeof inner);
  if (idle) {
    double secs_run = json_num(out, "secs");
    print_line(peer, w, (uint64_t)idle, secs_run * 1e9 / idle, secs_run * 1e3,
               hwm, inner);
  } else {
    double msgs = json_num(out, "msgs"), el = json_num(out, "secs");
    if (msgs <= 0) return bench_fail(w, "no messages: %s", out);
    print_line(peer, w, (uint64_t)msgs, el * 1e9 / msgs, el * 1e3, hwm, inner);
  }
  return 0;
}

/* ---- W8: the server's bytes, then wrk ---- */

/* Two pipelined requests in one write, a third split over two writes: the
 * answer must be exactly three responses. 0 or -1. */
static int http_self_check(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const char *two =
      "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
  const char *half1 = "GET /c HTTP/1.1\r\nHo", *half2 = "st: x\r\n\r\n";
  char want[3 * BENCH_HTTP_RESPONSE_LEN + 1], got[sizeof want + 64];
  for (int i = 0; i < 3; i++)
    memcpy(want + i * BENCH_HTTP_RESPONSE_LEN, BENCH_HTTP_RESPONSE,
           BENCH_HTTP_RESPONSE_LEN);
  size_t wl = 3 * BENCH_HTTP_RESPONSE_LEN, gl = 0;
  int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
           write(fd, two, strlen(two)) == (ssize_t)strlen(two) &&
           write(fd, half1, strlen(half1)) == (ssize_t)strlen(half1);
  if (ok) {
    usleep(20000); /* the first half arrives on its own */
    ok = write(fd, half2, strlen(half2)) == (ssize_t)strlen(half2);
  }
  while (ok && gl < wl) {
    ssize_t n = read(fd, got + gl, sizeof got - gl);
    if (n <= 0) break;
    gl += (size_t)n;
  }
  close(fd);
  if (!ok || gl != wl || memcmp(got, want, wl) != 0) return -1;
  return 0;
}

/* "  99%    1.23ms" -> microseconds; -1 if absent. */
static double wrk_latency_us(const char *out, const char *pct) {
  char pat[16];
  snprintf(pat, sizeof pat, " %s ", pct);
  const char *p = strstr(out, pat);
  if (p == NULL) return -1;
  char *end;
  double v = strtod(p + strlen(pat), &end);
  if (strncmp(end, "us", 2) == 0) return v;
  if (strncmp(end, "ms", 2) == 0) return v * 1e3;
  if (*end == 's') return v * 1e6;
  return -1;
}

static int run_http(const char *w, const char *peer, int limit, double secs) {
  int port;
  pid_t srv = start_server(BENCH_PROTO_HTTP, limit, &port);
  if (srv < 0) return bench_fail(w, "cannot start the server");
  long hwm = -1;
  if (http_self_check(port) != 0) {
    stop_server(srv, &hwm);
    return bench_fail(w, "wrong HTTP responses from the server");
  }
  char url[64], dur[32];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
  snprintf(dur, sizeof dur, "-d%gs", secs);
  char *argv[] = {"wrk", "-t1", "-c100", dur, "--latency", url, NULL};
  char out[8192];
  double cpu0 = proc_cpu_s(srv);
  int rc = run_client(argv, out, sizeof out, (int)secs + 60);
  double cpu1 = proc_cpu_s(srv);
  if (getenv("BENCH_VERBOSE")) fputs(out, stderr);
  int srv_ok = stop_server(srv, &hwm);
  if (rc == 127) return bench_fail(w, "wrk not found: apt-get install -y wrk");
  if (rc != 0) return bench_fail(w, "wrk failed (%d): %s", rc, out);
  if (srv_ok != 0) return bench_fail(w, "server died");
  const char *rq = strstr(out, "Requests/sec:");
  const char *tot = strstr(out, " requests in ");
  if (rq == NULL || tot == NULL)
    return bench_fail(w, "cannot read wrk's output: %s", out);
  double rps = strtod(rq + 13, NULL);
  const char *ln = tot;
  while (ln > out && ln[-1] != '\n') ln--;
  double nreq = strtod(ln, NULL);
  double p50 = wrk_latency_us(out, "50%"), p99 = wrk_latency_us(out, "99%");
  long errors = 0;
  const char *se = strstr(out, "Socket errors:");
  if (se) {
    long c = 0, r = 0, wr = 0, t = 0;
    sscanf(se, "Socket errors: connect %ld, read %ld, write %ld, timeout %ld",
           &c, &r, &wr, &t);
    errors += c + r + wr + t;
  }
  const char *non2 = strstr(out, "Non-2xx or 3xx responses:");
  if (non2) errors += strtol(non2 + 25, NULL, 10);
  double cpu = (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1;
  char fields[512];
  snprintf(fields, sizeof fields,
           "\"conns\":100,\"requests_per_s\":%.1f,\"p50_us\":%.2f,"
           "\"p99_us\":%.2f,\"errors\":%ld,\"server_cpu_s\":%.3f,"
           "\"server_cpu_us_per_req\":%.3f",
           rps, p50, p99, errors, cpu,
           (cpu >= 0 && nreq > 0) ? cpu * 1e6 / nreq : -1.0);
  if (errors != 0 || rps <= 0 || p50 < 0 || p99 < 0)
    return bench_fail(w, "wrk reports errors or no figures: %s", out);
  print_line(peer, w, (uint64_t)nreq, 1e9 / rps, secs * 1e3, hwm, fields);
  return 0;
}

int bench_io_main(int argc, char **argv) {
  const char *w = argv[1];
  int limit = 0, conns = 1, idle = 10000, own_client = 0;
  double secs = 5.0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--limit") == 0)
      limit = 1;
    else if (strcmp(a, "--own-client") == 0 && strcmp(w, "W8") == 0)
      own_client = 1;
    else if (strncmp(a, "--conns=", 8) == 0)
      conns = atoi(a + 8);
    else if (strncmp(a, "--secs=", 7) == 0)
      secs = atof(a + 7);
    else if (strncmp(a, "--idle=", 7) == 0)
      idle = atoi(a + 7);
    else
      return io_usage();
  }
  if (conns < 1 || conns > 10000 || idle < 1 || idle > 15000 ||
      !(secs > 0 && secs <= 600))
    return io_usage();
  const char *peer = limit ? "cexec_limit" : "cexec";
  /* Room for every connection, inherited by the server (W9: 10,001). */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = (rlim_t)idle + 256;
    if (rl.rlim_cur < want) {
      rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (strcmp(w, "W9") == 0 && rl.rlim_cur < want)
      return bench_fail(w, "RLIMIT_NOFILE hard limit %llu < %llu",
                        (unsigned long long)rl.rlim_max,
                        (unsigned long long)want);
  }
  if (bench_io_init() != 0) return bench_fail(w, "init");
  signal(SIGPIPE, SIG_IGN);
  if (strcmp(w, "W7") == 0)
    return run_echo(w, peer, limit, conns, secs, 0, BENCH_PROTO_ECHO);
  if (strcmp(w, "W9") == 0)
    return run_echo(w, peer, limit, 1, secs, idle, BENCH_PROTO_ECHO);
  /* W8 with our own client instead of wrk: a cross-check, printed as
   * workload "W8own" (not a BENCHMARKS.md workload). */
  if (own_client)
    return run_echo("W8own", peer, limit, 100, secs, 0, BENCH_PROTO_HTTP);
  return run_http(w, peer, limit, secs);
}
