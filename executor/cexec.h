/*
 * cexec: polled futures, wakers, tasks and an executor for C11.
 * The one header to include: #include "executor/cexec.h".
 */
#ifndef CEXEC_CEXEC_H
#define CEXEC_CEXEC_H

#include "executor/async_channel.h"
#include "executor/channel.h"
#include "executor/combinators.h"
#include "executor/coro.h"
#include "executor/executor.h"
#include "executor/join_future.h"
#include "executor/observe.h"
#include "executor/task.h"
#include "io/io.h"
#include "net/net.h"
#include "runtime/runtime.h"
#include "timer/timer.h"
#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/waker.h"

#endif /* CEXEC_CEXEC_H */
