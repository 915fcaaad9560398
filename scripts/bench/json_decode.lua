-- kura.json.decode and kura.json.lines over fixed documents: prints one line
-- per case, "name MB/s calls/s", for scripts/bench/json.sh to compare
-- between two kura binaries. Usage: kura run json_decode.lua [SECONDS] [LINES_FILE]
local json = kura.json
local secs = tonumber(arg[1]) or 0.5
local lines_file = arg[2]

local function objects(n)
  local a = {}
  for i = 1, n do
    a[i] = string.format('{"id":%d,"name":"item %d","score":%.3f,"tags":["red","blue"],' ..
                         '"active":%s,"owner":{"id":%d,"email":"user%d@example.com"}}',
                         i, i, i * 1.37, i % 2 == 0 and "true" or "false", i % 977, i % 977)
  end
  return "[" .. table.concat(a, ",") .. "]"
end

local function numbers(n)
  local a = {}
  for i = 1, n do a[i] = i % 3 == 0 and string.format("%.6f", i / 7) or tostring(i * 7919) end
  return "[" .. table.concat(a, ",") .. "]"
end

local function strings(n)
  local a = {}
  for i = 1, n do
    a[i] = '"line ' .. i .. ' \\"quoted\\" caf\\u00e9 \\n tab\\t end ' .. ("xyz"):rep(i % 20) .. '"'
  end
  return "[" .. table.concat(a, ",") .. "]"
end

local docs = {
  { "objects", objects(20000) },
  { "numbers", numbers(100000) },
  { "strings", strings(20000) },
  { "line", '{"key":"user:0000001","value":"Vb3k2YqPz0xq8WmLrT5nHc1sD7fJ9uGa4eRiKoBt","ttl":3600}' },
}

local function run(name, text)
  assert(json.decode(text), name)
  local n, t0 = 0, os.clock()
  local batch = math.max(1, math.floor(200000 / #text))
  repeat
    for _ = 1, batch do json.decode(text) end
    n = n + batch
  until os.clock() - t0 >= secs
  local dt = os.clock() - t0
  print(string.format("decode-%s %.1f %.0f", name, #text * n / dt / 1e6, n / dt))
end

collectgarbage("generational")
for _, d in ipairs(docs) do run(d[1], d[2]) end

if lines_file then
  local t0, n, bytes = os.clock(), 0, 0
  local r = assert(kura.json.lines(lines_file))
  while true do
    local k, v = r:next()
    if k == nil then break end
    n = n + 1
  end
  bytes = r:tell()
  r:close()
  local dt = os.clock() - t0
  print(string.format("lines %.1f %.0f", bytes / dt / 1e6, n / dt))
end
