/* Tests of the asynchronous RESP connection (src/core/net/resp.c) against a real
 * redis-server that each test starts on a free loopback port, plus a silent
 * TCP server in the test itself for the deadline cases. */
#include "core/net/resp.h"
#include "kura_client.h"
#include "ktest.h"
#include "redis_server.h"

static void on_closed(kr_resp *c, void *udata)
{
  *(int *)udata = 1;
}

/* Close c and check that every handle went away (nothing leaks). */
static int close_and_drain(uv_loop_t *loop, kr_resp *c)
{
  int closed = 0;
  kr_resp_close(c, on_closed, &closed);
  uv_run(loop, UV_RUN_DEFAULT);
  return closed && uv_loop_close(loop) == 0;
}

static kr_resp *open_conn(uv_loop_t *loop, int port, const char *password, int db)
{
  kr_resp_opts o = {.host = "127.0.0.1", .port = port, .password = password, .db = db};
  kr_resp *c = NULL;
  return kr_resp_open(loop, &o, &c) == 0 ? c : NULL;
}

/* One command's outcome, copied out of the callback. */
struct result {
  int done, status, type;
  int unsent; /* kr_resp_unsent during the callback */
  long long integer;
  size_t len;
  char str[512];
};

static void on_result(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  struct result *r = udata;
  r->done = 1;
  r->status = status;
  r->unsent = status < 0 && kr_resp_unsent(c);
  if (reply) {
    r->type = reply->type;
    r->integer = reply->integer;
    r->len = reply->len;
    if (reply->str && reply->len < sizeof r->str)
      memcpy(r->str, reply->str, reply->len);
  }
}

/* Run one command to completion. */
static int cmd(uv_loop_t *loop, kr_resp *c, struct result *r, int argc, const char **argv,
               const size_t *lens)
{
  memset(r, 0, sizeof *r);
  if (kr_resp_command(c, argc, argv, lens, 0, on_result, r))
    return -1;
  return run_until(loop, &r->done);
}

#define CMD(r, ...)                                                           \
  do {                                                                        \
    const char *a_[] = {__VA_ARGS__};                                         \
    KCHECK(cmd(loop, c, (r), (int)(sizeof a_ / sizeof a_[0]), a_, NULL) == 0); \
  } while (0)

/* --- tests ------------------------------------------------------------------ */

static void roundtrip(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  kr_resp *c = open_conn(loop, s->port, NULL, 0);
  KCHECK(c != NULL);
  char value[300];
  for (int i = 0; i < 300; i++)
    value[i] = (char)(i * 7 + 13); /* every byte, \0 \r \n included */
  const char *set[] = {"SET", "bin\0key", value};
  size_t setl[] = {3, 7, sizeof value};
  struct result r;
  KCHECK(cmd(loop, c, &r, 3, set, setl) == 0);
  KCHECK_EQ(r.status, 0);
  KCHECK_EQ(r.type, REDIS_REPLY_STATUS);
  const char *get[] = {"GET", "bin\0key"};
  size_t getl[] = {3, 7};
  KCHECK(cmd(loop, c, &r, 2, get, getl) == 0);
  KCHECK_EQ(r.type, REDIS_REPLY_STRING);
  KCHECK_EQ(r.len, sizeof value);
  KCHECK(memcmp(r.str, value, sizeof value) == 0);
  CMD(&r, "GET", "missing");
  KCHECK_EQ(r.type, REDIS_REPLY_NIL);
  CMD(&r, "INCRBY", "bin");  /* wrong arity: an error reply, not a failure */
  KCHECK_EQ(r.status, 0);
  KCHECK_EQ(r.type, REDIS_REPLY_ERROR);
  KCHECK(strncmp(r.str, "ERR", 3) == 0);
  KCHECK_EQ(kr_resp_pending(c), 0);
  KCHECK(close_and_drain(loop, c));
}

