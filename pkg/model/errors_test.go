package model_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

// errorRoutes summarises each location with custom errors as
// "host path -> backend, codes => error backend".
func errorRoutes(m *model.Model) []string {
	var out []string
	for _, s := range m.Structure.Servers {
		for _, l := range s.Locations {
			if len(l.CustomErrors.Codes) == 0 {
				continue
			}
			out = append(out, fmt.Sprintf("%s %s -> %s, %v => %s", s.Host, l.Path, l.Backend, l.CustomErrors.Codes, l.CustomErrors.Backend))
		}
	}
	return out
}

func endpointsOf(m *model.Model, backend string) []string {
	for _, b := range m.Dynamic.Backends {
		if b.Name == backend {
			var out []string
			for _, e := range b.Endpoints {
				out = append(out, e.Address)
			}
			return out
		}
	}
	return []string{"(no backend " + backend + ")"}
}

func TestCustomErrors(t *testing.T) {
	web := fixture.Service("default/web", "80", "http=8080")
	webEPs := fixture.Slice("default/web-1", "web", "8080").Ready("10.0.0.1")
	errs := fixture.Service("default/errors", "8080")
	errEPs := fixture.Slice("default/errors-1", "errors", "8080").Ready("10.0.9.9")
	const fallback = "default/web:[default-backend default/errors:8080]:80"
	tests := map[string]struct {
		objs     []any
		want     []string
		backends map[string][]string // endpoints per backend
		problem  string
	}{
		"annotation codes go to the Ingress's default-backend": {
			objs: []any{web, webEPs, errs, errEPs, fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/custom-http-errors", "503,404").
				Annotate("nginx.ingress.kubernetes.io/default-backend", "errors")},
			want:     []string{"a.io / -> " + fallback + ", [404 503] => default/errors:8080"},
			backends: map[string][]string{fallback: {"10.0.0.1"}, "default/errors:8080": {"10.0.9.9"}},
		},
		"a Service without endpoints is served by the default-backend's": {
			objs: []any{web, errs, errEPs, fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/default-backend", "errors")},
			backends: map[string][]string{fallback: {"10.0.9.9"}, "default/web:80": nil},
		},
		"the ConfigMap's codes go to the global default backend": {
			objs: []any{web, webEPs, errs, fixture.ConfigMap("tidegate/tidegate", "custom-http-errors=502,504"),
				fixture.Ingress("catch").Default("errors:8080"),
				fixture.Ingress("a").Host("a.io").Prefix("/", "web:80")},
			want: []string{"a.io / -> default/web:80, [502 504] => default/errors:8080"},
		},
		"the annotation's codes replace the ConfigMap's": {
			objs: []any{web, webEPs, errs, fixture.ConfigMap("tidegate/tidegate", "custom-http-errors=502"),
				fixture.Ingress("catch").Default("errors:8080"),
				fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").Annotate("nginx.ingress.kubernetes.io/custom-http-errors", "404")},
			want: []string{"a.io / -> default/web:80, [404] => default/errors:8080"},
		},
		"without any default backend there is nowhere to send errors": {
			objs: []any{web, webEPs, fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").Annotate("nginx.ingress.kubernetes.io/custom-http-errors", "404")},
		},
		"a missing default-backend Service is reported": {
			objs: []any{web, webEPs, fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").
				Annotate("nginx.ingress.kubernetes.io/custom-http-errors", "404").
				Annotate("nginx.ingress.kubernetes.io/default-backend", "nope")},
			backends: map[string][]string{"default/web:80": {"10.0.0.1"}},
			problem:  "service default/nope not found",
		},
		"bad ConfigMap codes are reported": {
			objs:    []any{web, fixture.ConfigMap("tidegate/tidegate", "custom-http-errors=200")},
			problem: "data.custom-http-errors",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := model.Build(fixture.Snapshot(tc.objs...), model.DefaultOptions())
			if got := errorRoutes(m); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("custom errors:\n got %q\nwant %q", got, tc.want)
			}
			for be, want := range tc.backends {
				if got := endpointsOf(m, be); !reflect.DeepEqual(got, want) {
					t.Errorf("endpoints of %s = %v, want %v", be, got, want)
				}
			}
			all := strings.Join(problems(m), "\n")
			if tc.problem == "" && all != "" {
				t.Errorf("unexpected problems:\n%s", all)
			}
			if !strings.Contains(all, tc.problem) {
				t.Errorf("problems %q do not mention %q", all, tc.problem)
			}
		})
	}
}
