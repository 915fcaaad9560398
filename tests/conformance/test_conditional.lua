-- Conformance: the six conditional sets of docs/lua-api.md, each on an absent
-- key, a present key holding the compared value, and a present key holding
-- another value.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "conform.lua")
local t = C.t
local P = "cond"

-- For each call: does it store on { absent, present and equal, present and
-- different }? The compared value is "old" (the stored one in "equal").
local CASES = {
  { "set_if_absent",                false, { true,  false, false } },
  { "set_if_present",               false, { false, true,  true  } },
  { "set_if_equal",                 true,  { false, true,  false } },
  { "set_if_not_equal",             true,  { true,  false, true  } },
  { "set_if_present_and_not_equal", true,  { false, false, true  } },
  { "set_if_absent_or_equal",       true,  { true,  true,  false } },
}
local STATES = { "absent", "present-equal", "present-different" }

-- Call `method` on c with value "new" (and compared value "old" when the
-- call takes one), then an optional ttl.
local function call(c, cache, method, cmp, key, ttl)
  if cmp then return c[method](c, cache, key, "new", "old", ttl) end
  return c[method](c, cache, key, "new", ttl)
end

local function prepare(c, cache, key, state)
  if state == "present-equal" then
    t.eq(c:set(cache, key, "old"), true)
  elseif state == "present-different" then
    t.eq(c:set(cache, key, "other"), true)
  end
end

for _, case in ipairs(CASES) do
  local method, cmp, expect = case[1], case[2], case[3]
  C.test(P, method .. " on absent / equal / different", function(c, cache)
    for i, state in ipairs(STATES) do
      local key = method .. ":" .. state
      prepare(c, cache, key, state)
      local before = c:get(cache, key)
      local r, err = call(c, cache, method, cmp, key)
      t.eq(r, expect[i], method .. " on " .. state .. " " .. tostring(err))
      t.is_nil(err)
      if expect[i] then
        t.eq(c:get(cache, key), "new", method .. " on " .. state .. " must store")
      else
        t.eq(c:get(cache, key), before, method .. " on " .. state .. " must not store")
      end
    end
  end)

  C.test(P, method .. " applies its ttl or the default ttl when it stores", function(c, cache)
    for i, state in ipairs(STATES) do
      if expect[i] then
        local key = "ttl:" .. state
        prepare(c, cache, key, state)
        t.eq(call(c, cache, method, cmp, key, 7), true)
        t.near(c:item_get_ttl(cache, key), 7, C.TTL_EPS)
        local key2 = "dttl:" .. state
        prepare(c, cache, key2, state)
        t.eq(call(c, cache, method, cmp, key2), true)
        t.near(c:item_get_ttl(cache, key2), C.DEFAULT_TTL, C.TTL_EPS)
      end
    end
  end)

  C.test(P, method .. " on a missing cache: NOT_FOUND_ERROR", function(c, cache)
    local missing = cache .. "-missing"
    C.check_err_at(method, "NOT_FOUND_ERROR", call(c, missing, method, cmp, "k"))
  end)

  C.test(P, method .. " rejects a bad ttl and wrong types", function(c, cache)
    C.check_err_at("ttl 0", "INVALID_ARGUMENT_ERROR", call(c, cache, method, cmp, "k", 0))
    C.check_err_at("ttl -1", "INVALID_ARGUMENT_ERROR", call(c, cache, method, cmp, "k", -1))
    t.is_nil(c:get(cache, "k"))
    t.raises(function() c[method](c, cache, {}, "v", "old") end, "bad argument")
    t.raises(function() c[method](c, cache, "k", true, "old") end, "bad argument")
    t.raises(function() c[method](c, cache, "k", nil, "old") end, "bad argument")
    if cmp then
      t.raises(function() c[method](c, cache, "k", "v", {}) end, "bad argument")
      t.raises(function() c[method](c, cache, "k", "v") end, "bad argument")
    end
  end)
end

C.test(P, "conditional sets compare binary values exactly", function(c, cache)
  t.eq(c:set(cache, "k", "a\0b"), true)
  t.eq(c:set_if_equal(cache, "k", "x", "a\0c"), false)
  t.eq(c:set_if_equal(cache, "k", "x", "a"), false)
  t.eq(c:set_if_equal(cache, "k", "x", "a\0b\0"), false)
  t.eq(c:get(cache, "k"), "a\0b")
  t.eq(c:set_if_equal(cache, "k", "x", "a\0b"), true)
  t.eq(c:get(cache, "k"), "x")
  t.eq(c:set_if_not_equal(cache, "k", "y", "x"), false)
  t.eq(c:set_if_not_equal(cache, "k", "y", "X"), true)
  t.eq(c:get(cache, "k"), "y")
end)

C.test(P, "conditional sets accept numbers as values", function(c, cache)
  t.eq(c:set_if_absent(cache, "n", 5), true)
  t.eq(c:get(cache, "n"), "5")
  t.eq(c:set_if_equal(cache, "n", 6, 5), true)
  t.eq(c:get(cache, "n"), "6")
  t.eq(c:set_if_present(cache, "n", 2.5), true)
  t.eq(c:get(cache, "n"), "2.5")
end)

C.test(P, "set_if_absent after delete stores again", function(c, cache)
  t.eq(c:set_if_absent(cache, "k", "1"), true)
  t.eq(c:set_if_absent(cache, "k", "2"), false)
  t.eq(c:delete(cache, "k"), true)
  t.eq(c:set_if_absent(cache, "k", "3"), true)
  t.eq(c:get(cache, "k"), "3")
end)

C.test(P, "conditional results are one boolean", function(c, cache)
  t.eq(select("#", c:set_if_absent(cache, "k", "1")), 1)
  t.eq(select("#", c:set_if_absent(cache, "k", "1")), 1)
end)

t.run()
