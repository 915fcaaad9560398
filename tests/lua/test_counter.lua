-- kura.counter: plain counters with a TTL, fixed and sliding window rate
-- limiters (exact at window edges, with an injected clock), refunds of denied
-- calls, concurrent callers. Runs on any backend (tests/workflows/ registers
-- it per backend).
local t = require("kura.test")
local counter = require("kura.counter")

local function fresh_cache(prefix)
  local c = kura.client()
  local name = string.format("kwf-%s-%08x", prefix, math.random(0, 0x7fffffff))
  t.eq(c:create_cache(name), true)
  return c, name
end

-- A clock the test moves by hand.
local function manual_clock(start)
  local clock = { t = start }
  clock.now = function() return clock.t end
  return clock
end

t.test("counter: incr, get, get_many, reset", function()
  local c, cache = fresh_cache("cnt")
  local cnt = counter.new{ client = c, cache = cache, ttl = 30, prefix = "score:" }
  t.eq(cnt:get("alice"), 0)
  t.eq(cnt:incr("alice"), 1)
  t.eq(cnt:incr("alice", 10), 11)
  t.eq(cnt:incr("bob", -2), -2)
  t.eq(cnt:get("alice"), 11)
  t.eq(c:get(cache, "score:alice"), "11")
  t.eq(cnt:get_many({ "alice", "bob", "carol" }), { alice = 11, bob = -2, carol = 0 })
  t.eq(cnt:reset("alice"), true)
  t.eq(cnt:get("alice"), 0)
  t.eq(cnt:incr("alice"), 1)
  c:delete_cache(cache)
end)

t.test("counter: the TTL applies on create, later increments keep it", function()
  local c, cache = fresh_cache("cttl")
  local cnt = counter.new{ client = c, cache = cache, ttl = 30 }
  cnt:incr("n")
  local ttl1 = c:item_get_ttl(cache, "n")
  t.ok(ttl1 > 28 and ttl1 <= 30, "ttl " .. tostring(ttl1))
  t.eq(c:update_ttl(cache, "n", 5), true)
  t.eq(cnt:incr("n", 2), 3)
  t.ok(c:item_get_ttl(cache, "n") <= 5, "increment must not reset the TTL")
  c:delete_cache(cache)
end)

t.test("counter: errors are returned, bad options raise", function()
  local c, cache = fresh_cache("cerr")
  local cnt = counter.new{ client = c, cache = cache }
  t.eq(c:set(cache, "word", "hello"), true)
  local v, err = cnt:incr("word")
  t.is_nil(v)
  t.eq(err.code, "FAILED_PRECONDITION_ERROR")
  local missing = counter.new{ client = c, cache = cache .. "-absent" }
  local v2, err2 = missing:get("x")
  t.is_nil(v2)
  t.eq(err2.code, "NOT_FOUND_ERROR")
  t.raises(function() counter.new{ client = c } end, "cache must be a string")
  t.raises(function() counter.rate_limiter{ client = c, cache = cache, limit = 1.5, window = 1 } end,
           "limit")
  t.raises(function() counter.rate_limiter{ client = c, cache = cache, limit = 1, window = 0 } end,
           "window")
  t.raises(function()
    counter.rate_limiter{ client = c, cache = cache, limit = 1, window = 1, kind = "leaky" }
  end, "kind")
  local lim = counter.rate_limiter{ client = c, cache = cache, limit = 1, window = 1 }
  t.raises(function() lim:allow({}) end, "id must be a string")
  t.raises(function() lim:allow("a", -1) end, "cost")
  c:delete_cache(cache)
end)

t.test("fixed window: exact at the edges", function()
  local c, cache = fresh_cache("fixed")
  local clock = manual_clock(1700000000) -- a window boundary (multiple of 10)
  local lim = counter.rate_limiter{ client = c, cache = cache, limit = 5, window = 10,
                                    now = clock.now }
  for i = 1, 5 do
    local ok, remaining, reset_in = lim:allow("u1")
    t.eq(ok, true, "call " .. i)
    t.eq(remaining, 5 - i)
    t.near(reset_in, 10, 1e-9)
  end
  clock.t = 1700000009.999
  local ok, remaining, reset_in = lim:allow("u1")
  t.eq(ok, false)
  t.eq(remaining, 0)
  t.near(reset_in, 0.001, 1e-6)
  t.eq(lim:allow("u2"), true, "ids are independent")
  clock.t = 1700000010
  ok, remaining, reset_in = lim:allow("u1")
  t.eq(ok, true, "a new window starts exactly at the boundary")
  t.eq(remaining, 4)
  t.near(reset_in, 10, 1e-9)
  t.eq(c:get(cache, "u1:170000001"), "1", "key = id .. ':' .. window index")
  t.eq(c:get(cache, "u1:170000000"), "5", "denied calls were refunded")
  c:delete_cache(cache)
end)

