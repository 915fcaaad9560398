-- c:stats([cache]): the client's own counts (calls, hits, misses, errors by
-- code) on every backend, and the embedded store's items, bytes, evictions
-- and expirations, exact, per cache. Runs on any backend (tests/workflows/
-- registers it per backend); the store's figures are checked on memory.
local t = require("kura.test")

local function fresh_cache(c, prefix)
  local name = string.format("kst-%s-%08x", prefix, math.random(0, 0x7fffffff))
  local ok, err = c:create_cache(name)
  t.eq(ok, true, tostring(err))
  return name
end

local function is_memory(c) return tostring(c):find("(memory)", 1, true) ~= nil end

local NO_STORE_FIGURES = { "items", "bytes", "evictions", "expirations" }

t.test("counts match the calls made, errors by code", function()
  local c = assert(kura.client())
  local cache = fresh_cache(c, "calls")                       -- 1 call
  for i = 1, 10 do assert(c:set(cache, "k" .. i, "v" .. i)) end -- 10
  for i = 1, 15 do c:get(cache, "k" .. i) end                 -- 15: 10 hits, 5 misses
  t.eq(c:get_batch(cache, { "k1", "k2", "nope1", "nope2", "nope3" }) ~= nil, true) -- 2 hits, 3 misses
  t.eq(c:set_if_absent(cache, "k1", "x"), false)              -- 1
  t.eq(c:increment(cache, "n", 5), 5)                         -- 1
  local v, err = c:increment(cache, "k1")                     -- 1: FAILED_PRECONDITION
  t.is_nil(v)
  t.eq(err.code, "FAILED_PRECONDITION_ERROR")
  v, err = c:set(cache, "k", "v", -1)                         -- 1: INVALID_ARGUMENT
  t.eq(err.code, "INVALID_ARGUMENT_ERROR")
  v, err = c:set(cache, "k", "v", 0/0)                        -- 1: INVALID_ARGUMENT
  t.eq(err.code, "INVALID_ARGUMENT_ERROR")
  t.eq(c:key_exists(cache, "k2"), true)                       -- 1 (not a get)
  local s = c:stats(cache)
  t.eq(s.calls, 1 + 10 + 15 + 1 + 1 + 1 + 1 + 1 + 1 + 1)
  t.eq(s.hits, 12)
  t.eq(s.misses, 8)
  t.eq(s.errors, { FAILED_PRECONDITION_ERROR = 1, INVALID_ARGUMENT_ERROR = 2 })
  -- the handle's view is the same cache's
  t.eq(c:cache(cache):stats().calls, s.calls)
  -- a cache that does not exist: NOT_FOUND, counted under its own name
  local missing = cache .. "-missing"
  v, err = c:get(missing, "k")
  t.eq(err.code, "NOT_FOUND_ERROR")
  local m = c:stats(missing)
  t.eq(m.calls, 1)
  t.eq(m.hits + m.misses, 0)
  t.eq(m.errors, { NOT_FOUND_ERROR = 1 })
  -- the totals add every cache's and the calls without one
  assert(c:list_caches())
  local all = c:stats()
  t.eq(all.calls, s.calls + 1 + 1)
  t.eq(all.hits, 12)
  t.eq(all.errors.NOT_FOUND_ERROR, 1)
  c:delete_cache(cache)
end)

t.test("each client counts its own calls", function()
  local a, b = assert(kura.client{ timeout = 5 }), assert(kura.client{ timeout = 5 })
  local cache = fresh_cache(a, "own")
  for _ = 1, 3 do a:get(cache, "x") end
  b:get(cache, "x")
  t.eq(a:stats(cache).calls, 4) -- create_cache and three gets
  t.eq(b:stats(cache).calls, 1)
  t.eq(b:stats(cache).misses, 1)
  a:delete_cache(cache)
end)

t.test("concurrent calls from 200 tasks are all counted", function()
  local c = assert(kura.client())
  local cache = fresh_cache(c, "conc")
  assert(c:set(cache, "hit", "1"))
  local tasks = {}
  for i = 1, 200 do
    tasks[i] = kura.spawn(function()
      for j = 1, 5 do c:get(cache, (i + j) % 2 == 0 and "hit" or "miss") end
    end)
  end
  for _, task in ipairs(tasks) do task:join() end
  local s = c:stats(cache)
  t.eq(s.calls, 2 + 1000)
  t.eq(s.hits + s.misses, 1000)
  t.eq(s.hits, 500)
  c:delete_cache(cache)
end)

