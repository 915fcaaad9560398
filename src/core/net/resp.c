/* The asynchronous RESP connection (see resp.h for the contract).
 *
 * Auto-pipelining. A submitted command is formatted in place into the out
 * buffer (out_command: no sprintf, no allocation) and its request goes to the
 * `wait` queue; a uv_idle_t handle is started. The idle callback writes the
 * whole buffer and moves the requests to the `sent` queue.
 * We chose write-on-idle over uv_prepare/uv_check because an active idle
 * handle also makes the loop poll with a zero timeout: whatever phase a
 * command was submitted in (a timer, an I/O callback, another idle or prepare
 * callback), the loop cannot block before the buffer is written, and
 * everything submitted in the same turn still leaves together, in one
 * write() made at once (write_out); the out buffer is then reused.
 * Each buffer is a numbered batch (kr_resp_batch), so that a caller can let
 * the commands of one write share work, such as one check that runs before
 * all of them.
 *
 * Replies are parsed by hiredis's redisReader and matched to the head of
 * `sent`. Deadlines: one uv_timer per connection, armed at the earliest
 * deadline known; when it fires it fails every expired request with
 * KURA_ETIMEOUT (a timed-out request stays in `sent` with no callback, so
 * its late reply is discarded; one still in `wait` is dropped from the out
 * buffer before the write) and re-arms at the earliest remaining deadline.
 *
 * Connection life: RS_RESOLVING -> RS_CONNECTING -> RS_HANDSHAKE (AUTH,
 * SELECT) -> RS_READY. The `retry` timer is the connect deadline while
 * connecting and the backoff delay while RS_IDLE. A lost link fails `sent`
 * with KURA_ECONN (those commands may have run: they are never re-sent);
 * a failed attempt also fails `wait` with its error, so callers never wait
 * longer than one attempt for a dead server. Backoff starts at
 * backoff_min_ms, doubles per failed attempt up to backoff_max_ms, with
 * "equal jitter" (half fixed, half random).
 *
 * Re-entrancy: user callbacks may submit or close. Queues are detached
 * before they are failed, loops over live queues stop when the connection
 * starts closing, and a dropped link is marked dead so its pending I/O
 * callbacks are ignored. Memory is freed only from close callbacks: the
 * connection after its three handles and every link/resolution are gone.
 */
#include "core/net/resp.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kura_client.h"

enum { RS_IDLE, RS_RESOLVING, RS_CONNECTING, RS_HANDSHAKE, RS_READY, RS_CLOSING };

#define NO_DEADLINE UINT64_MAX

/* A small top-level array and its scalar elements, made in place (see
 * arr_new): `elem` follows `top` directly, which is how arr_of recognizes
 * one from the object alone. */
#define ARR_MAX 4
struct arr_slot {
  redisReply top;
  redisReply *elem[ARR_MAX];
  redisReply item[ARR_MAX];
  int busy;        /* being built or handed out */
  size_t used;     /* bytes of buf given to the items' strings */
  char buf[512];
};

struct kr_resp_link {
  uv_tcp_t tcp;
  uv_connect_t creq;
  kr_resp *c;
  redisReader *reader;
  int dead;          /* dropped: its late callbacks are ignored */
  redisReplyObjectFunctions fns, dflt; /* the reader's, hiredis's defaults */
  redisReply one;    /* a small top-level reply, see one_string */
  int one_busy;      /* handed out, not released yet */
  char one_buf[128]; /* its string */
  struct arr_slot arr;
  char rbuf[65536];  /* read buffer */
};

struct kr_resp_gai {
  uv_getaddrinfo_t req;
  kr_resp *c;
};

struct wreq {
  uv_write_t req;
  char *buf; /* owned: freed when the write completes */
};

static void conn_failed(kr_resp *c, int err, const char *msg);
static void start_connect(kr_resp *c);
static void on_handshake(kr_resp *c, int status, const redisReply *reply, void *udata);

/* --- request queues ------------------------------------------------------- */

static struct kr_resp_req *fifo_at(struct kr_resp_fifo *f, size_t i)
{
  return &f->v[(f->head + i) & (f->cap - 1)];
}

