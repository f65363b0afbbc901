package model_test

import (
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/tlsutil"
)

// TestSSLRedirectSettings: which locations send plain HTTP to https, from
// the ConfigMap's ssl-redirect / force-ssl-redirect and the annotations
// that override them per Ingress.
func TestSSLRedirectSettings(t *testing.T) {
	svc := fixture.Service("default/web", "80")
	crt, key, err := tlsutil.SelfSigned("tls.io", "tls.io")
	if err != nil {
		t.Fatal(err)
	}
	secret := fixture.TLSSecret("default/tls", crt, key)
	tests := map[string]struct {
		cm   []string
		anns map[string]string
		tls  bool
		want bool
	}{
		"TLS host: redirect by default":                {tls: true, want: true},
		"plain host: no redirect by default":           {want: false},
		"ConfigMap ssl-redirect=false":                 {cm: []string{"ssl-redirect=false"}, tls: true, want: false},
		"ConfigMap force-ssl-redirect on a plain host": {cm: []string{"force-ssl-redirect=true"}, want: true},
		"annotation force-ssl-redirect":                {anns: map[string]string{"force-ssl-redirect": "true"}, want: true},
		"annotation turns the ConfigMap's force off":   {cm: []string{"force-ssl-redirect=true"}, anns: map[string]string{"force-ssl-redirect": "false"}, want: false},
		"annotation ssl-redirect=false on a TLS host":  {anns: map[string]string{"ssl-redirect": "false"}, tls: true, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			host := "plain.io"
			ing := fixture.Ingress("default/a").Host(host).Prefix("/app", "web:80")
			if tc.tls {
				host = "tls.io"
				ing = fixture.Ingress("default/a").Host(host).Prefix("/app", "web:80").TLS("tls", host)
			}
			for k, v := range tc.anns {
				ing.Annotate("nginx.ingress.kubernetes.io/"+k, v)
			}
			objs := []any{svc, secret, ing}
			if tc.cm != nil {
				objs = append(objs, fixture.ConfigMap("tidegate/tidegate", tc.cm...))
			}
			m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
			for _, s := range m.Structure.Servers {
				for _, l := range s.Locations {
					if s.Host == host && l.Path == "/app" {
						if l.SSLRedirect != tc.want {
							t.Errorf("SSLRedirect = %v, want %v (problems: %v)", l.SSLRedirect, tc.want, m.Problems)
						}
						return
					}
				}
			}
			t.Fatalf("no location %s/app in %+v", host, m.Structure.Servers)
		})
	}
}
