package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/echo"
	"github.com/tidegate/tidegate/test/harness"
)

// clientForwarding are request headers a client may forge, each with the
// value it sends. Some names are sent in lower or upper case: nginx
// matches header names whatever their case.
var clientForwarding = map[string]string{
	"Forwarded":          "for=203.0.113.66;proto=https;host=evil.test",
	"x-forwarded-prefix": "/evil",
	"X-Forwarded-Server": "evil.test",
	"X-Forwarded-Uri":    "/public",
	"X-Forwarded-Method": "GET",
	"X-Forwarded-Scheme": "https",
	"X-Scheme":           "https",
	"x-original-url":     "/admin",
	"X-Rewrite-Url":      "/admin",
	"PROXY":              "http://evil.test:3128",
	"X-Forwarded-Proto":  "https",
	"X-Forwarded-Port":   "4443",
	"X-Forwarded-Host":   "evil.test",
}

// forgedGet sends GET http://host/ with every clientForwarding header, the
// names exactly as written there, and decodes what the backend saw.
func (tg *tidegate) forgedGet(host string) (int, map[string]string) {
	tg.T.Helper()
	req, err := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", tg.HTTPPort), nil)
	if err != nil {
		tg.T.Fatal(err)
	}
	req.Host = host
	for k, v := range clientForwarding {
		req.Header[k] = []string{v} // not canonicalised: sent as written
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		tg.T.Fatalf("GET %s: %v", host, err)
	}
	body := harness.ReadBody(resp)
	var r echo.Reply
	if err := json.Unmarshal([]byte(body), &r); err != nil && resp.StatusCode == 200 {
		tg.T.Fatalf("GET %s: %v in %q", host, err, body)
	}
	return resp.StatusCode, r.Headers
}

// startH2CEcho starts a cleartext HTTP/2 server on 127.0.0.1 (what nginx's
// grpc_pass speaks) answering with the echo backend's JSON.
func startH2CEcho(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protocols, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := echo.Reply{Name: "h2c", Host: r.Host, Path: r.URL.Path, Method: r.Method, Headers: map[string]string{}}
		for k, v := range r.Header {
			rep.Headers[k] = strings.Join(v, ", ")
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestUntrustedForwardingHeaders: without use-forwarded-headers, what a
// client sends in Forwarded, X-Forwarded-Prefix, -Server, -Uri, -Method,
// -Scheme, X-Scheme, X-Original-URL, X-Rewrite-URL and Proxy (httpoxy)
// never reaches a backend: plain and annotated locations (which repeat the
// proxy headers), gRPC backends, the auth service and the error backend.
// X-Forwarded-Prefix is the annotation's where it is set. With
// use-forwarded-headers, the proxy in front is trusted: its forwarding
// headers reach the backend as it sent them (X-Forwarded-Proto, -Port and
// -Host too, as in ingress-nginx); Proxy is still dropped.
func TestUntrustedForwardingHeaders(t *testing.T) {
	be := harness.StartBackends(t, "web")
	h2c := startH2CEcho(t)
	auth := startAuthServer(t)
	authPort := auth.ln.Addr().(*net.TCPAddr).Port
	files := map[string]string{
		"svc.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs) + "---\n" +
			harness.ServiceYAML("h2", 80) + "---\n" + harness.SliceYAML("h2-1", "h2", h2c, []string{"127.0.0.1"}),
		"plain.yaml":  harness.IngressYAML("plain", "plain.test", "Prefix / web:80"),
		"prefix.yaml": annotatedIngress("prefix", "prefix.test", "Prefix", "/", "x-forwarded-prefix=/shop"),
		"grpc.yaml": strings.Replace(annotatedIngress("grpc", "grpc.test", "Prefix", "/", "backend-protocol=GRPC"),
			"name: web", "name: h2", 1),
		"auth.yaml": annotatedIngress("auth", "auth.test", "Prefix", "/", "auth-url="+auth.URL+"/verify"),
		// The auth service, as an application, answers 401: the error
		// backend (web) answers instead.
		"errors.yaml": harness.ServiceYAML("denies", 80) + "---\n" + harness.SliceYAML("denies-1", "denies", authPort, []string{"127.0.0.1"}) + "---\n" +
			strings.Replace(annotatedIngress("errors", "errors.test", "Prefix", "/", "custom-http-errors=401", "default-backend=web"),
				"name: web", "name: denies", 1),
	}
	tg := startTidegate(t, files)

	// What each backend must see instead of the client's value ("" for
	// nothing), without use-forwarded-headers.
	want := map[string]string{
		"Forwarded": "", "X-Forwarded-Prefix": "", "X-Forwarded-Server": "", "X-Forwarded-Uri": "",
		"X-Forwarded-Method": "", "X-Original-Url": "", "X-Rewrite-Url": "", "Proxy": "",
		"X-Forwarded-Scheme": "http", "X-Scheme": "http", "X-Forwarded-Proto": "http",
		"X-Forwarded-Port": fmt.Sprint(tg.HTTPPort),
	}
	check := func(what string, got map[string]string, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: the backend got %s: %q, want %q", what, k, got[k], v)
			}
		}
	}
	for _, host := range []string{"plain.test", "prefix.test", "grpc.test"} {
		st, got := tg.forgedGet(host)
		if st != 200 {
			t.Fatalf("%s: %d", host, st)
		}
		w := maps(want, "X-Forwarded-Host", host)
		if host == "prefix.test" {
			w["X-Forwarded-Prefix"] = "/shop"
		}
		check(host, got, w)
	}
	st, got := tg.forgedGet("errors.test")
	if got["X-Code"] != "401" { // the echo backend answers 200
		t.Fatalf("errors.test: %d, X-Code %q: want the error backend's answer to a 401", st, got["X-Code"])
	}
	check("the error backend", got, maps(want, "X-Forwarded-Host", "errors.test"))
	if st, _ := tg.forgedGet("auth.test"); st != 401 {
		t.Fatalf("auth.test without a token: %d, want 401", st)
	}
	seen, _, _ := auth.seen()
	got = map[string]string{}
	for k := range seen {
		got[k] = seen.Get(k)
	}
	// ingress-nginx's auth request: X-Forwarded-Proto empty, X-Original-URL
	// tidegate's.
	check("the auth service", got, maps(want, "X-Forwarded-Host", "auth.test", "X-Forwarded-Proto", "",
		"X-Original-Url", "http://auth.test/"))

	tg.Write("cm.yaml", configMapYAML("use-forwarded-headers", "true"))
	trusted := map[string]string{}
	for k, v := range clientForwarding {
		trusted[http.CanonicalHeaderKey(k)] = v
	}
	trusted["Proxy"] = ""
	trusted["X-Forwarded-Scheme"], trusted["X-Scheme"] = "https", "https" // X-Forwarded-Proto's
	// Until every old worker is gone, a request may still reach one.
	tg.Eventually("the client's forwarding headers are trusted", func() string {
		for _, host := range []string{"plain.test", "prefix.test", "grpc.test"} {
			st, got := tg.forgedGet(host)
			w := maps(trusted)
			if host == "prefix.test" {
				w["X-Forwarded-Prefix"] = "/shop"
			}
			for k, v := range w {
				if st != 200 || got[k] != v {
					return fmt.Sprintf("%s: %d, the backend got %s: %q, want %q", host, st, k, got[k], v)
				}
			}
		}
		return ""
	})
}

// maps copies m and sets the pairs kv ("key", "value", ...) in the copy.
func maps(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
