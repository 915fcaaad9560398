-- kura.loadtest: scripted load tests with honest latency figures. The
-- options and the report are described in docs/lua-api.md ("kura.loadtest"),
-- what the figures mean in docs/load-testing.md; this comment says why the
-- engine works as it does.
--
--   local report = require("kura.loadtest").run{ duration = 10, concurrency = 50,
--     mix = { get = 0.8, set = 0.2 }, thresholds = { "p99<2ms" } }
--
-- Options are all checked (check_options) before a client, a timer or a
-- task exists, so a bad one never leaves a ticker or a Ctrl-C watcher
-- running; the timed part (drive) stops its timers however it ends.
--
-- Load. A closed loop runs `concurrency` virtual users (VUs), each issuing
-- its next operation when the previous one answered, batching up to BATCH
-- operations between two looks at the clock. An open loop (`rate`) gives
-- each VU a schedule and measures each latency from the time the operation
-- was due, so a stall delays the operations queued behind it and shows in
-- the percentiles instead of silently lowering the load (coordinated
-- omission). Waiting for a due time spins (kura.sleep(0)) for the last
-- `spin` seconds, keeping the timers' millisecond slack out of the figures;
-- on a machine whose cores are busy, spin = 0 is better (a spinning process
-- gets preempted for milliseconds).
--
-- Errors count the same whether a failing call waits (a server that stopped
-- answering: each call takes its timeout) or fails at once (a refused
-- connection: a closed loop spins through thousands of failures a second).
-- report.error_percent is the failed share of the load: in a closed loop,
-- of the VUs' time, the time spent in calls that failed (see new_pace); in
-- an open loop, of the operations due, those that failed or were never sent
-- because the VU still waited on an earlier one (report.missed). A count of
-- failed calls alone called a 2.5 s outage of 50 stalled VUs 0.05% of the
-- run. The default threshold "errors<1%" applies unless `thresholds` names
-- errors itself (thresholds = false: no checks).
--
-- Reports: M.text and M.html (rendered by kura.report), `output` (JSON) and
-- `html` files, checked writable first; a file that cannot be written at the
-- end is logged and named in report.write_error.
local kura = require("kura")
local threshold = require("kura.threshold")
local render = require("kura.report")
local keydist = require("kura.keydist")

local M = {}

local now, sleep, random = kura.now, kura.sleep, math.random
local floor, huge = math.floor, math.huge

local BATCH = 256          -- closed loop: most ops between two yields
local SCRIPT_YIELD = 16    -- scripted closed loop: iterations between two yields
local DEFAULT_ERRORS = "errors<1%"

-- Upper bounds of the options (see the header).
M.limits = { concurrency = 100000, keyspace = 10000000, value_size = 4 * 1024 * 1024,
  connections = 1024 }

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
M.distributions = keydist.names
M.keygen = keydist.keygen

local hist_methods = getmetatable(kura.histogram()).__index
local record_since = hist_methods.record_since

-- --- options ---------------------------------------------------------------------------

local KNOWN = {}
for name in ([[client backend connections cache duration ops rate concurrency mix workload
  keyspace distribution zipf_alpha value_size warmup ramp_up spin ttl prefill output html
  progress print_report title thresholds stages threads script thread progress_key
  series_key]]):gmatch("%S+") do KNOWN[name] = true end

local function finite(v)
  return type(v) == "number" and v == v and v ~= huge and v ~= -huge
end

-- nil when o[name] is absent or fits; else what it should be.
local function bad_number(o, name, lo, hi, integer, above)
  local v = o[name]
  if v == nil then return nil end
  local ok = finite(v) and (above and v > lo or not above and v >= lo) and (not hi or v <= hi)
    and (not integer or math.type(v) == "integer" or v == floor(v))
  if ok then return nil end
  local what = integer and "an integer" or "a number"
  if hi then return string.format("%s from %s to %s, not %s", what, lo, hi, tostring(v)) end
  return string.format("%s %s %s, not %s", what, above and ">" or ">=", lo, tostring(v))
end

local NUMBERS = {
  -- name, lo, hi, integer, strictly above lo
  { "duration", 0, nil, false, true }, { "rate", 0, nil, false, true },
  { "warmup", 0 }, { "ramp_up", 0 }, { "spin", 0, 1 }, { "zipf_alpha", 0, nil, false, true },
  { "ttl", 0, nil, false, true }, { "ops", 1, nil, true },
  { "concurrency", 1, M.limits.concurrency, true }, { "keyspace", 1, M.limits.keyspace, true },
  { "value_size", 0, M.limits.value_size, true },
  { "connections", 1, M.limits.connections, true },
}

