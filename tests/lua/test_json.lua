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
  t.eq(math.type(json.decode("1e400")), "float")
  t.eq(math.type(json.decode("9007199254740993")), "float") -- beyond 2^53
  t.eq(json.decode("2.0"), 2) -- integral values come back as integers
  t.raises(function() json.encode(0 / 0) end, "finite")
  t.raises(function() json.encode(math.huge) end, "finite")
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

t.test("deep nesting within the limit works", function()
  local s = string.rep("[", 500) .. string.rep("]", 500)
  t.eq(json.encode(json.decode(s)), s)
end)

t.test("large documents", function()
  local arr = {}
  for i = 1, 20000 do arr[i] = { id = i, name = "item" .. i } end
  local back = roundtrip(arr)
  t.eq(#back, 20000)
  t.eq(back[12345], { id = 12345, name = "item12345" })
end)

t.run()
