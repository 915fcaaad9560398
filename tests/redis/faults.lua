-- Fault tests of the Redis backend, run by tests/redis/test_redis_faults.sh,
-- which owns the redis-server and passes:
--   KURA_FAULT_PORT, KURA_FAULT_PASS (its password), KURA_FAULT_WRONG (a wrong
--   one) and KURA_FAULT_CTL (a command: "<ctl> kill|start|stop|cont").
-- Checks: the server killed mid-load (in-flight calls end with
-- CONNECTION_ERROR or TIMEOUT_ERROR within the timeout, no task hangs, calls
-- succeed again after the restart without a new client); a server that never
-- answers (TIMEOUT_ERROR at the deadline; an increment sent to it is
-- uncertain, one that was never sent is retryable); a wrong or missing
-- password (AUTHENTICATION_ERROR, with no password in any message).
local t = require("kura.test")

local PORT = assert(os.getenv("KURA_FAULT_PORT"), "run me through test_redis_faults.sh")
local PASS = os.getenv("KURA_FAULT_PASS")
local WRONG = os.getenv("KURA_FAULT_WRONG")
local CTL = os.getenv("KURA_FAULT_CTL")
local TIMEOUT = 1.0 -- seconds, the clients' timeout
local SLACK = 1.0   -- seconds a call may take past its timeout (loop stalls, a busy machine)

local function url(pass)
  if pass then return string.format("redis://:%s@127.0.0.1:%s", pass, PORT) end
  return "redis://127.0.0.1:" .. PORT
end

local function client(pass)
  return kura.client{ backend = url(pass == nil and PASS or pass or nil), timeout = TIMEOUT }
end

-- os.execute stops the whole loop while it runs (the restart waits for the
-- server to answer): no call can end meanwhile, so the seconds it took are
-- counted and allowed on top of a call's timeout.
local blocked = 0
local function server(action)
  local t0 = kura.now()
  local ok = os.execute(CTL .. " " .. action)
  blocked = blocked + (kura.now() - t0)
  assert(ok, "server control failed: " .. action)
end

-- A watchdog: a task that hangs makes the whole file fail instead of
-- waiting for ctest's timeout.
local watchdog = kura.after(120, function()
  io.stderr:write("faults.lua: a task hangs (watchdog fired)\n")
  os.exit(1)
end)

-- Calls in a loop from several tasks; results per phase.
local function load(c, cache, ntasks, state)
  local tasks = {}
  for i = 1, ntasks do
    tasks[i] = kura.spawn(function()
      while not state.stop do
        local t0 = kura.now()
        local _, err
        if i % 4 == 0 then
          _, err = c:set(cache, "k" .. i, "v" .. i)
        elseif i % 4 == 2 then
          _, err = c:increment(cache, "n" .. i)
        else
          _, err = c:get(cache, "k" .. i)
        end
        local dt = kura.now() - t0
        if dt > state.worst then state.worst = dt end
        local ph = state.phase
        if err and err.uncertain and err.retryable then state.bad_flags = state.bad_flags + 1 end
        if err then
          local codes = state.errs[ph]
          codes[err.code] = (codes[err.code] or 0) + 1
          if err.code == "NOT_FOUND_ERROR" then c:create_cache(cache) end -- data was lost
          if err.code == "CONNECTION_ERROR" then kura.sleep(0.01) end     -- refused at once
        else
          state.ok[ph] = state.ok[ph] + 1
        end
      end
    end)
  end
  return tasks
end

local function only_codes(codes, allowed, what)
  for code, n in pairs(codes) do
    t.ok(allowed[code], string.format("%s: unexpected %s (%d times)", what, code, n))
  end
end

t.test("server killed mid-load: errors within the timeout, then success again", function()
  local c = client()
  local cache = "faults-kill"
  blocked = 0
  t.ok(c:create_cache(cache) ~= nil, "create_cache")
  local state = { phase = "before", stop = false, worst = 0, bad_flags = 0,
                  ok = { before = 0, down = 0, up = 0 }, errs = { before = {}, down = {}, up = {} } }
  local tasks = load(c, cache, 20, state)
  kura.sleep(0.3)
  state.phase = "down"
  server("kill")
  kura.sleep(2 * TIMEOUT + 0.5)
  server("start")
  state.phase = "up"
  local deadline = kura.now() + 20
  while state.ok.up < 200 and kura.now() < deadline do kura.sleep(0.05) end
  state.stop = true
  for _, task in ipairs(tasks) do task:join() end

  t.ok(state.ok.before > 0, "calls succeeded before the kill")
  only_codes(state.errs.before, {}, "before the kill")
  local down = 0
  for _, n in pairs(state.errs.down) do down = down + n end
  t.ok(down > 0, "calls failed while the server was down")
  only_codes(state.errs.down, { CONNECTION_ERROR = true, TIMEOUT_ERROR = true }, "server down")
  only_codes(state.errs.up, { CONNECTION_ERROR = true, TIMEOUT_ERROR = true, NOT_FOUND_ERROR = true },
             "after the restart")
  t.ok(state.ok.up >= 200, "calls succeed again after the restart: " .. state.ok.up)
  t.eq(state.bad_flags, 0, "errors both uncertain and retryable")
  t.ok(state.worst <= TIMEOUT + SLACK + blocked,
       string.format("slowest call took %.3f s (timeout %.1f s, the loop stood %.3f s in os.execute)",
                     state.worst, TIMEOUT, blocked))
  t.eq(c:set(cache, "after", "yes"), true)
  t.eq(c:get(cache, "after"), "yes")
end)

