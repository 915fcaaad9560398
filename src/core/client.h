/* The cache client: Momento's data-plane semantics over a pluggable backend.
 *
 * Every call is a request (kr_request) submitted with (callback, udata). The
 * client validates it (names, keys, values, TTLs, with Momento's error codes),
 * fills in the default TTL and hands it to its backend. A backend either
 * completes at once (memory: the callback runs before kr_client_submit
 * returns) or later from the loop (network backends). For the latter the
 * client keeps a copy of the request, enforces the configuration's deadline
 * and retries idempotent calls on transient errors.
 *
 * No Lua here: a C host uses this header alone.
 */
#ifndef KR_CLIENT_H
#define KR_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/client_stats.h"
#include "core/store/store.h"
#include "kura_client.h"

typedef struct kura_client kr_client; /* the public kura_client (kura_client.h) */

enum kr_op {
  KR_OP_GET = 0,
  KR_OP_SET,
  KR_OP_SET_IF,       /* conditional set: cond, cmp */
  KR_OP_DELETE,
  KR_OP_KEY_EXISTS,
  KR_OP_KEYS_EXIST,   /* n, keys */
  KR_OP_GET_BATCH,    /* n, keys */
  KR_OP_SET_BATCH,    /* n, keys, vals, ttls */
  KR_OP_INCREMENT,    /* amount */
  KR_OP_TTL_GET,
  KR_OP_TTL_SET,      /* ttl_mode */
  KR_OP_CREATE_CACHE,
  KR_OP_DELETE_CACHE,
  KR_OP_FLUSH_CACHE,
  KR_OP_LIST_CACHES,  /* no cache name */
  KR_OP_COUNT_
};

/* A request. The caller owns it and everything it points to; the client
 * reads it during kr_client_submit only (it copies what it keeps). */
typedef struct kr_request {
  enum kr_op op;
  const char *cache;        /* cache name (not NUL-terminated) */
  size_t cache_len;
  const void *key;
  size_t klen;
  const void *val;          /* set, set_if */
  size_t vlen;
  const void *cmp;          /* set_if with an EQUAL condition */
  size_t cmplen;
  enum kura_set_cond cond;    /* set_if */
  enum kura_ttl_mode ttl_mode;/* ttl_set */
  uint64_t ttl_ms;          /* 0: the client's default TTL (filled in by submit) */
  int64_t amount;           /* increment */
  size_t n;                 /* batches: number of items */
  const void *const *keys;  /* batches */
  const size_t *klens;
  const void *const *vals;  /* set_batch */
  const size_t *vlens;
  const uint64_t *ttls;     /* set_batch: per item, 0 = ttl_ms; NULL = all ttl_ms */
} kr_request;

/* A completion. Pointers are valid only during the callback.
 *
 * Honest outcomes. An error of a call that changes data may come after its
 * request reached the server (a deadline after the write, a connection lost
 * while the answer was on its way): the change may then have been applied.
 * The backend says what it knows (`unapplied`); the client, which knows
 * whether the call is idempotent, tells the caller (`uncertain`). */
typedef struct kr_result {
  int err;                  /* 0 or a KURA_E* code */
  const char *msg;          /* when err: a message naming the cache or key */
  int unapplied;            /* backend -> client, with err: the request certainly
                               did not run (never sent, or refused by the server
                               before it ran), so sending it again cannot apply
                               it twice. 0: it may have run */
  int uncertain;            /* client -> caller, with err: a call that is not
                               idempotent failed with an error that does not
                               say it was refused (kr_err_indeterminate), and the
                               backend does not know that it did not run: it
                               may or may not have been applied, and must not
                               be sent again blindly (err.uncertain in Lua,
                               err.retryable then false) */
  int outcome;              /* enum kura_outcome for item calls; create_cache:
                               KURA_HIT created, KURA_SKIPPED existed */
  const void *val;          /* get: the value on a hit */
  size_t vlen;
  int64_t integer;          /* increment: the new value */
  uint64_t ttl_ms;          /* ttl_get: remaining (UINT64_MAX: never expires) */
  size_t count;             /* list_caches / batches: entries below */
  const char *const *names; /* list_caches: sorted names */
  const uint8_t *flags;     /* keys_exist: 1 present, 0 absent, per key */
  const void *const *vals;  /* get_batch: per key, NULL on a miss */
  const size_t *vlens;
} kr_result;

