/* An example game server that embeds kura through include/kura.h alone (it
 * also builds against an installed libkura with pkg-config). A host loop at
 * 60 ticks per game second calls the script's on_tick and on_player_event
 * handlers; the script keeps sessions, counters and a leaderboard in the
 * cache. It plays a scripted match and checks the final state, both through
 * the script and straight from C with the cache API.
 *
 * The handlers wait on the cache when it is remote (KURA_BACKEND=redis://...,
 * redis-cluster://...), so the host calls them with kura_call_async and lets
 * a tick's calls answer before the next tick starts.
 *
 * The clock is fake: ticks run as fast as possible and the game time passed
 * to the script is tick / 60, so the result never depends on the machine.
 *
 * usage: game_server MATCH.lua [ticks]    exit status 0 when the match ended
 * as expected. The backend: $KURA_BACKEND, else memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kura.h>

#define TICK_HZ 60

/* The scripted match: what players do, and when. */
struct event {
  int tick;
  const char *kind;   /* join, score, leave */
  const char *player;
  int points;
};

static const struct event match[] = {
  {1, "join", "alice", 0},   {1, "join", "bob", 0},     {10, "join", "carol", 0},
  {30, "score", "alice", 10}, {45, "score", "bob", 25},  {60, "score", "carol", 5},
  {90, "score", "alice", 20}, {120, "join", "dave", 0},  {150, "score", "dave", 40},
  {200, "leave", "carol", 0}, {210, "score", "carol", 99}, /* gone: ignored */
  {240, "score", "bob", 10},  {300, "score", "alice", 15},
};
#define NEVENTS (sizeof match / sizeof match[0])

struct server {
  kura_runtime *rt;
  int online;        /* what on_tick last returned */
  int failures;
  char summary[128]; /* what summary() returned */
};

static int check(struct server *s, int ok, const char *what)
{
  if (!ok) {
    fprintf(stderr, "game_server: FAILED: %s\n", what);
    s->failures++;
  }
  return ok;
}

static void report(struct server *s, const char *fn, int err)
{
  fprintf(stderr, "game_server: %s: %s: %s\n", fn, kura_errname(err), kura_errmsg(s->rt));
  s->failures++;
}

static void on_event_done(void *udata, int err, const kura_value *res, int nres)
{
  (void)res, (void)nres;
  if (err != KURA_OK)
    report(udata, "on_player_event", err);
}

static void on_tick_done(void *udata, int err, const kura_value *res, int nres)
{
  struct server *s = udata;
  if (err != KURA_OK)
    report(s, "on_tick", err);
  else
    s->online = nres == 1 && res[0].type == KURA_TINT ? (int)res[0].i : -1;
}

/* Each call returns at once; its callback runs when the handler is done. */
static int call(struct server *s, const char *fn, const kura_value *args, int nargs,
                kura_call_cb cb)
{
  int rc = kura_call_async(s->rt, fn, args, nargs, cb, s);
  if (rc != KURA_OK)
    report(s, fn, rc);
  return rc;
}

/* The main loop: events of this tick, then the tick itself; the tick's calls
 * answer (kura_run: they may wait on a remote cache) before the next tick. */
static int play(struct server *s, int ticks)
{
  size_t next = 0;
  for (int t = 1; t <= ticks && !s->failures; t++) {
    for (; next < NEVENTS && match[next].tick == t; next++) {
      const struct event *e = &match[next];
      kura_value args[4] = {kura_int(e->tick), kura_str(e->kind), kura_str(e->player),
                            kura_int(e->points)};
      call(s, "on_player_event", args, 4, on_event_done);
    }
    kura_value args[2] = {kura_int(t), kura_num((double)t / TICK_HZ)};
    call(s, "on_tick", args, 2, on_tick_done);
    int rc = kura_run(s->rt);
    if (rc != KURA_OK)
      report(s, "the tick", rc);
  }
  return s->failures ? 1 : 0;
}

/* --- checking the final state from C ------------------------------------------ */

struct read {
  int err, outcome;
  char value[256];
};

static void on_read(void *udata, const kura_result *res)
{
  struct read *r = udata;
  r->err = res->err;
  r->outcome = res->outcome;
  size_t n = res->vlen < sizeof r->value - 1 ? res->vlen : sizeof r->value - 1;
  if (res->value)
    memcpy(r->value, res->value, n);
  r->value[res->value ? n : 0] = '\0';
}

