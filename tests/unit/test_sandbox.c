/* The sandbox and the limits, through the public API only: every escape
 * attempt (each removed function, string.dump, a bytecode chunk, C modules,
 * an endless loop, huge allocations) is refused, and the host goes on after
 * each one: the same runtime still answers a call afterwards. */
#include <stdio.h>
#include <string.h>

#include "kura.h"
#include "ktest.h"

#define BUDGET 2000000u
#define MEMCAP (8u * 1024u * 1024u)

static kura_runtime *sandboxed(void)
{
  kura_options o = {0};
  o.sandbox = 1;
  o.instruction_budget = BUDGET;
  o.memory_limit = MEMCAP;
  o.backend = "memory";
  kura_runtime *rt = NULL;
  if (kura_runtime_new(&o, &rt) != KURA_OK)
    return NULL;
  if (kura_load_string(rt, "function alive(x) return x + 1 end\n"
                           "function try(code) return load(code)() end\n", "=base") != KURA_OK) {
    kura_runtime_free(rt);
    return NULL;
  }
  return rt;
}

/* The host survives: a plain call still works. */
static int alive(kura_runtime *rt)
{
  kura_value a = kura_int(41), r;
  return kura_call(rt, "alive", &a, 1, &r, 1) == KURA_OK && r.type == KURA_TINT && r.i == 42;
}

/* Runs `code` through try(): returns its first result as a string or "". */
static int run(kura_runtime *rt, const char *code, char *out, size_t cap)
{
  kura_value a = kura_str(code), r;
  int rc = kura_call(rt, "try", &a, 1, &r, 1);
  snprintf(out, cap, "%s", rc == KURA_OK && r.type == KURA_TSTR ? r.s : "");
  return rc;
}

KTEST(removed_globals)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  static const char *const checks[] = {
    "return type(io)", "return type(debug)", "return type(dofile)", "return type(loadfile)",
    "return type(os.execute)", "return type(os.getenv)", "return type(os.exit)",
    "return type(os.remove)", "return type(os.rename)", "return type(os.tmpname)",
    "return type(string.dump)", "return type(package.loadlib)",
    "return type(('').dump)", "return type(package.loaded.io)",
    "return type(package.loaded.debug)", "return type(package.loaded.os.execute)",
    "return type(kura.on_signal)", "return type(kura.json.lines)", "return type(kura.thread)",
    "return type(require(\"kura\").json.lines)",
  };
  char out[64];
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    KCHECK_EQ(run(rt, checks[i], out, sizeof out), KURA_OK);
    if (strcmp(out, "nil") != 0)
      fprintf(stderr, "  escape: %s -> %s\n", checks[i], out);
    KCHECK(strcmp(out, "nil") == 0);
  }
  /* what stays */
  KCHECK_EQ(run(rt, "return type(os.time) .. type(os.clock) .. type(os.date)", out, sizeof out),
            KURA_OK);
  KCHECK(strcmp(out, "functionfunctionfunction") == 0);
  KCHECK_EQ(run(rt, "return string.format('%d', #('x'):rep(3))", out, sizeof out), KURA_OK);
  KCHECK(strcmp(out, "3") == 0);
  KCHECK(alive(rt));
  kura_runtime_free(rt);
}

KTEST(require_refused)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  char out[64];
  /* the standard libraries that were removed cannot come back through require */
  KCHECK_EQ(run(rt, "return require('io')", out, sizeof out), KURA_EUNKNOWN);
  KCHECK_EQ(run(rt, "return require('debug')", out, sizeof out), KURA_EUNKNOWN);
  /* no C modules: the C searchers are gone and package.cpath is empty */
  KCHECK_EQ(run(rt, "package.cpath = '/usr/lib/x86_64-linux-gnu/lua/5.4/?.so'\n"
                    "return require('socket.core')", out, sizeof out), KURA_EUNKNOWN);
  KCHECK_EQ(run(rt, "return tostring(#package.searchers)", out, sizeof out), KURA_OK);
  KCHECK(strcmp(out, "3") == 0);
  /* changing package.path does not point require at other files */
  KCHECK_EQ(run(rt, "package.path = '/etc/?'; return require('passwd')", out, sizeof out),
            KURA_EUNKNOWN);
  KCHECK(strstr(kura_errmsg(rt), "root:") == NULL);
  /* the kura.* library stays available */
  KCHECK_EQ(run(rt, "return type(require('kura.warmup'))", out, sizeof out), KURA_OK);
  KCHECK(strcmp(out, "table") == 0);
  KCHECK(alive(rt));
  kura_runtime_free(rt);
}

