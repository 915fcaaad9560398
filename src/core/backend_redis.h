/* Internal interface shared by the Redis backend files:
 *   backend_redis.c          the mapping of every call (single server and cluster)
 *   backend_redis_cluster.c  kr_rcl: a connection to a Redis Cluster that routes
 *                            each command to the node owning its key's slot
 *   backend_redis_util.c     URL parsing, command arguments, error mapping
 * No Lua in here: this is core (src/core/).
 *
 * LAYOUT IN REDIS. The set "kura:caches" ("kura:{caches}" in a cluster, a
 * hash tag that pins it to one slot) lists the caches. An item of cache C
 * with key K lives at "kura:<len(C)>:C:K": the length makes the prefix
 * unambiguous (cache "a:b" key "c" differs from cache "a" key "b:c") and the
 * key carries no hash tag of ours, so that in a cluster a cache's items
 * spread over all slots. Beside the list, a cache has markers, keys that
 * exist while it does:
 * - single server: "kura:c:<C>", set and deleted with the list entry by one
 *   script, so that a get is ONE command (MGET marker item);
 * - cluster: "kura:m:{TAG}<C>" in every one of the 16,384 hash slots (TAG:
 *   three letters or digits chosen so that the marker falls in that slot),
 *   so that every item call finds the check beside its key, on the node
 *   that holds the key. No item call touches "kura:{caches}": no single node
 *   gates the calls of every other (with one master down, the others' keys
 *   are served). A cache's markers cost some 16,384 small keys spread over
 *   the masters; create_cache and delete_cache write or delete them all.
 * (A cache created by an older kura, without markers, reads as missing until
 * create_cache runs on it again: it adds the markers and keeps the items.)
 *
 * THE CACHE CHECK. Every item call fails with NOT_FOUND_ERROR on a cache that
 * does not exist and leaves nothing behind:
 * - single server: the conditional sets, increment, the TTL changes and
 *   set_batch are scripts that check the list and act, atomically; get is
 *   MGET marker item; the other reads and plain set send SISMEMBER on the
 *   list and their command in one pipeline (one round trip).
 * - cluster: increment, the conditional sets and the TTL changes are scripts
 *   whose first key is the marker of the item key's slot (a script's keys
 *   must share a slot): check and write are one atomic step on one node, so
 *   their outcome is known whenever an answer comes. Reads, set and
 *   set_batch send, per key, EXISTS of that marker and the key's command as
 *   a pair on the one connection to that node (one round trip).
 * A plain set told the cache is missing sends a DEL of its key on the same
 * connection before the call completes.
 *
 * RELAXED GUARANTEE (plain set and set_batch in a cluster, plain set on a
 * single server): the check and the write are two commands, not one atomic
 * step. On a single server the check may be shared by the calls of one
 * pipeline flush, which widens the gap by the commands of that flush; in a
 * cluster the two are adjacent on one connection. A set whose check runs
 * before another client's delete_cache of the same cache removes the list
 * entry (single server) or that slot's marker (cluster), and whose write
 * runs after that deletion's SCAN passed the key, succeeds and leaves its
 * one item behind; it stays readable if the cache is created again, until
 * its TTL expires. (In a cluster the scan starts only once every marker is
 * gone, so the write must also reach its node after the scan's first
 * command does.) Without a concurrent delete_cache of the same cache the
 * semantics are exact.
 *
 * CREATE_CACHE AND DELETE_CACHE, and their races. Single server: each is one
 * script (list entry and marker together), so at any moment the cache exists
 * or not. Cluster:
 * - create_cache: SADD (its answer says created or already there), then
 *   SET of all the markers. It writes them also when the cache existed, so
 *   that a create_cache that failed half-way (a master down) is finished by
 *   the next one. While it runs, a call on a slot not marked yet gets
 *   NOT_FOUND_ERROR; once it returns true or false, every slot is marked.
 * - delete_cache: SISMEMBER (NOT_FOUND_ERROR when not listed), DEL of all
 *   the markers, SREM, then the scan of the items. From the moment a slot's
 *   marker is gone, no script writes there and a plain set is undone (the
 *   relaxed guarantee above aside). A delete_cache that failed before SREM
 *   leaves the cache listed, and the next one finishes it.
 * - two create_cache, or two delete_cache, of one name at once: one reports
 *   true and the other false (create) or NOT_FOUND_ERROR (delete); the end
 *   state is the same as after one.
 * - create_cache and delete_cache of one name at once (two clients): each
 *   slot's marker ends as the later of the two left it, and the list entry
 *   likewise, so the cache may end listed with some slots refusing calls
 *   (NOT_FOUND_ERROR), or not listed with some slots taking writes that
 *   nothing will list or delete (they expire with their TTL). The next
 *   create_cache or delete_cache of that name settles it. No client caches
 *   which caches exist: every call asks the node that holds its key, so
 *   what one client creates or deletes is seen by the others' next calls.
 *
 * delete_cache and flush_cache remove the items incrementally: SCAN with a
 * MATCH on the prefix (on every master of a cluster, one after the other),
 * COUNT bounded, UNLINK of each batch, one batch per reply, so no loop turn
 * does unbounded work. Known limits: a cache created again under the same
 * name while its deletion still scans loses the items written meanwhile; in
 * a cluster, a slot moved to another master during the scan may keep items
 * of the deleted cache (until their TTL).
 *
 * OUTCOMES. A command that failed before it was written, or that the server
 * refused with an error reply (CLUSTERDOWN, TRYAGAIN, MOVED past the
 * redirections, LOADING, ...), did not run: the call reports
 * kr_result.unapplied, and the client leaves its error retryable. A call one
 * of whose commands was written and then lost (connection, deadline) may
 * have been applied: an increment, a conditional set or a TTL change is then
 * reported uncertain (see client.h).
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

/* The writes that run as Lua scripts, each with its cache check ([0]:
 * single server, the cache list; [1]: cluster, the cache's marker in the
 * item key's slot; NULL where unused). */
