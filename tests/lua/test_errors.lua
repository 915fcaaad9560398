-- Errors: uncaught task errors (traceback on stderr, exit status 1, the
-- other tasks go on), suspending where Lua cannot yield, deadlocks.
local t = require("kura.test")
local sub = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "kura_sub.lua")

t.test("sleep inside table.sort's comparator raises a clear error", function()
  local err = t.raises(function()
    table.sort({ 3, 1, 2 }, function(a, b) kura.sleep(0); return a < b end)
  end, "cannot suspend here")
  t.ok(tostring(err):find("kura.sleep", 1, true), err)
end)

t.test("join inside a __tostring metamethod raises", function()
  local other = kura.spawn(function() kura.sleep(0.01) end)
  local obj = setmetatable({}, { __tostring = function() other:join(); return "x" end })
  t.raises(function() return tostring(obj) end, "cannot suspend here")
  other:join()
end)

t.test("sleep inside a plain coroutine raises, the task goes on", function()
  local co = coroutine.wrap(function() kura.sleep(0.001) end)
  t.raises(co, "not called from a kura task")
  kura.sleep(0.001)
end)

t.test("suspending through pcall works (pcall is yieldable)", function()
  local ok, v = pcall(function() kura.sleep(0.001); return "after" end)
  t.eq(ok, true)
  t.eq(v, "after")
end)

t.test("error in a task: printed with traceback, exit 1, others finish", function()
  local out, err, status = sub.run([[
    kura.spawn(function() kura.sleep(0.01); error("boom in task") end)
    kura.spawn(function() kura.sleep(0.05); print("other finished") end)
    print("main finished")
  ]])
  t.eq(status, 1)
  t.ok(out:find("main finished", 1, true), out)
  t.ok(out:find("other finished", 1, true), out)
  t.ok(err:find("kura: error in task: [^\n]*boom in task\nstack traceback:"), err)
end)

t.test("error in the main chunk: exit 1, spawned tasks still finish", function()
  local out, err, status = sub.run([[
    kura.spawn(function() kura.sleep(0.02); print("survivor") end)
    error("main failed")
  ]])
  t.eq(status, 1)
  t.ok(out:find("survivor", 1, true), out)
  t.ok(err:find("main failed", 1, true), err)
end)

t.test("an error that is joined is not uncaught: exit 0", function()
  local out, err, status = sub.run([[
    local task = kura.spawn(function() error("handled") end)
    kura.sleep(0.01)
    local v, e = task:join()
    print(v, e:match("handled"))
  ]])
  t.eq(status, 0, err)
  t.eq(out, "nil\thandled\n")
  t.eq(err, "")
end)

t.test("an error in a timer callback is reported, the timer goes on", function()
  local out, err, status = sub.run([[
    local n = 0
    local tm
    tm = kura.every(0.005, function()
      n = n + 1
      if n == 3 then tm:stop(); print("ticks", n) end
      if n == 1 then error("tick failed") end
    end)
  ]])
  t.eq(status, 1)
  t.eq(out, "ticks\t3\n")
  t.ok(err:find("tick failed", 1, true), err)
end)

t.test("a failed task kept in a variable and never joined is reported at the end", function()
  local _, err, status = sub.run([[
    keep = kura.spawn(function() error("never joined") end)
  ]])
  t.eq(status, 1)
  t.ok(err:find("never joined", 1, true), err)
end)

t.test("a deadlock ends the run with status 1 and says so", function()
  local _, err, status = sub.run([[
    local a, b
    a = kura.spawn(function() kura.sleep(0); b:join() end)
    b = kura.spawn(function() kura.sleep(0); a:join() end)
  ]])
  t.eq(status, 1)
  t.ok(err:find("deadlock", 1, true), err)
end)

t.test("set_exit_status sets the status of a clean run", function()
  local _, _, status = sub.run("kura.set_exit_status(3)")
  t.eq(status, 3)
end)

t.test("arg and ... as the lua command gives them", function()
  local out, _, status = sub.run([[print(#arg, arg[1], arg[2], select("#", ...), ...)]], "x 'y z'")
  t.eq(status, 0)
  t.eq(out, "2\tx\ty z\t2\tx\ty z\n")
end)

t.run()
