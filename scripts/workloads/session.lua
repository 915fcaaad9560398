-- The session workload of scripts/loadtest.lua, in a file of its own so
-- that every thread of a threaded run (--threads) loads it: one request of a
-- logged-in user per iteration. loadtest.run{ script = this file } takes its
-- workload(vu, n).
local CACHE = "sessions"
local SESSION_TTL = 30 * 60     -- seconds a session lives without activity
local ACCOUNTS = 100000         -- distinct accounts that may log in
local PROFILE = string.rep("p", 512)

-- One request of a user. vu.cache is the cache handle and vu.client the
-- client, both timed; vu.data is this virtual user's own state.
function workload(vu, n)
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

