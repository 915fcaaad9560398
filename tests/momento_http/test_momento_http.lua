-- The momento-http backend against the emulator (tests/momento_http/
-- emulator.py, started here): the item calls the HTTP API has, misses versus
-- missing caches, status codes -> Momento's error codes, retries, the calls it
-- lacks, and credentials (the secret must appear in no message).
local t = require("kura.test")
local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local KEY = "emu-secret-" .. math.random(1e9)
local RO_KEY = "emu-readonly-" .. math.random(1e9)
local srv = dofile(HERE .. "../http/serve.lua").start(HERE .. "emulator.py",
  "--api-key " .. KEY .. " --readonly-key " .. RO_KEY .. " --cache c1 --cache c2")

local function b64(s)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  return ((s:gsub(".", function(ch)
    local b, r = ch:byte(), ""
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d?%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

local function v1_key(endpoint, api_key)
  return b64(kura.json.encode{ endpoint = endpoint, api_key = api_key })
end

local function client(key, opts)
  opts = opts or {}
  local cred = assert(kura.credential.from_string(v1_key("cell-1.example.com", key)))
  return assert(kura.client{
    backend = "momento-http", credential = cred, momento_endpoint = srv.url,
    timeout = opts.timeout or 5, configuration = opts.configuration,
  })
end

local function control(method, path)
  local r = assert(kura.http.request{ method = method, url = srv.url .. "/_emulator/" .. path,
                                      body = method == "POST" and "" or nil })
  return r.status
end

local function check_err(code, v, err)
  t.is_nil(v)
  t.eq(type(err), "table", tostring(err))
  t.eq(err.code, code, err.message)
  t.ok(not tostring(err):find(KEY, 1, true), "the secret leaked: " .. tostring(err))
  return err
end

t.test("set, get, delete, key_exists", function()
  local c = client(KEY)
  t.eq(c:set("c1", "k", "hello"), true)
  t.eq(c:get("c1", "k"), "hello")
  t.eq(c:key_exists("c1", "k"), true)
  t.eq(select("#", c:get("c1", "absent")), 1)
  t.is_nil(c:get("c1", "absent"))
  t.eq(c:key_exists("c1", "absent"), false)
  t.eq(c:delete("c1", "k"), true)
  t.is_nil(c:get("c1", "k"))
  t.eq(c:delete("c1", "k"), true)
  t.eq(c:set("c1", "e", ""), true)
  t.eq(c:get("c1", "e"), "")
  t.eq(c:set("c1", 42, 1.5), true)
  t.eq(c:get("c1", "42"), "1.5")
end)

t.test("binary keys and values, big values", function()
  local c = client(KEY)
  local all = {}
  for i = 0, 255 do all[#all + 1] = string.char(i) end
  all = table.concat(all)
  t.eq(c:set("c1", all, all), true)
  t.eq(c:get("c1", all), all)
  t.eq(c:set("c1", "a\0b", "x\0y"), true)
  t.eq(c:get("c1", "a\0b"), "x\0y")
  t.is_nil(c:get("c1", "a"))
  local big = string.rep("0123456789", 100000)
  t.eq(c:set("c1", "big", big), true)
  t.eq(c:get("c1", "big"), big)
end)

t.test("a missing cache is NOT_FOUND_ERROR, a missing key a miss", function()
  local c = client(KEY)
  local e = check_err("NOT_FOUND_ERROR", c:get("nope", "k"))
  t.ok(e.message:find("nope", 1, true), e.message)
  check_err("NOT_FOUND_ERROR", c:set("nope", "k", "v"))
  check_err("NOT_FOUND_ERROR", c:delete("nope", "k"))
  check_err("NOT_FOUND_ERROR", c:key_exists("nope", "k"))
  check_err("NOT_FOUND_ERROR", c:get_batch("nope", { "a", "b" }))
  t.is_nil(c:get("c2", "k"))
end)

t.test("caches are separate and names are URL-encoded", function()
  local c = client(KEY)
  t.eq(control("POST", "caches/we%20ird%2Fname%3F"), 201)
  t.eq(c:set("we ird/name?", "k", "w"), true)
  t.eq(c:set("c2", "k", "two"), true)
  t.eq(c:get("we ird/name?", "k"), "w")
  t.eq(c:get("c2", "k"), "two")
end)

t.test("TTLs: ttl_seconds is sent and items expire", function()
  local c = client(KEY)
  t.eq(c:set("c1", "short", "v", 1), true)
  t.eq(c:set("c1", "frac", "v", 0.2), true) -- rounded up to 1 s by the HTTP API
  t.eq(c:get("c1", "short"), "v")
  kura.sleep(1.3)
  t.is_nil(c:get("c1", "short"))
  t.is_nil(c:get("c1", "frac"))
end)

t.test("batches run as concurrent single calls", function()
  local c = client(KEY)
  t.eq(c:set_batch("c1", { a = "1", b = "2", ["c\0"] = "\0" }), true)
  t.eq(c:set_batch("c1", { { key = "d", value = "4", ttl = 30 }, { key = "e", value = "" } }), true)
  t.eq(c:get_batch("c1", { "a", "b", "c\0", "d", "e", "missing" }),
       { a = "1", b = "2", ["c\0"] = "\0", d = "4", e = "" })
  t.eq(c:keys_exist("c1", { "a", "missing", "d" }), { true, false, true })
  t.eq(c:get_batch("c1", {}), {})
  t.eq(c:keys_exist("c1", {}), {})
  t.eq(c:set_batch("c1", {}), true)
  local keys, items = {}, {}
  for i = 1, 300 do keys[i] = "many" .. i; items[keys[i]] = "v" .. i end
  t.eq(c:set_batch("c1", items), true)
  local got = c:get_batch("c1", keys)
  for i = 1, 300 do t.eq(got[keys[i]], "v" .. i) end
end)

t.test("calls the HTTP API lacks are UNSUPPORTED_OPERATION_ERROR naming the call", function()
  local c = client(KEY)
  local calls = {
    create_cache = function() return c:create_cache("x") end,
    delete_cache = function() return c:delete_cache("c1") end,
    list_caches = function() return c:list_caches() end,
    flush_cache = function() return c:flush_cache("c1") end,
    increment = function() return c:increment("c1", "n") end,
    set_if_absent = function() return c:set_if_absent("c1", "k", "v") end,
    set_if_present = function() return c:set_if_present("c1", "k", "v") end,
    set_if_equal = function() return c:set_if_equal("c1", "k", "v", "w") end,
    set_if_not_equal = function() return c:set_if_not_equal("c1", "k", "v", "w") end,
    set_if_present_and_not_equal = function() return c:set_if_present_and_not_equal("c1", "k", "v", "w") end,
    set_if_absent_or_equal = function() return c:set_if_absent_or_equal("c1", "k", "v", "w") end,
    item_get_ttl = function() return c:item_get_ttl("c1", "k") end,
    update_ttl = function() return c:update_ttl("c1", "k", 5) end,
    increase_ttl = function() return c:increase_ttl("c1", "k", 5) end,
    decrease_ttl = function() return c:decrease_ttl("c1", "k", 5) end,
  }
  for name, fn in pairs(calls) do
    local e = check_err("UNSUPPORTED_OPERATION_ERROR", fn())
    t.ok(e.message:find(name .. " ", 1, true), name .. ": " .. e.message)
    t.eq(e.retryable, false)
  end
end)

t.test("401, 403, 429 and 5xx map to Momento's codes", function()
  check_err("AUTHENTICATION_ERROR", client("wrong-" .. KEY):get("c1", "k"))
  local ro = client(RO_KEY)
  t.is_nil(ro:get("c1", "ro-absent"))
  check_err("PERMISSION_ERROR", ro:set("c1", "k", "v"))
  local once = client(KEY, { configuration = "laptop" })
  local codes = { [429] = "LIMIT_EXCEEDED_ERROR", [500] = "INTERNAL_SERVER_ERROR",
                  [503] = "SERVER_UNAVAILABLE", [504] = "TIMEOUT_ERROR", [400] = "BAD_REQUEST_ERROR" }
  for status, code in pairs(codes) do
    t.eq(control("POST", "fail?status=" .. status .. "&count=10"), 204)
    local e = check_err(code, once:get("c1", "k"))
    t.ok(e.message:find(tostring(status), 1, true), e.message)
    t.eq(control("POST", "fail?status=200&count=0"), 204)
  end
end)

t.test("idempotent calls are retried on transient errors, others are not", function()
  local c = client(KEY) -- laptop: 3 attempts
  t.eq(c:set("c1", "r", "v"), true)
  t.eq(control("POST", "fail?status=503&count=2"), 204)
  t.eq(c:get("c1", "r"), "v") -- two failures, then the third attempt answers
  t.eq(control("POST", "fail?status=503&count=3"), 204)
  check_err("SERVER_UNAVAILABLE", c:get("c1", "r"))
  t.eq(control("POST", "fail?status=401&count=1"), 204)
  check_err("AUTHENTICATION_ERROR", c:get("c1", "r")) -- not transient: no retry
  t.eq(c:get("c1", "r"), "v")
end)

local function requests()
  return kura.json.decode(assert(kura.http.get(srv.url .. "/_emulator/stats")).body).requests
end

t.test("a broken answer is retried as a server error; a limit is not retried", function()
  local c = client(KEY) -- laptop: 3 attempts
  t.eq(c:set("c1", "b", "v"), true)
  for _, kind in ipairs{ "http09", "badstatus", "version" } do
    t.eq(control("POST", "break?kind=" .. kind .. "&count=3"), 204)
    local n0 = requests()
    local e = check_err("INTERNAL_SERVER_ERROR", c:get("c1", "b"))
    t.ok(e.message:find("not valid HTTP", 1, true), e.message)
    t.eq(requests() - n0, 3, kind .. ": three attempts")
    t.eq(control("POST", "break?kind=" .. kind .. "&count=1"), 204)
    t.eq(c:get("c1", "b"), "v") -- one broken answer, then the retry answers
  end
  t.eq(control("POST", "fail?status=413&count=3"), 204)
  local n0 = requests()
  check_err("LIMIT_EXCEEDED_ERROR", c:set("c1", "b", "v"))
  t.eq(requests() - n0, 1, "LIMIT_EXCEEDED is not retried")
  t.eq(control("POST", "fail?status=200&count=0"), 204)
end)

t.test("the key goes in the Authorization header, and nowhere in messages", function()
  local r = assert(kura.http.get(srv.url .. "/_emulator/stats"))
  local stats = kura.json.decode(r.body)
  local seen = {}
  for _, a in ipairs(stats.auth) do seen[a] = true end
  t.ok(seen[KEY], "the api_key of the v1 key was sent as it is")
  local e = check_err("AUTHENTICATION_ERROR", client("x" .. KEY):get("c1", "k"))
  t.ok(not e.message:find("x" .. KEY, 1, true), e.message)
end)

t.test("a refused port is CONNECTION_ERROR, a silent server TIMEOUT_ERROR", function()
  local cred = assert(kura.credential.from_string(v1_key("cell-1.example.com", KEY)))
  local c = assert(kura.client{ backend = "momento-http", credential = cred,
                                momento_endpoint = "http://127.0.0.1:1", timeout = 2 })
  check_err("CONNECTION_ERROR", c:get("c1", "k"))
  local slow = client(KEY, { timeout = 0.3 })
  t.eq(control("POST", "delay?ms=1500&count=3"), 204)
  check_err("TIMEOUT_ERROR", slow:get("c1", "k"))
  t.eq(control("POST", "delay?ms=0&count=0"), 204)
end)

t.test("open errors: no credential, no endpoint", function()
  local saved_env = os.getenv("MOMENTO_API_KEY")
  if saved_env == nil and os.getenv("MOMENTO_AUTH_TOKEN") == nil then
    local c, e = kura.client{ backend = "momento-http" }
    t.is_nil(c)
    t.ok(e.message:find("momento", 1, true), e.message)
  end
  -- an opaque key names no endpoint
  local cred = assert(kura.credential.from_string("opaque-key-123"))
  if os.getenv("MOMENTO_ENDPOINT") == nil then
    local c, e = kura.client{ backend = "momento-http", credential = cred }
    t.is_nil(c)
    t.eq(e.code, "INVALID_ARGUMENT_ERROR")
    t.ok(e.message:find("endpoint", 1, true), e.message)
    t.ok(not e.message:find("opaque-key-123", 1, true), e.message)
  end
  -- a plaintext local endpoint needs no credential (as forMomentoLocal)
  local anon = assert(kura.client{ backend = "momento-http", momento_endpoint = srv.url })
  check_err("AUTHENTICATION_ERROR", anon:get("c1", "k"))
end)

t.test("closing the client cancels what is in flight", function()
  t.eq(control("POST", "delay?ms=500&count=1"), 204)
  local task
  do
    local c <close> = client(KEY)
    task = kura.spawn(function() return c:get("c1", "k") end)
    kura.sleep(0.05) -- the get is on its way, the emulator holds it
  end -- c closes here
  local ok, v, e = pcall(task.join, task)
  t.ok(ok, v)
  t.is_nil(v)
  t.eq(e and e.code, "CANCELLED_ERROR", tostring(e))
  kura.sleep(0.5)
end)

t.test("kura.loadtest and kura.warmup on a cache the HTTP API cannot create", function()
  -- the HTTP API has no create_cache: the workflows use the existing cache
  local c = client(KEY)
  local r = assert(require("kura.loadtest").run{ client = c, cache = "c1", ops = 200,
    concurrency = 4, mix = { get = 1, set = 1 }, keyspace = 50, progress = false })
  t.eq(r.ops, 200)
  t.eq(r.error_count, 0)
  local i = 0
  local stats = assert(require("kura.warmup").run{ client = c, cache = "c2", progress = false,
    source = function() i = i + 1; if i <= 10 then return "w" .. i, "v" .. i end end })
  t.eq(stats.loaded, 10)
  t.eq(c:get("c2", "w10"), "v10")
end)

t.run()
srv:stop()
