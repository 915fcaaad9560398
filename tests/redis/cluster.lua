-- Redis Cluster redirections, run by tests/redis/test_redis_cluster.sh with
-- --backend redis-cluster://... and KURA_CLUSTER_CTL (a command:
-- "<ctl> migrate-start KEY | migrate-finish | check | empty").
local t = require("kura.test")

local CTL = assert(os.getenv("KURA_CLUSTER_CTL"), "run me through test_redis_cluster.sh")

local function ctl(args)
  t.ok(os.execute(CTL .. " " .. args), "ctl " .. args)
end

t.test("ASK during a slot migration, then MOVED after it, are followed", function()
  local c = kura.client()
  local cache = "mv"
  t.eq(c:create_cache(cache), true)
  local keys = {}
  for i = 1, 100 do
    keys[i] = "k" .. i
    t.eq(c:set(cache, keys[i], "v" .. i), true)
  end
  t.eq(c:set(cache, "moving", "one"), true)

  -- The key's slot is MIGRATING on its owner, the key already on the target:
  -- its owner answers ASK.
  ctl("migrate-start kura:2:mv:moving")
  t.eq(c:get(cache, "moving"), "one")
  t.eq(c:set(cache, "moving", "two"), true)
  t.eq(c:key_exists(cache, "moving"), true)
  t.eq(c:increment(cache, "counter-" .. 1, 1), 1)

  -- The slot now belongs to the target; our slot map still names the old
  -- owner, which answers MOVED.
  ctl("migrate-finish")
  t.eq(c:get(cache, "moving"), "two")
  t.eq(c:get(cache, "moving"), "two")
  local got = c:get_batch(cache, keys)
  for i = 1, 100 do t.eq(got[keys[i]], "v" .. i) end
  ctl("check")

  t.eq(c:delete_cache(cache), true)
  t.eq(c:get(cache, "moving"), nil)
  ctl("empty")
end)

t.run()
