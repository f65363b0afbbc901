-- Parsing and checking of PEM key pairs with ngx.ssl (which works in every
-- phase: it only calls OpenSSL's PEM readers). The key-matches-certificate
-- check calls OpenSSL through the FFI; nginx is linked against it, so the
-- symbols are in the process.

local ffi = require("ffi")
local ssl = require("ngx.ssl")
local pcall = pcall

local C = ffi.C
local parse_pem_cert = ssl.parse_pem_cert
local parse_pem_priv_key = ssl.parse_pem_priv_key

local _M = {}

local has_check = pcall(ffi.cdef, [[
int X509_check_private_key(const void *x509, const void *pkey);
void *OPENSSL_sk_value(const void *st, int i);
int OPENSSL_sk_num(const void *st);
void ERR_clear_error(void);
]]) and pcall(function()
  return C.X509_check_private_key and C.OPENSSL_sk_value and C.OPENSSL_sk_num
    and C.ERR_clear_error
end)

-- parse returns the parsed chain and key (cdata ready for ngx.ssl.set_cert
-- and set_priv_key), or nil and the reason.
function _M.parse(cert_pem, key_pem)
  local cert, err = parse_pem_cert(cert_pem)
  if not cert then
    return nil, nil, "invalid certificate: " .. (err or "unknown error")
  end
  local key
  key, err = parse_pem_priv_key(key_pem)
  if not key then
    return nil, nil, "invalid private key: " .. (err or "unknown error")
  end
  return cert, key
end

-- check_pair returns true when both PEMs parse and the key belongs to the
-- first certificate of the chain, else nil and the reason.
function _M.check_pair(cert_pem, key_pem)
  local cert, key, err = _M.parse(cert_pem, key_pem)
  if not cert then
    return nil, err
  end
  if not has_check then
    return true
  end
  if C.OPENSSL_sk_num(cert) < 1 then
    return nil, "no certificate in the PEM"
  end
  local leaf = C.OPENSSL_sk_value(cert, 0)
  local ok = C.X509_check_private_key(leaf, key) == 1
  C.ERR_clear_error()
  if not ok then
    return nil, "private key does not match the certificate"
  end
  return true
end

return _M