t.test("odd names: binary, empty, long, and more names than the table keeps", function()
  local c = assert(kura.client())
  local v, err = c:get("", "k")
  t.eq(err.code, "INVALID_ARGUMENT_ERROR")
  v, err = c:get(string.rep("n", 300), "k")
  t.eq(err.code, "INVALID_ARGUMENT_ERROR")
  v, err = c:get("bin\0name\255", "k")
  t.is_nil(v)
  t.eq(c:stats("bin\0name\255").calls, 1)
  t.eq(c:stats("").calls, 0) -- refused for its name: in the totals only
  -- 5,000 caches that do not exist: every call counts in the totals; the
  -- table keeps 4,096 names, so its memory stays bounded
  local before = c:stats().calls
  for i = 1, 5000 do c:get("kst-none-" .. i, "k") end
  local all = c:stats()
  t.eq(all.calls, before + 5000)
  t.eq(c:stats("kst-none-1").calls, 1)
  t.eq(c:stats("kst-none-5000").calls, 0)
  t.raises(function() c:stats(42) end, "string expected")
  t.raises(function() c:stats({}) end, "string expected")
end)

t.test("a dead server's errors are counted, with their codes", function()
  local c = assert(kura.client{ backend = "redis://127.0.0.1:1", timeout = 0.5 })
  local v, err = c:get("cache", "k")
  t.is_nil(v)
  local s = c:stats("cache")
  t.eq(s.calls, 1)
  t.eq(s.errors[err.code], 1)
  for _, f in ipairs(NO_STORE_FIGURES) do t.is_nil(s[f], f .. " is absent on Redis") end
end)

t.test("a closed client says so", function()
  local c = assert(kura.client{ timeout = 5 }) -- not the shared one
  c:get("x", "y")
  getmetatable(c).__close(c)
  local s, err = c:stats()
  t.is_nil(s)
  t.eq(err.code, "CANCELLED_ERROR")
end)

t.test("the store's figures: items, bytes, evictions, expirations, exact", function()
  local c = assert(kura.client())
  if not is_memory(c) then
    local cache = fresh_cache(c, "nostore")
    local s = c:stats(cache)
    for _, f in ipairs(NO_STORE_FIGURES) do t.is_nil(s[f], f .. " is absent off the store") end
    c:delete_cache(cache)
    return
  end
  local store = string.format("kst-%08x", math.random(0, 0x7fffffff))
  local m = assert(kura.client{ backend = "memory", store = store, max_memory = 1024 * 1024 })
  local cache = fresh_cache(m, "evict")
  local value = string.rep("v", 1000)
  for i = 1, 4000 do assert(m:set(cache, "k" .. i, value)) end
  local s = m:stats(cache)
  t.ok(s.evictions > 0, "4 MB into a 1 MB budget evicts")
  t.eq(s.items + s.evictions, 4000)
  t.ok(s.bytes > s.items * 1000 and s.bytes <= 1024 * 1024, "bytes: " .. s.bytes)
  t.eq(s.expirations, 0)
  -- expirations, seen by gets after the TTL
  local short = fresh_cache(m, "expire")
  for i = 1, 10 do assert(m:set(short, "e" .. i, "x", 0.05)) end
  t.eq(m:stats(short).items, 10)
  kura.sleep(0.2)
  for i = 1, 10 do t.is_nil(m:get(short, "e" .. i)) end
  local e = m:stats(short)
  t.eq(e.expirations, 10)
  t.eq(e.items, 0)
  -- the totals sum the caches this client named
  local all, now_evict = m:stats(), m:stats(cache)
  t.eq(all.items, now_evict.items + e.items)
  t.eq(all.evictions, now_evict.evictions + e.evictions)
  t.eq(all.expirations, 10)
  t.eq(now_evict.items + now_evict.evictions, 4000) -- the short items evicted some more
  -- another client's items count: they are the store's figures
  local other = assert(kura.client{ backend = "memory", store = store })
  assert(other:set(short, "o", "1"))
  t.eq(m:stats(short).items, 1)
end)

t.run()
