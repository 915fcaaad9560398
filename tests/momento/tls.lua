-- tests/momento/test_momento.sh, step 5: the momento backend over TLS (as
-- Momento's endpoints are), against the emulator serving a test certificate
-- (KURA_CA_FILE). 3,000 increments from 10 tasks at once must count exactly:
-- past about 1,000 calls on one connection, libcurl 7.88 and an nghttp2
-- server lose the connection (see src/core/net/grpc.c), which once failed calls
-- and duplicated others. Then a 1 MiB value round-trips.
local c = kura.client()
local cache = "tls"
assert(c:create_cache(cache) ~= nil)
local failures = {}
for round = 1, 3 do
  local key = "n" .. round
  local tasks = {}
  for i = 1, 10 do
    tasks[i] = kura.spawn(function()
      for _ = 1, 100 do
        local v, err = c:increment(cache, key, 1)
        if not v then failures[#failures + 1] = tostring(err) end
      end
    end)
  end
  for i = 1, 10 do tasks[i]:join() end
  local v, err = c:get(cache, key)
  assert(#failures == 0, "increments failed: " .. table.concat(failures, "; ", 1, math.min(#failures, 3)))
  assert(v == "1000", "round " .. round .. ": the counter is " .. tostring(v or err) .. ", not 1000")
end
local big = string.rep("0123456789abcdef", 65536)
assert(c:set(cache, "big", big))
local got, err = c:get(cache, "big")
assert(got == big, "1 MiB value: " .. tostring(got and #got or err))
print("tls: 3000 increments exact, 1 MiB round trip")