KTEST(bytecode_refused)
{
  /* Bytecode made by an unsandboxed runtime of the same Lua. */
  kura_runtime *full;
  KCHECK_EQ(kura_runtime_new(NULL, &full), KURA_OK);
  KCHECK_EQ(kura_load_string(full, "function bc() return string.dump(function() return "
                                   "'escaped' end) end", "=bc"), KURA_OK);
  kura_value r;
  KCHECK_EQ(kura_call(full, "bc", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TSTR && r.len > 4 && r.s[0] == 0x1b);
  char chunk[4096];
  size_t n = r.len < sizeof chunk ? r.len : sizeof chunk;
  memcpy(chunk, r.s, n);
  kura_runtime_free(full);

  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  KCHECK_EQ(kura_load_string(rt, "function load_it(s, mode) local f, err = load(s, 'x', mode)\n"
                                 "  if f then return f() end return nil, err end", "=li"),
            KURA_OK);
  static const char *const modes[] = {"b", "bt", "t"};
  for (int i = 0; i < 3; i++) {
    kura_value a[2] = {kura_lstr(chunk, n), kura_str(modes[i])}, out[2];
    KCHECK_EQ(kura_call(rt, "load_it", a, 2, out, 2), KURA_OK);
    KCHECK(out[0].type == KURA_TNIL);
    KCHECK(out[1].type == KURA_TSTR && strstr(out[1].s, "binary") != NULL);
  }
  /* a reader function handing over bytecode piece by piece: refused too */
  KCHECK_EQ(kura_load_string(rt, "function load_fn(s) local done\n"
                                 "  local f = load(function() if done then return nil end\n"
                                 "    done = true return s end, 'x', 'b')\n"
                                 "  return f end", "=lf"), KURA_OK);
  kura_value a = kura_lstr(chunk, n);
  KCHECK_EQ(kura_call(rt, "load_fn", &a, 1, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TNIL);
  /* and as the main chunk given by the host */
  char withnul[4097];
  memcpy(withnul, chunk, n);
  withnul[n] = '\0';
  KCHECK_EQ(kura_load_string(rt, withnul, "=bytecode"), KURA_EINVAL);
  KCHECK(alive(rt));
  kura_runtime_free(rt);
}

KTEST(endless_loops)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  char out[64];
  static const char *const loops[] = {
    "while true do end",
    "local function f() return f() end return f()",  /* endless tail calls */
    "while true do pcall(function() while true do end end) end",
    "while true do coroutine.wrap(function() for i = 1, 900 do end end)() end",
    "local co = coroutine.wrap(function() while true do coroutine.yield() end end)\n"
    "while true do co() end",
    "for i = 1, math.maxinteger do local t = {} end",
    "string.gsub(('x'):rep(100), 'x', function() while true do end end)",
    "local t = setmetatable({}, {__index = function(t, k) return t[k + 1] end}) return t[1]",
  };
  for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
    int rc = run(rt, loops[i], out, sizeof out);
    int ok = rc == KURA_ELIMIT || (i == 7 && rc == KURA_EUNKNOWN); /* C stack overflow */
    if (!ok)
      fprintf(stderr, "  loop %zu: %d %s\n", i, rc, kura_errmsg(rt));
    KCHECK(ok);
    if (rc == KURA_ELIMIT)
      KCHECK(strstr(kura_errmsg(rt), "instruction budget exceeded") != NULL);
    KCHECK(alive(rt));
  }
  /* as the main chunk */
  KCHECK_EQ(kura_load_string(rt, "while true do end", "=spin"), KURA_ELIMIT);
  KCHECK(alive(rt));
  /* in a task: the task fails, the loop and the host go on */
  KCHECK_EQ(kura_load_string(rt, "function spin() while true do end end\n"
                                 "function ok_task() kura.sleep(0) done = true end\n"
                                 "function is_done() return done end", "=t"), KURA_OK);
  KCHECK_EQ(kura_spawn(rt, "spin", NULL, 0), KURA_OK);
  KCHECK_EQ(kura_spawn(rt, "ok_task", NULL, 0), KURA_OK);
  KCHECK_EQ(kura_run(rt), KURA_EUNKNOWN); /* the spinning task's error was uncaught */
  kura_value r;
  KCHECK_EQ(kura_call(rt, "is_done", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TBOOL && r.b);
  /* the budget is per call: many calls of moderate work all pass */
  KCHECK_EQ(kura_load_string(rt, "function work() local s = 0 for i = 1, 100000 do s = s + i end"
                                 " return s end", "=w"), KURA_OK);
  for (int i = 0; i < 50; i++) {
    KCHECK_EQ(kura_call(rt, "work", NULL, 0, &r, 1), KURA_OK);
    KCHECK_EQ(r.i, 5000050000LL);
  }
  kura_runtime_free(rt);
}

KTEST(memory_cap)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  char out[64];
  static const char *const hogs[] = {
    "return ('x'):rep(1 << 30)",                     /* one huge string */
    "return ('x'):rep(64 * 1024 * 1024)",            /* bigger than the cap */
    "local t = {} for i = 1, 1e7 do t[i] = i end",   /* a table that keeps growing */
    "local t = {} for i = 1, 1e6 do t[#t + 1] = tostring(i) .. 'abcdefgh' end",
    "local s = 'x' while true do s = s .. s end",
    "local t = {} while true do t[#t + 1] = coroutine.create(print) end",
  };
  for (size_t i = 0; i < sizeof hogs / sizeof hogs[0]; i++) {
    int rc = run(rt, hogs[i], out, sizeof out);
    if (rc != KURA_ENOMEM && rc != KURA_ELIMIT) /* the budget may come first */
      fprintf(stderr, "  hog %zu: %d %s\n", i, rc, kura_errmsg(rt));
    KCHECK(rc == KURA_ENOMEM || rc == KURA_ELIMIT);
    KCHECK(kura_lua_bytes(rt) <= MEMCAP);
    KCHECK(alive(rt));
  }
  /* a huge allocation in a task fails the task, not the host */
  KCHECK_EQ(kura_load_string(rt, "function hog() local t = {} while true do t[#t+1] = {} end end",
                             "=hog"), KURA_OK);
  KCHECK_EQ(kura_spawn(rt, "hog", NULL, 0), KURA_OK);
  KCHECK_EQ(kura_run(rt), KURA_EUNKNOWN);
  KCHECK(alive(rt));
  kura_runtime_free(rt);
}

