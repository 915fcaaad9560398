-- Increments on a Redis Cluster that is being changed under load, every
-- outcome counted. Run by tests/redis/test_redis_cluster_faults.sh, which
-- owns the cluster (AOF, fsync always: Redis loses nothing it acknowledged)
-- and passes KURA_CF_CTL (a command that changes it), KURA_CF_SCENARIO,
-- KURA_CF_MASTERS (their ports) and KURA_CF_SPARE (a free port).
--
-- 50 tasks increment 1,000 keys at random, and now and then read back the
-- key they just incremented. Per key, at the end:
--   acked <= final                      nothing acknowledged is lost
--   final <= acked + errors that said retryable = false
--                                       no increment that was applied was
--                                       reported retryable (a caller that
--                                       retries those would count twice)
-- and a read never returns less than what the same task was just told.
-- The kill scenario also checks that the other masters' keys are served
-- while one master is down (at least 20% of the healthy rate), and how soon
-- calls succeed again once it is back; and that a fresh client's first
-- calls wait for the slot map instead of going to the first seed (no MOVED).
local t = require("kura.test")

local CTL = assert(os.getenv("KURA_CF_CTL"), "run me through test_redis_cluster_faults.sh")
local SCENARIO = os.getenv("KURA_CF_SCENARIO") or "kill"
local SPARE = os.getenv("KURA_CF_SPARE")
local MASTERS = {}
for p in (os.getenv("KURA_CF_MASTERS") or ""):gmatch("%d+") do MASTERS[#MASTERS + 1] = p end
local TIMEOUT = 1.0
local NKEYS, NTASKS = 1000, 50
local RECOVERY_LIMIT = 3.0 -- seconds; the goal is 1 s, the rest is slack for a busy machine

local watchdog = kura.after(600, function()
  io.stderr:write("cluster_faults.lua: stuck (watchdog fired)\n")
  os.exit(1)
end)

-- Runs a control command in the background and waits for it without
-- blocking the loop (the load goes on meanwhile). Returns ok, output.
local function ctl(args)
  local base = os.tmpname()
  os.execute(string.format("(%s %s >%s.out 2>&1; echo $? >%s.tmp; mv %s.tmp %s.rc) &",
                           CTL, args, base, base, base, base))
  local rc
  while true do
    local f = io.open(base .. ".rc")
    if f then
      rc = f:read("n")
      f:close()
      break
    end
    kura.sleep(0.01)
  end
  local f = io.open(base .. ".out")
  local out = f and f:read("a") or ""
  if f then f:close() end
  os.remove(base .. ".rc")
  os.remove(base .. ".out")
  os.remove(base)
  return rc == 0, out
end

local function must(args)
  local ok, out = ctl(args)
  assert(ok, "ctl " .. args .. " failed: " .. out)
  return out
end

-- The slot of a key: CRC16-XMODEM of its hash tag or of the whole key.
local function crc16(s)
  local crc = 0
  for i = 1, #s do
    crc = crc ~ (s:byte(i) << 8)
    for _ = 1, 8 do
      crc = (crc & 0x8000) ~= 0 and ((crc << 1) ~ 0x1021) or (crc << 1)
      crc = crc & 0xffff
    end
  end
  return crc
end

local function slot_of(key)
  local open = key:find("{", 1, true)
  if open then
    local close = key:find("}", open + 1, true)
    if close and close > open + 1 then key = key:sub(open + 1, close - 1) end
  end
  return crc16(key) % 16384
end

local CACHE = "faults"
local function item_key(k) return "kura:" .. #CACHE .. ":" .. CACHE .. ":k" .. k end

-- owner[k]: the port of the master that serves key k (from CLUSTER SLOTS).
local function owners()
  local ranges = {}
  for lo, hi, port in must("slots"):gmatch("(%d+) (%d+) (%d+)") do
    ranges[#ranges + 1] = { tonumber(lo), tonumber(hi), port }
  end
  local owner, slots = {}, {}
  for k = 1, NKEYS do
    local s = slot_of(item_key(k))
    slots[k] = s
    for _, r in ipairs(ranges) do
      if s >= r[1] and s <= r[2] then owner[k] = r[3] end
    end
  end
  return owner, slots
end

local function client()
  return kura.client{ timeout = TIMEOUT }
end

-- --- the load ------------------------------------------------------------------

local S = {
  stop = false,
  acked = {}, nonretry = {}, retryable = {}, uncertain = {}, returned = {},
  ok = {},          -- successes per owner port since the last window()
  since = {},       -- port -> time after which the first success is noted
  first_ok = {},    -- port -> time of that success
  codes = {}, wrong_reads = 0, wrong = {}, dup = 0, bad_flags = 0, calls = 0,
}
for k = 1, NKEYS do
  S.acked[k], S.nonretry[k], S.retryable[k], S.uncertain[k], S.returned[k] = 0, 0, 0, 0, {}
end
local owner = {}

local function note_wrong(fmt, ...)
  S.wrong_reads = S.wrong_reads + 1
  if #S.wrong < 5 then S.wrong[#S.wrong + 1] = string.format(fmt, ...) end
end

local function on_success(k, v)
  S.acked[k] = S.acked[k] + 1
  if S.returned[k][v] then S.dup = S.dup + 1 end
  S.returned[k][v] = true
  local port = owner[k]
  if port then
    S.ok[port] = (S.ok[port] or 0) + 1
    if S.since[port] and not S.first_ok[port] then S.first_ok[port] = kura.now() end
  end
end

local function on_error(k, err)
  S.codes[err.code] = (S.codes[err.code] or 0) + 1
  if err.retryable then S.retryable[k] = S.retryable[k] + 1 else S.nonretry[k] = S.nonretry[k] + 1 end
  if err.uncertain then S.uncertain[k] = S.uncertain[k] + 1 end
  if err.uncertain and err.retryable then S.bad_flags = S.bad_flags + 1 end
end

local function worker(c)
  while not S.stop do
    local k = math.random(NKEYS)
    local v, err = c:increment(CACHE, "k" .. k, 1, 3600) -- runs outlast the default TTL
    S.calls = S.calls + 1
    if v then
      on_success(k, v)
      if math.random(4) == 1 then -- read it back: never less than we were told
        local r, e = c:get(CACHE, "k" .. k)
        if r and not (math.tointeger(tonumber(r)) and math.tointeger(tonumber(r)) >= v) then
          note_wrong("k%d: read %q after an increment returned %d", k, r, v)
        elseif not r and not e then
          note_wrong("k%d: read a miss after an increment returned %d", k, v)
        end
      end
    else
      on_error(k, err)
    end
  end
end

-- Successes per port between two calls.
local function window()
  local t0 = kura.now()
  S.ok = {}
  return function()
    local dt = kura.now() - t0
    local rates = {}
    for port, n in pairs(S.ok) do rates[port] = n / dt end
    return rates
  end
end

local function rate_of(rates, ports)
  local r = 0
  for _, p in ipairs(ports) do r = r + (rates[p] or 0) end
  return r
end

local function others(m)
  local o = {}
  for _, p in ipairs(MASTERS) do if p ~= m then o[#o + 1] = p end end
  return o
end

-- --- the scenarios ------------------------------------------------------------------

local report = {}
local expect = {} -- { ok, message }: checked once the load has stopped
local function later(ok, msg) expect[#expect + 1] = { ok, msg } end

local function kill_each_master()
  for _, m in ipairs(MASTERS) do
    local healthy = window() -- just before: the machine's load changes
    kura.sleep(1)
    local base = healthy()
    must("kill " .. m)
    kura.sleep(0.2) -- what was in flight ends (CONNECTION_ERROR)
    local down = window()
    kura.sleep(1.2)
    local rates = down()
    local ratio = rate_of(rates, others(m)) / rate_of(base, others(m))
    report[#report + 1] = string.format("master :%s down: other masters' keys at %.0f/s, %.0f%% of "
      .. "healthy (%.0f/s); its own keys %.0f/s", m, rate_of(rates, others(m)), ratio * 100,
      rate_of(base, others(m)), rates[m] or 0)
    later(ratio >= 0.2, report[#report])
    local up_ms = must("start " .. m):match("%d+")
    local back = kura.now()
    S.since[m], S.first_ok[m] = back, nil
    while not S.first_ok[m] and kura.now() < back + 10 do kura.sleep(0.005) end
    local rec = S.first_ok[m] and S.first_ok[m] - back or math.huge
    report[#report + 1] = string.format("master :%s back (cluster_state:ok %s ms after its start): "
      .. "its keys served again %.3f s later", m, up_ms, rec)
    later(rec <= RECOVERY_LIMIT, report[#report])
    S.since[m] = nil
    kura.sleep(0.3)
  end
end

-- One slot without an owner: its keys get CLUSTERDOWN (refused: retryable),
-- the others go on; then it is given back.
local function unassign_a_slot(slots)
  local k = 1
  local slot, port = slots[k], owner[k]
  local before = S.codes.SERVER_UNAVAILABLE or 0
  must("delslot " .. slot)
  local t0 = kura.now()
  while (S.codes.SERVER_UNAVAILABLE or 0) - before < 20 and kura.now() < t0 + 10 do
    kura.sleep(0.02)
  end
  local refused = (S.codes.SERVER_UNAVAILABLE or 0) - before
  must("addslot " .. slot .. " " .. port)
  S.since[port], S.first_ok[port] = nil, nil
  report[#report + 1] = string.format("slot %d unassigned: %d calls refused (SERVER_UNAVAILABLE)",
                                      slot, refused)
  later(refused > 0, report[#report])
  kura.sleep(0.3)
end

local scenarios = {
  kill = function(slots)
    kill_each_master()
    unassign_a_slot(slots)
  end,
  reshard = function()
    kura.sleep(1)
    must(string.format("reshard %s %s 2500", MASTERS[1], MASTERS[2]))
    kura.sleep(1)
  end,
  failover = function()
    kura.sleep(1)
    for _, m in ipairs(MASTERS) do
      must("failover " .. m)
      kura.sleep(0.5)
    end
  end,
  addnode = function()
    kura.sleep(1)
    must(string.format("addnode %s 1500", SPARE))
    kura.sleep(1)
  end,
}

-- The value of every key, once the cluster answers again.
local function final_values(c)
  local final = {}
  for k = 1, NKEYS do
    local deadline = kura.now() + 30
    while true do
      local v, err = c:get(CACHE, "k" .. k)
      if not err then
        final[k] = v and math.tointeger(tonumber(v)) or 0
        break
      end
      assert(kura.now() < deadline, "cannot read k" .. k .. ": " .. tostring(err))
      kura.sleep(0.05)
    end
  end
  return final
end

local function check(final)
  local lost, doubled, applied_err, retryable_applied, over_max = 0, 0, 0, 0, 0
  local acked, nonretry, retryable, uncertain = 0, 0, 0, 0
  for k = 1, NKEYS do
    local a, f, nr, r = S.acked[k], final[k], S.nonretry[k], S.retryable[k]
    acked, nonretry, retryable = acked + a, nonretry + nr, retryable + r
    uncertain = uncertain + S.uncertain[k]
    if f < a then lost = lost + a - f end
    if f > a then applied_err = applied_err + f - a end
    if f > a + nr then retryable_applied = retryable_applied + f - a - nr end
    if f > a + nr + r then doubled = doubled + f - a - nr - r end
    for v in pairs(S.returned[k]) do if v > f then over_max = over_max + 1 end end
  end
  local codes = {}
  for code, n in pairs(S.codes) do codes[#codes + 1] = code .. "=" .. n end
  table.sort(codes)
  print(string.format("%s: %d increments acknowledged, %d errors (%s): %d retryable, %d not "
    .. "(%d uncertain, of which %d were applied); lost %d, doubled %d, applied but reported "
    .. "retryable %d, wrong reads %d, duplicate results %d", SCENARIO, acked, retryable + nonretry,
    table.concat(codes, " "), retryable, nonretry, uncertain, applied_err, lost, doubled,
    retryable_applied, S.wrong_reads, S.dup))
  for _, line in ipairs(report) do print("  " .. line) end
  for _, w in ipairs(S.wrong) do print("  wrong read: " .. w) end
  t.eq(lost, 0, "lost increments")
  t.eq(retryable_applied, 0, "applied increments reported retryable")
  t.eq(doubled, 0, "doubled increments")
  t.eq(S.wrong_reads, 0, "wrong reads")
  t.eq(S.dup, 0, "two increments returned the same value")
  t.eq(over_max, 0, "an increment returned more than the final value")
  t.eq(S.bad_flags, 0, "errors both uncertain and retryable")
  t.ok(acked > 0, "increments succeeded")
  for _, e in ipairs(expect) do t.ok(e[1], e[2]) end
end

t.test("increments under " .. SCENARIO .. ": nothing lost, nothing applied twice", function()
  local c = client()
  t.ok(c:create_cache(CACHE) ~= nil, "create_cache")
  local slots
  owner, slots = owners()

  -- A fresh client's first calls wait for the slot map: no MOVED.
  must("resetstat")
  local fresh = client()
  local first = {}
  for k = 1, 300 do
    first[k] = kura.spawn(function() return fresh:get(CACHE, "k" .. k) end)
  end
  for k = 1, 300 do
    local v, err = first[k]:join()
    t.ok(v == nil and err == nil, "first call k" .. k .. ": " .. tostring(err))
  end
  t.eq(must("moved"):match("%d+"), "0", "MOVED replies to a fresh client's first calls")

  local tasks = {}
  for i = 1, NTASKS do tasks[i] = kura.spawn(worker, c) end
  local ok, err = pcall(scenarios[SCENARIO], slots)
  S.stop = true
  for _, task in ipairs(tasks) do task:join() end
  assert(ok, err)
  check(final_values(c))
end)

t.run()
watchdog:stop()
