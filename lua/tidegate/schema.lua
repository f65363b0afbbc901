-- Strict validation of the documents Go pushes to the configuration
-- endpoint. Pure Lua (no ngx API) so it can be unit tested with plain luajit.
-- Every function returns the normalised value, or nil and a reason naming the
-- offending field; nothing here raises an error on outside input.

local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local floor = math.floor
local str_find = string.find
local str_match = string.match
local str_lower = string.lower
local str_format = string.format
local str_sub = string.sub
local str_byte = string.byte
local tbl_concat = table.concat

local _M = {}

local MAX_NAME = 512        -- backend name or certificate id
local MAX_HOST = 253        -- DNS name
local MAX_ENDPOINTS = 100000 -- per backend (model.MaxEndpoints)
local MAX_HOSTS = 100000    -- per certificate (model.MaxCertificateHosts)
local MAX_VERSION = 9007199254740991 -- 2^53 - 1: above it numbers skip integers

_M.ALGORITHMS = { round_robin = true, ewma = true, chash = true }
-- DEFAULT_SNI is the host of the default certificate (--default-ssl-
-- certificate; model.DefaultSNI): the lookup's last resort.
_M.DEFAULT_SNI = "*"
_M.AFFINITY_MODES = { balanced = true, persistent = true }
_M.SAMESITE = { None = true, Lax = true, Strict = true }

local MAX_CANARIES = 16     -- per backend (model.MaxCanaries)
local MAX_SECONDS = 2147483647
local MAX_MS = 86400000     -- one day

-- Passive outlier ejection when a backend does not say (see
-- tidegate.ejection): on for failed tries (connect errors and timeouts),
-- off for 5xx. The same as model.DefaultEjection (TestEjectionDefaultsMatchLua).
_M.EJECTION_DEFAULTS = {
  failures = 5,
  failure_window_ms = 10000,
  consecutive_5xx = 0,
  base_ejection_ms = 10000,
  max_ejection_ms = 300000,
  slow_start_ms = 10000,
  max_ejected_percent = 50,
}

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

-- is_ipv4 accepts four decimal octets 0-255 without leading zeros ("010"
-- is octal to some parsers). Byte by byte: it runs for every endpoint of a
-- push, and LuaJIT compiles this loop but not a pattern match.
local function is_ipv4(s)
  local n = #s
  if n < 7 or n > 15 then
    return false
  end
  local dots, v, digits, first = 0, 0, 0, 0
  for i = 1, n do
    local c = str_byte(s, i)
    if c == 46 then -- "."
      if digits == 0 or v > 255 or (digits > 1 and first == 48) then
        return false
      end
      dots = dots + 1
      v, digits = 0, 0
    elseif c >= 48 and c <= 57 then
      if digits == 0 then
        first = c
      end
      digits = digits + 1
      if digits > 3 then
        return false
      end
      v = v * 10 + c - 48
    else
      return false
    end
  end
  return dots == 3 and digits > 0 and v <= 255 and not (digits > 1 and first == 48)
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
    return fail("version: must be an integer from 1 to 2^53 - 1")
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
local BACKEND_KEYS = { name = true, algorithm = true, endpoints = true,
  affinity = true, canaries = true, ejection = true }
local AFFINITY_KEYS = { mode = true, name = true, path = true, domain = true, samesite = true,
  secure = true, max_age = true, expires = true, change_on_failure = true }
local CANARY_KEYS = { backend = true, header = true, header_value = true, header_pattern = true,
  cookie = true, weight = true, weight_total = true }
local EJECTION_KEYS = { failures = true, failure_window_ms = true, consecutive_5xx = true, base_ejection_ms = true,
  max_ejection_ms = true, slow_start_ms = true, max_ejected_percent = true }
local BACKENDS_DOC_KEYS = { version = true, full = true, backends = true, removed = true }

-- check_endpoint validates endpoint i of a backend. The field names of
-- error messages are built only on failure: a 10,000-endpoint push must not
-- format 40,000 strings that nobody reads.
-- (No closure for them: creating one per endpoint would keep LuaJIT from
-- compiling the loop.)
local function ep_where(bwhere, i, field)
  return str_format("%s endpoints[%d]%s", bwhere, i - 1, field)
end

