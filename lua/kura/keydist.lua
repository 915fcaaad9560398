-- kura.keydist: the key distributions of load tests. keygen{ keyspace,
-- distribution, zipf_alpha } returns a function that draws key numbers
-- 1..keyspace:
--   "uniform"     every key alike;
--   "zipf"        P(rank k) ~ 1/k^zipf_alpha (default 0.99), key 1 the
--                 hottest, drawn in O(1) from Walker's alias table;
--   "gaussian"    centred in the keyspace, standard deviation keyspace/6;
--   "sequential"  1, 2, 3, ... wrapping (kura.loadtest shares one generator
--                 between its VUs, so together they walk the keyspace).
local M = {}

local random, floor = math.random, math.floor

M.names = { "uniform", "zipf", "gaussian", "sequential" }


-- Walker's alias table for weights w[1..n]: one uniform draw picks a column,
-- its fraction decides between the column and its alias.
local function alias_table(w, n)
  local total = 0
  for i = 1, n do total = total + w[i] end
  local prob, alias, small, large = {}, {}, {}, {}
  for i = 1, n do
    local p = w[i] * n / total
    prob[i] = p
    if p < 1 then small[#small + 1] = i else large[#large + 1] = i end
  end
  while #small > 0 and #large > 0 do
    local s, l = small[#small], large[#large]
    small[#small] = nil
    alias[s] = l
    prob[l] = prob[l] + prob[s] - 1
    if prob[l] < 1 then
      large[#large] = nil
      small[#small + 1] = l
    end
  end
  for _, i in ipairs(small) do prob[i], alias[i] = 1, i end
  for _, i in ipairs(large) do prob[i], alias[i] = 1, i end
  return prob, alias
end

local function zipf_gen(n, alpha)
  local w = {}
  for k = 1, n do w[k] = 1 / k ^ alpha end
  local prob, alias = alias_table(w, n)
  return function()
    local u = random() * n
    local i = floor(u)
    local col = i + 1
    if u - i < prob[col] then return col end
    return alias[col]
  end
end

local function gaussian_gen(n)
  local mean, sd = (n + 1) / 2, n / 6
  local spare
  return function()
    while true do
      local z
      if spare then
        z, spare = spare, nil
      else
        local u1, u2 = 1 - random(), random()
        local r = math.sqrt(-2 * math.log(u1))
        z, spare = r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)
      end
      local k = floor(mean + z * sd + 0.5)
      if k >= 1 and k <= n then return k end
    end
  end
end

-- keygen{ keyspace, distribution, zipf_alpha } -> function() -> 1..keyspace
function M.keygen(o)
  local n = o.keyspace or 10000
  local dist = o.distribution or "uniform"
  if math.type(n) ~= "integer" or n < 1 then error("keyspace: an integer >= 1", 2) end
  if dist == "uniform" then
    return function() return random(n) end
  elseif dist == "zipf" then
    local alpha = o.zipf_alpha or 0.99
    if type(alpha) ~= "number" or not (alpha > 0) then error("zipf_alpha: a number > 0", 2) end
    return zipf_gen(n, alpha)
  elseif dist == "gaussian" then
    return gaussian_gen(n)
  elseif dist == "sequential" then
    local i = 0
    return function()
      i = i + 1
      if i > n then i = 1 end
      return i
    end
  end
  error("distribution: uniform, zipf, gaussian or sequential, not " .. tostring(dist), 2)
end

return M
