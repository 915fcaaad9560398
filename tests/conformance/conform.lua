-- Shared helpers of the conformance suite (tests/conformance/test_*.lua).
-- Loaded with dofile by each test file; holds no state between files.
-- Everything here follows docs/lua-api.md and nothing backend-specific:
-- the same files run against memory, Redis and Momento.

local t = require("kura.test")

local M = {}

M.t = t

-- Every code docs/lua-api.md lists.
M.CODES = {
  INVALID_ARGUMENT_ERROR = true, NOT_FOUND_ERROR = true, ALREADY_EXISTS_ERROR = true,
  FAILED_PRECONDITION_ERROR = true, LIMIT_EXCEEDED_ERROR = true, TIMEOUT_ERROR = true,
  CONNECTION_ERROR = true, SERVER_UNAVAILABLE = true, AUTHENTICATION_ERROR = true,
  PERMISSION_ERROR = true, CANCELLED_ERROR = true, BAD_REQUEST_ERROR = true,
  INTERNAL_SERVER_ERROR = true, UNSUPPORTED_OPERATION_ERROR = true, UNKNOWN_ERROR = true,
}

-- The client's default TTL as the suite's runner configures it (ctest passes
-- no --default-ttl, so the environment or 60 s).
M.DEFAULT_TTL = tonumber(os.getenv("MOMENTO_TTL_SECONDS") or "") or 60

-- Seconds of slack when comparing a remaining TTL with the one that was set:
-- remote backends round to milliseconds and the calls take time.
M.TTL_EPS = 1.5

function M.client()
  return kura.client()
end

-- A cache name unique to this file and this run, so that files (and several
-- runs of the suite) can share one server.
function M.name(prefix, suffix)
  local n = string.format("kconf-%s-%08x", prefix, math.random(0, 0x7fffffff))
  if suffix then n = n .. "-" .. suffix end
  return n
end

-- Check that (v, err) is the contract's failure `nil, err` with `code`.
-- `what` names the call in failure messages. (It comes first because a call
-- in the middle of an argument list would be cut to its first result.)
function M.check_err_at(what, code, v, err)
  what = what .. ": "
  t.is_nil(v, what .. "value on error")
  t.ok(type(err) == "table", what .. "err must be a table, got " .. type(err) ..
       " (" .. tostring(err) .. ")")
  t.eq(err.code, code, what .. "err.code")
  t.ok(M.CODES[err.code], what .. "unknown code " .. tostring(err.code))
  t.eq(type(err.message), "string", what .. "type(err.message)")
  t.eq(type(err.retryable), "boolean", what .. "type(err.retryable)")
  t.eq(tostring(err), err.code .. ": " .. err.message, what .. "tostring(err)")
  return err
end

function M.check_err(code, v, err)
  return M.check_err_at(code, code, v, err)
end

-- Run fn(c, cache) on a fresh cache, deleting it afterwards even if fn fails.
function M.with_cache(prefix, fn)
  local c = M.client()
  local name = M.name(prefix)
  local ok, err = c:create_cache(name)
  t.eq(ok, true, "create_cache(" .. name .. ") " .. tostring(err))
  local fine, e = pcall(fn, c, name)
  c:delete_cache(name)
  if not fine then error(e, 0) end
end

-- Register a test that runs on a fresh cache.
function M.test(prefix, title, fn)
  t.test(title, function()
    M.with_cache(prefix, fn)
  end)
end

-- A string holding every byte value once.
function M.all_bytes()
  local b = {}
  for i = 0, 255 do b[#b + 1] = string.char(i) end
  return table.concat(b)
end

-- Number of entries of any table.
function M.count(tbl)
  local n = 0
  for _ in pairs(tbl) do n = n + 1 end
  return n
end

return M