-- The mix as arrays of names and cumulative weights, sorted by name; or nil, why.
local function parse_mix(mix)
  if type(mix) ~= "table" then return nil, "a table of operation = weight" end
  local names, total = {}, 0
  for name, w in pairs(mix) do
    if not OPS[name] then return nil, "unknown operation '" .. tostring(name) .. "'" end
    if not finite(w) or w < 0 then return nil, "the weight of " .. name .. " must be a number >= 0" end
    if w > 0 then names[#names + 1] = name; total = total + w end
  end
  if total <= 0 then return nil, "no operation with a weight > 0" end
  table.sort(names)
  local weights = {}
  for i, name in ipairs(names) do weights[i] = mix[name] / total end
  return names, weights
end

-- A report file can be written: opened for appending (so nothing is lost
-- yet), and removed again if the check created it.
local function writable(path)
  local existed = io.open(path, "r")
  if existed then existed:close() end
  local f, err = io.open(path, "a")
  if not f then return nil, err end
  f:close()
  if not existed then os.remove(path) end
  return true
end

-- The thresholds as specs, with the default errors<1% unless one names errors.
local function threshold_specs(list)
  if list == false then return {} end
  local specs, err = threshold.parse_list(list or {})
  if not specs then return nil, err end
  for _, s in ipairs(specs) do
    if s.kind == "errors" then return specs end
  end
  local d = assert(threshold.parse(DEFAULT_ERRORS))
  d.default = true
  specs[#specs + 1] = d
  return specs
end

-- stages = { { duration =, target = }, ... }: nil when they fit; else what
-- they should be and the option to blame.
local function check_stages(o)
  local stages = o.stages
  if type(stages) ~= "table" or #stages == 0 then
    return "a non-empty array of { duration =, target = }", "stages"
  end
  for _, k in ipairs({ "duration", "ops", "ramp_up", "warmup" }) do
    if o[k] ~= nil then return "not with stages (the stages set the run's shape)", k end
  end
  local top = o.rate and huge or M.limits.concurrency
  for i, st in ipairs(stages) do
    if type(st) ~= "table" then return "stage " .. i .. ": a table { duration =, target = }", "stages" end
    if not finite(st.duration) or st.duration <= 0 then
      return "stage " .. i .. ": duration must be a number > 0", "stages"
    end
    if not finite(st.target) or st.target < 0 or st.target > top then
      return string.format("stage %d: target must be a number from 0 to %s (%s)", i, tostring(top),
                           o.rate and "operations per second" or "virtual users"), "stages"
    end
  end
  for k in pairs(stages) do
    if math.type(k) ~= "integer" or k < 1 or k > #stages then
      return "an array: unexpected key " .. tostring(k), "stages"
    end
  end
end

local function check_types(o)
  for k in pairs(o) do
    if not KNOWN[k] then return "unknown option", k end
  end
  for _, n in ipairs(NUMBERS) do
    local why = bad_number(o, n[1], n[2], n[3], n[4], n[5])
    if why then return why, n[1] end
  end
  for _, k in ipairs({ "backend", "cache", "output", "html", "title" }) do
    if o[k] ~= nil and (type(o[k]) ~= "string" or o[k] == "") then return "a non-empty string", k end
  end
  for _, k in ipairs({ "prefill", "progress", "print_report" }) do
    if o[k] ~= nil and type(o[k]) ~= "boolean" then return "true or false", k end
  end
  if o.workload ~= nil and type(o.workload) ~= "function" then return "a function", "workload" end
  if o.client ~= nil and type(o.client) ~= "table" and type(o.client) ~= "userdata" then
    return "a client (kura.client())", "client"
  end
  if o.mix and o.workload then return "mix or workload, not both", "mix" end
  if o.client and (o.backend or o.connections) then
    return "client, or backend and connections, not both", o.backend and "backend" or "connections"
  end
  if o.distribution ~= nil and not ({ uniform = 1, zipf = 1, gaussian = 1, sequential = 1 })[o.distribution] then
    return "uniform, zipf, gaussian or sequential, not '" .. tostring(o.distribution) .. "'", "distribution"
  end
  if o.stages ~= nil then
    local why, name = check_stages(o)
    if why then return why, name end
  end
  if o.threads ~= nil and o.threads ~= "auto" and not (math.type(o.threads) == "integer"
      and o.threads >= 1 and o.threads <= 256) then
    return "an integer from 1 to 256, or \"auto\" (the cores)", "threads"
  end
  if o.script ~= nil and (type(o.script) ~= "string" or o.script == "") then
    return "the path of a Lua file that defines workload(vu, n)", "script"
  end
  if o.script and (o.workload or o.mix) then return "script, or workload or mix, not both", "script" end
  if o.threads and o.threads ~= 1 and (o.workload or o.client) then
    return "threads run a mix or a script (workload and client cannot cross threads)",
      o.workload and "workload" or "client"
  end
  local vus = o.concurrency or 50
  if o.connections and o.connections > vus then
    return "at most one per virtual user (concurrency " .. vus .. ")", "connections"
  end
end

-- check_options(o) -> cfg, or nil, message, option name. No load starts, no
-- client is made; report files are checked writable.
function M.check_options(o)
  if type(o) ~= "table" then return nil, "loadtest.run wants a table of options", nil end
  local why, name = check_types(o)
  if why then return nil, name .. ": " .. why, name end
  local cfg = {
    client = o.client, backend = o.backend, connections = o.connections or 1,
    cache = o.cache or "loadtest",
    ops = o.ops and math.tointeger(o.ops), duration = o.duration or (o.ops and huge or 10),
    rate = o.rate, concurrency = math.tointeger(o.concurrency or 50),
    keyspace = math.tointeger(o.keyspace or 10000), distribution = o.distribution or "uniform",
    zipf_alpha = o.zipf_alpha or 0.99, value_size = math.tointeger(o.value_size or 100),
    warmup = o.warmup or 0, ramp_up = o.ramp_up or 0, ttl = o.ttl or 60,
    spin = o.spin or 0.001, prefill = o.prefill,
    workload = o.workload, output = o.output, html = o.html,
    print_report = o.print_report, title = o.title,
    threads = o.threads, script = o.script, thread = o.thread, progress_key = o.progress_key,
    series_key = o.series_key,
  }
  if o.stages then
    cfg.stage_list = {}
    for i, stage in ipairs(o.stages) do
      cfg.stage_list[i] = { duration = stage.duration, target = stage.target }
    end
    cfg.stages = M.stage_profile(o.rate or cfg.concurrency, o.stages)
    cfg.duration = cfg.stages[#cfg.stages].t1
    if not o.rate then -- the most VUs any stage asks for run; the others wait
      local most = cfg.concurrency
      for _, seg in ipairs(cfg.stages) do most = math.max(most, math.ceil(seg.to)) end
      cfg.concurrency = most
      cfg.start_vus = math.tointeger(o.concurrency or 50)
    end
  end
  if o.progress == nil then cfg.progress = kura.isatty(2) else cfg.progress = o.progress end
  if not cfg.workload and not cfg.script then
    local names, weights = parse_mix(o.mix or { get = 0.8, set = 0.2 })
    if not names then return nil, "mix: " .. weights, "mix" end
    cfg.names, cfg.weights = names, weights
  end
  local specs, err = threshold_specs(o.thresholds)
  if not specs then return nil, err, "thresholds" end
  cfg.thresholds = specs
  for _, k in ipairs({ "output", "html" }) do
    local ok, ferr = true, nil
    if cfg[k] then ok, ferr = writable(cfg[k]) end
    if not ok then return nil, k .. ": " .. ferr, k end
  end
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
    busy_time = 0, error_time = 0, missed = 0,
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

-- Closed loop error time. A failed call is charged the time since the VU's
-- last mark (the start of its batch, or its previous failure) less the
-- calls it made in between at its usual pace: a call that waited 1 s for
-- its error weighs what a second of calls refused at once weighs, and a
-- rare error weighs about one call. One clock read per failure, none per
-- success (the hot loop times calls with h:time, which hides their start).
local function new_pace()
  return { mark = 0, since = 0, per_op = 0, err = 0 }
end

local function pace_start(p, t)
  p.mark, p.since, p.err = t, 0, 0
end

-- The i-th call of the batch failed.
local function pace_fail(p, i)
  local tf = now()
  local start = p.mark + (i - 1 - p.since) * p.per_op
  if tf > start then p.err = p.err + (tf - start) end
  p.mark, p.since = tf, i
end

-- The batch took dt for `done` calls, `failed` of them failed.
local function pace_end(st, p, dt, done, failed)
  if failed == 0 and done > 0 then p.per_op = dt / done end
  if not st.counting or done <= 0 then return end
  st.busy_time = st.busy_time + dt
  st.error_time = st.error_time + math.min(p.err, dt)
end

local function latency_of(h)
  local v = h:percentiles({ 50, 90, 99, 99.9 })
  return { count = h:count(), min = h:min(), mean = h:mean(), p50 = v[1], p90 = v[2],
    p99 = v[3], p999 = v[4], max = h:max() }
end

-- End of one interval (a second, or the rest at the end): fold the current
-- histograms into the run's and add a point to the series.
local publish_second -- below, with the progress store

local function close_interval(st, t)
  local point = { t = t - st.t0, latency = {}, ops = 0, errors = st.nerrors - (st.last_errors or 0) }
  local dt = t - (st.last_tick or st.t0)
  local names, dumps = {}, st.cfg.series_key and {} or nil
  for _, s in ipairs(st.stats) do
    if s.cur:count() > 0 then
      point.latency[s.name] = latency_of(s.cur)
      point.ops = point.ops + s.cur:count()
      if dumps then names[#names + 1], dumps[s.name] = s.name, s.cur:dump() end
      s.total:merge(s.cur)
      s.cur:reset()
    end
  end
  point.throughput = dt > 0 and point.ops / dt or 0
  st.last_tick, st.last_errors = t, st.nerrors
  if dt > 0.05 or point.ops > 0 or point.errors > 0 then
    st.series[#st.series + 1] = point
    if dumps then publish_second(st, #st.series, names, dumps) end
  end
  return point
end

local function progress_line(st, point)
  local fmt = render.duration
  local parts = { string.format("[%4ds] %10.0f ops/s", floor(point.t + 0.5), point.throughput) }
  for _, s in ipairs(st.stats) do
    local l = point.latency[s.name]
    if l then
      parts[#parts + 1] = string.format("%s p50 %s p99 %s", s.name, fmt(l.p50), fmt(l.p99))
    end
  end
  parts[#parts + 1] = string.format("errors %d", st.nerrors)
  io.stderr:write("\r", table.concat(parts, "  "), "\27[K")
  io.stderr:flush()
end

-- Warm-up over: forget what was measured, start the clock of the run.
-- The cache's figures from the clients' c:stats: the clients' hits and
-- misses summed; the backend's evictions, expirations and items (the same
-- cache's, whichever client reads them) from the first. nil when the clients
-- keep none (a client that is not kura's).
local function cache_stats(st)
  local sum
  for _, c in ipairs(st.clients or {}) do
    local s = type(c) == "userdata" and c.stats and c:stats(st.cfg.cache)
    if s then
      sum = sum or { hits = 0, misses = 0, evictions = s.evictions,
        expirations = s.expirations, items = s.items }
      sum.hits, sum.misses = sum.hits + s.hits, sum.misses + s.misses
    end
  end
  return sum
end

-- What changed between two readings of cache_stats: report.cache.
local function cache_figures(a, b)
  if not a or not b then return nil end
  local reads = (b.hits - a.hits) + (b.misses - a.misses)
  local f = { hits = b.hits - a.hits, misses = b.misses - a.misses, items = b.items }
  f.hit_ratio = reads > 0 and f.hits / reads or nil
  if b.evictions then
    f.evictions = b.evictions - (a.evictions or 0)
    f.expirations = b.expirations - (a.expirations or 0)
  end
  return f
end

local function start_counting(st)
  st.cache0 = cache_stats(st)
  for _, s in ipairs(st.stats) do s.cur:reset() end
  st.errors, st.nerrors, st.iterations = {}, 0, 0
  st.busy_time, st.error_time = 0, 0
  st.counting = true
  st.t0 = now()
  st.last_tick, st.last_errors = st.t0, 0
  st.left = st.cfg.ops or huge
end

-- A threaded run's live figures: each thread adds its second's operations
-- and errors to counters in a process-wide embedded store (whatever the
-- backend under test), which the parent reads once a second.
local PROGRESS_STORE, PROGRESS_CACHE = "kura-loadtest-progress", "run"

local function progress_client()
  local c = kura.client{ backend = "memory", store = PROGRESS_STORE }
  if c then c:create_cache(PROGRESS_CACHE) end
  return c
end

-- A thread's second j of the series, for its parent to merge exactly: each
-- operation's histogram of that second (h:dump()), then the list of their
-- names, which says the second is all there. Kept an hour at most.
local SERIES_TTL = 3600

publish_second = function(st, j, names, dumps)
  st.progress_client = st.progress_client or progress_client()
  local c = st.progress_client
  if not c then return end
  local base = string.format("%s:s:%d:%d", st.cfg.series_key, st.cfg.thread or 1, j)
  for _, name in ipairs(names) do c:set(PROGRESS_CACHE, base .. ":" .. name, dumps[name], SERIES_TTL) end
  c:set(PROGRESS_CACHE, base, kura.json.encode(names), SERIES_TTL)
end

-- The parent's side: once every thread's second j is there (or, at the end,
-- whatever is, until no thread has a second j), merges each operation's histograms into one and keeps its
-- figures; one scratch histogram per operation, so memory does not grow
-- with the run. A second missing a histogram is not merged (the report then
-- keeps the worst thread's figures for it).
local function series_collector(c, key, n)
  return c and { c = c, key = key, n = n, next = 1, merged = {}, scratch = {} } or nil
end

local function collect_seconds(col, final)
  if not col then return end
  local c = col.c
  while true do
    local j, lists, any = col.next, {}, false
    for i = 1, col.n do
      lists[i] = c:get(PROGRESS_CACHE, string.format("%s:s:%d:%d", col.key, i, j))
      if lists[i] == nil and not final then return end
      any = any or lists[i] ~= nil
    end
    if not any then return end -- (final) no thread has a second j: all are in
    local seen, whole = {}, true
    for i = 1, col.n do
      local base = string.format("%s:s:%d:%d", col.key, i, j)
      for _, name in ipairs(lists[i] and kura.json.decode(lists[i]) or {}) do
        local d = c:get(PROGRESS_CACHE, base .. ":" .. name)
        local h = col.scratch[name] or kura.histogram()
        col.scratch[name], seen[name] = h, true
        if d then h:merge(d) else whole = false end
        c:delete(PROGRESS_CACHE, base .. ":" .. name)
      end
      if lists[i] then c:delete(PROGRESS_CACHE, base) end
    end
    local lat = {}
    for name in pairs(seen) do
      local h = col.scratch[name]
      if h:count() > 0 then lat[name] = latency_of(h) end
      h:reset()
    end
    col.merged[j] = whole and lat or nil
    col.next = j + 1
  end
end

local function on_tick(st)
  if st.stop or not st.counting then return end
  local point = close_interval(st, now())
  if st.cfg.progress then progress_line(st, point) end
  if st.cfg.progress_key then
    st.progress_client = st.progress_client or progress_client()
    local c, key = st.progress_client, st.cfg.progress_key
    if c then
      c:increment(PROGRESS_CACHE, key .. ":ops", point.ops)
      c:increment(PROGRESS_CACHE, key .. ":errors", point.errors)
    end
  end
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

-- --- stages ------------------------------------------------------------------------------

-- Stages as segments { t0, t1, from, to }: the level (virtual users, or
-- operations per second) goes linearly from `from` to `to` between t0 and t1
-- (seconds since the run began), starting from `start`.
function M.stage_profile(start, stages)
  local segs, t, from = {}, 0, start
  for i, stage in ipairs(stages) do
    segs[i] = { t0 = t, t1 = t + stage.duration, from = from, to = stage.target }
    t, from = t + stage.duration, stage.target
  end
  return segs
end

-- The level at x seconds (the last target after the end).
function M.stage_level(segs, x)
  for _, g in ipairs(segs) do
    if x < g.t1 then
      if x <= g.t0 then return g.from end
      return g.from + (g.to - g.from) * (x - g.t0) / (g.t1 - g.t0)
    end
  end
  return segs[#segs].to
end

-- Operations due in [0, x) at the stages' rate: the rate's integral.
function M.stage_ops_before(segs, x)
  local q = 0
  for _, g in ipairs(segs) do
    if x <= g.t0 then break end
    local d, tau = g.t1 - g.t0, math.min(x, g.t1) - g.t0
    q = q + g.from * tau + (g.to - g.from) * tau * tau / (2 * d)
  end
  return q
end

-- When operation q (from 0) is due: the integral inverted; huge if never.
function M.stage_time_of(segs, q)
  local acc = 0
  for _, g in ipairs(segs) do
    local d = g.t1 - g.t0
    local total = (g.from + g.to) * d / 2
    if q < acc + total then
      local r, slope = q - acc, (g.to - g.from) / d
      if math.abs(slope) < 1e-12 then return g.t0 + r / g.from end
      return g.t0 + (math.sqrt(math.max(0, g.from * g.from + 2 * slope * r)) - g.from) / slope
    end
    acc = acc + total
  end
  return huge
end

-- The first time >= x at which the level reaches `need`; huge if never.
local function stage_reaches(segs, x, need)
  for _, g in ipairs(segs) do
    if x < g.t1 then
      local a = math.max(x, g.t0)
      if M.stage_level(segs, a) >= need then return a end
      if g.to >= need then return g.t0 + (need - g.from) / (g.to - g.from) * (g.t1 - g.t0) end
    end
  end
  return huge
end

-- Closed loop with stages: VU `id` runs while the level rounds to id or more.
local function vu_active(st, id)
  return id <= M.stage_level(st.cfg.stages, now() - st.begin) + 0.5
end

-- Waits until VU `id` is active again; false when the run ends first.
-- (Sleeps in steps of at most 0.1 s, so that Ctrl-C is seen.)
local function wait_active(st, id)
  local at = stage_reaches(st.cfg.stages, now() - st.begin, id - 0.5)
  if at == huge then return false end
  local due = st.begin + at
  while due - now() > 0.1 do
    if st.stop then return false end
    sleep(0.1)
  end
  return wait_until(st, due)
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

-- Everything a declarative mix needs, resolved once (every handle has the
-- same methods: they come from the first).
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
local function closed_single_vu(st, plan, handle, id)
  local fn, cur, keys, value = plan.fns[1], plan.stats[1].cur, plan.keys, plan.value
  local nk, keygen, time, err = #keys, (not plan.uniform) and plan.keygen, hist_methods.time, st.error
  local with_value = plan.kinds[1] == KEY_VALUE
  local batch, t, pace = 1, now(), new_pace()
  while not st.stop do
    local n = claim(st, batch)
    if n <= 0 then return end -- all claimed: the other VUs finish theirs
    local done, failed = n, 0
    pace_start(pace, t)
    for i = 1, n do
      local key = keys[keygen and keygen() or random(nk)]
      local r, e
      if with_value then r, e = time(cur, fn, handle, key, value) else r, e = time(cur, fn, handle, key) end
      if r == nil and e ~= nil then
        err(e)
        failed = failed + 1
        pace_fail(pace, i)
      end
      if st.stop then done = i break end -- the end timer fired while a remote call waited
    end
    local t0 = t
    batch, t = next_batch(batch, t)
    pace_end(st, pace, t - t0, done, failed)
    if t >= st.t_end then break end
    sleep(0)
    if st.cfg.stages and not vu_active(st, id) then
      if not wait_active(st, id) then return end
      t = now()
    end
  end
  st.stop = true
end

-- n operations of a mix, closed loop: mix_op with everything in locals.
-- Returns the calls made and how many failed.
local function mix_batch(st, plan, handle, n, pace)
  local slots, kinds, fns, curs = plan.slots, plan.kinds, plan.fns, plan.curs
  local keys, counters, value, ttl = plan.keys, plan.counters, plan.value, st.cfg.ttl
  local nk, keygen, time, err = #keys, (not plan.uniform) and plan.keygen, hist_methods.time, st.error
  local done, failed = n, 0
  for i = 1, n do
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
    if r == nil and e ~= nil then
      err(e)
      failed = failed + 1
      pace_fail(pace, i)
    end
    if st.stop then done = i break end
  end
  return done, failed
end

-- Closed loop, any mix.
local function closed_mix_vu(st, plan, handle, id)
  if plan.nops == 1 and plan.kinds[1] <= KEY_VALUE then return closed_single_vu(st, plan, handle, id) end
  local batch, t, pace = 1, now(), new_pace()
  while not st.stop do
    local n = claim(st, batch)
    if n <= 0 then return end -- all claimed: the other VUs finish theirs
    pace_start(pace, t)
    local done, failed = mix_batch(st, plan, handle, n, pace)
    local t0 = t
    batch, t = next_batch(batch, t)
    pace_end(st, pace, t - t0, done, failed)
    if t >= st.t_end then break end
    sleep(0)
    if st.cfg.stages and not vu_active(st, id) then
      if not wait_active(st, id) then return end
      t = now()
    end
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

-- How many k >= 0 have due_offset(k, rate, ramp) < x: due_offset inverted.
local function dues_before(x, rate, ramp)
  if x <= 0 then return 0 end
  local k
  if ramp <= 0 then
    k = x * rate
  elseif x < ramp then
    k = x * x * rate / (2 * ramp)
  else
    k = rate * ramp / 2 + (x - ramp) * rate
  end
  return math.ceil(k - 1e-9)
end

-- Open loop: VU `id`'s schedule. Without stages, op k is due at
-- base + due_offset(k) (its own share of the rate, staggered by id); with
-- stages, op k is the run's op k * concurrency + id - 1, due where the
-- stages' rate integral reaches it. sched.due(k) -> time; sched.before(t)
-- -> how many of its ops are due before t.
local function open_schedule(st, id)
  local cfg = st.cfg
  local n = cfg.concurrency
  if cfg.stages then
    local segs, begin = cfg.stages, st.begin
    return {
      due = function(k) return begin + M.stage_time_of(segs, k * n + id - 1) end,
      before = function(t)
        local q = M.stage_ops_before(segs, t - begin) - (id - 1)
        return q > 0 and math.ceil(q / n - 1e-9) or 0
      end,
    }
  end
  local per_vu, ramp = cfg.rate / n, cfg.ramp_up
  local base = st.begin + (id - 1) / cfg.rate
  return {
    due = function(k) return base + due_offset(k, per_vu, ramp) end,
    before = function(t) return dues_before(t - base, per_vu, ramp) end,
  }
end

-- Open loop: an ended timed run counts the operations this VU had due in
-- the counted time but never sent (it was waiting on a call that stalled).
local function count_missed(st, sched, sent)
  local cfg = st.cfg
  if not st.counting or cfg.ops or cfg.duration == huge then return end
  local upto = math.min(st.t_end, now())
  local due = sched.before(upto) - sched.before(st.t0)
  if due > sent then st.missed = st.missed + (due - sent) end
end

-- Open loop: op k of VU `id` is due at sched.due(k).
local function open_vu(st, id, fire)
  local sched = open_schedule(st, id)
  local k, yield_at, sent = 0, now() + 0.001, 0
  while not st.stop do
    local due = sched.due(k)
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
      if due >= st.t0 then sent = sent + 1 end
    end
    fire(due)
  end
  count_missed(st, sched, sent)
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
        local t1 = record_since(stat.cur, t0)
        vu.calls = vu.calls + 1
        if r == nil and e ~= nil then
          st.error(e)
          vu.failed = vu.failed + 1
          vu.pace.err = vu.pace.err + (t1 - t0)
        end
        return r, e
      end
    end
    rawset(proxy, name, m)
    return m
  end })
end

-- vu.http: kura.http's calls timed under "http.get", "http.post", ... A
-- response with status 400 or above counts as a failed call (code
-- HTTP_<status>), as k6 counts http_req_failed; the response is returned
-- as kura.http returns it.
local function timed_http(st, vu)
  local function timed(name, f, arg)
    local stat = st.stat(name)
    local t0 = vu._due or now()
    vu._due = nil
    local res, err = f(arg)
    local t1 = record_since(stat.cur, t0)
    vu.calls = vu.calls + 1
    local failed = res == nil and err or (res and res.status and res.status >= 400 and
      { code = "HTTP_" .. res.status, message = "status " .. res.status })
    if failed then
      st.error(failed)
      vu.failed = vu.failed + 1
      vu.pace.err = vu.pace.err + (t1 - t0)
    end
    return res, err
  end
  local http = kura.http
  return {
    get = function(url, opts)
      local req = {}
      for k, v in pairs(opts or {}) do req[k] = v end
      req.method, req.url = "GET", url
      return timed("http.get", http.request, req)
    end,
    request = function(req)
      if type(req) ~= "table" then error("vu.http.request: expected a table", 2) end
      local method = type(req.method) == "string" and req.method:lower() or "get"
      return timed("http." .. method, http.request, req)
    end,
  }
end

local function new_vu(st, id, handle, client)
  local cfg = st.cfg
  local vu = { id = id, data = {}, value = string.rep("x", cfg.value_size), calls = 0, failed = 0,
    pace = new_pace() }
  st.keygen = st.keygen or M.keygen(cfg) -- one for all VUs: "sequential" is global
  local keygen = st.keygen
  vu.key = function() return "key:" .. keygen() end
  vu.client = timed_proxy(st, vu, client, true)
  vu.cache = timed_proxy(st, vu, handle, false)
  vu.http = timed_http(st, vu)
  return vu
end

local function run_iteration(st, vu, n)
  local ok, err = pcall(st.cfg.workload, vu, n)
  if st.counting then st.iterations = st.iterations + 1 end
  if not ok then
    st.error({ code = "SCRIPT_ERROR" })
    vu.calls, vu.failed = vu.calls + 1, vu.failed + 1
    if not st.script_error then
      st.script_error = tostring(err)
      kura.log.warn("loadtest: the workload raised: %s", st.script_error)
    end
  end
end

local function closed_script_vu(st, vu)
  local n, t = 0, now()
  while not st.stop do
    vu.calls, vu.failed = 0, 0
    pace_start(vu.pace, t)
    for _ = 1, SCRIPT_YIELD do
      if st.left <= 0 or now() >= st.t_end then st.stop = true break end
      if st.cfg.stages and not vu_active(st, vu.id) then break end -- a stage ramps down
      st.left = st.left - 1
      n = n + 1
      run_iteration(st, vu, n)
      if st.stop then break end
    end
    local t1 = now()
    pace_end(st, vu.pace, t1 - t, vu.calls, vu.failed)
    t = t1
    sleep(0)
    if st.cfg.stages and not vu_active(st, vu.id) then
      if not wait_active(st, vu.id) then return end
      t = now()
    end
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

-- An error of the run itself (not of a call), shaped like the client's.
local run_error_mt = { __tostring = function(e) return e.code .. ": " .. e.message end }
local function run_error(code, message)
  return setmetatable({ code = code, message = message, retryable = false }, run_error_mt)
end

-- The backend's name as the client tells it: "kura.client(redis): 0x..".
local function backend_name(c)
  return tostring(c):match("^kura%.client%(([^)]*)%)") or "custom client"
end

-- "redis://user:secret@host" -> "redis://user:***@host", "redis://secret@h"
-- -> "redis://***@h": a report never holds a password. The user part ends
-- at the last '@', as the Redis URL parser reads it.
function M.redact(url)
  local scheme, rest = url:match("^(%a[%w+.-]*://)(.*)$")
  if not scheme then return url end
  local at = rest:match("^.*()@")
  if not at then return url end
  local user = rest:sub(1, at - 1):match("^([^:]*):")
  return scheme .. (user and (user .. ":***") or "***") .. rest:sub(at)
end

-- The clients of the run: the one given, or `connections` new ones.
local function make_clients(cfg)
  if cfg.client then return { cfg.client }, backend_name(cfg.client) end
  local clients = {}
  for i = 1, cfg.connections do
    local c, err
    if cfg.backend or cfg.connections > 1 then
      c, err = kura.client{ backend = cfg.backend }
    else
      c, err = kura.client()
    end
    if not c then return nil, err end
    clients[i] = c
    if i == 1 and cfg.connections > 1 and backend_name(c) == "memory" then
      return nil, run_error("INVALID_ARGUMENT_ERROR",
        "connections: the memory backend has none (it runs inside this process)")
    end
  end
  local name = cfg.backend and M.redact(cfg.backend) or backend_name(clients[1])
  return clients, name
end

local function setup(cfg, clients)
  local c = clients[1]
  if c.create_cache then
    -- Momento's HTTP API cannot create caches: there the cache must exist.
    local ok, err = c:create_cache(cfg.cache)
    if ok == nil and err.code ~= "UNSUPPORTED_OPERATION_ERROR" then return nil, err end
  end
  local handles = {}
  for i, client in ipairs(clients) do handles[i] = client:cache(cfg.cache) end
  if cfg.prefill ~= false and has_reads(cfg) then
    local ok, err = prefill(cfg, handles[1])
    if not ok then return nil, err end
  end
  return handles
end

-- The VU bodies for this configuration; VU id uses handles[id mod #handles].
local function vu_body(st, handles, clients)
  local cfg = st.cfg
  local function pick(list, id) return list[(id - 1) % #list + 1] end
  if cfg.workload then
    return function(id)
      local vu = new_vu(st, id, pick(handles, id), pick(clients, id))
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
  local plan = mix_plan(st, handles[1])
  if not cfg.rate then
    return function(id) closed_mix_vu(st, plan, pick(handles, id), id) end
  end
  return function(id)
    local handle = pick(handles, id)
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
      if cfg.stages and not cfg.rate and not vu_active(st, id) and not wait_active(st, id) then
        return
      end
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

-- Consecutive seconds of the series with errors: where the outage was. A
-- second with no operation at all next to them belongs to it too (the VUs
-- were all waiting: no call ended, so none failed in that second).
local function error_periods(series)
  local out, cur, prev_t = {}, nil, 0
  for _, p in ipairs(series) do
    if p.errors > 0 or (cur and p.ops == 0) then
      if not cur then
        cur = { from = prev_t, errors = 0, ops = 0 }
        out[#out + 1] = cur
      end
      cur.to, cur.errors, cur.ops = p.t, cur.errors + p.errors, cur.ops + p.ops
    else
      cur = nil
    end
    prev_t = p.t
  end
  return out
end

-- The share of the load that failed (see the header).
local function error_percent(st, r)
  if st.cfg.rate then
    local per_iteration = r.iterations > 0 and r.ops / r.iterations or 1
    local missed = st.missed * per_iteration
    local due = r.ops + missed
    return due > 0 and 100 * (st.nerrors + missed) / due or 0
  end
  return st.busy_time > 0 and math.min(100, 100 * st.error_time / st.busy_time) or 0
end

local function config_of(cfg, backend)
  local c = { backend = backend, connections = cfg.client and 1 or cfg.connections,
    concurrency = cfg.concurrency, rate = cfg.rate, duration = cfg.duration ~= huge
    and cfg.duration or nil, ops = cfg.ops, keyspace = cfg.keyspace,
    distribution = cfg.distribution, zipf_alpha = cfg.distribution == "zipf" and cfg.zipf_alpha or nil,
    value_size = cfg.value_size, warmup = cfg.warmup, ramp_up = cfg.ramp_up, ttl = cfg.ttl,
    spin = cfg.rate and cfg.spin or nil, cache = cfg.cache, prefill = cfg.prefill ~= false,
    mix = cfg.names and {} or nil, scripted = cfg.workload ~= nil or cfg.script ~= nil,
    script = cfg.script, thresholds = {},
    stages = cfg.stage_list }
  for i, name in ipairs(cfg.names or {}) do c.mix[name] = cfg.weights[i] end
  for i, s in ipairs(cfg.thresholds) do c.thresholds[i] = s.expr end
  return c
end

-- A histogram's latency figures with the percentiles `extra` the
-- thresholds read.
local function figures_of(h, extra)
  local l = latency_of(h)
  if #extra > 0 then
    local v = h:percentiles(extra)
    for i, p in ipairs(extra) do l[threshold.percentile_field(p)] = v[i] end
  end
  return l
end

-- r.latency, r.distribution, r.overall and r.ops from named histograms.
local function add_latency_of(r, named, extra)
  local all = kura.histogram()
  for _, e in ipairs(named) do
    if e.h:count() > 0 then
      r.latency[e.name] = figures_of(e.h, extra)
      r.distribution[e.name] = distribution_of(e.h)
      r.ops = r.ops + e.h:count()
      all:merge(e.h)
    end
  end
  r.overall = figures_of(all, extra)
end

-- Latency figures and the percentiles the thresholds read.
local function add_latency(r, st)
  local named = {}
  for i, s in ipairs(st.stats) do named[i] = { name = s.name, h = s.total } end
  add_latency_of(r, named, threshold.percentiles(st.cfg.thresholds))
end

local function build_report(st, backend)
  local cfg, t = st.cfg, st.t_stop
  local r = {
    ops = 0, iterations = st.iterations, errors = st.errors, error_count = st.nerrors,
    latency = {}, distribution = {}, series = st.series, interrupted = st.interrupted,
    seconds = t - st.t0, title = cfg.title, cpu_seconds = st.cpu, backend = backend,
    version = kura.version, date = os.date("!%Y-%m-%dT%H:%M:%SZ", st.wall0),
    config = config_of(cfg, backend),
    units = { latency = "s", seconds = "s", cpu_seconds = "s", throughput = "ops/s",
      error_percent = "%", series_t = "s" },
  }
  add_latency(r, st)
  r.cache = cache_figures(st.cache0, cache_stats(st))
  if r.cache then r.units.hit_ratio = "fraction" end
  if not cfg.workload then r.iterations = r.ops end
  r.throughput = r.seconds > 0 and r.ops / r.seconds or 0
  r.missed = cfg.rate and floor(st.missed * (r.iterations > 0 and r.ops / r.iterations or 1) + 0.5) or 0
  r.error_percent = error_percent(st, r)
  r.error_periods = error_periods(st.series)
  if cfg.thread then -- a thread of a threaded run: its parent merges these
    r.dumps = {}
    for _, stat in ipairs(st.stats) do r.dumps[stat.name] = stat.total:dump() end
  end
  local results, ok = threshold.evaluate(cfg.thresholds, r)
  for i, res in ipairs(results) do res.default = cfg.thresholds[i].default or nil end
  r.thresholds, r.ok = results, ok
  return r
end

local function write_file(path, text)
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then return nil, path .. ": " .. tostring(werr or cerr) end
  return true
end

-- Prints and writes the report; a file that cannot be written is logged
-- and named in report.write_error.
local function emit(cfg, report)
  if cfg.print_report then io.stdout:write(M.text(report)) end
  for _, f in ipairs({ { cfg.output, function() return kura.json.encode(report) .. "\n" end },
    { cfg.html, function() return M.html(report) end } }) do
    if f[1] then
      local ok, err = write_file(f[1], f[2]())
      if not ok then
        kura.log.error("loadtest: cannot write the report: %s", err)
        report.write_error = err
      end
    end
  end
end

local function watch_interrupt(st)
  if not kura.on_signal then return nil end
  return kura.on_signal("int", function()
    st.stop, st.interrupted = true, true
  end)
end

-- The timed part: timers and the Ctrl-C watcher live only inside it, and
-- are stopped however it ends.
local function drive(st, body)
  local cfg = st.cfg
  local sig = watch_interrupt(st)
  local warm = (not st.counting) and kura.after(cfg.warmup, function() start_counting(st) end)
  local ticker = kura.every(1, function() on_tick(st) end)
  -- The end of a timed run, seen even by VUs whose calls wait on a network.
  local ender = st.t_end < huge and kura.after(math.max(0, st.t_end - now()), function() st.stop = true end)
  local ok, err = pcall(function()
    for _, t in ipairs(start_vus(st, body)) do t:join() end
  end)
  st.stop = true
  st.t_stop = now()
  st.cpu = os.clock() - st.cpu0
  ticker:stop()
  if ender then ender:stop() end
  if warm then warm:stop() end
  if sig then sig:stop() end
  if not ok then error(err, 0) end
end

-- --- threads ----------------------------------------------------------------------------

-- A script's workload(vu, n) and its optional setup(thread), teardown(thread).
local function load_script(path)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then error("loadtest.run: script: " .. err, 0) end
  chunk()
  if type(env.workload) ~= "function" then
    error("loadtest.run: script: " .. path .. " defines no function workload(vu, n)", 0)
  end
  return env
end

-- What each thread runs: its share of the run, then its report (JSON) and
-- its histograms (h:dump()) for the parent to merge.
local THREAD_MAIN = [=[
function main(options, index)
  local loadtest = require("kura.loadtest")
  local o = kura.json.decode(options)
  o.thread = index
  local r = assert(loadtest.run(o))
  local dumps = r.dumps
  r.dumps = nil
  local out = { kura.json.encode(r) }
  for name, d in pairs(dumps) do out[#out + 1] = name; out[#out + 1] = d end
  return table.unpack(out)
end
]=]

-- n split in `parts` shares as even as integers allow (share i of them).
local function share(n, parts, i)
  if not n then return nil end
  local base = n // parts
  return base + ((i <= n % parts) and 1 or 0)
end

-- The options of thread i: its share of the users, connections, rate and
-- operations; the parent prints, writes and judges.
local function thread_options(o, cfg, i, n)
  local t = {}
  for k, v in pairs(o) do t[k] = v end
  t.threads, t.progress, t.print_report, t.output, t.html, t.thresholds = nil, false, false, nil, nil, nil
  t.prefill = false -- the parent filled the keys once
  t.concurrency = math.max(1, share(math.tointeger(o.concurrency or 50), n, i))
  t.connections = o.connections and math.max(1, share(o.connections, n, i)) or nil
  t.ops = o.ops and math.max(1, share(math.tointeger(o.ops), n, i)) or nil
  t.rate = o.rate and o.rate / n or nil
  if o.stages then
    t.stages = {}
    for j, st in ipairs(o.stages) do t.stages[j] = { duration = st.duration, target = st.target / n } end
  end
  return t
end

-- The thread reports in one: counts add, histograms merge exactly, the series
-- add second by second.
local function merge_reports(cfg, parts, hists, merged)
  local r = parts[1]
  r.threads = {}
  local ops, iters, errs, nerr, missed, cpu, secs = 0, 0, {}, 0, 0, 0, 0
  local series = {}
  for i, p in ipairs(parts) do
    r.threads[i] = { ops = p.ops, throughput = p.throughput, error_count = p.error_count,
      seconds = p.seconds, iterations = p.iterations }
    ops, iters, nerr = ops + p.ops, iters + p.iterations, nerr + p.error_count
    -- os.clock() is the process's CPU: each thread's figure holds the others'
    missed, cpu, secs = missed + (p.missed or 0), math.max(cpu, p.cpu_seconds or 0), math.max(secs, p.seconds)
    for code, k in pairs(p.errors) do errs[code] = (errs[code] or 0) + k end
    for j, pt in ipairs(p.series or {}) do
      local s = series[j] or { t = pt.t, ops = 0, errors = 0, throughput = 0, latency = {} }
      s.ops, s.errors, s.throughput = s.ops + pt.ops, s.errors + pt.errors, s.throughput + pt.throughput
      if merged and merged[j] then -- a second's latencies: its histograms merged (collect_seconds)
        s.latency = merged[j]
      else -- without them: the worst thread's
        for name, l in pairs(pt.latency or {}) do
          local m = s.latency[name]
          if not m then s.latency[name] = l
          else for f, v in pairs(l) do if type(v) == "number" and v > (m[f] or -1) then m[f] = v end end end
        end
      end
      series[j] = s
    end
  end
  r.ops, r.iterations, r.errors, r.error_count, r.missed = ops, iters, errs, nerr, missed
  r.cpu_seconds, r.seconds, r.series = cpu, secs, series
  r.throughput = secs > 0 and ops / secs or 0
  local fail_share = 0
  for _, p in ipairs(parts) do fail_share = fail_share + (p.error_percent or 0) * p.ops end
  r.error_percent = ops > 0 and fail_share / ops or 0
  r.error_periods = error_periods(series)
  return r
end

local function run_threads(o, cfg)
  local n = cfg.threads == "auto" and kura.thread.cores() or cfg.threads
  local clients, backend = make_clients(cfg)
  if not clients then return nil, backend end
  local handles, err = setup(cfg, clients) -- the cache and its keys, once
  if not handles then return nil, err end
  local st = { cfg = cfg, clients = clients }
  local cache0 = cache_stats(st)
  if cfg.progress then
    local c = config_of(cfg, backend)
    c.threads = n
    io.stderr:write(render.header{ backend = backend, version = kura.version, config = c })
  end
  local threads, wall0, t0 = {}, os.time(), now()
  local key, live = string.format("%x-%x", os.time(), math.random(0, 0x7fffffff)), nil
  for i = 1, n do
    local to = thread_options(o, cfg, i, n)
    to.progress_key = cfg.progress and key or nil
    to.series_key = key
    threads[i] = kura.thread.run(THREAD_MAIN, kura.json.encode(to), i)
  end
  local pc = progress_client()
  local col = series_collector(pc, key, n)
  local gather = col and kura.every(1, function() collect_seconds(col) end)
  if cfg.progress then -- the whole run's line: every thread's second, added up
    local c, last_ops, last_t = pc, 0, now()
    live = c and kura.every(1, function()
      local ops = tonumber(c:get(PROGRESS_CACHE, key .. ":ops")) or 0
      local errs = tonumber(c:get(PROGRESS_CACHE, key .. ":errors")) or 0
      local t = now()
      io.stderr:write(string.format("\r[%4ds] %10.0f ops/s  errors %d  (%d threads)\27[K",
        floor(t - t0 + 0.5), (ops - last_ops) / math.max(t - last_t, 1e-9), errs, n))
      last_ops, last_t = ops, t
    end)
  end
  local parts, hists, failed = {}, {}, nil
  for i, t in ipairs(threads) do
    local res = table.pack(t:join())
    if res[1] == nil then
      failed = failed or tostring(res[2])
    else
      parts[i] = kura.json.decode(res[1])
      for j = 2, res.n, 2 do
        local h = hists[res[j]] or kura.histogram()
        hists[res[j]] = h:merge(res[j + 1])
      end
    end
  end
  if live then live:stop() end
  if gather then gather:stop() end
  if cfg.progress then io.stderr:write("\n") end
  collect_seconds(col, true) -- the threads' seconds left in the progress store (also on failure)
  if failed then return nil, run_error("THREAD_ERROR", failed) end
  local r = merge_reports(cfg, parts, hists, col and col.merged)
  r.latency, r.distribution = {}, {}
  local named = {}
  for name, h in pairs(hists) do named[#named + 1] = { name = name, h = h } end
  table.sort(named, function(a, b) return a.name < b.name end)
  local ops = r.ops
  r.ops = 0
  add_latency_of(r, named, threshold.percentiles(cfg.thresholds))
  r.ops = ops -- the threads' own count (equal: every call is recorded)
  r.backend, r.date = backend, os.date("!%Y-%m-%dT%H:%M:%SZ", wall0)
  r.config = config_of(cfg, backend)
  r.config.threads = n
  -- the store's figures from here; the gets' hits and misses from the threads' clients
  local hits, misses = 0, 0
  for _, p in ipairs(parts) do
    if p.cache then hits, misses = hits + p.cache.hits, misses + p.cache.misses end
  end
  r.cache = cache_figures(cache0, cache_stats(st))
  if r.cache then
    r.cache.hits, r.cache.misses = hits, misses
    r.cache.hit_ratio = hits + misses > 0 and hits / (hits + misses) or nil
    r.units.hit_ratio = "fraction"
  end
  local results, ok = threshold.evaluate(cfg.thresholds, r)
  for i, res in ipairs(results) do res.default = cfg.thresholds[i].default or nil end
  r.thresholds, r.ok = results, ok
  emit(cfg, r)
  return r
end

local run_one -- below: one thread's run

-- run{...} -> report, or nil, err when the clients or the cache cannot be
-- set up. Raises on a bad option (see check_options).
function M.run(o)
  local cfg, why = M.check_options(o)
  if not cfg then error("loadtest.run: " .. why, 2) end
  if cfg.threads and cfg.threads ~= 1 then
    if not kura.thread then error("loadtest.run: threads: this runtime has no threads (the sandbox)", 2) end
    return run_threads(o, cfg)
  end
  local script
  if cfg.script then
    script = load_script(cfg.script)
    cfg.workload = script.workload
    if script.setup then script.setup(cfg.thread or 1) end
  end
  local report, rerr = run_one(cfg)
  if script and script.teardown then script.teardown(cfg.thread or 1) end
  return report, rerr
end

run_one = function(cfg)
  local clients, backend = make_clients(cfg)
  if not clients then return nil, backend end
  local handles, err = setup(cfg, clients)
  if not handles then return nil, err end
  local st = new_state(cfg)
  st.clients = clients
  local body = vu_body(st, handles, clients)
  st.begin, st.wall0 = now(), os.time()
  st.t0, st.left = st.begin, huge
  st.t_end = st.begin + cfg.warmup + cfg.duration
  if st.counting then start_counting(st) end
  if cfg.progress then -- what runs, while it runs; the text report repeats it
    io.stderr:write(render.header{ backend = backend, version = kura.version,
      config = config_of(cfg, backend) })
  end
  st.cpu0 = os.clock()
  drive(st, body)
  if not st.counting then start_counting(st) end -- interrupted during warm-up
  close_interval(st, st.t_stop)
  if cfg.progress then io.stderr:write("\n") end
  local report = build_report(st, backend)
  emit(cfg, report)
  return report
end

-- The report as text and as an HTML page (kura.report renders both).
function M.text(r) return render.text(r) end
function M.html(r) return render.html(r) end

return M
