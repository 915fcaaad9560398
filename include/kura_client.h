/* kura_client: the cache client of kura in C, with no Lua at all. Momento
 * Cache's semantics (caches as namespaces, a default TTL, hit/miss,
 * increments, conditional sets, TTL calls, batches) over a backend: the
 * embedded in-process store ("memory"), Redis, Redis Cluster, or Momento.
 * Link libkura-core (pkg-config kura-core, CMake kura::core); include/kura.h,
 * the runtime that runs Lua scripts, includes this header and builds on it.
 *
 * Every function returns 0 (KURA_OK) on success or a negative KURA_E* code.
 * The codes follow Momento Cache's error names; kura_errname() gives that
 * name ("NOT_FOUND_ERROR") and kura_strerror() a sentence for people.
 *
 * The minimal host, on its own libuv loop:
 *
 *     uv_loop_t loop;
 *     uv_loop_init(&loop);
 *     kura_client *c;
 *     kura_client_options o = {0};            // memory backend, TTL 60 s
 *     if (kura_client_open(&loop, &o, &c) != KURA_OK) ...
 *     kura_set(c, "game", "k", 1, "v", 1, 0, on_done, &state);
 *     uv_run(&loop, UV_RUN_DEFAULT);          // remote backends answer here
 *     kura_client_close(c);
 *     uv_run(&loop, UV_RUN_DEFAULT);          // its handles close
 *     uv_loop_close(&loop);
 *
 * Threads: a client belongs to the thread that runs its loop. Memory clients
 * on several threads that name the same store share its caches.
 */
#ifndef KURA_CLIENT_H
#define KURA_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions the shared libraries export (they are built with
 * -fvisibility=hidden: everything not marked stays internal). */
#if defined(__GNUC__) || defined(__clang__)
#define KURA_API __attribute__((visibility("default")))
#else
#define KURA_API
#endif

#define KURA_VERSION_MAJOR 0
#define KURA_VERSION_MINOR 1
#define KURA_VERSION_PATCH 0

enum kura_error {
  KURA_OK = 0,
  KURA_EINVAL = -1,        /* INVALID_ARGUMENT_ERROR */
  KURA_ENOTFOUND = -2,     /* NOT_FOUND_ERROR: the cache does not exist */
  KURA_EEXIST = -3,        /* ALREADY_EXISTS_ERROR */
  KURA_EPRECOND = -4,      /* FAILED_PRECONDITION_ERROR */
  KURA_ELIMIT = -5,        /* LIMIT_EXCEEDED_ERROR */
  KURA_ETIMEOUT = -6,      /* TIMEOUT_ERROR */
  KURA_ECONN = -7,         /* CONNECTION_ERROR */
  KURA_EUNAVAIL = -8,      /* SERVER_UNAVAILABLE */
  KURA_EAUTH = -9,         /* AUTHENTICATION_ERROR */
  KURA_EPERM = -10,        /* PERMISSION_ERROR */
  KURA_ECANCELLED = -11,   /* CANCELLED_ERROR */
  KURA_EBADREQ = -12,      /* BAD_REQUEST_ERROR */
  KURA_EINTERNAL = -13,    /* INTERNAL_SERVER_ERROR */
  KURA_EUNSUPPORTED = -14, /* UNSUPPORTED_OPERATION_ERROR */
  KURA_EUNKNOWN = -15,     /* UNKNOWN_ERROR */
  KURA_ENOMEM = -16,       /* out of memory (reported as LIMIT_EXCEEDED_ERROR) */
  KURA_ERANGE = -17        /* a caller's buffer is too small (internal) */
};

/* "NOT_FOUND_ERROR" etc.; "UNKNOWN_ERROR" for a code it does not know. */
KURA_API const char *kura_errname(int err);
/* A short sentence describing the code. */
KURA_API const char *kura_strerror(int err);
/* 1 when a call that failed with this code may succeed if tried again.
 * A cache call whose result says `uncertain` (kura_result) must not be sent
 * again blindly, whatever its code: it may have been applied. */
KURA_API int kura_err_retryable(int err);

/* "0.1.0" */
KURA_API const char *kura_version(void);

/* The longest TTL any call takes (and the longest default TTL and timeout),
 * in seconds: 3,650 days, ten years. Every backend can hold it: the embedded
 * store keeps an expiry in 40 bits of milliseconds since boot (about 34.8
 * years), Redis and Momento take 64-bit milliseconds. A longer TTL is
 * refused (KURA_EINVAL; in Lua INVALID_ARGUMENT_ERROR), never shortened
 * without a word. */
