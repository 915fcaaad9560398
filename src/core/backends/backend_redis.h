/* Internal interface shared by the Redis backend files:
 *   backend_redis.c          the mapping of every item call (single server and
 *                            cluster), requests, replies, life cycle
 *   backend_redis_caches.c   create_cache, delete_cache, flush_cache, list_caches
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

#include "core/backends/defer.h"
#include "core/client.h"
#include "core/net/resp.h"

#define KR_REDIS_SLOTS 16384

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

/* --- cache markers (see LAYOUT above) ---------------------------------------- */

/* Single server: "kura:c:<cache>" (7 + cache_len bytes of the block). */
void kr_rargs_cache_marker(kr_rargs *a, const kr_request *r);
/* Cluster: "kura:m:{TAG}<cache>", the marker of r's cache in `slot`, where
 * TAG, three letters or digits, is tags[KR_RTAG_LEN * slot...]: chosen so
 * that the marker's hash slot is `slot` (KR_RMARKER_BYTES of the block). */
#define KR_RTAG_LEN 3
#define KR_RMARKER_BYTES(r) (9 + KR_RTAG_LEN + (r)->cache_len)
void kr_rargs_slot_marker(kr_rargs *a, const char *tags, const kr_request *r, unsigned slot);
/* The tags of every slot (KR_REDIS_SLOTS * KR_RTAG_LEN bytes, the caller's
 * to free). 0, KURA_ENOMEM, or KURA_EINTERNAL if a slot had none. */
int kr_rslot_tags_build(char **tags);
/* The hash slot of r's item key for `key`. 0 or KURA_ENOMEM. */
int kr_ritem_slot(const kr_request *r, const void *key, size_t klen, unsigned *slot);

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
/* The index (for kr_rcl_command_master) of the master that owns `slot` in
 * the current map, or -1 while it is unknown. */
long kr_rcl_slot_master(const kr_rcl *cl, unsigned slot);

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

/* --- one request (backend_redis.c, and backend_redis_caches.c for the cache
 * management calls) ----------------------------------------------------------- */

#define KR_RCHK_SLOTS 4 /* caches whose checks one write batch can share */

typedef struct kr_rop kr_rop;
typedef struct kr_rchk kr_rchk;       /* a shared check (backend_redis.c) */
typedef struct kr_rcopy kr_rcopy;     /* a value kept past its reply */

/* A SCRIPT LOAD on its way: which script of which backend. */
typedef struct kr_rload {
  struct kr_rbe *b;
  int s;
  int busy;
} kr_rload;

/* The backend's state: one server's connection, or a cluster's router. */
typedef struct kr_rbe {
  kr_client *client;
  kr_resp *conn;            /* single server, or NULL */
  kr_rcl *cl;               /* cluster, or NULL */
  const char *caches_key;   /* the cache list */
  uint64_t timeout_ms;
  char sha[KR_RS_COUNT_][48];   /* "" until SCRIPT LOAD answered */
  kr_rload loading[KR_RS_COUNT_]; /* a SCRIPT LOAD is on its way */
  char *slot_tags;          /* cluster: the markers' tags (kr_rslot_tags_build) */
  kr_defer defer;           /* completes requests that failed in submit */
  kr_rchk *chk[KR_RCHK_SLOTS]; /* recent shared checks, NULL when answered */
  unsigned chk_victim;      /* the slot to reuse when none is free */
  int closing, conn_closed, defer_closed;
  kr_rop *spare;            /* finished records kept for the next requests
                               (linked by chk_next), KR_ROP_SPARE at most */
  int nspare;
} kr_rbe;

/* Records kept: at least the requests a usual client has in flight, so that
 * each turn's requests reuse the last turn's (malloc keeps only 7 of a size
 * at hand; the rest went through its slower bins, cache-cold). */
#define KR_ROP_SPARE 256

/* The tag of one command of a request: its index (0 is the cache check when
 * the request sends one; in a cluster's pairs, 2k is key k's check and
 * 2k + 1 its command), or one of these. */
enum { KR_RI_SCAN = -1, KR_RI_IGNORE = -2, KR_RI_MARK = -3, KR_RI_MARKS = -4 };
typedef struct kr_rsub {
  kr_rop *o;
  int i;
} kr_rsub;