/* Called exactly once per accepted request. `req` is the request as the
 * backend saw it (the caller's or the client's copy): valid during the call. */
typedef void (*kr_client_cb)(void *udata, const kr_request *req, const kr_result *res);

/* Momento's configuration presets. */
enum kr_preset {
  KR_PRESET_LAPTOP = 0,     /* 5 s */
  KR_PRESET_IN_REGION,      /* 1.1 s */
  KR_PRESET_LOW_LATENCY,    /* 0.5 s */
  KR_PRESET_LAMBDA,         /* 1.1 s */
  KR_PRESET_COUNT_
};

typedef struct kr_client_config {
  const char *backend;          /* "memory", "redis://...", ...; NULL: "memory" */
  double default_ttl;           /* seconds; <= 0: 60 */
  enum kr_preset preset;
  double timeout;               /* seconds; <= 0: the preset's */
  int max_attempts;             /* <= 0: the preset's */
  const char *credential;       /* momento only; copied, zeroed on free */
  size_t credential_len;
  const char *momento_endpoint; /* momento only */
  const char *store;            /* memory: store name; NULL: "default" */
  uint64_t max_memory;          /* memory: byte budget; 0: leave as is */
} kr_client_config;

/* The environment's defaults for what cfg leaves open: the one place kura
 * decides them, for `kura run`, the runtime's configuration, kura.client()
 * and kura_client_open (kr_client_new applies it itself). Empty variables
 * count as unset.
 *   backend NULL: $KURA_BACKEND; still NULL, "momento" when a credential is
 *     given; else it stays NULL (the memory backend)
 *   momento_endpoint NULL: $KURA_MOMENTO_ENDPOINT
 *   default_ttl <= 0: $MOMENTO_TTL_SECONDS, else 60
 *   credential NULL on a momento backend ("momento", "momento-http"):
 *     $MOMENTO_API_KEY, else $MOMENTO_AUTH_TOKEN
 * Strings may point into the environment. Returns 0, or KURA_EINVAL with msg
 * naming the variable when MOMENTO_TTL_SECONDS is no number of seconds (the
 * other fields are filled all the same; default_ttl is left as it was). */
int kr_client_config_env(kr_client_config *cfg, char *msg, size_t cap);

/* --- the backend interface -------------------------------------------------
 * A backend is a table of operations and an opaque state. submit completes
 * the request exactly once through cb: before returning when the backend is
 * KR_BACKEND_INLINE, otherwise later from the loop (never from inside submit:
 * a network backend defers even its immediate failures to the loop). close
 * fails every pending request with KURA_ECANCELLED (through its callback),
 * closes its handles and, once they have closed, frees its state and calls
 * kr_client_backend_closed. submit only sees the operations of `supports`:
 * the client refuses the others at once with KURA_EUNSUPPORTED, with the
 * backend's `lacks` sentence in the message, so no backend answers them. */
#define KR_BACKEND_INLINE 1u
#define KR_OP_BIT(op) (1u << (op))
#define KR_OPS_ALL ((1u << KR_OP_COUNT_) - 1u)

