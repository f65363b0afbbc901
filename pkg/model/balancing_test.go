package model_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

const ann = "nginx.ingress.kubernetes.io/"

func TestParseBalancing(t *testing.T) {
	tests := map[string]struct {
		ann      map[string]string
		cmAlgo   string
		want     model.Balancing
		problems []string
	}{
		"nothing":           {want: model.Balancing{Algorithm: "round_robin"}},
		"ConfigMap default": {cmAlgo: "ewma", want: model.Balancing{Algorithm: "ewma"}},
		"annotation beats the ConfigMap": {
			ann: map[string]string{ann + "load-balance": "round_robin"}, cmAlgo: "ewma",
			want: model.Balancing{Algorithm: "round_robin"},
		},
		"bad algorithm": {
			ann:      map[string]string{ann + "load-balance": "least_conn"},
			want:     model.Balancing{Algorithm: "round_robin"},
			problems: []string{"load-balance]: value \"least_conn\" is not round_robin or ewma"},
		},
		"hash beats load-balance": {
			ann:  map[string]string{ann + "load-balance": "ewma", ann + "upstream-hash-by": "$http_x_user$arg_id"},
			want: model.Balancing{Algorithm: "chash", HashBy: "$http_x_user$arg_id"},
		},
		"hash expression that could break out": {
			ann:      map[string]string{ann + "upstream-hash-by": "$uri; return 200"},
			want:     model.Balancing{Algorithm: "round_robin"},
			problems: []string{"upstream-hash-by"},
		},
		"affinity defaults": {
			ann:  map[string]string{ann + "affinity": "cookie"},
			want: model.Balancing{Algorithm: "round_robin", Affinity: &model.Affinity{Mode: "balanced", Name: "INGRESSCOOKIE"}},
		},
		"affinity everything": {
			ann: map[string]string{ann + "affinity": "cookie", ann + "affinity-mode": "persistent",
				ann + "session-cookie-name": "route", ann + "session-cookie-path": "/app",
				ann + "session-cookie-domain": "example.com", ann + "session-cookie-samesite": "lax",
				ann + "session-cookie-secure": "true", ann + "session-cookie-max-age": "3600",
				ann + "session-cookie-expires": "172800", ann + "session-cookie-change-on-failure": "true"},
			want: model.Balancing{Algorithm: "round_robin", Affinity: &model.Affinity{Mode: "persistent", Name: "route",
				Path: "/app", Domain: "example.com", SameSite: "Lax", Secure: true, MaxAge: 3600, Expires: 172800,
				ChangeOnFailure: true}},
		},
		"bad cookie values are dropped one by one": {
			ann: map[string]string{ann + "affinity": "cookie", ann + "affinity-mode": "sticky",
				ann + "session-cookie-name": "a b", ann + "session-cookie-path": "/x;y",
				ann + "session-cookie-max-age": "-1"},
			want:     model.Balancing{Algorithm: "round_robin", Affinity: &model.Affinity{Mode: "balanced", Name: "INGRESSCOOKIE"}},
			problems: []string{"affinity-mode", "session-cookie-name", "session-cookie-path", "session-cookie-max-age"},
		},
		"affinity other than cookie": {
			ann:      map[string]string{ann + "affinity": "ip"},
			want:     model.Balancing{Algorithm: "round_robin"},
			problems: []string{"affinity"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, probs := model.ParseBalancing(tc.ann, tc.cmAlgo)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v (affinity %+v), want %+v (affinity %+v)", got, got.Affinity, tc.want, tc.want.Affinity)
			}
			if len(probs) != len(tc.problems) {
				t.Fatalf("problems %v, want %d naming %v", probs, len(tc.problems), tc.problems)
			}
			all := ""
			for _, p := range probs {
				all += p.Field + ": " + p.Reason + "\n"
			}
			for _, w := range tc.problems {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q do not name %q", all, w)
				}
			}
		})
	}
}

func backendNamed(m *model.Model, name string) *model.Backend {
	for i := range m.Dynamic.Backends {
		if m.Dynamic.Backends[i].Name == name {
			return &m.Dynamic.Backends[i]
		}
	}
	return nil
}

func TestBalancingReachesTheBackend(t *testing.T) {
	svc := fixture.Service("default/web", "80")
	m := model.Build(fixture.Snapshot(svc,
		fixture.ConfigMap("tidegate/tidegate", "load-balance=ewma"),
		fixture.Ingress("a").Host("a.example.com").Prefix("/", "web:80").
			Annotate(ann+"affinity", "cookie").Annotate(ann+"affinity-mode", "persistent"),
		fixture.Ingress("b").Created(time.Hour).Host("b.example.com").Prefix("/", "web:80").
			Annotate(ann+"load-balance", "round_robin"),
	), model.DefaultOptions())
	be := backendNamed(m, "default/web:80")
	if be == nil || be.Algorithm != "ewma" || be.Affinity == nil || be.Affinity.Mode != "persistent" {
		t.Fatalf("backend %+v: want ewma (ConfigMap) with persistent affinity (older Ingress a)", be)
	}
	if !strings.Contains(strings.Join(problems(m), "\n"), "Ingress default/b metadata.annotations: backend default/web:80 is shared") {
		t.Errorf("the conflicting younger Ingress is not reported: %v", problems(m))
	}
}
