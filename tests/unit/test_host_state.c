/* `kura` opened in a Lua state the host owns (as a game server that makes
 * its own states does): the host keeps its own data in the state's extra
 * space (lua_getextraspace), and kura must neither read nor write it, in the
 * main thread or in the threads of its tasks. The host drives kura's loop
 * with kura.run or, frame by frame, kura.poll; lua_close ends kura's loop,
 * tasks and clients with the state, even with tasks still waiting. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "ktest.h"

int luaopen_kura(lua_State *L);

struct host_data {
  uint64_t magic;
  int calls;
};

#define HOST_MAGIC 0x6b7572612d686f73ull

/* The host's data as every thread of the state sees it. */
static struct host_data *host_of(lua_State *L)
{
  struct host_data *hd;
  memcpy(&hd, lua_getextraspace(L), sizeof hd);
  return hd;
}

/* host_check(): what a host's C function does on every call: read its data
 * from the extra space of the thread that calls it (a kura task's, too).
 * Raises when the data is not the host's. */
static int host_check(lua_State *L)
{
  struct host_data *hd = host_of(L);
  if (!hd || hd->magic != HOST_MAGIC)
    return luaL_error(L, "the extra space does not hold the host's data any more");
  hd->calls++;
  lua_pushinteger(L, hd->calls);
  return 1;
}

static lua_State *host_state(struct host_data *hd)
{
  lua_State *L = luaL_newstate();
  if (!L)
    return NULL;
  memcpy(lua_getextraspace(L), &hd, sizeof hd);
  luaL_openlibs(L);
  lua_register(L, "host_check", host_check);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_kura);
  lua_setfield(L, -2, "kura"); /* require "kura", as a module the host offers */
  lua_pop(L, 1);
  luaL_requiref(L, "kura", luaopen_kura, 1);
  lua_pop(L, 1);
  return L;
}

static int run(lua_State *L, const char *code)
{
  if (luaL_dostring(L, code) == LUA_OK)
    return 0;
  fprintf(stderr, "  %s\n", lua_tostring(L, -1));
  lua_pop(L, 1);
  return -1;
}

KTEST(extra_space_stays_the_hosts)
{
  struct host_data hd = {HOST_MAGIC, 0};
  lua_State *L = host_state(&hd);
  KCHECK(L != NULL);
  KCHECK(host_of(L) == &hd);
  KCHECK_EQ(run(L, "local c = kura.client()\n"
                   "assert(c:create_cache('h') and c:set('h', 'k', 'v'))\n"
                   "assert(c:get('h', 'k') == 'v')\n"
                   "local n = kura.run(function()\n"
                   "  host_check()\n"
                   "  local ts = {}\n"
                   "  for i = 1, 20 do\n"
                   "    ts[i] = kura.spawn(function() kura.sleep(0.001 * i) return host_check() end)\n"
                   "  end\n"
                   "  kura.after(0.002, function() host_check() end)\n"
                   "  for i = 1, 20 do assert(ts[i]:join()) end\n"
                   "  return host_check()\n"
                   "end)\n"
                   "assert(n == 23, n)"), 0);
  KCHECK(host_of(L) == &hd);
  KCHECK_EQ(hd.magic, HOST_MAGIC);
  KCHECK_EQ(hd.calls, 23);
  lua_close(L);
}

KTEST(a_host_frame_loop_drives_kura_with_poll)
{
  struct host_data hd = {HOST_MAGIC, 0};
  lua_State *L = host_state(&hd);
  KCHECK(L != NULL);
  KCHECK_EQ(run(L, "done = 0\n"
                   "for i = 1, 10 do\n"
                   "  kura.spawn(function() kura.sleep(0.002 * i) host_check() done = done + 1 end)\n"
                   "end"), 0);
  int frames = 0, pending = 1;
  while (pending > 0 && frames < 100000) {
    KCHECK_EQ(luaL_dostring(L, "return kura.poll(0.001)"), LUA_OK);
    pending = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    frames++;
  }
  KCHECK_EQ(pending, 0);
  KCHECK(frames > 1); /* the sleeps took several frames */
  lua_getglobal(L, "done");
  KCHECK_EQ(lua_tointeger(L, -1), 10);
  lua_pop(L, 1);
  KCHECK_EQ(hd.calls, 10);
  lua_close(L);
}

