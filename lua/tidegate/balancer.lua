-- Per-request peer selection for the single `tidegate_upstream`: the
-- entry module of the balancer hooks. The work is in
--   tidegate.backends_cache  the worker's decoded backends, rebuilt when a
--                            push changed them (lookup, sync, fresh)
--   tidegate.pick            the peer of one try (algorithm, earlier tries,
--                            ejection)
--   tidegate.ejection        passive outlier ejection (failed tries, 5xx)
--
-- Phases (hooks in nginx.conf):
--   balance()  upstream balancer_by_lua, every proxied request: the peer of
--              each try; on the first try also the canary choice, the
--              sticky cookie, and the 503 for a backend with no peer; on a
--              retry it counts the failed try for passive outlier ejection
--   log()      http log_by_lua, only while some backend balances by ewma or
--              ejects on 5xx (the controller renders it then, see
--              model.Structure.LogPhase): latency samples and 5xx answers.
--              Every other request runs one Lua phase, the balancer.

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_exit = ngx.exit
local ngx_now = ngx.now
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local ngx_ERROR = ngx.ERROR
local tonumber = tonumber
local floor = math.floor
local str_find = string.find
local str_byte = string.byte
local str_sub = string.sub

local ngx_balancer = require("ngx.balancer")
local set_current_peer = ngx_balancer.set_current_peer
local set_more_tries = ngx_balancer.set_more_tries
local get_last_failure = ngx_balancer.get_last_failure
local ewma = require("tidegate.balancers.ewma")
local canary = require("tidegate.canary")
local sticky = require("tidegate.balancers.sticky")
local cache = require("tidegate.backends_cache")
local pick = require("tidegate.pick")
local ejection = require("tidegate.ejection")

local lookup = cache.lookup
local fresh = cache.fresh
local get = cache.get
local choose = pick.choose
local tried = pick.tried
local failed_try = ejection.failed_try
local answered = ejection.answered

local _M = {}

-- unavailable answers requests whose backend has no usable endpoint: a
-- server of this nginx on a unix socket in WORKDIR/unavailable/
-- (nginx.tmpl; nginx runs with the working directory as its prefix) that
-- returns 503, as ingress-nginx does. The balancer phase cannot answer a
-- status itself, and a rewrite phase just for this case would cost every
-- request a coroutine.
-- pkg/nginx/render.go names the same sockets.
local UNAVAILABLE = {}
do
  local dir = "unix:" .. ngx.config.prefix() .. "unavailable/"
  UNAVAILABLE[""] = dir .. "503.sock"
  UNAVAILABLE.https = dir .. "503-tls.sock"
  UNAVAILABLE.grpc = dir .. "503-h2c.sock"
  UNAVAILABLE.grpcs = dir .. "503-h2.sock"
end

