package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// TestRouting checks Ingress v1 host and path semantics through real nginx.
func TestRouting(t *testing.T) {
	a := harness.StartBackends(t, "a")
	b := harness.StartBackends(t, "b")
	c := harness.StartBackends(t, "c")
	def := harness.StartBackends(t, "default")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("a", 80) + "---\n" + harness.ServiceYAML("b", 80) + "---\n" + harness.ServiceYAML("c", 80) + "---\n" + harness.ServiceYAML("def", 80),
		"eps.yaml": harness.SliceYAML("a-1", "a", a.Port, a.Addrs) + "---\n" + harness.SliceYAML("b-1", "b", b.Port, b.Addrs) + "---\n" +
			harness.SliceYAML("c-1", "c", c.Port, c.Addrs) + "---\n" + harness.SliceYAML("def-1", "def", def.Port, def.Addrs),
		"app.yaml": harness.IngressYAML("app", "app.example.com",
			"Prefix /foo a:80", "Exact /exact b:80", "Prefix /foo/bar/ c:80", "ImplementationSpecific /impl c:80"),
		"wild.yaml": harness.IngressYAML("wild", "*.wild.test", "Prefix / b:80"),
		"default.yaml": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: fallback}
spec:
  ingressClassName: tidegate
  defaultBackend: {service: {name: def, port: {number: 80}}}