#define KURA_TTL_MAX_SECONDS 315360000

/* What an item call found or did (kura_result.outcome). */
typedef enum kura_outcome {
  KURA_MISS = 0,    /* no such item (or it expired) */
  KURA_HIT = 1,     /* found / stored / changed / created */
  KURA_SKIPPED = 2  /* present, but the condition did not hold: not stored,
                     * not changed; create_cache: it already existed */
} kura_outcome;

/* The conditions of the set_if_* calls of the Lua API. KURA_SET_ALWAYS is
 * the plain set (the store's and backends' own numbering starts there);
 * kura_set_if refuses it: use kura_set. */
typedef enum kura_set_cond {
  KURA_SET_ALWAYS = 0,
  KURA_SET_IF_ABSENT,
  KURA_SET_IF_PRESENT,
  KURA_SET_IF_EQUAL,                  /* present and value == cmp */
  KURA_SET_IF_NOT_EQUAL,              /* absent, or value != cmp */
  KURA_SET_IF_PRESENT_AND_NOT_EQUAL,  /* present and value != cmp */
  KURA_SET_IF_ABSENT_OR_EQUAL         /* absent, or value == cmp */
} kura_set_cond;

/* How a TTL call changes an item's TTL. */
typedef enum kura_ttl_mode {
  KURA_TTL_UPDATE = 0, /* set it, whatever it was */
  KURA_TTL_INCREASE,   /* only if the new TTL is longer than the time left */
  KURA_TTL_DECREASE    /* only if the new TTL is shorter than the time left */
} kura_ttl_mode;

/* ========================================================================= */
/* Clients                                                                    */
/* ========================================================================= */

typedef struct kura_client kura_client;
struct uv_loop_s; /* libuv's uv_loop_t: this header does not need uv.h */

/* Options of kura_client_open. Zero-initialize, then set what you need.
 * Strings are copied (the credential is wiped when the client is freed).
 * What the options leave open comes from the environment, as for
 * `kura run` and kura.client() in scripts (one rule for all of them):
 *   backend           $KURA_BACKEND, else "momento" when a credential is
 *                     given, else "memory"
 *   default_ttl       $MOMENTO_TTL_SECONDS, else 60 (a value that is no
 *                     number of seconds fails the open with KURA_EINVAL)
 *   momento_endpoint  $KURA_MOMENTO_ENDPOINT
 *   credential        (momento backends) $MOMENTO_API_KEY, else
 *                     $MOMENTO_AUTH_TOKEN; a key that names no endpoint
 *                     takes $MOMENTO_ENDPOINT's */
typedef struct kura_client_options {
  const char *backend;          /* "memory", "redis://[[user]:pass@]host[:port][/db]",
                                 * "redis-cluster://host:port,...", "momento",
                                 * "momento-http" */
  double default_ttl;           /* seconds; <= 0: see above */
  const char *configuration;    /* Momento's presets, for the timeout and the
                                 * attempts: "laptop" (NULL: 5 s), "in_region",
                                 * "low_latency", "lambda" */
  double timeout;               /* seconds per call; <= 0: the preset's */
  const char *credential;       /* momento backends: the API key or token */
  size_t credential_len;        /* its bytes; 0 with a credential: strlen */
  const char *momento_endpoint; /* momento backends: "host", "host:port" or a URL */
  const char *store;            /* memory: the named store; NULL: "default".
                                 * Clients naming the same store, in this
                                 * process, share its caches */
  uint64_t max_memory;          /* memory: the store's byte budget (keys,
                                 * values and overhead); 0: as it is */
  char *errbuf;                 /* may be NULL: where kura_client_open writes
                                 * why it failed (never the credential) */
  size_t errbuf_len;
} kura_client_options;

/* Opens a client on the host's loop. opts may be NULL (all defaults). loop
 * may be NULL for the memory backend only (its calls complete before they
 * return; items expire on access then). Nothing is connected yet: a remote
 * backend connects on the first call, and a dead server shows as
 * KURA_ECONN or KURA_ETIMEOUT in that call's result, within the timeout.
 * On failure *out is NULL: KURA_EINVAL for a backend this kura does not have
 * or a malformed URL, bad numbers, a missing Momento credential (the message
 * goes to opts->errbuf). */
