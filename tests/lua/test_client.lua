-- The client binding beyond the conformance suite: kura.client{} options,
-- the shared client, credential secrecy, store sharing, max_memory eviction,
-- numbers as keys and values, closing.
local t = require("kura.test")

local function code(v, err)
  t.is_nil(v)
  return err and err.code
end

t.test("kura.client() is one shared client per runtime", function()
  local c = kura.client()
  t.eq(rawequal(c, kura.client()), true)
  t.ok(c == kura.client())
  t.ok(kura.client{} ~= c, "an options table makes a new client")
  t.ok(tostring(c):find("kura.client(memory)", 1, true), tostring(c))
end)

t.test("default_ttl and configuration options", function()
  local c = kura.client{ default_ttl = 5, configuration = "low_latency", timeout = 2 }
  t.eq(c:create_cache("opt-ttl") ~= nil, true)
  t.eq(c:set("opt-ttl", "k", "v"), true)
  local ttl = c:item_get_ttl("opt-ttl", "k")
  t.ok(ttl > 4 and ttl <= 5, ttl)
  t.eq(c:set("opt-ttl", "k2", "v", 0.25), true)
  ttl = c:item_get_ttl("opt-ttl", "k2")
  t.ok(ttl > 0 and ttl <= 0.25, ttl)
  for _, preset in ipairs{ "laptop", "in_region", "low_latency", "lambda" } do
    t.ok(kura.client{ configuration = preset }, preset)
  end
end)

t.test("bad option values: nil, INVALID_ARGUMENT_ERROR", function()
  t.eq(code(kura.client{ default_ttl = 0 }), "INVALID_ARGUMENT_ERROR")
  t.eq(code(kura.client{ default_ttl = -3 }), "INVALID_ARGUMENT_ERROR")
  t.eq(code(kura.client{ timeout = 0 / 0 }), "INVALID_ARGUMENT_ERROR")
  -- past ten years (KURA_TTL_MAX_SECONDS): refused, not shortened
  for _, big in ipairs({ 315360001, 1e10, math.huge }) do
    local _, e = kura.client{ default_ttl = big }
    t.eq(code(nil, e), "INVALID_ARGUMENT_ERROR")
    t.ok(e.message:find("<= 315360000 (ten years)", 1, true), e.message)
    t.eq(code(kura.client{ timeout = big }), "INVALID_ARGUMENT_ERROR")
  end
  t.ok(kura.client{ default_ttl = 315360000 })
  local _, tls = kura.client{ backend = "rediss://127.0.0.1:6380" }
  t.eq(code(nil, tls), "INVALID_ARGUMENT_ERROR")
  t.ok(tls.message:find("TLS to Redis (rediss://) is not supported", 1, true), tls.message)
  local _, port = kura.client{ backend = "redis://user:hunter2@127.0.0.1:99999999" }
  t.eq(code(nil, port), "INVALID_ARGUMENT_ERROR")
  t.ok(not port.message:find("hunter2", 1, true), port.message)
  t.eq(code(kura.client{ max_memory = -1 }), "INVALID_ARGUMENT_ERROR")
  local c, err = kura.client{ configuration = "turbo" }
  t.eq(code(c, err), "INVALID_ARGUMENT_ERROR")
  t.ok(err.message:find("turbo", 1, true), err.message)
  c, err = kura.client{ backend = "memcached://127.0.0.1:11211" }
  t.eq(code(c, err), "INVALID_ARGUMENT_ERROR")
  t.ok(err.message:find("memcached://127.0.0.1:11211", 1, true), err.message)
  t.eq(tostring(err):sub(1, 24), "INVALID_ARGUMENT_ERROR: ")
  t.eq(err.retryable, false)
end)

t.test("wrong option types and unknown options raise", function()
  t.raises(function() kura.client{ backend = 42 } end, "bad option 'backend'")
  t.raises(function() kura.client{ default_ttl = "60" } end, "bad option 'default_ttl'")
  t.raises(function() kura.client{ credential = "secret" } end, "bad option 'credential'")
  t.raises(function() kura.client{ defualt_ttl = 60 } end, "unknown option 'defualt_ttl'")
  t.raises(function() kura.client("memory") end, "table expected")
end)

t.test("error tables share one metatable", function()
  local c = kura.client()
  local _, e1 = c:get("no-such-cache-1", "k")
  local _, e2 = c:get("no-such-cache-2", "k")
  t.eq(getmetatable(e1), getmetatable(e2))
  t.eq(tostring(e1), "NOT_FOUND_ERROR: " .. e1.message)
  t.ok(e1.message:find("no-such-cache-1", 1, true), e1.message)
end)