`,
		"other-class.yaml": strings.Replace(harness.IngressYAML("theirs", "theirs.io", "Prefix / a:80"), "ingressClassName: tidegate", "ingressClassName: nginx", 1),
	})
	tests := map[string]struct {
		host, path string
		want       string
	}{
		"prefix matches itself":                      {"app.example.com", "/foo", "a"},
		"prefix matches with trailing slash":         {"app.example.com", "/foo/", "a"},
		"prefix matches sub-paths":                   {"app.example.com", "/foo/x/y", "a"},
		"prefix is element-wise":                     {"app.example.com", "/foobar", "default"},
		"longest prefix wins":                        {"app.example.com", "/foo/bar/baz", "c"},
		"prefix with trailing slash matches without": {"app.example.com", "/foo/bar", "c"},
		"longest prefix is element-wise too":         {"app.example.com", "/foo/barx", "a"},
		"exact matches only itself":                  {"app.example.com", "/exact", "b"},
		"exact does not match sub-paths":             {"app.example.com", "/exact/", "default"},
		"implementation specific is a string prefix": {"app.example.com", "/implx", "c"},
		"host is case-insensitive, port ignored":     {"APP.Example.COM:8080", "/foo", "a"},
		"wildcard matches one label":                 {"x.wild.test", "/", "b"},
		"wildcard does not match two labels":         {"x.y.wild.test", "/", "default"},
		"wildcard does not match the bare domain":    {"wild.test", "/", "default"},
		"unknown host gets the default backend":      {"unknown.io", "/", "default"},
		"other ingress classes are ignored":          {"theirs.io", "/", "default"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := tg.Get(tc.host, tc.path)
			if r.Status != 200 || r.Name != tc.want {
				t.Errorf("GET %s%s: got %d from %q, want 200 from %q", tc.host, tc.path, r.Status, r.Name, tc.want)
			}
		})
	}
}

func TestBuiltInNotFoundAndHeaders(t *testing.T) {
	a := harness.StartBackends(t, "a")
	tg := startTidegate(t, map[string]string{
		"all.yaml": harness.ServiceYAML("a", 80) + "---\n" + harness.SliceYAML("a-1", "a", a.Port, a.Addrs) + "---\n" +
			harness.IngressYAML("app", "app.example.com", "Prefix /api a:80"),
	})
	if r := tg.Get("nowhere.io", "/"); r.Status != 404 {
		t.Errorf("unknown host without a default backend: got %d, want 404", r.Status)
	}
	if r := tg.Get("app.example.com", "/other"); r.Status != 404 {
		t.Errorf("unmatched path without a default backend: got %d, want 404", r.Status)
	}
	r := tg.Get("app.example.com:8080", "/api/a%2Fb/./c?x=1")
	if r.Status != 200 {
		t.Fatalf("got %d: %s", r.Status, r.Body)
	}
	if r.Path != "/api/a%2Fb/./c" || r.Query != "x=1" {
		t.Errorf("backend saw path %q query %q; the path must reach it exactly as sent", r.Path, r.Query)
	}
	want := map[string]string{
		"Host": "app.example.com:8080", "X-Real-Ip": "127.0.0.1", "X-Forwarded-For": "127.0.0.1",
		"X-Forwarded-Proto": "http", "X-Forwarded-Host": "app.example.com:8080",
		"X-Forwarded-Port": fmt.Sprint(tg.HTTPPort),
	}
	for k, v := range want {
		if got := r.Headers[k]; got != v {
			t.Errorf("header %s: got %q, want %q", k, got, v)
		}
	}
}

// counts sends n requests and counts the answers by backend name (or status).
func counts(tg *tidegate, host, path string, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		r := tg.Get(host, path)
		if r.Status == 200 {
			out[r.Name]++
		} else {
			out[fmt.Sprint(r.Status)]++
		}
	}
	return out
}

// TestEndpointChangesNeverReload: round robin reaches every ready endpoint,
// and editing the EndpointSlice file moves traffic with the same nginx
// workers (no reload).
func TestEndpointChangesNeverReload(t *testing.T) {
	old := harness.StartBackends(t, "old-1", "old-2", "old-3")
	fresh := harness.StartBackends(t, "new-1")
	tg := startTidegate(t, map[string]string{
		"app.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.IngressYAML("web", "web.test", "Prefix / web:80"),
		"eps.yaml": harness.SliceYAML("web-1", "web", old.Port, old.Addrs),
	})
	got := counts(tg, "web.test", "/", 300)
	for _, name := range []string{"old-1", "old-2", "old-3"} {
		if got[name] < 90 || got[name] > 110 {
			t.Errorf("round robin: %s got %d of 300 requests, want 100±10 (all: %v)", name, got[name], got)
		}
	}
	reloads := tg.SettledReloads()
	workers := tg.Workers()

	tg.Write("eps.yaml", harness.SliceYAML("web-1", "web", fresh.Port, fresh.Addrs))
	tg.Eventually("traffic moves to the new endpoint", func() string {
		if r := tg.Get("web.test", "/"); r.Name != "new-1" {
			return fmt.Sprintf("served by %q (status %d)", r.Name, r.Status)
		}
		return ""
	})
	if got := counts(tg, "web.test", "/", 50); got["new-1"] != 50 {
		t.Errorf("after the move every request must reach new-1: %v", got)
	}

	tg.Write("eps.yaml", harness.SliceYAML("web-1", "web", fresh.Port, nil))
	tg.Eventually("no endpoint answers 503", func() string {
		if r := tg.Get("web.test", "/"); r.Status != 503 {
			return fmt.Sprintf("status %d", r.Status)
		}
		return ""
	})

	tg.Write("eps.yaml", harness.SliceYAML("web-1", "web", old.Port, old.Addrs[:1], old.Addrs[1]))
	tg.Eventually("endpoints come back", func() string {
		if r := tg.Get("web.test", "/"); r.Name != "old-1" {
			return fmt.Sprintf("served by %q (status %d)", r.Name, r.Status)
		}
		return ""
	})
	if got := counts(tg, "web.test", "/", 30); got["old-1"] != 30 {
		t.Errorf("a draining endpoint must not serve while a ready one exists: %v", got)
	}
	tg.Write("eps.yaml", harness.SliceYAML("web-1", "web", old.Port, nil, old.Addrs[1]))
	tg.Eventually("draining endpoint serves when no ready one is left", func() string {
		if r := tg.Get("web.test", "/"); r.Name != "old-2" {
			return fmt.Sprintf("served by %q (status %d)", r.Name, r.Status)
		}
		return ""
	})

	if now := tg.Workers(); !reflect.DeepEqual(now, workers) {
		t.Errorf("nginx workers changed from %v to %v: an endpoint change reloaded nginx", workers, now)
	}
	if n := tg.Reloads(); n != reloads {
		t.Errorf("tidegate_reloads_total went from %d to %d on endpoint changes", reloads, n)
	}
}

// TestNoEndpointIs503ForEveryProtocol: a backend without endpoints answers
// 503 (as ingress-nginx does) whatever protocol the location proxies with,
// and the other hosts are unaffected.
func TestNoEndpointIs503ForEveryProtocol(t *testing.T) {
	live := harness.StartBackends(t, "live")
	files := map[string]string{
		"svc.yaml":  harness.ServiceYAML("web", 80) + "---\n" + harness.ServiceYAML("other", 80),
		"eps.yaml":  harness.SliceYAML("other-1", "other", live.Port, live.Addrs),
		"live.yaml": harness.IngressYAML("live", "live.test", "Prefix / other:80"),
	}
	for _, proto := range []string{"HTTP", "HTTPS", "GRPC", "GRPCS"} {
		name := strings.ToLower(proto)
		files[name+".yaml"] = annotatedIngress(name, name+".test", "Prefix", "/", "backend-protocol="+proto)
	}
	tg := startTidegate(t, files)
	for _, proto := range []string{"HTTP", "HTTPS", "GRPC", "GRPCS"} {
		host := strings.ToLower(proto) + ".test"
		if r := tg.Get(host, "/x"); r.Status != 503 {
			t.Errorf("%s backend with no endpoint: status %d, want 503 (%s)", proto, r.Status, r.Body)
		}
	}
	if r := tg.Get("live.test", "/"); r.Status != 200 || r.Name != "live" {
		t.Errorf("the host with endpoints: %d from %q", r.Status, r.Name)
	}
}

// TestNewHostReloadsWithoutDroppingTraffic: a structural change reloads
// nginx; other hosts answer throughout.
func TestNewHostReloadsWithoutDroppingTraffic(t *testing.T) {
	a := harness.StartBackends(t, "a-1", "a-2")
	b := harness.StartBackends(t, "b-1")
	tg := startTidegate(t, map[string]string{
		"a.yaml": harness.ServiceYAML("a", 80) + "---\n" + harness.SliceYAML("a-1", "a", a.Port, a.Addrs) + "---\n" + harness.IngressYAML("a", "a.test", "Prefix / a:80"),
		"b.yaml": harness.ServiceYAML("b", 80) + "---\n" + harness.SliceYAML("b-1", "b", b.Port, b.Addrs),
	})
	reloads := tg.SettledReloads()
	workers := tg.Workers()

	stop := tg.Hammer("a.test", 4)
	time.Sleep(200 * time.Millisecond)
	tg.Write("b-ingress.yaml", harness.IngressYAML("b", "b.test", "Prefix / b:80"))
	tg.Eventually("the new host is served", func() string {
		if r := tg.Get("b.test", "/"); r.Name != "b-1" {
			return fmt.Sprintf("served by %q (status %d)", r.Name, r.Status)
		}
		return ""
	})
	time.Sleep(200 * time.Millisecond)
	sent, failed := stop()
	t.Logf("requests to a.test during the reload: %d sent, %d failed", sent, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests to the other host failed during the reload", failed, sent)
	}
	if n := tg.Reloads(); n != reloads+1 {
		t.Errorf("reloads went from %d to %d, want exactly one more", reloads, n)
	}
	if now := tg.Workers(); reflect.DeepEqual(now, workers) {
		t.Errorf("nginx workers are unchanged (%v): the new host was not a reload", now)
	}
}

func tlsSecretYAML(name string, crt, key []byte) string {
	indent := func(b []byte) string {
		return "    " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    ")
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n%s\n  tls.key: |\n%s\n",
		name, indent(crt), indent(key))
}

// TestTLS: certificates by SNI (exact, wildcard, default), the 308
// redirect, and a renewed certificate served without a reload.
func TestTLS(t *testing.T) {
	be := harness.StartBackends(t, "secure")
	crtA, keyA, _ := tlsutil.SelfSigned("a.tls.test", "a.tls.test")
	crtW, keyW, _ := tlsutil.SelfSigned("wildcard", "*.w.test")
	tg := startTidegate(t, map[string]string{
		"svc.yaml":     harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"secrets.yaml": tlsSecretYAML("a-tls", crtA, keyA) + "---\n" + tlsSecretYAML("w-tls", crtW, keyW),
		"ing.yaml": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: secure}
spec:
  ingressClassName: tidegate
  tls:
  - {hosts: [a.tls.test], secretName: a-tls}
  - {hosts: ["*.w.test"], secretName: w-tls}
  - {hosts: [missing.tls.test], secretName: does-not-exist}
  rules:
  - host: a.tls.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: "*.w.test"
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: missing.tls.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
  - host: plain.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
`,
	})
	tests := map[string]struct{ sni, wantCN string }{
		"exact host":                   {"a.tls.test", "a.tls.test"},
		"wildcard host":                {"x.w.test", "wildcard"},
		"wildcard is one label only":   {"x.y.w.test", "tidegate default certificate"},
		"missing secret: default cert": {"missing.tls.test", "tidegate default certificate"},
		"unknown name: default cert":   {"unknown.test", "tidegate default certificate"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, cn, _ := tg.GetTLS(tc.sni, "/")
			if cn != tc.wantCN {
				t.Errorf("SNI %s: certificate CN %q, want %q", tc.sni, cn, tc.wantCN)
			}
			if tc.sni != "unknown.test" && tc.sni != "x.y.w.test" && (r.Status != 200 || r.Name != "secure") {
				t.Errorf("SNI %s: got %d %q over https", tc.sni, r.Status, r.Name)
			}
			if r.Status == 200 && r.Headers["X-Forwarded-Proto"] != "https" {
				t.Errorf("X-Forwarded-Proto over TLS: %q", r.Headers["X-Forwarded-Proto"])
			}
		})
	}
	r := tg.Get("a.tls.test", "/some/path?q=1")
	if want := fmt.Sprintf("https://a.tls.test:%d/some/path?q=1", tg.HTTPSPort); r.Status != 308 || r.Location != want {
		t.Errorf("plain http on a TLS host: got %d Location %q, want 308 %q", r.Status, r.Location, want)
	}
	if r := tg.Get("plain.test", "/"); r.Status != 200 {
		t.Errorf("a host without TLS must not redirect: got %d", r.Status)
	}

	reloads := tg.SettledReloads()
	workers := tg.Workers()
	_, _, oldSerial := tg.GetTLS("a.tls.test", "/")
	crt2, key2, _ := tlsutil.SelfSigned("a.tls.test", "a.tls.test")
	tg.Write("secrets.yaml", tlsSecretYAML("a-tls", crt2, key2)+"---\n"+tlsSecretYAML("w-tls", crtW, keyW))
	tg.Eventually("the renewed certificate is served", func() string {
		if _, _, s := tg.GetTLS("a.tls.test", "/"); s == oldSerial {
			return "old serial " + s
		}
		return ""
	})
	if now := tg.Workers(); !reflect.DeepEqual(now, workers) || tg.Reloads() != reloads {
		t.Errorf("certificate renewal reloaded nginx (workers %v -> %v)", workers, now)
	}
}

