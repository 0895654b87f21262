/*
 * Test hooks of the multi-threaded runtime. Private to cexec's tests.
 */
#ifndef CEXEC_RUNTIME_INTERNAL_RUNTIME_DEBUG_H
#define CEXEC_RUNTIME_INTERNAL_RUNTIME_DEBUG_H

#ifdef __cplusplus
extern "C" {
#endif

/* Makes the k-th worker thread creation from now (k >= 1) fail as if
 * pthread_create returned EAGAIN, once; 0 cancels. Process-wide; set it
 * while no runtime is being created. */
void cx__runtime_debug_fail_thread_create_at(unsigned k);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_RUNTIME_INTERNAL_RUNTIME_DEBUG_H */
