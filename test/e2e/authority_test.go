package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/test/harness"
)

// TestRoutedHostIsForwarded: a request whose request line names a host
// ("GET http://open.test/ HTTP/1.1", absolute form) is routed by nginx to
// that host's server whatever its Host header says. The backend must get
// the host nginx routed by: forwarding the Host header let a request pass
// the checks of open.test (none) and reach a backend serving both hosts as
// allow-listed.test, bypassing its allow-list (the audit's item 4).
func TestRoutedHostIsForwarded(t *testing.T) {
	be := harness.StartBackends(t, "web")
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		annotatedIngress("open", "open.test", "Prefix", "/"),
		annotatedIngress("guarded", "allow-listed.test", "Prefix", "/", "whitelist-source-range=10.0.0.0/8"),
	}, "---\n")})

	if r := tg.Get("allow-listed.test", "/"); r.Status != 403 {
		t.Fatalf("allow-listed.test from 127.0.0.1: %d, want 403 (not in 10.0.0.0/8)", r.Status)
	}
	raw := func(requestLine, host string) (int, map[string]any) {
		t.Helper()
		answer := tg.Raw(fmt.Sprintf("%s\r\nHost: %s\r\nConnection: close\r\n\r\n", requestLine, host))
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
		if err != nil {
			t.Fatalf("%s (Host %s): %v: %q", requestLine, host, err, answer)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var echo map[string]any
		_ = json.Unmarshal(b, &echo)
		return resp.StatusCode, echo
	}
	for _, tc := range []struct{ line, host, wantHost string }{
		{"GET http://open.test/admin HTTP/1.1", "allow-listed.test", "open.test"},
		{"GET HTTP://OPEN.TEST/admin HTTP/1.1", "allow-listed.test", "open.test"},
		{"GET http://open.test:8080/admin HTTP/1.1", "allow-listed.test:1", "open.test"},
		{"GET /admin HTTP/1.1", "open.test:8080", "open.test:8080"}, // origin form: the Host header as sent, as ingress-nginx
	} {
		st, echo := raw(tc.line, tc.host)
		if st != 200 {
			t.Errorf("%s with Host %s: %d, want open.test's 200", tc.line, tc.host, st)
			continue
		}
		if got, _ := echo["host"].(string); !strings.EqualFold(got, tc.wantHost) {
			t.Errorf("%s with Host %s: the backend got Host %v, want %s (the host nginx routed by)", tc.line, tc.host, got, tc.wantHost)
		}
		if h, _ := echo["headers"].(map[string]any); h != nil {
			if xfh := fmt.Sprint(h["X-Forwarded-Host"]); strings.Contains(strings.ToLower(xfh), "allow-listed") {
				t.Errorf("%s: X-Forwarded-Host %s names the host that was not routed", tc.line, xfh)
			}
		}
	}
	// The guarded host stays guarded in the absolute form too.
	if st, _ := raw("GET http://allow-listed.test/ HTTP/1.1", "open.test"); st != 403 {
		t.Errorf("absolute form naming allow-listed.test: %d, want 403", st)
	}
}
