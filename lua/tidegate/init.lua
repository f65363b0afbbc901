-- Entry points for init_by_lua and init_worker_by_lua.

local _M = {}

-- init runs in the nginx master: it loads every module once, so workers
-- (which may run as an unprivileged user) never read Lua files, and a syntax
-- error fails `nginx -t` instead of the first request.
function _M.init()
  -- The control token (pkg/nginx/token.go: Settings.TokenPath).
  require("tidegate.control").init(ngx.config.prefix() .. "run/control.token")
  require("tidegate.store")
  require("tidegate.schema")
  require("tidegate.pem")
  require("tidegate.hash")
  require("tidegate.balancers.round_robin")
  require("tidegate.balancers.ewma")
  require("tidegate.balancers.chash")
  require("tidegate.balancers.sticky")
  require("tidegate.canary")
  require("tidegate.ejection")
  require("tidegate.pick")
  require("tidegate.backends_cache")
  require("tidegate.balancer")
  require("tidegate.certificate")
  require("tidegate.push_store")
  require("tidegate.backends_writer")
  require("tidegate.certificates_writer")
  -- After a start or a dict resize: fill the new, empty zones with what
  -- the controller is about to push (configuration.seed).
  require("tidegate.configuration").seed(ngx.config.prefix() .. "seed/")
end

-- init_worker loads the current shared-dict state into the worker and
-- starts its sync timer.
function _M.init_worker()
  require("tidegate.balancer").init_worker()
  require("tidegate.certificate").init_worker()
end

return _M