local function check_endpoint(e, bwhere, i)
  if type(e) ~= "table" or is_array(e) and #e > 0 then
    return fail("%s: must be an object", ep_where(bwhere, i, ""))
  end
  for k in pairs(e) do
    if not ENDPOINT_KEYS[k] then
      return check_keys(e, ENDPOINT_KEYS, ep_where(bwhere, i, ""))
    end
  end
  local addr, family = e.address, 4
  if type(addr) ~= "string" or not is_ipv4(addr) then
    addr, family = check_address(addr, ep_where(bwhere, i, ".address"))
    if not addr then
      return nil, family
    end
  end
  local port = e.port
  if type(port) ~= "number" or port ~= floor(port) or port < 1 or port > 65535 then
    return check_int(port, 1, 65535, ep_where(bwhere, i, ".port"))
  end
  local weight = e.weight
  if absent(weight) then
    weight = 1
  elseif type(weight) ~= "number" or weight ~= floor(weight) or weight < 1 or weight > 1000 then
    return check_int(weight, 1, 1000, ep_where(bwhere, i, ".weight"))
  end
  local draining = e.draining
  if absent(draining) then
    draining = false
  elseif type(draining) ~= "boolean" then
    return fail("%s: must be a boolean", ep_where(bwhere, i, ".draining"))
  end
  return { address = addr, family = family, port = port, weight = weight, draining = draining }
end

