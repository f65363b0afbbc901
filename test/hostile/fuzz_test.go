package hostile

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/confparse"
	"github.com/tidegate/tidegate/pkg/dynamic"
	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

var fuzzEnv struct {
	once  sync.Once
	set   nginx.Settings
	proc  *nginx.Process
	known map[string]bool
	err   error
	n     int
}

// FuzzRender feeds random hosts, paths, path types, service names and
// annotation values through model and render. Invariants: nginx.conf always
// parses, holds no control character, no directive outside the template's
// vocabulary, no newline inside an argument, no place nginx connects to
// that points inward (inward_test.go); every 50th rendering passes a
// real `nginx -t`. The model's backends are pushed to a real Lua data plane,
// which must take every one of them: a backend the model builds and Lua
// refuses would hold back every other endpoint change.
func FuzzRender(f *testing.F) {
	keys := annotations.Keys()
	f.Add("a.io", "/x", uint8(0), "web", uint8(0), "8m")
	f.Add("*.b.io", "/api(/|$)(.*)", uint8(2), "web", uint8(5), "/$2")
	f.Add("c.io", "/x\"; return 200 pwned; #", uint8(1), "w;eb", uint8(9), "x\nreturn 200;")
	f.Add("d.io", "/{}", uint8(3), "web", uint8(13), "https://a.io$request_uri")
	// A valid value for each annotation that adds directives of its own, so
	// that `go test` (which runs the seeds) renders them every time.
	for k, v := range map[string]string{
		"auth-url": "http://auth.io/check?u=$request_uri", "auth-signin": "https://$host/start",
		"auth-response-headers": "X-User", "custom-http-errors": "404,503", "default-backend": "web",
		"custom-headers": "fz/hdrs", "service-upstream": "true", "enable-cors": "true",
		"auth-type": "basic", "limit-rps": "5", "whitelist-source-range": "10.0.0.0/8",
		"rewrite-target": "/$1", "app-root": "/app", "permanent-redirect": "https://x.io$request_uri",
		"mirror-target": "https://shadow.io$request_uri", "proxy-redirect-from": "http://in.io/", "satisfy": "any",
		"auth-tls-secret": "ca", "auth-tls-match-cn": "CN=(a|b)",
	} {
		for i, key := range keys {
			if key == k {
				f.Add("e.io", "/a", uint8(0), "web", uint8(i), v)
			}
		}
	}
	// Inward shapes (inward.txt) for the keys nginx connects to: the
	// fuzzer mutates them towards other spellings.
	for _, v := range []string{"http://unix:/w/run/tidegate.sock:/configuration/backends", "http://0127.0.0.1/", "http://[::ffff:127.0.0.1]:10254/", "http://LOCALHOST./"} {
		for i, key := range keys {
			if key == "auth-url" || key == "mirror-target" {
				f.Add("e.io", "/a", uint8(0), "web", uint8(i), v)
			}
		}
	}
	// One Lua data plane for the whole run, owned by f so it outlives every
	// input.
	fuzzCert, fuzzKey, err := tlsutil.SelfSigned("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	fuzzCA := caSecret("fz") // auth-tls-secret: ca
	lua := dynamictest.New(f, dynamictest.Locations{"/x": "fz/web:80"})
	lua.Start(f)
	push := dynamic.New(lua.Socket, lua.Token)
	f.Fuzz(func(t *testing.T, host, path string, pathType uint8, svc string, key uint8, value string) {
		fuzzEnv.once.Do(func() {
			// Shared by every fuzz input: not t.TempDir, which goes with the
			// first input's test.
			dir, err := os.MkdirTemp("", "tidegate-fuzz-")
			if err != nil {
				fuzzEnv.err = err
				return
			}
			fuzzEnv.set = nginx.Settings{WorkDir: dir, HTTPPort: 18080, HTTPSPort: 18443}
			fuzzEnv.proc, fuzzEnv.err = nginx.NewProcess(fuzzEnv.set, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if fuzzEnv.err == nil {
				fuzzEnv.known = vocabulary(t, fuzzEnv.set, fields()) // corpus_test.go
			}
		})
		if fuzzEnv.err != nil {
			t.Fatal(fuzzEnv.err)
		}
		ing := fixture.Ingress("fz/ing").Annotate(annotations.Prefix+keys[int(key)%len(keys)], value).Host(host).TLS("tls", host)
		switch pathType % 4 {
		case 0:
			ing.Prefix(path, svc+":80")
		case 1:
			ing.Exact(path, svc+":80")
		case 2:
			ing.Annotate(annotations.Prefix+"use-regex", "true").Specific(path, svc+":80")
		default:
			ing.Specific(path, svc+":80")
		}
		m := model.Build(fixture.Snapshot(fixture.Service("fz/web", "80"), ing, fixture.TLSSecret("fz/tls", fuzzCert, fuzzKey), fuzzCA,
			fixture.Slice("fz/web-1", "web", "80").Ready("10.0.0.1", "10.0.0.2")), model.DefaultOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := push.PushBackends(ctx, true, m.Dynamic.Backends, nil); err != nil {
			t.Fatalf("the Lua data plane refused the model's backends: %v", err)
		}
		if err := push.PushCertificates(ctx, true, m.Dynamic.Certificates, nil); err != nil {
			t.Fatalf("the Lua data plane refused the model's certificates (hosts %q): %v", host, err)
		}
		r, err := nginx.Render(m.Structure, fuzzEnv.set)
		if err != nil {
			return // refused with an error: fine
		}
		conf := string(r.Conf)
		if strings.ContainsAny(conf, "\x00\r") {
			t.Fatalf("control character in nginx.conf")
		}
		tree, err := confparse.Parse(conf)
		if err != nil {
			t.Fatalf("nginx.conf does not parse: %v", err)
		}
		confparse.Walk(tree, func(d confparse.Directive) {
			if !fuzzEnv.known[d.Name] {
				t.Fatalf("unexpected directive %q", d.Name)
			}
			if d.Name != "init_by_lua_block" && !strings.HasSuffix(d.Name, "_by_lua_block") {
				for _, a := range d.Args {
					if strings.Contains(a, "\n") {
						t.Fatalf("newline inside an argument of %s", d.Name)
					}
				}
			}
		})
		// Nothing points nginx inward (inward_test.go); the model's default
		// policy refuses loopback.
		if bad, _ := inwardTargets(conf, model.DefaultOptions().Targets); len(bad) > 0 {
			t.Fatalf("annotation %s=%q: %s", keys[int(key)%len(keys)], value, strings.Join(bad, "; "))
		}
		fuzzEnv.n++
		if fuzzEnv.n%50 == 1 {
			if err := fuzzEnv.proc.WriteAuthFiles(m.Structure.AuthFiles); err != nil {
				t.Fatal(err)
			}
			if err := fuzzEnv.proc.Check(r.Conf); err != nil {
				t.Fatalf("nginx -t: %v", err)
			}
		}
	})
}
