/* kura serve's core: Momento's wire protocols in front of a kr_client.
 *
 * One port (core/net/h2_server.h) carries:
 *   - Momento's gRPC services over h2c: the data plane of cacheclient.proto
 *     (cache_client.Scs: Get, Set, Delete, SetIf, KeysExist, Increment,
 *     UpdateTtl, ItemGetTtl, GetBatch, SetBatch) and the control plane of
 *     controlclient.proto (control_client.ScsControl: CreateCache,
 *     DeleteCache, FlushCache, ListCaches). Other methods of those services
 *     answer UNIMPLEMENTED;
 *   - Momento's HTTP API: GET, PUT and DELETE on /cache/{cache} with the key
 *     as ?key= (text) or ?key_base64= (base64url), ?ttl_seconds= for PUT.
 * Results and errors are answered as Momento's servers answer them, so the
 * SDKs map them to the same codes (NOT_FOUND_ERROR, ALREADY_EXISTS_ERROR, ...).
 *
 * Every call becomes one kr_request on the client: what it accepts, its
 * backend, its TTLs and its errors are the client's. A gRPC deadline
 * (grpc-timeout) is answered with DEADLINE_EXCEEDED when the client has
 * not answered by then. With an auth token, a call whose authorization
 * metadata (HTTP API: the Authorization header or ?token=) differs is
 * answered UNAUTHENTICATED (401).
 *
 * Read-through: with a miss hook, a get that misses asks the hook for the
 * value, one hook call per cache and key at a time (concurrent gets of
 * that key wait for it); what the hook returns is stored with its TTL and
 * answered to every waiting get.
 *
 * The process must ignore SIGPIPE (see core/net/h2_server.h).
 *
 * No Lua here: the hook is a C callback that a runtime may fill.
 */
#ifndef KR_SERVE_H
#define KR_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/client.h"

typedef struct kr_serve kr_serve;

/* Completes one hook call, exactly once, from the loop (or before the hook
 * returns). err 0 with val NULL: the origin has no value (the get misses);
 * err 0 with val: store it for ttl_ms (0: the client's default TTL) and
 * answer it; err < 0 (a KURA_E* code, msg says why): the waiting gets fail
 * with it. val and msg are copied. */
typedef void (*kr_serve_miss_done)(void *done_ud, int err, const char *msg, const void *val,
                                   size_t vlen, uint64_t ttl_ms);
/* Asked for the value of a key that missed. cache and key are valid during
 * the call. The hook must call done(done_ud, ...) once, even when it shuts
 * down (then with KURA_ECANCELLED). */
typedef void (*kr_serve_miss_fn)(void *ud, const char *cache, size_t clen, const void *key,
                                 size_t klen, kr_serve_miss_done done, void *done_ud);

typedef struct kr_serve_config {
  const char *host;             /* NULL: "127.0.0.1" */
  int port;                     /* 0: a free port (kr_serve_port) */
  const char *auth_token;       /* NULL: any token, or none, is accepted (copied) */
  size_t auth_token_len;
  unsigned max_connections;     /* 0: 1024 */
  unsigned max_streams;         /* concurrent calls per connection; 0: 128 */
  unsigned max_calls;           /* in flight over all connections; 0: 16384 */
  size_t max_message;           /* request bytes; 0: 32 MiB */
  size_t max_buffered;          /* request bytes held across the server; 0: 512 MiB */
  kr_serve_miss_fn on_miss;     /* NULL: a miss is a miss */
  void *miss_ud;
} kr_serve_config;

/* Listens on the loop and serves through `client` (which must outlive the
 * server's network side, see kr_serve_close). KURA_EINVAL / KURA_ECONN with
 * the reason in err (bad address, port in use), KURA_ENOMEM. */
int kr_serve_new(uv_loop_t *loop, kr_client *client, const kr_serve_config *cfg,
                 kr_serve **out, char *err, size_t errlen);
int kr_serve_port(const kr_serve *s);
/* Sets or replaces the miss hook (NULL fn: none). */
void kr_serve_set_miss_hook(kr_serve *s, kr_serve_miss_fn fn, void *ud);

/* Stops accepting; connections end once their calls are answered
 * (GOAWAY over HTTP/2). `drained` runs when no connection is left. */
void kr_serve_drain(kr_serve *s, void (*drained)(void *ud), void *ud);
/* Closes every connection now (calls not answered are dropped) and runs
 * `closed` once the network side is down. Calls still pending in the client
 * keep the server's memory until the client completes them: close the
 * client after the server (kr_client_close fails them at once). */
void kr_serve_close(kr_serve *s, void (*closed)(void *ud), void *ud);

typedef struct kr_serve_stats {
  uint64_t calls;               /* calls received */
  uint64_t errors;              /* answered with an error */
  uint64_t deadlines;           /* answered DEADLINE_EXCEEDED */
  uint64_t cancelled;           /* dropped: the peer went away first */
  uint64_t misses_loaded;       /* hook calls */
  size_t in_flight;             /* calls not answered yet */
  size_t connections;           /* open now */
  uint64_t accepted;            /* connections accepted, in all */
  uint64_t refused;             /* connections refused past the limit */
  uint64_t protocol_errors;     /* connections closed for malformed input */
  uint64_t streams_refused;     /* HTTP/2 streams refused for lack of room */
  uint64_t streams_malformed;   /* HTTP/2 requests reset for breaking the rules (fields, body) */
} kr_serve_stats;
void kr_serve_get_stats(const kr_serve *s, kr_serve_stats *out);

#endif
