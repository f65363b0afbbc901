-- The per-request pick: which peer of a backend takes this try. The
-- backend's algorithm (tidegate.balancers.*) proposes, passive ejection
-- (tidegate.ejection) and the request's earlier tries ($upstream_addr)
-- dispose. tidegate.balancers.sticky calls choose() and tried() for a
-- client without a usable cookie.

local ngx = ngx
local ngx_var = ngx.var
local ngx_now = ngx.now
local random = math.random
local str_find = string.find
local str_byte = string.byte

local usable = require("tidegate.ejection").usable

local _M = {}

-- tried reports whether key ("addr:port") is in $upstream_addr, the list of
-- peers this request already tried ("a:1, b:2 : c:3").
local function tried(addrs, key)
  if not addrs then
    return false
  end
  local from = 1
  local len = #key
  while true do
    local s, e = str_find(addrs, key, from, true)
    if not s then
      return false
    end
    local before = s > 1 and str_byte(addrs, s - 1) or 32
    local after = str_byte(addrs, e + 1) or 44
    if (before == 32) and (after == 44 or after == 32) then
      return true
    end
    from = s + len
  end
end
_M.tried = tried

-- choose picks with the backend's algorithm a peer that is usable and not
-- yet tried by this request; it gives up on usability, then on the
-- algorithm, before it gives up on "never the same peer twice".
--
-- The ring walk of consistent hashing needs a closure; it lives in its own
-- function because a closure over choose()'s locals would make every
-- return from choose() close upvalues, which LuaJIT cannot compile: the
-- whole balancer would run in the interpreter (seen with jit.v).
local function walk_ring(b, addrs, key, now)
  return b.impl:walk(key, function(q)
    return not tried(addrs, q.key) and usable(b, q, now)
  end)
end

function _M.choose(b, addrs)
  local impl = b.impl
  local now = ngx_now()
  local n = b.n
  local peers = b.peers
  if b.hashed then
    local key = ngx_var.tidegate_hash_key
    if key and key ~= "" then
      local p = walk_ring(b, addrs, key, now)
      if p then
        return p
      end
    else
      impl = b.fallback
    end
  end
  for _ = 1, n do
    local p = impl:pick()
    if not tried(addrs, p.key) and usable(b, p, now) then
      return p
    end
  end
  local start = random(n)
  local fallback = nil
  for k = 0, n - 1 do
    local p = peers[(start + k - 1) % n + 1]
    if not tried(addrs, p.key) then
      if p.st.until_t <= now then
        return p
      end
      fallback = fallback or p
    end
  end
  return fallback or impl:pick()
end

return _M
