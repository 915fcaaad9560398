/* Internals of the HTTP server (h2_server.c: listener, connections, HTTP/2;
 * h1_conn.c: HTTP/1.1 on the same connections). Not for its users.
 *
 * A connection starts by sniffing its first bytes; then it is either an
 * nghttp2 server session or an HTTP/1.1 parser. Its output goes into one
 * buffer that one write at a time drains. Every decision to close waits for
 * a safe point (conn_settle: the end of a read, a finished write, the
 * server's flush in the check phase), never inside nghttp2's callbacks.
 */
#ifndef KR_H2_SERVER_INT_H
#define KR_H2_SERVER_INT_H

#include <nghttp2/nghttp2.h>

#include "core/net/h2_fields.h"
#include "core/net/h2_pool.h"
#include "core/net/h2_server.h"

#define KR_H2S_SMALL_ARENA 1024  /* header strings held inside a request */
#define KR_H2S_SMALL_HEADERS 24  /* headers held inside a request */
#define KR_H2S_SMALL_BODY 256    /* body bytes held inside a request */
#define KR_H2S_STATIC_TRAILERS 4 /* static trailers pointed at, not copied */
#define KR_H2S_SPARE_MAX 256     /* freed requests kept for reuse */

typedef struct kr_h2s_conn kr_h2s_conn;
typedef struct kr_h2s_rq kr_h2s_rq;

typedef struct kr_h2s_buf {
  uint8_t *p;
  size_t len, cap;
} kr_h2s_buf;

enum kr_h2s_rq_state {
  KR_H2S_RECEIVING = 0, /* headers or body still arriving */
  KR_H2S_WITH_USER,     /* handed to on_request, not answered yet */
  KR_H2S_RESPONDED,     /* answered: the response is being sent */
  KR_H2S_DROPPED,       /* refused or reset before the user saw it */
};

/* A request and, once answered, its response. */
struct kr_h2s_rq {
  kr_h2s_req pub;            /* first: the user's view */
  kr_h2s_conn *c;
  kr_h2s_rq *prev, *next;    /* the connection's live requests */
  int32_t stream_id;         /* HTTP/2 */
  int state;                 /* enum kr_h2s_rq_state */
  int early;                 /* HTTP/2: handed over before its stream ended (config.whole) */
  size_t accounted;          /* bytes counted in the server's `buffered` */
  size_t header_bytes;       /* as HTTP/2 counts them (name + value + 32) */
  /* Header strings, NUL-terminated, in one arena (small, then the heap). */
  char *arena;
  size_t alen, acap;
  kr_h2s_header *hdrs;       /* small_hdrs, then the heap */
  size_t nhdrs, caphdrs;
  size_t method_off, path_off; /* offsets into the arena, SIZE_MAX: none */
  kr_h2_fields fields;       /* HTTP/2: the header block's rules so far */
  uint64_t rx_body;          /* HTTP/2: DATA bytes received (against content-length) */
  /* The body: small_body, then the heap. */
  uint8_t *body;
  size_t blen, bcap;
  /* The response (HTTP/2): body moved in, trailers copied. */
  uint8_t *rbody;
  size_t rlen, roff;
  nghttp2_nv *trailers;      /* one block: the array, then the strings */
  size_t ntrailers;
  int trailers_owned;        /* trailers is ours to free (not static) */
  nghttp2_nv static_nv[KR_H2S_STATIC_TRAILERS]; /* static trailers, pointed at */
  char small_arena[KR_H2S_SMALL_ARENA];
  kr_h2s_header small_hdrs[KR_H2S_SMALL_HEADERS];
  uint8_t small_body[KR_H2S_SMALL_BODY];
};

enum kr_h2s_proto { KR_H2S_SNIFF = 0, KR_H2S_HTTP1 = 1, KR_H2S_HTTP2 = 2 };

struct kr_h2s_conn {
  uv_tcp_t tcp;              /* tcp.data: this connection */
  kr_h2s *s;
  kr_h2s_conn *prev, *next;  /* the server's connections */
  kr_h2s_conn *next_dirty;   /* the server's flush list */
  int proto;                 /* enum kr_h2s_proto */
  nghttp2_session *h2;
  kr_h2s_buf in;             /* sniffed bytes; HTTP/1.1 input */
  kr_h2s_buf out;            /* to write */
  uv_write_t wreq;
  uv_buf_t wbuf;
  uint8_t *wmem;             /* the buffer the write in flight owns */
  kr_h2s_rq *reqs;           /* live requests */
  kr_h2s_rq *h1_cur;         /* HTTP/1.1: the request being answered */
  kr_h2s_rq *last;           /* HTTP/2: the request last looked up by stream */
  size_t in_accounted;       /* HTTP/1.1 input counted in `buffered` */
  unsigned writing : 1;      /* a uv_write is in flight */
  unsigned in_read : 1;      /* inside on_read: settle at its end */
  unsigned dirty : 1;        /* on the flush list */
  unsigned want_close : 1;   /* close once the output is written */
  unsigned closing : 1;      /* uv_close called */
  unsigned refusing : 1;     /* over the connection limit: refuse and close */
  unsigned draining : 1;     /* GOAWAY or Connection: close sent / due */
  unsigned paused : 1;       /* reading stopped until the output drains */
  unsigned h1_close : 1;     /* HTTP/1.1: close after the current response */
  unsigned h1_continue : 1;  /* HTTP/1.1: "100 Continue" already sent */
};

struct kr_h2s {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_check_t flusher;        /* flushes connections answered outside a read */
  uv_idle_t kick;            /* keeps the poll from blocking while some wait */
  kr_h2s_config cfg;
  nghttp2_session_callbacks *cbs;
  nghttp2_option *opt;
  kr_h2_pool pool;           /* nghttp2's allocations, for every session */
  kr_h2s_conn *conns;
  kr_h2s_conn *dirty;
  kr_h2s_rq *spare;          /* freed requests kept for the next ones */
  size_t nspare;
  size_t nconns, nrefusing;  /* listed connections: within the limit, refused */
  size_t live_conns;         /* allocated, until their close callback */
  size_t nreqs, buffered;
  kr_h2s_stats stats;
  int handles_open;
  unsigned draining : 1, closing : 1, listening : 1, kicking : 1;
  void (*drained)(void *);
  void *drained_ud;
  void (*closed)(void *);
  void *closed_ud;
  uint8_t readbuf[64 * 1024]; /* every read lands here first */
};

/* h2_server.c, for h1_conn.c */
kr_h2s_rq *kr_h2s_rq_new(kr_h2s_conn *c);
void kr_h2s_rq_free(kr_h2s_rq *r);
int kr_h2s_rq_add_header(kr_h2s_rq *r, const char *n, size_t nl, const char *v, size_t vl);
int kr_h2s_rq_set_pseudo(kr_h2s_rq *r, size_t *off, const char *v, size_t vl);
int kr_h2s_rq_add_body(kr_h2s_rq *r, const uint8_t *p, size_t len);
void kr_h2s_rq_dispatch(kr_h2s_rq *r);
int kr_h2s_buf_add(kr_h2s_buf *b, const void *p, size_t len);
void kr_h2s_conn_write(kr_h2s_conn *c);

/* h1_conn.c */
/* Parses and dispatches what c->in holds, one request at a time. */
void kr_h2s_h1_feed(kr_h2s_conn *c);
int kr_h2s_h1_respond(kr_h2s_rq *r, const kr_h2s_response *res);
/* A raw response for a request the parser refused, then close. */
void kr_h2s_h1_reject(kr_h2s_conn *c, int status, const char *why);

#endif
