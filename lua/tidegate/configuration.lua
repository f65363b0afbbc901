-- The push endpoints, served only on the control unix socket:
--   POST /configuration/backends      -> _M.backends()
--   POST /configuration/certificates  -> _M.certificates()
-- Bodies are validated strictly (tidegate.schema), versions only go up, and
-- the shared dicts are written in an order that lets workers read them
-- without a lock: data first, the global version last (tidegate.store).
--
-- Backends come in one of two formats:
--   application/json      one document {"version","full","backends","removed"}
--   application/x-ndjson  the document without "backends" on the first line,
--                         then one backend object per line (what Go sends)
-- In the line format a line whose bytes are identical to the line a stored
-- backend was pushed as (same digest) is that backend unchanged: it was
-- validated then, so it is neither decoded nor checked again. Every other
-- line is decoded, checked and stored one at a time, and the handler yields
-- (pause) every SLICE seconds of CPU so that the worker keeps serving
-- requests during a big push. All of it runs under the push lock; workers
-- act only on the global version, which is written last.

local ngx = ngx
local ngx_req = ngx.req
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local ngx_sleep = ngx.sleep
local pairs = pairs
local tostring = tostring
local tonumber = tonumber
local ipairs = ipairs
local str_format = string.format
local str_gmatch = string.gmatch
local tbl_concat = table.concat
local tbl_sort = table.sort
local re_find = ngx.re.find
local str_find = string.find
local str_sub = string.sub
local os_clock = os.clock
local sha1_bin = ngx.sha1_bin
local encode_base64 = ngx.encode_base64

local cjson = require("cjson.safe").new()
cjson.decode_invalid_numbers(false)
local schema = require("tidegate.schema")
schema.set_null(cjson.null)
local store = require("tidegate.store")
local pem = require("tidegate.pem")

local ffi = require("ffi")
pcall(ffi.cdef, "int malloc_trim(size_t pad);")

local backends_dict = ngx.shared[store.BACKENDS_DICT]
local certificates_dict = ngx.shared[store.CERTIFICATES_DICT]

local _M = {}

local LOCK_TTL = 10        -- seconds; a crashed worker cannot hold it longer
local LOCK_WAIT = 5        -- seconds
local SLICE = 0.002        -- seconds of CPU between two yields of a big push
local WRITES = 256         -- shared-dict writes between two yields

