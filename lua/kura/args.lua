-- kura.args: command-line options for scripts, checked the way `kura`
-- checks its own: a bad option is one line on stderr naming it, exit
-- status 2, nothing run.
--
--   local args = require("kura.args")
--   local o = args.parse(arg, {
--     { "--players", "int", 50, min = 1 },         -- o.players
--     { "--window", "num", 1, above = 0 },          -- o.window
--     { "--format", "choice", nil, choices = { "json", "csv" } },
--     { "--quiet", "flag" },                        -- o.quiet: true or nil
--     { "--threshold", "list" },                    -- o.threshold = { ... }
--     positional = { { "seconds", "num", above = 0 } },   -- o.seconds
--     rest = "sources",                             -- the other arguments
--   })
--   if not o then return end   -- --help was shown, or a usage error
--
-- Kinds: int, num (optionally min, max, above: a bound that excludes
-- itself), str, choice (choices), flag, list (repeatable). --name=value
-- works too; "--" ends the options. Without `positional` or `rest`, an
-- argument that is not an option is an error. -h and --help print the
-- usage: args.header(path), the comment block at the top of the script.
local kura = require("kura")

local M = {}

-- The comment block at the top of a Lua file, without its "-- " marks.
function M.header(path)
  local f = path and io.open(path, "r")
  if not f then return "" end
  local out = {}
  for line in f:lines() do
    if not line:match("^%-%-") then break end
    out[#out + 1] = (line:gsub("^%-%- ?", ""))
  end
  f:close()
  return table.concat(out, "\n") .. "\n"
end

local function describe(spec)
  local what = spec[2] == "int" and "an integer" or "a number"
  if spec.min and spec.max then return string.format("%s from %s to %s", what, spec.min, spec.max) end
  if spec.above then return string.format("%s > %s", what, spec.above) end
  if spec.min then return string.format("%s >= %s", what, spec.min) end
  if spec.max then return string.format("%s <= %s", what, spec.max) end
  return what
end

-- The value of option or positional `spec` from text v; or nil, message.
local function convert(spec, v)
  local kind, name = spec[2], spec[1]
  if kind == "str" or kind == "list" then
    if v == "" then return nil, name .. ": an empty value" end
    return v
  end
  if kind == "choice" then
    for _, c in ipairs(spec.choices) do
      if c == v then return v end
    end
    return nil, string.format("%s: %s, not '%s'", name, table.concat(spec.choices, ", "), v)
  end
  local n = tonumber(v)
  if n and kind == "int" then n = math.tointeger(n) end
  local ok = n and n == n and n ~= math.huge and n ~= -math.huge and (not spec.min or n >= spec.min)
    and (not spec.max or n <= spec.max) and (not spec.above or n > spec.above)
  if not ok then return nil, string.format("%s: %s, not '%s'", name, describe(spec), v) end
  return n
end

local function field(spec)
  return (spec[1]:gsub("^%-+", ""):gsub("%-", "_"))
end

-- Parses args against specs; returns the options, or nil, message, or
-- "help".
function M.check(args, specs)
  local o, by_name, pos, i, options = {}, {}, 1, 1, true
  for _, s in ipairs(specs) do
    by_name[s[1]] = s
    if s[3] ~= nil then o[field(s)] = s[3] end
  end
  for _, s in ipairs(specs.positional or {}) do
    if s[3] ~= nil then o[s[1]] = s[3] end
  end
  if specs.rest then o[specs.rest] = {} end
  while args[i] ~= nil do
    local a = args[i]
    if options and (a == "-h" or a == "--help") then return "help" end
    if options and a == "--" then
      options = false
    elseif options and a:match("^%-.") and not tonumber(a) then
      local name, inline = a:match("^(%-%-[%w-]+)=(.*)$")
      name = name or a
      local spec = by_name[name]
      if not spec then return nil, "unknown option '" .. a .. "'" end
      if spec[2] == "flag" then
        if inline then return nil, name .. " takes no value" end
        o[field(spec)] = true
      else
        local v = inline
        if v == nil then
          i = i + 1
          v = args[i]
        end
        if v == nil then return nil, "option " .. name .. " needs a value" end
        local val, err = convert(spec, v)
        if val == nil then return nil, err end
        if spec[2] == "list" then
          local list = o[field(spec)] or {}
          list[#list + 1] = val
          o[field(spec)] = list
        else
          o[field(spec)] = val
        end
      end
    else
      local spec = (specs.positional or {})[pos]
      if spec then
        local val, err = convert(spec, a)
        if val == nil then return nil, err end
        o[spec[1]], pos = val, pos + 1
      elseif specs.rest then
        table.insert(o[specs.rest], a)
      else
        return nil, "unexpected argument '" .. a .. "'"
      end
    end
    i = i + 1
  end
  return o
end

-- check, then act on the outcome: prints the usage for --help, or the
-- message and sets exit status 2; returns the options or nil.
function M.parse(args, specs)
  local script = (args and args[0] or "script"):match("[^/]*$")
  local o, err = M.check(args or {}, specs)
  if o == "help" then
    io.stdout:write(specs.usage or M.header(args and args[0]))
    return nil
  end
  if not o then
    io.stderr:write(string.format("%s: %s (see %s --help)\n", script, err, script))
    kura.set_exit_status(2)
    return nil
  end
  return o
end

return M
