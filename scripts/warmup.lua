-- scripts/warmup.lua: warm a cache from JSON, JSON Lines or CSV files or URLs.
--
-- usage: scripts/run scripts/warmup.lua [options] [SOURCE...]
--
--   SOURCE              a file (.json, .jsonl or .ndjson, .csv) or an http(s)
--                       URL; default: the samples in scripts/data/
--   --cache NAME        the cache to fill (default "warm"; created if missing)
--   --ttl SECONDS       TTL of items whose source gives none, > 0 (default:
--                       the client's default TTL)
--   --jitter F          spread TTLs by +/- F, 0 to 0.9 (default 0.1: 10%)
--   --concurrency N     writes in flight at once, 1 to 10000 (default 64)
--   --format F          json | jsonl | csv, when the name does not tell
--   --quiet             no live progress line (shown when stderr is a
--                       terminal)
--   -h, --help          this text
--
-- Formats: JSON Lines {"key": .., "value": .., "ttl": ..} per line; CSV rows
-- key,value[,ttl] (quoted fields, optional header); a JSON array of such
-- objects or an object key -> value. Values that are not strings are stored
-- as JSON text. On Redis: scripts/run --backend redis://127.0.0.1:6379
-- scripts/warmup.lua FILE. Exit status: 0 every item loaded or skipped; 1
-- a source could not be read or an item failed (a bad line, a refused
-- set); 2 a bad option.
local warmup = require("kura.warmup")
local args = require("kura.args")

local here = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./")

local o = args.parse(arg, {
  { "--cache", "str", "warm" },
  { "--ttl", "num", nil, above = 0 },
  { "--jitter", "num", 0.1, min = 0, max = 0.9 },
  { "--concurrency", "int", 64, min = 1, max = 10000 },
  { "--format", "choice", nil, choices = { "json", "jsonl", "csv" } },
  { "--quiet", "flag" },
  rest = "sources",
})
if not o then return end
if #o.sources == 0 then
  o.sources = { here .. "data/players.jsonl", here .. "data/items.csv", here .. "data/config.json" }
end

local function source_of(s, format)
  if not format then return s end
  if s:match("^https?://") then return { url = s, format = format } end
  return { file = s, format = format }
end

local client = kura.client()
local total, status = { loaded = 0, failed = 0, skipped = 0 }, 0
for _, s in ipairs(o.sources) do
  local stats, err = warmup.run{
    client = client, cache = o.cache, source = source_of(s, o.format), ttl = o.ttl,
    jitter = o.jitter, concurrency = o.concurrency,
    progress = (not o.quiet) and kura.isatty(2), -- false: no line; true: a live line
  }
  if not stats then
    -- the message names the source already ("x.csv: No such file or directory")
    io.stderr:write("warmup.lua: ", tostring(err), "\n")
    status = 1
  else
    print(string.format("%s: %d loaded, %d failed, %d skipped in %.3f s (%.0f items/s)%s",
                        s, stats.loaded, stats.failed, stats.skipped, stats.seconds, stats.rate,
                        stats.error and (", stopped: " .. stats.error) or ""))
    if stats.error or stats.failed > 0 then status = 1 end
    for k in pairs(total) do total[k] = total[k] + stats[k] end
  end
end
print(string.format("cache %q: %d loaded, %d failed, %d skipped", o.cache, total.loaded,
                    total.failed, total.skipped))
if status ~= 0 then kura.set_exit_status(status) end
