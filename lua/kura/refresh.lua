-- kura.refresh: read-through caching with stampede protection, early
-- recomputation, stale-while-revalidate and negative caching, and keeping a
-- live key set from expiring.
--
-- refresh.get_or_load(client, cache, key, loader [, opts]) -> value, or nil, err
--   Returns the cached value; on a miss calls loader(key), which returns
--   value [, ttl] or nil, err (or raises), stores the value and returns it.
--   Loader failures are returned as nil, err (a raised error as its message)
--   and never cached.
--   opts: ttl (seconds; default: the loader's second result, else
--         MOMENTO_TTL_SECONDS, else 60), beta (XFetch's beta, default 1;
--         0 turns early recomputation off), lock_ttl (seconds, default 10),
--         stale (seconds, default 0), negative_ttl (seconds, default 0: off),
--         now (a clock in epoch seconds, default kura.counter.wall_clock),
--         random (default math.random), poll (first poll interval, default
--         0.005 s, doubling to 0.1 s).
--
--   Stampede protection, two levels:
--   * in the process: one load per (client, cache, key) at a time; the other
--     callers join the loading task and share its result;
--   * across processes: the loader runs only in the process that takes the
--     lock key (key .. "\0lock" holding a random token, lock_ttl). The others
--     poll the cache for the value with backoff; if the lock goes away with
--     no value (that loader failed) one of them takes it over, and after
--     lock_ttl seconds without a value they load themselves. The holder
--     releases the lock only if it still holds its own token
--     (set_if_equal to "", the "free" mark, which then expires): a load that
--     outlived lock_ttl leaves a later holder's lock alone. Taking the lock
--     is set_if_absent_or_equal(token, ""), so the free mark counts as free.
--
--   The side key key .. "\0xf" holds "delta expiry": the seconds the load
--   took and the epoch time the value's TTL ends. The value key itself holds
--   the plain value, so other readers may use c:get.
--
--   Early recomputation (XFetch, Vattani, Chierichetti and Lowenstein, VLDB
--   2015): a hit reloads early when now - delta * beta * log(random()) >=
--   expiry, so the chance rises as expiry nears and slow loads start
--   earlier; most hits do not reload. The hit that wins reloads while other
--   callers keep getting the current value; if that reload fails, it returns
--   the current value too. A value written without the side key is never
--   reloaded early.
--
--   Stale-while-revalidate (stale = S): the value and its side key are
--   stored for ttl + S seconds. A hit past the TTL returns the stale value at
--   once and starts one background reload (one per key in the process, and
--   across processes through the lock); while the reload runs, or after it
--   failed, the stale value keeps being served until the S seconds are over.
--   Plain c:get readers see the value for those S seconds too.
--
--   Negative caching (negative_ttl = S): a loader returning nil with no
--   error stores "absent" in the side key for S seconds; lookups in that
--   time return nil without calling the loader. Without negative_ttl such a
--   nil is returned and nothing is stored.
--
--   The hit path is one c:get: the process remembers each key's expiry and
--   load time (read from the side key when it loaded or last checked) and
--   reads the side key again only once XFetch could fire (its chance above
--   1e-9), the TTL has passed, or a second has passed for a value without a
--   side key. The memory is bounded (MEMO_MAX keys per client and cache,
--   then it starts over). With a random source of its own (opts.random)
--   every hit reads the side key.
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
local ABSENT = "absent"        -- the side key of a negative entry
local FREE = ""                -- a released lock
local FREE_TTL = 0.001         -- the free mark's lifetime
local MAX_POLL = 0.1
local TAKE = {} -- wait_for_other: "load it yourself"
local SAFE_LOG = math.log(1e-9) -- XFetch fires before expiry + delta*beta*SAFE_LOG with chance < 1e-9
local PLAIN_RECHECK = 1        -- seconds before a value without side key is checked again
local MEMO_MAX = 100000

local kura_now, wall_clock = kura.now, counter.wall_clock
local type, log = type, math.log

