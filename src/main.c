/* The kura command: parses the command line and drives a runtime through
 * the public API of include/kura.h, as any host does (kura_run_script,
 * kura_serve). Nothing else lives here. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <uv.h>

#include "kura.h"

static const char usage_main[] =
  "usage: kura <command> [options]\n"
  "\n"
  "Commands:\n"
  "  run [options] FILE [args]  run a Lua script on the runtime (FILE - reads stdin)\n"
  "  bench [options]            a ready load test (see kura bench --help)\n"
  "  serve [options] [FILE]     a local Momento server: gRPC and HTTP API (see\n"
  "                             kura serve --help)\n"
  "  version                    print the version of kura and of its parts\n"
  "  help [command]             this text, or the usage of a command\n"
  "\n"
  "Shortcuts:\n"
  "  kura FILE.lua [args]       same as kura run FILE.lua [args]\n"
  "  kura -e 'lua code' [args]  run a chunk given on the command line\n"
  "  kura - [args]              run a script read from standard input\n"
  "  kura --version, kura --help\n"
  "\n"
  "Exit status: 0; 1 if a task raised an error no one caught; 2 if the script\n"
  "could not be loaded (missing file, syntax error) or the usage was wrong (an\n"
  "unknown option or backend, a bad value; also from KURA_BACKEND or\n"
  "MOMENTO_TTL_SECONDS), before the script runs.\n";

static const char usage_run[] =
  "usage: kura run [options] FILE [args]\n"
  "       kura run [options] -e 'lua code' [args]\n"
  "\n"
  "Runs FILE (- for standard input) as the main task, then the event loop until\n"
  "every task has finished and every timer is stopped. The script sees its\n"
  "arguments in `arg` (arg[0] = FILE) and as `...`; `kura` is a global.\n"
  "\n"
  "Options:\n"
  "  --backend URL           the shared client's backend: memory (default),\n"
  "                          redis://host:port[/db], redis-cluster://h:p,...,\n"
  "                          momento, momento-http (default: $KURA_BACKEND);\n"
  "                          TLS to Redis (rediss://) is not supported\n"
  "  --default-ttl SECONDS   the client's default TTL, > 0 and at most\n"
  "                          315360000 (ten years; default:\n"
  "                          $MOMENTO_TTL_SECONDS, else 60)\n"
  "  --momento-endpoint URL  Momento endpoint; http://host:port is plaintext\n"
  "                          (default: $KURA_MOMENTO_ENDPOINT)\n"
  "  -e CODE                 run CODE instead of a file\n"
  "  -h, --help              this text\n"
  "  --                      end of options\n"
  "\n"
  "Environment: KURA_LOG=debug|info|warn|error (kura.log threshold),\n"
  "KURA_LUA_PATH=DIR loads kura.* modules from DIR/kura/ before the embedded ones,\n"
  "KURA_CA_FILE=PEM verifies TLS peers (Momento, kura.http) against these CAs\n"
  "instead of the system's.\n";

static const char usage_serve[] =
  "usage: kura serve [options] [FILE [args]]\n"
  "\n"
  "Serves the cache over Momento's protocols on one port: the gRPC services\n"
  "Momento's SDKs call (HTTP/2 without TLS, as Momento Local) and Momento's\n"
  "HTTP API (GET, PUT, DELETE /cache/NAME?key=K&ttl_seconds=S). Point an SDK at\n"
  "it as at Momento Local, e.g. CredentialProvider.forMomentoLocal({ port })\n"
  "in JavaScript, or kura itself with --backend momento --momento-endpoint\n"
  "http://HOST:PORT. FILE (a Lua script) runs first on the same runtime; it may\n"
  "set kura.serve.on_miss = function(cache, key) return value [, ttl] end to\n"
  "load what a get misses (read-through). SIGINT or SIGTERM: the calls in\n"
  "flight are answered, then kura exits 0 (a second signal stops at once).\n"
  "\n"
  "Options:\n"
  "  --host ADDR             address to listen on (default 127.0.0.1; 0.0.0.0\n"
  "                          or :: for every interface)\n"
  "  --port N                port (default 8080; 0: a free one, shown at start)\n"
  "  --backend URL           what the calls run on: memory (default), redis://,\n"
  "                          redis-cluster://, momento, momento-http (as kura run)\n"
  "  --auth-token TOKEN      answer only calls that present TOKEN as their key\n"
  "                          (default: $KURA_SERVE_AUTH_TOKEN; unset: any key)\n"
  "  --default-ttl SECONDS   TTL of what on_miss loads without one (default 60)\n"
  "  --momento-endpoint URL  for --backend momento (as kura run)\n"
  "  --max-connections N     connections at once (default 1024); more are\n"
  "                          refused (GOAWAY, or 503 over HTTP/1.1)\n"
  "  --max-streams N         concurrent calls per connection (default 128)\n"
  "  -h, --help              this text\n";

static const char usage_version[] =
  "usage: kura version\n"
  "\n"
  "Prints the version of kura, of Lua and of libuv.\n";

struct run_opts {
  kura_options cfg;
  const char *code;   /* -e CODE, or NULL */
  const char *file;   /* the script, "-" for stdin */
  int script_index;   /* argv index that becomes arg[0] */
};

