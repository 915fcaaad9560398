-- kura.warmup: 100k items from every source kind (JSON Lines, CSV, JSON,
-- HTTP with paging, a Lua iterator, another client's cache) with failures
-- injected (bad lines, a value over the size limit, a transform that raises
-- or skips), TTL jitter bounds, progress reports, CSV quoting. Runs on any
-- backend (tests/workflows/ registers it per backend).
local t = require("kura.test")
local warmup = require("kura.warmup")

-- Items per source: 100k; 5k on the Momento backends, whose local emulators
-- take about a millisecond per write (KURA_WF_ITEMS overrides; a multiple
-- of 1000).
local BACKEND = tostring(kura.client()):match("^kura%.client%((.-)%)") or "?"
local N = math.tointeger(tonumber(os.getenv("KURA_WF_ITEMS") or "")) or
          (BACKEND:find("^momento") and 5000 or 100000)
local K = N // 1000 -- items of each injected failure kind
local TTL = 3600    -- long enough for any backend's run
local BIG = string.rep("x", 5 * 1024 * 1024 + 100) -- over the 5 MiB item limit

local function fresh_cache(prefix)
  local c = kura.client()
  local name = string.format("kwf-%s-%08x", prefix, math.random(0, 0x7fffffff))
  t.eq(c:create_cache(name), true)
  return c, name
end

local tmpdir = (function()
  local name = os.tmpname()
  os.remove(name)
  assert(os.execute("mkdir -p '" .. name .. "'"))
  return name
end)()

local function write_file(name, chunks)
  local path = tmpdir .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(chunks))
  f:close()
  return path
end

-- The injected failures, by item number i in 1..N: every 1000th item is
-- malformed in the source, item 500 is too big, the transform raises for
-- i % 1000 == 7 and skips i % 1000 == 9.
local function is_bad(i) return i % 1000 == 0 end
local function value_of(i) return i == 500 and BIG or ("v" .. i) end

local function transform(key, value, ttl)
  local i = tonumber(key:sub(2))
  if i % 1000 == 7 then error("injected transform failure for " .. key) end
  if i % 1000 == 9 then return nil end
  return key, value, ttl
end

local EXPECT = { loaded = N - 3 * K - 1, failed = 2 * K + 1, skipped = K }

-- Whether one of the reported failures contains text.
local function has_error(stats, text)
  for _, e in ipairs(stats.errors) do
    if e:find(text, 1, true) then return true end
  end
  return false
end