typedef struct kr_backend_ops {
  const char *name;   /* "memory", "redis", ... */
  unsigned flags;
  unsigned supports;  /* KR_OP_BIT of each operation it serves */
  const char *lacks;  /* why the others are missing, and where they are */
  int (*open)(kr_client *c, const kr_client_config *cfg, void **state);
  void (*submit)(void *state, const kr_request *req, kr_client_cb cb, void *udata);
  void (*close)(void *state);
  /* Optional: the backend's own figures for one cache (items, bytes,
   * evictions, expirations); 0, or an error when it has none for it. */
  int (*stats)(void *state, const char *cache, size_t len, kr_store_stats *out);
  /* May be NULL. 0 when spec (the backend URL) is well formed, else
   * KURA_EINVAL; `usage` is then the form it should take. */
  int (*check_spec)(const char *spec);
  const char *usage;
} kr_backend_ops;

extern const kr_backend_ops kr_backend_memory_ops;
extern const kr_backend_ops kr_backend_redis_ops;   /* backend_redis.c */
extern const kr_backend_ops kr_backend_redis_cluster_ops; /* backend_redis.c */
extern const kr_backend_ops kr_backend_momento_http_ops; /* backend_momento_http.c */
extern const kr_backend_ops kr_backend_momento_ops; /* backend_momento.c (gRPC) */

/* For backends: the client's loop (may be NULL for a loop-less memory
 * client), its settings, and the close notification. */
uv_loop_t *kr_client_loop(kr_client *c);
const kr_client_config *kr_client_config_get(kr_client *c);
void kr_client_backend_closed(kr_client *c);
/* For backends: set the client's error message (printf-style) and return err,
 * so `return kr_client_fail(c, KURA_EINVAL, "...", ...)` reads naturally. */
