/* HTTP client on the libuv loop: libcurl's multi-socket interface, one
 * uv_poll_t per socket curl opens and one uv_timer_t for curl's timeouts.
 *
 * One kr_http holds one curl multi handle, so transfers share its connection
 * cache (keep-alive reuse) and multiplex over HTTP/2 where the server offers
 * it (ALPN over TLS, or prior knowledge for plaintext h2c). TLS peers are
 * verified. Every transfer has a deadline and a response size limit.
 *
 * It is written to carry more than kura.http: a gRPC layer reuses it through
 * the request headers, a binary body, the raw response headers and the
 * on_header hook, which also sees HTTP/2 trailers (grpc-status).
 *
 * No Lua here.
 */
#ifndef KR_HTTP_H
#define KR_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kura_client.h"

typedef struct kr_http kr_http;

#define KR_HTTP_DEFAULT_TIMEOUT_MS 30000u
#define KR_HTTP_DEFAULT_MAX_BODY ((size_t)64 << 20) /* 64 MiB */
#define KR_HTTP_DEFAULT_MAX_BUFFERED ((size_t)256 << 20) /* 256 MiB */

typedef struct kr_http_config {
  size_t max_buffered;           /* response body bytes all transfers in curl
                                    may hold at once (their buffers' sizes); a
                                    transfer whose body would go past it fails
                                    with KURA_ELIMIT. Each body also has its own
                                    limit (max_body). 0: KR_HTTP_DEFAULT_MAX_BUFFERED */
  unsigned max_host_connections; /* 0: unlimited (curl queues beyond a limit) */
  unsigned max_cached_connections;/* idle connections kept; 0: curl's default */
  unsigned max_active;           /* transfers handed to curl at once; more wait
                                    in order, their wait counting against their
                                    timeout (one whose time ran out while it
                                    waited fails with KURA_ETIMEOUT when its turn
                                    comes); 0: no limit */
  unsigned min_active;           /* > 0 and < max_active: the limit adapts
                                    between the two (see kr_http_next_active):
                                    it starts at min_active, grows while
                                    transfers wait and the loop has idle time
                                    (a slow or distant server: more in flight
                                    gives more throughput), and shrinks while
                                    the loop is busy (each transfer in curl
                                    adds to the CPU every request costs) */
} kr_http_config;

/* The adaptive limit's step, every KR_HTTP_ADAPT_MS: from `cur` transfers in
 * curl, given whether transfers were waiting and the share of the last
 * period the loop spent idle (waiting for events): doubled (up to max) when
 * transfers wait and idle > 10%, cut by a quarter (down to min) when idle <
 * 3%, else kept. Exposed for tests. */
#define KR_HTTP_ADAPT_MS 50u
unsigned kr_http_next_active(unsigned cur, unsigned min, unsigned max, int waiting, double idle);

/* A request. The caller owns it; kr_http_submit copies everything it keeps,
 * so the request and its strings may go once submit returns. */
typedef struct kr_http_request {
  const char *method;            /* "GET", "PUT", ...; NULL: GET, or POST with a body */
  const char *url;               /* http:// or https:// only */
  const char *const *headers;    /* "Name: value" lines */
  size_t nheaders;
  const void *body;              /* sent when not NULL (may be empty) */
  size_t body_len;
  uint64_t timeout_ms;           /* whole transfer; 0: KR_HTTP_DEFAULT_TIMEOUT_MS */
  size_t max_body;               /* response body limit; 0: KR_HTTP_DEFAULT_MAX_BODY */
  int h2_prior_knowledge;        /* plaintext HTTP/2 without upgrade (gRPC) */
  int insecure;                  /* skip TLS verification (private test endpoints) */
  /* Optional: every header line as it arrives (status lines, headers and
   * trailers), without the CRLF; valid during the call only. */
  void (*on_header)(void *udata, const char *line, size_t len);
} kr_http_request;

/* A completion. Pointers are valid only during the callback. */
typedef struct kr_http_response {
  int err;                       /* 0, or KURA_ECONN, KURA_ETIMEOUT, KURA_EINVAL,
                                    KURA_ELIMIT (body over its limit or the
                                    budget, headers over libcurl's limits),
                                    KURA_EINTERNAL (the answer is not valid
                                    HTTP), KURA_ECANCELLED (closed), KURA_EUNKNOWN */
  const char *msg;               /* when err: what went wrong (no header values) */
  int unsent;                    /* when err: the request cannot have reached a
                                    server (no connection was made, or it waited
                                    in the queue until its deadline) */
  long status;                   /* HTTP status; 0 when err */
  int http_version;              /* 1 or 2 (for tests and benchmarks) */
  const char *headers;           /* the final response's header lines, then any
                                    trailers: "Name: value\r\n" each */
  size_t headers_len;
  const char *body;              /* NUL-terminated as a convenience */
  size_t body_len;
} kr_http_response;

typedef void (*kr_http_cb)(void *udata, const kr_http_response *res);

/* cfg may be NULL. KURA_ENOMEM / KURA_EINTERNAL on failure. */
int kr_http_new(uv_loop_t *loop, const kr_http_config *cfg, kr_http **out);

/* Starts a transfer. Returns 0 when cb will be called exactly once, later,
 * from the loop (never from inside submit). Returns KURA_EINVAL (bad URL,
 * scheme or method), KURA_ECANCELLED (closing) or KURA_ENOMEM, and then cb is
 * never called; kr_http_errstr says why. */
int kr_http_submit(kr_http *h, const kr_http_request *req, kr_http_cb cb, void *udata);

/* Fails every transfer with KURA_ECANCELLED (through its callback), closes the
 * handles and frees h once they have closed; `closed` (may be NULL) runs then.
 * Safe from inside a completion callback (the close waits until it returns). */
void kr_http_close(kr_http *h, void (*closed)(void *ud), void *ud);

/* Transfers submitted and not completed. */
size_t kr_http_pending(const kr_http *h);
/* Transfers handed to curl at once now (the adaptive limit), 0: no limit. */
unsigned kr_http_active_limit(const kr_http *h);
/* Why the last kr_http_submit failed. */
const char *kr_http_errstr(const kr_http *h);

/* Checks a URL as submit does: 0, or KURA_EINVAL with a message in msg. */
int kr_http_check_url(const char *url, char *msg, size_t cap);

/* Calls fn for each "Name: value" line of a header block (as in
 * kr_http_response.headers), name and value trimmed. */
void kr_http_headers_each(const char *block, size_t len,
                          void (*fn)(void *ud, const char *name, size_t nlen,
                                     const char *value, size_t vlen),
                          void *ud);

#endif
