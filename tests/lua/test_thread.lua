-- kura.thread: runtimes in threads of their own. Values cross as copies,
-- errors come back as nil, err, the embedded store is shared, histograms
-- merge exactly through h:dump(), and a handle dropped before its thread
-- ends is harmless.
local t = require("kura.test")

t.test("results of every kind come back, copied", function()
  local th = kura.thread.run([[
    function main(n, s, b, f) kura.sleep(0.01) return n + 1, s .. "!", not b, f * 2, nil, "\0\255" end
  ]], 41, "bin\0ary", false, 1.25)
  local a, s, b, f, none, raw = th:join()
  t.eq(a, 42)
  t.eq(math.type(a), "integer")
  t.eq(s, "bin\0ary!")
  t.eq(b, true)
  t.eq(f, 2.5)
  t.is_nil(none)
  t.eq(raw, "\0\255")
end)

t.test("errors: raised, no main, bad arguments, joined twice", function()
  local v, err = kura.thread.run("function main() error('boom in a thread') end"):join()
  t.is_nil(v)
  t.ok(err:find("boom in a thread", 1, true), err)
  v, err = kura.thread.run("x = 1"):join()
  t.is_nil(v)
  t.ok(err:find("main", 1, true), err)
  v, err = kura.thread.run("this is not lua"):join()
  t.is_nil(v)
  t.ok(err:find("thread", 1, true), err)
  t.raises(function() kura.thread.run("function main() end", {}) end, "encode tables")
  -- a result that cannot cross fails the join instead of arriving as nil
  v, err = kura.thread.run("function main() return 1, {2} end"):join()
  t.is_nil(v)
  t.ok(err:find("result #2 is a table or a function", 1, true) and err:find("encode", 1, true), err)
  v, err = kura.thread.run("function main() return print end"):join()
  t.is_nil(v)
  t.ok(err:find("result #1", 1, true), err)
  t.raises(function() kura.thread.run(nil) end, "string expected")
  local th = kura.thread.run("function main() return 1 end")
  t.eq(th:join(), 1)
  t.raises(function() th:join() end, "joined already")
end)

t.test("threads share the embedded store: 4 x 5,000 increments", function()
  local c = kura.client()
  c:create_cache("thr")
  c:delete("thr", "n")
  local code = [[
    function main(n)
      local c = kura.client()
      for _ = 1, n do assert(c:increment("thr", "n")) end
      return n
    end
  ]]
  local ths = {}
  for i = 1, 4 do ths[i] = kura.thread.run(code, 5000) end
  local total = 0
  for i = 1, 4 do total = total + ths[i]:join() end
  t.eq(total, 20000)
  t.eq(c:get("thr", "n"), "20000")
end)

t.test("the merge of two threads' histograms is the histogram of all samples", function()
  local code = [[
    function main(from, to)
      local h = kura.histogram()
      for i = from, to do h:record(i * 1e-6) end
      return h:dump()
    end
  ]]
  local a, b = kura.thread.run(code, 1, 60000), kura.thread.run(code, 60001, 100000)
  local merged = kura.histogram():merge((a:join())):merge((b:join()))
  local all = kura.histogram()
  for i = 1, 100000 do all:record(i * 1e-6) end
  t.eq(merged:count(), all:count())
  for _, p in ipairs({ 50, 90, 99, 99.9, 100 }) do
    t.eq(merged:percentile(p), all:percentile(p), "p" .. p)
  end
  t.eq(merged:mean(), all:mean())
end)

t.test("a handle dropped while its thread runs; other tasks run while one waits", function()
  kura.thread.run("function main() kura.sleep(0.05) return 1 end")
  collectgarbage()
  local ticks = 0
  local ticker = kura.every(0.005, function() ticks = ticks + 1 end)
  t.eq(kura.thread.run("function main() kura.sleep(0.1) return 'late' end"):join(), "late")
  ticker:stop()
  t.ok(ticks >= 5, "the loop ran while join waited: " .. ticks)
  t.ok(kura.thread.cores() >= 1)
end)

t.run()
