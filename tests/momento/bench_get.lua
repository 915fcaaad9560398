-- kura's half of scripts/bench/momento.sh: TASKS tasks doing `get` for
-- SECONDS against the momento backend; prints one line
--   kura: CALLS calls in S s = RPS calls/s, cpu C s = U us/call, errors E
-- where cpu is the process CPU time (os.clock) spent in the timed part.
local tasks_n, seconds = tonumber(arg[1]) or 50, tonumber(arg[2]) or 3
local c = kura.client()
local cache = "bench"
c:create_cache(cache)
assert(c:set(cache, "k", string.rep("v", 100), 600))
assert(c:get(cache, "k"))
local calls, errors = 0, 0
local cpu0, t0 = os.clock(), kura.now()
local stop = t0 + seconds
local tasks = {}
for i = 1, tasks_n do
  tasks[i] = kura.spawn(function()
    while kura.now() < stop do
      local v = c:get(cache, "k")
      if v then calls = calls + 1 else errors = errors + 1 end
    end
  end)
end
for i = 1, tasks_n do tasks[i]:join() end
local dt, cpu = kura.now() - t0, os.clock() - cpu0
print(string.format("kura: %d calls in %.2f s = %.0f calls/s, cpu %.2f s = %.1f us/call, errors %d",
                    calls, dt, calls / dt, cpu, cpu / math.max(calls, 1) * 1e6, errors))
