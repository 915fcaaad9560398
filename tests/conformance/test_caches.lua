-- Conformance: cache management (create_cache, list_caches, delete_cache,
-- flush_cache) per docs/lua-api.md, on whatever backend the runtime is given.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "conform.lua")
local t = C.t

local function listed(c, name)
  local list, err = c:list_caches()
  t.ok(type(list) == "table", "list_caches: " .. tostring(err))
  for _, e in ipairs(list) do
    if e.name == name then return true end
  end
  return false
end

t.test("create_cache returns true, then false for an existing cache", function()
  local c = C.client()
  local name = C.name("caches", "create")
  t.eq(select("#", c:create_cache(name)), 1)
  t.ok(c:key_exists(name, "k") == false)
  t.eq(c:create_cache(name), false)
  t.eq(c:create_cache(name), false)
  t.eq(c:delete_cache(name), true)
end)

t.test("create_cache does not touch the items of an existing cache", function()
  local c = C.client()
  local name = C.name("caches", "keep")
  t.eq(c:create_cache(name), true)
  t.eq(c:set(name, "k", "v"), true)
  t.eq(c:create_cache(name), false)
  t.eq(c:get(name, "k"), "v")
  t.eq(c:delete_cache(name), true)
end)

t.test("delete_cache: true, then NOT_FOUND_ERROR", function()
  local c = C.client()
  local name = C.name("caches", "delete")
  t.eq(c:create_cache(name), true)
  t.eq(c:set(name, "k", "v"), true)
  t.eq(c:delete_cache(name), true)
  local err = C.check_err("NOT_FOUND_ERROR", c:delete_cache(name))
  t.eq(err.retryable, false)
  C.check_err("NOT_FOUND_ERROR", c:get(name, "k"))
end)

t.test("a cache created again after delete starts empty", function()
  local c = C.client()
  local name = C.name("caches", "again")
  t.eq(c:create_cache(name), true)
  t.eq(c:set(name, "k", "v"), true)
  t.eq(c:delete_cache(name), true)
  t.eq(c:create_cache(name), true)
  t.is_nil(c:get(name, "k"))
  t.eq(c:delete_cache(name), true)
end)

