/* The embedding API of include/kura.h, through the public header only:
 * runtimes, loading scripts, kura_call with values in and out, errors, the
 * loop (kura_tick, kura_run, the host's loop), tasks, and the cache from C
 * seen by Lua and the other way round. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "kura.h"
#include "ktest.h"

static kura_runtime *new_rt(void)
{
  kura_runtime *rt = NULL;
  kura_options o = {0};
  o.backend = "memory";
  return kura_runtime_new(&o, &rt) == KURA_OK ? rt : NULL;
}

KTEST(call_values)
{
  kura_runtime *rt = new_rt();
  KCHECK(rt);
  KCHECK_EQ(kura_load_string(rt,
    "function echo(...) return ... end\n"
    "function add(a, b) return a + b, 'sum', {} end\n", "=defs"), KURA_OK);
  kura_value in[5] = {kura_int(7), kura_num(2.5), kura_str("hi"), kura_bool(1),
                      kura_lstr("a\0b", 3)};
  kura_value out[6];
  KCHECK_EQ(kura_call(rt, "echo", in, 5, out, 6), KURA_OK);
  KCHECK(out[0].type == KURA_TINT && out[0].i == 7);
  KCHECK(out[1].type == KURA_TNUM && out[1].n == 2.5);
  KCHECK(out[2].type == KURA_TSTR && out[2].len == 2 && strcmp(out[2].s, "hi") == 0);
  KCHECK(out[3].type == KURA_TBOOL && out[3].b == 1);
  KCHECK(out[4].type == KURA_TSTR && out[4].len == 3 && memcmp(out[4].s, "a\0b", 3) == 0);
  KCHECK(out[5].type == KURA_TNIL);
  in[0] = kura_int(40), in[1] = kura_int(2);
  KCHECK_EQ(kura_call(rt, "add", in, 2, out, 3), KURA_OK);
  KCHECK(out[0].type == KURA_TINT && out[0].i == 42);
  KCHECK(out[1].type == KURA_TSTR && strcmp(out[1].s, "sum") == 0);
  KCHECK(out[2].type == KURA_TOTHER && strcmp(out[2].s, "table") == 0);
  KCHECK_EQ(kura_call(rt, "add", in, 2, NULL, 0), KURA_OK);
  kura_runtime_free(rt);
}

KTEST(call_errors)
{
  kura_runtime *rt = new_rt();
  KCHECK(rt);
  KCHECK_EQ(kura_load_string(rt, "function boom(x) error('boom ' .. x) end\n"
                                 "counter = 0\n"
                                 "function bump() counter = counter + 1 return counter end",
                             "=defs"), KURA_OK);
  kura_value a = kura_str("now"), r;
  KCHECK_EQ(kura_call(rt, "boom", &a, 1, NULL, 0), KURA_EUNKNOWN);
  KCHECK(strstr(kura_errmsg(rt), "boom now") != NULL);
  KCHECK(strstr(kura_errmsg(rt), "traceback") != NULL);
  KCHECK_EQ(kura_call(rt, "nope", NULL, 0, NULL, 0), KURA_ENOTFOUND);
  KCHECK(strstr(kura_errmsg(rt), "nope") != NULL);
  KCHECK_EQ(kura_call(rt, "counter", NULL, 0, NULL, 0), KURA_ENOTFOUND);
  kura_value bad = {KURA_TOTHER, 0, 0, 0, "x", 1};
  KCHECK_EQ(kura_call(rt, "bump", &bad, 1, NULL, 0), KURA_EINVAL);
  KCHECK_EQ(kura_call(rt, NULL, NULL, 0, NULL, 0), KURA_EINVAL);
  /* the runtime goes on after every failure */
  KCHECK_EQ(kura_call(rt, "bump", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TINT && r.i == 1);
  KCHECK_EQ(kura_load_string(rt, "this is not lua", "=bad"), KURA_EINVAL);
  KCHECK(strstr(kura_errmsg(rt), "bad") != NULL);
  KCHECK_EQ(kura_load_string(rt, "error('top level')", "=raise"), KURA_EUNKNOWN);
  KCHECK(strstr(kura_errmsg(rt), "top level") != NULL);
  KCHECK_EQ(kura_load_file(rt, "/nonexistent/kura/x.lua"), KURA_EINVAL);
  KCHECK_EQ(kura_call(rt, "bump", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.i == 2);
  kura_runtime_free(rt);
}

/* A main chunk that suspends has finished when kura_load_* returns: what it
 * defines after its waits is there. */
KTEST(tasks_and_tick)
{
  kura_runtime *rt = new_rt();
  KCHECK(rt);
  KCHECK_EQ(kura_load_string(rt, "phase = 1; kura.sleep(0.01); phase = 2\n"
                                 "function get_phase() return phase end\n"
                                 "function later(n) kura.sleep(0); ran = n end\n"
                                 "function get_ran() return ran end", "=main"), KURA_OK);
  kura_value r;
  KCHECK_EQ(kura_call(rt, "get_phase", NULL, 0, &r, 1), KURA_OK);
  KCHECK_EQ(r.i, 2);
  kura_value n = kura_int(9);
  KCHECK_EQ(kura_spawn(rt, "later", &n, 1), KURA_OK);
  KCHECK_EQ(kura_run(rt), KURA_OK);
  KCHECK_EQ(kura_call(rt, "get_ran", NULL, 0, &r, 1), KURA_OK);
  KCHECK_EQ(r.i, 9);
  KCHECK_EQ(kura_tick(rt), 0);
  /* a handler that would suspend outside a task fails cleanly */
  KCHECK_EQ(kura_load_string(rt, "function waits() kura.sleep(1) end", "=w"), KURA_OK);
  KCHECK_EQ(kura_call(rt, "waits", NULL, 0, NULL, 0), KURA_EUNKNOWN);
  KCHECK(strstr(kura_errmsg(rt), "cannot suspend") != NULL);
  KCHECK(strstr(kura_errmsg(rt), "kura_call_async") != NULL);
  kura_runtime_free(rt);
}

struct seen {
  int calls, err, outcome;
  char value[64];
  size_t vlen;
  int64_t integer;
  double ttl;
};

static void record(void *udata, const kura_result *res)
{
  struct seen *s = udata;
  s->calls++;
  s->err = res->err;
  s->outcome = res->outcome;
  s->vlen = res->vlen < sizeof s->value ? res->vlen : sizeof s->value;
  if (res->value)
    memcpy(s->value, res->value, s->vlen);
  s->integer = res->integer;
  s->ttl = res->ttl;
}

/* The C client and the scripts' kura.client() see the same caches. */
KTEST(c_cache_api)
{
  kura_runtime *rt = new_rt();
  KCHECK(rt);
  kura_client *c = kura_client(rt);
  KCHECK(c && c == kura_client_get(rt));
  struct seen s = {0};
  KCHECK_EQ(kura_create_cache(c, "emb_c", record, &s), KURA_OK);
  KCHECK(s.calls == 1 && s.err == 0 && (s.outcome == KURA_HIT || s.outcome == KURA_SKIPPED));
  KCHECK_EQ(kura_set(c, "emb_c", "k", 1, "v1", 2, 0, record, &s), KURA_OK);
  KCHECK_EQ(s.err, 0);
  memset(&s, 0, sizeof s);
  KCHECK_EQ(kura_get(c, "emb_c", "k", 1, record, &s), KURA_OK);
  KCHECK(s.calls == 1 && s.outcome == KURA_HIT && s.vlen == 2 && memcmp(s.value, "v1", 2) == 0);
  KCHECK_EQ(kura_get(c, "emb_c", "zz", 2, record, &s), KURA_OK);
  KCHECK_EQ(s.outcome, KURA_MISS);
  KCHECK_EQ(kura_increment(c, "emb_c", "n", 1, 5, 0, record, &s), KURA_OK);
  KCHECK_EQ(kura_increment(c, "emb_c", "n", 1, -2, 0, record, &s), KURA_OK);
  KCHECK(s.err == 0 && s.integer == 3);
  KCHECK_EQ(kura_increment(c, "emb_c", "k", 1, 1, 0, record, &s), KURA_OK);
  KCHECK_EQ(s.err, KURA_EPRECOND);
  KCHECK_EQ(kura_set_if(c, "emb_c", "k", 1, "v2", 2, KURA_SET_IF_ABSENT, NULL, 0, 0, record, &s),
            KURA_OK);
  KCHECK(s.outcome != KURA_HIT);
  KCHECK_EQ(kura_set_if(c, "emb_c", "k", 1, "v2", 2, KURA_SET_IF_EQUAL, "v1", 2, 0, record, &s),
            KURA_OK);
  KCHECK_EQ(s.outcome, KURA_HIT);
  KCHECK_EQ(kura_key_exists(c, "emb_c", "k", 1, record, &s), KURA_OK);
  KCHECK_EQ(s.outcome, KURA_HIT);
  KCHECK_EQ(kura_update_ttl(c, "emb_c", "k", 1, 100, record, &s), KURA_OK);
  KCHECK_EQ(s.outcome, KURA_HIT);
  KCHECK_EQ(kura_item_get_ttl(c, "emb_c", "k", 1, record, &s), KURA_OK);
  KCHECK(s.outcome == KURA_HIT && s.ttl > 99 && s.ttl <= 100);
  /* Lua sees what C wrote, and C what Lua wrote */
  KCHECK_EQ(kura_load_string(rt,
    "local c = kura.client()\n"
    "function peek(k) return c:get('emb_c', k) end\n"
    "function poke(k, v) return c:set('emb_c', k, v) end", "=peek"), KURA_OK);
  kura_value a[2] = {kura_str("k"), kura_str("from lua")}, r;
  KCHECK_EQ(kura_call(rt, "peek", a, 1, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TSTR && strcmp(r.s, "v2") == 0);
  KCHECK_EQ(kura_call(rt, "poke", a, 2, NULL, 0), KURA_OK);
  KCHECK_EQ(kura_get(c, "emb_c", "k", 1, record, &s), KURA_OK);
  KCHECK(s.vlen == 8 && memcmp(s.value, "from lua", 8) == 0);
  /* refusals: the callback is never called */
  memset(&s, 0, sizeof s);
  KCHECK_EQ(kura_get(c, "", "k", 1, record, &s), KURA_EINVAL);
  KCHECK_EQ(kura_set(c, "emb_c", "k", 1, "v", 1, NAN, record, &s), KURA_EINVAL);
  KCHECK(strstr(kura_client_errmsg(c), "ttl") != NULL);
  KCHECK_EQ(kura_update_ttl(c, "emb_c", "k", 1, 0, record, &s), KURA_EINVAL);
  KCHECK_EQ(kura_get(c, NULL, "k", 1, record, &s), KURA_EINVAL);
  KCHECK_EQ(s.calls, 0);
  KCHECK_EQ(kura_get(c, "no_such_cache_emb", "k", 1, record, &s), KURA_OK);
  KCHECK_EQ(s.err, KURA_ENOTFOUND);
  KCHECK_EQ(kura_delete(c, "emb_c", "k", 1, NULL, NULL), KURA_OK);
  KCHECK_EQ(kura_flush_cache(c, "emb_c", record, &s), KURA_OK);
  KCHECK_EQ(kura_delete_cache(c, "emb_c", record, &s), KURA_OK);
  KCHECK_EQ(s.err, 0);
  KCHECK_EQ(kura_delete_cache(c, "emb_c", record, &s), KURA_OK);
  KCHECK_EQ(s.err, KURA_ENOTFOUND);
  kura_runtime_free(rt);
}

/* The runtime on the host's loop: the host runs the loop itself. */
KTEST(host_loop)
{
  uv_loop_t loop;
  KCHECK_EQ(uv_loop_init(&loop), 0);
  kura_options o = {0};
  o.loop = &loop;
  kura_runtime *rt;
  KCHECK_EQ(kura_runtime_new(&o, &rt), KURA_OK);
  KCHECK_EQ(kura_load_string(rt, "done = false; kura.after(0.001, function() done = true end)\n"
                                 "function is_done() return done end", "=host"), KURA_OK);
  uv_run(&loop, UV_RUN_DEFAULT);
  kura_value r;
  KCHECK_EQ(kura_call(rt, "is_done", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TBOOL && r.b == 1);
  kura_runtime_free(rt);
  KCHECK_EQ(uv_loop_close(&loop), 0);
}

/* Options: lua_path for require, and a runtime with no options at all. */
KTEST(options)
{
  kura_runtime *rt;
  KCHECK_EQ(kura_runtime_new(NULL, &rt), KURA_OK);
  KCHECK(kura_lua_bytes(rt) > 0);
  KCHECK_EQ(kura_load_string(rt, "function v() return kura.version end", "=v"), KURA_OK);
  kura_value r;
  KCHECK_EQ(kura_call(rt, "v", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TSTR && strcmp(r.s, kura_version()) == 0);
  kura_runtime_free(rt);
  kura_runtime_free(NULL);
  KCHECK_EQ(kura_runtime_new(NULL, NULL), KURA_EINVAL);
  kura_options o = {0};
  o.lua_path = "/nonexistent-kura/?.lua";
  KCHECK_EQ(kura_runtime_new(&o, &rt), KURA_OK);
  KCHECK_EQ(kura_load_string(rt, "function p() return package.path end", "=p"), KURA_OK);
  KCHECK_EQ(kura_call(rt, "p", NULL, 0, &r, 1), KURA_OK);
  KCHECK(strncmp(r.s, "/nonexistent-kura/?.lua;", 24) == 0);
  kura_runtime_free(rt);
}

/* Values that cannot work are refused where they enter: a backend kura does
 * not have (or cannot read), a default TTL that is NaN or past ten years, a
 * call's TTL past KURA_TTL_MAX_SECONDS, and MOMENTO_TTL_SECONDS that is no
 * number (it once became 60 without a word). */
KTEST(bad_values_refused)
{
  kura_runtime *rt = (kura_runtime *)1;
  static const char *const backends[] = {"bogus://x", "redis://h:99999999", "rediss://h:6380",
                                         "redis-cluster://a:1,b:0", ""};
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
    kura_options o = {0};
    o.backend = backends[i];
    KCHECK_EQ(kura_runtime_new(&o, &rt), KURA_EINVAL);
    KCHECK(rt == NULL);
  }
  kura_options o = {0};
  o.default_ttl = NAN;
  KCHECK_EQ(kura_runtime_new(&o, &rt), KURA_EINVAL);
  o.default_ttl = KURA_TTL_MAX_SECONDS + 1.0;
  KCHECK_EQ(kura_runtime_new(&o, &rt), KURA_EINVAL);
  o.default_ttl = KURA_TTL_MAX_SECONDS;
  KCHECK_EQ(kura_runtime_new(&o, &rt), KURA_OK);
  kura_client *c = kura_client(rt);
  KCHECK(c);
  KCHECK_EQ(kura_create_cache(c, "bad-values", NULL, NULL), KURA_OK);
  KCHECK_EQ(kura_set(c, "bad-values", "k", 1, "v", 1, KURA_TTL_MAX_SECONDS + 1.0, NULL, NULL),
            KURA_EINVAL);
  KCHECK(strstr(kura_client_errmsg(c), "ten years") != NULL);
  KCHECK_EQ(kura_set(c, "bad-values", "k", 1, "v", 1, NAN, NULL, NULL), KURA_EINVAL);
  KCHECK_EQ(kura_update_ttl(c, "bad-values", "k", 1, 1e300, NULL, NULL), KURA_EINVAL);
  KCHECK_EQ(kura_set(c, "bad-values", "k", 1, "v", 1, KURA_TTL_MAX_SECONDS, NULL, NULL), KURA_OK);
  kura_runtime_free(rt);
  setenv("MOMENTO_TTL_SECONDS", "soon", 1);
  KCHECK_EQ(kura_runtime_new(NULL, &rt), KURA_OK);
  KCHECK_EQ(kura_load_string(rt, "function mk() local c, e = kura.client{}\n"
                                 "return c, e and e.code, e and e.message end", "=mk"), KURA_OK);
  kura_value r[3];
  KCHECK_EQ(kura_call(rt, "mk", NULL, 0, r, 3), KURA_OK);
  unsetenv("MOMENTO_TTL_SECONDS");
  KCHECK(r[0].type == KURA_TNIL);
  KCHECK(r[1].type == KURA_TSTR && strcmp(r[1].s, "INVALID_ARGUMENT_ERROR") == 0);
  KCHECK(r[2].type == KURA_TSTR && strstr(r[2].s, "MOMENTO_TTL_SECONDS: 'soon' is not") != NULL);
  kura_runtime_free(rt);
}

/* kura_options_check and kura_seconds_parse: what the kura command uses to
 * refuse a bad configuration before a script runs, for any host. Each
 * refusal names where the value came from; NULLs are refused, not
 * dereferenced; a field the host set wins over the environment. */
KTEST(options_checked_before_anything_runs)
{
  char why[320];
  double s = -1;
  KCHECK_EQ(kura_options_check(NULL, NULL, 0), KURA_OK);
  KCHECK_EQ(kura_seconds_parse("0.5", &s, why, sizeof why), KURA_OK);
  KCHECK(s == 0.5);
  static const char *const bad_seconds[] = {"", " 5", "5 ", "\t5", "5\n", "-3", "0",
                                            "1e300", "nan", "inf", "0x10", "5s", "315360001",
                                            "\x01\xff"};
  for (size_t i = 0; i < sizeof bad_seconds / sizeof bad_seconds[0]; i++) {
    KCHECK_EQ(kura_seconds_parse(bad_seconds[i], &s, why, sizeof why), KURA_EINVAL);
    KCHECK(strstr(why, "is not a number of seconds") != NULL);
  }
  KCHECK_EQ(kura_seconds_parse(NULL, &s, why, sizeof why), KURA_EINVAL);
  KCHECK_EQ(kura_seconds_parse("5", NULL, NULL, 0), KURA_EINVAL);
  kura_options o = {0};
  o.backend = "bogus://x";
  KCHECK_EQ(kura_options_check(&o, why, sizeof why), KURA_EINVAL);
  KCHECK(strncmp(why, "backend: ", 9) == 0 && strstr(why, "bogus") != NULL);
  KCHECK_EQ(kura_options_check(&o, why, 4), KURA_EINVAL); /* cut, NUL-terminated */
  KCHECK_EQ(strlen(why), 3);
  o.backend = NULL;
  o.default_ttl = NAN;
  KCHECK_EQ(kura_options_check(&o, why, sizeof why), KURA_EINVAL);
  KCHECK(strncmp(why, "default_ttl: ", 13) == 0);
  o.default_ttl = 0;
  setenv("KURA_BACKEND", "nope", 1);
  setenv("MOMENTO_TTL_SECONDS", "soon", 1);
  int env_backend = kura_options_check(&o, why, sizeof why);
  int env_backend_named = strncmp(why, "KURA_BACKEND: ", 14) == 0;
  o.backend = "memory"; /* the host's field wins over KURA_BACKEND */
  int env_ttl = kura_options_check(&o, why, sizeof why);
  int env_ttl_named = strncmp(why, "MOMENTO_TTL_SECONDS: 'soon'", 27) == 0;
  o.default_ttl = 5; /* and over MOMENTO_TTL_SECONDS */
  int fields_win = kura_options_check(&o, why, sizeof why);
  unsetenv("KURA_BACKEND");
  unsetenv("MOMENTO_TTL_SECONDS");
  KCHECK_EQ(env_backend, KURA_EINVAL);
  KCHECK(env_backend_named);
  KCHECK_EQ(env_ttl, KURA_EINVAL);
  KCHECK(env_ttl_named);
  KCHECK_EQ(fields_win, KURA_OK);
}

/* The runtime keeps the Lua state's freed small blocks for reuse: what
 * Lua holds must stay intact through strings and tables made, grown across
 * the kept sizes (up to ~1 KB), shrunk and dropped, and kura_lua_bytes must
 * still be exactly what Lua counts. */
KTEST(lua_memory_through_block_reuse)
{
  kura_runtime *rt;
  KCHECK_EQ(kura_runtime_new(NULL, &rt), KURA_OK);
  KCHECK_EQ(kura_load_string(rt,
    "function churn()\n"
    "  local keep = {}\n"
    "  for round = 1, 30 do\n"
    "    for n = 0, 2100, 7 do\n"
    "      local s = string.rep(string.char(65 + (n + round) % 26), n)\n"
    "      if n % 3 == 0 then keep[#keep + 1] = s end\n"
    "    end\n"
    "    local t = {}\n"
    "    for i = 1, 300 do t[i] = i; t['k' .. i] = i end\n"
    "    for i = 1, 300 do t['k' .. i] = nil end\n"
    "    for i = 1, 40 do t['x' .. i] = i end\n"
    "    local sum = 0\n"
    "    for i = 1, 300 do sum = sum + t[i] end\n"
    "    if sum ~= 45150 or t.x40 ~= 40 then return 'table ' .. round end\n"
    "    if round % 10 == 0 then keep = {} collectgarbage() end\n"
    "  end\n"
    "  for i, s in ipairs(keep) do\n"
    "    local n = (i - 1) * 21\n"
    "    if #s ~= n or s ~= string.rep(string.char(65 + (n + 30) % 26), n) then\n"
    "      return 'string ' .. i\n"
    "    end\n"
    "  end\n"
    "  return 'ok'\n"
    "end\n"
    "function count() return collectgarbage('count') * 1024 end", "=mem"), KURA_OK);
  kura_value r;
  KCHECK_EQ(kura_call(rt, "churn", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TSTR && strcmp(r.s, "ok") == 0);
  KCHECK_EQ(kura_call(rt, "count", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TNUM);
  KCHECK_EQ((double)kura_lua_bytes(rt), r.n);
  kura_runtime_free(rt);
}

int main(int argc, char **argv)
{
  static const struct ktest tests[] = {
    KENTRY(call_values), KENTRY(call_errors), KENTRY(tasks_and_tick),
    KENTRY(c_cache_api), KENTRY(host_loop), KENTRY(options), KENTRY(bad_values_refused),
    KENTRY(options_checked_before_anything_runs), KENTRY(lua_memory_through_block_reuse),
  };
  return ktest_run(tests, sizeof tests / sizeof tests[0], argc, argv);
}
