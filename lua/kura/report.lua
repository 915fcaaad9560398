-- kura.report: a load test report (kura.loadtest.run's) as text and as a
-- self-contained HTML page. kura.loadtest.text and .html call these.
--
--   report.duration(seconds) -> "812 µs": 3 significant digits in ns, µs,
--                               ms or s, whichever reads best
--   report.header(r)         -> the run's context: backend, connections,
--                               virtual users, load, mix, keys, values
--   report.text(r)           -> header, totals, latencies, thresholds
--   report.html(r)           -> one HTML page, inline SVG, no script, no
--                               network
local M = {}

local floor, huge = math.floor, math.huge

-- --- text --------------------------------------------------------------------------------

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t or {}) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

local function pct(n, total)
  return total > 0 and n * 100 / total or 0
end

-- 3 significant digits: 1.23, 12.3, 123.
local function sig3(v)
  if v >= 99.95 then return string.format("%.0f", v) end
  if v >= 9.995 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end

function M.duration(s)
  if s == nil then return "-" end
  if s == 0 then return "0 s" end
  if s < 1e-6 then return sig3(s * 1e9) .. " ns" end
  if s < 1e-3 then return sig3(s * 1e6) .. " µs" end
  if s < 1 then return sig3(s * 1e3) .. " ms" end
  return sig3(s) .. " s"
end

