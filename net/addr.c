/* Numeric address parsing and formatting (see net/addr.h). */
#include "net/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "waker/error.h"

/* Parses 1..5 decimal digits, value <= 65535, and nothing after them. */
static int parse_port(const char *p, uint16_t *out) {
  unsigned v = 0;
  size_t n = 0;
  for (; p[n] != '\0'; n++) {
    if (p[n] < '0' || p[n] > '9' || n == 5) return CX_EINVAL;
    v = v * 10 + (unsigned)(p[n] - '0');
  }
  if (n == 0 || v > 65535) return CX_EINVAL;
  *out = (uint16_t)v;
  return CX_OK;
}

/* The IP part of an address (no brackets) into out, port set aside. */
static int set_ip(const char *ip, size_t ip_len, uint16_t port, cx_addr *out) {
  char text[INET6_ADDRSTRLEN];
  if (ip_len == 0 || ip_len >= sizeof text) return CX_EINVAL;
  memcpy(text, ip, ip_len);
  text[ip_len] = '\0';
  cx_addr a;
  memset(&a, 0, sizeof a);
  /* inet_pton is strict: dotted quad only for v4 (no "1.2.3", no octal), and
   * the standard forms for v6; no names, no zone ids. */
  if (inet_pton(AF_INET, text, &a.u.in4.sin_addr) == 1) {
    a.u.in4.sin_family = AF_INET;
    a.u.in4.sin_port = htons(port);
    a.len = sizeof a.u.in4;
  } else if (inet_pton(AF_INET6, text, &a.u.in6.sin6_addr) == 1) {
    a.u.in6.sin6_family = AF_INET6;
    a.u.in6.sin6_port = htons(port);
    a.len = sizeof a.u.in6;
  } else {
    return CX_EINVAL;
  }
  *out = a;
  return CX_OK;
}

int cx_addr_parse(const char *text, cx_addr *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (text == NULL || out == NULL) return CX_EINVAL;
  const char *ip, *port_text;
  size_t ip_len;
  if (text[0] == '[') {
    /* "[v6]:port": brackets are required for v6, so the last ':' is
     * unambiguous, and they are only allowed around a v6 address. */
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':') return CX_EINVAL;
    ip = text + 1;
    ip_len = (size_t)(close - ip);
    port_text = close + 2;
  } else {
    const char *colon = strchr(text, ':');
    if (colon == NULL || strchr(colon + 1, ':') != NULL)
      return CX_EINVAL; /* no port, or an unbracketed v6 address */
    ip = text;
    ip_len = (size_t)(colon - text);
    port_text = colon + 1;
  }
  uint16_t port;
  if (parse_port(port_text, &port) != CX_OK) return CX_EINVAL;
  int rc = set_ip(ip, ip_len, port, out);
  if (rc == CX_OK && text[0] == '[' && out->u.sa.sa_family != AF_INET6) {
    memset(out, 0, sizeof *out);
    return CX_EINVAL;
  }
  return rc;
}

int cx_addr_from_ip(const char *ip, uint16_t port, cx_addr *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (ip == NULL || out == NULL) return CX_EINVAL;
  return set_ip(ip, strlen(ip), port, out);
}

int cx_addr_unix(const char *path, cx_addr *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (path == NULL || out == NULL || path[0] == '\0') return CX_EINVAL;
  size_t n = strlen(path);
  if (n >= sizeof out->u.un.sun_path) return CX_ENAMETOOLONG;
  out->u.un.sun_family = AF_UNIX;
  memcpy(out->u.un.sun_path, path, n + 1);
  out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return CX_OK;
}

int cx_addr_format(const cx_addr *a, char *buf, size_t size) {
  if (buf != NULL && size > 0) buf[0] = '\0';
  if (a == NULL || buf == NULL || a->len == 0) return CX_EINVAL;
  char ip[INET6_ADDRSTRLEN];
  int n;
  switch (a->u.sa.sa_family) {
    case AF_INET:
      inet_ntop(AF_INET, &a->u.in4.sin_addr, ip, sizeof ip);
      n = snprintf(buf, size, "%s:%u", ip, (unsigned)ntohs(a->u.in4.sin_port));
      break;
    case AF_INET6:
      inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof ip);
      n = snprintf(buf, size, "[%s]:%u", ip,
                   (unsigned)ntohs(a->u.in6.sin6_port));
      break;
    case AF_UNIX: {
      /* An unnamed socket (a connected client's local end) has no path. */
      size_t max = a->len > offsetof(struct sockaddr_un, sun_path)
                       ? a->len - offsetof(struct sockaddr_un, sun_path)
                       : 0;
      n = snprintf(buf, size, "unix:%.*s", (int)strnlen(a->u.un.sun_path, max),
                   a->u.un.sun_path);
      break;
    }
    default:
      return CX_EINVAL;
  }
  if (n < 0 || (size_t)n >= size) {
    if (size > 0) buf[0] = '\0';
    return CX_ENOBUFS;
  }
  return CX_OK;
}

int cx_addr_family(const cx_addr *a) {
  if (a == NULL || a->len == 0) return 0;
  return a->u.sa.sa_family;
}

int cx_addr_port(const cx_addr *a) {
  switch (cx_addr_family(a)) {
    case AF_INET:
      return ntohs(a->u.in4.sin_port);
    case AF_INET6:
      return ntohs(a->u.in6.sin6_port);
    default:
      return CX_EINVAL;
  }
}

bool cx_addr_equal(const cx_addr *a, const cx_addr *b) {
  int fam = cx_addr_family(a);
  if (fam == 0 || fam != cx_addr_family(b)) return false;
  switch (fam) {
    case AF_INET:
      return a->u.in4.sin_port == b->u.in4.sin_port &&
             a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
    case AF_INET6:
      return a->u.in6.sin6_port == b->u.in6.sin6_port &&
             memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16) == 0;
    case AF_UNIX:
      return strncmp(a->u.un.sun_path, b->u.un.sun_path,
                     sizeof a->u.un.sun_path) == 0;
    default:
      return false;
  }
}
