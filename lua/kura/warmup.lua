-- kura.warmup: load many items into a cache from a file, a URL, a Lua
-- iterator or another cache, through a bounded window of concurrent writes.
--
--   local stats = require("kura.warmup").run{
--     client      = kura.client(),   -- default: the runtime's shared client
--     cache       = "players",       -- required; created when missing
--     source      = "players.jsonl", -- see Sources below (required)
--     ttl         = 3600,            -- TTL of items whose source gives none
--                                    -- (nil: the client's default TTL)
--     jitter      = 0.1,             -- spread each TTL uniformly by +/-10%
--     concurrency = 64,              -- writes in flight at once (default 64)
--     transform   = function(key, value, ttl) return key, value, ttl end,
--     progress    = true,            -- true | false | function(stats)
--   }
--   --> { loaded=, failed=, skipped=, seconds=, rate=, errors={...}, error= }
--
-- rate is items handled (loaded + failed + skipped) per second of the run.
-- Two more options: random (a function returning [0, 1), default
-- math.random: the jitter's source) and progress_interval (seconds).
--
-- Bounds, so that a source that never ends cannot hold the run forever:
--   deadline  = 600,    -- seconds: past it no item is taken and no page is
--                       -- fetched (writes in flight finish); stats.error says
--                       -- so. Default: none, except 3600 for an HTTP source
--   max_pages = 10000,  -- HTTP sources: pages fetched at most (default
--                       -- 10,000); a source that names a next page past them
--                       -- ends the run with stats.error set
--
-- Sources
--   "x.jsonl" / "x.ndjson"      JSON Lines: one {"key":..,"value":..,"ttl":..}
--                               (or [key, value, ttl]) per line; streamed.
--   "x.csv"                     CSV rows key,value[,ttl]; quoted fields with ""
--                               escapes (they may span lines); a first row
--                               "key,value[,ttl]" is a header and is skipped.
--   "x.json"                    one JSON document: an array of {key,value,ttl}
--                               (or [key,value,ttl]), an object key -> value,
--                               or {"items": [...]}. It is decoded whole, so
--                               its memory is the document's: use JSON Lines
--                               or CSV for large data sets.
--   "http://..." / "https://..."  fetched with kura.http; the body is JSON,
--                               JSON Lines or CSV (from `format`, else the
--                               Content-Type, else the URL's extension, else a
--                               look at the body). Paging: a JSON body
--                               {"items": [...], "next": URL} or a response
--                               header `Link: <URL>; rel="next"` names the next
--                               page (relative URLs allowed); pages are fetched
--                               one at a time until there is no next.
--   { file = path, format = "jsonl"|"csv"|"json" }   format from the extension
--                               when omitted.
--   { url = URL, format =, headers =, timeout =, max_size = }  (kura.http's
--                               options; a page's body is held whole)
--   function() return key, value[, ttl] end      nil ends; it may suspend.
--   { client = other, cache = name, keys = {...}, copy_ttl = bool }
--                               copies the listed keys from another client's
--                               cache (get_batch in chunks); absent keys count
--                               as skipped; copy_ttl reads each remaining TTL
--                               (one more call per item).
--
-- Values that are not strings are stored as JSON text (numbers as their
-- decimal text). A TTL from the source wins over `ttl`; `jitter` applies to
-- whichever TTL an item has (an item with no TTL at all gets the client's
-- default, jittered as well: c:default_ttl()). transform(key, value, ttl) returns the item to store,
-- or nil to skip it (counted in `skipped`); if it raises, the item fails.
--
-- Failures are per item (a bad line, a transform error, a value over the size
-- limit, a refused set): they are counted in `failed`, the first five are
-- logged with kura.log.warn and kept in stats.errors, and the run goes on.
-- A source that cannot go on (a missing file, an HTTP error on a page, an
-- iterator that raises) ends the run early: run returns nil, err when nothing
-- could be read at all, otherwise the stats with stats.error set.
--
-- Writes: `concurrency` worker tasks pull items from the source and call
-- set; with the memory backend a set completes inline, so one worker does
-- everything with no task switch, while a network backend keeps up to
-- `concurrency` requests in flight (they are pipelined). Memory stays flat
-- for line-based files however large: lines are read one at a time.
--
-- Progress: `progress = function(stats)` is called about every
-- `progress_interval` seconds (default 1) and once at the end (stats.done is
-- then true); stats.fraction and stats.eta are set when the source's size is
-- known (file bytes read vs its size, items of a decoded document). `true`
-- writes a live line on stderr; the default is true when stderr is a
-- terminal.
local kura = require("kura")

local M = {}

local MAX_REPORTED = 5       -- failures logged and kept in stats.errors
local DEFAULT_MAX_PAGES = 10000
local DEFAULT_HTTP_DEADLINE = 3600 -- seconds
local FILL_CHUNK = 256       -- items an asynchronous source yields per fill
local CHECK_EVERY = 1024     -- items between two progress clock reads, over all workers

-- The TTL of an item copied from another cache with copy_ttl: the worker
-- that stores it reads the remaining TTL (so those reads run concurrently).
local COPY_TTL = {}

local json_null = kura.json.null
local decode, encode = kura.json.decode, kura.json.encode
local find, sub, lower = string.find, string.sub, string.lower

-- --- item normalisation ---------------------------------------------------

-- Turns a decoded JSON value into a storable string value.
local function value_text(v)
  local ty = type(v)
  if ty == "string" or ty == "number" then return v end
  if ty == "boolean" then return tostring(v) end
  return encode(v)
end

-- key, value, ttl from a decoded {key=,value=,ttl=} object or a
-- [key, value, ttl] array; or false, message.
local function from_object(o)
  if type(o) ~= "table" then return false, "item is not an object or an array" end
  local k, v, ttl = o.key, o.value, o.ttl
  if k == nil and v == nil then k, v, ttl = o[1], o[2], o[3] end
  if k == nil or k == json_null then return false, "item has no key" end
  if v == nil or v == json_null then return false, "item " .. tostring(k) .. " has no value" end
  if type(k) == "number" then k = tostring(k) end
  if type(k) ~= "string" then return false, "item key is not a string" end
  if ttl == json_null then ttl = nil end
  if ttl ~= nil and type(ttl) ~= "number" then
    local n = tonumber(ttl)
    if not n then return false, "item " .. k .. " has a bad ttl " .. tostring(ttl) end
    ttl = n
  end
  return k, value_text(v), ttl
end

-- A JSON Lines line that is not of the common shape (see jsonl_reader):
-- key, value, ttl; false, message; or nil for a blank line.
local function parse_jsonl(line, o, err, where)
  if type(o) == "table" then
    local k, v, ttl = from_object(o)
    if k == false then return false, where() .. ": " .. v end
    return k, v, ttl
  end
  if o == nil and not find(line, "%S") then return nil end
  if o == nil then return false, where() .. ": bad JSON: " .. tostring(err) end
  return false, where() .. ": item is not an object or an array"
end

-- --- CSV ----------------------------------------------------------------------

-- Splits a record into fields. `more()` returns the next physical line, for a
-- quoted field that spans lines. Returns the fields or nil, message.
local function csv_fields(line, more)
  local fields, pos = {}, 1
  while true do
    if sub(line, pos, pos) == '"' then
      local parts, i = {}, pos + 1
      while true do
        local q = find(line, '"', i, true)
        if not q then
          local nxt = more()
          if not nxt then return nil, "unterminated quoted field" end
          parts[#parts + 1] = sub(line, i) .. "\n"
          line, i = nxt, 1
        elseif sub(line, q + 1, q + 1) == '"' then
          parts[#parts + 1] = sub(line, i, q)
          i = q + 2
        else
          parts[#parts + 1] = sub(line, i, q - 1)
          pos = q + 1
          break
        end
      end
      fields[#fields + 1] = table.concat(parts)
      local c = sub(line, pos, pos)
      if c == "" then return fields end
      if c ~= "," then return nil, "unexpected text after a quoted field" end
      pos = pos + 1
    else
      local comma = find(line, ",", pos, true)
      if not comma then
        fields[#fields + 1] = sub(line, pos)
        return fields
      end
      fields[#fields + 1] = sub(line, pos, comma - 1)
      pos = comma + 1
    end
  end
end

-- A record from the fields; or false, message.
local function csv_item(f, where)
  local n = #f
  if n < 2 or n > 3 then
    return false, where .. ": expected key,value[,ttl], got " .. n .. " field(s)"
  end
  local ttl = f[3]
  if ttl == "" then ttl = nil end
  if ttl ~= nil then
    local t = tonumber(ttl)
    if not t then return false, where .. ": bad ttl " .. ttl end
    ttl = t
  end
  return f[1], f[2], ttl
end

-- A reader of CSV records over a line iterator (lines without their "\n").
local function csv_reader(next_line, name)
  local lineno, first = 0, true
  local function more()
    local l = next_line()
    if l then
      lineno = lineno + 1
      if sub(l, -1) == "\r" then l = sub(l, 1, -2) end
    end
    return l
  end
  return function()
    while true do
      local line = more()
      if not line then return nil end
      if line ~= "" then
        local where = name .. ":" .. lineno
        local f, err
        if not find(line, '"', 1, true) then
          f = {}
          for field in (line .. ","):gmatch("([^,]*),") do f[#f + 1] = field end
        else
          f, err = csv_fields(line, more)
        end
        if not f then return false, where .. ": " .. err end
        local is_header = first and lower(f[1]) == "key" and lower(f[2] or "") == "value"
        first = false
        if not is_header then return csv_item(f, where) end
      end
    end
  end
end

-- A reader of JSON Lines over a line iterator.
-- The common shape (string key and value, a number or no ttl) is returned
-- right here: this runs once per item of a large file.
local function jsonl_reader(next_line, name)
  local lineno = 0
  local function where() return name .. ":" .. lineno end
  return function()
    while true do
      local line = next_line()
      if not line then return nil end
      lineno = lineno + 1
      local o, err = decode(line)
      if o then
        local k, v, ttl = o.key, o.value, o.ttl
        if type(k) == "string" and type(v) == "string" and (ttl == nil or type(ttl) == "number") then
          return k, v, ttl
        end
      end
      local k, v, ttl = parse_jsonl(line, o, err, where)
      if k ~= nil then return k, v, ttl end
    end
  end
end

-- --- whole JSON documents ------------------------------------------------------

local function is_array(d)
  return d[1] ~= nil or (next(d) == nil and getmetatable(d) ~= nil)
end

-- An iterator over a decoded document plus its item count; or nil, message.
local function document_items(d, name)
  if type(d) ~= "table" then return nil, name .. ": the document is not an array or an object" end
  if not is_array(d) and type(d.items) == "table" then d = d.items end
  if is_array(d) then
    local i, n = 0, #d
    return function() -- i stops at n: workers keep asking after the end
      if i >= n then return nil end
      i = i + 1
      local k, v, ttl = from_object(d[i])
      if k == false then return false, name .. ": item " .. i .. ": " .. v end
      return k, v, ttl
    end, n, function() return i end
  end
  local keys = {}
  for k in pairs(d) do keys[#keys + 1] = k end
  local i = 0
  return function()
    if i >= #keys then return nil end
    i = i + 1
    local k = keys[i]
    local v = d[k]
    if v == json_null then return false, name .. ": key " .. k .. " has no value" end
    return k, value_text(v)
  end, #keys, function() return i end
end

-- --- sources ---------------------------------------------------------------------

local EXT_FORMATS = { jsonl = "jsonl", ndjson = "jsonl", csv = "csv", json = "json" }

local function format_of_path(path)
  local ext = path:match("%.([%w]+)$")
  return ext and EXT_FORMATS[lower(ext)]
end

-- A JSON Lines file through kura.json.lines, which returns the common
-- {"key": "...", "value": "...", "ttl": n} lines as three values without
-- building a table (the cost that capped large warm-ups), every other line
-- decoded, and a line that is not JSON as an error naming it.
local function jsonl_file_source(path, size)
  local r, err = kura.json.lines(path)
  if not r then return nil, err end
  local function where() return path .. ":" .. r:line() end
  return {
    next = function()
      while true do
        local k, v, ttl = r:next()
        if k == nil then return nil end
        if k ~= false then return k, v, ttl end
        if v == nil then
          return false, where() .. ": bad JSON: " .. ttl:gsub("^line %d+: ", "")
        end
        k, v, ttl = parse_jsonl(nil, v, nil, where)
        if k ~= nil then return k, v, ttl end
      end
    end,
    fraction = function() return size > 0 and math.min(r:tell() / size, 1) or 1 end,
    close = function() r:close() end,
  }
end

-- A source: { next = fn, fraction = fn|nil, close = fn|nil } for sources
-- that never suspend, or { fill = fn(push) -> more } for those that may.
local function file_source(path, format)
  format = format or format_of_path(path)
  if not format then
    return nil, "cannot tell the format of " .. path .. " (use { file =, format = })"
  end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  if format == "json" then
    local text = f:read("a")
    f:close()
    local d, derr = decode(text)
    if d == nil then return nil, path .. ": bad JSON: " .. tostring(derr) end
    local it, n, pos = document_items(d, path)
    if not it then return nil, n end
    return { next = it, fraction = function() return n > 0 and pos() / n or 1 end }
  end
  local size = f:seek("end")
  f:seek("set", 0)
  if format == "jsonl" and kura.json.lines then
    f:close()
    return jsonl_file_source(path, size)
  end
  local lines = f:lines()
  local it = format == "csv" and csv_reader(lines, path) or jsonl_reader(lines, path)
  return {
    next = it,
    fraction = function()
      if io.type(f) ~= "file" then return 1 end
      return size > 0 and math.min(f:seek("cur") / size, 1) or 1
    end,
    close = function() if io.type(f) == "file" then f:close() end end,
  }
end

local function header(headers, name)
  if type(headers) ~= "table" then return nil end
  for k, v in pairs(headers) do
    if type(k) == "string" and lower(k) == name then
      return type(v) == "table" and table.concat(v, ", ") or v
    end
  end
end

local function format_of_response(spec, res, url)
  if spec.format then return spec.format end
  local ct = lower(header(res.headers, "content-type") or "")
  if find(ct, "csv", 1, true) then return "csv" end
  if find(ct, "ndjson", 1, true) or find(ct, "jsonl", 1, true)
     or find(ct, "json-seq", 1, true) then return "jsonl" end
  local by_ext = format_of_path((url:gsub("[?#].*$", "")))
  if by_ext then return by_ext end
  if find(ct, "json", 1, true) then return "json" end
  local first = res.body:match("^%s*(.)")
  if first == "[" then return "json" end
  if first == "{" then return decode(res.body) ~= nil and "json" or "jsonl" end
  return "csv"
end

-- Resolves a next-page reference against the page's URL.
local function resolve(base, ref)
  if ref:match("^%a[%w+.-]*://") then return ref end
  local origin = base:match("^(%a[%w+.-]*://[^/?#]+)")
  if sub(ref, 1, 1) == "/" then return origin .. ref end
  local dir = base:gsub("[?#].*$", ""):match("^(.*/)") or (origin .. "/")
  return dir .. ref
end

local function string_lines(s)
  return s:gmatch("([^\n]*)\n?")
end

-- Pushes every item of a body; returns the next page's URL from the body.
local function push_body(push, body, format, url)
  local it, nxt
  if format == "json" then
    local d, err = decode(body)
    if d == nil then error(url .. ": bad JSON: " .. tostring(err), 0) end
    if type(d) == "table" and not is_array(d) and type(d.items) == "table" then
      nxt = type(d.next) == "string" and d.next or nil
    end
    it = document_items(d, url)
    if not it then error(url .. ": the document is not an array or an object", 0) end
  elseif format == "csv" then
    it = csv_reader(string_lines(body), url)
  else
    it = jsonl_reader(string_lines(body), url)
  end
  for k, v, ttl in it do push(k, v, ttl) end
  return nxt
end

local function deadline_message(run)
  return string.format("the deadline of %g s passed (deadline)", run.deadline)
end

local function http_source(spec, run)
  if not (kura.http and kura.http.request) then
    return nil, "kura.http is not available in this build"
  end
  local url, seen, pages = spec.url, {}, 0
  run.deadline = run.deadline or DEFAULT_HTTP_DEADLINE
  return {
    fill = function(push)
      if not url then return false end
      if pages >= run.max_pages then
        error(string.format("%s: stopped after %d pages (max_pages): the source names more",
                            url, pages), 0)
      end
      local left = run.deadline_at - kura.now()
      if left <= 0 then error(deadline_message(run), 0) end
      pages = pages + 1
      seen[url] = true
      local timeout = math.min(spec.timeout or 30, left)
      local res, err = kura.http.request{ method = "GET", url = url, headers = spec.headers,
                                          timeout = timeout, max_size = spec.max_size }
      if not res and err.code == "TIMEOUT_ERROR" and timeout == left then
        error(deadline_message(run), 0) -- the page's time was the run's last
      end
      if not res then error(url .. ": " .. tostring(err), 0) end
      if res.status < 200 or res.status > 299 then
        error(url .. ": HTTP status " .. tostring(res.status), 0)
      end
      res.body = res.body or ""
      local nxt = push_body(push, res.body, format_of_response(spec, res, url), url)
      if not nxt then
        local link = header(res.headers, "link")
        nxt = link and link:match('<([^>]*)>%s*;[^,]*rel="?next"?')
      end
      nxt = nxt and resolve(url, nxt)
      url = (nxt and not seen[nxt]) and nxt or nil
      return url ~= nil
    end,
  }
end

local function iterator_source(fn)
  return {
    fill = function(push)
      for _ = 1, FILL_CHUNK do
        local k, v, ttl = fn()
        if k == nil then return false end
        if type(k) == "number" then k = tostring(k) end
        if type(k) ~= "string" then
          push(false, "iterator returned a " .. type(k) .. " key")
        elseif v == nil then
          push(false, "iterator returned no value for " .. k)
        else
          push(k, value_text(v), ttl)
        end
      end
      return true
    end,
  }
end

local function cache_source(spec, run)
  local keys = spec.keys
  if type(keys) ~= "table" then return nil, "source.keys must be an array of keys" end
  local i, n = 0, #keys
  return {
    fill = function(push)
      if i >= n then return false end
      local chunk = table.move(keys, i + 1, math.min(i + FILL_CHUNK, n), 1, {})
      i = i + #chunk
      local got, err = spec.client:get_batch(spec.cache, chunk)
      for _, k in ipairs(chunk) do
        local v = got and got[k]
        if not got then
          push(false, "get_batch from " .. spec.cache .. ": " .. tostring(err))
        elseif v == nil then
          run.skipped = run.skipped + 1
        else
          push(k, v, spec.copy_ttl and COPY_TTL or nil)
        end
      end
      return i < n
    end,
    fraction = function() return n > 0 and i / n or 1 end,
    copy_ttl = function(k) return (spec.client:item_get_ttl(spec.cache, k)) end,
  }
end

local function make_source(source, run)
  local ty = type(source)
  if ty == "function" then return iterator_source(source) end
  if ty == "string" then
    if source:match("^https?://") then return http_source({ url = source }, run) end
    return file_source(source)
  end
  if ty ~= "table" then return nil, "source must be a path, a URL, a function or a table" end
  if source.file then return file_source(source.file, source.format) end
  if source.url then return http_source(source, run) end
  if source.client and source.cache then return cache_source(source, run) end
  return nil, "source table needs file, url, or client + cache + keys"
end

-- Turns a fill-based source into a next() that any worker may call: one
-- fill runs at a time, in its own task, which workers that find the buffer
-- empty join. The next fill starts when half of the last one is consumed,
-- so that fetching (a page, a get_batch) overlaps the writes.
local function buffered(src, run)
  local ks, vs, ts, head, tail = {}, {}, {}, 1, 0
  local done, filler, low, pushed = false, nil, 0, 0
  local function push(k, v, ttl)
    pushed = pushed + 1
    tail = tail + 1
    ks[tail], vs[tail], ts[tail] = k, v, ttl
  end
  -- The fill task clears `filler` itself, before its joiners wake: a woken
  -- worker must never see a finished filler (join would return at once and
  -- it would spin) nor clear a newer one.
  local function fill()
    local before = pushed
    local ok, more = pcall(src.fill, push)
    if not ok then
      run.source_error = tostring(more)
      more = false
    end
    if not more then done = true end
    low = (pushed - before) // 2
    filler = nil
  end
  -- Starts a fill on fresh arrays holding what is left, so that consumed
  -- slots do not pile up over a long run.
  local function start_fill()
    local n = tail - head + 1
    ks, vs, ts = table.move(ks, head, tail, 1, {}), table.move(vs, head, tail, 1, {}),
                 table.move(ts, head, tail, 1, {})
    head, tail = 1, n
    filler = kura.spawn(fill)
  end
  return function()
    if not filler and not done and tail - head < low then start_fill() end
    while head > tail do
      if done then return nil end
      if not filler then start_fill() end
      filler:join()
    end
    local i = head
    head = i + 1
    return ks[i], vs[i], ts[i]
  end
end

-- --- progress ------------------------------------------------------------------

local function snapshot(run, now, done)
  local secs = now - run.t0
  local n = run.loaded + run.failed + run.skipped
  local s = { loaded = run.loaded, failed = run.failed, skipped = run.skipped, seconds = secs,
              rate = secs > 0 and n / secs or 0, done = done or nil }
  local frac = run.src.fraction and run.src.fraction()
  if frac then
    s.fraction = frac
    if frac > 0 then s.eta = secs * (1 - frac) / frac end
  end
  return s
end

local function terminal_line(s)
  local parts = { string.format("\rwarm-up: %d loaded, %d failed, %d skipped, %.0f items/s",
                                s.loaded, s.failed, s.skipped, s.rate) }
  if s.fraction then parts[#parts + 1] = string.format(", %.0f%%", s.fraction * 100) end
  if s.eta and not s.done then parts[#parts + 1] = string.format(", ETA %.0fs", s.eta) end
  io.stderr:write(table.concat(parts), s.done and "\n" or "   ")
  io.stderr:flush()
end

local function progress_fn(p)
  if type(p) == "function" then return p end
  if p == nil then p = kura.isatty ~= nil and kura.isatty(2) end
  return p and terminal_line or nil
end

local function report_progress(run, done)
  local now = kura.now()
  run.next_report = now + run.interval
  local ok, err = pcall(run.progress, snapshot(run, now, done))
  if not ok then
    run.progress = nil
    kura.log.warn("warm-up: the progress function raised: %s", tostring(err))
  end
end

-- --- the run -------------------------------------------------------------------

local function fail(run, msg)
  run.failed = run.failed + 1
  if #run.errors < MAX_REPORTED then
    run.errors[#run.errors + 1] = msg
    kura.log.warn("warm-up: %s", msg)
  end
end

-- Runs the transform: the item to store, or nil (skipped or failed).
local function apply_transform(run, k, v, ttl)
  local ok, k2, v2, t2 = pcall(run.transform, k, v, ttl)
  if not ok then return fail(run, "transform(" .. k .. "): " .. tostring(k2)) end
  if k2 == nil then
    run.skipped = run.skipped + 1
    return nil
  end
  if type(k2) ~= "string" or (type(v2) ~= "string" and type(v2) ~= "number") then
    return fail(run, "transform(" .. k .. ") returned a " .. type(k2) .. " key and a "
                .. type(v2) .. " value")
  end
  return k2, v2, t2
end

-- Pulls items and stores them until the source ends. This is the hot loop
-- (a million items a second on the memory backend): everything it needs is
-- in locals, and `loaded` goes to the shared stats every CHECK_EVERY items.
local function worker(run)
  local next_item, h, transform = run.next_item, run.handle, run.transform
  local default_ttl, jitter, random = run.ttl, run.jitter, run.random
  local n, loaded, check_every = 0, 0, run.check_every
  while not run.stopped do
    local k, v, ttl = next_item()
    if k == nil then break end
    if not k then
      fail(run, v)
    else
      if ttl == COPY_TTL then ttl = run.src.copy_ttl(k) end
      if transform then k, v, ttl = apply_transform(run, k, v, ttl) end
      if k then
        ttl = ttl or default_ttl
        if jitter > 0 and ttl then ttl = ttl * (1 + jitter * (2 * random() - 1)) end
        local ok, err = h:set(k, v, ttl)
        if ok then loaded = loaded + 1 else fail(run, "set " .. k .. ": " .. tostring(err)) end
      end
    end
    n = n + 1
    if n % check_every == 0 then
      run.loaded, loaded = run.loaded + loaded, 0
      local now = kura.now()
      if run.progress and now >= run.next_report then report_progress(run, false) end
      if now >= run.deadline_at then
        run.stopped = true
        run.source_error = run.source_error or deadline_message(run)
      end
    end
  end
  run.loaded = run.loaded + loaded
end

local function check_options(o)
  if type(o) ~= "table" then error("warmup.run: expected a table of options", 3) end
  if type(o.cache) ~= "string" then error("warmup.run: cache must be a string", 3) end
  if o.source == nil then error("warmup.run: source is required", 3) end
  if o.ttl ~= nil and type(o.ttl) ~= "number" then error("warmup.run: ttl must be a number", 3) end
  if o.deadline ~= nil and not (type(o.deadline) == "number" and o.deadline > 0) then
    error("warmup.run: deadline must be a positive number of seconds", 3)
  end
  if o.max_pages ~= nil and not (math.type(o.max_pages) == "integer" and o.max_pages > 0) then
    error("warmup.run: max_pages must be a positive integer", 3)
  end
  local j = o.jitter or 0
  if type(j) ~= "number" or j < 0 or j >= 1 then
    error("warmup.run: jitter must be a number in [0, 1)", 3)
  end
  local c = o.concurrency or 64
  if math.type(c) ~= "integer" or c < 1 then
    error("warmup.run: concurrency must be a positive integer", 3)
  end
  if o.transform ~= nil and type(o.transform) ~= "function" then
    error("warmup.run: transform must be a function", 3)
  end
end

-- The run's state; or nil, err when the source cannot be opened.
local function new_run(o)
  local run = {
    client = o.client or kura.client(), cache = o.cache, ttl = o.ttl, jitter = o.jitter or 0,
    random = o.random or math.random, transform = o.transform,
    loaded = 0, failed = 0, skipped = 0, errors = {},
    progress = progress_fn(o.progress), interval = o.progress_interval or 1,
    deadline = o.deadline, max_pages = o.max_pages or DEFAULT_MAX_PAGES,
  }
  local src, err = make_source(o.source, run)
  if not src then return nil, err end
  run.src = src
  -- Items without a TTL live the client's default TTL: jitter spreads that
  -- one too (else they would all expire in the same second).
  if run.jitter > 0 and run.ttl == nil and type(run.client) == "userdata"
      and run.client.default_ttl then
    run.ttl = run.client:default_ttl()
  end
  run.next_item = src.next or buffered(src, run)
  run.handle = run.client:cache(run.cache)
  -- Each worker counts its own items: with a network backend they share
  -- the items, so each one checks the clock proportionally more often.
  run.check_every = math.max(16, CHECK_EVERY // (o.concurrency or 64))
  return run
end

function M.run(o)
  check_options(o)
  local run, err = new_run(o)
  if not run then return nil, err end
  -- Momento's HTTP API cannot create caches: there the cache must exist.
  local ok, cerr = run.client:create_cache(run.cache)
  if ok == nil and cerr.code ~= "UNSUPPORTED_OPERATION_ERROR" then
    if run.src.close then run.src.close() end
    return nil, cerr
  end
  run.t0 = kura.now()
  run.next_report = run.t0 + run.interval
  run.deadline_at = run.deadline and run.t0 + run.deadline or math.huge
  -- Every item leaves a few short-lived strings and a table: the
  -- generational collector handles that garbage ~10% cheaper.
  local gc_mode = collectgarbage("generational")
  local workers = {}
  for i = 1, o.concurrency or 64 do workers[i] = kura.spawn(worker, run) end
  for _, w in ipairs(workers) do
    local wok, werr = w:join()
    if wok == nil and werr ~= nil then run.source_error = run.source_error or tostring(werr) end
  end
  collectgarbage(gc_mode)
  if run.src.close then run.src.close() end
  if run.source_error and run.loaded + run.failed + run.skipped == 0 then
    return nil, run.source_error
  end
  if run.progress then report_progress(run, true) end
  local stats = snapshot(run, kura.now(), true)
  stats.done, stats.fraction, stats.eta = nil, nil, nil
  stats.errors, stats.error = run.errors, run.source_error
  return stats
end

M.DEFAULT_MAX_PAGES, M.DEFAULT_HTTP_DEADLINE = DEFAULT_MAX_PAGES, DEFAULT_HTTP_DEADLINE

-- Exposed for tests and scripts: the CSV record splitter.
M.csv_fields = function(line) return csv_fields(line, function() return nil end) end

return M