-- Checks the stats and what landed in the cache.
local function check_loaded(c, cache, stats, expect, what, absent)
  expect = expect or EXPECT
  t.ok(stats, what .. ": no stats")
  t.eq({ stats.loaded, stats.failed, stats.skipped },
       { expect.loaded, expect.failed, expect.skipped }, what .. ": loaded, failed, skipped")
  t.ok(stats.seconds > 0 and stats.rate > 0, what .. ": seconds and rate")
  t.eq(#stats.errors, 5, what .. ": the first five failures are kept")
  t.is_nil(stats.error, what .. ": no source error")
  local hits = 0
  for base = 0, N - 1, 1000 do
    local keys = {}
    for i = base + 1, base + 1000 do keys[#keys + 1] = "k" .. i end
    local got = assert(c:get_batch(cache, keys))
    for k, v in pairs(got) do
      hits = hits + 1
      if v ~= "v" .. k:sub(2) then t.eq(v, "v" .. k:sub(2), what .. ": value of " .. k) end
    end
  end
  t.eq(hits, expect.loaded, what .. ": items in the cache")
  for _, k in ipairs(absent or { "k1000", "k500", "k1007", "k1009" }) do
    t.is_nil(c:get(cache, k), what .. ": " .. k .. " must not be stored")
  end
  t.eq(c:get(cache, "k1"), "v1", what)
  t.eq(c:get(cache, "k" .. (N - 1)), "v" .. (N - 1), what)
end

local function jsonl_lines(from, to)
  local out, encode = {}, kura.json.encode
  for i = from, to do
    if is_bad(i) then
      out[#out + 1] = '{"key": "k' .. i .. '", "value": \n'
    else
      out[#out + 1] = encode({ key = "k" .. i, value = value_of(i), ttl = i % 2 == 1 and 300 or nil })
      out[#out + 1] = "\n"
    end
  end
  return out
end

local function csv_quote(s) return '"' .. s:gsub('"', '""') .. '"' end

local function csv_lines(from, to, header)
  local out = { header and "key,value,ttl\n" or nil }
  for i = from, to do
    if is_bad(i) then
      out[#out + 1] = "k" .. i .. ",a,b,c\n"
    elseif i % 2 == 0 then
      out[#out + 1] = "k" .. i .. "," .. csv_quote(value_of(i)) .. ",300\r\n"
    else
      out[#out + 1] = "k" .. i .. "," .. value_of(i) .. "\n"
    end
  end
  return out
end

local function json_items(from, to)
  local items = {}
  for i = from, to do
    items[#items + 1] = is_bad(i) and { name = "k" .. i } or { key = "k" .. i, value = value_of(i) }
  end
  return items
end

t.test("JSON Lines file: " .. N .. " items, failures counted, run goes on", function()
  local c, cache = fresh_cache("jsonl")
  local path = write_file("items.jsonl", jsonl_lines(1, N))
  local stats = warmup.run{ client = c, cache = cache, source = path, ttl = 600,
                            transform = transform, progress = false }
  check_loaded(c, cache, stats, nil, "jsonl")
  t.ok(c:item_get_ttl(cache, "k1") <= 300, "the item's own TTL wins")
  t.ok(c:item_get_ttl(cache, "k2") > 300, "items without one get the run's ttl")
  t.ok(has_error(stats, "items.jsonl:1000: bad JSON"), stats.errors)
  t.ok(has_error(stats, "injected transform failure for k7"), stats.errors)
  t.ok(has_error(stats, "set k500: INVALID_ARGUMENT_ERROR"), stats.errors)
  c:delete_cache(cache)
end)

t.test("CSV file: " .. N .. " rows, header, quoting, CRLF", function()
  local c, cache = fresh_cache("csv")
  local path = write_file("items.csv", csv_lines(1, N, true))
  local stats = warmup.run{ client = c, cache = cache, source = { file = path }, ttl = TTL,
                            transform = transform, concurrency = 8, progress = false }
  check_loaded(c, cache, stats, nil, "csv")
  t.ok(has_error(stats, "items.csv:1001: expected key,value[,ttl], got 4 field(s)"), stats.errors)
  c:delete_cache(cache)
end)

t.test("JSON document file: array of " .. N .. " objects", function()
  local c, cache = fresh_cache("json")
  local path = write_file("items.json", { kura.json.encode(json_items(1, N)) })
  local stats = warmup.run{ client = c, cache = cache, source = path, ttl = TTL,
                            transform = transform, progress = false }
  check_loaded(c, cache, stats, nil, "json")
  t.ok(has_error(stats, "item 1000: item has no key"), stats.errors)
  c:delete_cache(cache)
end)

t.test("Lua iterator: " .. N .. " items, may suspend", function()
  local c, cache = fresh_cache("iter")
  local i = 0
  local function source()
    i = i + 1
    if i > N then return nil end
    if i % 10000 == 0 then kura.sleep(0) end
    if is_bad(i) then return {}, "not a key" end
    return "k" .. i, value_of(i), TTL
  end
  local stats = warmup.run{ client = c, cache = cache, source = source, transform = transform,
                            progress = false }
  check_loaded(c, cache, stats, nil, "iterator")
  t.ok(has_error(stats, "iterator returned a table key"), stats.errors)
  c:delete_cache(cache)
end)

t.test("another client's cache: " .. N .. " keys, absent ones skipped", function()
  local c, cache = fresh_cache("copy")
  local other = kura.client{}
  local _, from = fresh_cache("copysrc")
  local keys = {}
  for base = 0, N - 1, 1000 do
    local items = {}
    for i = base + 1, base + 1000 do
      keys[#keys + 1] = "k" .. i
      if not is_bad(i) then items[#items + 1] = { key = "k" .. i, value = "v" .. i } end
    end
    t.eq(other:set_batch(from, items, 300), true)
  end
  local stats = warmup.run{ client = c, cache = cache, transform = transform, progress = false,
                            source = { client = other, cache = from, keys = keys, copy_ttl = true } }
  -- The 100 malformed items are absent from the source cache: skipped, not
  -- failed; item 500 is of normal size here (a cache cannot hold a big one).
  check_loaded(c, cache, stats, { loaded = N - 3 * K, failed = K, skipped = 2 * K }, "cache",
               { "k1000", "k1007", "k1009" })
  local ttl = c:item_get_ttl(cache, "k1")
  t.ok(ttl > 250 and ttl <= 300, "copy_ttl copies the remaining TTL: " .. tostring(ttl))
  c:delete_cache(cache)
  c:delete_cache(from)
end)

-- A python3 HTTP server: the files of the current directory, and under
-- /paged?page=N JSON Lines pages of 1000 items (k1.. upwards) that name the
-- next page in a Link header, PAGES pages.
local PAGES = math.min(20, K)
local SERVER_PY = [[
import http.server, os, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if not self.path.startswith("/paged"):
            return super().do_GET()
        page = int(self.path.split("page=")[1])
        lines = ['{"key":"k%d","value":"v%d"}' % (i, i)
                 for i in range(page * 1000 + 1, page * 1000 + 1001)]
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        if page + 1 < int(sys.argv[2]):
            self.send_header("Link", '</paged?page=%d>; rel="next"' % (page + 1))
        self.end_headers()
        self.wfile.write(body)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(srv.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.serve_forever()
]]

-- Starts that server serving dir on a port the system picks (it writes
-- the port to a file); returns its base URL and a function that stops it.
local function http_server(dir)
  local script = write_file("server.py", { SERVER_PY })
  local portfile = dir .. "/server.port"
  local p = assert(io.popen(string.format(
    "cd '%s' && python3 '%s' '%s' %d >/dev/null 2>&1 & echo $!", dir, script, portfile, PAGES)))
  local pid = assert(tonumber(p:read("l")))
  p:close()
  local port
  for _ = 1, 600 do
    local f = io.open(portfile)
    port = f and tonumber(f:read("a"))
    if f then f:close() end
    if port then break end
    kura.sleep(0.05)
  end
  assert(port, "the python3 HTTP server did not start")
  return "http://127.0.0.1:" .. port, function() os.execute("kill " .. pid) end
end

t.test("HTTP source: paged JSON, then CSV, " .. N .. " items", function()
  if not (kura.http and kura.http.request) then
    print("skip: kura.http is not in this build")
    return
  end
  local c, cache = fresh_cache("http")
  local a, b = N * 2 // 5, N * 4 // 5
  local first = { items = json_items(1, a), next = "page2.json" }
  write_file("page1.json", { kura.json.encode(first) })
  write_file("page2.json", { kura.json.encode({ items = json_items(a + 1, b),
                                                next = "/page3.csv" }) })
  write_file("page3.csv", csv_lines(b + 1, N, false))
  local base, stop = http_server(tmpdir)
  local ok, stats, err = pcall(warmup.run, { client = c, cache = cache, ttl = TTL,
                                             source = { url = base .. "/page1.json", timeout = 60 },
                                             transform = transform, progress = false })
  local ok2, paged = pcall(warmup.run, { client = c, cache = cache .. "-link", progress = false,
                                         source = { url = base .. "/paged?page=0" } })
  stop()
  t.ok(ok, stats)
  t.ok(stats, err)
  check_loaded(c, cache, stats, nil, "http")
  t.ok(ok2, paged)
  t.eq({ paged.loaded, paged.failed }, { PAGES * 1000, 0 }, "pages linked by Link headers")
  t.eq(c:get(cache .. "-link", "k" .. PAGES * 1000), "v" .. PAGES * 1000)
  c:delete_cache(cache .. "-link")
  local missing = warmup.run{ client = c, cache = cache, source = { url = base .. "/nope.json" },
                              progress = false }
  t.is_nil(missing, "an unreachable source gives nil, err")
  c:delete_cache(cache)
end)

-- A client whose writes suspend (like a network backend's) and that records
-- how many are in flight at once.
local function slow_client(real)
  local fake = { in_flight = 0, peak = 0, sets = 0 }
  function fake:create_cache(name) return real:create_cache(name) end
  function fake:cache(name)
    return { set = function(_, k, v, ttl)
      fake.in_flight = fake.in_flight + 1
      fake.peak = math.max(fake.peak, fake.in_flight)
      kura.sleep(0)
      fake.in_flight = fake.in_flight - 1
      fake.sets = fake.sets + 1
      return real:set(name, k, v, ttl)
    end }
  end
  return fake
end

t.test("a bounded window of concurrent writes, async sources prefetch", function()
  local c, cache = fresh_cache("window")
  for _, conc in ipairs({ 1, 7, 64 }) do
    local fake = slow_client(c)
    local i, fills = 0, 0
    local function source()
      i = i + 1
      if i > 2000 then return nil end
      if i % 256 == 1 then
        fills = fills + 1
        kura.sleep(0) -- a fetch
      end
      return "w" .. i, "v" .. i
    end
    local stats = warmup.run{ client = fake, cache = cache, source = source, concurrency = conc,
                              progress = false }
    t.eq(stats.loaded, 2000, "concurrency " .. conc)
    t.eq(fake.sets, 2000)
    t.eq(fake.peak, conc, "writes in flight at most, and up to, concurrency")
  end
  t.eq(c:get(cache, "w2000"), "v2000")
  local fake = slow_client(c)
  local path = write_file("window.jsonl", jsonl_lines(1, 3000))
  local stats = warmup.run{ client = fake, cache = cache, source = path, concurrency = 16,
                            progress = false }
  t.eq({ stats.loaded, stats.failed }, { 2996, 4 }, "3 bad lines and the big value")
  t.eq(fake.peak, 16)
  c:delete_cache(cache)
end)

t.test("progress of a JSON document never passes 100%, however many workers ask", function()
  local c, cache = fresh_cache("frac")
  for _, doc in ipairs({ '{"a": "1", "b": "2", "c": "3", "d": "4"}', '[["a", "1"], ["b", "2"]]' }) do
    local path = write_file("frac.json", { doc })
    local seen = {}
    local stats = warmup.run{ client = slow_client(c), cache = cache, source = path,
                              concurrency = 64, progress = function(s) seen[#seen + 1] = s.fraction end }
    t.ok(stats.loaded >= 2)
    t.ok(#seen >= 1)
    for _, f in ipairs(seen) do t.ok(f <= 1, "fraction " .. tostring(f)) end
  end
  c:delete_cache(cache)
end)

t.test("object documents, JSON values, numbers", function()
  local c, cache = fresh_cache("obj")
  local path = write_file("obj.json", { '{"a": "1", "b": 2, "c": {"x": [1, 2]}, "d": true}' })
  local stats = warmup.run{ client = c, cache = cache, source = path, progress = false }
  t.eq(stats.loaded, 4)
  t.eq(c:get(cache, "a"), "1")
  t.eq(c:get(cache, "b"), "2")
  t.eq(kura.json.decode(c:get(cache, "c")).x[2], 2)
  t.eq(c:get(cache, "d"), "true")
  local arr = write_file("arr.jsonl", { '["p", "q", 50]\n', '\n', '{"key": 7, "value": 8}\n' })
  stats = warmup.run{ client = c, cache = cache, source = arr, progress = false }
  t.eq({ stats.loaded, stats.failed }, { 2, 0 })
  t.eq(c:get(cache, "p"), "q")
  t.eq(c:get(cache, "7"), "8")
  c:delete_cache(cache)
end)

t.test("CSV fields: quotes, escapes, embedded newlines", function()
  t.eq(warmup.csv_fields('a,b,c'), { "a", "b", "c" })
  t.eq(warmup.csv_fields('"a,1","say ""hi""",'), { "a,1", 'say "hi"', "" })
  t.eq(warmup.csv_fields('"",x'), { "", "x" })
  local c, cache = fresh_cache("csvq")
  local path = write_file("q.csv", { 'Key,Value\n', 'm,"line1\nline2 ""q"""\n', 'n,"x",5\n',
                                     'bad,"open\n' })
  local stats = warmup.run{ client = c, cache = cache, source = path, progress = false }
  t.eq({ stats.loaded, stats.failed }, { 2, 1 })
  t.eq(c:get(cache, "m"), 'line1\nline2 "q"')
  t.eq(c:get(cache, "n"), "x")
  t.ok(has_error(stats, "unterminated quoted field"), stats.errors)
  c:delete_cache(cache)
end)

-- The shortest and longest TTL left of keys prefix..1 to prefix..n.
local function ttl_range(c, cache, prefix, n)
  local lo, hi = math.huge, 0
  for k = 1, n do
    local ttl = c:item_get_ttl(cache, prefix .. k)
    lo, hi = math.min(lo, ttl), math.max(hi, ttl)
  end
  return lo, hi
end

t.test("jitter spreads TTLs within +/- jitter", function()
  local c, cache = fresh_cache("jitter")
  local i = 0
  local function items()
    i = i + 1
    if i <= 200 then return "j" .. i, "v" end
  end
  local stats = warmup.run{ client = c, cache = cache, source = items, ttl = 100, jitter = 0.1,
                            progress = false }
  t.eq(stats.loaded, 200)
  local lo, hi = ttl_range(c, cache, "j", 200)
  t.ok(lo >= 89 and hi <= 110, string.format("ttls in [%.3f, %.3f]", lo, hi))
  t.ok(hi - lo > 10, string.format("ttls spread: [%.3f, %.3f]", lo, hi))
  -- The bounds exactly, with an injected random source.
  for _, r in ipairs({ 0, 1 }) do
    i = 0
    warmup.run{ client = c, cache = cache, source = items, ttl = 100, jitter = 0.1,
                random = function() return r end, progress = false }
    local ttl = c:item_get_ttl(cache, "j1")
    local want = r == 0 and 90 or 110
    t.ok(ttl <= want and ttl > want - 1.5, "random " .. r .. ": ttl " .. ttl)
  end
  c:delete_cache(cache)
end)

t.test("jitter spreads the client's default TTL too", function()
  local c = assert(kura.client{ default_ttl = 100 })
  t.eq(c:default_ttl(), 100)
  local cache = string.format("kwf-jdef-%08x", math.random(0, 0x7fffffff))
  t.eq(c:create_cache(cache), true)
  local i = 0
  local function items()
    i = i + 1
    if i <= 200 then return "d" .. i, "v" end
  end
  local stats = warmup.run{ client = c, cache = cache, source = items, jitter = 0.1,
                            progress = false }
  t.eq(stats.loaded, 200)
  local lo, hi = ttl_range(c, cache, "d", 200)
  t.ok(lo >= 89 and hi <= 110, string.format("ttls in [%.3f, %.3f]", lo, hi))
  t.ok(hi - lo > 10, string.format("the default TTL spread: [%.3f, %.3f]", lo, hi))
  -- without jitter the default stays the client's, unjittered
  i = 0
  warmup.run{ client = c, cache = cache, source = items, progress = false }
  local ttl = c:item_get_ttl(cache, "d1")
  t.ok(ttl <= 100 and ttl > 98.5, "no jitter: " .. ttl)
  c:delete_cache(cache)
end)

t.test("progress: called while running and once at the end", function()
  local c, cache = fresh_cache("progress")
  local path = write_file("progress.jsonl", jsonl_lines(1, math.min(N, 20000)))
  local calls = {}
  local stats = warmup.run{ client = c, cache = cache, source = path, progress_interval = 0,
                            progress = function(s) calls[#calls + 1] = s end }
  t.ok(#calls > 10, "calls: " .. #calls)
  local last = calls[#calls]
  t.eq(last.done, true)
  t.eq(last.fraction, 1)
  t.eq(last.loaded, stats.loaded)
  local prev = -1
  for k = 1, #calls - 1 do
    local s = calls[k]
    t.ok(not s.done and s.fraction >= prev and s.fraction <= 1, "fraction " .. tostring(s.fraction))
    t.ok(s.eta ~= nil and s.eta >= 0, "eta")
    prev = s.fraction
  end
  c:delete_cache(cache)
end)

-- The keys p\u0000a and p\u0000b are two items, not one item "p"; a line
-- with text after its object fails, naming the line; a directory fails the
-- run at once.
t.test("JSON Lines: binary keys loaded exactly, trailing text refused", function()
  local c, cache = fresh_cache("nul")
  local path = write_file("nul.jsonl", {
    '{"key":"p\\u0000a","value":"1"}\n', '{"key":"p\\u0000b","value":"2\\u0000"}\n',
    '{"key":"t","value":"x"} garbage\n', '{"key":"u","value":"y"}\n' })
  local stats = warmup.run{ client = c, cache = cache, source = path, progress = false }
  t.eq({ stats.loaded, stats.failed }, { 3, 1 })
  t.eq(c:get(cache, "p\0a"), "1")
  t.eq(c:get(cache, "p\0b"), "2\0")
  t.is_nil(c:get(cache, "p"))
  t.is_nil(c:get(cache, "t"))
  t.eq(c:get(cache, "u"), "y")
  t.ok(has_error(stats, "nul.jsonl:3: bad JSON: invalid JSON at byte 25: text after the JSON"),
       stats.errors)
  local v, err = warmup.run{ client = c, cache = cache, source = { file = tmpdir, format = "jsonl" },
                             progress = false }
  t.is_nil(v)
  t.ok(tostring(err):find("Is a directory", 1, true), tostring(err))
  c:delete_cache(cache)
end)

t.test("bad sources and options", function()
  local c, cache = fresh_cache("bad")
  local v, err = warmup.run{ client = c, cache = cache, source = tmpdir .. "/absent.jsonl" }
  t.is_nil(v)
  t.ok(tostring(err):find("absent.jsonl", 1, true), tostring(err))
  v, err = warmup.run{ client = c, cache = cache, source = tmpdir .. "/x.txt" }
  t.is_nil(v)
  t.ok(tostring(err):find("format", 1, true), tostring(err))
  local broken = write_file("broken.json", { '[{"key": "a", "value": "b"},' })
  v, err = warmup.run{ client = c, cache = cache, source = broken }
  t.is_nil(v)
  t.ok(tostring(err):find("bad JSON", 1, true), tostring(err))
  local n = 0
  local stats = warmup.run{ client = c, cache = cache, progress = false, source = function()
    n = n + 1
    if n > 3 then error("iterator broke") end
    return "i" .. n, "v"
  end }
  t.eq(stats.loaded, 3)
  t.ok(tostring(stats.error):find("iterator broke", 1, true), tostring(stats.error))
  t.raises(function() warmup.run{ client = c, source = "x.jsonl" } end, "cache must be a string")
  t.raises(function() warmup.run{ client = c, cache = cache } end, "source is required")
  t.raises(function() warmup.run{ client = c, cache = cache, source = "a.csv", jitter = 2 } end,
           "jitter")
  t.raises(function() warmup.run{ client = c, cache = cache, source = "a.csv", concurrency = 0 } end,
           "concurrency")
  c:delete_cache(cache)
end)

t.test("a source that never ends: max_pages and deadline end the run", function()
  local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
  local srv = dofile(here .. "../http/serve.lua").start(here .. "../http/server.py")
  local c, cache = fresh_cache("endless")
  -- Every page names a new next page.
  local ok, stats = pcall(warmup.run, { client = c, cache = cache, progress = false, max_pages = 5,
                                        source = srv.url .. "/endless/1" })
  t.ok(ok, stats)
  t.eq(stats.loaded, 5)
  t.ok(tostring(stats.error):find("stopped after 5 pages (max_pages)", 1, true), tostring(stats.error))
  local t0 = kura.now()
  ok, stats = pcall(warmup.run, { client = c, cache = cache, progress = false, deadline = 0.3,
                                  max_pages = 1000000, source = { url = srv.url .. "/endless/1" } })
  local took = kura.now() - t0
  t.ok(ok, stats)
  t.ok(stats.loaded > 0, "pages were loaded before the deadline")
  t.ok(tostring(stats.error):find("deadline", 1, true), tostring(stats.error))
  t.ok(took < 0.3 + 5, string.format("ended %.2f s after it started (deadline 0.3 s)", took))
  -- Any source: an iterator that never ends stops at the deadline too.
  stats = warmup.run{ client = c, cache = cache, progress = false, deadline = 0.2,
                      source = function() return "same", "v" end }
  t.ok(stats.loaded > 0 and tostring(stats.error):find("deadline", 1, true), tostring(stats.error))
  -- The defaults bound an HTTP source even when the script sets nothing.
  t.eq(warmup.DEFAULT_MAX_PAGES, 10000)
  t.eq(warmup.DEFAULT_HTTP_DEADLINE, 3600)
  t.raises(function() warmup.run{ client = c, cache = cache, source = "a.csv", deadline = 0 } end,
           "deadline")
  t.raises(function() warmup.run{ client = c, cache = cache, source = "a.csv", max_pages = 1.5 } end,
           "max_pages")
  srv:stop()
  c:delete_cache(cache)
end)

t.run()
os.execute("rm -rf '" .. tmpdir .. "'")
