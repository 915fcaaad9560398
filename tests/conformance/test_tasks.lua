-- Conformance: the client used from many tasks at once (docs/lua-api.md: every
-- method may suspend the calling task while a remote backend answers), where
-- Lua cannot yield, and with per-client options. Results must not depend on
-- how a backend batches or orders requests.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "conform.lua")
local t = C.t
local P = "tasks"

-- Run fn(i) in n tasks at once and return their first results, in order.
local function in_tasks(n, fn)
  local tasks = {}
  for i = 1, n do tasks[i] = kura.spawn(fn, i) end
  local out = {}
  for i = 1, n do
    local r, err = tasks[i]:join()
    if r == nil and err ~= nil then error("task " .. i .. " raised: " .. tostring(err), 0) end
    out[i] = r
  end
  return out
end

C.test(P, "increments from concurrent tasks are atomic", function(c, cache)
  in_tasks(10, function()
    for _ = 1, 100 do assert(c:increment(cache, "n", 1)) end
    return true
  end)
  t.eq(c:get(cache, "n"), "1000")
  t.eq(c:increment(cache, "n", 0), 1000)
end)

C.test(P, "set_if_absent from concurrent tasks: exactly one wins", function(c, cache)
  local won = in_tasks(20, function(i)
    local r, err = c:set_if_absent(cache, "lock", "task" .. i)
    assert(r ~= nil, tostring(err))
    return r and i or 0
  end)
  local winners = {}
  for _, w in ipairs(won) do if w ~= 0 then winners[#winners + 1] = w end end
  t.eq(#winners, 1)
  t.eq(c:get(cache, "lock"), "task" .. winners[1])
end)

C.test(P, "concurrent tasks each read back their own writes", function(c, cache)
  local ok = in_tasks(16, function(i)
    for j = 1, 50 do
      local k, v = "t" .. i .. ":" .. j, string.rep(string.char(65 + i), j)
      assert(c:set(cache, k, v) == true)
      assert(c:get(cache, k) == v, "read back " .. k)
      assert(c:key_exists(cache, k) == true)
    end
    local keys = {}
    for j = 1, 50 do keys[j] = "t" .. i .. ":" .. j end
    local got = c:get_batch(cache, keys)
    for j = 1, 50 do assert(got[keys[j]] == string.rep(string.char(65 + i), j)) end
    return true
  end)
  for i = 1, 16 do t.eq(ok[i], true) end
end)

C.test(P, "a mix of calls from concurrent tasks keeps each call's result", function(c, cache)
  t.eq(c:set(cache, "shared", "x"), true)
  local r = in_tasks(8, function(i)
    local key = "own" .. i
    assert(c:get(cache, key) == nil)
    assert(c:increment(cache, key, i) == i)
    assert(c:get(cache, "shared") == "x")
    assert(c:set_if_present(cache, key, "p" .. i) == true)
    assert(c:update_ttl(cache, key, 30) == true)
    local e = c:keys_exist(cache, { key, "nope", "shared" })
    assert(e[1] == true and e[2] == false and e[3] == true)
    local v, err = c:get(cache .. "-missing", key)
    assert(v == nil and err.code == "NOT_FOUND_ERROR")
    return c:get(cache, key)
  end)
  for i = 1, 8 do t.eq(r[i], "p" .. i) end
end)

-- An error about a call that could not suspend names the reason.
local function says_why(err)
  local s = tostring(err)
  return s:find("yield") or s:find("suspend")
end

C.test(P, "where Lua cannot yield, a call works or raises saying so", function(c, cache)
  t.eq(c:set(cache, "k", "v"), true)
  local arr = { 3, 1, 2 }
  local ok, err = pcall(table.sort, arr, function(a, b)
    assert(c:get(cache, "k") == "v")
    return a < b
  end)
  if ok then
    t.eq(arr, { 1, 2, 3 })
  else
    t.ok(says_why(err), "the error must say why: " .. tostring(err))
  end
  local mt = setmetatable({}, { __index = function(_, key) return c:get(cache, key) end })
  local ok2, v = pcall(function() return mt.k end)
  if ok2 then t.eq(v, "v") else t.ok(says_why(v), "the error must say why: " .. tostring(v)) end
  t.eq(c:get(cache, "k"), "v")
end)

t.test("a client's own default_ttl applies to its sets", function()
  local c = kura.client{ default_ttl = 7 }
  local name = C.name(P, "dttl")
  t.eq(c:create_cache(name), true)
  local ok, err = pcall(function()
    t.eq(c:set(name, "k", "v"), true)
    t.near(c:item_get_ttl(name, "k"), 7, C.TTL_EPS)
    t.eq(c:set(name, "k2", "v", 20), true)
    t.near(c:item_get_ttl(name, "k2"), 20, C.TTL_EPS)
    t.eq(c:increment(name, "n"), 1)
    t.near(c:item_get_ttl(name, "n"), 7, C.TTL_EPS)
    t.eq(c:set_batch(name, { b = "1" }), true)
    t.near(c:item_get_ttl(name, "b"), 7, C.TTL_EPS)
    local h = c:cache(name)
    t.eq(h:set("h", "v"), true)
    t.near(h:item_get_ttl("h"), 7, C.TTL_EPS)
  end)
  c:delete_cache(name)
  if not ok then error(err, 0) end
end)

t.test("a client made with a configuration preset works like the shared one", function()
  local c = kura.client{ configuration = "laptop" }
  local name = C.name(P, "preset")
  t.eq(c:create_cache(name), true)
  t.eq(c:set(name, "k", "v"), true)
  t.eq(c:get(name, "k"), "v")
  t.near(c:item_get_ttl(name, "k"), C.DEFAULT_TTL, C.TTL_EPS)
  t.eq(c:delete_cache(name), true)
end)

t.run()
