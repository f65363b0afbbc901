-- The certificates writer: stores a checked push of certificates in the
-- certificates shared dict (POST /configuration/certificates and the seed,
-- through tidegate.configuration) for tidegate.certificate to serve:
-- certificate, key and hosts of each id, one id per SNI name, then the
-- names list and the version last (tidegate.store). The caller holds the
-- push lock.

local ngx = ngx
local ngx_log = ngx.log
local ngx_WARN = ngx.WARN
local pairs = pairs
local ipairs = ipairs
local tbl_sort = table.sort

local store = require("tidegate.store")
local pem = require("tidegate.pem")
local push_store = require("tidegate.push_store")
local split = push_store.split
local join = push_store.join
local writer = push_store.writer
local store_error = push_store.store_error
local check_version = push_store.check_version
local rejected_member = push_store.rejected_member

local certificates_dict = ngx.shared[store.CERTIFICATES_DICT]

local _M = {}

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

_M.leave_out_refused = leave_out_refused
_M.apply_certificates = apply_certificates

return _M
