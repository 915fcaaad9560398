-- Runs scripts/cheatsheet.lua (which raises on any unexpected result) and
-- checks that it leaves no cache behind.
local t = require("kura.test")

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local script = here .. "../../scripts/cheatsheet.lua"

t.test("the cheat sheet runs and checks every step", function()
  local out = {}
  local real_write = io.write
  io.write = function(...) -- keep the output quiet but inspectable
    for i = 1, select("#", ...) do out[#out + 1] = tostring(select(i, ...)) end
  end
  local ok, err = pcall(dofile, script)
  io.write = real_write
  t.ok(ok, tostring(err))
  local text = table.concat(out)
  t.ok(text:find("hit: \"hello\"", 1, true), "hit line missing:\n" .. text)
  t.ok(text:find("visits = 8", 1, true), "counter line missing:\n" .. text)
  t.ok(text:find("NOT_FOUND_ERROR", 1, true), "error line missing:\n" .. text)
end)

t.test("the cheat sheet cleans up its cache", function()
  local c = kura.client()
  for _, e in ipairs(c:list_caches()) do
    t.ok(e.name ~= "cheat-sheet", "cheat-sheet cache left behind")
  end
end)

t.test("the cheat sheet runs twice in a row", function()
  local real_write = io.write
  io.write = function() end
  local ok, err = pcall(dofile, script)
  io.write = real_write
  t.ok(ok, tostring(err))
end)

t.run()
