-- scripts/warmup.lua: warm a cache from JSON, JSON Lines or CSV files or URLs.
--
-- usage: scripts/run scripts/warmup.lua [options] [SOURCE...]
--
--   SOURCE              a file (.json, .jsonl or .ndjson, .csv) or an http(s)
--                       URL; default: the samples in scripts/data/
--   --cache NAME        the cache to fill (default "warm"; created if missing)
--   --ttl SECONDS       TTL of items whose source gives none (default: the
--                       client's default TTL)
--   --jitter F          spread TTLs by +/- F (default 0.1, i.e. 10%)
--   --concurrency N     writes in flight at once (default 64)
--   --format F          json | jsonl | csv, when the name does not tell
--   --quiet             no live progress line
--   -h, --help          this text
--
-- Formats: JSON Lines {"key": .., "value": .., "ttl": ..} per line; CSV rows
-- key,value[,ttl] (quoted fields, optional header); a JSON array of such
-- objects or an object key -> value. Values that are not strings are stored
-- as JSON text. On Redis: scripts/run --backend redis://127.0.0.1:6379
-- scripts/warmup.lua FILE. Exit status 1 when a source could not be read.
local warmup = require("kura.warmup")

local here = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")

local function usage(out)
  local f = io.open(here .. "warmup.lua") or io.open(arg[0])
  local text = f and f:read("a") or ""
  if f then f:close() end
  for line in text:gmatch("[^\n]*") do
    if not line:match("^%-%-") then break end
    out:write((line:gsub("^%-%- ?", "")), "\n")
  end
end

local function parse_args(args)
  local o = { cache = "warm", jitter = 0.1, concurrency = 64, sources = {} }
  local i = 1
  local function value(name)
    i = i + 1
    local v = args[i]
    if v == nil then error("missing value for " .. name, 0) end
    return v
  end
  local function number(name)
    local v = tonumber(value(name))
    if not v then error(name .. " needs a number", 0) end
    return v
  end
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then o.help = true
    elseif a == "--cache" then o.cache = value(a)
    elseif a == "--ttl" then o.ttl = number(a)
    elseif a == "--jitter" then o.jitter = number(a)
    elseif a == "--concurrency" then o.concurrency = math.tointeger(number(a))
    elseif a == "--format" then o.format = value(a)
    elseif a == "--quiet" then o.quiet = true
    elseif a:sub(1, 2) == "--" then error("unknown option " .. a, 0)
    else o.sources[#o.sources + 1] = a end
    i = i + 1
  end
  if #o.sources == 0 then
    o.sources = { here .. "data/players.jsonl", here .. "data/items.csv", here .. "data/config.json" }
  end
  return o
end

local function source_of(s, format)
  if not format then return s end
  if s:match("^https?://") then return { url = s, format = format } end
  return { file = s, format = format }
end

local function main(args)
  local ok, o = pcall(parse_args, args)
  if not ok then
    io.stderr:write("warmup.lua: ", o, "\n")
    usage(io.stderr)
    kura.set_exit_status(2)
    return
  end
  if o.help then return usage(io.stdout) end
  local client = kura.client()
  local total, status = { loaded = 0, failed = 0, skipped = 0 }, 0
  for _, s in ipairs(o.sources) do
    local stats, err = warmup.run{
      client = client, cache = o.cache, source = source_of(s, o.format), ttl = o.ttl,
      jitter = o.jitter, concurrency = o.concurrency, progress = not o.quiet and nil or false,
    }
    if not stats then
      io.stderr:write(string.format("%s: %s\n", s, tostring(err)))
      status = 1
    else
      print(string.format("%s: %d loaded, %d failed, %d skipped in %.3f s (%.0f items/s)%s",
                          s, stats.loaded, stats.failed, stats.skipped, stats.seconds, stats.rate,
                          stats.error and (", stopped: " .. stats.error) or ""))
      if stats.error then status = 1 end
      for k in pairs(total) do total[k] = total[k] + stats[k] end
    end
  end
  print(string.format("cache %q: %d loaded, %d failed, %d skipped", o.cache, total.loaded,
                      total.failed, total.skipped))
  if status ~= 0 then kura.set_exit_status(status) end
end

main(arg)
