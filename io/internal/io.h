/* Private to //io: what the futures need to know about a source. */
#ifndef CEXEC_IO_INTERNAL_IO_H
#define CEXEC_IO_INTERNAL_IO_H

#include <stdbool.h>

#include "io/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* True when the registered fd is a socket (fstat at registration): writes
 * then go through send(MSG_NOSIGNAL). */
bool cx__io_source_is_socket(const cx_io_source *s);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_IO_INTERNAL_IO_H */