-- 10000 -> "10,000"
local function thousands(n)
  local s = string.format("%d", floor(n + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^(%-?),", "%1"))
end

local function plural(n, one, many)
  return thousands(n) .. " " .. (n == 1 and one or many)
end

local function seconds_text(s)
  return (string.format("%.3f", s):gsub("0+$", ""):gsub("%.$", "")) .. " s"
end

local function mix_text(c)
  if c.scripted then return "a scripted workload (each call timed by its name)" end
  local parts = {}
  for _, name in ipairs(sorted_keys(c.mix)) do
    parts[#parts + 1] = string.format("%s %s%%", name, (sig3(c.mix[name] * 100):gsub("%.0+$", "")))
  end
  return table.concat(parts, ", ")
end

local function connections_text(r)
  local c = r.config
  if r.backend == "memory" then return "in this process (no connection)" end
  local n = c.connections or 1
  local s = plural(n, "connection", "connections")
  if c.concurrency > n then
    s = s .. string.format(" (pipelined: %s share %s)", plural(c.concurrency, "user", "users"),
      n == 1 and "it" or "them")
  end
  return s
end

local function load_text(c)
  local parts = {}
  if c.rate then
    parts[1] = string.format("open loop at %s ops/s over %s", thousands(c.rate),
      plural(c.concurrency, "virtual user", "virtual users"))
  else
    parts[1] = "closed loop, " .. plural(c.concurrency, "virtual user", "virtual users")
  end
  if c.ops then parts[#parts + 1] = plural(c.ops, "operation", "operations") end
  if c.duration then parts[#parts + 1] = seconds_text(c.duration) end
  if c.threads and c.threads > 1 then parts[#parts + 1] = plural(c.threads, "thread", "threads") end
  if c.warmup and c.warmup > 0 then parts[#parts + 1] = seconds_text(c.warmup) .. " warm-up" end
  if c.ramp_up and c.ramp_up > 0 then parts[#parts + 1] = seconds_text(c.ramp_up) .. " ramp-up" end
  if c.stages then
    local steps = {}
    for i, st in ipairs(c.stages) do
      steps[i] = string.format("%s to %s", seconds_text(st.duration),
        c.rate and (thousands(st.target) .. " ops/s") or plural(st.target, "user", "users"))
    end
    parts[#parts + 1] = "stages: " .. table.concat(steps, ", then ")
  end
  return table.concat(parts, ", ")
end

local function keys_text(c)
  local dist = c.distribution
  if dist == "zipf" then dist = string.format("zipf (alpha %g)", c.zipf_alpha) end
  return string.format("%s, %s; values of %s", thousands(c.keyspace), dist,
    plural(c.value_size, "byte", "bytes"))
end

-- The context lines: what ran, against what.
function M.header(r)
  local c = r.config
  local out = {}
  local function add(k, v) out[#out + 1] = string.format("%12s: %s", k, v) end
  out[1] = string.format("kura %s load test%s", r.version or "?", r.date and (", " .. r.date) or "")
  add("backend", string.format("%s, %s", r.backend or "?", connections_text(r)))
  add("load", load_text(c))
  add("mix", mix_text(c))
  add("keys", keys_text(c))
  if c.thresholds and #c.thresholds > 0 then add("thresholds", table.concat(c.thresholds, ", ")) end
  return table.concat(out, "\n") .. "\n"
end

-- report.cache in one line: the gets' hit ratio, what the backend evicted.
local function cache_text(c)
  local parts = {}
  if c.hit_ratio then
    parts[1] = string.format("hit ratio %.2f%% (%s hits, %s misses)", 100 * c.hit_ratio,
      thousands(c.hits), thousands(c.misses))
  else
    parts[1] = "no gets"
  end
  if c.evictions then
    parts[#parts + 1] = string.format("%s evictions, %s expirations, %s items", thousands(c.evictions),
      thousands(c.expirations), thousands(c.items))
  end
  return table.concat(parts, "; ")
end

local function totals(r, add)
  add("cumulative stats:%s", r.interrupted and " (interrupted)" or "")
  add("%18s: %d (%.0f tps) in %.2f s", "total requests", r.ops, r.throughput, r.seconds)
  add("%18s: %d (%.2f%%)", "success", r.ops - r.error_count, pct(r.ops - r.error_count, r.ops))
  for _, code in ipairs(sorted_keys(r.errors)) do
    add("%18s: %d (%.2f%%)", code, r.errors[code], pct(r.errors[code], r.ops))
  end
  if r.missed and r.missed > 0 then
    add("%18s: %d (due, never sent: the users waited on stalled calls)", "missed", r.missed)
  end
  if r.error_percent and (r.error_count > 0 or (r.missed or 0) > 0) then
    add("%18s: %.2f%% of the load (%s)", "failed share", r.error_percent, r.config.rate
      and "operations due that failed or were missed" or "time the users spent in failed calls")
  end
  if r.iterations ~= r.ops then add("%18s: %d", "iterations", r.iterations) end
  if r.cache then add("%18s: %s", "cache", cache_text(r.cache)) end
  if r.cpu_seconds and r.cpu_seconds > 0 then
    add("%18s: %.2f s (%.0f ops per cpu second)", "generator cpu", r.cpu_seconds,
      r.ops / r.cpu_seconds)
  end
end

local function periods(r, add)
  if not r.error_periods or #r.error_periods == 0 then return end
  add("")
  add("errors over time:")
  for _, p in ipairs(r.error_periods) do
    local dt = p.to - p.from
    add("  %6.1f s to %6.1f s: %d errors, %.0f ops/s", p.from, p.to, p.errors,
      dt > 0 and p.ops / dt or 0)
  end
end

local LAT_FIELDS = { { "min", "min" }, { "mean", "mean" }, { "p50", "p50" }, { "p90", "p90" },
  { "p99", "p99" }, { "p99.9", "p999" }, { "max", "max" } }

local function latencies(r, add)
  for _, name in ipairs(sorted_keys(r.latency)) do
    local l = r.latency[name]
    add("")
    add("cumulative %s latencies:", name)
    add("%8s: %d", "count", l.count)
    for _, f in ipairs(LAT_FIELDS) do add("%8s: %s", f[1], M.duration(l[f[2]])) end
  end
end

-- A threshold's figure in the unit of its expression.
local function figure(res)
  if res.value == nil then return "no figure (nothing measured)" end
  if res.unit == "s" then return M.duration(res.value) end
  if res.unit == "%" then return string.format("%.2f%%", res.value) end
  if res.unit == "ops/s" then return string.format("%.0f ops/s", res.value) end
  return string.format("%d %s", res.value, res.unit)
end

local function thresholds(r, add)
  if not r.thresholds or #r.thresholds == 0 then return end
  add("")
  add("thresholds:")
  for _, res in ipairs(r.thresholds) do
    add("  %-4s %-22s %s%s", res.ok and "ok" or "FAIL", res.expr, figure(res),
      res.default and "  (default)" or "")
  end
end

-- The report as text: the header, then the figures laid out as Momento's
-- loadgen prints its stats, with units on every latency.
function M.text(r)
  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  if r.config then out[1] = M.header(r) end
  totals(r, add)
  periods(r, add)
  latencies(r, add)
  thresholds(r, add)
  return table.concat(out, "\n") .. "\n"
end

-- --- HTML ----------------------------------------------------------------------------------

local COLORS = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
  "#17becf" }
-- Latency over time: one chart per operation, one colour and dash per figure.
local BAND_COLOR, BAND_OPACITY = "#d62728", "0.15"
local LAT_LINES = { { "p50", "#1f77b4", nil }, { "p99", "#ff7f0e", "7,4" }, { "max", "#d62728", "2,3" } }

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;" }))
end

local function num(v)
  return string.format("%.1f", v)
end

-- Ticks of a linear axis from 0 (or lo) to at least vmax, on a step of 1, 2
-- or 5 times a power of ten: 0, 50k, 100k, 150k, never 62.5k.
local function linear_ticks(lo, vmax, want)
  local span = vmax - lo
  if not (span > 0) then span = math.abs(vmax) > 0 and math.abs(vmax) or 1 end
  local raw = span / (want or 5)
  local mag = 10 ^ floor(math.log(raw, 10))
  local step = mag
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if raw <= m * mag then step = m * mag break end
  end
  local first = floor(lo / step + 1e-9) * step
  local ticks = {}
  local k = 0
  repeat
    ticks[#ticks + 1] = first + k * step
    k = k + 1
  until ticks[#ticks] >= vmax - step * 1e-9 and #ticks >= 2
  return ticks, step
end

-- 150000 -> "150k", 2.5e6 -> "2.5M", 0.5 -> "0.5"
local function short(v)
  local a = math.abs(v)
  local function trim(s) return (s:gsub("%.0+$", ""):gsub("(%.%d-)0+$", "%1")) end
  if a >= 1e6 then return trim(string.format("%.2f", v / 1e6)) .. "M" end
  if a >= 1e3 then return trim(string.format("%.2f", v / 1e3)) .. "k" end
  return trim(string.format("%.3f", v))
end

-- Log axis over durations: ticks at 1, 2, 5 x 10^k when the data spans
-- few decades, at the decades otherwise.
local function log_ticks(ymin, ymax)
  local lo, hi = floor(math.log(ymin, 10) + 1e-9), math.ceil(math.log(ymax, 10) - 1e-9)
  if hi <= lo then hi = lo + 1 end
  local mults = (hi - lo) <= 3 and { 1, 2, 5 } or { 1 }
  local ticks = {}
  for e = lo, hi do
    for _, m in ipairs(mults) do
      local v = m * 10.0 ^ e
      if v <= 10.0 ^ hi * 1.0001 then ticks[#ticks + 1] = v end
    end
  end
  return ticks, lo, hi
end

local function data_range(lines)
  local xmin, xmax, ymin, ymax = huge, -huge, huge, 0
  for _, line in ipairs(lines) do
    for _, p in ipairs(line.points) do
      xmin, xmax = math.min(xmin, p[1]), math.max(xmax, p[1])
      ymax = math.max(ymax, p[2])
      if p[2] > 0 then ymin = math.min(ymin, p[2]) end
    end
  end
  return xmin, xmax, ymin, ymax
end

-- The y axis: ticks, their labels and the value -> pixel function.
local function y_axis(c, ymin, ymax, top, height)
  if not c.ylog then
    local ticks = linear_ticks(0, ymax > 0 and ymax or 1)
    local ytop = ticks[#ticks]
    local labels = {}
    for i, v in ipairs(ticks) do labels[i] = (c.ylabel_fn or short)(v) end
    return ticks, labels, function(y) return top + height - y / ytop * height end
  end
  if ymin == huge then ymin, ymax = 1e-3, 1e-2 end
  local ticks, lo, hi = log_ticks(ymin, math.max(ymax, ymin))
  local labels = {}
  for i, v in ipairs(ticks) do labels[i] = (c.ylabel_fn or short)(v) end
  return ticks, labels, function(y)
    local e = math.log(math.max(y, 10.0 ^ lo), 10)
    return top + height - (e - lo) / (hi - lo) * height
  end
end

-- A row of legend entries above the plot: a sample of each line's stroke.
-- A duration tick: "10 ms", "2 µs", not "10.0 ms".
local function duration_tick(v)
  local d = M.duration(v)
  return (d:gsub("^(%d+)%.0+ ", "%1 "):gsub("^(%d+%.%d-)0+ ", "%1 "))
end

local function legend(add, lines, x, y, width)
  local cx, cy = x, y
  for i, line in ipairs(lines) do
    local label = esc(line.name)
    local w = 34 + #line.name * 7
    if cx + w > x + width and cx > x then cx, cy = x, cy + 16 end
    local color = line.color or COLORS[(i - 1) % #COLORS + 1]
    if line.band then
      add('<rect x="%d" y="%d" width="24" height="10" fill="%s" fill-opacity="%s"/>', cx, cy - 9,
        BAND_COLOR, BAND_OPACITY)
    else
      add('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>', cx, cx + 24,
        cy - 4, cy - 4, color, line.dash and (' stroke-dasharray="' .. line.dash .. '"') or "")
    end
    add('<text x="%d" y="%d">%s</text>', cx + 29, cy, label)
    cx = cx + w
  end
  return cy
end

local function x_ticks(c, xmin, xmax)
  if c.xticks then return c.xticks end
  local ticks = {}
  for _, v in ipairs((linear_ticks(xmin, xmax))) do
    if v <= xmax + 1e-9 then ticks[#ticks + 1] = { v, short(v) } end
  end
  return ticks
end

local function polyline(add, line, color, X, Y)
  local pts = {}
  for _, p in ipairs(line.points) do pts[#pts + 1] = num(X(p[1])) .. "," .. num(Y(p[2])) end
  add('<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>', color,
    line.dash and (' stroke-dasharray="' .. line.dash .. '"') or "", table.concat(pts, " "))
  if #line.points <= 60 and not line.dash then -- dots, so that a short run's single point shows
    for _, p in ipairs(line.points) do
      add('<circle cx="%s" cy="%s" r="2.5" fill="%s"/>', num(X(p[1])), num(Y(p[2])), color)
    end
  end
end

-- chart{ title, xlabel, lines = { { name, points = { {x, y} }, color, dash } },
--   xticks = { {x, label} }, xmax, x0, ylog, ylabel_fn, bands = { {x1, x2} } }
--   -> an <svg> element that scales to its container's width.
local function svg_chart(c)
  local W, L, R, B = 760, 74, 40, 46
  local legend_rows = math.ceil(#c.lines / 6)
  local T = 30 + legend_rows * 16
  local H = T + 230 + B
  local pw, ph = W - L - R, H - T - B
  local xmin, xmax, ymin, ymax = data_range(c.lines)
  if xmin == huge then xmin, xmax = 0, 1 end
  if c.x0 then xmin = math.min(xmin, c.x0) end
  if c.xmax then xmax = c.xmax end
  if xmax <= xmin then xmax = xmin + 1 end
  local function X(x) return L + (x - xmin) / (xmax - xmin) * pw end
  local yticks, ylabels, Y = y_axis(c, ymin, ymax, T, ph)
  local o = {}
  local function add(fmt, ...) o[#o + 1] = string.format(fmt, ...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" font-family="sans-serif" '
    .. 'font-size="12" role="img">', W, H)
  add('<title>%s</title>', esc(c.title))
  add('<text x="%d" y="18" font-size="15" font-weight="bold">%s</text>', L, esc(c.title))
  legend(add, c.lines, L, 36, pw)
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="#fcfcfc" stroke="#bbb"/>', L, T, pw, ph)
  for _, b in ipairs(c.bands or {}) do
    local x1, x2 = X(math.max(b[1], xmin)), X(math.min(b[2], xmax))
    add('<rect x="%s" y="%d" width="%s" height="%d" fill="%s" fill-opacity="%s"/>',
      num(x1), T, num(math.max(x2 - x1, 1)), ph, BAND_COLOR, BAND_OPACITY)
    if b[3] then
      add('<text x="%s" y="%d" fill="#a01818">%s</text>', num(x1 + 4), T + 14, esc(b[3]))
    end
  end
  for i, y in ipairs(yticks) do
    add('<line x1="%d" x2="%d" y1="%s" y2="%s" stroke="#e4e4e4"/>', L, L + pw, num(Y(y)), num(Y(y)))
    add('<text x="%d" y="%s" text-anchor="end">%s</text>', L - 6, num(Y(y) + 4), esc(ylabels[i]))
  end
  for _, t in ipairs(x_ticks(c, xmin, xmax)) do
    add('<line x1="%s" x2="%s" y1="%d" y2="%d" stroke="#e4e4e4"/>', num(X(t[1])), num(X(t[1])), T, T + ph)
    add('<text x="%s" y="%d" text-anchor="middle">%s</text>', num(X(t[1])), T + ph + 16, esc(t[2]))
  end
  add('<text x="%d" y="%d" text-anchor="middle">%s</text>', L + pw // 2, H - 8, esc(c.xlabel))
  for i, line in ipairs(c.lines) do
    if not line.band then polyline(add, line, line.color or COLORS[(i - 1) % #COLORS + 1], X, Y) end
  end
  add('</svg>')
  return table.concat(o, "\n")
end

-- Throughput per second; the seconds with errors shaded and labelled with
-- their count (errors/s on the throughput's scale would lie flat at 0).
local function throughput_chart(r)
  local thr = { name = "operations/s", points = {}, color = "#1f77b4" }
  for _, p in ipairs(r.series) do thr.points[#thr.points + 1] = { p.t, p.throughput } end
  local bands = {}
  for _, b in ipairs(r.error_periods or {}) do
    bands[#bands + 1] = { b.from, b.to, string.format("%s errors", thousands(b.errors)) }
  end
  local lines = { thr }
  if #bands > 0 then lines[2] = { name = "seconds with errors", points = {}, band = true } end
  return svg_chart{ title = "Throughput over time", xlabel = "seconds", lines = lines, x0 = 0,
    bands = bands }
end

local function latency_time_chart(r, op)
  local lines = {}
  for i, f in ipairs(LAT_LINES) do lines[i] = { name = f[1], color = f[2], dash = f[3], points = {} } end
  for _, p in ipairs(r.series) do
    local v = p.latency[op]
    if v then
      for i, f in ipairs(LAT_LINES) do lines[i].points[#lines[i].points + 1] = { p.t, v[f[1]] } end
    end
  end
  return svg_chart{ title = op .. " latency over time", xlabel = "seconds", lines = lines, x0 = 0,
    ylog = true, ylabel_fn = duration_tick }
end

-- x of percentile p on the distribution chart: log10(1 / (1 - p)), so that
-- 90%, 99%, 99.9% ... are evenly spaced.
local function nines(p)
  return math.log(1 / math.max(1 - p / 100, 1e-9), 10)
end

-- One line per operation, up to the highest percentile its samples
-- resolve (the last point, the maximum, is drawn at the next nines).
local function distribution_chart(r)
  local lines, xmax = {}, 1
  for i, name in ipairs(sorted_keys(r.distribution)) do
    local pts, d = {}, r.distribution[name]
    for j, q in ipairs(d) do
      local x = (j == #d and j > 1) and nines(d[j - 1].p) or nines(q.p)
      pts[#pts + 1] = { x, q.value }
      xmax = math.max(xmax, x)
    end
    lines[i] = { name = name, points = pts }
  end
  xmax = math.ceil(xmax - 1e-9)
  local ticks = {}
  for k = 0, xmax do -- 0%, 90%, 99%, 99.9%, ...
    local label = k == 0 and "0" or k == 1 and "90" or "99." .. string.rep("9", k - 2)
    ticks[#ticks + 1] = { k, (label:gsub("%.$", "")) .. "%" }
  end
  return svg_chart{ title = "Latency by percentile", xlabel = "percentile", lines = lines,
    xticks = ticks, xmax = xmax, ylog = true, ylabel_fn = duration_tick }
end

local function html_table(r)
  local o = { "<table><tr><th>operation</th><th>count</th><th>min</th><th>mean</th><th>p50</th>"
    .. "<th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>" }
  for _, name in ipairs(sorted_keys(r.latency)) do
    local l = r.latency[name]
    local cells = { esc(name), thousands(l.count) }
    for _, f in ipairs({ "min", "mean", "p50", "p90", "p99", "p999", "max" }) do
      cells[#cells + 1] = esc(M.duration(l[f]))
    end
    o[#o + 1] = "<tr><td>" .. table.concat(cells, "</td><td>") .. "</td></tr>"
  end
  o[#o + 1] = "</table>"
  return table.concat(o, "\n")
end

-- The context of the run as a two-column list, then the thresholds.
local function html_context(r)
  local c = r.config
  local rows = {}
  local function row(k, v) rows[#rows + 1] = "<tr><th>" .. esc(k) .. "</th><td>" .. esc(v) .. "</td></tr>" end
  if c then -- a report of kura.loadtest.run has it; one read from elsewhere may not
    row("backend", (r.backend or "?") .. ", " .. connections_text(r))
    row("load", load_text(c))
    row("mix", mix_text(c))
    row("keys", keys_text(c))
  end
  row("run", string.format("%s, kura %s, measured %s", r.date or "?", r.version or "?",
    seconds_text(r.seconds)))
  local o = { '<table class="ctx">' .. table.concat(rows) .. "</table>" }
  if r.thresholds and #r.thresholds > 0 then
    o[#o + 1] = '<ul class="thr">'
    for _, res in ipairs(r.thresholds) do
      o[#o + 1] = string.format('<li class="%s"><b>%s</b> %s: %s%s</li>', res.ok and "ok" or "fail",
        res.ok and "ok" or "FAIL", esc(res.expr), esc(figure(res)), res.default and " (default)" or "")
    end
    o[#o + 1] = "</ul>"
  end
  return table.concat(o, "\n")
end

local CSS = "body{font-family:sans-serif;margin:1.5em 2em;color:#222;max-width:1800px}"
  .. "h1{margin:0 0 .4em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
  .. "padding:3px 8px;text-align:right}table.ctx th,table.ctx td{text-align:left;border:0;"
  .. "padding:1px 12px 1px 0}table.ctx th{color:#555;font-weight:normal}"
  .. ".thr{list-style:none;padding:0}.thr li{margin:2px 0}.thr .ok b{color:#2a7d2a}"
  .. ".thr .fail b{color:#c62828}.summary{font-size:1.15em}.charts{display:grid;"
  .. "grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:1em 2em;margin-top:1em}"
  .. "svg{width:100%;height:auto;display:block}"

-- The report as one self-contained HTML page (inline SVG, no script, no
-- network).
function M.html(r)
  local errs = {}
  for _, code in ipairs(sorted_keys(r.errors)) do errs[#errs + 1] = esc(code) .. ": " .. r.errors[code] end
  local title = r.title or "kura load test"
  local charts = { throughput_chart(r) }
  for _, op in ipairs(sorted_keys(r.latency)) do charts[#charts + 1] = latency_time_chart(r, op) end
  charts[#charts + 1] = distribution_chart(r)
  return table.concat({
    "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>" .. esc(title) .. "</title>", "<style>" .. CSS .. "</style></head><body>",
    "<h1>" .. esc(title) .. "</h1>", html_context(r),
    string.format('<p class="summary">%s operations in %.2f s: <b>%s ops/s</b>; errors: %s%s%s</p>',
      thousands(r.ops), r.seconds, thousands(r.throughput), #errs > 0 and table.concat(errs, ", ") or "none",
      (r.error_count > 0 and r.error_percent) and string.format(" (%.2f%% of the load)", r.error_percent) or "",
      r.interrupted and " (interrupted)" or ""),
    r.cache and '<p class="summary">Cache: ' .. esc(cache_text(r.cache)) .. "</p>" or "",
    "<h2>Latency</h2>", html_table(r),
    '<div class="charts">', table.concat(charts, "\n"), "</div>",
    "</body></html>", "" }, "\n")
end

return M
