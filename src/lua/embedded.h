/* The Lua library lua/kura/NAME.lua, compiled into the binary (see
 * cmake/embed_lua.cmake). Entries end with a NULL name. */
#ifndef KR_EMBEDDED_H
#define KR_EMBEDDED_H

#include <stddef.h>

struct kr_lualib_entry {
  const char *name; /* module name, e.g. "kura.warmup" */
  const char *src;  /* Lua source text */
  size_t len;       /* its length in bytes */
};

extern const struct kr_lualib_entry kr_lualib[];

#endif
