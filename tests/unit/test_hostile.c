/* Hostile scripts against the sandbox, as a game server would meet them:
 * each runs in a fresh sandboxed runtime (instruction budget 10^7, memory
 * limit 64 MiB unless the case says otherwise) made by a C host on kura.h,
 * in a child process of its own. The child checks the outcome (a bomb must
 * end with an error naming the limit), then that the host's next call into
 * the same runtime works. The parent is a watchdog: a child that has used
 * WATCHDOG_S seconds of CPU (or WALL_S of wall time) hangs the host, and the
 * case fails. The summary gives the slowest case's wall time.
 *
 * The families: code that runs out of the budget's reach (message handlers,
 * __close, __gc, coroutines, metamethods), work done in C (pattern matching,
 * big strings, log lines), the memory the store holds, the cost of failing
 * at the memory cap (a spawn bomb), leaks between scripts (files, shared
 * tables), and the escapes the sandbox always refused. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "kura.h"
#include "ktest.h"

#define WATCHDOG_S 3.0 /* of CPU time */
#define WALL_S 60.0

#ifdef KURA_SANITIZED
#define SANITIZED 1
#else
#define SANITIZED 0
#endif
#define BUDGET 10000000u
#define MEMORY (64u << 20)

enum mode {
  H_LOAD, /* the outcome of loading the script (its main chunk) */
  H_CALL, /* load it, then the outcome of kura_call("run") */
  H_TICK, /* load it, turn the loop (ticks), then result() must hold `msg` */
};

struct hcase {
  const char *name;
  int mode;
  int expect;       /* the KURA_* code of the load or call */
  const char *msg;  /* a part of kura_errmsg (or of result() for H_TICK) */
  const char *code;
  size_t memory;    /* 0: MEMORY */
  int quiet;        /* the script floods stderr: the child's goes to /dev/null */
  size_t store;     /* kura_options.store_max_memory (0: memory_limit's) */
  int also;         /* another code the case may end with (the other limit) */
  long max_lines;   /* > 0: the script may write at most this many lines */
  long max_rss_mb;  /* > 0: the host's peak RSS stays under this (plain build) */
};

#define LOOP "while true do end"
#define CLOSE_LOOP "setmetatable({}, {__close = function() " LOOP " end})"
#define BUDGET_MSG "instruction budget exceeded"
#define MEMORY_MSG "memory limit exceeded"