/* pcall(kura.run, fn) gives what fn raised when it is no string (a table
 * a host matches on), and a string error with its traceback; a task that
 * fails under kura.run is not an uncaught error of the state. */
KTEST(kura_run_raises_what_fn_raised)
{
  struct host_data hd = {HOST_MAGIC, 0};
  lua_State *L = host_state(&hd);
  KCHECK(L != NULL);
  KCHECK_EQ(run(L, "local obj = setmetatable({}, {__index = {code = 'E'}})\n"
                   "local ok, e = pcall(kura.run, function() kura.sleep(0.001) error(obj) end)\n"
                   "assert(not ok and rawequal(e, obj) and e.code == 'E', tostring(e))\n"
                   "ok, e = pcall(kura.run, function() local t = kura.spawn(function()\n"
                   "  error(obj) end) local v, err = t:join() error(err) end)\n"
                   "assert(not ok and type(e) == 'string' and e:find('stack traceback', 1, true), e)\n"
                   "ok, e = pcall(kura.run, function() error('plain') end)\n"
                   "assert(not ok and e:find('plain', 1, true) and e:find('stack traceback', 1, true))\n"
                   "assert(kura.run(function() return 1 end) == 1)"), 0);
  lua_close(L);
}

KTEST(kura_run_is_not_reentrant)
{
  struct host_data hd = {HOST_MAGIC, 0};
  lua_State *L = host_state(&hd);
  KCHECK(L != NULL);
  KCHECK_EQ(run(L, "local err = kura.run(function()\n"
                   "  local ok, e = pcall(kura.run, function() end)\n"
                   "  assert(not ok)\n"
                   "  return e\n"
                   "end)\n"
                   "assert(err:find('running already', 1, true), err)\n"
                   "kura.every(0.001, function() local ok, e = pcall(kura.poll)\n"
                   "  assert(not ok and e:find('running already', 1, true), e)\n"
                   "  error('stop') end)\n"), 0);
  lua_close(L);
}

KTEST(close_with_tasks_and_timers_waiting)
{
  struct host_data hd = {HOST_MAGIC, 0};
  lua_State *L = host_state(&hd);
  KCHECK(L != NULL);
  KCHECK_EQ(run(L, "kura.spawn(function() kura.sleep(3600) end)\n"
                   "kura.every(0.5, function() end)\n"
                   "local c = kura.client()\n"
                   "kura.spawn(function() host_check() c:create_cache('x') kura.sleep(3600) end)\n"
                   "assert(kura.poll() == 3)"), 0);
  KCHECK_EQ(hd.calls, 1);
  lua_close(L); /* the sanitizers see any leak or use after free */
}

KTEST(two_states_have_two_runtimes)
{
  struct host_data a = {HOST_MAGIC, 0}, b = {HOST_MAGIC, 0};
  lua_State *la = host_state(&a), *lb = host_state(&b);
  KCHECK(la != NULL && lb != NULL);
  KCHECK_EQ(run(la, "kura.spawn(function() kura.sleep(3600) end)"), 0);
  KCHECK_EQ(run(lb, "assert(kura.poll() == 0)\n"
                    "assert(kura.run(function() kura.sleep(0.001) return host_check() end) == 1)"),
            0);
  KCHECK_EQ(a.calls, 0);
  KCHECK_EQ(b.calls, 1);
  lua_close(lb);
  KCHECK_EQ(run(la, "assert(kura.poll() == 1)"), 0);
  lua_close(la);
}

