-- A scripted load test: the session traffic of a web or game back end.
-- Each iteration of a virtual user is one request of a logged-in user:
-- sometimes a log-in (create the session, load the profile into the cache),
-- then read the session and the profile, bump two counters, and keep the
-- session alive by refreshing its TTL. Copy this file and change workload().
--
--   scripts/run scripts/loadtest.lua                       # 3 s, embedded store
--   scripts/run --backend redis://127.0.0.1:6379 scripts/loadtest.lua 10 200
--   kura run scripts/loadtest.lua [SECONDS [USERS [RATE]]] # RATE: open loop, ops/s
--
-- Each client call below is timed under its method name (get, set,
-- increment, update_ttl, ...); the report prints throughput, errors by code
-- and the latency percentiles of each, and writes loadtest.json and
-- loadtest.html (open the page in a browser: charts, no network needed).
local loadtest = require("kura.loadtest")

-- --help: the comment at the top of this file.
if arg and (arg[1] == "-h" or arg[1] == "--help") then
  for line in io.lines(arg[0]) do
    if not line:match("^%-%-") then break end
    print((line:gsub("^%-%- ?", "")))
  end
  return
end

local seconds = tonumber(arg and arg[1]) or 3
local users = math.tointeger(tonumber(arg and arg[2])) or 50
local rate = tonumber(arg and arg[3])

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

local report, err = loadtest.run{
  cache = CACHE,
  duration = seconds,
  concurrency = users,
  rate = rate,
  ramp_up = rate and math.min(1, seconds / 4) or 0,
  workload = workload,
  title = "kura session workload",
  output = "loadtest.json",
  html = "loadtest.html",
}
if not report then error("load test could not start: " .. tostring(err), 0) end
io.write(loadtest.text(report))
print("\nwrote loadtest.json and loadtest.html")
