-- The worker's backend cache: the balancer objects this worker decoded
-- from the shared dict (see tidegate.store), each rebuilt only when that
-- backend's version changed. A worker builds a backend when a request
-- first needs it, never before: a new worker (start, reload) does no work
-- for the thousands of backends it may never serve, and a push rebuilds
-- only backends the worker built. A lookup costs one shared-dict get (the
-- global version) plus table lookups; JSON is decoded only when a push
-- changed something.
--
-- Per-peer statistics (latency, in-flight tries, failures, ejection) are
-- per worker and survive rebuilds of their backend.

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_ERR = ngx.ERR
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local pcall = pcall
local random = math.random
local str_find = string.find
local str_byte = string.byte
local str_sub = string.sub
local str_format = string.format
local str_gmatch = string.gmatch
local os_clock = os.clock

local cjson = require("cjson.safe")
local store = require("tidegate.store")
local schema = require("tidegate.schema")
local round_robin = require("tidegate.balancers.round_robin")
local ewma = require("tidegate.balancers.ewma")
local chash = require("tidegate.balancers.chash")
local canary = require("tidegate.canary")
local sticky = require("tidegate.balancers.sticky")
local ejection = require("tidegate.ejection")

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
  obj.ejection = ejection.settings(ej)
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

-- lookup returns the worker's object for the request's backend
-- ($tidegate_backend) and its name, after applying a new global version
-- (sync) when no sync is under way.
function _M.lookup()
  if not syncing and dict:get(store.VERSION) ~= synced then
    sync()
  end
  local name = ngx_var.tidegate_backend
  if not name then
    return nil, nil
  end
  return fresh(name), name
end

_M.fresh = fresh

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

-- get returns the worker's object for backend name as it is, without a
-- look at the shared dict (the log phase, tests and diagnostics).
function _M.get(name)
  return backends[name]
end

return _M
