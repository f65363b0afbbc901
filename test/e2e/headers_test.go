package e2e

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// fetch sends GET scheme://host/path to tidegate (SNI host for https) with
// extra request headers and returns the answer's status, headers and body.
func (tg *tidegate) fetch(scheme, host, path string, hdr ...string) (int, http.Header, string) {
	tg.T.Helper()
	port, c := tg.HTTPPort, tg.Client
	if scheme == "https" {
		port = tg.HTTPSPort
		c = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true}}}
	}
	req, err := http.NewRequest("GET", fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, path), nil)
	if err != nil {
		tg.T.Fatal(err)
	}
	req.Host = host
	for _, kv := range hdr {
		k, v, _ := strings.Cut(kv, ": ")
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return -1, http.Header{}, err.Error()
	}
	return resp.StatusCode, resp.Header, harness.ReadBody(resp)
}

// withTLSHost adds a spec.tls entry for host to an Ingress manifest.
func withTLSHost(doc, host, secret string) string {
	return strings.Replace(doc, "  rules:", fmt.Sprintf("  tls: [{hosts: [%s], secretName: %s}]\n  rules:", host, secret), 1)
}

const headersConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: hdrs}
data:
  X-Frame-Options: DENY
  X-Team: %q
`

// TestCustomHeaders: custom-headers adds the ConfigMap's headers (names
// allowed by global-allowed-response-headers only, values literal); a
// missing ConfigMap is reported and the Ingress still serves; editing the
// ConfigMap changes the headers. Every level that adds headers keeps the
// http-level HSTS header (the add_header inheritance fix), CORS included.
func TestCustomHeaders(t *testing.T) {
	be := harness.StartBackends(t, "web")
	crt, key, _ := tlsutil.SelfSigned("hdr.test", "hdr.test", "cors.test")
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			tlsSecretYAML("tls", crt, key),
			withTLSHost(annotatedIngress("hdrs", "hdr.test", "Prefix", "/", "custom-headers=default/hdrs", "enable-cors=true"), "hdr.test", "tls"),
			withTLSHost(annotatedIngress("cors", "cors.test", "Prefix", "/", "enable-cors=true", "cors-allow-origin=https://a.test"), "cors.test", "tls"),
			annotatedIngress("missing", "miss.test", "Prefix", "/", "custom-headers=nope"),
			annotatedIngress("off-list", "off.test", "Prefix", "/", "custom-headers=other"),
			`apiVersion: v1
kind: ConfigMap
metadata: {name: other}
data: {X-Powered-By: tidegate}
`,
			`apiVersion: v1
kind: ConfigMap
metadata: {name: tidegate, namespace: tidegate}
data:
  global-allowed-response-headers: "X-Frame-Options, X-Team"
  hsts-max-age: "600"
`}, "---\n"),
		"hdrs.yaml": fmt.Sprintf(headersConfigMap, "costs $5"),
	})

	t.Run("the ConfigMap's headers are on the answers, values literal", func(t *testing.T) {
		st, h, body := tg.fetch("https", "hdr.test", "/")
		if st != 200 || !strings.Contains(body, `"name":"web"`) || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Team") != "costs $5" {
			t.Errorf("https: %d X-Frame-Options=%q X-Team=%q", st, h.Get("X-Frame-Options"), h.Get("X-Team"))
		}
		// "always": the plain-http redirect carries them too.
		if st, h, _ := tg.fetch("http", "hdr.test", "/"); st != 308 || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("http redirect: %d X-Frame-Options=%q", st, h.Get("X-Frame-Options"))
		}
	})
	t.Run("HSTS survives locations that add headers (custom headers, CORS)", func(t *testing.T) {
		for _, host := range []string{"hdr.test", "cors.test"} {
			origin := "https://a.test"
			st, h, _ := tg.fetch("https", host, "/", "Origin: "+origin)
			if st != 200 || h.Get("Access-Control-Allow-Origin") == "" {
				t.Errorf("%s: %d, CORS header %q", host, st, h.Get("Access-Control-Allow-Origin"))
			}
			if got := h.Get("Strict-Transport-Security"); got != "max-age=600; includeSubDomains" {
				t.Errorf("%s over https with CORS: Strict-Transport-Security %q", host, got)
			}
		}
		if _, h, _ := tg.fetch("https", "hdr.test", "/", "Origin: https://x.test"); h.Get("X-Frame-Options") != "DENY" || h.Get("Strict-Transport-Security") == "" {
			t.Errorf("custom headers and HSTS inside the CORS branch: %v", h)
		}
		if _, h, _ := tg.fetch("http", "cors.test", "/", "Origin: https://a.test"); h.Get("Strict-Transport-Security") != "" {
			t.Error("HSTS must not be sent over plain http")
		}
	})
	t.Run("a missing ConfigMap or a header off the global list: served without, reported", func(t *testing.T) {
		if st, h, _ := tg.fetch("http", "miss.test", "/"); st != 200 || h.Get("X-Frame-Options") != "" {
			t.Errorf("miss.test: %d %v", st, h)
		}
		if st, h, _ := tg.fetch("http", "off.test", "/"); st != 200 || h.Get("X-Powered-By") != "" {
			t.Errorf("off.test: %d %v", st, h)
		}
		log := harness.ReadFile(t, tg.LogPath)
		for _, want := range []string{"ConfigMap default/nope not found", `header \"X-Powered-By\" of ConfigMap default/other is not listed in global-allowed-response-headers`} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q", want)
			}
		}
	})
	t.Run("editing the ConfigMap changes the headers", func(t *testing.T) {
		tg.Write("hdrs.yaml", fmt.Sprintf(headersConfigMap, "v2"))
		tg.Eventually("X-Team v2", func() string {
			if _, h, _ := tg.fetch("https", "hdr.test", "/"); h.Get("X-Team") != "v2" {
				return "X-Team " + h.Get("X-Team")
			}
			return ""
		})
	})
}

