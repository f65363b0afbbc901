package controller

import (
	"reflect"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

func TestDecide(t *testing.T) {
	crt1, key1, _ := tlsutil.SelfSigned("a.io", "a.io")
	crt2, key2, _ := tlsutil.SelfSigned("a.io", "a.io")
	svc := fixture.Service("web", "80")
	ing := fixture.Ingress("a").Host("a.io").Prefix("/", "web:80")
	tlsIng := fixture.Ingress("a").TLS("a-tls", "a.io").Host("a.io").Prefix("/", "web:80")
	base := []any{svc, ing, fixture.Slice("web-1", "web", "8080").Ready("10.0.0.1")}

	type want struct {
		reload                    bool
		backends, removedBackends []string
		certs, removedCerts       []string
	}
	tests := map[string]struct {
		prev, next []any
		want       want
	}{
		"nothing changed": {prev: base, next: base, want: want{}},
		"endpoint added: push, no reload": {
			prev: base,
			next: []any{svc, ing, fixture.Slice("web-1", "web", "8080").Ready("10.0.0.1", "10.0.0.2")},
			want: want{backends: []string{"default/web:80"}},
		},
		"endpoint starts terminating: push, no reload": {
			prev: base,
			next: []any{svc, ing, fixture.Slice("web-1", "web", "8080").Draining("10.0.0.1")},
			want: want{backends: []string{"default/web:80"}},
		},
		"all endpoints gone: push, no reload": {
			prev: base,
			next: []any{svc, ing},
			want: want{backends: []string{"default/web:80"}},
		},
		"one of two backends changes: push it alone": {
			prev: append([]any{fixture.Service("api", "80"), fixture.Ingress("b").Host("b.io").Prefix("/", "api:80")}, base...),
			next: append([]any{fixture.Service("api", "80"), fixture.Ingress("b").Host("b.io").Prefix("/", "api:80"),
				fixture.Slice("api-1", "api", "8080").Ready("10.0.1.1")}, base...),
			want: want{backends: []string{"default/api:80"}},
		},
		"path moves to another service: reload, push the new backend, drop the old": {
			prev: append([]any{fixture.Service("api", "80")}, base...),
			next: []any{svc, fixture.Service("api", "80"), fixture.Ingress("a").Host("a.io").Prefix("/", "api:80")},
			want: want{reload: true, backends: []string{"default/api:80"}, removedBackends: []string{"default/web:80"}},
		},
		"new host: reload": {
			prev: base,
			next: append([]any{fixture.Ingress("b").Host("b.io").Prefix("/", "web:80")}, base...),
			want: want{reload: true},
		},
		"new path to a new service: reload and push the new backend": {
			prev: base,
			next: append([]any{fixture.Ingress("b").Host("a.io").Prefix("/api", "api:80")}, base...),
			want: want{reload: true, backends: []string{"default/api:80"}},
		},
		"ingress deleted: reload and drop its backend": {
			prev: base,
			next: []any{svc},
			want: want{reload: true, removedBackends: []string{"default/web:80"}},
		},
		"tls turned on: reload and push the certificate": {
			prev: base,
			next: []any{svc, tlsIng, fixture.Slice("web-1", "web", "8080").Ready("10.0.0.1"), fixture.TLSSecret("a-tls", crt1, key1)},
			want: want{reload: true, certs: []string{"default/a-tls"}},
		},
		"certificate renewed: push, no reload": {
			prev: []any{svc, tlsIng, fixture.TLSSecret("a-tls", crt1, key1)},
			next: []any{svc, tlsIng, fixture.TLSSecret("a-tls", crt2, key2)},
			want: want{certs: []string{"default/a-tls"}},
		},
		"secret deleted: push the removal, no reload (default certificate)": {
			prev: []any{svc, tlsIng, fixture.TLSSecret("a-tls", crt1, key1)},
			next: []any{svc, tlsIng},
			want: want{removedCerts: []string{"default/a-tls"}},
		},
		"first ewma backend: reload (the log phase comes in) and push": {
			prev: base,
			next: []any{svc, fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").Annotate("nginx.ingress.kubernetes.io/load-balance", "ewma"),
				fixture.Slice("web-1", "web", "8080").Ready("10.0.0.1")},
			want: want{reload: true, backends: []string{"default/web:80"}},
		},
		"ewma to round_robin on one of two ewma backends: push, no reload": {
			prev: []any{svc, fixture.Service("api", "80"),
				fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").Annotate("nginx.ingress.kubernetes.io/load-balance", "ewma"),
				fixture.Ingress("b").Host("b.io").Prefix("/", "api:80").Annotate("nginx.ingress.kubernetes.io/load-balance", "ewma")},
			next: []any{svc, fixture.Service("api", "80"),
				fixture.Ingress("a").Host("a.io").Prefix("/", "web:80").Annotate("nginx.ingress.kubernetes.io/load-balance", "round_robin"),
				fixture.Ingress("b").Host("b.io").Prefix("/", "api:80").Annotate("nginx.ingress.kubernetes.io/load-balance", "ewma")},
			want: want{backends: []string{"default/web:80"}},
		},
		"global setting changed: reload": {
			prev: base,
			next: append([]any{fixture.ConfigMap("tidegate/tidegate", "proxy-read-timeout=120")}, base...),
			want: want{reload: true},
		},
	}
	names := func(bs []model.Backend) []string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Name)
		}
		return out
	}
	ids := func(cs []model.Certificate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			prev := model.Build(fixture.Snapshot(tc.prev...), model.DefaultOptions())
			next := model.Build(fixture.Snapshot(tc.next...), model.DefaultOptions())
			p := Decide(prev, next)
			got := want{p.Reload, names(p.Backends), p.RemovedBackends, ids(p.Certificates), p.RemovedCertificates}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decide:\n got  %+v\n want %+v", got, tc.want)
			}
		})
	}
	if p := Decide(nil, model.Build(fixture.Snapshot(base...), model.DefaultOptions())); !p.Reload || len(p.Backends) != 1 {
		t.Errorf("first sync must reload and push everything: %+v", p)
	}
}

