/* gRPC calls over the curl-on-libuv HTTP client (core/net/http.h).
 *
 * A kr_grpc is one channel: one target ("http://host:port", plaintext HTTP/2
 * with prior knowledge, or "https://host:port", HTTP/2 over TLS with the peer
 * verified) and the metadata sent on every call. Calls are POSTs to
 * /package.Service/Method with one length-prefixed request message; the
 * answer is any number of length-prefixed messages (unary: one; server
 * streaming: one per item) and the status in the trailers (grpc-status,
 * grpc-message), or in the headers of a trailers-only answer.
 *
 * Every concurrent call multiplexes as an HTTP/2 stream over one connection
 * per target (curl's CURLPIPE_MULTIPLEX with PIPEWAIT); curl opens another
 * connection, up to a small pool, when a connection's stream limit is
 * reached. One exception: libcurl before 8.0 breaks reused prior-knowledge
 * connections, so there http.c gives each plaintext call a connection of its
 * own (local emulators only; TLS is not affected). A call's deadline goes out
 * as grpc-timeout and is enforced here too (the transfer's timeout). A
 * dropped connection fails its calls with KURA_ECONN; the next call opens a
 * new one.
 *
 * No Lua here; protobuf encoding is the caller's (protobuf-c).
 */
#ifndef KR_GRPC_H
#define KR_GRPC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kura_client.h"

typedef struct kr_grpc kr_grpc;

/* gRPC status codes (grpc/status.h). */
enum kr_grpc_status {
  KR_GRPC_OK = 0,
  KR_GRPC_CANCELLED = 1,
  KR_GRPC_UNKNOWN = 2,
  KR_GRPC_INVALID_ARGUMENT = 3,
  KR_GRPC_DEADLINE_EXCEEDED = 4,
  KR_GRPC_NOT_FOUND = 5,
  KR_GRPC_ALREADY_EXISTS = 6,
  KR_GRPC_PERMISSION_DENIED = 7,
  KR_GRPC_RESOURCE_EXHAUSTED = 8,
  KR_GRPC_FAILED_PRECONDITION = 9,
  KR_GRPC_ABORTED = 10,
  KR_GRPC_OUT_OF_RANGE = 11,
  KR_GRPC_UNIMPLEMENTED = 12,
  KR_GRPC_INTERNAL = 13,
  KR_GRPC_UNAVAILABLE = 14,
  KR_GRPC_DATA_LOSS = 15,
  KR_GRPC_UNAUTHENTICATED = 16,
};

typedef struct kr_grpc_config {
  const char *target;               /* "http://host:port" or "https://host:port" */
  const char *const *metadata;      /* "name: value" lines for every call (copied) */
  size_t nmetadata;
  unsigned max_connections;         /* per target; 0: 4 */
} kr_grpc_config;

/* One call. The caller owns it; kr_grpc_submit copies what it keeps. */
typedef struct kr_grpc_call {
  const char *method;               /* "/cache_client.Scs/Get" */
  const void *msg;                  /* the serialized request message */
  size_t len;
  const char *const *metadata;      /* more "name: value" lines for this call */
  size_t nmetadata;
  uint64_t timeout_ms;              /* 0: no deadline beyond http.c's default */
  size_t max_response;              /* bytes; 0: 64 MiB */
} kr_grpc_call;

/* The answer. Pointers are valid only during the callback. */
typedef struct kr_grpc_reply {
  int err;                          /* 0, or a KURA_E* code (status or transport) */
  int status;                       /* grpc-status; -1 when none arrived */
  const char *msg;                  /* when err: grpc-message (decoded) or why */
  int unsent;                       /* when err: the call cannot have reached the
                                       server (no connection was made) */
  size_t nmsgs;                     /* response messages (unframed) */
  const uint8_t *const *msgs;
  const size_t *lens;
} kr_grpc_reply;

typedef void (*kr_grpc_cb)(void *udata, const kr_grpc_reply *reply);

/* KURA_EINVAL (bad target: `err` says why), KURA_ENOMEM, KURA_EINTERNAL. */
int kr_grpc_new(uv_loop_t *loop, const kr_grpc_config *cfg, kr_grpc **out,
                char *err, size_t errlen);
/* Returns 0 when cb will be called exactly once, later, from the loop.
 * Otherwise a KURA_E* code, cb is never called and kr_grpc_errstr says why. */
int kr_grpc_submit(kr_grpc *g, const kr_grpc_call *call, kr_grpc_cb cb, void *udata);
/* Fails every call with KURA_ECANCELLED, then frees g; `closed` runs then.
 * Safe from inside a completion callback. */
void kr_grpc_close(kr_grpc *g, void (*closed)(void *ud), void *ud);
size_t kr_grpc_pending(const kr_grpc *g);
const char *kr_grpc_errstr(const kr_grpc *g);

/* A gRPC status -> the KURA_E* code Momento's SDKs map it to (0 for OK). */
int kr_grpc_status_error(int status);
/* The status's name ("NOT_FOUND"), for messages. */
const char *kr_grpc_status_name(int status);
/* Decodes a grpc-message value (percent-encoded) into out; NUL-terminated,
 * control bytes replaced by spaces. Returns the length written. */
size_t kr_grpc_decode_message(const char *in, size_t len, char *out, size_t cap);

#endif
