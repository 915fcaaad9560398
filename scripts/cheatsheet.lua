-- The Momento cache cheat sheet as a kura script: create a cache, list the
-- caches, set with and without a TTL, get a hit and a miss, increment up
-- and down. Each step prints what it does and checks its result; anything
-- unexpected raises, so `kura run` exits non-zero.
--
--   scripts/run scripts/cheatsheet.lua            (embedded store)
--   kura run --backend redis://127.0.0.1:6379 scripts/cheatsheet.lua

local kura = kura or require("kura")

-- No options: --help prints the comment above; anything else is refused.
if arg and not require("kura.args").parse(arg, {}) then return end
local CACHE = "cheat-sheet"

local function say(fmt, ...)
  io.write(string.format(fmt, ...), "\n")
end

-- The call's results, or an error naming the step when it failed or did
-- not return what it should.
local function check(step, ok, want, v, err)
  if err ~= nil then
    error(string.format("%s failed: %s", step, tostring(err)), 2)
  end
  if not ok then
    error(string.format("%s: expected %s, got %s", step, tostring(want), tostring(v)), 2)
  end
  return v
end

local function expect(step, want, v, err)
  return check(step, v == want, want, v, err)
end

local c = kura.client()

say("1. Create the cache %q", CACHE)
local created, cerr = c:create_cache(CACHE)
check("create_cache", created == true or created == false, "true or false", created, cerr)
say("   %s", created and "created" or "it already existed: that's fine too")

say("2. List the caches")
local list, lerr = c:list_caches()
check("list_caches", type(list) == "table", "a table", list, lerr)
local found = false
for _, entry in ipairs(list) do
  say("   - %s", entry.name)
  if entry.name == CACHE then found = true end
end
check("list_caches", found, CACHE .. " in the list", nil)

say("3. Set \"greeting\" = \"hello\" with the client's default TTL")
expect("set", true, c:set(CACHE, "greeting", "hello"))
local ttl = c:item_get_ttl(CACHE, "greeting")
say("   stored; it expires in about %.0f s", ttl or -1)

say("4. Set \"session\" = \"abc123\" with a TTL of 10 s")
expect("set with ttl", true, c:set(CACHE, "session", "abc123", 10))
ttl = c:item_get_ttl(CACHE, "session")
check("item_get_ttl", type(ttl) == "number" and ttl > 0 and ttl <= 10, "(0, 10]", ttl)
say("   stored; it expires in %.1f s", ttl)

say("5. Get \"greeting\" (a hit)")
local v = expect("get hit", "hello", c:get(CACHE, "greeting"))
say("   hit: %q", v)

say("6. Get \"nobody\" (a miss: nil, and no error)")
local miss, merr = c:get(CACHE, "nobody")
check("get miss", miss == nil, "nil", miss, merr)
say("   miss: nil")

say("7. Increment \"visits\" by 1, then by 10, then down by 3")
expect("delete", true, c:delete(CACHE, "visits")) -- start from 0 on a reused cache
expect("increment", 1, c:increment(CACHE, "visits"))
expect("increment 10", 11, c:increment(CACHE, "visits", 10))
local n = expect("increment -3", 8, c:increment(CACHE, "visits", -3))
expect("get counter", "8", c:get(CACHE, "visits"))
say("   visits = %d (stored as the string %q)", n, c:get(CACHE, "visits"))

say("8. Errors are values: a get on a cache that does not exist")
local nv, nerr = c:get(CACHE .. "-missing", "k")
check("missing cache", nv == nil and type(nerr) == "table" and nerr.code == "NOT_FOUND_ERROR",
      "NOT_FOUND_ERROR", nerr and nerr.code)
say("   %s", tostring(nerr))

say("9. Delete the cache %q", CACHE)
expect("delete_cache", true, c:delete_cache(CACHE))

say("Done: every step returned what the cheat sheet says.")
