-- kura.credential: Momento's key formats (v1 API key, legacy JWT, an opaque
-- key with MOMENTO_ENDPOINT), malformed keys as nil, err, and the secret in
-- no output, log line or error message.
local t = require("kura.test")

local function b64(s, url)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" ..
                (url and "-_" or "+/")
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = { n // 262144, n // 4096 % 64, n // 64 % 64, n % 64 }
    for j = 1, (c and 4) or (b and 3) or 2 do out[#out + 1] = chars:sub(q[j] + 1, q[j] + 1) end
    if not url then
      if not b then out[#out + 1] = "==" elseif not c then out[#out + 1] = "=" end
    end
  end
  return table.concat(out)
end

local function v1(fields) return b64(kura.json.encode(fields)) end
local function jwt(claims)
  return b64('{"alg":"HS256","typ":"JWT"}', true) .. "." .. b64(kura.json.encode(claims), true) ..
         ".c2lnbmF0dXJlLWJ5dGVz"
end

local function kura_bin()
  local bin
  for i = -1, -10, -1 do
    if arg[i] == nil then break end
    bin = arg[i]
  end
  return bin
end

-- Runs a script in a child kura with env ("A=b C=d") and returns its output.
local function run_child(env, script)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local p = assert(io.popen(env .. " " .. kura_bin() .. " run " .. path .. " 2>&1"))
  local out = p:read("a")
  p:close()
  os.remove(path)
  return out
end

local function check_malformed(secret, v, err)
  t.is_nil(v)
  t.eq(err.code, "INVALID_ARGUMENT_ERROR")
  t.ok(err.message:find("malformed", 1, true) or err.message:find("not a host", 1, true),
       err.message)
  t.ok(not err.message:find(secret, 1, true), "the secret leaked: " .. err.message)
end

t.test("a v1 API key: base64 JSON with endpoint and api_key", function()
  local key = v1{ endpoint = "cell-4-us-west-2-1.prod.a.momentohq.com", api_key = "sk-abc.def.ghi" }
  local cred = assert(kura.credential.from_string(key))
  t.eq(cred.kind, "v1")
  t.eq(cred.endpoint, "cell-4-us-west-2-1.prod.a.momentohq.com")
  t.eq(tostring(cred), "kura.credential(<redacted>)")
  t.is_nil(cred.api_key)
  t.is_nil(cred.secret)
  -- surrounding whitespace (a newline from a file) is ignored
  t.eq(assert(kura.credential.from_string(" " .. key .. "\n")).kind, "v1")
end)

-- The key's JSON is read by kura's own reader (core/json.h): escapes
-- decode, other members (nested ones too) are skipped, text after the
-- object or a NUL in a field makes the key malformed.
t.test("a v1 key's JSON: escapes, other members, nothing after the object", function()
  local key = b64('{"version": 1, "nested": {"a": [1, {"b": null}]}, ' ..
                  '"endpoint": "cell-1.example.com", "api_key": "\\u0073k-\\u00e9\\/x"}')
  local cred = assert(kura.credential.from_string(key))
  t.eq(cred.kind, "v1")
  t.eq(cred.endpoint, "cell-1.example.com")
  local secret = "s3cr3t-" .. math.random(1e9)
  check_malformed(secret, kura.credential.from_string(
    b64('{"endpoint": "cell-1.example.com", "api_key": "' .. secret .. '"} trailing')))
  check_malformed(secret, kura.credential.from_string(
    b64('{"endpoint": "cell-1.example.com", "api_key": "' .. secret .. '\\u0000"}')))
  check_malformed(secret, kura.credential.from_string(
    b64('{"endpoint": "cell-1\\u0000.example.com", "api_key": "' .. secret .. '"}')))
end)

t.test("a legacy JWT: the c and cp claims name the endpoints", function()
  local tok = jwt{ sub = "me", c = "cache.cell-9.example.com", cp = "control.cell-9.example.com" }
  local cred = assert(kura.credential.from_string(tok))
  t.eq(cred.kind, "jwt")
  t.eq(cred.endpoint, "cell-9.example.com")
end)

t.test("an opaque key takes its endpoint from MOMENTO_ENDPOINT", function()
  local cred = assert(kura.credential.from_string("opaque-key-1234"))
  t.eq(cred.kind, "opaque")
  local tok = assert(kura.credential.from_string(jwt{ sub = "no endpoint claims" }))
  t.eq(tok.kind, "opaque")
  local out = run_child("MOMENTO_API_KEY=opaque-secret-77 MOMENTO_ENDPOINT=cell-2.example.com",
    [[local c = assert(kura.credential.from_env("MOMENTO_API_KEY"))
      print(c.kind, c.endpoint)]])
  t.ok(out:find("opaque\tcell-2.example.com", 1, true), out)
end)

t.test("malformed keys are nil, INVALID_ARGUMENT_ERROR without the secret", function()
  local secret = "s3cr3t-" .. math.random(1e9)
  check_malformed(secret, kura.credential.from_string(v1{ endpoint = "cell.example.com" }))
  check_malformed(secret, kura.credential.from_string(v1{ api_key = secret }))
  check_malformed(secret, kura.credential.from_string(v1{ api_key = secret, endpoint = 5 }))
  check_malformed(secret, kura.credential.from_string(v1{ api_key = secret, endpoint = "a b/c" }))
  check_malformed(secret, kura.credential.from_string(b64('{"api_key":"' .. secret .. '", broken')))
  check_malformed(secret, kura.credential.from_string("hdr." .. secret .. "!.sig"))
  check_malformed(secret, kura.credential.from_string("hdr." .. b64("[1,2]", true) .. ".sig"))
  check_malformed(secret, kura.credential.from_string(jwt{ c = "bad host/" .. secret }))
  check_malformed(secret, kura.credential.from_string(secret .. " with spaces"))
  check_malformed(secret, kura.credential.from_string(secret .. "\0"))
  check_malformed(secret, kura.credential.from_string("a." .. secret))
  check_malformed(secret, kura.credential.from_string("   "))
  t.eq(select(2, kura.credential.from_string("")).code, "INVALID_ARGUMENT_ERROR")
  local out = run_child("BAD_KEY='" .. secret .. " x'",
    [[local c, e = kura.credential.from_env("BAD_KEY") print(c, e)]])
  t.ok(out:find("INVALID_ARGUMENT_ERROR", 1, true), out)
  t.ok(out:find("BAD_KEY", 1, true), out)
  t.ok(not out:find(secret, 1, true), out)
end)

t.test("the secret appears in no output, log line or error message", function()
  local secret = "api-secret-" .. math.random(1e9)
  local key = v1{ endpoint = "cell-1.example.com", api_key = secret }
  local out = run_child("MOMENTO_API_KEY=" .. key .. " KURA_TEST_KEY=" .. key, [[
    local cred = assert(kura.credential.from_env("KURA_TEST_KEY"))
    print(cred, cred.kind, cred.endpoint)
    kura.log.info("%s", cred)
    kura.log.error(tostring(cred))
    print(pcall(function() return cred .. "x" end))
    print(pcall(function() return cred.x.y end))
    -- a client that reaches nothing: the errors name the call, not the key
    local c = assert(kura.client{ backend = "momento-http", credential = cred,
                                  momento_endpoint = "http://127.0.0.1:1", timeout = 1 })
    print(c:get("cache", "k"))
    print(c:increment("cache", "k"))
    -- the backend reads MOMENTO_API_KEY itself when no credential is given
    local c2 = assert(kura.client{ backend = "momento-http", momento_endpoint = "http://127.0.0.1:1" })
    print(c2:set("cache", "k", "v"))
    print(kura.client{ backend = "momento-http", credential = cred })
    print(kura.client{ backend = "momento-http", credential = cred, momento_endpoint = "::bad::" })
    print(kura.credential.from_string("x" .. os.getenv("KURA_TEST_KEY") .. " y"))
    error(cred)
  ]])
  t.ok(out:find("kura.credential(<redacted>)\tv1\tcell-1.example.com", 1, true), out)
  t.ok(out:find("CONNECTION_ERROR", 1, true), out)
  t.ok(out:find("UNSUPPORTED_OPERATION_ERROR", 1, true), out)
  t.ok(not out:find(secret, 1, true), out)
  t.ok(not out:find(key, 1, true), out)
end)

t.test("wrong types raise", function()
  t.raises(function() kura.credential.from_string(nil) end, "string expected")
  t.raises(function() kura.credential.from_env() end, "string expected")
end)

t.run()
