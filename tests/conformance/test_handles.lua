-- Conformance: cache handles (h = c:cache(name)) per docs/lua-api.md: every item
-- call works through a handle without its cache argument, with the same
-- results and errors as through the client.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "conform.lua")
local t = C.t
local P = "handles"

C.test(P, "set, get, delete, key_exists through a handle", function(c, cache)
  local h = c:cache(cache)
  t.ok(h ~= nil)
  t.eq(h:set("k", "v"), true)
  t.eq(h:get("k"), "v")
  t.eq(c:get(cache, "k"), "v")
  t.eq(c:set(cache, "k2", "from client"), true)
  t.eq(h:get("k2"), "from client")
  t.eq(select("#", h:get("absent")), 1)
  t.is_nil(h:get("absent"))
  t.eq(h:key_exists("k"), true)
  t.eq(h:key_exists("absent"), false)
  t.eq(h:delete("k"), true)
  t.eq(h:delete("k"), true)
  t.is_nil(c:get(cache, "k"))
  t.eq(h:set("bin\0", C.all_bytes()), true)
  t.eq(h:get("bin\0"), C.all_bytes())
  t.eq(h:set("num", 42), true)
  t.eq(h:get("num"), "42")
  t.eq(h:set("e", ""), true)
  t.eq(h:get("e"), "")
end)

C.test(P, "ttls through a handle", function(c, cache)
  local h = c:cache(cache)
  t.eq(h:set("k", "v", 10), true)
  t.near(h:item_get_ttl("k"), 10, C.TTL_EPS)
  t.eq(h:set("d", "v"), true)
  t.near(h:item_get_ttl("d"), C.DEFAULT_TTL, C.TTL_EPS)
  t.is_nil(h:item_get_ttl("absent"))
  t.eq(h:update_ttl("k", 30), true)
  t.near(c:item_get_ttl(cache, "k"), 30, C.TTL_EPS)
  t.is_nil(h:update_ttl("absent", 30))
  t.eq(h:increase_ttl("k", 40), true)
  t.eq(h:increase_ttl("k", 5), false)
  t.near(h:item_get_ttl("k"), 40, C.TTL_EPS)
  t.is_nil(h:increase_ttl("absent", 30))
  t.eq(h:decrease_ttl("k", 20), true)
  t.eq(h:decrease_ttl("k", 25), false)
  t.near(h:item_get_ttl("k"), 20, C.TTL_EPS)
  t.is_nil(h:decrease_ttl("absent", 30))
end)

C.test(P, "increment through a handle", function(c, cache)
  local h = c:cache(cache)
  t.eq(h:increment("n"), 1)
  t.eq(h:increment("n", 5), 6)
  t.eq(h:increment("n", -10), -4)
  t.eq(math.type(h:increment("n", 0)), "integer")
  t.eq(h:increment("t", 1, 6), 1)
  t.near(h:item_get_ttl("t"), 6, C.TTL_EPS)
  t.eq(h:set("bad", "1.5"), true)
  C.check_err("FAILED_PRECONDITION_ERROR", h:increment("bad", 1))
  C.check_err("INVALID_ARGUMENT_ERROR", h:increment("n", 1.5))
  t.eq(c:get(cache, "n"), "-4")
end)

C.test(P, "conditional sets through a handle", function(c, cache)
  local h = c:cache(cache)
  t.eq(h:set_if_absent("a", "1"), true)
  t.eq(h:set_if_absent("a", "2"), false)
  t.eq(h:set_if_present("a", "3"), true)
  t.eq(h:set_if_present("nope", "3"), false)
  t.eq(h:set_if_equal("a", "4", "3"), true)
  t.eq(h:set_if_equal("a", "5", "3"), false)
  t.eq(h:set_if_not_equal("a", "6", "4"), false)
  t.eq(h:set_if_not_equal("b", "6", "4"), true)
  t.eq(h:set_if_present_and_not_equal("a", "7", "x"), true)
  t.eq(h:set_if_present_and_not_equal("c", "7", "x"), false)
  t.eq(h:set_if_absent_or_equal("a", "8", "7"), true)
  t.eq(h:set_if_absent_or_equal("a", "9", "7"), false)
  t.eq(h:set_if_absent_or_equal("d", "9", "7", 12), true)
  t.near(h:item_get_ttl("d"), 12, C.TTL_EPS)
  t.eq(c:get(cache, "a"), "8")
  t.eq(c:get(cache, "b"), "6")
  t.is_nil(c:get(cache, "c"))
end)