/* Reads key of the match cache; with the memory backend the callback has run
 * when kura_get returns, with a remote one after the loop turned. */
static struct read get(struct server *s, const char *key)
{
  struct read r = {-1, 0, ""};
  kura_client *c = kura_client(s->rt);
  if (!c || kura_get(c, "match", key, strlen(key), on_read, &r) != KURA_OK)
    return r;
  while (r.err == -1 && kura_tick(s->rt) > 0) {}
  return r;
}

static void check_counter(struct server *s, const char *name, long expect)
{
  char key[64], what[128];
  snprintf(key, sizeof key, "counters:%s", name);
  struct read r = get(s, key);
  long got = r.err == 0 && r.outcome == KURA_HIT ? strtol(r.value, NULL, 10) : -1;
  snprintf(what, sizeof what, "%s is %ld, expected %ld", key, got, expect);
  check(s, got == expect, what);
}

static void on_summary(void *udata, int err, const kura_value *res, int nres)
{
  struct server *s = udata;
  if (err != KURA_OK || nres != 2 || res[0].type != KURA_TSTR) {
    report(s, "summary", err);
    return;
  }
  snprintf(s->summary, sizeof s->summary, "%.*s", (int)res[0].len, res[0].s);
  s->online = res[1].type == KURA_TINT ? (int)res[1].i : -1;
}

static void check_final(struct server *s, int ticks)
{
  check_counter(s, "ticks", ticks);
  check_counter(s, "seconds", ticks / TICK_HZ);
  check_counter(s, "events", (long)NEVENTS);
  check_counter(s, "online", 3);
  check_counter(s, "scored", 10 + 25 + 5 + 20 + 40 + 10 + 15);
  check(s, s->online == 3, "on_tick reports 3 players online");
  struct read r = get(s, "sessions:carol");
  check(s, r.err == 0 && r.outcome == KURA_MISS, "carol's session is gone");
  r = get(s, "sessions:alice");
  check(s, r.err == 0 && strstr(r.value, "\"score\":45") != NULL, "alice's session holds 45");
  r = get(s, "leaderboard:top");
  check(s, r.err == 0 && r.outcome == KURA_HIT, "the leaderboard exists");

  s->online = -1;
  check(s, call(s, "summary", NULL, 0, on_summary) == KURA_OK && kura_run(s->rt) == KURA_OK,
        "summary() runs");
  printf("leaderboard: %s; online: %d\n", s->summary, s->online);
  check(s, strcmp(s->summary, "alice=45,dave=40,bob=35") == 0,
        "the leaderboard is alice=45,dave=40,bob=35");
  check(s, s->online == 3, "summary() reports 3 players online");
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: game_server MATCH.lua [ticks]\n");
    return 2;
  }
  int ticks = argc > 2 ? atoi(argv[2]) : 10 * TICK_HZ;
  if (ticks < 300 + 1) {
    fprintf(stderr, "game_server: the scripted match needs at least 301 ticks\n");
    return 2;
  }
  /* Gameplay scripts are sandboxed, with limits: a bad script cannot stall
   * the tick or eat the server's memory. */
  kura_options opts = {0};
  opts.sandbox = 1;
  opts.instruction_budget = 1000000;
  opts.memory_limit = 64u << 20;
  opts.backend = getenv("KURA_BACKEND") ? NULL : "memory";
  struct server s = {0};
  if (kura_runtime_new(&opts, &s.rt) != KURA_OK) {
    fprintf(stderr, "game_server: cannot create the runtime\n");
    return 1;
  }
  int status = 1;
  if (kura_load_file(s.rt, argv[1]) != KURA_OK) {
    fprintf(stderr, "game_server: %s\n", kura_errmsg(s.rt));
  } else if (play(&s, ticks) == 0) {
    check_final(&s, ticks);
    status = s.failures ? 1 : 0;
  }
  printf("game_server: %d ticks, %zu events, kura %s: %s\n", ticks, NEVENTS, kura_version(),
         status ? "FAILED" : "ok");
  kura_runtime_free(s.rt);
  return status;
}
