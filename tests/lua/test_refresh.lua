-- kura.refresh: read-through with stampede protection (in the process and
-- across clients through the lock key), XFetch early recomputation with an
-- injected clock and random source, loader errors never cached, keep_alive.
-- Runs on any backend (tests/workflows/ registers it per backend).
local t = require("kura.test")
local refresh = require("kura.refresh")

local function fresh_cache(prefix)
  local c = kura.client()
  local name = string.format("kwf-%s-%08x", prefix, math.random(0, 0x7fffffff))
  t.eq(c:create_cache(name), true)
  return c, name
end

-- A loader that counts its calls and takes `pause` seconds.
local function counting_loader(value, pause)
  local l = { calls = 0 }
  l.fn = function(key)
    l.calls = l.calls + 1
    if pause then kura.sleep(pause) end
    return value .. ":" .. key .. ":" .. l.calls
  end
  return l
end

-- A released lock holds the free mark "" for a moment, then expires.
local function released(c, cache, key)
  local v = c:get(cache, key .. "\0lock")
  return v == nil or v == ""
end

local function join_all(tasks)
  local out = {}
  for i, task in ipairs(tasks) do out[i] = task:join() end
  return out
end

t.test("a hit does not call the loader, a miss stores", function()
  local c, cache = fresh_cache("hit")
  local l = counting_loader("v")
  t.eq(refresh.get_or_load(c, cache, "k", l.fn, { ttl = 30 }), "v:k:1")
  t.eq(c:get(cache, "k"), "v:k:1", "the plain value is readable with get")
  t.eq(refresh.get_or_load(c, cache, "k", l.fn, { ttl = 30 }), "v:k:1")
  t.eq(l.calls, 1)
  local ttl = c:item_get_ttl(cache, "k")
  t.ok(ttl > 28 and ttl <= 30, "ttl " .. tostring(ttl))
  t.eq(c:set(cache, "plain", "x"), true)
  t.eq(refresh.get_or_load(c, cache, "plain", l.fn), "x", "values set elsewhere are hits")
  c:delete_cache(cache)
end)

t.test("stampede: 100 tasks, one missing key, one load", function()
  local c, cache = fresh_cache("stampede")
  local l = counting_loader("v", 0.05)
  local tasks = {}
  for i = 1, 100 do
    tasks[i] = kura.spawn(refresh.get_or_load, c, cache, "hot", l.fn, { ttl = 30 })
  end
  local got = join_all(tasks)
  t.eq(l.calls, 1)
  for i = 1, 100 do t.eq(got[i], "v:hot:1", "task " .. i) end
  t.ok(released(c, cache, "hot"), "the lock is released after the load")
  c:delete_cache(cache)
end)

t.test("stampede across clients: the lock key lets one of them load", function()
  local c, cache = fresh_cache("xproc")
  local other = kura.client{}  -- a second client on the same backend (another "process")
  local l = counting_loader("v", 0.1)
  local tasks = {}
  for i = 1, 60 do
    local client = i % 2 == 0 and c or other
    tasks[i] = kura.spawn(refresh.get_or_load, client, cache, "shared", l.fn,
                          { ttl = 30, lock_ttl = 5 })
  end
  local got = join_all(tasks)
  t.eq(l.calls, 1)
  for i = 1, 60 do t.eq(got[i], "v:shared:1", "task " .. i) end
  c:delete_cache(cache)
end)

