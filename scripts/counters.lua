-- scripts/counters.lua: a leaderboard kept in counters, and rate limiters.
--
-- usage: scripts/run scripts/counters.lua [options]
--
--   --players N     players scoring in the simulated match (default 50)
--   --events N      score events in the match (default 20000)
--   --limit N       requests a client may make per window (default 10)
--   --window S      rate limit window in seconds (default 1)
--   --seconds S     how long the rate limit demo runs (default 3)
--   -h, --help      this text
--
-- Part 1 plays a match: score events from concurrent tasks increment one
-- counter per player (kura.counter, TTL set when a counter is created), then
-- prints the top 10. Part 2 sends requests from three clients at different
-- speeds through a fixed and a sliding window limiter and prints what each
-- limiter let through. Works on any backend, e.g.
-- scripts/run --backend redis://127.0.0.1:6379 scripts/counters.lua
local counter = require("kura.counter")

local here = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")

local function usage(out)
  local f = io.open(here .. "counters.lua")
  local text = f and f:read("a") or ""
  if f then f:close() end
  for line in text:gmatch("[^\n]*") do
    if not line:match("^%-%-") then break end
    out:write((line:gsub("^%-%- ?", "")), "\n")
  end
end

-- Waits for the tasks; raises the first error one of them raised.
local function join_all(tasks)
  for _, t in ipairs(tasks) do
    local _, err = t:join()
    if err ~= nil then error(err, 0) end
  end
end

local function parse_args(args)
  local o = { players = 50, events = 20000, limit = 10, window = 1, seconds = 3 }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then
      o.help = true
    else
      local name = a:match("^%-%-(%a+)$")
      local v = tonumber(args[i + 1] or "")
      if not name or o[name] == nil or not v then error("bad argument " .. a, 0) end
      o[name] = (name == "window" or name == "seconds") and v or math.tointeger(v)
      if o[name] == nil then error(a .. " needs an integer", 0) end
      i = i + 1
    end
    i = i + 1
  end
  return o
end

local function leaderboard(client, cache, o)
  local scores = counter.new{ client = client, cache = cache, ttl = 3600, prefix = "score:" }
  local names = {}
  for p = 1, o.players do names[p] = string.format("player%03d", p) end
  local tasks, per = {}, o.events // 10
  for w = 1, 10 do
    tasks[w] = kura.spawn(function()
      for _ = 1, per do
        -- Skewed: low-numbered players score more often.
        local p = math.min(o.players, 1 + math.floor(o.players * math.random() ^ 2))
        assert(scores:incr(names[p], math.random(1, 10)))
      end
    end)
  end
  join_all(tasks)
  local all = assert(scores:get_many(names))
  table.sort(names, function(a, b) return all[a] > all[b] or (all[a] == all[b] and a < b) end)
  print(string.format("leaderboard after %d score events:", per * 10))
  for rank = 1, math.min(10, #names) do
    print(string.format("  %2d. %s %7d", rank, names[rank], all[names[rank]]))
  end
end

-- Three clients send requests every `gap` seconds for o.seconds through
-- both limiters; returns nothing, prints the counts.
local function rate_limits(client, cache, o)
  local limiters = {
    fixed = counter.rate_limiter{ client = client, cache = cache, limit = o.limit,
                                  window = o.window, kind = "fixed", prefix = "rl-fixed:" },
    sliding = counter.rate_limiter{ client = client, cache = cache, limit = o.limit,
                                    window = o.window, kind = "sliding", prefix = "rl-sliding:" },
  }
  local clients = { { id = "calm", gap = o.window / (o.limit * 0.5) },
                    { id = "busy", gap = o.window / (o.limit * 1.5) },
                    { id = "flood", gap = o.window / (o.limit * 5) } }
  print(string.format("rate limits: %d requests per %g s, for %g s", o.limit, o.window, o.seconds))
  local tasks = {}
  for _, cl in ipairs(clients) do
    cl.sent, cl.fixed, cl.sliding = 0, 0, 0
    tasks[#tasks + 1] = kura.spawn(function()
      local stop = kura.now() + o.seconds
      while kura.now() < stop do
        cl.sent = cl.sent + 1
        for kind, lim in pairs(limiters) do
          local allowed, err = lim:allow(cl.id)
          if allowed == nil then error(tostring(err)) end
          if allowed then cl[kind] = cl[kind] + 1 end
        end
        kura.sleep(cl.gap)
      end
    end)
  end
  join_all(tasks)
  print(string.format("  %-6s %6s %8s %8s", "client", "sent", "fixed", "sliding"))
  for _, cl in ipairs(clients) do
    print(string.format("  %-6s %6d %8d %8d", cl.id, cl.sent, cl.fixed, cl.sliding))
  end
  local _, remaining, reset_in = limiters.fixed:allow("flood", 0)
  print(string.format("  flood may still send %d, window resets in %.2f s", remaining, reset_in))
end

local function main(args)
  local ok, o = pcall(parse_args, args)
  if not ok then
    io.stderr:write("counters.lua: ", o, "\n")
    usage(io.stderr)
    kura.set_exit_status(2)
    return
  end
  if o.help then return usage(io.stdout) end
  local client = kura.client()
  local cache = "counters-demo"
  assert(client:create_cache(cache) ~= nil)
  leaderboard(client, cache, o)
  rate_limits(client, cache, o)
  client:delete_cache(cache)
end

main(arg)
