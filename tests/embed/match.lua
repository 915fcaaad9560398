-- The gameplay script of the example game server (game_server.c): the host
-- calls on_player_event(tick, kind, player, points) for what players do and
-- on_tick(tick, now) 60 times per game second. Everything the match knows
-- lives in the cache, so another server (or thread) sharing the store sees
-- it too:
--   sessions:<player>   JSON {name=, joined=, score=}, with a TTL
--   counters            ticks, seconds, events, online, scored
--   leaderboard:top     JSON array of the best three {name=, score=}
-- The script never reads the wall clock: `now` is the host's game time.

local c = kura.client()
local CACHE = "match"
local SESSION_TTL = 3600
local TOP = 3

assert(c:create_cache(CACHE) ~= nil)
assert(c:flush_cache(CACHE)) -- a new match (a remote cache keeps the last one)

local function incr(name, by)
  return assert(c:increment(CACHE, "counters:" .. name, by or 1))
end

local function load_session(player)
  local raw = c:get(CACHE, "sessions:" .. player)
  return raw and kura.json.decode(raw)
end

local function save_session(player, s)
  assert(c:set(CACHE, "sessions:" .. player, kura.json.encode(s), SESSION_TTL))
end

-- The leaderboard is small: read, insert, sort, keep the best TOP.
local function update_leaderboard(player, score)
  local raw = c:get(CACHE, "leaderboard:top")
  local board = raw and kura.json.decode(raw) or {}
  local kept = {}
  for _, e in ipairs(board) do
    if e.name ~= player then kept[#kept + 1] = e end
  end
  kept[#kept + 1] = { name = player, score = score }
  table.sort(kept, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    return a.name < b.name
  end)
  while #kept > TOP do table.remove(kept) end
  assert(c:set(CACHE, "leaderboard:top", kura.json.encode(kept), SESSION_TTL))
end

local handlers = {}

function handlers.join(tick, player)
  save_session(player, { name = player, joined = tick, score = 0 })
  incr("online")
end

function handlers.score(tick, player, points)
  local s = load_session(player)
  if not s then return false end -- not in the match: ignored
  s.score = s.score + points
  save_session(player, s)
  incr("scored", points)
  update_leaderboard(player, s.score)
end

function handlers.leave(tick, player)
  if load_session(player) then
    assert(c:delete(CACHE, "sessions:" .. player))
    incr("online", -1)
  end
end

function on_player_event(tick, kind, player, points)
  local h = handlers[kind]
  if not h then error("unknown event kind " .. tostring(kind)) end
  incr("events")
  if h(tick, player, points) == false then return false end
  return true
end

local last_second = 0
function on_tick(tick, now)
  incr("ticks")
  local second = math.floor(now)
  if second > last_second then
    last_second = second
    incr("seconds")
  end
  return tonumber(c:get(CACHE, "counters:online")) or 0
end

-- The host's final check asks for a one-line summary.
function summary()
  local raw = c:get(CACHE, "leaderboard:top") or "[]"
  local parts = {}
  for _, e in ipairs(kura.json.decode(raw)) do
    parts[#parts + 1] = e.name .. "=" .. e.score
  end
  return table.concat(parts, ","), tonumber(c:get(CACHE, "counters:online"))
end