-- balance picks the peer for this try of the request. On the first try it
-- also routes to a canary when the canary rules say so (the new backend
-- name goes into $tidegate_backend, for logs, metrics and retries) and
-- sends the request to UNAVAILABLE when the backend has no endpoint.
function _M.balance()
  local b, name = lookup()
  local addrs = nil
  local failure = get_last_failure()
  if failure then
    -- a retry: never a peer this request already tried while another is left
    addrs = ngx_var.upstream_addr or ""
    if failure == "failed" and b then
      failed_try(b, addrs)
    end
  else
    if b and b.canaries then
      local cname = canary.route(b)
      if cname then
        local cb = fresh(cname)
        if cb and cb.n > 0 then
          ngx_var.tidegate_backend = cname
          b, name = cb, cname
        end
      end
    end
    if not b or b.n == 0 then
      ngx_log(ngx_WARN, "tidegate: backend ", name or "(unset $tidegate_backend)",
        b and " has no endpoints" or " is unknown", ": 503")
      local to = UNAVAILABLE[ngx_var.tidegate_scheme or ""] or UNAVAILABLE[""]
      local ok, err = set_current_peer(to)
      if not ok then
        ngx_log(ngx_ERR, "tidegate: set_current_peer ", to, ": ", err)
        return ngx_exit(ngx_ERROR)
      end
      return
    end
    if b.n > 1 then
      -- allow one try per other peer (capped by proxy_next_upstream_tries)
      local ok, err = set_more_tries(b.n - 1)
      if not ok then
        ngx_log(ngx_ERR, "tidegate: set_more_tries: ", err)
      end
    end
  end
  if not b or b.n == 0 then
    ngx_log(ngx_ERR, "tidegate: no peer left for backend ", name or "(unset $tidegate_backend)")
    return ngx_exit(ngx_ERROR)
  end
  local peer
  if b.affinity then
    local cookie
    peer, cookie = sticky.pick(b, addrs, choose, tried)
    if cookie then
      sticky.set_cookie(b.affinity, cookie)
    end
  else
    peer = choose(b, addrs)
  end
  if b.observe then
    local st = peer.st
    st.pending = st.pending + 1
  end
  local ok, err = set_current_peer(peer.host, peer.port)
  if not ok then
    ngx_log(ngx_ERR, "tidegate: set_current_peer ", peer.key, ": ", err)
    return ngx_exit(ngx_ERROR)
  end
end

-- observe_try records the outcome of one try: its latency for ewma and
-- the 5xx count of passive outlier ejection. A try with no response header
-- ("-") failed to connect or timed out: the balancer counted it when nginx
-- retried (failed_try).
local function observe_try(b, p, status, connect, header, now)
  local st = p.st
  if st.pending > 0 then
    st.pending = st.pending - 1
  end
  local h = tonumber(header)
  if not h then
    return
  end
  if b.algorithm == "ewma" then
    ewma.observe(st, h + (tonumber(connect) or 0), now)
  end
  answered(b, p, status, now)
end

-- next_field returns the next entry of an upstream_* variable ("a, b : c")
-- and where the one after starts.
local function next_field(s, from)
  if not s or from > #s then
    return nil, from
  end
  local i = str_find(s, "[,:] ", from)
  if not i then
    return str_sub(s, from), #s + 1
  end
  if str_byte(s, i) == 44 then -- ","
    return str_sub(s, from, i - 1), i + 2
  end
  return str_sub(s, from, i - 2), i + 2
end
_M.next_field = next_field

-- log feeds the outcome of every try of the request to a backend that
-- needs it (ewma, ejection on 5xx). nginx.conf has this phase only while
-- such a backend exists; the others return after one variable read.
-- Request metrics are not counted here: nginx writes them to a buffered
-- log that the controller reads (pkg/controller/metricslog.go).
function _M.log()
  local name = ngx_var.tidegate_backend
  if not name then
    return
  end
  local b = get(name)
  if not b or not b.observe then
    return
  end
  local addrs = ngx_var.upstream_addr
  if not addrs then
    return
  end
  local statuses = ngx_var.upstream_status
  local connects = ngx_var.upstream_connect_time
  local headers = ngx_var.upstream_header_time
  local now = ngx_now()
  local ia, is, ic, ih = 1, 1, 1, 1
  local by_key = b.by_key
  while true do
    local addr, status, connect, header
    addr, ia = next_field(addrs, ia)
    if not addr then
      break
    end
    status, is = next_field(statuses, is)
    connect, ic = next_field(connects, ic)
    header, ih = next_field(headers, ih)
    local p = by_key[addr]
    if p then
      observe_try(b, p, status, connect, header, now)
    end
  end
end

-- init_worker seeds this worker's random numbers (the balancers' starting
-- points, slow start, canary weights) and starts its backend cache.
function _M.init_worker()
  math.randomseed(floor(ngx_now() * 1000) + ngx.worker.pid() * 7919)
  cache.init_worker()
end

-- backend returns the worker's balancer object for name (for tests and
-- diagnostics).
_M.backend = get

return _M