/* Scripts that booby-trap what the host touches: a strict _G whose __index
 * raises, a handler that is a callable table, error objects that are tables
 * with a raising __tostring, finalizers that would loop. */
KTEST(hostile_scripts)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  KCHECK_EQ(kura_load_string(rt,
    "setmetatable(_G, {__index = function(_, k) error('undefined ' .. tostring(k)) end,\n"
    "                  __newindex = function(t, k, v) rawset(t, k, v) end})\n"
    "callable = setmetatable({}, {__call = function() return 1 end})\n"
    "function raise_table() error(setmetatable({}, {__tostring = function() error('no') end})) end\n"
    "function raise_nil() error() end\n", "=hostile"), KURA_OK);
  /* a finalizer written in Lua would run with hooks off: refused */
  KCHECK_EQ(kura_load_string(rt, "trap = setmetatable({}, {__gc = function() while true do end end})",
                             "=gc"), KURA_EUNKNOWN);
  KCHECK(strstr(kura_errmsg(rt), "__gc") != NULL);
  KCHECK_EQ(kura_load_string(rt, "local mt = {} t2 = setmetatable({}, mt)\n"
                                 "mt.__gc = function() while true do end end\n"
                                 "t2 = nil collectgarbage() collectgarbage()", "=gc2"), KURA_OK);
  /* the C objects' metatables stay out of reach */
  KCHECK_EQ(kura_load_string(rt, "local c = kura.client()\n"
                                 "local mt = getmetatable(c)\n"
                                 "assert(type(mt.__index.get) == 'function')\n"
                                 "assert(not pcall(function() mt.__gc = print end))\n"
                                 "assert(getmetatable('').__index == string)", "=mt"), KURA_OK);
  KCHECK_EQ(kura_load_string(rt, "local c = kura.client()\n"
                                 "getmetatable(c).__gc = function() while true do end end",
                             "=mt2"), KURA_EUNKNOWN);
  KCHECK(strstr(kura_errmsg(rt), "read-only") != NULL);
  /* the kura.* library still loads (loadtest reads a userdata's metatable) */
  KCHECK_EQ(kura_load_string(rt, "assert(require('kura.loadtest'))", "=lt"), KURA_OK);
  KCHECK_EQ(kura_call(rt, "missing_handler", NULL, 0, NULL, 0), KURA_ENOTFOUND);
  KCHECK_EQ(kura_call(rt, "callable", NULL, 0, NULL, 0), KURA_ENOTFOUND);
  KCHECK_EQ(kura_call(rt, "raise_table", NULL, 0, NULL, 0), KURA_EUNKNOWN);
  KCHECK(strstr(kura_errmsg(rt), "table") != NULL);
  KCHECK_EQ(kura_call(rt, "raise_nil", NULL, 0, NULL, 0), KURA_EUNKNOWN);
  KCHECK(alive(rt));
  kura_runtime_free(rt);
}


