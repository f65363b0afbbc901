-- The push endpoints, served only on the control unix socket:
--   POST /configuration/backends      -> _M.backends()
--   POST /configuration/certificates  -> _M.certificates()
-- Bodies are validated strictly (tidegate.schema), versions only go up, and
-- the shared dicts are written in an order that lets workers read them
-- without a lock: data first, the global version last (tidegate.store).

local ngx = ngx
local ngx_req = ngx.req
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local ngx_sleep = ngx.sleep
local pairs = pairs
local tostring = tostring
local ipairs = ipairs
local str_format = string.format
local str_gmatch = string.gmatch
local tbl_concat = table.concat
local tbl_sort = table.sort
local re_find = ngx.re.find

local cjson = require("cjson.safe").new()
cjson.decode_invalid_numbers(false)
local schema = require("tidegate.schema")
schema.set_null(cjson.null)
local store = require("tidegate.store")
local pem = require("tidegate.pem")

local backends_dict = ngx.shared[store.BACKENDS_DICT]
local certificates_dict = ngx.shared[store.CERTIFICATES_DICT]

local _M = {}

local LOCK_TTL = 10        -- seconds; a crashed worker cannot hold it longer
local LOCK_WAIT = 5        -- seconds

local function respond(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.print(body, "\n")
  return ngx.exit(ngx.HTTP_OK)
end

-- fail answers {"error": reason}, plus the stored version on a conflict
-- (and "full_required" when nothing is stored: the push must be full).
local function fail(status, reason, stored)
  if status >= 500 then
    ngx_log(ngx_ERR, "tidegate: configuration: ", reason)
  end
  if stored == 0 then
    return respond(status, str_format('{"error":%s,"version":0,"full_required":true}', cjson.encode(reason)))
  end
  if stored then
    -- %.0f: cjson would print large versions with 14 significant digits
    return respond(status, str_format('{"error":%s,"version":%.0f}', cjson.encode(reason), stored))
  end
  return respond(status, cjson.encode({ error = reason }))
end

-- read_document returns the decoded JSON body of a POST, or answers the
-- request itself and returns nil.
local function read_document()
  if ngx_req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    fail(405, "method not allowed: use POST")
    return nil
  end
  ngx_req.read_body()
  local body = ngx_req.get_body_data()
  if not body then
    if ngx_req.get_body_file() then
      -- client_body_buffer_size is set to client_max_body_size, so this
      -- only happens with a misconfigured location
      fail(413, "request body larger than client_body_buffer_size")
    else
      fail(400, "empty request body")
    end
    return nil
  end
  local doc, err = cjson.decode(body)
  if doc == nil then
    fail(400, "invalid JSON: " .. tostring(err))
    return nil
  end
  return doc
end

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

local function split(s)
  local set = {}
  if s then
    for name in str_gmatch(s, "[^\n]+") do
      set[name] = true
    end
  end
  return set
end

local function join(set)
  local list = {}
  for name in pairs(set) do
    list[#list + 1] = name
  end
  tbl_sort(list)
  return tbl_concat(list, "\n")
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

-- check_version returns true, or nil, the stored version and the reason.
-- A delta onto an empty store (nginx was restarted, the shared dicts are
-- new) would leave everything else missing: it needs a full push first.
local function check_version(dict, doc)
  local stored = dict:get(store.VERSION) or 0
  if doc.version <= stored then
    return nil, stored, str_format("version %.0f is not newer than the stored version %.0f", doc.version, stored)
  end
  if stored == 0 and not doc.full then
    return nil, stored, "nothing stored yet (nginx started anew): the first push must be full"
  end
  return true
end

-- pause lets the worker serve other requests in the middle of a big push.
local function pause()
  ngx_sleep(0)
end

local function quote(s)
  return cjson.encode(s)
end

local function apply_backends(doc)
  local dict = backends_dict
  local ok, stored, reason = check_version(dict, doc)
  if not ok then
    return 409, reason, stored
  end
  local version = doc.version
  local current = split(dict:get(store.NAMES))
  local next_names = {}
  if not doc.full then
    for name in pairs(current) do
      next_names[name] = true
    end
  end
  local w = writer(dict)
  local changed = 0
  for _, b in ipairs(doc.backends) do
    local json = schema.encode_backend(b, quote, pause)
    local key = store.backend_key(b.name)
    if not current[b.name] or dict:get(key) ~= json then
      w.set(key, json)
      w.set(store.backend_version_key(b.name), version)
      changed = changed + 1
    end
    next_names[b.name] = true
  end
  for _, name in ipairs(doc.removed) do
    next_names[name] = nil
  end
  if w.err then
    return 500, "shared dict " .. store.BACKENDS_DICT .. ": " .. w.err
  end
  w.set(store.NAMES, join(next_names))
  w.set(store.VERSION, version)
  if w.err then
    return 500, "shared dict " .. store.BACKENDS_DICT .. ": " .. w.err
  end
  -- workers drop what is not in the names list; now free the memory
  for name in pairs(current) do
    if not next_names[name] then
      w.delete(store.backend_key(name))
      w.delete(store.backend_version_key(name))
      changed = changed + 1
    end
  end
  return 200, changed
end

-- backends handles POST /configuration/backends.
function _M.backends()
  local doc = read_document()
  if doc == nil then
    return
  end
  local err
  doc, err = schema.check_backends_doc(doc, pause)
  if not doc then
    return fail(400, err)
  end
  for _, b in ipairs(doc.backends) do
    for _, c in ipairs(b.canaries) do
      if c.header_pattern ~= "" then
        local _, _, rerr = re_find("", c.header_pattern, "jo")
        if rerr then
          return fail(400, str_format("backend %q canary %q: header_pattern: %s", b.name, c.backend, rerr))
        end
      end
    end
  end
  local ok
  ok, err = lock(backends_dict)
  if not ok then
    return fail(503, "lock: " .. err)
  end
  local status, res, stored = apply_backends(doc)
  unlock(backends_dict)
  if status ~= 200 then
    return fail(status, res, stored)
  end
  return respond(200, str_format('{"version":%.0f,"changed":%d}', doc.version, res))
end

local function apply_certificates(doc)
  local dict = certificates_dict
  local ok, stored, reason = check_version(dict, doc)
  if not ok then
    return 409, reason, stored
  end
  local current = split(dict:get(store.NAMES))
  -- hosts of every certificate after this push
  local hosts = {}
  local old_sni = {}
  for id in pairs(current) do
    local hs = split(dict:get(store.hosts_key(id)))
    for h in pairs(hs) do
      old_sni[h] = true
    end
    if not doc.full then
      hosts[id] = hs
    end
  end
  for _, c in ipairs(doc.certificates) do
    local hs = {}
    for _, h in ipairs(c.hosts) do
      hs[h] = true
    end
    hosts[c.id] = hs
  end
  for _, id in ipairs(doc.removed) do
    hosts[id] = nil
  end
  -- one id per SNI name: the smallest id wins a conflict, deterministically
  local ids = {}
  for id in pairs(hosts) do
    ids[#ids + 1] = id
  end
  tbl_sort(ids)
  local sni = {}
  for _, id in ipairs(ids) do
    for h in pairs(hosts[id]) do
      if sni[h] then
        ngx_log(ngx_WARN, "tidegate: host ", h, " is claimed by certificates ", sni[h],
          " and ", id, "; serving ", sni[h])
      else
        sni[h] = id
      end
    end
  end

  local w = writer(dict)
  local changed = 0
  for _, c in ipairs(doc.certificates) do
    local hosts_str = join(hosts[c.id])
    if not current[c.id]
      or dict:get(store.cert_key(c.id)) ~= c.cert
      or dict:get(store.key_key(c.id)) ~= c.key
      or dict:get(store.hosts_key(c.id)) ~= hosts_str then
      w.set(store.cert_key(c.id), c.cert)
      w.set(store.key_key(c.id), c.key)
      w.set(store.hosts_key(c.id), hosts_str)
      changed = changed + 1
    end
  end
  for h, id in pairs(sni) do
    w.set(store.sni_key(h), id)
  end
  if w.err then
    return 500, "shared dict " .. store.CERTIFICATES_DICT .. ": " .. w.err
  end
  for h in pairs(old_sni) do
    if not sni[h] then
      w.delete(store.sni_key(h))
    end
  end
  local names = {}
  for id in pairs(hosts) do
    names[id] = true
  end
  for id in pairs(current) do
    if not names[id] then
      w.delete(store.cert_key(id))
      w.delete(store.key_key(id))
      w.delete(store.hosts_key(id))
      changed = changed + 1
    end
  end
  w.set(store.NAMES, join(names))
  w.set(store.VERSION, doc.version)
  if w.err then
    return 500, "shared dict " .. store.CERTIFICATES_DICT .. ": " .. w.err
  end
  return 200, changed
end

-- certificates handles POST /configuration/certificates.
function _M.certificates()
  local doc = read_document()
  if doc == nil then
    return
  end
  local err
  doc, err = schema.check_certificates_doc(doc)
  if not doc then
    return fail(400, err)
  end
  for _, c in ipairs(doc.certificates) do
    local ok
    ok, err = pem.check_pair(c.cert, c.key)
    if not ok then
      return fail(400, str_format("certificate %q: %s", c.id, err))
    end
  end
  local ok
  ok, err = lock(certificates_dict)
  if not ok then
    return fail(503, "lock: " .. err)
  end
  local status, res, stored = apply_certificates(doc)
  unlock(certificates_dict)
  if status ~= 200 then
    return fail(status, res, stored)
  end
  return respond(200, str_format('{"version":%.0f,"changed":%d}', doc.version, res))
end

return _M