// TestServiceUpstream: service-upstream proxies to the Service's ClusterIP
// and port, not to its EndpointSlices; without it the endpoints serve; a
// headless Service falls back to its endpoints, reported.
func TestServiceUpstream(t *testing.T) {
	pods := harness.StartBackends(t, "pod-a", "pod-b")
	vip := harness.StartBackends(t, "cluster-ip")
	svc := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: %s
  ports:
  - port: %d
    targetPort: %d
`, vip.Addrs[0], vip.Port, pods.Port)
	headless := fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  ports:
  - port: %d
`, pods.Port)
	ing := func(name, host, svc string, port int, anns ...string) string {
		return strings.Replace(annotatedIngress(name, host, "Prefix", "/", anns...), "{service: {name: web, port: {number: 80}}}",
			fmt.Sprintf("{service: {name: %s, port: {number: %d}}}", svc, port), 1)
	}
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join([]string{svc, headless,
		harness.SliceYAML("web-1", "web", pods.Port, pods.Addrs), harness.SliceYAML("db-1", "db", pods.Port, pods.Addrs),
		ing("vip", "vip.test", "web", vip.Port, "service-upstream=true"),
		ing("pods", "pods.test", "web", vip.Port),
		ing("headless", "headless.test", "db", pods.Port, "service-upstream=true"),
	}, "---\n")})
	for i := 0; i < 6; i++ {
		if r := tg.Get("vip.test", "/"); r.Status != 200 || r.Name != "cluster-ip" {
			t.Fatalf("service-upstream: %d from %q, want the ClusterIP backend", r.Status, r.Name)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		seen[tg.Get("pods.test", "/").Name] = true
		seen["headless:"+tg.Get("headless.test", "/").Name] = true
	}
	if !seen["pod-a"] || !seen["pod-b"] || seen["cluster-ip"] {
		t.Errorf("without service-upstream the endpoints serve: %v", seen)
	}
	if !seen["headless:pod-a"] || !seen["headless:pod-b"] {
		t.Errorf("a headless Service falls back to its endpoints: %v", seen)
	}
	if log := harness.ReadFile(t, tg.LogPath); !strings.Contains(log, "service default/db is headless (clusterIP None)") {
		t.Error("the headless fallback must be reported")
	}
}

// TestBackendSNI: proxy-ssl-server-name sends SNI to an HTTPS backend: the
// client's host by default (nginx alone would send the upstream block's
// name), or proxy-ssl-name. Each Ingress has its own backend: a kept-alive
// connection to one backend is reused whatever name it was opened with.
func TestBackendSNI(t *testing.T) {
	crt, key, err := tlsutil.SelfSigned("backend")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	tlsBackend := func() int {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "sni=%s", r.TLS.ServerName)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().(*net.TCPAddr).Port
	}
	var docs []string
	for _, app := range []struct {
		name string
		anns []string
	}{
		{"plain", []string{"backend-protocol=HTTPS"}},
		{"sni", []string{"backend-protocol=HTTPS", "proxy-ssl-server-name=on"}},
		{"named", []string{"backend-protocol=HTTPS", "proxy-ssl-server-name=on", "proxy-ssl-name=backend.internal"}},
	} {
		ing := annotatedIngress(app.name, app.name+".test", "Prefix", "/", app.anns...)
		docs = append(docs, harness.ServiceYAML(app.name, 80), harness.SliceYAML(app.name+"-1", app.name, tlsBackend(), []string{"127.0.0.1"}),
			strings.ReplaceAll(ing, "name: web", "name: "+app.name))
	}
	tg := startTidegate(t, map[string]string{"app.yaml": strings.Join(docs, "---\n")})
	for host, want := range map[string]string{"plain.test": "sni=", "sni.test": "sni=sni.test", "named.test": "sni=backend.internal"} {
		if r := tg.Get(host, "/"); r.Status != 200 || r.Body != want {
			t.Errorf("%s: %d %q, want %q", host, r.Status, r.Body, want)
		}
	}
}
