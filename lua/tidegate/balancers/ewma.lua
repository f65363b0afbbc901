-- Peak-EWMA with power-of-two choices (the ingress-nginx `ewma`, after
-- Finagle): every peer carries an exponentially weighted moving average of
-- its latency that jumps up at once on a slow answer (peak) and decays
-- towards new samples, and towards zero while the peer is idle (so a peer
-- that was slow once is tried again). A pick draws two distinct peers at
-- random and takes the cheaper one, cost = ewma * (in-flight + 1) / weight:
-- load spreads without every worker herding onto the one fastest peer.
--
-- The statistics live in each peer's `st` table, which tidegate.backends_cache
-- keeps across rebuilds of the backend, so a push does not forget them.
-- Samples are fed by tidegate.balancer.log() (the log phase).

local setmetatable = setmetatable
local exp = math.exp
local random = math.random

local _M = {}
local mt = { __index = _M }

local DECAY = 10 -- seconds: the time constant of the average
-- A peer with no sample yet costs like a very fast one: new pods get
-- traffic, and the first answers set their true cost.
local EPSILON = 1e-5

_M.DECAY = DECAY

-- new returns a balancer over peers (tables with `weight` and `st`, a
-- statistics table with fields ewma, t and pending). peers must not be
-- empty. now is a function returning seconds.
function _M.new(peers, now)
  return setmetatable({ peers = peers, n = #peers, now = now }, mt)
end

-- cost returns the current cost of a peer at time now.
local function cost(p, now)
  local st = p.st
  local e = st.ewma
  if e > 0 then
    local dt = now - st.t
    if dt > 0 then
      e = e * exp(-dt / DECAY)
    end
  end
  return (e + EPSILON) * (st.pending + 1) / p.weight
end
_M.cost = cost

-- pick returns the cheaper of two distinct random peers.
function _M.pick(self)
  local n = self.n
  local peers = self.peers
  if n == 1 then
    return peers[1]
  end
  local i = random(n)
  local j = random(n - 1)
  if j >= i then
    j = j + 1
  end
  local a, b = peers[i], peers[j]
  local now = self.now()
  if cost(b, now) < cost(a, now) then
    return b
  end
  return a
end

-- observe records one latency sample (seconds) of a peer's statistics.
function _M.observe(st, rtt, now)
  local e = st.ewma
  if rtt >= e or st.t == 0 then
    e = rtt -- peak: a slow answer counts at once
  else
    local w = exp(-(now - st.t) / DECAY)
    e = e * w + rtt * (1 - w)
  end
  st.ewma = e
  st.t = now
end

return _M