t.test("list_caches: array of { name = } sorted by name", function()
  local c = C.client()
  local base = C.name("caches", "list")
  local names = { base .. "-b", base .. "-a", base .. "-c" }
  for _, n in ipairs(names) do t.eq(c:create_cache(n), true) end
  local list, err = c:list_caches()
  t.ok(type(list) == "table", tostring(err))
  local seen = {}
  for i, e in ipairs(list) do
    t.eq(type(e), "table")
    t.eq(type(e.name), "string")
    if i > 1 then
      t.ok(list[i - 1].name < e.name, "not sorted: " .. list[i - 1].name .. " before " .. e.name)
    end
    seen[e.name] = (seen[e.name] or 0) + 1
  end
  t.eq(#list, C.count(list), "list_caches must be an array")
  for _, n in ipairs(names) do t.eq(seen[n], 1, n .. " listed once") end
  t.eq(c:delete_cache(base .. "-b"), true)
  t.ok(not listed(c, base .. "-b"))
  t.ok(listed(c, base .. "-a"))
  t.eq(c:delete_cache(base .. "-a"), true)
  t.eq(c:delete_cache(base .. "-c"), true)
  t.ok(not listed(c, base .. "-a") and not listed(c, base .. "-c"))
end)

t.test("flush_cache empties the cache and keeps it", function()
  local c = C.client()
  local name = C.name("caches", "flush")
  t.eq(c:create_cache(name), true)
  for i = 1, 50 do t.eq(c:set(name, "k" .. i, "v" .. i), true) end
  t.eq(c:flush_cache(name), true)
  for i = 1, 50 do t.is_nil(c:get(name, "k" .. i)) end
  t.eq(c:key_exists(name, "k1"), false)
  t.ok(listed(c, name))
  t.eq(c:set(name, "after", "x"), true)
  t.eq(c:get(name, "after"), "x")
  t.eq(c:flush_cache(name), true)
  t.eq(c:flush_cache(name), true)
  t.is_nil(c:get(name, "after"))
  t.eq(c:delete_cache(name), true)
end)

t.test("flush_cache of a missing cache: NOT_FOUND_ERROR", function()
  local c = C.client()
  C.check_err("NOT_FOUND_ERROR", c:flush_cache(C.name("caches", "nosuch")))
end)

t.test("caches are separate namespaces", function()
  local c = C.client()
  local a, b = C.name("caches", "ns-a"), C.name("caches", "ns-b")
  t.eq(c:create_cache(a), true)
  t.eq(c:create_cache(b), true)
  t.eq(c:set(a, "k", "in a"), true)
  t.is_nil(c:get(b, "k"))
  t.eq(c:set(b, "k", "in b"), true)
  t.eq(c:get(a, "k"), "in a")
  t.eq(c:flush_cache(b), true)
  t.eq(c:get(a, "k"), "in a")
  t.eq(c:delete_cache(a), true)
  t.eq(c:get(b, "k"), nil)
  t.eq(c:delete_cache(b), true)
end)

t.test("two clients of one runtime see the same caches", function()
  local c1, c2 = kura.client(), kura.client()
  local name = C.name("caches", "shared")
  t.eq(c1:create_cache(name), true)
  t.eq(c2:create_cache(name), false)
  t.eq(c1:set(name, "k", "v"), true)
  t.eq(c2:get(name, "k"), "v")
  t.eq(c2:delete_cache(name), true)
end)

t.test("invalid cache names: INVALID_ARGUMENT_ERROR", function()
  local c = C.client()
  for _, bad in ipairs({ "", "  ", "\t", " \n " }) do
    local q = string.format("%q", bad)
    local err = C.check_err_at("create_cache " .. q, "INVALID_ARGUMENT_ERROR", c:create_cache(bad))
    t.eq(err.retryable, false)
    C.check_err_at("delete_cache " .. q, "INVALID_ARGUMENT_ERROR", c:delete_cache(bad))
    C.check_err_at("flush_cache " .. q, "INVALID_ARGUMENT_ERROR", c:flush_cache(bad))
  end
end)

-- A name create_cache accepts must come back from list_caches unchanged and
-- work for every call; a name it cannot keep must be refused.
local ODD_NAMES = { { "space", " x y" }, { "slash and colon", "/x:y" },
                    { "high bytes", "\255\1" }, { "embedded NUL", "\0nul" } }
for _, odd in ipairs(ODD_NAMES) do
  t.test("a cache name with " .. odd[1] .. " is kept as given or refused", function()
    local c = C.client()
    local base = C.name("caches", "odd")
    local name = base .. odd[2]
    local ok, err = c:create_cache(name)
    if ok == nil then
      C.check_err_at(string.format("create_cache %q", name), "INVALID_ARGUMENT_ERROR", ok, err)
      return
    end
    local fine, e = pcall(function()
      t.eq(ok, true, string.format("create_cache %q", name))
      local found = {}
      for _, entry in ipairs(c:list_caches()) do
        if entry.name:sub(1, #base) == base then found[#found + 1] = entry.name end
      end
      t.eq(found, { name }, "list_caches")
      t.eq(c:set(name, "k", "v"), true)
      t.eq(c:get(name, "k"), "v")
    end)
    t.eq(c:delete_cache(name), true)
    if not fine then error(e, 0) end
  end)
end

t.test("cache management calls raise on wrong types", function()
  local c = C.client()
  for _, bad in ipairs({ {}, true, function() end }) do
    t.raises(function() c:create_cache(bad) end, "bad argument")
    t.raises(function() c:delete_cache(bad) end, "bad argument")
    t.raises(function() c:flush_cache(bad) end, "bad argument")
  end
  t.raises(function() c:create_cache() end, "bad argument")
end)

t.run()
