package e2e

import (
	"compress/gzip"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// TestGlobalSettings checks ConfigMap keys by their effect: HSTS on HTTPS
// answers only, gzip, the full X-Forwarded-For chain, and an unknown key
// reported.
func TestGlobalSettings(t *testing.T) {
	be := harness.StartBackends(t, "web")
	crt, key, _ := tlsutil.SelfSigned("g.test", "g.test")
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			tlsSecretYAML("g-tls", crt, key),
			strings.Replace(harness.IngressYAML("g", "g.test", "Prefix / web:80"), "  rules:", "  tls: [{hosts: [g.test], secretName: g-tls}]\n  rules:", 1),
			harness.IngressYAML("plain", "plain.test", "Prefix / web:80"),
			`apiVersion: v1
kind: ConfigMap
metadata: {name: tidegate, namespace: tidegate}
data:
  hsts-max-age: "600"
  hsts-include-subdomains: "false"
  use-gzip: "true"
  compute-full-forwarded-for: "true"
  proxy-bodysize: "1m"
`}, "---\n"),
	})
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true,
		TLSClientConfig: &tls.Config{ServerName: "g.test", InsecureSkipVerify: true}}}
	req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/", tg.HTTPSPort), nil)
	req.Host = "g.test"
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=600" {
		t.Errorf("HSTS over https: %q, want max-age=600", got)
	}
	if got := resp.Header.Get("Content-Encoding"); got != "gzip" {
		t.Errorf("use-gzip: Content-Encoding %q", got)
	} else if zr, err := gzip.NewReader(resp.Body); err == nil {
		zr.Close()
	}
	plain, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", tg.HTTPPort), nil)
	plain.Host = "plain.test"
	plain.Header.Set("X-Forwarded-For", "203.0.113.7")
	r2, err := tg.Client.Do(plain)
	if err != nil {
		t.Fatal(err)
	}
	body := harness.ReadBody(r2)
	if r2.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS must not be sent over plain http")
	}
	if !strings.Contains(body, `"X-Forwarded-For":"203.0.113.7, 127.0.0.1"`) {
		t.Errorf("compute-full-forwarded-for: backend saw %s", body)
	}
	if log := harness.ReadFile(t, tg.LogPath); !strings.Contains(log, "data.proxy-bodysize") || !strings.Contains(log, "check the spelling") {
		t.Errorf("an unknown ConfigMap key must be reported")
	}
}

// TestBufferSettings: ingress-nginx's buffer keys, by their effect. By
// default a 12 KiB cookie is refused (400) and a backend's 12 KiB header
// is a 502; with large-client-header-buffers and proxy-buffer-size raised,
// both pass; with enable-underscores-in-headers a header named with "_"
// reaches the backend. A bad value is reported and nginx keeps its default.
func TestBufferSettings(t *testing.T) {
	big := strings.Repeat("x", 12<<10)
	port := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Big", big)
		fmt.Fprintf(w, "cookie %d, under_score %q", len(r.Header.Get("Cookie")), r.Header.Get("Under_score"))
	}))
	tg := startTidegate(t, map[string]string{
		"app.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", port, []string{"127.0.0.1"}) + "---\n" +
			harness.IngressYAML("app", "app.test", "Prefix / web:80"),
	})
	get := func() (int, string) {
		resp, body, err := tg.Fresh("app.test", "/", "Cookie: session="+big, "Under_score: yes")
		if err != nil {
			return -1, err.Error()
		}
		return resp.StatusCode, body
	}
	if status, body := get(); status != 400 && !strings.Contains(body, "broken pipe") && !strings.Contains(body, "connection reset") {
		t.Errorf("a 12 KiB cookie with nginx's defaults: %d %s, want 400 (or the connection closed while it was sent)", status, body)
	}
	tg.Write("cm.yaml", `apiVersion: v1
kind: ConfigMap
metadata: {name: tidegate, namespace: tidegate}
data:
  large-client-header-buffers: "4 16k"
  proxy-buffer-size: "16k"
  enable-underscores-in-headers: "true"
  client-header-buffer-size: "lots"
`)
	tg.Eventually("the buffer settings applied", func() string {
		if status, body := get(); status != 200 || !strings.Contains(body, `under_score "yes"`) {
			return fmt.Sprintf("%d %q", status, body)
		}
		return ""
	})
	if log := tg.LogText(); !strings.Contains(log, "data.client-header-buffer-size") || !strings.Contains(log, `value \"lots\" is not an nginx size`) {
		t.Errorf("a bad buffer size must be reported")
	}
	tg.Write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tidegate, namespace: tidegate}\ndata:\n  large-client-header-buffers: \"4 16k\"\n")
	tg.Eventually("the backend's big header refused again", func() string {
		if status, _ := get(); status != 502 {
			return fmt.Sprint(status)
		}
		return ""
	})
}

