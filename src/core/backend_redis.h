/* Internal interface shared by the Redis backend files:
 *   backend_redis.c          the mapping of every call (single server and cluster)
 *   backend_redis_cluster.c  kr_rcl: a connection to a Redis Cluster that routes
 *                            each command to the node owning its key's slot
 *   backend_redis_util.c     URL parsing, command arguments, error mapping
 * No Lua in here: this is core (src/core/).
 */
#ifndef KR_BACKEND_REDIS_H
#define KR_BACKEND_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "core/client.h"
#include "core/resp.h"

/* --- URLs ------------------------------------------------------------------ */

#define KR_RURL_MAX_NODES 16

typedef struct kr_rurl {
  char user[128], pass[256];
  int has_user, has_pass;
  int db;                          /* redis:// only */
  size_t nhosts;                   /* 1 for redis://, >= 1 for redis-cluster:// */
  char host[KR_RURL_MAX_NODES][256];
  int port[KR_RURL_MAX_NODES];
} kr_rurl;

/* redis://[[user]:password@]host[:port][/db] or
 * redis-cluster://[[user]:password@]host[:port][,host[:port]]...
 * Returns 0 or -1. The caller wipes u->pass after use. */
int kr_rurl_parse(const char *url, kr_rurl *u);

/* --- command arguments ------------------------------------------------------- */

#define ARGS_INLINE 8
#define ARGS_BYTES 256

/* An argv under construction. Strings it builds (keys, numbers) live in one
 * block sized up front, so pointers into it stay valid; small commands use
 * the inline storage (no allocation on the hot path). Never copied. */
typedef struct kr_rargs {
  int n;
  const char **v;
  size_t *l;
  char *at;
  void *heap;
  const char *sv[ARGS_INLINE];
  size_t sl[ARGS_INLINE];
  char sbuf[ARGS_BYTES];
} kr_rargs;

/* Room for nargs arguments and `bytes` of strings built by kr_rargs_num
 * (at most 21 bytes each) and kr_rargs_key (kr_ritem_prefix_len + klen). */
int kr_rargs_init(kr_rargs *a, size_t nargs, size_t bytes);
void kr_rargs_free(kr_rargs *a);
void kr_rargs_add(kr_rargs *a, const void *p, size_t len);
void kr_rargs_num(kr_rargs *a, long long x);
/* The item key "kura:<len(cache)>:<cache>:<key>" of r's cache. */
void kr_rargs_key(kr_rargs *a, const kr_request *r, const void *key, size_t klen);
size_t kr_ritem_prefix_len(const kr_request *r);
/* Decimal digits of x at p (at most 20); returns their number. */
size_t kr_rput_uint(char *p, unsigned long long x);
/* An error reply ("-NOAUTH ...", our scripts' "KURA_NOTFOUND ...") -> KURA_E*. */
int kr_redis_map_error(const char *s);

/* --- scripts ------------------------------------------------------------------ */

/* The writes that run as Lua scripts ([0]: single server, with the cache
 * check; [1]: cluster, the item key only, NULL where unused). */
enum kr_redis_script {
  KR_RS_SET_IF, KR_RS_INCR, KR_RS_TTL_SET, KR_RS_SET_BATCH, KR_RS_CREATE, KR_RS_DROP, KR_RS_COUNT_
};
extern const char *const kr_redis_scripts[2][KR_RS_COUNT_];

/* --- Redis Cluster ------------------------------------------------------------ */

typedef struct kr_rcl kr_rcl;

/* The hash slot (0..16383) of a key: CRC16-XMODEM of the key, or of its hash
 * tag (the bytes between the first '{' and the next '}', when not empty). */
unsigned kr_redis_slot(const void *key, size_t len);

/* Connect to the seed nodes (opts[i].host/port; AUTH from opts[0]) and load
 * the slot map with CLUSTER SLOTS. Commands may be submitted at once: until
 * the map is known they go to the first seed, which redirects them. */
int kr_rcl_open(uv_loop_t *loop, const kr_resp_opts *opts, size_t nseeds, kr_rcl **out);

/* Send one command to the master of the slot of argv[key_arg], following
 * MOVED (with a refresh of the slot map) and ASK redirections, at most 5
 * times; the deadline covers the redirections. Same contract as
 * kr_resp_command; `cb` gets the connection of the node that answered. */
int kr_rcl_command(kr_rcl *cl, int argc, const char **argv, const size_t *argvlen,
                   int key_arg, uint64_t timeout_ms, kr_resp_cb cb, void *udata);

/* The masters of the current slot map (0 while it is unknown) and a command
 * to the i-th of them, not redirected (SCAN, which has no key). */
size_t kr_rcl_masters(const kr_rcl *cl);
int kr_rcl_command_master(kr_rcl *cl, size_t i, int argc, const char **argv,
                          const size_t *argvlen, uint64_t timeout_ms, kr_resp_cb cb,
                          void *udata);

/* Counters for tests. */
typedef struct kr_rcl_stats {
  uint64_t moved, ask, refreshes;
} kr_rcl_stats;
kr_rcl_stats kr_rcl_get_stats(const kr_rcl *cl);

/* Fail everything pending with KURA_ECANCELLED and close every node
 * connection; `cb` runs once all are closed, before the memory is freed. */
void kr_rcl_close(kr_rcl *cl, void (*cb)(void *udata), void *udata);

#endif
