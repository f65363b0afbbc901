-- The backends writer: stores a checked push of backends in the backends
-- shared dict (POST /configuration/backends and the seed, through
-- tidegate.configuration), in an order that lets workers read it without a
-- lock: data first, the names and the delta, the global version last
-- (tidegate.store; read by tidegate.backends_cache).
--
-- In the line format a line whose bytes are identical to the line a stored
-- backend was pushed as (same digest) is that backend unchanged: it was
-- validated then, so it is neither decoded nor checked again. Every other
-- line is decoded, checked and stored one at a time, and the writer yields
-- (yield, the handler's pacer) so that the worker keeps serving requests
-- during a big push. All of it runs under the push lock, which the caller
-- holds.

local ngx = ngx
local ngx_log = ngx.log
local ngx_WARN = ngx.WARN
local pairs = pairs
local ipairs = ipairs
local type = type
local tostring = tostring
local str_format = string.format
local str_find = string.find
local str_sub = string.sub
local tbl_concat = table.concat
local tbl_sort = table.sort
local re_find = ngx.re.find
local sha1_bin = ngx.sha1_bin
local encode_base64 = ngx.encode_base64

local schema = require("tidegate.schema")
local store = require("tidegate.store")
local push_store = require("tidegate.push_store")
local cjson = push_store.cjson
local split = push_store.split
local join = push_store.join
local writer = push_store.writer
local store_error = push_store.store_error
local check_version = push_store.check_version
local pacer = push_store.pacer
local quote = push_store.quote
local rejected_member = push_store.rejected_member

local _M = {}

local WRITES = 256         -- shared-dict writes between two yields

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


_M.check_canary_patterns = check_canary_patterns
_M.push_lines = push_lines
_M.push_document = push_document

return _M
