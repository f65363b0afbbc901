package dynamic

import (
	"testing"

	"github.com/tidegate/tidegate/pkg/dynamic/dynamictest"
	"github.com/tidegate/tidegate/pkg/model"
)

// TestDeltaPushesReachEveryWorker pushes endpoint moves, additions and
// removals one partial push at a time. A worker that applied the push
// before looks only at what the push changed (its delta); one that missed
// a push looks at every name. Either way every request after a push sees
// it.
func TestDeltaPushesReachEveryWorker(t *testing.T) {
	const other, third = "default/other:80", "default/third:80"
	ng, c := start(t)
	a, b := dynamictest.StartBackend(t, "a"), dynamictest.StartBackend(t, "b")
	push(t, c, backend(kibana, ep{b: a}), backend(other, ep{b: a}))

	type change struct {
		backends []model.Backend
		removed  []string
	}
	steps := map[string]struct {
		settle  bool
		changes []change
		// want is the answer of /kibana and /other; "" means 503.
		kibana, other string
	}{
		"1 an endpoint moves": {settle: true, changes: []change{{backends: []model.Backend{backend(kibana, ep{b: b})}}},
			kibana: "b", other: "a"},
		"2 a backend is removed": {settle: true, changes: []change{{removed: []string{other}}},
			kibana: "b", other: ""},
		"3 two pushes in a row: one comes back, one moves": {changes: []change{
			{backends: []model.Backend{backend(other, ep{b: b})}},
			{backends: []model.Backend{backend(kibana, ep{b: a})}}},
			kibana: "a", other: "b"},
		"4 one added, one removed": {settle: true, changes: []change{{backends: []model.Backend{backend(third, ep{b: b})}, removed: []string{other}}},
			kibana: "a", other: ""},
		"5 nothing changes": {settle: true, changes: []change{{}},
			kibana: "a", other: ""},
		"6 removed again, then back on another endpoint": {changes: []change{
			{removed: []string{kibana}},
			{backends: []model.Backend{backend(kibana, ep{b: b})}}},
			kibana: "b", other: ""},
	}
	for _, name := range []string{"1 an endpoint moves", "2 a backend is removed", "3 two pushes in a row: one comes back, one moves",
		"4 one added, one removed", "5 nothing changes", "6 removed again, then back on another endpoint"} {
		st := steps[name]
		if st.settle {
			caughtUp(t, ng) // the next push reaches every worker as a delta
		}
		for _, ch := range st.changes {
			if err := c.PushBackends(ctx(t), false, ch.backends, ch.removed); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for path, want := range map[string]string{"/kibana": st.kibana, "/other": st.other} {
			for range 10 {
				status, body := ng.Get(t, path)
				if (want == "" && status != 503) || (want != "" && (status != 200 || body != want)) {
					t.Fatalf("%s: GET %s: %d %q, want %q (\"\" is 503)", name, path, status, body, want)
				}
			}
		}
	}
}
