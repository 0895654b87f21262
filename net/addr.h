/*
 * Socket addresses: numeric IPv4 / IPv6 with a port, and Unix-domain paths,
 * in one value type, cx_addr, that every net/ call takes.
 *
 * Only numeric addresses are parsed ("127.0.0.1:8080", "[::1]:8080"). Name
 * resolution (getaddrinfo) is out of scope: it blocks, and the only
 * non-blocking ways on Linux (getaddrinfo_a, a resolver thread, a DNS client)
 * are a project of their own. Resolve names before entering the executor,
 * or on a plain thread, and pass the numbers here.
 *
 * A cx_addr is a plain value: copy it, keep it on the stack, compare it with
 * cx_addr_equal. It owns nothing. Every function is thread-safe (no state).
 */
#ifndef CEXEC_NET_ADDR_H
#define CEXEC_NET_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_addr {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
    struct sockaddr_storage storage;
  } u;
  socklen_t len; /* bytes of u in use; 0: no address */
} cx_addr;

/* Room for any text cx_addr_format writes, terminator included ("[v6]:port"
 * is at most 54 bytes; a Unix path at most 107 plus "unix:"). */
#define CX_ADDR_STRLEN 128

/* Parses "a.b.c.d:port" or "[v6]:port" (port: 1 to 5 decimal digits,
 * at most 65535; 0 means "let the kernel choose" when binding). Nothing else
 * is accepted: no names, no missing port, no spaces, no IPv6 zone ids.
 * CX_OK, or CX_EINVAL (text or out NULL, malformed text); on error *out is
 * cleared (len 0). */
int cx_addr_parse(const char *text, cx_addr *out);

/* An address from a numeric IP without brackets ("127.0.0.1", "::1") and a
 * port. CX_OK or CX_EINVAL, as cx_addr_parse. */
int cx_addr_from_ip(const char *ip, uint16_t port, cx_addr *out);

/* A Unix-domain socket path (a file system path; abstract sockets are not
 * supported). CX_OK, CX_EINVAL (NULL, empty), CX_ENAMETOOLONG (does not fit
 * sun_path with its terminator: 107 bytes at most). */
int cx_addr_unix(const char *path, cx_addr *out);

/* Writes "a.b.c.d:port", "[v6]:port" or "unix:/path" into buf (size bytes,
 * CX_ADDR_STRLEN is always enough). CX_OK, CX_EINVAL (NULL, no address, an
 * unknown family), CX_ENOBUFS (does not fit; buf then holds ""). */
int cx_addr_format(const cx_addr *a, char *buf, size_t size);

/* AF_INET, AF_INET6, AF_UNIX, or 0 (NULL or no address). */
int cx_addr_family(const cx_addr *a);

/* The port (0..65535) of an IP address, or CX_EINVAL for NULL / non-IP. */
int cx_addr_port(const cx_addr *a);

/* Same family, same IP and port (or same path). NULLs are never equal. */
bool cx_addr_equal(const cx_addr *a, const cx_addr *b);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_NET_ADDR_H */
