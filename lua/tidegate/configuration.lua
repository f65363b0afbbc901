-- The push endpoints, served only on the control unix socket:
--   POST /configuration/backends      -> _M.backends()
--   POST /configuration/certificates  -> _M.certificates()
-- Each reads the body, checks it strictly (tidegate.schema), takes the push
-- lock and hands it to its writer (tidegate.backends_writer,
-- tidegate.certificates_writer: versions only go up, data is written
-- before the global version), then answers. seed() applies the same
-- pushes from files at init_by_lua.
--
-- Backends come in one of two formats:
--   application/json      one document {"version","full","backends","removed"}
--   application/x-ndjson  the document without "backends" on the first line,
--                         then one backend object per line (what Go sends),
--                         checked line by line by the writer

local ngx = ngx
local ngx_req = ngx.req
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ipairs = ipairs
local pcall = pcall
local tostring = tostring
local tonumber = tonumber
local str_format = string.format
local tbl_concat = table.concat
local str_find = string.find
local str_sub = string.sub

local schema = require("tidegate.schema")
local store = require("tidegate.store")
local push_store = require("tidegate.push_store")
local backends_writer = require("tidegate.backends_writer")
local certificates_writer = require("tidegate.certificates_writer")
local cjson = push_store.cjson
local lock = push_store.lock
local unlock = push_store.unlock
local pacer = push_store.pacer
local check_canary_patterns = backends_writer.check_canary_patterns
local push_lines = backends_writer.push_lines
local push_document = backends_writer.push_document
local leave_out_refused = certificates_writer.leave_out_refused
local apply_certificates = certificates_writer.apply_certificates

local ffi = require("ffi")
pcall(ffi.cdef, "int malloc_trim(size_t pad);")

local backends_dict = ngx.shared[store.BACKENDS_DICT]
local certificates_dict = ngx.shared[store.CERTIFICATES_DICT]

local _M = {}

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
