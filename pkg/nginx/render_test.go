package nginx_test

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

var update = flag.Bool("update", false, "rewrite the golden nginx.conf files in testdata/")

// goldenWorkDir is fixed so golden files do not depend on temp paths.
const goldenWorkDir = "/var/lib/tidegate"

func TestRenderGolden(t *testing.T) {
	crt, key, err := tlsutil.SelfSigned("a.io", "a.io")
	if err != nil {
		t.Fatal(err)
	}
	web := fixture.Service("web", "80", "http=8080")
	tests := map[string][]any{
		"empty": nil,
		"seed": {
			fixture.Service("kibana", "5601"), fixture.Service("elasticsearch", "9200"), fixture.Service("default-backend", "80"),
			fixture.Ingress("kibana").Host("caas.one").Prefix("/kibana", "kibana:5601"),
			fixture.Ingress("elasticsearch").Host("jingru.io").Prefix("/es", "elasticsearch:9200"),
			fixture.Ingress("default-backend").Default("default-backend:80"),
		},
		"path-types": {web,
			fixture.Ingress("paths").Host("paths.io").
				Exact("/same", "web:80").Prefix("/same", "web:http").
				Specific("/same/", "web:80").Prefix("/deep/er/", "web:80").Specific("/str", "web:80")},
		"tls-and-wildcard": {web, fixture.TLSSecret("a-tls", crt, key),
			fixture.Ingress("tls").TLS("a-tls", "a.io", "*.wild.io").
				Host("a.io").Prefix("/", "web:80").Host("*.wild.io").Prefix("/app", "web:80")},
		"global-settings": {web, fixture.ConfigMap("tidegate/tidegate", "worker-processes=2", "proxy-read-timeout=120", "proxy-body-size=8m", "ssl-redirect=false",
			"max-worker-open-files=8192", "max-worker-connections=0", "use-forwarded-headers=true"),
			fixture.Ingress("tls").TLS("", "a.io").Host("a.io").Prefix("/", "web:80")},
		"annotations": {web,
			fixture.Ingress("rewrite").Host("api.io").Prefix("/v1(/|$)(.*)", "web:80").
				Annotate("nginx.ingress.kubernetes.io/rewrite-target", "/$2").
				Annotate("nginx.ingress.kubernetes.io/x-forwarded-prefix", "/v1").
				Annotate("nginx.ingress.kubernetes.io/proxy-body-size", "8m").
				Annotate("nginx.ingress.kubernetes.io/proxy-read-timeout", "120").
				Annotate("nginx.ingress.kubernetes.io/proxy-buffer-size", "16k").
				Annotate("nginx.ingress.kubernetes.io/whitelist-source-range", "10.0.0.0/8,127.0.0.1").
				Annotate("nginx.ingress.kubernetes.io/limit-rps", "10").
				Annotate("nginx.ingress.kubernetes.io/limit-whitelist", "192.168.0.0/16").
				Annotate("nginx.ingress.kubernetes.io/enable-cors", "true").
				Annotate("nginx.ingress.kubernetes.io/cors-allow-origin", "https://a.io, https://*.b.io"),
			fixture.Ingress("plain").Host("api.io").Prefix("/static", "web:80").Exact("/exact", "web:80"),
			fixture.Ingress("moved").Host("old.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/permanent-redirect", "https://new.io$request_uri").
				Annotate("nginx.ingress.kubernetes.io/backend-protocol", "GRPC").
				Annotate("nginx.ingress.kubernetes.io/upstream-vhost", "internal.svc"),
			fixture.Ingress("root").Host("app.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/app-root", "/app").
				Annotate("nginx.ingress.kubernetes.io/force-ssl-redirect", "true")},
		"server-names": {web,
			fixture.Ingress("alias").Annotate("nginx.ingress.kubernetes.io/server-alias", "b.io,*.c.io").Host("a.io").Prefix("/", "web:80"),
			fixture.Ingress("www").Annotate("nginx.ingress.kubernetes.io/from-to-www-redirect", "true").Host("www.shop.io").Prefix("/", "web:80")},
		"extauth-and-errors": {web, fixture.Service("errors", "8080"), fixture.Service("empty", "80"), fixture.Service("notfound", "80"),
			fixture.ConfigMap("tidegate/tidegate", "custom-http-errors=502"),
			fixture.Ingress("default").Default("notfound:80"),
			fixture.Ingress("guarded").Host("auth.io").Prefix("/", "web:80").Prefix("/api", "web:80").
				Annotate("nginx.ingress.kubernetes.io/auth-url", "http://auth.ns.svc.cluster.local:8080/verify?u=$request_uri").
				Annotate("nginx.ingress.kubernetes.io/auth-method", "post").
				Annotate("nginx.ingress.kubernetes.io/auth-signin", "https://$host/oauth2/start").
				Annotate("nginx.ingress.kubernetes.io/auth-response-headers", "X-Auth-User, X-Auth-Email").
				Annotate("nginx.ingress.kubernetes.io/custom-http-errors", "401,404,503").
				Annotate("nginx.ingress.kubernetes.io/default-backend", "errors"),
			fixture.Ingress("dynamic-host").Host("oauth.io").Prefix("/", "empty:80").
				Annotate("nginx.ingress.kubernetes.io/auth-url", "https://$host/oauth2/auth").
				Annotate("nginx.ingress.kubernetes.io/auth-cache-key", "$remote_user$http_authorization").
				Annotate("nginx.ingress.kubernetes.io/auth-cache-duration", "200 202 10m, 401 1m").
				Annotate("nginx.ingress.kubernetes.io/default-backend", "errors"),
			fixture.Ingress("global-errors").Host("plain.io").Prefix("/", "web:80")},
		// add_header inheritance: every level with headers of its own
		// repeats HSTS (and the server-snippet's headers).
		"headers-and-snippets": {web,
			fixture.ConfigMap("tidegate/tidegate", "allow-snippet-annotations=true", "global-allowed-response-headers=X-Frame-Options,X-Note"),
			fixture.ConfigMap("default/hdrs", "X-Frame-Options=DENY", `X-Note=costs $5 "each"`),
			fixture.Ingress("hdrs").Host("h.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/custom-headers", "default/hdrs").
				Annotate("nginx.ingress.kubernetes.io/enable-cors", "true").
				Annotate("nginx.ingress.kubernetes.io/server-snippet", "add_header X-Server s;\nrewrite ^/old/(.*)$ /new/$1 permanent;"),
			fixture.Ingress("snip").Host("s.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/configuration-snippet", "add_header X-Snip \"$request_id\" always;\nproxy_set_header X-Forwarded-Host example.io;\nproxy_set_header X-From-Snippet yes;\nproxy_hide_header Server;\nexpires 1h;")},
		// Hosts that differ only in their backend and Ingress share a
		// server block (hostgroups.go); a TLS host, a wildcard and a host
		// with a setting of its own do not join it.
		"host-groups": {web, fixture.Service("api", "80"), fixture.TLSSecret("a-tls", crt, key),
			fixture.Ingress("one").Host("one.io").Prefix("/", "web:80"),
			fixture.Ingress("two").Host("two.io").Prefix("/", "api:80"),
			fixture.Ingress("three").Host("default").Prefix("/", "api:80"),
			fixture.Ingress("pair").Host("p1.io").Prefix("/api", "api:80").Host("p2.io").Prefix("/api", "api:80"),
			fixture.Ingress("wild").Host("*.w.io").Prefix("/", "web:80"),
			fixture.Ingress("tls").TLS("a-tls", "a.io").Host("a.io").Prefix("/", "web:80"),
			fixture.Ingress("slow").Host("slow.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/proxy-read-timeout", "120")},
		// ewma needs every response's latency: the Lua log phase is rendered
		"ewma-log-phase": {web,
			fixture.Ingress("fast").Host("fast.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/load-balance", "ewma")},
		"quotes-in-paths": {web,
			fixture.Ingress("odd").Host("odd.io").Prefix("/it's", "web:80").Exact("/$var;x", "web:80").Specific("/a(b)*+,=:@~!", "web:80")},
	}
	checkDir := t.TempDir()
	proc, err := nginx.NewProcess(nginx.Settings{WorkDir: checkDir}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for name, objs := range tests {
		t.Run(name, func(t *testing.T) {
			m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
			set := nginx.Settings{WorkDir: goldenWorkDir, HTTPPort: 80, HTTPSPort: 443, Resolvers: []string{"10.96.0.10", "fd00::a"}, OpenFiles: 1 << 20,
				Workers: &nginx.WorkerUser{Name: "nobody", Group: "nogroup", UID: 65534, GID: 65534}}
			r, err := nginx.Render(m.Structure, set)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".conf")
			if *update {
				if err := os.WriteFile(golden, r.Conf, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run `go test ./pkg/nginx -update` to create it)", err)
			}
			if !bytes.Equal(r.Conf, want) {
				t.Errorf("nginx.conf differs from %s (run with -update after checking the diff):\n%s", golden, diff(t, want, r.Conf))
			}
			// The same structure rendered for a real directory must pass nginx -t.
			rc, err := nginx.Render(m.Structure, nginx.Settings{WorkDir: checkDir, HTTPPort: 18080, HTTPSPort: 18443, Resolvers: set.Resolvers})
			if err != nil {
				t.Fatal(err)
			}
			if err := proc.Check(rc.Conf); err != nil {
				t.Errorf("nginx -t: %v", err)
			}
		})
	}
}

