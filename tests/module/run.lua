-- lua5.4 run.lua SCRIPT [args]: runs SCRIPT as `kura run SCRIPT` does, with
-- the stock interpreter and the kura module: its main chunk as the main task
-- of kura.run, its arguments in `arg` and `...`.
local kura = require "kura"
local script = assert(arg[1], "usage: lua5.4 run.lua SCRIPT [args]")
local args = { [0] = script, table.unpack(arg, 2) }
arg = args
kura.run(assert(loadfile(script)), table.unpack(args))
