-- kura.threshold: pass/fail conditions on the figures of a load test, as
-- k6's thresholds: "p99<2ms", "get.p99<2ms", "errors<1%", "throughput>1e5".
--
--   local threshold = require("kura.threshold")
--   local spec = assert(threshold.parse("get.p99<2ms"))
--   local result = threshold.check(spec, report)  --> { expr=, ok=, value=, unit= }
--
-- An expression is [OP.]METRIC CMP NUMBER[UNIT], spaces allowed between the
-- parts; CMP is <, <=, > or >=.
--   latency   METRIC min, mean (or avg), max, med, pN (p50, p95, p99.9; p999
--             is p99.9 and p9999 is p99.99, the report's field names) or
--             p(N); UNIT ns, us (or µs), ms or s, required. Without OP: over
--             every operation (report.overall), with OP: that operation's.
--   errors    "errors<1%": the share of the load that failed
--             (report.error_percent); "errors<10": failed operations
--             (report.error_count). Not per operation.
--   throughput  operations per second; with OP that operation's.
--   ops       operations counted; with OP that operation's (OP.count too).
--
-- The figures come from a source shaped like a load test report: latency =
-- { OP = { count, min, mean, pNN..., max } } in seconds, overall (the same
-- over all operations), ops, seconds, throughput, error_count,
-- error_percent. A figure the source does not have (no such operation ran,
-- a percentile it did not compute) fails the check with value nil: a
-- condition that cannot be checked is not met. threshold.percentiles(specs)
-- lists the percentiles the specs read, so that the producer of the
-- figures can compute them (kura.loadtest does).
local M = {}

local LATENCY_UNITS = { ns = 1e-9, us = 1e-6, ["µs"] = 1e-6, ms = 1e-3, s = 1 }
local STAT_ALIASES = { avg = "mean", med = "p50" }
local CMP = {
  ["<"] = function(a, b) return a < b end, ["<="] = function(a, b) return a <= b end,
  [">"] = function(a, b) return a > b end, [">="] = function(a, b) return a >= b end,
}

-- The report's field name of percentile p: 99 -> "p99", 99.9 -> "p999".
function M.percentile_field(p)
  local s = string.format("%.6f", p):gsub("0+$", ""):gsub("%.$", "")
  return "p" .. s:gsub("%.", "")
end

-- "99", "99.9", "999" (the report's spelling of 99.9), "(95)" -> 99, 99.9, ...
local function percentile_of(text)
  local inner = text:match("^%((.*)%)$")
  if inner then text = inner end
  if not text:match("^%d+%.?%d*$") then return nil end
  local p = tonumber(text)
  if not text:find(".", 1, true) and not inner and #text > 2 then
    -- p999, p9999, p995: the report's spelling; anything else is ambiguous
    if text == "100" then return 100 end
    if text:sub(1, 2) ~= "99" then return nil end
    p = tonumber("99." .. text:sub(3))
  end
  if p and p > 0 and p <= 100 then return p end
  return nil
end

-- METRIC -> kind, stat (the field of a latency table), p
local function metric_of(name)
  if name == "errors" or name == "throughput" or name == "ops" then return name end
  if name == "count" then return "ops" end
  name = STAT_ALIASES[name] or name
  if name == "min" or name == "mean" or name == "max" then return "latency", name end
  local pt = name:match("^p(.+)$")
  local p = pt and percentile_of(pt)
  if p then return "latency", M.percentile_field(p), p end
  return nil
end

local function bad(expr, why)
  return nil, string.format("threshold '%s': %s", expr, why)
end

-- The number and unit of the limit, as the metric wants them.
local function limit_of(expr, spec, text)
  local num, unit = text:match("^(%d*%.?%d+[eE][%+%-]?%d+)%s*(.-)$")
  if not num then num, unit = text:match("^(%d*%.?%d+)%s*(.-)$") end
  local v = num and tonumber(num)
  if not v then return bad(expr, "the limit '" .. text .. "' is not a number") end
  if spec.kind == "latency" then
    local scale = LATENCY_UNITS[unit]
    if not scale then
      return bad(expr, unit == "" and "give the latency a unit: ns, us, ms or s"
        or "unknown unit '" .. unit .. "' (ns, us, ms or s)")
    end
    spec.limit, spec.unit = v * scale, "s"
  elseif spec.kind == "errors" then
    if unit == "%" then
      spec.limit, spec.unit = v, "%"
    elseif unit == "" then
      spec.limit, spec.unit = v, "errors"
    else
      return bad(expr, "errors take a percentage (errors<1%) or a count (errors<10)")
    end
  else
    if unit ~= "" and unit ~= "/s" then return bad(expr, "a plain number, not '" .. unit .. "'") end
    spec.limit, spec.unit = v, spec.kind == "throughput" and "ops/s" or "ops"
  end
  return spec
end

-- parse(expr) -> spec { expr, op, kind, stat, p, cmp, limit, unit }, or nil, err
function M.parse(expr)
  if type(expr) ~= "string" then
    return nil, "threshold: a string such as 'p99<2ms', not a " .. type(expr)
  end
  local lhs, cmp, rhs = expr:match("^%s*([%w_%.%(%)]+)%s*([<>]=?)%s*(.-)%s*$")
  if not lhs then
    return bad(expr, "want [OP.]METRIC<LIMIT, e.g. p99<2ms, get.p99<2ms, errors<1%, throughput>1000")
  end
  local op, name = lhs:match("^([%a_][%w_]*)%.(.+)$")
  if not op or not metric_of(name) then op, name = nil, lhs end
  local kind, stat, p = metric_of(name)
  if not kind then
    return bad(expr, "unknown metric '" .. name .. "' (min, mean, max, p50, p99.9, p(N) with N in"
      .. " (0, 100], errors, throughput, ops)")
  end
  if kind == "errors" and op then return bad(expr, "errors are counted over the whole run, not per operation") end
  return limit_of(expr, { expr = expr, op = op, kind = kind, stat = stat, p = p, cmp = cmp }, rhs)
end

-- parse_list{ expr, ... } -> specs, or nil, err (the first bad one)
function M.parse_list(list)
  if type(list) ~= "table" then return nil, "thresholds: a list of strings" end
  local specs = {}
  for i, expr in ipairs(list) do
    local spec, err = M.parse(expr)
    if not spec then return nil, err end
    specs[i] = spec
  end
  return specs
end

-- The percentiles that specs read, for whoever computes the figures.
function M.percentiles(specs)
  local ps, seen = {}, {}
  for _, s in ipairs(specs) do
    if s.p and not seen[s.p] then
      seen[s.p] = true
      ps[#ps + 1] = s.p
    end
  end
  table.sort(ps)
  return ps
end

-- The figure a spec reads from source, or nil when the source lacks it.
function M.value(spec, src)
  if spec.kind == "errors" then
    return spec.unit == "%" and src.error_percent or src.error_count
  end
  local lat = src.overall
  if spec.op then lat = (src.latency or {})[spec.op] end
  if spec.kind == "latency" then
    return lat and lat.count and lat.count > 0 and lat[spec.stat] or nil
  end
  local count = spec.op and (lat and lat.count or 0) or src.ops
  if spec.kind == "ops" then return count end
  if spec.op then
    return src.seconds and src.seconds > 0 and count / src.seconds or nil
  end
  return src.throughput
end

-- check(spec, source) -> { expr=, ok=, value=, unit= }
function M.check(spec, src)
  local v = M.value(spec, src)
  return { expr = spec.expr, ok = v ~= nil and CMP[spec.cmp](v, spec.limit), value = v,
    unit = spec.unit }
end

-- evaluate(specs, source) -> results, all_ok
function M.evaluate(specs, src)
  local results, all = {}, true
  for i, spec in ipairs(specs) do
    results[i] = M.check(spec, src)
    all = all and results[i].ok
  end
  return results, all
end

return M
