package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tidegate/tidegate/test/harness"
)

// authServer is an external auth service on 127.0.0.1: 200 with
// X-Auth-User for requests whose Authorization is "Bearer good", 401
// otherwise. It records the headers of the last request it saw.
type authServer struct {
	URL  string
	ln   net.Listener
	mu   sync.Mutex
	last http.Header
	meth string
	body int64
	hits map[string]int // requests by path and Authorization
}

func startAuthServer(t *testing.T) *authServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &authServer{URL: "http://" + ln.Addr().String(), ln: ln}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.last, a.meth, a.body = r.Header.Clone(), r.Method, r.ContentLength
		if a.hits == nil {
			a.hits = map[string]int{}
		}
		a.hits[r.URL.Path+" "+r.Header.Get("Authorization")]++
		a.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer good" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-Auth-User", "alice")
		w.Header().Set("X-Not-Copied", "secret")
		if r.URL.Path != "/cached" { // nginx caches no answer that sets a cookie
			w.Header().Set("Set-Cookie", "_oauth2_proxy=refreshed; Path=/")
		}
		w.WriteHeader(http.StatusOK)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// asked returns how many auth requests for path carried Authorization
// value auth.
func (a *authServer) asked(path, auth string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hits[path+" "+auth]
}

func (a *authServer) seen() (http.Header, string, int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last, a.meth, a.body
}

