package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/test/harness"
)

// sample is one line of Prometheus text.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads the status port's /metrics.
func (tg *tidegate) scrape() []sample {
	tg.T.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", tg.StatusPt))
	if err != nil {
		tg.T.Fatal(err)
	}
	defer resp.Body.Close()
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			tg.T.Fatalf("metrics line %q: %v", line, err)
		}
		s := sample{labels: map[string]string{}, value: v}
		head := line[:sp]
		name, rest, ok := strings.Cut(head, "{")
		s.name = name
		if ok {
			rest = strings.TrimSuffix(rest, "}")
			for rest != "" {
				k, after, _ := strings.Cut(rest, `="`)
				var val strings.Builder
				i := 0
				for ; i < len(after) && after[i] != '"'; i++ {
					if after[i] == '\\' {
						i++
					}
					val.WriteByte(after[i])
				}
				s.labels[k] = val.String()
				rest = strings.TrimPrefix(after[i+1:], ",")
			}
		}
		out = append(out, s)
	}
	return out
}

// sum adds the samples named name whose labels include want.
func sum(samples []sample, name string, want map[string]string) (float64, int) {
	var total float64
	n := 0
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
		n++
	}
	return total, n
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestObservabilityMetrics(t *testing.T) {
	a := harness.StartBackends(t, "a1", "a2")
	b := harness.StartBackends(t, "b")
	c := harness.StartBackends(t, "c-live", "c-dead")
	tg := startTidegate(t, map[string]string{
		"svc.yaml": harness.ServiceYAML("a", 80) + "---\n" + harness.ServiceYAML("b", 80) + "---\n" + harness.ServiceYAML("c", 80),
		"eps.yaml": harness.SliceYAML("a-1", "a", a.Port, a.Addrs) + "---\n" + harness.SliceYAML("b-1", "b", b.Port, b.Addrs) + "---\n" +
			harness.SliceYAML("c-1", "c", c.Port, c.Addrs),
		"shop.yaml": harness.IngressYAML("shop", "shop.io", "Prefix /api a:80", "Exact /exact b:80", "Prefix /c c:80"),
		// A label with a backslash and a "$", written unescaped.
		"rx.yaml": strings.ReplaceAll(annotatedIngress("rx", "rx.io", "ImplementationSpecific", `/v[0-9]+\.json$`, "use-regex=true"), "name: web", "name: a"),
	})
	c.Kill(c.Addrs[1])
	if r := tg.Get("rx.io", "/v2.json"); r.Status != 200 {
		t.Fatalf("GET rx.io/v2.json: %d %s", r.Status, r.Body)
	}

	// A burst of known requests.
	for i := 0; i < 6; i++ {
		if r := tg.Get("shop.io", fmt.Sprintf("/api/item/%d", i)); r.Status != 200 {
			t.Fatalf("GET /api/item/%d: %d %s", i, r.Status, r.Body)
		}
	}
	for i := 0; i < 3; i++ {
		if st := tg.Post("shop.io", "/api", "hello"); st != 200 {
			t.Fatalf("POST /api: %d", st)
		}
	}
	for i := 0; i < 2; i++ {
		if r := tg.Get("shop.io", "/exact"); r.Status != 200 {
			t.Fatalf("GET /exact: %d", r.Status)
		}
	}
	for i := 0; i < 4; i++ {
		if r := tg.Get("shop.io", fmt.Sprintf("/nothing/%d", i)); r.Status != 404 {
			t.Fatalf("GET /nothing: %d", r.Status)
		}
	}
	for i := 0; i < 10; i++ {
		if r := tg.Get("shop.io", "/c"); r.Status != 200 {
			t.Fatalf("GET /c with one dead endpoint: %d %s", r.Status, r.Body)
		}
	}

	route := func(path, svc string, kv ...string) map[string]string {
		m := lbl("namespace", "default", "ingress", "shop", "service", svc, "host", "shop.io", "path", path)
		for k, v := range lbl(kv...) {
			m[k] = v
		}
		return m
	}
	want := []struct {
		labels map[string]string
		n      float64
	}{
		{route("/api", "a", "method", "GET", "status", "200"), 6},
		{route("/api", "a", "method", "POST", "status", "200"), 3},
		{route("/exact", "b", "method", "GET", "status", "200"), 2},
		{route("/c", "c", "method", "GET", "status", "200"), 10},
		// A path no rule covers: the server's fallback location, no Ingress.
		{lbl("ingress", "", "service", "", "host", "shop.io", "method", "GET", "status", "404"), 4},
	}
	var samples []sample
	tg.Eventually("request counts in /metrics", func() string {
		samples = tg.scrape()
		for _, w := range want {
			if got, _ := sum(samples, "nginx_ingress_controller_requests", w.labels); got != w.n {
				return fmt.Sprintf("%v = %v, want %v", w.labels, got, w.n)
			}
		}
		return ""
	})
	// Every worker has flushed: the counts stay exact, and nothing else
	// was counted (the control socket and scrapes are not requests).
	time.Sleep(1500 * time.Millisecond)
	samples = tg.scrape()
	total, _ := sum(samples, "nginx_ingress_controller_requests", nil)
	if total != 26 {
		t.Errorf("nginx_ingress_controller_requests adds up to %v, want 26", total)
	}
	for _, w := range want {
		if got, n := sum(samples, "nginx_ingress_controller_requests", w.labels); got != w.n || n != 1 {
			t.Errorf("%v = %v in %d series, want %v in one", w.labels, got, n, w.n)
		}
	}
	if got, n := sum(samples, "nginx_ingress_controller_requests", lbl("host", "rx.io", "path", `/v[0-9]+\.json$`, "ingress", "rx")); got != 1 || n != 1 {
		t.Errorf("the regex path's label: %v in %d series, want 1 in one", got, n)
	}
	for _, raw := range []string{"/api/item/0", "/nothing/0"} {
		if _, n := sum(samples, "nginx_ingress_controller_requests", lbl("path", raw)); n != 0 {
			t.Errorf("a raw request path %q became a label value", raw)
		}
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nginx_ingress_controller_request_duration_seconds_count", route("/api", "a"), 9},
		{"nginx_ingress_controller_request_duration_seconds_bucket", route("/api", "a", "le", "+Inf"), 9},
		{"nginx_ingress_controller_response_duration_seconds_count", route("/api", "a"), 9},
		{"nginx_ingress_controller_request_size_count", route("/api", "a"), 9},
		{"nginx_ingress_controller_response_size_count", route("/exact", "b"), 2},
		{"tidegate_upstream_endpoint_responses_total", lbl("service", "c", "outcome", "2xx", "endpoint", fmt.Sprintf("%s:%d", c.Addrs[0], c.Port)), 10},
		{"tidegate_upstream_endpoint_responses_total", lbl("service", "a", "outcome", "2xx"), 10}, // 9 + rx.io
		{"tidegate_dataplane_metrics_up", nil, 1},
	}
	for _, ck := range checks {
		if got, _ := sum(samples, ck.name, ck.labels); got != ck.want {
			t.Errorf("%s%v = %v, want %v", ck.name, ck.labels, got, ck.want)
		}
	}
	dead := lbl("service", "c", "outcome", "error", "endpoint", fmt.Sprintf("%s:%d", c.Addrs[1], c.Port))
	deadErrs, _ := sum(samples, "tidegate_upstream_endpoint_responses_total", dead)
	connErrs, _ := sum(samples, "tidegate_upstream_connect_errors_total", lbl("namespace", "default", "service", "c"))
	if deadErrs < 1 || connErrs != deadErrs {
		t.Errorf("dead endpoint: %v errors, connect errors of service c %v; want at least 1 and equal", deadErrs, connErrs)
	}
	if bytesIn, _ := sum(samples, "nginx_ingress_controller_request_size_sum", route("/api", "a")); bytesIn < 9*40 {
		t.Errorf("request bytes of /api = %v, want at least 9 requests' worth", bytesIn)
	}
	if dur, _ := sum(samples, "nginx_ingress_controller_request_duration_seconds_bucket", route("/api", "a", "le", "10")); dur != 9 {
		t.Errorf("requests of /api under 10s = %v, want 9", dur)
	}

	// Every data-plane series the Grafana dashboard queries exists.
	dash := harness.ReadFile(t, "../../deploy/grafana-dashboard.json")
	for _, name := range regexp.MustCompile(`(nginx_ingress_controller|tidegate_upstream)_[a-z_]+`).FindAllString(dash, -1) {
		if _, n := sum(samples, name, nil); n == 0 {
			t.Errorf("deploy/grafana-dashboard.json queries %s, which /metrics does not have", name)
		}
	}

	// stub_status.
	for _, s := range []string{"active", "reading", "writing", "waiting"} {
		if _, n := sum(samples, "nginx_ingress_controller_nginx_process_connections", lbl("state", s)); n != 1 {
			t.Errorf("no nginx_ingress_controller_nginx_process_connections{state=%q}", s)
		}
	}
	if v, _ := sum(samples, "nginx_ingress_controller_nginx_process_connections", lbl("state", "active")); v < 1 {
		t.Errorf("active connections = %v, want at least the scrape's own", v)
	}
	if v, _ := sum(samples, "nginx_ingress_controller_nginx_process_requests_total", nil); v < 25 {
		t.Errorf("nginx_ingress_controller_nginx_process_requests_total = %v, want at least 25", v)
	}
	if v, _ := sum(samples, "nginx_ingress_controller_nginx_process_connections_total", lbl("state", "accepted")); v < 1 {
		t.Errorf("accepted connections = %v", v)
	}
}

