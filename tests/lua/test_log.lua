-- kura.log: one line per call on stderr, string.format semantics, levels.
local t = require("kura.test")
local sub = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "kura_sub.lua")

local STAMP = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ"

t.test("info/warn/error write formatted lines on stderr", function()
  local out, err, status = sub.run([[
    kura.log.info("hello %s %d", "world", 42)
    kura.log.warn("careful")
    kura.log.error("%5.2f|%q", 3.14159, "q")
    kura.log.info({})
  ]])
  t.eq(status, 0)
  t.eq(out, "")
  local lines = {}
  for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
  t.eq(#lines, 4, err)
  t.ok(lines[1]:match("^" .. STAMP .. " INFO hello world 42$"), lines[1])
  t.ok(lines[2]:match("^" .. STAMP .. " WARN careful$"), lines[2])
  t.ok(lines[3]:match("^" .. STAMP .. ' ERROR  3%.14|"q"$'), lines[3])
  t.ok(lines[4]:match("^" .. STAMP .. " INFO table: "), lines[4])
end)

t.test("debug is off by default, on with KURA_LOG=debug", function()
  local _, err = sub.run([[kura.log.debug("hidden") kura.log.info("shown")]])
  t.ok(not err:find("hidden", 1, true), err)
  t.ok(err:find("shown", 1, true), err)
  local _, err2 = sub.run([[kura.log.debug("visible %d", 1)]], "", "KURA_LOG=debug")
  t.ok(err2:match(STAMP .. " DEBUG visible 1\n$"), err2)
  local _, err3 = sub.run([[kura.log.info("quiet") kura.log.error("loud")]], "", "KURA_LOG=error")
  t.ok(not err3:find("quiet", 1, true), err3)
  t.ok(err3:find("loud", 1, true), err3)
end)

t.test("level() reads and changes the threshold", function()
  local prev = kura.log.level()
  t.eq(type(prev), "string")
  t.eq(kura.log.level("error"), prev)
  t.eq(kura.log.level(), "error")
  kura.log.level(prev)
  t.raises(function() kura.log.level("loud") end, "invalid option")
end)

t.test("a bad format raises like string.format", function()
  t.raises(function() kura.log.error("%d", "x") end, "number expected")
end)

t.run()