local function is_object(t)
  return type(t) == "table" and not (is_array(t) and #t > 0)
end

local function opt_bool(v, where)
  if absent(v) then
    return false
  end
  if type(v) ~= "boolean" then
    return fail("%s: must be a boolean", where)
  end
  return v
end

-- opt_string accepts an absent value (as "") or a string of at most max
-- bytes whose every byte is in the Lua character class chars.
local function opt_string(v, max, chars, where)
  if absent(v) then
    return ""
  end
  if type(v) ~= "string" then
    return fail("%s: must be a string", where)
  end
  if #v > max then
    return fail("%s: longer than %d bytes", where, max)
  end
  if str_find(v, "[^" .. chars .. "]") then
    return fail("%s: %q has a character that is not allowed", where, str_sub(v, 1, 64))
  end
  return v
end

-- RFC 6265 token characters (cookie and header names)
local TOKEN = "%w!#$%%&'*+%-.^_`|~"
-- cookie attribute values: printable ASCII except ';' and ','
local ATTR = "\33-\43\45-\58\60-\126"

local function check_affinity(a, where)
  if not is_object(a) then
    return fail("%s: must be an object", where)
  end
  local ok, err = check_keys(a, AFFINITY_KEYS, where)
  if not ok then
    return nil, err
  end
  local out = {}
  local mode = a.mode
  if absent(mode) or mode == "" then
    mode = "balanced"
  end
  if not _M.AFFINITY_MODES[mode] then
    return fail("%s.mode: must be balanced or persistent", where)
  end
  out.mode = mode
  out.name, err = opt_string(a.name, 64, TOKEN, where .. ".name")
  if not out.name then
    return nil, err
  end
  if out.name == "" then
    out.name = "INGRESSCOOKIE"
  end
  out.path, err = opt_string(a.path, 256, ATTR, where .. ".path")
  if not out.path then
    return nil, err
  end
  out.domain, err = opt_string(a.domain, 253, "%w%-.", where .. ".domain")
  if not out.domain then
    return nil, err
  end
  out.samesite, err = opt_string(a.samesite, 6, "%a", where .. ".samesite")
  if not out.samesite then
    return nil, err
  end
  if out.samesite ~= "" and not _M.SAMESITE[out.samesite] then
    return fail("%s.samesite: must be None, Lax or Strict", where)
  end
  for _, f in ipairs({ "secure", "change_on_failure" }) do
    out[f], err = opt_bool(a[f], where .. "." .. f)
    if out[f] == nil then
      return nil, err
    end
  end
  for _, f in ipairs({ "max_age", "expires" }) do
    local v = a[f]
    if absent(v) then
      v = 0
    end
    out[f], err = check_int(v, 0, MAX_SECONDS, where .. "." .. f)
    if not out[f] then
      return nil, err
    end
  end
  return out
end

local function check_canary(c, where)
  if not is_object(c) then
    return fail("%s: must be an object", where)
  end
  local ok, err = check_keys(c, CANARY_KEYS, where)
  if not ok then
    return nil, err
  end
  local out = {}
  out.backend, err = check_name(c.backend, where .. ".backend")
  if not out.backend then
    return nil, err
  end
  out.header, err = opt_string(c.header, 128, TOKEN, where .. ".header")
  if not out.header then
    return nil, err
  end
  out.header_value, err = opt_string(c.header_value, 1024, "\32-\126", where .. ".header_value")
  if not out.header_value then
    return nil, err
  end
  out.header_pattern, err = opt_string(c.header_pattern, 1024, "\32-\126", where .. ".header_pattern")
  if not out.header_pattern then
    return nil, err
  end
  if out.header_value ~= "" and out.header_pattern ~= "" then
    return fail("%s: header_value and header_pattern are exclusive", where)
  end
  out.cookie, err = opt_string(c.cookie, 128, TOKEN, where .. ".cookie")
  if not out.cookie then
    return nil, err
  end
  local total = c.weight_total
  if absent(total) or total == 0 then
    total = 100
  end
  out.weight_total, err = check_int(total, 1, 1000000, where .. ".weight_total")
  if not out.weight_total then
    return nil, err
  end
  local weight = c.weight
  if absent(weight) then
    weight = 0
  end
  out.weight, err = check_int(weight, 0, out.weight_total, where .. ".weight")
  if not out.weight then
    return nil, err
  end
  return out
end

local function check_ejection(e, where)
  if not is_object(e) then
    return fail("%s: must be an object", where)
  end
  local ok, err = check_keys(e, EJECTION_KEYS, where)
  if not ok then
    return nil, err
  end
  local limits = {
    failures = { 0, 1000 },
    failure_window_ms = { 1, MAX_MS },
    consecutive_5xx = { 0, 1000 },
    base_ejection_ms = { 1, MAX_MS },
    max_ejection_ms = { 1, MAX_MS },
    slow_start_ms = { 0, MAX_MS },
    max_ejected_percent = { 0, 100 },
  }
  local out = {}
  for k, lim in pairs(limits) do
    local v = e[k]
    if absent(v) then
      v = _M.EJECTION_DEFAULTS[k]
    end
    out[k], err = check_int(v, lim[1], lim[2], where .. "." .. k)
    if not out[k] then
      return nil, err
    end
  end
  if out.max_ejection_ms < out.base_ejection_ms then
    out.max_ejection_ms = out.base_ejection_ms
  end
  return out
end

-- check_backend validates one backend and returns a normalised copy with
-- every field present.
local function check_backend(b, where, yield)
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
    if yield and i % 1000 == 0 then
      yield()
    end
    e, err = check_endpoint(eps[i], where, i)
    if not e then
      return nil, err
    end
    out[i] = e
  end
  local res = { name = name, algorithm = algorithm, endpoints = out, canaries = {} }
  if not absent(b.affinity) then
    res.affinity, err = check_affinity(b.affinity, where .. " affinity")
    if not res.affinity then
      return nil, err
    end
  end
  if not absent(b.ejection) then
    res.ejection, err = check_ejection(b.ejection, where .. " ejection")
    if not res.ejection then
      return nil, err
    end
  end
  local cs = b.canaries
  if absent(cs) then
    cs = {}
  end
  if not is_array(cs) then
    return fail("%s: canaries must be an array", where)
  end
  if #cs > MAX_CANARIES then
    return fail("%s: more than %d canaries", where, MAX_CANARIES)
  end
  local seen = {}
  for i = 1, #cs do
    local c
    c, err = check_canary(cs[i], str_format("%s canaries[%d]", where, i - 1))
    if not c then
      return nil, err
    end
    if c.backend == name then
      return fail("%s: a backend cannot be its own canary", where)
    end
    if seen[c.backend] then
      return fail("%s: canary %q listed twice", where, c.backend)
    end
    seen[c.backend] = true
    res.canaries[i] = c
  end
  return res
end
_M.check_backend = check_backend

-- check_doc validates what both push bodies share: a JSON object with only
-- the keys in allowed, an increasing version, "full", the list under
-- list_key and "removed". It returns version, full, list, removed, or nil
-- and the reason.
local function check_doc(doc, allowed, list_key)
  if type(doc) ~= "table" or is_array(doc) and #doc > 0 then
    return fail("body: must be a JSON object")
  end
  local ok, err = check_keys(doc, allowed, "body")
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
  local list = doc[list_key]
  if absent(list) then
    list = {}
  end
  if not is_array(list) then
    return fail(list_key .. ": must be an array")
  end
  local removed
  removed, err = check_removed(doc.removed)
  if not removed then
    return nil, err
  end
  return version, full, list, removed
end

-- check_backends_doc validates a whole POST /configuration/backends body.
-- yield, if given, is called after every backend and every thousand
-- endpoints (nginx passes one that lets the worker serve other requests
-- meanwhile once it has worked for a while).
function _M.check_backends_doc(doc, yield)
  local version, full, list, removed = check_doc(doc, BACKENDS_DOC_KEYS, "backends")
  if not version then
    return nil, full
  end
  local err
  local seen = {}
  local backends = {}
  for i = 1, #list do
    local b
    b, err = check_backend(list[i], str_format("backends[%d]", i - 1), yield)
    if not b then
      return nil, err
    end
    if yield then
      yield()
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

local BACKENDS_HEADER_KEYS = { version = true, full = true, removed = true }

-- check_backends_header validates the first line of a push in the line
-- format: the document's fields without "backends" (one backend per
-- following line, each checked with check_backend).
function _M.check_backends_header(doc)
  local version, full, _, removed = check_doc(doc, BACKENDS_HEADER_KEYS, "backends")
  if not version then
    return nil, full
  end
  return { version = version, full = full, removed = removed }
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
    local h = in_hosts[i]
    if h ~= _M.DEFAULT_SNI then -- "*": the default certificate
      h, err = check_host(h, str_format("%s hosts[%d]", where, i - 1))
      if not h then
        return nil, err
      end
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
  local version, full, list, removed = check_doc(doc, CERTS_DOC_KEYS, "certificates")
  if not version then
    return nil, full
  end
  local err
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
function _M.encode_backend(b, quote, yield)
  local parts = {}
  local eps = b.endpoints
  for i = 1, #eps do
    if yield and i % 1000 == 0 then
      yield()
    end
    local e = eps[i]
    -- addresses are validated IP literals: nothing to escape
    parts[i] = '{"address":"' .. e.address .. '","port":' .. e.port .. ',"weight":' .. e.weight
      .. (e.draining and ',"draining":true}' or ',"draining":false}')
  end
  local extra = {}
  local a = b.affinity
  if a then
    extra[#extra + 1] = str_format(',"affinity":{"mode":%s,"name":%s,"path":%s,"domain":%s,'
      .. '"samesite":%s,"secure":%s,"max_age":%d,"expires":%d,"change_on_failure":%s}',
      quote(a.mode), quote(a.name), quote(a.path), quote(a.domain), quote(a.samesite),
      tostring(a.secure), a.max_age, a.expires, tostring(a.change_on_failure))
  end
  local cs = b.canaries
  if cs and #cs > 0 then
    local list = {}
    for i = 1, #cs do
      local c = cs[i]
      list[i] = str_format('{"backend":%s,"header":%s,"header_value":%s,"header_pattern":%s,'
        .. '"cookie":%s,"weight":%d,"weight_total":%d}',
        quote(c.backend), quote(c.header), quote(c.header_value), quote(c.header_pattern),
        quote(c.cookie), c.weight, c.weight_total)
    end
    extra[#extra + 1] = ',"canaries":[' .. tbl_concat(list, ",") .. "]"
  end
  local e = b.ejection
  if e then
    extra[#extra + 1] = str_format(',"ejection":{"failures":%d,"failure_window_ms":%d,"consecutive_5xx":%d,'
      .. '"base_ejection_ms":%d,"max_ejection_ms":%d,"slow_start_ms":%d,"max_ejected_percent":%d}',
      e.failures, e.failure_window_ms, e.consecutive_5xx, e.base_ejection_ms, e.max_ejection_ms,
      e.slow_start_ms, e.max_ejected_percent)
  end
  return str_format('{"name":%s,"algorithm":%s,"endpoints":[%s]%s}',
    quote(b.name), quote(b.algorithm), tbl_concat(parts, ","), tbl_concat(extra))
end

return _M
