-- A scripted load test: the session traffic of a web or game back end.
-- Each iteration of a virtual user is one request of a logged-in user:
-- sometimes a log-in (create the session, load the profile into the cache),
-- then read the session and the profile, bump two counters, and keep the
-- session alive by refreshing its TTL. The workload is in
-- scripts/workloads/session.lua: copy both and change workload() there.
--
-- usage: scripts/run scripts/loadtest.lua [options] [SECONDS [USERS [RATE]]]
--
--   -d, --duration S     seconds to measure, > 0 (default 3)
--   -c, --users N        virtual users, 1 to 100000 (default 50)
--   --rate R             open loop at R iterations/s (default: closed loop)
--   --threads N|auto     run in N threads (auto: the cores), one merged report
--   --threshold EXPR     fail (exit 99) unless EXPR holds, e.g. p99<5ms,
--                        get.p99<2ms, errors<1%; repeatable
--   --json FILE          the report as JSON (default loadtest.json)
--   --html FILE          the report as a page with charts (default
--                        loadtest.html; open it in a browser, no network)
--   -h, --help           this text
--
--   scripts/run scripts/loadtest.lua                       # 3 s, embedded store
--   scripts/run --backend redis://127.0.0.1:6379 scripts/loadtest.lua -d 10 -c 200
--
-- Each client call below is timed under its method name (get, set,
-- increment, update_ttl, ...); the report prints what ran, throughput,
-- errors by code and the latency percentiles of each. A live line shows
-- on a terminal. Exit status: 0; 1 the run could not start or a report
-- could not be written; 2 a bad option; 99 a threshold failed (errors<1%
-- applies unless you give an errors threshold).
local loadtest = require("kura.loadtest")
local args = require("kura.args")

local o = args.parse(arg, {
  { "--duration", "num", nil, above = 0 }, { "-d", "num", nil, above = 0 },
  { "--users", "int", nil, min = 1, max = loadtest.limits.concurrency },
  { "-c", "int", nil, min = 1, max = loadtest.limits.concurrency },
  { "--rate", "num", nil, above = 0 },
  { "--threads", "str" },
  { "--threshold", "list" },
  { "--json", "str", "loadtest.json" }, { "--html", "str", "loadtest.html" },
  positional = { -- the older form: SECONDS USERS RATE
    { "SECONDS", "num", nil, above = 0 },
    { "USERS", "int", nil, min = 1, max = loadtest.limits.concurrency },
    { "RATE", "num", nil, above = 0 } },
})
if not o then return end
local seconds = o.duration or o.d or o.SECONDS or 3
local users = o.users or o.c or o.USERS or 50
local rate = o.rate or o.RATE
local threads = o.threads
if threads and threads ~= "auto" then
  threads = math.tointeger(tonumber(threads))
  if not threads or threads < 1 or threads > 256 then
    io.stderr:write("loadtest.lua: --threads: an integer from 1 to 256, or auto, not '",
      o.threads, "' (see loadtest.lua --help)\n")
    return kura.set_exit_status(2)
  end
end

local CACHE = "sessions"
-- The workload lives in scripts/workloads/session.lua (every thread loads it).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local WORKLOAD = here .. "/workloads/session.lua"

local options = {
  cache = CACHE,
  duration = seconds,
  concurrency = users,
  rate = rate,
  ramp_up = rate and math.min(1, seconds / 4) or 0,
  script = WORKLOAD,
  threads = threads,
  title = "kura session workload",
  thresholds = o.threshold,
  output = o.json,
  html = o.html,
}
-- A bad value (a report in a folder that does not exist) is a usage error.
local ok, why = loadtest.check_options(options)
if not ok then
  why = why:gsub("^output:", "--json:"):gsub("^html:", "--html:")
  io.stderr:write("loadtest.lua: ", why, " (see loadtest.lua --help)\n")
  return kura.set_exit_status(2)
end
local report, err = loadtest.run(options)
if not report then
  io.stderr:write("loadtest.lua: the load test could not start: ", tostring(err), "\n")
  return kura.set_exit_status(1)
end
io.write(loadtest.text(report))
if report.write_error then return kura.set_exit_status(1) end
print(string.format("\nwrote %s and %s", o.json, o.html))
if not report.ok then kura.set_exit_status(99) end
