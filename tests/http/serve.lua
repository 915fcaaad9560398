-- Starts one of the Python test servers (tests/http/server.py,
-- tests/momento_http/emulator.py) on a free loopback port for a Lua test:
--   local srv = dofile(HERE .. "../http/serve.lua").start(SCRIPT [, ARGS])
--   srv.port, srv.url ("http://127.0.0.1:PORT"), srv:stop()
-- The server watches this process and exits when it is gone, so a test that
-- dies half-way leaves nothing running.
local M = {}

local function self_pid()
  local f = assert(io.open("/proc/self/stat", "r"))
  local s = f:read("l")
  f:close()
  return assert(s:match("^(%d+)"))
end

function M.start(script, args)
  local portfile = os.tmpname()
  os.remove(portfile)
  local cmd = string.format("python3 '%s' --port 0 --port-file '%s' --parent %s %s " ..
                            ">/dev/null 2>&1 &", script, portfile, self_pid(), args or "")
  assert(os.execute(cmd))
  for _ = 1, 1000 do
    local f = io.open(portfile, "r")
    if f then
      local port, pid = f:read("a"):match("^(%d+) (%d+)")
      f:close()
      if port then
        os.remove(portfile)
        return {
          port = tonumber(port), pid = tonumber(pid),
          url = "http://127.0.0.1:" .. port,
          stop = function(self) os.execute("kill " .. self.pid .. " 2>/dev/null") end,
        }
      end
    end
    kura.sleep(0.02)
  end
  error("the test server " .. script .. " did not start")
end

return M