t.test("credentials never show their secret", function()
  local secret = "sk-very-secret-token-1234"
  local cred = kura.credential.from_string(secret)
  t.eq(tostring(cred), "kura.credential(<redacted>)")
  t.eq(string.format("%s", cred), "kura.credential(<redacted>)")
  t.eq(getmetatable(cred), false)
  local _, err = pcall(function() return cred .. "x" end)
  t.ok(not tostring(err):find(secret, 1, true), tostring(err))
  err = t.raises(function() kura.client{ credential = cred }:get(cred, "k") end)
  t.ok(not tostring(err):find(secret, 1, true), tostring(err))
  local v, e = kura.credential.from_env("KURA_TEST_SURELY_UNSET_VAR")
  t.is_nil(v)
  t.eq(e.code, "INVALID_ARGUMENT_ERROR")
  t.ok(e.message:find("KURA_TEST_SURELY_UNSET_VAR", 1, true), e.message)
  t.eq(code(kura.credential.from_string("")), "INVALID_ARGUMENT_ERROR")
  t.raises(function() kura.credential.from_string(nil) end, "string expected")
end)

t.test("a credential from the environment is not printed, not even by kura.log", function()
  local kura_bin
  for i = -1, -10, -1 do
    if arg[i] == nil then break end
    kura_bin = arg[i]
  end
  local secret = "env-secret-" .. tostring(math.random(1e9))
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write([[
    local cred = assert(kura.credential.from_env("KURA_TEST_SECRET"))
    print(cred)
    kura.log.info("%s", cred)
    kura.log.warn(cred)
    local c, err = kura.client{ credential = cred, backend = "memory" }
    print(c ~= nil, err)
  ]])
  f:close()
  local p = assert(io.popen("KURA_TEST_SECRET=" .. secret .. " " .. kura_bin ..
                            " run " .. script .. " 2>&1"))
  local out = p:read("a")
  p:close()
  os.remove(script)
  t.ok(out:find("kura.credential(<redacted>)", 1, true), out)
  t.ok(not out:find(secret, 1, true), out)
end)

t.test("clients naming the same store share its caches", function()
  local a = kura.client{ store = "test-client-shared" }
  local b = kura.client{ store = "test-client-shared" }
  local other = kura.client{ store = "test-client-other" }
  t.eq(a:create_cache("s"), true)
  t.eq(b:create_cache("s"), false)
  t.eq(a:set("s", "k", "from a"), true)
  t.eq(b:get("s", "k"), "from a")
  t.eq(code(other:get("s", "k")), "NOT_FOUND_ERROR")
  t.eq(b:delete_cache("s"), true)
  t.eq(code(a:get("s", "k")), "NOT_FOUND_ERROR")
  t.eq(a:create_cache("s"), true)
  t.is_nil(a:get("s", "k"))
end)

t.test("max_memory evicts, visible through the API", function()
  local c = kura.client{ store = "test-client-evict", max_memory = 256 * 1024 }
  c:create_cache("e")
  local value = string.rep("v", 1000)
  local n = 2000 -- about 2 MB written into a 256 KiB budget
  for i = 1, n do
    t.eq(c:set("e", "key" .. i, value), true)
  end
  local hits = 0
  for i = 1, n do
    if c:get("e", "key" .. i) then hits = hits + 1 end
  end
  t.ok(hits > 0 and hits < n / 4, "hits: " .. hits)
  t.eq(c:get("e", "key" .. n), value, "the newest item stays")
end)

t.test("numbers as keys and values", function()
  local c = kura.client()
  c:create_cache("nums")
  t.eq(c:set("nums", 1, 2), true)
  t.eq(c:get("nums", "1"), "2")
  t.eq(c:set("nums", 2.5, 3.0), true)
  t.eq(c:get("nums", "2.5"), "3")
  t.eq(c:set("nums", "f", 0.1), true)
  t.eq(c:get("nums", "f"), "0.1")
  t.eq(c:get_batch("nums", { 1, 2.5, "zz" }), { ["1"] = "2", ["2.5"] = "3" })
  t.raises(function() c:set("nums", true, "x") end, "bad argument #2 to 'set'")
  t.raises(function() c:set("nums", "k", {}) end, "string expected, got table")
end)

t.test("handles: tostring, and calls after the client is closed", function()
  local h
  do
    local c <close> = kura.client{ store = "test-client-close" }
    c:create_cache("x")
    h = c:cache("x")
    t.eq(tostring(h), "kura.cache(x)")
    t.eq(h:set("k", "v"), true)
  end
  local v, err = h:get("k")
  t.is_nil(v)
  t.eq(err.code, "CANCELLED_ERROR")
end)

t.test("methods check their receiver", function()
  local c = kura.client()
  local h = c:cache("x")
  t.raises(function() c.get(h, "x", "k") end, "kura.client expected")
  t.raises(function() h.get(c, "k") end, "kura.cache expected")
  t.raises(function() c.get({}, "x", "k") end, "kura.client expected")
end)

t.run()
