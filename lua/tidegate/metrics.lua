-- Request metrics from the log phase.
--
-- Each worker adds up its requests in a private table (no lock, no shared
-- memory on the request path) and a timer flushes that table into the
-- tidegate_metrics shared dict once a second with one incr per series.
-- The controller reads the dict through serve() on the control socket and
-- turns it into Prometheus text; the Lua side never formats metrics.
--
-- Labels come only from values the configuration fixed, never from the raw
-- request: the location's Ingress and path pattern ($tidegate_ingress,
-- $tidegate_path), the server's host ($tidegate_vhost), the backend, the
-- method (the nine standard ones, else "OTHER") and the status code. So the
-- number of series is bounded by the configuration, not by traffic.
--
-- Keys of tidegate_metrics ("\31" separates fields, see KEY below):
--   r  ingress host path backend method status  requests
--   d  ingress host path backend i              request_time in bucket i
--   ds ingress host path backend                sum of request_time
--   u  ingress host path backend i              upstream time in bucket i
--   us ingress host path backend                sum of upstream time
--   bi ingress host path backend                request bytes (request_length)
--   bo ingress host path backend                response bytes (bytes_sent)
--   e  backend endpoint outcome                 tries per endpoint: 1xx..5xx,
--                                               error (connect), timeout
-- Names never contain control characters (the template quotes them), so
-- "\31" and the "\t" and "\n" of serve() are safe separators.

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local ngx_shared = ngx.shared
local ngx_timer_every = ngx.timer.every
local tonumber = tonumber
local tostring = tostring
local pairs = pairs
local str_find = string.find
local str_sub = string.sub
local str_byte = string.byte
local tbl_concat = table.concat

local DICT = "tidegate_metrics"
local FLUSH_INTERVAL = 1 -- seconds
local SEP = "\31"

-- Upper bounds of the latency buckets, ingress-nginx's defaults; the
-- controller keeps the same list (pkg/controller/dataplane.go).
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
local NBUCKETS = #BUCKETS

local METHODS = {
  GET = "GET", HEAD = "HEAD", POST = "POST", PUT = "PUT", DELETE = "DELETE",
  PATCH = "PATCH", OPTIONS = "OPTIONS", CONNECT = "CONNECT", TRACE = "TRACE",
}

local _M = { DICT = DICT, BUCKETS = BUCKETS }

local pending = {}   -- series key -> record (see new_record)
local endpoints = {} -- backend -> endpoint -> outcome -> count
local dirty = false

local function new_record()
  local d, u = {}, {}
  for i = 1, NBUCKETS + 1 do
    d[i] = 0
    u[i] = 0
  end
  return { req = {}, d = d, ds = 0, u = u, us = 0, bi = 0, bo = 0 }
end

local function bucket(v)
  for i = 1, NBUCKETS do
    if v <= BUCKETS[i] then
      return i
    end
  end
  return NBUCKETS + 1
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

local CLASSES = { "1xx", "2xx", "3xx", "4xx", "5xx" }

local function outcome(status, header)
  if header and header ~= "-" then
    local code = tonumber(status)
    local c = code and CLASSES[(code - code % 100) / 100]
    return c or "error"
  end
  if status == "504" then
    return "timeout"
  end
  return "error"
end

local function observe_endpoints(backend)
  local addrs = ngx_var.upstream_addr
  if not addrs then
    return
  end
  local statuses = ngx_var.upstream_status
  local headers = ngx_var.upstream_header_time
  local byb = endpoints[backend]
  if not byb then
    byb = {}
    endpoints[backend] = byb
  end
  local ia, is, ih = 1, 1, 1
  while true do
    local addr, status, header
    addr, ia = next_field(addrs, ia)
    if not addr then
      return
    end
    status, is = next_field(statuses, is)
    header, ih = next_field(headers, ih)
    -- "unix:..." or a name: only peers the balancer chose (ip:port) count.
    if str_byte(addr, 1) ~= 117 then
      local o = outcome(status, header)
      local bye = byb[addr]
      if not bye then
        bye = {}
        byb[addr] = bye
      end
      bye[o] = (bye[o] or 0) + 1
    end
  end
end

