-- kura.json.encode / decode. Null is kura.json.null; arrays are tables with
-- keys 1..n (or marked with kura.json.array); see src/lua/ljson.c.
local t = require("kura.test")
local json = kura.json

local function roundtrip(v) return json.decode(json.encode(v)) end

t.test("scalars", function()
  t.eq(json.encode(true), "true")
  t.eq(json.encode(false), "false")
  t.eq(json.encode(nil), "null")
  t.eq(json.encode(json.null), "null")
  t.eq(json.encode("hi"), '"hi"')
  t.eq(json.decode("true"), true)
  t.eq(json.decode(" 12 "), 12)
  t.eq(json.decode('"s"'), "s")
  t.eq(json.decode("null"), json.null)
end)

t.test("numbers: integers exact, floats shortest, int vs float on decode", function()
  t.eq(json.encode(1), "1")
  t.eq(json.encode(-42), "-42")
  t.eq(json.encode(math.maxinteger), "9223372036854775807")
  t.eq(json.encode(1.5), "1.5")
  t.eq(json.encode(0.1), "0.1")
  t.eq(json.decode(json.encode(1 / 3)), 1 / 3)
  t.eq(json.decode(json.encode(1e300)), 1e300)
  t.eq(math.type(json.decode("7")), "integer")
  t.eq(math.type(json.decode("-7")), "integer")
  t.eq(math.type(json.decode("7.5")), "float")
  t.eq(math.type(json.decode("1e2")), "float")
  t.raises(function() json.encode(0 / 0) end, "NaN")
  t.raises(function() json.encode(math.huge) end, "infinity")
  t.raises(function() json.encode(-math.huge) end, "infinity")
  t.raises(function() json.encode({ x = { 0 / 0 } }) end, "NaN")
end)

t.test("64-bit integers decode exactly, as integers", function()
  for _, n in ipairs({ math.maxinteger, math.mininteger, (1 << 53) + 1, -((1 << 53) + 1),
                       (1 << 62) + 12345, 0, -1, 1 }) do
    local back = json.decode(json.encode(n))
    t.eq(math.type(back), "integer", tostring(n))
    t.eq(back, n)
    t.eq(json.decode("[" .. tostring(n) .. "]")[1], n)
  end
  t.eq(json.decode("9223372036854775807"), math.maxinteger)
  t.eq(json.decode("-9223372036854775808"), math.mininteger)
  t.eq(json.decode("9007199254740993"), 9007199254740993)
  t.eq(json.decode('{"n":-0}').n, 0)
  -- past int64: the nearest float, as Lua's own tonumber reads them
  t.eq(math.type(json.decode("9223372036854775808")), "float")
  t.eq(json.decode("-9223372036854775809"), -9223372036854775809.0)
  t.eq(json.decode("18446744073709551616"), 2.0 ^ 64)
end)

t.test("floats stay floats: 2.0 goes out as 2.0", function()
  for _, f in ipairs({ 2.0, -0.0, 1e15, 123456789012345678.0, 1e300, -1.5, 2.0 ^ 63 }) do
    local back = json.decode(json.encode(f))
    t.eq(math.type(back), "float", json.encode(f))
    t.eq(back, f)
  end
  t.eq(json.encode(2.0), "2.0")
  t.eq(json.encode(-0.0), "-0.0")
  t.eq(1 / json.decode("-0.0"), -math.huge) -- the sign of zero survives
  t.eq(json.decode("2.0"), 2.0)
  t.eq(math.type(json.decode("2.0")), "float")
  t.eq(json.decode("1E+2"), 100.0)
  t.eq(json.decode("1e-400"), 0.0) -- below the smallest double: the nearest, 0
end)

t.test("numbers JSON cannot hold are errors on decode too", function()
  for _, bad in ipairs({ "1e400", "-1e400", "[1, 1e309]", '{"x": 2e308}' }) do
    local v, err = json.decode(bad)
    t.is_nil(v, bad)
    t.ok(err:find("too large for a double", 1, true), err)
  end
  for _, bad in ipairs({ "NaN", "Infinity", "-Infinity", "inf", "+1", ".5", "1.", "1e",
                         "0x10", "01", "-", "--1", "1e+" }) do
    local v, err = json.decode(bad)
    t.is_nil(v, bad)
    t.ok(err:find("invalid JSON at byte", 1, true), err)
  end
end)

