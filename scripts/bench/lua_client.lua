-- "Speed from Lua": gets and sets from one Lua loop through kura's client
-- (c:get(cache, key), c:set(cache, key, value)) and a cache handle
-- (h:get(key), h:set(key, value)), beside the floor: a bare C module that
-- only looks the key up in a hash table, called the same way, in the same
-- run. Run by scripts/bench/lua_client.sh under the lua_floor program, which
-- preloads the floor module ("kura_floor").
--
-- Arguments: [--ops N] [--keys N] [--value-size N] [--rounds N]
-- (defaults: 10,000,000 ops of each kind, 100,000 keys, 32-byte values,
-- 5 rounds; the best round of each measurement is reported).

local floor_mod = require("kura_floor")

local opts = { ops = 10000000, keys = 100000, ["value-size"] = 32, rounds = 5 }
do
  local i = 1
  while arg[i] do
    local name = arg[i]:match("^%-%-([%w-]+)$")
    if not name or opts[name] == nil or not tonumber(arg[i + 1]) then
      error("usage: lua_client.lua [--ops N] [--keys N] [--value-size N] [--rounds N]", 0)
    end
    opts[name] = math.tointeger(tonumber(arg[i + 1])) or error("--" .. name .. ": an integer", 0)
    i = i + 2
  end
end
local OPS, NKEYS, VSIZE, ROUNDS = opts.ops, opts.keys, opts["value-size"], opts.rounds
local PER_ROUND = OPS // ROUNDS
local TTY = floor_mod.stderr_is_tty()

local keys = {}
for i = 1, NKEYS do keys[i] = string.format("key:%08d", i) end
local value = string.rep("v", VSIZE)
local CACHE = "bench-lua-client"

-- The four loops; each object is called exactly as the label says.
local function loop_get(o, cache, n)
  local ks, nk, j = keys, NKEYS, 1
  for _ = 1, n do
    o:get(cache, ks[j])
    j = j + 1
    if j > nk then j = 1 end
  end
end

local function loop_set(o, cache, n)
  local ks, nk, j, v = keys, NKEYS, 1, value
  for _ = 1, n do
    o:set(cache, ks[j], v)
    j = j + 1
    if j > nk then j = 1 end
  end
end

local function loop_hget(h, n)
  local ks, nk, j = keys, NKEYS, 1
  for _ = 1, n do
    h:get(ks[j])
    j = j + 1
    if j > nk then j = 1 end
  end
end

local function loop_hset(h, n)
  local ks, nk, j, v = keys, NKEYS, 1, value
  for _ = 1, n do
    h:set(ks[j], v)
    j = j + 1
    if j > nk then j = 1 end
  end
end

-- Setup: both sides hold every key, so every get hits.
local c = kura.client()
local created, err = c:create_cache(CACHE)
if created == nil then error("create_cache: " .. tostring(err), 0) end
local h = c:cache(CACHE)
local fl = floor_mod.new()
local fh = fl:cache(CACHE)
for i = 1, NKEYS do
  assert(c:set(CACHE, keys[i], value))
  fl:set(CACHE, keys[i], value)
end
assert(c:get(CACHE, keys[NKEYS]) == value and h:get(keys[1]) == value, "setup: kura misses")
assert(fl:get(CACHE, keys[1]) == value and fh:get(keys[NKEYS]) == value, "setup: floor misses")

local RUNS = {
  { "c:get(cache, key)", "get", function() loop_get(c, CACHE, PER_ROUND) end,
    function() loop_get(fl, CACHE, PER_ROUND) end },
  { "c:set(cache, key, value)", "set", function() loop_set(c, CACHE, PER_ROUND) end,
    function() loop_set(fl, CACHE, PER_ROUND) end },
  { "h:get(key)", "get", function() loop_hget(h, PER_ROUND) end,
    function() loop_hget(fh, PER_ROUND) end },
  { "h:set(key, value)", "set", function() loop_hset(h, PER_ROUND) end,
    function() loop_hset(fh, PER_ROUND) end },
}
local GOAL = { get = 0.8, set = 0.7 }

-- Millions of calls per second of one round of fn, in CPU time: the machine
-- may be shared, and both sides run one thread.
local function rate(fn)
  collectgarbage("collect")
  local t0 = os.clock()
  fn()
  return PER_ROUND / (os.clock() - t0) / 1e6
end

-- Rounds alternate kura and the floor so that both see the same machine.
local best = {}
for round = 1, ROUNDS do
  for i, run in ipairs(RUNS) do
    if TTY then
      io.stderr:write(string.format("\rround %d/%d: %-26s", round, ROUNDS, run[1]))
    end
    local b = best[i] or { kura = 0, floor = 0 }
    b.kura = math.max(b.kura, rate(run[3]))
    b.floor = math.max(b.floor, rate(run[4]))
    best[i] = b
  end
end
if TTY then io.stderr:write("\r", string.rep(" ", 60), "\r") end

print(string.format("speed from Lua: %d ops of each kind over %d keys, %d-byte values, " ..
                    "best of %d rounds, CPU time (backend: %s)", PER_ROUND * ROUNDS, NKEYS, VSIZE,
                    ROUNDS, os.getenv("KURA_BACKEND") or "memory"))
print(string.format("%-26s %12s %12s %7s %6s", "call", "kura Mops/s", "floor Mops/s",
                    "ratio", "goal"))
local below = 0
for i, run in ipairs(RUNS) do
  local b = best[i]
  local ratio = b.kura / b.floor
  local goal = GOAL[run[2]]
  local mark = ratio >= goal and "ok" or "BELOW"
  if ratio < goal then below = below + 1 end
  print(string.format("%-26s %12.2f %12.2f %7.2f %4.2f %s", run[1], b.kura, b.floor, ratio,
                      goal, mark))
end
c:delete_cache(CACHE)
if below > 0 then
  print(string.format("%d of %d measurements below the goal", below, #RUNS))
end
