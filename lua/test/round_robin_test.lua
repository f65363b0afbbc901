-- Unit tests of the smooth weighted round robin, run by plain luajit
-- (pkg/dynamic/lua_test.go): `luajit lua/test/round_robin_test.lua`.
local rr = require("tidegate.balancers.round_robin")

local failures = 0

local function sequence(weights, n, start)
  local peers = {}
  for i, w in ipairs(weights) do
    peers[i] = { name = string.char(96 + i), weight = w }
  end
  local b = rr.new(peers, start)
  local out = {}
  for i = 1, n do
    out[i] = b:pick().name
  end
  return table.concat(out)
end

local function expect(name, got, want)
  if got ~= want then
    failures = failures + 1
    io.stderr:write(string.format("FAIL %s: got %s, want %s\n", name, got, want))
  end
end

-- nginx's documented example: weights 5,1,1 give a a b a c a a
expect("5,1,1", sequence({ 5, 1, 1 }, 14), "aabacaaaabacaa")
expect("equal weights rotate", sequence({ 1, 1, 1 }, 7), "abcabca")
expect("equal weights above 1 rotate", sequence({ 4, 4 }, 4), "abab")
expect("single peer", sequence({ 7 }, 3), "aaa")
expect("equal weights begin after start", sequence({ 1, 1, 1 }, 4, 1), "bcab")
expect("start wraps", sequence({ 1, 1, 1 }, 2, 5), "ca")
expect("weighted ignores start", sequence({ 5, 1, 1 }, 3, 2), "aab")
expect("3,1", sequence({ 3, 1 }, 8), "aabaaaba")
expect("2,3", sequence({ 2, 3 }, 5), "babab")

-- over a full cycle every peer is picked exactly its weight times
do
  local weights = { 7, 3, 1, 10, 2 }
  local s = sequence(weights, 23 * 4)
  for i, w in ipairs(weights) do
    local c = select(2, s:gsub(string.char(96 + i), ""))
    expect("cycle count of peer " .. i, tostring(c), tostring(w * 4))
  end
end

if failures > 0 then
  os.exit(1)
end
print("round_robin: ok")
