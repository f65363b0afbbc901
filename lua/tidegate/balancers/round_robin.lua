-- Smooth weighted round robin, the algorithm of nginx's own upstream module
-- (ngx_http_upstream_get_peer): on every pick each peer's current weight
-- grows by its weight, the largest wins and loses the total. With weights
-- 5,1,1 the sequence is a a b a c a a: spread out, no bursts.
--
-- A balancer is built once per backend version; pick() allocates nothing.

local setmetatable = setmetatable

local _M = {}
local mt = { __index = _M }

-- new returns a balancer over peers, an array of tables with at least a
-- positive integer `weight`; pick() returns one of these tables. peers must
-- not be empty. With equal weights the rotation begins after peer `start`
-- (0 when nil): each nginx worker passes its own random start, so that
-- workers do not all send their first requests to the same peer.
function _M.new(peers, start)
  local n = #peers
  local current = {}
  local equal = true
  local w1 = peers[1] and peers[1].weight
  for i = 1, n do
    current[i] = 0
    if peers[i].weight ~= w1 then
      equal = false
    end
  end
  return setmetatable({
    peers = peers,
    n = n,
    current = current,
    -- equal weights make the smooth sequence a plain rotation; skip the
    -- O(n) scan then
    equal = equal,
    last = equal and n > 0 and (start or 0) % n or 0,
  }, mt)
end

-- pick returns the next peer.
function _M.pick(self)
  local n = self.n
  local peers = self.peers
  if self.equal then
    local i = self.last + 1
    if i > n then
      i = 1
    end
    self.last = i
    return peers[i]
  end
  local current = self.current
  local total = 0
  local best = 0
  local best_w
  for i = 1, n do
    local w = peers[i].weight
    local c = current[i] + w
    current[i] = c
    total = total + w
    if best == 0 or c > best_w then
      best = i
      best_w = c
    end
  end
  current[best] = best_w - total
  return peers[best]
end

return _M
