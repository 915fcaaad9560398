/* What the host layer's files share (src/host/): the runtime under a
 * kura_runtime. Not for the runtime or the binding, which know nothing of
 * this layer. */
#ifndef KR_HOST_H
#define KR_HOST_H

#include "kura.h"
#include "runtime/runtime.h"

kr_runtime *kr_host_runtime(kura_runtime *k);
lua_State *kr_host_lua(kura_runtime *k);

/* The options the runtime was made with (strings owned by it), and a copy
 * of such options for another runtime (strings into *strings, malloc'd; its
 * loop is always NULL: a thread's runtime owns its loop). */
const kura_options *kr_host_options(kura_runtime *k);
int kr_host_options_copy(const kura_options *in, kura_options *out, char **strings);

/* kura.thread (thread.c). */
typedef struct kr_host_thread kr_host_thread;
void kr_host_open_thread(lua_State *L, kura_runtime *k);
kr_host_thread **kr_host_thread_link(kr_host_thread *t); /* its `next` */
void kr_host_thread_remember(kura_runtime *k, kr_host_thread *t);
void kr_host_thread_forget(kura_runtime *k, kr_host_thread *t);
void kr_host_threads_end(kr_host_thread *list, uv_loop_t *loop);

#endif
