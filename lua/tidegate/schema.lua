-- Strict validation of the documents Go pushes to the configuration
-- endpoint. Pure Lua (no ngx API) so it can be unit tested with plain luajit.
-- Every function returns the normalised value, or nil and a reason naming the
-- offending field; nothing here raises an error on outside input.

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local tonumber = tonumber
local floor = math.floor
local str_find = string.find
local str_match = string.match
local str_lower = string.lower
local str_format = string.format
local str_sub = string.sub
local tbl_concat = table.concat

local _M = {}

local MAX_NAME = 512        -- backend name or certificate id
local MAX_HOST = 253        -- DNS name
local MAX_ENDPOINTS = 10000 -- per backend
local MAX_HOSTS = 1000      -- per certificate
local MAX_VERSION = 9007199254740992 -- 2^53: larger numbers lose precision

_M.ALGORITHMS = { round_robin = true }

-- null is the value the JSON decoder uses for `null` (cjson.null); Go
-- encodes nil slices that way. Optional fields treat it as absent.
local null = {}

-- set_null tells the schema which value stands for JSON null.
function _M.set_null(v)
  null = v
end

local function absent(v)
  return v == nil or v == null
end

local function fail(fmt, ...)
  return nil, str_format(fmt, ...)
end

-- is_array reports whether t is a JSON array (keys 1..n); an empty table is
-- accepted because cjson decodes both [] and {} to it.
local function is_array(t)
  if type(t) ~= "table" then
    return false
  end
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then
      return false
    end
  end
  return true
end
_M.is_array = is_array

local function check_keys(t, allowed, where)
  for k in pairs(t) do
    if type(k) ~= "string" or not allowed[k] then
      return fail("%s: unknown key %q", where, tostring(k))
    end
  end
  return true
end

-- check_name accepts a non-empty string without control characters.
local function check_name(s, where)
  if type(s) ~= "string" then
    return fail("%s: must be a string", where)
  end
  if s == "" then
    return fail("%s: must not be empty", where)
  end
  if #s > MAX_NAME then
    return fail("%s: longer than %d bytes", where, MAX_NAME)
  end
  if str_find(s, "[%z\1-\31\127]") then
    return fail("%s: contains a control character", where)
  end
  return s
end
_M.check_name = check_name

local function is_ipv4(s)
  local a, b, c, d = str_match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then
    return false
  end
  for _, p in ipairs({ a, b, c, d }) do
    -- no leading zeros: "010" is octal to some parsers
    if #p > 3 or tonumber(p) > 255 or (#p > 1 and str_sub(p, 1, 1) == "0") then
      return false
    end
  end
  return true
end

