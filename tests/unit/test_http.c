/* core/net/http.c against real servers on loopback: tests/http/server.py
 * (HTTP/1.1) and tests/http/h2server.js (plaintext HTTP/2, when node is
 * installed). Results, error codes, cancellation on close (also from inside a
 * completion), HTTP/2 multiplexing on one connection and trailers. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/net/http.h"
#include "ktest.h"

/* The source tree, from this file's path (CMake compiles it by absolute
 * path): "<root>/tests/unit/test_http.c" -> "<root>/tests/http/NAME". */
static const char *script_path(const char *name)
{
  static char buf[1024];
  const char *at = strstr(__FILE__, "tests/unit/test_http.c");
  int root = at ? (int)(at - __FILE__) : 0;
  snprintf(buf, sizeof buf, "%.*stests/http/%s", root, __FILE__, name);
  return buf;
}

typedef struct srv {
  pid_t pid;
  int port;
  char url[64];
} srv;

/* Starts `prog script` with --port-file/--parent (python) or the port file
 * as argument (node); 0 when it listens. */
static int srv_start(srv *s, const char *prog, const char *script, int node, const char *key,
                     const char *cert)
{
  char file[] = "/tmp/kura-test-http-XXXXXX";
  int fd = mkstemp(file);
  if (fd < 0)
    return -1;
  close(fd);
  unlink(file);
  char parent[32];
  snprintf(parent, sizeof parent, "%d", (int)getpid());
  s->pid = fork();
  if (s->pid == 0) {
    if (node)
      execlp(prog, prog, script, file, key, cert, (char *)NULL);
    else
      execlp(prog, prog, script, "--port", "0", "--port-file", file, "--parent", parent,
             (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 500; i++) {
    FILE *f = fopen(file, "r");
    if (f) {
      int ok = fscanf(f, "%d", &s->port) == 1;
      fclose(f);
      if (ok) {
        unlink(file);
        snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
        return 0;
      }
    }
    usleep(20000);
  }
  kill(s->pid, SIGTERM);
  waitpid(s->pid, NULL, 0);
  return -1;
}

static void srv_stop(srv *s)
{
  kill(s->pid, SIGTERM);
  waitpid(s->pid, NULL, 0);
}

static int start_py(srv *s)
{
  if (srv_start(s, "python3", script_path("server.py"), 0, NULL, NULL) == 0)
    return 0;
  fprintf(stderr, "  cannot start tests/http/server.py (python3)\n");
  return -1;
}

/* One completion, copied. */
typedef struct got {
  int calls;
  int err;
  long status;
  int version;
  char body[4096];
  size_t body_len;
  char headers[4096];
  char lines[4096];   /* on_header lines, '|' separated */
  char msg[256];
  kr_http *close_me;  /* close the client from inside the callback */
} got;

static void on_done(void *ud, const kr_http_response *r)
{
  got *g = ud;
  g->calls++;
  g->err = r->err;
  g->status = r->status;
  g->version = r->http_version;
  g->body_len = r->body_len;
  if (r->err)
    snprintf(g->msg, sizeof g->msg, "%s", r->msg);
  if (!r->err) {
    snprintf(g->body, sizeof g->body, "%.*s", (int)r->body_len, r->body);
    snprintf(g->headers, sizeof g->headers, "%.*s", (int)r->headers_len, r->headers);
  }
  if (g->close_me)
    kr_http_close(g->close_me, NULL, NULL);
}

static void on_line(void *ud, const char *line, size_t len)
{
  got *g = ud;
  size_t n = strlen(g->lines);
  snprintf(g->lines + n, sizeof g->lines - n, "%.*s|", (int)len, line);
}

static void on_closed(void *ud) { ++*(int *)ud; }

/* Submits GET url (path appended) with timeout_ms / max_body. */
static int get(kr_http *h, const char *base, const char *path, got *g, uint64_t timeout_ms,
               size_t max_body)
{
  char url[256];
  snprintf(url, sizeof url, "%s%s", base, path);
  kr_http_request req = {.url = url, .timeout_ms = timeout_ms, .max_body = max_body};
  return kr_http_submit(h, &req, on_done, g);
}

/* Closes h and runs the loop until every handle is gone. */
static int close_all(uv_loop_t *loop, kr_http *h)
{
  int closed = 0;
  kr_http_close(h, on_closed, &closed);
  uv_run(loop, UV_RUN_DEFAULT);
  return closed;
}

KTEST(get_and_post)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  KCHECK_EQ(kr_http_new(&loop, NULL, &h), 0);
  got a = {0}, b = {0};
  KCHECK_EQ(get(h, s.url, "/json", &a, 0, 0), 0);
  const char *hdrs[] = {"X-Test: 1", "Content-Type: application/octet-stream"};
  char url[128];
  snprintf(url, sizeof url, "%s/echo", s.url);
  kr_http_request post = {.method = "PUT", .url = url, .headers = hdrs, .nheaders = 2,
                          .body = "a\0b", .body_len = 3};
  KCHECK_EQ(kr_http_submit(h, &post, on_done, &b), 0);
  KCHECK_EQ(kr_http_pending(h), 2);
  KCHECK_EQ(a.calls + b.calls, 0); /* never from inside submit */
  while (a.calls + b.calls < 2)
    uv_run(&loop, UV_RUN_ONCE);
  KCHECK_EQ(a.err, 0);
  KCHECK_EQ(a.status, 200);
  KCHECK_EQ(a.version, 1);
  KCHECK(strstr(a.body, "\"hello\": \"world\""));
  KCHECK(strstr(a.headers, "Content-Type: application/json\r\n"));
  KCHECK_EQ(b.status, 200);
  KCHECK(strstr(b.body, "\"method\": \"PUT\""));
  KCHECK(strstr(b.body, "\"body_hex\": \"610062\""));
  KCHECK(strstr(b.body, "\"x-test\": \"1\""));
  KCHECK_EQ(close_all(&loop, h), 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

KTEST(errors)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  KCHECK_EQ(kr_http_new(&loop, NULL, &h), 0);
  got bad = {0}, refused = {0}, slow = {0}, big = {0}, status = {0};
  KCHECK_EQ(get(h, "ftp://127.0.0.1", "/x", &bad, 0, 0), KURA_EINVAL);
  KCHECK(strstr(kr_http_errstr(h), "scheme"));
  KCHECK_EQ(get(h, "http://127.0.0.1:99999", "/x", &bad, 0, 0), KURA_EINVAL);
  kr_http_request m = {.method = "G T", .url = s.url};
  KCHECK_EQ(kr_http_submit(h, &m, on_done, &bad), KURA_EINVAL);
  KCHECK_EQ(get(h, "http://127.0.0.1:1", "/", &refused, 0, 0), 0);
  KCHECK_EQ(get(h, s.url, "/slow/3000", &slow, 100, 0), 0);
  KCHECK_EQ(get(h, s.url, "/chunked/100000", &big, 0, 5000), 0);
  KCHECK_EQ(get(h, s.url, "/status/503", &status, 0, 0), 0);
  while (refused.calls + slow.calls + big.calls + status.calls < 4)
    uv_run(&loop, UV_RUN_ONCE);
  KCHECK_EQ(bad.calls, 0); /* refused at submit: no callback */
  KCHECK_EQ(refused.err, KURA_ECONN);
  KCHECK_EQ(slow.err, KURA_ETIMEOUT);
  KCHECK_EQ(big.err, KURA_ELIMIT);
  KCHECK_EQ(status.err, 0);
  KCHECK_EQ(status.status, 503);
  KCHECK_EQ(close_all(&loop, h), 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

static void on_tick(uv_timer_t *t)
{
  kr_http *h = t->data;
  kr_http_close(h, on_closed, (char *)t + sizeof *t); /* counter after the timer */
  uv_close((uv_handle_t *)t, NULL);
}

KTEST(close_cancels_in_flight)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  KCHECK_EQ(kr_http_new(&loop, NULL, &h), 0);
  got g[5] = {{0}};
  for (int i = 0; i < 5; i++)
    KCHECK_EQ(get(h, s.url, "/slow/2000", &g[i], 0, 0), 0);
  struct {
    uv_timer_t t;
    int closed;
  } tick = {.closed = 0};
  uv_timer_init(&loop, &tick.t);
  tick.t.data = h;
  uv_timer_start(&tick.t, on_tick, 50, 0); /* connections are up by then */
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 5; i++) {
    KCHECK_EQ(g[i].calls, 1);
    KCHECK_EQ(g[i].err, KURA_ECANCELLED);
  }
  KCHECK_EQ(tick.closed, 1);
  KCHECK_EQ(uv_loop_close(&loop), 0); /* every handle was closed and freed */
  srv_stop(&s);
}

KTEST(close_from_a_callback)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  KCHECK_EQ(kr_http_new(&loop, NULL, &h), 0);
  got first = {0}, rest[3] = {{0}};
  first.close_me = h;
  KCHECK_EQ(get(h, s.url, "/json", &first, 0, 0), 0);
  for (int i = 0; i < 3; i++)
    KCHECK_EQ(get(h, s.url, "/slow/2000", &rest[i], 0, 0), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  KCHECK_EQ(first.calls, 1);
  KCHECK_EQ(first.err, 0);
  for (int i = 0; i < 3; i++) {
    KCHECK_EQ(rest[i].calls, 1);
    KCHECK_EQ(rest[i].err, KURA_ECANCELLED);
  }
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

KTEST(queue_beyond_max_active)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  kr_http_config cfg = {.max_active = 1};
  KCHECK_EQ(kr_http_new(&loop, &cfg, &h), 0);
  got slow = {0}, waits = {0}, fine[4] = {{0}}, cancelled = {0};
  KCHECK_EQ(get(h, s.url, "/slow/1500", &slow, 5000, 0), 0);
  KCHECK_EQ(get(h, s.url, "/json", &waits, 300, 0), 0); /* its wait is its time */
  for (int i = 0; i < 4; i++)
    KCHECK_EQ(get(h, s.url, "/json", &fine[i], 10000, 0), 0);
  KCHECK_EQ(kr_http_pending(h), 6);
  while (!fine[3].calls)
    uv_run(&loop, UV_RUN_ONCE);
  KCHECK_EQ(slow.err, 0);
  KCHECK_EQ(waits.err, KURA_ETIMEOUT);
  for (int i = 0; i < 4; i++) {
    KCHECK_EQ(fine[i].err, 0);
    KCHECK_EQ(fine[i].status, 200);
  }
  KCHECK_EQ(get(h, s.url, "/slow/2000", &slow, 5000, 0), 0);
  KCHECK_EQ(get(h, s.url, "/json", &cancelled, 5000, 0), 0); /* queued */
  KCHECK_EQ(close_all(&loop, h), 1);
  KCHECK_EQ(cancelled.calls, 1);
  KCHECK_EQ(cancelled.err, KURA_ECANCELLED);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

/* Queued transfers start together once the loop has read what it could,
 * first in, first out: a request made from a completion, while others wait,
 * goes behind them; and a loop whose only work is queued transfers neither
 * blocks nor ends before they are done (UV_RUN_DEFAULT returns at the end). */
typedef struct ordered {
  kr_http *h;
  const char *url;
  int order[8], n, late, bad;
  got *next;           /* the second part's queued request */
  int next_done_first; /* it was done when the later timer fired */
} ordered;

static void on_ordered(void *ud, const kr_http_response *r);

static int submit_ordered(ordered *o, intptr_t id)
{
  kr_http_request req = {.url = o->url, .timeout_ms = 10000};
  return kr_http_submit(o->h, &req, on_ordered, (void *)id);
}

static ordered *the_ordered;

static void on_ordered(void *ud, const kr_http_response *r)
{
  ordered *o = the_ordered;
  if (r->err || r->status != 200)
    o->bad++;
  if (o->n < 8)
    o->order[o->n++] = (int)(intptr_t)ud;
  if ((intptr_t)ud == 0 && !o->late) { /* three wait: this one goes last */
    o->late = 1;
    o->bad += submit_ordered(o, 4) != 0;
  }
}

static void on_other_timer(uv_timer_t *t)
{
  ordered *o = t->data;
  o->next_done_first = o->next->calls == 1;
}

KTEST(queue_is_fifo_and_keeps_the_loop)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  char url[256];
  snprintf(url, sizeof url, "%s/json", s.url);
  ordered o = {.url = url};
  the_ordered = &o;
  kr_http_config cfg = {.max_active = 1};
  KCHECK_EQ(kr_http_new(&loop, &cfg, &o.h), 0);
  for (intptr_t i = 0; i < 4; i++)
    KCHECK_EQ(submit_ordered(&o, i), 0);
  KCHECK_EQ(kr_http_pending(o.h), 4);
  uv_run(&loop, UV_RUN_DEFAULT);
  KCHECK_EQ(o.n, 5);
  KCHECK_EQ(o.bad, 0);
  for (int i = 0; i < 5; i++)
    KCHECK_EQ(o.order[i], i);
  KCHECK_EQ(kr_http_pending(o.h), 0);

  /* A transfer that times out ends in the loop's timer phase: the one
   * queued behind it starts at once, not when the loop next wakes up for
   * something else (here a timer 1.1 s later, which finds it done). */
  got slow = {0}, next = {0};
  o.next = &next;
  uv_timer_t other;
  uv_timer_init(&loop, &other);
  other.data = &o;
  KCHECK_EQ(get(o.h, s.url, "/slow/1500", &slow, 100, 0), 0);
  KCHECK_EQ(get(o.h, s.url, "/json", &next, 10000, 0), 0);
  uv_timer_start(&other, on_other_timer, 1200, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  KCHECK_EQ(slow.err, KURA_ETIMEOUT);
  KCHECK_EQ(next.err, 0);
  KCHECK_EQ(o.next_done_first, 1);
  uv_close((uv_handle_t *)&other, NULL);
  KCHECK_EQ(close_all(&loop, o.h), 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

/* Many more transfers than the easy-handle pool (256) and the spare
 * transfers (128), through a queue: each request is copied while it waits
 * (method, body, headers), and a reused response buffer shows nothing of the
 * response it held before (bodies on both sides of the 8 KiB kept). */
KTEST(many_through_the_queue)
{
  enum { N = 600 };
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  kr_http_config cfg = {.max_active = 16};
  KCHECK_EQ(kr_http_new(&loop, &cfg, &h), 0);
  got *g = calloc(N, sizeof *g);
  KCHECK(g != NULL);
  for (int i = 0; i < N; i++) {
    char url[256], body[32], hdr[64];
    const char *hdrs[] = {hdr};
    kr_http_request req = {.url = url, .timeout_ms = 30000};
    snprintf(body, sizeof body, "b%d", i);
    snprintf(hdr, sizeof hdr, "X-Index: %d", i);
    switch (i % 4) {
    case 0:
      snprintf(url, sizeof url, "%s/bytes/%d", s.url, i * 37 % 20000);
      break;
    case 1:
    case 2:
      snprintf(url, sizeof url, "%s/echo?i=%d", s.url, i);
      req.method = i % 4 == 1 ? "POST" : "PUT";
      req.body = body, req.body_len = strlen(body);
      req.headers = hdrs, req.nheaders = 1;
      break;
    default:
      snprintf(url, sizeof url, "%s/status/204", s.url);
    }
    KCHECK_EQ(kr_http_submit(h, &req, on_done, &g[i]), 0);
  } /* url, body and hdr are gone: what waits in the queue is a copy */
  KCHECK_EQ(kr_http_pending(h), N);
  while (kr_http_pending(h))
    uv_run(&loop, UV_RUN_ONCE);
  for (int i = 0; i < N; i++) {
    char want[64];
    KCHECK_EQ(g[i].calls, 1);
    KCHECK_EQ(g[i].err, 0);
    switch (i % 4) {
    case 0:
      KCHECK_EQ(g[i].status, 200);
      KCHECK_EQ(g[i].body_len, (size_t)(i * 37 % 20000));
      KCHECK(g[i].body_len == 0 || memcmp(g[i].body, "0123456789", 10) == 0 ||
             g[i].body_len < 10);
      break;
    case 1:
    case 2:
      KCHECK_EQ(g[i].status, 200);
      snprintf(want, sizeof want, "\"method\": \"%s\"", i % 4 == 1 ? "POST" : "PUT");
      KCHECK(strstr(g[i].body, want) != NULL);
      snprintf(want, sizeof want, "\"body\": \"b%d\"", i);
      KCHECK(strstr(g[i].body, want) != NULL);
      snprintf(want, sizeof want, "\"x-index\": \"%d\"", i);
      KCHECK(strstr(g[i].body, want) != NULL);
      break;
    default:
      KCHECK_EQ(g[i].status, 204);
      KCHECK_EQ(g[i].body_len, 0);
      KCHECK_EQ(g[i].body[0], '\0');
      KCHECK(strstr(g[i].headers, "Content-Length: 0\r\n") != NULL);
    }
  }
  free(g);
  KCHECK_EQ(close_all(&loop, h), 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

static int have_node(void)
{
  return system("node --version >/dev/null 2>&1") == 0;
}

/* Starts h2server.js; with tls, on a self-signed certificate made here. */
static int start_h2(srv *s, int tls, char *dir)
{
  if (!tls)
    return srv_start(s, "node", script_path("h2server.js"), 1, NULL, NULL);
  char cmd[1024], key[300], cert[300];
  snprintf(key, sizeof key, "%s/key.pem", dir);
  snprintf(cert, sizeof cert, "%s/cert.pem", dir);
  snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s "
           "-days 1 -subj /CN=localhost >/dev/null 2>&1", key, cert);
  if (system(cmd) != 0)
    return -1;
  return srv_start(s, "node", script_path("h2server.js"), 1, key, cert);
}

/* N concurrent GET /stream, then /trailers; checks HTTP/2, the trailers
 * and, when `one_conn`, that every stream shared one connection. */
static void h2_round(int *ktest_failed_, int tls)
{
  char dir[] = "/tmp/kura-test-h2-XXXXXX";
  KCHECK(mkdtemp(dir) != NULL);
  srv s;
  KCHECK(start_h2(&s, tls, dir) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  KCHECK_EQ(kr_http_new(&loop, NULL, &h), 0);
  enum { N = 20 };
  got g[N] = {{0}}, tr = {0};
  char url[128];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d/stream", tls ? "https" : "http", s.port);
  kr_http_request req = {.url = url, .h2_prior_knowledge = !tls, .insecure = tls};
  for (int i = 0; i < N; i++)
    KCHECK_EQ(kr_http_submit(h, &req, on_done, &g[i]), 0);
  while (kr_http_pending(h) > 0)
    uv_run(&loop, UV_RUN_ONCE);
  snprintf(url, sizeof url, "%s://127.0.0.1:%d/trailers", tls ? "https" : "http", s.port);
  req.on_header = on_line;
  KCHECK_EQ(kr_http_submit(h, &req, on_done, &tr), 0);
  while (kr_http_pending(h) > 0)
    uv_run(&loop, UV_RUN_ONCE);
  for (int i = 0; i < N; i++) {
    if (g[i].err)
      fprintf(stderr, "  request %d: %s\n", i, g[i].msg);
    KCHECK_EQ(g[i].err, 0);
    KCHECK_EQ(g[i].version, 2);
    if (tls) /* multiplexed: every stream on the first connection */
      KCHECK(strstr(g[i].body, "\"session\":1}"));
  }
  KCHECK_EQ(tr.err, 0);
  KCHECK_EQ(tr.status, 200);
  KCHECK(strstr(tr.lines, "HTTP/2 200"));
  KCHECK(strstr(tr.lines, "grpc-status: 0|"));
  KCHECK(strstr(tr.headers, "x-trailer: yes\r\n"));
  KCHECK_EQ(strcmp(tr.body, "body"), 0);
  KCHECK_EQ(close_all(&loop, h), 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  KCHECK(system(cmd) == 0);
}

KTEST(http2_tls_multiplexing_and_trailers)
{
  if (!have_node()) {
    fprintf(stderr, "  node not found: HTTP/2 not tested here\n");
    return;
  }
  h2_round(ktest_failed_, 1);
}

KTEST(http2_prior_knowledge_and_trailers)
{
  if (!have_node()) {
    fprintf(stderr, "  node not found: HTTP/2 not tested here\n");
    return;
  }
  h2_round(ktest_failed_, 0);
}

/* One request at a time through one client, so that each reuses the easy
 * handle of the one before: a plain GET after requests with a method, a
 * body, headers or a small size limit carries none of theirs, and a plain
 * GET after plain GETs still gets its own URL and limit. More URLs than
 * the cache of parsed URLs holds, each asked for twice. */
static int one(uv_loop_t *loop, kr_http *h, const kr_http_request *req, got *g)
{
  memset(g, 0, sizeof *g);
  int rc = kr_http_submit(h, req, on_done, g);
  while (!rc && !g->calls)
    uv_run(loop, UV_RUN_ONCE);
  return rc;
}

KTEST(reused_handles_keep_nothing_of_earlier_requests)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  KCHECK_EQ(kr_http_new(&loop, NULL, &h), 0);
  char echo[128], url[160];
  snprintf(echo, sizeof echo, "%s/echo", s.url);
  const char *hdrs[] = {"X-Test: 1"};
  kr_http_request plain = {.url = echo};
  kr_http_request put = {.method = "PUT", .url = echo, .headers = hdrs, .nheaders = 1,
                         .body = "abc", .body_len = 3};
  kr_http_request del = {.method = "DELETE", .url = echo};
  kr_http_request small = {.url = echo, .max_body = 10};
  got g;
  for (int round = 0; round < 2; round++) {
    KCHECK_EQ(one(&loop, h, &plain, &g), 0);
    KCHECK_EQ(g.status, 200);
    KCHECK(strstr(g.body, "\"method\": \"GET\""));
    KCHECK_EQ(one(&loop, h, &put, &g), 0);
    KCHECK(strstr(g.body, "\"method\": \"PUT\""));
    KCHECK(strstr(g.body, "\"x-test\": \"1\""));
    KCHECK(strstr(g.body, "\"body\": \"abc\""));
    KCHECK_EQ(one(&loop, h, &plain, &g), 0);
    KCHECK(strstr(g.body, "\"method\": \"GET\""));
    KCHECK(!strstr(g.body, "x-test"));
    KCHECK(strstr(g.body, "\"body\": \"\""));
    KCHECK_EQ(one(&loop, h, &del, &g), 0);
    KCHECK(strstr(g.body, "\"method\": \"DELETE\""));
    for (int i = 0; i < 2; i++) { /* `small` on a handle set up anew, then on a reused one */
      KCHECK_EQ(one(&loop, h, &small, &g), 0);
      KCHECK_EQ(g.err, KURA_ELIMIT);
      KCHECK_EQ(one(&loop, h, &plain, &g), 0); /* the same shape as `small`: its limit is gone */
      KCHECK_EQ(g.err, 0);
      KCHECK_EQ(g.status, 200);
      KCHECK(strstr(g.body, "\"method\": \"GET\""));
    }
  }
  for (int i = 0; i < 40; i++) { /* 20 URLs, twice each, interleaved */
    snprintf(url, sizeof url, "%s/echo?n=%d", s.url, i % 20);
    kr_http_request r = {.url = url};
    KCHECK_EQ(one(&loop, h, &r, &g), 0);
    char want[64];
    snprintf(want, sizeof want, "\"path\": \"/echo?n=%d\"", i % 20);
    KCHECK(strstr(g.body, want));
  }
  KCHECK_EQ(close_all(&loop, h), 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

/* The adaptive limit's rule: doubles while transfers wait and the loop idles,
 * shrinks by a quarter while the loop is busy, stays inside [min, max]. */
KTEST(adaptive_limit_rule)
{
  KCHECK_EQ(kr_http_next_active(32, 32, 128, 1, 0.5), 64);
  KCHECK_EQ(kr_http_next_active(64, 32, 128, 1, 0.5), 128);
  KCHECK_EQ(kr_http_next_active(100, 32, 128, 1, 0.5), 128); /* capped */
  KCHECK_EQ(kr_http_next_active(128, 32, 128, 1, 0.5), 128);
  KCHECK_EQ(kr_http_next_active(32, 32, 128, 0, 0.5), 32);   /* nothing waits */
  KCHECK_EQ(kr_http_next_active(64, 32, 128, 1, 0.05), 64);  /* between: kept */
  KCHECK_EQ(kr_http_next_active(128, 32, 128, 1, 0.01), 96); /* busy: shrinks */
  KCHECK_EQ(kr_http_next_active(128, 32, 128, 0, 0.0), 96);
  KCHECK_EQ(kr_http_next_active(40, 32, 128, 1, 0.0), 32);   /* not below min */
  KCHECK_EQ(kr_http_next_active(32, 32, 128, 1, 0.0), 32);
  KCHECK_EQ(kr_http_next_active(3, 2, 5, 1, 0.9), 5);
}

/* Against a slow server with many requests waiting, the loop is idle and
 * the limit grows from min_active; it never passes max_active, and every
 * request completes. */
KTEST(adaptive_limit_grows_for_a_slow_server)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  kr_http *h;
  kr_http_config cfg = {.max_host_connections = 64, .max_active = 64, .min_active = 4};
  KCHECK_EQ(kr_http_new(&loop, &cfg, &h), 0);
  KCHECK_EQ(kr_http_active_limit(h), 4);
  enum { N = 120 };
  static got g[N];
  memset(g, 0, sizeof g);
  for (int i = 0; i < N; i++)
    KCHECK_EQ(get(h, s.url, "/slow/100", &g[i], 20000, 0), 0);
  unsigned peak = 0;
  for (int left = N; left > 0;) {
    uv_run(&loop, UV_RUN_ONCE);
    unsigned lim = kr_http_active_limit(h);
    peak = lim > peak ? lim : peak;
    left = 0;
    for (int i = 0; i < N; i++)
      left += !g[i].calls;
  }
  for (int i = 0; i < N; i++)
    KCHECK_EQ(g[i].status, 200);
  KCHECK(peak >= 16);
  KCHECK(peak <= 64);
  KCHECK_EQ(close_all(&loop, h), 1);
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

/* The proxy environment, read once by kr_http_new, is honoured as curl
 * honours it: http_proxy sends an http request through the proxy (here the
 * test server, which sees the absolute URL of a host that does not exist),
 * and with a proxy that refuses connections, a request fails unless its
 * host is in no_proxy. */
KTEST(proxy_environment)
{
  srv s;
  KCHECK(start_py(&s) == 0);
  uv_loop_t loop;
  uv_loop_init(&loop);
  setenv("http_proxy", s.url, 1);
  unsetenv("no_proxy");
  unsetenv("NO_PROXY");
  kr_http *h;
  KCHECK_EQ(kr_http_new(&loop, NULL, &h), 0);
  kr_http_request r = {.url = "http://kura-proxy-test.invalid/echo"};
  got g;
  KCHECK_EQ(one(&loop, h, &r, &g), 0);
  KCHECK_EQ(g.err, 0);
  KCHECK(strstr(g.body, "\"path\": \"http://kura-proxy-test.invalid/echo\""));
  KCHECK_EQ(close_all(&loop, h), 1);

  char url[128];
  snprintf(url, sizeof url, "%s/json", s.url);
  kr_http_request direct = {.url = url};
  setenv("http_proxy", "http://127.0.0.1:1", 1); /* refused */
  for (int skip = 0; skip < 2; skip++) {
    if (skip)
      setenv("no_proxy", "localhost,127.0.0.1", 1);
    KCHECK_EQ(kr_http_new(&loop, NULL, &h), 0);
    KCHECK_EQ(one(&loop, h, &direct, &g), 0);
    KCHECK_EQ(g.err, skip ? 0 : KURA_ECONN);
    KCHECK_EQ(g.status, skip ? 200 : 0);
    KCHECK_EQ(close_all(&loop, h), 1);
  }
  unsetenv("http_proxy");
  unsetenv("no_proxy");
  KCHECK_EQ(uv_loop_close(&loop), 0);
  srv_stop(&s);
}

KTEST_MAIN(KENTRY(get_and_post), KENTRY(errors), KENTRY(close_cancels_in_flight),
           KENTRY(close_from_a_callback), KENTRY(queue_beyond_max_active),
           KENTRY(queue_is_fifo_and_keeps_the_loop),
           KENTRY(many_through_the_queue),
           KENTRY(reused_handles_keep_nothing_of_earlier_requests),
           KENTRY(adaptive_limit_rule), KENTRY(adaptive_limit_grows_for_a_slow_server),
           KENTRY(proxy_environment),
           KENTRY(http2_tls_multiplexing_and_trailers),
           KENTRY(http2_prior_knowledge_and_trailers))
