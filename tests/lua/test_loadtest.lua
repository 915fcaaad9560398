-- kura.histogram and kura.loadtest: the histogram from Lua, the open-loop
-- correction (a 1 s stall at 1,000 ops/s shows in p99), mix ratios, key
-- distributions, errors by code, scripted workloads timed by name, the
-- warm-up, Ctrl-C, and the text, JSON and HTML reports.
local t = require("kura.test")
local loadtest = require("kura.loadtest")

local function tmpfile()
  local name = os.tmpname()
  return name
end

local function read_all(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  os.remove(path)
  return s
end

-- A client double that answers from a table, records the keys it was
-- asked for, and fails every `fail_every`-th get with `fail_code`.
local function fake_client(o)
  o = o or {}
  local store, seen, calls = {}, {}, 0
  local handle = {}
  function handle:get(key)
    calls = calls + 1
    seen[#seen + 1] = key
    if o.fail_every and calls % o.fail_every == 0 then
      return nil, { code = o.fail_code, message = "injected" }
    end
    return store[key]
  end
  function handle:set(key, value) store[key] = value; return true end
  function handle:delete(key) store[key] = nil; return true end
  local c = { seen = seen }
  function c:create_cache() return true end
  function c:cache() return handle end
  return c
end

t.test("histogram from Lua", function()
  local h = kura.histogram()
  for i = 1, 1000 do h:record(i / 1e6) end -- 1 us .. 1 ms
  t.eq(h:count(), 1000)
  t.near(h:percentile(50), 500e-6, 500e-6 * 0.001)
  t.near(h:percentile(99), 990e-6, 990e-6 * 0.001)
  t.near(h:mean(), 500.5e-6, 1e-12)
  t.eq(h:max(), 1e-3)
  t.eq(h:min(), 1e-6)
  local ps = h:percentiles({ 50, 90, 99.9 })
  t.eq(#ps, 3)
  t.eq(ps[2], h:percentile(90))
  local g = kura.histogram()
  g:record(2.0)
  h:merge(g)
  t.eq(h:count(), 1001)
  t.eq(h:max(), 2.0)
  t.eq(h:percentile(100), 2.0)
  h:reset()
  t.eq(h:count(), 0)
  t.eq(h:percentile(99), 0)
  -- h:time(fn, ...) returns fn's results and records one value
  local a, b = h:time(function(x, y) return x + y, "two" end, 1, 2)
  t.eq(a, 3)
  t.eq(b, "two")
  t.eq(h:count(), 1)
  -- h:time across a suspension: the sleep is timed
  h:reset()
  h:time(kura.sleep, 0.02)
  t.ok(h:max() >= 0.019, "sleep timed: " .. h:max())
  t.raises(function() h:record(-1) end, "seconds")
  t.raises(function() h:percentile(101) end, "percentile")
end)

t.test("open loop: a 1 s stall at 1,000 ops/s shows in p99", function()
  local c = kura.client()
  local function stall_once(vu, n)
    if vu.id == 1 and n == 200 then kura.sleep(1) end
    vu.cache:get(vu.key())
  end
  local r = assert(loadtest.run{ client = c, cache = "lt-stall", rate = 1000, concurrency = 2,
    duration = 2, workload = stall_once, progress = false })
  t.ok(r.latency.get.p99 > 0.5, "open loop p99 " .. r.latency.get.p99)
  t.ok(r.latency.get.max >= 0.9, "open loop max " .. r.latency.get.max)
  -- ~2,000 iterations were due in 2 s: the stalled ones still ran
  t.ok(r.iterations >= 1800 and r.iterations <= 2100, string.format(
    "iterations %d in %.3f s, interrupted %s", r.iterations, r.seconds, r.interrupted))
  -- the same stall in a closed loop hides: no call waited
  local closed = assert(loadtest.run{ client = c, cache = "lt-stall", concurrency = 2,
    ops = 2000, workload = stall_once, progress = false })
  t.ok(closed.latency.get.p99 < 0.1, "closed loop p99 " .. closed.latency.get.p99)
end)

t.test("mix ratios and exact op count", function()
  local r = assert(loadtest.run{ cache = "lt-mix", ops = 20000, concurrency = 4,
    mix = { get = 0.7, set = 0.2, delete = 0.1 }, keyspace = 100, progress = false })
  t.eq(r.ops, 20000)
  t.eq(r.error_count, 0)
  t.near(r.latency.get.count / r.ops, 0.7, 0.02)
  t.near(r.latency.set.count / r.ops, 0.2, 0.02)
  t.near(r.latency.delete.count / r.ops, 0.1, 0.02)
  for _, op in ipairs({ "get", "set", "delete" }) do
    local l = r.latency[op]
    t.ok(l.min <= l.p50 and l.p50 <= l.p90 and l.p90 <= l.p99 and l.p99 <= l.p999
      and l.p999 <= l.max, op .. " percentiles ordered")
  end
  t.ok(r.throughput > 0)
end)

t.test("the report's cache figures: hit ratio and the store's evictions, from c:stats", function()
  -- 20,000 keys of 1 kB into a 2 MB store: the gets miss what was evicted
  local store = string.format("lt-evict-%08x", math.random(0, 0x7fffffff))
  local c = assert(kura.client{ backend = "memory", store = store, max_memory = 2 * 1024 * 1024 })
  local r = assert(loadtest.run{ client = c, cache = "lt-evict", ops = 30000, concurrency = 4,
    mix = { get = 0.5, set = 0.5 }, keyspace = 20000, value_size = 1000, progress = false })
  local k = r.cache
  t.ok(k, "a kura client gives the report its cache figures")
  t.eq(k.hits + k.misses, r.latency.get.count) -- the prefill's sets are not in it
  t.ok(k.misses > 0 and k.hits > 0, string.format("hits %d misses %d", k.hits, k.misses))
  t.near(k.hit_ratio, k.hits / (k.hits + k.misses), 1e-12)
  t.ok(k.evictions > 0, "evictions " .. tostring(k.evictions))
  t.eq(k.expirations, 0)
  local s = c:stats("lt-evict")
  t.eq(k.items, s.items)
  t.ok(s.evictions >= k.evictions, "the run's evictions are a part of the cache's")
  t.eq(r.units.hit_ratio, "fraction")
  local text = loadtest.text(r)
  t.ok(text:find("cache: hit ratio %d+%.%d+%% %(") and text:find("evictions"), text)
  t.ok(loadtest.html(r):find("Cache: hit ratio", 1, true), "the HTML page shows it")
  t.ok(loadtest.html(r):find("<td>get</td><td>%d%d?,%d%d%d</td>"),
       "the latency table's counts have thousands separators")
  -- a client that is not kura's keeps no statistics: no figures, no error
  local handle = { get = function() return "v" end }
  local fake = { create_cache = function() return true end, cache = function() return handle end }
  local f = assert(loadtest.run{ client = fake, ops = 10, mix = { get = 1 }, prefill = false,
    progress = false })
  t.is_nil(f.cache)
  t.ok(not loadtest.text(f):find("hit ratio"), "no cache line without figures")
end)

t.test("threads: a mix split over 2 threads, counts exact, histograms merged", function()
  local r = assert(loadtest.run{ cache = "lt-threads", ops = 20000, concurrency = 8, threads = 2,
    mix = { get = 0.9, set = 0.1 }, keyspace = 100, progress = false })
  t.eq(r.ops, 20000)
  t.eq(r.latency.get.count + r.latency.set.count, 20000)
  t.eq(#r.threads, 2)
  t.eq(r.threads[1].ops + r.threads[2].ops, 20000)
  t.eq(r.threads[1].ops, 10000)
  t.eq(r.config.threads, 2)
  t.ok(r.cache and r.cache.hits + r.cache.misses == r.latency.get.count, "hits and misses of both")
  t.ok(loadtest.text(r):find("2 threads", 1, true), "the header says so")
  local l = r.latency.get
  t.ok(l.min <= l.p50 and l.p50 <= l.p99 and l.p99 <= l.max, "percentiles ordered")
  t.raises(function() loadtest.run{ threads = 0 } end, "threads")
  t.raises(function() loadtest.run{ threads = 2, workload = function() end } end, "threads")
  t.raises(function() loadtest.run{ threads = "many" } end, "threads")
end)

t.test("threads: a scripted workload in 2 threads, iterations counted per thread add up", function()
  local here = debug and debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  local script = here .. "/loadtest_script.lua"
  local c = kura.client()
  c:create_cache("lt-script")
  for i = 1, 2 do c:delete("lt-script", "iterations:" .. i); c:delete("lt-script", "done:" .. i) end
  local r = assert(loadtest.run{ cache = "lt-script", script = script, threads = 2, ops = 3000,
    concurrency = 4, progress = false })
  local a = tonumber(c:get("lt-script", "iterations:1"))
  local b = tonumber(c:get("lt-script", "iterations:2"))
  t.ok(a and a > 0 and b and b > 0, string.format("both threads ran: %s, %s", a, b))
  t.eq(a + b, r.iterations)
  t.eq(r.iterations, 3000)
  t.eq(c:get("lt-script", "done:1"), "yes")
  t.eq(c:get("lt-script", "done:2"), "yes")
  -- the same script in this runtime alone
  local one = assert(loadtest.run{ cache = "lt-script", script = script, ops = 100,
    concurrency = 2, progress = false })
  t.eq(one.iterations, 100)
  t.raises(function() loadtest.run{ script = script, mix = { get = 1 } } end, "script")
end)

t.test("threads: a second's latencies are the threads' histograms merged, not the worst thread's", function()
  local here = debug and debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  local script = here .. "/loadtest_series_script.lua"
  kura.client():create_cache("lt-series")
  local r = assert(loadtest.run{ cache = "lt-series", script = script, threads = 2, duration = 2.5,
    concurrency = 2, progress = false })
  t.eq(r.error_count, 0) -- the slow sets are stored, not refused
  t.ok(r.threads[2].ops > 0 and r.threads[1].ops > 10 * r.threads[2].ops,
    string.format("ops: thread 1 %d, thread 2 %d", r.threads[1].ops, r.threads[2].ops))
  -- thread 1 makes thousands of fast sets a second, thread 2 a few hundred slow ones
  local seconds = 0
  for _, p in ipairs(r.series) do
    local l = p.latency.set
    if l and p.ops >= 100 then
      seconds = seconds + 1
      t.ok(l.p50 < 0.00003, string.format("second %.1f: p50 %.6f s is thread 1's", p.t, l.p50))
      t.ok(l.max > 4 * l.p50, string.format("second %.1f: max %.6f s has thread 2's", p.t, l.max))
      t.eq(l.count, p.ops)
    end
  end
  t.ok(seconds >= 2, "seconds with both threads' sets: " .. seconds)
  t.ok(r.latency.set.p50 < 0.00003, "the run's p50 " .. r.latency.set.p50)
end)

t.test("threads: a thread that fails makes the run return THREAD_ERROR, after the others end", function()
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write([[
function setup(thread) if thread == 2 then error("thread 2's setup fails on purpose") end end
function workload(vu, n) vu.cache:set("k" .. n % 10, "v") end
]])
  f:close()
  kura.client():create_cache("lt-fail")
  local t0 = kura.now()
  local r, err = loadtest.run{ cache = "lt-fail", script = script, threads = 2, duration = 1,
    concurrency = 2, progress = false }
  os.remove(script)
  t.eq(r, nil)
  t.eq(err and err.code, "THREAD_ERROR")
  t.ok(err and tostring(err.message):find("fails on purpose", 1, true), tostring(err and err.message))
  t.ok(kura.now() - t0 >= 0.9, "thread 1 ran its second before the run returned")
end)

t.test("exact op count when calls suspend (a remote backend)", function()
  -- the first VU out of operations used to stop the others mid-batch, and
  -- the operations they had claimed were never made
  local handle, calls = {}, 0
  function handle:get() calls = calls + 1; kura.sleep(0); return "v" end
  function handle:set() calls = calls + 1; kura.sleep(0); return true end
  local c = { create_cache = function() return true end, cache = function() return handle end }
  for _, mix in ipairs({ { get = 1 }, { get = 1, set = 1 } }) do
    calls = 0
    local r = assert(loadtest.run{ client = c, ops = 1000, concurrency = 7, mix = mix,
      prefill = false, progress = false })
    t.eq(r.ops, 1000)
    t.eq(calls, 1000)
  end
end)

t.test("increment and ttl operations in a mix", function()
  local r = assert(loadtest.run{ cache = "lt-mix2", ops = 3000, concurrency = 3,
    mix = { increment = 1, update_ttl = 1, key_exists = 1 }, keyspace = 50, progress = false })
  t.eq(r.error_count, 0)
  t.ok(r.latency.increment.count > 800)
  t.ok(r.latency.update_ttl.count > 800)
  t.raises(function() loadtest.run{ ops = 1, mix = { frobnicate = 1 } } end, "unknown operation")
end)

t.test("zipf skew", function()
  local n, draws = 1000, 100000
  local gen, counts = loadtest.keygen{ keyspace = n, distribution = "zipf", zipf_alpha = 1 }, {}
  for _ = 1, draws do
    local k = gen()
    t.ok(k >= 1 and k <= n)
    counts[k] = (counts[k] or 0) + 1
  end
  local harmonic = 0
  for k = 1, n do harmonic = harmonic + 1 / k end
  t.near(counts[1] / draws, 1 / harmonic, 0.01)
  t.near(counts[2] / draws, 0.5 / harmonic, 0.01)
  t.ok(counts[1] > counts[2] and counts[2] > (counts[10] or 0))
  -- the top 10% of the keys take far more than 10% of the draws
  local top = 0
  for k = 1, n // 10 do top = top + (counts[k] or 0) end
  t.ok(top / draws > 0.6, "top 10% share " .. top / draws)
end)

t.test("gaussian centre and sequential order", function()
  local n, draws = 900, 60000
  local gen, sum, middle = loadtest.keygen{ keyspace = n, distribution = "gaussian" }, 0, 0
  for _ = 1, draws do
    local k = gen()
    t.ok(k >= 1 and k <= n)
    sum = sum + k
    if math.abs(k - (n + 1) / 2) <= n / 6 then middle = middle + 1 end
  end
  t.near(sum / draws, (n + 1) / 2, n * 0.01)
  t.near(middle / draws, 0.683, 0.02)
  -- sequential through a run: the keys come in order, wrapping
  local c = fake_client()
  local r = assert(loadtest.run{ client = c, ops = 12, concurrency = 1, mix = { get = 1 },
    keyspace = 5, distribution = "sequential", prefill = false, progress = false })
  t.eq(r.ops, 12)
  t.eq(c.seen, { "key:1", "key:2", "key:3", "key:4", "key:5", "key:1", "key:2", "key:3",
    "key:4", "key:5", "key:1", "key:2" })
end)

t.test("errors by code", function()
  local c = fake_client{ fail_every = 10, fail_code = "TIMEOUT_ERROR" }
  local r = assert(loadtest.run{ client = c, ops = 1000, concurrency = 2, mix = { get = 1 },
    prefill = false, progress = false })
  t.eq(r.ops, 1000)
  t.eq(r.errors, { TIMEOUT_ERROR = 100 })
  t.eq(r.error_count, 100)
  local text = loadtest.text(r)
  t.ok(text:find("TIMEOUT_ERROR: 100 (10.00%)", 1, true), text)
end)

t.test("scripted workload: calls timed by name, errors, script errors", function()
  local c = kura.client()
  local r = assert(loadtest.run{ client = c, cache = "lt-script", ops = 300, concurrency = 3,
    progress = false, workload = function(vu, n)
      local key = "user:" .. vu.id .. ":" .. n
      vu.cache:set(key, vu.value)
      t.eq(vu.cache:get(key), vu.value)
      vu.client:increment("lt-script", "logins", 1)
      vu.client:get("no-such-cache", "k") -- NOT_FOUND_ERROR
      vu.data.n = (vu.data.n or 0) + 1
      if n == 100 and vu.id == 1 then error("boom") end
    end })
  t.eq(r.iterations, 300)
  t.eq(r.latency.set.count, 300)
  t.eq(r.latency.increment.count, 300)
  t.eq(r.latency.get.count, 600)
  t.eq(r.errors.NOT_FOUND_ERROR, 300)
  t.eq(r.errors.SCRIPT_ERROR, 1)
  t.eq(c:get("lt-script", "logins"), "300")
end)

t.test("warm-up is not counted", function()
  local calls = 0
  local r = assert(loadtest.run{ cache = "lt-warm", warmup = 0.3, duration = 0.3, concurrency = 2,
    progress = false, workload = function(vu)
      calls = calls + 1
      vu.cache:get("k")
      kura.sleep(0.01)
    end })
  t.ok(r.iterations > 0)
  t.ok(calls > r.iterations + 10, string.format("calls %d, counted %d", calls, r.iterations))
  -- an iteration that straddles the end of the warm-up may count on one side only
  t.ok(math.abs(r.latency.get.count - r.iterations) <= 2)
end)

t.test("kura.isatty and kura.on_signal", function()
  t.eq(type(kura.isatty(2)), "boolean")
  t.eq(kura.isatty(99), false)
  t.raises(function() kura.isatty(-1) end, "file descriptor")
  t.raises(function() kura.on_signal("nosuch", print) end, "unknown signal")
  local got = {}
  local w = kura.on_signal("usr1", function(name) got[#got + 1] = name end)
  os.execute("(sleep 0.05; kill -USR1 $PPID) &")
  local t0 = kura.now()
  while #got == 0 and kura.now() - t0 < 10 do kura.sleep(0.01) end
  w:stop()
  w:stop() -- twice is harmless
  t.eq(got, { "usr1" })
end)

t.test("Ctrl-C ends the run with a report", function()
  -- The first iteration (the handler is installed by then) asks for a SIGINT
  -- from a grandchild: system() ignores SIGINT while its child runs.
  local asked = false
  local r = assert(loadtest.run{ cache = "lt-int", duration = 60, concurrency = 4,
    progress = false, workload = function(vu)
      if not asked then
        asked = true
        os.execute("(sleep 0.2; kill -INT $PPID) &")
      end
      vu.cache:get("k")
    end })
  t.eq(r.interrupted, true)
  t.ok(r.ops > 0)
  t.ok(r.seconds < 30)
  t.ok(loadtest.text(r):find("(interrupted)", 1, true))
end)

t.test("JSON output decodes with the report's fields", function()
  local path = tmpfile()
  local r = assert(loadtest.run{ cache = "lt-json", duration = 1.2, concurrency = 4,
    mix = { get = 0.5, set = 0.5 }, output = path, progress = false })
  local j = assert(kura.json.decode(read_all(path)))
  t.eq(j.ops, r.ops)
  t.ok(j.throughput > 0)
  t.eq(type(j.errors), "table")
  for _, op in ipairs({ "get", "set" }) do
    for _, f in ipairs({ "count", "min", "mean", "p50", "p90", "p99", "p999", "max" }) do
      t.eq(type(j.latency[op][f]), "number", op .. "." .. f)
    end
  end
  t.ok(#j.series >= 1, "series")
  t.eq(type(j.series[1].throughput), "number")
  t.eq(type(j.series[1].latency.get.p99), "number")
  t.ok(#j.distribution.get >= 3)
  t.eq(j.distribution.get[#j.distribution.get].p, 100)
end)

t.test("HTML report: self-contained, one latency chart per operation, legend, context", function()
  local path = tmpfile()
  local r = assert(loadtest.run{ cache = "lt-html", duration = 1.2, concurrency = 2,
    mix = { get = 0.9, set = 0.1 }, html = path, progress = false, title = "A <test> run" })
  local html = read_all(path)
  t.ok(html:match("^<!DOCTYPE html>"))
  t.ok(html:find("</html>", 1, true))
  local svgs = 0
  for _ in html:gmatch("<svg[ >]") do svgs = svgs + 1 end
  t.eq(svgs, 4) -- throughput, get over time, set over time, by percentile
  t.eq(select(2, html:gsub("</svg>", "")), 4)
  for _, title in ipairs({ "Throughput over time", "get latency over time", "set latency over time",
    "Latency by percentile" }) do
    t.ok(html:find("<title>" .. title .. "</title>", 1, true), title)
  end
  -- the legend shows each line's stroke: p99 dashed, max dotted
  t.ok(html:find('<line x1="%d+" x2="%d+" y1="%d+" y2="%d+" stroke="[^"]+" stroke%-width="2.5" '
    .. 'stroke%-dasharray="7,4"/>%s*<text[^>]*>p99</text>'), "legend sample of p99")
  t.ok(html:find("A &lt;test&gt; run", 1, true), "title escaped")
  t.ok(not html:find("<script", 1, true), "no script")
  t.ok(not html:find("src=", 1, true) and not html:find("href=", 1, true), "no external resource")
  local count = string.format("%d", r.latency.get.count):reverse():gsub("(%d%d%d)", "%1,")
  count = count:reverse():gsub("^,", "")
  t.ok(html:find(">" .. count .. "<", 1, true), "table has the get count: " .. count)
  -- the run's context at the top: backend, configuration, date, version
  local head = html:sub(1, html:find("<svg", 1, true))
  for _, want in ipairs({ ">memory, in this process", "closed loop, 2 virtual users, 1.2 s",
    "get 90%, set 10%", "10,000, uniform; values of 100 bytes", r.date, "kura " .. kura.version }) do
    t.ok(head:find(want, 1, true), "context: " .. want)
  end
  -- ticks: steps of 1, 2 or 5 times a power of ten (never 62.5k or 1.25 s)
  local scale = { k = 1e3, M = 1e6, ns = 1e-9, ["µs"] = 1e-6, ms = 1e-3, s = 1 }
  for svg in html:gmatch("<svg.-</svg>") do
    local vs, log = {}, false
    for label in svg:gmatch('text%-anchor="end">([^<]+)</text>') do
      local v, unit = label:match("^([%d.]+)%s*(%S*)$")
      if unit ~= "" and unit ~= "k" and unit ~= "M" then log = true end
      vs[#vs + 1] = tonumber(v) * (scale[unit] or 1)
    end
    t.ok(#vs >= 2, "y ticks")
    for i, v in ipairs(vs) do
      local step = log and v or (i > 1 and v - vs[i - 1])
      if step and step > 0 then
        local lead = string.format("%.3e", step):sub(1, 5)
        t.ok(lead == "1.000" or lead == "2.000" or lead == "5.000", "round tick step " .. step)
      end
    end
  end
end)

t.test("percentile axis is cut where the samples end", function()
  for _, case in ipairs({ { 1000, "99.9%", "99.99%" }, { 10000, "99.99%", "99.999%" } }) do
    local r = assert(loadtest.run{ cache = "lt-axis", ops = case[1], concurrency = 1,
      mix = { get = 1 }, progress = false })
    local html = loadtest.html(r)
    t.ok(html:find(">" .. case[2] .. "<", 1, true), case[1] .. " samples: tick " .. case[2])
    t.ok(not html:find(">" .. case[3] .. "<", 1, true), case[1] .. " samples: no tick " .. case[3])
  end
end)

t.test("text report: the run's context and latencies with units", function()
  local r = assert(loadtest.run{ cache = "lt-text", ops = 500, concurrency = 2,
    mix = { get = 1, set = 1 }, progress = false, keyspace = 1234, value_size = 7,
    distribution = "zipf" })
  local text = loadtest.text(r)
  for _, line in ipairs({ "kura " .. kura.version .. " load test, " .. r.date,
    "     backend: memory, in this process (no connection)",
    "        load: closed loop, 2 virtual users, 500 operations",
    "         mix: get 50%, set 50%", "        keys: 1,234, zipf (alpha 0.99); values of 7 bytes",
    "  thresholds: errors<1%", "cumulative stats:", "    total requests: 500 (",
    "           success: 500 (100.00%)", "cumulative get latencies:", "cumulative set latencies:",
    "   count: ", "     p50: ", "   p99.9: ", "     max: ", "thresholds:",
    "  ok   errors<1%              0.00%  (default)" }) do
    t.ok(text:find(line, 1, true), line)
  end
  for v in text:gmatch("\n +p50: ([^\n]+)") do
    t.ok(v:match("^%d+%.?%d* [nµm]?s$"), "p50 with a unit: " .. v)
  end
end)

t.test("backend URLs in reports hide the password", function()
  for url, want in pairs({
    ["redis://127.0.0.1:6379"] = "redis://127.0.0.1:6379",
    ["redis://:pw@h:1/2"] = "redis://:***@h:1/2",
    ["redis://user:pw@h:1"] = "redis://user:***@h:1",
    ["redis://pw@h:1"] = "redis://***@h:1",
    ["redis-cluster://u:p@ss@a:1,b:2"] = "redis-cluster://u:***@a:1,b:2",
    ["memory"] = "memory", ["momento"] = "momento",
  }) do
    t.eq(loadtest.redact(url), want, url)
  end
end)

t.test("duration units", function()
  local report = require("kura.report")
  t.eq(report.duration(9e-8), "90.0 ns")
  t.eq(report.duration(1.234e-6), "1.23 µs")
  t.eq(report.duration(812e-6), "812 µs")
  t.eq(report.duration(0.0015), "1.50 ms")
  t.eq(report.duration(3.5234), "3.52 s")
  t.eq(report.duration(0), "0 s")
  t.eq(report.duration(120), "120 s")
end)

t.test("JSON report: units, backend, version, date, full configuration", function()
  local path = tmpfile()
  local r = assert(loadtest.run{ cache = "lt-json2", ops = 300, concurrency = 3, rate = 3000,
    mix = { get = 1 }, output = path, progress = false, thresholds = { "get.p99<10s" } })
  local j = assert(kura.json.decode(read_all(path)))
  t.eq(j.units.latency, "s")
  t.eq(j.units.throughput, "ops/s")
  t.eq(j.backend, "memory")
  t.eq(j.version, kura.version)
  t.ok(j.date:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"), j.date)
  for k, v in pairs({ concurrency = 3, rate = 3000, ops = 300, keyspace = 10000,
    distribution = "uniform", value_size = 100, warmup = 0, ramp_up = 0, connections = 1,
    cache = "lt-json2", backend = "memory", prefill = true, scripted = false }) do
    t.eq(j.config[k], v, "config." .. k)
  end
  t.eq(j.config.mix, { get = 1 })
  t.eq(j.config.thresholds, { "get.p99<10s", "errors<1%" })
  t.eq(j.ok, true)
  t.eq(j.thresholds[1].expr, "get.p99<10s")
  t.eq(j.thresholds[1].ok, true)
  t.eq(j.thresholds[1].value, r.latency.get.p99)
  t.eq(type(j.overall.p99), "number")
end)

t.test("every option is checked before anything starts", function()
  local started = 0
  local function count() started = started + 1 end
  local bad = {
    { { distribution = "zipfy" }, "distribution: uniform, zipf, gaussian or sequential, not 'zipfy'" },
    { { concurrency = 0 }, "concurrency: an integer from 1 to 100000, not 0" },
    { { concurrency = 100001 }, "concurrency: an integer from 1 to 100000" },
    { { concurrency = 2.5 }, "concurrency: an integer" },
    { { duration = 0 }, "duration: a number > 0, not 0" },
    { { duration = 0 / 0 }, "duration: a number > 0" },
    { { duration = math.huge }, "duration: a number > 0" },
    { { rate = -1 }, "rate: a number > 0" },
    { { keyspace = 0 }, "keyspace: an integer from 1 to 10000000" },
    { { value_size = 5e6 }, "value_size: an integer from 0 to 4194304" },
    { { spin = 2 }, "spin: a number from 0 to 1" },
    { { warmup = -1 }, "warmup: a number >= 0" },
    { { ops = 0 }, "ops: an integer" },
    { { mix = { fly = 1 } }, "mix: unknown operation 'fly'" },
    { { mix = { get = 0 } }, "mix: no operation with a weight > 0" },
    { { mix = "get" }, "mix: a table" },
    { { mix = { get = 1 }, workload = count }, "mix or workload, not both" },
    { { workload = "x" }, "workload: a function" },
    { { distrib = "zipf" }, "distrib: unknown option" },
    { { thresholds = { "p99<2" } }, "threshold 'p99<2': give the latency a unit" },
    { { thresholds = "p99<2ms" }, "thresholds: a list of strings" },
    { { output = "/nonexistent/dir/r.json" }, "output: /nonexistent/dir/r.json: No such file" },
    { { html = "/nonexistent/dir/r.html" }, "html: /nonexistent/dir/r.html: No such file" },
    { { connections = 0 }, "connections: an integer from 1 to 1024" },
    { { connections = 60 }, "connections: at most one per virtual user (concurrency 50)" },
    { { client = kura.client(), connections = 2 }, "client, or backend and connections, not both" },
    { { progress = "yes" }, "progress: true or false" },
    { { cache = "" }, "cache: a non-empty string" },
  }
  for _, case in ipairs(bad) do
    local o = case[1]
    o.workload = o.workload or (o.mix == nil and count or nil)
    local ok, err = pcall(loadtest.run, o)
    t.ok(not ok, "raised: " .. case[2])
    t.ok(tostring(err):find(case[2], 1, true), tostring(err) .. " / wanted: " .. case[2])
    t.ok(not tostring(err):find("loadtest.lua", 1, true), "no internal position: " .. tostring(err))
    local cfg, why, field = loadtest.check_options(o)
    t.eq(cfg, nil)
    t.ok(why:find(case[2], 1, true), why)
    t.eq(type(field), "string")
  end
  t.eq(started, 0)
  -- the report files were only probed: none is left behind
  t.eq(io.open("/nonexistent/dir/r.json"), nil)
  -- a backend without connections refuses connections > 1, before any load
  local r, err = loadtest.run{ backend = "memory", connections = 2, concurrency = 2, ops = 10,
    workload = count, progress = false }
  t.eq(r, nil)
  t.eq(err.code, "INVALID_ARGUMENT_ERROR")
  t.ok(err.message:find("connections: the memory backend has none", 1, true), err.message)
  t.eq(started, 0)
end)

t.test("a report file that cannot be written at the end is reported", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local r = assert(loadtest.run{ cache = "lt-write", ops = 50, concurrency = 1, progress = false,
    output = dir .. "/r.json", workload = function(vu, n)
      if n == 1 then os.execute("rm -rf " .. dir) end
      vu.cache:get("k")
    end })
  t.ok(r.write_error and r.write_error:find(dir .. "/r.json: No such file", 1, true), tostring(r.write_error))
  local _, count = r.write_error:gsub(dir, "")
  t.eq(count, 1, "the path once")
end)

t.test("thresholds: parse, evaluate, report.ok, default errors<1%", function()
  local th = require("kura.threshold")
  local cases = {
    { "p99<2ms", { kind = "latency", stat = "p99", cmp = "<", limit = 0.002 } },
    { "get.p99<2ms", { op = "get", kind = "latency", stat = "p99" } },
    { "p99.9 <= 500us", { stat = "p999", cmp = "<=", limit = 0.0005 } },
    { "p999<1s", { stat = "p999", limit = 1 } },
    { "get.p(95)<1s", { op = "get", stat = "p95", p = 95 } },
    { "avg<1ms", { stat = "mean" } },
    { "med<1ms", { stat = "p50" } },
    { "errors<1%", { kind = "errors", unit = "%", limit = 1 } },
    { "errors<10", { kind = "errors", unit = "errors", limit = 10 } },
    { "throughput>100000", { kind = "throughput", cmp = ">", limit = 100000 } },
    { "throughput>=1e5", { kind = "throughput", cmp = ">=", limit = 1e5 } },
    { "set.throughput>10", { op = "set", kind = "throughput" } },
    { "get.count>=5", { op = "get", kind = "ops" } },
  }
  for _, c in ipairs(cases) do
    local spec = th.parse(c[1])
    t.ok(spec, c[1])
    for k, v in pairs(c[2]) do t.eq(spec[k], v, c[1] .. " " .. k) end
  end
  for _, bad in ipairs({ "p99<2", "p99<2h", "foo<1", "get.errors<1%", "p99", "", "p0<1ms",
    "p101<1ms", "p99<<2ms", "throughput>fast", "errors<1ms", "p99=2ms", "\0<1" }) do
    local spec, err = th.parse(bad)
    t.eq(spec, nil, bad)
    t.ok(err:find("threshold '", 1, true), err)
  end
  t.eq(th.parse(42), nil)
  -- evaluation against a report-shaped source
  local src = { ops = 1000, seconds = 2, throughput = 500, error_count = 5, error_percent = 0.5,
    latency = { get = { count = 900, p99 = 0.003, p95 = 0.002 }, set = { count = 100, p99 = 0.001 } },
    overall = { count = 1000, p99 = 0.0029 } }
  local function check(e) return th.check(assert(th.parse(e)), src) end
  t.eq(check("get.p99<2ms"), { expr = "get.p99<2ms", ok = false, value = 0.003, unit = "s" })
  t.eq(check("set.p99<2ms").ok, true)
  t.eq(check("p99<2ms").value, 0.0029)
  t.eq(check("errors<1%").ok, true)
  t.eq(check("errors<5").ok, false)
  t.eq(check("throughput>400").ok, true)
  t.eq(check("set.throughput>=50").value, 50)
  t.eq(check("get.p(95)<3ms").ok, true)
  t.eq(check("delete.p99<1s"), { expr = "delete.p99<1s", ok = false, unit = "s" }) -- no data: fails
  t.eq(th.percentiles({ th.parse("p(95)<1s"), th.parse("p99<1s"), th.parse("get.p(95)<1s") }), { 95, 99 })
  -- in a run: extra percentiles are computed, ok is false when one fails
  local r = assert(loadtest.run{ cache = "lt-thr", ops = 2000, concurrency = 2, mix = { get = 1 },
    progress = false, thresholds = { "get.p(95)<10s", "p99<1ns", "throughput>0" } })
  t.eq(#r.thresholds, 4)
  t.eq(r.thresholds[1].ok, true)
  t.eq(r.thresholds[1].value, r.latency.get.p95)
  t.eq(r.thresholds[2].ok, false)
  t.eq(r.thresholds[3].ok, true)
  t.eq(r.thresholds[4].expr, "errors<1%")
  t.eq(r.thresholds[4].default, true)
  t.eq(r.ok, false)
  t.ok(loadtest.text(r):find("  FAIL p99<1ns ", 1, true))
  -- an errors threshold of one's own replaces the default; false: no checks
  r = assert(loadtest.run{ cache = "lt-thr", ops = 100, concurrency = 1, mix = { get = 1 },
    progress = false, thresholds = { "errors<50" } })
  t.eq(#r.thresholds, 1)
  r = assert(loadtest.run{ cache = "lt-thr", ops = 100, concurrency = 1, mix = { get = 1 },
    progress = false, thresholds = false })
  t.eq(#r.thresholds, 0)
  t.eq(r.ok, true)
end)

-- A client double whose gets fail for `to - from` seconds, from the first
-- call made `from` seconds or more after the first call (so that a process
-- descheduled across `from` on a busy machine still meets the outage): at
-- once (fast = true), or after waiting until the outage ends (a call
-- stalled on a dead server, as a timeout ends it).
local function outage_client(from, to, fast)
  local t0, down
  local handle = {}
  function handle:get(_)
    t0 = t0 or kura.now()
    local t = kura.now() - t0
    if not down and t >= from then down = t end
    if down and t < down + (to - from) then
      if not fast then kura.sleep(down + (to - from) - t) end
      return nil, { code = fast and "CONNECTION_ERROR" or "TIMEOUT_ERROR", message = "down" }
    end
    return "v"
  end
  local c = {}
  function c:create_cache() return true end
  function c:cache() return handle end
  return c
end

t.test("errors weigh the same whether calls stall or fail at once", function()
  -- 0.4 s of a 1.2 s run fail: a third of the load, either way
  local shares = {}
  for _, fast in ipairs({ true, false }) do
    local r = assert(loadtest.run{ client = outage_client(0.4, 0.8, fast), duration = 1.2,
      concurrency = 8, mix = { get = 1 }, prefill = false, progress = false,
      workload = nil })
    shares[#shares + 1] = r.error_percent
    -- ~33%; a preemption that straddles the outage's start is charged to it
    -- (which side of the gap it fell on cannot be known): up to ~50% seen
    -- on a loaded machine under ASan
    t.ok(r.error_percent > 20 and r.error_percent < 60, string.format("fast=%s: %.1f%% (%d errors of %d)",
      tostring(fast), r.error_percent, r.error_count, r.ops))
    t.eq(r.ok, false) -- the default errors<1% fails the run
    t.ok(#r.error_periods >= 1, "the outage is located in the series")
    t.ok(loadtest.text(r):find("errors over time:", 1, true))
  end
  -- by count the two runs differ by orders of magnitude; by time they agree
  t.ok(math.max(shares[1], shares[2]) < 2 * math.min(shares[1], shares[2]),
    string.format("%.1f vs %.1f", shares[1], shares[2]))
end)

t.test("an outage's seconds without any call ending belong to it", function()
  -- from the first call past 0.5 s ("down"), calls fail at once for 0.5 s,
  -- then hang for 2.5 s (so a whole second of the series has neither an
  -- operation nor an error), then succeed
  local t0, down, handle = nil, nil, {}
  function handle:get()
    t0 = t0 or kura.now()
    local t = kura.now() - t0
    if not down and t >= 0.5 then down = t end
    if down and t < down + 0.5 then return nil, { code = "CONNECTION_ERROR", message = "down" } end
    if down and t < down + 3 then kura.sleep(down + 3 - t) end
    return "v"
  end
  local c = { create_cache = function() return true end, cache = function() return handle end }
  local r = assert(loadtest.run{ client = c, duration = 4.5, concurrency = 4, mix = { get = 1 },
    prefill = false, progress = false })
  local p = r.error_periods
  t.eq(#p, 1, kura.json.encode(p))
  t.ok(p[1].to - p[1].from >= 2, kura.json.encode(p))
end)

t.test("scripted workload: errors weigh by time too", function()
  local c = outage_client(0.4, 0.8, false)
  local r = assert(loadtest.run{ client = c, duration = 1.2, concurrency = 4, progress = false,
    workload = function(vu) vu.cache:get("k") end })
  t.ok(r.error_percent > 20 and r.error_percent < 60, string.format("%.1f%%", r.error_percent))
end)

t.test("open loop: operations due behind a stalled call count as missed", function()
  -- at 1,000 ops/s the call due at 0.6 s stalls past the end of a 1 s run:
  -- the ~400 operations due meanwhile were never sent (more when the VU ran
  -- behind its schedule as the stall began: a busy or sanitized build)
  local r = assert(loadtest.run{ client = outage_client(0.6, 1.5, false), duration = 1,
    rate = 1000, concurrency = 1, mix = { get = 1 }, prefill = false, progress = false })
  t.ok(r.missed >= 300 and r.missed <= 550, "missed " .. r.missed)
  t.ok(r.error_percent > 30 and r.error_percent < 56, string.format("%.1f%%", r.error_percent))
  t.ok(loadtest.text(r):find("missed: ", 1, true))
  -- the same rate without a stall misses nothing
  r = assert(loadtest.run{ client = outage_client(5, 6, false), duration = 0.5, rate = 1000,
    concurrency = 1, mix = { get = 1 }, prefill = false, progress = false })
  t.eq(r.missed, 0)
  t.eq(r.error_percent, 0)
end)

-- --- stages ------------------------------------------------------------------

t.test("stages: the rate integral and its inverse agree", function()
  local segs = loadtest.stage_profile(100, { { duration = 2, target = 500 }, { duration = 1, target = 500 },
                                             { duration = 1.5, target = 0 } })
  t.eq(loadtest.stage_level(segs, 0), 100)
  t.eq(loadtest.stage_level(segs, 1), 300)
  t.eq(loadtest.stage_level(segs, 2.5), 500)
  t.eq(loadtest.stage_level(segs, 10), 0)
  t.ok(math.abs(loadtest.stage_ops_before(segs, 2) - 600) < 1e-9, "ramp 100 -> 500 over 2 s: 600 ops")
  t.ok(math.abs(loadtest.stage_ops_before(segs, 4.5) - (600 + 500 + 375)) < 1e-9)
  for _, q in ipairs({ 0, 1, 17, 599.5, 600, 1099, 1474 }) do
    local x = loadtest.stage_time_of(segs, q)
    t.ok(math.abs(loadtest.stage_ops_before(segs, x) - q) < 1e-6, "inverse at " .. q)
  end
  t.eq(loadtest.stage_time_of(segs, 1475), math.huge, "past the last op of a ramp to 0")
end)

t.test("stages: a two-stage open loop meets each stage's rate within 10%", function()
  -- Times from the first operation: the run's own start (the cache made,
  -- the users started) takes a while on a busy machine, and counting from
  -- before it moved a fifth of the first stage into the second (seen at load 8).
  local times = {}
  local t0
  local report = loadtest.run{ rate = 200, concurrency = 20, progress = false, cache = "lt-stages-open",
    stages = { { duration = 1, target = 600 }, { duration = 1, target = 600 } },
    workload = function(vu)
      t0 = t0 or kura.now()
      times[#times + 1] = kura.now() - t0
      vu.cache:get(vu.key())
    end,
    thresholds = false, prefill = false }
  t.ok(report, "ran")
  local first, second = 0, 0
  for _, x in ipairs(times) do
    if x < 1 then first = first + 1 elseif x < 2 then second = second + 1 end
  end
  -- Ramp 200 -> 600 over 1 s: 400 ops; then 600 ops/s for 1 s: 600 ops.
  t.ok(math.abs(first - 400) <= 40, "first stage: " .. first .. " ops, 400 due")
  t.ok(math.abs(second - 600) <= 60, "second stage: " .. second .. " ops, 600 due")
  t.eq(report.config.stages[2].target, 600)
  t.ok(report.seconds >= 1.9 and report.seconds < 3, "the run lasts the stages: " .. report.seconds)
end)

t.test("stages: a closed loop ramps its virtual users up and down", function()
  local first, last = {}, {}
  local report = loadtest.run{ concurrency = 1, progress = false, cache = "lt-stages-closed",
    stages = { { duration = 0.5, target = 4 }, { duration = 0.6, target = 4 }, { duration = 0.5, target = 0 } },
    workload = function(vu)
      local x = kura.now()
      first[vu.id] = first[vu.id] or x
      last[vu.id] = x
      kura.sleep(0.01)
    end,
    thresholds = false, prefill = false }
  t.ok(report, "ran")
  t.eq(report.config.concurrency, 4, "the most users any stage asks for")
  for id = 1, 4 do t.ok(first[id] and last[id], "user " .. id .. " ran") end
  -- The level goes 1 -> 4 over 0.5 s: user k joins when it reaches k - 0.5,
  -- at (k - 1.5) / 6 s; users leave in the reverse order on the way down.
  for id = 2, 4 do
    t.ok(first[id] > first[id - 1], "user " .. id .. " joins after user " .. (id - 1))
    t.ok(last[id] < last[id - 1], "user " .. id .. " leaves before user " .. (id - 1))
  end
  t.ok(first[4] - first[1] > 0.25, string.format("user 4 joins %.3f s after user 1 (due: 0.417 s)",
                                                 first[4] - first[1]))
  t.ok(last[1] - last[4] > 0.2, string.format("user 1 leaves %.3f s after user 4 (due: 0.33 s)",
                                              last[1] - last[4]))
end)

t.test("stages: bad stages raise before anything runs", function()
  t.raises(function() loadtest.run{ stages = {} } end, "stages")
  t.raises(function() loadtest.run{ stages = { { duration = 0, target = 1 } } } end, "duration")
  t.raises(function() loadtest.run{ stages = { { duration = 1, target = -1 } } } end, "target")
  t.raises(function() loadtest.run{ stages = { { duration = 1, target = 1e9 } } } end, "target")
  t.raises(function() loadtest.run{ stages = { 5 } } end, "stage 1")
  t.raises(function() loadtest.run{ duration = 3, stages = { { duration = 1, target = 1 } } } end,
           "duration")
  t.raises(function() loadtest.run{ ramp_up = 1, stages = { { duration = 1, target = 1 } } } end,
           "ramp_up")
  t.raises(function() loadtest.run{ stages = { { duration = 0 / 0, target = 1 } } } end, "duration")
end)

t.run()
