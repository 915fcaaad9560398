-- kura.counter: counters with a TTL and rate limiters, on the cache's atomic
-- increment, so that every process sharing the cache shares the counts.
--
-- Plain counters
--   local cnt = counter.new{ client, cache, ttl, prefix }
--   cnt:incr(name [, n = 1])  -> the new value (integer), or nil, err. The TTL
--                                applies when the call creates the counter
--                                (nil ttl: the client's default), so a counter
--                                lives `ttl` seconds from its first increment.
--   cnt:get(name)             -> the value (integer; 0 when absent), or nil, err
--   cnt:get_many(names)       -> table name -> value (absent names give 0), or nil, err
--   cnt:reset(name)           -> true, or nil, err (the counter is deleted)
--
-- Rate limiters
--   local lim = counter.rate_limiter{ client, cache, limit, window, kind, prefix, now }
--   lim:allow(id [, cost = 1]) -> allowed, remaining, reset_in   (or nil, err)
--
--   kind = "fixed" (default): time is cut into windows of `window` seconds
--   aligned on the epoch; the count of window i lives in key
--   prefix .. id .. ":" .. i, created by increment with the window's TTL. A
--   call adds `cost` and is allowed when the new count is <= limit.
--
--   kind = "sliding": the estimate is count(i) + count(i - 1) * (1 - f), f
--   being the elapsed fraction of window i (two fixed windows weighted by
--   overlap, as Cloudflare's limiter). Keys live two windows.
--
--   Increment first, compare after: never check-then-increment, which lets
--   concurrent callers all pass. A denied call gives its cost back (an
--   increment by -cost), so denied calls do not eat the quota of later ones
--   and a large request that does not fit does not block small ones; between
--   the two increments a concurrent caller may be denied too (never allowed
--   in excess). remaining = what the caller may still spend in this window
--   (max(0, floor(limit - estimate))); reset_in = seconds until the current
--   window ends (for "sliding", when the weighting moves on). cost may be 0
--   (a query that spends nothing).
--
--   Windows are aligned on wall-clock time so that all processes agree: the
--   default clock is the system's epoch time with sub-second precision,
--   read once with `date +%s.%N` and advanced by kura.now(). `now` (a
--   function returning seconds) replaces it, e.g. in tests.
local kura = require("kura")

local M = {}

local floor, max = math.floor, math.max

-- --- the wall clock ------------------------------------------------------------

local wall_offset -- epoch seconds minus kura.now(), read once per process

local function read_epoch()
  local p = io.popen and io.popen("date +%s.%N 2>/dev/null")
  local s = p and p:read("l")
  if p then p:close() end
  return tonumber(s or "") or os.time()
end

-- Epoch seconds as a float.
function M.wall_clock()
  if not wall_offset then wall_offset = read_epoch() - kura.now() end
  return wall_offset + kura.now()
end

-- --- plain counters --------------------------------------------------------------

local Counter = {}
Counter.__index = Counter

local function check_client(o, who)
  if type(o) ~= "table" then error(who .. ": expected a table of options", 3) end
  if type(o.cache) ~= "string" then error(who .. ": cache must be a string", 3) end
  return o.client or kura.client()
end

function M.new(o)
  local client = check_client(o, "counter.new")
  if o.ttl ~= nil and type(o.ttl) ~= "number" then error("counter.new: ttl must be a number", 2) end
  return setmetatable({ client = client, cache = o.cache, ttl = o.ttl, prefix = o.prefix or "" },
                      Counter)
end

function Counter:incr(name, n)
  return self.client:increment(self.cache, self.prefix .. name, n or 1, self.ttl)
end

local function to_count(v)
  if v == nil then return 0 end
  return math.tointeger(tonumber(v)) or 0
end

function Counter:get(name)
  local v, err = self.client:get(self.cache, self.prefix .. name)
  if err then return nil, err end
  return to_count(v)
end

function Counter:get_many(names)
  local keys = {}
  for i, name in ipairs(names) do keys[i] = self.prefix .. name end
  local got, err = self.client:get_batch(self.cache, keys)
  if not got then return nil, err end
  local out = {}
  for i, name in ipairs(names) do out[name] = to_count(got[keys[i]]) end
  return out
end

function Counter:reset(name)
  return self.client:delete(self.cache, self.prefix .. name)
end

-- --- rate limiters -----------------------------------------------------------------

local Limiter = {}
Limiter.__index = Limiter

function M.rate_limiter(o)
  local client = check_client(o, "counter.rate_limiter")
  local limit, window, kind = o.limit, o.window, o.kind or "fixed"
  if math.type(limit) ~= "integer" or limit < 0 then
    error("counter.rate_limiter: limit must be a non-negative integer", 2)
  end
  if type(window) ~= "number" or window < 0.001 then
    error("counter.rate_limiter: window must be a number of seconds >= 0.001", 2)
  end
  if kind ~= "fixed" and kind ~= "sliding" then
    error('counter.rate_limiter: kind must be "fixed" or "sliding"', 2)
  end
  if o.now ~= nil and type(o.now) ~= "function" then
    error("counter.rate_limiter: now must be a function", 2)
  end
  return setmetatable({ client = client, cache = o.cache, limit = limit, window = window,
                        sliding = kind == "sliding", prefix = o.prefix or "",
                        now = o.now or M.wall_clock }, Limiter)
end

-- Adds cost to the window's counter; the key outlives its window by `keep`
-- windows minus the elapsed part (TTL on create only).
local function add(self, key, cost, ttl)
  return self.client:increment(self.cache, key, cost, max(ttl, 0.001))
end

function Limiter:allow(id, cost)
  if type(id) == "number" then id = tostring(id) end
  if type(id) ~= "string" then error("limiter:allow: id must be a string", 2) end
  cost = cost or 1
  if math.type(cost) ~= "integer" or cost < 0 then
    error("limiter:allow: cost must be a non-negative integer", 2)
  end
  local now, w = self.now(), self.window
  local idx = floor(now / w)
  local elapsed = now - idx * w
  local base = self.prefix .. id .. ":"
  local key = base .. idx
  local keep = self.sliding and 2 * w or w
  local count, err = add(self, key, cost, keep - elapsed)
  if not count then return nil, err end
  local prev = 0
  if self.sliding then
    local v, gerr = self.client:get(self.cache, base .. (idx - 1))
    if gerr then return nil, gerr end
    prev = to_count(v) * (1 - elapsed / w)
  end
  local reset_in = w - elapsed
  if count + prev <= self.limit then
    return true, max(0, floor(self.limit - count - prev)), reset_in
  end
  if cost > 0 then
    local back = add(self, key, -cost, keep - elapsed)
    if back then count = back end
  end
  return false, max(0, floor(self.limit - count - prev)), reset_in
end

return M
