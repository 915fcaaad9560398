-- kura.after / kura.every / timer:stop (docs/lua-api.md, "The kura module").
local t = require("kura.test")

-- Waits (without a time limit: ctest has one) until cond() holds.
local function wait_until(cond)
  while not cond() do kura.sleep(0.002) end
end

t.test("after runs fn once, as a task, after the delay", function()
  local t0, fired, ran_at = kura.now(), 0, nil
  local done = false
  local tm = kura.after(0.02, function()
    fired = fired + 1
    ran_at = kura.now() - t0
    kura.sleep(0.001) -- it is a task: it may suspend
    done = true
  end)
  t.eq(tm:active(), true)
  wait_until(function() return done end)
  t.eq(fired, 1)
  t.ok(ran_at >= 0.02, ran_at)
  t.eq(tm:active(), false)
  t.eq(tm:stop(), false) -- already fired
  kura.sleep(0.03)
  t.eq(fired, 1)
end)

t.test("after with a stop before it fires never runs", function()
  local fired = false
  local tm = kura.after(0.01, function() fired = true end)
  t.eq(tm:stop(), true)
  t.eq(tm:stop(), false)
  kura.sleep(0.03)
  t.eq(fired, false)
end)

t.test("every repeats until stopped, and gets the timer", function()
  local n, got = 0, nil
  local tm
  tm = kura.every(0.005, function(timer)
    n = n + 1
    got = timer
    if n == 4 then timer:stop() end
  end)
  wait_until(function() return not tm:active() end)
  kura.sleep(0.02)
  t.eq(n, 4)
  t.eq(got, tm)
end)

t.test("every never runs a beat before its time", function()
  local stamps, period = {}, 0.01
  local t0 = kura.now()
  local tm = kura.every(period, function(timer)
    stamps[#stamps + 1] = kura.now()
    if #stamps == 5 then timer:stop() end
  end)
  wait_until(function() return not tm:active() end)
  t.eq(#stamps, 5)
  for k = 1, 5 do t.ok(stamps[k] - t0 >= k * period, k) end
end)

t.test("timers fire in deadline order", function()
  local order = {}
  kura.after(0.03, function() order[#order + 1] = 3 end)
  kura.after(0.01, function() order[#order + 1] = 1 end)
  kura.after(0.02, function() order[#order + 1] = 2 end)
  kura.after(0, function() order[#order + 1] = 0 end)
  kura.sleep(0.05)
  t.eq(order, { 0, 1, 2, 3 })
end)

t.test("an unreferenced active timer still fires (it is anchored)", function()
  local fired = false
  kura.after(0.01, function() fired = true end)
  collectgarbage("collect")
  collectgarbage("collect")
  kura.sleep(0.03)
  t.eq(fired, true)
end)

t.test("wrong arguments raise", function()
  t.raises(function() kura.after("x", print) end, "number expected")
  t.raises(function() kura.after(1) end, "function expected")
  t.raises(function() kura.every(0, print) end, ">= 0.001")
  t.raises(function() kura.every(-1, print) end, ">= 0.001")
end)

-- Durations: a number (a numeric string is a type error), finite, >= 0
-- (kura.every: >= 0.001). NaN once meant "at once" and a negative delay
-- "now"; neither may pass without a word. Nothing is scheduled then.
t.test("NaN, negative, infinite and string durations raise, naming the value", function()
  local fired = false
  local function fn() fired = true end
  for _, call in ipairs({ kura.sleep, function(s) return kura.after(s, fn) end,
                          function(s) return kura.every(s, fn) end }) do
    t.raises(function() call("1") end, "number expected, got string")
    t.raises(function() call({}) end, "number expected, got table")
    t.raises(function() call(true) end, "number expected, got boolean")
    t.raises(function() call(0 / 0) end, "finite number >= 0%.?0?0?1?, got [-]?nan")
    t.raises(function() call(-1) end, "finite number >= 0%.?0?0?1?, got %-1")
    t.raises(function() call(-0.5) end, "got %-0%.5")
    t.raises(function() call(math.huge) end, "got inf")
    t.raises(function() call(-math.huge) end, "got %-inf")
  end
  t.raises(function() kura.every(0.0001, fn) end, ">= 0.001, got 0.0001")
  kura.sleep(0.02)
  t.eq(fired, false)
  kura.sleep(0)  -- 0 and no argument stay valid: a turn for the others
  kura.sleep()
  kura.sleep(nil)
  local tm = kura.after(0, fn)
  wait_until(function() return fired end)
  t.eq(tm:active(), false)
end)

t.run()
