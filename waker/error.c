#include "waker/error.h"

#include <errno.h>

const char *cx_strerror(int err) {
  switch (err) {
    case CX_OK:
      return "success";
#define CX__ERR_MSG(name, value, msg) \
  case CX_##name:                     \
    return msg;
      CX_ERRNO_MAP(CX__ERR_MSG)
#undef CX__ERR_MSG
    default:
      return "unknown error";
  }
}

const char *cx_err_name(int err) {
  switch (err) {
    case CX_OK:
      return "OK";
#define CX__ERR_NAME(name, value, msg) \
  case CX_##name:                      \
    return #name;
      CX_ERRNO_MAP(CX__ERR_NAME)
#undef CX__ERR_NAME
    default:
      return "UNKNOWN";
  }
}

int cx_error_from_errno(int errnum) {
  if (errnum == 0) return CX_OK;
  /* Aliases on some platforms (equal on Linux: the switch below would then
   * have duplicate cases, so they are tested first). */
  if (errnum == EWOULDBLOCK) return CX_EAGAIN;
  if (errnum == EOPNOTSUPP) return CX_ENOTSUP;
  switch (-errnum) {
#define CX__ERR_FROM(name, value, msg) \
  case CX_##name:                      \
    return CX_##name;
    CX_ERRNO_MAP(CX__ERR_FROM)
#undef CX__ERR_FROM
    default:
      return CX_EIO;
  }
}

/* Every value in the table is the negated Linux errno of the same name. */
#define CX__ERR_CHECK(name, value, msg) \
  _Static_assert(CX_##name == -name, "CX_" #name " must equal -" #name);
CX_ERRNO_MAP(CX__ERR_CHECK)
#undef CX__ERR_CHECK
