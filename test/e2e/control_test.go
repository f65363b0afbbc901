package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/tlsutil"
	"github.com/tidegate/tidegate/test/harness"
)

// controlDo sends one request to the control socket with exactly the
// headers h.
func controlDo(t *testing.T, socket, method, path string, h http.Header, body string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequest(method, "http://tidegate"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestControlSocketNeedsToken: every location of the control socket of a
// running tidegate (the rendered nginx.conf) refuses a request without the
// control token, or with a wrong one, with 403 and a reason, and changes
// nothing: the host keeps its backend and its certificate. With the token
// the same requests work. A restarted tidegate reads the same token back.
func TestControlSocketNeedsToken(t *testing.T) {
	be := harness.StartBackends(t, "web")
	crt, key, err := tlsutil.SelfSigned("a.tls.test", "a.tls.test")
	if err != nil {
		t.Fatal(err)
	}
	tg := startTidegate(t, map[string]string{
		"svc.yaml":    harness.ServiceYAML("web", 80) + "---\n" + harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
		"secret.yaml": tlsSecretYAML("a-tls", crt, key),
		"ing.yaml":    tlsIngressYAML("secure", "a.tls.test", "a-tls"),
	})
	set := nginx.Settings{WorkDir: tg.WorkDir}
	token, err := nginx.ReadToken(set.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	serving := func() string {
		r, cn, _ := tg.GetTLS("a.tls.test", "/")
		if r.Status != 200 || r.Name != "web" || cn != "a.tls.test" {
			return fmt.Sprintf("GET https://a.tls.test: %d from %q with certificate %q, want 200 from web with a.tls.test", r.Status, r.Name, cn)
		}
		return ""
	}
	if msg := serving(); msg != "" {
		t.Fatal(msg)
	}

	// Full pushes of nothing, above any version tidegate pushed: each
	// would leave the host without its backend or its certificate.
	v := time.Now().Add(time.Hour).UnixMilli()
	requests := []struct{ method, path, body string }{
		{"POST", "/configuration/backends", fmt.Sprintf(`{"version":%d,"full":true,"backends":[],"removed":[]}`, v)},
		{"POST", "/configuration/certificates", fmt.Sprintf(`{"version":%d,"full":true,"certificates":[],"removed":[]}`, v)},
		{"GET", "/tidegate/stub_status", ""},
		{"GET", "/tidegate/generation", ""},
		{"GET", "/anything-else", ""},
	}
	wrong := []byte(token)
	wrong[len(wrong)-1] ^= 1 // one bit off
	for name, h := range map[string]http.Header{
		"no token":    {},
		"empty token": {nginx.TokenHeader: {""}},
		"wrong token": {nginx.TokenHeader: {string(wrong)}},
		"upper case":  {nginx.TokenHeader: {strings.ToUpper(token)}},
		"prefix":      {nginx.TokenHeader: {token[:len(token)-1]}},
		"longer":      {nginx.TokenHeader: {token + "0"}},
		"other name":  {"X-Tidegate-Tokens": {token}, "Authorization": {"Bearer " + token}},
	} {
		for _, r := range requests {
			status, body := controlDo(t, set.SocketPath(), r.method, r.path, h, r.body)
			if status != 403 || !strings.Contains(body, `"error"`) || !strings.Contains(body, "X-Tidegate-Token") {
				t.Errorf("%s: %s %s: got %d %q, want 403 naming X-Tidegate-Token", name, r.method, r.path, status, body)
			}
		}
	}
	if msg := serving(); msg != "" {
		t.Fatalf("after refused control requests: %s", msg)
	}
	if log := harness.ReadFile(t, set.ErrorLogPath()); !strings.Contains(log, "refused control request POST /configuration/backends") {
		t.Errorf("the error log does not name the refused requests")
	}

	// With the token: what tidegate itself does.
	ok := http.Header{nginx.TokenHeader: {token}}
	if status, body := controlDo(t, set.SocketPath(), "GET", "/tidegate/generation", ok, ""); status != 200 || body == "" {
		t.Errorf("generation with the token: got %d %q", status, body)
	}
	if status, body := controlDo(t, set.SocketPath(), "GET", "/tidegate/stub_status", ok, ""); status != 200 || !strings.Contains(body, "Active connections") {
		t.Errorf("stub_status with the token: got %d %q", status, body)
	}
	if status, _ := controlDo(t, set.SocketPath(), "GET", "/anything-else", ok, ""); status != 404 {
		t.Errorf("unknown path with the token: got %d, want 404", status)
	}
	for _, r := range requests[:2] {
		if status, body := controlDo(t, set.SocketPath(), r.method, r.path, ok, r.body); status != 200 {
			t.Errorf("%s %s with the token: got %d %q", r.method, r.path, status, body)
		}
	}
	tg.Eventually("the pushes with the token applied", func() string {
		r, cn, _ := tg.GetTLS("a.tls.test", "/")
		if r.Status != 503 || cn != "tidegate default certificate" {
			return fmt.Sprintf("GET https://a.tls.test: %d with certificate %q, want 503 with the default", r.Status, cn)
		}
		return ""
	})

	// A restarted tidegate keeps the token of its working directory.
	tg.Stop()
	tg2 := startTidegateWith(t, nil, harness.Options{Dir: tg.Dir, WorkDir: tg.WorkDir, Ports: tg.Tidegate})
	again, err := nginx.ReadToken(set.TokenPath())
	if err != nil || again != token {
		t.Errorf("after a restart the token is %q (%v), want the first one", again, err)
	}
	tg2.Eventually("the restarted tidegate serves", serving)
}
