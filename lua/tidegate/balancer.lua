-- Per-request peer selection for the single `tidegate_upstream`.
--
-- The configuration handler stores backends in the shared dict (see
-- tidegate.store); every worker keeps its own decoded balancer objects and
-- rebuilds one only when that backend's version changed. A worker builds a
-- backend when a request first needs it, never before: a new worker (start,
-- reload) does no work for the thousands of backends it may never serve,
-- and a push rebuilds only backends the worker built. A request costs one
-- shared-dict get (the global version) plus table lookups; JSON is decoded
-- only when a push changed something.
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
--
-- Per-peer statistics (latency, in-flight tries, failures, ejection) are
-- per worker and survive rebuilds of their backend.

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_exit = ngx.exit
local ngx_now = ngx.now
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local ngx_ERROR = ngx.ERROR
local pairs = pairs
local ipairs = ipairs
local type = type
local tostring = tostring
local tonumber = tonumber
local random = math.random
local floor = math.floor
local str_find = string.find
local str_byte = string.byte
local str_sub = string.sub
local str_format = string.format
local str_gmatch = string.gmatch
local str_match = string.match
local os_clock = os.clock

local ngx_balancer = require("ngx.balancer")
local set_current_peer = ngx_balancer.set_current_peer
local set_more_tries = ngx_balancer.set_more_tries
local get_last_failure = ngx_balancer.get_last_failure
local cjson = require("cjson.safe")
local store = require("tidegate.store")
local schema = require("tidegate.schema")
local round_robin = require("tidegate.balancers.round_robin")
local ewma = require("tidegate.balancers.ewma")
local chash = require("tidegate.balancers.chash")
local canary = require("tidegate.canary")
local sticky = require("tidegate.balancers.sticky")

local dict = ngx.shared[store.BACKENDS_DICT]

local _M = {}

local backends = {} -- name -> balancer object (see build)
local versions = {} -- name -> version of the backend in `backends`
local stats = {}    -- name -> peer key -> statistics (kept across rebuilds)
local synced = nil  -- global version last applied

local SYNC_INTERVAL = 0.01 -- seconds; idle workers catch up this fast

local function new_stat()
  return { ewma = 0, t = 0, pending = 0, fails = 0, fail_t = 0, fails_5xx = 0,
    until_t = 0, back_t = 0, ejections = 0 }
end

