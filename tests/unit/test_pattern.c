/* The sandbox's pattern functions (src/runtime/pattern.c) give what Lua's
 * own string.find, match, gmatch and gsub give: hand-written cases and a
 * fuzzer of random patterns and subjects (tests/unit/pattern_fuzz.lua),
 * compared result by result, error message by error message. The budget
 * they charge is tested with the sandbox (test_hostile.c).
 *
 * KURA_FUZZ_CASES and KURA_FUZZ_SEED change the fuzzer's run. */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

#include "ktest.h"
#include "runtime/pattern.h"

#ifndef KURA_TEST_DIR
#error "KURA_TEST_DIR (the tests/ folder) must be defined"
#endif

static lua_State *fuzz_state(void)
{
  lua_State *L = luaL_newstate();
  if (!L)
    return NULL;
  luaL_openlibs(L);
  lua_pushcfunction(L, kr_pattern_open);
  lua_call(L, 0, 1);
  lua_setglobal(L, "P");
  if (luaL_dofile(L, KURA_TEST_DIR "/unit/pattern_fuzz.lua") != LUA_OK) {
    fprintf(stderr, "  %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Calls the global fn(a, b); returns its integer result, or -1 (printed). */
static long run(lua_State *L, const char *fn, long a, long b)
{
  lua_getglobal(L, fn);
  lua_pushinteger(L, a);
  lua_pushinteger(L, b);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    fprintf(stderr, "  %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  long n = (long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

static long env_long(const char *name, long def)
{
  const char *v = getenv(name);
  return v && *v ? strtol(v, NULL, 10) : def;
}

KTEST(fixed_cases)
{
  lua_State *L = fuzz_state();
  KCHECK(L);
  long n = run(L, "fixed", 0, 0);
  lua_close(L);
  KCHECK(n > 80);
}

KTEST(fuzz)
{
  lua_State *L = fuzz_state();
  KCHECK(L);
  long cases = env_long("KURA_FUZZ_CASES", 20000), seed = env_long("KURA_FUZZ_SEED", 19);
  long n = run(L, "fuzz", cases, seed);
  lua_close(L);
  if (n != cases)
    fprintf(stderr, "  (KURA_FUZZ_SEED=%ld)\n", seed);
  KCHECK_EQ(n, cases);
}

KTEST_MAIN(KENTRY(fixed_cases), KENTRY(fuzz))
