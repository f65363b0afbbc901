package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/test/harness"
)

// The workload: one route under test ("bench.local" -> Service bench:80,
// endpoints that really listen) plus filler Ingresses, each with its own
// host, Service and EndpointSlice of endpointsPer endpoints on 10.x.y.z
// addresses nobody listens on (never requested: they only weigh on the
// configuration, the push and the Lua state).

const (
	benchHost    = "bench.local"
	benchBackend = "default/bench:80"
	endpointsPer = 10
	// bodySize is the backend's response body for throughput runs.
	bodySize = 256
)

var fixedBody = strings.Repeat("x", bodySize-1) + "\n"

// liveAddrs are the loopback addresses the backend nginx serves the fixed
// body on; propA/propB answer "A"/"B" for the propagation benchmark.
var (
	liveAddrs = func() []string {
		var a []string
		for i := 1; i <= endpointsPer; i++ {
			a = append(a, fmt.Sprintf("127.0.2.%d", i))
		}
		return a
	}()
	propA, propB = "127.0.3.1", "127.0.3.2"
)

func fillerAddr(i, k int) string {
	return fmt.Sprintf("10.%d.%d.%d", 1+i/250, i%250, 1+k)
}

const configMapYAML = `apiVersion: v1
kind: ConfigMap
metadata:
  name: tidegate
  namespace: tidegate
data:
  worker-processes: "1"
`

// ingressYAML is an Ingress routing host's "/" to svc:80.
func ingressYAML(name, host, svc string) string {
	return harness.IngressYAML(name, host, "Prefix / "+svc+":80")
}

// writeFleet writes the manifests of n Ingresses (the route under test
// plus n-1 fillers) into dir. The route under test's slice lives in its own
// file, bench-slice.yaml, so changing it touches one small file.
func writeFleet(dir string, n, port int, benchAddrs []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"configmap.yaml":   configMapYAML,
		"bench.yaml":       ingressYAML("bench", benchHost, "bench") + "---\n" + harness.ServiceYAML("bench", 80),
		"bench-slice.yaml": harness.SliceYAML("bench", "bench", port, benchAddrs),
	}
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("f%05d", i)
		addrs := make([]string, endpointsPer)
		for k := range addrs {
			addrs[k] = fillerAddr(i, k)
		}
		files[name+".yaml"] = ingressYAML(name, name+".example.com", name) + "---\n" + harness.ServiceYAML(name, 80) + "---\n" + harness.SliceYAML(name, name, port, addrs)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tempPaths are the http-level temp directories of a bench nginx under dir.
func tempPaths(dir string) string {
	var b strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		name := k
		if k == "client_body" {
			name = "body"
		}
		fmt.Fprintf(&b, "    %s_temp_path %s/tmp/%s;\n", k, dir, name)
	}
	return b.String()
}