/* A script that catches the stop's error and returns it at once still fails
 * the call; the next call has its whole budget again. */
KTEST(caught_stop_still_fails)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  KCHECK_EQ(kura_load_string(rt, "function caught() return pcall(function() while true do end end) end\n"
                                 "function caught_x() return xpcall(function() while true do end end,\n"
                                 "  function(e) return 'handled: ' .. tostring(e) end) end", "=c"),
            KURA_OK);
  kura_value r[2];
  KCHECK_EQ(kura_call(rt, "caught", NULL, 0, r, 2), KURA_ELIMIT);
  KCHECK(strstr(kura_errmsg(rt), "instruction budget exceeded") != NULL);
  KCHECK_EQ(kura_call(rt, "caught_x", NULL, 0, r, 2), KURA_ELIMIT);
  KCHECK(strstr(kura_errmsg(rt), "handled") == NULL); /* the handler did not run */
  KCHECK(alive(rt));
  kura_runtime_free(rt);
}

/* kura_options.store and store_max_memory: the scripts and the host's C
 * client use the runtime's store with the host's budget; runtimes naming
 * the same store share it; a sandboxed script can set neither. */
KTEST(store_options)
{
  kura_options o = {0};
  o.sandbox = 1;
  o.instruction_budget = BUDGET * 10;
  o.memory_limit = MEMCAP;
  o.store = "sandbox-test-a";
  o.store_max_memory = 1u << 20;
  kura_runtime *a = NULL, *a2 = NULL, *b = NULL;
  KCHECK_EQ(kura_runtime_new(&o, &a), KURA_OK);
  KCHECK_EQ(kura_runtime_new(&o, &a2), KURA_OK);
  o.store = "sandbox-test-b";
  KCHECK_EQ(kura_runtime_new(&o, &b), KURA_OK);
  static const char script[] =
    "c = kura.client() c:create_cache('c')\n"
    "function fill() local v = ('x'):rep(65536) for i = 1, 100 do assert(c:set('c', 'k' .. i, v)) end\n"
    "  local n = 0 for i = 1, 100 do if c:key_exists('c', 'k' .. i) then n = n + 1 end end return n end\n"
    "function has(k) local x = kura.client{backend = 'memory'} return x:get('c', k) end\n"
    "function own(opt) local x, err = kura.client{[opt] = opt == 'store' and 'other' or 1e12}\n"
    "  return x == nil and err.code or 'opened' end\n";
  KCHECK_EQ(kura_load_string(a, script, "=a"), KURA_OK);
  KCHECK_EQ(kura_load_string(a2, script, "=a2"), KURA_OK);
  KCHECK_EQ(kura_load_string(b, script, "=b"), KURA_OK);
  kura_value r, arg = kura_str("k100");
  KCHECK_EQ(kura_call(a, "fill", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TINT && r.i > 0 && r.i < 16); /* 6.4 MB into a 1 MiB budget */
  KCHECK_EQ(kura_call(a2, "has", &arg, 1, &r, 1), KURA_OK); /* the same store */
  KCHECK(r.type == KURA_TSTR && r.len == 65536);
  KCHECK_EQ(kura_call(b, "has", &arg, 1, &r, 1), KURA_OK);  /* another store */
  KCHECK(r.type == KURA_TNIL);
  kura_value opt = kura_str("store");
  KCHECK_EQ(kura_call(a, "own", &opt, 1, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TSTR && strcmp(r.s, "PERMISSION_ERROR") == 0);
  opt = kura_str("max_memory");
  KCHECK_EQ(kura_call(a, "own", &opt, 1, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TSTR && strcmp(r.s, "PERMISSION_ERROR") == 0);
  kura_runtime_free(a);
  kura_runtime_free(a2);
  kura_runtime_free(b);
  /* without the sandbox a script may open a store of its own */
  kura_runtime *full = NULL;
  KCHECK_EQ(kura_runtime_new(NULL, &full), KURA_OK);
  KCHECK_EQ(kura_load_string(full, script, "=full"), KURA_OK);
  opt = kura_str("max_memory");
  KCHECK_EQ(kura_call(full, "own", &opt, 1, &r, 1), KURA_OK);
  KCHECK(r.type == KURA_TSTR && strcmp(r.s, "opened") == 0);
  kura_runtime_free(full);
}

/* Read-only tables still read, iterate and require as before. */
KTEST(readonly_tables)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  char out[128];
  static const char *const ok[] = {
    "local n = 0 for k, v in pairs(string) do n = n + 1 end return tostring(n == 16)",
    "return tostring(require('string') == string and package.loaded.table == table)",
    "return tostring(getmetatable('').__index == string and ('%d'):format(7) == '7')",
    "local a = kura.json.array() return tostring(getmetatable(a) == getmetatable(kura.json.array()))",
    "return kura.json.encode(kura.json.array())",
    "return tostring(#package.searchers == 3 and next(string) == nil)",
    "local t = setmetatable({}, {}) getmetatable(t).x = 1 return tostring(getmetatable(t).x)",
  };
  static const char *const want[] = {"true", "true", "true", "true", "[]", "true", "1"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    KCHECK_EQ(run(rt, ok[i], out, sizeof out), KURA_OK);
    if (strcmp(out, want[i]) != 0)
      fprintf(stderr, "  %s -> %s\n", ok[i], out);
    KCHECK(strcmp(out, want[i]) == 0);
  }
  static const char *const refused[] = {
    "getmetatable(kura.json.array()).__jsontype = 'object'",
    "kura.json.encode = nil", "kura.log.info = print", "table.insert = nil",
    "rawset(math, 'pi', 3)", "package.path = '/etc/?'", "package.loaded.x = 1",
    "setmetatable(os, nil)", "coroutine.wrap = nil",
  };
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    KCHECK_EQ(run(rt, refused[i], out, sizeof out), KURA_EUNKNOWN);
    KCHECK(strstr(kura_errmsg(rt), "read-only") || strstr(kura_errmsg(rt), "protected"));
  }
  KCHECK(alive(rt));
  kura_runtime_free(rt);
}

/* The sandbox's own versions of Lua's functions give Lua's messages, naming
 * the function as the script called it. */
KTEST(argument_errors)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  static const char *const calls[][2] = {
    {"table.sort(nil)", "bad argument #1 to 'sort' (table expected, got nil)"},
    {"table.sort({2, 1}, 1)", "bad argument #2 to 'sort' (function expected, got number)"},
    {"table.sort({}, 1) return 'fine'", "fine"},
    {"setmetatable(1, {})", "bad argument #1 to 'setmetatable' (table expected, got number)"},
    {"setmetatable({}, 1)", "bad argument #2 to 'setmetatable' (nil or table expected, got number)"},
    {"collectgarbage('x')", "bad argument #1 to 'collectgarbage' (invalid option 'x')"},
    {"load(nil)", "bad argument #1 to 'load' (function expected, got nil)"},
    {"getmetatable()", "bad argument #1 to 'getmetatable' (value expected)"},
    {"rawset(1, 2, 3)", "bad argument #1 to 'rawset' (table expected, got number)"},
    {"xpcall(print)", "bad argument #2 to 'xpcall' (function expected, got no value)"},
    {"coroutine.resume(1)", "bad argument #1 to 'resume' (thread expected, got number)"},
    {"string.rep('x')", "bad argument #2 to 'rep' (number expected, got no value)"},
    {"('x'):find({})", "bad argument #1 to 'find' (string expected, got table)"},
  };
  char code[160], out[160];
  for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
    snprintf(code, sizeof code, "local ok, e = pcall(function() %s end) return tostring(e)",
             calls[i][0]);
    KCHECK_EQ(run(rt, code, out, sizeof out), KURA_OK);
    if (!strstr(out, calls[i][1]))
      fprintf(stderr, "  %s -> %s\n", calls[i][0], out);
    KCHECK(strstr(out, calls[i][1]) != NULL);
  }
  kura_runtime_free(rt);
}