t.test("fixed window: costs, refunds and queries", function()
  local c, cache = fresh_cache("cost")
  local clock = manual_clock(1000)
  local lim = counter.rate_limiter{ client = c, cache = cache, limit = 10, window = 60,
                                    now = clock.now }
  t.eq({ lim:allow("k", 7) }, { true, 3, 20 })
  t.eq({ lim:allow("k", 4) }, { false, 3, 20 }, "too big: denied, nothing spent")
  t.eq({ lim:allow("k", 3) }, { true, 0, 20 }, "the rest still fits")
  t.eq({ lim:allow("k", 0) }, { true, 0, 20 }, "a zero cost only asks")
  t.eq({ lim:allow("k", 1) }, { false, 0, 20 })
  local zero = counter.rate_limiter{ client = c, cache = cache, limit = 0, window = 60,
                                     now = clock.now, prefix = "z:" }
  t.eq(zero:allow("k"), false, "limit 0 allows nothing")
  c:delete_cache(cache)
end)

t.test("sliding window: the previous window weighs by overlap", function()
  local c, cache = fresh_cache("slide")
  local clock = manual_clock(2000000005)
  local lim = counter.rate_limiter{ client = c, cache = cache, limit = 10, window = 10,
                                    kind = "sliding", now = clock.now }
  for _ = 1, 10 do t.eq(lim:allow("p"), true) end
  t.eq(lim:allow("p"), false)
  clock.t = 2000000010 -- next window, overlap 100%: the 10 still count fully
  local ok, remaining, reset_in = lim:allow("p")
  t.eq(ok, false)
  t.eq(remaining, 0)
  t.near(reset_in, 10, 1e-9)
  clock.t = 2000000015 -- overlap 50%: estimate 5, so 5 more fit
  for i = 1, 5 do
    ok, remaining = lim:allow("p")
    t.eq(ok, true, "call " .. i)
    t.eq(remaining, 5 - i)
  end
  t.eq(lim:allow("p"), false)
  clock.t = 2000000019.5 -- overlap 5%: 5 + 10 * 0.05 = 5.5 -> 4 more fit
  for _ = 1, 4 do t.eq(lim:allow("p"), true) end
  t.eq(lim:allow("p"), false)
  clock.t = 2000000030 -- two windows later: all forgotten
  ok, remaining = lim:allow("p")
  t.eq(ok, true)
  t.eq(remaining, 9)
  c:delete_cache(cache)
end)

t.test("concurrent callers: exactly the limit is allowed", function()
  local c, cache = fresh_cache("conc")
  local clock = manual_clock(3000)
  for _, kind in ipairs({ "fixed", "sliding" }) do
    local lim = counter.rate_limiter{ client = c, cache = cache, limit = 50, window = 100,
                                      kind = kind, now = clock.now, prefix = kind .. ":" }
    local allowed, tasks = 0, {}
    for i = 1, 200 do
      tasks[i] = kura.spawn(function()
        if lim:allow("hot") then allowed = allowed + 1 end
      end)
    end
    for _, task in ipairs(tasks) do task:join() end
    t.eq(allowed, 50, kind)
    t.eq(c:get(cache, kind .. ":hot:30"), "50", kind .. ": denied calls were all refunded")
  end
  c:delete_cache(cache)
end)

t.test("the default clock is the wall clock", function()
  local now = counter.wall_clock()
  t.ok(math.abs(now - os.time()) < 2, "wall_clock " .. now .. " vs os.time " .. os.time())
  local c, cache = fresh_cache("wall")
  local lim = counter.rate_limiter{ client = c, cache = cache, limit = 2, window = 3600 }
  local ok, remaining, reset_in = lim:allow("x")
  t.eq(ok, true)
  t.eq(remaining, 1)
  t.ok(reset_in > 0 and reset_in <= 3600)
  c:delete_cache(cache)
end)

t.run()
