-- kura.json.lines: the JSON Lines reader behind large warm-ups. The common
-- shape comes back as key, value, ttl; every other JSON line decoded
-- (false, v); a line that is not JSON as false, nil, err naming the line.
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

t.test("escapes and extra fields: the common shape; other shapes come back decoded", function()
  local out = read_all(
    '{"key":"e","value":"a\\"b\\u00e9"}\n' ..   -- escapes
    '{"key":"h","value":"x","extra":[1,{"y":2}]}\n' .. -- another member: ignored
    '{"key":"i","value":"x","ttl":1e3}\n' ..     -- an exponent
    '{"key":"j","value":"x","ttl":0.3}\n' ..     -- a fraction, read exactly
    '{"key":"k","key":"k2","value":"x"}\n')      -- the last of two wins, as in decode
  t.eq({out[1][1], out[1][2]}, {"e", 'a"b\195\169'})
  t.eq({out[2][1], out[2][2]}, {"h", "x"})
  t.eq({out[3][1], out[3][2], out[3][3]}, {"i", "x", 1000.0})
  t.eq(out[4][3], 0.3)
  t.eq(out[5][1], "k2")
  local other = {
    { '{"key":"f","value":5}', { key = "f", value = 5 } },              -- a number value
    { '{"key":"g","value":"x","ttl":null}', { key = "g", value = "x", ttl = kura.json.null } },
    { '["l","x",5]', { "l", "x", 5 } },                                  -- the array form
    { '"just a string"', "just a string" },
  }
  local lines = {}
  for i, o in ipairs(other) do lines[i] = o[1] end
  out = read_all(table.concat(lines, "\n") .. "\n")
  t.eq(#out, #other)
  for i, res in ipairs(out) do
    t.eq(res[1], false, "line " .. i)
    t.eq(res[2], other[i][2], "line " .. i)
  end
end)

t.test("binary-safe: \\u0000 in keys and values, every control byte escaped", function()
  local out = read_all('{"key":"p\\u0000a","value":"1"}\n{"key":"p\\u0000b","value":"2"}\n')
  t.eq({out[1][1], out[1][2]}, {"p\0a", "1"})
  t.eq({out[2][1], out[2][2]}, {"p\0b", "2"})
  local text = {}
  for c = 0, 31 do
    text[#text + 1] = kura.json.encode({ key = "k" .. c, value = string.char(c) .. "x\0" }) .. "\n"
  end
  out = read_all(table.concat(text))
  t.eq(#out, 32)
  for c = 0, 31 do t.eq({out[c + 1][1], out[c + 1][2]}, {"k" .. c, string.char(c) .. "x\0"}) end
end)

t.test("a line that is not JSON is an error naming the line; the reading goes on", function()
  local bad = {
    '{"key":"a","value":"1"} trailing',   -- text after the object
    '{"key":"a","value":"1"}{}',
    '{"key":"m", broken',
    '{"key":"a","value":"x\1y"}',          -- a raw control byte
    '{"key":"a","value":"\255"}',          -- not UTF-8
    '{"key":"a","value":"1","ttl":1e999}',  -- no double that large
    '{"key":"a","value":"\\ud800"}',      -- a lone surrogate
  }
  local out = read_all(table.concat(bad, "\n") .. '\n{"key":"z","value":"ok"}\n')
  t.eq(#out, #bad + 1)
  for i = 1, #bad do
    t.eq(out[i][1], false, bad[i])
    t.is_nil(out[i][2], bad[i])
    t.ok(type(out[i][3]) == "string" and
         out[i][3]:find("^line " .. i .. ": invalid JSON at byte %d+: "), tostring(out[i][3]))
  end
  t.ok(out[1][3]:find("text after the JSON value", 1, true), out[1][3])
  t.eq({out[#bad + 1][1], out[#bad + 1][2]}, {"z", "ok"})
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
  -- a path that opens but cannot be read fails at the call, not at next()
  none, err = kura.json.lines("/tmp")
  t.is_nil(none)
  t.ok(err:find("^/tmp: Is a directory"), err)
  local empty = file_of("")
  local r2 = assert(kura.json.lines(empty))
  t.is_nil(r2:next())
  r2:close()
  os.remove(empty)
end)

t.run()
