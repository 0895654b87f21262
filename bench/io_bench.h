/*
 * The I/O workloads W7 (tcp_echo), W8 (http_hello) and W9 (idle_conns) of
 * the shared BENCHMARKS.md: the runner (io_runner.c), the two servers it
 * measures (io_limit.c: the floor, a raw edge-triggered epoll server with no
 * executor; io_cexec.c: the same protocols on cexec's net/ API) and what
 * they share (io_common.c). The load clients are separate processes:
 * //bench:echo_client (W7, W9) and wrk (W8).
 *
 *   bazel run -c opt //bench:bench -- W7 [--conns=1|100] [--secs=S] [--limit]
 *   bazel run -c opt //bench:bench -- W8 [--secs=S] [--limit]
 *   bazel run -c opt //bench:bench -- W9 [--idle=N] [--limit]
 *
 * The runner forks the server (pinned to core 0) and starts the client
 * pinned to core 1, then prints ONE JSON line; exit 1 when a check fails
 * (an error, a wrong echo or response, a server that died).
 */
#ifndef CEXEC_BENCH_IO_BENCH_H
#define CEXEC_BENCH_IO_BENCH_H

#include <stddef.h>

/* The protocols both servers speak. */
typedef enum bench_proto {
  BENCH_PROTO_ECHO, /* W7/W9: echo every byte back */
  BENCH_PROTO_HTTP, /* W8: HTTP/1.1 hello, keep-alive, pipelining */
} bench_proto;

/* Every connection's read buffer (allocated when it is accepted). */
#define BENCH_IO_BUF 4096

/* The one HTTP response, and a block of BENCH_HTTP_BLOCK copies of it in a
 * row (what a batch of pipelined requests is answered with). */
#define BENCH_HTTP_RESPONSE \
  "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!"
#define BENCH_HTTP_RESPONSE_LEN (sizeof(BENCH_HTTP_RESPONSE) - 1)
#define BENCH_HTTP_BLOCK 256
extern const char *const bench_http_block; /* after bench_io_init() */

/* Fills bench_http_block; call once before serving HTTP. 0 or -1. */
int bench_io_init(void);

/* Counts the complete requests (each ended by an empty line) at the start
 * of buf[0..len); *consumed = bytes up to the end of the last one. */
size_t bench_http_requests(const char *buf, size_t len, size_t *consumed);

/* True if argv[1] names one of these workloads. */
int bench_io_is_workload(const char *w);

/* The runner: argv as main's. Returns the exit status. */
int bench_io_main(int argc, char **argv);

/* A listening TCP socket on 127.0.0.1, port chosen by the kernel (*port),
 * non-blocking, close-on-exec, backlog 4096; -1 on error. */
int bench_io_listen(int *port);

/* Tells the runner the server is ready: writes port (an int) to ready_fd
 * and closes it. 0 or -1. */
int bench_io_ready(int ready_fd, int port);

/* The servers: listen on 127.0.0.1 (port chosen by the kernel), report the
 * port with bench_io_ready once they are ready to serve, then serve proto
 * forever (the runner kills them); return only on a fatal error, with a
 * non-zero status. Run in the forked server process. */
int bench_io_serve_limit(bench_proto proto, int ready_fd);
int bench_io_serve_cexec(bench_proto proto, int ready_fd);

#endif /* CEXEC_BENCH_IO_BENCH_H */
