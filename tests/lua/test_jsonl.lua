-- kura.json.lines: the JSON Lines reader behind large warm-ups. The common
-- shape comes back as key, value, ttl; every other line raw (false, line).
local t = require("kura.test")

local function file_of(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- Every r:next() result of a file, as a list of packed tuples.
local function read_all(text)
  local path = file_of(text)
  local r = assert(kura.json.lines(path))
  local out = {}
  while true do
    local res = table.pack(r:next())
    if res[1] == nil then break end
    out[#out + 1] = res
  end
  r:close()
  os.remove(path)
  return out
end

t.test("the common shape, fields in any order, ttl optional", function()
  local out = read_all(
    '{"key":"a","value":"1","ttl":60}\n' ..
    '{ "value" : "2" , "key" : "b" }\r\n' ..
    '\n   \n' ..
    '{"ttl":0.5,"key":"c","value":""}\n' ..
    '{"key":"d","value":"caf\195\169"}')  -- no final newline; UTF-8 passes
  t.eq(#out, 4)
  t.eq({out[1][1], out[1][2], out[1][3]}, {"a", "1", 60})
  t.eq({out[2][1], out[2][2]}, {"b", "2"})
  t.is_nil(out[2][3])
  t.eq({out[3][1], out[3][2], out[3][3]}, {"c", "", 0.5})
  t.eq(out[4][2], "caf\195\169")
end)

t.test("escapes and extra fields go through cJSON; other shapes come back raw", function()
  local out = read_all(
    '{"key":"e","value":"a\\"b\\u00e9"}\n' ..   -- escapes
    '{"key":"h","value":"x","extra":1}\n' ..     -- another field: ignored
    '{"key":"i","value":"x","ttl":1e3}\n')       -- an exponent
  t.eq({out[1][1], out[1][2]}, {"e", 'a"b\195\169'})
  t.eq({out[2][1], out[2][2]}, {"h", "x"})
  t.eq({out[3][1], out[3][2], out[3][3]}, {"i", "x", 1000})
  local raw = {
    '{"key":"f","value":5}',              -- a number as the value
    '{"key":"g","value":"x","ttl":null}', -- null ttl
    '["l","x",5]',                        -- the array form
    '{"key":"m", broken',                 -- bad JSON
  }
  out = read_all(table.concat(raw, "\n") .. "\n")
  t.eq(#out, #raw)
  for i, res in ipairs(out) do
    t.eq(res[1], false, "line " .. i)
    t.eq(res[2], raw[i], "line " .. i)
  end
end)

t.test("line numbers, bytes read, missing file", function()
  local text = '{"key":"a","value":"1"}\n\n{"key":"b","value":"2"}\n'
  local path = file_of(text)
  local r = assert(kura.json.lines(path))
  t.eq(r:next(), "a")
  t.eq(r:line(), 1)
  t.eq(r:next(), "b")
  t.eq(r:line(), 3)
  t.eq(r:tell(), #text)
  t.is_nil(r:next())
  r:close()
  t.is_nil(r:next()) -- closed: the end
  os.remove(path)
  local none, err = kura.json.lines(path)
  t.is_nil(none)
  t.ok(err:find("No such file", 1, true), err)
  t.raises(function() kura.json.lines({}) end, "bad argument")
end)

t.run()