KTEST(require_twice_gives_the_same_runtime)
{
  struct host_data hd = {HOST_MAGIC, 0};
  lua_State *L = host_state(&hd);
  KCHECK(L != NULL);
  KCHECK_EQ(run(L, "kura.spawn(function() kura.sleep(0.001) end)\n"
                   "local c = kura.client{}\n"
                   "assert(c:create_cache('twice') and c:set('twice', 'k', 'v'))\n"
                   "package.loaded.kura = nil\n"
                   "local k2 = require 'kura'\n"
                   "assert(k2 ~= kura and k2.poll() == 1)\n"
                   "k2.run(function() kura.sleep(0.002) end)\n"
                   "assert(kura.poll() == 0)\n"
                   "-- the clients made before are still kura's: their metatable stays\n"
                   "assert(tostring(c):find('kura.client(memory)', 1, true), tostring(c))\n"
                   "assert(k2.client{}:get('twice', 'k') == 'v')"), 0);
  lua_close(L);
}

/* The extra space of every thread as the host set it, byte for byte: a
 * host C function kura's tasks and timers call compares it. */
static unsigned char poison[LUA_EXTRASPACE];

static int poison_intact(lua_State *L)
{
  lua_pushboolean(L, memcmp(lua_getextraspace(L), poison, LUA_EXTRASPACE) == 0);
  return 1;
}

/* The extra space holds a pointer to a page no one may read: kura reading
 * it as a pointer of its own (as it once did) faults at once instead of
 * reading garbage that may look right. Everything kura does (a client,
 * kura.run, tasks, timers, kura.poll, a second require, the close) leaves
 * every byte as the host set it, in the main thread and in kura's tasks. */
KTEST(extra_space_poisoned_is_never_read_nor_written)
{
  long page = sysconf(_SC_PAGESIZE);
  void *trap = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  KCHECK(trap != MAP_FAILED);
  for (size_t i = 0; i + sizeof trap <= LUA_EXTRASPACE; i += sizeof trap)
    memcpy(poison + i, &trap, sizeof trap);
  lua_State *L = luaL_newstate();
  KCHECK(L != NULL);
  memcpy(lua_getextraspace(L), poison, LUA_EXTRASPACE);
  luaL_openlibs(L);
  lua_register(L, "poison_intact", poison_intact);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_kura);
  lua_setfield(L, -2, "kura");
  lua_pop(L, 1);
  luaL_requiref(L, "kura", luaopen_kura, 1);
  lua_pop(L, 1);
  KCHECK_EQ(run(L, "local c = kura.client()\n"
                   "assert(c:create_cache('p') and c:set('p', 'k', 'v'))\n"
                   "assert(poison_intact())\n"
                   "local n = kura.run(function()\n"
                   "  assert(poison_intact())\n"
                   "  local ts = {}\n"
                   "  for i = 1, 10 do\n"
                   "    ts[i] = kura.spawn(function() kura.sleep(0.001) return poison_intact() end)\n"
                   "  end\n"
                   "  local tm = kura.every(0.001, function() assert(poison_intact()) end)\n"
                   "  for i = 1, 10 do assert(ts[i]:join()) end\n"
                   "  tm:stop()\n"
                   "  return c:get('p', 'k')\n"
                   "end)\n"
                   "assert(n == 'v')\n"
                   "kura.spawn(function() kura.sleep(0.001) assert(poison_intact()) end)\n"
                   "while kura.poll(0.01) > 0 do end\n"
                   "package.loaded.kura = nil\n"
                   "assert(require('kura').poll() == 0 and poison_intact())\n"
                   "kura.spawn(function() kura.sleep(3600) end)"), 0);
  KCHECK(memcmp(lua_getextraspace(L), poison, LUA_EXTRASPACE) == 0);
  lua_close(L); /* with a task still waiting */
  munmap(trap, (size_t)page);
}

KTEST_MAIN(KENTRY(extra_space_stays_the_hosts), KENTRY(a_host_frame_loop_drives_kura_with_poll),
           KENTRY(kura_run_raises_what_fn_raised), KENTRY(kura_run_is_not_reentrant), KENTRY(close_with_tasks_and_timers_waiting),
           KENTRY(two_states_have_two_runtimes), KENTRY(require_twice_gives_the_same_runtime),
           KENTRY(extra_space_poisoned_is_never_read_nor_written))