local function respond(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.print(body, "\n")
  return ngx.exit(ngx.HTTP_OK)
end

-- fail answers {"error": reason}, plus the stored version when the push's
-- version was refused (and "full_required" on a 409 when nothing is
-- stored: the push must be full).
local function fail(status, reason, stored)
  if status >= 500 then
    ngx_log(ngx_ERR, "tidegate: configuration: ", reason)
  end
  if stored then
    -- %.0f: cjson would print large versions with 14 significant digits
    return respond(status, str_format('{"error":%s,"version":%.0f%s}', cjson.encode(reason), stored,
      (status == 409 and stored == 0) and ',"full_required":true' or ""))
  end
  return respond(status, cjson.encode({ error = reason }))
end

local RELEASE_ABOVE = 4 * 1024 * 1024 -- bytes of push body

-- release_after gives the memory of a large push back to the system once
-- the request is over (the timer runs after the handler returns, when the
-- decoded document is garbage). nginx.conf sets lua_malloc_trim 0, since a
-- trim every 1,000 requests cost throughput, so without this a worker
-- keeps the peak of its largest push: 125 MB more than its peers after a
-- push of 5,000 certificates.
local function release_after()
  local size = tonumber(ngx.var.content_length) or 0
  if size < RELEASE_ABOVE then
    return
  end
  ngx.timer.at(0, function()
    collectgarbage("collect")
    ffi.C.malloc_trim(0)
  end)
end

-- read_body returns the body of a POST, or answers the request itself and
-- returns nil.
local function read_body()
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
  return body
end

-- read_document returns the decoded JSON body of a POST, or answers the
-- request itself and returns nil.
local function read_document()
  local body = read_body()
  if body == nil then
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

-- stored_names returns the set of stored backend names. The split of the
-- names list is kept while the list stays the same, as it does for an
-- endpoint change: splitting ten thousand names costs milliseconds. The set
-- is shared: callers only read it.
local names_list, names_set
local function stored_names(dict)
  local s = dict:get(store.NAMES)
  if s == nil or s ~= names_list then
    names_list, names_set = s, split(s)
  end
  return names_set
end

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

-- NEVER is a PCRE that compiles and matches nothing.
local NEVER = "(?!)"

-- check_canary_patterns compiles every canary header_pattern (the schema
-- cannot: no ngx.re in plain luajit). One that PCRE refuses never matches,
-- as in ingress-nginx, and is logged; the push goes on, since one canary
-- annotation must not hold back every other backend.
local function check_canary_patterns(b)
  for _, c in ipairs(b.canaries) do
    if c.header_pattern ~= "" then
      local _, _, rerr = re_find("", c.header_pattern, "jo")
      if rerr then
        ngx_log(ngx_WARN, str_format("tidegate: backend %q canary %q: header_pattern %q does not compile (%s); "
          .. "it never matches: fix the canary-by-header-pattern annotation", b.name, c.backend, c.header_pattern, rerr))
        c.header_pattern = NEVER
      end
    end
  end
end

-- An item is one backend of a push, checked and ready to store:
--   name    the backend
--   json    its canonical JSON, or nil when the stored one is the same
--   digest  digest of the raw line it came as (line format), or nil
-- An item with neither json nor a new digest leaves the backend untouched.

-- checked_item validates one decoded backend and compares it with what is
-- stored.
local function checked_item(dict, current, b, where, yield)
  local err
  b, err = schema.check_backend(b, where, yield)
  if not b then
    return nil, err
  end
  check_canary_patterns(b)
  local json = schema.encode_backend(b, quote, yield)
  if current[b.name] and dict:get(store.backend_key(b.name)) == json then
    json = nil
  end
  return { name = b.name, json = json }
end

-- line_items turns the backend lines of a push in the line format (body
-- from byte pos on) into items. It yields between backends; the caller
-- holds the lock, so what it compares with cannot change meanwhile.
--
-- A backend that decodes but fails its checks is left out, not the push:
-- one bad item must not hold back every other endpoint change. What is
-- stored for it stays; it is returned in rejected ("name":"reason" JSON
-- members). A line that is not JSON, or names no backend, fails the push.
local function line_items(dict, current, body, pos, yield)
  local items, rejected = {}, {}
  local len = #body
  local i = 0
  while pos <= len do
    local nl = str_find(body, "\n", pos, true) or (len + 1)
    local line = str_sub(body, pos, nl - 1)
    pos = nl + 1
    i = i + 1
    local digest = encode_base64(sha1_bin(line))
    local known = dict:get(store.digest_key(digest))
    local item
    if known and current[known] and dict:get(store.raw_digest_key(known)) == digest then
      item = { name = known }
      -- a few microseconds each: look at the clock now and then only
      if i % 64 == 0 then
        yield()
      end
    else
      local where = str_format("backends[%d]", i - 1)
      local b, err = cjson.decode(line)
      if b == nil then
        return nil, str_format("%s (line %d): invalid JSON: %s", where, i + 1, tostring(err))
      end
      item, err = checked_item(dict, current, b, where, yield)
      if item then
        item.digest = digest
      else
        local name = type(b) == "table" and b.name
        if type(name) ~= "string" or not schema.check_name(name, where .. ".name") then
          return nil, err
        end
        rejected[#rejected + 1] = rejected_member(name, err)
        -- an item with neither json nor digest leaves a stored backend as
        -- it is; a new one is not added
        item = current[name] and { name = name } or nil
      end
      yield()
    end
    items[#items + 1] = item
  end
  return items, rejected
end

-- check_items rejects a backend listed twice or both pushed and removed.
local function check_items(items, removed)
  local seen = {}
  for _, item in ipairs(items) do
    if seen[item.name] then
      return nil, str_format("backend %q: listed twice", item.name)
    end
    seen[item.name] = true
  end
  for _, name in ipairs(removed) do
    if seen[name] then
      return nil, str_format("backend %q: both pushed and removed", name)
    end
  end
  return true
end

-- set_digest points the digest keys of a backend at its new raw line, or
-- drops them when it came without one (a JSON-document push).
local function set_digest(dict, w, name, digest)
  local rkey = store.raw_digest_key(name)
  local old = dict:get(rkey)
  if old == digest then
    return
  end
  if old then
    w.delete(store.digest_key(old))
  end
  if digest then
    w.set(store.digest_key(digest), name)
    w.set(rkey, digest)
  else
    w.delete(rkey)
  end
end

-- names_change reports whether a push changes the set of names (a full
-- push may; a delta when it adds a backend or removes a stored one) and,
-- for a delta that only adds, the names it adds.
local function names_change(current, items, hdr)
  if hdr.full then
    return true
  end
  for _, name in ipairs(hdr.removed) do
    if current[name] then
      return true
    end
  end
  local added, seen = {}, {}
  for _, item in ipairs(items) do
    local name = item.name
    if not current[name] and not seen[name] then
      seen[name] = true
      added[#added + 1] = name
    end
  end
  if #added == 0 then
    return false
  end
  return true, added
end

-- apply_items stores a checked push: changed backends first (yielding every
-- WRITES writes), then the names (when they change) and the delta, then the
-- global version; memory of the removed backends is freed last, when no
-- worker looks for them any more. It returns 200, the number of changed
-- backends and the version, or the error status and reason.
--
-- The delta (store.DELTA) tells workers that applied the previous version
-- which backends this push changed or removed, so that they look at those
-- alone instead of every name (see backends_cache.sync). A full push has none.
local function apply_items(dict, current, items, hdr, yield)
  local version = hdr.version
  local renamed, added = names_change(current, items, hdr)
  local w = writer(dict)
  local changed = 0
  local delta = {}
  for n, item in ipairs(items) do
    local name = item.name
    if item.json then
      w.set(store.backend_key(name), item.json)
      w.set(store.backend_version_key(name), version)
      changed = changed + 1
      delta[#delta + 1] = name
    end
    if item.json or item.digest then
      set_digest(dict, w, name, item.digest)
    end
    if n % WRITES == 0 then
      yield()
    end
  end
  if w.err then
    return 500, store_error(store.BACKENDS_DICT, w.err)
  end
  local next_names
  if added then
    -- names only added (a new Service or port): appended to the stored list
    -- and to the cached set; copying and sorting 10,000 names took most of
    -- such a push. The set stays right: it is used again only while the
    -- stored list is the string recorded with it (stored_names).
    tbl_sort(added)
    local list = tbl_concat(added, "\n")
    if names_list and names_list ~= "" then
      list = names_list .. "\n" .. list
    end
    w.set(store.NAMES, list)
    for _, name in ipairs(added) do
      current[name] = true
    end
    names_list = list
  elseif renamed then
    next_names = {}
    if not hdr.full then
      for name in pairs(current) do
        next_names[name] = true
      end
    end
    for _, item in ipairs(items) do
      next_names[item.name] = true
    end
    for _, name in ipairs(hdr.removed) do
      if current[name] then
        next_names[name] = nil
        delta[#delta + 1] = "\t" .. name
      end
    end
    w.set(store.NAMES, join(next_names))
  end
  if hdr.full then
    w.delete(store.DELTA)
  else
    w.set(store.DELTA, str_format("%.0f %.0f\n", dict:get(store.VERSION) or 0, version) .. tbl_concat(delta, "\n"))
  end
  w.set(store.VERSION, version)
  if w.err then
    return 500, store_error(store.BACKENDS_DICT, w.err)
  end
  -- workers drop what is not in the names list; now free the memory
  if next_names then
    for name in pairs(current) do
      if not next_names[name] then
        w.delete(store.backend_key(name))
        w.delete(store.backend_version_key(name))
        set_digest(dict, w, name, nil)
        changed = changed + 1
      end
    end
  end
  return 200, changed, version
end

-- push_lines handles a push in the line format; it runs under the lock and
-- calls yield between items (pacer(), or nothing at all in the seed).
local function push_lines(dict, body, yield)
  local nl = str_find(body, "\n", 1, true) or (#body + 1)
  local hdr, err = cjson.decode(str_sub(body, 1, nl - 1))
  if hdr == nil then
    return 400, "first line: invalid JSON: " .. tostring(err)
  end
  hdr, err = schema.check_backends_header(hdr)
  if not hdr then
    return 400, err
  end
  local current = stored_names(dict)
  local items, rejected = line_items(dict, current, body, nl + 1, yield)
  if not items then
    return 400, rejected
  end
  local ok
  ok, err = check_items(items, hdr.removed)
  if not ok then
    return 400, err
  end
  -- a bad body is reported as such even when its version is stale too
  local status, reason, stored
  ok, status, reason, stored = check_version(dict, hdr)
  if not ok then
    return status, reason, stored
  end
  local status, res, version = apply_items(dict, current, items, hdr, yield)
  return status, res, version, rejected
end

-- push_document handles a checked push in the JSON-document format; it
-- runs under the lock.
local function push_document(dict, doc)
  local ok, status, reason, stored = check_version(dict, doc)
  if not ok then
    return status, reason, stored
  end
  local yield = pacer()
  local current = stored_names(dict)
  local items = {}
  for i, b in ipairs(doc.backends) do
    local json = schema.encode_backend(b, quote, yield)
    if current[b.name] and dict:get(store.backend_key(b.name)) == json then
      json = nil
    end
    items[i] = { name = b.name, json = json }
    yield()
  end
  return apply_items(dict, current, items, doc, yield)
end

local function is_lines()
  local ct = ngx.var.content_type
  return ct ~= nil and str_find(ct, "application/x-ndjson", 1, true) == 1
end

-- backends handles POST /configuration/backends.
function _M.backends()
  local body = read_body()
  if body == nil then
    return
  end
  local doc, err
  local lines = is_lines()
  if not lines then
    doc, err = cjson.decode(body)
    if doc == nil then
      return fail(400, "invalid JSON: " .. tostring(err))
    end
    doc, err = schema.check_backends_doc(doc, pacer())
    if not doc then
      return fail(400, err)
    end
    for _, b in ipairs(doc.backends) do
      check_canary_patterns(b)
    end
  end
  local ok
  ok, err = lock(backends_dict)
  if not ok then
    return fail(503, "lock: " .. err)
  end
  -- pcall: whatever happens, the lock is released (LuaJIT yields across it)
  local done, status, res, stored, rejected
  if lines then
    done, status, res, stored, rejected = pcall(push_lines, backends_dict, body, pacer())
  else
    done, status, res, stored = pcall(push_document, backends_dict, doc)
  end
  unlock(backends_dict)
  if not done then
    return fail(500, "push failed: " .. tostring(status))
  end
  if status ~= 200 then
    return fail(status, res, stored)
  end
  -- on success stored is the version just stored
  release_after()
  return respond(200, str_format('{"version":%.0f,"changed":%d,"rejected":{%s}}', stored, res,
    tbl_concat(rejected or {}, ",")))
end

-- workers handles GET /tidegate/workers: what every worker applied, as
-- {"version":V,"workers":[{"id":0,"version":V0,"rebuilds":N0},...]} with
-- the stored version V. A worker that has caught up shows V; rebuilds
-- counts the backend objects it built since it started.
function _M.workers()
  local list = {}
  for id = 0, ngx.worker.count() - 1 do
    local v = backends_dict:get(store.worker_key(id))
    local applied, rebuilds = 0, 0
    if v then
      local sp = str_find(v, " ", 1, true)
      applied, rebuilds = tonumber(str_sub(v, 1, sp - 1)), tonumber(str_sub(v, sp + 1))
    end
    list[#list + 1] = str_format('{"id":%d,"version":%.0f,"rebuilds":%d}', id, applied, rebuilds)
  end
  return respond(200, str_format('{"version":%.0f,"workers":[%s]}',
    backends_dict:get(store.VERSION) or 0, tbl_concat(list, ",")))
end

-- leave_out_refused keeps in doc only the certificates OpenSSL loads and
-- returns the ids of the others, and the members of the answer that name
-- them: one broken Secret must not hold back every other certificate.
local function leave_out_refused(doc)
  local accepted, keep, rejected = {}, {}, {}
  for _, c in ipairs(doc.certificates) do
    local ok, perr = pem.check_pair(c.cert, c.key)
    if ok then
      accepted[#accepted + 1] = c
    else
      keep[c.id] = true
      rejected[#rejected + 1] = rejected_member(c.id, perr)
    end
  end
  doc.certificates = accepted
  return keep, rejected
end

-- apply_certificates stores doc's certificates. keep are ids nginx refused
-- in this push: whatever is stored for them stays, even in a full push.
local function apply_certificates(doc, keep)
  local dict = certificates_dict
  local ok, status, reason, stored = check_version(dict, doc)
  if not ok then
    return status, reason, stored
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
    if not doc.full or keep[id] then
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
    return 500, store_error(store.CERTIFICATES_DICT, w.err)
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
    return 500, store_error(store.CERTIFICATES_DICT, w.err)
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
  -- A pair OpenSSL refuses is left out, not the push. Its hosts keep what
  -- they had (the default certificate when nothing was stored for them).
  local keep, rejected = leave_out_refused(doc)
  local ok
  ok, err = lock(certificates_dict)
  if not ok then
    return fail(503, "lock: " .. err)
  end
  local status, res, stored = apply_certificates(doc, keep)
  unlock(certificates_dict)
  if status ~= 200 then
    return fail(status, res, stored)
  end
  release_after()
  return respond(200, str_format('{"version":%.0f,"changed":%d,"rejected":{%s}}', doc.version, res,
    tbl_concat(rejected, ",")))
end

-- The seed: before tidegate starts nginx, or reloads it with a shared dict
-- of a new size, it writes the full pushes it is about to make to
-- <prefix>/seed/ (backends in the line format; certificates, as a
-- document, only before a reload: a starting master would serve nothing
-- while it checks them).
-- A new zone is empty: without the seed, new workers would answer 503 and
-- serve the default certificate until the push lands (milliseconds with a
-- few hosts, 33 s with 40,000 certificates). init_by_lua runs in the master
-- before the workers that read the zones start, and again at every reload;
-- a zone that holds a version (a reload keeps it) is left alone.

local function noop() end

-- read_seed returns the seed file's content when dict is still empty.
local function read_seed(dict, path)
  if dict:get(store.VERSION) then
    return nil
  end
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local body = f:read("*a")
  f:close()
  return body
end

local function seed_backends(path)
  local body = read_seed(backends_dict, path)
  if not body then
    return
  end
  local status, res, _, rejected = push_lines(backends_dict, body, noop)
  if status ~= 200 then
    ngx_log(ngx_ERR, "tidegate: seed ", path, " not applied: ", tostring(res))
    return
  end
  ngx_log(ngx.NOTICE, "tidegate: seeded ", res, " backends from ", path,
    rejected and #rejected > 0 and (", left out: " .. tbl_concat(rejected, ", ")) or "")
end

local function seed_certificates(path)
  local body = read_seed(certificates_dict, path)
  if not body then
    return
  end
  local doc, err = cjson.decode(body)
  if doc then
    doc, err = schema.check_certificates_doc(doc)
  end
  if not doc then
    ngx_log(ngx_ERR, "tidegate: seed ", path, " not applied: ", tostring(err))
    return
  end
  local keep = leave_out_refused(doc)
  local status, res = apply_certificates(doc, keep)
  if status ~= 200 then
    ngx_log(ngx_ERR, "tidegate: seed ", path, " not applied: ", tostring(res))
    return
  end
  ngx_log(ngx.NOTICE, "tidegate: seeded ", #doc.certificates, " certificates from ", path)
end

-- seed fills empty shared dicts from dir (init_by_lua).
function _M.seed(dir)
  seed_backends(dir .. "backends.lines")
  seed_certificates(dir .. "certificates.json")
end

return _M
