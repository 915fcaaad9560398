/* kura_serve (`kura serve`) on a runtime: the script (if any) starts first,
 * then the server (core/serve/serve.h) listens on the runtime's loop with
 * the runtime's shared client and kura.serve.on_miss as its miss hook,
 * until SIGINT or SIGTERM.
 *
 * The first signal drains: no new connections, GOAWAY to HTTP/2 peers,
 * every call already received is answered; then the server closes and the
 * command exits 0. The drain waits at most the client's timeout plus two
 * seconds (a call cannot take longer unless a hook hangs); a second signal
 * closes at once.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/client.h"
#include "core/serve/serve.h"
#include "host/host.h"
#include "lua/binding.h"
#include "runtime/runtime.h"

typedef struct serve_run {
  kr_runtime *rt;
  kr_serve *srv;
  kr_client *client;
  uv_signal_t sigint, sigterm;
  uv_timer_t drain_timer;
  int handles;         /* the signals and the timer, until closed */
  int draining, closing, closed;
} serve_run;

/* The backend as the start line shows it: no user, password or query. */
static void describe_backend(const char *url, char *out, size_t cap)
{
  const char *sep = url ? strstr(url, "://") : NULL;
  if (!url || !*url) {
    snprintf(out, cap, "memory");
    return;
  }
  if (!sep) {
    snprintf(out, cap, "%s", url);
    return;
  }
  const char *auth = sep + 3, *end = auth + strcspn(auth, "/?#");
  const char *at = auth;
  for (const char *p = auth; p < end; p++)
    if (*p == '@')
      at = p + 1;
  size_t path = strcspn(end, "?#");
  snprintf(out, cap, "%.*s%.*s%.*s", (int)(sep + 3 - url), url, (int)(end - at), at, (int)path,
           end);
}

static void on_handle_closed(uv_handle_t *h)
{
  serve_run *v = h->data;
  v->handles--;
}

static void on_closed(void *ud)
{
  serve_run *v = ud;
  v->closed = 1;
}

static void close_server(serve_run *v)
{
  if (v->closing)
    return;
  v->closing = 1;
  kr_serve_stats st;
  kr_serve_get_stats(v->srv, &st);
  fprintf(stderr, "kura serve: stopped after %llu call(s) (%llu with an error) on %llu "
                  "connection(s); %llu refused over the limit, %llu closed for malformed input, "
                  "%llu request(s) reset as malformed\n",
          (unsigned long long)st.calls, (unsigned long long)st.errors,
          (unsigned long long)st.accepted, (unsigned long long)st.refused,
          (unsigned long long)st.protocol_errors, (unsigned long long)st.streams_malformed);
  kr_serve_close(v->srv, on_closed, v);
  uv_close((uv_handle_t *)&v->sigint, on_handle_closed);
  uv_close((uv_handle_t *)&v->sigterm, on_handle_closed);
  uv_close((uv_handle_t *)&v->drain_timer, on_handle_closed);
}

static void on_drained(void *ud)
{
  close_server(ud);
}

static void on_drain_timeout(uv_timer_t *t)
{
  serve_run *v = t->data;
  kr_serve_stats st;
  kr_serve_get_stats(v->srv, &st);
  fprintf(stderr, "kura serve: the drain timed out with %zu call(s) in flight; closing\n",
          st.in_flight);
  close_server(v);
}

static void on_signal(uv_signal_t *h, int signum)
{
  serve_run *v = h->data;
  const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
  if (v->draining) {
    fprintf(stderr, "kura serve: %s again: closing now\n", name);
    close_server(v);
    return;
  }
  v->draining = 1;
  kr_serve_stats st;
  kr_serve_get_stats(v->srv, &st);
  uint64_t ms = kr_client_timeout_ms(v->client) + 2000;
  fprintf(stderr, "kura serve: %s: draining %zu call(s) on %zu connection(s), at most %.1f s "
                  "(%s again stops at once)\n",
          name, st.in_flight, st.connections, (double)ms / 1000.0, name);
  uv_timer_start(&v->drain_timer, on_drain_timeout, ms, 0);
  kr_serve_drain(v->srv, on_drained, v);
}

static int start_signals(serve_run *v, uv_loop_t *loop)
{
  uv_signal_init(loop, &v->sigint);
  uv_signal_init(loop, &v->sigterm);
  uv_timer_init(loop, &v->drain_timer);
  v->sigint.data = v->sigterm.data = v->drain_timer.data = v;
  v->handles = 3;
  if (uv_signal_start(&v->sigint, on_signal, SIGINT) != 0 ||
      uv_signal_start(&v->sigterm, on_signal, SIGTERM) != 0)
    return -1;
  return 0;
}

/* Runs the script's main chunk up to its first wait, before the port opens:
 * what it sets up (kura.serve.on_miss, data it loads) is there for the
 * first call. 0, or the exit status. */
static int start_script(kr_runtime *rt, const kura_serve_options *o)
{
  if (!o->script)
    return 0;
  int rc = kr_runtime_start_file(rt, o->script, o->argc, o->argv, o->script_index);
  if (rc)
    return rc;
  uv_run(kr_runtime_loop(rt), UV_RUN_NOWAIT);
  if (kr_runtime_uncaught(rt) > 0) {
    fprintf(stderr, "kura serve: %s failed before the server started: not serving\n",
            o->script);
    return 1;
  }
  return 0;
}

static int listen_on(serve_run *v, const kura_serve_options *o)
{
  char err[256];
  lua_State *L = kr_runtime_lua(v->rt);
  if (!(v->client = kr_lua_shared_client(L, err, sizeof err))) {
    fprintf(stderr, "kura serve: the backend: %s\n", err);
    return 1;
  }
  kr_serve_config sc = {.host = o->host, .port = o->port, .auth_token = o->auth_token,
                        .auth_token_len = o->auth_token ? strlen(o->auth_token) : 0,
                        .max_connections = o->max_connections, .max_streams = o->max_streams,
                        .on_miss = kr_lua_serve_miss, .miss_ud = L};
  if (kr_serve_new(kr_runtime_loop(v->rt), v->client, &sc, &v->srv, err, sizeof err)) {
    fprintf(stderr, "kura serve: %s\n", err);
    return 1;
  }
  char backend[256];
  describe_backend(kr_lua_config_get(L)->backend, backend, sizeof backend);
  const char *host = o->host ? o->host : "127.0.0.1";
  int v6 = strchr(host, ':') != NULL;
  fprintf(stderr, "kura serve: listening on %s%s%s:%d (Momento gRPC and HTTP API), backend %s%s\n",
          v6 ? "[" : "", host, v6 ? "]" : "", kr_serve_port(v->srv), backend,
          o->auth_token ? ", auth token required" : "");
  return 0;
}

int kura_serve(kura_runtime *k, const kura_serve_options *o)
{
  if (!k || !o)
    return 1;
  kr_runtime *rt = kr_host_runtime(k);
  serve_run v = {.rt = rt};
  uv_loop_t *loop = kr_runtime_loop(rt);
  /* A write to a peer that has gone raises SIGPIPE, which would end the
   * process; the write's EPIPE is what the server handles. */
  signal(SIGPIPE, SIG_IGN);
  int rc = start_script(rt, o);
  if (rc)
    return rc;
  if ((rc = listen_on(&v, o)) != 0)
    return rc;
  if (start_signals(&v, loop) != 0) {
    fprintf(stderr, "kura serve: cannot watch SIGINT and SIGTERM\n");
    close_server(&v);
    rc = 1;
  }
  while (!v.closed || v.handles > 0)
    uv_run(loop, UV_RUN_ONCE);
  return rc;
}
