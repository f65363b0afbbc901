// Package hostile runs the hostile-input corpus: every payload shape in
// payloads.txt, in every field of an Ingress that can reach nginx.conf and in
// every annotation tidegate parses. The oracle for each case: it is rejected
// with a message naming the object, or the rendered nginx.conf parses to
// exactly the directives a benign value gives (no extra directive, no
// control character, the value only inside the directive it belongs to) and
// passes `nginx -t`.
package hostile

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/confparse"
	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/nginx"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

// loadPayloads reads payloads.txt and adds two long values.
func loadPayloads(t *testing.T) []string {
	return append(loadLines(t, "payloads.txt"), strings.Repeat("a", 70000), "/"+strings.Repeat("x/", 3000))
}

// loadLines reads a payload file: one payload per line, Go string escapes
// unescaped, "# " comments and empty lines skipped.
func loadLines(t testing.TB, name string) []string {
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# ") || line == "" {
			continue
		}
		s, err := strconv.Unquote(`"` + strings.ReplaceAll(line, `"`, `\"`) + `"`)
		if err != nil {
			t.Fatalf("payload %q: %v", line, err)
		}
		out = append(out, s)
	}
	return out
}

// field injects a value into one place of a small scenario.
type field struct {
	name string
	// prefix makes the payload follow a valid value ("8m" + payload).
	prefix string
	// build returns the objects with v in the field.
	build func(v string) []any
}

func scenario(mutate func(ing *fixture.IngressBuilder) *fixture.IngressBuilder, extra ...any) []any {
	ing := fixture.Ingress("shop/target")
	objs := []any{fixture.Service("shop/web", "80", "http=8080"), fixture.Slice("shop/web-1", "web", "8080").Ready("10.0.0.1"),
		fixture.Service("shop/errors", "80"), clientCA, mutate(ing)}
	return append(objs, extra...)
}

// clientCA is a Secret with a ca.crt, so that the auth-tls-* keys render
// (with auth-tls-secret: ca).
var clientCA = caSecret("shop")

// caSecret is the Secret ns/ca holding a CA certificate in ca.crt.
func caSecret(ns string) *corev1.Secret {
	crt, _, err := tlsutil.SelfSigned("client CA")
	if err != nil {
		panic(err) // crypto/rand failing
	}
	return &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca"}, Data: map[string][]byte{"ca.crt": crt}}
}

