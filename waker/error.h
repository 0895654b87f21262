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
 *
 * NULL arguments (the same rule in every cexec header): no function crashes
 * on a NULL pointer; functions returning int return CX_EINVAL for one (see
 * waker/waker.h for the whole rule). The two functions here take no
 * pointer.
 */
#ifndef CEXEC_ERROR_H
#define CEXEC_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* The one table of errors: name, value, message. */
#define CX_ERRNO_MAP(XX)                                                  \
  XX(EPERM, -1, "operation not permitted")                                \
  XX(ENOENT, -2, "no such file or directory")                             \
  XX(EINTR, -4, "interrupted system call")                                \
  XX(EIO, -5, "input/output error")                                       \
  XX(EBADF, -9, "bad file descriptor")                                    \
  XX(EAGAIN, -11, "operation would block")                                \
  XX(ENOMEM, -12, "out of memory")                                        \
  XX(EACCES, -13, "permission denied")                                    \
  XX(EBUSY, -16, "executor is already running")                           \
  XX(EEXIST, -17, "already exists (fd already registered)")               \
  XX(EINVAL, -22, "invalid argument")                                     \
  XX(ENFILE, -23, "too many open files in the system")                    \
  XX(EMFILE, -24, "too many open files")                                  \
  XX(ENOSPC, -28, "no space left on device")                              \
  XX(EPIPE, -32, "broken pipe: the other side is closed or disconnected") \
  XX(EDEADLK, -35, "would deadlock: no task can make progress")           \
  XX(ENAMETOOLONG, -36, "name too long")                                  \
  XX(EOVERFLOW, -75, "value too large (or reference count overflow)")     \
  XX(ENOTSOCK, -88, "not a socket")                                       \
  XX(EDESTADDRREQ, -89, "destination address required")                   \
  XX(EMSGSIZE, -90, "message too long")                                   \
  XX(EPROTOTYPE, -91, "protocol wrong type for socket")                   \
  XX(ENOPROTOOPT, -92, "protocol not available")                          \
  XX(EPROTONOSUPPORT, -93, "protocol not supported")                      \
  XX(ENOTSUP, -95, "operation not supported in this context")             \
  XX(EAFNOSUPPORT, -97, "address family not supported")                   \
  XX(EADDRINUSE, -98, "address already in use")                           \
  XX(EADDRNOTAVAIL, -99, "address not available")                         \
  XX(ENETDOWN, -100, "network is down")                                   \
  XX(ENETUNREACH, -101, "network is unreachable")                         \
  XX(ECONNABORTED, -103, "connection aborted")                            \
  XX(ECONNRESET, -104, "connection reset by peer")                        \
  XX(ENOBUFS, -105, "no buffer space available")                          \
  XX(EISCONN, -106, "socket is already connected")                        \
  XX(ENOTCONN, -107, "socket is not connected")                           \
  XX(ESHUTDOWN, -108, "executor has shut down")                           \
  XX(ETIMEDOUT, -110, "timed out")                                        \
  XX(ECONNREFUSED, -111, "connection refused")                            \
  XX(EHOSTUNREACH, -113, "host is unreachable")                           \
  XX(EALREADY, -114, "already done")                                      \
  XX(EINPROGRESS, -115, "operation in progress")                          \
  XX(ECANCELED, -125, "task was cancelled")

typedef enum cx_error {
  CX_OK = 0,
#define CX__ERR_ENUM(name, value, msg) CX_##name = (value),
  CX_ERRNO_MAP(CX__ERR_ENUM)
#undef CX__ERR_ENUM
} cx_error;

/* Human-readable message for an error code. Never returns NULL; unknown codes
 * give "unknown error". Thread-safe; the string is static. */
const char *cx_strerror(int err);

/* The code's name without prefix ("EINVAL"), or "UNKNOWN". Thread-safe. */
const char *cx_err_name(int err);

/* The CX_E* code for a (positive) errno value, as set by a failed system
 * call: -errnum for every errno in the table above (EWOULDBLOCK gives
 * CX_EAGAIN, EOPNOTSUPP gives CX_ENOTSUP). 0 gives CX_OK. An errno the
 * table lacks, or a negative argument, gives the documented fallback
 * CX_EIO, so callers always get a code cx_strerror knows. Thread-safe. */
int cx_error_from_errno(int errnum);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_ERROR_H */