func TestIdentical(t *testing.T) {
	eps := []model.Endpoint{{Address: "10.0.0.1", Port: 80, Weight: 1}}
	a := model.Backend{Name: "b", Algorithm: model.AlgorithmRoundRobin, Endpoints: eps, Affinity: &model.Affinity{Name: "c"}}
	tests := map[string]struct {
		b    func(model.Backend) model.Backend
		want bool
	}{
		"a copy sharing everything":   {func(b model.Backend) model.Backend { return b }, true},
		"another name":                {func(b model.Backend) model.Backend { b.Name = "c"; return b }, false},
		"fewer endpoints, same array": {func(b model.Backend) model.Backend { b.Endpoints = b.Endpoints[:0]; return b }, false},
		"equal endpoints, new array": {func(b model.Backend) model.Backend {
			b.Endpoints = append([]model.Endpoint(nil), b.Endpoints...)
			return b
		}, false},
		"equal affinity, new pointer": {func(b model.Backend) model.Backend { c := *b.Affinity; b.Affinity = &c; return b }, false},
	}
	for name, tc := range tests {
		b := tc.b(a)
		if got := identical(reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem()); got != tc.want {
			t.Errorf("%s: identical = %v, want %v", name, got, tc.want)
		}
		if tc.want && !reflect.DeepEqual(a, b) {
			t.Errorf("%s: identical but not deeply equal", name)
		}
	}
	// nil and empty are not deeply equal either
	x, y := model.Backend{}, model.Backend{Endpoints: []model.Endpoint{}}
	if identical(reflect.ValueOf(&x).Elem(), reflect.ValueOf(&y).Elem()) {
		t.Errorf("nil and empty endpoints: identical")
	}
}