// TestBadInputIsolated: a malformed file, a malformed Secret and a hostile
// path are reported and skipped; every other host keeps serving and later
// good changes still apply.
func TestBadInputIsolated(t *testing.T) {
	be := harness.StartBackends(t, "good")
	tg := startTidegate(t, map[string]string{
		"svc.yaml":  harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"good.yaml": harness.IngressYAML("good", "good.test", "Prefix / web:80"),
	})
	tg.Write("broken.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: x\n  : [")
	tg.Write("bad-secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: bad-tls}\ntype: kubernetes.io/tls\nstringData: {tls.crt: nope, tls.key: nope}\n")
	tg.Write("bad-ingress.yaml", `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: evil}
spec:
  ingressClassName: tidegate
  tls: [{hosts: [tls.test], secretName: bad-tls}]
  rules:
  - host: tls.test
    http:
      paths:
      - {path: "/ok", pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: "/x { return 200 pwned; } location /y", pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 80}}}}
`)
	tg.Write("later.yaml", harness.IngressYAML("later", "later.test", "Prefix / web:80"))
	tg.Eventually("a good change after the bad files applies", func() string {
		if r := tg.Get("later.test", "/"); r.Name != "good" {
			return fmt.Sprintf("later.test served by %q (status %d)", r.Name, r.Status)
		}
		return ""
	})
	if r := tg.Get("good.test", "/"); r.Status != 200 || r.Name != "good" {
		t.Errorf("good.test: got %d %q", r.Status, r.Name)
	}
	if r, cn, _ := tg.GetTLS("tls.test", "/ok"); r.Status != 200 || cn != "tidegate default certificate" {
		t.Errorf("host with a malformed Secret: got %d with certificate %q, want 200 with the default certificate", r.Status, cn)
	}
	if r, _, _ := tg.GetTLS("tls.test", "/x"); r.Status == 200 && strings.Contains(r.Body, "pwned") {
		t.Errorf("the hostile path reached nginx.conf")
	}
	conf := harness.ReadFile(t, tg.WorkDir+"/nginx.conf")
	if strings.Contains(conf, "pwned") {
		t.Errorf("nginx.conf contains text from the hostile path")
	}
}

