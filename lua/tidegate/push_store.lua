-- What the backends and certificates writers (tidegate.backends_writer,
-- tidegate.certificates_writer) share: the JSON codec of pushes, the push
-- lock, the version check, checked writes to a shared dict, name sets and
-- the pacing of a big push.

local ngx = ngx
local ngx_sleep = ngx.sleep
local pairs = pairs
local str_format = string.format
local str_gmatch = string.gmatch
local tbl_concat = table.concat
local tbl_sort = table.sort
local os_clock = os.clock

-- One codec for every push: numbers like NaN are refused, and the schema
-- reads JSON null as this codec decodes it.
local cjson = require("cjson.safe").new()
cjson.decode_invalid_numbers(false)
local schema = require("tidegate.schema")
schema.set_null(cjson.null)
local store = require("tidegate.store")

local _M = {}

_M.cjson = cjson

local LOCK_TTL = 10        -- seconds; a crashed worker cannot hold it longer
local LOCK_WAIT = 5        -- seconds
local SLICE = 0.002        -- seconds of CPU between two yields of a big push

-- lock takes the push lock of dict (one push at a time per dict, across
-- workers), waiting up to LOCK_WAIT seconds for another push.
local function lock(dict)
  local waited = 0
  while true do
    local ok, err = dict:add(store.LOCK, true, LOCK_TTL)
    if ok then
      return true
    end
    if err ~= "exists" then
      return nil, err
    end
    if waited >= LOCK_WAIT then
      return nil, "timed out waiting for another push"
    end
    ngx_sleep(0.001)
    waited = waited + 0.001
  end
end

local function unlock(dict)
  dict:delete(store.LOCK)
end

-- split turns a "\n"-separated list of names into a set.
local function split(s)
  local set = {}
  if s then
    for name in str_gmatch(s, "[^\n]+") do
      set[name] = true
    end
  end
  return set
end

-- join turns a set of names into the sorted "\n"-separated list.
local function join(set)
  local list = {}
  for name in pairs(set) do
    list[#list + 1] = name
  end
  tbl_sort(list)
  return tbl_concat(list, "\n")
end

-- ConfigMap sizes of the dicts (ingress-nginx's lua-shared-dicts names).
local DICT_SETTING = {
  [store.BACKENDS_DICT] = "configuration_data",
  [store.CERTIFICATES_DICT] = "certificate_data",
}

-- store_error describes a failed write; a full dict names the setting that
-- sizes it.
local function store_error(name, err)
  if err == "no memory" then
    return str_format("shared dict %s is full (%.0f MiB): raise %s in the ConfigMap key lua-shared-dicts",
      name, ngx.shared[name]:capacity() / 1048576, DICT_SETTING[name])
  end
  return "shared dict " .. name .. ": " .. err
end

-- writer wraps safe_set (which never evicts other keys: an evicted backend
-- would silently vanish) and remembers the first failure.
local function writer(dict)
  local w = { err = nil }
  function w.set(key, value)
    if w.err then
      return
    end
    local ok, err = dict:safe_set(key, value)
    if not ok then
      w.err = err
    end
  end
  function w.delete(key)
    dict:delete(key)
  end
  return w
end

-- Versions are tidegate's clock in milliseconds (about 2^40.7 in 2026), or
-- one more than the stored version. A version above CLOCK_VERSIONS (2^50,
-- 35,000 years from now) reads no clock: it is refused unless it is the
-- stored version + 1. So no push can wedge the ones after it: whatever
-- version got stored (a stray push, a bug), a client reads it in the
-- refusal and moves on with the stored version + 1; and versions stay far
-- below 2^53, where a Lua number stops counting in ones (2^53 + 1 == 2^53:
-- a push at 2^53 used to leave no newer version to push).
local CLOCK_VERSIONS = 2 ^ 50

-- check_version returns true, or nil, the status, the reason and the
-- stored version. A delta onto an empty store (nginx was restarted, the
-- shared dicts are new) would leave everything else missing: it needs a
-- full push first.
local function check_version(dict, doc)
  local stored = dict:get(store.VERSION) or 0
  local v = doc.version
  if v <= stored then
    return nil, 409, str_format("version %.0f is not newer than the stored version %.0f", v, stored), stored
  end
  if v > CLOCK_VERSIONS and v ~= stored + 1 then
    return nil, 400, str_format("version %.0f is above 2^50, where only the stored version + 1 (%.0f) is taken",
      v, stored + 1), stored
  end
  if stored == 0 and not doc.full then
    return nil, 409, "nothing stored yet (nginx started anew): the first push must be full", stored
  end
  return true
end

-- pause lets the worker serve other requests. Not ngx.sleep(0): without
-- OpenResty's nginx patches that is a 0 ms timer, which nginx runs in the
-- same pass over expired timers when it is set from a timer (as when the
-- handler was resumed from an earlier sleep), without a look at the
-- network in between.
local function pause()
  ngx_sleep(0.001)
end

-- pacer returns a function that yields once SLICE seconds of CPU went by
-- since the last yield: cheap to call after every backend.
local function pacer()
  local t0 = os_clock()
  return function()
    local t = os_clock()
    if t - t0 >= SLICE then
      pause()
      t0 = os_clock()
    end
  end
end

local function quote(s)
  return cjson.encode(s)
end

-- rejected_member is one member of a push answer's "rejected" object: an
-- item nginx left out, and why.
local function rejected_member(name, reason)
  return quote(name) .. ":" .. quote(reason)
end
_M.lock = lock
_M.unlock = unlock
_M.split = split
_M.join = join
_M.store_error = store_error
_M.writer = writer
_M.check_version = check_version
_M.pacer = pacer
_M.quote = quote
_M.rejected_member = rejected_member

return _M
