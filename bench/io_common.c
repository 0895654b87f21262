/* What the W7-W9 servers share: the HTTP response block and the request
 * scanner, so that the floor and cexec do exactly the same protocol work. */
#define _GNU_SOURCE

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/io_bench.h"

static char http_block[BENCH_HTTP_BLOCK * BENCH_HTTP_RESPONSE_LEN];
const char *const bench_http_block = http_block;

int bench_io_init(void) {
  for (size_t i = 0; i < BENCH_HTTP_BLOCK; i++)
    memcpy(http_block + i * BENCH_HTTP_RESPONSE_LEN, BENCH_HTTP_RESPONSE,
           BENCH_HTTP_RESPONSE_LEN);
  return 0;
}

size_t bench_http_requests(const char *buf, size_t len, size_t *consumed) {
  size_t n = 0, off = 0;
  for (;;) {
    /* A request without a body ends at its first empty line. */
    const char *end = memmem(buf + off, len - off, "\r\n\r\n", 4);
    if (end == NULL) break;
    off = (size_t)(end - buf) + 4;
    n++;
  }
  *consumed = off;
  return n;
}

int bench_io_listen(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

int bench_io_ready(int ready_fd, int port) {
  ssize_t n = write(ready_fd, &port, sizeof port);
  close(ready_fd);
  return n == (ssize_t)sizeof port ? 0 : -1;
}
