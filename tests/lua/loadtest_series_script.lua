-- A scripted workload for test_loadtest's per-second series: the same
-- operation (set) is fast and frequent in thread 1 (a 1-byte value) and slow
-- and rare in thread 2 (a 4 MiB value, one key, 10 ms apart), so a second's
-- merged percentiles are thread 1's and differ from the worst thread's.
local value

function setup(thread)
  value = thread == 2 and string.rep("x", 4 << 20) or "v"
end

function workload(vu, n)
  if #value > 1 then
    kura.sleep(0.01)
    vu.cache:set("big", value)
  else
    vu.cache:set("k" .. n % 100, value)
  end
end
