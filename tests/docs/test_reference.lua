-- Every public name a script can reach has an entry in docs/lua-api.md.
-- The names come from the running binary: the `kura` table walked
-- recursively, the methods of a client, a cache handle, a task, a timer, a
-- histogram, a signal watcher and a JSON Lines reader, the fields of an
-- error table, the exports of every module of lua/kura/ and the methods of
-- the objects they make. An entry is a heading line of the reference that
-- holds the name as code, e.g. "### `c:get(cache, key)`".
-- usage: kura run test_reference.lua DOCS/lua-api.md LUA_DIR
local t = require("kura.test")

local doc_path, lua_dir = arg[1], arg[2]
assert(doc_path and lua_dir, "usage: kura run test_reference.lua DOCS/lua-api.md LUA_DIR")

-- The code spans of the reference's headings.
local documented = {}
for line in io.lines(doc_path) do
  if line:match("^#+ ") then
    for span in line:gmatch("`([^`]+)`") do documented[#documented + 1] = span end
  end
end

-- A heading documents `name` when one of its code spans starts with it and
-- the next character ends the name: "c:get(" documents c:get, not c:get_batch.
local function has_entry(name)
  for _, span in ipairs(documented) do
    if span:sub(1, #name) == name and not span:sub(#name + 1, #name + 1):match("[%w_]") then
      return true
    end
  end
  return false
end

local missing = {}
local function need(name)
  if not has_entry(name) then missing[#missing + 1] = name end
end

-- kura.* and its sub-tables (kura.json.*, kura.log.*, ...).
local function walk(tbl, prefix, seen)
  seen = seen or {}
  if seen[tbl] then return end
  seen[tbl] = true
  for k, v in pairs(tbl) do
    if type(k) == "string" then
      need(prefix .. k)
      if type(v) == "table" then walk(v, prefix .. k .. ".", seen) end
    end
  end
end

-- The methods an object's metatable gives it (not its metamethods).
local function methods(obj, prefix)
  local mt = getmetatable(obj)
  local index = mt and mt.__index
  t.eq(type(index), "table", prefix .. " has a method table")
  local n = 0
  for k in pairs(index) do
    if type(k) == "string" and not k:match("^__") then
      need(prefix .. k)
      n = n + 1
    end
  end
  t.ok(n > 0, prefix .. " has methods")
end

t.test("the kura module", function()
  walk(kura, "kura.")
  t.ok(#documented > 100, "the reference has entries")
end)

t.test("clients, cache handles, error tables, tasks, timers, histograms", function()
  local c = kura.client()
  methods(c, "c:")
  c:create_cache("ref")
  methods(c:cache("ref"), "h:")
  local _, err = c:get("no-such-cache", "k")
  for k in pairs(err) do need("err." .. k) end
  local task = kura.spawn(function() end)
  methods(task, "task:")
  task:join()
  local timer = kura.after(60, function() end)
  methods(timer, "timer:")
  timer:stop()
  methods(kura.histogram(), "hist:")
  local w = assert(kura.on_signal("usr2", function() end))
  methods(w, "watcher:")
  w:stop()
  local path = os.tmpname()
  local r = assert(kura.json.lines(path))
  methods(r, "reader:")
  r:close()
  os.remove(path)
  local cred = assert(kura.credential.from_string("key"))
  for _, field in ipairs({ "kind", "endpoint" }) do need("cred." .. field) end
  t.eq(cred.kind, "opaque")
end)

t.test("the workflow modules and the objects they make", function()
  local names = {}
  local p = assert(io.popen("ls '" .. lua_dir .. "/kura'"))
  for file in p:lines() do
    local mod = file:match("^(.+)%.lua$")
    if mod then names[#names + 1] = mod end
  end
  p:close()
  t.ok(#names >= 8, "modules found in " .. lua_dir)
  for _, mod in ipairs(names) do
    need("kura." .. mod)
    local m = require("kura." .. mod)
    for k in pairs(m) do
      if type(k) == "string" then need(mod .. "." .. k) end
    end
  end
  local counter = require("kura.counter")
  kura.client():create_cache("ref")
  methods(counter.new{ cache = "ref" }, "cnt:")
  methods(counter.rate_limiter{ cache = "ref", limit = 1, window = 1 }, "limiter:")
  local keeper = require("kura.refresh").keep_alive{ cache = "ref", keys = {}, ttl = 10 }
  methods(keeper, "keeper:")
  keeper:stop()
  for _, field in ipairs({ "rounds", "extended", "missing", "errors" }) do
    t.ok(keeper[field] ~= nil, "keeper." .. field)
    need("keeper." .. field)
  end
end)

t.test("no public name is missing from the reference", function()
  table.sort(missing)
  t.eq(missing, {}, #missing .. " names have no entry in " .. doc_path)
end)

t.run()
