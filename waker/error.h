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
  XX(ENOSPC, -28, "buffer too small")                             \
  XX(EAGAIN, -11, "operation would block")                        \
  XX(EBUSY, -16, "executor is already running")                   \
  XX(EPIPE, -32, "the other side of the channel is disconnected") \
  XX(EDEADLK, -35, "no task can make progress")                   \
  XX(EOVERFLOW, -75, "reference count would overflow")            \
  XX(ENOTSUP, -95, "operation not supported in this context")     \
  XX(ESHUTDOWN, -108, "executor has shut down")                   \
  XX(ETIMEDOUT, -110, "timed out")                                \
  XX(EALREADY, -114, "already done")                              \
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

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_ERROR_H */
