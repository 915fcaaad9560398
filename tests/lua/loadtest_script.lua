-- A scripted workload for test_loadtest's threaded run: each iteration
-- counts itself under its thread's key, so the test can check that every
-- thread ran and that the counts add up to the report's iterations.
local c = kura.client()
local me

function setup(thread)
  me = thread
  c:create_cache("lt-script")
end

function workload(vu)
  assert(c:increment("lt-script", "iterations:" .. me))
  vu.cache:get(vu.key())
end

function teardown(thread)
  assert(c:set("lt-script", "done:" .. thread, "yes"))
end
