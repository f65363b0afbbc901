-- Unit tests of peak-EWMA with two choices, run by plain luajit
-- (pkg/dynamic/lua_test.go): `luajit lua/test/ewma_test.lua`.
local ewma = require("tidegate.balancers.ewma")

local failures = 0

local function check(name, cond, detail)
  if not cond then
    failures = failures + 1
    io.stderr:write("FAIL ", name, ": ", tostring(detail), "\n")
  end
end

local now = 100
local function clock() return now end

local function peer(name, weight)
  return { name = name, weight = weight or 1, st = { ewma = 0, t = 0, pending = 0 } }
end

-- peak: a slow sample counts at once; faster ones pull it down over time
do
  local st = { ewma = 0, t = 0, pending = 0 }
  ewma.observe(st, 0.010, 100)
  check("first sample", st.ewma == 0.010, st.ewma)
  ewma.observe(st, 0.500, 100.1)
  check("peak", st.ewma == 0.500, st.ewma)
  ewma.observe(st, 0.010, 110.1)
  check("decays towards new samples", st.ewma < 0.2 and st.ewma > 0.010, st.ewma)
end

-- idle decay: a slow peer's cost falls with time, so it is tried again
do
  local p = peer("slow")
  ewma.observe(p.st, 1.0, 100)
  local c1 = ewma.cost(p, 100)
  local c2 = ewma.cost(p, 130)
  check("idle decay", c2 < c1 / 10, c2 / c1)
end

-- two peers: the fast one wins every comparison
do
  local fast, slow = peer("fast"), peer("slow")
  ewma.observe(fast.st, 0.001, now)
  ewma.observe(slow.st, 0.050, now)
  local b = ewma.new({ fast, slow }, clock)
  local got = 0
  for _ = 1, 100 do
    if b:pick() == fast then
      got = got + 1
    end
  end
  check("fast preferred", got == 100, got)
  -- in-flight requests raise the cost
  fast.st.pending = 100
  check("pending counts", b:pick() == slow, "fast picked")
end

-- many peers: the slowest is (almost) never picked
do
  local ps = {}
  for i = 1, 10 do
    ps[i] = peer(i)
    ewma.observe(ps[i].st, i / 100, now)
  end
  local b = ewma.new(ps, clock)
  local counts = {}
  for _ = 1, 10000 do
    local p = b:pick()
    counts[p.name] = (counts[p.name] or 0) + 1
  end
  check("slowest never picked", (counts[10] or 0) == 0, counts[10])
  check("fastest picked most", counts[1] > counts[5], counts[1])
end

if failures > 0 then
  os.exit(1)
end
print("ewma: ok")
