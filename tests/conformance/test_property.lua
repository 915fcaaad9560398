-- Property test: random operations against a model of LUA_API.md's
-- semantics, on whichever backend the suite runs. Binary keys (the empty
-- key and NUL bytes among them) and values (empty ones too), batches of 0
-- to 8 items in both set_batch forms, conditional sets, increments on
-- integer and non-integer values, TTL calls, deletes, and JSON documents
-- through kura.json.encode/decode stored as values. Every answer is
-- compared with the model; the first difference fails the test, naming the
-- seed, the operation's number and what it was.
--
-- Expiry: every TTL is at least 1,000 s and the client's default TTL is
-- 7,200 s, so nothing expires during a run. The model keeps each item's
-- TTL as set and when it was set; a remaining TTL is checked to lie between
-- that TTL less the time since (plus slack) and the TTL itself, and the
-- TTLs a run uses are 1,000 s or more apart, so whether increase_ttl /
-- decrease_ttl change an item never depends on the clock (an equal TTL may
-- go either way; the model accepts both).
--
-- KURA_PROP_OPS sets the number of operations (default: 3,000; 300 on the
-- Momento backends, whose emulators answer in about a millisecond, and
-- ten times slower in a sanitizer build);
-- KURA_PROP_SEED the seed (default: from the clock; printed).
-- scripts/bench/property.sh runs it longer.
local C = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "conform.lua")
local t = C.t
local json = kura.json

local DEFAULT_TTL = 7200
local TTLS = { 1000, 2000, 3600, 5000, 10000, 86400 }
local TTL_SLACK = 1.5     -- remote backends round to ms and calls take time
local MAX_BATCH = 8

local backend = tostring(kura.client()):match("^kura%.client%((.-)%)") or "?"
local http_only = backend == "momento-http" -- get, set, delete and batches only
local OPS = math.tointeger(tonumber(os.getenv("KURA_PROP_OPS") or "")) or
            (backend:find("^momento") and 300 or 3000)
local SEED = math.tointeger(tonumber(os.getenv("KURA_PROP_SEED") or "")) or
             (os.time() * 1000 + math.floor(kura.now() * 1000) % 1000)

local TRACE = os.getenv("KURA_PROP_TRACE") -- print every operation (to replay a seed)
local rnd = math.random

-- --- generators ---------------------------------------------------------------

local function bytes(n, lo, hi)
  local b = {}
  for i = 1, n do b[i] = string.char(rnd(lo or 0, hi or 255)) end
  return table.concat(b)
end

