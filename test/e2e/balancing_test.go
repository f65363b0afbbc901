package e2e

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/test/harness"
)

// TestBalancingThroughTheTemplate checks the data-plane annotations with
// the real rendered nginx.conf (the Lua side has its own tests in
// pkg/dynamic): consistent hashing, sticky cookies and a header canary.
func TestBalancingThroughTheTemplate(t *testing.T) {
	main := harness.StartBackends(t, "m-1", "m-2", "m-3")
	canary := harness.StartBackends(t, "canary")
	canaryIng := strings.Replace(annotatedIngress("web-canary", "canary.test", "Prefix", "/",
		"canary=true", "canary-by-header=X-Canary"), "name: web, port", "name: web-canary, port", 1)
	// Balancing settings belong to a backend (a Service port), so each
	// scenario gets its own Service over the same endpoints.
	onService := func(doc, svc string) string { return strings.Replace(doc, "name: web, port", "name: "+svc+", port", 1) }
	docs := []string{
		harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", main.Port, main.Addrs),
		harness.ServiceYAML("hash", 80), harness.SliceYAML("hash-1", "hash", main.Port, main.Addrs),
		harness.ServiceYAML("sticky", 80), harness.SliceYAML("sticky-1", "sticky", main.Port, main.Addrs),
		harness.ServiceYAML("web-canary", 80), harness.SliceYAML("web-canary-1", "web-canary", canary.Port, canary.Addrs),
		onService(annotatedIngress("hash", "hash.test", "Prefix", "/", "upstream-hash-by=$http_x_user"), "hash"),
		onService(annotatedIngress("sticky", "sticky.test", "Prefix", "/", "affinity=cookie", "session-cookie-name=route"), "sticky"),
		annotatedIngress("web", "canary.test", "Prefix", "/"),
		canaryIng,
	}
	tg := startTidegate(t, map[string]string{"all.yaml": strings.Join(docs, "---\n")})

	t.Run("upstream-hash-by keeps a key on one endpoint", func(t *testing.T) {
		seen := map[string]bool{}
		for u := 0; u < 12; u++ {
			first := ""
			for i := 0; i < 5; i++ {
				r := tg.GetWith("hash.test", "/", map[string]string{"X-User": fmt.Sprint("user-", u)})
				if first == "" {
					first = r.Name
				}
				if r.Status != 200 || r.Name != first {
					t.Fatalf("user-%d went to %q then %q (status %d)", u, first, r.Name, r.Status)
				}
			}
			seen[first] = true
		}
		if len(seen) < 2 {
			t.Errorf("12 keys all hashed to %v", seen)
		}
	})
	t.Run("affinity cookie keeps a client on one endpoint", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		first := ""
		for i := 0; i < 10; i++ {
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", tg.HTTPPort), nil)
			req.Host = "sticky.test"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var name string
			fmt.Sscanf(harness.ReadBody(resp), `{"name":%q`, &name)
			if i == 0 && !strings.Contains(resp.Header.Get("Set-Cookie"), "route=") {
				t.Errorf("first answer sets no route cookie: %q", resp.Header.Get("Set-Cookie"))
			}
			if first == "" {
				first = name
			}
			if name != first {
				t.Fatalf("request %d went to %q, the cookie said %q", i, name, first)
			}
		}
	})
	t.Run("canary by header", func(t *testing.T) {
		if r := tg.GetWith("canary.test", "/", map[string]string{"X-Canary": "always"}); r.Name != "canary" {
			t.Errorf("X-Canary: always went to %q", r.Name)
		}
		if r := tg.GetWith("canary.test", "/", map[string]string{"X-Canary": "never"}); !strings.HasPrefix(r.Name, "m-") {
			t.Errorf("X-Canary: never went to %q", r.Name)
		}
		if r := tg.Get("canary.test", "/"); !strings.HasPrefix(r.Name, "m-") {
			t.Errorf("no header went to %q", r.Name)
		}
	})
}

// GetWith sends GET with extra headers.
func (tg *tidegate) GetWith(host, path string, headers map[string]string) harness.Reply {
	tg.T.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d%s", tg.HTTPPort, path), nil)
	req.Host = host
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := tg.Client.Do(req)
	if err != nil {
		return harness.Reply{Status: -1, Body: err.Error()}
	}
	r := harness.Reply{Status: resp.StatusCode, Body: harness.ReadBody(resp)}
	fmt.Sscanf(r.Body, `{"name":%q`, &r.Name)
	return r
}

// TestPassiveEjectionAndTheLogPhase checks, with the rendered nginx.conf,
// that a dead endpoint stops being tried after a few failed tries although
// the conf has no Lua log phase, and that the log phase comes (with one
// reload) when a Service balances by ewma and goes when none does.
func TestPassiveEjectionAndTheLogPhase(t *testing.T) {
	be := harness.StartBackends(t, "live", "dead")
	docs := []string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs)}
	ing := func(anns ...string) string { return annotatedIngress("web", "web.test", "Prefix", "/", anns...) }
	tg := startTidegate(t, map[string]string{"svc.yaml": strings.Join(docs, "---\n"), "ing.yaml": ing()})
	conf := func() string { return harness.ReadFile(t, filepath.Join(tg.WorkDir, "nginx.conf")) }
	if strings.Contains(conf(), "log_by_lua") {
		t.Fatalf("round_robin only: nginx.conf has a log phase")
	}

	be.Kill(be.Addrs[1])
	for i := 0; i < 60; i++ {
		if r := tg.Get("web.test", "/"); r.Status != 200 || r.Name != "live" {
			t.Fatalf("request %d with one endpoint dead: %d %q, want 200 from live", i, r.Status, r.Name)
		}
	}
	// 5 failed tries within 10 s eject a peer (per worker); without
	// ejection every other request would try the dead one first.
	errorLog := harness.ReadFile(t, filepath.Join(tg.WorkDir, "logs", "error.log"))
	tries := strings.Count(errorLog, "connect() failed")
	if limit := 5 * len(tg.Workers()); tries > limit {
		t.Errorf("the dead endpoint was tried %d times in 60 requests, want at most %d (ejected after 5 failures per worker)", tries, limit)
	}
	if !strings.Contains(errorLog, "ejected for") {
		t.Errorf("no ejection in nginx's error log:\n%s", errorLog)
	}

	r0 := tg.SettledReloads()
	tg.Write("ing.yaml", ing("load-balance=ewma"))
	// nginx.conf is installed before the reload is counted (when nginx
	// serves it): wait for both.
	tg.Eventually("the log phase in nginx.conf, reloaded", func() string {
		if !strings.Contains(conf(), `log_by_lua_block { require("tidegate.balancer").log() }`) {
			return "no log phase"
		}
		if tg.Reloads() == r0 {
			return "no reload counted"
		}
		return ""
	})
	if n := tg.SettledReloads(); n != r0+1 {
		t.Errorf("switching to ewma: %d reloads, want 1", n-r0)
	}
	for i := 0; i < 20; i++ {
		if r := tg.Get("web.test", "/"); r.Status != 200 || r.Name != "live" {
			t.Fatalf("ewma, request %d: %d %q, want 200 from live", i, r.Status, r.Name)
		}
	}
	tg.Write("ing.yaml", ing("load-balance=round_robin"))
	tg.Eventually("the log phase gone from nginx.conf", func() string {
		if strings.Contains(conf(), "log_by_lua") {
			return "still a log phase"
		}
		return ""
	})
}