func fields() []field {
	fs := []field{
		{name: "host", prefix: "a.io", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder { return i.Host(v).Prefix("/", "web:80") })
		}},
		{name: "tls host", prefix: "a.io", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder {
				return i.TLS("", v).Host("a.io").Prefix("/", "web:80")
			})
		}},
		{name: "tls secret name", prefix: "s", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder {
				return i.TLS(v, "a.io").Host("a.io").Prefix("/", "web:80")
			})
		}},
		{name: "service name", prefix: "web", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder { return i.Host("a.io").Prefix("/", v+":80") })
		}},
		{name: "service port name", prefix: "http", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder { return i.Host("a.io").Prefix("/", "web:x"+v) })
		}},
		{name: "default backend service", prefix: "web", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder { return i.Default(v + ":80") })
		}},
		{name: "namespace", prefix: "shop", build: func(v string) []any {
			return []any{fixture.Service(v+"/web", "80"), fixture.Ingress(v+"/target").Host("a.io").Prefix("/", "web:80")}
		}},
	}
	for _, pt := range []string{"Prefix", "Exact", "ImplementationSpecific", "regex"} {
		pt := pt
		fs = append(fs, field{name: "path " + pt, prefix: "/a", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder {
				switch pt {
				case "Prefix":
					return i.Host("a.io").Prefix(v, "web:80")
				case "Exact":
					return i.Host("a.io").Exact(v, "web:80")
				case "regex":
					return i.Annotate(annotations.Prefix+"use-regex", "true").Host("a.io").Specific(v, "web:80")
				}
				return i.Host("a.io").Specific(v, "web:80")
			})
		}})
	}
	for _, key := range annotations.Keys() {
		key := key
		fs = append(fs, field{name: "annotation " + key, prefix: annotationPrefix[key], build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder {
				i = i.Annotate(annotations.Prefix+key, v)
				if key == "cors-allow-origin" || strings.HasPrefix(key, "cors-") {
					i = i.Annotate(annotations.Prefix+"enable-cors", "true")
				}
				if key == "limit-whitelist" || key == "limit-burst-multiplier" {
					i = i.Annotate(annotations.Prefix+"limit-rps", "5")
				}
				// The external-auth keys act only with an auth-url, custom
				// errors only with somewhere to send them.
				if strings.HasPrefix(key, "proxy-ssl-") {
					i = i.Annotate(annotations.Prefix+"backend-protocol", "HTTPS")
					if key != "proxy-ssl-secret" {
						i = i.Annotate(annotations.Prefix+"proxy-ssl-secret", "ca")
					}
				}
				if strings.HasPrefix(key, "auth-tls-") {
					if key != "auth-tls-secret" {
						i = i.Annotate(annotations.Prefix+"auth-tls-secret", "ca")
					}
				} else if strings.HasPrefix(key, "auth-") && key != "auth-url" && annotationPrefix["auth-url"] != "" {
					i = i.Annotate(annotations.Prefix+"auth-url", annotationPrefix["auth-url"])
				}
				if key == "custom-http-errors" {
					i = i.Annotate(annotations.Prefix+"default-backend", "errors")
				}
				if key == "default-backend" {
					i = i.Annotate(annotations.Prefix+"custom-http-errors", "404,503")
				}
				return i.Host("a.io").Specific("/a", "web:80")
			})
		}})
	}
	// Snippets with allow-snippet-annotations on: each directive is checked
	// against the allow-list and re-emitted, never pasted.
	for _, key := range []string{annotations.ConfigurationSnippet, annotations.ServerSnippet} {
		key := key
		fs = append(fs, field{name: "allowed " + key, prefix: "add_header X-A 1;", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder {
				return i.Annotate(annotations.Prefix+key, v).Host("a.io").Specific("/a", "web:80")
			}, fixture.ConfigMap("tidegate/tidegate", "allow-snippet-annotations=true"))
		}})
	}
	// custom-headers: the referenced ConfigMap's keys and values.
	customHeaders := func(k, v string) []any {
		return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder {
			return i.Annotate(annotations.Prefix+"custom-headers", "hdrs").Host("a.io").Specific("/a", "web:80")
		}, fixture.ConfigMap("tidegate/tidegate", "global-allowed-response-headers=X-A,"+k), fixture.ConfigMap("shop/hdrs", k+"="+v))
	}
	fs = append(fs,
		field{name: "custom-headers value", prefix: "v", build: func(v string) []any { return customHeaders("X-A", v) }},
		field{name: "custom-headers name", prefix: "X-A", build: func(v string) []any { return customHeaders(v, "v") }})
	for _, key := range []string{"worker-processes", "proxy-body-size", "proxy-read-timeout", "upstream-keepalive-connections", "ssl-redirect", "ssl-ciphers", "ssl-protocols", "proxy-real-ip-cidr", "hsts-max-age", "proxy-next-upstream", "log-format-upstream",
		"global-allowed-response-headers", "allow-snippet-annotations", "custom-http-errors"} {
		key := key
		fs = append(fs, field{name: "configmap " + key, prefix: "1", build: func(v string) []any {
			return scenario(func(i *fixture.IngressBuilder) *fixture.IngressBuilder { return i.Host("a.io").Prefix("/", "web:80") },
				fixture.ConfigMap("tidegate/tidegate", key+"="+v))
		}})
	}
	return fs
}

