-- Passive outlier ejection, per worker: a peer that failed too many tries
-- (counted by the balancer when nginx retries) or answered too many 5xx
-- in a row (counted by the log phase) is taken out of rotation for a
-- back-off, and comes back with a slow start.
--
-- The counters live in each peer's `st` table, which tidegate.backends_cache
-- keeps across rebuilds of its backend; the settings in each backend
-- object's `ejection` table (settings(), from the pushed backend or
-- schema.EJECTION_DEFAULTS).

local ngx = ngx
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_WARN = ngx.WARN
local ipairs = ipairs
local tonumber = tonumber
local random = math.random
local floor = math.floor
local str_match = string.match

local _M = {}

-- settings turns a backend's checked ejection object (schema.lua; ms)
-- into what the balancer reads on every try (seconds).
function _M.settings(ej)
  return {
    failures = ej.failures,
    window = ej.failure_window_ms / 1000,
    failures_5xx = ej.consecutive_5xx,
    base = ej.base_ejection_ms / 1000,
    max = ej.max_ejection_ms / 1000,
    slow_start = ej.slow_start_ms / 1000,
    percent = ej.max_ejected_percent,
  }
end

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
function _M.failed_try(b, addrs)
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

-- answered counts a try that got a response header with status (the log
-- phase): 5xx answers in a row eject the peer when the backend says so.
function _M.answered(b, p, status, now)
  local ej = b.ejection
  if ej.failures_5xx == 0 then
    return
  end
  local st = p.st
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

return _M
