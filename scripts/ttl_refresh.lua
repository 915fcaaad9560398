-- scripts/ttl_refresh.lua: sessions that live while their player is active
-- and expire when idle; profiles read through the cache without stampedes.
--
-- usage: scripts/run scripts/ttl_refresh.lua [options]
--
--   --players N     players who log in, 1 to 10000 (default 20)
--   --ttl S         session TTL in seconds, >= 0.1 (default 2)
--   --seconds S     how long the simulation runs, 1 to 3600 (default 6)
--   -h, --help      this text
--
-- Each player gets a session key with a short TTL. refresh.keep_alive extends
-- the TTL of the sessions of online players (a set that changes as they come
-- and go) every ttl/3 seconds; a player who goes idle leaves the set and his
-- session expires on its own. Once a second the script prints how many
-- sessions are online and how many are still in the cache. Then 100 tasks
-- ask at once for a profile that is not cached: refresh.get_or_load runs the
-- (slow) loader once. Works on any backend, e.g.
-- scripts/run --backend redis://127.0.0.1:6379 scripts/ttl_refresh.lua
local refresh = require("kura.refresh")

local args = require("kura.args")

local function sessions(client, cache, o)
  local online, keys = {}, {}
  for p = 1, o.players do
    keys[p] = "session:player" .. p
    assert(client:set(cache, keys[p], "token-" .. p, o.ttl))
    online[keys[p]] = true
  end
  local h = refresh.keep_alive{ client = client, cache = cache, keys = online, ttl = o.ttl }
  -- Each player goes idle at a random moment (or stays to the end).
  for p = 1, o.players do
    local idle_at = math.random() * o.seconds * 1.5
    if idle_at < o.seconds then
      kura.after(idle_at, function() online[keys[p]] = nil end)
    end
  end
  print(string.format("%d sessions, TTL %g s, kept alive every %.2f s while online",
                      o.players, o.ttl, o.ttl / 3))
  for second = 1, math.ceil(o.seconds) do
    kura.sleep(1)
    local n_online = 0
    for _ in pairs(online) do n_online = n_online + 1 end
    local present = assert(client:keys_exist(cache, keys))
    local n_cached = 0
    for _, yes in ipairs(present) do n_cached = n_cached + (yes and 1 or 0) end
    print(string.format("  t=%ds online %2d  cached %2d  (idle sessions expire within %g s)",
                        second, n_online, n_cached, o.ttl))
  end
  h:stop()
  print(string.format("keep_alive: %d rounds, %d TTLs extended, %d sessions found expired",
                      h.rounds, h.extended, h.missing))
end

local function profiles(client, cache)
  local loads = 0
  local function load_profile(key)
    loads = loads + 1
    kura.sleep(0.2) -- a slow database
    return kura.json.encode({ id = key, rating = 1500 + loads })
  end
  local tasks = {}
  for i = 1, 100 do
    tasks[i] = kura.spawn(refresh.get_or_load, client, cache, "profile:42", load_profile,
                          { ttl = 60 })
  end
  local same = 0
  local first = tasks[1]:join()
  for i = 2, 100 do if tasks[i]:join() == first then same = same + 1 end end
  print(string.format("100 concurrent reads of a missing profile: %d load(s), %d/99 got the "
                      .. "same value %s", loads, same, first))
end

local o = args.parse(arg, {
  { "--players", "int", 20, min = 1, max = 10000 },
  { "--ttl", "num", 2, min = 0.1 },
  { "--seconds", "num", 6, min = 1, max = 3600 },
})
if o then
  local client = kura.client()
  local cache = "sessions-demo"
  local ok, err = client:create_cache(cache)
  if ok == nil then
    io.stderr:write("ttl_refresh.lua: cannot create the cache: ", tostring(err), "\n")
    return kura.set_exit_status(1)
  end
  sessions(client, cache, o)
  profiles(client, cache)
  client:delete_cache(cache)
end
