-- Conformance: keys_exist, get_batch and set_batch per docs/lua-api.md.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "conform.lua")
local t = C.t
local P = "batch"

C.test(P, "keys_exist: booleans in the order of keys, duplicates kept", function(c, cache)
  t.eq(c:set(cache, "a", "1"), true)
  t.eq(c:set(cache, "c", "3"), true)
  local r = c:keys_exist(cache, { "a", "b", "c", "a", "b", "a\0" })
  t.eq(type(r), "table")
  t.eq(#r, 6)
  t.eq(C.count(r), 6)
  local want = { true, false, true, true, false, false }
  for i = 1, 6 do t.eq(r[i], want[i], "keys_exist[" .. i .. "]") end
end)

C.test(P, "keys_exist on no keys and on all misses", function(c, cache)
  local r = c:keys_exist(cache, {})
  t.eq(type(r), "table")
  t.eq(C.count(r), 0)
  r = c:keys_exist(cache, { "x", "y" })
  t.eq(#r, 2)
  t.eq(r[1], false)
  t.eq(r[2], false)
end)

C.test(P, "get_batch returns the hits only", function(c, cache)
  t.eq(c:set(cache, "a", "1"), true)
  t.eq(c:set(cache, "b\0", "\0two"), true)
  t.eq(c:set(cache, "e", ""), true)
  local r = c:get_batch(cache, { "a", "missing", "b\0", "e", "a" })
  t.eq(type(r), "table")
  t.eq(C.count(r), 3)
  t.eq(r["a"], "1")
  t.eq(r["b\0"], "\0two")
  t.eq(r["e"], "")
  t.is_nil(r["missing"])
end)

C.test(P, "get_batch on no keys and on all misses", function(c, cache)
  local r = c:get_batch(cache, {})
  t.eq(type(r), "table")
  t.eq(C.count(r), 0)
  r = c:get_batch(cache, { "x", "y", "z" })
  t.eq(type(r), "table")
  t.eq(C.count(r), 0)
end)

C.test(P, "get_batch of many keys", function(c, cache)
  local keys = {}
  for i = 1, 1000 do
    keys[#keys + 1] = "k" .. i
    if i % 3 ~= 0 then t.eq(c:set(cache, "k" .. i, "v" .. i), true) end
  end
  local r = c:get_batch(cache, keys)
  local n = 0
  for i = 1, 1000 do
    if i % 3 ~= 0 then
      t.eq(r["k" .. i], "v" .. i)
      n = n + 1
    else
      t.is_nil(r["k" .. i])
    end
  end
  t.eq(C.count(r), n)
end)

C.test(P, "set_batch, map form, default ttl", function(c, cache)
  t.eq(c:set_batch(cache, { a = "1", b = "2", ["c\0"] = "\0", e = "" }), true)
  t.eq(c:get(cache, "a"), "1")
  t.eq(c:get(cache, "b"), "2")
  t.eq(c:get(cache, "c\0"), "\0")
  t.eq(c:get(cache, "e"), "")
  t.near(c:item_get_ttl(cache, "a"), C.DEFAULT_TTL, C.TTL_EPS)
end)

C.test(P, "set_batch, map form, batch ttl", function(c, cache)
  t.eq(c:set_batch(cache, { a = "1", b = "2" }, 9), true)
  t.near(c:item_get_ttl(cache, "a"), 9, C.TTL_EPS)
  t.near(c:item_get_ttl(cache, "b"), 9, C.TTL_EPS)
end)

C.test(P, "set_batch, map form, number values", function(c, cache)
  t.eq(c:set_batch(cache, { n = 42, f = 1.5 }), true)
  t.eq(c:get(cache, "n"), "42")
  t.eq(c:get(cache, "f"), "1.5")
end)

C.test(P, "set_batch, array form, per-item ttl over batch ttl over default", function(c, cache)
  local items = {
    { key = "a", value = "1", ttl = 3 },
    { key = "b", value = "2" },
    { key = "c\0", value = "\0\1" },
  }
  t.eq(c:set_batch(cache, items, 20), true)
  t.eq(c:get(cache, "a"), "1")
  t.eq(c:get(cache, "b"), "2")
  t.eq(c:get(cache, "c\0"), "\0\1")
  t.near(c:item_get_ttl(cache, "a"), 3, C.TTL_EPS)
  t.near(c:item_get_ttl(cache, "b"), 20, C.TTL_EPS)
  local more = { { key = "d", value = "4" }, { key = "e", value = "5", ttl = 7 } }
  t.eq(c:set_batch(cache, more), true)
  t.near(c:item_get_ttl(cache, "d"), C.DEFAULT_TTL, C.TTL_EPS)
  t.near(c:item_get_ttl(cache, "e"), 7, C.TTL_EPS)
end)

C.test(P, "set_batch overwrites and of an empty table", function(c, cache)
  t.eq(c:set(cache, "a", "old"), true)
  t.eq(c:set_batch(cache, { a = "new" }), true)
  t.eq(c:get(cache, "a"), "new")
  t.eq(c:set_batch(cache, {}), true)
  t.eq(c:get(cache, "a"), "new")
end)

C.test(P, "set_batch of many items, read back by get_batch", function(c, cache)
  local items, keys = {}, {}
  for i = 1, 500 do
    items["key" .. i] = string.rep("v", i)
    keys[#keys + 1] = "key" .. i
  end
  t.eq(c:set_batch(cache, items), true)
  local r = c:get_batch(cache, keys)
  t.eq(C.count(r), 500)
  for i = 1, 500 do t.eq(r["key" .. i], string.rep("v", i)) end
  local ex = c:keys_exist(cache, keys)
  for i = 1, 500 do t.eq(ex[i], true) end
end)

C.test(P, "batch calls on a missing cache: NOT_FOUND_ERROR", function(c, cache)
  local m = cache .. "-missing"
  C.check_err_at("keys_exist", "NOT_FOUND_ERROR", c:keys_exist(m, { "a" }))
  C.check_err_at("get_batch", "NOT_FOUND_ERROR", c:get_batch(m, { "a" }))
  C.check_err_at("set_batch map", "NOT_FOUND_ERROR", c:set_batch(m, { a = "1" }))
  C.check_err_at("set_batch array", "NOT_FOUND_ERROR",
                 c:set_batch(m, { { key = "a", value = "1" } }))
end)

C.test(P, "batch calls raise on wrong types", function(c, cache)
  t.raises(function() c:keys_exist(cache, "a") end, "bad argument")
  t.raises(function() c:keys_exist(cache) end, "bad argument")
  t.raises(function() c:keys_exist(cache, { "a", {} }) end, "bad argument")
  t.raises(function() c:get_batch(cache, "a") end, "bad argument")
  t.raises(function() c:get_batch(cache, { true }) end, "bad argument")
  t.raises(function() c:set_batch(cache, "a") end, "bad argument")
  t.raises(function() c:set_batch(cache) end, "bad argument")
  t.raises(function() c:set_batch(cache, { a = true }) end, "bad argument")
  t.raises(function() c:set_batch(cache, { a = {} }) end, "bad argument")
  t.raises(function() c:set_batch(cache, { { key = "a" } }) end, "bad argument")
  t.raises(function() c:set_batch(cache, { { key = {}, value = "v" } }) end, "bad argument")
  t.raises(function() c:set_batch(cache, { { key = "a", value = "v", ttl = "x" } }) end,
           "bad argument")
  t.raises(function() c:set_batch(cache, { a = "1" }, "10") end, "bad argument")
  t.is_nil(c:get(cache, "a"))
end)

C.test(P, "batch size limits: INVALID_ARGUMENT_ERROR", function(c, cache)
  local long = string.rep("k", 64 * 1024 + 1)
  C.check_err_at("set_batch long key", "INVALID_ARGUMENT_ERROR",
                 c:set_batch(cache, { [long] = "v" }))
  C.check_err_at("set_batch item ttl 0", "INVALID_ARGUMENT_ERROR",
                 c:set_batch(cache, { { key = "a", value = "v", ttl = 0 } }))
  C.check_err_at("get_batch long key", "INVALID_ARGUMENT_ERROR", c:get_batch(cache, { "a", long }))
  C.check_err_at("keys_exist long key", "INVALID_ARGUMENT_ERROR", c:keys_exist(cache, { long }))
end)

t.run()