/* Room for `extra` more entries; the capacity stays a power of two. */
static int fifo_reserve(struct kr_resp_fifo *f, size_t extra)
{
  if (f->n + extra <= f->cap)
    return 0;
  size_t cap = f->cap ? f->cap : 64;
  while (cap < f->n + extra)
    cap *= 2;
  struct kr_resp_req *v = malloc(cap * sizeof *v);
  if (!v)
    return KURA_ENOMEM;
  for (size_t i = 0; i < f->n; i++)
    v[i] = *fifo_at(f, i);
  free(f->v);
  f->v = v;
  f->cap = cap;
  f->head = 0;
  return 0;
}

static int fifo_push(struct kr_resp_fifo *f, const struct kr_resp_req *r)
{
  int rc = fifo_reserve(f, 1);
  if (rc)
    return rc;
  f->n++;
  *fifo_at(f, f->n - 1) = *r;
  return 0;
}

static struct kr_resp_req fifo_pop(struct kr_resp_fifo *f)
{
  struct kr_resp_req r = *fifo_at(f, 0);
  f->head = (f->head + 1) & (f->cap - 1);
  f->n--;
  return r;
}

/* Run a request's callback once; internal (handshake) requests are not
 * counted in `live`. `unsent`: a failure of a command that was never
 * written (kr_resp_unsent). */
static void complete(kr_resp *c, struct kr_resp_req *r, int status, const redisReply *reply,
                     int unsent)
{
  kr_resp_cb cb = r->cb;
  if (!cb)
    return;
  r->cb = NULL;
  if (cb != on_handshake)
    c->live--;
  c->cb_unsent = unsent;
  cb(c, status, reply, r->udata);
  c->cb_unsent = 0;
}

/* Fail every request of a queue that was taken out of the connection, so
 * that callbacks may submit new commands (to the fresh queue) meanwhile. */
static void fail_detached(kr_resp *c, struct kr_resp_fifo *f, int err, int unsent)
{
  while (f->n) {
    struct kr_resp_req r = fifo_pop(f);
    complete(c, &r, err, NULL, unsent);
  }
  free(f->v);
}

static void fail_sent(kr_resp *c, int err)
{
  struct kr_resp_fifo f = c->sent;
  memset(&c->sent, 0, sizeof c->sent);
  fail_detached(c, &f, err, 0);
}

static void fail_wait(kr_resp *c, int err)
{
  struct kr_resp_fifo f = c->wait;
  memset(&c->wait, 0, sizeof c->wait);
  free(c->out);
  c->out = NULL;
  c->out_len = c->out_cap = 0;
  c->wait_dead = 0;
  c->batch++;
  fail_detached(c, &f, err, 1);
}

/* --- deadlines ------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t);

static void arm_timer(kr_resp *c, uint64_t deadline)
{
  if (deadline == NO_DEADLINE || c->state == RS_CLOSING)
    return;
  if (c->timer_due && deadline >= c->timer_due)
    return;
  uint64_t now = uv_now(c->loop);
  c->timer_due = deadline;
  uv_timer_start(&c->timer, on_deadline, deadline > now ? deadline - now : 0, 0);
}

/* Fail the expired requests of one queue; returns 1 if the connection
 * started closing meanwhile. */
static int expire_fifo(kr_resp *c, struct kr_resp_fifo *f, uint64_t now, int waiting)
{
  size_t n = f->n;
  for (size_t i = 0; i < n && i < f->n; i++) {
    struct kr_resp_req *r = fifo_at(f, i);
    if (!r->cb || r->deadline > now)
      continue;
    if (waiting)
      c->wait_dead++;
    c->stats.timeouts++;
    complete(c, r, KURA_ETIMEOUT, NULL, waiting); /* may push to f: r is stale now */
    if (c->state == RS_CLOSING)
      return 1;
  }
  return 0;
}

static uint64_t earliest(struct kr_resp_fifo *f)
{
  uint64_t d = NO_DEADLINE;
  for (size_t i = 0; i < f->n; i++) {
    struct kr_resp_req *r = fifo_at(f, i);
    if (r->cb && r->deadline < d)
      d = r->deadline;
  }
  return d;
}

static void on_deadline(uv_timer_t *t)
{
  kr_resp *c = t->data;
  uint64_t now = uv_now(c->loop);
  c->timer_due = 0;
  if (expire_fifo(c, &c->sent, now, 0) || expire_fifo(c, &c->wait, now, 1))
    return;
  uint64_t a = earliest(&c->sent), b = earliest(&c->wait);
  arm_timer(c, a < b ? a : b);
}