local KEYS -- a small pool, so that operations meet the same keys often
local function make_keys()
  KEYS = { "", "\0", "a\0b", "k", "K", " ", "\255\254", "key:1", "key:2", "\0\0\0" }
  for _ = 1, 14 do KEYS[#KEYS + 1] = bytes(rnd(1, 24)) end
  for i = 1, 6 do KEYS[#KEYS + 1] = "n" .. i end
end
local function key() return KEYS[rnd(1, #KEYS)] end

-- Values an increment may meet: canonical integers (no sign but '-', no
-- leading zero) and others, which increment refuses.
local INTS = { "0", "1", "-1", "42", "-7", "9223372036854775807", "-9223372036854775808",
               "9223372036854775806", "-9223372036854775807" }
local NOT_INTS = { "", "abc", "1.5", " 1", "1 ", "+1", "1e3", "0x10", "12a", "1\0", "--1", "-",
                   "12345678901234567890" }

local function value()
  local r = rnd(1, 20)
  if r <= 2 then return "" end
  if r <= 5 then return INTS[rnd(1, #INTS)] end
  if r <= 6 then return NOT_INTS[rnd(1, #NOT_INTS)] end
  if r <= 7 then return bytes(rnd(1000, 20000)) end
  return bytes(rnd(1, 40))
end

local function ttl() return TTLS[rnd(1, #TTLS)] end
local function maybe_ttl() if rnd(1, 3) == 1 then return nil end return ttl() end

-- A random JSON-able value: strings of bytes 0-127 and UTF-8, integers
-- over all of int64, floats, nested arrays and objects.
local function doc(depth)
  local k = rnd(depth > 3 and 2 or 0, 7)
  if k == 0 then
    local a = json.array()
    for i = 1, rnd(0, 4) do a[i] = doc(depth + 1) end
    return a
  elseif k == 1 then
    local o = {}
    for _ = 1, rnd(0, 4) do o[bytes(rnd(0, 6), 0, 127)] = doc(depth + 1) end
    return o
  elseif k == 2 then return rnd(math.mininteger, math.maxinteger)
  elseif k == 3 then return (rnd() - 0.5) * 10.0 ^ rnd(-300, 300)
  elseif k == 4 then return bytes(rnd(0, 12), 0, 127)
  elseif k == 5 then return utf8.char(rnd(0x80, 0xd7ff), rnd(0xe000, 0x10ffff))
  elseif k == 6 then return ({ true, false, json.null })[rnd(1, 3)]
  else return math.tointeger(rnd(-3, 3)) end
end

-- --- the model --------------------------------------------------------------------

local model = {} -- key -> { v = value, ttl = seconds, at = kura.now() when set }

local function put(k, v, tl) model[k] = { v = v, ttl = tl or DEFAULT_TTL, at = kura.now() } end

local function is_int(v)
  return v:match("^%-?[1-9]%d*$") ~= nil or v == "0"
end

-- Adds amount to v (a canonical integer) without wrapping: nil on overflow.
local function add(v, amount)
  local n = math.tointeger(tonumber(v))
  if not n or tostring(n) ~= v then return nil end -- past int64
  local r = n + amount
  if (amount > 0 and r < n) or (amount < 0 and r > n) then return nil end
  return r
end

local STORES = {
  set_if_absent = function(m) return m == nil end,
  set_if_present = function(m) return m ~= nil end,
  set_if_equal = function(m, cmp) return m ~= nil and m.v == cmp end,
  set_if_not_equal = function(m, cmp) return m == nil or m.v ~= cmp end,
  set_if_present_and_not_equal = function(m, cmp) return m ~= nil and m.v ~= cmp end,
  set_if_absent_or_equal = function(m, cmp) return m == nil or m.v == cmp end,
}
local COND_NAMES = {}
for name in pairs(STORES) do COND_NAMES[#COND_NAMES + 1] = name end
table.sort(COND_NAMES)

-- --- comparing --------------------------------------------------------------------

local Diff = {} -- metatable of a difference (raised, caught by the runner)

-- Values for a message: strings with every byte outside printable ASCII
-- as \xNN (keys and values are binary), tables by their sorted entries.
local function show(v)
  if type(v) == "string" then
    return '"' .. v:gsub('[^ -~]', function(ch) return string.format("\\x%02x", ch:byte()) end)
                   :gsub('"', '\\"') .. '"'
  end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = "[" .. show(k) .. "]=" .. show(x) end
  table.sort(parts)
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function differ(what, want, got)
  error(setmetatable({ msg = what .. ": expected " .. show(want) .. ", got " .. show(got) }, Diff), 0)
end

local function same(what, want, got)
  if not t.deep_eq(want, got) then differ(what, want, got) end
end

local function ok_call(what, v, err)
  if v == nil and err ~= nil then differ(what, "a result", tostring(err)) end
  return v
end

local function err_code(what, code, v, err)
  if v ~= nil or type(err) ~= "table" or err.code ~= code then
    differ(what, "nil, " .. code, v ~= nil and v or tostring(err))
  end
end

local function check_ttl(what, m, got)
  local low = m.ttl - (kura.now() - m.at) - TTL_SLACK
  if type(got) ~= "number" or got > m.ttl + 0.01 or got < low then
    differ(what .. " (remaining ttl)", string.format("%.3f..%g", low, m.ttl), got)
  end
end

-- --- the operations ----------------------------------------------------------------
-- Each returns a description of what it did; a difference raises.

local ops = {}

function ops.set(c, cache)
  local k, v, tl = key(), value(), maybe_ttl()
  same("set", true, ok_call("set", c:set(cache, k, v, tl)))
  put(k, v, tl)
  return "set " .. show(k) .. " (" .. #v .. " bytes) ttl " .. tostring(tl)
end

function ops.get(c, cache)
  local k = key()
  local m = model[k]
  local got, err = c:get(cache, k)
  if err then differ("get", m and m.v, tostring(err)) end
  same("get " .. show(k), m and m.v, got)
  return "get " .. show(k)
end

function ops.delete(c, cache)
  local k = key()
  same("delete", true, ok_call("delete", c:delete(cache, k)))
  model[k] = nil
  return "delete " .. show(k)
end

function ops.key_exists(c, cache)
  local k = key()
  same("key_exists " .. show(k), model[k] ~= nil, ok_call("key_exists", c:key_exists(cache, k)))
  return "key_exists " .. show(k)
end

local function some_keys()
  local ks = {}
  for i = 1, rnd(0, MAX_BATCH) do ks[i] = key() end
  return ks
end

function ops.keys_exist(c, cache)
  local ks = some_keys()
  local want = {}
  for i, k in ipairs(ks) do want[i] = model[k] ~= nil end
  same("keys_exist", want, ok_call("keys_exist", c:keys_exist(cache, ks)))
  return "keys_exist of " .. #ks
end

function ops.get_batch(c, cache)
  local ks = some_keys()
  local want = {}
  for _, k in ipairs(ks) do if model[k] then want[k] = model[k].v end end
  same("get_batch " .. show(ks), want, ok_call("get_batch", c:get_batch(cache, ks)))
  return "get_batch of " .. #ks
end

function ops.set_batch(c, cache)
  local batch_ttl = maybe_ttl()
  local items = {}
  local array = rnd(1, 2) == 1
  for _ = 1, rnd(0, MAX_BATCH) do
    local k, v = key(), value()
    if array then
      items[#items + 1] = { key = k, value = v, ttl = maybe_ttl() }
    else
      items[k] = v
    end
  end
  same("set_batch", true, ok_call("set_batch", c:set_batch(cache, items, batch_ttl)))
  if array then
    for _, it in ipairs(items) do put(it.key, it.value, it.ttl or batch_ttl) end
  else
    for k, v in pairs(items) do put(k, v, batch_ttl) end
  end
  local ks = {}
  if array then for i, it in ipairs(items) do ks[i] = show(it.key) end
  else for k in pairs(items) do ks[#ks + 1] = show(k) end end
  return string.format("set_batch (%s form) ttl %s of %s", array and "array" or "map",
                       tostring(batch_ttl), table.concat(ks, " "))
end

function ops.set_if(c, cache)
  local name = COND_NAMES[rnd(1, #COND_NAMES)]
  local k, v, tl = key(), value(), maybe_ttl()
  local m = model[k]
  -- compare with the stored value half of the time, so that "equal" happens
  local cmp = (m and rnd(1, 2) == 1) and m.v or value()
  local stores = STORES[name](m, cmp)
  local got
  if name == "set_if_absent" or name == "set_if_present" then
    got = ok_call(name, c[name](c, cache, k, v, tl))
  else
    got = ok_call(name, c[name](c, cache, k, v, cmp, tl))
  end
  same(name .. " " .. show(k), stores, got)
  if stores then put(k, v, tl) end
  return name .. " " .. show(k)
end

function ops.increment(c, cache)
  local k = rnd(1, 2) == 1 and KEYS[rnd(#KEYS - 5, #KEYS)] or key()
  local amount = ({ 1, -1, 5, rnd(-1000, 1000), math.maxinteger, math.mininteger })[rnd(1, 6)]
  local tl = maybe_ttl()
  local m = model[k]
  local what = string.format("increment %s by %d", show(k), amount)
  local got, err = c:increment(cache, k, amount, tl)
  local want = m == nil and amount or (is_int(m.v) and add(m.v, amount))
  if not want then
    err_code(what, "FAILED_PRECONDITION_ERROR", got, err)
  else
    same(what, want, ok_call(what, got, err))
    if m then
      m.v = tostring(want) -- an existing item keeps its TTL
    else
      put(k, tostring(want), tl)
    end
  end
  return what
end

function ops.item_get_ttl(c, cache)
  local k = key()
  local m = model[k]
  local got = ok_call("item_get_ttl", c:item_get_ttl(cache, k))
  if not m then
    same("item_get_ttl " .. show(k), nil, got)
  else
    check_ttl("item_get_ttl " .. show(k), m, got)
  end
  return "item_get_ttl " .. show(k)
end

function ops.ttl_change(c, cache)
  local name = ({ "update_ttl", "increase_ttl", "decrease_ttl" })[rnd(1, 3)]
  local k, tl = key(), ttl()
  local m = model[k]
  local what = name .. " " .. show(k) .. " " .. tl
  local got = ok_call(what, c[name](c, cache, k, tl))
  if not m then
    same(what, nil, got)
  elseif name == "update_ttl" then
    same(what, true, got)
    m.ttl, m.at = tl, kura.now()
  elseif tl == m.ttl then -- the remaining TTL is a little below: either answer
    if got ~= true and got ~= false then differ(what, "true or false", got) end
    m.ttl, m.at = tl, got and kura.now() or m.at
  else
    local changes = (name == "increase_ttl") == (tl > m.ttl)
    same(what, changes, got)
    if changes then m.ttl, m.at = tl, kura.now() end
  end
  return what
end

function ops.json(c, cache)
  local k, d = key(), doc(0)
  local text = json.encode(d)
  same("json set", true, ok_call("json set", c:set(cache, k, text)))
  put(k, text)
  local back = ok_call("json get", c:get(cache, k))
  same("json text " .. show(k), text, back)
  same("json document " .. show(k), d, json.decode(back))
  return "json document into " .. show(k)
end

-- Weights: reads and plain writes most, then the rest.
local MIX = {
  { "set", 8 }, { "get", 8 }, { "delete", 3 }, { "key_exists", 2 }, { "keys_exist", 2 },
  { "get_batch", 4 }, { "set_batch", 4 }, { "set_if", 6 }, { "increment", 5 },
  { "item_get_ttl", 3 }, { "ttl_change", 4 }, { "json", 2 },
}
local HTTP_OPS = { set = true, get = true, delete = true, key_exists = true, keys_exist = true,
                   get_batch = true, set_batch = true, json = true }

local function pick_op()
  local total = 0
  for _, e in ipairs(MIX) do
    if not http_only or HTTP_OPS[e[1]] then total = total + e[2] end
  end
  local r = rnd(1, total)
  for _, e in ipairs(MIX) do
    if not http_only or HTTP_OPS[e[1]] then
      r = r - e[2]
      if r <= 0 then return e[1] end
    end
  end
end

-- Finally every key of the pool is read back and compared.
local function final_check(c, cache)
  local want = {}
  for k, m in pairs(model) do want[k] = m.v end
  same("final get_batch of every key", want, ok_call("final", c:get_batch(cache, KEYS)))
end

t.test(string.format("%d random operations match the model (seed %d, %s)", OPS, SEED, backend),
       function()
  math.randomseed(SEED)
  make_keys()
  local c = assert(kura.client{ default_ttl = DEFAULT_TTL })
  local cache = C.name("prop")
  t.eq(c:create_cache(cache), true)
  local i, name, before = 0, "", "none"
  local ok, err = pcall(function()
    for n = 1, OPS do
      i, name = n, pick_op()
      before = ops[name](c, cache)
      if TRACE then print(n, before) end
    end
    i, name = OPS + 1, "the final read of every key"
    final_check(c, cache)
  end)
  c:delete_cache(cache)
  if not ok then
    local msg = getmetatable(err) == Diff and err.msg or tostring(err)
    error(string.format("difference at operation %d of %d (%s; seed %d: KURA_PROP_SEED=%d " ..
                        "replays it; the operation before: %s): %s", i, OPS, name, SEED, SEED,
                        before, msg), 0)
  end
  print(string.format("property: %s: %d operations, 0 differences (seed %d)", backend, OPS, SEED))
end)

t.run()
