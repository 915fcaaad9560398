-- Conformance: the error conventions of docs/lua-api.md: every item call on a
-- missing cache gives NOT_FOUND_ERROR; bad values give INVALID_ARGUMENT_ERROR;
-- wrong Lua types raise; err is { code, message, retryable } with tostring.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "conform.lua")
local t = C.t
local P = "errors"

-- Every item call, with valid arguments after the cache name.
local CALLS = {
  { "set", "k", "v" },
  { "set", "k", "v", 10 },
  { "get", "k" },
  { "delete", "k" },
  { "increment", "k" },
  { "increment", "k", 5, 10 },
  { "set_if_absent", "k", "v" },
  { "set_if_present", "k", "v" },
  { "set_if_equal", "k", "v", "e" },
  { "set_if_not_equal", "k", "v", "e" },
  { "set_if_present_and_not_equal", "k", "v", "e" },
  { "set_if_absent_or_equal", "k", "v", "e", 10 },
  { "key_exists", "k" },
  { "keys_exist", { "k", "l" } },
  { "get_batch", { "k", "l" } },
  { "set_batch", { k = "v" } },
  { "set_batch", { { key = "k", value = "v", ttl = 5 } }, 10 },
  { "item_get_ttl", "k" },
  { "update_ttl", "k", 10 },
  { "increase_ttl", "k", 10 },
  { "decrease_ttl", "k", 10 },
}

local function invoke(c, call, cache)
  return c[call[1]](c, cache, table.unpack(call, 2, 5))
end

t.test("every item call on a missing cache: nil, NOT_FOUND_ERROR", function()
  local c = C.client()
  local missing = C.name(P, "missing")
  for _, call in ipairs(CALLS) do
    local n = select("#", invoke(c, call, missing))
    t.eq(n, 2, call[1] .. " must return nil, err")
    local err = C.check_err_at(call[1], "NOT_FOUND_ERROR", invoke(c, call, missing))
    t.eq(err.retryable, false, call[1] .. " retryable")
    t.ok(err.message:find(missing, 1, true),
         call[1] .. ": the message should name the cache: " .. err.message)
  end
end)

t.test("every item call on a deleted cache: NOT_FOUND_ERROR", function()
  local c = C.client()
  local name = C.name(P, "deleted")
  t.eq(c:create_cache(name), true)
  t.eq(c:set(name, "k", "v"), true)
  t.eq(c:delete_cache(name), true)
  for _, call in ipairs(CALLS) do
    C.check_err_at(call[1], "NOT_FOUND_ERROR", invoke(c, call, name))
  end
end)

t.test("every item call with an empty or blank cache name: INVALID_ARGUMENT_ERROR", function()
  local c = C.client()
  for _, bad in ipairs({ "", "   " }) do
    for _, call in ipairs(CALLS) do
      local err = C.check_err_at(call[1] .. string.format(" on %q", bad), "INVALID_ARGUMENT_ERROR",
                                 invoke(c, call, bad))
      t.eq(err.retryable, false)
    end
  end
end)