-- peer_id is the value a persistent sticky cookie holds for a peer: stable
-- across workers, pushes and controller restarts, and not the address.
-- build turns the stored JSON of a backend into a balancer object. Ready
-- endpoints serve; draining (serving but terminating) ones only when no
-- ready endpoint is left, as kube-proxy does, and for sticky clients that
-- are already on them.
local function build(json, old_stats, yield)
  local b, err = cjson.decode(json)
  if not b then
    return nil, "decode: " .. err
  end
  local algo = b.algorithm
  if not schema.ALGORITHMS[algo] then
    return nil, "unknown algorithm " .. tostring(algo)
  end
  local st = {}
  local ready, draining, all, by_key = {}, {}, {}, {}
  for i, e in ipairs(b.endpoints) do
    if yield and i % 1000 == 0 then
      yield()
    end
    local host = e.address
    if str_find(host, ":", 1, true) then
      host = "[" .. host .. "]" -- set_current_peer parses nginx URL syntax
    end
    local key = host .. ":" .. e.port
    if not by_key[key] then
      local s = old_stats and old_stats[key] or new_stat()
      st[key] = s
      local peer = { host = host, port = e.port, weight = e.weight, key = key,
        draining = e.draining, st = s }
      local list = e.draining and draining or ready
      list[#list + 1] = peer
      all[#all + 1] = peer
      by_key[key] = peer
    end
  end
  local peers = #ready > 0 and ready or draining
  local obj = { name = b.name, n = #peers, peers = peers, all = all, by_key = by_key,
    algorithm = algo, hashed = algo == "chash" }
  if #peers > 0 then
    if algo == "ewma" then
      obj.impl = ewma.new(peers, ngx_now)
    elseif algo == "chash" then
      obj.impl = chash.new(peers, yield)
      -- requests whose hash key is empty (a location without
      -- upstream-hash-by sharing the backend) are spread evenly
      obj.fallback = round_robin.new(peers, random(#peers))
    else
      obj.impl = round_robin.new(peers, random(#peers))
    end
  end

  if b.affinity and #peers > 0 then
    obj.affinity = sticky.new(b.affinity, all, #ready == 0, yield)
  end

  obj.canaries = canary.build(b.canaries)

  local ej = b.ejection
  if not ej or ej == cjson.null then
    ej = schema.EJECTION_DEFAULTS
  end
  obj.ejection = {
    failures = ej.failures,
    window = ej.failure_window_ms / 1000,
    failures_5xx = ej.consecutive_5xx,
    base = ej.base_ejection_ms / 1000,
    max = ej.max_ejection_ms / 1000,
    slow_start = ej.slow_start_ms / 1000,
    percent = ej.max_ejected_percent,
  }
  -- the log phase has work only for these (model.needsLogPhase puts it in
  -- nginx.conf for the same backends)
  obj.observe = algo == "ewma" or ej.consecutive_5xx > 0
  return obj, nil, st
end
_M.build = build

local syncing = false -- a timer's sync is under way (and may be paused)
local BIG = 131072     -- bytes of stored JSON (about 2,000 endpoints)
local SLICE = 0.002    -- seconds of CPU a sync works before it yields
local rebuilds = 0     -- backends this worker built (GET /tidegate/workers)

local deferred

-- pause lets the worker serve requests. Not ngx.sleep(0): on stock nginx
-- that is a 0 ms timer, which runs in the same pass over expired timers as
-- the sync timer itself, without a look at the network in between.
local function pause()
  ngx.sleep(0.001)
end

-- refresh rebuilds backend name from the shared dict, whose version of it
-- is bv, and keeps the peer statistics of the old object.
local function refresh(name, bv, json, yield)
  local ok, obj, err, st
  if json then
    ok, obj, err, st = pcall(build, json, stats[name], yield)
    if not ok then
      obj, err = nil, obj
    end
  else
    err = "missing from the shared dict"
  end
  rebuilds = rebuilds + 1
  if obj then
    backends[name] = obj
    versions[name] = bv
    stats[name] = st
  else
    ngx_log(ngx_ERR, "tidegate: backend ", name, ": ", err)
    backends[name] = nil
    -- the version stays recorded: requests do not retry (and log) the
    -- same failure, and the next version is built
    versions[name] = bv
    stats[name] = nil
  end
end

-- report tells the control socket what this worker applied (tests and
-- diagnostics read it there: GET /tidegate/workers).
local function report()
  local id = ngx.worker.id() or ngx.worker.pid()
  dict:safe_set(store.worker_key(id), str_format("%.0f %d", synced or 0, rebuilds))
end

-- forget drops a backend the controller removed.
local function forget(name)
  backends[name] = nil
  versions[name] = nil
  stats[name] = nil
end

-- delta returns the names the push of version v changed (and, prefixed
-- with "\t", removed), "\n"-separated, when that push came right after
-- version from; nil when the worker has to look at every name (it missed
-- a push, or the last one was full).
local function delta(from, v)
  if not from then
    return nil
  end
  local d = dict:get(store.DELTA)
  if not d then
    return nil
  end
  local head = str_format("%.0f %.0f\n", from, v)
  if str_sub(d, 1, #head) ~= head then
    return nil
  end
  return str_sub(d, #head + 1)
end

-- sync applies a new global version: rebuilds the backends whose own
-- version changed and forgets the removed ones. A worker that applied the
-- version right before looks only at the backends the push changed (the
-- delta); otherwise at every name. The timer passes yield and yields
-- every SLICE seconds of CPU (and inside a big backend), so a full
-- push of a thousand backends never holds the event loop for long. A
-- request that finds a newer version and no sync under way applies it
-- itself for up to SLICE seconds; what is left, or a big changed backend,
-- goes to a timer that starts at once. Until that timer is done, requests
-- rebuild their own backend first if it changed (fresh), and use the
-- previous state of the others.
local function sync(yield, all)
  local v = dict:get(store.VERSION)
  if v == synced then
    return
  end
  syncing = true
  local names = not all and delta(synced, v)
  local seen
  if not names then
    names, seen = dict:get(store.NAMES) or "", {}
  end
  local t0 = os_clock()
  for name in str_gmatch(names, "[^\n]+") do
    if seen then
      seen[name] = true
    end
    if yield and os_clock() - t0 >= SLICE then
      yield()
      t0 = os_clock()
    end
    if str_byte(name, 1) == 9 then -- "\t<name>": removed (delta)
      forget(str_sub(name, 2))
    elseif versions[name] ~= nil then -- the others are built on first use (fresh)
      local bv = dict:get(store.backend_version_key(name))
      if bv ~= versions[name] then
        local json = dict:get(store.backend_key(name))
        if not yield and not all and (os_clock() - t0 >= SLICE or json and #json > BIG) then
          local ok, terr = ngx.timer.at(0, deferred)
          if ok then
            return -- syncing stays true until the timer is done
          end
          ngx_log(ngx_ERR, "tidegate: backends sync timer: ", terr)
          t0 = 1 / 0 -- go on here, all of it
        end
        refresh(name, bv, json, yield)
      end
    end
  end
  if seen then
    for name in pairs(backends) do
      if not seen[name] then
        forget(name)
      end
    end
  end
  synced = v
  syncing = false
  report()
end
_M.sync = sync

-- fresh returns the worker's object for backend name: built now if this
-- worker has not built it yet, or rebuilt if a sync is under way and has
-- not reached it yet. A request never waits for other backends, and never
-- uses an outdated version of its own.
local function fresh(name)
  local b = backends[name]
  if not b or syncing then
    local bv = dict:get(store.backend_version_key(name))
    if bv and bv ~= versions[name] then
      local json = dict:get(store.backend_key(name))
      -- a big one is the timer's job (it yields while it builds), unless
      -- this worker has none yet
      if json and (#json <= BIG or not b) then
        refresh(name, bv, json)
        b = backends[name]
      elseif not json then
        refresh(name, bv, nil) -- gone since: recorded, not retried
      end
    end
  end
  return b
end

local function lookup()
  if not syncing and dict:get(store.VERSION) ~= synced then
    sync()
  end
  local name = ngx_var.tidegate_backend
  if not name then
    return nil, nil
  end
  return fresh(name), name
end

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

-- usable reports whether a peer may take a request now: not ejected, and
-- during its slow start only with a probability growing from 10 % to 100 %.
local function usable(b, p, now)
  local st = p.st
  if st.until_t > now then
    return false
  end
  local ss = b.ejection.slow_start
  if ss > 0 and st.back_t > 0 and now < st.back_t + ss then
    local share = (now - st.back_t) / ss
    if share < 0.1 then
      share = 0.1
    end
    return random() < share
  end
  return true
end
_M.usable = usable

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

local function choose(b, addrs)
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

-- eject takes a peer out of rotation for a back-off that doubles with
-- every ejection in a row, unless that would leave the backend with too few
-- peers: never the last one, never more than max_ejected_percent.
local function eject(b, p, now)
  local ej = b.ejection
  local out = 0
  for _, q in ipairs(b.peers) do
    if q.st.until_t > now then
      out = out + 1
    end
  end
  local cap = floor(b.n * ej.percent / 100)
  if cap < 1 then
    cap = 1
  end
  if out + 1 >= b.n or out + 1 > cap then
    return false
  end
  local st = p.st
  if st.ejections > 0 and st.back_t + ej.max < now then
    st.ejections = 0 -- healthy for a while since the last one: start over
  end
  local d = ej.base * 2 ^ st.ejections
  if d > ej.max then
    d = ej.max
  end
  st.ejections = st.ejections + 1
  st.until_t = now + d
  st.back_t = st.until_t
  st.fails, st.fails_5xx = 0, 0
  ngx_log(ngx_WARN, "tidegate: backend ", b.name, ": peer ", p.key, " ejected for ", d, " s")
  return true
end
_M.eject = eject

-- last_tried returns the peer ("addr:port") of the try nginx just gave
-- up on: the last address in $upstream_addr as the balancer sees it on a
-- retry ("a:1, b:2 : ", the try under way has no address yet).
local function last_tried(addrs)
  return str_match(addrs, "([^ ,]+)[ :]*$")
end
_M.last_tried = last_tried

-- failed_try counts the try nginx just gave up on against its peer. nginx
-- retries what proxy_next_upstream names (by default a connect error or a
-- timeout), so the balancer sees every failure that has another peer to go
-- to, with no log phase. A peer with ej.failures of them within ej.window
-- seconds of the first is ejected, as nginx's own max_fails counts within
-- fail_timeout: a success does not start the count over (no phase sees
-- it), the window does.
local function failed_try(b, addrs)
  local ej = b.ejection
  if ej.failures == 0 then
    return
  end
  local key = last_tried(addrs)
  local p = key and b.by_key[key]
  if not p then
    return
  end
  local now = ngx_now()
  local st = p.st
  if now - st.fail_t > ej.window then
    st.fails = 0
    st.fail_t = now
  end
  st.fails = st.fails + 1
  if st.fails >= ej.failures then
    eject(b, p, now)
  end
end
_M.failed_try = failed_try

-- unavailable answers requests whose backend has no usable endpoint: a
-- server of this nginx on a unix socket beside the control socket
-- (nginx.tmpl; nginx runs with the working directory as its prefix) that
-- returns 503, as ingress-nginx does. The balancer phase cannot answer a
-- status itself, and a rewrite phase just for this case would cost every
-- request a coroutine.
-- pkg/nginx/render.go names the same sockets.
local UNAVAILABLE = {}
do
  local run = "unix:" .. ngx.config.prefix() .. "run/"
  UNAVAILABLE[""] = run .. "503.sock"
  UNAVAILABLE.https = run .. "503-tls.sock"
  UNAVAILABLE.grpc = run .. "503-h2c.sock"
  UNAVAILABLE.grpcs = run .. "503-h2.sock"
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
  local ej = b.ejection
  if ej.failures_5xx == 0 then
    return
  end
  local code = tonumber(status)
  if code and code >= 500 then
    st.fails_5xx = st.fails_5xx + 1
    if st.fails_5xx >= ej.failures_5xx then
      eject(b, p, now)
    end
    return
  end
  st.fails_5xx = 0
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
  local b = backends[name]
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

local function tick(premature)
  if premature or syncing then
    return
  end
  sync(pause)
end

deferred = function(premature)
  syncing = false
  if not premature then
    sync(pause)
  end
end

-- init_worker starts the worker in the middle of a sync and keeps idle
-- workers in sync. A new worker (start, reload) takes traffic at once and
-- builds each backend when a request first needs it (fresh); the timer's
-- first sync only records the stored version. Building every backend
-- here, before the worker accepts anything, held each reload for about a
-- second per worker at 10,000 backends; building them all in a background
-- timer still cost each new worker 0.7 s of CPU.
function _M.init_worker()
  math.randomseed(floor(ngx_now() * 1000) + ngx.worker.pid() * 7919)
  syncing = true
  local ok, err = ngx.timer.at(0, deferred)
  if not ok then
    ngx_log(ngx_ERR, "tidegate: initial backends sync timer: ", err)
    sync(nil, true)
    -- a sync that failed half-way must not block the next ones
    syncing = false
  end
  ok, err = ngx.timer.every(SYNC_INTERVAL, tick)
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
