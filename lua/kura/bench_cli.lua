-- kura.bench_cli: `kura bench [options]`, a ready load test from the command
-- line (as redis-benchmark or Momento's loadgen), on kura.loadtest. main.c
-- runs M.main(...) with the options as arguments. Every option is checked
-- before anything starts; the exit status says how the run went (M.usage).
local kura = require("kura")
local loadtest = require("kura.loadtest")

local M = {}

local L = loadtest.limits

M.usage = string.format([[
usage: kura bench [options]

Runs a load test against a cache and prints what ran (backend, connections,
virtual users, mix, keys, value size, rate), throughput, errors by code and
per-operation latency percentiles.

Load:
  -c, --concurrency N   virtual users, 1..%d (default 50)
  -d, --duration S      seconds to measure, > 0 (default 10)
  -n, --ops N           stop after N operations instead
  --rate R              open loop at R ops/s; latency counts from each
                        operation's intended start (default: closed loop)
  --warmup S            seconds of load before measuring (default 0)
  --ramp-up S           rise to the full load over S seconds (default 0)
  --spin S              open loop: spin for the last S seconds before each
                        due time, 0..1 (default 0.001; 0 on a busy machine)
Workload:
  --mix LIST            operations and weights (default get:80,set:20); names:
                        get set delete increment key_exists item_get_ttl
                        set_if_absent set_if_present update_ttl increase_ttl
                        decrease_ttl
  --keys N              keyspace size, 1..%d (default 10000)
  --dist NAME           uniform (default), zipf, gaussian, sequential
  --zipf-alpha A        zipf exponent, > 0 (default 0.99)
  --value-size B        value bytes, 0..%d (default 100)
  --ttl S               TTL of the items set, > 0 (default 60)
  --no-prefill          do not set the keys before a read workload
Target:
  --backend URL         memory (default), redis://host:port[/db],
                        redis-cluster://h:p,..., momento, momento-http
  --connections N       clients of their own, one connection each, 1..%d and
                        at most -c (default 1: every user shares one
                        pipelined connection). redis-benchmark -c 50 is
                        -c 50 --connections 50
  --cache NAME          cache to use (default loadtest; created if missing)
  --threads N|auto      run the load in N threads, each a runtime of its own
                        with its share of the users, connections and rate;
                        one merged report (default 1; auto: the cores)
Checks:
  --threshold EXPR      fail the run (exit 99) unless EXPR holds; repeatable:
                        p99<2ms  get.p99<500us  errors<1%%  throughput>100000
                        Without an errors threshold, errors<1%% applies.
Output:
  --json FILE           write the report as JSON (latencies in seconds)
  --html FILE           write an HTML page with charts
  --progress, --no-progress   live line on stderr (default: if a terminal)
  -h, --help            this text

Exit status: 0; 1 the run could not start or a report file could not be
written; 2 a bad option; 99 a threshold failed (as k6).
]], L.concurrency, L.keyspace, L.value_size, L.connections)

-- name -> { field, kind }; kind: int, num, str, list, or a flag's value
local OPTS = {
  ["-c"] = { "concurrency", "int" }, ["--concurrency"] = { "concurrency", "int" },
  ["-d"] = { "duration", "num" }, ["--duration"] = { "duration", "num" },
  ["-n"] = { "ops", "int" }, ["--ops"] = { "ops", "int" },
  ["--rate"] = { "rate", "num" }, ["--warmup"] = { "warmup", "num" },
  ["--ramp-up"] = { "ramp_up", "num" }, ["--spin"] = { "spin", "num" }, ["--mix"] = { "mix", "str" },
  ["--keys"] = { "keyspace", "int" }, ["--dist"] = { "distribution", "str" },
  ["--zipf-alpha"] = { "zipf_alpha", "num" }, ["--value-size"] = { "value_size", "int" },
  ["--ttl"] = { "ttl", "num" },
  ["--backend"] = { "backend", "str" }, ["--cache"] = { "cache", "str" },
  ["--connections"] = { "connections", "int" }, ["--threshold"] = { "thresholds", "list" },
  ["--threads"] = { "threads", "threads" },
  ["--json"] = { "output", "str" }, ["--html"] = { "html", "str" },
  ["--no-prefill"] = { "prefill", false }, ["--progress"] = { "progress", true },
  ["--no-progress"] = { "progress", false },
}

-- The option a kura.loadtest field comes from, for messages.
local FLAG = { mix = "--mix", thresholds = "--threshold" }
for name, spec in pairs(OPTS) do
  if name:sub(1, 2) == "--" and not FLAG[spec[1]] then FLAG[spec[1]] = name end
end
FLAG.concurrency, FLAG.duration, FLAG.ops = "-c", "-d", "-n"

-- "get:80,set:20" -> { get = 80, set = 20 }
function M.parse_mix(s)
  local mix, any = {}, false
  for item in s:gmatch("[^,]+") do
    local name, w = item:match("^%s*([%w_]+)%s*:%s*([%d.]+)%s*$")
    if not name then
      name, w = item:match("^%s*([%w_]+)%s*$"), "1"
    end
    if not name or not tonumber(w) then return nil, "--mix: bad item '" .. item .. "' (want NAME:WEIGHT)" end
    if not loadtest.operations[name] then return nil, "--mix: unknown operation '" .. name .. "'" end
    mix[name], any = (mix[name] or 0) + tonumber(w), true
  end
  if not any then return nil, "--mix is empty" end
  return mix
end

local function convert(name, kind, v)
  if kind == "str" or kind == "list" then
    if v == "" then return nil, name .. " wants a value, not an empty string" end
    return v
  end
  if kind == "threads" and v == "auto" then return v end
  local n = tonumber(v)
  if kind == "int" or kind == "threads" then n = n and math.tointeger(n) end
  if not n then
    local what = kind == "int" and "an integer" or kind == "threads" and 'an integer or "auto"'
                 or "a number"
    return nil, string.format("%s wants %s, not '%s'", name, what, v)
  end
  return n
end

-- One option at args[i]; returns the next index, or nil, message.
local function take(o, args, i)
  local a = args[i]
  local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
  name = name or a
  local spec = OPTS[name]
  if not spec then return nil, "unknown option '" .. a .. "'" end
  if type(spec[2]) == "boolean" then
    if inline then return nil, name .. " takes no value" end
    o[spec[1]] = spec[2]
    return i + 1
  end
  local v = inline
  if not v then
    i = i + 1
    v = args[i]
  end
  if v == nil then return nil, "option " .. name .. " needs a value" end
  local val, err = convert(name, spec[2], v)
  if val == nil then return nil, err end
  if spec[2] == "list" then
    o[spec[1]] = o[spec[1]] or {}
    table.insert(o[spec[1]], val)
  else
    o[spec[1]] = val
  end
  return i + 1
end

-- Parses argv into loadtest options; nil, message on a usage error; "help".
function M.parse(args)
  local o, i = {}, 1
  while args[i] do
    if args[i] == "-h" or args[i] == "--help" then return "help" end
    local nexti, err = take(o, args, i)
    if not nexti then return nil, err end
    i = nexti
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

-- "concurrency: ..." -> "-c: ...": kura.loadtest's messages name its
-- fields, the user typed the command line's options.
local function flagged(why)
  local field, rest = why:match("^([%w_]+): (.*)$")
  if field and FLAG[field] then return FLAG[field] .. ": " .. rest end
  return why
end

function M.main(...)
  local o, err = M.parse({ ... })
  if o == "help" then
    io.stdout:write(M.usage)
    return
  end
  if not o then return fail(2, "%s (see kura bench --help)", err) end
  o.print_report = true
  local cfg, cerr = loadtest.check_options(o)
  if not cfg then return fail(2, "%s (see kura bench --help)", flagged(cerr)) end
  local ok, report
  ok, report, err = pcall(loadtest.run, o)
  if not ok then return fail(1, "%s", tostring(report)) end
  if not report then
    if type(err) == "table" and err.code == "INVALID_ARGUMENT_ERROR" then
      return fail(2, "%s (see kura bench --help)", flagged(tostring(err.message)))
    end
    return fail(1, "cannot start: %s", tostring(err))
  end
  if report.write_error then return kura.set_exit_status(1) end
  if not report.ok then return kura.set_exit_status(99) end
end

return M