KURA_API int kura_client_open(struct uv_loop_s *loop, const kura_client_options *opts,
                              kura_client **out);
/* Closes c: every call still pending completes with KURA_ECANCELLED (its
 * callback runs, from inside kura_client_close or from the loop), then the
 * client's handles close on the loop. Run the loop once more before
 * uv_loop_close (uv_run(loop, UV_RUN_DEFAULT) returns when they have
 * closed). Safe from inside a callback of c. NULL is a no-op. Never for the
 * client kura_client_get(rt) hands out: the runtime owns that one. */
KURA_API void kura_client_close(kura_client *c);
/* The client's backend: "memory", "redis", "redis-cluster", "momento",
 * "momento-http". */
KURA_API const char *kura_client_backend(const kura_client *c);
/* Calls accepted and not yet completed (remote backends; 0 for memory). */
KURA_API size_t kura_client_pending(const kura_client *c);

/* Why the last call on c was refused, or the last failure. Valid until the
 * next call on c. */
KURA_API const char *kura_client_errmsg(const kura_client *c);

/* ========================================================================= */
/* Cache calls                                                                */
/* ========================================================================= */

/* What a cache call completes with. Pointers are valid only during the
 * callback: copy what you keep. */
typedef struct kura_result {
  int err;             /* KURA_OK or a KURA_E* code (as the Lua err.code) */
  const char *errmsg;  /* when err: names the cache or key; else "" */
  int outcome;         /* kura_outcome; see each call */
  const void *value;   /* kura_get on a hit */
  size_t vlen;
  int64_t integer;     /* kura_increment: the new value */
  double ttl;          /* kura_item_get_ttl: seconds left (HUGE_VAL: none) */
  int uncertain;       /* with err: a call that is not idempotent (increment,
                          set_if, the TTL changes) failed after its request may
                          have reached the server (a timeout, a connection
                          lost while the answer was on its way): it may or
                          may not have been applied. Read the item before
                          doing it again. 0 for every other failure */
  size_t count;        /* list_caches, keys_exist, get_batch: entries below */
  const char *const *names;   /* list_caches: the names, sorted */
  const uint8_t *present;     /* keys_exist: per key, 1 present, 0 absent */
  const void *const *values;  /* get_batch: per key, the value or NULL (miss) */
  const size_t *vlens;        /* get_batch: their lengths */
} kura_result;

typedef void (*kura_cb)(void *udata, const kura_result *res);

/* Every call below follows one rule: it returns KURA_OK when cb will be
 * called exactly once (the memory backend calls it before returning; remote
 * backends from the loop), or a negative code when the call was refused at
 * once: cb is then never called (KURA_EINVAL for an invalid cache name, key,
 * value or TTL, with kura_client_errmsg saying which; KURA_ECANCELLED once
 * the client is closing; KURA_EUNSUPPORTED for a call the backend does not
 * have: "momento-http", Momento's HTTP API, has get, set, delete,
 * key_exists and their batches only). cb may be NULL (fire and forget). Keys and values
 * are binary-safe byte strings; cache names are NUL-terminated. ttl in
 * seconds, at most KURA_TTL_MAX_SECONDS; <= 0 means the client's default
 * TTL. Semantics and error codes are those of docs/lua-api.md: an item call
 * on a cache that does not exist completes with KURA_ENOTFOUND. Data is
 * copied when the call returns. */

/* outcome KURA_HIT: value/vlen hold the value; KURA_MISS: absent. */
KURA_API int kura_get(kura_client *c, const char *cache, const void *key, size_t klen,
                      kura_cb cb, void *udata);
KURA_API int kura_set(kura_client *c, const char *cache, const void *key, size_t klen,
                      const void *val, size_t vlen, double ttl, kura_cb cb, void *udata);
/* Succeeds also when the key was absent. */
KURA_API int kura_delete(kura_client *c, const char *cache, const void *key, size_t klen,
                         kura_cb cb, void *udata);
/* integer: the new value. An absent key starts at 0; ttl applies when the call
 * creates the item. KURA_EPRECOND when the stored value is not an integer or
 * the result overflows int64. */
KURA_API int kura_increment(kura_client *c, const char *cache, const void *key, size_t klen,
                            int64_t amount, double ttl, kura_cb cb, void *udata);