/* --- writing -------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
  struct wreq *w = (struct wreq *)req;
  struct kr_resp_link *link = req->handle->data;
  free(w->buf);
  free(w);
  if (status < 0 && !link->dead)
    conn_failed(link->c, KURA_ECONN, uv_strerror(status));
}

/* The out buffer kept between writes at most: a larger one (a batch of big
 * values) is given back once it has been written. */
#define OUT_KEEP (256 * 1024)

/* Queue bytes [off, len) of `buf` as a uv_write on the current link;
 * `buf` moves here (freed when the write completes). */
static int write_buf(kr_resp *c, char *buf, size_t off, size_t len)
{
  struct wreq *w = malloc(sizeof *w);
  if (!w) {
    free(buf);
    return KURA_ENOMEM;
  }
  w->buf = buf;
  uv_buf_t b = uv_buf_init(buf + off, (unsigned)(len - off));
  if (uv_write(&w->req, (uv_stream_t *)&c->link->tcp, &b, 1, on_write) < 0) {
    free(buf);
    free(w);
    return KURA_ECONN;
  }
  return 0;
}

/* Write the out buffer on the current link. Most batches go out whole in
 * one write() right here (uv_try_write): no write request, no completion
 * callback, so the loop neither takes an extra turn nor re-registers the
 * socket with epoll for it, and the buffer is reused for the next batch.
 * Only what the socket does not take at once is queued with uv_write. A
 * failed write fails the connection here, with the system's reason (as
 * on_write does); the return value is an error of the queueing. */
static int write_out(kr_resp *c)
{
  size_t len = c->out_len;
  uv_buf_t b = uv_buf_init(c->out, (unsigned)len);
  int n = uv_try_write((uv_stream_t *)&c->link->tcp, &b, 1);
  if (n < 0 && n != UV_EAGAIN) {
    c->out_len = 0;
    conn_failed(c, KURA_ECONN, uv_strerror(n)); /* as a failed uv_write says */
    return 0;
  }
  c->stats.writes++;
  c->stats.bytes_written += len;
  size_t done = n > 0 ? (size_t)n : 0;
  c->out_len = 0; /* these bytes belong to `sent` now, whatever happens */
  if (done < len) {
    char *buf = c->out;
    c->out = NULL;
    c->out_cap = 0;
    return write_buf(c, buf, done, len);
  }
  if (c->out_cap > OUT_KEEP) {
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  return 0;
}

/* Drop the commands of `wait` that timed out, and their bytes. */
static void compact_wait(kr_resp *c)
{
  struct kr_resp_fifo *f = &c->wait;
  size_t off = 0, keep = 0, w = 0;
  for (size_t i = 0; i < f->n; i++) {
    struct kr_resp_req *r = fifo_at(f, i);
    if (r->cb) {
      memmove(c->out + keep, c->out + off, r->len);
      keep += r->len;
      *fifo_at(f, w++) = *r;
    }
    off += r->len;
  }
  f->n = w;
  c->out_len = keep;
  c->wait_dead = 0;
}

/* Write everything waiting, as one uv_write. */
static void flush_now(kr_resp *c)
{
  if (c->state != RS_READY || c->wait.n == 0)
    return;
  if (c->wait_dead)
    compact_wait(c);
  if (c->wait.n == 0 || fifo_reserve(&c->sent, c->wait.n))
    return;
  c->batch++;
  while (c->wait.n) {
    struct kr_resp_req r = fifo_pop(&c->wait);
    fifo_push(&c->sent, &r); /* cannot fail: reserved */
  }
  int rc = write_out(c);
  if (rc)
    conn_failed(c, rc, "write failed");
}

static void on_flush(uv_idle_t *h)
{
  kr_resp *c = h->data;
  uv_idle_stop(h);
  flush_now(c);
}

/* Room for n more bytes in the out buffer. */
static int out_reserve(kr_resp *c, size_t n)
{
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n)
      cap *= 2;
    char *b = realloc(c->out, cap);
    if (!b)
      return KURA_ENOMEM;
    c->out = b;
    c->out_cap = cap;
  }
  return 0;
}