t.test("a failed load elsewhere hands the lock over", function()
  local c, cache = fresh_cache("handover")
  local other = kura.client{}
  local calls = 0
  local function flaky(key)
    calls = calls + 1
    kura.sleep(0.05)
    if calls == 1 then return nil, "backend down" end
    return "ok:" .. key
  end
  local a = kura.spawn(refresh.get_or_load, c, cache, "k", flaky, { ttl = 30 })
  -- b starts once a holds the lock (a's loader runs), however slow the
  -- backend is today: a fixed pause lost the race on a loaded cluster
  local waited = kura.now()
  while calls == 0 and kura.now() - waited < 10 do kura.sleep(0.001) end
  t.eq(calls, 1, "a's load started")
  local b = kura.spawn(refresh.get_or_load, other, cache, "k", flaky, { ttl = 30 })
  t.eq({ a:join() }, { nil, "backend down" })
  t.eq(b:join(), "ok:k")
  t.eq(calls, 2)
  c:delete_cache(cache)
end)

t.test("loader errors are returned and never cached", function()
  local c, cache = fresh_cache("err")
  local v, err = refresh.get_or_load(c, cache, "k", function() return nil, "no such player" end)
  t.is_nil(v)
  t.eq(err, "no such player")
  t.is_nil(c:get(cache, "k"))
  v, err = refresh.get_or_load(c, cache, "k", function() error("boom", 0) end)
  t.is_nil(v)
  t.eq(err, "boom")
  v, err = refresh.get_or_load(c, cache, "k", function() return {} end)
  t.is_nil(v)
  t.ok(tostring(err):find("not a string"), tostring(err))
  t.is_nil(c:get(cache, "k"))
  t.ok(released(c, cache, "k"), "a failed load releases the lock")
  t.eq(refresh.get_or_load(c, cache, "k", function() return 42 end), "42")
  local missing = cache .. "-absent"
  v, err = refresh.get_or_load(c, missing, "k", function() return "x" end)
  t.is_nil(v)
  t.eq(err.code, "NOT_FOUND_ERROR")
  t.raises(function() refresh.get_or_load(c, cache, "k", "not a function") end, "loader")
  t.raises(function() refresh.get_or_load(c, cache, "k", tostring, { ttl = -1 }) end, "ttl")
  c:delete_cache(cache)
end)

-- XFetch with a hand-moved clock: the loader takes `delta` = 2 s of that
-- clock; random() = 0.5, so a read reloads once now >= expiry - 2 * ln 2.
t.test("XFetch: early reload shortly before expiry, not on every read", function()
  local c, cache = fresh_cache("xfetch")
  local clock = 5000
  local calls = 0
  local function slow_loader()
    calls = calls + 1
    clock = clock + 2
    return "gen" .. calls
  end
  local opts = { ttl = 100, beta = 1, now = function() return clock end,
                 random = function() return 0.5 end }
  t.eq(refresh.get_or_load(c, cache, "k", slow_loader, opts), "gen1")
  local expiry = clock + 100 -- 5102
  for _, before in ipairs({ 90, 50, 10, 2, 1.5 }) do
    clock = expiry - before
    for _ = 1, 20 do t.eq(refresh.get_or_load(c, cache, "k", slow_loader, opts), "gen1") end
  end
  t.eq(calls, 1, "no reload while now < expiry - delta * beta * -ln(random)")
  clock = expiry - 1.3
  t.eq(refresh.get_or_load(c, cache, "k", slow_loader, opts), "gen2", "reloaded early")
  t.eq(calls, 2)
  for _ = 1, 20 do t.eq(refresh.get_or_load(c, cache, "k", slow_loader, opts), "gen2") end
  t.eq(calls, 2, "the new value has a new expiry")
  -- beta scales the head start; beta = 0 turns it off.
  clock = clock + 100 - 3
  local off = { ttl = 100, beta = 0, now = opts.now, random = opts.random }
  t.eq(refresh.get_or_load(c, cache, "k", slow_loader, off), "gen2")
  local eager = { ttl = 100, beta = 4, now = opts.now, random = opts.random }
  t.eq(refresh.get_or_load(c, cache, "k", slow_loader, eager), "gen3")
  c:delete_cache(cache)
end)

t.test("XFetch: the reload probability rises as expiry nears", function()
  local c, cache = fresh_cache("xprob")
  local clock = 100
  local loads = 0
  local function loader()
    loads = loads + 1
    clock = clock + 1 -- delta = 1
    return "v"
  end
  -- A fixed sequence of random numbers: the same for every distance.
  local seq, i = {}, 0
  for k = 1, 200 do seq[k] = (k - 0.5) / 200 end
  local opts = { ttl = 1000, now = function() return clock end,
                 random = function() i = i % #seq + 1; return seq[i] end }
  refresh.get_or_load(c, cache, "k", loader, opts)
  local expiry = clock + 1000
  -- P(reload) at distance d is exp(-d) (delta = beta = 1); count, without
  -- keeping the reloads' effect, how many of 200 reads would reload.
  local function would_reload(d)
    clock = expiry - d
    local before, n = loads, 0
    for _ = 1, 200 do
      c:set(cache, "k\0xf", string.format("%.6f %.6f", 1, expiry), 1000)
      refresh.get_or_load(c, cache, "k", loader, opts)
      clock = expiry - d
    end
    n = loads - before
    return n
  end
  local far, mid, near = would_reload(5), would_reload(1), would_reload(0.1)
  -- random() runs through (k - 0.5) / 200: exactly the k with r <= exp(-d) reload.
  t.eq(far, 1, "exp(-5) of 200")
  t.eq(mid, 74, "exp(-1) of 200")
  t.eq(near, 181, "exp(-0.1) of 200")
  c:delete_cache(cache)
end)

t.test("XFetch: a failed early reload keeps the current value", function()
  local c, cache = fresh_cache("xfail")
  local clock = 0
  local fail = false
  local function loader()
    clock = clock + 1
    if fail then return nil, "down" end
    return "good"
  end
  local opts = { ttl = 50, now = function() return clock end, random = function() return 0.5 end }
  t.eq(refresh.get_or_load(c, cache, "k", loader, opts), "good")
  fail = true
  clock = clock + 50 - 0.1
  t.eq(refresh.get_or_load(c, cache, "k", loader, opts), "good")
  t.eq(c:get(cache, "k"), "good")
  c:delete_cache(cache)
end)

t.test("negative_ttl: an absent key calls the loader once, then again after S", function()
  local c, cache = fresh_cache("neg")
  local calls = 0
  local function absent() calls = calls + 1 return nil end
  for i = 1, 5 do
    local v, err = refresh.get_or_load(c, cache, "ghost", absent, { ttl = 30, negative_ttl = 0.4 })
    t.is_nil(v, "lookup " .. i)
    t.is_nil(err, "absent is not an error")
  end
  t.eq(calls, 1, "5 lookups, one load")
  t.is_nil(c:get(cache, "ghost"), "no value is stored for an absent key")
  kura.sleep(0.6)
  t.is_nil(refresh.get_or_load(c, cache, "ghost", absent, { negative_ttl = 0.4 }))
  t.eq(calls, 2, "the negative entry expired")
  -- A value set meanwhile wins over the negative entry.
  t.eq(c:set(cache, "ghost", "here now"), true)
  t.eq(refresh.get_or_load(c, cache, "ghost", absent, { negative_ttl = 0.4 }), "here now")
  t.eq(calls, 2)
  -- Without negative_ttl every lookup loads; errors are never remembered.
  local plain = 0
  for _ = 1, 3 do
    refresh.get_or_load(c, cache, "other", function() plain = plain + 1 return nil end)
  end
  t.eq(plain, 3)
  local failing = 0
  for _ = 1, 3 do
    local v, err = refresh.get_or_load(c, cache, "err", function()
      failing = failing + 1
      return nil, "db down"
    end, { negative_ttl = 10 })
    t.is_nil(v)
    t.eq(err, "db down")
  end
  t.eq(failing, 3, "a loader error is not an absent key")
  c:delete_cache(cache)
end)

-- A loader that takes `pause` seconds and says when it is done.
local function reloader(pause)
  local l = { calls = 0, running = false }
  l.fn = function(key)
    l.calls = l.calls + 1
    l.running = true
    if l.calls > 1 then kura.sleep(pause) end
    l.running = false
    if l.fail and l.calls > 1 then return nil, "origin down" end
    return "v" .. l.calls
  end
  return l
end

t.test("stale: 20 callers past the TTL get the stale value at once, one reload runs", function()
  local c, cache = fresh_cache("swr")
  local l = reloader(0.3)
  local opts = { ttl = 0.3, stale = 10, beta = 0 } -- no early reloads: the loader takes as long as the TTL
  t.eq(refresh.get_or_load(c, cache, "k", l.fn, opts), "v1")
  kura.sleep(0.45)
  local tasks, during = {}, {}
  for i = 1, 20 do
    tasks[i] = kura.spawn(function()
      local v = refresh.get_or_load(c, cache, "k", l.fn, opts)
      during[i] = l.running or l.calls == 1 -- answered before the reload finished
      return v
    end)
  end
  local got = join_all(tasks)
  for i = 1, 20 do
    t.eq(got[i], "v1", "caller " .. i .. " gets the stale value")
    t.ok(during[i], "caller " .. i .. " did not wait for the reload")
  end
  kura.sleep(0.5)
  t.eq(l.calls, 2, "exactly one reload")
  t.eq(refresh.get_or_load(c, cache, "k", l.fn, opts), "v2", "the reload's value")
  t.ok(released(c, cache, "k"))
  c:delete_cache(cache)
end)

t.test("stale: across clients one reload; a failed reload keeps the stale value", function()
  local c, cache = fresh_cache("swrx")
  local other = kura.client{}
  local l = reloader(0.2)
  local opts = { ttl = 0.3, stale = 1.2, lock_ttl = 5, beta = 0 }
  t.eq(refresh.get_or_load(c, cache, "k", l.fn, opts), "v1")
  kura.sleep(0.45)
  local tasks = {}
  for i = 1, 20 do
    tasks[i] = kura.spawn(refresh.get_or_load, i % 2 == 0 and c or other, cache, "k", l.fn, opts)
  end
  for i, v in ipairs(join_all(tasks)) do t.eq(v, "v1", "caller " .. i) end
  kura.sleep(0.4)
  t.eq(l.calls, 2, "one reload for both clients")
  -- The reload's value expires in its turn; now the origin fails.
  l.fail = true
  kura.sleep(0.35)
  for _ = 1, 5 do t.eq(refresh.get_or_load(c, cache, "k", l.fn, opts), "v2") end
  kura.sleep(0.4)
  t.eq(refresh.get_or_load(c, cache, "k", l.fn, opts), "v2", "still served after the failure")
  t.ok(l.calls >= 3, "the reload was tried")
  -- Past ttl + stale the value is gone and the error comes back.
  kura.sleep(1.3)
  local v, err = refresh.get_or_load(c, cache, "k", l.fn, opts)
  t.is_nil(v)
  t.eq(err, "origin down")
  c:delete_cache(cache)
end)

t.test("past the TTL without stale: a reload before the answer", function()
  local c, cache = fresh_cache("nostale")
  local l = reloader(0.05)
  t.eq(refresh.get_or_load(c, cache, "k", l.fn, { ttl = 0.2, stale = 5 }), "v1")
  kura.sleep(0.3)
  -- The value is still there (ttl + stale); a caller without stale waits.
  t.eq(refresh.get_or_load(c, cache, "k", l.fn, { ttl = 0.2 }), "v2")
  t.eq(l.calls, 2)
  c:delete_cache(cache)
end)

t.test("the lock is released only by its holder", function()
  local c, cache = fresh_cache("lockown")
  local slow = function()
    kura.sleep(0.5)
    return "slow value"
  end
  local task = kura.spawn(refresh.get_or_load, c, cache, "k", slow, { ttl = 30, lock_ttl = 0.2 })
  kura.sleep(0.35)
  -- The first holder's lock expired; a later holder took it.
  t.eq(c:set_if_absent(cache, "k\0lock", "later holder", 10), true)
  t.eq(task:join(), "slow value")
  t.eq(c:get(cache, "k\0lock"), "later holder", "the later holder's lock stays")
  c:delete_cache(cache)
end)

t.test("option checks: stale and negative_ttl", function()
  local c, cache = fresh_cache("opts")
  local f = function() return "x" end
  t.raises(function() refresh.get_or_load(c, cache, "k", f, { stale = -1 }) end, "stale")
  t.raises(function() refresh.get_or_load(c, cache, "k", f, { negative_ttl = "5" }) end,
           "negative_ttl")
  t.raises(function() refresh.get_or_load(c, cache, "k", f, { stale = 0 / 0 }) end, "stale")
  t.raises(function() refresh.get_or_load(c, 7, "k", f) end, "cache must be a string")
  t.raises(function() refresh.get_or_load(c, cache, nil, f) end, "key must be a string")
  t.raises(function() refresh.get_or_load(c, cache, "k", "f") end, "loader must be a function")
  t.eq(refresh.get_or_load(c, cache, "k", f, { stale = 0, negative_ttl = 0 }), "x")
  -- After a call, the same client, cache, loader and options take the
  -- short path; a bad key still raises (from the client's get).
  t.eq(refresh.get_or_load(c, cache, "k", f), "x")
  t.raises(function() refresh.get_or_load(c, cache, nil, f) end, "string expected")
  t.raises(function() refresh.get_or_load(c, cache, {}, f) end, "string expected")
  c:delete_cache(cache)
end)

t.test("the hit path in C answers as the Lua one: changed arguments, odd names, closed "
       .. "clients, deleted caches, expiry", function()
  t.eq(type(kura._refresh_hit), "function", "the binding has the C hit path")
  local c, cache = fresh_cache("chit")
  local n = 0
  local function loader(key) n = n + 1; return "v:" .. key .. ":" .. n end
  local opts = { ttl = 30 }
  t.eq(refresh.get_or_load(c, cache, "a", loader, opts), "v:a:1")
  for _ = 1, 100 do t.eq(refresh.get_or_load(c, cache, "a", loader, opts), "v:a:1") end
  t.eq(n, 1)
  -- each argument changed in turn misses the recorded call and is still right
  t.eq(refresh.get_or_load(c, cache, "b", loader, opts), "v:b:2")
  local other = function() return "other" end
  t.eq(refresh.get_or_load(c, cache, "a", other, opts), "v:a:1", "a hit whatever the loader")
  t.eq(refresh.get_or_load(c, cache, "a", loader, { ttl = 30 }), "v:a:1")
  local c2 = assert(kura.client{ timeout = 5 })
  t.eq(refresh.get_or_load(c2, cache, "a", loader, opts), "v:a:1", "another client, one store")
  -- a long cache name (not interned: same bytes, another string) and one
  -- that differs in its last byte only
  local long = cache .. string.rep("x", 60)
  t.eq(c:create_cache(long), true)
  t.eq(refresh.get_or_load(c, long, "k", loader, opts), "v:k:3")
  t.eq(refresh.get_or_load(c, cache .. string.rep("x", 60), "k", loader, opts), "v:k:3")
  local long2 = cache .. string.rep("x", 59) .. "y"
  local v, err = refresh.get_or_load(c, long2, "k", loader, opts)
  t.is_nil(v)
  t.eq(err.code, "NOT_FOUND_ERROR")
  -- binary keys, the empty key
  t.eq(refresh.get_or_load(c, long, "\0\255k", loader, opts), "v:\0\255k:4")
  t.eq(refresh.get_or_load(c, long, "\0\255k", loader, opts), "v:\0\255k:4")
  t.eq(refresh.get_or_load(c, long, "", loader, opts), "v::5")
  t.eq(refresh.get_or_load(c, long, "", loader, opts), "v::5")
  -- a deleted cache: the error, not a stale hit
  t.eq(refresh.get_or_load(c, long, "k", loader, opts), "v:k:3")
  c:delete_cache(long)
  v, err = refresh.get_or_load(c, long, "k", loader, opts)
  t.is_nil(v)
  t.eq(err.code, "NOT_FOUND_ERROR")
  -- a bad argument is blamed on the caller's line
  local ok, msg = pcall(refresh.get_or_load, c, cache, "a", "not a function", opts)
  t.ok(not ok and tostring(msg):find("loader must be a function", 1, true), tostring(msg))
  ok, msg = pcall(function() return refresh.get_or_load(c, 42, "a", loader, opts) end)
  t.ok(not ok and tostring(msg):find("test_refresh.lua:%d+: refresh.get_or_load: cache must"),
       tostring(msg))
  -- a closed client after its calls were recorded
  t.eq(refresh.get_or_load(c2, cache, "a", loader, opts), "v:a:1")
  getmetatable(c2).__close(c2)
  v, err = refresh.get_or_load(c2, cache, "a", loader, opts)
  t.is_nil(v)
  t.eq(err.code, "CANCELLED_ERROR")
  -- with the default clock the hit path ends at the key's safe time: past
  -- the TTL the loader runs again
  local short = { ttl = 0.2 }
  t.eq(refresh.get_or_load(c, cache, "e", loader, short), "v:e:6")
  local deadline = kura.now() + 3
  while n == 6 and kura.now() < deadline do
    refresh.get_or_load(c, cache, "e", loader, short)
    kura.sleep(0.01)
  end
  t.ok(n >= 7, "reloaded before or at the TTL's end")
  c:delete_cache(cache)
end)

t.test("the hit path in C after the memo of 100,000 keys starts over", function()
  local c, cache = fresh_cache("memo")
  -- the C path serves the in-process store only (100,000 loads over a
  -- network would take a minute and show nothing more)
  if not tostring(c):find("(memory)", 1, true) then return c:delete_cache(cache) end
  local n = 0
  local function loader() n = n + 1; return "v" end
  local opts = { ttl = 60 }
  for i = 1, 100001 do refresh.get_or_load(c, cache, "k" .. i, loader, opts) end
  t.eq(n, 100001)
  for i = 100001, 99990, -1 do t.eq(refresh.get_or_load(c, cache, "k" .. i, loader, opts), "v") end
  t.eq(refresh.get_or_load(c, cache, "k1", loader, opts), "v")
  t.eq(n, 100001, "hits after the reset load nothing")
  c:delete_cache(cache)
end)

t.test("keep_alive: live keys stay, idle ones expire", function()
  local c, cache = fresh_cache("alive")
  for _, k in ipairs({ "s:a", "s:b", "s:c" }) do t.eq(c:set(cache, k, "session", 1), true) end
  local live = { ["s:a"] = true, ["s:b"] = true, ["s:gone"] = true }
  local missing = {}
  local h = refresh.keep_alive{ client = c, cache = cache, keys = live, ttl = 1, every = 0.1,
                                on_missing = function(k) missing[k] = true end }
  kura.sleep(1.6)
  t.eq(c:get(cache, "s:a"), "session")
  t.eq(c:get(cache, "s:b"), "session")
  t.is_nil(c:get(cache, "s:c"), "not in the live set: expired")
  t.ok(missing["s:gone"], "on_missing is called for keys no longer cached")
  live["s:b"] = nil
  kura.sleep(1.6)
  t.eq(c:get(cache, "s:a"), "session")
  t.is_nil(c:get(cache, "s:b"), "removed from the live set: expired")
  t.ok(h.rounds >= 5 and h.extended >= 10, "rounds " .. h.rounds .. " extended " .. h.extended)
  h:stop()
  local rounds = h.rounds
  kura.sleep(0.3)
  t.eq(h.rounds, rounds, "stop ends the rounds")
  c:delete_cache(cache)
end)

t.test("keep_alive: an array or a function gives the keys", function()
  local c, cache = fresh_cache("alivefn")
  t.eq(c:set(cache, "a", "1", 100), true)
  t.eq(c:set(cache, "b", "2", 100), true)
  local h = refresh.keep_alive{ client = c, cache = cache, keys = { "a" }, ttl = 5, every = 60 }
  kura.sleep(0.05)
  local ttl = c:item_get_ttl(cache, "a")
  t.ok(ttl <= 5, "the first round runs at once: " .. tostring(ttl))
  h:stop()
  local h2 = refresh.keep_alive{ client = c, cache = cache, ttl = 7, every = 60,
                                 keys = function() return { b = true } end }
  kura.sleep(0.05)
  t.ok(c:item_get_ttl(cache, "b") <= 7)
  t.eq(h2.extended, 1)
  h2:stop()
  t.raises(function() refresh.keep_alive{ client = c, cache = cache, keys = {}, ttl = 0 } end,
           "ttl")
  c:delete_cache(cache)
end)

t.run()
