/* An asynchronous RESP (Redis protocol) connection on a libuv loop.
 *
 * One kr_resp is one logical connection to one Redis server: it connects
 * (TCP, with a connect deadline), sends AUTH and SELECT first when asked, and
 * then carries commands with auto-pipelining: every command submitted during
 * one loop turn is formatted into one buffer that goes out in ONE uv_write.
 * Replies are parsed with hiredis's redisReader and matched in FIFO order to
 * the queue of pending commands.
 *
 * Rules (see also the comments in resp.c):
 * - Every command has a deadline; a timed-out command completes with
 *   KURA_ETIMEOUT and its late reply is discarded.
 * - A lost connection fails every command already written with KURA_ECONN
 *   (never re-sent) and reconnects with exponential backoff plus jitter.
 *   kr_resp_unsent tells a failure of a command that was never written
 *   (it cannot have run) from one that may have run.
 * - Commands submitted while disconnected wait for the next connection
 *   attempt: they are written when it succeeds, fail with that attempt's
 *   error (KURA_ECONN, KURA_EAUTH, ...) when it fails, or with KURA_ETIMEOUT
 *   at their deadline, whichever comes first.
 * - kr_resp_close fails everything pending with KURA_ECANCELLED; the memory
 *   is freed from the close callbacks of the handles, never earlier.
 * - A callback may submit commands or close the connection.
 *
 * No Lua in here: this is core (src/core/).
 */
#ifndef KR_RESP_H
#define KR_RESP_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "core/net/resp_tune.h"

typedef struct kr_resp kr_resp;

/* Completion of one command. status is 0 and `reply` the server's reply
 * (of type REDIS_REPLY_ERROR for "-ERR ...", "-NOSCRIPT ...", "-MOVED ..."
 * and the like: the caller maps them), or status is a negative KURA_E* code
 * and `reply` NULL. `reply` is valid only during the callback. */
typedef void (*kr_resp_cb)(kr_resp *c, int status, const redisReply *reply, void *udata);

/* Called once when the connection's memory is about to be freed. */
typedef void (*kr_resp_close_cb)(kr_resp *c, void *udata);

typedef struct kr_resp_opts {
  const char *host;            /* name or address; copied */
  int port;
  const char *user;            /* NULL: "AUTH password" (default user) */
  const char *password;        /* NULL: no AUTH */
  int db;                      /* > 0: SELECT db after AUTH */
  uint64_t connect_timeout_ms; /* connect + AUTH + SELECT; 0: 1000 */
  uint64_t timeout_ms;         /* deadline of a command given 0; 0: 1000 */
  uint64_t backoff_min_ms;     /* first reconnect delay; 0: 50 */
  uint64_t backoff_max_ms;     /* cap of the doubling; 0: 2000 */
} kr_resp_opts;

/* Counters for tests and benchmarks. */
typedef struct kr_resp_stats {
  uint64_t writes;        /* flushed batches (one write each) */
  uint64_t bytes_written; /* bytes of those batches */
  uint64_t commands;      /* commands submitted */
  uint64_t replies;       /* replies parsed */
  uint64_t connects;      /* connections that became ready */
  uint64_t timeouts;      /* commands failed with KURA_ETIMEOUT */
} kr_resp_stats;

/* A command waiting for its reply (internal). */
struct kr_resp_req {
  kr_resp_cb cb;     /* NULL once completed (timed out): reply discarded */
  void *udata;
  uint64_t deadline; /* loop time in ms */
  size_t len;        /* formatted bytes, while still in the out buffer */
};

/* A ring of requests in FIFO order (internal). */
struct kr_resp_fifo {
  struct kr_resp_req *v;
  size_t cap, head, n;
};

struct kr_resp_link;
struct kr_resp_gai;

struct kr_resp {
  void *data;            /* free for the owner */
  kr_resp_stats stats;   /* debug counters */
  int err;               /* error of the last failed attempt, 0 if none */
  char errstr[128];      /* its description */

  /* Everything below is private to resp.c. */
  uv_loop_t *loop;
  kr_resp_opts opts;      /* host/user/password point into strs */
  char *strs;             /* copies of the option strings */
  int state;              /* RS_* in resp.c */
  size_t live;            /* user commands not completed yet */
  int refs;               /* handles and requests not yet closed/finished */
  struct kr_resp_link *link; /* the current connection, NULL if none */
  struct kr_resp_gai *gai;   /* the current name resolution, NULL if none */
  uv_idle_t flush;        /* active while the out buffer holds commands */
  uv_idle_t more;         /* active while read replies wait for the next turn */
  kr_resp_tune tune;      /* how many replies a turn hands out */
  uv_timer_t timer;       /* fires at the earliest command deadline */
  uint64_t timer_due;     /* when it is armed, else 0 */
  uv_timer_t retry;       /* connect deadline, then reconnect backoff */
  uint64_t backoff;       /* next reconnect delay (ms) */
  uint64_t rng;           /* jitter state (xorshift) */
  int handshake_left;     /* replies to AUTH/SELECT still awaited */
  int cb_unsent;          /* kr_resp_unsent, during a callback */
  struct kr_resp_fifo sent; /* written, awaiting replies */
  struct kr_resp_fifo wait; /* formatted in `out`, not written yet */
  size_t wait_dead;       /* timed-out entries in `wait` */
  uint64_t batch;         /* bumped whenever `wait` is written or failed */
  char *out;              /* the out buffer */
  size_t out_len, out_cap;
  kr_resp_close_cb close_cb;
  void *close_udata;
};

/* Make a connection on `loop` and start connecting at once. Returns 0 or a
 * KURA_E* code (KURA_EINVAL for a missing host or a bad port). */
int kr_resp_open(uv_loop_t *loop, const kr_resp_opts *opts, kr_resp **out);

/* Submit one command (argv[i] of argvlen[i] bytes; binary-safe). timeout_ms
 * 0 uses opts.timeout_ms. Returns 0, and `cb` runs later from the loop
 * exactly once; or a negative code (KURA_ECANCELLED once closing,
 * KURA_ENOMEM, KURA_EINVAL) and `cb` is never called. */
int kr_resp_command(kr_resp *c, int argc, const char **argv, const size_t *argvlen,
                    uint64_t timeout_ms, kr_resp_cb cb, void *udata);

/* Fail everything pending with KURA_ECANCELLED and close. `cb` (may be NULL)
 * runs once all handles are closed, just before the memory is freed. Safe
 * from inside a command callback; a second call does nothing. */
void kr_resp_close(kr_resp *c, kr_resp_close_cb cb, void *udata);

/* 1 when connected and past AUTH/SELECT. */
int kr_resp_ready(const kr_resp *c);

/* During a callback with status < 0: 1 when the command never left this
 * process (it failed or timed out while waiting to be written, or was
 * cancelled before), so it cannot have run; 0 when it was written and may
 * have run on the server (a lost connection, a deadline after the write).
 * Callers that must not apply a write twice tell the two apart with it. */
int kr_resp_unsent(const kr_resp *c);

/* Number of commands submitted and not yet completed. */
size_t kr_resp_pending(const kr_resp *c);

/* The id of the batch that a command submitted now joins. Commands
 * submitted while it returns the same value wait in one out buffer: they
 * are written in one write, in submission order, on one connection, or
 * fail (ECONN, ECANCELLED) in that order; only a deadline can drop one of
 * them alone. A write of the buffer, or its failure, starts a new batch.
 * While kr_resp_ready, the batch is written in the current loop turn. */
uint64_t kr_resp_batch(const kr_resp *c);

#endif
