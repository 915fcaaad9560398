-- API fuzz test: every client and handle method called with random argument
-- types and values (10^5 calls, fixed seed). Each call runs under pcall and
-- its outcome is checked against docs/lua-api.md: a wrong Lua type
-- raises an error mentioning "bad argument"; anything else returns what the
-- call's row says, or nil + err with a known code. Above all, nothing may
-- crash (the sanitized build runs this under ASan and UBSan).
--
-- KURA_FUZZ_CALLS overrides the number of calls; KURA_FUZZ_SEED the seed.
local t = require("kura.test")

local CALLS = tonumber(os.getenv("KURA_FUZZ_CALLS") or "") or 100000
local SEED = tonumber(os.getenv("KURA_FUZZ_SEED") or "") or 42

local CODES = {
  INVALID_ARGUMENT_ERROR = true, NOT_FOUND_ERROR = true, ALREADY_EXISTS_ERROR = true,
  FAILED_PRECONDITION_ERROR = true, LIMIT_EXCEEDED_ERROR = true, TIMEOUT_ERROR = true,
  CONNECTION_ERROR = true, SERVER_UNAVAILABLE = true, AUTHENTICATION_ERROR = true,
  PERMISSION_ERROR = true, CANCELLED_ERROR = true, BAD_REQUEST_ERROR = true,
  INTERNAL_SERVER_ERROR = true, UNSUPPORTED_OPERATION_ERROR = true, UNKNOWN_ERROR = true,
}

-- Parameter kinds of each method, after self (and after the cache name for
-- handles: a handle method drops the leading "cache").
local METHODS = {
  create_cache = { "cache" }, delete_cache = { "cache" }, flush_cache = { "cache" },
  list_caches = {}, cache = { "cache" },
  set = { "cache", "key", "value", "ttl" },
  get = { "cache", "key" },
  delete = { "cache", "key" },
  increment = { "cache", "key", "amount", "ttl" },
  set_if_absent = { "cache", "key", "value", "ttl" },
  set_if_present = { "cache", "key", "value", "ttl" },
  set_if_equal = { "cache", "key", "value", "value", "ttl" },
  set_if_not_equal = { "cache", "key", "value", "value", "ttl" },
  set_if_present_and_not_equal = { "cache", "key", "value", "value", "ttl" },
  set_if_absent_or_equal = { "cache", "key", "value", "value", "ttl" },
  key_exists = { "cache", "key" },
  keys_exist = { "cache", "keys" },
  get_batch = { "cache", "keys" },
  set_batch = { "cache", "items", "ttl" },
  item_get_ttl = { "cache", "key" },
  update_ttl = { "cache", "key", "ttl!" },
  increase_ttl = { "cache", "key", "ttl!" },
  decrease_ttl = { "cache", "key", "ttl!" },
}
local CLIENT_ONLY = { create_cache = true, delete_cache = true, flush_cache = true,
                      list_caches = true, cache = true }

-- What a successful (non-error) call may return, per docs/lua-api.md.
local function is_bool(v) return v == true or v == false end
local RESULT = {
  create_cache = is_bool,
  delete_cache = function(v) return v == true end,
  flush_cache = function(v) return v == true end,
  list_caches = function(v)
    if type(v) ~= "table" then return false end
    for i, e in ipairs(v) do
      if type(e) ~= "table" or type(e.name) ~= "string" then return false end
      if i > 1 and not (v[i - 1].name < e.name) then return false end
    end
    return true
  end,
  cache = function(v) return v ~= nil end,
  set = function(v) return v == true end,
  get = function(v) return v == nil or type(v) == "string" end,
  delete = function(v) return v == true end,
  increment = function(v) return math.type(v) == "integer" end,
  set_if_absent = is_bool, set_if_present = is_bool, set_if_equal = is_bool,
  set_if_not_equal = is_bool, set_if_present_and_not_equal = is_bool,
  set_if_absent_or_equal = is_bool,
  key_exists = is_bool,
  keys_exist = function(v, keys)
    if type(v) ~= "table" or #v ~= #keys then return false end
    for i = 1, #v do if not is_bool(v[i]) then return false end end
    return true
  end,
  get_batch = function(v)
    if type(v) ~= "table" then return false end
    for k, x in pairs(v) do
      if type(k) ~= "string" or type(x) ~= "string" then return false end
    end
    return true
  end,
  set_batch = function(v) return v == true end,
  item_get_ttl = function(v) return v == nil or (type(v) == "number" and v >= 0) end,
  update_ttl = function(v) return v == nil or v == true end,
  increase_ttl = function(v) return v == nil or is_bool(v) end,
  decrease_ttl = function(v) return v == nil or is_bool(v) end,
}

