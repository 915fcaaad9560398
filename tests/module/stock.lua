-- kura as a plain Lua 5.4 module: run by the stock lua5.4 with the installed
-- kura.so (test_stock_lua.sh), once per backend: lua5.4 stock.lua URL.
-- Raises (exit 1) at the first thing that is not as docs/lua-api.md says.
local kura = require "kura"
local backend = assert(arg[1], "usage: lua5.4 stock.lua BACKEND_URL")
local passed = 0

local function test(name, fn)
  local ok, err = pcall(fn)
  if not ok then
    io.stderr:write("FAIL ", name, ": ", tostring(err), "\n")
    os.exit(1)
  end
  passed = passed + 1
  print("ok   " .. name)
end

test("the module is the one kura run has", function()
  assert(package.loaded.kura == kura and type(kura.version) == "string")
  assert(type(kura.run) == "function" and type(kura.poll) == "function")
  assert(require("kura.args") and require("kura.warmup"))
end)

test("kura.run returns fn's results and raises its error with a traceback", function()
  local a, b, c = kura.run(function(x, y) kura.sleep(0.01) return x + y, "two", nil end, 40, 2)
  assert(a == 42 and b == "two" and c == nil, tostring(a))
  assert(select("#", kura.run(function() end)) == 0)
  local ok, err = pcall(kura.run, function() kura.sleep(0) error("boom") end)
  assert(not ok and err:find("boom", 1, true) and err:find("stack traceback", 1, true), err)
  -- an error object that is no string comes back as it was raised
  local obj = { code = 7 }
  ok, err = pcall(kura.run, function() kura.sleep(0) error(obj) end)
  assert(not ok and rawequal(err, obj), tostring(err))
  ok, err = pcall(kura.run, function() error(setmetatable({}, { __tostring = function() error("no") end })) end)
  assert(not ok and type(err) == "table", type(err))
  ok, err = pcall(kura.run, function() error(nil) end)
  assert(not ok and type(err) == "string", tostring(err)) -- nil: a message says what was raised
  ok, err = pcall(kura.run, function() error(42) end)
  assert(not ok and type(err) == "string" and err:find("42", 1, true), tostring(err))
  ok, err = pcall(kura.run, 42)
  assert(not ok and err:find("function expected", 1, true), err)
end)

test("tasks, join, after and every under kura.run", function()
  local order = {}
  local n = kura.run(function()
    local t = kura.spawn(function(v) kura.sleep(0.02) order[#order + 1] = "child" return v * 2 end, 21)
    local ticks = 0
    local tm = kura.every(0.005, function() ticks = ticks + 1 end)
    kura.after(0.01, function() order[#order + 1] = "after" end)
    local v = t:join()
    while ticks < 3 do kura.sleep(0.005) end
    tm:stop()
    return v
  end)
  assert(n == 42, tostring(n))
  assert(order[1] == "after" and order[2] == "child", table.concat(order, ","))
end)

test("kura.run inside a task raises: the loop runs already", function()
  local msg = kura.run(function()
    local ok, err = pcall(kura.run, function() end)
    assert(not ok)
    local ok2, err2 = pcall(kura.poll)
    assert(not ok2 and err2:find("running already", 1, true), err2)
    return err
  end)
  assert(msg:find("running already", 1, true), msg)
end)

test("kura.poll drives spawned tasks from the host's own loop", function()
  assert(kura.poll() == 0 and kura.poll(0.01) == 0) -- idle: returns at once
  local done = {}
  for i = 1, 5 do
    kura.spawn(function() kura.sleep(0.005 * i) done[#done + 1] = i end)
  end
  local turns, t0 = 0, kura.now()
  local pending = kura.poll()
  assert(pending == 5, "pending " .. pending)
  while pending > 0 do
    pending = kura.poll(1)
    turns = turns + 1
    assert(turns < 1000, "kura.poll does not wait")
  end
  assert(#done == 5 and kura.now() - t0 < 10, #done)
  local ok, err = pcall(kura.poll, -1)
  assert(not ok and err:find("seconds must be", 1, true), err)
end)

test("sleep outside a task raises and names why", function()
  local ok, err = pcall(kura.sleep, 0.01)
  assert(not ok and err:find("cannot suspend here", 1, true), err)
end)

test("the client on " .. backend .. ": create, set, get, increment, delete", function()
  local c = assert(kura.client{ backend = backend })
  local cache = "stock-lua-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e6))
  kura.run(function()
    assert(c:create_cache(cache))
    assert(c:set(cache, "k", "v\0binary", 60))
    assert(c:get(cache, "k") == "v\0binary")
    assert(c:get(cache, "missing") == nil)
    assert(c:increment(cache, "n", 5) == 5 and c:increment(cache, "n", -2) == 3)
    assert(c:delete(cache, "k"))
    assert(c:get(cache, "k") == nil)
    local v, err = c:get("no-such-cache-" .. cache, "k")
    assert(v == nil and err.code == "NOT_FOUND_ERROR", tostring(err))
    -- many calls at once from many tasks
    local ts = {}
    for i = 1, 50 do
      ts[i] = kura.spawn(function() return c:increment(cache, "many") end)
    end
    for i = 1, 50 do assert(ts[i]:join()) end
    assert(tonumber(c:get(cache, "many")) == 50)
    assert(c:delete_cache(cache))
  end)
end)

test("the client on " .. backend .. " from tasks that kura.poll drives", function()
  local c = assert(kura.client{ backend = backend })
  local cache = "stock-poll-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e6))
  local made = kura.spawn(function() return c:create_cache(cache) end)
  while kura.poll(0.05) > 0 do end
  assert(made:join())
  local ts = {}
  for i = 1, 20 do
    ts[i] = kura.spawn(function()
      assert(c:set(cache, "k" .. i, string.rep("v", i)))
      return c:get(cache, "k" .. i)
    end)
  end
  local turns = 0
  while kura.poll(0.05) > 0 do turns = turns + 1 assert(turns < 100000) end
  for i = 1, 20 do assert(ts[i]:join() == string.rep("v", i), i) end
  kura.spawn(function() assert(c:delete_cache(cache)) end)
  while kura.poll(0.05) > 0 do end
end)

if backend == "memory" then
  test("memory calls need no loop at all", function()
    local c = kura.client()
    assert(c:create_cache("plain"))
    assert(c:set("plain", "k", "v") and c:get("plain", "k") == "v")
    assert(c:delete_cache("plain"))
  end)
end

print(passed .. " passed")
