-- The runtime's task calls: kura.spawn, task:join, kura.sleep, kura.now,
-- arg, require of the embedded library (docs/lua-api.md, "The kura module").
local t = require("kura.test")
local sub = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "kura_sub.lua")

t.test("require('kura') is the global kura", function()
  t.eq(require("kura"), kura)
  t.eq(type(kura.spawn), "function")
  t.eq(type(kura.version), "string")
end)

t.test("spawn + join returns every result, nils included", function()
  local task = kura.spawn(function(a, b) return a + b, nil, "x" end, 40, 2)
  t.eq(table.pack(task:join()), { n = 3, 42, nil, "x" })
end)

t.test("join on a finished task returns the results again", function()
  local task = kura.spawn(function() return "r" end)
  t.eq(task:join(), "r")
  t.eq(task:join(), "r")
  t.eq(task:status(), "done")
end)

t.test("join of a task that suspends", function()
  local task = kura.spawn(function() kura.sleep(0.01); return "late" end)
  t.eq(task:status(), "ready")
  t.eq(task:join(), "late")
end)

t.test("a task that raises: join returns nil, message with traceback", function()
  local task = kura.spawn(function() local x = nil; return x.field end)
  local v, err = task:join()
  t.is_nil(v)
  t.ok(err:find("attempt to index a nil value", 1, true), err)
  t.ok(err:find("stack traceback:", 1, true), err)
  t.ok(err:find("test_runtime.lua:%d+"), err)
  t.eq(task:status(), "failed")
  -- joined again: the same error
  t.eq(select(2, task:join()), err)
end)

t.test("a task that raises a table: err is its tostring plus traceback", function()
  local e = setmetatable({}, { __tostring = function() return "CODE: custom" end })
  local v, err = kura.spawn(function() error(e) end):join()
  t.is_nil(v)
  t.ok(err:find("^CODE: custom\nstack traceback:"), err)
end)

t.test("several joiners all get the results", function()
  local target = kura.spawn(function() kura.sleep(0.02); return 7 end)
  local joiners = {}
  for i = 1, 5 do
    joiners[i] = kura.spawn(function() return target:join() * i end)
  end
  for i = 1, 5 do t.eq(joiners[i]:join(), 7 * i) end
end)

t.test("a task cannot join itself", function()
  local self
  self = kura.spawn(function()
    return pcall(function() return self:join() end)
  end)
  local ok, err = self:join()
  t.eq(ok, false)
  t.ok(tostring(err):find("cannot join itself", 1, true), err)
end)

t.test("spawn does not run the task before the caller suspends", function()
  local ran = false
  local task = kura.spawn(function() ran = true end)
  t.eq(ran, false)
  kura.sleep(0)
  t.eq(ran, true)
  task:join()
end)

t.test("10,000 concurrent tasks that sleep and join", function()
  local n, tasks = 10000, {}
  local t0 = kura.now()
  for i = 1, n do
    tasks[i] = kura.spawn(function(k)
      kura.sleep(0.05 + (k % 7) * 0.001)
      return k
    end, i)
  end
  local sum = 0
  for i = 1, n do sum = sum + tasks[i]:join() end
  t.eq(sum, n * (n + 1) // 2)
  -- They slept together, not one after the other.
  t.ok(kura.now() - t0 >= 0.05)
end)

t.test("sleep wakes tasks in deadline order, ties in call order", function()
  local order, tasks = {}, {}
  for i, d in ipairs({ 0.03, 0.01, 0.02, 0.01 }) do
    tasks[i] = kura.spawn(function() kura.sleep(d); order[#order + 1] = i end)
  end
  for _, task in ipairs(tasks) do task:join() end
  t.eq(order, { 2, 4, 3, 1 })
end)

t.test("sleep lasts at least as long as asked", function()
  local t0 = kura.now()
  kura.sleep(0.03)
  t.ok(kura.now() - t0 >= 0.03, kura.now() - t0)
end)

t.test("sleep(0) and coroutine.yield() let the other tasks run", function()
  local log = {}
  local a = kura.spawn(function() for i = 1, 3 do log[#log + 1] = "a" .. i; kura.sleep(0) end end)
  local b = kura.spawn(function() for i = 1, 3 do log[#log + 1] = "b" .. i; coroutine.yield() end end)
  a:join(); b:join()
  t.eq(log, { "a1", "b1", "a2", "b2", "a3", "b3" })
end)

t.test("now is monotonic and in seconds", function()
  local prev = kura.now()
  t.eq(math.type(prev), "float")
  for _ = 1, 1000 do
    local n = kura.now()
    t.ok(n >= prev)
    prev = n
  end
  local t0 = kura.now()
  kura.sleep(0.02)
  local dt = kura.now() - t0
  t.ok(dt >= 0.02, dt)
end)

t.test("arg holds the script and its position", function()
  t.eq(type(arg), "table")
  t.ok(arg[0]:find("test_runtime.lua", 1, true), arg[0])
  t.ok(arg[-1] ~= nil, "the interpreter's arguments sit at negative indices")
end)

t.test("the embedded library loads on demand", function()
  t.eq(package.loaded["kura.test"], t)
  t.raises(function() require("kura.no_such_module") end, "kura.no_such_module")
end)

t.test("KURA_LUA_PATH overrides the embedded library, which stays the fallback", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/kura"))
  local f = assert(io.open(dir .. "/kura/hello.lua", "w"))
  f:write('return { where = "override" }')
  f:close()
  local code = [[print(require("kura.hello").where, type(require("kura.test").run))]]
  local out, err, status = sub.run(code, "", "KURA_LUA_PATH=" .. dir)
  t.eq({ out, status }, { "override\tfunction\n", 0 }, err)
  local _, err2, status2 = sub.run(code, "", "KURA_LUA_PATH= KURA_DEV=")
  t.eq(status2, 1)
  t.ok(err2:find("module 'kura.hello' not found", 1, true), err2)
  os.execute("rm -rf " .. dir)
end)

t.test("set_exit_status checks its argument", function()
  t.raises(function() kura.set_exit_status(-1) end, "0..255")
  t.raises(function() kura.set_exit_status("x") end, "number expected")
end)

t.run()
