-- Key layout of the shared dicts written by tidegate.configuration and read
-- by the workers. One place, so writer and readers cannot disagree.
--
-- tidegate_backends:
--   "v"            global version (number), written last by every push
--   "n"            names of all backends, "\n"-separated
--   "dl"           delta of the last push if it was not full:
--                  "<previous version> <version>\n" then one line per
--                  backend it changed, and "\t<name>" per backend it
--                  removed
--   "b:<name>"     canonical JSON of one backend
--   "bv:<name>"    version of the push that last changed the backend
--   "r:<name>"     digest of the raw line the backend was last pushed as
--                  (line format only; absent after a JSON-document push)
--   "d:<digest>"   name of the backend whose raw line has that digest: a
--                  byte-identical line was validated before and is unchanged
--   "w:<id>"       what worker <id> applied: "<version> <rebuilds>"
-- tidegate_certificates:
--   "v"            global version (number), written last by every push
--   "n"            ids of all certificates, "\n"-separated
--   "c:<id>"       certificate chain PEM
--   "k:<id>"       private key PEM
--   "h:<id>"       hosts of the certificate, "\n"-separated
--   "s:<host>"     id serving the SNI name host (exact or "*.domain")
-- Names never contain control characters (schema), so "\n" is a safe
-- separator.

local _M = {
  BACKENDS_DICT = "tidegate_backends",
  CERTIFICATES_DICT = "tidegate_certificates",
  VERSION = "v",
  NAMES = "n",
  DELTA = "dl",
  LOCK = "lock",
}

function _M.backend_key(name)
  return "b:" .. name
end

function _M.backend_version_key(name)
  return "bv:" .. name
end

function _M.raw_digest_key(name)
  return "r:" .. name
end

function _M.digest_key(digest)
  return "d:" .. digest
end

function _M.worker_key(id)
  return "w:" .. id
end

function _M.cert_key(id)
  return "c:" .. id
end

function _M.key_key(id)
  return "k:" .. id
end

function _M.hosts_key(id)
  return "h:" .. id
end

function _M.sni_key(host)
  return "s:" .. host
end

return _M
