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

do
  local doc, err = schema.check_backends_doc({ version = 4, backends = { {
    name = "a", algorithm = "chash",
    affinity = { mode = "persistent", name = "route", samesite = "Lax", max_age = 60 },
    canaries = { { backend = "b", header = "X-Canary", weight = 5 } },
    ejection = { consecutive_5xx = 3 },
  } } })
  check("extended backend", doc, err)
  local b = doc and doc.backends[1]
  check("affinity defaults", b and b.affinity.path == "" and b.affinity.secure == false
    and b.affinity.expires == 0, b and b.affinity)
  check("canary defaults", b and b.canaries[1].weight_total == 100 and b.canaries[1].cookie == "", b)
  check("ejection defaults", b and b.ejection.failures == 5 and b.ejection.failure_window_ms == 10000 and b.ejection.consecutive_5xx == 3, b)
  local json = b and schema.encode_backend(b, function(s) return '"' .. s .. '"' end)
  check("canonical extended encoding", json ==
    '{"name":"a","algorithm":"chash","endpoints":[],'
    .. '"affinity":{"mode":"persistent","name":"route","path":"","domain":"","samesite":"Lax","secure":false,"max_age":60,"expires":0,"change_on_failure":false},'
    .. '"canaries":[{"backend":"b","header":"X-Canary","header_value":"","header_pattern":"","cookie":"","weight":5,"weight_total":100}],'
    .. '"ejection":{"failures":5,"failure_window_ms":10000,"consecutive_5xx":3,"base_ejection_ms":10000,"max_ejection_ms":300000,"slow_start_ms":10000,"max_ejected_percent":50}}', json)
end

local bad = {
  ["own canary"] = { version = 1, backends = { { name = "a", canaries = { { backend = "a" } } } } },
  ["canary twice"] = { version = 1, backends = { { name = "a", canaries = { { backend = "b" }, { backend = "b" } } } } },
  ["canary weight above total"] = { version = 1, backends = { { name = "a", canaries = { { backend = "b", weight = 11, weight_total = 10 } } } } },
  ["value and pattern"] = { version = 1, backends = { { name = "a", canaries = { { backend = "b", header = "X", header_value = "1", header_pattern = "2" } } } } },
  ["bad samesite"] = { version = 1, backends = { { name = "a", affinity = { samesite = "Sometimes" } } } },
  ["bad mode"] = { version = 1, backends = { { name = "a", affinity = { mode = "sticky" } } } },
  ["cookie name with space"] = { version = 1, backends = { { name = "a", affinity = { name = "a b" } } } },
  ["cookie path with ;"] = { version = 1, backends = { { name = "a", affinity = { path = "/a;b" } } } },
  ["ejection key"] = { version = 1, backends = { { name = "a", ejection = { forever = true } } } },
  ["ejection negative"] = { version = 1, backends = { { name = "a", ejection = { failures = -1 } } } },
  ["zero version"] = { version = 0 },
  ["negative version"] = { version = -1 },
  ["fractional version"] = { version = 1.5 },
  ["version 2^53"] = { version = 2 ^ 53 },
  ["version 1e300"] = { version = 1e300 },
  ["infinite version"] = { version = math.huge },
  ["NaN version"] = { version = 0 / 0 },
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

-- the first line of a push in the line format: the document without backends
do
  local hdr, err = schema.check_backends_header({ version = 7, full = true, removed = { "a" } })
  check("header", hdr and hdr.version == 7 and hdr.full == true and hdr.removed[1] == "a", err)
  hdr, err = schema.check_backends_header({ version = 8 })
  check("header defaults", hdr and hdr.full == false and #hdr.removed == 0, err)
  hdr, err = schema.check_backends_header({ version = 2 ^ 53 - 1 })
  check("largest version", hdr and hdr.version == 2 ^ 53 - 1, err)
end
local bad_headers = {
  ["backends in the header"] = { version = 1, backends = {} },
  ["no version"] = { full = true },
  ["array"] = { 1, 2 },
  ["removed not a list"] = { version = 1, removed = "a" },
}
for name, doc in pairs(bad_headers) do
  local ok, err = schema.check_backends_header(doc)
  check("header rejects " .. name, not ok and type(err) == "string", "accepted")
end

if failures > 0 then
  os.exit(1)
end
print("schema: ok")