KTEST(set_get_binary)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  roundtrip(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

/* Replies of every shape parsed from one read: scalars (which resp.c keeps
 * in a slot of the link, released after each dispatch), long strings and
 * arrays (hiredis's objects), one after the other. */
struct shape {
  int done, bad;
  struct result r[8];
};

static void on_shape(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  struct shape *sh = c->data;
  struct result *r = udata;
  on_result(c, status, reply, r);
  if (reply && reply->type == REDIS_REPLY_ARRAY) /* [string, nil] */
    sh->bad |= reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
               strcmp(reply->element[0]->str, "short") != 0 ||
               reply->element[1]->type != REDIS_REPLY_NIL;
  sh->done = r == &sh->r[7];
}

static void shapes(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  kr_resp *c = open_conn(loop, s->port, NULL, 0);
  KCHECK(c != NULL);
  struct result r;
  CMD(&r, "SET", "s", "short");
  char longv[300];
  memset(longv, 'x', sizeof longv);
  longv[sizeof longv - 1] = 0;
  struct shape sh = {0};
  c->data = &sh;
  const char *argv[8][3] = {{"INCR", "n"}, {"GET", "s"}, {"ECHO", longv}, {"MGET", "s", "nope"},
                            {"GET", "nope"}, {"INCRBY", "n"}, {"PING"}, {"GET", "s"}};
  int argc[8] = {2, 2, 2, 3, 2, 2, 1, 2};
  for (int i = 0; i < 8; i++)
    KCHECK(kr_resp_command(c, argc[i], argv[i], NULL, 0, on_shape, &sh.r[i]) == 0);
  KCHECK(run_until(loop, &sh.done) == 0);
  KCHECK(!sh.bad);
  KCHECK(sh.r[0].type == REDIS_REPLY_INTEGER && sh.r[0].integer == 1);
  KCHECK(sh.r[1].type == REDIS_REPLY_STRING && strcmp(sh.r[1].str, "short") == 0);
  KCHECK(sh.r[2].type == REDIS_REPLY_STRING && strcmp(sh.r[2].str, longv) == 0);
  KCHECK(sh.r[3].type == REDIS_REPLY_ARRAY);
  KCHECK_EQ(sh.r[4].type, REDIS_REPLY_NIL);
  KCHECK(sh.r[5].type == REDIS_REPLY_ERROR && strncmp(sh.r[5].str, "ERR", 3) == 0);
  KCHECK(sh.r[6].type == REDIS_REPLY_STATUS && strcmp(sh.r[6].str, "PONG") == 0);
  KCHECK(sh.r[7].type == REDIS_REPLY_STRING && sh.r[7].len == 5);
  KCHECK(close_and_drain(loop, c));
}

KTEST(replies_of_every_shape)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  shapes(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

/* 10,000 ECHOs submitted in one turn: one write, replies in order. */
struct echo_state {
  int next, bad, done;
};

static void on_echo(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  struct echo_state *e = (struct echo_state *)c->data;
  char want[32];
  snprintf(want, sizeof want, "v%d", e->next++);
  if (status || reply->type != REDIS_REPLY_STRING || strcmp(reply->str, want) != 0 ||
      (intptr_t)udata != e->next - 1)
    e->bad++;
  if (e->next == 10000)
    e->done = 1;
}

static void pipeline(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  kr_resp *c = open_conn(loop, s->port, NULL, 0);
  KCHECK(c != NULL);
  struct result r;
  CMD(&r, "PING");
  KCHECK(kr_resp_ready(c));
  uint64_t writes = c->stats.writes;
  struct echo_state e = {0};
  c->data = &e;
  for (int i = 0; i < 10000; i++) {
    char v[32];
    snprintf(v, sizeof v, "v%d", i);
    const char *a[] = {"ECHO", v};
    KCHECK(kr_resp_command(c, 2, a, NULL, 5000, on_echo, (void *)(intptr_t)i) == 0);
  }
  KCHECK_EQ(kr_resp_pending(c), 10000);
  KCHECK(run_until(loop, &e.done) == 0);
  KCHECK_EQ(e.bad, 0);
  KCHECK_EQ(c->stats.writes - writes, 1);
  KCHECK_EQ(kr_resp_pending(c), 0);
  KCHECK(close_and_drain(loop, c));
}

KTEST(pipeline_10k_one_write)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  pipeline(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

/* Replies are handed out at most REPLY_BUDGET per loop turn, the rest from
 * the reader on the next turns. Closing from a reply callback, in the second
 * turn, while 100 read replies still wait there cancels those (none arrives as a reply), and every
 * handle closes (uv_loop_close succeeds). */
struct budget_state {
  int replies, cancelled, bad, done, deferred;
};

static void on_budget(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  struct budget_state *b = (struct budget_state *)c->data;
  (void)udata;
  if (status == KURA_ECANCELLED) {
    b->cancelled++;
  } else if (status == 0 && reply->type == REDIS_REPLY_STRING) {
    if (++b->replies == 140) {
      b->deferred = uv_is_active((uv_handle_t *)&c->more); /* a later turn's */
      kr_resp_close(c, NULL, NULL);
    }
  } else {
    b->bad++;
  }
  b->done = b->replies + b->cancelled + b->bad == 240;
}

static void budget_close(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  kr_resp *c = open_conn(loop, s->port, NULL, 0);
  KCHECK(c != NULL);
  struct result r;
  CMD(&r, "PING");
  struct budget_state b = {0};
  c->data = &b;
  for (int i = 0; i < 240; i++) {
    const char *a[] = {"ECHO", "x"};
    KCHECK(kr_resp_command(c, 2, a, NULL, 5000, on_budget, NULL) == 0);
  }
  KCHECK(run_until(loop, &b.done) == 0);
  KCHECK_EQ(b.replies, 140);
  KCHECK_EQ(b.deferred, 1);
  KCHECK_EQ(b.cancelled, 100);
  KCHECK_EQ(b.bad, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  KCHECK(uv_loop_close(loop) == 0);
}

KTEST(close_with_replies_waiting_for_the_next_turn)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  budget_close(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

/* A server in the test: accepts, reads nothing back, replies only when told. */
struct silent {
  uv_tcp_t listener, peer;
  int accepted;
  uv_write_t wr;
};

static void on_silent_conn(uv_stream_t *l, int status)
{
  struct silent *s = l->data;
  if (status < 0 || s->accepted)
    return;
  uv_tcp_init(l->loop, &s->peer);
  if (uv_accept(l, (uv_stream_t *)&s->peer) == 0)
    s->accepted = 1;
}

static int silent_start(uv_loop_t *loop, struct silent *s)
{
  struct sockaddr_in a;
  struct sockaddr_storage ss;
  int len = sizeof ss;
  memset(s, 0, sizeof *s);
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_init(loop, &s->listener);
  s->listener.data = s;
  if (uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0) ||
      uv_listen((uv_stream_t *)&s->listener, 8, on_silent_conn) ||
      uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len))
    return -1;
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void silent_stop(struct silent *s)
{
  uv_close((uv_handle_t *)&s->listener, NULL);
  if (s->accepted)
    uv_close((uv_handle_t *)&s->peer, NULL);
}

static void deadline(int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  struct silent srv;
  int port = silent_start(loop, &srv);
  KCHECK(port > 0);
  kr_resp *c = open_conn(loop, port, NULL, 0);
  KCHECK(c != NULL);
  struct result late, second;
  memset(&late, 0, sizeof late);
  memset(&second, 0, sizeof second);
  const char *ping[] = {"PING"};
  uint64_t t0 = uv_now(loop);
  KCHECK(kr_resp_command(c, 1, ping, NULL, 200, on_result, &late) == 0);
  KCHECK(run_until(loop, &late.done) == 0);
  KCHECK_EQ(late.status, KURA_ETIMEOUT);
  KCHECK_EQ(late.unsent, 0); /* written, then no answer: it may have run */
  KCHECK(uv_now(loop) - t0 >= 200);
  KCHECK_EQ(c->stats.timeouts, 1);
  KCHECK(srv.accepted);
  /* The late reply to the first PING must not be taken for the second's. */
  KCHECK(kr_resp_command(c, 1, ping, NULL, 5000, on_result, &second) == 0);
  uv_run(loop, UV_RUN_NOWAIT);
  uv_buf_t b = uv_buf_init("+LATE\r\n+SECOND\r\n", 16);
  KCHECK(uv_write(&srv.wr, (uv_stream_t *)&srv.peer, &b, 1, NULL) == 0);
  KCHECK(run_until(loop, &second.done) == 0);
  KCHECK_EQ(second.status, 0);
  KCHECK(strcmp(second.str, "SECOND") == 0);
  silent_stop(&srv);
  KCHECK(close_and_drain(loop, c));
}

KTEST(deadline_silent_server)
{
  deadline(ktest_failed_);
}

/* A batch the socket does not take whole: the silent server reads nothing
 * until both batches are flushed, so the first (a 24 MB value) goes out in
 * part at once and the rest through a queued write; the second batch, and
 * the one after it, must follow it byte for byte. */
struct sink {
  char *buf;
  size_t len, cap;
};

static void sink_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
  struct sink *k = h->data;
  if (k->cap - k->len < 65536) {
    k->cap = k->cap ? k->cap * 2 : 1 << 20;
    k->buf = realloc(k->buf, k->cap);
  }
  *b = uv_buf_init(k->buf + k->len, (unsigned)(k->cap - k->len));
  (void)hint;
}

static void sink_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
  struct sink *k = s->data;
  if (n > 0)
    k->len += (size_t)n;
  (void)b;
}

/* The RESP form of a command, appended to `want` (what the server must see). */
static void expect_cmd(struct sink *want, int argc, const char **argv, const size_t *lens)
{
  size_t need = 32;
  for (int i = 0; i < argc; i++)
    need += lens[i] + 32;
  if (want->cap - want->len < need) {
    want->cap = want->len + need;
    want->buf = realloc(want->buf, want->cap);
  }
  want->len += (size_t)sprintf(want->buf + want->len, "*%d\r\n", argc);
  for (int i = 0; i < argc; i++) {
    want->len += (size_t)sprintf(want->buf + want->len, "$%zu\r\n", lens[i]);
    memcpy(want->buf + want->len, argv[i], lens[i]);
    want->len += lens[i];
    memcpy(want->buf + want->len, "\r\n", 2);
    want->len += 2;
  }
}

static void on_ignore(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  (void)c, (void)status, (void)reply, (void)udata;
}

static int send_expect(kr_resp *c, struct sink *want, int argc, const char **argv,
                       const size_t *lens)
{
  expect_cmd(want, argc, argv, lens);
  return kr_resp_command(c, argc, argv, lens, 60000, on_ignore, NULL);
}

/* A connection to a silent server, once both ends are up (NULL when the
 * server or the connection cannot start). */
static kr_resp *open_to_silent(uv_loop_t *loop, struct silent *srv)
{
  int port = silent_start(loop, srv);
  kr_resp *c = port > 0 ? open_conn(loop, port, NULL, 0) : NULL;
  for (int i = 0; c && i < 2000 && !(kr_resp_ready(c) && srv->accepted); i++)
    uv_run(loop, UV_RUN_ONCE);
  return c;
}

static void big_batch(int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  struct silent srv;
  kr_resp *c = open_to_silent(loop, &srv);
  KCHECK(c && kr_resp_ready(c) && srv.accepted);
  size_t big = 24u << 20;
  char *value = malloc(big);
  KCHECK(value != NULL);
  for (size_t i = 0; i < big; i++)
    value[i] = (char)(i * 131 + (i >> 16));
  struct sink want = {0}, got = {0};
  const char *set[] = {"SET", "big", value}, *echo[] = {"ECHO", "after"};
  size_t setl[] = {3, 3, big}, echol[] = {4, 5};
  KCHECK(send_expect(c, &want, 3, set, setl) == 0);
  KCHECK(send_expect(c, &want, 2, echo, echol) == 0);
  uint64_t writes = c->stats.writes;
  uv_run(loop, UV_RUN_NOWAIT); /* flushed: the kernel takes a part only */
  KCHECK_EQ(c->stats.writes - writes, 1);
  const char *echo2[] = {"ECHO", "second batch"}, *set2[] = {"SET", "k", value};
  size_t echo2l[] = {4, 12}, set2l[] = {3, 1, 1000};
  KCHECK(send_expect(c, &want, 2, echo2, echo2l) == 0);
  KCHECK(send_expect(c, &want, 3, set2, set2l) == 0);
  uv_run(loop, UV_RUN_NOWAIT); /* behind the queued rest of the first */
  KCHECK_EQ(c->stats.writes - writes, 2);
  KCHECK(send_expect(c, &want, 2, echo, echol) == 0);
  srv.peer.data = &got;
  KCHECK(uv_read_start((uv_stream_t *)&srv.peer, sink_alloc, sink_read) == 0);
  for (int i = 0; i < 200000 && got.len < want.len; i++)
    uv_run(loop, UV_RUN_ONCE);
  KCHECK_EQ(got.len, want.len);
  KCHECK(got.len == want.len && memcmp(got.buf, want.buf, want.len) == 0);
  silent_stop(&srv);
  KCHECK(close_and_drain(loop, c));
  free(value);
  free(want.buf);
  free(got.buf);
}

KTEST(batch_larger_than_the_socket_takes)
{
  big_batch(ktest_failed_);
}

/* A write the server's reset refuses: the command fails with KURA_ECONN and
 * the connection's error says why in the system's words, as a failed
 * queued write does (not a bare "write failed"). */
static void write_refused(int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  struct silent srv;
  kr_resp *c = open_to_silent(loop, &srv);
  KCHECK(c && kr_resp_ready(c) && srv.accepted);
  KCHECK(uv_tcp_close_reset(&srv.peer, NULL) == 0); /* RST now, before the flush */
  srv.accepted = 0;
  struct result r;
  memset(&r, 0, sizeof r);
  const char *ping[] = {"PING"};
  KCHECK(kr_resp_command(c, 1, ping, NULL, 5000, on_result, &r) == 0);
  KCHECK(run_until(loop, &r.done) == 0);
  KCHECK_EQ(r.status, KURA_ECONN);
  KCHECK(strstr(c->errstr, "write failed") == NULL);
  KCHECK(strstr(c->errstr, uv_strerror(UV_ECONNRESET)) != NULL ||
         strstr(c->errstr, uv_strerror(UV_EPIPE)) != NULL);
  silent_stop(&srv);
  KCHECK(close_and_drain(loop, c));
}

KTEST(write_refused_by_a_reset_says_why)
{
  write_refused(ktest_failed_);
}

/* Closing fails everything pending with KURA_ECANCELLED, also from inside a
 * callback, and refuses new commands. */
struct closer {
  int done, timedout, cancelled, others;
};

static void on_cancel(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  struct closer *k = udata;
  if (status == KURA_ECANCELLED)
    k->cancelled++;
  else
    k->others++;
  if (k->timedout + k->cancelled + k->others == 5)
    k->done = 1;
}

static void on_close_here(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  kr_resp_close(c, NULL, NULL);
  const char *ping[] = {"PING"};
  if (kr_resp_command(c, 1, ping, NULL, 0, on_cancel, udata) != KURA_ECANCELLED)
    ((struct closer *)udata)->others += 100;
  struct closer *k = udata;
  k->timedout += status == KURA_ETIMEOUT;
  k->others += status != KURA_ETIMEOUT;
  k->done = k->timedout + k->cancelled + k->others == 5;
}

static void close_pending(int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  struct silent srv;
  int port = silent_start(loop, &srv);
  KCHECK(port > 0);
  kr_resp *c = open_conn(loop, port, NULL, 0);
  KCHECK(c != NULL);
  struct closer k = {0};
  const char *ping[] = {"PING"};
  KCHECK(kr_resp_command(c, 1, ping, NULL, 100, on_close_here, &k) == 0);
  for (int i = 0; i < 4; i++)
    KCHECK(kr_resp_command(c, 1, ping, NULL, 10000, on_cancel, &k) == 0);
  KCHECK(run_until(loop, &k.done) == 0);
  KCHECK_EQ(k.timedout, 1);
  KCHECK_EQ(k.cancelled, 4);
  KCHECK_EQ(k.others, 0);
  silent_stop(&srv);
  uv_run(loop, UV_RUN_DEFAULT);
  KCHECK(uv_loop_close(loop) == 0);
}

KTEST(close_fails_pending)
{
  close_pending(ktest_failed_);
}

/* Load from 50 chains of commands; the server is killed mid-way. */
struct load {
  struct server *srv;
  int replies, econn, etimeout, eother, active, killed, finished;
  int econn_written; /* lost with the connection after they were written */
  size_t inflight_at_kill;
};

static void on_load(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  struct load *l = c->data;
  if (status) {
    l->econn += status == KURA_ECONN;
    l->econn_written += status == KURA_ECONN && !kr_resp_unsent(c);
    l->etimeout += status == KURA_ETIMEOUT;
    l->eother += status != KURA_ECONN && status != KURA_ETIMEOUT;
    l->finished = --l->active == 0;
    return;
  }
  l->replies++;
  const char *a[] = {"INCR", "load"};
  if (kr_resp_command(c, 2, a, NULL, 2000, on_load, NULL) != 0)
    l->finished = --l->active == 0;
  if (l->replies >= 3000 && !l->killed && c->sent.n > 0) {
    l->inflight_at_kill = c->sent.n;
    server_stop(l->srv, SIGKILL);
    l->killed = 1;
  }
}

static void killed(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  kr_resp *c = open_conn(loop, s->port, NULL, 0);
  KCHECK(c != NULL);
  struct load l = {.srv = s};
  c->data = &l;
  const char *a[] = {"INCR", "load"};
  for (int i = 0; i < 50; i++, l.active++)
    KCHECK(kr_resp_command(c, 2, a, NULL, 2000, on_load, NULL) == 0);
  KCHECK(run_until(loop, &l.finished) == 0);
  KCHECK(l.killed);
  KCHECK(l.inflight_at_kill > 0);
  KCHECK(l.econn >= 1);
  KCHECK(l.econn_written >= 1); /* they may have run: not "unsent" */
  KCHECK_EQ(l.eother, 0);
  KCHECK_EQ(l.econn + l.etimeout, 50);
  KCHECK_EQ(kr_resp_pending(c), 0);
  /* Same port, same connection object: commands succeed again. */
  KCHECK(server_start(s, NULL) == 0);
  struct result r;
  int ok = 0;
  for (int i = 0; i < 100 && !ok; i++) {
    CMD(&r, "PING");
    ok = r.status == 0 && r.type == REDIS_REPLY_STATUS;
    KCHECK(ok || r.status == KURA_ECONN || r.status == KURA_ETIMEOUT);
  }
  KCHECK(ok);
  KCHECK_EQ(c->stats.connects, 2);
  KCHECK(close_and_drain(loop, c));
}

KTEST(server_killed_then_restarted)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  killed(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

static void auth(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  struct result r;
  kr_resp *c = open_conn(loop, s->port, "wrong", 0);
  KCHECK(c != NULL);
  CMD(&r, "PING");
  KCHECK_EQ(r.status, KURA_EAUTH);
  KCHECK_EQ(c->err, KURA_EAUTH);
  KCHECK(close_and_drain(loop, c));

  uv_loop_init(loop);
  c = open_conn(loop, s->port, NULL, 0);
  CMD(&r, "PING");  /* no password: the server's NOAUTH error reply */
  KCHECK_EQ(r.status, 0);
  KCHECK_EQ(r.type, REDIS_REPLY_ERROR);
  KCHECK(strncmp(r.str, "NOAUTH", 6) == 0);
  KCHECK(close_and_drain(loop, c));

  uv_loop_init(loop);
  c = open_conn(loop, s->port, "s3cret", 0);
  CMD(&r, "PING");
  KCHECK_EQ(r.status, 0);
  KCHECK_EQ(r.type, REDIS_REPLY_STATUS);
  KCHECK(close_and_drain(loop, c));

  uv_loop_init(loop);  /* user + password: AUTH default s3cret */
  kr_resp_opts o = {.host = "localhost", .port = s->port, .user = "default",
                    .password = "s3cret"};
  KCHECK(kr_resp_open(loop, &o, &c) == 0);
  CMD(&r, "PING");
  KCHECK_EQ(r.status, 0);
  KCHECK_EQ(r.type, REDIS_REPLY_STATUS);
  KCHECK(close_and_drain(loop, c));
}

KTEST(auth_wrong_password)
{
  struct server s = {0};
  KCHECK(server_start(&s, "s3cret") == 0);
  auth(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

static void select_db(struct server *s, int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  struct result r;
  kr_resp *c = open_conn(loop, s->port, NULL, 3);
  KCHECK(c != NULL);
  CMD(&r, "SET", "where", "db3");
  KCHECK_EQ(r.type, REDIS_REPLY_STATUS);
  KCHECK(close_and_drain(loop, c));

  uv_loop_init(loop);
  c = open_conn(loop, s->port, NULL, 0);
  CMD(&r, "GET", "where");
  KCHECK_EQ(r.type, REDIS_REPLY_NIL);
  CMD(&r, "SELECT", "3");
  CMD(&r, "GET", "where");
  KCHECK(strcmp(r.str, "db3") == 0);
  KCHECK(close_and_drain(loop, c));

  uv_loop_init(loop);
  c = open_conn(loop, s->port, NULL, 99);  /* out of range: refused */
  CMD(&r, "PING");
  KCHECK_EQ(r.status, KURA_EINVAL);
  KCHECK(close_and_drain(loop, c));
}

KTEST(select_db)
{
  struct server s = {0};
  KCHECK(server_start(&s, NULL) == 0);
  select_db(&s, ktest_failed_);
  server_stop(&s, SIGTERM);
}

static void refused(int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  uv_loop_init(loop);
  int port = free_port();
  KCHECK(port > 0);
  kr_resp *c = open_conn(loop, port, NULL, 0);
  KCHECK(c != NULL);
  struct result r;
  CMD(&r, "PING");
  KCHECK_EQ(r.status, KURA_ECONN);
  KCHECK_EQ(r.unsent, 1); /* never written: it cannot have run */
  KCHECK(!kr_resp_ready(c));
  KCHECK(close_and_drain(loop, c));
}

KTEST(connection_refused)
{
  refused(ktest_failed_);
}

/* Small arrays are made in a slot of the link (resp.c, arr_new) with their
 * scalar elements while these fit, the rest by hiredis: every shape must come
 * out whole, whichever made it, also when an array arrives split over writes
 * and when one follows another in the same read (the slot reused). */
struct deep {
  int done;
  char text[8][1200];
};

static void describe(const redisReply *r, char *out, size_t cap)
{
  size_t n = strlen(out);
  if (r->type == REDIS_REPLY_ARRAY) {
    snprintf(out + n, cap - n, "[");
    for (size_t i = 0; i < r->elements; i++) {
      describe(r->element[i], out, cap);
      n = strlen(out);
      snprintf(out + n, cap - n, i + 1 < r->elements ? "," : "");
    }
    n = strlen(out);
    snprintf(out + n, cap - n, "]");
  } else if (r->type == REDIS_REPLY_INTEGER) {
    snprintf(out + n, cap - n, "%lld", r->integer);
  } else if (r->type == REDIS_REPLY_NIL) {
    snprintf(out + n, cap - n, "nil");
  } else {
    snprintf(out + n, cap - n, "%c%zu:%s", r->type == REDIS_REPLY_STATUS ? '+' : '$', r->len,
             r->len > 8 ? "long" : r->str);
  }
}

static void on_deep(kr_resp *c, int status, const redisReply *reply, void *udata)
{
  struct deep *d = c->data;
  char *t = udata;
  if (status || !reply)
    snprintf(t, sizeof d->text[0], "status %d", status);
  else
    describe(reply, t, sizeof d->text[0]);
  d->done += t == d->text[7];
}

/* "$LEN\r\n" then LEN copies of ch then "\r\n", appended at p. */
static char *put_bulk(char *p, size_t len, char ch)
{
  p += sprintf(p, "$%zu\r\n", len);
  memset(p, ch, len);
  p += len;
  return p + sprintf(p, "\r\n");
}

/* A connection to a silent server of the test (srv), or NULL. */
static kr_resp *silent_conn(uv_loop_t *loop, struct silent *srv)
{
  uv_loop_init(loop);
  int port = silent_start(loop, srv);
  return port > 0 ? open_conn(loop, port, NULL, 0) : NULL;
}

static void small_arrays(int *ktest_failed_)
{
  uv_loop_t lp, *loop = &lp;
  struct silent srv;
  kr_resp *c = silent_conn(loop, &srv);
  KCHECK(c != NULL);
  static struct deep d;
  memset(&d, 0, sizeof d);
  c->data = &d;
  const char *ping[] = {"PING"};
  for (int i = 0; i < 8; i++)
    KCHECK(kr_resp_command(c, 1, ping, NULL, 5000, on_deep, d.text[i]) == 0);
  while (!srv.accepted)
    uv_run(loop, UV_RUN_ONCE);
  static char out[4096];
  char *p = out;
  p += sprintf(p, "*2\r\n$5\r\nshort\r\n$-1\r\n");              /* MGET's pair */
  p += sprintf(p, "*4\r\n$3\r\nabc\r\n:42\r\n$-1\r\n+OK\r\n");  /* four kinds */
  p += sprintf(p, "*3\r\n");                                 /* the 2nd string does not fit */
  p = put_bulk(put_bulk(p, 300, 'a'), 300, 'b');
  p += sprintf(p, "$2\r\nzz\r\n");
  p += sprintf(p, "*2\r\n*2\r\n:1\r\n:2\r\n$1\r\nx\r\n");      /* nested */
  p += sprintf(p, "*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n");      /* too many for the slot */
  p += sprintf(p, "*0\r\n*-1\r\n*2\r\n");                    /* empty, nil, then split: */
  p = put_bulk(p, 700, 'c');
  size_t cut = (size_t)(p - out) - 400;
  p += sprintf(p, ":7\r\n");
  uv_buf_t b[2] = {uv_buf_init(out, (unsigned)cut), uv_buf_init(out + cut, (unsigned)(p - out - cut))};
  uv_write_t w2;
  KCHECK(uv_write(&srv.wr, (uv_stream_t *)&srv.peer, &b[0], 1, NULL) == 0);
  while (!d.text[6][0])
    uv_run(loop, UV_RUN_ONCE);
  KCHECK(uv_write(&w2, (uv_stream_t *)&srv.peer, &b[1], 1, NULL) == 0);
  KCHECK(run_until(loop, &d.done) == 0);
  const char *want[8] = {"[$5:short,nil]", "[$3:abc,42,nil,+2:OK]", "[$300:long,$300:long,$2:zz]",
                         "[[1,2],$1:x]", "[1,2,3,4,5]", "[]", "nil", "[$700:long,7]"};
  for (int i = 0; i < 8; i++) {
    if (strcmp(d.text[i], want[i]) != 0)
      fprintf(stderr, "reply %d: got %s, want %s\n", i, d.text[i], want[i]);
    KCHECK(strcmp(d.text[i], want[i]) == 0);
  }
  silent_stop(&srv);
  KCHECK(close_and_drain(loop, c));
}

KTEST(small_arrays_made_in_place)
{
  small_arrays(ktest_failed_);
}

/* An array cut short, by the connection's end or by a protocol error, is
 * freed by the reader itself: with its first element made by hiredis (too
 * long for the slot) nothing may leak (LeakSanitizer in the sanitized
 * build), the command fails with KURA_ECONN, the next one gets a new link. */
static void broken_arrays(int *ktest_failed_, int protocol_error)
{
  uv_loop_t lp, *loop = &lp;
  struct silent srv;
  kr_resp *c = silent_conn(loop, &srv);
  KCHECK(c != NULL);
  struct result r;
  memset(&r, 0, sizeof r);
  const char *ping[] = {"PING"};
  KCHECK(kr_resp_command(c, 1, ping, NULL, 5000, on_result, &r) == 0);
  while (!srv.accepted)
    uv_run(loop, UV_RUN_ONCE);
  static char out[2048];
  char *p = out + sprintf(out, "*3\r\n");
  p = put_bulk(put_bulk(p, 600, 'a'), 2, 'b');
  if (protocol_error)
    p += sprintf(p, "!x\r\n");
  uv_buf_t b = uv_buf_init(out, (unsigned)(p - out));
  KCHECK(uv_write(&srv.wr, (uv_stream_t *)&srv.peer, &b, 1, NULL) == 0);
  if (!protocol_error) {
    uv_run(loop, UV_RUN_NOWAIT);
    uv_close((uv_handle_t *)&srv.peer, NULL);
    srv.accepted = 0;
  }
  KCHECK(run_until(loop, &r.done) == 0);
  KCHECK_EQ(r.status, KURA_ECONN);
  silent_stop(&srv);
  KCHECK(close_and_drain(loop, c));
}

KTEST(array_cut_by_the_end_of_the_connection)
{
  broken_arrays(ktest_failed_, 0);
}

KTEST(array_cut_by_a_protocol_error)
{
  broken_arrays(ktest_failed_, 1);
}


/* --- the reply budget's tuner (resp_tune.h), driven by a made-up server ---
 * One turn per ms; a turn hands out min(budget, in_flight) replies and the
 * connection completes rate(budget) replies per ms. */
struct sim {
  kr_resp_tune t;
  uint64_t now, replies;
  unsigned in_flight;           /* replies a read brings: > 16 contests the budget */
  uint64_t at_small, at_large;  /* ms spent on each budget */
  unsigned bad;                 /* turns with any other budget */
};

static void sim_run(struct sim *m, uint64_t ms, double small_rate, double large_rate)
{
  for (uint64_t i = 0; i < ms; i++) {
    uint32_t b = m->t.budget;
    m->bad += b != KR_TUNE_SMALL && b != KR_TUNE_LARGE;
    m->now++;
    m->replies += (uint64_t)(b == KR_TUNE_SMALL ? small_rate : large_rate);
    *(b == KR_TUNE_SMALL ? &m->at_small : &m->at_large) += 1;
    unsigned handed = m->in_flight < b ? m->in_flight : b;
    kr_resp_tune_turn(&m->t, m->now, m->replies, handed, m->in_flight > b);
  }
}

static void sim_init(struct sim *m, unsigned in_flight)
{
  memset(m, 0, sizeof *m);
  m->now = 1000;
  m->in_flight = in_flight;
  kr_resp_tune_init(&m->t, m->now, 0);
}

KTEST(tune_takes_the_small_budget_where_it_is_faster)
{
  struct sim m;
  sim_init(&m, 50);
  KCHECK_EQ(m.t.budget, KR_TUNE_LARGE); /* what a busy machine wants, until measured */
  sim_run(&m, 10000, 400, 200);         /* an idle machine: 16 twice as fast */
  KCHECK_EQ(m.t.chosen, KR_TUNE_SMALL);
  KCHECK_EQ(m.t.switches, 1);           /* the probes of 128 lost: no flapping */
  KCHECK(m.at_small > 9 * m.at_large);  /* probing cost: under a tenth of the time */
  KCHECK(m.t.windows == KR_TUNE_MAX_WINDOWS); /* a settled choice probes rarely */
  KCHECK_EQ(m.bad, 0);
}

KTEST(tune_keeps_the_large_budget_where_it_is_faster)
{
  struct sim m;
  sim_init(&m, 50);
  sim_run(&m, 10000, 100, 140); /* a busy machine: 128 1.4x faster */
  KCHECK_EQ(m.t.chosen, KR_TUNE_LARGE);
  KCHECK_EQ(m.t.switches, 0);
  KCHECK(m.at_large > 20 * m.at_small);
}

KTEST(tune_ignores_differences_within_its_margin)
{
  struct sim m;
  sim_init(&m, 50);
  sim_run(&m, 10000, 210, 200); /* 5%: noise, not a reason to switch */
  KCHECK_EQ(m.t.chosen, KR_TUNE_LARGE);
  KCHECK_EQ(m.t.switches, 0);
}

KTEST(tune_follows_the_machine_when_it_changes)
{
  struct sim m;
  sim_init(&m, 50);
  sim_run(&m, 5000, 400, 200);
  KCHECK_EQ(m.t.chosen, KR_TUNE_SMALL);
  /* The machine gets busy: within one longest cycle (and its probe) the
   * large budget is back. */
  sim_run(&m, (KR_TUNE_MAX_WINDOWS + 2) * KR_TUNE_WINDOW_MS, 100, 140);
  KCHECK_EQ(m.t.chosen, KR_TUNE_LARGE);
  KCHECK_EQ(m.t.switches, 2);
  sim_run(&m, (KR_TUNE_MAX_WINDOWS + 2) * KR_TUNE_WINDOW_MS, 400, 200);
  KCHECK_EQ(m.t.chosen, KR_TUNE_SMALL);
}

KTEST(tune_leaves_uncontested_or_light_traffic_alone)
{
  /* Reads of up to 16 replies: the budget never binds, so nothing is
   * measured and nothing probed, even if the rates differ. */
  struct sim m;
  sim_init(&m, 16);
  sim_run(&m, 10000, 400, 200);
  KCHECK_EQ(m.at_small, 0);
  KCHECK_EQ(m.t.switches, 0);
  /* A trickle (one reply per ms < KR_TUNE_MIN_REPLIES per window). */
  sim_init(&m, 50);
  sim_run(&m, 10000, 1, 0);
  KCHECK_EQ(m.t.switches, 0);
  KCHECK_EQ(m.at_small, 0);
}

KTEST(tune_decides_nothing_across_a_stall)
{
  struct sim m;
  sim_init(&m, 50);
  sim_run(&m, 3 * KR_TUNE_WINDOW_MS, 400, 200); /* up to the probe */
  KCHECK_EQ(m.t.budget, KR_TUNE_SMALL);
  /* The loop stalls for a second: the window that spans it measures a
   * rate of nothing in particular, and the cycle starts again. */
  m.now += 1000;
  m.replies += 10;
  kr_resp_tune_turn(&m.t, m.now, m.replies, 50, 1);
  KCHECK_EQ(m.t.budget, KR_TUNE_LARGE);
  KCHECK_EQ(m.t.window, 0);
  KCHECK_EQ(m.t.switches, 0);
}

KTEST_MAIN(KENTRY(set_get_binary), KENTRY(replies_of_every_shape), KENTRY(pipeline_10k_one_write),
           KENTRY(close_with_replies_waiting_for_the_next_turn),
           KENTRY(deadline_silent_server), KENTRY(batch_larger_than_the_socket_takes),
           KENTRY(write_refused_by_a_reset_says_why),
           KENTRY(close_fails_pending),
           KENTRY(server_killed_then_restarted), KENTRY(auth_wrong_password),
           KENTRY(select_db), KENTRY(connection_refused),
           KENTRY(small_arrays_made_in_place), KENTRY(array_cut_by_the_end_of_the_connection),
           KENTRY(array_cut_by_a_protocol_error),
           KENTRY(tune_takes_the_small_budget_where_it_is_faster),
           KENTRY(tune_keeps_the_large_budget_where_it_is_faster),
           KENTRY(tune_ignores_differences_within_its_margin),
           KENTRY(tune_follows_the_machine_when_it_changes),
           KENTRY(tune_leaves_uncontested_or_light_traffic_alone),
           KENTRY(tune_decides_nothing_across_a_stall))
