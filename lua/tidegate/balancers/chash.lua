-- Consistent hashing on a ring with virtual nodes, for
-- nginx.ingress.kubernetes.io/upstream-hash-by and for balanced sticky
-- sessions. Every peer owns `weight * per` points, point i placed at
-- point(hash("<addr:port>"), i), so a point's position depends only on its
-- own peer: adding one peer to N moves only the keys that land on the new
-- peer's points, about 1/(N+1) of them.
--
-- The number of points per unit of weight shrinks as a backend grows (160
-- for small backends, at least 10) so that a 10,000-endpoint ring still
-- builds in milliseconds; because point i of a peer is the same whatever
-- the count, a change of the count moves only the keys of the points added
-- or removed.

local setmetatable = setmetatable
local floor = math.floor
local hashing = require("tidegate.hash")
local hash = hashing.hash
local point = hashing.point

local _M = {}
local mt = { __index = _M }

local MAX_POINTS = 100000
local MAX_PER_WEIGHT = 160
local MIN_PER_WEIGHT = 10

_M.hash = hash

-- SCALE packs a point and its peer's index into one exact number
-- (hash * SCALE + index < 2^49), so the ring is one sorted array of
-- numbers: no table keyed by point, and collisions order deterministically.
local SCALE = 131072
local MAX_PEERS = SCALE - 1
local CHUNK = 4096 -- iterations between two calls of yield

-- new returns a ring over peers (tables with `key` and integer `weight`;
-- at most 131,071 of them). peers must not be empty. yield, if given, is
-- called every few thousand steps: a worker rebuilding a 10,000-peer ring
-- lets other requests run meanwhile.
function _M.new(peers, yield)
  local np = #peers
  if np > MAX_PEERS then
    np = MAX_PEERS
  end
  local total = 0
  for i = 1, np do
    total = total + peers[i].weight
  end
  local per = floor(MAX_POINTS / total)
  if per > MAX_PER_WEIGHT then
    per = MAX_PER_WEIGHT
  elseif per < MIN_PER_WEIGHT then
    per = MIN_PER_WEIGHT
  end
  local raw = {}
  local n = 0
  for i = 1, np do
    local p = peers[i]
    local seed = hash(p.key)
    for v = 1, p.weight * per do
      n = n + 1
      raw[n] = point(seed, v) * SCALE + i
    end
    if yield and i % 512 == 0 then
      yield()
    end
  end
  -- bucket sort: points are uniform, so distributing them into n buckets
  -- by value and insertion-sorting each (about one point per bucket) is
  -- linear, and unlike table.sort it can pause
  local width = 4294967296 * SCALE / n
  local count = {}
  for b = 1, n + 1 do
    count[b] = 0
  end
  for i = 1, n do
    local b = floor(raw[i] / width) + 1
    count[b] = count[b] + 1
  end
  local pos = count -- turned into the next free slot of each bucket
  local acc = 1
  for b = 1, n + 1 do
    local c = pos[b]
    pos[b] = acc
    acc = acc + c
  end
  local points = {}
  for i = 1, n do
    points[i] = 0
  end
  for i = 1, n do
    local x = raw[i]
    local b = floor(x / width) + 1
    points[pos[b]] = x
    pos[b] = pos[b] + 1
  end
  if yield then
    yield()
  end
  for i = 2, n do
    local x = points[i]
    local j = i - 1
    while j >= 1 and points[j] > x do
      points[j + 1] = points[j]
      j = j - 1
    end
    points[j + 1] = x
    if yield and i % CHUNK == 0 then
      yield()
    end
  end
  return setmetatable({ points = points, n = n, peers = peers }, mt)
end

-- index returns the position of the first point at or after hash h
-- (wrapping).
local function index(self, h)
  local points = self.points
  local x = h * SCALE
  local lo, hi = 1, self.n
  if x > points[hi] then
    return 1
  end
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if points[mid] < x then
      lo = mid + 1
    else
      hi = mid
    end
  end
  return lo
end

local function owner(self, i)
  return self.peers[self.points[i] % SCALE]
end

-- find returns the peer owning key.
function _M.find(self, key)
  return owner(self, index(self, hash(key)))
end

-- pick is find with the interface of the other balancers; key "" (the
-- hash expression evaluated to nothing) still gives a stable peer.
function _M.pick(self, key)
  return self:find(key or "")
end

-- walk calls ok(peer) on the distinct peers clockwise from key's position,
-- the owner first, and returns the first peer it accepts (nil when none
-- does): a retry or an ejected owner moves a key to the ring's next peer,
-- the same one the key would land on if the owner were removed.
function _M.walk(self, key, ok)
  local n = self.n
  local i = index(self, hash(key or ""))
  local seen = nil
  local distinct = #self.peers
  local count = 0
  for _ = 1, n do
    local p = owner(self, i)
    if not seen or not seen[p] then
      if ok(p) then
        return p
      end
      count = count + 1
      if count >= distinct then
        return nil
      end
      seen = seen or {}
      seen[p] = true
    end
    i = i + 1
    if i > n then
      i = 1
    end
  end
  return nil
end

return _M