C.test(P, "err is a table with code, message, retryable and tostring", function(c, cache)
  local v, err = c:get(cache .. "-nope", "k")
  t.is_nil(v)
  t.eq(type(err), "table")
  t.eq(err.code, "NOT_FOUND_ERROR")
  t.eq(type(err.message), "string")
  t.ok(#err.message > 0)
  t.eq(type(err.retryable), "boolean")
  t.eq(tostring(err), "NOT_FOUND_ERROR: " .. err.message)
  t.eq(c:set(cache, "bad", "x"), true)
  local v2, err2 = c:increment(cache, "bad", 1)
  t.is_nil(v2)
  t.eq(tostring(err2), "FAILED_PRECONDITION_ERROR: " .. err2.message)
end)

C.test(P, "key over 64 KiB: INVALID_ARGUMENT_ERROR", function(c, cache)
  local long = string.rep("k", 64 * 1024 + 1)
  local ops = {
    { "set", long, "v" }, { "get", long }, { "delete", long }, { "increment", long, 1 },
    { "set_if_absent", long, "v" }, { "set_if_equal", long, "v", "e" },
    { "key_exists", long }, { "item_get_ttl", long }, { "update_ttl", long, 10 },
    { "increase_ttl", long, 10 }, { "decrease_ttl", long, 10 },
  }
  for _, call in ipairs(ops) do
    local err = C.check_err_at(call[1] .. " long key", "INVALID_ARGUMENT_ERROR",
                               invoke(c, call, cache))
    t.eq(err.retryable, false)
  end
  local longer = string.rep("x", 1024 * 1024)
  C.check_err_at("1 MiB key", "INVALID_ARGUMENT_ERROR", c:set(cache, longer, "v"))
end)

C.test(P, "item over 5 MiB: INVALID_ARGUMENT_ERROR", function(c, cache)
  local huge = string.rep("v", 5 * 1024 * 1024 + 1)
  C.check_err_at("set", "INVALID_ARGUMENT_ERROR", c:set(cache, "k", huge))
  C.check_err_at("set_if_absent", "INVALID_ARGUMENT_ERROR", c:set_if_absent(cache, "k", huge))
  C.check_err_at("set_if_not_equal", "INVALID_ARGUMENT_ERROR",
                 c:set_if_not_equal(cache, "k", huge, "x"))
  C.check_err_at("set_batch", "INVALID_ARGUMENT_ERROR", c:set_batch(cache, { k = huge }))
  local big = string.rep("v", 6 * 1024 * 1024)
  C.check_err_at("6 MiB", "INVALID_ARGUMENT_ERROR", c:set(cache, "k", big))
  t.is_nil(c:get(cache, "k"))
  t.eq(c:set(cache, "k", "small"), true)
  C.check_err_at("set over an existing item", "INVALID_ARGUMENT_ERROR", c:set(cache, "k", huge))
  t.eq(c:get(cache, "k"), "small")
end)

C.test(P, "bad ttls on every call that takes one", function(c, cache)
  for _, ttl in ipairs({ 0, -1, 0 / 0 }) do
    local w = " ttl " .. tostring(ttl)
    C.check_err_at("set" .. w, "INVALID_ARGUMENT_ERROR", c:set(cache, "k", "v", ttl))
    C.check_err_at("increment" .. w, "INVALID_ARGUMENT_ERROR", c:increment(cache, "k", 1, ttl))
    C.check_err_at("set_if_absent" .. w, "INVALID_ARGUMENT_ERROR",
                   c:set_if_absent(cache, "k", "v", ttl))
    C.check_err_at("set_if_absent_or_equal" .. w, "INVALID_ARGUMENT_ERROR",
                   c:set_if_absent_or_equal(cache, "k", "v", "e", ttl))
    C.check_err_at("set_batch" .. w, "INVALID_ARGUMENT_ERROR", c:set_batch(cache, { k = "v" }, ttl))
    C.check_err_at("update_ttl" .. w, "INVALID_ARGUMENT_ERROR", c:update_ttl(cache, "k", ttl))
  end
  t.is_nil(c:get(cache, "k"))
end)

C.test(P, "wrong key and value types raise", function(c, cache)
  for _, bad in ipairs({ {}, true, false, function() end, coroutine.create(print) }) do
    t.raises(function() c:set(cache, bad, "v") end, "bad argument")
    t.raises(function() c:get(cache, bad) end, "bad argument")
    t.raises(function() c:delete(cache, bad) end, "bad argument")
    t.raises(function() c:key_exists(cache, bad) end, "bad argument")
    t.raises(function() c:increment(cache, bad) end, "bad argument")
    t.raises(function() c:item_get_ttl(cache, bad) end, "bad argument")
    t.raises(function() c:update_ttl(cache, bad, 10) end, "bad argument")
    t.raises(function() c:set(cache, "k", bad) end, "bad argument")
    t.raises(function() c:set_if_absent(cache, "k", bad) end, "bad argument")
    t.raises(function() c:set_if_equal(cache, "k", "v", bad) end, "bad argument")
  end
  t.raises(function() c:get(cache) end, "bad argument")
  t.raises(function() c:set(cache, "k") end, "bad argument")
  t.raises(function() c:set(cache, "k", nil, 10) end, "bad argument")
  t.raises(function() c:set(cache, "k", "v", "10") end, "bad argument")
  t.raises(function() c:increment(cache, "k", 1, "10") end, "bad argument")
  t.is_nil(c:get(cache, "k"))
end)

C.test(P, "wrong cache name types raise", function(c, cache)
  for _, bad in ipairs({ {}, true, function() end }) do
    t.raises(function() c:get(bad, "k") end, "bad argument")
    t.raises(function() c:set(bad, "k", "v") end, "bad argument")
    t.raises(function() c:increment(bad, "k") end, "bad argument")
  end
  t.raises(function() c:get(nil, "k") end, "bad argument")
end)

C.test(P, "methods called without the client raise", function(c, cache)
  t.raises(function() c.get(cache, "k") end, "bad argument")
  t.raises(function() c.set({}, cache, "k", "v") end, "bad argument")
end)

C.test(P, "the client keeps working after errors", function(c, cache)
  pcall(c.set, c, cache, {}, "v")
  c:get(cache .. "-missing", "k")
  c:set(cache, "k", "v", 0)
  t.eq(c:set(cache, "k", "v"), true)
  t.eq(c:get(cache, "k"), "v")
end)

t.run()
