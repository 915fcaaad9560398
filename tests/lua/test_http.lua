-- kura.http against a real HTTP server on loopback (tests/http/server.py,
-- started here): status codes, methods, headers, bodies, the size limit,
-- timeouts, refused connections, bad URLs and many concurrent requests.
local t = require("kura.test")
local HERE = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local srv = dofile(HERE .. "../http/serve.lua").start(HERE .. "../http/server.py")
local URL = srv.url
local sub = dofile(HERE .. "kura_sub.lua")

local function check_err(code, v, err)
  t.is_nil(v)
  t.eq(type(err), "table", tostring(err))
  t.eq(err.code, code, err.message)
  t.eq(type(err.message), "string")
  t.eq(type(err.retryable), "boolean")
  t.eq(tostring(err), err.code .. ": " .. err.message)
  return err
end

t.test("GET a JSON document", function()
  local r = assert(kura.http.get(URL .. "/json"))
  t.eq(r.status, 200)
  t.eq(r.headers["content-type"], "application/json")
  t.eq(r.headers["content-length"], tostring(#r.body))
  t.eq(kura.json.decode(r.body), { hello = "world", n = 42 })
  local r2 = assert(kura.http.request{ url = URL .. "/json" })
  t.eq(r2.body, r.body)
end)

t.test("HTTP error statuses are results, not errors", function()
  for _, code in ipairs{ 201, 204, 301, 400, 404, 429, 500, 503 } do
    local r, err = kura.http.get(URL .. "/status/" .. code)
    t.ok(r, err)
    t.eq(r.status, code)
    t.eq(r.body, code == 204 and "" or "status " .. code)
  end
end)

t.test("methods, request headers and a binary body", function()
  local body = "a\0b\r\n\255" .. string.rep("z", 1000)
  local r = assert(kura.http.request{
    method = "POST", url = URL .. "/echo?x=1", body = body,
    headers = { ["X-Test"] = "yes", ["Content-Type"] = "application/octet-stream", ["X-N"] = 7 },
  })
  t.eq(r.status, 200)
  local doc = kura.json.decode(r.body)
  t.eq(doc.method, "POST")
  t.eq(doc.path, "/echo?x=1")
  t.eq(doc.headers["x-test"], "yes")
  t.eq(doc.headers["x-n"], "7")
  t.eq(doc.body_hex, (body:gsub(".", function(ch) return string.format("%02x", ch:byte()) end)))
  for _, m in ipairs{ "PUT", "DELETE", "PATCH", "GET" } do
    local rr = assert(kura.http.request{ method = m, url = URL .. "/echo", body = m ~= "GET" and "x" or nil })
    t.eq(kura.json.decode(rr.body).method, m)
  end
  local put = assert(kura.http.request{ method = "PUT", url = URL .. "/echo", body = "" })
  t.eq(kura.json.decode(put.body).body, "")
  local low = assert(kura.http.request{ method = "post", url = URL .. "/echo", body = "x" })
  t.eq(kura.json.decode(low.body).method, "POST")
  local head = assert(kura.http.request{ method = "HEAD", url = URL .. "/json" })
  t.eq(head.status, 200)
  t.eq(head.body, "")
end)

t.test("repeated response headers are joined", function()
  local r = assert(kura.http.get(URL .. "/headers"))
  t.eq(r.headers["x-multi"], "a, b")
  t.eq(r.headers["x-one"], "1")
end)

t.test("header tables stay right and separate when the same lines repeat", function()
  -- The binding keeps the Lua strings of header lines it saw lately: the
  -- same lines again (and more distinct ones than it keeps) must still give
  -- each response a table of its own with the right values.
  local first = assert(kura.http.get(URL .. "/headers"))
  first.headers["x-one"] = "changed"
  first.headers["x-multi"] = nil
  for i = 1, 150 do
    local r = assert(kura.http.get(URL .. "/headers"))
    t.eq(r.headers["x-multi"], "a, b")
    t.eq(r.headers["x-one"], "1")
    local e = assert(kura.http.get(URL .. "/echo?n=" .. string.rep("x", i)))
    t.eq(e.headers["content-type"], "application/json")
    t.eq(e.headers["content-length"], tostring(#e.body))
    t.eq(kura.json.decode(e.body).path, "/echo?n=" .. string.rep("x", i))
  end
  t.eq(first.headers["x-one"], "changed")
end)

t.test("header tables are right whatever lines change between responses", function()
  -- The binding reuses the Lua strings of the last response's line at the
  -- same position when its bytes are the same: lines that move, change
  -- name or value, repeat, differ in case only, are long, or are many.
  local function query(lines)
    local q = {}
    for i, l in ipairs(lines) do
      q[i] = "h=" .. l:gsub("[^%w%-]", function(c) return string.format("%%%02X", c:byte()) end)
    end
    return URL .. "/lines?" .. table.concat(q, "&")
  end
  local long_name = "X-" .. string.rep("n", 70)
  local long_value = string.rep("v", 100)
  local many = {}
  for i = 1, 40 do many[i] = "X-M" .. i .. ":" .. i end
  many[35] = "X-M3:again"
  local cases = {
    { { "X-A:1", "X-B:2" }, { ["x-a"] = "1", ["x-b"] = "2" } },
    { { "X-B:2", "X-A:1" }, { ["x-a"] = "1", ["x-b"] = "2" } },
    { { "X-A:2", "X-B:1" }, { ["x-a"] = "2", ["x-b"] = "1" } },
    { { "X-A:1", "X-A:2" }, { ["x-a"] = "1, 2", ["x-b"] = nil } },
    { { "X-A:1", "x-a:2", "X-a:3" }, { ["x-a"] = "1, 2, 3" } },
    { { "X-A:", "X-B:2" }, { ["x-a"] = "", ["x-b"] = "2" } },
    { { "X-A:1", "X-B:" }, { ["x-a"] = "1", ["x-b"] = "" } },
    { { long_name .. ":1", "X-B:" .. long_value, long_name .. ":2" },
      { [long_name:lower()] = "1, 2", ["x-b"] = long_value } },
    { many, { ["x-m1"] = "1", ["x-m3"] = "3, again", ["x-m24"] = "24", ["x-m25"] = "25", ["x-m40"] = "40" } },
    { { "X-A:1", "X-B:2" }, { ["x-a"] = "1", ["x-b"] = "2", ["x-m3"] = nil } },
  }
  for round = 1, 3 do
    for i, c in ipairs(cases) do
      local r = assert(kura.http.get(query(c[1])))
      for name, want in pairs(c[2]) do
        t.eq(r.headers[name], want, ("round %d, case %d, %s"):format(round, i, name))
      end
      local n = 0
      for name, v in pairs(r.headers) do
        n = n + 1
        t.eq(type(v), "string", name)
        t.eq(name, name:lower(), "names are lower-case")
      end
      t.ok(n >= 3, "content-type, content-length and the lines")
    end
  end
end)

t.test("large bodies arrive whole", function()
  for _, path in ipairs{ "/bytes/", "/chunked/" } do
    local n = 5 * 1000 * 1000 + 7
    local r = assert(kura.http.get(URL .. path .. n))
    t.eq(r.status, 200)
    t.eq(#r.body, n)
    t.eq(r.body:sub(1, 12), "012345678901")
    t.eq(r.body:sub(-7), "0123456")
    t.ok(not r.body:find("[^0-9]"), "only digits")
  end
end)

t.test("a body over the size limit is LIMIT_EXCEEDED_ERROR", function()
  local e = check_err("LIMIT_EXCEEDED_ERROR", kura.http.get(URL .. "/bytes/5000", { max_size = 4999 }))
  t.ok(e.message:find("4999", 1, true), e.message)
  check_err("LIMIT_EXCEEDED_ERROR", kura.http.get(URL .. "/chunked/100000", { max_size = 1000 }))
  local r = assert(kura.http.get(URL .. "/bytes/5000", { max_size = 5000 }))
  t.eq(#r.body, 5000)
  -- the default limit is 64 MiB: a larger Content-Length fails before the body
  e = check_err("LIMIT_EXCEEDED_ERROR", kura.http.get(URL .. "/bytes/" .. (64 * 1024 * 1024 + 1)))
  t.ok(e.message:find(tostring(64 * 1024 * 1024), 1, true), e.message)
end)

t.test("a slow server gives TIMEOUT_ERROR", function()
  local e = check_err("TIMEOUT_ERROR", kura.http.get(URL .. "/slow/3000", { timeout = 0.2 }))
  t.eq(e.retryable, true)
  local r = assert(kura.http.get(URL .. "/slow/10", { timeout = 5 }))
  t.eq(r.body, "slow")
end)

t.test("a refused connection gives CONNECTION_ERROR", function()
  local e = check_err("CONNECTION_ERROR", kura.http.get("http://127.0.0.1:1/"))
  t.eq(e.retryable, true)
end)

t.test("bad URLs, methods and headers give INVALID_ARGUMENT_ERROR", function()
  for _, u in ipairs{ "", "not a url", "ftp://127.0.0.1/", "file:///etc/passwd",
                      "http://127.0.0.1:99999/", "http://" } do
    check_err("INVALID_ARGUMENT_ERROR", kura.http.get(u))
  end
  check_err("INVALID_ARGUMENT_ERROR", kura.http.request{ method = "GE T", url = URL .. "/json" })
  check_err("INVALID_ARGUMENT_ERROR", kura.http.request{ method = "", url = URL .. "/json" })
  check_err("INVALID_ARGUMENT_ERROR", kura.http.request{ method = string.rep("A", 100), url = URL })
  check_err("INVALID_ARGUMENT_ERROR",
            kura.http.request{ url = URL .. "/json", headers = { ["X-A"] = "1\r\nX-B: 2" } })
  check_err("INVALID_ARGUMENT_ERROR", kura.http.get(URL .. "/json", { timeout = 0 }))
  check_err("INVALID_ARGUMENT_ERROR", kura.http.get(URL .. "/json", { max_size = 0 }))
end)

t.test("wrong types raise", function()
  t.raises(function() kura.http.request("http://x/") end, "table expected")
  t.raises(function() kura.http.request{} end, "url")
  t.raises(function() kura.http.request{ url = {} } end, "url")
  t.raises(function() kura.http.request{ url = URL, headers = "x" } end, "headers")
  t.raises(function() kura.http.request{ url = URL, timeout = "1" } end, "timeout")
  t.raises(function() kura.http.request{ url = URL, bogus = 1 } end, "unknown option 'bogus'")
  t.raises(function() kura.http.get() end, "string expected")
end)

t.test("a request suspends only the calling task", function()
  local order = {}
  local slow = kura.spawn(function()
    local r = assert(kura.http.get(URL .. "/slow/300"))
    order[#order + 1] = "slow"
    return r.status
  end)
  local fast = kura.spawn(function()
    local r = assert(kura.http.get(URL .. "/json"))
    order[#order + 1] = "fast"
    return r.status
  end)
  t.eq(fast:join(), 200)
  t.eq(slow:join(), 200)
  t.eq(order, { "fast", "slow" })
end)

t.test("it cannot suspend outside a task", function()
  local co = coroutine.wrap(function() return kura.http.get(URL .. "/json") end)
  t.raises(co, "cannot suspend")
end)

t.test("100 concurrent requests each get their own answer", function()
  local tasks = {}
  for i = 1, 100 do
    tasks[i] = kura.spawn(function()
      local r, err = kura.http.request{ method = "POST", url = URL .. "/echo?i=" .. i, body = "b" .. i }
      if not r then return nil, err end
      local doc = kura.json.decode(r.body)
      return doc.path == "/echo?i=" .. i and doc.body == "b" .. i
    end)
  end
  for i = 1, 100 do
    local ok, err = tasks[i]:join()
    t.eq(ok, true, tostring(err))
  end
end)

t.test("connections the server closes, and kept-alive ones, mixed", function()
  local tasks = {}
  for i = 1, 20 do
    tasks[i] = kura.spawn(function()
      for j = 1, 5 do
        local close = (i + j) % 2 == 0
        local r, err = kura.http.request{ url = URL .. "/echo?c=" .. i .. "-" .. j,
                                          headers = close and { Connection = "close" } or nil }
        if not r then return nil, err end
        if kura.json.decode(r.body).path ~= "/echo?c=" .. i .. "-" .. j then return false end
      end
      return true
    end)
  end
  for i = 1, 20 do
    local ok, err = tasks[i]:join()
    t.eq(ok, true, tostring(err))
  end
end)

t.test("kept-alive connections the server closes while they are idle", function()
  -- Every answer leaves its connection in curl's cache, and the server closes
  -- it 50 ms later, while nothing is being asked on it: the next round finds
  -- the connections dead and opens new ones.
  for round = 1, 3 do
    local tasks = {}
    for i = 1, 10 do
      tasks[i] = kura.spawn(function()
        local r, err = kura.http.get(URL .. "/close-later/50?r=" .. round)
        if not r then return nil, err end
        return r.status == 200 and r.body == "bye"
      end)
    end
    for i = 1, 10 do
      local ok, err = tasks[i]:join()
      t.eq(ok, true, tostring(err))
    end
    kura.sleep(0.2)
  end
  local r = assert(kura.http.get(URL .. "/json"))
  t.eq(r.status, 200)
end)

t.test("a GET whose kept-alive connections all die goes out on a new one", function()
  -- A server of its own, so that its connections in the cache are only
  -- these: each answered one /once and will drop the next request sent on
  -- it. curl tries the next GET on up to 5 of them ("Connection died"), all
  -- dead; kura.http then sends it once more on a new connection.
  local own = dofile(HERE .. "../http/serve.lua").start(HERE .. "../http/server.py")
  local tasks = {}
  for i = 1, 8 do
    tasks[i] = kura.spawn(function() return kura.http.get(own.url .. "/once") end)
  end
  for i = 1, 8 do
    local r, err = tasks[i]:join()
    t.eq(r and r.body, "once", tostring(err))
  end
  local r, err = kura.http.get(own.url .. "/json")
  t.eq(r and r.status, 200, tostring(err))
  own:stop()
end)

t.test("paging with next links", function()
  local url, items = URL .. "/page/1?last=4", {}
  while url do
    local r = assert(kura.http.get(url))
    local doc = kura.json.decode(r.body)
    for _, it in ipairs(doc.items) do items[#items + 1] = it.key end
    url = doc.next ~= kura.json.null and doc.next and URL .. doc.next or nil
  end
  t.eq(#items, 12)
  t.eq(items[1], "k1-0")
  t.eq(items[12], "k4-2")
end)

t.test("an answer that is not valid HTTP is the server's error, not the caller's", function()
  for _, kind in ipairs{ "http09", "badstatus", "version" } do
    local e = check_err("INTERNAL_SERVER_ERROR", kura.http.get(URL .. "/broken/" .. kind))
    t.ok(e.message:find("not valid HTTP", 1, true), kind .. ": " .. e.message)
    t.eq(e.retryable, true, kind)    -- a GET may be sent again
    t.eq(e.uncertain, nil, kind)
    -- A POST reached the server, which may have acted on it: unknown outcome.
    local p = check_err("INTERNAL_SERVER_ERROR",
                        kura.http.request{ method = "POST", url = URL .. "/broken/" .. kind, body = "x" })
    t.eq(p.uncertain, true, kind .. " POST")
    t.eq(p.retryable, false, kind .. " POST")
  end
end)

t.test("a POST that got no answer is uncertain; one never sent is not", function()
  local e = check_err("TIMEOUT_ERROR",
                      kura.http.request{ method = "POST", url = URL .. "/slow/3000", body = "x", timeout = 0.2 })
  t.eq(e.uncertain, true)
  t.eq(e.retryable, false)
  e = check_err("TIMEOUT_ERROR", kura.http.request{ method = "PUT", url = URL .. "/slow/3000",
                                                    body = "x", timeout = 0.2 })
  t.eq(e.uncertain, nil) -- PUT is idempotent
  t.eq(e.retryable, true)
  e = check_err("CONNECTION_ERROR", kura.http.request{ method = "POST", url = "http://127.0.0.1:1/", body = "x" })
  t.eq(e.uncertain, nil) -- refused: nothing was sent
  t.eq(e.retryable, true)
end)

t.test("50,000 repeated header lines are joined in one pass", function()
  local r = assert(kura.http.get(URL .. "/repeat/50000"))
  local v = r.headers.r
  t.eq(#v, 1 + 3 * 49999)
  t.eq(v:sub(1, 7), "v, v, v")
  t.ok(not v:find("[^v, ]"), "only the values and their separators")
  -- Joining at each repeat copied the value so far each time: quadratic, so
  -- four times the lines cost sixteen times the CPU. Linear now: at most
  -- about four times (CPU time of this process, best of three each).
  local function cost(n)
    local best = math.huge
    for _ = 1, 3 do
      local c0 = os.clock()
      assert(kura.http.get(URL .. "/repeat/" .. n))
      best = math.min(best, os.clock() - c0)
    end
    return best
  end
  local small, large = cost(12500), cost(50000)
  print(string.format("  12,500 repeated lines: %.4f s of CPU; 50,000: %.4f s (%.1fx)",
                      small, large, large / small))
  t.ok(large < 8 * small, "four times the lines cost under eight times the CPU")
end)

t.test("headers over libcurl's limits are LIMIT_EXCEEDED_ERROR, not out of memory", function()
  local e = check_err("LIMIT_EXCEEDED_ERROR", kura.http.get(URL .. "/huge-header/200000"))
  t.ok(e.message:find("header line", 1, true), e.message)
  t.ok(not e.message:lower():find("out of memory", 1, true), e.message)
  t.eq(e.retryable, false)
  e = check_err("LIMIT_EXCEEDED_ERROR", kura.http.get(URL .. "/repeat/60000"))
  t.ok(e.message:find("headers", 1, true), e.message)
  local r = assert(kura.http.get(URL .. "/huge-header/90000")) -- under the limit: fine
  t.eq(#r.headers["x-huge"], 90000)
end)

t.test("the responses in flight share a budget (KURA_HTTP_MAX_BUFFERED)", function()
  local code = string.format([[
    local url = %q
    local tasks = {}
    for i = 1, 6 do
      tasks[i] = kura.spawn(function() return kura.http.get(url .. "/slow-bytes/400000") end)
    end
    local ok, limited = 0, 0
    for i = 1, 6 do
      local r, err = tasks[i]:join()
      if r and #r.body == 400000 then ok = ok + 1
      elseif err and err.code == "LIMIT_EXCEEDED_ERROR" and err.message:find("1048576", 1, true) then
        limited = limited + 1
      else print("unexpected", r and r.status, tostring(err)) end
    end
    local again = kura.http.get(url .. "/bytes/400000") -- the budget is free again
    print(ok, limited, again and #again.body)
  ]], URL)
  local out, err = sub.run(code, "", "KURA_HTTP_MAX_BUFFERED=1M")
  local ok, limited, again = out:match("^(%d+)	(%d+)	(%d+)")
  t.ok(ok, out .. err)
  t.ok(tonumber(ok) >= 1 and tonumber(ok) <= 2, "at most two 400 KB bodies in 1 MiB: " .. out)
  t.eq(tonumber(ok) + tonumber(limited), 6, out)
  t.eq(again, "400000")
  local _, e2, status = sub.run("kura.http.get('" .. URL .. "/json')", "",
                                "KURA_HTTP_MAX_BUFFERED=lots")
  t.ok(status ~= 0 and e2:find("KURA_HTTP_MAX_BUFFERED must be", 1, true), e2)
end)

t.test("a load test drives an HTTP service and its cache together (vu.http)", function()
  local loadtest = require("kura.loadtest")
  local r = assert(loadtest.run{ duration = 0.6, concurrency = 4, progress = false,
    cache = "lt-http", thresholds = false,
    workload = function(vu, n)
      local res = vu.http.get(URL .. (n % 5 == 0 and "/status/503" or "/json"))
      if res and res.status == 200 then vu.cache:set("page:" .. vu.id, res.body) end
      vu.http.request{ method = "POST", url = URL .. "/echo", body = "x" }
    end })
  local get, post, set = r.latency["http.get"], r.latency["http.post"], r.latency.set
  t.ok(get and get.count > 10, "http.get timed: " .. tostring(get and get.count))
  t.ok(post and post.count > 10, "http.post timed")
  t.ok(set and set.count > 0, "the cache calls beside them")
  t.ok((r.errors.HTTP_503 or 0) > 0, "a 503 counts as a failed call")
  t.eq(r.errors.HTTP_503 + (r.errors.SCRIPT_ERROR or 0), r.error_count)
  t.ok(r.ops >= get.count + post.count + set.count - 1)
  -- A refused connection is an error of its code, not a crash of the run.
  local dead = assert(loadtest.run{ duration = 0.3, concurrency = 2, progress = false,
    cache = "lt-http", thresholds = false,
    workload = function(vu) vu.http.get("http://127.0.0.1:1/") end })
  t.ok((dead.errors.CONNECTION_ERROR or 0) > 0, kura.json.encode(dead.errors))
  local bad = assert(loadtest.run{ duration = 0.1, concurrency = 1, progress = false,
    cache = "lt-http", thresholds = false,
    workload = function(vu) vu.http.request("not a table") end })
  t.ok(bad.errors.SCRIPT_ERROR > 0, "a bad vu.http.request raises in the workload")
end)

t.run()
srv:stop()
