/* Internals of kura serve's core (serve.c: the server, calls, deadlines;
 * serve_grpc.c: Momento's gRPC services; serve_http.c: Momento's HTTP API;
 * serve_miss.c: read-through through the miss hook). Not for its users.
 *
 * A call is one request of the transport on its way through the client.
 * It ends its life when three things are over: its answer (or the peer
 * leaving), its client request, and its wait for a hook's value. Any order
 * is possible: a deadline answers before the client does, a peer resets a
 * stream while the hook runs, the client completes inside submit.
 */
#ifndef KR_SERVE_INT_H
#define KR_SERVE_INT_H

#include "core/net/h2_server.h"
#include "core/serve/serve.h"

typedef struct kr_serve_call kr_serve_call;
typedef struct kr_serve_flight kr_serve_flight;

/* How a call answers a client result, and (gets only) a value or an error
 * that came from elsewhere: the miss hook. */
typedef struct kr_serve_kind {
  void (*result)(kr_serve_call *call, const kr_request *req, const kr_result *res);
  void (*value)(kr_serve_call *call, const void *val, size_t vlen); /* NULL val: miss */
  void (*error)(kr_serve_call *call, int err, const char *msg);
} kr_serve_kind;

struct kr_serve_call {
  kr_serve *s;
  kr_h2s_req *req;              /* NULL once answered or the peer left */
  const kr_serve_kind *kind;
  int method;                   /* the kind's: a gRPC method, an HTTP verb */
  uint64_t deadline;            /* uv_hrtime() ns; 0: none */
  size_t heap_idx;              /* in the deadline heap; SIZE_MAX: not */
  unsigned pending : 1;         /* its client request has not completed */
  unsigned busy;                /* frames that use the call after a nested
                                 * release: it is not freed while > 0 */
  kr_serve_flight *flight;      /* waiting for the hook's value */
  kr_serve_call *next_waiter;   /* the flight's list */
};

struct kr_serve {
  uv_loop_t *loop;
  kr_client *client;
  kr_h2s *h2s;
  char *auth;                   /* wiped and freed with the server */
  size_t auth_len;
  kr_serve_miss_fn on_miss;
  void *miss_ud;
  unsigned max_calls;
  size_t max_message;
  size_t in_flight;             /* calls not answered yet */
  size_t live_calls;            /* calls not freed yet */
  kr_serve_flight **flights;    /* read-through in progress, by cache and key */
  size_t nflights, capflights;
  kr_serve_call **heap;         /* deadlines, earliest first */
  size_t heap_len, heap_cap;
  uv_timer_t timer;             /* armed for heap[0] */
  kr_serve_stats stats;
  int net_open;                 /* transport and timer not yet closed */
  unsigned closing : 1;
  void (*closed)(void *);
  void *closed_ud;
  void (*drained)(void *);
  void *drained_ud;
};

/* serve.c */
/* A call for req, with one reference for the handler that made it. */
kr_serve_call *kr_serve_call_new(kr_serve *s, kr_h2s_req *req, const kr_serve_kind *kind,
                                 int method);
/* Submits r for call: its kind's result() answers it (possibly before this
 * returns). A refused request is answered with the client's error. */
void kr_serve_submit(kr_serve_call *call, kr_request *r);
/* Sends the response for call and forgets its request. */
void kr_serve_respond(kr_serve_call *call, const kr_h2s_response *res);
/* Frees call if nothing refers to it any more. */
void kr_serve_call_release(kr_serve_call *call);
/* The handler that made the call is done with it (kr_serve_call_new gives
 * it a reference). */
void kr_serve_call_unref(kr_serve_call *call);
/* Whether a presented token is the server's (constant time). */
int kr_serve_authorized(const kr_serve *s, const char *tok, size_t len);
/* grpc-timeout's value ("100m", "5S") -> milliseconds; -1 when malformed. */
int64_t kr_serve_parse_timeout(const char *v, size_t len);
void kr_serve_set_deadline(kr_serve_call *call, uint64_t ms);

/* serve_grpc.c */
int kr_serve_is_grpc(const kr_h2s_req *req);
/* 1 when req is a gRPC call whose body so far is one whole message: a
 * unary call, answered without waiting for its stream's end (grpc-js often
 * sends that in a later write). */
int kr_serve_grpc_whole(const kr_h2s_req *req);
void kr_serve_grpc(kr_serve *s, kr_h2s_req *req);
/* The gRPC status Momento's servers answer a KURA_E* code with. */
int kr_serve_grpc_status(int err);
/* Answers a gRPC call with a status (not OK) and a message. */
void kr_serve_grpc_fail(kr_serve_call *call, int status, const char *msg);

/* serve_http.c */
void kr_serve_http(kr_serve *s, kr_h2s_req *req);
/* A plain-text response (HTTP API errors, 404s). */
void kr_serve_http_text(kr_serve_call *call, int status, const char *text);

/* serve_miss.c */
/* call's get missed: ask the hook (or wait for the call already asking). */
void kr_serve_miss_join(kr_serve_call *call, const char *cache, size_t clen, const void *key,
                        size_t klen);
/* The hook's calls are no longer the server's: their waiters are dropped,
 * their answers, when they come, are discarded. */
void kr_serve_miss_detach_all(kr_serve *s);

#endif
