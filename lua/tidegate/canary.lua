-- Canary routing (canary: "true" Ingresses): which of a backend's canaries,
-- if any, takes a request. Canaries are pushed with their main backend, so
-- a change of weights or rules never reloads nginx.

local ngx = ngx
local ngx_var = ngx.var
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ipairs = ipairs
local random = math.random
local str_gsub = string.gsub
local str_lower = string.lower
local re_find = ngx.re.find

local _M = {}

-- build prepares the pushed canaries of a backend for route(): variable
-- names computed once, weights as shares. Returns nil without canaries.
function _M.build(cs)
  if not cs or #cs == 0 then
    return nil
  end
  local list = {}
  for i, c in ipairs(cs) do
    list[i] = {
      backend = c.backend,
      header_var = c.header ~= "" and "http_" .. str_gsub(str_lower(c.header), "-", "_") or nil,
      value = c.header_value ~= "" and c.header_value or nil,
      pattern = c.header_pattern ~= "" and c.header_pattern or nil,
      cookie_var = c.cookie ~= "" and "cookie_" .. c.cookie or nil,
      share = c.weight / c.weight_total,
    }
  end
  return list
end

-- route returns the canary backend name a request goes to, or nil for
-- the main backend. The rules are ingress-nginx's, in its order: the header
-- (exact value, else pattern, else "always"/"never"), then the cookie
-- ("always"/"never"), then the weight. With several canaries the header and
-- cookie rules are checked canary by canary (in name order) and the first
-- "always" wins; a "never" rules its canary out; the weights then split the
-- remaining traffic (one random draw: canary i gets weight_i/total_i).
function _M.route(b)
  local aff = b.affinity
  if aff and ngx_var[aff.cookie_var] then
    return nil -- a sticky client of the main backend stays there
  end
  local cs = b.canaries
  local never = nil
  for i = 1, #cs do
    local c = cs[i]
    local decided = nil
    if c.header_var then
      local v = ngx_var[c.header_var]
      if v then
        if c.value then
          if v == c.value then
            decided = true
          end
        elseif c.pattern then
          local from, _, err = re_find(v, c.pattern, "jo")
          if from then
            decided = true
          elseif err then
            ngx_log(ngx_ERR, "tidegate: canary ", c.backend, " header pattern: ", err)
          end
        elseif v == "always" then
          decided = true
        elseif v == "never" then
          decided = false
        end
      end
    end
    if decided == nil and c.cookie_var then
      local v = ngx_var[c.cookie_var]
      if v == "always" then
        decided = true
      elseif v == "never" then
        decided = false
      end
    end
    if decided then
      return c.backend
    elseif decided == false then
      never = never or {}
      never[i] = true
    end
  end
  local r = random()
  local acc = 0
  for i = 1, #cs do
    if not (never and never[i]) then
      acc = acc + cs[i].share
      if r < acc then
        return cs[i].backend
      end
    end
  end
  return nil
end

return _M
