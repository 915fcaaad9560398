/* Wiping secrets: see wipe.h. explicit_bzero is glibc's zeroing that the
 * compiler keeps even when the memory is never read again. */
#include "core/wipe.h"

#include <stdlib.h>
#include <string.h>

void kr_wipe(void *p, size_t n)
{
  if (p && n)
    explicit_bzero(p, n);
}

void kr_wipe_free(void *p, size_t n)
{
  if (!p)
    return;
  kr_wipe(p, n);
  free(p);
}
