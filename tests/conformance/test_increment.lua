-- Conformance: increment per docs/lua-api.md: absent starts at 0, default amount
-- 1, negative amounts, ttl only on create, int64 bounds, canonical integers
-- only, integer results.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "conform.lua")
local t = C.t
local P = "incr"

C.test(P, "absent key starts at 0, default amount is 1", function(c, cache)
  local v = c:increment(cache, "n")
  t.eq(v, 1)
  t.eq(math.type(v), "integer")
  t.eq(c:increment(cache, "n"), 2)
  t.eq(c:increment(cache, "n", 10), 12)
  t.eq(c:get(cache, "n"), "12")
  t.eq(c:increment(cache, "fresh", 5), 5)
  t.eq(select("#", c:increment(cache, "fresh", 0)), 1)
end)

C.test(P, "nil amount means 1", function(c, cache)
  t.eq(c:increment(cache, "n", nil), 1)
  t.eq(c:increment(cache, "n", nil, 30), 2)
end)

C.test(P, "negative amounts and going below zero", function(c, cache)
  t.eq(c:increment(cache, "n", -1), -1)
  t.eq(c:increment(cache, "n", -10), -11)
  t.eq(c:get(cache, "n"), "-11")
  t.eq(c:increment(cache, "n", 20), 9)
  t.eq(c:increment(cache, "n", 0), 9)
end)

C.test(P, "increments a value written by set (string or number)", function(c, cache)
  t.eq(c:set(cache, "s", "41"), true)
  t.eq(c:increment(cache, "s"), 42)
  t.eq(c:set(cache, "n", 100), true)
  t.eq(c:increment(cache, "n", -1), 99)
  t.eq(c:set(cache, "neg", "-5"), true)
  t.eq(c:increment(cache, "neg", 2), -3)
  t.eq(c:set(cache, "zero", "0"), true)
  t.eq(c:increment(cache, "zero", 3), 3)
  t.eq(c:get(cache, "zero"), "3")
end)

C.test(P, "a float amount with an integral value is accepted", function(c, cache)
  local v = c:increment(cache, "n", 3.0)
  t.eq(math.type(v), "integer")
  t.eq(v, 3)
end)

C.test(P, "int64 upper bound", function(c, cache)
  t.eq(c:set(cache, "max", "9223372036854775807"), true)
  local err = C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "max", 1))
  t.eq(err.retryable, false)
  t.eq(c:get(cache, "max"), "9223372036854775807")
  t.eq(c:increment(cache, "max", 0), math.maxinteger)
  t.eq(c:increment(cache, "max", -1), math.maxinteger - 1)
  t.eq(c:increment(cache, "up", math.maxinteger), math.maxinteger)
  C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "up", 1))
  C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "up", math.maxinteger))
  t.eq(c:get(cache, "up"), "9223372036854775807")
end)

C.test(P, "int64 lower bound", function(c, cache)
  t.eq(c:set(cache, "min", "-9223372036854775808"), true)
  C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "min", -1))
  t.eq(c:get(cache, "min"), "-9223372036854775808")
  t.eq(c:increment(cache, "min", 0), math.mininteger)
  t.eq(c:increment(cache, "min", 1), math.mininteger + 1)
  t.eq(c:increment(cache, "down", math.mininteger), math.mininteger)
  t.eq(c:get(cache, "down"), "-9223372036854775808")
  C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "down", -1))
  t.eq(c:increment(cache, "down", math.maxinteger), -1)
end)

C.test(P, "stored values outside int64 are not integers", function(c, cache)
  t.eq(c:set(cache, "big", "9223372036854775808"), true)
  C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "big", 0))
  C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "big", -1))
  t.eq(c:set(cache, "small", "-9223372036854775809"), true)
  C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "small", 1))
  t.eq(c:set(cache, "huge", "123456789012345678901234567890"), true)
  C.check_err("FAILED_PRECONDITION_ERROR", c:increment(cache, "huge", 1))
  t.eq(c:get(cache, "huge"), "123456789012345678901234567890")
end)

C.test(P, "non-canonical stored values: FAILED_PRECONDITION_ERROR", function(c, cache)
  local bad = { "abc", "1.5", " 1", "1 ", "+1", "", "-", "1e3", "0x10", "12a", "1\0", "--1" }
  for i, v in ipairs(bad) do
    local key = "bad" .. i
    t.eq(c:set(cache, key, v), true)
    local err = C.check_err_at(string.format("increment of %q", v), "FAILED_PRECONDITION_ERROR",
                               c:increment(cache, key, 1))
    t.eq(err.retryable, false)
    t.eq(c:get(cache, key), v, "the value must be unchanged")
  end
end)

C.test(P, "non-integer amounts: INVALID_ARGUMENT_ERROR", function(c, cache)
  for _, amount in ipairs({ 1.5, -0.25, 0 / 0, math.huge, -math.huge }) do
    local err = C.check_err_at("amount " .. tostring(amount), "INVALID_ARGUMENT_ERROR",
                               c:increment(cache, "n", amount))
    t.eq(err.retryable, false)
  end
  t.is_nil(c:get(cache, "n"))
end)

C.test(P, "wrong amount types raise", function(c, cache)
  t.raises(function() c:increment(cache, "n", "x") end, "bad argument")
  t.raises(function() c:increment(cache, "n", {}) end, "bad argument")
  t.raises(function() c:increment(cache, "n", true) end, "bad argument")
  t.raises(function() c:increment(cache, {}, 1) end, "bad argument")
  t.raises(function() c:increment(cache, nil, 1) end, "bad argument")
  t.is_nil(c:get(cache, "n"))
end)

C.test(P, "ttl applies only when the increment creates the item", function(c, cache)
  t.eq(c:increment(cache, "n", 1, 5), 1)
  t.near(c:item_get_ttl(cache, "n"), 5, C.TTL_EPS)
  t.eq(c:increment(cache, "n", 1, 100), 2)
  t.near(c:item_get_ttl(cache, "n"), 5, C.TTL_EPS)
  t.eq(c:increment(cache, "n", 1), 3)
  t.near(c:item_get_ttl(cache, "n"), 5, C.TTL_EPS)
  t.eq(c:set(cache, "s", "10", 8), true)
  t.eq(c:increment(cache, "s", 1, 100), 11)
  t.near(c:item_get_ttl(cache, "s"), 8, C.TTL_EPS)
end)

C.test(P, "an increment that creates the item without ttl uses the default", function(c, cache)
  t.eq(c:increment(cache, "d", 4), 4)
  t.near(c:item_get_ttl(cache, "d"), C.DEFAULT_TTL, C.TTL_EPS)
end)

C.test(P, "increment rejects a bad ttl", function(c, cache)
  C.check_err("INVALID_ARGUMENT_ERROR", c:increment(cache, "n", 1, 0))
  C.check_err("INVALID_ARGUMENT_ERROR", c:increment(cache, "n", 1, -1))
  t.is_nil(c:get(cache, "n"))
end)

C.test(P, "increment on a missing cache: NOT_FOUND_ERROR", function(c, cache)
  C.check_err("NOT_FOUND_ERROR", c:increment(cache .. "-missing", "n", 1))
end)

C.test(P, "binary keys count separately", function(c, cache)
  t.eq(c:increment(cache, "n\0a", 1), 1)
  t.eq(c:increment(cache, "n\0b", 2), 2)
  t.eq(c:increment(cache, "n\0a", 1), 2)
  t.eq(c:get(cache, "n\0b"), "2")
end)

t.run()
