-- kura.bench_cli: `kura bench [options]`, a ready load test from the command
-- line (as redis-benchmark or Momento's loadgen), on kura.loadtest. main.c
-- runs M.main(...) with the options as arguments.
local kura = require("kura")
local loadtest = require("kura.loadtest")

local M = {}

M.usage = [[
usage: kura bench [options]

Runs a load test against a cache and prints throughput, errors by code and
per-operation latency percentiles (ms).

Load:
  -c, --concurrency N   virtual users (default 50)
  -d, --duration S      seconds to measure (default 10)
  -n, --ops N           stop after N operations instead
  --rate R              open loop at R ops/s; latency counts from each
                        operation's intended start (default: closed loop)
  --warmup S            seconds of load before measuring (default 0)
  --ramp-up S           rise to the full load over S seconds (default 0)
  --spin S              open loop: spin for the last S seconds before each
                        due time (default 0.001; 0 on a busy machine)
Workload:
  --mix LIST            operations and weights (default get:80,set:20); names:
                        get set delete increment key_exists item_get_ttl
                        set_if_absent set_if_present update_ttl ...
  --keys N              keyspace size (default 10000)
  --dist NAME           uniform (default), zipf, gaussian, sequential
  --zipf-alpha A        zipf exponent (default 0.99)
  --value-size B        value bytes (default 100)
  --no-prefill          do not set the keys before a read workload
Target:
  --backend URL         memory (default), redis://host:port, ... (as kura run)
  --cache NAME          cache to use (default loadtest; created if missing)
Output:
  --json FILE           write the report as JSON
  --html FILE           write an HTML page with charts
  --progress, --no-progress   live line on stderr (default: if a terminal)
  -h, --help            this text
]]

-- name -> { field, kind }; kind: int, num, str, flag value
local OPTS = {
  ["-c"] = { "concurrency", "int" }, ["--concurrency"] = { "concurrency", "int" },
  ["-d"] = { "duration", "num" }, ["--duration"] = { "duration", "num" },
  ["-n"] = { "ops", "int" }, ["--ops"] = { "ops", "int" },
  ["--rate"] = { "rate", "num" }, ["--warmup"] = { "warmup", "num" },
  ["--ramp-up"] = { "ramp_up", "num" }, ["--spin"] = { "spin", "num" }, ["--mix"] = { "mix", "str" },
  ["--keys"] = { "keyspace", "int" }, ["--dist"] = { "distribution", "str" },
  ["--zipf-alpha"] = { "zipf_alpha", "num" }, ["--value-size"] = { "value_size", "int" },
  ["--backend"] = { "backend", "str" }, ["--cache"] = { "cache", "str" },
  ["--json"] = { "output", "str" }, ["--html"] = { "html", "str" },
  ["--no-prefill"] = { "prefill", false }, ["--progress"] = { "progress", true },
  ["--no-progress"] = { "progress", false },
}

-- "get:80,set:20" -> { get = 80, set = 20 }
function M.parse_mix(s)
  local mix, any = {}, false
  for item in s:gmatch("[^,]+") do
    local name, w = item:match("^%s*([%w_]+)%s*:%s*([%d.]+)%s*$")
    if not name then
      name, w = item:match("^%s*([%w_]+)%s*$"), "1"
    end
    if not name or not tonumber(w) then return nil, "bad --mix item '" .. item .. "'" end
    if not loadtest.operations[name] then return nil, "--mix: unknown operation '" .. name .. "'" end
    mix[name], any = (mix[name] or 0) + tonumber(w), true
  end
  if not any then return nil, "--mix is empty" end
  return mix
end

local function convert(name, kind, v)
  if kind == "str" then return v end
  local n = tonumber(v)
  if kind == "int" then n = n and math.tointeger(n) end
  if not n or n < 0 then
    return nil, string.format("%s wants a%s number, not '%s'", name,
      kind == "int" and "n integer" or "", v)
  end
  return n
end

-- Parses argv into loadtest options; nil, message on a usage error; "help".
function M.parse(args)
  local o, i = {}, 1
  while args[i] do
    local a = args[i]
    if a == "-h" or a == "--help" then return "help" end
    local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    name = name or a
    local spec = OPTS[name]
    if not spec then return nil, "unknown option '" .. a .. "'" end
    if type(spec[2]) == "boolean" then
      o[spec[1]] = spec[2]
    else
      local v = inline
      if not v then
        i = i + 1
        v = args[i]
      end
      if v == nil then return nil, "option " .. name .. " needs a value" end
      local val, err = convert(name, spec[2], v)
      if val == nil then return nil, err end
      o[spec[1]] = val
    end
    i = i + 1
  end
  if o.mix then
    local mix, err = M.parse_mix(o.mix)
    if not mix then return nil, err end
    o.mix = mix
  end
  return o
end

local function fail(status, fmt, ...)
  io.stderr:write("kura bench: ", string.format(fmt, ...), "\n")
  kura.set_exit_status(status)
end

function M.main(...)
  local o, err = M.parse({ ... })
  if o == "help" then
    io.stdout:write(M.usage)
    return
  end
  if not o then return fail(2, "%s (see kura bench --help)", err) end
  local ok, client, cerr = pcall(kura.client, o.backend and { backend = o.backend } or nil)
  if not ok or not client then return fail(2, "%s", tostring(ok and cerr or client)) end
  o.backend, o.client, o.print_report = nil, client, true
  local report
  ok, report, err = pcall(loadtest.run, o)
  if not ok then return fail(2, "%s", tostring(report)) end
  if not report then return fail(1, "%s", tostring(err)) end
end

return M