// annotationPrefix is a valid value each payload is appended to.
var annotationPrefix = map[string]string{
	"proxy-body-size": "8m", "client-body-buffer-size": "8k", "proxy-buffer-size": "8k", "proxy-read-timeout": "60",
	"permanent-redirect": "https://a.io/", "temporal-redirect": "https://a.io/", "app-root": "/app",
	"rewrite-target": "/new", "x-forwarded-prefix": "/p", "whitelist-source-range": "10.0.0.0/8,", "auth-realm": "Staff",
	"denylist-source-range": "10.0.0.0/8,", "cors-allow-origin": "https://a.io,", "cors-allow-methods": "GET,",
	"cors-allow-headers": "X-A,", "upstream-vhost": "a.io", "backend-protocol": "HTTP", "proxy-next-upstream": "error ",
	"limit-whitelist": "10.0.0.0/8,", "connection-proxy-header": "close",
	"custom-headers": "shop/hdrs", "service-upstream": "true",
	"auth-url": "http://auth.io/check", "auth-signin": "https://sso.io/start", "auth-response-headers": "X-User,",
	"auth-method": "GET", "auth-request-redirect": "/back", "auth-signin-redirect-param": "rd",
	"custom-http-errors": "404,", "default-backend": "errors",
	"configuration-snippet": "add_header X-A 1;", "server-snippet": "add_header X-A 1;",
	"auth-tls-secret": "ca", "auth-tls-error-page": "https://a.io/cert", "auth-tls-match-cn": "CN=a",
	"mirror-target": "https://shadow.io/m", "mirror-host": "shadow.io",
	"proxy-redirect-from": "http://in.io/", "proxy-redirect-to": "https://a.io/", "satisfy": "any",
	"proxy-buffering": "on", "proxy-request-buffering": "off", "proxy-http-version": "1.0", "proxy-connect-timeout": "5",
	"proxy-send-timeout": "60", "proxy-next-upstream-timeout": "5", "proxy-next-upstream-tries": "3",
	"proxy-ssl-server-name": "on", "enable-access-log": "false", "mirror-request-body": "off",
	"limit-rps": "5", "limit-rpm": "60", "limit-connections": "5", "permanent-redirect-code": "301",
	"ssl-redirect": "false", "force-ssl-redirect": "true", "from-to-www-redirect": "true", "server-alias": "b.io",
	"use-regex": "true", "auth-tls-verify-client": "optional", "auth-tls-verify-depth": "2",
	"auth-tls-pass-certificate-to-upstream": "true", "auth-always-set-cookie": "true", "auth-proxy-set-headers": "hdrs",
	"auth-cache-key": "$remote_user", "auth-cache-duration": "200 5m",
	"proxy-ssl-secret": "ca", "proxy-ssl-verify": "on", "proxy-ssl-verify-depth": "2", "proxy-ssl-protocols": "TLSv1.2",
	"proxy-ssl-ciphers": "HIGH",
}

// allowedHome lists the directives a user value may legitimately appear in.
var allowedHome = map[string]bool{
	"server_name": true, "location": true, "set": true, "rewrite": true, "return": true, "if": true,
	"proxy_set_header": true, "grpc_set_header": true, "add_header": true, "allow": true, "deny": true,
	"client_max_body_size": true, "client_body_buffer_size": true, "proxy_buffer_size": true,
	// auth-response-headers names become $upstream_http_<name>.
	"auth_request_set": true,
	// Allow-listed snippet directives take user header names by design.
	"proxy_hide_header": true, "proxy_pass_header": true, "expires": true,
	// The access log format is text by definition: quoted, never a directive.
	"log_format": true,
	// proxy-redirect-from/-to and auth-tls-error-page are their arguments.
	"proxy_redirect": true, "error_page": true,
	// auth-cache-key and auth-cache-duration are theirs.
	"proxy_cache_key": true, "proxy_cache_valid": true,
	// proxy-ssl-ciphers is its argument.
	"proxy_ssl_ciphers": true,
}

// markers are strings that only a payload can bring into nginx.conf.
var markers = []string{"pwned", "/etc/passwd", "os.execute", "etc%2f", "lookahead"}

// vocabulary is the template's own directives: those of an empty
// configuration and of a benign value in every field. Anything else in a
// rendering is an injection.
func vocabulary(t testing.TB, set nginx.Settings, fs []field) map[string]bool {
	base, _ := nginx.Render(model.Build(fixture.Snapshot(), model.DefaultOptions()).Structure, set)
	baseTree, err := confparse.Parse(string(base.Conf))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	confparse.Walk(baseTree, func(d confparse.Directive) { known[d.Name] = true })
	for _, f := range fs {
		for _, benign := range []string{f.prefix, "a"} {
			r, err := nginx.Render(model.Build(fixture.Snapshot(f.build(benign)...), model.DefaultOptions()).Structure, set)
			if err != nil {
				continue
			}
			tree, _ := confparse.Parse(string(r.Conf))
			confparse.Walk(tree, func(d confparse.Directive) { known[d.Name] = true })
		}
	}
	for _, extra := range []string{"limit_req", "limit_req_zone", "limit_conn", "limit_conn_zone", "geo", "map", "grpc_pass", "grpc_set_header",
		"expires", "proxy_hide_header", "proxy_pass_header"} {
		known[extra] = true // emitted only for some valid values
	}
	return known
}

type outcome struct {
	name     string
	rejected bool
	failure  string
}