local function is_ipv6(s)
  if #s < 2 or #s > 45 or not str_find(s, ":", 1, true) then
    return false
  end
  if str_find(s, "[^0-9a-fA-F:.]") then
    return false
  end
  local groups = 8
  -- an embedded IPv4 tail ("::ffff:1.2.3.4") takes two groups
  local v4 = str_match(s, ":([%d.]+)$")
  if v4 and str_find(v4, ".", 1, true) then
    if not is_ipv4(v4) then
      return false
    end
    s = str_sub(s, 1, #s - #v4) .. "0" -- keep a placeholder group
    groups = 7
  elseif str_find(s, ".", 1, true) then
    return false
  end
  local dbl = str_find(s, "::", 1, true)
  if dbl and str_find(s, "::", dbl + 1, true) then
    return false
  end
  if str_find(s, ":::", 1, true) then
    return false
  end
  local n = 0
  -- split on ":" keeping empty fields
  local i = 1
  local len = #s
  while i <= len + 1 do
    local j = str_find(s, ":", i, true) or (len + 1)
    local field = str_sub(s, i, j - 1)
    if field ~= "" then
      if #field > 4 then
        return false
      end
      n = n + 1
    end
    i = j + 1
  end
  if dbl then
    -- a leading or trailing single ":" is not allowed
    if (str_sub(s, 1, 1) == ":" and str_sub(s, 1, 2) ~= "::")
      or (str_sub(s, -1) == ":" and str_sub(s, -2) ~= "::") then
      return false
    end
    return n < groups
  end
  if str_sub(s, 1, 1) == ":" or str_sub(s, -1) == ":" then
    return false
  end
  return n == groups
end

-- check_address accepts an IPv4 or IPv6 literal (no brackets, no zone) and
-- returns it with the family: 4 or 6.
local function check_address(s, where)
  if type(s) ~= "string" then
    return fail("%s: must be a string", where)
  end
  if is_ipv4(s) then
    return s, 4
  end
  if is_ipv6(s) then
    return str_lower(s), 6
  end
  return fail("%s: %q is not an IPv4 or IPv6 address", where, str_sub(s, 1, 64))
end
_M.check_address = check_address

local function check_int(v, lo, hi, where)
  if type(v) ~= "number" or v ~= floor(v) or v < lo or v > hi then
    return fail("%s: must be an integer from %d to %d", where, lo, hi)
  end
  return v
end

local function check_version(v)
  if type(v) ~= "number" or v ~= floor(v) or v < 1 or v > MAX_VERSION then
    return fail("version: must be a positive integer below 2^53")
  end
  return v
end

-- check_host accepts a DNS name or a one-label wildcard ("*.example.com")
-- and returns it lower-cased.
local function check_host(s, where)
  if type(s) ~= "string" then
    return fail("%s: must be a string", where)
  end
  if s == "" or #s > MAX_HOST then
    return fail("%s: must be 1 to %d bytes", where, MAX_HOST)
  end
  local h = str_lower(s)
  local rest = h
  if str_sub(h, 1, 2) == "*." then
    rest = str_sub(h, 3)
  end
  local i = 1
  local len = #rest
  if len == 0 then
    return fail("%s: %q is not a DNS name", where, s)
  end
  while i <= len do
    local j = str_find(rest, ".", i, true) or (len + 1)
    local label = str_sub(rest, i, j - 1)
    if #label == 0 or #label > 63 or not str_find(label, "^[a-z0-9][a-z0-9-]*$")
      or str_sub(label, -1) == "-" then
      return fail("%s: %q is not a DNS name", where, s)
    end
    i = j + 1
    if j == len then -- trailing dot
      return fail("%s: %q is not a DNS name", where, s)
    end
  end
  return h
end
_M.check_host = check_host

local function check_removed(list)
  if absent(list) then
    return {}
  end
  if not is_array(list) then
    return fail("removed: must be an array of names")
  end
  for i = 1, #list do
    local ok, err = check_name(list[i], str_format("removed[%d]", i - 1))
    if not ok then
      return nil, err
    end
  end
  return list
end

local ENDPOINT_KEYS = { address = true, port = true, weight = true, draining = true }
local BACKEND_KEYS = { name = true, algorithm = true, endpoints = true }
local BACKENDS_DOC_KEYS = { version = true, full = true, backends = true, removed = true }

local function check_endpoint(e, where)
  if type(e) ~= "table" or is_array(e) and #e > 0 then
    return fail("%s: must be an object", where)
  end
  local ok, err = check_keys(e, ENDPOINT_KEYS, where)
  if not ok then
    return nil, err
  end
  local addr, family = check_address(e.address, where .. ".address")
  if not addr then
    return nil, family
  end
  local port
  port, err = check_int(e.port, 1, 65535, where .. ".port")
  if not port then
    return nil, err
  end
  local weight = e.weight
  if absent(weight) then
    weight = 1
  end
  weight, err = check_int(weight, 1, 1000, where .. ".weight")
  if not weight then
    return nil, err
  end
  local draining = e.draining
  if absent(draining) then
    draining = false
  elseif type(draining) ~= "boolean" then
    return fail("%s.draining: must be a boolean", where)
  end
  return { address = addr, family = family, port = port, weight = weight, draining = draining }
end

-- check_backend validates one backend and returns a normalised copy with
-- every field present.
local function check_backend(b, where)
  if type(b) ~= "table" or is_array(b) and #b > 0 then
    return fail("%s: must be an object", where)
  end
  local ok, err = check_keys(b, BACKEND_KEYS, where)
  if not ok then
    return nil, err
  end
  local name
  name, err = check_name(b.name, where .. ".name")
  if not name then
    return nil, err
  end
  where = str_format("backend %q", name)
  local algorithm = b.algorithm
  if absent(algorithm) or algorithm == "" then
    algorithm = "round_robin"
  end
  if type(algorithm) ~= "string" or not _M.ALGORITHMS[algorithm] then
    return fail("%s: unknown algorithm %q", where, tostring(algorithm))
  end
  local eps = b.endpoints
  if absent(eps) then
    eps = {}
  end
  if not is_array(eps) then
    return fail("%s: endpoints must be an array", where)
  end
  if #eps > MAX_ENDPOINTS then
    return fail("%s: more than %d endpoints", where, MAX_ENDPOINTS)
  end
  local out = {}
  for i = 1, #eps do
    local e
    e, err = check_endpoint(eps[i], str_format("%s endpoints[%d]", where, i - 1))
    if not e then
      return nil, err
    end
    out[i] = e
  end
  return { name = name, algorithm = algorithm, endpoints = out }
end
_M.check_backend = check_backend

-- check_backends_doc validates a whole POST /configuration/backends body.
function _M.check_backends_doc(doc)
  if type(doc) ~= "table" or is_array(doc) and #doc > 0 then
    return fail("body: must be a JSON object")
  end
  local ok, err = check_keys(doc, BACKENDS_DOC_KEYS, "body")
  if not ok then
    return nil, err
  end
  local version
  version, err = check_version(doc.version)
  if not version then
    return nil, err
  end
  local full = doc.full
  if absent(full) then
    full = false
  elseif type(full) ~= "boolean" then
    return fail("full: must be a boolean")
  end
  local list = doc.backends
  if absent(list) then
    list = {}
  end
  if not is_array(list) then
    return fail("backends: must be an array")
  end
  local removed
  removed, err = check_removed(doc.removed)
  if not removed then
    return nil, err
  end
  local seen = {}
  local backends = {}
  for i = 1, #list do
    local b
    b, err = check_backend(list[i], str_format("backends[%d]", i - 1))
    if not b then
      return nil, err
    end
    if seen[b.name] then
      return fail("backend %q: listed twice", b.name)
    end
    seen[b.name] = true
    backends[i] = b
  end
  for i = 1, #removed do
    if seen[removed[i]] then
      return fail("backend %q: both pushed and removed", removed[i])
    end
  end
  return { version = version, full = full, backends = backends, removed = removed }
end

local CERT_KEYS = { id = true, hosts = true, cert = true, key = true }
local CERTS_DOC_KEYS = { version = true, full = true, certificates = true, removed = true }

local function check_certificate(c, where)
  if type(c) ~= "table" or is_array(c) and #c > 0 then
    return fail("%s: must be an object", where)
  end
  local ok, err = check_keys(c, CERT_KEYS, where)
  if not ok then
    return nil, err
  end
  local id
  id, err = check_name(c.id, where .. ".id")
  if not id then
    return nil, err
  end
  where = str_format("certificate %q", id)
  local in_hosts = c.hosts
  if absent(in_hosts) then
    in_hosts = {}
  end
  if not is_array(in_hosts) then
    return fail("%s: hosts must be an array", where)
  end
  if #in_hosts > MAX_HOSTS then
    return fail("%s: more than %d hosts", where, MAX_HOSTS)
  end
  local hosts = {}
  local seen = {}
  for i = 1, #in_hosts do
    local h
    h, err = check_host(in_hosts[i], str_format("%s hosts[%d]", where, i - 1))
    if not h then
      return nil, err
    end
    if not seen[h] then
      seen[h] = true
      hosts[#hosts + 1] = h
    end
  end
  for _, f in ipairs({ "cert", "key" }) do
    local v = c[f]
    if type(v) ~= "string" or not str_find(v, "-----BEGIN ", 1, true) then
      return fail("%s: %s must be a PEM string", where, f)
    end
  end
  return { id = id, hosts = hosts, cert = c.cert, key = c.key }
end

-- check_certificates_doc validates a whole POST /configuration/certificates
-- body. PEM contents are checked by the caller, which has ngx.ssl.
function _M.check_certificates_doc(doc)
  if type(doc) ~= "table" or is_array(doc) and #doc > 0 then
    return fail("body: must be a JSON object")
  end
  local ok, err = check_keys(doc, CERTS_DOC_KEYS, "body")
  if not ok then
    return nil, err
  end
  local version
  version, err = check_version(doc.version)
  if not version then
    return nil, err
  end
  local full = doc.full
  if absent(full) then
    full = false
  elseif type(full) ~= "boolean" then
    return fail("full: must be a boolean")
  end
  local list = doc.certificates
  if absent(list) then
    list = {}
  end
  if not is_array(list) then
    return fail("certificates: must be an array")
  end
  local removed
  removed, err = check_removed(doc.removed)
  if not removed then
    return nil, err
  end
  local seen = {}
  local certs = {}
  for i = 1, #list do
    local c
    c, err = check_certificate(list[i], str_format("certificates[%d]", i - 1))
    if not c then
      return nil, err
    end
    if seen[c.id] then
      return fail("certificate %q: listed twice", c.id)
    end
    seen[c.id] = true
    certs[i] = c
  end
  for i = 1, #removed do
    if seen[removed[i]] then
      return fail("certificate %q: both pushed and removed", removed[i])
    end
  end
  return { version = version, full = full, certificates = certs, removed = removed }
end

-- encode_backend renders a normalised backend as canonical JSON (fixed key
-- order), so that equal backends give equal strings and unchanged backends
-- are not rebuilt. Names are escaped by the caller-provided quote function
-- (cjson.encode of a string).
function _M.encode_backend(b, quote)
  local parts = {}
  local eps = b.endpoints
  for i = 1, #eps do
    local e = eps[i]
    parts[i] = str_format('{"address":%s,"port":%d,"weight":%d,"draining":%s}',
      quote(e.address), e.port, e.weight, e.draining and "true" or "false")
  end
  return str_format('{"name":%s,"algorithm":%s,"endpoints":[%s]}',
    quote(b.name), quote(b.algorithm), tbl_concat(parts, ","))
end

return _M