C.test(P, "batches through a handle", function(c, cache)
  local h = c:cache(cache)
  t.eq(h:set_batch({ a = "1", b = "2" }), true)
  t.eq(h:set_batch({ { key = "c", value = "3", ttl = 4 } }, 50), true)
  t.near(h:item_get_ttl("c"), 4, C.TTL_EPS)
  t.eq(h:set_batch({ d = "4" }, 50), true)
  t.near(h:item_get_ttl("d"), 50, C.TTL_EPS)
  local r = h:get_batch({ "a", "x", "c" })
  t.eq(C.count(r), 2)
  t.eq(r.a, "1")
  t.eq(r.c, "3")
  local e = h:keys_exist({ "x", "b", "b" })
  t.eq(#e, 3)
  t.eq(e[1], false)
  t.eq(e[2], true)
  t.eq(e[3], true)
end)

t.test("a handle to a missing cache: NOT_FOUND_ERROR on every call", function()
  local c = C.client()
  local missing = C.name(P, "missing")
  local h = c:cache(missing)
  local calls = {
    function() return h:set("k", "v") end,
    function() return h:get("k") end,
    function() return h:delete("k") end,
    function() return h:increment("k") end,
    function() return h:set_if_absent("k", "v") end,
    function() return h:set_if_present("k", "v") end,
    function() return h:set_if_equal("k", "v", "e") end,
    function() return h:set_if_not_equal("k", "v", "e") end,
    function() return h:set_if_present_and_not_equal("k", "v", "e") end,
    function() return h:set_if_absent_or_equal("k", "v", "e") end,
    function() return h:key_exists("k") end,
    function() return h:keys_exist({ "k" }) end,
    function() return h:get_batch({ "k" }) end,
    function() return h:set_batch({ k = "v" }) end,
    function() return h:item_get_ttl("k") end,
    function() return h:update_ttl("k", 10) end,
    function() return h:increase_ttl("k", 10) end,
    function() return h:decrease_ttl("k", 10) end,
  }
  for i, f in ipairs(calls) do C.check_err_at("handle call " .. i, "NOT_FOUND_ERROR", f()) end
  t.eq(c:create_cache(missing), true)
  local h2 = c:cache(missing)
  t.eq(h2:set("k", "v"), true)
  t.eq(h2:get("k"), "v")
  t.eq(c:delete_cache(missing), true)
end)

t.test("a handle whose cache was deleted: NOT_FOUND_ERROR", function()
  local c = C.client()
  local name = C.name(P, "gone")
  t.eq(c:create_cache(name), true)
  local h = c:cache(name)
  t.eq(h:set("k", "v"), true)
  t.eq(c:delete_cache(name), true)
  C.check_err("NOT_FOUND_ERROR", h:get("k"))
  C.check_err("NOT_FOUND_ERROR", h:set("k", "v"))
end)

C.test(P, "handle calls raise on wrong types and reject bad values", function(c, cache)
  local h = c:cache(cache)
  t.raises(function() h:get({}) end, "bad argument")
  t.raises(function() h:set("k", true) end, "bad argument")
  t.raises(function() h:set("k", "v", "10") end, "bad argument")
  t.raises(function() h:keys_exist("k") end, "bad argument")
  t.raises(function() h.get("k") end, "bad argument")
  C.check_err("INVALID_ARGUMENT_ERROR", h:set("k", "v", 0))
  C.check_err("INVALID_ARGUMENT_ERROR", h:set(string.rep("k", 64 * 1024 + 1), "v"))
  t.is_nil(h:get("k"))
end)

t.test("a handle to an invalid cache name: INVALID_ARGUMENT_ERROR", function()
  local c = C.client()
  for _, bad in ipairs({ "", "   " }) do
    local h, err = c:cache(bad)
    if h == nil then
      C.check_err("INVALID_ARGUMENT_ERROR", h, err)
    else
      C.check_err("INVALID_ARGUMENT_ERROR", h:get("k"))
      C.check_err("INVALID_ARGUMENT_ERROR", h:set("k", "v"))
      C.check_err("INVALID_ARGUMENT_ERROR", h:increment("k"))
      C.check_err("INVALID_ARGUMENT_ERROR", h:set_batch({ k = "v" }))
    end
  end
end)

t.test("a handle keeps its client alive", function()
  local name = C.name(P, "alive")
  local h
  do
    local own = kura.client{ default_ttl = 9 }
    t.eq(own:create_cache(name), true)
    h = own:cache(name)
  end
  collectgarbage("collect")
  collectgarbage("collect")
  t.eq(h:set("k", "v"), true)
  t.eq(h:get("k"), "v")
  t.near(h:item_get_ttl("k"), 9, C.TTL_EPS)
  t.eq(C.client():delete_cache(name), true)
end)

C.test(P, "several handles to one cache share its items", function(c, cache)
  local h1, h2 = c:cache(cache), c:cache(cache)
  t.eq(h1:set("k", "v"), true)
  t.eq(h2:get("k"), "v")
  t.eq(c:flush_cache(cache), true)
  t.is_nil(h1:get("k"))
  t.eq(h2:set("k", "w"), true)
  t.eq(h1:get("k"), "w")
end)

t.run()
