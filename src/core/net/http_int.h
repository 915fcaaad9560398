/* The HTTP client's private parts, shared by http.c (transfers, the queue,
 * requests, life cycle) and http_sock.c (curl's sockets and timer on the
 * loop). Nothing else includes it. */
#ifndef KR_HTTP_INT_H
#define KR_HTTP_INT_H

#include "core/net/curl_dyn.h"
#include "core/net/http.h"

typedef struct xfer xfer;
typedef struct sock sock;

/* A parsed URL, shared by the transfers of the same URL string: a script
 * that gets one URL a thousand times parses it once. curl only reads a
 * CURLOPT_CURLU handle (it works on a copy), so one can serve transfers
 * running at the same time. Freed when no transfer holds it and the cache
 * has let it go. */
typedef struct url_ent {
  CURLU *u;
  unsigned refs;             /* transfers holding it */
  int cached;                /* in kr_http's url cache */
  int tls;                   /* https */
  size_t len;
  char url[];                /* the string, as given */
} url_ent;

struct xfer {
  xfer *prev, *next;         /* the transfers in flight */
  kr_http *h;
  CURL *easy;                /* NULL while queued: taken when handed to curl */
  /* The request, owned, until the transfer is set up (queued ones later). */
  url_ent *url;              /* the url, parsed (CURLOPT_CURLU), held */
  struct curl_slist *hdrs;   /* request headers, freed with the transfer */
  char *req_body;            /* sent when not NULL (CURLOPT_POSTFIELDS, no copy) */
  size_t req_body_len;
  char method[40];           /* "" when the request named none */
  int h2_prior_knowledge, insecure;
  kr_http_cb cb;
  void *udata;
  void (*on_header)(void *udata, const char *line, size_t len);
  char *body;                /* response body, NUL-terminated */
  size_t body_len, body_cap, max_body;
  char *head;                /* response header lines */
  size_t head_len, head_cap;
  int too_large;             /* the body went over max_body */
  int over_budget;           /* ... or over what kr_http may hold in all */
  int queued;                /* waiting in kr_http's FIFO, not yet in curl */
  uint64_t timeout_ms;       /* the whole transfer, queueing included */
  uint64_t since;            /* uv_now() at submit */
  int oom;
  int fresh;                 /* sent again on a new connection (retry_fresh) */
  char errbuf[CURL_ERROR_SIZE];
};

struct sock {
  uv_poll_t poll;
  kr_http *h;
  curl_socket_t fd;
  int events;                /* UV_READABLE | UV_WRITABLE being watched */
  int parked;                /* curl stopped watching: kept for the next socket
                                with this number (no epoll/ioctl setup, no malloc) */
  sock *prev, *next;
};

/* Idle easy handles kept for the next transfers: curl_easy_reset keeps a
 * handle's buffers, which saves allocations on every request. */
#define POOL_MAX 256

/* Parsed URLs kept for the next requests (see url_ent). */
#define URL_CACHE 8

/* Finished transfers kept, with their response buffers when these are no
 * larger than SPARE_BUF_MAX, for the next ones: a 1 KB body or header block
 * is a "large" malloc request, which makes glibc consolidate its fast bins
 * every time. */
#define SPARE_MAX 128
#define SPARE_BUF_MAX 8192

struct kr_http {
  uv_loop_t *loop;
  CURLM *multi;
  CURL *pool[POOL_MAX];      /* idle easy handles */
  uint8_t pool_shape[POOL_MAX];/* each one's option set (see xfer_shape) */
  int npool;
  url_ent *urls[URL_CACHE];  /* recently parsed URLs */
  unsigned url_next;         /* the slot the next new one replaces */
  xfer *spare;               /* finished transfers for reuse (linked by next) */
  int nspare;
  int h2c_no_reuse;          /* libcurl < 8.0.0: see set_options */
  uv_timer_t timer;          /* curl's timeout */
  uv_check_t starter;        /* starts queued transfers after the poll phase */
  uv_idle_t kick;            /* active while there are some to start: the loop
                                neither blocks in poll nor ends before then */
  xfer *xfers;               /* in curl */
  size_t nxfers;
  xfer *qhead, *qtail;       /* waiting for room in curl (FIFO) */
  size_t nqueued;
  size_t max_buffered;       /* response bytes all transfers may hold */
  size_t buffered;           /* what they hold now (their body buffers) */
  unsigned max_active;       /* transfers in curl at once; 0: no limit */
  unsigned min_active;       /* < max_active: the limit adapts (kr_http_next_active) */
  unsigned cap;              /* the limit now: max_active, or adapting */
  uint64_t adapt_at;         /* uv_now() of the last step */
  uint64_t adapt_hr, adapt_idle;/* uv_hrtime(), uv_metrics_idle_time() then */
  sock *socks;               /* every poll handle, watching or parked */
  sock **byfd;               /* poll handles by descriptor number */
  size_t nbyfd;
  int open_handles;          /* the timer and the polls, until closed */
  int in_callback;           /* completions running: close waits */
  int close_requested;
  int closing;
  void (*closed)(void *ud);
  void *closed_ud;
  char *ca_file;              /* KURA_CA_FILE, or NULL: the system's CAs */
  char *proxy[2];            /* for http, https (see read_proxy_env); NULL: none */
  char *noproxy;             /* hosts reached directly; NULL: none */
  char errstr[256];
};

/* http.c: completes the transfers curl has finished and starts queued ones
 * (after every curl_multi_socket_action); frees h once it is closed and its
 * last handle has closed. */
void kr_http_check_done(kr_http *h);
void kr_http_maybe_free(kr_http *h);

/* http_sock.c: the close callback of every handle of h (a poll handle's sock
 * is freed), a poll handle closed, and curl's callbacks:
 * CURLOPT_CLOSESOCKETFUNCTION, CURLMOPT_SOCKETFUNCTION,
 * CURLMOPT_TIMERFUNCTION (userp: the kr_http). */
void kr_http_on_handle_closed(uv_handle_t *hd);
void kr_http_sock_close(kr_http *h, sock *s);
int kr_http_on_close_socket(void *ud, curl_socket_t fd);
int kr_http_on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp);
int kr_http_on_curl_timer(CURLM *m, long ms, void *userp);

#endif
