-- get_or_load on a hit beside a plain c:get, same keys, same run: the
-- common path of read-through caching. Rounds alternate the two loops; each
-- prints CPU nanoseconds per call (os.clock, which other load on a shared
-- machine disturbs less than wall time), and the last line gives the
-- medians and their ratio (goal: get_or_load <= 1.5x c:get).
-- usage: kura run [--backend URL] refresh.lua [OPS [ROUNDS [KEYS]]]
local refresh = require("kura.refresh")

local OPS = math.tointeger(tonumber(arg[1] or "")) or 500000
local ROUNDS = math.tointeger(tonumber(arg[2] or "")) or 5
local NKEYS = math.tointeger(tonumber(arg[3] or "")) or 10000
local CACHE = "bench-refresh"

local c = kura.client()
assert(c:create_cache(CACHE) ~= nil)
local keys = {}
for i = 1, NKEYS do keys[i] = string.format("key:%08d", i) end
local value = string.rep("v", 32)
local function loader() return value end
local opts = { ttl = 3600 }
-- Every key is loaded once through get_or_load: both loops hit.
for i = 1, NKEYS do assert(refresh.get_or_load(c, CACHE, keys[i], loader, opts) == value) end

local function plain_get(n)
  local ks, nk, j = keys, NKEYS, 1
  for _ = 1, n do
    c:get(CACHE, ks[j])
    j = j + 1
    if j > nk then j = 1 end
  end
end

local function read_through(n)
  local ks, nk, j, gol = keys, NKEYS, 1, refresh.get_or_load
  for _ = 1, n do
    gol(c, CACHE, ks[j], loader, opts)
    j = j + 1
    if j > nk then j = 1 end
  end
end

local function ns_per_call(fn, n)
  local t0 = os.clock()
  fn(n)
  return (os.clock() - t0) / n * 1e9
end

local function median(list)
  table.sort(list)
  local n = #list
  return n % 2 == 1 and list[(n + 1) // 2] or (list[n // 2] + list[n // 2 + 1]) / 2
end

-- The backend's round trips dominate on a network backend: fewer calls.
local n = OPS
if os.getenv("KURA_BENCH_NETWORK") then n = OPS // 20 end
local gets, gols = {}, {}
for r = 1, ROUNDS do
  gets[r] = ns_per_call(plain_get, n)
  gols[r] = ns_per_call(read_through, n)
  print(string.format("round %d: c:get %.0f ns, get_or_load %.0f ns (CPU per call)", r, gets[r],
                      gols[r]))
end
local g, l = median(gets), median(gols)
print(string.format("median of %d rounds of %d hits over %d keys: c:get %.0f ns, " ..
                    "get_or_load %.0f ns => %.2fx (goal <= 1.5x)", ROUNDS, n, NKEYS, g, l, l / g))
c:delete_cache(CACHE)