func diff(t *testing.T, want, got []byte) string {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "want"), filepath.Join(dir, "got")
	os.WriteFile(a, want, 0o644)
	os.WriteFile(b, got, 0o644)
	out, _ := exec.Command("diff", "-u", a, b).CombinedOutput()
	return string(out)
}

func TestRenderIsDeterministic(t *testing.T) {
	objs := []any{fixture.Service("web", "80"),
		fixture.Ingress("b").Host("b.io").Prefix("/", "web:80"),
		fixture.Ingress("a").Host("a.io").Prefix("/x", "web:80").Exact("/y", "web:80")}
	set := nginx.Settings{WorkDir: goldenWorkDir, HTTPPort: 80, HTTPSPort: 443}
	first, err := nginx.Render(model.Build(fixture.Snapshot(objs...), model.DefaultOptions()).Structure, set)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		objs[0], objs[1], objs[2] = objs[1], objs[2], objs[0]
		r, _ := nginx.Render(model.Build(fixture.Snapshot(objs...), model.DefaultOptions()).Structure, set)
		if !bytes.Equal(r.Conf, first.Conf) || r.Generation != first.Generation {
			t.Fatal("the same objects in another order rendered a different nginx.conf")
		}
	}
}

// --enable-metrics=false: nginx formats no metrics line per request, and
// the conf without it still passes nginx -t.
func TestRenderWithoutRequestMetrics(t *testing.T) {
	m := model.Build(fixture.Snapshot(fixture.Service("web", "80"),
		fixture.Ingress("a").Host("a.io").Prefix("/", "web:80")), model.DefaultOptions())
	dir := t.TempDir()
	for _, off := range []bool{false, true} {
		set := nginx.Settings{WorkDir: dir, HTTPPort: 18080, HTTPSPort: 18443, NoRequestMetrics: off}
		r, err := nginx.Render(m.Structure, set)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"log_format tidegate_metrics", set.MetricsLogPath()} {
			if got := bytes.Contains(r.Conf, []byte(s)); got == off {
				t.Errorf("NoRequestMetrics %v: nginx.conf has %q: %v", off, s, got)
			}
		}
		if off {
			proc, err := nginx.NewProcess(set, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if err := proc.Check(r.Conf); err != nil {
				t.Errorf("nginx -t: %v", err)
			}
		}
	}
}

func TestQuote(t *testing.T) {
	tests := map[string]struct {
		in, want string
		err      bool
	}{
		"plain":           {in: "/a/b", want: `"/a/b"`},
		"quote escaped":   {in: `a"b`, want: `"a\"b"`},
		"backslash":       {in: `a\b`, want: `"a\\b"`},
		"newline refused": {in: "a\nb", err: true},
		"NUL refused":     {in: "a\x00b", err: true},
		"CR refused":      {in: "a\rb", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := nginx.Quote(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("Quote(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.err)
			}
		})
	}
	if _, err := nginx.QuoteVarFree("a$b"); err == nil {
		t.Error("QuoteVarFree must refuse '$'")
	}
}