enum kr_redis_script {
  KR_RS_SET_IF, KR_RS_INCR, KR_RS_TTL_SET, KR_RS_SET_BATCH, KR_RS_CREATE, KR_RS_DROP, KR_RS_COUNT_
};
extern const char *const kr_redis_scripts[2][KR_RS_COUNT_];

/* --- Redis Cluster ------------------------------------------------------------ */

typedef struct kr_rcl kr_rcl;

#define KR_REDIS_SLOTS 16384

/* The hash slot (0..16383) of a key: CRC16-XMODEM of the key, or of its hash
 * tag (the bytes between the first '{' and the next '}', when not empty). */
unsigned kr_redis_slot(const void *key, size_t len);

/* Connect to the seed nodes (opts[i].host/port; AUTH from opts[0]) and load
 * the slot map with CLUSTER SLOTS. Commands may be submitted at once: until
 * the map is known they wait for it. */
int kr_rcl_open(uv_loop_t *loop, const kr_resp_opts *opts, size_t nseeds, kr_rcl **out);

/* Send one command to the master of the slot of argv[key_arg], following
 * MOVED (with a refresh of the slot map) and ASK redirections, at most 5
 * times; the deadline covers the redirections. Same contract as
 * kr_resp_command; `cb` gets the connection of the node that answered, or
 * NULL when the router failed the command without sending it (no slot map,
 * a redirection to a node that is down, closing): it did not run. Returns
 * KURA_ECONN at once for a node known to be down (kr_rcl_errstr says
 * which), and `cb` is then never called. */
int kr_rcl_command(kr_rcl *cl, int argc, const char **argv, const size_t *argvlen,
                   int key_arg, uint64_t timeout_ms, kr_resp_cb cb, void *udata);
/* The same for a command without a key (SCRIPT LOAD): to a node that is
 * not down, never redirected. */
int kr_rcl_command_any(kr_rcl *cl, int argc, const char **argv, const size_t *argvlen,
                       uint64_t timeout_ms, kr_resp_cb cb, void *udata);
/* Why the last command was refused at once. */
const char *kr_rcl_errstr(const kr_rcl *cl);

/* The masters of the current slot map (0 while it is unknown) and a command
 * to the i-th of them, not redirected (SCAN, which has no key). */
size_t kr_rcl_masters(const kr_rcl *cl);
int kr_rcl_command_master(kr_rcl *cl, size_t i, int argc, const char **argv,
                          const size_t *argvlen, uint64_t timeout_ms, kr_resp_cb cb,
                          void *udata);

/* Counters for tests. */
typedef struct kr_rcl_stats {
  uint64_t moved, ask, refreshes;
  uint64_t refused;      /* commands failed at once: their node was down */
  uint64_t clusterdown;  /* CLUSTERDOWN replies */
} kr_rcl_stats;
kr_rcl_stats kr_rcl_get_stats(const kr_rcl *cl);

/* Fail everything pending with KURA_ECANCELLED and close every node
 * connection; `cb` runs once all are closed, before the memory is freed. */
void kr_rcl_close(kr_rcl *cl, void (*cb)(void *udata), void *udata);

#endif
