-- Benchmark of the Redis backend from Lua tasks (run by scripts/bench/redis.sh):
--   kura run --backend redis://H:P redis_tasks.lua throughput get|set TASKS SECONDS
--   kura run --backend redis://H:P redis_tasks.lua latency N
-- Prints one line per measure, in the form redis-benchmark's -q output uses.
local c = kura.client()
local cache = "kura-bench"
c:create_cache(cache)
assert(c:set(cache, "key", "xxx", 600))

local function throughput(op, tasks, secs)
  local stop = kura.now() + secs
  local t0 = kura.now()
  local ts = {}
  for i = 1, tasks do
    ts[i] = kura.spawn(function()
      local n, e = 0, 0
      -- The clock is read every 32 calls: a read per call would cost more
      -- than the call's own client-side work.
      while kura.now() < stop do
        for _ = 1, 32 do
          local _, err
          if op == "get" then _, err = c:get(cache, "key") else _, err = c:set(cache, "key", "xxx", 600) end
          if err then e = e + 1 else n = n + 1 end
        end
      end
      return n, e
    end)
  end
  local count, errs = 0, 0
  for i = 1, tasks do
    local n, e = ts[i]:join()
    count, errs = count + n, errs + e
  end
  local dt = kura.now() - t0
  print(string.format("kura %s, %d tasks: %.0f requests per second (%d errors)",
                      op:upper(), tasks, count / dt, errs))
end

local function latency(n)
  local lat = {}
  for _ = 1, math.floor(n / 10) do c:get(cache, "key") end -- warm up
  for i = 1, n do
    local t = kura.now()
    local _, err = c:get(cache, "key")
    assert(not err, tostring(err))
    lat[i] = kura.now() - t
  end
  table.sort(lat)
  local function pct(p) return lat[math.max(1, math.ceil(#lat * p))] * 1000 end
  print(string.format("kura GET, 1 task: p50=%.3f msec p99=%.3f msec (%d gets)", pct(0.50), pct(0.99), n))
end

if arg[1] == "latency" then
  latency(tonumber(arg[2] or "20000"))
else
  throughput(arg[2] or "get", tonumber(arg[3] or "50"), tonumber(arg[4] or "3"))
end
