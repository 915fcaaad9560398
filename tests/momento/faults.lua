-- Fault cases of the momento backend, driven by test_momento.sh:
--   kura run faults.lua auth            the client's key is wrong
--   kura run faults.lua hang            the server accepts and never answers
--   kura run faults.lua load SECONDS    load while the script kills and
--                                       restarts the emulator
--   kura run faults.lua hostile         hostile.js answers wrongly on purpose
-- Each ends with "faults MODE: ok" or raises.
local mode = arg[1]
local TIMEOUT = 1

local function client()
  return kura.client{ backend = "momento", timeout = TIMEOUT }
end

local function expect_code(what, code, v, err)
  if v ~= nil or type(err) ~= "table" or err.code ~= code then
    error(string.format("%s: expected nil, %s; got %s, %s", what, code, tostring(v),
                        tostring(err)), 2)
  end
  print(what .. ": " .. tostring(err))
end

-- The longest a call may take: its deadline, the retries' (idempotent calls
-- try up to three times) and slack for a loaded machine.
local LIMIT = 3 * TIMEOUT + 2

local function timed(what, f)
  local t0 = kura.now()
  local v, err = f()
  local dt = kura.now() - t0
  if dt > LIMIT then error(string.format("%s took %.2f s (limit %.1f s)", what, dt, LIMIT), 2) end
  return v, err
end

local function auth()
  local c = client()
  expect_code("get", "AUTHENTICATION_ERROR", c:get("any", "k"))
  expect_code("set", "AUTHENTICATION_ERROR", c:set("any", "k", "v"))
  expect_code("create_cache", "AUTHENTICATION_ERROR", c:create_cache("any"))
  expect_code("list_caches", "AUTHENTICATION_ERROR", c:list_caches())
end

local function hang()
  local c = client()
  expect_code("get", "TIMEOUT_ERROR", timed("get", function() return c:get("any", "k") end))
  expect_code("increment", "TIMEOUT_ERROR",
              timed("increment", function() return c:increment("any", "k", 1) end))
  expect_code("create_cache", "TIMEOUT_ERROR",
              timed("create_cache", function() return c:create_cache("any") end))
  -- concurrent calls all end by their deadline
  local tasks = {}
  for i = 1, 10 do
    tasks[i] = kura.spawn(function()
      return timed("task get", function() return c:get("any", "k" .. i) end)
    end)
  end
  for i = 1, 10 do
    local v, err = tasks[i]:join()
    expect_code("task " .. i, "TIMEOUT_ERROR", v, err)
  end
end

-- Load from 8 tasks until the emulator went away and came back: every call
-- ends (by its deadline at the latest), errors are transport errors, and
-- calls succeed again once the emulator is back (it comes back empty, so
-- the cache is created again).
local function load(seconds)
  local c = client()
  local cache = "faults"
  assert(c:create_cache(cache) ~= nil)
  local stats = { ok = 0, err = 0, ok_after_err = 0, codes = {} }
  -- At least `seconds`, then until 20 calls succeeded after the outage (at
  -- most 60 s: a slow machine may take a while to restart the emulator).
  local t0 = kura.now()
  local function going()
    local now = kura.now()
    return now < t0 + 60 and (now < t0 + seconds or stats.ok_after_err < 20)
  end
  local tasks = {}
  for i = 1, 8 do
    tasks[i] = kura.spawn(function()
      local n = 0
      while going() do
        n = n + 1
        local v, err = timed("set", function() return c:set(cache, "k" .. i .. ":" .. n, "v") end)
        if v then
          stats.ok = stats.ok + 1
          if stats.err > 0 then stats.ok_after_err = stats.ok_after_err + 1 end
        else
          stats.err = stats.err + 1
          stats.codes[err.code] = (stats.codes[err.code] or 0) + 1
          if err.code == "NOT_FOUND_ERROR" then c:create_cache(cache) end
          kura.sleep(0.02)
        end
      end
    end)
  end
  for i = 1, 8 do assert(tasks[i]:join() ~= false) end
  local codes = {}
  for k, v in pairs(stats.codes) do codes[#codes + 1] = k .. "=" .. v end
  table.sort(codes)
  print(string.format("load: ok=%d err=%d ok_after_err=%d codes: %s", stats.ok, stats.err,
                      stats.ok_after_err, table.concat(codes, " ")))
  assert(stats.err > 0, "the emulator was killed: some calls should have failed")
  assert(stats.ok_after_err > 0, "no call succeeded after the emulator came back")
  for code in pairs(stats.codes) do
    assert(code == "CONNECTION_ERROR" or code == "TIMEOUT_ERROR" or code == "NOT_FOUND_ERROR"
           or code == "SERVER_UNAVAILABLE", "unexpected error code " .. code)
  end
end

-- hostile.js: an answer that does not parse is an error, not a success; a
-- long grpc-message keeps the real status; trailers lost on the way are said
-- to be lost (and an increment whose status never came is uncertain).
local function hostile()
  local c = client()
  local v, err = c:set("any", "k", "v")
  expect_code("set", "INTERNAL_SERVER_ERROR", v, err)
  assert(err.message:find("malformed", 1, true), err.message)
  v, err = c:get("any", "k")
  expect_code("get", "NOT_FOUND_ERROR", v, err)
  v, err = c:increment("any", "k", 1)
  expect_code("increment", "INTERNAL_SERVER_ERROR", v, err)
  assert(err.message:find("trailers were lost", 1, true), err.message)
  assert(err.uncertain == true and err.retryable == false, "the increment's outcome is unknown")
end

if mode == "auth" then auth()
elseif mode == "hostile" then hostile()
elseif mode == "hang" then hang()
elseif mode == "load" then load(tonumber(arg[2]) or 6)
else error("usage: kura run faults.lua auth|hang|hostile|load [SECONDS]") end
print("faults " .. mode .. ": ok")
