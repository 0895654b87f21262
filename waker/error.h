/*
 * cexec error codes.
 *
 * Every fallible cexec function returns an int: 0 (CX_OK) on success or one of
 * the negative CX_E* codes below. The values equal the negated Linux errno of
 * the same meaning, so they can be logged or compared like libuv's UV_E* codes,
 * but callers should compare against the CX_E* names, never raw numbers.
 *
 * Nothing in cexec calls abort() or exit() on bad input: misuse that can be
 * detected is reported as CX_EINVAL (or a more precise code).
 */
#ifndef CEXEC_ERROR_H
#define CEXEC_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* The one table of errors: name, value, message. */
#define CX_ERRNO_MAP(XX)                                          \
  XX(EINVAL, -22, "invalid argument")                             \
  XX(ENOMEM, -12, "out of memory")                                \
  XX(EAGAIN, -11, "operation would block")                        \
  XX(EBUSY, -16, "executor is already running")                   \
  XX(EPIPE, -32, "the other side of the channel is disconnected") \
  XX(EDEADLK, -35, "no task can make progress")                   \
  XX(EOVERFLOW, -75, "reference count would overflow")            \
  XX(ENOTSUP, -95, "operation not supported in this context")     \
  XX(ESHUTDOWN, -108, "executor has shut down")                   \
  XX(ETIMEDOUT, -110, "timed out")                                \
  XX(EALREADY, -114, "already done")                              \
  XX(ECANCELED, -125, "task was cancelled")                       \
  XX(EBADF, -9, "bad file descriptor")                            \
  XX(ENOENT, -2, "no such file or directory")                     \
  XX(EACCES, -13, "permission denied")                            \
  XX(ENFILE, -23, "too many open files in system")                \
  XX(EMFILE, -24, "too many open files")                          \
  XX(ENAMETOOLONG, -36, "file name too long")                     \
  XX(EMSGSIZE, -90, "message too long")                           \
  XX(EAFNOSUPPORT, -97, "address family not supported")           \
  XX(EADDRINUSE, -98, "address already in use")                   \
  XX(EADDRNOTAVAIL, -99, "address not available")                 \
  XX(ENETUNREACH, -101, "network is unreachable")                 \
  XX(ECONNABORTED, -103, "connection aborted")                    \
  XX(ECONNRESET, -104, "connection reset by peer")                \
  XX(ENOBUFS, -105, "no buffer space available")                  \
  XX(ENOTCONN, -107, "socket is not connected")                   \
  XX(ECONNREFUSED, -111, "connection refused")                    \
  XX(EHOSTUNREACH, -113, "host is unreachable")

typedef enum cx_error {
  CX_OK = 0,
#define CX__ERR_ENUM(name, value, msg) CX_##name = (value),
  CX_ERRNO_MAP(CX__ERR_ENUM)
#undef CX__ERR_ENUM
} cx_error;

/* The CX_E* code for a positive errno value (errno itself after a failed
 * system call): -e when the table knows it, CX_EINVAL otherwise... */
int cx_error_from_errno(int e);

/* Human-readable message for an error code. Never returns NULL; unknown codes
 * give "unknown error". Thread-safe; the string is static. */
const char *cx_strerror(int err);

/* The code's name without prefix ("EINVAL"), or "UNKNOWN". Thread-safe. */
const char *cx_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_ERROR_H */
