/*
 * Which executor, if any, the calling thread is running now (private).
 *
 * Kept in the lowest layer so that code which must not depend on the
 * executor (the blocking channel, join handles) can still tell that it is
 * running inside a task: a blocking call there would wait for work that
 * only this very thread can do, and returns CX_EDEADLK instead.
 *
 * The executor sets the marker while it runs tasks (entering and leaving
 * run/join/destroy); the future multi-threaded runtime's workers set it too.
 * The value is opaque here: waker/ knows nothing of cx_executor.
 */
#ifndef CEXEC_WAKER_INTERNAL_CURRENT_H
#define CEXEC_WAKER_INTERNAL_CURRENT_H

#ifdef __cplusplus
extern "C" {
#endif

/* The executor the calling thread is running, or NULL. */
void *cx__current_executor(void);

/* Sets the calling thread's marker to ex (NULL: none) and returns the
 * previous value, which the caller restores when it leaves. */
void *cx__set_current_executor(void *ex);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_WAKER_INTERNAL_CURRENT_H */
