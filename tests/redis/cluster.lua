-- Redis Cluster redirections, run by tests/redis/test_redis_cluster.sh with
-- --backend redis-cluster://... and KURA_CLUSTER_CTL (a command:
-- "<ctl> migrate-start KEY | migrate-finish | check | empty").
local t = require("kura.test")

local CTL = assert(os.getenv("KURA_CLUSTER_CTL"), "run me through test_redis_cluster.sh")

local function ctl(args)
  t.ok(os.execute(CTL .. " " .. args), "ctl " .. args)
end

local stale = kura.client() -- its slot map is loaded now, before the migration

t.test("ASK during a slot migration, then MOVED after it, are followed", function()
  t.eq(stale:list_caches() ~= nil, true)
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

  -- A client whose map predates the move (unless its periodic refresh
  -- came first) sends the moved slot's marker to its old owner within a
  -- script of that node's markers, which fails: every marker then goes on
  -- its own, routed and redirected.
  t.eq(stale:create_cache("mv2"), true)
  ctl("markers mv2 16384")
  ctl("sets") -- 16384 or more when the slow way was taken
  t.eq(stale:set("mv2", "moving", "three"), true)
  t.eq(c:get("mv2", "moving"), "three")
  t.eq(stale:delete_cache("mv2"), true)
  ctl("markers mv2 0")

  t.eq(c:delete_cache(cache), true)
  t.eq(c:get(cache, "moving"), nil)
  ctl("empty")
end)

t.run()
