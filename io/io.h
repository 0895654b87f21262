/*
 * I/O: the epoll driver and fd registrations.
 *
 * (Skeleton: the driver factory the executor calls on first I/O use. The
 * registrations and readiness futures land here next.)
 */
#ifndef CEXEC_IO_H
#define CEXEC_IO_H

#include "executor/driver.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Creates the platform's I/O driver (epoll on Linux): a cx_driver whose
 * park also waits on registered fds and wakes their tasks. Returns CX_OK,
 * CX_ENOMEM, CX_ENOTSUP (no I/O driver on this platform), or the error of
 * creating its kernel objects. Destroyed through its vtable. */
int cx_io_driver_create(cx_driver **out);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_IO_H */