/* 1 when argv[*i] is not option `name`; 0 with *out set; 2 (printed) when
 * its value is missing. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **out)
{
  const char *a = argv[*i];
  size_t n = strlen(name);
  if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
    return 1; /* not this option */
  if (a[n] == '=') {
    *out = a + n + 1;
  } else if (*i + 1 < argc) {
    *out = argv[++*i];
  } else {
    fprintf(stderr, "kura: option %s needs a value (see kura %s --help)\n", name,
            strcmp(argv[1], "serve") == 0 ? "serve" : "run");
    return 2;
  }
  return 0;
}

/* The options of the runtime's client, shared by run and serve: 0 taken,
 * 1 not one of them, 2 wrong (printed). */
static int client_option(int argc, char **argv, int *i, kura_options *cfg)
{
  const char *v = NULL;
  int r;
  if ((r = option_value(argc, argv, i, "--backend", &cfg->backend)) != 1)
    return r;
  if ((r = option_value(argc, argv, i, "--momento-endpoint", &cfg->momento_endpoint)) != 1)
    return r;
  if ((r = option_value(argc, argv, i, "--default-ttl", &v)) != 1) {
    char why[200];
    if (r == 0 && kura_seconds_parse(v, &cfg->default_ttl, why, sizeof why)) {
      fprintf(stderr, "kura: --default-ttl: %s\n", why);
      return 2;
    }
    return r;
  }
  return 1;
}

static int parse_option(int argc, char **argv, int *i, struct run_opts *o)
{
  int r;
  if ((r = client_option(argc, argv, i, &o->cfg)) != 1)
    return r;
  if ((r = option_value(argc, argv, i, "-e", &o->code)) != 1) {
    o->script_index = *i;
    return r;
  }
  fprintf(stderr, "kura: unknown option '%s' (see kura run --help)\n", argv[*i]);
  return 2;
}

/* Parses `kura run` options from argv[i]; returns -1 to run, else a status. */
static int parse_run(int argc, char **argv, int i, struct run_opts *o)
{
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage_run, stdout);
      return 0;
    }
    int r = parse_option(argc, argv, &i, o);
    if (r != 0)
      return r;
    if (o->code) {
      i++;
      break; /* what follows -e CODE are the chunk's arguments */
    }
  }
  if (!o->code) {
    if (i >= argc) {
      fprintf(stderr, "kura: no script to run (see kura run --help)\n");
      return 2;
    }
    o->file = argv[i];
    o->script_index = i;
  }
  return -1;
}

/* The backend and default TTL of the run, from the options or the
 * environment, checked before the script runs: a bad one is a usage error
 * (status 2), not a failure at the script's first kura.client(). The
 * message names the option (--backend) or the variable it came from.
 * Returns -1 to go on. */
static int check_config(const struct run_opts *o)
{
  char why[320];
  if (kura_options_check(&o->cfg, why, sizeof why) == KURA_OK)
    return -1;
  /* "backend: ..." is the field of kura_options, which --backend sets */
  fprintf(stderr, "kura: %s%s\n", strncmp(why, "backend:", 8) == 0 ? "--" : "", why);
  return 2;
}

static int run(int argc, char **argv, struct run_opts *o)
{
  kura_runtime *rt;
  if (kura_runtime_new(&o->cfg, &rt) != KURA_OK) {
    fprintf(stderr, "kura: cannot create the runtime\n");
    return 1;
  }
  int status = kura_run_script(rt, o->file, o->code, argc, argv, o->script_index);
  kura_runtime_free(rt);
  fflush(stdout);
  return status;
}

/* kura bench [options]: the embedded Lua module kura.bench_cli does the
 * work, run as `kura run` runs a chunk, with the options as its arguments. */
static int bench(int argc, char **argv)
{
  struct run_opts o;
  memset(&o, 0, sizeof o);
  o.code = "return require('kura.bench_cli').main(...)";
  o.script_index = 1;
  return run(argc, argv, &o);
}