// TestGzipSettings: gzip-types decides which answers use-gzip compresses,
// gzip-min-length which are long enough; gzip-level reaches nginx.
func TestGzipSettings(t *testing.T) {
	body := strings.Repeat("tidegate ", 200) // 1,800 bytes
	port := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.URL.Query().Get("type"))
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		fmt.Fprint(w, body[:n])
	}))
	tg := startTidegate(t, map[string]string{
		"app.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", port, []string{"127.0.0.1"}) + "---\n" +
			harness.IngressYAML("app", "app.test", "Prefix / web:80") + "---\n" +
			configMapYAML("use-gzip", "true", "gzip-level", "6", "gzip-min-length", "1000", "gzip-types", "application/x-custom text/plain"),
	})
	encoding := func(typ string, n int) string {
		t.Helper()
		// Accept-Encoding set by hand: the transport leaves the body as sent.
		resp, _, err := tg.Fresh("app.test", fmt.Sprintf("/?type=%s&n=%d", typ, n), "Accept-Encoding: gzip")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("Content-Encoding")
	}
	for _, tc := range []struct {
		typ  string
		n    int
		want string
	}{
		{"application/x-custom", 1800, "gzip"},
		{"text/plain", 1800, "gzip"},
		{"application/json", 1800, ""}, // not listed
		{"text/plain", 500, ""},        // shorter than gzip-min-length
	} {
		if got := encoding(tc.typ, tc.n); got != tc.want {
			t.Errorf("%s, %d bytes: Content-Encoding %q, want %q", tc.typ, tc.n, got, tc.want)
		}
	}
	if conf := harness.ReadFile(t, filepath.Join(tg.WorkDir, "nginx.conf")); !strings.Contains(conf, "gzip_comp_level 6;") {
		t.Errorf("gzip-level 6 is not in nginx.conf")
	}
}