-- client -> cache -> { inflight = key -> task, expiry = key -> t, delta = key -> s,
-- safe = key -> t, n = } (weak in the client). safe[key] is the time before
-- which a hit with the default beta needs no check: one table read on the
-- common path (each table of 10^4 keys and more misses the CPU's caches).
local states = setmetatable({}, { __mode = "k" })

local function state_of(client, cache)
  local per_client = states[client]
  if not per_client then
    per_client = {}
    states[client] = per_client
  end
  local s = per_client[cache]
  if not s then
    s = { inflight = {}, safe = {}, expiry = {}, delta = {}, n = 0 }
    per_client[cache] = s
  end
  return s
end

-- Called with a state whose tables remember() replaced (set below).
local on_memo_reset = function(s) end

-- Remembers a key's expiry and load time (MEMO_MAX keys, then it starts over).
local function remember(s, key, delta, expiry, clock)
  if s.expiry[key] == nil then
    if s.n >= MEMO_MAX then
      s.safe, s.expiry, s.delta, s.n = {}, {}, {}, 0
      on_memo_reset(s)
    end
    s.n = s.n + 1
  end
  s.expiry[key], s.delta[key] = expiry, delta
  -- safe: on kura.now()'s clock (a hit then reads no wall clock), and only
  -- for the default clock (an injected one has its own time).
  s.safe[key] = clock == wall_clock and expiry + delta * SAFE_LOG - wall_clock() + kura_now()
                or nil
end

local function forget(s, key)
  if s.expiry[key] ~= nil then
    s.safe[key], s.expiry[key], s.delta[key], s.n = nil, nil, nil, s.n - 1
  end
end

local function default_ttl()
  return tonumber(os.getenv("MOMENTO_TTL_SECONDS") or "") or 60
end

-- A token no other holder has: 128 random bits.
local function new_token()
  return string.format("%016x%016x", math.random(math.mininteger, math.maxinteger),
                       math.random(math.mininteger, math.maxinteger))
end

-- Runs the loader: value, ttl, delta; or nil, err; or nil, nil, ABSENT (a
-- nil with no error).
local function call_loader(o, key, loader)
  local t0 = o.now()
  local ok, v, extra = pcall(loader, key)
  if not ok then return nil, v end
  if v == nil then
    if extra == nil then return nil, nil, ABSENT end
    return nil, extra
  end
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" then
    return nil, "loader for " .. key .. " returned a " .. type(v) .. ", not a string"
  end
  local ttl = o.ttl or (type(extra) == "number" and extra) or default_ttl()
  return v, ttl, math.max(o.now() - t0, 0)
end

-- Loads and stores the value (the caller holds the lock, or gave up on it):
-- the value, or nil, err (nil, nil for an absent one).
local function load_and_store(c, cache, key, loader, o)
  local v, ttl, delta = call_loader(o, key, loader)
  if v == nil then
    if delta == ABSENT and o.negative_ttl > 0 then
      local ok, err = c:set(cache, key .. META_SUFFIX, ABSENT, o.negative_ttl)
      if not ok then
        kura.log.warn("refresh: storing absent %s in %s failed: %s", key, cache, tostring(err))
      end
    end
    return nil, ttl
  end
  local expiry = o.now() + ttl
  local meta = string.format("%.6f %.6f", delta, expiry)
  local keep = ttl + o.stale
  local ok, err = c:set_batch(cache, { { key = key, value = v, ttl = keep },
                                       { key = key .. META_SUFFIX, value = meta, ttl = keep } })
  if not ok then
    kura.log.warn("refresh: storing %s in %s failed: %s", key, cache, tostring(err))
  else
    remember(state_of(c, cache), key, delta, expiry, o.now)
  end
  return v
end

-- The cross-process lock: true taken, false held by another, nil, err.
local function take_lock(c, cache, key, o)
  o.token = o.token or new_token()
  return c:set_if_absent_or_equal(cache, key .. LOCK_SUFFIX, o.token, FREE, o.lock_ttl)
end

-- Frees the lock if it still holds this caller's token.
local function release_lock(c, cache, key, o)
  local ok, err = c:set_if_equal(cache, key .. LOCK_SUFFIX, FREE, o.token, FREE_TTL)
  if ok == nil then
    kura.log.warn("refresh: releasing the lock of %s in %s failed: %s", key, cache, tostring(err))
  end
end

local function load_locked(c, cache, key, loader, o)
  local v, err = load_and_store(c, cache, key, loader, o)
  release_lock(c, cache, key, o)
  return v, err
end

-- Waits for another process's load: the value, or TAKE when this process
-- should load (then true: the lock is free, false: lock_ttl passed), or
-- nil, err.
local function wait_for_other(c, cache, key, o)
  local deadline, pause = kura_now() + o.lock_ttl, o.poll
  local lock = key .. LOCK_SUFFIX
  while kura_now() < deadline do
    kura.sleep(pause)
    pause = math.min(pause * 2, MAX_POLL)
    local got, err = c:get_batch(cache, { key, lock })
    if not got then return nil, err end
    if got[key] ~= nil then return got[key] end
    local holder = got[lock]
    if holder == nil or holder == FREE then return TAKE, true end
  end
  return TAKE, false
end

-- A miss: take the cross-process lock and load, or wait for the holder.
local function load_missing(c, cache, key, loader, o)
  while true do
    local won, err = take_lock(c, cache, key, o)
    if won == nil then return nil, err end
    if won then return load_locked(c, cache, key, loader, o) end
    local v, free = wait_for_other(c, cache, key, o)
    if v ~= TAKE then return v, free end
    if not free then return load_and_store(c, cache, key, loader, o) end
  end
end

-- Runs fn(...) once per key at a time in this process: callers that come
-- while it runs join the same task.
local function single_flight(c, cache, key, fn, ...)
  local tasks = state_of(c, cache).inflight
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

-- A failed background reload: one line a second per cache at most (an origin
-- that went down fails every key's reload), with the count of the others.
local function warn_stale(s, key, cache, err)
  local t = kura_now()
  if s.warned_at and t - s.warned_at < 1 then
    s.unwarned = (s.unwarned or 0) + 1
    return
  end
  local more = s.unwarned and s.unwarned > 0 and
    string.format(" (and %d other reload(s) failed in the last second)", s.unwarned) or ""
  kura.log.warn("refresh: reloading %s in %s failed, serving the stale value: %s%s", key, cache,
                tostring(err), more)
  s.warned_at, s.unwarned = t, 0
end

-- A reload in a task of its own, nobody waiting (stale-while-revalidate):
-- at most one per key in the process.
local function reload_in_background(c, cache, key, loader, o)
  local tasks = state_of(c, cache).inflight
  if tasks[key] then return end
  local task
  task = kura.spawn(function()
    local ok, v, err = pcall(function()
      local won, lerr = take_lock(c, cache, key, o)
      if not won then return true, lerr end -- another process reloads (or an error)
      return load_locked(c, cache, key, loader, o)
    end)
    if tasks[key] == task then tasks[key] = nil end
    if not ok or (v == nil and err ~= nil) then warn_stale(state_of(c, cache), key, cache, ok and err or v) end
  end)
  tasks[key] = task
end

local function parse_meta(meta)
  if not meta then return nil end
  local delta, expiry = meta:match("^(%S+) (%S+)$")
  return tonumber(delta), tonumber(expiry)
end

local function xfetch_fires(delta, expiry, o, now)
  if o.beta <= 0 then return false end
  local r = o.random()
  if r <= 0 then r = 1e-12 end
  return now - delta * o.beta * log(r) >= expiry
end

-- An early reload: the current value unless the reload succeeded.
local function refresh_early(c, cache, key, loader, o, current)
  local won = take_lock(c, cache, key, o)
  if not won then return current end
  local v = load_locked(c, cache, key, loader, o)
  return v or current
end

-- A reload past the TTL without `stale`: the new value or the load's error.
local function reload_now(c, cache, key, loader, o)
  local won, err = take_lock(c, cache, key, o)
  if won == nil then return nil, err end
  if won then return load_locked(c, cache, key, loader, o) end
  return load_missing(c, cache, key, loader, o)
end

local function check_number(v, name, min_ok)
  if v ~= nil and (type(v) ~= "number" or v ~= v or v < 0 or (not min_ok and v == 0)
                   or v == math.huge) then
    error("refresh.get_or_load: " .. name .. " must be a " ..
          (min_ok and "number >= 0" or "positive number"), 4)
  end
end

-- Options tables already checked (a caller usually passes the same one).
local checked = setmetatable({}, { __mode = "k" })

local function check_options(opts)
  if type(opts) ~= "table" then error("refresh.get_or_load: opts must be a table", 3) end
  check_number(opts.ttl, "ttl", false)
  check_number(opts.beta, "beta", true)
  check_number(opts.lock_ttl, "lock_ttl", false)
  check_number(opts.stale, "stale", true)
  check_number(opts.negative_ttl, "negative_ttl", true)
  for _, f in ipairs({ "now", "random" }) do
    if opts[f] ~= nil and type(opts[f]) ~= "function" then
      error("refresh.get_or_load: " .. f .. " must be a function", 3)
    end
  end
  checked[opts] = true
end

local function options(opts)
  opts = opts or {}
  return {
    ttl = opts.ttl, beta = opts.beta or 1, lock_ttl = opts.lock_ttl or 10,
    stale = opts.stale or 0, negative_ttl = opts.negative_ttl or 0,
    now = opts.now or wall_clock, random = opts.random or math.random,
    poll = opts.poll or 0.005,
  }
end

-- A miss on the value key: a negative entry, or a load.
local function on_miss(c, cache, key, loader, o)
  if o.negative_ttl > 0 then
    local meta, err = c:get(cache, key .. META_SUFFIX)
    if meta == ABSENT then return nil end
    if meta == nil and err ~= nil then return nil, err end
  end
  return single_flight(c, cache, key, load_missing, loader, o)
end

-- A hit that needs the side key: XFetch's draw, the stale window, or a
-- value whose side key this process has not read yet.
local function on_checked_hit(c, cache, key, loader, o, v)
  local s = state_of(c, cache)
  local meta = c:get(cache, key .. META_SUFFIX)
  local now = o.now()
  local delta, expiry = parse_meta(meta)
  if not (delta and expiry) then
    remember(s, key, 0, now + PLAIN_RECHECK, o.now) -- a plain value: check again later
    return v
  end
  remember(s, key, delta, expiry, o.now)
  if now >= expiry then
    if o.stale > 0 then
      reload_in_background(c, cache, key, loader, o)
      return v
    end
    forget(s, key)
    return single_flight(c, cache, key, reload_now, loader, o)
  end
  if s.inflight[key] or not xfetch_fires(delta, expiry, o, now) then return v end
  return single_flight(c, cache, key, refresh_early, loader, o, v)
end

-- level: where a bad argument is blamed (3, the caller of the C hit path,
-- when it calls this directly).
local function get_or_load_checked(c, cache, key, loader, opts, v, err, level)
  level = level or 3
  if type(cache) ~= "string" then error("refresh.get_or_load: cache must be a string", level) end
  if type(key) ~= "string" then error("refresh.get_or_load: key must be a string", level) end
  if type(loader) ~= "function" then error("refresh.get_or_load: loader must be a function", level) end
  if opts ~= nil and not checked[opts] then check_options(opts) end
  if v == nil then
    if err ~= nil then return nil, err end
    return on_miss(c, cache, key, loader, options(opts))
  end
  return on_checked_hit(c, cache, key, loader, options(opts), v)
end

-- The last (client, cache, state, loader, opts) a fast hit used: a caller
-- in a loop passes the same ones, and comparing is cheaper than looking up.
local last_c, last_cache, last_s, last_loader, last_opts = nil, nil, nil, nil, false

local function fast_eligible(opts)
  return opts == nil or (opts.now == nil and opts.random == nil and opts.beta == nil)
end

-- The C hit path (the binding's kura._refresh_hit) records what it may
-- take through this; nil where the binding has none.
local set_fast_last

local function lua_get_or_load(c, cache, key, loader, opts)
  local level = set_fast_last and 3 or 2 -- called by the C hit path: one level more
  -- The common case: a hit well before XFetch could fire with the client,
  -- cache, loader and options of the last call (checked then), the default
  -- clock, random source and beta. It costs c:get (which checks the key),
  -- one table read (the key's safe time) and the clock.
  if c == last_c and cache == last_cache and loader == last_loader and opts == last_opts then
    local v, err = c:get(cache, key)
    if v ~= nil then
      local safe = last_s.safe[key]
      if safe and kura_now() < safe then return v end
    end
    return get_or_load_checked(c, cache, key, loader, opts, v, err, level + 1)
  end
  if type(cache) ~= "string" then error("refresh.get_or_load: cache must be a string", level) end
  if type(key) ~= "string" then error("refresh.get_or_load: key must be a string", level) end
  local v, err = c:get(cache, key)
  local r1, r2 = get_or_load_checked(c, cache, key, loader, opts, v, err, level + 1)
  if fast_eligible(opts) then
    last_c, last_cache, last_s, last_loader, last_opts = c, cache, state_of(c, cache), loader, opts
    if set_fast_last then set_fast_last(c, cache, loader, opts, last_s.safe) end
  end
  return r1, r2
end

-- get_or_load(c, cache, key, loader [, opts]): in C where the binding has
-- the hit path (a hit with the last call's client, cache, loader and options
-- never enters Lua), else the Lua function above.
M.get_or_load = lua_get_or_load
if kura._refresh_hit then
  M.get_or_load, set_fast_last = kura._refresh_hit(lua_get_or_load, get_or_load_checked)
  on_memo_reset = function(s)
    if s == last_s then set_fast_last(last_c, last_cache, last_loader, last_opts, s.safe) end
  end
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
