package dynamic

import (
	"slices"
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

const (
	canary1 = "default/kibana-v2:5601"
	canary2 = "default/kibana-v3:5601"
)

func withCanaries(b model.Backend, cs ...model.Canary) model.Backend {
	b.Canaries = cs
	return b
}

func TestCanaryRulesInOrder(t *testing.T) {
	ng, c := start(t)
	main, v2 := dynamictest.StartBackend(t, "main"), dynamictest.StartBackend(t, "v2")
	pushCanary := func(cn model.Canary) {
		t.Helper()
		cn.Backend = canary1
		push(t, c, withCanaries(backend(kibana, ep{b: main}), cn), backend(canary1, ep{b: v2}))
	}
	type req struct {
		headers []string
		want    string
	}
	check := func(name string, reqs ...req) {
		t.Helper()
		for _, r := range reqs {
			for range 5 {
				if got := body(t, ng, "/kibana", r.headers...); got != r.want {
					t.Errorf("%s: %v went to %s, want %s", name, r.headers, got, r.want)
					break
				}
			}
		}
	}

	pushCanary(model.Canary{Header: "X-Canary", Cookie: "canary"})
	check("header always/never, then cookie",
		req{nil, "main"},
		req{[]string{"X-Canary: always"}, "v2"},
		req{[]string{"X-Canary: never", "Cookie: canary=always"}, "main"},
		req{[]string{"X-Canary: other", "Cookie: canary=always"}, "v2"},
		req{[]string{"Cookie: canary=always"}, "v2"},
		req{[]string{"Cookie: canary=never"}, "main"},
		req{[]string{"Cookie: canary=other"}, "main"},
	)

	pushCanary(model.Canary{Header: "X-Canary", HeaderValue: "v2", Weight: 100})
	check("header value overrides always/never; the weight comes last",
		req{[]string{"X-Canary: v2"}, "v2"},
		req{[]string{"X-Canary: never"}, "v2"}, // not special with a value: the weight (100 %) decides
	)
	pushCanary(model.Canary{Header: "X-Canary", HeaderValue: "v2"})
	check("header value",
		req{[]string{"X-Canary: v2"}, "v2"},
		req{[]string{"X-Canary: always"}, "main"},
		req{[]string{"X-Canary: v3"}, "main"},
	)

	pushCanary(model.Canary{Header: "X-Canary", HeaderPattern: "^v[23]$"})
	check("header pattern",
		req{[]string{"X-Canary: v3"}, "v2"},
		req{[]string{"X-Canary: v4"}, "main"},
		req{[]string{"X-Canary: always"}, "main"},
	)

	pushCanary(model.Canary{Weight: 100})
	check("weight 100", req{nil, "v2"})
	pushCanary(model.Canary{Header: "X-Canary", Weight: 100})
	check("never beats the weight", req{[]string{"X-Canary: never"}, "main"})

	// a canary with no endpoint leaves the traffic on the main backend
	push(t, c, withCanaries(backend(kibana, ep{b: main}), model.Canary{Backend: canary1, Weight: 100}), backend(canary1))
	check("empty canary", req{nil, "main"})
}

// TestCanaryBadPatternNeverMatches: a header pattern PCRE cannot compile
// (here one RE2 accepts, so the model let it through) never matches, as in
// ingress-nginx, and is logged; the rest of the push is applied.
func TestCanaryBadPatternNeverMatches(t *testing.T) {
	ng, c := start(t)
	main, v2, other := dynamictest.StartBackend(t, "main"), dynamictest.StartBackend(t, "v2"), dynamictest.StartBackend(t, "other")
	for _, pattern := range []string{`\x{100}`, "(unclosed"} {
		push(t, c, withCanaries(backend(kibana, ep{b: main}), model.Canary{Backend: canary1, Header: "X-Canary", HeaderPattern: pattern}),
			backend(canary1, ep{b: v2}), backend("default/other:80", ep{b: other}))
		for _, h := range []string{"X-Canary: \u0100", "X-Canary: always", "X-Canary: (unclosed"} {
			if got := body(t, ng, "/kibana", h); got != "main" {
				t.Errorf("pattern %q, %s: went to %s, want main", pattern, h, got)
			}
		}
		if got := body(t, ng, "/other"); got != "other" {
			t.Errorf("pattern %q: /other went to %s: the rest of the push is not applied", pattern, got)
		}
		if log := ng.ErrorLog(); !strings.Contains(log, "does not compile") || !strings.Contains(log, "fix the canary-by-header-pattern annotation") {
			t.Errorf("pattern %q: error.log does not say the pattern does not compile", pattern)
		}
	}
}

// within reports whether got of n is within 10 percentage points of share.
func within(got, n int, share float64) bool {
	f := float64(got) / float64(n)
	return f >= share-0.10 && f <= share+0.10
}

func TestCanaryWeightsSplitWithoutReload(t *testing.T) {
	ng, c := start(t)
	main, v2, v3 := dynamictest.StartBackend(t, "main"), dynamictest.StartBackend(t, "v2"), dynamictest.StartBackend(t, "v3")
	pids := ng.WorkerPIDs()
	const n = 500
	push(t, c, withCanaries(backend(kibana, ep{b: main}), model.Canary{Backend: canary1, Weight: 30}),
		backend(canary1, ep{b: v2}))
	got := count(t, ng, "/kibana", n)
	if !within(got["v2"], n, 0.30) || got["main"]+got["v2"] != n {
		t.Errorf("canary-weight 30: %v of %d, want v2 at 30 %% ± 10", got, n)
	}
	t.Logf("canary-weight 30: %v", got)

	// two canaries split the traffic, and canary-weight-total scales
	push(t, c, withCanaries(backend(kibana, ep{b: main}),
		model.Canary{Backend: canary1, Weight: 1, WeightTotal: 5},
		model.Canary{Backend: canary2, Weight: 300, WeightTotal: 1000}),
		backend(canary1, ep{b: v2}), backend(canary2, ep{b: v3}))
	got = count(t, ng, "/kibana", n)
	t.Logf("two canaries 20 %% and 30 %%: %v", got)
	if !within(got["v2"], n, 0.20) || !within(got["v3"], n, 0.30) || !within(got["main"], n, 0.50) {
		t.Errorf("two canaries at 1/5 and 300/1000: %v of %d, want 20/30/50 %% ± 10", got, n)
	}
	if now := ng.WorkerPIDs(); !slices.Equal(pids, now) {
		t.Errorf("worker pids changed from %v to %v: nginx reloaded", pids, now)
	}
}
