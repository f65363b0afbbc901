package model_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

// TestTargetPolicy: where auth-url and mirror-target may point nginx
// depends on where tidegate runs. In a cluster nothing on the node's
// loopback; with tidegate local, loopback services but never tidegate's own
// ports, on loopback or on this machine's addresses.
func TestTargetPolicy(t *testing.T) {
	cluster := model.TargetPolicy{OwnPorts: []int{80, 443, 10254, 8443}, OwnAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}
	local := model.TargetPolicy{AllowLoopback: true, OwnPorts: []int{8080, 8443, 10254}, OwnAddrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}
	tests := map[string]struct {
		policy  model.TargetPolicy
		url     string
		refused string // a part of the reason; "" when served
	}{
		"cluster: a Service name":                  {policy: cluster, url: "http://auth.sso.svc.cluster.local/check"},
		"cluster: a pod or Service address":        {policy: cluster, url: "http://10.96.0.20:4180/oauth2/auth"},
		"cluster: the request's host":              {policy: cluster, url: "https://$host/oauth2/auth"},
		"cluster: loopback":                        {policy: cluster, url: "http://127.0.0.1:4180/", refused: "loopback"},
		"cluster: localhost":                       {policy: cluster, url: "http://localhost:10248/healthz", refused: "loopback"},
		"cluster: IPv6 loopback":                   {policy: cluster, url: "http://[::1]:2379/", refused: "loopback"},
		"cluster: IPv4-mapped loopback":            {policy: cluster, url: "http://[::ffff:127.0.0.1]:2379/", refused: "loopback"},
		"cluster: the node's address, status port": {policy: cluster, url: "http://192.0.2.2:10254/metrics", refused: "port 10254"},
		"cluster: the node's address, other port":  {policy: cluster, url: "http://192.0.2.2:4180/"},
		"cluster: the control socket":              {policy: cluster, url: "http://unix:/var/lib/tidegate/run/tidegate.sock:/configuration/backends", refused: "unix socket"},
		"local: a loopback service":                {policy: local, url: "http://127.0.0.1:4180/"},
		"local: localhost":                         {policy: local, url: "http://localhost:4180/"},
		"local: tidegate's status port":            {policy: local, url: "http://127.0.0.1:10254/", refused: "port 10254"},
		"local: tidegate's HTTP port by name":      {policy: local, url: "http://LocalHost:8080/", refused: "port 8080"},
		"local: tidegate's HTTPS port over IPv6":   {policy: local, url: "https://[::1]:8443/", refused: "port 8443"},
		"local: this machine's address":            {policy: local, url: "http://192.0.2.2:8080/", refused: "port 8080"},
		"local: the control socket":                {policy: local, url: "http://unix:/tmp/tidegate-1/run/tidegate.sock:/configuration/certificates", refused: "unix socket"},
		"local: the metadata service":              {policy: local, url: "http://169.254.169.254/latest/meta-data/", refused: "link-local"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			opts := model.DefaultOptions()
			opts.Targets = tc.policy
			web := fixture.Service("shop/web", "80")
			auth := fixture.Ingress("shop/auth").Host("auth.io").Prefix("/", "web:80").Annotate("nginx.ingress.kubernetes.io/auth-url", tc.url)
			mirror := fixture.Ingress("shop/mirror").Host("mirror.io").Prefix("/", "web:80").Annotate("nginx.ingress.kubernetes.io/mirror-target", tc.url)
			m := model.Build(fixture.Snapshot(web, auth, mirror), opts)
			all := strings.Join(problems(m), "\n")
			for _, s := range m.Structure.Servers {
				l := s.Locations[0]
				switch s.Host {
				case "auth.io":
					if denied := l.AuthDenied; denied != (tc.refused != "") {
						t.Errorf("auth-url: requests refused = %v, want %v; problems: %s", denied, tc.refused != "", all)
					}
					if tc.refused != "" && l.Config.ExtAuth.URL != "" {
						t.Errorf("auth-url: a refused URL reached the location: %q", l.Config.ExtAuth.URL)
					}
				case "mirror.io":
					if got := l.Config.Mirror.Target; (got == "") != (tc.refused != "") {
						t.Errorf("mirror-target: location mirrors to %q; refused: %q", got, tc.refused)
					}
				}
			}
			if tc.refused == "" {
				if all != "" {
					t.Errorf("unexpected problems: %s", all)
				}
				return
			}
			for _, ing := range []string{"shop/auth", "shop/mirror"} {
				if !strings.Contains(all, ing) || !strings.Contains(all, tc.refused) {
					t.Errorf("%s: the refusal must name the Ingress and say %q: %s", ing, tc.refused, all)
				}
			}
		})
	}
}