// With --enable-metrics=false (an ingress-nginx flag) nginx writes no
// metrics line: requests are served and stub_status still counts them, but
// no request series appears, and the status page says why there are no
// endpoint outcomes.
func TestObservabilityMetricsOff(t *testing.T) {
	a := harness.StartBackends(t, "a1")
	tg := startTidegateWith(t, map[string]string{
		"svc.yaml":  harness.ServiceYAML("a", 80),
		"eps.yaml":  harness.SliceYAML("a-1", "a", a.Port, a.Addrs),
		"shop.yaml": harness.IngressYAML("shop", "shop.io", "Prefix /api a:80"),
	}, harness.Options{Args: []string{"--enable-metrics=false"}})
	for i := 0; i < 5; i++ {
		if r := tg.Get("shop.io", "/api"); r.Status != 200 {
			t.Fatalf("GET /api: %d %s", r.Status, r.Body)
		}
	}
	if conf := harness.ReadFile(t, filepath.Join(tg.WorkDir, "nginx.conf")); strings.Contains(conf, "tidegate_metrics") {
		t.Error("nginx.conf still writes the metrics line")
	}
	// With metrics on, nginx flushes its buffered line within a second.
	time.Sleep(1500 * time.Millisecond)
	samples := tg.scrape()
	if _, n := sum(samples, "nginx_ingress_controller_requests", nil); n != 0 {
		t.Errorf("%d nginx_ingress_controller_requests series with --enable-metrics=false, want none", n)
	}
	if v, _ := sum(samples, "nginx_ingress_controller_nginx_process_requests_total", nil); v < 5 {
		t.Errorf("nginx_ingress_controller_nginx_process_requests_total = %v, want at least the 5 requests", v)
	}
	if v, _ := sum(samples, "tidegate_dataplane_metrics_up", nil); v != 1 {
		t.Errorf("tidegate_dataplane_metrics_up = %v, want 1: metrics that are off are not a failure", v)
	}
	if _, err := os.Stat(filepath.Join(tg.WorkDir, "logs", "metrics.log")); !os.IsNotExist(err) {
		t.Errorf("logs/metrics.log exists (%v), want none", err)
	}
	if code, page := tg.getStatus("/"); code != 200 || !strings.Contains(page, "request metrics are off (--enable-metrics=false)") {
		t.Errorf("status page (%d) does not say that request metrics are off", code)
	}
}

