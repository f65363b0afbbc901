package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// annotatedIngress is an Ingress for host with one path and annotations
// given as "key=value" (the nginx.ingress.kubernetes.io/ prefix is added).
func annotatedIngress(name, host, pathType, path string, anns ...string) string {
	var a strings.Builder
	for _, kv := range anns {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&a, "    nginx.ingress.kubernetes.io/%s: %q\n", k, v)
	}
	return fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: %s
  annotations:
%sspec:
  ingressClassName: tidegate
  rules:
  - host: %q
    http:
      paths:
      - path: %q
        pathType: %s
        backend: {service: {name: web, port: {number: 80}}}
`, name, a.String(), host, path, pathType)
}

// TestAnnotationsBehave checks each supported annotation by what a client
// and the backend see through a real nginx.
func TestAnnotationsBehave(t *testing.T) {
	be := harness.StartBackends(t, "web")
	crt, key, _ := tlsutil.SelfSigned("tls.test", "tls.test")
	docs := []string{
		harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		tlsSecretYAML("tls", crt, key),
		annotatedIngress("rewrite", "rw.test", "ImplementationSpecific", "/something(/|$)(.*)", "rewrite-target=/$2"),
		annotatedIngress("regex", "rx.test", "ImplementationSpecific", "/api/v[0-9]+/", "use-regex=true"),
		annotatedIngress("regex-peer", "rx.test", "Prefix", "/static"),
		annotatedIngress("approot", "app.test", "Prefix", "/", "app-root=/app"),
		annotatedIngress("moved", "moved.test", "Prefix", "/", "permanent-redirect=https://new.test$request_uri"),
		annotatedIngress("moved-temp", "temp.test", "Prefix", "/", "temporal-redirect=https://elsewhere.test/"),
		annotatedIngress("small", "small.test", "Prefix", "/", "proxy-body-size=1k"),
		annotatedIngress("allow", "allow.test", "Prefix", "/", "whitelist-source-range=10.0.0.0/8"),
		annotatedIngress("allow-me", "allowme.test", "Prefix", "/", "whitelist-source-range=10.0.0.0/8,127.0.0.1"),
		annotatedIngress("deny", "deny.test", "Prefix", "/", "denylist-source-range=127.0.0.0/8"),
		annotatedIngress("cors", "cors.test", "Prefix", "/", "enable-cors=true", "cors-allow-origin=https://a.test, https://*.b.test", "cors-allow-methods=GET, POST"),
		annotatedIngress("limit", "limit.test", "Prefix", "/", "limit-rps=1", "limit-burst-multiplier=1"),
		annotatedIngress("vhost", "vhost.test", "Prefix", "/", "upstream-vhost=internal.svc", "x-forwarded-prefix=/shop"),
		annotatedIngress("force", "force.test", "Prefix", "/", "force-ssl-redirect=true"),
		strings.Replace(annotatedIngress("no-redirect", "tls.test", "Prefix", "/", "ssl-redirect=false"),
			"  rules:", "  tls: [{hosts: [tls.test], secretName: tls}]\n  rules:", 1),
		annotatedIngress("bad", "bad.test", "Prefix", "/", "proxy-body-size=1m; include /etc/passwd", "configuration-snippet=return 200 pwned;"),
	}
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join(docs, "---\n")})

	t.Run("rewrite-target with capture groups", func(t *testing.T) {
		for path, want := range map[string]string{"/something/new/x": "/new/x", "/something": "/", "/SOMETHING/a": "/a"} {
			if r := tg.Get("rw.test", path); r.Status != 200 || r.Path != want {
				t.Errorf("GET %s: backend saw %q (status %d), want %q", path, r.Path, r.Status, want)
			}
		}
	})
	t.Run("use-regex makes every path of the host a case-insensitive prefix regex", func(t *testing.T) {
		for path, want := range map[string]int{"/api/v2/x": 200, "/API/V10/": 200, "/api/vx/": 404, "/staticfoo": 200} {
			if r := tg.Get("rx.test", path); r.Status != want {
				t.Errorf("GET %s: %d, want %d", path, r.Status, want)
			}
		}
	})
	t.Run("app-root", func(t *testing.T) {
		r := tg.Get("app.test", "/")
		if r.Status != 302 || !strings.HasSuffix(r.Location, "app.test/app") {
			t.Errorf("GET /: %d Location %q, want 302 to /app", r.Status, r.Location)
		}
		if r := tg.Get("app.test", "/app"); r.Status != 200 {
			t.Errorf("GET /app: %d", r.Status)
		}
	})
	t.Run("permanent and temporal redirects", func(t *testing.T) {
		if r := tg.Get("moved.test", "/a?b=1"); r.Status != 301 || r.Location != "https://new.test/a?b=1" {
			t.Errorf("permanent-redirect: %d %q", r.Status, r.Location)
		}
		if r := tg.Get("temp.test", "/a"); r.Status != 302 || r.Location != "https://elsewhere.test/" {
			t.Errorf("temporal-redirect: %d %q", r.Status, r.Location)
		}
	})
	t.Run("proxy-body-size answers 413", func(t *testing.T) {
		big := strings.Repeat("x", 4096)
		if st := tg.Post("small.test", "/", big); st != 413 {
			t.Errorf("4 KiB body with a 1k limit: %d, want 413", st)
		}
		if st := tg.Post("small.test", "/", "tiny"); st != 200 {
			t.Errorf("small body: %d, want 200", st)
		}
	})
	t.Run("source ranges", func(t *testing.T) {
		for host, want := range map[string]int{"allow.test": 403, "allowme.test": 200, "deny.test": 403} {
			if r := tg.Get(host, "/"); r.Status != want {
				t.Errorf("%s from 127.0.0.1: %d, want %d", host, r.Status, want)
			}
		}
	})
	t.Run("cors preflight answered by nginx", func(t *testing.T) {
		h := tg.Options("cors.test", "/x", "https://a.test")
		if h.status != 204 || h.get("Access-Control-Allow-Origin") != "https://a.test" || h.get("Access-Control-Allow-Methods") != "GET, POST" ||
			h.get("Access-Control-Allow-Credentials") != "true" || h.get("Access-Control-Max-Age") != "1728000" {
			t.Errorf("preflight from an allowed origin: %d %v", h.status, h.header)
		}
		if h := tg.Options("cors.test", "/x", "https://x.b.test"); h.get("Access-Control-Allow-Origin") != "https://x.b.test" {
			t.Errorf("wildcard origin: %v", h.header)
		}
		if h := tg.Options("cors.test", "/x", "https://x.y.b.test"); h.get("Access-Control-Allow-Origin") != "" {
			t.Errorf("a two-label wildcard match must not be allowed: %v", h.header)
		}
		if h := tg.Options("cors.test", "/x", "https://evil.test"); h.status == 204 || h.get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from another origin: %d %v", h.status, h.header)
		}
	})
	t.Run("limit-rps answers 503 past the limit", func(t *testing.T) {
		got := map[int]int{}
		for i := 0; i < 20; i++ {
			got[tg.Get("limit.test", "/").Status]++
		}
		if got[503] == 0 || got[200] == 0 {
			t.Errorf("20 quick requests at 1 r/s (burst 1): %v, want some 200 and some 503", got)
		}
	})
	t.Run("upstream-vhost and x-forwarded-prefix reach the backend", func(t *testing.T) {
		r := tg.Get("vhost.test", "/")
		if r.Headers["Host"] != "internal.svc" || r.Headers["X-Forwarded-Prefix"] != "/shop" || r.Headers["X-Forwarded-Host"] != "vhost.test" {
			t.Errorf("headers at the backend: %v", r.Headers)
		}
	})
	t.Run("ssl redirect annotations", func(t *testing.T) {
		if r := tg.Get("force.test", "/p"); r.Status != 308 || !strings.HasPrefix(r.Location, "https://force.test:") {
			t.Errorf("force-ssl-redirect on a host without TLS: %d %q", r.Status, r.Location)
		}
		if r := tg.Get("tls.test", "/"); r.Status != 200 {
			t.Errorf("ssl-redirect=false on a TLS host: %d, want 200 over http", r.Status)
		}
	})
	t.Run("rejected annotations are ignored, the Ingress still serves", func(t *testing.T) {
		if r := tg.Get("bad.test", "/"); r.Status != 200 || strings.Contains(r.Body, "pwned") {
			t.Errorf("bad.test: %d %q", r.Status, r.Body)
		}
		if conf := harness.ReadFile(t, tg.WorkDir+"/nginx.conf"); strings.Contains(conf, "pwned") || strings.Contains(conf, "/etc/passwd") {
			t.Error("rejected annotation text reached nginx.conf")
		}
	})
}

// TestCompatibilityReport runs `tidegate render --report` on the example
// directory of real-world-style Ingresses.
func TestCompatibilityReport(t *testing.T) {
	out, err := exec.Command(harness.Bin, "render", "--manifests", "../../deploy/examples/compat", "--report").CombinedOutput()
	if err != nil {
		t.Fatalf("render --report: %v\n%s", err, out)
	}
	report := string(out)
	for _, want := range []string{
		"Ingress shop/api", "applied-with-difference  rewrite-target",
		"Ingress shop/legacy", "ignored-unsupported      configuration-snippet", "never pastes user text",
		"unknown                  proxy-bufer-size", "check the spelling",
		"rejected                 proxy-buffer-size", `"128k; include /etc/passwd" is not a size`,
		"applied                  whitelist-source-range",
		"summary: ",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// Post sends a POST with body and returns the status.
func (tg *tidegate) Post(host, path, body string) int {
	tg.T.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d%s", tg.HTTPPort, path), strings.NewReader(body))
	req.Host = host
	resp, err := tg.Client.Do(req)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type answer struct {
	status int
	header http.Header
}

func (a answer) get(k string) string { return a.header.Get(k) }

// Options sends a CORS preflight.
func (tg *tidegate) Options(host, path, origin string) answer {
	tg.T.Helper()
	req, _ := http.NewRequest("OPTIONS", fmt.Sprintf("http://127.0.0.1:%d%s", tg.HTTPPort, path), nil)
	req.Host = host
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := tg.Client.Do(req)
	if err != nil {
		return answer{status: -1}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return answer{resp.StatusCode, resp.Header}
}

// TestServerNames: server-alias serves more names; from-to-www-redirect
// sends the bare name to www (and back), but never takes a name a rule
// serves.
func TestServerNames(t *testing.T) {
	be := harness.StartBackends(t, "web")
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join([]string{
		harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		annotatedIngress("alias", "main.test", "Prefix", "/", "server-alias=other.test, *.more.test"),
		annotatedIngress("www", "www.shop.test", "Prefix", "/", "from-to-www-redirect=true"),
		annotatedIngress("bare", "blog.test", "Prefix", "/", "from-to-www-redirect=true"),
		annotatedIngress("taken", "www.blog.test", "Prefix", "/"),
	}, "---\n")})
	for _, host := range []string{"main.test", "other.test", "x.more.test", "www.blog.test", "blog.test"} {
		if r := tg.Get(host, "/"); r.Status != 200 || r.Name != "web" {
			t.Errorf("%s: %d %q", host, r.Status, r.Name)
		}
	}
	if r := tg.Get("shop.test", "/p?q=1"); r.Status != 308 || r.Location != fmt.Sprintf("http://www.shop.test:%d/p?q=1", tg.HTTPPort) {
		t.Errorf("from-to-www-redirect: %d %q", r.Status, r.Location)
	}
}

// TestProxyRedirect: proxy-redirect-from/-to rewrite the Location a backend
// answers with (an app that knows only its own address), with a variable in
// the replacement; "off" leaves it as it is.
func TestProxyRedirect(t *testing.T) {
	port := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://internal.svc:8080/app/login?next=/")
		w.WriteHeader(http.StatusFound)
	}))
	web := harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", port, []string{"127.0.0.1"})
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join([]string{web,
		annotatedIngress("rewrite", "rw.test", "Prefix", "/", "proxy-redirect-from=http://internal.svc:8080/app/", "proxy-redirect-to=https://$host/"),
		annotatedIngress("keep", "off.test", "Prefix", "/", "proxy-redirect-from=off"),
		annotatedIngress("bad", "bad.test", "Prefix", "/", "proxy-redirect-from=http://internal.svc/", "proxy-redirect-to=https://$remote_addr/"),
	}, "---\n")})
	for host, want := range map[string]string{
		"rw.test":  "https://rw.test/login?next=/",
		"off.test": "http://internal.svc:8080/app/login?next=/",
		"bad.test": "http://internal.svc:8080/app/login?next=/",
	} {
		if r := tg.Get(host, "/"); r.Status != 302 || r.Location != want {
			t.Errorf("%s: %d Location %q, want %q", host, r.Status, r.Location, want)
		}
	}
	if log := tg.LogText(); !strings.Contains(log, "proxy-redirect-to") || !strings.Contains(log, "$remote_addr") {
		t.Errorf("the refused proxy-redirect-to must be reported")
	}
}

// TestMirror: mirror-target sends a copy of each request (method, URI,
// body) to another URL while the client gets the backend's answer;
// mirror-host sets the copy's Host, mirror-request-body "off" leaves the
// body out. A target that is down changes nothing for the client.
func TestMirror(t *testing.T) {
	be := harness.StartBackends(t, "web")
	type copied struct{ method, uri, host, body, forwardedFor string }
	copies := make(chan copied, 16)
	port := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		copies <- copied{r.Method, r.RequestURI, r.Host, string(b), r.Header.Get("X-Forwarded-For")}
		w.WriteHeader(http.StatusTeapot) // never reaches the client
	}))
	target := fmt.Sprintf("http://127.0.0.1:%d$request_uri", port)
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		annotatedIngress("mirrored", "m.test", "Prefix", "/", "mirror-target="+target, "mirror-host=shadow.example"),
		annotatedIngress("nobody", "nb.test", "Prefix", "/", "mirror-target="+target, "mirror-request-body=off"),
		annotatedIngress("down", "down.test", "Prefix", "/", "mirror-target=http://127.0.0.1:1$request_uri"),
	}, "---\n")})
	next := func() copied {
		select {
		case c := <-copies:
			return c
		case <-time.After(harness.Patience):
			t.Fatalf("no mirrored request within %s", harness.Patience)
		}
		return copied{}
	}
	if st := tg.Post("m.test", "/orders?id=7", "hello"); st != 200 {
		t.Fatalf("POST through a mirrored location: %d, want the backend's 200", st)
	}
	if c := next(); c.method != "POST" || c.uri != "/orders?id=7" || c.host != "shadow.example" || c.body != "hello" || c.forwardedFor != "127.0.0.1" {
		t.Errorf("mirrored copy %+v", c)
	}
	if st := tg.Post("nb.test", "/upload", "secret body"); st != 200 {
		t.Fatalf("POST nb.test: %d", st)
	}
	if c := next(); c.uri != "/upload" || c.body != "" || c.host != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("copy without body: %+v (Host by default is the target's)", c)
	}
	if r := tg.Get("down.test", "/"); r.Status != 200 || r.Name != "web" {
		t.Errorf("with the mirror target down: %d from %q", r.Status, r.Name)
	}
}
