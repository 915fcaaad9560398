-- kura.refresh: read-through caching with stampede protection and early
-- recomputation, and keeping a live key set from expiring.
--
-- refresh.get_or_load(client, cache, key, loader [, opts]) -> value, or nil, err
--   Returns the cached value; on a miss calls loader(key), which returns
--   value [, ttl] or nil, err (or raises), stores the value and returns it.
--   Loader failures are returned as nil, err (a raised error as its message)
--   and never cached.
--   opts: ttl (seconds; default: the loader's second result, else
--         MOMENTO_TTL_SECONDS, else 60), beta (XFetch's beta, default 1;
--         0 turns early recomputation off), lock_ttl (seconds, default 10),
--         now (a clock in epoch seconds, default kura.counter.wall_clock),
--         random (default math.random), poll (first poll interval, default
--         0.005 s, doubling to 0.1 s).
--
--   Stampede protection, two levels:
--   * in the process: one load per (client, cache, key) at a time; the other
--     callers join the loading task and share its result;
--   * across processes: the loader runs only in the process that takes the
--     lock key (key .. "\0lock", set_if_absent with lock_ttl). The others poll
--     the cache for the value with backoff; if the lock goes away with no
--     value (that loader failed) one of them takes it over, and after
--     lock_ttl seconds without a value they load themselves. The holder
--     deletes the lock once the value is stored (a load that outlives
--     lock_ttl may so delete a later holder's lock: keep lock_ttl well above
--     the loader's time).
--
--   Early recomputation (XFetch, Vattani, Chierichetti and Lowenstein, VLDB
--   2015): with the value, the side key key .. "\0xf" holds "delta expiry":
--   the seconds the load took and the epoch time the value expires. A hit
--   reloads early when now - delta * beta * log(random()) >= expiry, so the
--   chance rises as expiry nears and slow loads start earlier; most hits do
--   not reload. The hit that wins reloads while other callers keep getting
--   the current value; if that reload fails, it returns the current value
--   too. Both keys are read with one get_batch and written with one
--   set_batch. The value key itself holds the plain value, so other readers
--   may use c:get. A value written without the side key is never reloaded
--   early.
--
-- refresh.keep_alive{ client, cache, keys, ttl, every [, on_missing] } -> handle
--   Every `every` seconds (default ttl / 3) sets the TTL of each key of the
--   live set to `ttl` with update_ttl. `keys` is an array of keys, a set
--   (key -> true; false or removed = not live), or a function returning
--   either; it is read at each round, so adding and removing keys works.
--   on_missing(key) is called for a key that is no longer in the cache.
--   The first round runs at once. handle:stop() ends it; handle.rounds,
--   handle.extended, handle.missing and handle.errors count what happened
--   (errors also logs the first few).
local kura = require("kura")
local counter = require("kura.counter")

local M = {}

local LOCK_SUFFIX, META_SUFFIX = "\0lock", "\0xf"
local MAX_POLL = 0.1
local TAKE = {} -- wait_for_other: "load it yourself"

-- client -> cache -> key -> loading task (weak in the client).
local inflight = setmetatable({}, { __mode = "k" })

local function inflight_of(client, cache)
  local per_client = inflight[client]
  if not per_client then
    per_client = {}
    inflight[client] = per_client
  end
  local per_cache = per_client[cache]
  if not per_cache then
    per_cache = {}
    per_client[cache] = per_cache
  end
  return per_cache
end

local function default_ttl()
  return tonumber(os.getenv("MOMENTO_TTL_SECONDS") or "") or 60
end

-- Runs the loader: value, ttl, delta or nil, err.
local function call_loader(o, key, loader)
  local t0 = o.now()
  local ok, v, extra = pcall(loader, key)
  if not ok then return nil, v end
  if v == nil then return nil, extra end
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" then
    return nil, "loader for " .. key .. " returned a " .. type(v) .. ", not a string"
  end
  local ttl = o.ttl or (type(extra) == "number" and extra) or default_ttl()
  return v, ttl, math.max(o.now() - t0, 0)
end

-- Loads and stores the value (the caller holds the lock, or gave up on it).
local function load_and_store(c, cache, key, loader, o)
  local v, ttl, delta = call_loader(o, key, loader)
  if v == nil then return nil, ttl end
  local meta = string.format("%.6f %.6f", delta, o.now() + ttl)
  local ok, err = c:set_batch(cache, { { key = key, value = v, ttl = ttl },
                                       { key = key .. META_SUFFIX, value = meta, ttl = ttl } })
  if not ok then
    kura.log.warn("refresh: storing %s in %s failed: %s", key, cache, tostring(err))
  end
  return v
end

-- Waits for another process's load: the value, or TAKE when this process
-- should load (then true: the lock is free, false: lock_ttl passed), or
-- nil, err.
local function wait_for_other(c, cache, key, o)
  local deadline, pause = kura.now() + o.lock_ttl, o.poll
  while kura.now() < deadline do
    kura.sleep(pause)
    pause = math.min(pause * 2, MAX_POLL)
    local got, err = c:get_batch(cache, { key, key .. LOCK_SUFFIX })
    if not got then return nil, err end
    if got[key] ~= nil then return got[key] end
    if got[key .. LOCK_SUFFIX] == nil then return TAKE, true end
  end
  return TAKE, false
end

-- A miss: take the cross-process lock and load, or wait for the holder.
local function load_missing(c, cache, key, loader, o)
  local lock = key .. LOCK_SUFFIX
  while true do
    local won, err = c:set_if_absent(cache, lock, tostring(o.token), o.lock_ttl)
    if won == nil then return nil, err end
    if won then
      local v, lerr = load_and_store(c, cache, key, loader, o)
      c:delete(cache, lock)
      return v, lerr
    end
    local v, free = wait_for_other(c, cache, key, o)
    if v ~= TAKE then return v, free end
    if not free then return load_and_store(c, cache, key, loader, o) end
  end
end

-- Runs fn(...) once per key at a time in this process: callers that come
-- while it runs join the same task.
local function single_flight(c, cache, key, fn, ...)
  local tasks = inflight_of(c, cache)
  local task = tasks[key]
  if not task then
    local args = table.pack(...)
    task = kura.spawn(function()
      local ok, v, err = pcall(fn, c, cache, key, table.unpack(args, 1, args.n))
      if tasks[key] == task then tasks[key] = nil end
      if not ok then return nil, v end
      return v, err
    end)
    tasks[key] = task
  end
  return task:join()
end

local function should_refresh(meta, o)
  if not meta or o.beta <= 0 then return false end
  local delta, expiry = meta:match("^(%S+) (%S+)$")
  delta, expiry = tonumber(delta), tonumber(expiry)
  if not delta or not expiry then return false end
  local r = o.random()
  if r <= 0 then r = 1e-12 end
  return o.now() - delta * o.beta * math.log(r) >= expiry
end

-- An early reload: the current value unless the reload succeeded.
local function refresh_early(c, cache, key, loader, o, current)
  local lock = key .. LOCK_SUFFIX
  local won = c:set_if_absent(cache, lock, tostring(o.token), o.lock_ttl)
  if not won then return current end
  local v = load_and_store(c, cache, key, loader, o)
  c:delete(cache, lock)
  return v or current
end

local function options(opts)
  opts = opts or {}
  local o = {
    ttl = opts.ttl, beta = opts.beta or 1, lock_ttl = opts.lock_ttl or 10,
    now = opts.now or counter.wall_clock, random = opts.random or math.random,
    poll = opts.poll or 0.005,
  }
  if o.ttl ~= nil and (type(o.ttl) ~= "number" or o.ttl <= 0) then
    error("refresh.get_or_load: ttl must be a positive number", 3)
  end
  if type(o.beta) ~= "number" or o.beta < 0 then
    error("refresh.get_or_load: beta must be a number >= 0", 3)
  end
  if type(o.lock_ttl) ~= "number" or o.lock_ttl <= 0 then
    error("refresh.get_or_load: lock_ttl must be a positive number", 3)
  end
  o.token = o
  return o
end

function M.get_or_load(c, cache, key, loader, opts)
  if type(cache) ~= "string" then error("refresh.get_or_load: cache must be a string", 2) end
  if type(key) ~= "string" then error("refresh.get_or_load: key must be a string", 2) end
  if type(loader) ~= "function" then error("refresh.get_or_load: loader must be a function", 2) end
  local o = options(opts)
  local got, err = c:get_batch(cache, { key, key .. META_SUFFIX })
  if not got then return nil, err end
  local v = got[key]
  if v == nil then return single_flight(c, cache, key, load_missing, loader, o) end
  if inflight_of(c, cache)[key] or not should_refresh(got[key .. META_SUFFIX], o) then
    return v
  end
  return single_flight(c, cache, key, refresh_early, loader, o, v)
end

-- --- keep_alive ---------------------------------------------------------------------

local function live_keys(keys)
  if type(keys) == "function" then keys = keys() end
  if type(keys) ~= "table" then return {} end
  if keys[1] ~= nil then return keys end
  local list = {}
  for k, live in pairs(keys) do
    if live and type(k) == "string" then list[#list + 1] = k end
  end
  return list
end

local function round(h)
  if h.running then return end
  h.running = true
  h.rounds = h.rounds + 1
  for _, key in ipairs(live_keys(h.keys)) do
    if h.stopped then break end
    local ok, err = h.client:update_ttl(h.cache, key, h.ttl)
    if ok then
      h.extended = h.extended + 1
    elseif err == nil then
      h.missing = h.missing + 1
      if h.on_missing then h.on_missing(key) end
    else
      h.errors = h.errors + 1
      if h.errors <= 5 then kura.log.warn("keep_alive: update_ttl %s: %s", key, tostring(err)) end
    end
  end
  h.running = false
end

local Handle = {}
Handle.__index = Handle

function Handle:stop()
  self.stopped = true
  if self.timer then
    self.timer:stop()
    self.timer = nil
  end
end

function M.keep_alive(o)
  if type(o) ~= "table" then error("refresh.keep_alive: expected a table of options", 2) end
  if type(o.cache) ~= "string" then error("refresh.keep_alive: cache must be a string", 2) end
  if type(o.ttl) ~= "number" or o.ttl <= 0 then
    error("refresh.keep_alive: ttl must be a positive number", 2)
  end
  local kt = type(o.keys)
  if kt ~= "table" and kt ~= "function" then
    error("refresh.keep_alive: keys must be a table or a function", 2)
  end
  local every = o.every or o.ttl / 3
  if type(every) ~= "number" or every <= 0 then
    error("refresh.keep_alive: every must be a positive number", 2)
  end
  local h = setmetatable({ client = o.client or kura.client(), cache = o.cache, keys = o.keys,
                           ttl = o.ttl, on_missing = o.on_missing, rounds = 0, extended = 0,
                           missing = 0, errors = 0 }, Handle)
  kura.spawn(round, h)
  h.timer = kura.every(every, function() round(h) end)
  return h
end

return M
