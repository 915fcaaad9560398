/* Wiping secrets (API keys, tokens, passwords) from memory before it is
 * freed or reused, in a way the compiler may not drop as a dead store. */
#ifndef KR_WIPE_H
#define KR_WIPE_H

#include <stddef.h>

/* Zeroes n bytes at p (p may be NULL when n is 0). */
void kr_wipe(void *p, size_t n);
/* kr_wipe, then free(p). NULL is a no-op. */
void kr_wipe_free(void *p, size_t n);

#endif
