-- Sticky sessions by cookie (ingress-nginx's `affinity: cookie`).
--
-- Persistent mode: the cookie holds a peer id; the client stays on that
-- peer while it exists (ready or draining) and gets a new cookie once it is
-- gone. Balanced mode: the cookie holds a random key placed on a consistent
-- hash ring of every peer, so a scale-up moves about 1/(N+1) of the
-- clients, and a draining peer keeps the clients it has but gets no new
-- ones.
--
-- The cookie is set from the balancer phase (no header filter): upstream
-- headers are not there yet, and a retry that picks another peer simply
-- replaces the cookie of the earlier try.

local ngx = ngx
local ngx_var = ngx.var
local ngx_header = ngx.header
local ngx_now = ngx.now
local ipairs = ipairs
local random = math.random
local str_format = string.format

local hash = require("tidegate.hash").hash
local chash = require("tidegate.balancers.chash")

local _M = {}

local KEY_TRIES = 16 -- random keys drawn to avoid a draining or tried peer

local function peer_id(key)
  return str_format("%08x%08x", hash(key), hash(key .. "~"))
end

-- cookie_suffix renders the constant attributes of a sticky cookie.
local function cookie_suffix(a)
  local s = "; Path=" .. (a.path ~= "" and a.path or "/")
  if a.domain ~= "" then
    s = s .. "; Domain=" .. a.domain
  end
  if a.max_age > 0 then
    s = s .. "; Max-Age=" .. a.max_age
  end
  if a.samesite ~= "" then
    s = s .. "; SameSite=" .. a.samesite
  end
  return s .. "; HttpOnly"
end

-- new builds the affinity state of a backend from its pushed settings a
-- over all its peers (draining ones included). all_draining says that no
-- ready peer is left; yield is passed to the ring builder.
function _M.new(a, all, all_draining, yield)
  local aff = { mode = a.mode, name = a.name, cookie_var = "cookie_" .. a.name,
    suffix = cookie_suffix(a), expires = a.expires, secure = a.secure or a.samesite == "None",
    change_on_failure = a.change_on_failure }
  if a.mode == "persistent" then
    local by_id = {}
    for _, p in ipairs(all) do
      p.id = peer_id(p.key)
      by_id[p.id] = p
    end
    aff.by_id = by_id
  else
    -- the ring over every peer, draining ones included: a key keeps the
    -- peer it had before that peer began to drain (the draining peer's
    -- points are where they were), and new keys are drawn to avoid them
    aff.ring = chash.new(all, yield)
    aff.all_draining = all_draining
  end
  return aff
end

-- new_key draws a balanced key whose peer is neither draining (unless
-- every peer is) nor tried by this request.
local function new_key(aff, addrs, tried)
  local key, p
  for _ = 1, KEY_TRIES do
    key = str_format("%08x%08x", random(0, 0x7fffffff), random(0, 0x7fffffff))
    p = aff.ring:find(key)
    if (aff.all_draining or not p.draining) and not tried(addrs, p.key) then
      break
    end
  end
  return key, p
end

-- pick returns the peer of a sticky request of backend b and, when the
-- client needs a new cookie, its value. addrs are the peers this request
-- already tried (nil on the first try); choose(b, addrs) is the backend's
-- own algorithm, used when the cookie's peer is ejected or on a retry, and
-- tried(addrs, key) says whether a peer was tried.
function _M.pick(b, addrs, choose, tried)
  local aff = b.affinity
  local v = ngx_var[aff.cookie_var]
  local p = nil
  if v and not addrs then
    if aff.by_id then
      p = aff.by_id[v]
    elseif #v <= 64 then
      p = aff.ring:find(v)
    end
    if p and p.st.until_t <= ngx_now() then
      return p, nil
    end
    if p and not aff.change_on_failure then
      return choose(b, addrs), nil -- ejected: elsewhere for now, same cookie
    end
  elseif addrs and not aff.change_on_failure then
    return choose(b, addrs), nil -- a retry: elsewhere, same cookie
  end
  if aff.by_id then
    p = choose(b, addrs)
    return p, p.id
  end
  local key
  key, p = new_key(aff, addrs, tried)
  return p, key
end

-- set_cookie adds the sticky cookie with value v to the response.
function _M.set_cookie(aff, v)
  local c = aff.name .. "=" .. v .. aff.suffix
  if aff.expires > 0 then
    c = c .. "; Expires=" .. ngx.http_time(ngx.time() + aff.expires)
  end
  if aff.secure or ngx_var.https == "on" then
    c = c .. "; Secure"
  end
  ngx_header["Set-Cookie"] = c
end

return _M