// TestProxyProtocol: with use-proxy-protocol (a load balancer in front
// sends the PROXY header), the client address comes from that header and
// reaches the backend in X-Forwarded-For and X-Real-IP; a connection
// without the header is refused, as nginx does.
func TestProxyProtocol(t *testing.T) {
	be := harness.StartBackends(t, "web")
	tg := startTidegate(t, map[string]string{
		"app.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs) + "---\n" +
			harness.IngressYAML("app", "app.test", "Prefix / web:80") + "---\n" + configMapYAML("use-proxy-protocol", "true"),
	})
	raw := func(preamble string) string {
		t.Helper()
		return tg.Raw(preamble + "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
	}
	got := raw("PROXY TCP4 203.0.113.9 127.0.0.1 40000 80\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.Contains(got, `"X-Forwarded-For":"203.0.113.9"`) || !strings.Contains(got, `"X-Real-Ip":"203.0.113.9"`) {
		t.Errorf("with a PROXY header from 203.0.113.9:\n%s", got)
	}
	if got := raw(""); !strings.HasPrefix(got, "HTTP/1.1 400") && got != "" {
		t.Errorf("without a PROXY header: %q, want 400 or a closed connection", got)
	}
}

// TestBlockCIDRsAndServerTokens: block-cidrs refuses its clients with 403
// on every host; server-tokens names nginx's version in the Server header.
func TestBlockCIDRsAndServerTokens(t *testing.T) {
	be := harness.StartBackends(t, "web")
	tg := startTidegate(t, map[string]string{
		"app.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs) + "---\n" +
			harness.IngressYAML("app", "app.test", "Prefix / web:80") + "---\n" +
			configMapYAML("block-cidrs", "192.0.2.0/24, 127.0.0.1", "server-tokens", "true", "keep-alive-requests", "50", "max-worker-connections", "4096"),
	})
	server := func() (int, string) {
		t.Helper()
		resp, _, err := tg.Fresh("app.test", "/")
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Server")
	}
	if status, srv := server(); status != 403 || !strings.HasPrefix(srv, "nginx/") {
		t.Errorf("a blocked client: %d, Server %q; want 403 and nginx/<version> (server-tokens)", status, srv)
	}
	if r := tg.Get("unknown.test", "/"); r.Status != 403 {
		t.Errorf("a blocked client on the catch-all server: %d, want 403", r.Status)
	}
	conf := harness.ReadFile(t, filepath.Join(tg.WorkDir, "nginx.conf"))
	for _, want := range []string{"keepalive_requests 50;", "worker_connections 4096;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf has no %q", want)
		}
	}
	tg.Write("app.yaml", harness.ServiceYAML("web", 80)+"---\n"+harness.SliceYAML("web-1", "web", be.Port, be.Addrs)+"---\n"+
		harness.IngressYAML("app", "app.test", "Prefix / web:80")+"---\n"+configMapYAML("block-cidrs", "192.0.2.0/24"))
	tg.Eventually("the client no longer blocked", func() string {
		if r := tg.Get("app.test", "/"); r.Status != 200 {
			return fmt.Sprint(r.Status)
		}
		return ""
	})
	if status, srv := server(); status != 200 || srv != "nginx" {
		t.Errorf("by default: %d, Server %q; want 200 and nginx", status, srv)
	}
}

// TestWorkerProcessesFollowCPUs: worker-processes "auto", the default,
// runs one nginx worker per CPU tidegate may use (its affinity, or its
// Pod's CPU limit), not one per CPU of the node as nginx's own "auto"
// would; a number in the ConfigMap is kept as it is.
func TestWorkerProcessesFollowCPUs(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to tell one from all")
	}
	be := harness.StartBackends(t, "web")
	tg := startTidegateWith(t, map[string]string{
		"web.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			harness.IngressYAML("w", "w.test", "Prefix / web:80")}, "---\n"),
	}, harness.Options{CPUs: "0"})
	if w := tg.Workers(); len(w) != 1 {
		t.Errorf("pinned to one CPU: %d nginx workers, want 1", len(w))
	}
	if r := tg.Get("w.test", "/"); r.Status != 200 {
		t.Fatalf("w.test: %d", r.Status)
	}
	tg.Write("config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tidegate, namespace: tidegate}\ndata:\n  worker-processes: \"2\"\n")
	tg.Eventually("two workers after worker-processes: 2", func() string {
		if w := tg.liveWorkers(); len(w) != 2 {
			return fmt.Sprintf("%d workers", len(w))
		}
		return ""
	})
}

// TestUseHTTP2: HTTPS offers HTTP/2 by default (ALPN h2); with the
// ConfigMap's use-http2 "false" a client that asks for h2 gets HTTP/1.1.
func TestUseHTTP2(t *testing.T) {
	be := harness.StartBackends(t, "web")
	tg := startTidegate(t, map[string]string{
		"web.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			harness.IngressYAML("w", "h2.test", "Prefix / web:80")}, "---\n"),
	})
	proto := func() string {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tg.HTTPSPort),
			&tls.Config{ServerName: "h2.test", InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			return err.Error()
		}
		defer conn.Close()
		return conn.ConnectionState().NegotiatedProtocol
	}
	if p := proto(); p != "h2" {
		t.Errorf("by default: ALPN %q, want h2", p)
	}
	tg.Write("config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tidegate, namespace: tidegate}\ndata:\n  use-http2: \"false\"\n")
	tg.Eventually("HTTP/1.1 only with use-http2: false", func() string {
		if p := proto(); p != "http/1.1" {
			return fmt.Sprintf("ALPN %q", p)
		}
		return ""
	})
}
