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

-- A hit whose value is empty is a hit, also when no other hit has a value
-- (the memory backend once read its empty value area as "no value").
C.test(P, "get_batch: empty values are hits, also when they are the only hits", function(c, cache)
  t.eq(c:set(cache, "e1", ""), true)
  t.eq(c:set(cache, "e2", ""), true)
  local r = c:get_batch(cache, { "e1", "missing", "e2" })
  t.eq(C.count(r), 2)
  t.eq(r.e1, "")
  t.eq(r.e2, "")
  r = c:get_batch(cache, { "e1" })
  t.eq(r, { e1 = "" })
end)

-- The empty key is a key like any other, in batches too.
C.test(P, "the empty key and empty values in batches", function(c, cache)
  t.eq(c:set_batch(cache, { [""] = "v", e = "" }), true)
  t.eq(c:get(cache, ""), "v")
  t.eq(c:get_batch(cache, { "", "e" }), { [""] = "v", e = "" })
  t.eq(c:keys_exist(cache, { "", "e", "x" }), { true, true, false })
  t.eq(c:set_batch(cache, { { key = "", value = "" } }), true)
  t.eq(c:get_batch(cache, { "" }), { [""] = "" })
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

-- An empty batch writes nothing: no item appears under the empty key (a
-- Redis Cluster once got `PSETEX <cache's prefix> <ttl> ""` from it).
C.test(P, "an empty set_batch writes nothing", function(c, cache)
  t.eq(c:set_batch(cache, {}), true)
  t.eq(c:set_batch(cache, {}, 30), true)
  t.is_nil(c:get(cache, ""))
  t.eq(c:keys_exist(cache, { "" }), { false })
  t.eq(c:get_batch(cache, { "" }), {})
end)

-- Items with the same key in one batch: the last one wins, as if they were
-- set one after the other (momento-http sends one PUT per item, at once:
-- the earlier ones now stay unsent rather than race the last).
C.test(P, "set_batch: of items with one key, the last wins", function(c, cache)
  local items, keys = {}, {}
  for i = 1, 40 do
    local k = "dup" .. (i % 10)
    items[#items + 1] = { key = k, value = "v" .. i }
    keys[i % 10 + 1] = k
  end
  t.eq(c:set_batch(cache, items), true)
  local r = c:get_batch(cache, keys)
  for j = 1, 10 do
    local last = 30 + j
    t.eq(r["dup" .. (last % 10)], "v" .. last, "dup" .. (last % 10))
  end
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

C.test(P, "batch calls on a missing cache: NOT_FOUND_ERROR, empty ones too", function(c, cache)
  local m = cache .. "-missing"
  C.check_err_at("keys_exist {}", "NOT_FOUND_ERROR", c:keys_exist(m, {}))
  C.check_err_at("get_batch {}", "NOT_FOUND_ERROR", c:get_batch(m, {}))
  C.check_err_at("set_batch {}", "NOT_FOUND_ERROR", c:set_batch(m, {}))
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

-- A table whose entries would be ignored is a mistake the call reports:
-- items are {key=, value=, ttl=} only; a map of items has string keys; an
-- array of items (or of keys) has no other entries. Nothing is written.
C.test(P, "batch tables with entries that would be ignored: INVALID_ARGUMENT_ERROR", function(c, cache)
  local function bad(what, text, v, err)
    err = C.check_err_at(what, "INVALID_ARGUMENT_ERROR", v, err)
    t.ok(err.message:find(text, 1, true), what .. ": " .. err.message)
  end
  bad("mixed", "mix an array of {key=, value=} items with the key 'other'",
      c:set_batch(cache, { { key = "a", value = "1" }, other = "v" }))
  bad("unknown field", "item #2 has the field 'tll'",
      c:set_batch(cache, { { key = "b", value = "1" }, { key = "a", value = "1", tll = 5 } }))
  bad("field 1", "item #1 has the field 1",
      c:set_batch(cache, { { key = "a", value = "1", "extra" } }))
  bad("number key", "a map of items has string keys, not the key 5",
      c:set_batch(cache, { [5] = "x" }))
  bad("array of strings", "a map of items has string keys, not the key 1",
      c:set_batch(cache, { "a", "b" }))
  bad("boolean key", "not the key a boolean", c:set_batch(cache, { [true] = "x", a = "1" }))
  bad("mixed map", "string keys", c:set_batch(cache, { a = "1", [2] = "x" }))
  for _, k in ipairs({ "a", "b", "other", "5", "1" }) do t.is_nil(c:get(cache, k), k) end
  bad("get_batch map part", "get_batch: keys must be an array of keys; the table also has the key 'x'",
      c:get_batch(cache, { "a", x = "b" }))
  bad("keys_exist map part", "the key 'x'", c:keys_exist(cache, { "a", x = "b" }))
  bad("keys_exist index 0", "the key 0", c:keys_exist(cache, { [0] = "z", "a" }))
  -- the checks come after the types: a wrong type still raises
  t.raises(function() c:set_batch(cache, { { key = "a", value = true }, x = 1 }) end,
           "bad argument")
  t.raises(function() c:set_batch(cache, { [5] = true }) end, "bad argument")
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