// backendConf is the fast backend: one nginx worker answering a fixed body
// on every live address, and "A"/"B" on the propagation addresses.
func backendConf(dir string, port int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
%[2]s    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
`, dir, tempPaths(dir))
	for _, a := range liveAddrs {
		fmt.Fprintf(&b, "        listen %s:%d backlog=4096;\n", a, port)
	}
	fmt.Fprintf(&b, "        location / { return 200 %q; }\n    }\n", fixedBody)
	for _, ab := range [][2]string{{propA, "A"}, {propB, "B"}} {
		fmt.Fprintf(&b, "    server { listen %s:%d; location / { return 200 %q; } }\n", ab[0], port, ab[1]+"\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// staticConf is the reference: the same nginx binary and the same http
// settings as nginx/nginx.tmpl renders (workers, keepalive both sides,
// proxy headers, access log format), but a hand-written static upstream
// per route and no Lua at all.
func staticConf(dir string, listen, n, backendPort int) string {
	return referenceConf(dir, listen, n, backendPort, false)
}

// floorConf is staticConf with the route under test behind the smallest
// balancer_by_lua there is: round-robin over the same addresses from a Lua
// table, one set_current_peer per request, no log phase, no shared dict.
// What it loses against staticConf is the price of lua-nginx-module's
// balancer hook itself: a floor for any balancer written in Lua, tidegate's
// included.
func floorConf(dir string, listen, n, backendPort int) string {
	return referenceConf(dir, listen, n, backendPort, true)
}

func referenceConf(dir string, listen, n, backendPort int, luaFloor bool) string {
	// The floor loads the Lua module as nginx/nginx.tmpl does (with the
	// same lua_malloc_trim) and keeps the route's peers in a global table.
	modules, luaInit := "", ""
	if luaFloor {
		modules = "load_module /usr/lib/nginx/modules/ndk_http_module.so;\nload_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n"
		luaInit = "    lua_malloc_trim 0;\n    init_by_lua_block { " + floorTable(backendPort) + " }\n"
	}
	// The access log writes the line tidegate writes by default
	// (ingress-nginx's upstreaminfo), so both proxies format the same
	// fields per request.
	logFormat, err := nginx.Quote(nginx.DefaultLogFormat)
	if err != nil {
		panic(err) // a constant
	}
	var b strings.Builder
	fmt.Fprintf(&b, `worker_processes 1;
worker_shutdown_timeout 240s;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log notice;
%[4]sevents { worker_connections 16384; multi_accept on; }
http {
%[3]s%[5]s    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000;
    server_tokens off;
    server_names_hash_max_size 4096;
    server_names_hash_bucket_size 128;
    variables_hash_max_size 2048;
    client_max_body_size 1m;
    log_format upstreaminfo %[6]s;
    access_log %[1]s/logs/access.log upstreaminfo;
    map $http_host $tidegate_host { default $http_host; '' $host; }
    map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
    proxy_http_version 1.1;
    proxy_set_header Host $tidegate_host;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $tidegate_host;
    proxy_set_header X-Forwarded-Port $server_port;
    proxy_set_header X-Request-ID $request_id;
    proxy_connect_timeout 5s;
    proxy_read_timeout 60s;
    proxy_send_timeout 60s;
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 3;
    proxy_buffering on;
    server {
        listen %[2]d default_server reuseport backlog=4096;
        server_name _;
        location / { set $tidegate_backend ""; set $tidegate_ingress ""; return 404; }
    }
`, dir, listen, tempPaths(dir), modules, luaInit, logFormat)
	route := func(name, host string, addrs []string) {
		fmt.Fprintf(&b, "    upstream u_%s {\n", name)
		if luaFloor && name == "bench" {
			b.WriteString("        server 0.0.0.1:1;\n        balancer_by_lua_block {\n" + floorBalancer + "        }\n")
		} else {
			b.WriteString(serverLines(addrs, backendPort))
		}
		fmt.Fprintf(&b, "        keepalive 320;\n        keepalive_timeout 60s;\n        keepalive_requests 10000;\n    }\n")
		fmt.Fprintf(&b, "    server {\n        server_name %s;\n        listen %d;\n        location / { set $tidegate_backend default/%s:80; set $tidegate_ingress default/%s; proxy_pass http://u_%s; }\n    }\n",
			host, listen, name, name, name)
	}
	route("bench", benchHost, liveAddrs)
	for i := 1; i < n; i++ {
		name := fmt.Sprintf("f%05d", i)
		addrs := make([]string, endpointsPer)
		for k := range addrs {
			addrs[k] = fillerAddr(i, k)
		}
		route(name, name+".example.com", addrs)
	}
	b.WriteString("}\n")
	return b.String()
}

// serverLines are the upstream's server lines for addrs.
func serverLines(addrs []string, port int) string {
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "        server %s:%d;\n", a, port)
	}
	return b.String()
}

// floorBalancer is the body of the floor's balancer_by_lua_block: the
// route's live addresses in turn, from the global table floorTable makes.
const floorBalancer = `            local f = floor
            local i = f.i % #f.peers + 1
            f.i = i
            require("ngx.balancer").set_current_peer(f.peers[i], f.port)
`

func floorTable(backendPort int) string {
	peers := make([]string, len(liveAddrs))
	for i, a := range liveAddrs {
		peers[i] = strconv.Quote(a)
	}
	return fmt.Sprintf("floor = { i = 0, port = %d, peers = { %s } }", backendPort, strings.Join(peers, ", "))
}
