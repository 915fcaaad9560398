-- kura.loadtest: scripted load tests with honest latency figures.
--
--   local report = require("kura.loadtest").run{
--     client = kura.client(), cache = "loadtest",
--     duration = 10,            -- seconds (or ops = N: stop after N operations)
--     concurrency = 50,         -- closed loop: virtual users, each waits for its reply
--     rate = nil,               -- open loop: operations per second, latency counted
--                               -- from each operation's intended start (wrk2)
--     mix = { get = 0.8, set = 0.2 },   -- or workload = function(vu, n) ... end
--     keyspace = 10000, distribution = "uniform", zipf_alpha = 0.99,
--     value_size = 100, warmup = 0, ramp_up = 0,
--     output = "report.json", html = "report.html", progress = nil,
--   }
--
-- Load. A closed loop runs `concurrency` virtual users (VUs), each issuing its
-- next operation when the previous one answered. An open loop (`rate`) gives
-- each VU a schedule (rate / concurrency per VU, ramping up linearly over
-- `ramp_up` seconds) and measures each latency from the time the operation
-- was due, so a stall delays the operations queued behind it and shows in
-- the percentiles instead of silently lowering the load (coordinated
-- omission). Waiting for the next due time spins (kura.sleep(0)) for the
-- last `spin` seconds (default 0.001), so the timers' millisecond slack
-- stays out of the figures; on a machine whose cores are busy with other
-- work, spin = 0 (timers only) is better, as a spinning process gets
-- preempted for milliseconds.
-- In a closed loop `ramp_up` starts the VUs one after the other over that
-- time. The first `warmup` seconds are run at full load and not counted;
-- `duration` or `ops` counts after them (default: duration = 10).
--
-- Workloads. A declarative `mix` maps operation names to weights: get, set,
-- delete, increment (on counter keys of their own), key_exists,
-- item_get_ttl, set_if_absent, set_if_present, update_ttl, increase_ttl,
-- decrease_ttl (with `ttl`, default 60 s). Keys are drawn from `keyspace`
-- keys by `distribution`: "uniform"; "zipf" (P(rank k) ~ 1/k^zipf_alpha,
-- key 1 the hottest, sampled in O(1) from an alias table); "gaussian"
-- (centred in the keyspace, standard deviation keyspace/6); "sequential"
-- (1, 2, 3, ... over all VUs, wrapping). With a read in the mix the keys
-- are set first (prefill = false skips that). A scripted `workload(vu, n)`
-- is called for each iteration n of a VU; vu.client and vu.cache are the
-- client and the cache handle wrapped so that each call the script makes is
-- timed under its method name (vu.id, vu.key() -> a key from the
-- distribution, vu.value and vu.data, a table of its own, help). An
-- iteration counts as one operation for `ops` and `rate`; in an open loop
-- the first call of an iteration is timed from the iteration's due time.
--
-- Report: { ops, iterations, seconds, throughput, errors = { CODE = n },
-- cpu_seconds (the process's CPU time over the whole run, warm-up included),
-- latency = { op = { count, min, mean, p50, p90, p99, p999, max } },
-- series = { { t, ops, throughput, errors, latency = { op = {...} } } },
-- distribution = { op = { { p, value } } }, interrupted }, latencies in
-- seconds. M.text(report) is the text (Momento loadgen's layout), also
-- printed when `print_report` is true; `output` writes JSON, `html` a page
-- with inline SVG charts. `progress` (default: stderr is a terminal) draws
-- a line each second. Ctrl-C ends the run early and the report is still
-- made (report.interrupted = true).
local kura = require("kura")

local M = {}

local now, sleep, random = kura.now, kura.sleep, math.random
local floor, huge = math.floor, math.huge

local BATCH = 256          -- closed loop: most ops between two yields
local SCRIPT_YIELD = 16    -- scripted closed loop: iterations between two yields

-- Argument shapes of the mix operations.
local KEY, KEY_VALUE, COUNTER, KEY_TTL = 1, 2, 3, 4
local OPS = {
  get = KEY, delete = KEY, key_exists = KEY, item_get_ttl = KEY,
  set = KEY_VALUE, set_if_absent = KEY_VALUE, set_if_present = KEY_VALUE,
  increment = COUNTER,
  update_ttl = KEY_TTL, increase_ttl = KEY_TTL, decrease_ttl = KEY_TTL,
}
local READS = { get = true, key_exists = true, item_get_ttl = true, update_ttl = true,
  increase_ttl = true, decrease_ttl = true, set_if_present = true }
M.operations = OPS

local hist_methods = getmetatable(kura.histogram()).__index
local record_since = hist_methods.record_since

-- --- key distributions -------------------------------------------------------------

-- Walker's alias table for weights w[1..n]: one uniform draw picks a column,
-- its fraction decides between the column and its alias.
local function alias_table(w, n)
  local total = 0
  for i = 1, n do total = total + w[i] end
  local prob, alias, small, large = {}, {}, {}, {}
  for i = 1, n do
    local p = w[i] * n / total
    prob[i] = p
    if p < 1 then small[#small + 1] = i else large[#large + 1] = i end
  end
  while #small > 0 and #large > 0 do
    local s, l = small[#small], large[#large]
    small[#small] = nil
    alias[s] = l
    prob[l] = prob[l] + prob[s] - 1
    if prob[l] < 1 then
      large[#large] = nil
      small[#small + 1] = l
    end
  end
  for _, i in ipairs(small) do prob[i], alias[i] = 1, i end
  for _, i in ipairs(large) do prob[i], alias[i] = 1, i end
  return prob, alias
end

local function zipf_gen(n, alpha)
  local w = {}
  for k = 1, n do w[k] = 1 / k ^ alpha end
  local prob, alias = alias_table(w, n)
  return function()
    local u = random() * n
    local i = floor(u)
    local col = i + 1
    if u - i < prob[col] then return col end
    return alias[col]
  end
end

local function gaussian_gen(n)
  local mean, sd = (n + 1) / 2, n / 6
  local spare
  return function()
    while true do
      local z
      if spare then
        z, spare = spare, nil
      else
        local u1, u2 = 1 - random(), random()
        local r = math.sqrt(-2 * math.log(u1))
        z, spare = r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)
      end
      local k = floor(mean + z * sd + 0.5)
      if k >= 1 and k <= n then return k end
    end
  end
end

-- keygen{ keyspace, distribution, zipf_alpha } -> function() -> 1..keyspace
function M.keygen(o)
  local n = o.keyspace or 10000
  local dist = o.distribution or "uniform"
  assert(math.type(n) == "integer" and n >= 1, "keyspace: an integer >= 1")
  if dist == "uniform" then
    return function() return random(n) end
  elseif dist == "zipf" then
    local alpha = o.zipf_alpha or 0.99
    assert(type(alpha) == "number" and alpha > 0, "zipf_alpha: a number > 0")
    return zipf_gen(n, alpha)
  elseif dist == "gaussian" then
    return gaussian_gen(n)
  elseif dist == "sequential" then
    local i = 0
    return function()
      i = i + 1
      if i > n then i = 1 end
      return i
    end
  end
  error("distribution: uniform, zipf, gaussian or sequential, not " .. tostring(dist), 3)
end

-- --- options ---------------------------------------------------------------------------

local function check_number(o, name, min, integer)
  local v = o[name]
  if v == nil then return end
  if type(v) ~= "number" or v < min or (integer and math.type(v) ~= "integer") then
    error(string.format("%s: %s >= %s", name, integer and "an integer" or "a number", min), 3)
  end
end

-- The mix as arrays of names and cumulative weights, sorted by name.
local function parse_mix(mix)
  local names, total = {}, 0
  for name, w in pairs(mix) do
    if not OPS[name] then error("mix: unknown operation '" .. tostring(name) .. "'", 3) end
    if type(w) ~= "number" or w < 0 then error("mix: weight of " .. name .. " must be >= 0", 3) end
    if w > 0 then names[#names + 1] = name; total = total + w end
  end
  if total <= 0 then error("mix: no operation with a weight > 0", 3) end
  table.sort(names)
  local weights = {}
  for i, name in ipairs(names) do weights[i] = mix[name] / total end
  return names, weights
end

local function options(o)
  if type(o) ~= "table" then error("loadtest.run: wants a table of options", 3) end
  for _, k in ipairs({ "duration", "rate", "warmup", "ramp_up", "zipf_alpha", "spin" }) do
    check_number(o, k, 0)
  end
  for _, k in ipairs({ "ops", "concurrency", "keyspace", "value_size" }) do
    check_number(o, k, k == "value_size" and 0 or 1, true)
  end
  if o.mix and o.workload then error("loadtest.run: mix or workload, not both", 3) end
  if o.workload and type(o.workload) ~= "function" then error("workload: a function", 3) end
  if o.rate and o.rate <= 0 then error("rate: a number > 0", 3) end
  local cfg = {
    client = o.client or kura.client(), cache = o.cache or "loadtest",
    ops = o.ops, duration = o.duration or (o.ops and huge or 10),
    rate = o.rate, concurrency = o.concurrency or 50,
    keyspace = o.keyspace or 10000, distribution = o.distribution or "uniform",
    zipf_alpha = o.zipf_alpha, value_size = o.value_size or 100,
    warmup = o.warmup or 0, ramp_up = o.ramp_up or 0, ttl = o.ttl or 60,
    spin = o.spin or 0.001,
    workload = o.workload, output = o.output, html = o.html,
    print_report = o.print_report, title = o.title,
  }
  if o.progress == nil then cfg.progress = kura.isatty(2) else cfg.progress = o.progress end
  if not cfg.workload then cfg.names, cfg.weights = parse_mix(o.mix or { get = 0.8, set = 0.2 }) end
  cfg.prefill = o.prefill
  return cfg
end

-- --- shared state of a run ---------------------------------------------------------------

-- One per operation name: the histogram of the current second and of the run.
local function new_stat(name)
  return { name = name, cur = kura.histogram(), total = kura.histogram() }
end

local function new_state(cfg)
  local st = {
    cfg = cfg, stats = {}, by_name = {}, errors = {}, nerrors = 0, iterations = 0,
    counting = cfg.warmup <= 0, stop = false, interrupted = false, series = {},
  }
  function st.stat(name)
    local s = st.by_name[name]
    if not s then
      s = new_stat(name)
      st.by_name[name] = s
      st.stats[#st.stats + 1] = s
    end
    return s
  end
  function st.error(e)
    local code = type(e) == "table" and e.code or "UNKNOWN_ERROR"
    st.errors[code] = (st.errors[code] or 0) + 1
    st.nerrors = st.nerrors + 1
  end
  return st
end

local function latency_of(h)
  local v = h:percentiles({ 50, 90, 99, 99.9 })
  return { count = h:count(), min = h:min(), mean = h:mean(), p50 = v[1], p90 = v[2],
    p99 = v[3], p999 = v[4], max = h:max() }
end

-- End of one interval (a second, or the rest at the end): fold the current
-- histograms into the run's and add a point to the series.
local function close_interval(st, t)
  local point = { t = t - st.t0, latency = {}, ops = 0, errors = st.nerrors - (st.last_errors or 0) }
  local dt = t - (st.last_tick or st.t0)
  for _, s in ipairs(st.stats) do
    if s.cur:count() > 0 then
      point.latency[s.name] = latency_of(s.cur)
      point.ops = point.ops + s.cur:count()
      s.total:merge(s.cur)
      s.cur:reset()
    end
  end
  point.throughput = dt > 0 and point.ops / dt or 0
  st.last_tick, st.last_errors = t, st.nerrors
  if dt > 0.05 or point.ops > 0 then st.series[#st.series + 1] = point end
  return point
end

-- Milliseconds with at least 3 significant digits down to 0.01 us.
local function fmt_ms(s)
  local ms = s * 1000
  return string.format(ms >= 1 and "%.3f" or ms >= 0.01 and "%.4f" or "%.5f", ms)
end

local function progress_line(st, point)
  local parts = { string.format("[%4ds] %10.0f ops/s", floor(point.t + 0.5), point.throughput) }
  for _, s in ipairs(st.stats) do
    local l = point.latency[s.name]
    if l then
      parts[#parts + 1] = string.format("%s p50 %s p99 %s ms", s.name, fmt_ms(l.p50), fmt_ms(l.p99))
    end
  end
  parts[#parts + 1] = string.format("errors %d", st.nerrors)
  io.stderr:write("\r", table.concat(parts, "  "), "\27[K")
  io.stderr:flush()
end

-- Warm-up over: forget what was measured, start the clock of the run.
local function start_counting(st)
  for _, s in ipairs(st.stats) do s.cur:reset() end
  st.errors, st.nerrors, st.iterations = {}, 0, 0
  st.counting = true
  st.t0 = now()
  st.last_tick, st.last_errors = st.t0, 0
  st.left = st.cfg.ops or huge
end

local function on_tick(st)
  if st.stop or not st.counting then return end
  local point = close_interval(st, now())
  if st.cfg.progress then progress_line(st, point) end
end

-- --- the hot loops -----------------------------------------------------------------------

local function key_names(n, prefix)
  local ks = {}
  for i = 1, n do ks[i] = prefix .. i end
  return ks
end

-- Operation picker: 1000 slots filled in proportion to the weights.
local function op_slots(weights)
  local slots, acc = {}, 0
  for i, w in ipairs(weights) do
    acc = acc + w
    local upto = (i == #weights) and 1000 or floor(acc * 1000 + 0.5)
    for j = #slots + 1, upto do slots[j] = i end
  end
  return slots
end

-- Everything a declarative mix needs, resolved once.
local function mix_plan(st, handle)
  local cfg, plan = st.cfg, { fns = {}, kinds = {}, stats = {} }
  for i, name in ipairs(cfg.names) do
    plan.fns[i] = handle[name] or error("the client has no operation " .. name, 0)
    plan.kinds[i] = OPS[name]
    plan.stats[i] = st.stat(name)
  end
  plan.curs = {} -- the current histograms, by operation index (never replaced)
  for i, stat in ipairs(plan.stats) do plan.curs[i] = stat.cur end
  plan.slots, plan.nops = op_slots(cfg.weights), #cfg.names
  plan.keys = key_names(cfg.keyspace, "key:")
  for _, kind in ipairs(plan.kinds) do
    if kind == COUNTER then plan.counters = key_names(cfg.keyspace, "counter:") end
  end
  plan.uniform = cfg.distribution == "uniform"
  plan.keygen = M.keygen(cfg)
  plan.value = string.rep("x", cfg.value_size)
  return plan
end

-- One mix operation, timed from t0; returns the time it ended.
local function mix_op(st, plan, handle, t0)
  local oi = plan.nops == 1 and 1 or plan.slots[random(1000)]
  local k = plan.uniform and random(#plan.keys) or plan.keygen()
  local kind, fn, s = plan.kinds[oi], plan.fns[oi], plan.stats[oi]
  t0 = t0 or now()
  local r, e
  if kind == KEY then
    r, e = fn(handle, plan.keys[k])
  elseif kind == KEY_VALUE then
    r, e = fn(handle, plan.keys[k], plan.value)
  elseif kind == COUNTER then
    r, e = fn(handle, plan.counters[k], 1)
  else
    r, e = fn(handle, plan.keys[k], st.cfg.ttl)
  end
  local t1 = record_since(s.cur, t0)
  if r == nil and e ~= nil then st.error(e) end
  return t1
end

-- Takes up to n of the operations left to do (all of them in a timed run).
local function claim(st, n)
  local left = st.left
  if left < n then n = left end
  st.left = left - n
  return n
end

-- Operations between two looks at the clock (and two yields): up to BATCH
-- while a batch takes under 1 ms (an embedded store), fewer when calls wait
-- on the network, so the end of the run is seen within ~2 ms.
local function next_batch(batch, t0)
  local t = now()
  local dt = t - t0
  if dt > 0.002 and batch > 1 then
    batch = batch // 2
  elseif dt < 0.001 and batch < BATCH then
    batch = batch * 2
  end
  return batch, t
end

-- Closed loop of one operation of shape KEY or KEY_VALUE (the common
-- benchmark): the tightest loop, timed by h:time (one call per operation,
-- two clock reads inside). The deadline is checked once per batch.
local function closed_single_vu(st, plan, handle)
  local fn, cur, keys, value = plan.fns[1], plan.stats[1].cur, plan.keys, plan.value
  local nk, keygen, time, err = #keys, (not plan.uniform) and plan.keygen, hist_methods.time, st.error
  local with_value = plan.kinds[1] == KEY_VALUE
  local batch, t = 1, now()
  while not st.stop do
    local n = claim(st, batch)
    if n <= 0 then break end
    for _ = 1, n do
      local key = keys[keygen and keygen() or random(nk)]
      local r, e
      if with_value then r, e = time(cur, fn, handle, key, value) else r, e = time(cur, fn, handle, key) end
      if r == nil and e ~= nil then err(e) end
      if st.stop then break end -- the end timer fired while a remote call waited
    end
    batch, t = next_batch(batch, t)
    if t >= st.t_end then break end
    sleep(0)
  end
  st.stop = true
end

-- n operations of a mix, closed loop: mix_op with everything in locals.
local function mix_batch(st, plan, handle, n)
  local slots, kinds, fns, curs = plan.slots, plan.kinds, plan.fns, plan.curs
  local keys, counters, value, ttl = plan.keys, plan.counters, plan.value, st.cfg.ttl
  local nk, keygen, time, err = #keys, (not plan.uniform) and plan.keygen, hist_methods.time, st.error
  for _ = 1, n do
    local oi = slots[random(1000)]
    local k = keygen and keygen() or random(nk)
    local kind, r, e = kinds[oi]
    if kind == KEY then
      r, e = time(curs[oi], fns[oi], handle, keys[k])
    elseif kind == KEY_VALUE then
      r, e = time(curs[oi], fns[oi], handle, keys[k], value)
    elseif kind == COUNTER then
      r, e = time(curs[oi], fns[oi], handle, counters[k], 1)
    else
      r, e = time(curs[oi], fns[oi], handle, keys[k], ttl)
    end
    if r == nil and e ~= nil then err(e) end
    if st.stop then break end
  end
end

-- Closed loop, any mix.
local function closed_mix_vu(st, plan, handle)
  if plan.nops == 1 and plan.kinds[1] <= KEY_VALUE then return closed_single_vu(st, plan, handle) end
  local batch, t = 1, now()
  while not st.stop do
    local n = claim(st, batch)
    if n <= 0 then break end
    mix_batch(st, plan, handle, n)
    batch, t = next_batch(batch, t)
    if t >= st.t_end then break end
    sleep(0)
  end
  st.stop = true
end

-- The due time of a VU's k-th operation (k from 0) at `rate` per second,
-- with a linear ramp from 0 over `ramp` seconds.
local function due_offset(k, rate, ramp)
  if ramp <= 0 then return k / rate end
  local in_ramp = rate * ramp / 2
  if k < in_ramp then return math.sqrt(2 * k * ramp / rate) end
  return ramp + (k - in_ramp) / rate
end

-- Waits until `due`; false when the run ends first.
local function wait_until(st, due)
  local t, spin = now(), st.cfg.spin
  if due - t > spin then sleep(due - t - spin) end
  while now() < due do
    if st.stop then return false end
    sleep(0)
  end
  return not st.stop
end

-- Open loop: op k of VU `id` is due at begin + due_offset(k) + a stagger.
local function open_vu(st, id, fire)
  local cfg = st.cfg
  local per_vu = cfg.rate / cfg.concurrency
  local base = st.begin + (id - 1) / cfg.rate
  local k, yield_at = 0, now() + 0.001
  while not st.stop do
    local due = base + due_offset(k, per_vu, cfg.ramp_up)
    k = k + 1
    if due >= st.t_end or (st.counting and st.left <= 0) then break end
    if due > now() then
      if not wait_until(st, due) then break end
      yield_at = now() + 0.001
    elseif now() >= yield_at then -- behind schedule: catch up, but let others run
      sleep(0)
      yield_at = now() + 0.001
    end
    if st.counting then -- claimed only now: other VUs ran while this one waited
      if st.left <= 0 then break end
      st.left = st.left - 1
    end
    fire(due)
  end
end

-- --- scripted workloads ----------------------------------------------------------------

-- A proxy of `obj` whose methods are timed under their names. vu._due, when
-- set, is the start time of the next call (open loop), then cleared.
local function timed_proxy(st, vu, obj, wrap_handle)
  local proxy = {}
  return setmetatable(proxy, { __index = function(_, name)
    local f = obj[name]
    if type(f) ~= "function" then return f end
    local m
    if name == "cache" and wrap_handle then
      m = function(_, ...) return timed_proxy(st, vu, f(obj, ...), false) end
    else
      local stat = st.stat(name)
      m = function(_, ...)
        local t0 = vu._due or now()
        vu._due = nil
        local r, e = f(obj, ...)
        record_since(stat.cur, t0)
        if r == nil and e ~= nil then st.error(e) end
        return r, e
      end
    end
    rawset(proxy, name, m)
    return m
  end })
end

local function new_vu(st, id, handle)
  local cfg = st.cfg
  local vu = { id = id, data = {}, value = string.rep("x", cfg.value_size) }
  st.keygen = st.keygen or M.keygen(cfg) -- one for all VUs: "sequential" is global
  local keygen = st.keygen
  vu.key = function() return "key:" .. keygen() end
  vu.client = timed_proxy(st, vu, cfg.client, true)
  vu.cache = timed_proxy(st, vu, handle, false)
  return vu
end

local function run_iteration(st, vu, n)
  local ok, err = pcall(st.cfg.workload, vu, n)
  if st.counting then st.iterations = st.iterations + 1 end
  if not ok then
    st.error({ code = "SCRIPT_ERROR" })
    if not st.script_error then
      st.script_error = tostring(err)
      kura.log.warn("loadtest: the workload raised: %s", st.script_error)
    end
  end
end

local function closed_script_vu(st, vu)
  local n = 0
  while not st.stop do
    for _ = 1, SCRIPT_YIELD do
      if st.left <= 0 or now() >= st.t_end then st.stop = true break end
      st.left = st.left - 1
      n = n + 1
      run_iteration(st, vu, n)
      if st.stop then break end
    end
    sleep(0)
  end
end

-- --- setup, phases, report ----------------------------------------------------------------

local function has_reads(cfg)
  for _, name in ipairs(cfg.names or {}) do
    if READS[name] then return true end
  end
  return false
end

local function prefill(cfg, handle)
  local value, n, workers = string.rep("x", cfg.value_size), cfg.keyspace, math.min(cfg.concurrency, 64)
  local tasks = {}
  for w = 1, workers do
    tasks[w] = kura.spawn(function()
      for i = w, n, workers do
        local ok, err = handle:set("key:" .. i, value)
        if not ok then return nil, err end
        if i % (BATCH * workers) == w then sleep(0) end
      end
      return true
    end)
  end
  for _, t in ipairs(tasks) do
    local ok, err = t:join()
    if not ok then return nil, err end
  end
  return true
end

local function setup(cfg)
  local c = cfg.client
  if c.create_cache then
    local ok, err = c:create_cache(cfg.cache)
    if ok == nil then return nil, err end
  end
  local handle = c:cache(cfg.cache)
  if cfg.prefill ~= false and has_reads(cfg) then
    local ok, err = prefill(cfg, handle)
    if not ok then return nil, err end
  end
  return handle
end

-- The VU bodies for this configuration.
local function vu_body(st, handle)
  local cfg = st.cfg
  if cfg.workload then
    return function(id)
      local vu = new_vu(st, id, handle)
      if not cfg.rate then return closed_script_vu(st, vu) end
      local n = 0
      open_vu(st, id, function(due)
        n = n + 1
        vu._due = due
        run_iteration(st, vu, n)
        vu._due = nil
      end)
    end
  end
  local plan = mix_plan(st, handle)
  if not cfg.rate then
    return function() closed_mix_vu(st, plan, handle) end
  end
  return function(id)
    open_vu(st, id, function(due)
      mix_op(st, plan, handle, due)
      if st.counting then st.iterations = st.iterations + 1 end
    end)
  end
end

local function start_vus(st, body)
  local cfg, tasks = st.cfg, {}
  local stagger = (not cfg.rate and cfg.ramp_up > 0) and cfg.ramp_up / cfg.concurrency or 0
  for id = 1, cfg.concurrency do
    tasks[id] = kura.spawn(function()
      if stagger > 0 and id > 1 and not wait_until(st, st.begin + (id - 1) * stagger) then return end
      return body(id)
    end)
  end
  return tasks
end

-- Percentiles of the distribution chart: 0, 50, 75, 87.5, ... halving the
-- rest each time (two points per halving), as far as the count supports.
local function distribution_of(h)
  local ps, n = {}, h:count()
  for k = 0, 60 do
    local p = 100 - 100 / 2 ^ (k / 2)
    if n * (1 - p / 100) < 1 then break end
    ps[#ps + 1] = p
  end
  ps[#ps + 1] = 100
  local vs, out = h:percentiles(ps), {}
  for i, p in ipairs(ps) do out[i] = { p = p, value = vs[i] } end
  return out
end
local function build_report(st)
  local cfg, t = st.cfg, st.t_stop
  local r = {
    ops = 0, iterations = st.iterations, errors = st.errors, error_count = st.nerrors,
    latency = {}, distribution = {}, series = st.series, interrupted = st.interrupted,
    seconds = t - st.t0, title = cfg.title, cpu_seconds = st.cpu,
    config = { concurrency = cfg.concurrency, rate = cfg.rate, duration = cfg.duration ~= huge
      and cfg.duration or nil, ops = cfg.ops, keyspace = cfg.keyspace,
      distribution = cfg.distribution, value_size = cfg.value_size, warmup = cfg.warmup,
      ramp_up = cfg.ramp_up, mix = cfg.names and {} or nil, scripted = cfg.workload ~= nil },
  }
  for i, name in ipairs(cfg.names or {}) do r.config.mix[name] = cfg.weights[i] end
  for _, s in ipairs(st.stats) do
    if s.total:count() > 0 then
      r.latency[s.name] = latency_of(s.total)
      r.distribution[s.name] = distribution_of(s.total)
      r.ops = r.ops + s.total:count()
    end
  end
  if not cfg.workload then r.iterations = r.ops end
  r.throughput = r.seconds > 0 and r.ops / r.seconds or 0
  return r
end

local function write_file(path, text)
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  f:write(text)
  f:close()
  return true
end

local function emit(cfg, report)
  if cfg.print_report then io.stdout:write(M.text(report)) end
  if cfg.output then
    local ok, err = write_file(cfg.output, kura.json.encode(report) .. "\n")
    if not ok then kura.log.error("loadtest: cannot write %s: %s", cfg.output, err) end
  end
  if cfg.html then
    local ok, err = write_file(cfg.html, M.html(report))
    if not ok then kura.log.error("loadtest: cannot write %s: %s", cfg.html, err) end
  end
end

local function watch_interrupt(st)
  if not kura.on_signal then return nil end
  return kura.on_signal("int", function()
    st.stop, st.interrupted = true, true
  end)
end

-- run{...} -> report, or nil, err when the cache cannot be set up.
function M.run(o)
  local cfg = options(o)
  local handle, err = setup(cfg)
  if not handle then return nil, err end
  local st = new_state(cfg)
  st.begin = now()
  st.t0, st.left = st.begin, huge
  st.t_end = st.begin + cfg.warmup + cfg.duration
  if st.counting then start_counting(st) end
  st.cpu0 = os.clock()
  local sig = watch_interrupt(st)
  local warm = (not st.counting) and kura.after(cfg.warmup, function() start_counting(st) end)
  local ticker = kura.every(1, function() on_tick(st) end)
  -- The end of a timed run, seen even by VUs whose calls wait on a network.
  local ender = st.t_end < huge and
                kura.after(math.max(0, st.t_end - now()), function() st.stop = true end)
  local tasks = start_vus(st, vu_body(st, handle))
  for _, t in ipairs(tasks) do t:join() end
  st.stop = true
  st.t_stop = now()
  st.cpu = os.clock() - st.cpu0
  ticker:stop()
  if ender then ender:stop() end
  if warm then warm:stop() end
  if sig then sig:stop() end
  if not st.counting then start_counting(st) end -- interrupted during warm-up
  close_interval(st, st.t_stop)
  if cfg.progress then io.stderr:write("\n") end
  local report = build_report(st)
  emit(cfg, report)
  return report
end

-- --- text report ---------------------------------------------------------------------------

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local function pct(n, total)
  return total > 0 and n * 100 / total or 0
end

-- The report as text, laid out as Momento's loadgen prints its stats.
function M.text(r)
  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add("cumulative stats:%s", r.interrupted and " (interrupted)" or "")
  add("%18s: %d (%.0f tps) in %.2f s", "total requests", r.ops, r.throughput, r.seconds)
  add("%18s: %d (%.2f%%)", "success", r.ops - r.error_count, pct(r.ops - r.error_count, r.ops))
  for _, code in ipairs(sorted_keys(r.errors)) do
    add("%18s: %d (%.2f%%)", code, r.errors[code], pct(r.errors[code], r.ops))
  end
  if r.iterations ~= r.ops then add("%18s: %d", "iterations", r.iterations) end
  if r.cpu_seconds and r.cpu_seconds > 0 then
    add("%18s: %.2f s (%.0f ops per cpu second)", "generator cpu", r.cpu_seconds,
      r.ops / r.cpu_seconds)
  end
  for _, name in ipairs(sorted_keys(r.latency)) do
    local l = r.latency[name]
    add("")
    add("cumulative %s latencies (ms):", name)
    add("%8s: %d", "count", l.count)
    for _, f in ipairs({ { "min", "min" }, { "mean", "mean" }, { "p50", "p50" }, { "p90", "p90" },
      { "p99", "p99" }, { "p99.9", "p999" }, { "max", "max" } }) do
      add("%8s: %s", f[1], fmt_ms(l[f[2]]))
    end
  end
  return table.concat(out, "\n") .. "\n"
end

-- --- HTML report ---------------------------------------------------------------------------

local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
  "#17becf" }

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;" }))
end

local function num(v)
  return string.format("%.1f", v)
end

-- A "nice" upper bound and tick step for values up to vmax.
local y_axis

local function nice_scale(vmax)
  if not (vmax > 0) then return 1, 0.25 end
  local mag = 10 ^ floor(math.log(vmax, 10))
  for _, m in ipairs({ 1, 2, 2.5, 5, 10 }) do
    if vmax <= m * mag then return m * mag, m * mag / 4 end
  end
  return 10 * mag, 2.5 * mag
end

local function short(v)
  if v >= 1e6 then return string.format("%.3gM", v / 1e6) end
  if v >= 1e3 then return string.format("%.3gk", v / 1e3) end
  if v > 0 and v < 0.01 then return (string.format("%.6f", v):gsub("0+$", "")) end
  return string.format("%.3g", v)
end

-- The y ticks and the y -> pixel function: linear from 0, or (log) by
-- decades from the smallest positive value, for latencies that span
-- microseconds to seconds.
function y_axis(lines, ymax, log, top, height)
  if not log then
    local ytop, ystep = nice_scale(ymax)
    local ticks = {}
    for y = 0, ytop + ystep / 2, ystep do ticks[#ticks + 1] = y end
    return ticks, function(y) return top + height - y / ytop * height end
  end
  local ymin = huge
  for _, line in ipairs(lines) do
    for _, p in ipairs(line.points) do
      if p[2] > 0 then ymin = math.min(ymin, p[2]) end
    end
  end
  if ymin == huge then ymin, ymax = 1, 10 end
  local lo = floor(math.log(ymin, 10))
  local hi = math.max(lo + 1, math.ceil(math.log(math.max(ymax, ymin), 10)))
  local ticks = {}
  for e = lo, hi do ticks[#ticks + 1] = 10.0 ^ e end
  return ticks, function(y)
    local e = math.log(math.max(y, 10.0 ^ lo), 10)
    return top + height - (e - lo) / (hi - lo) * height
  end
end

-- chart{ title, xlabel, ylabel, lines = { { name, points = { {x, y} } } },
--        xticks = { {x, label} } (optional) } -> an <svg> element.
local function svg_chart(c)
  local W, H, L, R, T, B = 720, 300, 70, 130, 34, 44
  local pw, ph = W - L - R, H - T - B
  local xmin, xmax, ymax = huge, -huge, 0
  for _, line in ipairs(c.lines) do
    for _, p in ipairs(line.points) do
      xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
      ymax = math.max(ymax, p[2])
    end
  end
  if xmin == huge then xmin, xmax = 0, 1 end
  if c.x0 then xmin = math.min(xmin, c.x0) end
  if xmax <= xmin then xmax = xmin + 1 end
  local function X(x) return L + (x - xmin) / (xmax - xmin) * pw end
  local yticks, Y = y_axis(c.lines, ymax, c.ylog, T, ph)
  local o = {}
  local function add(fmt, ...) o[#o + 1] = string.format(fmt, ...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="sans-serif" font-size="11">', W, H, W, H)
  add('<title>%s</title>', esc(c.title))
  add('<text x="%d" y="18" font-size="14" font-weight="bold">%s</text>', L, esc(c.title))
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa" stroke="#ccc"/>', L, T, pw, ph)
  for _, y in ipairs(yticks) do
    add('<line x1="%d" x2="%d" y1="%s" y2="%s" stroke="#e4e4e4"/>', L, L + pw, num(Y(y)), num(Y(y)))
    add('<text x="%d" y="%s" text-anchor="end">%s</text>', L - 6, num(Y(y) + 4), short(y))
  end
  local xticks = c.xticks
  if not xticks then
    xticks = {}
    local xt, xs = nice_scale(xmax - xmin)
    for x = 0, xt + xs / 2, xs do
      if xmin + x <= xmax + 1e-9 then xticks[#xticks + 1] = { xmin + x, short(xmin + x) } end
    end
  end
  for _, t in ipairs(xticks) do
    add('<text x="%s" y="%d" text-anchor="middle">%s</text>', num(X(t[1])), T + ph + 16, esc(t[2]))
  end
  add('<text x="%d" y="%d" text-anchor="middle">%s</text>', L + pw // 2, H - 6, esc(c.xlabel))
  add('<text transform="translate(14,%d) rotate(-90)" text-anchor="middle">%s</text>',
    T + ph // 2, esc(c.ylabel))
  for i, line in ipairs(c.lines) do
    local color, pts = line.color or COLORS[(i - 1) % #COLORS + 1], {}
    for _, p in ipairs(line.points) do pts[#pts + 1] = num(X(p[1])) .. "," .. num(Y(p[2])) end
    add('<polyline fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>', color,
      line.dash and (' stroke-dasharray="' .. line.dash .. '"') or "", table.concat(pts, " "))
    if #line.points <= 60 then -- dots, so that a short run's single point shows
      for _, p in ipairs(line.points) do
        add('<circle cx="%s" cy="%s" r="2.5" fill="%s"/>', num(X(p[1])), num(Y(p[2])), color)
      end
    end
    add('<text x="%d" y="%d" fill="%s">%s</text>', L + pw + 10, T + 12 + (i - 1) * 15, color,
      esc(line.name))
  end
  add('</svg>')
  return table.concat(o, "\n")
end

local function series_lines(r)
  local thr = { name = "ops/s", points = {} }
  local lat = {}
  -- one colour per operation; p50 solid, p99 dashed, max dotted
  local dashes = { p50 = nil, p99 = "6,3", max = "2,3" }
  for i, name in ipairs(sorted_keys(r.latency)) do
    for _, f in ipairs({ "p50", "p99", "max" }) do
      lat[#lat + 1] = { name = name .. " " .. f, field = f, op = name, points = {},
        color = COLORS[(i - 1) % #COLORS + 1], dash = dashes[f] }
    end
  end
  for _, p in ipairs(r.series) do
    thr.points[#thr.points + 1] = { p.t, p.throughput }
    for _, l in ipairs(lat) do
      local v = p.latency[l.op]
      if v then l.points[#l.points + 1] = { p.t, v[l.field] * 1000 } end
    end
  end
  return { thr }, lat
end

-- x of percentile p on the distribution chart: log10(1 / (1 - p)), so that
-- 90%, 99%, 99.9% ... are evenly spaced.
local function nines(p)
  return math.log(1 / math.max(1 - p / 100, 1e-6), 10)
end

local function distribution_lines(r)
  local lines = {}
  for _, name in ipairs(sorted_keys(r.distribution)) do
    local pts = {}
    for _, d in ipairs(r.distribution[name]) do pts[#pts + 1] = { nines(d.p), d.value * 1000 } end
    lines[#lines + 1] = { name = name, points = pts }
  end
  local ticks = {}
  for i, lab in ipairs({ "0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%" }) do
    ticks[i] = { i - 1, lab }
  end
  return lines, ticks
end

local function html_table(r)
  local o = { "<table><tr><th>operation</th><th>count</th><th>min</th><th>mean</th><th>p50</th>"
    .. "<th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>" }
  for _, name in ipairs(sorted_keys(r.latency)) do
    local l = r.latency[name]
    local cells = { esc(name), tostring(l.count) }
    for _, f in ipairs({ "min", "mean", "p50", "p90", "p99", "p999", "max" }) do
      cells[#cells + 1] = fmt_ms(l[f])
    end
    o[#o + 1] = "<tr><td>" .. table.concat(cells, "</td><td>") .. "</td></tr>"
  end
  o[#o + 1] = "</table>"
  return table.concat(o, "\n")
end

-- The report as one self-contained HTML page (inline SVG, no script, no
-- network).
function M.html(r)
  local thr, lat = series_lines(r)
  local dist, ticks = distribution_lines(r)
  local errs = {}
  for _, code in ipairs(sorted_keys(r.errors)) do errs[#errs + 1] = esc(code) .. ": " .. r.errors[code] end
  local title = r.title or "kura load test"
  return table.concat({
    "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    "<title>" .. esc(title) .. "</title>",
    "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}"
      .. "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}svg{display:block;"
      .. "margin:1.5em 0}</style></head><body>",
    "<h1>" .. esc(title) .. "</h1>",
    string.format("<p>%d operations in %.2f s: <b>%.0f ops/s</b>; errors: %s%s</p>", r.ops,
      r.seconds, r.throughput, #errs > 0 and table.concat(errs, ", ") or "none",
      r.interrupted and " (interrupted)" or ""),
    "<h2>Latency (ms)</h2>", html_table(r),
    svg_chart{ title = "Throughput over time", xlabel = "seconds", ylabel = "ops/s", lines = thr,
      x0 = 0 },
    svg_chart{ title = "Latency percentiles over time", xlabel = "seconds",
      ylabel = "ms (log scale)", lines = lat, x0 = 0, ylog = true },
    svg_chart{ title = "Latency by percentile", xlabel = "percentile", ylabel = "ms (log scale)",
      lines = dist, xticks = ticks, ylog = true },
    "</body></html>", "" }, "\n")
end

return M
