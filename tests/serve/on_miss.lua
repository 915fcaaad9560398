-- A `kura serve` script for tests/serve/test_serve_lua.sh: it prepares a
-- cache before the port opens, and loads what a get misses from a made-up
-- origin, so the test can tell each load apart:
--   "slow:..."  waits 0.3 s (the task yields), then "v:<key>:<n>"
--   "slower:.." waits 2 s; with KURA_TEST_MISS_LOG set, the key is first
--               appended to that file (the test knows the call arrived)
--   "short"     "short:<n>" for 1 s only
--   "none"      nil: a miss         "boom"   raises      "table"  returns a table
--   "num"       the number 42       other    "v:<key>:<n>"
-- where n counts the loads so far.
local c = kura.client()
assert(c:create_cache("rt") ~= nil, "create_cache")
assert(c:set("rt", "preloaded", "from the script"))

local loads = 0
kura.serve.on_miss = function(cache, key)
  loads = loads + 1
  local n = loads
  if key == "boom" then error("the origin exploded") end
  if key == "none" then return nil end
  if key == "table" then return {} end
  if key == "num" then return 42 end
  if key == "short" then return "short:" .. n, 1 end
  if key:sub(1, 5) == "slow:" then kura.sleep(0.3) end
  if key:sub(1, 7) == "slower:" then
    local log = os.getenv("KURA_TEST_MISS_LOG")
    if log then
      local f = assert(io.open(log, "a"))
      f:write(key, "\n")
      f:close()
    end
    kura.sleep(2)
  end
  return string.format("v:%s:%d", key, n)
end