-- sum_times adds the per-try times of an upstream_*_time variable.
local function sum_times(s)
  if not s then
    return nil
  end
  local n = tonumber(s)
  if n then
    return n
  end
  local total, any, i = 0, false, 1
  while true do
    local f
    f, i = next_field(s, i)
    if not f then
      break
    end
    local v = tonumber(f)
    if v then
      total = total + v
      any = true
    end
  end
  return any and total or nil
end

-- log records the current request. Called from balancer.log() in the log
-- phase of every proxied and every locally answered request.
function _M.log()
  local ingress = ngx_var.tidegate_ingress
  if not ingress then
    return -- the control socket, or a request no location took
  end
  local backend = ngx_var.tidegate_backend or ""
  local key = ingress .. SEP .. (ngx_var.tidegate_vhost or "") .. SEP .. (ngx_var.tidegate_path or "") .. SEP .. backend
  local rec = pending[key]
  if not rec then
    rec = new_record()
    pending[key] = rec
  end
  dirty = true

  local method = METHODS[ngx.req.get_method()] or "OTHER"
  local bym = rec.req[method]
  if not bym then
    bym = {}
    rec.req[method] = bym
  end
  local status = ngx.status
  bym[status] = (bym[status] or 0) + 1

  local rt = tonumber(ngx_var.request_time) or 0
  local d = rec.d
  local i = bucket(rt)
  d[i] = d[i] + 1
  rec.ds = rec.ds + rt
  rec.bi = rec.bi + (tonumber(ngx_var.request_length) or 0)
  rec.bo = rec.bo + (tonumber(ngx_var.bytes_sent) or 0)

  local ut = sum_times(ngx_var.upstream_response_time)
  if ut then
    local u = rec.u
    i = bucket(ut)
    u[i] = u[i] + 1
    rec.us = rec.us + ut
  end
  if backend ~= "" then
    observe_endpoints(backend)
  end
end

local warned = false

local function incr(dict, key, v)
  if v == 0 then
    return
  end
  local _, err = dict:incr(key, v, 0)
  if err and not warned then
    warned = true
    ngx_log(ngx_WARN, "metrics: shared dict ", DICT, " cannot take more series (", err, "); some are lost until it is enlarged")
  end
end

-- flush moves this worker's counts into the shared dict.
function _M.flush()
  if not dirty then
    return
  end
  local dict = ngx_shared[DICT]
  local p, e = pending, endpoints
  pending, endpoints, dirty = {}, {}, false
  for key, rec in pairs(p) do
    for method, bys in pairs(rec.req) do
      for status, n in pairs(bys) do
        incr(dict, "r" .. SEP .. key .. SEP .. method .. SEP .. tostring(status), n)
      end
    end
    for i = 1, NBUCKETS + 1 do
      incr(dict, "d" .. SEP .. key .. SEP .. i, rec.d[i])
      incr(dict, "u" .. SEP .. key .. SEP .. i, rec.u[i])
    end
    incr(dict, "ds" .. SEP .. key, rec.ds)
    incr(dict, "us" .. SEP .. key, rec.us)
    incr(dict, "bi" .. SEP .. key, rec.bi)
    incr(dict, "bo" .. SEP .. key, rec.bo)
  end
  for backend, bye in pairs(e) do
    for addr, byo in pairs(bye) do
      for o, n in pairs(byo) do
        incr(dict, "e" .. SEP .. backend .. SEP .. addr .. SEP .. o, n)
      end
    end
  end
end

local function tick(premature)
  if premature then
    return
  end
  _M.flush()
end

function _M.init_worker()
  local ok, err = ngx_timer_every(FLUSH_INTERVAL, tick)
  if not ok then
    ngx_log(ngx_ERR, "metrics: cannot start the flush timer: ", err)
  end
end

-- serve answers the controller with every series, "key\tvalue\n" each.
-- Other workers' last second of counts is still in their tables: a
-- scrape sees it on the next flush.
function _M.serve()
  _M.flush()
  local dict = ngx_shared[DICT]
  local keys = dict:get_keys(0)
  local out, n = {}, 0
  for _, k in pairs(keys) do
    local v = dict:get(k)
    if v then
      n = n + 1
      out[n] = k .. "\t" .. tostring(v) .. "\n"
    end
  end
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(tbl_concat(out))
end

return _M
