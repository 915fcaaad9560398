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

t.test("HTML report: self-contained, three SVG charts", function()
  local path = tmpfile()
  local r = assert(loadtest.run{ cache = "lt-html", duration = 1.2, concurrency = 2,
    mix = { get = 0.9, set = 0.1 }, html = path, progress = false, title = "A <test> run" })
  local html = read_all(path)
  t.ok(html:match("^<!DOCTYPE html>"))
  t.ok(html:find("</html>", 1, true))
  local svgs = 0
  for _ in html:gmatch("<svg[ >]") do svgs = svgs + 1 end
  t.eq(svgs, 3)
  t.eq(select(2, html:gsub("</svg>", "")), 3)
  for _, title in ipairs({ "Throughput over time", "Latency percentiles over time",
    "Latency by percentile" }) do
    t.ok(html:find("<title>" .. title .. "</title>", 1, true), title)
  end
  t.ok(html:find("<polyline", 1, true))
  t.ok(html:find("A &lt;test&gt; run", 1, true), "title escaped")
  t.ok(not html:find("<script", 1, true), "no script")
  t.ok(not html:find("src=", 1, true) and not html:find("href=", 1, true), "no external resource")
  t.ok(html:find(string.format(">%d<", r.latency.get.count), 1, true), "table has the get count")
end)

t.test("text report layout", function()
  local r = assert(loadtest.run{ cache = "lt-text", ops = 500, concurrency = 2,
    mix = { get = 1, set = 1 }, progress = false })
  local text = loadtest.text(r)
  for _, line in ipairs({ "cumulative stats:", "    total requests: 500 (", "           success: 500 (100.00%)",
    "cumulative get latencies (ms):", "cumulative set latencies (ms):", "   count: ",
    "     p50: ", "   p99.9: ", "     max: " }) do
    t.ok(text:find(line, 1, true), line)
  end
end)

t.run()