t.test("a server that never answers: TIMEOUT_ERROR at the deadline", function()
  local c = client()
  local cache = "faults-stop"
  t.ok(c:create_cache(cache) ~= nil, "create_cache")
  server("stop") -- SIGSTOP: connections are accepted by the kernel, nothing answers
  local tasks, fresh = {}, client()
  for i = 1, 14 do
    tasks[i] = kura.spawn(function()
      local cl = i % 2 == 0 and c or fresh -- a connected client and a fresh one
      local t0 = kura.now()
      local v, err
      if i <= 4 then
        v, err = cl:set(cache, "k", "v")
      elseif i <= 10 then
        v, err = cl:get(cache, "k")
      else
        v, err = cl:increment(cache, "n")
      end
      return kura.now() - t0, v, err
    end)
  end
  local results = {}
  for i, task in ipairs(tasks) do results[i] = table.pack(task:join()) end
  server("cont")
  for i, r in ipairs(results) do
    local dt, v, err = r[1], r[2], r[3]
    t.is_nil(v, "no value from a frozen server")
    t.ok(err, "an error from a frozen server")
    local allowed = ((i <= 4 or i > 10) and i % 2 == 1)
                    and { TIMEOUT_ERROR = true, CONNECTION_ERROR = true } or { TIMEOUT_ERROR = true }
    if i > 10 and i % 2 == 0 then
      -- An increment sent to the frozen server may have run there: the
      -- outcome is unknown, and a retry could count it twice.
      t.eq(err.uncertain, true, "call " .. i .. ": uncertain")
      t.eq(err.retryable, false, "call " .. i .. ": retryable")
    elseif i > 10 then
      -- The fresh client never got past its handshake: nothing was sent.
      t.eq(err.uncertain, nil, "call " .. i .. ": uncertain")
      t.eq(err.retryable, true, "call " .. i .. ": retryable")
    end
    -- A set on a fresh client may fail on the connect deadline (CONNECTION_ERROR,
    -- never retried: set goes out once per attempt); everything else times out.
    -- An increment is never sent again, so on the fresh client it ends with
    -- the connection attempt, which started when the client was made.
    t.ok(allowed[err.code], "call " .. i .. ": " .. tostring(err))
    local early = i > 10 and i % 2 == 1 and err.code == "CONNECTION_ERROR"
    t.ok((early or dt >= TIMEOUT * 0.9) and dt <= TIMEOUT + SLACK,
         string.format("call %d ended after %.3f s (timeout %.1f s)", i, dt, TIMEOUT))
  end
  -- Once the server answers again, both clients work.
  local deadline, ok = kura.now() + 10, false
  while not ok and kura.now() < deadline do
    ok = c:set(cache, "k", "v") and fresh:get(cache, "k") == "v"
    if not ok then kura.sleep(0.05) end
  end
  t.ok(ok, "calls succeed after SIGCONT")
  t.eq(c:delete_cache(cache), true)
end)

t.test("wrong or missing password: AUTHENTICATION_ERROR, no password shown", function()
  for _, pass in ipairs({ WRONG, false }) do
    local c = client(pass)
    local what = pass and "wrong password" or "no password"
    for _, call in ipairs({
      function() return c:get("faults-auth", "k") end,
      function() return c:set("faults-auth", "k", "v") end,
      function() return c:create_cache("faults-auth") end,
      function() return c:list_caches() end,
    }) do
      local v, err = call()
      t.is_nil(v, what)
      t.ok(err and err.code == "AUTHENTICATION_ERROR", what .. ": " .. tostring(err))
      t.eq(err.retryable, false)
      print(what .. ": " .. tostring(err)) -- the shell checks this output for passwords
      t.ok(not err.message:find(PASS, 1, true) and not err.message:find(WRONG, 1, true),
           "a password in the message")
    end
  end
end)

t.run()
watchdog:stop()