-- Random values ------------------------------------------------------------

local c = kura.client()
local CACHES = { "fuzz-a", "fuzz-b", "fuzz-gone" }
local HUGE = string.rep("\0x\255", 70 * 1024 // 3 + 1) -- 70 KiB, binary
local ALL = {}
for i = 0, 255 do ALL[#ALL + 1] = string.char(i) end
ALL = table.concat(ALL)

local STRINGS = { "", " ", "  \t", "k", "key", "a\0b", "\0", ALL, HUGE, "10", "-1", "1.5",
                  "0x10", "9223372036854775807", "-9223372036854775808", "fuzz-a",
                  "fuzz-b", string.rep("v", 300) }
local NUMBERS = { 0, 1, -1, 2, 42, 1000, math.maxinteger, math.mininteger,
                  math.maxinteger - 1, 0.5, 1.5, -0.0, 0.0, 0 / 0, math.huge, -math.huge,
                  1e300, -1e-300, 2 ^ 63, 0.001, 3.0 }
local GOOD_ITEMS = {
  { a = "1", b = "2" }, { k = 5 }, {},
  { { key = "a", value = "1", ttl = 1 }, { key = "b", value = "2" } },
}
local OTHER = {
  function() end, print, coroutine.create(function() end), c, io.stdout,
  { "k", "a\0b" }, { "k", 5 }, { true }, { {} }, { a = {} }, { [1] = "x", [3] = "y" },
  { { key = "a" } }, { { key = {}, value = "v" } }, { { key = "a", value = "v", ttl = "x" } },
  { a = true }, setmetatable({}, { __index = function() error("metamethod error") end }),
  { HUGE }, { [HUGE] = "v" }, { { key = "k", value = HUGE, ttl = 0 } },
}

local function pick(list) return list[math.random(#list)] end

local function random_value()
  local r = math.random(100)
  if r <= 8 then return nil
  elseif r <= 12 then return r % 2 == 0
  elseif r <= 25 then return pick(NUMBERS)
  elseif r <= 30 then return math.random(-1000, 1000) + (r % 2) * math.random()
  elseif r <= 60 then return pick(STRINGS)
  elseif r <= 70 then return pick(GOOD_ITEMS)
  else return pick(OTHER) end
end

-- An argument for a parameter: mostly well-formed, often anything.
local function random_arg(kind)
  if math.random(100) <= 35 then return random_value() end
  if kind == "cache" then return pick(CACHES)
  elseif kind == "key" then return pick({ "k1", "k2", "n", "a\0b", "" })
  elseif kind == "value" then return pick({ "v", "", "1", 7, "x\0y", ALL })
  elseif kind == "ttl" then return pick({ nil, 5, 0.5, 60, 0, -1 })
  elseif kind == "ttl!" then return pick({ 5, 0.5, 60, 0, 1e9 })
  elseif kind == "amount" then return pick({ nil, 1, -1, 5, math.maxinteger, 1.5 })
  elseif kind == "keys" then return pick({ { "k1", "k2" }, {}, { "n", "n", "x" } })
  elseif kind == "items" then return pick(GOOD_ITEMS)
  end
end

-- Type classification: "ok", "bad" (must raise) or "either" (the contract
-- leaves it open, e.g. a number as key) --------------------------------------

local function numeric_string(v) return type(v) == "string" and tonumber(v) ~= nil end

local function classify_keys(v)
  if type(v) ~= "table" then return "bad" end
  if getmetatable(v) then return "either" end
  local n, verdict = 0, "ok"
  for _ in pairs(v) do n = n + 1 end
  if n ~= #v then return "either" end
  for _, k in ipairs(v) do
    if type(k) == "number" then verdict = "either"
    elseif type(k) ~= "string" then return "bad" end
  end
  return verdict
end

local function classify(kind, v)
  local ty = type(v)
  if ty == "table" and getmetatable(v) and kind ~= "keys" and kind ~= "items" then return "bad" end
  if kind == "cache" or kind == "key" then
    if ty == "string" then return "ok" end
    return ty == "number" and "either" or "bad"
  elseif kind == "value" then
    if ty == "string" then return "ok" end
    if ty == "number" then
      return (v == v and v ~= math.huge and v ~= -math.huge) and "ok" or "either"
    end
    return "bad"
  elseif kind == "ttl" or kind == "amount" or kind == "ttl!" then
    if v == nil then return kind == "ttl!" and "bad" or "ok" end
    if ty == "number" then return "ok" end
    return numeric_string(v) and "either" or "bad"
  elseif kind == "keys" then
    return classify_keys(v)
  elseif kind == "items" then
    if ty ~= "table" then return "bad" end
    for _, good in ipairs(GOOD_ITEMS) do if v == good then return "ok" end end
    return "either"
  end
  error("unknown kind " .. kind)
end

-- One call -----------------------------------------------------------------

local stats = { calls = 0, raised = 0, errors = {}, results = 0 }
local violations = {}

local function violation(fmt, ...)
  if #violations < 20 then violations[#violations + 1] = string.format(fmt, ...) end
  violations.n = (violations.n or 0) + 1
end

local function describe(args, n)
  local parts = {}
  for i = 1, n do
    local v = args[i]
    if type(v) == "string" then
      parts[#parts + 1] = #v > 40 and string.format("<string %d bytes>", #v)
                          or string.format("%q", v)
    else
      parts[#parts + 1] = tostring(v)
    end
  end
  return table.concat(parts, ", ")
end

local function check_err(name, err, where)
  if type(err) ~= "table" then
    return violation("%s: second result is a %s, not an err table (%s)", name, type(err), where)
  end
  if not CODES[err.code] then
    violation("%s: unknown err.code %s (%s)", name, tostring(err.code), where)
  end
  if type(err.message) ~= "string" then
    violation("%s: err.message not a string (%s)", name, where)
  end
  if type(err.retryable) ~= "boolean" then
    violation("%s: err.retryable not a boolean (%s)", name, where)
  end
  local msg = type(err.message) == "string" and err.message or ""
  if tostring(err) ~= tostring(err.code) .. ": " .. msg then
    violation("%s: tostring(err) is %q (%s)", name, tostring(err), where)
  end
  stats.errors[err.code or "?"] = (stats.errors[err.code or "?"] or 0) + 1
end

local function check_outcome(name, verdict, keys, where, ok, ...)
  stats.calls = stats.calls + 1
  if not ok then
    local msg = ...
    stats.raised = stats.raised + 1
    if verdict == "ok" then
      violation("%s raised on well-typed arguments: %s (%s)", name, tostring(msg), where)
    elseif tostring(msg):find("metamethod error", 1, true) then
      return -- a table argument's own metamethod raised: Lua's error, not the API's
    elseif not tostring(msg):find("bad argument", 1, true) then
      violation("%s raised without \"bad argument\": %s (%s)", name, tostring(msg), where)
    end
    return
  end
  if verdict == "bad" then violation("%s did not raise on a wrong type (%s)", name, where) end
  local r1, r2 = ...
  if r1 == nil and r2 ~= nil then return check_err(name, r2, where) end
  if r2 ~= nil then violation("%s: unexpected second result %s (%s)", name, tostring(r2), where) end
  if name == "get" and r1 == nil and select("#", ...) ~= 1 then
    violation("get: a miss must return exactly one nil (%s)", where)
  end
  if not RESULT[name](r1, type(keys) == "table" and keys or {}) then
    violation("%s returned %s (%s)", name, tostring(r1), where)
  end
  stats.results = stats.results + 1
end

local HANDLES = { c:cache("fuzz-a"), c:cache("fuzz-b"), c:cache("fuzz-gone") }
local NAMES = {}
for name in pairs(METHODS) do NAMES[#NAMES + 1] = name end
table.sort(NAMES)

local function one_call()
  local name = pick(NAMES)
  local params = METHODS[name]
  local via_handle = not CLIENT_ONLY[name] and math.random(3) == 1
  local first = via_handle and 2 or 1
  local self = via_handle and pick(HANDLES) or c
  local verdict = "ok"
  if math.random(50) == 1 then -- a wrong self
    self = random_value()
    local right = not via_handle and self == c
    for _, h in ipairs(HANDLES) do if via_handle and self == h then right = true end end
    if not right then verdict = "bad" end
  end
  local args, n = {}, #params - first + 1
  if math.random(10) == 1 then n = math.random(0, n + 1) end -- fewer or extra arguments
  local keys
  for i = 1, n do
    local kind = params[first + i - 1]
    local v = random_arg(kind or "value")
    args[i] = v
    if kind then
      local cv = classify(kind, v)
      if cv == "bad" then
        verdict = "bad"
      elseif cv == "either" and verdict == "ok" then
        verdict = "either"
      end
      if kind == "keys" then keys = v end
    end
  end
  for i = n + 1, #params - first + 1 do -- parameters left out are nil
    local cv = classify(params[first + i - 1], nil)
    if cv == "bad" then verdict = "bad" end
  end
  local fn = (via_handle and HANDLES[1] or c)[name]
  local where = string.format("%s%s(%s)", via_handle and "h:" or "c:", name, describe(args, n))
  check_outcome(name, verdict, keys, where, pcall(fn, self, table.unpack(args, 1, n)))
end

-- Caches that existed before the fuzzing (a shared server may hold some):
-- everything else that the random calls created is deleted at the end.
local before = {}
for _, e in ipairs(c:list_caches() or {}) do before[e.name] = true end

t.test("random calls keep to the contract and never crash", function()
  math.randomseed(SEED)
  c:create_cache("fuzz-a")
  c:create_cache("fuzz-b")
  for _ = 1, CALLS do one_call() end
  local errs = {}
  for code, k in pairs(stats.errors) do errs[#errs + 1] = code .. "=" .. k end
  table.sort(errs)
  io.stderr:write(string.format("fuzz: %d calls, %d raised, %d results, errors: %s\n",
                                stats.calls, stats.raised, stats.results, table.concat(errs, " ")))
  if #violations > 0 then
    io.stderr:write(table.concat(violations, "\n"), "\n")
  end
  t.eq(violations.n or 0, 0, "contract violations (first ones above)")
  t.eq(stats.calls, CALLS)
  t.ok(stats.raised > CALLS // 20, "too few type errors: the fuzzer is not reaching them")
  t.ok(stats.results > CALLS // 10, "too few successful calls: the fuzzer is not reaching them")
end)

t.test("the client still works after the fuzzing", function()
  local name = "fuzz-after"
  t.eq(c:create_cache(name), true)
  t.eq(c:set(name, "k", "v"), true)
  t.eq(c:get(name, "k"), "v")
  t.eq(c:increment(name, "n", 2), 2)
  t.eq(c:delete_cache(name), true)
  -- Clean up what the random calls created (results ignored: some names may
  -- not round-trip through list_caches; test_caches.lua checks that).
  for _, list in ipairs({ STRINGS, CACHES }) do
    for _, n in ipairs(list) do
      if not before[n] then c:delete_cache(n) end
    end
  end
  for _, e in ipairs(c:list_caches()) do
    if not before[e.name] then c:delete_cache(e.name) end
  end
end)

t.run()