func TestHostileCorpus(t *testing.T) {
	payloads := loadPayloads(t)
	fs := fields()
	set := nginx.Settings{WorkDir: t.TempDir(), HTTPPort: 18080, HTTPSPort: 18443}
	proc, err := nginx.NewProcess(set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	known := vocabulary(t, set, fs)

	type job struct {
		name string
		objs []any
	}
	var jobs []job
	for _, f := range fs {
		for i, p := range payloads {
			jobs = append(jobs, job{fmt.Sprintf("%s/%d", f.name, i), f.build(p)})
			jobs = append(jobs, job{fmt.Sprintf("%s/%d+prefix", f.name, i), f.build(f.prefix + p)})
		}
	}
	results := make([]outcome, len(jobs))
	var mu sync.Mutex // nginx -t writes one candidate file at a time
	// Many cases render the same configuration (the value was rejected and
	// left out): nginx -t checks each distinct candidate once.
	checked := map[string]error{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, j job) {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = check(j.name, j.objs, set, known, func(conf []byte, files []model.AuthFile) error {
				mu.Lock()
				defer mu.Unlock()
				key := string(conf)
				if err, done := checked[key]; done {
					return err
				}
				// CA files are read by nginx -t (htpasswd files only per request).
				if err := proc.WriteAuthFiles(files); err != nil {
					return err
				}
				err := proc.Check(conf)
				checked[key] = err
				return err
			})
		}(i, j)
	}
	wg.Wait()

	var rejected, safe int
	var failures []string
	for _, r := range results {
		switch {
		case r.failure != "":
			failures = append(failures, r.name+": "+r.failure)
		case r.rejected:
			rejected++
		default:
			safe++
		}
	}
	sort.Strings(failures)
	for i, f := range failures {
		if i == 15 {
			t.Errorf("... and %d more", len(failures)-15)
			break
		}
		t.Error(f)
	}
	msg := fmt.Sprintf("hostile corpus: %d cases (%d payloads x %d fields x 2), %d rejected, %d rendered-safe (%d distinct configurations passed nginx -t), %d failures",
		len(results), len(payloads), len(fs), rejected, safe, len(checked), len(failures))
	t.Log(msg)
	fmt.Println(msg)
	if len(results) < 1000 {
		t.Errorf("the corpus must hold at least 1000 cases, has %d", len(results))
	}
}

// check runs one case through the model and the renderer.
func check(name string, objs []any, set nginx.Settings, known map[string]bool, nginxT func([]byte, []model.AuthFile) error) outcome {
	out := outcome{name: name}
	m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
	r, err := nginx.Render(m.Structure, set)
	if err != nil {
		out.rejected = true
		if !strings.Contains(err.Error(), "host") && !strings.Contains(err.Error(), "path") && !strings.Contains(err.Error(), "-") {
			out.failure = "render refused without naming what: " + err.Error()
		}
		return out
	}
	for _, p := range m.Problems {
		if p.Object == "" || p.Reason == "" {
			out.failure = "a problem without object or reason: " + p.String()
			return out
		}
		if p.Kind == "Ingress" || p.Kind == "ConfigMap" {
			out.rejected = true
		}
	}
	conf := string(r.Conf)
	if strings.ContainsAny(conf, "\x00\r") {
		out.failure = "nginx.conf contains NUL or CR"
		return out
	}
	tree, err := confparse.Parse(conf)
	if err != nil {
		out.failure = "nginx.conf does not parse: " + err.Error()
		return out
	}
	var bad []string
	confparse.Walk(tree, func(d confparse.Directive) {
		if !known[d.Name] {
			bad = append(bad, "unexpected directive "+strconv.Quote(d.Name))
		}
		for _, a := range d.Args {
			if strings.ContainsAny(a, "\n") && !strings.HasSuffix(d.Name, "_by_lua_block") {
				bad = append(bad, "a newline inside an argument of "+d.Name)
			}
			for _, mk := range markers {
				if strings.Contains(a, mk) && !allowedHome[d.Name] {
					bad = append(bad, fmt.Sprintf("payload text %q in directive %s", mk, d.Name))
				}
			}
		}
	})
	if strings.Contains(conf, "# ") {
		for _, line := range strings.Split(conf, "\n") {
			if i := strings.Index(line, "#"); i >= 0 {
				for _, mk := range markers {
					if strings.Contains(line[i:], mk) && !strings.Contains(line[:i], `"`) {
						bad = append(bad, "payload text inside a comment")
					}
				}
			}
		}
	}
	if len(bad) > 0 {
		out.failure = strings.Join(bad, "; ")
		return out
	}
	if err := nginxT(r.Conf, m.Structure.AuthFiles); err != nil {
		out.failure = "nginx -t: " + err.Error()
	}
	return out
}
