/* What the host layer's files share (src/host/): the runtime under a
 * kura_runtime. Not for the runtime or the binding, which know nothing of
 * this layer. */
#ifndef KR_HOST_H
#define KR_HOST_H

#include "kura.h"
#include "runtime/runtime.h"

kr_runtime *kr_host_runtime(kura_runtime *k);
lua_State *kr_host_lua(kura_runtime *k);

#endif