t.test("arrays vs objects", function()
  t.eq(json.encode({ 1, 2, 3 }), "[1,2,3]")
  t.eq(json.encode({ a = 1 }), '{"a":1}')
  t.eq(json.encode({}), "{}")
  t.eq(json.encode(json.array()), "[]")
  t.eq(json.encode(json.array({})), "[]")
  t.eq(json.encode({ [1] = "a", [3] = "c" }) == '{"1":"a","3":"c"}' or
       json.encode({ [1] = "a", [3] = "c" }) == '{"3":"c","1":"a"}', true)
  -- decoded arrays keep their kind, the empty one too
  t.eq(json.encode(json.decode("[]")), "[]")
  t.eq(json.encode(json.decode("{}")), "{}")
  t.eq(json.encode(json.decode("[[],{}]")), "[[],{}]")
  local mixed = json.decode(json.encode({ 1, 2, x = true }))
  t.eq(mixed, { ["1"] = 1, ["2"] = 2, x = true })
end)

t.test("nested round trip", function()
  local v = {
    name = "kura", tags = { "a", "b" }, n = 3, f = 2.5, ok = false,
    nested = { deep = { deeper = { 1, { x = "y" }, json.array() } } },
  }
  t.eq(roundtrip(v), v)
end)

t.test("null inside arrays and objects keeps positions", function()
  local v = json.decode('[1,null,3,{"k":null}]')
  t.eq(#v, 4)
  t.eq(v[2], json.null)
  t.eq(v[4].k, json.null)
  t.eq(json.encode(v), '[1,null,3,{"k":null}]')
end)

t.test("strings: escapes and unicode", function()
  t.eq(json.encode('a"b\\c\n\t\1'), '"a\\"b\\\\c\\n\\t\\u0001"')
  t.eq(json.encode("héllo €"), '"héllo €"')
  t.eq(json.decode('"\\u00e9\\u20ac"'), "é€")
  t.eq(json.decode('"\\ud83d\\ude00"'), "\u{1F600}") -- surrogate pair
  t.eq(json.decode('"a\\/b"'), "a/b")
  local s = "line\r\nquote\" back\\ tab\t bell\7 " .. "\u{10FFFF}"
  t.eq(roundtrip(s), s)
  t.eq(roundtrip({ [s] = s }), { [s] = s })
end)

t.test("NUL and every control byte: escaped on encode, decoded exactly", function()
  t.eq(json.decode('"a\\u0000b"'), "a\0b")
  t.eq(json.encode("a\0b"), '"a\\u0000b"')
  t.eq(json.decode(json.encode("a\0b")), "a\0b")
  local o = json.decode('{"a\\u0000b":1,"a\\u0000c":2}')
  t.eq(o, { ["a\0b"] = 1, ["a\0c"] = 2 })
  for c = 0, 31 do
    local s = "x" .. string.char(c) .. "y"
    local text = json.encode(s)
    t.ok(not text:find("[%z\1-\31]"), "raw control byte in " .. text)
    t.eq(json.decode(text), s, "byte " .. c)
    t.eq(json.decode(string.format('"x\\u%04xy"', c)), s)
    t.eq(json.decode(string.format('"x\\u%04Xy"', c)), s)
  end
end)

t.test("raw control bytes in the text are refused, naming the byte", function()
  for c = 0, 31 do
    local text = '["ok", "a' .. string.char(c) .. 'b"]'
    local v, err = json.decode(text)
    t.is_nil(v, "byte " .. c)
    t.ok(err:find("invalid JSON at byte 10:", 1, true), err)
    t.ok(err:find(string.format("control byte 0x%02x", c), 1, true), err)
  end
  -- outside strings only space, tab, CR and LF are white space
  t.eq(json.decode(" \t\r\n[ 1 ,\n2 ]\r\n"), { 1, 2 })
  t.is_nil(json.decode("[1,\0 2]"))
  t.is_nil(json.decode("\f1"))
end)

-- Every string of bytes 0-127 that a seeded generator makes, and strings
-- of every kind of UTF-8 sequence, round-trip as values and as keys.
t.test("strings of bytes 0-127 and UTF-8 round-trip", function()
  for c = 0, 127 do
    local s = string.char(c)
    t.eq(json.decode(json.encode(s)), s, "byte " .. c)
    t.eq(json.decode(json.encode({ [s] = s }))[s], s)
    for d = 0, 127 do -- every string of two such bytes
      local s2 = s .. string.char(d)
      if json.decode(json.encode(s2)) ~= s2 then t.eq(json.decode(json.encode(s2)), s2) end
    end
  end
  local rnd = math.random
  math.randomseed(20)
  for _ = 1, 3000 do
    local b = {}
    for i = 1, rnd(0, 24) do b[i] = rnd(0, 127) end
    local s = string.char(table.unpack(b))
    t.eq(json.decode(json.encode(s)), s)
    t.eq(json.decode(json.encode({ [s] = { s } }))[s][1], s)
  end
  local edges = { 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff }
  for _, cp in ipairs(edges) do
    local s = "<" .. utf8.char(cp) .. ">"
    t.eq(json.decode(json.encode(s)), s, string.format("U+%04X", cp))
  end
  for _ = 1, 2000 do
    local cps = {}
    for i = 1, rnd(1, 8) do
      local cp = rnd(0, 0x10ffff)
      if cp >= 0xd800 and cp <= 0xdfff then cp = cp - 0x800 end
      cps[i] = cp
    end
    local s = utf8.char(table.unpack(cps))
    t.eq(json.decode(json.encode(s)), s)
  end
end)

t.test("\\u escapes decode to UTF-8, every BMP code point and pairs", function()
  for cp = 0, 0xffff do
    if cp < 0xd800 or cp > 0xdfff then
      local got = json.decode(string.format('"\\u%04x"', cp))
      if got ~= utf8.char(cp) then t.eq(got, utf8.char(cp), string.format("U+%04X", cp)) end
    end
  end
  t.eq(json.decode('"\\ud800\\udc00"'), utf8.char(0x10000))
  t.eq(json.decode('"\\udbff\\udfff"'), utf8.char(0x10ffff))
end)

t.test("text that is not UTF-8 and lone surrogates are refused both ways", function()
  local bad = { "\xff", "\xc3", "\xc3(", "\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80",
                "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "a\xe2\x82" }
  for _, s in ipairs(bad) do
    local v, err = json.decode('"' .. s .. '"')
    t.is_nil(v, s)
    t.ok(err:find("is not UTF-8", 1, true), err)
    t.raises(function() json.encode(s) end, "not UTF%-8")
    t.raises(function() json.encode({ [s] = 1 }) end, "not UTF%-8")
  end
  for _, esc in ipairs({ '"\\ud800"', '"\\udc00"', '"\\ud800x"', '"\\ud800\\u0041"',
                         '"\\udbff\\ud800"' }) do
    local v, err = json.decode(esc)
    t.is_nil(v, esc)
    t.ok(err:find("lone surrogate", 1, true), err)
  end
end)

t.test("bad JSON returns nil, err", function()
  for _, bad in ipairs({ "", "{", "[1,", '{"a" 1}', "nul", "[1] x", "'s'", "{a:1}" }) do
    local v, err = json.decode(bad)
    t.is_nil(v, bad)
    t.eq(type(err), "string", bad)
    t.ok(err:find("invalid JSON", 1, true), err)
  end
end)

t.test("values JSON cannot hold raise", function()
  t.raises(function() json.encode(print) end, "function")
  t.raises(function() json.encode({ f = coroutine.create(print) }) end, "thread")
  t.raises(function() json.encode({ [true] = 1 }) end, "key")
  local cyc = {}
  cyc.self = cyc
  t.raises(function() json.encode(cyc) end, "cycle")
  t.raises(function() json.decode(nil) end, "string expected")
end)

t.test("nesting: 1000 levels work, deeper is an error that says so", function()
  local s = string.rep("[", 1000) .. string.rep("]", 1000)
  t.eq(json.encode(json.decode(s)), s)
  local o = string.rep('{"a":', 1000) .. "1" .. string.rep("}", 1000)
  t.eq(json.encode(json.decode(o)), o)
  local v, err = json.decode(string.rep("[", 1001) .. string.rep("]", 1001))
  t.is_nil(v)
  t.ok(err:find("at byte 1001: nested too deep (more than 1000 levels", 1, true), err)
  v, err = json.decode(string.rep("[", 100000))
  t.is_nil(v)
  t.ok(err:find("nested too deep", 1, true), err)
end)

t.test("errors say what and where", function()
  local cases = {
    { "", "at byte 1: unexpected end" },
    { "[1,2", "at byte 5: unexpected end" },
    { '{"a":1,}', "at byte 8: expected a member name" },
    { '{"a" 1}', "at byte 6: expected ':'" },
    { "[1 2]", "at byte 4: expected ',' or ']'" },
    { "[1] x", "at byte 5: text after the JSON value" },
    { '{"a":1} {}', "at byte 9: text after the JSON value" },
    { "nul", "at byte 1: expected 'null'" },
    { '"abc', "at byte 5: unterminated string (it starts at byte 1)" },
    { '"\\x"', "at byte 2: invalid escape" },
    { '"\\u12G4"', "at byte 2: invalid \\u escape" },
    { "01", "at byte 1: a number does not start with 0" },
  }
  for _, c in ipairs(cases) do
    local v, err = json.decode(c[1])
    t.is_nil(v, c[1])
    t.ok(err:find("invalid JSON " .. c[2], 1, true), c[1] .. " -> " .. tostring(err))
  end
end)

-- Random documents: encode(decode(encode(v))) is encode(v), and decode of
-- random bytes never crashes.
t.test("random documents round-trip; random bytes are refused cleanly", function()
  math.randomseed(2020)
  local rnd = math.random
  local function gen(depth)
    local k = rnd(depth > 3 and 1 or 0, depth > 3 and 4 or 6)
    if k == 0 then
      local a = json.array()
      for i = 1, rnd(0, 4) do a[i] = gen(depth + 1) end
      return a
    elseif k == 1 then return rnd(math.mininteger, math.maxinteger)
    elseif k == 2 then return (rnd() - 0.5) * 10 ^ rnd(-300, 300)
    elseif k == 3 then
      local b = {}
      for i = 1, rnd(0, 6) do b[i] = rnd(0, 127) end
      return string.char(table.unpack(b))
    elseif k == 4 then return ({ true, false, json.null })[rnd(1, 3)]
    else
      local o = {}
      for _ = 1, rnd(0, 4) do o["k" .. rnd(1, 50) .. string.char(rnd(0, 127))] = gen(depth + 1) end
      return o
    end
  end
  for _ = 1, 500 do
    local v = gen(0)
    local text = json.encode(v)
    local back = json.decode(text)
    t.eq(back, v, text)
    t.eq(json.decode(json.encode(back)), v) -- (members may come in another order)
  end
  local alphabet = '{}[]":,-+.eE0123456789 \t\\/ubnrtfalsenull\0\1\127\128\200\255'
  for _ = 1, 3000 do
    local b = {}
    for i = 1, rnd(0, 30) do
      local at = rnd(1, #alphabet)
      b[i] = alphabet:sub(at, at)
    end
    local text = table.concat(b)
    local v, err = json.decode(text)
    if v == nil then t.ok(type(err) == "string" and err:find("invalid JSON at byte", 1, true), text) end
  end
end)

t.test("large documents", function()
  local arr = {}
  for i = 1, 20000 do arr[i] = { id = i, name = "item" .. i } end
  local back = roundtrip(arr)
  t.eq(#back, 20000)
  t.eq(back[12345], { id = 12345, name = "item12345" })
end)

t.run()