static const struct hcase cases[] = {
  /* 1. code that ran out of the budget's reach */
  {.name = "xpcall handler loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() xpcall(function() " LOOP " end, function() " LOOP " end) end"},
  {.name = "xpcall handler counts to 3e8", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return xpcall(function() " LOOP " end, function(e)\n"
   "  for i = 1, 3e8 do end return e end) end"},
  {.name = "xpcall handler of a plain error loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return xpcall(error, function() " LOOP " end, 'x') end"},
  {.name = "xpcall handler of a stack overflow loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return xpcall(function() local function f() return 1 + f() end return f() end,\n"
   "  function() " LOOP " end) end", .also = KURA_ENOMEM},
  {.name = "nested xpcall handlers", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return xpcall(function()\n"
   "  return xpcall(function() " LOOP " end, function() error('again') end)\n"
   "end, function() " LOOP " end) end"},
  {.name = "__close loops (main chunk)", .mode = H_LOAD, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "do local x <close> = " CLOSE_LOOP "; " LOOP " end"},
  {.name = "__close loops (kura_call)", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local x <close> = " CLOSE_LOOP "; " LOOP " end"},
  {.name = "__close loops after an error (kura_call)", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local x <close> = " CLOSE_LOOP "; error('boom') end"},
  {.name = "__close loops (task)", .mode = H_TICK, .expect = KURA_OK, .msg = BUDGET_MSG, .code =
   "local t = kura.spawn(function() local x <close> = " CLOSE_LOOP "; " LOOP " end)\n"
   "local ok, err = t:join() r = tostring(err)\n"
   "function result() return r end", .quiet = 1},
  {.name = "__close loops, coroutine closed", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "co = coroutine.create(function() local x <close> = " CLOSE_LOOP "; " LOOP " end)\n"
   "function run() coroutine.resume(co) end\n"
   "function again() return coroutine.close(co) end"},
  {.name = "__close loops in a coroutine.wrap", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() pcall(coroutine.wrap(function() local x <close> = " CLOSE_LOOP "; " LOOP " end))\n"
   "  " LOOP " end"},
  {.name = "__close loops, yielded coroutine closed", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local co = coroutine.create(function() local x <close> = " CLOSE_LOOP "\n"
   "  coroutine.yield() end) coroutine.resume(co) coroutine.close(co) end"},
  {.name = "__close errs in a task, then loops", .mode = H_TICK, .expect = KURA_OK, .msg = BUDGET_MSG, .code =
   "local t = kura.spawn(function()\n"
   "  local a <close> = " CLOSE_LOOP "\n"
   "  local b <close> = setmetatable({}, {__close = function() error('first') end})\n"
   "  " LOOP " end)\n"
   "local ok, err = t:join() r = tostring(err)\n"
   "function result() return r end", .quiet = 1},
  {.name = "__gc refused", .mode = H_LOAD, .expect = KURA_EUNKNOWN, .msg = "__gc", .code =
   "setmetatable({}, {__gc = function() " LOOP " end})"},
  {.name = "pcall catches the stop and goes on", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() while true do pcall(function() " LOOP " end) end end"},
  {.name = "error object with a looping __tostring", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local e = setmetatable({}, {__tostring = function() " LOOP " end})\n"
   "  return xpcall(function() error(e) end, function(x) return tostring(x) end) end"},
  {.name = "table error objects through pcall and error", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local e = setmetatable({}, {__tostring = function() return 'E' end})\n"
   "  for i = 1, 1e9 do local ok, x = pcall(error, e) if x ~= e then return 'lost' end end end"},
  {.name = "tostring of an object that loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return tostring(setmetatable({}, {__tostring = function() " LOOP " end})) end"},
  {.name = "gsub with a function that loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return ('x'):rep(100):gsub('x', function() " LOOP " end) end"},
  {.name = "table.sort comparator loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() table.sort({3, 2, 1}, function() " LOOP " end) end"},
  {.name = "__index loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return setmetatable({}, {__index = function() " LOOP " end}).x end"},
  {.name = "__eq loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local mt = {__eq = function() " LOOP " end}\n"
   "  return setmetatable({}, mt) == setmetatable({}, mt) end"},
  {.name = "__lt loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local mt = {__lt = function() " LOOP " end}\n"
   "  return setmetatable({}, mt) < setmetatable({}, mt) end"},
  {.name = "__concat loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return setmetatable({}, {__concat = function() " LOOP " end}) .. 'x' end"},
  {.name = "__len loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return #setmetatable({}, {__len = function() " LOOP " end}) end"},
  {.name = "__call loops", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return setmetatable({}, {__call = function() " LOOP " end})() end"},
  {.name = "coroutines that each stop short of a hook", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() while true do coroutine.wrap(function() for i = 1, 900 do end end)() end end"},
  {.name = "a coroutine resumed forever", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local co = coroutine.wrap(function() while true do coroutine.yield() end end)\n"
   "  while true do co() end end"},
  {.name = "the resumer goes on after a stopped coroutine", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local ok = coroutine.resume(coroutine.create(function() " LOOP " end))\n"
   "  stolen = true for i = 1, 1e9 do end end\n"
   "function again() return tostring(stolen) end"},
  {.name = "a task spins", .mode = H_TICK, .expect = KURA_OK, .msg = BUDGET_MSG, .code =
   "local t = kura.spawn(function() " LOOP " end)\n"
   "local ok, err = t:join() r = tostring(err)\n"
   "function result() return r end", .quiet = 1},
  {.name = "a main chunk spins", .mode = H_LOAD, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code = LOOP},
  {.name = "a loaded chunk spins", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return load('" LOOP "')() end"},
  /* 2. work done in C on the script's behalf */
  {.name = "find backtracks", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return ('a'):rep(1000):find('.-.-.-b') end"},
  {.name = "match backtracks", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return string.match(('a'):rep(1000), '.-.-.-b') end"},
  {.name = "gmatch backtracks", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() for x in ('a'):rep(1000):gmatch('.-.-.-b') do end end"},
  {.name = "gsub backtracks", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return (('a'):rep(1000):gsub('.-.-.-b', 'x')) end"},
  {.name = "greedy repetitions backtrack", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() return ('a'):rep(5000):find(('a*'):rep(10) .. 'b') end"},
  {.name = "plain find of a long needle", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local s, p = ('a'):rep(2^20), ('a'):rep(4000) .. 'b'\n"
   "  while true do s:find(p, 1, true) end end"},
  {.name = "string.rep of 2^40", .mode = H_CALL, .expect = KURA_ENOMEM, .msg = MEMORY_MSG, .code =
   "function run() return ('x'):rep(2^40) end"},
  {.name = "string.rep in a loop", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() while true do local s = ('x'):rep(2^24) end end"},
  {.name = "string.rep of big pieces in a loop", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local p = ('x'):rep(2^16) while true do local s = p:rep(2^8) end end"},
  {.name = "concatenation of big strings", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local s = ('x'):rep(4096):rep(2^11) while true do local t = s .. s end end"},
  {.name = "string.format of big strings", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local s = ('x'):rep(4096):rep(2^11) while true do local t = ('%s%s'):format(s, s) end end"},
  {.name = "table.concat of big strings", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local t = {('x'):rep(4096):rep(2^10), ('x'):rep(4096):rep(2^10)}\n"
   "  while true do local s = table.concat(t) end end"},
  {.name = "comparing long strings", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local a, b = ('x'):rep(4096):rep(2^12), ('x'):rep(4096):rep(2^12)\n"
   "  while true do local _ = a == b end end"},
  {.name = "sorting long strings", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local a, b = ('x'):rep(4096):rep(2^11), ('x'):rep(4096):rep(2^11) local t = {}\n"
   "  for i = 1, 1000 do t[i] = i % 2 == 0 and a or b end table.sort(t) end"},
  {.name = "a log flood", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() for i = 1, 1e6 do kura.log.error('x') end end", .quiet = 1,
   .max_lines = 20000},
  {.name = "a print flood", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() for i = 1, 1e6 do print('x') end end", .quiet = 1, .max_lines = 20000},
  {.name = "full collections in a loop", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "big = {} for i = 1, 2e5 do big[i] = {} end\n"
   "function run() while true do collectgarbage() end end"},
  {.name = "compiling a huge comment in a loop", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local src = '--' .. ('x'):rep(4096):rep(2^12) while true do load(src) end end"},
  {.name = "inserting at the front of a big table", .mode = H_CALL, .expect = KURA_ELIMIT, .msg = BUDGET_MSG, .code =
   "function run() local t = {} for i = 1, 1e6 do t[i] = i end\n"
   "  while true do table.insert(t, 1, 0) table.remove(t, 1) end end"},
  /* 3. the store is under the memory limit */
  {.name = "1,500 sets of 1 MB under an 8 MB limit", .mode = H_TICK, .expect = KURA_OK, .msg = "kept", .code =
   "c = kura.client() c:create_cache('c') v = ('x'):rep(4096):rep(2^8) errors = {}\n"
   "for t = 0, TASKS - 1 do kura.spawn(function() for i = t * 100 + 1, t * 100 + 100 do\n"
   "  local ok, err = c:set('c', 'k' .. i, v)\n"
   "  if not ok then errors[#errors + 1] = tostring(err) end end end) end\n"
   "function result() if #errors > 0 then return errors[1] end\n"
   "  local n = 0 for i = 1, 1500 do if c:key_exists('c', 'k' .. i) then n = n + 1 end end\n"
   "  return n .. ' kept' end", .memory = 8u << 20, .max_rss_mb = 100},
  {.name = "a value bigger than the store", .mode = H_CALL, .expect = KURA_OK, .msg = NULL, .code =
   "function run() local c = kura.client() c:create_cache('c')\n"
   "  local ok, err = c:set('c', 'k', ('x'):rep(3 * 2^20))\n"
   "  assert(not ok and err.code == 'LIMIT_EXCEEDED_ERROR', tostring(err)) end",
   .memory = 8u << 20, .store = 2u << 20},
  {.name = "a store of its own", .mode = H_CALL, .expect = KURA_OK, .msg = NULL, .code =
   "function run() local c, err = kura.client{store = 'mine', max_memory = 1e12}\n"
   "  assert(c == nil and err.code == 'PERMISSION_ERROR', tostring(err))\n"
   "  c, err = kura.client{max_memory = 1e12}\n"
   "  assert(c == nil and err.code == 'PERMISSION_ERROR', tostring(err)) end"},
  /* 4. at the memory cap */
  {.name = "400 pcall'd allocations at the cap", .mode = H_CALL, .expect = KURA_ENOMEM, .msg = MEMORY_MSG, .code =
   "function run() local keep = {} for i = 1, 400 do\n"
   "  pcall(function() while true do keep[#keep + 1] = {} end end) end end", .memory = 8u << 20},
  {.name = "a table that keeps growing", .mode = H_CALL, .expect = KURA_ENOMEM, .msg = MEMORY_MSG, .code =
   "function run() local t = {} for i = 1, 1e8 do t[i] = i end end", .memory = 8u << 20},
  {.name = "strings that keep doubling", .mode = H_CALL, .expect = KURA_ENOMEM, .msg = MEMORY_MSG, .code =
   "function run() local s = 'x' while true do s = s .. s end end"},
  {.name = "threads that keep coming", .mode = H_CALL, .expect = KURA_ENOMEM, .msg = NULL, .code =
   "function run() local t = {} while true do t[#t + 1] = coroutine.create(print) end end",
   .memory = 8u << 20, .also = KURA_ELIMIT},
  {.name = "a spawn bomb", .mode = H_TICK, .expect = KURA_OK, .msg = "alive", .code =
   "local function f() kura.spawn(f); kura.spawn(f) end f()\n"
   "function result() return 'alive' end", .memory = 8u << 20, .quiet = 1},
  {.name = "timers that keep firing", .mode = H_TICK, .expect = KURA_OK, .msg = "alive", .code =
   "kura.spawn(function() for i = 1, 1e6 do\n"
   "  kura.every(0.001, function() local t = {} for j = 1, 100 do t[j] = j end end) end end)\n"
   "function result() return 'alive' end", .memory = 8u << 20, .quiet = 1, .max_rss_mb = 100},
  {.name = "a spawn bomb in a loop", .mode = H_TICK, .expect = KURA_OK, .msg = "alive", .code =
   "kura.spawn(function() while true do kura.spawn(function() end) end end)\n"
   "function result() return 'alive' end", .quiet = 1},
  /* 5. leaks between scripts */
  {.name = "package.searchpath", .mode = H_CALL, .expect = KURA_OK, .msg = NULL, .code =
   "function run() assert(package.searchpath == nil) end"},
  {.name = "the string metatable", .mode = H_CALL, .expect = KURA_OK, .msg = NULL, .code =
   "function run()\n"
   "  assert(not pcall(function() getmetatable('').__index.upper = function() return 'p' end end))\n"
   "  assert(not pcall(function() getmetatable('').__index = {} end))\n"
   "  assert(not pcall(rawset, getmetatable(''), '__index', {}))\n"
   "  assert(not pcall(function() string.upper = nil end))\n"
   "  assert(not pcall(rawset, string, 'upper', function() return 'p' end))\n"
   "  assert(not pcall(function() package.loaded.string.upper = nil end))\n"
   "  assert(not pcall(setmetatable, string, {}))\n"
   "  assert(('x'):upper() == 'X' and string.upper('y') == 'Y') end"},
  {.name = "library tables", .mode = H_CALL, .expect = KURA_OK, .msg = NULL, .code =
   "function run()\n"
   "  for _, t in ipairs({table, math, coroutine, utf8, os, package, kura, kura.log, kura.json,\n"
   "                      package.loaded, package.searchers, require('kura.warmup')}) do\n"
   "    assert(not pcall(function() t.x = 1 end)) assert(not pcall(rawset, t, 'x', 1)) end\n"
   "  local n = 0 for k in pairs(math) do n = n + 1 end assert(n > 20 and #math == 0)\n"
   "  assert(require('string') == string and type(require('kura.warmup').run) == 'function')\n"
   "  local ok, err = kura.client():get('nope', 'k')\n"
   "  assert(not pcall(function() getmetatable(err).__tostring = nil end)) end"},
  {.name = "the collector is shared", .mode = H_CALL, .expect = KURA_OK, .msg = NULL, .code =
   "function run() assert(not pcall(collectgarbage, 'stop'))\n"
   "  assert(not pcall(collectgarbage, 'generational')) assert(collectgarbage('count') > 0) end"},
  {.name = "the host's environment", .mode = H_CALL, .expect = KURA_OK, .msg = NULL, .code =
   "function run() assert(kura.credential.from_env == nil and os.getenv == nil) end"},
  /* 6. escapes that were refused before */
  {.name = "io", .mode = H_CALL, .expect = KURA_EUNKNOWN, .msg = "io", .code = "function run() return io.open('/etc/passwd') end"},
  {.name = "os.execute", .mode = H_CALL, .expect = KURA_EUNKNOWN, .msg = "execute", .code = "function run() return os.execute('true') end"},
  {.name = "debug", .mode = H_CALL, .expect = KURA_EUNKNOWN, .msg = "debug", .code = "function run() debug.sethook() end"},
  {.name = "string.dump", .mode = H_CALL, .expect = KURA_EUNKNOWN, .msg = "dump", .code = "function run() return string.dump(print) end"},
  {.name = "package.loadlib", .mode = H_CALL, .expect = KURA_EUNKNOWN, .msg = "loadlib", .code =
   "function run() return package.loadlib('libc.so.6', 'system') end"},
  {.name = "a C module", .mode = H_CALL, .expect = KURA_EUNKNOWN, .msg = "socket", .code = "function run() return require('socket.core') end"},
  {.name = "a binary chunk", .mode = H_CALL, .expect = KURA_OK, .msg = NULL, .code =
   "function run() local f, err = load('\\27Lua\\84\\0', 'x', 'b')\n"
   "  assert(f == nil and err:find('binary')) end"},
  {.name = "dofile", .mode = H_CALL, .expect = KURA_EUNKNOWN, .msg = "dofile", .code = "function run() return dofile('/etc/passwd') end"},
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* In the child: where it reports (the parent's stdout, even when the
 * script's own output goes to /dev/null). */
static FILE *report;

static int child_fail(const struct hcase *c, kura_runtime *rt, const char *what)
{
  fprintf(report, "  %s: %s (errmsg: %.300s)\n", c->name, what, rt ? kura_errmsg(rt) : "");
  fflush(report);
  return 1;
}

static kura_runtime *new_runtime(const struct hcase *c)
{
  kura_options o = {0};
  o.sandbox = 1;
  o.instruction_budget = BUDGET;
  o.memory_limit = c->memory ? c->memory : MEMORY;
  o.store_max_memory = c->store;
  o.backend = "memory";
  o.store = "hostile";
  kura_runtime *rt = NULL;
  return kura_runtime_new(&o, &rt) == KURA_OK ? rt : NULL;
}

/* The host's next calls into the same runtime work. */
static int host_answers(kura_runtime *rt)
{
  kura_value a = kura_int(41), r;
  if (kura_load_string(rt, "function alive__(x) return x + 1 end", "=alive") != KURA_OK)
    return 0;
  return kura_call(rt, "alive__", &a, 1, &r, 1) == KURA_OK && r.type == KURA_TINT && r.i == 42;
}

static int check_outcome(const struct hcase *c, kura_runtime *rt, int rc)
{
  if (rc != c->expect && !(c->also && rc == c->also)) {
    char what[64];
    snprintf(what, sizeof what, "code %d (%s), expected %d", rc, kura_errname(rc), c->expect);
    return child_fail(c, rt, what);
  }
  const char *named = rc == KURA_ELIMIT ? BUDGET_MSG : rc == KURA_ENOMEM ? MEMORY_MSG : c->msg;
  if (rc != KURA_OK && named && !strstr(kura_errmsg(rt), named))
    return child_fail(c, rt, "the message does not name the limit");
  return 0;
}

/* Ticks until nothing is pending (at most 10 times), then result(). */
static int ticks_then_result(const struct hcase *c, kura_runtime *rt)
{
  for (int i = 0; i < 10 && kura_tick(rt) > 0; i++) {
  }
  kura_value r;
  int rc = kura_call(rt, "result", NULL, 0, &r, 1);
  if (rc != KURA_OK)
    return child_fail(c, rt, "result() failed");
  if (r.type == KURA_TSTR && strstr(c->name, "1,500 sets"))
    fprintf(report, "  %d sets of 1 MB: %s (the store evicts to stay under its budget)\n",
            SANITIZED ? 300 : 1500, r.s);
  if (r.type != KURA_TSTR || !strstr(r.s, c->msg)) {
    char what[256];
    snprintf(what, sizeof what, "result() gave '%.200s'", r.type == KURA_TSTR ? r.s : "?");
    return child_fail(c, rt, what);
  }
  return 0;
}

static long peak_rss_kb(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return kb;
}

static long count_lines(int fd)
{
  char buf[65536];
  long n = 0;
  ssize_t got;
  fflush(stdout);
  lseek(fd, 0, SEEK_SET);
  while ((got = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < got; i++)
      n += buf[i] == '\n';
  return n;
}

static int run_case(const struct hcase *c)
{
  report = fdopen(dup(1), "w");
  if (!report)
    return 1;
  char out[] = "/tmp/kura-hostile-XXXXXX";
  int fd = -1;
  if (c->quiet) { /* what the script writes goes to a file, counted below */
    fd = mkstemp(out);
    if (fd < 0)
      return child_fail(c, NULL, "mkstemp");
    unlink(out);
    dup2(fd, 1), dup2(fd, 2);
  }
  kura_runtime *rt = new_runtime(c);
  if (!rt)
    return child_fail(c, NULL, "no runtime");
  /* 15 tasks of 100 sets of 1 MB; under the sanitizers, whose memcpy is
   * several times slower, 3 (the memory figure comes from the plain build) */
  if (kura_load_string(rt, SANITIZED ? "TASKS = 3" : "TASKS = 15", "=tasks") != KURA_OK)
    return child_fail(c, rt, "no TASKS");
  int rc = kura_load_string(rt, c->code, "=hostile");
  if (c->mode == H_LOAD && check_outcome(c, rt, rc))
    return 1;
  if (c->mode != H_LOAD && rc != KURA_OK)
    return child_fail(c, rt, "the script did not load");
  if (c->mode == H_CALL && check_outcome(c, rt, kura_call(rt, "run", NULL, 0, NULL, 0)))
    return 1;
  if (c->mode == H_TICK && ticks_then_result(c, rt))
    return 1;
  if (strstr(c->code, "function again()")) { /* a second call after the stop */
    kura_value r;
    int again = kura_call(rt, "again", NULL, 0, &r, 1);
    if (again != KURA_OK || (r.type == KURA_TSTR && strcmp(r.s, "true") == 0))
      return child_fail(c, rt, "the script went on after the stop");
  }
  if (!host_answers(rt))
    return child_fail(c, rt, "the host's next call failed");
  if (c->max_rss_mb) {
    long kb = peak_rss_kb();
    fprintf(report, "  %s: peak RSS %ld KB with memory_limit = %zu MB\n", c->name, kb,
            (c->memory ? c->memory : MEMORY) >> 20);
    fflush(report);
    /* the sanitizers' shadow memory and quarantine add their own */
    if (!SANITIZED && (kb < 0 || kb > c->max_rss_mb * 1024))
      return child_fail(c, rt, "peak RSS over the bound");
  }
  kura_runtime_free(rt);
  if (c->max_lines > 0 && count_lines(fd) > c->max_lines) {
    char what[96];
    snprintf(what, sizeof what, "%ld lines written (at most %ld)", count_lines(fd), c->max_lines);
    return child_fail(c, NULL, what);
  }
  return 0;
}

/* The CPU time (user + system) a running child has used, in seconds. */
static double child_cpu(pid_t pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the command may hold spaces */
  unsigned long utime = 0, stime = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                   &stime) != 2)
    return 0;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Runs case c in a child. The watchdog: the child may use WATCHDOG_S
 * seconds of CPU (on a machine that others share, its wall time can be
 * several times that with no fault of its own), and at most WALL_S of wall
 * time in any case. */
static int watch(const struct hcase *c, double *secs, double *cpu_secs)
{
  fflush(stdout);
  fflush(stderr);
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0)
    return 0;
  if (pid == 0)
    _exit(run_case(c));
  int status = 0;
  double cpu = 0;
  struct rusage ru;
  for (;;) {
    pid_t w = wait4(pid, &status, WNOHANG, &ru);
    if (w == pid)
      break;
    if (w < 0 && errno != EINTR)
      return 0;
    cpu = child_cpu(pid) > cpu ? child_cpu(pid) : cpu;
    if (cpu > WATCHDOG_S || now_s() - t0 > WALL_S) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      printf("  %s: still running after %.1f s of CPU (%.1f s of wall time): it hangs the "
             "host\n", c->name, cpu, now_s() - t0);
      return 0;
    }
    usleep(2000);
  }
  *secs = now_s() - t0;
  *cpu_secs = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFSIGNALED(status))
      printf("  %s: killed by signal %d\n", c->name, WTERMSIG(status));
    return 0;
  }
  return 1;
}

KTEST(hostile_scripts)
{
  int failed = 0;
  double worst = 0, worst_cpu = 0;
  const char *slowest = "", *costliest = "";
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double secs = 0, cpu = 0;
    if (!watch(&cases[i], &secs, &cpu)) {
      failed++;
      continue;
    }
    if (secs > worst)
      worst = secs, slowest = cases[i].name;
    if (cpu > worst_cpu)
      worst_cpu = cpu, costliest = cases[i].name;
  }
  printf("  %zu hostile scripts, %d failed; the most CPU: %.2f s (%s); the longest: %.2f s of "
         "wall time (%s)\n", sizeof cases / sizeof cases[0], failed, worst_cpu, costliest, worst,
         slowest);
  KCHECK_EQ(failed, 0);
}

/* Only when named: one case by its number (for a debugger). */
int main(int argc, char **argv)
{
  if (argc > 2 && strcmp(argv[1], "case") == 0) {
    size_t i = (size_t)atoi(argv[2]);
    return i < sizeof cases / sizeof cases[0] ? run_case(&cases[i]) : 2;
  }
  static const struct ktest tests[] = {KENTRY(hostile_scripts)};
  return ktest_run(tests, 1, argc, argv);
}