// TestExternalAuth: auth-url asks an auth service before every request:
// 401 without a token, 200 with one and the backend sees the
// auth-response-headers; auth-signin turns the 401 into a 302 with rd=;
// the auth service sees X-Original-URL and X-Original-Method and no body;
// an auth service that is down gives 500, as in ingress-nginx; a refused
// auth-url refuses requests.
func TestExternalAuth(t *testing.T) {
	be := harness.StartBackends(t, "app")
	auth := startAuthServer(t)
	failing := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	down := fmt.Sprintf("http://127.0.0.1:%d/auth", harness.FreePort(t))
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{harness.ServiceYAML("web", 80), harness.SliceYAML("web-1", "web", be.Port, be.Addrs),
			annotatedIngress("guarded", "guarded.test", "Prefix", "/", "auth-url="+auth.URL+"/verify?orig=$request_uri",
				"auth-response-headers=X-Auth-User"),
			annotatedIngress("signin", "signin.test", "Prefix", "/", "auth-url="+auth.URL+"/verify", "auth-method=POST",
				"auth-signin=https://sso.test/login"),
			annotatedIngress("oauth2", "oauth2.test", "Prefix", "/", "auth-url="+auth.URL+"/verify",
				"auth-signin=https://sso.test/start?rd=$escaped_request_uri"),
			annotatedIngress("down", "down.test", "Prefix", "/", "auth-url="+down),
			annotatedIngress("bad", "bad.test", "Prefix", "/", "auth-url=http://auth.test/$remote_addr"),
			// A backend that fails: the session cookie goes with its 503
			// only with auth-always-set-cookie.
			harness.ServiceYAML("failing", 80), harness.SliceYAML("failing-1", "failing", failing, []string{"127.0.0.1"}),
			strings.ReplaceAll(annotatedIngress("always", "always.test", "Prefix", "/", "auth-url="+auth.URL+"/verify", "auth-always-set-cookie=true"), "name: web", "name: failing"),
			strings.ReplaceAll(annotatedIngress("onsuccess", "onsuccess.test", "Prefix", "/", "auth-url="+auth.URL+"/verify"), "name: web", "name: failing"),
			annotatedIngress("cached", "cached.test", "Prefix", "/", "auth-url="+auth.URL+"/cached", "auth-cache-key=$http_authorization", "auth-cache-duration=200 1m"),
			annotatedIngress("hdrs", "hdrs.test", "Prefix", "/", "auth-url="+auth.URL+"/verify", "auth-proxy-set-headers=auth-hdrs"),
			annotatedIngress("nohdrs", "nohdrs.test", "Prefix", "/", "auth-url="+auth.URL+"/verify", "auth-proxy-set-headers=missing"),
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: auth-hdrs}\ndata:\n  X-Tenant: acme\n  X-Literal: \"$remote_addr\"\n",
		}, "---\n"),
	})
	do := func(method, host, path, token, body string) (*http.Response, harness.Reply) {
		t.Helper()
		req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", tg.HTTPPort, path), strings.NewReader(body))
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("X-Auth-User", "mallory") // a client may not choose it
		resp, err := tg.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r := harness.Reply{Status: resp.StatusCode, Body: harness.ReadBody(resp)}
		_ = json.Unmarshal([]byte(r.Body), &r.Reply)
		return resp, r
	}

	t.Run("the auth cookie goes with an error answer only with auth-always-set-cookie", func(t *testing.T) {
		for host, want := range map[string]string{"always.test": "_oauth2_proxy=refreshed; Path=/", "onsuccess.test": ""} {
			resp, r := do("GET", host, "/", "good", "")
			if r.Status != 503 || resp.Header.Get("Set-Cookie") != want {
				t.Errorf("%s: %d with Set-Cookie %q, want 503 with %q", host, r.Status, resp.Header.Get("Set-Cookie"), want)
			}
		}
	})
	t.Run("auth-cache-key: one auth request per token while the answer is fresh", func(t *testing.T) {
		for i := 0; i < 3; i++ {
			if _, r := do("GET", "cached.test", fmt.Sprintf("/p%d", i), "good", ""); r.Status != 200 {
				t.Fatalf("cached.test: %d", r.Status)
			}
		}
		for i := 0; i < 2; i++ {
			if _, r := do("GET", "cached.test", "/", "bad", ""); r.Status != 401 {
				t.Fatalf("cached.test with a bad token: %d", r.Status)
			}
		}
		// 200 is cached for a minute; 401 is not listed in the duration.
		if good, bad := auth.asked("/cached", "Bearer good"), auth.asked("/cached", "Bearer bad"); good != 1 || bad != 2 {
			t.Errorf("the auth service was asked %d times for the good token (want 1, then cached) and %d for the bad one (want 2, not cached)", good, bad)
		}
	})
	t.Run("auth-proxy-set-headers reach the auth service, literally", func(t *testing.T) {
		if _, r := do("GET", "hdrs.test", "/", "good", ""); r.Status != 200 {
			t.Fatalf("hdrs.test: %d", r.Status)
		}
		if h, _, _ := auth.seen(); h.Get("X-Tenant") != "acme" || h.Get("X-Literal") != "$remote_addr" {
			t.Errorf("auth service saw X-Tenant %q, X-Literal %q", h.Get("X-Tenant"), h.Get("X-Literal"))
		}
		if _, r := do("GET", "nohdrs.test", "/", "good", ""); r.Status != 403 {
			t.Errorf("auth-proxy-set-headers naming a missing ConfigMap: %d, want 403 (fail closed)", r.Status)
		}
	})
	t.Run("no token is refused", func(t *testing.T) {
		resp, r := do("GET", "guarded.test", "/page", "", "")
		if r.Status != 401 || r.Name == "app" {
			t.Fatalf("got %d %q, want 401 from nginx", r.Status, r.Body)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="test"` {
			t.Errorf("WWW-Authenticate of the auth service not passed on: %q", got)
		}
	})
	t.Run("a good token reaches the backend with the auth headers", func(t *testing.T) {
		resp, r := do("POST", "guarded.test", "/page?x=1", "good", "payload")
		if r.Status != 200 || r.Name != "app" {
			t.Fatalf("got %d %q, want 200 from app", r.Status, r.Body)
		}
		if got := resp.Header.Get("Set-Cookie"); got != "_oauth2_proxy=refreshed; Path=/" {
			t.Errorf("the auth service's Set-Cookie reaches the client with a 200: got %q", got)
		}
		if got := r.Headers["X-Auth-User"]; got != "alice" {
			t.Errorf("backend saw X-Auth-User %q, want the auth service's %q", got, "alice")
		}
		if _, ok := r.Headers["X-Not-Copied"]; ok {
			t.Errorf("a header not in auth-response-headers reached the backend")
		}
		h, m, n := auth.seen()
		if want := "http://guarded.test/page?x=1"; h.Get("X-Original-URL") != want {
			t.Errorf("auth service saw X-Original-URL %q, want %q", h.Get("X-Original-URL"), want)
		}
		if h.Get("X-Original-Method") != "POST" || m != "GET" {
			t.Errorf("auth service saw X-Original-Method %q and method %q, want POST and GET (auth_request's, without auth-method)", h.Get("X-Original-Method"), m)
		}
		if h.Get("X-Sent-From") != "nginx-ingress-controller" || h.Get("X-Auth-Request-Redirect") != "/page?x=1" {
			t.Errorf("auth service headers: %v", h)
		}
		if n > 0 {
			t.Errorf("auth service got a body of %d bytes; the request body must not be sent", n)
		}
	})
	t.Run("auth-signin redirects a 401 with rd; auth-method is the auth request's", func(t *testing.T) {
		resp, r := do("GET", "signin.test", "/a/b?c=d", "", "")
		if r.Status != 302 {
			t.Fatalf("got %d, want 302", r.Status)
		}
		loc := resp.Header.Get("Location")
		u, err := url.Parse(loc)
		if err != nil || u.Host != "sso.test" || u.Path != "/login" || u.Query().Get("rd") != "http://signin.test/a/b?c=d" {
			t.Errorf("Location %q, want the signin URL with rd=http://signin.test/a/b?c=d (escaped)", loc)
		}
		if _, r := do("DELETE", "signin.test", "/a", "good", ""); r.Status != 200 || r.Name != "app" {
			t.Errorf("with a token: %d %q", r.Status, r.Body)
		}
		if h, m, _ := auth.seen(); m != "POST" || h.Get("X-Original-Method") != "DELETE" {
			t.Errorf("auth-method POST: the auth service saw %s (X-Original-Method %q) for a DELETE", m, h.Get("X-Original-Method"))
		}
	})
	t.Run("auth-signin may place $escaped_request_uri itself", func(t *testing.T) {
		resp, r := do("GET", "oauth2.test", "/a/b?c=d", "", "")
		if want := "https://sso.test/start?rd=%2Fa%2Fb%3Fc%3Dd"; r.Status != 302 || resp.Header.Get("Location") != want {
			t.Errorf("got %d Location %q, want 302 to %q", r.Status, resp.Header.Get("Location"), want)
		}
	})
	t.Run("auth service down is a 500", func(t *testing.T) {
		if _, r := do("GET", "down.test", "/", "good", ""); r.Status != 500 {
			t.Errorf("got %d %q, want 500", r.Status, r.Body)
		}
	})
	t.Run("a refused auth-url is reported and fails closed", func(t *testing.T) {
		if _, r := do("GET", "bad.test", "/", "good", ""); r.Status != 403 {
			t.Errorf("got %d %q, want 403: a path whose auth-url was refused must not be served", r.Status, r.Body)
		}
		if log := harness.ReadFile(t, tg.LogPath); !strings.Contains(log, "default/bad") || !strings.Contains(log, "$remote_addr") {
			t.Errorf("the rejected auth-url must be reported with the Ingress's name")
		}
	})
}
