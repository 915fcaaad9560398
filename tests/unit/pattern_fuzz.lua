-- The sandbox's pattern functions (global P: find, match, gmatch, gsub from
-- src/runtime/pattern.c) against Lua's own string library, on fixed cases
-- and on random patterns and subjects. Run by tests/unit/test_pattern.c:
--   fixed()          the hand-written cases
--   fuzz(n, seed)    n random cases from seed
-- Each returns the number of cases compared; a difference raises an error
-- that names the call and both results.
local S = string
local rnd = math.random

-- Error messages name the function through its global name ("bad argument
-- #1 to 'string.find'"); P's functions have none: compare without it.
local function norm(v)
  if type(v) == "string" then
    return (v:gsub("(bad argument #%d+ to )'[^']*'", "%1F"))
  end
  return v
end

local function ser(ok, ...)
  local t = {tostring(ok)}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    t[#t + 1] = math.type(v) or type(v)
    t[#t + 1] = tostring(norm(v))
  end
  return table.concat(t, "|")
end

local function show(v)
  return S.format("%q", tostring(v))
end

local function describe(name, args, n)
  local parts = {}
  for i = 1, n do
    local a = args[i]
    parts[#parts + 1] = type(a) == "string" and show(a) or tostring(a)
  end
  return name .. "(" .. table.concat(parts, ", ") .. ")"
end

local function check(name, args, n, mine, stock)
  if mine ~= stock then
    error(S.format("%s differs:\n  sandbox: %s\n  stock:   %s", describe(name, args, n),
                   show(mine), show(stock)), 0)
  end
end

-- All matches of gmatch (at most 64), stopping at the first error.
local function all_gmatch(f, s, p, init)
  local ok, it = pcall(f, s, p, init)
  if not ok then return ser(false, it) end
  local out = {}
  for _ = 1, 64 do
    local r = table.pack(pcall(it))
    out[#out + 1] = ser(table.unpack(r, 1, r.n))
    if not r[1] or r[2] == nil then break end
  end
  return table.concat(out, " / ")
end

-- gsub with a function replacement: the calls it made, and the result.
local function fn_repl(kind, log)
  return function(...)
    log[#log + 1] = ser(true, ...)
    if kind == 1 then return nil
    elseif kind == 2 then return false
    elseif kind == 3 then return "<" .. table.concat({...}, ",") .. ">"
    elseif kind == 4 then return 42
    elseif kind == 5 then return {}
    else return (...) end
  end
end

local function compare_gsub(s, p, repl, n, kind)
  local args = {s, p, repl, n}
  local r1, r2
  if type(repl) == "function" then
    local l1, l2 = {}, {}
    r1 = ser(pcall(P.gsub, s, p, fn_repl(kind, l1), n)) .. " calls " .. table.concat(l1, ";")
    r2 = ser(pcall(S.gsub, s, p, fn_repl(kind, l2), n)) .. " calls " .. table.concat(l2, ";")
  else
    r1 = ser(pcall(P.gsub, s, p, repl, n))
    r2 = ser(pcall(S.gsub, s, p, repl, n))
  end
  check("gsub", args, 4, r1, r2)
end

local function compare(s, p, init, plain)
  local a = {s, p, init, plain}
  check("find", a, 4, ser(pcall(P.find, s, p, init, plain)), ser(pcall(S.find, s, p, init, plain)))
  check("match", a, 3, ser(pcall(P.match, s, p, init)), ser(pcall(S.match, s, p, init)))
  check("gmatch", a, 3, all_gmatch(P.gmatch, s, p, init), all_gmatch(S.gmatch, s, p, init))
end

-- --- fixed cases -------------------------------------------------------------

local fixed_cases = {
  {"hello world", "o w"}, {"hello", "l+"}, {"hello", "^h"}, {"hello", "o$"},
  {"hello", "$"}, {"hello", "^"}, {"", ""}, {"", "^$"}, {"abc", ".-"},
  {"abc", "()"}, {"abc", "(a)(b)(c)"}, {"abcabc", "(abc)%1"}, {"THE (quick) fox", "%((%a+)%)"},
  {"key = value", "(%w+)%s*=%s*(%w+)"}, {"f(a(b)c)d", "%b()"}, {"THE (quick) fox", "%f[%a]%a+"},
  {"x", "%"}, {"x", "[a"}, {"x", "[]"}, {"x", "[^]"}, {"]", "[]]"}, {"]", "[^]]"},
  {"x", "%f"}, {"x", "%fa"}, {"x", "%b"}, {"x", "%bx"}, {"x", "(x"}, {"x", "x)"},
  {"x", "%1"}, {"xx", "(x)%2"}, {"x", "%0"}, {"aaa", ("a?"):rep(199) .. "b"},
  {"aaa", ("a?"):rep(200)}, {"aaa", ("a?"):rep(201)}, {("a"):rep(200), ("a?"):rep(199)},
  {("a"):rep(200), ("a?"):rep(200)}, {("a"):rep(300), ("(a)"):rep(32)}, {"x", ("()"):rep(32)},
  {"x", ("()"):rep(33)}, {"a\0b", "%z"}, {"a\0b", "[%z]"}, {"a\0b", "\0"},
  {"a.b", "."}, {"a.b", "%."}, {"a-b", "[a-]"}, {"a-b", "[-b]"}, {"b", "[a-c]"},
  {"-", "[a%-c]"}, {"%", "[%%]"}, {"a", "[%a-z]"}, {"x$", "$$"}, {"$", "^$$"},
  {"abc", "a*?"}, {"abc", "a-?"}, {"abc", "+"}, {"abc", "*"}, {"ab", "(()a)"},
  {"hello", "(h)(e)", -3}, {"hello", "l", 10}, {"hello", "l", -100}, {"hello", "", 6},
  {"hello", "", 7}, {"hello", "l", 0}, {"a+b", "a+b", 1, true}, {"a+b", "+", 1, true},
}

local gsub_cases = {
  {"hello world", "o", "0"}, {"hello", "", "-"}, {"abc", "%w", "%0%0"}, {"abc", "%w", "%1"},
  {"abc", "%w", "%2"}, {"abc", "(%w)", "%2"}, {"abc", "%w", "%"}, {"abc", "%w", "%x"},
  {"abc", "%w", "%%"}, {"abc", "()", "%1"}, {"abc", "b*", "-"}, {"abc", "^a", "A"},
  {"abc", "^", "A"}, {"abc", "$", "Z"}, {"abc", "%w", "x", 2}, {"abc", "%w", "x", 0},
  {"abc", "%w", "x", -1}, {"abc", "%w", 7}, {"abc", "%w", 1.5}, {"a b", "%w", {a = "A"}},
  {"a b", "%w", {a = false}}, {"a b", "%w", {a = {}}}, {"a b", "(%w)", {a = 1}},
  {"abc", "%w", true}, {"abc", "%w"}, {"abc", "(", "x"},
}

function fixed()
  local count = 0
  for _, c in ipairs(fixed_cases) do
    compare(c[1], c[2], c[3], c[4])
    count = count + 1
  end
  for _, c in ipairs(gsub_cases) do
    compare_gsub(c[1], c[2], c[3], c[4])
    count = count + 1
  end
  for kind = 1, 6 do
    compare_gsub("a(b)c d", "(%w)(%w?)", fn_repl, nil, kind)
    compare_gsub("abc", "()", fn_repl, nil, kind)
    count = count + 2
  end
  return count
end

-- --- random cases --------------------------------------------------------------

local subject_chars = {"a", "b", "c", "a", "b", "1", "2", " ", "\0", "(", ")", "[", "]",
                       "%", "-", ".", "x", "A", "\n", "\xe9", "$", "^"}
local literal_chars = {"a", "b", "c", "x", "1", " ", "\0", "A", "\n", "\xe9", "-", "]"}
local classes = {"a", "c", "d", "g", "l", "p", "s", "u", "w", "x", "z", "A", "D", "S", "W",
                 "%", ".", "(", ")", "[", "]", "-", "^", "$", "b", "f", "q", "1", "2", "0"}
local quantifiers = {"", "", "", "*", "+", "-", "?"}

local function pick(t)
  return t[rnd(#t)]
end

local function subject()
  local n = rnd(0, 10) == 0 and rnd(0, 80) or rnd(0, 12)
  local t = {}
  for i = 1, n do t[i] = pick(subject_chars) end
  return table.concat(t)
end

local function set()
  local t = {"["}
  if rnd(3) == 1 then t[#t + 1] = "^" end
  if rnd(6) == 1 then t[#t + 1] = "]" end
  for _ = 1, rnd(0, 4) do
    local k = rnd(4)
    if k == 1 then t[#t + 1] = pick(literal_chars)
    elseif k == 2 then t[#t + 1] = pick(literal_chars) .. "-" .. pick(literal_chars)
    elseif k == 3 then t[#t + 1] = "%" .. pick(classes)
    else t[#t + 1] = pick({"-", "^", "%", "[", "a-"}) end
  end
  if rnd(12) ~= 1 then t[#t + 1] = "]" end
  return table.concat(t)
end

local function item()
  local k = rnd(10)
  if k <= 3 then return pick(literal_chars)
  elseif k == 4 then return "."
  elseif k <= 6 then return "%" .. pick(classes)
  else return set() end
end

local pattern

local function piece(depth)
  local k = rnd(20)
  if k <= 11 then return item() .. pick(quantifiers)
  elseif k == 12 and depth < 3 then return "(" .. pattern(depth + 1, 3) .. ")"
  elseif k == 13 then return "()"
  elseif k == 14 then return "%" .. rnd(0, 4)
  elseif k == 15 then return "%b" .. pick({"()", "ab", "[]", "((", "a", ""})
  elseif k == 16 then return "%f" .. (rnd(8) == 1 and "a" or set())
  elseif k == 17 then return pick({"(", ")", "%", "[", "$", "^"})
  elseif k == 18 then return "(" .. item() .. pick(quantifiers) .. ")"
  else return item() .. pick(quantifiers) end
end

function pattern(depth, max)
  local t = {}
  if depth == 0 and rnd(4) == 1 then t[1] = "^" end
  for _ = 1, rnd(0, max) do t[#t + 1] = piece(depth) end
  if depth == 0 and rnd(5) == 1 then t[#t + 1] = "$" end
  return table.concat(t)
end

local function repl_string()
  local t = {}
  for _ = 1, rnd(0, 4) do
    t[#t + 1] = pick({"x", "%0", "%1", "%2", "%3", "%%", "%", "%a", "-", "%9"})
  end
  return table.concat(t)
end

local function repl_table()
  local t = {}
  for _ = 1, rnd(0, 4) do
    t[pick(subject_chars)] = pick({"R", false, 7, "", {}, 2.5})
  end
  t[1] = "one"
  return t
end

function fuzz(n, seed)
  math.randomseed(seed)
  for _ = 1, n do
    local s, p = subject(), pattern(0, 6)
    local init = rnd(3) == 1 and rnd(-15, 15) or nil
    local plain = rnd(4) == 1 and (rnd(2) == 1) or nil
    compare(s, p, init, plain)
    local limit = rnd(4) == 1 and rnd(-1, 4) or nil
    local k = rnd(3)
    if k == 1 then compare_gsub(s, p, repl_string(), limit)
    elseif k == 2 then compare_gsub(s, p, repl_table(), limit)
    else compare_gsub(s, p, fn_repl, limit, rnd(6)) end
  end
  return n
end
