-- A 32-bit string hash in pure LuaJIT (FNV-1a with the murmur3 finaliser),
-- the same in nginx and in plain luajit so that the consistent-hash ring can
-- be unit tested. FNV-1a alone clusters on short similar keys ("10.0.0.1#1",
-- "10.0.0.1#2"); the finaliser spreads them over the whole ring.

local bit = require("bit")
local bxor = bit.bxor
local band = bit.band
local rshift = bit.rshift
local lshift = bit.lshift
local tobit = bit.tobit
local str_byte = string.byte

local _M = {}

-- mul32 is a * c modulo 2^32 for 32-bit a and c: split c so that every
-- partial product stays exact in a double.
local function mul32(a, c)
  local chi = rshift(c, 16)
  local clo = band(c, 0xffff)
  return tobit(a * clo + lshift(tobit(a * chi), 16))
end

local function fmix(h)
  h = bxor(h, rshift(h, 16))
  h = mul32(h, 0x85ebca6b)
  h = bxor(h, rshift(h, 13))
  h = mul32(h, 0xc2b2ae35)
  return bxor(h, rshift(h, 16))
end

-- point returns the i-th point of a sequence seeded by seed (a hash), in
-- [0, 2^32): a cheap way to place many virtual nodes of one peer on a ring
-- without hashing a string for each.
function _M.point(seed, i)
  local h = fmix(tobit(seed + i * 0x9e3779b9))
  if h < 0 then
    h = h + 4294967296
  end
  return h
end

-- hash returns the hash of s as a number in [0, 2^32).
function _M.hash(s)
  local h = tobit(2166136261)
  for i = 1, #s do
    h = bxor(h, str_byte(s, i))
    -- * 16777619 (2^24 + 403)
    h = tobit(h * 403 + lshift(h, 24))
  end
  h = fmix(h)
  if h < 0 then
    h = h + 4294967296
  end
  return h
end

return _M
