#include "waker/error.h"

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

int cx_error_from_errno(int e) {
  switch (-e) {
#define CX__ERR_FROM(name, value, msg) \
  case CX_##name:                      \
    return CX_##name;
    CX_ERRNO_MAP(CX__ERR_FROM)
#undef CX__ERR_FROM
    default:
      return CX_EINVAL;
  }
}