/* One kura_tick runs tasks until they have spent a budget: the others wait
 * for the next tick, and all of them finish. */
KTEST(tick_is_bounded)
{
  kura_runtime *rt = sandboxed();
  KCHECK(rt);
  KCHECK_EQ(kura_load_string(rt, "done = 0\n"
                                 "for i = 1, 1000 do kura.spawn(function()\n"
                                 "  local s = 0 for j = 1, 5000 do s = s + j end done = done + 1 end) end\n"
                                 "function count() return done end", "=tasks"), KURA_OK);
  kura_value r;
  KCHECK(kura_tick(rt) > 0);
  KCHECK_EQ(kura_call(rt, "count", NULL, 0, &r, 1), KURA_OK);
  KCHECK(r.i > 0 && r.i < 1000); /* ~20,000 instructions each: about 100 fit */
  for (int i = 0; i < 1000 && kura_tick(rt) > 0; i++) {
  }
  KCHECK_EQ(kura_call(rt, "count", NULL, 0, &r, 1), KURA_OK);
  KCHECK_EQ(r.i, 1000);
  kura_runtime_free(rt);
}

/* A runtime whose globals fill the memory cap: calls fail at once (no
 * collection per allocation), and the host recovers once a call lets go. */
KTEST(full_runtime_recovers)
{
  kura_options o = {0};
  o.sandbox = 1;
  o.instruction_budget = 100 * BUDGET; /* the memory limit comes first, even under ASan */
  o.memory_limit = MEMCAP;
  kura_runtime *rt = NULL;
  KCHECK_EQ(kura_runtime_new(&o, &rt), KURA_OK);
  KCHECK_EQ(kura_load_string(rt, "function fill() big = {} while true do big[#big + 1] = {} end end\n"
                                 "function free() big = nil end\n"
                                 "function work() local t = {} for i = 1, 1000 do t[i] = {} end return #t end",
                             "=full"), KURA_OK);
  kura_value r;
  KCHECK_EQ(kura_call(rt, "fill", NULL, 0, NULL, 0), KURA_ENOMEM);
  KCHECK(strstr(kura_errmsg(rt), "memory limit exceeded") != NULL);
  for (int i = 0; i < 100; i++)
    KCHECK_EQ(kura_call(rt, "work", NULL, 0, &r, 1), KURA_ENOMEM);
  KCHECK_EQ(kura_call(rt, "free", NULL, 0, NULL, 0), KURA_OK);
  KCHECK_EQ(kura_call(rt, "work", NULL, 0, &r, 1), KURA_OK);
  KCHECK_EQ(r.i, 1000);
  KCHECK(kura_lua_bytes(rt) <= MEMCAP);
  kura_runtime_free(rt);
}

/* Without the sandbox the full library is there (the sandbox is an option). */
KTEST(unsandboxed)
{
  kura_runtime *rt;
  KCHECK_EQ(kura_runtime_new(NULL, &rt), KURA_OK);
  KCHECK_EQ(kura_load_string(rt, "function t() return type(io) .. type(debug) end", "=t"),
            KURA_OK);
  kura_value r;
  KCHECK_EQ(kura_call(rt, "t", NULL, 0, &r, 1), KURA_OK);
  KCHECK(strcmp(r.s, "tabletable") == 0);
  kura_runtime_free(rt);
}

int main(int argc, char **argv)
{
  static const struct ktest tests[] = {
    KENTRY(removed_globals), KENTRY(require_refused), KENTRY(bytecode_refused),
    KENTRY(endless_loops), KENTRY(memory_cap), KENTRY(hostile_scripts), KENTRY(unsandboxed),
    KENTRY(caught_stop_still_fails), KENTRY(store_options), KENTRY(readonly_tables),
    KENTRY(tick_is_bounded), KENTRY(full_runtime_recovers), KENTRY(argument_errors),
  };
  return ktest_run(tests, sizeof tests / sizeof tests[0], argc, argv);
}
