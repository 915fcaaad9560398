-- kura's half of the cross-check with Momento's JS SDK (sdk_cross.js), run
-- against the emulator with --backend momento:
--   kura run cross.lua write CACHE      data for the SDK to read
--   kura run cross.lua read-sdk CACHE   reads what the SDK wrote
local mode, cache = arg[1], arg[2]
local c = kura.client()

local function eq(what, got, want)
  if got ~= want then
    error(string.format("%s: expected %q, got %q", what, tostring(want), tostring(got)), 2)
  end
end

local function write()
  local created, err = c:create_cache(cache)
  assert(created ~= nil, tostring(err))
  eq("set kura:str", c:set(cache, "kura:str", "hello from kura"), true)
  eq("set kura:bin", c:set(cache, "kura:bin", "\0\1\2\255"), true)
  eq("increment kura:n", c:increment(cache, "kura:n", 42), 42)
  eq("set kura:ttl", c:set(cache, "kura:ttl", "x", 100), true)
  eq("set_batch", c:set_batch(cache, { ["kura:b1"] = "one", ["kura:b2"] = "two" }), true)
  eq("set_if_absent", c:set_if_absent(cache, "kura:cond", "first"), true)
  eq("set_if_equal", c:set_if_equal(cache, "kura:cond", "second", "first"), true)
  eq("set kura:deleted", c:set(cache, "kura:deleted", "x"), true)
  eq("delete kura:deleted", c:delete(cache, "kura:deleted"), true)
end

local function read_sdk()
  eq("get sdk:str", c:get(cache, "sdk:str"), "hello from the SDK")
  eq("get sdk:bin", c:get(cache, "sdk:bin"), "\0\1\2\255")
  eq("increment sdk:n", c:increment(cache, "sdk:n", 1), 8)
  local ttl = c:item_get_ttl(cache, "sdk:ttl")
  assert(ttl and ttl > 80 and ttl <= 100, "sdk:ttl remaining: " .. tostring(ttl))
  local got = c:get_batch(cache, { "sdk:b1", "sdk:b2", "sdk:none" })
  eq("sdk:b1", got["sdk:b1"], "uno")
  eq("sdk:b2", got["sdk:b2"], "dos")
  eq("sdk:none", got["sdk:none"], nil)
  eq("keys_exist", table.concat((function()
    local r = {}
    for i, v in ipairs(c:keys_exist(cache, { "sdk:str", "nope", "kura:str" })) do r[i] = tostring(v) end
    return r
  end)(), ","), "true,false,true")
  eq("set_if_absent sdk:cond", c:set_if_absent(cache, "sdk:cond", "mine"), false)
  eq("get sdk:cond", c:get(cache, "sdk:cond"), "first")
  -- what the SDK did to kura's items
  eq("get kura:n", c:get(cache, "kura:n"), "43")
end

if mode == "write" then write() elseif mode == "read-sdk" then read_sdk()
else error("usage: kura run cross.lua write|read-sdk CACHE") end
print("cross " .. mode .. ": ok")
