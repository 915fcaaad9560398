-- scripts/counters.lua: a leaderboard kept in counters, and rate limiters.
--
-- usage: scripts/run scripts/counters.lua [options]
--
--   --players N     players scoring in the match, 1 to 100000 (default 50)
--   --events N      score events in the match, 1 to 10^8 (default 20000)
--   --limit N       requests a client may make per window, 1 to 10^6
--                   (default 10)
--   --window S      rate limit window in seconds, >= 0.01 (default 1)
--   --seconds S     how long the rate limit demo runs, 0.1 to 3600
--                   (default 3); a live line counts it down on a terminal
--   -h, --help      this text
--
-- Part 1 plays a match: score events from concurrent tasks increment one
-- counter per player (kura.counter, TTL set when a counter is created), then
-- prints the top 10. Part 2 sends requests from three clients at different
-- speeds through a fixed and a sliding window limiter and prints what each
-- limiter let through. Works on any backend, e.g.
-- scripts/run --backend redis://127.0.0.1:6379 scripts/counters.lua
local counter = require("kura.counter")

local args = require("kura.args")

-- Waits for the tasks; raises the first error one of them raised.
local function join_all(tasks)
  for _, t in ipairs(tasks) do
    local _, err = t:join()
    if err ~= nil then error(err, 0) end
  end
end

local function leaderboard(client, cache, o)
  local scores = counter.new{ client = client, cache = cache, ttl = 3600, prefix = "score:" }
  local names = {}
  for p = 1, o.players do names[p] = string.format("player%03d", p) end
  local tasks = {}
  for w = 1, 10 do
    local per = o.events // 10 + (w <= o.events % 10 and 1 or 0)
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
  print(string.format("leaderboard after %d score events:", o.events))
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
  local tasks, started = {}, kura.now()
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
  local live = kura.isatty(2) and kura.every(0.25, function()
    io.stderr:write(string.format("\r  %.1f s of %g s\27[K", kura.now() - started, o.seconds))
  end)
  join_all(tasks)
  if live then
    live:stop()
    io.stderr:write("\r\27[K")
  end
  print(string.format("  %-6s %6s %8s %8s", "client", "sent", "fixed", "sliding"))
  for _, cl in ipairs(clients) do
    print(string.format("  %-6s %6d %8d %8d", cl.id, cl.sent, cl.fixed, cl.sliding))
  end
  local _, remaining, reset_in = limiters.fixed:allow("flood", 0)
  print(string.format("  flood may still send %d, window resets in %.2f s", remaining, reset_in))
end

local o = args.parse(arg, {
  { "--players", "int", 50, min = 1, max = 100000 },
  { "--events", "int", 20000, min = 1, max = 100000000 },
  { "--limit", "int", 10, min = 1, max = 1000000 },
  { "--window", "num", 1, min = 0.01 },
  { "--seconds", "num", 3, min = 0.1, max = 3600 },
})
if o then
  local client = kura.client()
  local cache = "counters-demo"
  local ok, err = client:create_cache(cache)
  if ok == nil then
    io.stderr:write("counters.lua: cannot create the cache: ", tostring(err), "\n")
    return kura.set_exit_status(1)
  end
  leaderboard(client, cache, o)
  rate_limits(client, cache, o)
  client:delete_cache(cache)
end
