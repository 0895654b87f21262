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

/* For tests: makes d wait as on a kernel without epoll_pwait2 (epoll_wait
 * with the timeout rounded up to milliseconds). */
void cx__io_driver_force_epoll_wait(cx_driver *d);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_IO_INTERNAL_IO_H */
