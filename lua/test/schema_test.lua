-- Unit tests of the push schema, run by plain luajit
-- (pkg/dynamic/lua_test.go): `luajit lua/test/schema_test.lua`.
local schema = require("tidegate.schema")

local failures = 0

local function check(name, cond, detail)
  if not cond then
    failures = failures + 1
    io.stderr:write("FAIL ", name, ": ", tostring(detail), "\n")
  end
end

for _, a in ipairs({ "10.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::", "fe80::1",
  "2001:db8::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329", "::ffff:10.1.2.3",
  "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8" }) do
  local ok, err = schema.check_address(a, "a")
  check("valid address " .. a, ok, err)
end
for _, a in ipairs({ "", "10.0.0", "10.0.0.256", "010.0.0.1", "1.2.3.4.5", "example.com",
  ":::1", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::1", "fe80::1%eth0",
  "[::1]", "::1 ", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "::ffff:1.2.3", "1.2.3.4::" }) do
  local ok = schema.check_address(a, "a")
  check("invalid address " .. a, not ok, "accepted")
end

for _, h in ipairs({ "a.b", "*.example.com", "x-1.example.com", "localhost" }) do
  local ok, err = schema.check_host(h, "h")
  check("valid host " .. h, ok, err)
end
for _, h in ipairs({ "", "*", "*.", "a.*.b", "-a.b", "a-.b", "a..b", "a.b.", "a_b.c", "**.a" }) do
  check("invalid host " .. h, not schema.check_host(h, "h"), "accepted")
end

do
  local doc, err = schema.check_backends_doc({ version = 3, backends = {
    { name = "ns/s:80", endpoints = { { address = "10.0.0.1", port = 80 } } } } })
  check("defaults", doc and doc.backends[1].algorithm == "round_robin"
    and doc.backends[1].endpoints[1].weight == 1
    and doc.backends[1].endpoints[1].draining == false and doc.full == false, err)
  local json = schema.encode_backend(doc.backends[1], function(s) return '"' .. s .. '"' end)
  check("canonical encoding", json ==
    '{"name":"ns/s:80","algorithm":"round_robin","endpoints":[{"address":"10.0.0.1","port":80,"weight":1,"draining":false}]}', json)
end

local bad = {
  ["zero version"] = { version = 0 },
  ["string version"] = { version = "1" },
  ["unknown key"] = { version = 1, extra = true },
  ["object backends"] = { version = 1, backends = { x = 1 } },
  ["pushed and removed"] = { version = 1, backends = { { name = "a" } }, removed = { "a" } },
  ["endpoint key"] = { version = 1, backends = { { name = "a", endpoints = { { address = "1.1.1.1", port = 1, zone = "x" } } } } },
  ["draining string"] = { version = 1, backends = { { name = "a", endpoints = { { address = "1.1.1.1", port = 1, draining = "yes" } } } } },
  ["weight fraction"] = { version = 1, backends = { { name = "a", endpoints = { { address = "1.1.1.1", port = 1, weight = 1.5 } } } } },
  ["empty name"] = { version = 1, backends = { { name = "" } } },
  ["DEL in name"] = { version = 1, backends = { { name = "a\127" } } },
  ["long name"] = { version = 1, backends = { { name = string.rep("a", 513) } } },
}
for name, doc in pairs(bad) do
  local ok, err = schema.check_backends_doc(doc)
  check("rejects " .. name, not ok and type(err) == "string", "accepted")
end

if failures > 0 then
  os.exit(1)
end
print("schema: ok")
