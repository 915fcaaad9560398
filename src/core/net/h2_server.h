/* An HTTP server on a libuv loop: HTTP/2 over cleartext TCP (h2c with prior
 * knowledge, as gRPC clients speak it; nghttp2 does the framing) and
 * HTTP/1.1 on the same port (curl and fetch, for plain HTTP APIs). The
 * first bytes of a connection tell which: the HTTP/2 preface, or anything
 * else for HTTP/1.1.
 *
 * The server hands its user whole requests (headers and body) and takes
 * whole responses (headers, one body, optional trailers): what unary and
 * server-streaming gRPC calls and a REST API need. It owns everything on
 * the wire:
 *   - flow control: the request windows are opened wide enough for values of
 *     several MiB to arrive at full speed, and a response larger than the
 *     peer's window waits for its WINDOW_UPDATEs, memory bounded by the
 *     response itself;
 *   - limits: connections (a connection past the limit is answered with
 *     GOAWAY, or 503 over HTTP/1.1, and closed), concurrent streams per
 *     connection (SETTINGS_MAX_CONCURRENT_STREAMS; nghttp2 refuses excess
 *     streams with REFUSED_STREAM), the size of a header block and of a
 *     request body (the request is flagged, the user answers it), and
 *     the request bytes buffered across the server (excess streams are
 *     reset with REFUSED_STREAM);
 *   - malformed input: a protocol error gets GOAWAY (HTTP/2) or a 400
 *     (HTTP/1.1) and the connection is closed once that is written;
 *   - drain: kr_h2s_drain stops accepting, sends GOAWAY (or "Connection:
 *     close") and lets the requests already received be answered.
 *
 * One rule for the user: each request ends exactly once, either by the
 * user's kr_h2s_respond or by the server's on_cancel (the peer reset the
 * stream or the connection went away first). After either, the request
 * is the server's: the user keeps no pointer to it.
 *
 * The process must ignore SIGPIPE (as for any libuv server): a write to a
 * peer that went away must fail with EPIPE, not end the process.
 *
 * No Lua here.
 */
#ifndef KR_H2_SERVER_H
#define KR_H2_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct kr_h2s kr_h2s;
typedef struct kr_h2s_req kr_h2s_req;

typedef struct kr_h2s_header {
  const char *name;       /* lower-case over HTTP/2; as sent over HTTP/1.1 */
  size_t nlen;
  const char *value;
  size_t vlen;
} kr_h2s_header;

/* A request as the user sees it. Everything is valid until the request ends
 * (respond or on_cancel). */
struct kr_h2s_req {
  int http_version;       /* 2, or 1 for HTTP/1.1 (and 1.0) */
  const char *method;     /* NUL-terminated */
  const char *path;       /* the request target: path and query, NUL-terminated */
  size_t path_len;
  const kr_h2s_header *headers; /* regular headers (no pseudo-headers) */
  size_t nheaders;
  const uint8_t *body;    /* the whole body ("" when empty) */
  size_t body_len;
  int body_too_large;     /* the body exceeded max_body: it was dropped */
  int headers_too_large;  /* the header block exceeded max_header_bytes: the
                           * headers past it were dropped */
  void *data;             /* the user's */
};

typedef struct kr_h2s_config {
  const char *host;             /* "127.0.0.1", "::", ... */
  int port;                     /* 0: a free port (kr_h2s_port tells which) */
  unsigned max_connections;     /* 0: 1024 */
  unsigned max_streams;         /* per HTTP/2 connection; 0: 128 */
  size_t max_body;              /* per request; 0: 32 MiB */
  size_t max_buffered;          /* request bytes held across the server; 0: 512 MiB */
  size_t max_header_bytes;      /* per request header block; 0: 128 KiB */
  /* A request is complete. The user answers it with kr_h2s_respond, now or
   * later from the loop. */
  void (*on_request)(void *udata, kr_h2s_req *req);
  /* The request ended before a response: the peer reset the stream or the
   * connection closed. Drop every reference to req. */
  void (*on_cancel)(void *udata, kr_h2s_req *req);
  /* Optional: is an HTTP/2 request whole before its stream ends? Asked
   * after each DATA frame of a request without a content-length whose
   * stream the peer keeps open, with its method, path, headers and body so
   * far; 1 hands it to on_request at once. For gRPC: a unary call is whole
   * once its one message is in, and grpc-js often sends the stream's end
   * in a later write, so the call would wait for another read. The body is
   * then final: more DATA on the stream, or trailers that break RFC 9113's
   * rules, reset it with PROTOCOL_ERROR (counted as malformed; the user gets
   * on_cancel if it has not answered); its end is only waited for. */
  int (*whole)(void *udata, const kr_h2s_req *req);
  void *udata;
} kr_h2s_config;

/* A response. headers must not repeat :status; content-length is added
 * over HTTP/1.1. The body is moved: the server frees it (free()) once sent
 * or when the stream goes away; NULL with body_len 0 for none. Trailers
 * (HTTP/2 only; ignored over HTTP/1.1) end the stream after the body; they
 * are copied unless static_trailers says they (and their strings) live as
 * long as the program (a constant "grpc-status: 0"). */
typedef struct kr_h2s_response {
  int status;
  const kr_h2s_header *headers;
  size_t nheaders;
  uint8_t *body;
  size_t body_len;
  const kr_h2s_header *trailers;
  size_t ntrailers;
  int static_trailers;
} kr_h2s_response;

/* Binds and listens. KURA_EINVAL (bad address: err says why), KURA_ECONN
 * (cannot bind or listen: err names the address and the reason),
 * KURA_ENOMEM. */
int kr_h2s_new(uv_loop_t *loop, const kr_h2s_config *cfg, kr_h2s **out, char *err,
               size_t errlen);
/* The port it listens on (the one the system chose for port 0). */
int kr_h2s_port(const kr_h2s *s);

/* Ends req with this response. Headers, trailers and their strings are
 * copied; the body is moved. Returns 0, or KURA_ENOMEM / KURA_EINTERNAL when
 * the response could not be queued: the stream is then reset (HTTP/2) or
 * the connection closed (HTTP/1.1); either way req has ended. */
int kr_h2s_respond(kr_h2s_req *req, const kr_h2s_response *res);
/* The value of the first header named `name` (lower-case; compared without
 * case), or NULL. */
const char *kr_h2s_header_get(const kr_h2s_req *req, const char *name, size_t *len);

/* Stops accepting and asks every connection to end: HTTP/2 peers get GOAWAY
 * (streams already received go on), idle HTTP/1.1 connections close, busy
 * ones after their response. `drained` runs once no connection is left
 * (possibly before kr_h2s_drain returns). */
void kr_h2s_drain(kr_h2s *s, void (*drained)(void *ud), void *ud);
/* Closes everything now: requests not answered get on_cancel. Frees s once
 * its handles have closed; `closed` (may be NULL) runs then. */
void kr_h2s_close(kr_h2s *s, void (*closed)(void *ud), void *ud);

typedef struct kr_h2s_stats {
  size_t connections;     /* open now */
  size_t requests;        /* received, not yet ended */
  uint64_t accepted;      /* connections accepted, in all */
  uint64_t refused;       /* connections refused (over the limit) */
  uint64_t streams_refused; /* streams reset for lack of buffer space */
  uint64_t protocol_errors; /* connections closed for malformed input */
  uint64_t streams_malformed; /* HTTP/2 requests reset for breaking the rules (fields, body) */
} kr_h2s_stats;
void kr_h2s_get_stats(const kr_h2s *s, kr_h2s_stats *out);

#endif
