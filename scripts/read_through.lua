-- scripts/read_through.lua: a cache in front of a slow HTTP origin, with
-- stale-while-revalidate and negative caching (kura.refresh.get_or_load).
--
-- usage: scripts/run scripts/read_through.lua [options]
--
--   --origin URL       the origin: GET URL/products/ID.json answers 200 with
--                      the product or 404 (default: a local origin this
--                      script starts with python3 -m http.server)
--   --products N       product ids asked for, 1 to 1000 (default 20; ids
--                      divisible by 4 do not exist at the local origin)
--   --ttl S            seconds a product stays fresh, >= 0.1 (default 3)
--   --stale S          seconds a stale product is still served while one
--                      task reloads it, >= 0 (default 30)
--   --negative-ttl S   seconds "no such product" is remembered, >= 0
--                      (default 10)
--   -h, --help         this text
--
-- Four rounds: a cold read of every product (one origin request each; the
-- absent ones are remembered as absent); a warm read (no origin request);
-- after the TTL, 50 readers of one product at once (all get the stale value
-- at once, one reload runs); and with the origin gone (the local one is
-- stopped; with --origin, a wrong port stands for it), reads still answer
-- from the stale values. Works on any backend, e.g.
-- scripts/run --backend redis://127.0.0.1:6379 scripts/read_through.lua
local refresh = require("kura.refresh")
local args = require("kura.args")

local CACHE = "read-through-demo"

-- A local origin: python3's file server over a folder of product files.
local function start_origin(n)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/products"))
  for id = 1, n do
    if id % 4 ~= 0 then
      local f = assert(io.open(string.format("%s/products/%d.json", dir, id), "w"))
      f:write(kura.json.encode({ id = id, name = "product " .. id, price = id * 3 }))
      f:close()
    end
  end
  local port = 20000 + math.random(0, 20000)
  local pidfile = dir .. "/pid"
  local ok = os.execute(string.format("cd %s && (python3 -m http.server %d --bind 127.0.0.1 " ..
    ">/dev/null 2>&1 & echo $! > %s)", dir, port, pidfile))
  if not ok then return nil, "cannot start python3 -m http.server" end
  local f = assert(io.open(pidfile))
  local pid = f:read("l")
  f:close()
  local url = "http://127.0.0.1:" .. port
  for _ = 1, 100 do -- up within 5 s
    if kura.http.get(url .. "/products/1.json", { timeout = 0.5 }) then
      return { url = url, pid = pid, dir = dir }
    end
    kura.sleep(0.05)
  end
  os.execute("kill " .. pid)
  return nil, "the local origin did not answer on " .. url
end

local function stop_origin(origin)
  if origin.pid then os.execute("kill " .. origin.pid .. " 2>/dev/null") end
  if origin.dir then os.execute("rm -rf " .. origin.dir) end
  origin.pid, origin.dir = nil, nil
end

local function loader_for(state)
  return function(key)
    state.requests = state.requests + 1
    local res, err = kura.http.get(state.url .. "/products/" .. key:match("%d+") .. ".json",
                                   { timeout = 2 })
    kura.sleep(state.delay) -- the origin is slow
    if not res then return nil, err end
    if res.status == 404 then return nil end -- absent: remembered for negative_ttl
    if res.status ~= 200 then return nil, "origin answered " .. res.status end
    return res.body
  end
end

-- Every product at once, one task each.
local function read_all(c, o, load, opts)
  local tasks = {}
  for id = 1, o.products do
    tasks[id] = kura.spawn(refresh.get_or_load, c, CACHE, "product:" .. id, load, opts)
  end
  local found, absent, failed = 0, 0, 0
  for _, task in ipairs(tasks) do
    local v, err = task:join()
    if v then found = found + 1 elseif err then failed = failed + 1 else absent = absent + 1 end
  end
  return found, absent, failed
end

-- Runs fn (the readers), lets background reloads land, prints what it took.
local function round(title, state, fn)
  local before, t0 = state.requests, kura.now()
  local line = fn()
  local answered = kura.now() - t0
  kura.sleep(state.delay + 0.2)
  print(string.format("%-34s %s in %.3f s; %d origin request(s)", title, line, answered,
                      state.requests - before))
end

local function demo(c, o, state)
  local load = loader_for(state)
  local opts = { ttl = o.ttl, stale = o.stale, negative_ttl = o.negative_ttl, beta = 0 }
  local function all()
    local f, a, e = read_all(c, o, load, opts)
    return string.format("%d found, %d absent, %d failed", f, a, e)
  end
  round("1. cold read of every product:", state, all)
  round("2. warm read:", state, all)
  kura.sleep(o.ttl + 0.1)
  round("3. 50 readers of a stale product:", state, function()
    local tasks, stale = {}, 0
    for i = 1, 50 do tasks[i] = kura.spawn(refresh.get_or_load, c, CACHE, "product:1", load, opts) end
    local first = tasks[1]:join()
    for i = 1, 50 do if tasks[i]:join() == first then stale = stale + 1 end end
    return string.format("%d/50 got the stale value", stale)
  end)
  return opts
end

local o = args.parse(arg, {
  { "--origin", "str" },
  { "--products", "int", 20, min = 1, max = 1000 },
  { "--ttl", "num", 3, min = 0.1 },
  { "--stale", "num", 30, min = 0 },
  { "--negative-ttl", "num", 10, min = 0 },
})
if o then
  local origin, err = { url = o.origin }, nil
  if not o.origin then origin, err = start_origin(o.products) end
  if not origin then
    io.stderr:write("read_through.lua: ", err, " (or give --origin URL)\n")
    return kura.set_exit_status(1)
  end
  local c = kura.client()
  local ok, cerr = c:create_cache(CACHE)
  if ok == nil then
    stop_origin(origin)
    io.stderr:write("read_through.lua: cannot create the cache: ", tostring(cerr), "\n")
    return kura.set_exit_status(1)
  end
  c:flush_cache(CACHE)
  local state = { url = origin.url, requests = 0, delay = 0.2 }
  print(string.format("origin %s, %d products, ttl %g s, stale %g s, negative_ttl %g s",
                      origin.url, o.products, o.ttl, o.stale, o.negative_ttl))
  local ok2, derr = pcall(function()
    local opts = demo(c, o, state)
    stop_origin(origin)
    state.url = "http://127.0.0.1:1" -- nothing listens there: the origin is gone
    kura.sleep(o.ttl + 0.1)
    round("4. the origin is gone, read again:", state, function()
      local f, a, e = read_all(c, o, loader_for(state), opts)
      return string.format("%d found (stale), %d absent, %d failed", f, a, e)
    end)
  end)
  stop_origin(origin)
  c:delete_cache(CACHE)
  if not ok2 then error(derr, 0) end
end