int kr_client_fail(kr_client *c, int err, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

/* --- the client ------------------------------------------------------------ */

/* loop may be NULL only for inline backends (no sweep timer then: the memory
 * backend sweeps from its calls). What cfg leaves open comes from the
 * environment (kr_client_config_env). On failure *out is NULL and `err` (if
 * not NULL) holds a message; KURA_EINVAL for an unknown or unbuilt backend. */
int kr_client_new(uv_loop_t *loop, const kr_client_config *cfg, kr_client **out,
                  char *err, size_t errlen);
/* The same with an explicit backend (tests, hosts with their own backend). */
int kr_client_new_with(uv_loop_t *loop, const kr_client_config *cfg,
                       const kr_backend_ops *ops, kr_client **out,
                       char *err, size_t errlen);
/* Fails pending requests with KURA_ECANCELLED (also those whose answer the
 * backend reads after the close), then frees the client once its
 * handles have closed (at once for a loop-less client). Safe from inside a
 * completion callback. `closed` (may be NULL) runs when it is freed. */
void kr_client_close(kr_client *c, void (*closed)(void *ud), void *ud);

/* Validates req, fills in the default TTL and submits it. Returns 0 when cb
 * will be (or already was) called once; a negative KURA_E* code when the
 * request was refused (cb is then never called and kr_client_errstr says
 * why): KURA_EINVAL for invalid arguments, KURA_ECANCELLED once closing. */
int kr_client_submit(kr_client *c, kr_request *req, kr_client_cb cb, void *udata);
/* Only the validation of kr_client_submit (same codes and message). */
int kr_client_validate(kr_client *c, const kr_request *req);
/* kr_client_submit of a request kr_client_validate has just accepted (a
 * binding that validates first, to refuse before it suspends its caller):
 * the same, without validating twice. */
int kr_client_submit_valid(kr_client *c, kr_request *req, kr_client_cb cb, void *udata);
/* 1 when requests complete before kr_client_submit returns. */
int kr_client_is_inline(const kr_client *c);
/* The message of the last refused request or failed call. */
const char *kr_client_errstr(const kr_client *c);
const char *kr_client_backend_name(const kr_client *c);
uint64_t kr_client_default_ttl_ms(const kr_client *c);
uint64_t kr_client_timeout_ms(const kr_client *c);
int kr_client_max_attempts(const kr_client *c);
/* Requests submitted and not yet completed (remote backends). */
size_t kr_client_pending(const kr_client *c);

/* What the client counted of its calls (every call it was given, refused ones
 * included) and, where the backend knows them (has_backend), the backend's
 * items, bytes, evictions and expirations: for the cache `cache` (len bytes),
 * or with cache NULL for every cache the client has named, summed. */
typedef struct kr_client_stats {
  kr_counts counts;
  int has_backend;
  kr_store_stats backend;   /* hits and misses stay 0: counts has the client's */
} kr_client_stats;
/* Counts a call that its binding refused before kr_client_submit (an
 * argument it checks itself, such as a TTL given as text). */
void kr_client_count_refused(kr_client *c, const kr_request *req, int err);
void kr_client_stats_get(kr_client *c, const char *cache, size_t len, kr_client_stats *out);

/* --- policy and helpers ---------------------------------------------------- */

/* "laptop" etc. -> preset; KURA_EINVAL for an unknown name. */
int kr_preset_parse(const char *name, enum kr_preset *out);
const char *kr_preset_name(enum kr_preset p);
uint64_t kr_preset_timeout_ms(enum kr_preset p);
int kr_preset_max_attempts(enum kr_preset p);
/* 1 for get, set, delete, key_exists, keys_exist, item_get_ttl, get_batch,
 * set_batch: the calls that may be sent again. */
int kr_op_idempotent(enum kr_op op);
const char *kr_op_name(enum kr_op op);
/* The Lua API's name of the call r is: kr_op_name, with the condition of a
 * set_if ("set_if_absent") and the mode of a TTL change ("increase_ttl"). */
const char *kr_call_name(const kr_request *r);
/* 1 for the errors worth another attempt: timeout, connection, unavailable,
 * internal. Not LIMIT_EXCEEDED: a size limit fails the same way again (an
 * oversized answer would be downloaded once per attempt), and a rate limit
 * is not helped by an attempt at once. */
int kr_err_transient(int err);
/* 1 for the errors that do not say whether the request ran: the transient
 * ones, UNKNOWN_ERROR and CANCELLED_ERROR (the client closed with the request
 * in flight). Every other code is an answer that refused the request. */
int kr_err_indeterminate(int err);
/* The `uncertain` flag of a failed call of op (see kr_result). */
int kr_result_uncertain(enum kr_op op, const kr_result *res);
/* Whether a call that failed with err on attempt `attempt` (1-based) is sent
 * again, with at most max_attempts in all. */
int kr_should_retry(enum kr_op op, int err, int attempt, int max_attempts);
#define KR_TTL_MAX_MS ((uint64_t)KURA_TTL_MAX_SECONDS * 1000u)
/* Seconds -> milliseconds for a TTL or timeout: KURA_EINVAL for <= 0, NaN,
 * infinity or more than KURA_TTL_MAX_SECONDS; fractions round to the
 * nearest ms, at least 1. */
int kr_seconds_to_ms(double seconds, uint64_t *out);
/* Text -> seconds for the command line and the environment ("60", "0.5",
 * "1e3": a JSON number, whatever the locale), with the rule of
 * kr_seconds_to_ms. 0, or KURA_EINVAL with msg saying what is wanted. */
int kr_seconds_parse(const char *text, double *out, char *msg, size_t cap);
/* Whether spec names a backend this kura has, in a form it can use
 * ("memory", "redis://host:port[/db]", "redis-cluster://h:p,...",
 * "momento", "momento-http"): 0, or KURA_EINVAL with a message that says
 * what to write instead (rediss:// says TLS to Redis is not supported).
 * Checks the form only: nothing is connected. */
int kr_backend_check(const char *spec, char *err, size_t errlen);
/* Writes key bytes for a message: printable ASCII as is, others as \xNN,
 * truncated with "..." beyond about 40 bytes. Always NUL-terminates. */
void kr_format_key(char *out, size_t cap, const void *key, size_t len);
/* 0 when name is a valid cache name; otherwise KURA_EINVAL and a message. */
int kr_check_cache_name(const char *name, size_t len, char *msg, size_t cap);

#endif
