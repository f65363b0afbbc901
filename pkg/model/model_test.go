package model_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

// routes summarises a model's servers as "host match path -> backend" lines
// ("*" is the catch-all server, "404" a location with no backend).
func routes(m *model.Model) []string {
	var out []string
	for _, s := range m.Structure.Servers {
		host := s.Host
		if host == "" {
			host = "*"
		}
		if s.TLS {
			host += "(tls)"
		}
		for _, l := range s.Locations {
			be := l.Backend
			if be == "" {
				be = "404"
			}
			out = append(out, fmt.Sprintf("%s %s %s -> %s", host, l.Match, l.Path, be))
		}
	}
	return out
}

func problems(m *model.Model) []string {
	var out []string
	for _, p := range m.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestRoutes(t *testing.T) {
	svc := fixture.Service("default/web", "80", "http=8080")
	tests := map[string]struct {
		objs []any
		want []string
	}{
		"prefix path gets an element-wise location, catch-all 404": {
			objs: []any{svc, fixture.Ingress("a").Host("Foo.Example.com").Prefix("/app/", "web:80")},
			want: []string{
				"* prefix / -> 404",
				"foo.example.com prefix / -> 404",
				"foo.example.com prefix /app -> default/web:80",
			},
		},
		"exact and prefix on the same path both exist": {
			objs: []any{svc, fixture.Ingress("a").Host("h.io").Exact("/x", "web:80").Prefix("/x", "web:http")},
			want: []string{
				"* prefix / -> 404",
				"h.io prefix / -> 404",
				"h.io exact /x -> default/web:80",
				"h.io prefix /x -> default/web:http",
			},
		},
		"implementation specific is a string prefix": {
			objs: []any{svc, fixture.Ingress("a").Host("h.io").Specific("/api", "web:80")},
			want: []string{"* prefix / -> 404", "h.io prefix / -> 404", "h.io string /api -> default/web:80"},
		},
		"rules of one host merge across ingresses": {
			objs: []any{svc,
				fixture.Ingress("a").Host("h.io").Prefix("/a", "web:80"),
				fixture.Ingress("b").Host("h.io").Prefix("/b", "web:http")},
			want: []string{"* prefix / -> 404", "h.io prefix / -> 404", "h.io prefix /a -> default/web:80", "h.io prefix /b -> default/web:http"},
		},
		"ingress default backend serves its hosts and the catch-all": {
			objs: []any{svc, fixture.Ingress("a").Default("web:80").Host("h.io").Prefix("/a", "web:http")},
			want: []string{"* prefix / -> default/web:80", "h.io prefix / -> default/web:80", "h.io prefix /a -> default/web:http"},
		},
		"rule without host goes to the catch-all server": {
			objs: []any{svc, fixture.Ingress("a").Host("").Prefix("/", "web:80")},
			want: []string{"* prefix / -> default/web:80"},
		},
		"wildcard host is kept as a wildcard": {
			objs: []any{svc, fixture.Ingress("a").Host("*.foo.com").Prefix("/", "web:80")},
			want: []string{"* prefix / -> 404", "*.foo.com prefix / -> default/web:80"},
		},
		"other classes are ignored": {
			objs: []any{svc,
				fixture.Ingress("mine").Host("mine.io").Prefix("/", "web:80"),
				fixture.Ingress("theirs").Class("nginx").Host("theirs.io").Prefix("/", "web:80"),
				fixture.Ingress("legacy").Class("").Annotate(model.LegacyClassAnnotation, "tidegate").Host("legacy.io").Prefix("/", "web:80"),
				fixture.Ingress("noclass").Class("").Host("noclass.io").Prefix("/", "web:80")},
			want: []string{"* prefix / -> 404", "legacy.io prefix / -> default/web:80", "mine.io prefix / -> default/web:80"},
		},
		"an IngressClass naming our controller counts": {
			objs: []any{svc, fixture.IngressClass("edge", "tidegate.io/ingress-controller"),
				fixture.Ingress("a").Class("edge").Host("edge.io").Prefix("/", "web:80")},
			want: []string{"* prefix / -> 404", "edge.io prefix / -> default/web:80"},
		},
		"our class name owned by another controller is not ours": {
			objs: []any{svc, fixture.IngressClass("tidegate", "example.com/other"),
				fixture.Ingress("a").Host("x.io").Prefix("/", "web:80")},
			want: []string{"* prefix / -> 404"},
		},
		"default class serves ingresses without class": {
			objs: []any{svc, func() any {
				ic := fixture.IngressClass("edge", "tidegate.io/ingress-controller")
				ic.Annotations = map[string]string{model.DefaultClassAnnotation: "true"}
				return ic
			}(), fixture.Ingress("a").Class("").Host("x.io").Prefix("/", "web:80")},
			want: []string{"* prefix / -> 404", "x.io prefix / -> default/web:80"},
		},
		"tls host is marked": {
			objs: []any{svc, fixture.Ingress("a").TLS("", "h.io").Host("h.io").Prefix("/", "web:80")},
			want: []string{"* prefix / -> 404", "h.io(tls) prefix / -> default/web:80"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := model.Build(fixture.Snapshot(tc.objs...), model.DefaultOptions())
			if got := routes(m); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("routes:\n got  %q\n want %q\nproblems: %q", got, tc.want, problems(m))
			}
		})
	}
}

