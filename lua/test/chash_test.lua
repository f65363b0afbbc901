-- Unit tests of the consistent-hash ring and its hash, run by plain luajit
-- (pkg/dynamic/lua_test.go): `luajit lua/test/chash_test.lua`.
local chash = require("tidegate.balancers.chash")
local hash = require("tidegate.hash").hash

local failures = 0

local function check(name, cond, detail)
  if not cond then
    failures = failures + 1
    io.stderr:write("FAIL ", name, ": ", tostring(detail), "\n")
  end
end

-- reference values computed independently (Python, FNV-1a + fmix32)
check("hash ''", hash("") == 2872998923, hash(""))
check("hash 'a'", hash("a") == 444641715, hash("a"))
check("hash endpoint", hash("10.0.0.1:80#1") == 332513554, hash("10.0.0.1:80#1"))

local function peers(n, weight)
  local list = {}
  for i = 1, n do
    list[i] = { key = string.format("10.0.%d.%d:8080", math.floor(i / 250), i % 250), weight = weight or 1 }
  end
  return list
end

local KEYS = 20000

local function assign(ring)
  local out = {}
  for k = 1, KEYS do
    out[k] = ring:find("/user/" .. k).key
  end
  return out
end

-- adding one peer to N moves at most 1.5/(N+1) of the keys, and only to
-- the new peer
for _, n in ipairs({ 1, 2, 3, 5, 10, 50, 200 }) do
  local ps = peers(n + 1)
  local before = assign(chash.new({ unpack(ps, 1, n) }))
  local after = assign(chash.new(ps))
  local moved, elsewhere = 0, 0
  for k = 1, KEYS do
    if before[k] ~= after[k] then
      moved = moved + 1
      if after[k] ~= ps[n + 1].key then
        elsewhere = elsewhere + 1
      end
    end
  end
  local share = moved / KEYS
  check(string.format("N=%d: moved %.4f <= %.4f", n, share, 1.5 / (n + 1)), share <= 1.5 / (n + 1), share)
  check(string.format("N=%d: moved %.4f >= %.4f", n, share, 0.5 / (n + 1)), share >= 0.5 / (n + 1), share)
  check(string.format("N=%d: keys moved between old peers", n), elsewhere == 0, elsewhere)
end

-- the order of the peers does not matter (every worker builds the same ring)
do
  local ps = peers(20)
  local rev = {}
  for i = #ps, 1, -1 do
    rev[#rev + 1] = ps[i]
  end
  local a, b = assign(chash.new(ps)), assign(chash.new(rev))
  local same = true
  for k = 1, KEYS do
    same = same and a[k] == b[k]
  end
  check("peer order does not matter", same, "assignments differ")
end

-- spread: with 10 peers every one gets 10 % +- 3 % of the keys
do
  local counts = {}
  for _, key in ipairs(assign(chash.new(peers(10)))) do
    counts[key] = (counts[key] or 0) + 1
  end
  for key, c in pairs(counts) do
    check("spread of " .. key, c > KEYS * 0.07 and c < KEYS * 0.13, c)
  end
end

-- weights: 3:1 gives about 75 % : 25 %
do
  local ps = peers(2)
  ps[1].weight = 3
  local c = 0
  for _, key in ipairs(assign(chash.new(ps))) do
    if key == ps[1].key then
      c = c + 1
    end
  end
  check("weight 3:1", c > KEYS * 0.70 and c < KEYS * 0.80, c / KEYS)
end

-- walk: the owner first, then the next distinct peers clockwise; a key
-- whose owner is refused lands where it would if the owner were removed
do
  local ps = peers(5)
  local ring = chash.new(ps)
  local without = chash.new({ ps[1], ps[2], ps[3], ps[4] })
  local ok = true
  for k = 1, 2000 do
    local key = "k" .. k
    local owner = ring:find(key)
    check("walk starts at the owner", ring:walk(key, function() return true end) == owner, key)
    if owner == ps[5] then
      local p = ring:walk(key, function(q) return q ~= ps[5] end)
      ok = ok and p == without:find(key)
    end
  end
  check("walk skips like a removal", ok, "differs")
  local visited = 0
  check("walk refuses all", ring:walk("x", function() visited = visited + 1 return false end) == nil, "found")
  check("walk visits each peer once", visited == 5, visited)
end

-- a 10,000-peer ring builds fast
do
  local t = os.clock()
  local ring = chash.new(peers(10000))
  local dt = os.clock() - t
  check("10k ring points", ring.n >= 99000, ring.n)
  io.stdout:write(string.format("chash: 10,000 peers, %d points, built in %.0f ms\n", ring.n, dt * 1000))
end

if failures > 0 then
  os.exit(1)
end
print("chash: ok")