// TestRelativeDirectories: `tidegate local --manifests m --workdir wd`, both
// relative to the current directory, serves (nginx resolves relative paths
// from its own prefix, so tidegate must not hand it any).
func TestRelativeDirectories(t *testing.T) {
	be := harness.StartBackends(t, "rel")
	cwd := t.TempDir()
	if err := os.Mkdir(filepath.Join(cwd, "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	tg := startTidegateWith(t, map[string]string{
		"app.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs) + "---\n" +
			harness.IngressYAML("app", "app.test", "Prefix / web:80"),
	}, harness.Options{Cwd: cwd, Dir: filepath.Join(cwd, "m"), WorkDir: filepath.Join(cwd, "wd"),
		Args: []string{"--manifests", "m", "--workdir", "wd"}})
	if r := tg.Get("app.test", "/"); r.Status != 200 || r.Name != "rel" {
		t.Errorf("app.test: %d %q", r.Status, r.Name)
	}
	if _, err := os.Stat(filepath.Join(cwd, "wd", "nginx.conf")); err != nil {
		t.Errorf("nginx.conf is not in the relative working directory: %v", err)
	}
}

// TestErrorLogToStderr: with --error-log /dev/stderr (the DaemonSet's
// setting), nginx's errors reach tidegate's stderr, where `kubectl logs`
// shows them, and no error log grows in the working directory.
func TestErrorLogToStderr(t *testing.T) {
	be := harness.StartBackends(t, "gone")
	tg := startTidegateWith(t, map[string]string{
		"app.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs) + "---\n" +
			harness.IngressYAML("app", "app.test", "Prefix / web:80"),
	}, harness.Options{Args: []string{"--error-log", "/dev/stderr"}})
	be.Kill(be.Addrs[0])
	if r := tg.Get("app.test", "/"); r.Status != 502 {
		t.Errorf("a refused endpoint: %d, want 502", r.Status)
	}
	tg.Eventually("nginx's error in tidegate's stderr", func() string {
		if !strings.Contains(tg.LogText(), "connect() failed (111: Connection refused) while connecting to upstream") {
			return "not there"
		}
		return ""
	})
	if _, err := os.Stat(filepath.Join(tg.WorkDir, "logs", "error.log")); err == nil {
		t.Errorf("an error log was written in the working directory")
	}
}
