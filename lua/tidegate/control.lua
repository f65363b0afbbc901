-- The guard of the control server: every request to the control socket
-- must carry the control token in the X-Tidegate-Token header, or it is
-- refused (403) before nginx looks at its path, method or body. Reaching
-- the socket (a proxy_pass nginx was tricked into, a local process) is
-- not enough to read or change anything.
--
-- tidegate keeps the token in <prefix>run/control.token (pkg/nginx/token.go:
-- 64 lower-case hex digits, 0600 in a 0700 directory). init_by_lua reads it
-- in the master, before the workers fork (they may run as a user that
-- cannot read the file, and need not: they inherit it), and again at every
-- reload. The token lives in this module only, never in an nginx variable
-- a location could send elsewhere. Without a readable, well-formed token
-- every control request is refused (fail closed) and the error log says
-- why.
--
-- nginx.conf calls refusal() from set_by_lua at the top of the control
-- server, so the check runs before any location, including the ones that
-- answer without Lua (stub_status, the generation).

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local io_open = io.open
local str_byte = string.byte
local str_find = string.find
local bit = require("bit")
local bor = bit.bor
local bxor = bit.bxor

local _M = {}

local TOKEN_LEN = 64

-- The answers to a refused request: bodies of nginx's "return 403".
local NO_TOKEN = '{"error":"nginx holds no control token (see its error log): every control request is refused"}'
local MISSING = '{"error":"missing X-Tidegate-Token header"}'
local WRONG = '{"error":"wrong X-Tidegate-Token"}'

local token -- nil until init read a well-formed one

-- equal compares a with b in a time that depends on their lengths only
-- (the token's length is no secret).
local function equal(a, b)
  if #a ~= #b then
    return false
  end
  local diff = 0
  for i = 1, #a do
    diff = bor(diff, bxor(str_byte(a, i), str_byte(b, i)))
  end
  return diff == 0
end

-- init reads the token from path (init_by_lua).
function _M.init(path)
  token = nil
  local f, err = io_open(path, "rb")
  if not f then
    ngx_log(ngx_ERR, "tidegate: no control token (", err, "): every control request is refused")
    return
  end
  local s, rerr = f:read("*a")
  f:close()
  if not s then
    ngx_log(ngx_ERR, "tidegate: control token ", path, ": ", rerr, ": every control request is refused")
    return
  end
  if #s ~= TOKEN_LEN or str_find(s, "[^0-9a-f]") then
    ngx_log(ngx_ERR, "tidegate: control token ", path, " is not ", TOKEN_LEN,
      " lower-case hex digits: every control request is refused")
    return
  end
  token = s
end

-- refusal returns "" for a request that carries the token, else the body
-- of its 403 answer (set_by_lua).
function _M.refusal()
  local got = ngx_var.http_x_tidegate_token
  local why
  if not token then
    why = NO_TOKEN
  elseif not got then
    why = MISSING
  elseif not equal(got, token) then
    why = WRONG
  else
    return ""
  end
  ngx_log(ngx_WARN, "tidegate: refused control request ", ngx_var.request_method, " ",
    ngx_var.request_uri, ": ", why)
  return why
end

return _M