// accessLog waits for n lines in the access log and returns them.
func (tg *tidegate) accessLog(n int) []string {
	tg.T.Helper()
	var lines []string
	tg.Eventually("access log lines", func() string {
		b, _ := os.ReadFile(filepath.Join(tg.WorkDir, "logs", "access.log"))
		lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(b) == 0 || len(lines) < n {
			return fmt.Sprintf("%d lines, want %d", len(lines), n)
		}
		return ""
	})
	return lines
}

func configMapYAML(kv ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tidegate, namespace: tidegate}\ndata:\n")
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "  %s: %q\n", kv[i], kv[i+1])
	}
	return b.String()
}

func TestObservabilityAccessLog(t *testing.T) {
	a := harness.StartBackends(t, "a1")
	base := map[string]string{
		"svc.yaml":  harness.ServiceYAML("a", 80),
		"eps.yaml":  harness.SliceYAML("a-1", "a", a.Port, a.Addrs),
		"shop.yaml": harness.IngressYAML("shop", "shop.io", "Prefix /api a:80"),
	}
	upstream := fmt.Sprintf("%s:%d", a.Addrs[0], a.Port)

	t.Run("ingress-nginx default format", func(t *testing.T) {
		tg := startTidegate(t, base)
		if r := tg.Get("shop.io", "/api/x?q=1"); r.Status != 200 {
			t.Fatalf("GET: %d", r.Status)
		}
		line := tg.accessLog(1)[0]
		// ingress-nginx's upstreaminfo, field for field, and the Ingress.
		for _, want := range []string{`"GET /api/x?q=1 HTTP/1.1" 200 `, " [default/a:80] [] " + upstream + " ", " 200 ", " default/shop"} {
			if !strings.Contains(line, want) {
				t.Errorf("access log line lacks %q:\n%s", want, line)
			}
		}
		f := strings.Fields(line)
		if len(f[len(f)-2]) != 32 {
			t.Errorf("the field before the Ingress is not a request id: %q", line)
		}
	})
	t.Run("custom format with ingress-nginx variables", func(t *testing.T) {
		m := map[string]string{"cm.yaml": configMapYAML("log-format-upstream", `$namespace $ingress_name $service_name $service_port $upstream_addr "$request_method $uri" {$status}`)}
		for k, v := range base {
			m[k] = v
		}
		tg := startTidegate(t, m)
		tg.Get("shop.io", "/api/y")
		if line := tg.accessLog(1)[0]; line != fmt.Sprintf(`default shop a 80 %s "GET /api/y" {200}`, upstream) {
			t.Errorf("custom access log line = %q", line)
		}
	})
	t.Run("built-in JSON", func(t *testing.T) {
		m := map[string]string{"cm.yaml": configMapYAML("log-format-json", "true")}
		for k, v := range base {
			m[k] = v
		}
		tg := startTidegate(t, m)
		tg.Get("shop.io", `/api/"quoted"`)
		line := tg.accessLog(1)[0]
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("access log line is not JSON: %v\n%s", err, line)
		}
		for k, want := range map[string]any{"namespace": "default", "ingress": "shop", "service": "a",
			"upstream_addr": upstream, "status": 200.0, "uri": "/api/%22quoted%22", "method": "GET"} {
			if got[k] != want {
				t.Errorf("JSON access log %s = %v, want %v:\n%s", k, got[k], want, line)
			}
		}
	})
	t.Run("access log off; a bad format is reported and the default kept", func(t *testing.T) {
		m := map[string]string{"cm.yaml": configMapYAML("enable-access-log", "false", "log-format-upstream", "$nosuchvar")}
		for k, v := range base {
			m[k] = v
		}
		tg := startTidegate(t, m)
		tg.Get("shop.io", "/api/z")
		// No access log line is written, yet the request is counted: the
		// request metrics come from their own log, not the access log.
		tg.Eventually("the request counted in /metrics", func() string {
			if got, _ := sum(tg.scrape(), "nginx_ingress_controller_requests", lbl("host", "shop.io")); got != 1 {
				return fmt.Sprintf("nginx_ingress_controller_requests{host=shop.io} = %v, want 1", got)
			}
			return ""
		})
		if b, err := os.ReadFile(filepath.Join(tg.WorkDir, "logs", "access.log")); err == nil && len(b) > 0 {
			t.Errorf("enable-access-log false, yet the access log has:\n%s", b)
		}
		tg.Eventually("the bad format reported", func() string {
			b, _ := os.ReadFile(tg.LogPath)
			if !strings.Contains(string(b), "nosuchvar") {
				return "no log line names $nosuchvar"
			}
			return ""
		})
	})
}