/* Decimal digits of v, written backwards from `end`; returns the start. */
static char *utoa_back(char *end, size_t v)
{
  do {
    *--end = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  return end;
}

/* "<type><n>\r\n" at p; returns the byte after it. */
static char *put_head(char *p, char type, size_t n)
{
  char tmp[24], *s = utoa_back(tmp + sizeof tmp, n);
  size_t len = (size_t)(tmp + sizeof tmp - s);
  *p++ = type;
  memcpy(p, s, len);
  p += len;
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

/* Append one command in RESP ("*argc\r\n" then "$len\r\n<bytes>\r\n" per
 * argument) to the out buffer: formatted in place, with no allocation on the
 * hot path (hiredis's formatter goes through sprintf and malloc). Returns its
 * length, or 0 when out of memory. */
static size_t out_command(kr_resp *c, int argc, const char **argv, const size_t *argvlen)
{
  size_t need = 24;
  for (int i = 0; i < argc; i++)
    need += 24 + 4 + (argvlen ? argvlen[i] : strlen(argv[i]));
  if (out_reserve(c, need))
    return 0;
  char *start = c->out + c->out_len, *p = put_head(start, '*', (size_t)argc);
  for (int i = 0; i < argc; i++) {
    size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
    p = put_head(p, '$', len);
    memcpy(p, argv[i], len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
  }
  c->out_len += (size_t)(p - start);
  return (size_t)(p - start);
}

/* --- reading -------------------------------------------------------------- */

/* Reply objects. hiredis's default functions make two allocations per reply
 * (the object and a copy of its string); most replies are one small scalar
 * (SET's +OK, an integer). A top-level status, error, string, integer or nil
 * reply therefore goes to the link's `one` slot (while its string fits), so
 * that it allocates nothing; it is released after its dispatch, before the
 * next reply is parsed. Longer strings are made by the defaults. The reader
 * never frees a top-level scalar itself (it hands it out as soon as it is
 * made). */
static redisReply *one_take(struct kr_resp_link *link, int type)
{
  link->one_busy = 1;
  memset(&link->one, 0, sizeof link->one);
  link->one.type = type;
  link->one.str = link->one_buf; /* "" unless a string is copied in */
  link->one_buf[0] = 0;
  return &link->one;
}

/* Arrays too: a top-level array of up to ARR_MAX elements (MGET's marker
 * and value, the pairs the cluster and scripts answer with) is made in the
 * link's `arr` slot, and so are its scalar elements while their strings fit
 * in its buffer; anything else (nested arrays, long strings) comes from the
 * defaults and is freed with the slot. The reader may free a partly built
 * array itself (a protocol error, the reader's end): its freeObject, which
 * has no link at hand, recognizes a slot by the element pointer (hiredis's
 * own arrays point to an allocation of their own, never to the bytes right
 * after the object). A get's reply went from six allocations to none. */
static struct arr_slot *arr_of(void *obj)
{
  redisReply *r = obj;
  if (r && r->type == REDIS_REPLY_ARRAY &&
      r->element == (redisReply **)(void *)((char *)obj + offsetof(struct arr_slot, elem)))
    return (struct arr_slot *)obj;
  return NULL;
}

static void arr_release(struct arr_slot *a)
{
  for (size_t i = 0; i < a->top.elements; i++) {
    redisReply *e = a->elem[i];
    if (e && (e < a->item || e >= a->item + ARR_MAX))
      freeReplyObject(e);
  }
  a->busy = 0;
}

static void obj_free(void *obj)
{
  struct arr_slot *a = arr_of(obj);
  if (a)
    arr_release(a);
  else
    freeReplyObject(obj);
}

static void *arr_new(const redisReadTask *t, int n)
{
  struct kr_resp_link *link = t->privdata;
  struct arr_slot *a = &link->arr;
  if (t->parent || a->busy || n < 0 || n > ARR_MAX)
    return link->dflt.createArray(t, n);
  a->busy = 1;
  a->used = 0;
  memset(&a->top, 0, sizeof a->top);
  memset(a->elem, 0, sizeof a->elem);
  a->top.type = REDIS_REPLY_ARRAY;
  a->top.elements = (size_t)n;
  a->top.element = a->elem;
  return &a->top;
}

/* Element t of the slot's array, with room for a string of len bytes; NULL
 * when t is not one (the defaults make it). */
static redisReply *arr_item(const redisReadTask *t, int type, size_t len)
{
  struct kr_resp_link *link = t->privdata;
  struct arr_slot *a = &link->arr;
  if (!t->parent || t->parent->obj != &a->top || len >= sizeof a->buf - a->used)
    return NULL;
  redisReply *r = &a->item[t->idx];
  memset(r, 0, sizeof *r);
  r->type = type;
  r->str = a->buf + a->used;
  r->str[0] = 0;
  a->used += len + 1;
  a->elem[t->idx] = r;
  return r;
}

static void *one_string(const redisReadTask *t, char *str, size_t len)
{
  struct kr_resp_link *link = t->privdata;
  redisReply *item = arr_item(t, t->type, len);
  if (item) {
    memcpy(item->str, str, len);
    item->str[len] = 0;
    item->len = len;
    return item;
  }
  if (t->parent || link->one_busy || len >= sizeof link->one_buf ||
      (t->type != REDIS_REPLY_STATUS && t->type != REDIS_REPLY_ERROR &&
       t->type != REDIS_REPLY_STRING))
    return link->dflt.createString(t, str, len);
  redisReply *r = one_take(link, t->type);
  memcpy(link->one_buf, str, len);
  link->one_buf[len] = 0;
  r->len = len;
  return r;
}

static void *one_integer(const redisReadTask *t, long long value)
{
  struct kr_resp_link *link = t->privdata;
  redisReply *item = arr_item(t, REDIS_REPLY_INTEGER, 0);
  if (item) {
    item->integer = value;
    return item;
  }
  if (t->parent || link->one_busy)
    return link->dflt.createInteger(t, value);
  redisReply *r = one_take(link, REDIS_REPLY_INTEGER);
  r->integer = value;
  return r;
}

static void *one_nil(const redisReadTask *t)
{
  struct kr_resp_link *link = t->privdata;
  redisReply *item = arr_item(t, REDIS_REPLY_NIL, 0);
  if (item)
    return item;
  if (t->parent || link->one_busy)
    return link->dflt.createNil(t);
  return one_take(link, REDIS_REPLY_NIL);
}

static void reply_free(struct kr_resp_link *link, redisReply *reply)
{
  if (reply == &link->one)
    link->one_busy = 0;
  else
    obj_free(reply);
}

/* A reader whose scalar replies go to link->one. */
static redisReader *reader_new(struct kr_resp_link *link)
{
  redisReader *r = redisReaderCreate();
  if (!r)
    return NULL;
  link->dflt = *r->fn;
  link->fns = link->dflt;
  link->fns.createString = one_string;
  link->fns.createInteger = one_integer;
  link->fns.createNil = one_nil;
  link->fns.createArray = arr_new;
  link->fns.freeObject = obj_free;
  r->fn = &link->fns;
  r->privdata = link;
  return r;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
  struct kr_resp_link *link = h->data;
  *b = uv_buf_init(link->rbuf, sizeof link->rbuf);
}

static void dispatch(struct kr_resp_link *link, redisReply *reply)
{
  kr_resp *c = link->c;
  c->stats.replies++;
  if (c->sent.n == 0) {
    reply_free(link, reply);
    conn_failed(c, KURA_ECONN, "reply without a command");
    return;
  }
  struct kr_resp_req r = fifo_pop(&c->sent);
  complete(c, &r, 0, reply, 0);
  reply_free(link, reply); /* the link outlives a drop until its close callback */
}

/* Replies handed out per loop turn: c->tune.budget, 16 or 128, chosen per
 * connection by measuring both (resp_tune.h). The rest wait in the reader
 * for the next turns. The commands that the callers of a turn's replies send
 * go out at the end of that turn (still one write per turn). Earlier fixed
 * budgets, measured: 16 took sets from ~285k to ~465k/s and gets from ~317k
 * to ~475k/s against no budget on a quiet machine (50 tasks, one local
 * server); at load 6-7, 128 against 16, 5 alternated rounds, medians: `kura
 * bench -c 50 --mix get:100` 83k -> 118k requests/s. Either bounds a turn
 * when thousands of replies arrive. */
static void on_more(uv_idle_t *h);

/* Hands out the parsed replies, up to the budget. */
static void drain_replies(struct kr_resp_link *link)
{
  kr_resp *c = link->c;
  unsigned n = 0;
  int more = 0;
  for (; !link->dead; n++) {
    if (n == c->tune.budget) {
      more = 1;
      break;
    }
    void *reply = NULL;
    if (redisReaderGetReply(link->reader, &reply) != REDIS_OK) {
      conn_failed(c, KURA_ECONN, "protocol error in reply");
      return;
    }
    if (!reply)
      break;
    dispatch(link, reply); /* a callback may drop the link or close c */
  }
  if (n)
    kr_resp_tune_turn(&c->tune, uv_now(c->loop), c->stats.replies, n, more);
  if (more && c->state != RS_CLOSING && !uv_is_active((uv_handle_t *)&c->more))
    uv_idle_start(&c->more, on_more);
  else if (!more && uv_is_active((uv_handle_t *)&c->more))
    uv_idle_stop(&c->more);
}

static void on_more(uv_idle_t *h)
{
  kr_resp *c = h->data;
  if (!c->link || c->link->dead || c->state == RS_CLOSING) {
    uv_idle_stop(h);
    return;
  }
  drain_replies(c->link);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
  struct kr_resp_link *link = s->data;
  kr_resp *c = link->c;
  if (link->dead || nread == 0)
    return;
  if (nread < 0) {
    conn_failed(c, KURA_ECONN,
                nread == UV_EOF ? "server closed the connection" : uv_strerror((int)nread));
    return;
  }
  if (redisReaderFeed(link->reader, b->base, (size_t)nread) != REDIS_OK) {
    conn_failed(c, KURA_ECONN, "reply buffer: out of memory");
    return;
  }
  drain_replies(link);
}

/* --- connecting ----------------------------------------------------------- */

static void set_error(kr_resp *c, int err, const char *msg)
{
  c->err = err;
  snprintf(c->errstr, sizeof c->errstr, "%s:%d: %s", c->opts.host, c->opts.port, msg);
}

static uint64_t jitter(kr_resp *c, uint64_t d)
{
  c->rng ^= c->rng << 13;
  c->rng ^= c->rng >> 7;
  c->rng ^= c->rng << 17;
  return d / 2 + c->rng % (d / 2 + 1);
}

static void unref(kr_resp *c)
{
  if (--c->refs > 0)
    return;
  if (c->close_cb)
    c->close_cb(c, c->close_udata);
  free(c->sent.v);
  free(c->wait.v);
  free(c->out);
  free(c->strs);
  free(c);
}

static void on_link_closed(uv_handle_t *h)
{
  struct kr_resp_link *link = h->data;
  kr_resp *c = link->c;
  redisReaderFree(link->reader);
  free(link);
  unref(c);
}

/* Close the current link and forget the current name resolution. */
static void drop_link(kr_resp *c)
{
  if (c->link) {
    c->link->dead = 1;
    uv_close((uv_handle_t *)&c->link->tcp, on_link_closed);
    c->link = NULL;
  }
  if (c->gai) {
    uv_cancel((uv_req_t *)&c->gai->req);
    c->gai = NULL;
  }
}

static void on_retry(uv_timer_t *t)
{
  kr_resp *c = t->data;
  if (c->state == RS_IDLE)
    start_connect(c);
  else if (c->state != RS_READY && c->state != RS_CLOSING)
    conn_failed(c, KURA_ECONN, "connect timed out");
}

/* The link is lost or the attempt failed: fail what must fail, schedule the
 * next attempt. Commands already written get KURA_ECONN; when an attempt
 * failed (never became ready), waiting commands get its error too. */
static void conn_failed(kr_resp *c, int err, const char *msg)
{
  if (c->state == RS_CLOSING || c->state == RS_IDLE)
    return;
  int attempt = c->state != RS_READY;
  drop_link(c);
  set_error(c, err, msg);
  c->state = RS_IDLE;
  uint64_t delay = attempt ? c->backoff : c->opts.backoff_min_ms;
  c->backoff = delay * 2 < c->opts.backoff_max_ms ? delay * 2 : c->opts.backoff_max_ms;
  uv_timer_start(&c->retry, on_retry, jitter(c, delay), 0);
  fail_sent(c, attempt ? err : KURA_ECONN);
  if (attempt && c->state == RS_IDLE)
    fail_wait(c, err);
}

static void became_ready(kr_resp *c)
{
  c->state = RS_READY;
  c->err = 0;
  c->errstr[0] = 0;
  c->backoff = c->opts.backoff_min_ms;
  c->stats.connects++;
  uv_timer_stop(&c->retry);
  flush_now(c);
}

/* AUTH/SELECT replies. Errors of the link itself are handled elsewhere. */
static void on_handshake(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  if (status < 0 || c->state != RS_HANDSHAKE)
    return;
  if (reply->type == REDIS_REPLY_ERROR) {
    int err = udata == (void *)c ? KURA_EAUTH : KURA_EINVAL; /* AUTH : SELECT */
    conn_failed(c, err, reply->str);
    return;
  }
  if (--c->handshake_left == 0)
    became_ready(c);
}

static int handshake_cmd(kr_resp *c, char **buf, size_t *len, int argc, const char **argv,
                         void *tag)
{
  char *cmd;
  int n = redisFormatCommandArgv(&cmd, argc, argv, NULL);
  if (n < 0)
    return KURA_ENOMEM;
  char *b = realloc(*buf, *len + (size_t)n);
  if (!b) {
    redisFreeCommand(cmd);
    return KURA_ENOMEM;
  }
  memcpy(b + *len, cmd, (size_t)n);
  redisFreeCommand(cmd);
  *buf = b;
  *len += (size_t)n;
  struct kr_resp_req r = {on_handshake, tag, NO_DEADLINE, 0};
  c->handshake_left++;
  return fifo_push(&c->sent, &r);
}

/* Send AUTH and SELECT as needed; ready at once when neither is. */
static void start_handshake(kr_resp *c)
{
  char *buf = NULL, dbs[16];
  size_t len = 0;
  int rc = 0;
  c->handshake_left = 0;
  c->state = RS_HANDSHAKE;
  if (c->opts.password) {
    const char *a[3] = {"AUTH", c->opts.user, c->opts.password};
    if (!c->opts.user)
      a[1] = a[2];
    rc = handshake_cmd(c, &buf, &len, c->opts.user ? 3 : 2, a, c);
  }
  if (!rc && c->opts.db > 0) {
    snprintf(dbs, sizeof dbs, "%d", c->opts.db);
    const char *a[2] = {"SELECT", dbs};
    rc = handshake_cmd(c, &buf, &len, 2, a, NULL);
  }
  if (!rc && len)
    rc = write_buf(c, buf, 0, len);
  else
    free(buf);
  if (rc)
    conn_failed(c, rc, "handshake failed");
  else if (c->handshake_left == 0)
    became_ready(c);
}

static void on_connect(uv_connect_t *req, int status)
{
  struct kr_resp_link *link = req->data;
  kr_resp *c = link->c;
  if (link->dead)
    return;
  if (status < 0) {
    conn_failed(c, KURA_ECONN, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&link->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&link->tcp, on_alloc, on_read);
  if (rc < 0) {
    conn_failed(c, KURA_ECONN, uv_strerror(rc));
    return;
  }
  start_handshake(c);
}

static void connect_addr(kr_resp *c, const struct sockaddr *sa)
{
  struct kr_resp_link *link = calloc(1, sizeof *link);
  redisReader *reader = link ? reader_new(link) : NULL;
  if (!link || !reader) {
    free(link);
    if (reader)
      redisReaderFree(reader);
    conn_failed(c, KURA_ENOMEM, "out of memory");
    return;
  }
  link->c = c;
  link->reader = reader;
  uv_tcp_init(c->loop, &link->tcp);
  link->tcp.data = link;
  link->creq.data = link;
  c->refs++;
  c->link = link;
  c->state = RS_CONNECTING;
  int rc = uv_tcp_connect(&link->creq, &link->tcp, sa, on_connect);
  if (rc < 0)
    conn_failed(c, KURA_ECONN, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  struct kr_resp_gai *gai = (struct kr_resp_gai *)req;
  kr_resp *c = gai->c;
  if (c->gai == gai) {
    c->gai = NULL;
    if (status < 0 || !res)
      conn_failed(c, KURA_ECONN, status < 0 ? uv_strerror(status) : "no address");
    else
      connect_addr(c, res->ai_addr);
  }
  if (res)
    uv_freeaddrinfo(res);
  free(gai);
  unref(c);
}

static void start_connect(kr_resp *c)
{
  struct sockaddr_storage ss;
  c->state = RS_RESOLVING;
  uv_timer_start(&c->retry, on_retry, c->opts.connect_timeout_ms, 0);
  if (uv_ip4_addr(c->opts.host, c->opts.port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(c->opts.host, c->opts.port, (struct sockaddr_in6 *)&ss) == 0) {
    connect_addr(c, (struct sockaddr *)&ss);
    return;
  }
  struct kr_resp_gai *gai = calloc(1, sizeof *gai);
  if (!gai) {
    conn_failed(c, KURA_ENOMEM, "out of memory");
    return;
  }
  char port[16];
  snprintf(port, sizeof port, "%d", c->opts.port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  gai->c = c;
  int rc = uv_getaddrinfo(c->loop, &gai->req, on_resolved, c->opts.host, port, &hints);
  if (rc < 0) {
    free(gai);
    conn_failed(c, KURA_ECONN, uv_strerror(rc));
    return;
  }
  c->gai = gai;
  c->refs++;
}

/* --- public --------------------------------------------------------------- */

static int copy_opts(kr_resp *c, const kr_resp_opts *o)
{
  size_t lh = strlen(o->host) + 1, lu = o->user ? strlen(o->user) + 1 : 0;
  size_t lp = o->password ? strlen(o->password) + 1 : 0;
  c->strs = malloc(lh + lu + lp);
  if (!c->strs)
    return KURA_ENOMEM;
  c->opts = *o;
  c->opts.host = memcpy(c->strs, o->host, lh);
  c->opts.user = o->user ? memcpy(c->strs + lh, o->user, lu) : NULL;
  c->opts.password = o->password ? memcpy(c->strs + lh + lu, o->password, lp) : NULL;
  if (!c->opts.connect_timeout_ms)
    c->opts.connect_timeout_ms = 1000;
  if (!c->opts.timeout_ms)
    c->opts.timeout_ms = 1000;
  if (!c->opts.backoff_min_ms)
    c->opts.backoff_min_ms = 50;
  if (c->opts.backoff_max_ms < c->opts.backoff_min_ms)
    c->opts.backoff_max_ms = c->opts.backoff_min_ms > 2000 ? c->opts.backoff_min_ms : 2000;
  return 0;
}

int kr_resp_open(uv_loop_t *loop, const kr_resp_opts *opts, kr_resp **out)
{
  if (!loop || !opts || !opts->host || !*opts->host || opts->port <= 0 || opts->port > 65535)
    return KURA_EINVAL;
  kr_resp *c = calloc(1, sizeof *c);
  if (!c)
    return KURA_ENOMEM;
  if (copy_opts(c, opts)) {
    free(c);
    return KURA_ENOMEM;
  }
  c->loop = loop;
  c->backoff = c->opts.backoff_min_ms;
  c->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)c) | 1;
  kr_resp_tune_init(&c->tune, uv_now(loop), 0);
  uv_idle_init(loop, &c->flush);
  uv_idle_init(loop, &c->more);
  uv_timer_init(loop, &c->timer);
  uv_timer_init(loop, &c->retry);
  c->flush.data = c->more.data = c->timer.data = c->retry.data = c;
  c->refs = 4;
  c->state = RS_IDLE;
  start_connect(c);
  *out = c;
  return 0;
}

int kr_resp_command(kr_resp *c, int argc, const char **argv, const size_t *argvlen,
                    uint64_t timeout_ms, kr_resp_cb cb, void *udata)
{
  if (c->state == RS_CLOSING)
    return KURA_ECANCELLED;
  if (argc <= 0 || !argv || !cb)
    return KURA_EINVAL;
  size_t n = out_command(c, argc, argv, argvlen);
  if (n == 0)
    return KURA_ENOMEM;
  uint64_t t = timeout_ms ? timeout_ms : c->opts.timeout_ms;
  /* The loop's time as it is: kr_client_submit has just refreshed it for the
   * calls of scripts (one clock read per call is enough); commands of our
   * own (scans, slot maps) come from callbacks, where it is fresh. */
  struct kr_resp_req r = {cb, udata, uv_now(c->loop) + t, n};
  int rc = fifo_push(&c->wait, &r);
  if (rc) {
    c->out_len -= n;
    return rc;
  }
  c->live++;
  c->stats.commands++;
  arm_timer(c, r.deadline);
  if (c->state == RS_READY && !uv_is_active((uv_handle_t *)&c->flush))
    uv_idle_start(&c->flush, on_flush);
  return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
  unref(h->data);
}

void kr_resp_close(kr_resp *c, kr_resp_close_cb cb, void *udata)
{
  if (c->state == RS_CLOSING)
    return;
  c->state = RS_CLOSING;
  c->close_cb = cb;
  c->close_udata = udata;
  drop_link(c);
  uv_close((uv_handle_t *)&c->flush, on_handle_closed);
  uv_close((uv_handle_t *)&c->more, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->retry, on_handle_closed);
  fail_sent(c, KURA_ECANCELLED);
  fail_wait(c, KURA_ECANCELLED);
}

int kr_resp_ready(const kr_resp *c)
{
  return c->state == RS_READY;
}

int kr_resp_unsent(const kr_resp *c)
{
  return c->cb_unsent;
}

size_t kr_resp_pending(const kr_resp *c)
{
  return c->live;
}

uint64_t kr_resp_batch(const kr_resp *c)
{
  return c->batch;
}
