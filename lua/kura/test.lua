-- kura.test: a tiny test harness for Lua tests run by `kura run`.
--
--   local t = require("kura.test")
--   t.test("name", function() t.eq(a, b) t.ok(x) t.raises(fn, "pattern") end)
--   t.run()
--
-- Each test body runs as its own task (so it may sleep or wait on the cache),
-- one after the other in the order they were declared. A failed check raises
-- with the file:line of the check and the values involved. t.run() prints one
-- line per test and then exactly "N passed, N failed", and makes the process
-- exit with status 1 when a test failed. Set KURA_TEST=text to run only the
-- tests whose name contains text.
local kura = require("kura")

local M = {}

local tests = {}
local check_failures = {} -- the messages that checks raised

-- Readable rendering of a value for failure messages.
local function show(v, depth, seen)
  local ty = type(v)
  if ty == "string" then
    local s = string.format("%q", v):gsub("\\\n", "\\n")
    if #s > 200 then s = s:sub(1, 197) .. '..."' end
    return s
  elseif ty == "number" then
    return math.type(v) == "integer" and tostring(v) or string.format("%.17g", v)
  elseif ty ~= "table" then
    return tostring(v)
  end
  seen = seen or {}
  depth = depth or 0
  if seen[v] then return "<cycle>" end
  if depth > 4 then return "{...}" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  local parts, n = {}, #v
  for i, k in ipairs(keys) do
    if i > 20 then parts[#parts + 1] = "..."; break end
    local val = show(v[k], depth + 1, seen)
    if math.type(k) == "integer" and k >= 1 and k <= n then
      parts[#parts + 1] = val
    elseif type(k) == "string" and k:match("^[%a_][%w_]*$") then
      parts[#parts + 1] = k .. "=" .. val
    else
      parts[#parts + 1] = "[" .. show(k, depth + 1, seen) .. "]=" .. val
    end
  end
  seen[v] = nil
  return "{" .. table.concat(parts, ", ") .. "}"
end
M.show = show

-- Deep equality: tables compare by contents (metatables ignored), NaN
-- equals NaN, everything else with ==.
local function deep_eq(a, b, seen)
  if a == b then return true end
  if type(a) == "number" and type(b) == "number" then return a ~= a and b ~= b end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, va in pairs(a) do
    if not deep_eq(va, rawget(b, k), seen) then return false end
  end
  for k in pairs(b) do
    if rawget(a, k) == nil then return false end
  end
  return true
end
M.deep_eq = deep_eq

-- Raises a check failure located at the caller of the check.
local function fail(msg, extra)
  local info = debug.getinfo(3, "Sl")
  local where = info and (info.short_src .. ":" .. (info.currentline or 0) .. ": ") or ""
  local text = where .. msg .. (extra ~= nil and (" (" .. tostring(extra) .. ")") or "")
  check_failures[text] = true
  error(text, 0)
end

function M.fail(msg)
  fail("failed: " .. tostring(msg))
end

function M.ok(v, msg)
  if not v then fail("ok failed: got " .. show(v), msg) end
  return v
end

function M.eq(actual, expected, msg)
  if not deep_eq(actual, expected) then
    fail("eq failed: expected " .. show(expected) .. ", got " .. show(actual), msg)
  end
  return actual
end

function M.ne(actual, unexpected, msg)
  if deep_eq(actual, unexpected) then
    fail("ne failed: got " .. show(actual) .. ", which it must not be", msg)
  end
  return actual
end

function M.near(actual, expected, eps, msg)
  eps = eps or 1e-9
  if type(actual) ~= "number" or math.abs(actual - expected) > eps then
    fail(string.format("near failed: expected %s +- %s, got %s", show(expected), show(eps),
      show(actual)), msg)
  end
  return actual
end

function M.is_nil(v, msg)
  if v ~= nil then fail("is_nil failed: got " .. show(v), msg) end
end

-- t.raises(fn, pattern): fn must raise; the error (as a string) must contain
-- pattern, either literally or as a Lua pattern. Returns the error value.
function M.raises(fn, pattern, msg)
  local ok, err = pcall(fn)
  if ok then fail("raises failed: no error was raised", msg) end
  if pattern ~= nil then
    local s = tostring(err)
    local found = s:find(pattern, 1, true)
    if not found then
      local pok, pfound = pcall(string.find, s, pattern)
      found = pok and pfound
    end
    if not found then
      fail("raises failed: error " .. show(s) .. " does not match " .. show(pattern), msg)
    end
  end
  return err
end

function M.test(name, fn)
  assert(type(name) == "string", "t.test: the name must be a string")
  assert(type(fn) == "function", "t.test: the body must be a function")
  tests[#tests + 1] = { name = name, fn = fn }
end

-- The first part of a joined error; the traceback too for errors that did
-- not come from a check.
local function describe(err)
  local s = tostring(err)
  local head = s:match("^(.-)\nstack traceback:") or s
  if check_failures[head] then return head end
  return s
end

local function indent(s)
  return "    " .. s:gsub("\n", "\n    ")
end

-- Runs the declared tests in order; returns true when all passed.
function M.run()
  local only = os.getenv("KURA_TEST")
  local passed, failed = 0, 0
  for _, tc in ipairs(tests) do
    if not only or only == "" or tc.name:find(only, 1, true) then
      local t0 = kura.now()
      local task = kura.spawn(function() tc.fn(); return true end)
      local ok, err = task:join()
      local took = string.format("(%.3fs)", kura.now() - t0)
      if ok then
        passed = passed + 1
        print("ok   " .. tc.name .. " " .. took)
      else
        failed = failed + 1
        print("FAIL " .. tc.name .. " " .. took)
        print(indent(describe(err)))
      end
      io.stdout:flush()
    end
  end
  tests = {}
  print(string.format("%d passed, %d failed", passed, failed))
  io.stdout:flush()
  if failed > 0 then kura.set_exit_status(1) end
  return failed == 0
end

return M
