-- Per-request peer selection for the single `tidegate_upstream`.
--
-- The configuration handler stores backends in the shared dict (see
-- tidegate.store); every worker keeps its own decoded balancer objects and
-- rebuilds one only when that backend's version changed. A request costs one
-- shared-dict get (the global version) plus table lookups; JSON is decoded
-- only when a push changed something.

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_exit = ngx.exit
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local ngx_ERROR = ngx.ERROR
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local str_find = string.find
local str_byte = string.byte
local str_gmatch = string.gmatch

local ngx_balancer = require("ngx.balancer")
local set_current_peer = ngx_balancer.set_current_peer
local set_more_tries = ngx_balancer.set_more_tries
local get_last_failure = ngx_balancer.get_last_failure
local cjson = require("cjson.safe")
local store = require("tidegate.store")

local algorithms = {
  round_robin = require("tidegate.balancers.round_robin"),
}

local dict = ngx.shared[store.BACKENDS_DICT]

local _M = {}

local backends = {} -- name -> { name, n, peers, impl }
local versions = {} -- name -> version of the backend in `backends`
local synced = nil  -- global version last applied

local SYNC_INTERVAL = 0.01 -- seconds; idle workers catch up this fast

-- build turns the stored JSON of a backend into a balancer object. Ready
-- endpoints serve; draining (serving but terminating) ones only when no
-- ready endpoint is left, as kube-proxy does.
local function build(json)
  local b, err = cjson.decode(json)
  if not b then
    return nil, "decode: " .. err
  end
  local ready, draining = {}, {}
  for _, e in ipairs(b.endpoints) do
    local host = e.address
    if str_find(host, ":", 1, true) then
      host = "[" .. host .. "]" -- set_current_peer parses nginx URL syntax
    end
    local peer = { host = host, port = e.port, weight = e.weight, key = host .. ":" .. e.port }
    local list = e.draining and draining or ready
    list[#list + 1] = peer
  end
  local peers = #ready > 0 and ready or draining
  local algo = algorithms[b.algorithm]
  if not algo then
    return nil, "unknown algorithm " .. tostring(b.algorithm)
  end
  local obj = { name = b.name, n = #peers, peers = peers }
  if #peers > 0 then
    obj.impl = algo.new(peers)
  end
  return obj
end

-- sync applies a new global version: rebuilds the backends whose own
-- version changed and forgets the removed ones.
local function sync()
  local v = dict:get(store.VERSION)
  if v == synced then
    return
  end
  local names = dict:get(store.NAMES) or ""
  local seen = {}
  for name in str_gmatch(names, "[^\n]+") do
    seen[name] = true
    local bv = dict:get(store.backend_version_key(name))
    if bv ~= versions[name] then
      local json = dict:get(store.backend_key(name))
      local obj, err
      if json then
        obj, err = build(json)
      else
        err = "missing from the shared dict"
      end
      if obj then
        backends[name] = obj
        versions[name] = bv
      else
        ngx_log(ngx_ERR, "tidegate: backend ", name, ": ", err)
        backends[name] = nil
        versions[name] = nil
      end
    end
  end
  for name in pairs(backends) do
    if not seen[name] then
      backends[name] = nil
      versions[name] = nil
    end
  end
  synced = v
end
_M.sync = sync

local function lookup()
  if dict:get(store.VERSION) ~= synced then
    sync()
  end
  local name = ngx_var.tidegate_backend
  if not name then
    return nil, nil
  end
  return backends[name], name
end

-- rewrite answers 503 when the location's backend is unknown or has no
-- endpoint: the balancer phase can only fail with 500/502.
function _M.rewrite()
  local b, name = lookup()
  if b and b.n > 0 then
    return
  end
  ngx_log(ngx_WARN, "tidegate: backend ", name or "(unset $tidegate_backend)",
    b and " has no endpoints" or " is unknown")
  return ngx_exit(503)
end

-- tried reports whether key ("addr:port") is in $upstream_addr, the list of
-- peers this request already tried ("a:1, b:2 : c:3").
local function tried(addrs, key)
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

-- balance picks the peer for this try of the request.
function _M.balance()
  local b, name = lookup()
  if not b or b.n == 0 then
    ngx_log(ngx_ERR, "tidegate: no peer for backend ", name or "(unset $tidegate_backend)")
    return ngx_exit(ngx_ERROR)
  end
  local impl = b.impl
  local peer = impl:pick()
  if not get_last_failure() then
    -- first try: allow one try per other peer (capped by
    -- proxy_next_upstream_tries)
    if b.n > 1 then
      local ok, err = set_more_tries(b.n - 1)
      if not ok then
        ngx_log(ngx_ERR, "tidegate: set_more_tries: ", err)
      end
    end
  else
    -- a retry: never a peer this request already tried while another is
    -- left. Weighted picks first; a scan when the weights keep choosing
    -- tried peers (weights 3:1 pick the first peer three times in a row).
    local addrs = ngx_var.upstream_addr or ""
    if tried(addrs, peer.key) then
      local found = false
      for _ = 2, b.n do
        peer = impl:pick()
        if not tried(addrs, peer.key) then
          found = true
          break
        end
      end
      if not found then
        local peers = b.peers
        for i = 1, b.n do
          if not tried(addrs, peers[i].key) then
            peer = peers[i]
            break
          end
        end
      end
    end
  end
  local ok, err = set_current_peer(peer.host, peer.port)
  if not ok then
    ngx_log(ngx_ERR, "tidegate: set_current_peer ", peer.key, ": ", err)
    return ngx_exit(ngx_ERROR)
  end
end

local function tick(premature)
  if premature then
    return
  end
  sync()
end

-- init_worker loads the current state and keeps idle workers in sync.
function _M.init_worker()
  sync()
  local ok, err = ngx.timer.every(SYNC_INTERVAL, tick)
  if not ok then
    ngx_log(ngx_ERR, "tidegate: backends sync timer: ", err)
  end
end

-- backend returns the worker's balancer object for name (for tests and
-- diagnostics).
function _M.backend(name)
  return backends[name]
end

return _M
