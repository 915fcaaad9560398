-- Helper for tests that run another kura process: run(code [, args]) writes
-- code to a temporary file, runs it with this same kura binary and returns
-- stdout, stderr and the exit status. Loaded with dofile.
local M = {}

-- The interpreter is the lowest negative index of `arg`, as with lua.
function M.bin()
  local i = -1
  while arg[i - 1] do i = i - 1 end
  return arg[i]
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  os.remove(path)
  return s
end

-- env: a string of NAME=value words put before the command.
function M.run(code, args, env)
  local script, out, err = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "wb"))
  f:write(code)
  f:close()
  local cmd = string.format("%s %q run %q %s >%q 2>%q", env or "", M.bin(), script, args or "",
    out, err)
  local _, _, status = os.execute(cmd)
  os.remove(script)
  return slurp(out), slurp(err), status
end

return M