/* outcome KURA_HIT: stored; anything else: not stored. cmp is ignored by the
 * conditions that do not compare (may be NULL). KURA_SET_ALWAYS is refused. */
KURA_API int kura_set_if(kura_client *c, const char *cache, const void *key, size_t klen,
                         const void *val, size_t vlen, kura_set_cond cond,
                         const void *cmp, size_t cmplen, double ttl, kura_cb cb, void *udata);
/* outcome KURA_HIT: present; KURA_MISS: absent. */
KURA_API int kura_key_exists(kura_client *c, const char *cache, const void *key, size_t klen,
                             kura_cb cb, void *udata);
/* outcome KURA_HIT: ttl holds the seconds left; KURA_MISS: absent. */
KURA_API int kura_item_get_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                               kura_cb cb, void *udata);
/* Sets the item's TTL to ttl seconds (> 0). outcome KURA_HIT: set; KURA_MISS:
 * absent. */
KURA_API int kura_update_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                             double ttl, kura_cb cb, void *udata);
/* Lengthens (shortens) the item's TTL to ttl seconds (> 0) when that is
 * longer (shorter) than the time it has left. outcome KURA_HIT: changed;
 * KURA_SKIPPED: present, not changed; KURA_MISS: absent. */
KURA_API int kura_increase_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                               double ttl, kura_cb cb, void *udata);
KURA_API int kura_decrease_ttl(kura_client *c, const char *cache, const void *key, size_t klen,
                               double ttl, kura_cb cb, void *udata);

/* Batches: n keys (klens[i] bytes each), one call to the backend where it
 * has one. n may be 0 (an empty answer); keys and klens may then be NULL. */
/* count = n; present[i]: whether keys[i] is there. */
KURA_API int kura_keys_exist(kura_client *c, const char *cache, size_t n,
                             const void *const *keys, const size_t *klens,
                             kura_cb cb, void *udata);
/* count = n; values[i]/vlens[i]: keys[i]'s value, NULL on a miss. */
KURA_API int kura_get_batch(kura_client *c, const char *cache, size_t n,
                            const void *const *keys, const size_t *klens,
                            kura_cb cb, void *udata);
/* Stores n items; ttls (may be NULL) gives each its own TTL in seconds, and
 * an entry <= 0 (or ttls NULL) takes ttl, which <= 0 is the default TTL. */
KURA_API int kura_set_batch(kura_client *c, const char *cache, size_t n,
                            const void *const *keys, const size_t *klens,
                            const void *const *vals, const size_t *vlens,
                            const double *ttls, double ttl, kura_cb cb, void *udata);

/* outcome KURA_HIT: created; KURA_SKIPPED: it already existed. */
KURA_API int kura_create_cache(kura_client *c, const char *cache, kura_cb cb, void *udata);
/* KURA_ENOTFOUND when it does not exist. */
KURA_API int kura_delete_cache(kura_client *c, const char *cache, kura_cb cb, void *udata);
/* All items gone; the cache stays. */
KURA_API int kura_flush_cache(kura_client *c, const char *cache, kura_cb cb, void *udata);
/* count, names: every cache, sorted by name. */
KURA_API int kura_list_caches(kura_client *c, kura_cb cb, void *udata);

/* What the client counted of its own calls (c:stats([cache]) in Lua): every
 * call it was given (those refused for a bad argument included, as errors),
 * the gets' hits and misses (kura_get, and each key of kura_get_batch),
 * errors by code; and, where the backend knows them (has_backend: the
 * embedded store, exactly, per cache, for every client of that store), its
 * items, bytes, evictions and expirations. */
#define KURA_STATS_NERR 18
typedef struct kura_stats {
  uint64_t calls, hits, misses;
  uint64_t errors[KURA_STATS_NERR]; /* by code: errors[-KURA_ENOTFOUND] ... */
  int has_backend;
  uint64_t items, bytes, evictions, expirations;
} kura_stats;
/* For the cache named `cache`, or with cache NULL for every cache the client
 * has named, summed. Counts are kept for the first 4,096 names; calls naming
 * further caches count in the totals only. KURA_EINVAL for a NULL client or
 * out. */
KURA_API int kura_client_stats(kura_client *c, const char *cache, kura_stats *out);

/* What the Lua client has and this API has not: the cache handle
 * (c:cache(name)), a convenience over the same calls with the name bound
 * (in C, pass the name). */

#ifdef __cplusplus
}
#endif
#endif