/* --max-connections and the like: a whole number in [lo, hi]. */
static int number_option(int argc, char **argv, int *i, const char *name, long lo, long hi,
                         long *out)
{
  const char *v;
  int r = option_value(argc, argv, i, name, &v);
  if (r != 0)
    return r;
  char *end;
  long n = strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
    fprintf(stderr, "kura: %s wants a whole number from %ld to %ld, not '%s'\n", name, lo, hi,
            v);
    return 2;
  }
  *out = n;
  return 0;
}

static int serve_option(int argc, char **argv, int *i, struct run_opts *o,
                        kura_serve_options *so)
{
  long n;
  int r;
  if ((r = client_option(argc, argv, i, &o->cfg)) != 1)
    return r;
  if ((r = option_value(argc, argv, i, "--host", &so->host)) != 1)
    return r;
  if ((r = option_value(argc, argv, i, "--auth-token", &so->auth_token)) != 1)
    return r;
  if ((r = number_option(argc, argv, i, "--port", 0, 65535, &n)) != 1)
    return r ? r : (so->port = (int)n, 0);
  if ((r = number_option(argc, argv, i, "--max-connections", 1, 1000000, &n)) != 1)
    return r ? r : (so->max_connections = (unsigned)n, 0);
  if ((r = number_option(argc, argv, i, "--max-streams", 1, 1u << 20, &n)) != 1)
    return r ? r : (so->max_streams = (unsigned)n, 0);
  fprintf(stderr, "kura: unknown option '%s' (see kura serve --help)\n", argv[*i]);
  return 2;
}

/* kura serve [options] [FILE [args]] */
static int serve(int argc, char **argv)
{
  struct run_opts o;
  kura_serve_options so;
  memset(&o, 0, sizeof o);
  memset(&so, 0, sizeof so);
  so.port = 8080;
  so.auth_token = getenv("KURA_SERVE_AUTH_TOKEN");
  int i = 2;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage_serve, stdout);
      return 0;
    }
    int r = serve_option(argc, argv, &i, &o, &so);
    if (r != 0)
      return r;
  }
  if (so.auth_token && !*so.auth_token)
    so.auth_token = NULL;
  if (i < argc)
    so.script = argv[i], so.argc = argc, so.argv = argv, so.script_index = i;
  int bad = check_config(&o);
  if (bad >= 0)
    return bad;
  kura_runtime *rt;
  if (kura_runtime_new(&o.cfg, &rt) != KURA_OK) {
    fprintf(stderr, "kura: cannot create the runtime\n");
    return 1;
  }
  int status = kura_serve(rt, &so);
  kura_runtime_free(rt);
  return status;
}

static int version(void)
{
  printf("kura %s (%s, libuv %s)\n", kura_version(), LUA_RELEASE, uv_version_string());
  return 0;
}

/* `kura help bench`: the usage lives with the command, in kura.bench_cli. */
static int bench_help(void)
{
  char *argv[] = {"kura", "bench", "--help", NULL};
  return bench(3, argv);
}

static int help(const char *cmd)
{
  if (cmd && strcmp(cmd, "bench") == 0)
    return bench_help();
  if (cmd && strcmp(cmd, "run") == 0)
    fputs(usage_run, stdout);
  else if (cmd && strcmp(cmd, "version") == 0)
    fputs(usage_version, stdout);
  else if (cmd && strcmp(cmd, "serve") == 0)
    fputs(usage_serve, stdout);
  else if (!cmd || strcmp(cmd, "help") == 0)
    fputs(usage_main, stdout);
  else {
    fprintf(stderr, "kura: no command '%s' (see kura --help)\n", cmd);
    return 2;
  }
  return 0;
}

static int is_help(const char *a)
{
  return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

int main(int argc, char **argv)
{
  struct run_opts o;
  memset(&o, 0, sizeof o);
  /* A write to a pipe whose reader has gone (kura run x.lua | head) fails
   * with EPIPE, which the script sees as an error, instead of killing kura
   * without a word. */
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    fputs(usage_main, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (is_help(cmd))
    return help(NULL);
  if (strcmp(cmd, "help") == 0)
    return help(argc > 2 ? argv[2] : NULL);
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-v") == 0)
    return version();
  if (strcmp(cmd, "version") == 0)
    return argc > 2 && is_help(argv[2]) ? help("version") : version();
  if (strcmp(cmd, "bench") == 0)
    return bench(argc, argv);
  if (strcmp(cmd, "serve") == 0)
    return serve(argc, argv);
  int r = parse_run(argc, argv, strcmp(cmd, "run") == 0 ? 2 : 1, &o);
  if (r < 0)
    r = check_config(&o);
  return r >= 0 ? r : run(argc, argv, &o);
}