// getStatus fetches a page of the status port.
func (tg *tidegate) getStatus(path string) (int, string) {
	tg.T.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", tg.StatusPt, path))
	if err != nil {
		tg.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestObservabilityStatusPage(t *testing.T) {
	a := harness.StartBackends(t, "a1", "a2", "a3")
	b := harness.StartBackends(t, "b")
	tg := startTidegate(t, map[string]string{
		"svc.yaml":  harness.ServiceYAML("a", 80) + "---\n" + harness.ServiceYAML("b", 80),
		"eps.yaml":  harness.SliceYAML("a-1", "a", a.Port, a.Addrs[:2], a.Addrs[2]) + "---\n" + harness.SliceYAML("b-1", "b", b.Port, b.Addrs),
		"shop.yaml": harness.IngressYAML("shop", "shop.io", "Prefix /api a:80", "Exact /exact b:80"),
		"evil.yaml": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: evil
  annotations:
    nginx.ingress.kubernetes.io/proxy-buffer-size: "<script>alert(1)</script>"
spec:
  ingressClassName: tidegate
  rules:
  - host: evil.io
    http:
      paths:
      - {path: "/x { return 200 pwned; }", pathType: ImplementationSpecific, backend: {service: {name: b, port: {number: 80}}}}
`,
	})
	for i := 0; i < 3; i++ {
		tg.Get("shop.io", "/api")
	}
	_, health := tg.getStatus("/healthz")
	first, _, _ := strings.Cut(health, "\n")
	gen := strings.TrimPrefix(first, "ok generation=")
	var page string
	tg.Eventually("the status page shows the endpoint outcomes", func() string {
		code, body := tg.getStatus("/")
		page = body
		if code != 200 {
			return fmt.Sprintf("status %d", code)
		}
		if !strings.Contains(page, "2xx: ") {
			return "no outcome counts yet"
		}
		return ""
	})
	for _, want := range []string{
		"<title>tidegate status</title>",
		`<span class="ok">healthy</span>`, "generation <code>" + gen + "</code>",
		"<b>shop.io</b>", "<code>/api</code>", "<code>/exact</code>", "<code>default/a:80</code>", "<code>default/b:80</code>",
		fmt.Sprintf("<code>%s:%d</code>", a.Addrs[0], a.Port), fmt.Sprintf("<code>%s:%d</code>", a.Addrs[2], a.Port),
		"draining (serving, terminating)", `<span class="ok">ready</span>`,
		"last reload", "last push", "<td>default/evil</td>", "Ingress default/evil", "REJECTED",
		"proxy-buffer-size", "&lt;script&gt;alert(1)&lt;/script&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, "last push</th><td>none") {
		t.Errorf("status page shows no push, but backends were pushed")
	}
	if strings.Contains(page, "<script>") {
		t.Errorf("status page contains unescaped user text")
	}
	if strings.Contains(page, "Ingress default/shop <span") {
		t.Errorf("the valid Ingress default/shop is marked rejected")
	}
	if code, _ := tg.getStatus("/nope"); code != 404 {
		t.Errorf("GET /nope on the status port: %d, want 404", code)
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/", tg.StatusPt), "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST / on the status port: %d, want 405 (read-only)", resp.StatusCode)
	}
	screenshot(t, fmt.Sprintf("http://127.0.0.1:%d/", tg.StatusPt))
}

// screenshot renders url in headless Chromium (Debian's chromium package,
// installed by make deps-test) and checks that a PNG came out. The file is kept
// in a temp directory named in the test log, to be looked at.
func screenshot(t *testing.T, url string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed; run `make deps-test`")
	}
	dir, err := os.MkdirTemp("", "tidegate-status-page-")
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "status.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+png, "--window-size=1280,1600", url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	b, err := os.ReadFile(png)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(b) < 10000 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot %s is not a plausible PNG (%d bytes)", png, len(b))
	}
	t.Logf("status page screenshot: %s", png)
}

// TestAccessLogAnnotation: enable-access-log: "false" on an Ingress keeps
// its requests out of the access log; the request metrics still count them.
func TestAccessLogAnnotation(t *testing.T) {
	be := harness.StartBackends(t, "web")
	tg := startTidegate(t, map[string]string{
		"app.yaml": harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs) + "---\n" +
			annotatedIngress("quiet", "quiet.test", "Prefix", "/", "enable-access-log=false") + "---\n" +
			harness.IngressYAML("loud", "loud.test", "Prefix / web:80"),
	})
	for range 3 {
		for _, h := range []string{"quiet.test", "loud.test"} {
			if r := tg.Get(h, "/"); r.Status != 200 {
				t.Fatalf("%s: %d", h, r.Status)
			}
		}
	}
	lines := tg.accessLog(3)
	time.Sleep(300 * time.Millisecond) // a quiet.test line would be written by now
	lines = tg.accessLog(3)
	if len(lines) != 3 || strings.Contains(strings.Join(lines, "\n"), "quiet") {
		t.Errorf("access log: %d lines, want the 3 of loud.test only:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	tg.Eventually("both Ingresses counted in /metrics", func() string {
		samples := tg.scrape()
		for _, ing := range []string{"quiet", "loud"} {
			if got, _ := sum(samples, "nginx_ingress_controller_requests", lbl("ingress", ing)); got != 3 {
				return fmt.Sprintf("%s: %v requests", ing, got)
			}
		}
		return ""
	})
}
