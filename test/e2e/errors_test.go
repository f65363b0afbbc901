package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tidegate/tidegate/test/harness"
)

// startHTTP serves h on 127.0.0.1 and returns its port.
func startHTTP(t *testing.T, h http.Handler) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// errorService is a custom error backend: it answers with the status in
// X-Code (200 without one) and a body naming itself and the code, and
// records the headers of the last request.
type errorService struct {
	name string
	mu   sync.Mutex
	last *http.Request
}

func (e *errorService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.last = r.Clone(r.Context())
	e.mu.Unlock()
	code, err := strconv.Atoi(r.Header.Get("X-Code"))
	if err != nil {
		code = 200
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "%s page for %d", e.name, code)
}

func (e *errorService) seen() *http.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// backendIngress is annotatedIngress with another Service than web.
func backendIngress(name, host, svc string, anns ...string) string {
	return strings.Replace(annotatedIngress(name, host, "Prefix", "/", anns...), "name: web,", "name: "+svc+",", 1)
}

// TestCustomErrors: custom-http-errors with default-backend send the
// listed codes of the application to the error service, which answers
// with the original code and sees X-Code, X-Original-URI, X-Namespace,
// X-Ingress-Name and X-Service-Name; other codes pass untouched; the
// ConfigMap's custom-http-errors sends errors of every Ingress to the
// global default backend, and so does the 503 of a Service without
// endpoints; a Service without endpoints is served by the
// Ingress's default-backend until it has endpoints again, without a reload.
func TestCustomErrors(t *testing.T) {
	app := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(404)
		case "/down":
			w.WriteHeader(503)
		case "/conflict":
			w.WriteHeader(409)
		}
		fmt.Fprintf(w, "app says %s", r.URL.Path)
	}))
	pages := &errorService{name: "ingress errors"}
	global := &errorService{name: "global errors"}
	pagesPort, globalPort := startHTTP(t, pages), startHTTP(t, global)
	defaultBackend := `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: catch-all}
spec:
  ingressClassName: tidegate
  defaultBackend: {service: {name: global-errors, port: {number: 80}}}
`
	tg := startTidegate(t, map[string]string{
		"all.yaml": strings.Join([]string{
			harness.ServiceYAML("app", 80), harness.SliceYAML("app-1", "app", app, []string{"127.0.0.1"}),
			harness.ServiceYAML("error-pages", 80), harness.SliceYAML("error-pages-1", "error-pages", pagesPort, []string{"127.0.0.1"}),
			harness.ServiceYAML("global-errors", 80), harness.SliceYAML("global-errors-1", "global-errors", globalPort, []string{"127.0.0.1"}),
			harness.ServiceYAML("empty", 80), harness.ServiceYAML("gone", 80),
			backendIngress("no-endpoints", "gone.test", "gone", "custom-http-errors=503"),
			backendIngress("errs", "errors.test", "app", "custom-http-errors=404,503", "default-backend=error-pages"),
			backendIngress("plain", "plain.test", "app"),
			backendIngress("fallback", "empty.test", "empty", "default-backend=error-pages"),
			defaultBackend,
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tidegate, namespace: tidegate}\ndata:\n  custom-http-errors: \"404\"\n",
		}, "---\n"),
		"empty-slice.yaml": harness.SliceYAML("empty-1", "empty", app, nil),
	})

	tests := map[string]struct {
		host, path string
		status     int
		body       string
		via        *errorService
	}{
		"404 goes to the default-backend":       {"errors.test", "/missing?q=1", 404, "ingress errors page for 404", pages},
		"503 goes to the default-backend":       {"errors.test", "/down", 503, "ingress errors page for 503", pages},
		"a code not listed passes untouched":    {"errors.test", "/conflict", 409, "app says /conflict", nil},
		"a success passes untouched":            {"errors.test", "/ok", 200, "app says /ok", nil},
		"the ConfigMap's codes apply elsewhere": {"plain.test", "/missing", 404, "global errors page for 404", global},
		"codes only the annotation lists pass":  {"plain.test", "/down", 503, "app says /down", nil},
		"no endpoints is a 503 like any other":  {"gone.test", "/p", 503, "global errors page for 503", global},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := tg.Get(tc.host, tc.path)
			if r.Status != tc.status || r.Body != tc.body {
				t.Fatalf("%s%s: %d %q, want %d %q", tc.host, tc.path, r.Status, r.Body, tc.status, tc.body)
			}
			if tc.via == nil {
				return
			}
			req := tc.via.seen()
			want := map[string]string{"X-Code": strconv.Itoa(tc.status), "X-Original-Uri": tc.path, "X-Namespace": "default",
				"X-Ingress-Name": strings.TrimSuffix(tc.host, ".test"), "X-Service-Name": "app", "X-Service-Port": "80"}
			switch tc.host {
			case "errors.test":
				want["X-Ingress-Name"] = "errs"
			case "gone.test":
				want["X-Ingress-Name"], want["X-Service-Name"] = "no-endpoints", "gone"
			}
			for k, v := range want {
				if got := req.Header.Get(k); got != v {
					t.Errorf("error service saw %s %q, want %q", k, got, v)
				}
			}
			if req.URL.Path != "/" || req.Header.Get("X-Request-Id") == "" {
				t.Errorf("error service saw path %q and X-Request-ID %q; want / and an ID", req.URL.Path, req.Header.Get("X-Request-Id"))
			}
		})
	}

	t.Run("a Service without endpoints is served by the default-backend", func(t *testing.T) {
		if r := tg.Get("empty.test", "/x"); r.Status != 200 || r.Body != "ingress errors page for 200" {
			t.Fatalf("empty.test: %d %q, want the default-backend's answer", r.Status, r.Body)
		}
		reloads := tg.Reloads()
		tg.Write("empty-slice.yaml", harness.SliceYAML("empty-1", "empty", app, []string{"127.0.0.1"}))
		tg.Eventually("the Service's own endpoint serves again", func() string {
			if r := tg.Get("empty.test", "/x"); r.Body != "app says /x" {
				return fmt.Sprintf("%d %q", r.Status, r.Body)
			}
			return ""
		})
		tg.Write("empty-slice.yaml", harness.SliceYAML("empty-1", "empty", app, nil))
		tg.Eventually("the default-backend serves when the endpoints are gone", func() string {
			if r := tg.Get("empty.test", "/x"); r.Body != "ingress errors page for 200" {
				return fmt.Sprintf("%d %q", r.Status, r.Body)
			}
			return ""
		})
		if n := tg.Reloads(); n != reloads {
			t.Errorf("endpoints coming and going reloaded nginx %d times; they must only be pushed", n-reloads)
		}
	})
}
