-- scripts/bench/redis_luv.lua: the reference for `kura bench -c 50 --mix
-- get:100` on Redis. A plain lua5.4 + luv (libuv's Lua binding) client that
-- keeps USERS gets in flight on one connection, as kura's 50 virtual users
-- share one pipelined connection: every reply read sends the next request,
-- the requests of one read go out in one write. Each get is the command
-- kura's Redis backend sends (MGET of the cache's marker and the item's key),
-- so the server's work is the same on both sides and the ratio is the
-- clients'.
-- usage: lua5.4 scripts/bench/redis_luv.lua PORT [SECONDS [KEYS [USERS [VALUE_SIZE]]]]
-- Prints: luv: N requests per second (R replies in S s, cpu C s)
local uv = require("luv")

local port = assert(tonumber(arg[1]), "usage: redis_luv.lua PORT [SECONDS [KEYS [USERS [VALUE_SIZE]]]]")
local secs, nkeys = tonumber(arg[2] or 2), math.tointeger(tonumber(arg[3] or 10000))
local users, vsize = math.tointeger(tonumber(arg[4] or 50)), math.tointeger(tonumber(arg[5] or 100))
local find, byte, sub, random, concat = string.find, string.byte, string.sub, math.random, table.concat

local function command(...)
  local t = { "*" .. select("#", ...) .. "\r\n" }
  for _, a in ipairs({ ... }) do t[#t + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n" end
  return concat(t)
end

-- The keys as kura names them for cache "loadtest" (kura:<len>:<cache>:<key>).
local MARKER, gets = "kura:c:loadtest", {}
for i = 1, nkeys do gets[i] = command("MGET", MARKER, "kura:8:loadtest:key:" .. i) end

-- parse(b, p): the position after the whole reply that starts at p, or nil.
local function parse(b, p)
  local c = byte(b, p)
  if not c then return nil end
  local e = find(b, "\r\n", p, true)
  if not e then return nil end
  local q = e + 2
  if c == 36 then -- $: bulk string
    local len = tonumber(sub(b, p + 1, e - 1))
    if len < 0 then return q end
    q = q + len + 2
    return q - 1 <= #b and q or nil
  elseif c == 42 then -- *: array
    for _ = 1, tonumber(sub(b, p + 1, e - 1)) do
      q = parse(b, q)
      if not q then return nil end
    end
    return q
  elseif c == 45 then
    error("redis: " .. sub(b, p + 1, e - 1))
  end
  return q
end

local tcp = uv.new_tcp()
local buf, pos, replies, pending, on_reply = "", 1, 0, 0, nil

-- Reads replies; on_reply(n) says what to send for the n that completed.
local function on_read(err, chunk)
  assert(not err, err)
  assert(chunk, "redis closed the connection")
  buf = pos > #buf and chunk or sub(buf, pos) .. chunk
  pos = 1
  local n = 0
  while true do
    local q = parse(buf, pos)
    if not q then break end
    pos, n = q, n + 1
  end
  if n > 0 then on_reply(n) end
end

local t0, cpu0
local function measure()
  local out = {}
  for i = 1, users do out[i] = gets[random(nkeys)] end
  on_reply = function(n)
    replies = replies + n
    for i = 1, n do out[i] = gets[random(nkeys)] end
    for i = n + 1, #out do out[i] = nil end
    tcp:write(out)
  end
  t0, cpu0 = uv.hrtime(), os.clock()
  tcp:write(out)
  uv.new_timer():start(math.floor(secs * 1000), 0, function()
    local s, cpu = (uv.hrtime() - t0) / 1e9, os.clock() - cpu0
    io.write(string.format("luv: %.0f requests per second (%d replies in %.2f s, cpu %.2f s)\n",
      replies / s, replies, s, cpu))
    os.exit(0)
  end)
end

-- Prefill: the marker and every key, 1000 commands a write.
local function prefill()
  local value, batch = string.rep("x", vsize), { command("SET", MARKER, "1") }
  pending = nkeys + 1
  on_reply = function(n)
    pending = pending - n
    if pending == 0 then measure() end
  end
  for i = 1, nkeys do
    batch[#batch + 1] = command("PSETEX", "kura:8:loadtest:key:" .. i, "600000", value)
    if #batch == 1000 or i == nkeys then
      tcp:write(batch)
      batch = {}
    end
  end
end

tcp:connect("127.0.0.1", port, function(err)
  assert(not err, err)
  tcp:nodelay(true)
  tcp:read_start(on_read)
  prefill()
end)
uv.run()
