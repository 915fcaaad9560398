-- A scripted load test: the session traffic of a web or game back end.
-- Each iteration of a virtual user is one request of a logged-in user:
-- sometimes a log-in (create the session, load the profile into the cache),
-- then read the session and the profile, bump two counters, and keep the
-- session alive by refreshing its TTL. Copy this file and change workload().
--
-- usage: scripts/run scripts/loadtest.lua [options] [SECONDS [USERS [RATE]]]
--
--   -d, --duration S     seconds to measure, > 0 (default 3)
--   -c, --users N        virtual users, 1 to 100000 (default 50)
--   --rate R             open loop at R iterations/s (default: closed loop)
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

local CACHE = "sessions"
local SESSION_TTL = 30 * 60     -- seconds a session lives without activity
local ACCOUNTS = 100000         -- distinct accounts that may log in
local PROFILE = string.rep("p", 512)

-- One request of a user. vu.cache is the cache handle and vu.client the
-- client, both timed; vu.data is this virtual user's own state.
local function workload(vu, n)
  local s = vu.data
  -- a new session every 20 requests: log in
  if not s.session or n % 20 == 0 then
    s.account = math.random(ACCOUNTS)
    s.session = string.format("session:%d:%d", vu.id, n)
    vu.cache:set(s.session, tostring(s.account), SESSION_TTL)
    local key = "profile:" .. s.account
    if not vu.cache:get(key) then                         -- cache miss: "load" it
      vu.cache:set(key, PROFILE, 300)
    end
  end
  -- an authenticated request: check the session, read the profile
  local account = vu.cache:get(s.session)
  if account then
    vu.cache:get("profile:" .. account)
    vu.cache:increment("requests:" .. account, 1, SESSION_TTL)
    vu.cache:increment("requests:total", 1)
    vu.cache:update_ttl(s.session, SESSION_TTL)           -- sliding expiry
  else
    s.session = nil                                        -- expired: log in again
  end
end

local options = {
  cache = CACHE,
  duration = seconds,
  concurrency = users,
  rate = rate,
  ramp_up = rate and math.min(1, seconds / 4) or 0,
  workload = workload,
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
