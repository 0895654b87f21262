/*
 * cexec networking, all of it: numeric addresses (net/addr.h), listeners and
 * accept (net/listener.h), streams, connect, read and write (net/stream.h),
 * UDP (net/udp.h). Every future here composes with cx_timeout, cx_select
 * and the coroutine macros; docs in each header.
 */
#ifndef CEXEC_NET_NET_H
#define CEXEC_NET_NET_H

#include "net/addr.h"
#include "net/listener.h"
#include "net/stream.h"
#include "net/udp.h"

#endif /* CEXEC_NET_NET_H */