func TestConflictsAndRejections(t *testing.T) {
	svc := fixture.Service("default/web", "80")
	tests := map[string]struct {
		objs         []any
		wantRoutes   []string
		wantProblems []string // substrings, one per problem, in order
	}{
		"oldest ingress wins an exact conflict, the loser is reported": {
			objs: []any{svc,
				fixture.Ingress("young").Created(time.Hour).Host("h.io").Prefix("/a", "other:80"),
				fixture.Ingress("old").Host("h.io").Prefix("/a/", "web:80")},
			wantRoutes:   []string{"* prefix / -> 404", "h.io prefix / -> 404", "h.io prefix /a -> default/web:80"},
			wantProblems: []string{"Ingress default/young spec.rules[0].http.paths[0]: host \"h.io\" path \"/a\" (prefix) is already served by the older Ingress default/old"},
		},
		"bad host skips only that rule": {
			objs:         []any{svc, fixture.Ingress("a").Host("bad host;").Prefix("/", "web:80").Host("good.io").Prefix("/", "web:80")},
			wantRoutes:   []string{"* prefix / -> 404", "good.io prefix / -> default/web:80"},
			wantProblems: []string{"Ingress default/a spec.rules[0].host: host \"bad host;\": only a-z"},
		},
		"bad path skips only that path": {
			objs:         []any{svc, fixture.Ingress("a").Host("h.io").Prefix("/ok", "web:80").Prefix("/x;}\nroot /etc", "web:80")},
			wantRoutes:   []string{"* prefix / -> 404", "h.io prefix / -> 404", "h.io prefix /ok -> default/web:80"},
			wantProblems: []string{"spec.rules[0].http.paths[1].path: path \"/x;}\\nroot /etc\" contains '}'"},
		},
		"missing service is reported and answers 503": {
			objs:         []any{fixture.Ingress("a").Host("h.io").Prefix("/", "nope:80")},
			wantRoutes:   []string{"* prefix / -> 404", "h.io prefix / -> default/nope:80"},
			wantProblems: []string{"service default/nope not found; requests get 503"},
		},
		"a conflict among many paths of one host is found (looked up by index)": {
			objs: []any{svc,
				fixture.Ingress("old").Host("h.io").Prefix("/p1", "web:80").Prefix("/p2", "web:80").Prefix("/p3", "web:80").
					Prefix("/p4", "web:80").Prefix("/p5", "web:80").Prefix("/p6", "web:80").Prefix("/p7", "web:80").
					Prefix("/p8", "web:80").Prefix("/p9", "web:80").Exact("/p9", "web:80"),
				fixture.Ingress("young").Created(time.Hour).Host("h.io").Exact("/p9", "web:80").Prefix("/p1", "web:80").Prefix("/q", "web:80")},
			wantRoutes: []string{"* prefix / -> 404", "h.io prefix / -> 404", "h.io prefix /p1 -> default/web:80",
				"h.io prefix /p2 -> default/web:80", "h.io prefix /p3 -> default/web:80", "h.io prefix /p4 -> default/web:80",
				"h.io prefix /p5 -> default/web:80", "h.io prefix /p6 -> default/web:80", "h.io prefix /p7 -> default/web:80",
				"h.io prefix /p8 -> default/web:80", "h.io exact /p9 -> default/web:80", "h.io prefix /p9 -> default/web:80",
				"h.io prefix /q -> default/web:80"},
			wantProblems: []string{
				"Ingress default/young spec.rules[0].http.paths[0]: host \"h.io\" path \"/p9\" (exact) is already served by the older Ingress default/old",
				"Ingress default/young spec.rules[0].http.paths[1]: host \"h.io\" path \"/p1\" (prefix) is already served by the older Ingress default/old"},
		},
		"missing service port is reported": {
			objs:         []any{svc, fixture.Ingress("a").Host("h.io").Prefix("/", "web:81")},
			wantRoutes:   []string{"* prefix / -> 404", "h.io prefix / -> default/web:81"},
			wantProblems: []string{"service default/web has no port 81"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := model.Build(fixture.Snapshot(tc.objs...), model.DefaultOptions())
			if got := routes(m); !reflect.DeepEqual(got, tc.wantRoutes) {
				t.Errorf("routes:\n got  %q\n want %q", got, tc.wantRoutes)
			}
			got := problems(m)
			if len(got) != len(tc.wantProblems) {
				t.Fatalf("problems: got %q, want %d matching %q", got, len(tc.wantProblems), tc.wantProblems)
			}
			for i, w := range tc.wantProblems {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d: %q does not contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	ing := fixture.Ingress("a").Host("h.io").Prefix("/", "web:http")
	svc := fixture.Service("default/web", "http=80")
	tests := map[string]struct {
		slices []any
		want   []string // "addr:port" with "(draining)"
	}{
		"ready endpoints serve, sorted": {
			slices: []any{fixture.Slice("web-1", "web", "http=8080").Ready("10.0.0.2", "10.0.0.1")},
			want:   []string{"10.0.0.1:8080", "10.0.0.2:8080"},
		},
		"not-ready endpoints are dropped, terminating serving ones drain": {
			slices: []any{fixture.Slice("web-1", "web", "http=8080").Ready("10.0.0.1").NotReady("10.0.0.2").Draining("10.0.0.3")},
			want:   []string{"10.0.0.1:8080", "10.0.0.3:8080(draining)"},
		},
		"slices merge and duplicates collapse with ready winning": {
			slices: []any{
				fixture.Slice("web-1", "web", "http=8080").Draining("10.0.0.1"),
				fixture.Slice("web-2", "web", "http=8080").Ready("10.0.0.1", "10.0.0.4")},
			want: []string{"10.0.0.1:8080", "10.0.0.4:8080"},
		},
		"slice port is matched by service port name": {
			slices: []any{
				fixture.Slice("web-1", "web", "metrics=9090").Ready("10.0.0.9"),
				fixture.Slice("web-2", "web", "http=8080").Ready("10.0.0.1")},
			want: []string{"10.0.0.1:8080"},
		},
		"slices of another service are ignored": {
			slices: []any{fixture.Slice("db-1", "db", "http=5432").Ready("10.0.0.7")},
			want:   nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := model.Build(fixture.Snapshot(append([]any{ing, svc}, tc.slices...)...), model.DefaultOptions())
			if len(m.Dynamic.Backends) != 1 {
				t.Fatalf("want one backend, got %+v", m.Dynamic.Backends)
			}
			var got []string
			for _, e := range m.Dynamic.Backends[0].Endpoints {
				s := fmt.Sprintf("%s:%d", e.Address, e.Port)
				if e.Draining {
					s += "(draining)"
				}
				got = append(got, s)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("endpoints: got %q want %q", got, tc.want)
			}
		})
	}
}

func TestCertificates(t *testing.T) {
	crt, key, err := tlsutil.SelfSigned("h.io", "h.io")
	if err != nil {
		t.Fatal(err)
	}
	svc := fixture.Service("default/web", "80")
	ing := fixture.Ingress("a").TLS("h-tls", "h.io").TLS("gone", "g.io").Host("h.io").Prefix("/", "web:80").Host("g.io").Prefix("/", "web:80")
	m := model.Build(fixture.Snapshot(svc, ing,
		fixture.TLSSecret("default/h-tls", crt, key),
	), model.DefaultOptions())
	if len(m.Dynamic.Certificates) != 1 || m.Dynamic.Certificates[0].ID != "default/h-tls" ||
		!reflect.DeepEqual(m.Dynamic.Certificates[0].Hosts, []string{"h.io"}) {
		t.Errorf("certificates: %+v", m.Dynamic.Certificates)
	}
	for _, s := range m.Structure.Servers {
		if s.Host != "" && (!s.TLS || !s.Locations[0].SSLRedirect) {
			t.Errorf("server %s: TLS=%v redirect=%v, want both (a missing secret falls back to the default certificate)", s.Host, s.TLS, s.Locations[0].SSLRedirect)
		}
	}
	if p := problems(m); len(p) != 1 || !strings.Contains(p[0], "secret default/gone: not found; the default certificate is served") {
		t.Errorf("problems: %q", p)
	}

	bad := model.Build(fixture.Snapshot(svc, ing, fixture.TLSSecret("default/h-tls", crt, []byte("junk"))), model.DefaultOptions())
	if len(bad.Dynamic.Certificates) != 0 {
		t.Errorf("a malformed key pair must not be pushed: %+v", bad.Dynamic.Certificates)
	}
	off := model.Build(fixture.Snapshot(svc, ing, fixture.ConfigMap("tidegate/tidegate", "ssl-redirect=false")), model.DefaultOptions())
	if off.Structure.Servers[1].Locations[0].SSLRedirect {
		t.Errorf("ssl-redirect=false in the ConfigMap must turn the redirect off")
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	objs := []any{fixture.Service("default/web", "80"),
		fixture.Slice("web-1", "web", "8080").Ready("10.0.0.3", "10.0.0.1"),
		fixture.Ingress("b").Host("b.io").Prefix("/", "web:80"),
		fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").Prefix("/z", "web:80")}
	first := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
	for i := 0; i < 20; i++ {
		rev := make([]any, len(objs))
		for j := range objs {
			rev[j] = objs[(j+i)%len(objs)]
		}
		if got := model.Build(fixture.Snapshot(rev...), model.DefaultOptions()); !reflect.DeepEqual(got, first) {
			t.Fatalf("order %d gave a different model", i)
		}
	}
}