/* One request in flight: the commands it sent and what came back so far. */
struct kr_rop {
  kr_deferred deferred;     /* in kr_rbe.defer */
  kr_rop *chk_next;         /* in kr_rchk.subs */
  kr_rbe *b;
  const kr_request *req;    /* the client's copy: valid until we complete */
  kr_client_cb cb;
  void *udata;
  int pending;              /* commands sent whose reply has not come */
  int nsent;                /* tagged commands sent (indexes given) */
  int nsubs;                /* room in subs */
  int checked;              /* command 0 is SISMEMBER on the cache list
                               (maybe shared: then pending counts it too) */
  int pairs;                /* cluster: each key's command follows the check
                               of its slot's marker (see send_pair) */
  int err;
  int notfound;
  int compensated;          /* the compensating DELs are sent */
  int ran;                  /* a command answered, or failed after it was
                               written: something may have run */
  int eval;                 /* scripts go as EVAL (NOSCRIPT seen) */
  size_t marks_left;        /* cluster create/delete_cache: marker writes
                               not answered yet */
  int marks_redo;           /* a per-master script failed: every marker again,
                               one command per slot */
  size_t node;              /* cluster scan: the master being scanned */
  kr_result res;
  uint8_t *flags;           /* keys_exist */
  const void **vals;        /* get_batch */
  size_t *vlens;
  kr_rcopy *copies;         /* values kept past their reply */
  kr_rsub *subs;            /* tags of the indexed commands */
  kr_rsub sub_inline[4];    /* a single key's commands, in a cluster too */
  kr_rsub scan, ignore, mark, marks; /* tags of SCAN/UNLINK, compensating
                               DELs, a marker of a cluster's create/delete_cache,
                               a master's script of them */
  /* Not zeroed on allocation (most calls never use them): */
  char cursor[32];          /* flush/delete scan */
  char msg[200];
};

/* backend_redis.c, for both files. kr_rop_send sends a built command tagged
 * `sub` (NULL: the next index), routed in a cluster by argument key_arg (-1:
 * to the master being scanned), and frees the argv; kr_rop_send_args with
 * the next index; kr_rop_send_list_cmd sends "cmd <cache list> <cache>".
 * They return 0 or a KURA_E* code, the command not sent. */
int kr_rop_send(kr_rop *o, kr_rargs *a, int key_arg, kr_rsub *sub);
int kr_rop_send_args(kr_rop *o, kr_rargs *a, int key_arg);
int kr_rop_send_list_cmd(kr_rop *o, const char *cmd);
/* Command 0: is the cache listed? (shared within a write batch, single server) */
int kr_rop_send_check(kr_rop *o);
/* The request's error (the first one stays): "<call> of key '...' in cache
 * '...': " then fmt with detail. */
void kr_rop_fail(kr_rop *o, int err, const char *fmt, const char *detail);
/* A command that could not be sent (rc from kr_rop_send): it did not run. */
void kr_rop_send_failed(kr_rop *o, int rc);
/* EVALSHA sha nkeys+1 <check key> (or EVAL); room for 4 arguments and
 * KR_RMARKER_BYTES. 0 or KURA_ENOMEM (cluster only). */
int kr_rop_script_head(kr_rop *o, kr_rargs *a, int s, int nkeys);
/* Ends the sharing of checks in the write batch being filled. */
void kr_rbe_chk_forget(kr_rbe *b);
/* A pointer to `len` bytes of a reply that stays valid until the request
 * completes: the reply itself when it is the last one awaited, else a copy
 * (NULL, with the request failed, when there is no memory for it). */
const void *kr_rop_keep(kr_rop *o, const char *p, size_t len);
/* The cache turned out missing after a write was sent: deletes what the
 * write may have created, on the connection it went to, before completing. */
void kr_rop_compensate(kr_rop *o);
/* backend_redis_reply.c: reply `i` of the request, not an error, into its
 * result (k = i - checked is the data index; in pairs 2k is the check). */
void kr_rop_on_value(kr_rop *o, int i, const redisReply *r);
/* The reply callback of every tagged command (udata: its kr_rsub). */
void kr_rop_on_reply(kr_resp *conn, int status, const redisReply *reply, void *udata);

/* backend_redis_caches.c: create_cache, delete_cache, flush_cache,
 * list_caches, and what their replies set going. */
int kr_rop_send_cache_op(kr_rop *o);
void kr_rop_on_cache_step(kr_rop *o, int i, long long x); /* cluster create/delete */
void kr_rop_marks_done(kr_rop *o);                        /* every marker answered */
void kr_rop_scan_start(kr_rop *o);
void kr_rop_on_scan(kr_rop *o, const redisReply *r);
void kr_rop_on_list(kr_rop *o, const redisReply *r);

#endif
