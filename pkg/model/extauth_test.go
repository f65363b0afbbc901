package model_test

import (
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

func TestExtAuthFailsClosed(t *testing.T) {
	web := fixture.Service("default/web", "80")
	tests := map[string]struct {
		anns   []string
		denied bool
	}{
		"a valid auth-url guards the path":          {anns: []string{"auth-url", "http://auth.io/check"}},
		"a refused auth-url refuses requests":       {anns: []string{"auth-url", "http://auth.io/$remote_addr"}, denied: true},
		"a refused response header list does too":   {anns: []string{"auth-url", "http://auth.io/", "auth-response-headers", "X_User"}, denied: true},
		"a refused signin refuses rather than 401s": {anns: []string{"auth-url", "http://auth.io/", "auth-signin", "javascript:x"}, denied: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ing := fixture.Ingress("a").Host("a.io").Prefix("/", "web:80")
			for i := 0; i < len(tc.anns); i += 2 {
				ing = ing.Annotate("nginx.ingress.kubernetes.io/"+tc.anns[i], tc.anns[i+1])
			}
			m := model.Build(fixture.Snapshot(web, ing), model.DefaultOptions())
			for _, s := range m.Structure.Servers {
				if s.Host != "a.io" {
					continue
				}
				l := s.Locations[0]
				if l.AuthDenied != tc.denied {
					t.Errorf("AuthDenied = %v, want %v; problems: %v", l.AuthDenied, tc.denied, problems(m))
				}
				if !tc.denied && l.Config.ExtAuth.URL == "" {
					t.Errorf("the auth-url did not reach the location")
				}
			}
			if tc.denied && !strings.Contains(strings.Join(problems(m), "\n"), "are refused (403)") {
				t.Errorf("the refusal must be reported: %v", problems(m))
			}
		})
	}
}
