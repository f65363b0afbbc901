-- ssl_certificate_by_lua: serve the pushed certificate for the SNI name.
-- Lookup order: exact host, then the one-label wildcard ("a.b.c" ->
-- "*.b.c", so a.b.example.com does not match *.example.com), then the
-- pushed default certificate (--default-ssl-certificate), then nothing
-- (nginx's self-signed default certificate stays). Parsed pairs are cached per worker
-- and the cache is dropped whenever the certificates version changes.

local ngx = ngx
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_exit = ngx.exit
local str_find = string.find
local str_sub = string.sub
local str_lower = string.lower

local ssl = require("ngx.ssl")
local lrucache = require("resty.lrucache")
local store = require("tidegate.store")
local schema = require("tidegate.schema")
local pem = require("tidegate.pem")

local dict = ngx.shared[store.CERTIFICATES_DICT]

local _M = {}

local CACHE_SIZE = 2000

local cache = assert(lrucache.new(CACHE_SIZE))
local cached_version = nil

local function check_version()
  local v = dict:get(store.VERSION)
  if v ~= cached_version then
    cache:flush_all()
    cached_version = v
  end
end

-- DEFAULT_KEY holds the id of the default certificate
-- (--default-ssl-certificate), if one was pushed.
local DEFAULT_KEY = store.sni_key(schema.DEFAULT_SNI)

-- lookup returns the certificate id serving name, or nil.
local function lookup(name)
  local id = dict:get(store.sni_key(name))
  if id then
    return id
  end
  local dot = str_find(name, ".", 1, true)
  if dot and dot > 1 then
    id = dict:get(store.sni_key("*" .. str_sub(name, dot)))
    if id then
      return id
    end
  end
  return dict:get(DEFAULT_KEY)
end
_M.lookup = lookup

local function pair(id)
  local p = cache:get(id)
  if p then
    return p
  end
  local cert_pem = dict:get(store.cert_key(id))
  local key_pem = dict:get(store.key_key(id))
  if not cert_pem or not key_pem then
    return nil, "missing from the shared dict"
  end
  local cert, key, err = pem.parse(cert_pem, key_pem)
  if not cert then
    return nil, err
  end
  p = { cert = cert, key = key }
  cache:set(id, p)
  return p
end

-- call runs in ssl_certificate_by_lua for every full handshake.
function _M.call()
  local name, err = ssl.server_name()
  check_version()
  local id
  if name then
    name = str_lower(name)
    id = lookup(name)
  else
    if err then
      ngx_log(ngx_ERR, "tidegate: server_name: ", err)
    end
    name = "(no SNI)"
    id = dict:get(DEFAULT_KEY)
  end
  if not id then
    return -- nginx's own default certificate
  end
  local p
  p, err = pair(id)
  if not p then
    ngx_log(ngx_ERR, "tidegate: certificate ", id, " for ", name, ": ", err)
    return
  end
  local ok
  ok, err = ssl.clear_certs()
  if ok then
    ok, err = ssl.set_cert(p.cert)
  end
  if ok then
    ok, err = ssl.set_priv_key(p.key)
  end
  if not ok then
    ngx_log(ngx_ERR, "tidegate: set certificate ", id, " for ", name, ": ", err)
    return ngx_exit(ngx.ERROR)
  end
end

-- init_worker drops anything cached before the fork.
function _M.init_worker()
  cache:flush_all()
  cached_version = nil
end

return _M
