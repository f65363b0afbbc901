package model_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/model"
)

func TestCanaryIsAttachedToTheMainBackend(t *testing.T) {
	objs := []any{
		fixture.Service("default/web", "80"), fixture.Service("default/web-v2", "80"), fixture.Service("default/web-v3", "80"),
		// the canaries are older than the main Ingress: order must not matter
		fixture.Ingress("v2").Host("a.example.com").Prefix("/", "web-v2:80").
			Annotate(ann+"canary", "true").Annotate(ann+"canary-by-header", "X-Canary").
			Annotate(ann+"canary-by-header-value", "v2").Annotate(ann+"canary-weight", "10"),
		fixture.Ingress("v3").Host("a.example.com").Prefix("/", "web-v3:80").
			Annotate(ann+"canary", "true").Annotate(ann+"canary-by-cookie", "beta").
			Annotate(ann+"canary-weight", "1").Annotate(ann+"canary-weight-total", "4"),
		fixture.Ingress("main").Created(time.Hour).Host("a.example.com").Prefix("/", "web:80"),
		fixture.Ingress("orphan").Host("a.example.com").Prefix("/nothing", "web-v2:80").Annotate(ann+"canary", "true"),
	}
	m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
	want := []string{"* prefix / -> 404", "a.example.com prefix / -> default/web:80"}
	if got := routes(m); !reflect.DeepEqual(got, want) {
		t.Errorf("routes %v, want %v (a canary adds no location)", got, want)
	}
	main := backendNamed(m, "default/web:80")
	wantC := []model.Canary{
		{Backend: "default/web-v2:80", Header: "X-Canary", HeaderValue: "v2", Weight: 10, WeightTotal: 100},
		{Backend: "default/web-v3:80", Cookie: "beta", Weight: 1, WeightTotal: 4},
	}
	if main == nil || !reflect.DeepEqual(main.Canaries, wantC) {
		t.Fatalf("main backend %+v, want canaries %+v", main, wantC)
	}
	if backendNamed(m, "default/web-v2:80") == nil || backendNamed(m, "default/web-v3:80") == nil {
		t.Error("canary backends are not pushed")
	}
	if !strings.Contains(strings.Join(problems(m), "\n"), `Ingress default/orphan spec.rules[0].http.paths[0]: canary for host "a.example.com" path "/nothing"`) {
		t.Errorf("a canary without a main Ingress is not reported: %v", problems(m))
	}
}

func TestParseCanary(t *testing.T) {
	tests := map[string]struct {
		ann      map[string]string
		want     model.Canary
		problems int
	}{
		"weight only":              {map[string]string{ann + "canary-weight": "30"}, model.Canary{Weight: 30, WeightTotal: 100}, 0},
		"value beats pattern":      {map[string]string{ann + "canary-by-header": "X", ann + "canary-by-header-value": "a", ann + "canary-by-header-pattern": "^b"}, model.Canary{Header: "X", HeaderValue: "a", WeightTotal: 100}, 0},
		"pattern":                  {map[string]string{ann + "canary-by-header": "X", ann + "canary-by-header-pattern": "^b"}, model.Canary{Header: "X", HeaderPattern: "^b", WeightTotal: 100}, 0},
		"value without header":     {map[string]string{ann + "canary-by-header-value": "a"}, model.Canary{WeightTotal: 100}, 0},
		"weight above the total":   {map[string]string{ann + "canary-weight": "30", ann + "canary-weight-total": "20"}, model.Canary{WeightTotal: 20}, 1},
		"bad header name":          {map[string]string{ann + "canary-by-header": "X Y"}, model.Canary{WeightTotal: 100}, 1},
		"control char in value":    {map[string]string{ann + "canary-by-header": "X", ann + "canary-by-header-value": "a\nb"}, model.Canary{Header: "X", WeightTotal: 100}, 1},
		"negative weight reported": {map[string]string{ann + "canary-weight": "-1"}, model.Canary{WeightTotal: 100}, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, probs := model.ParseCanary(tc.ann)
			if !reflect.DeepEqual(got, tc.want) || len(probs) != tc.problems {
				t.Errorf("got %+v %v, want %+v with %d problems", got, probs, tc.want, tc.problems)
			}
		})
	}
}

// TestCanaryStaysInItsNamespace: a canary Ingress in another namespace than
// the one serving the host and path would let any tenant shift another
// tenant's traffic to its own Service (canary-weight: "100"). It is refused
// and reported; a canary in the same namespace still attaches.
func TestCanaryStaysInItsNamespace(t *testing.T) {
	objs := []any{
		fixture.Service("shop/web", "80"), fixture.Service("shop/web-v2", "80"), fixture.Service("evil/trap", "80"),
		fixture.Ingress("shop/main").Created(time.Hour).Host("shop.example.com").Prefix("/", "web:80"),
		fixture.Ingress("shop/v2").Host("shop.example.com").Prefix("/", "web-v2:80").
			Annotate(ann+"canary", "true").Annotate(ann+"canary-weight", "10"),
		fixture.Ingress("evil/takeover").Host("shop.example.com").Prefix("/", "trap:80").
			Annotate(ann+"canary", "true").Annotate(ann+"canary-weight", "100"),
	}
	m := model.Build(fixture.Snapshot(objs...), model.DefaultOptions())
	main := backendNamed(m, "shop/web:80")
	want := []model.Canary{{Backend: "shop/web-v2:80", Weight: 10, WeightTotal: 100}}
	if main == nil || !reflect.DeepEqual(main.Canaries, want) {
		t.Fatalf("main backend canaries %+v, want only the same-namespace one %+v", main, want)
	}
	if p := strings.Join(problems(m), "\n"); !strings.Contains(p, "evil/takeover") || !strings.Contains(p, "namespace") {
		t.Errorf("the cross-namespace canary must be reported: %s", p)
	}
}

// TestCanaryHeaderPatternWithoutBacktracking: Lua matches the pattern
// against a header the client picks; nested repetition is refused.
func TestCanaryHeaderPatternWithoutBacktracking(t *testing.T) {
	for pattern, ok := range map[string]bool{"^v[0-9]+$": true, "^(?=beta).*": true, "^(a+)+$": false, "(x|xy)*z": false} {
		c, probs := model.ParseCanary(map[string]string{ann + "canary-by-header": "X-Canary", ann + "canary-by-header-pattern": pattern})
		if got := c.HeaderPattern != ""; got != ok {
			t.Errorf("%q: kept = %v, want %v (problems %v)", pattern, got, ok, probs)
		}
		if !ok && (len(probs) != 1 || !strings.Contains(probs[0].Reason, "repeats a group")) {
			t.Errorf("%q: the refusal must say why: %v", pattern, probs)
		}
	}
}
