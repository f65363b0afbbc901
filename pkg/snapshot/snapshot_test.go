package snapshot

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func slice(ns, name, svc string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if svc != "" {
		es.Labels = map[string]string{ServiceNameLabel: svc}
	}
	return es
}

// TestReplaceEndpointSlices checks ReplaceEndpointSlices against indexing
// the changed list from scratch, over random replacements that keep or
// change the Service a slice is labelled for (or drop the label).
func TestReplaceEndpointSlices(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	svcs := []string{"", "a", "b", "c"}
	s := &Snapshot{}
	for _, ns := range []string{"x", "x-y", "y"} {
		for i := range 8 {
			s.EndpointSlices = append(s.EndpointSlices, slice(ns, fmt.Sprintf("s%d", i), svcs[rng.IntN(len(svcs))]))
		}
	}
	s.Index()
	for step := range 300 {
		var repl []*discoveryv1.EndpointSlice
		for _, i := range rng.Perm(len(s.EndpointSlices))[:1+rng.IntN(3)] {
			old := s.EndpointSlices[i]
			repl = append(repl, slice(old.Namespace, old.Name, svcs[rng.IntN(len(svcs))]))
		}
		before := slices.Clone(s.EndpointSlices)
		got, ok := s.ReplaceEndpointSlices(repl)
		if !ok {
			t.Fatalf("step %d: refused", step)
		}
		want := (&Snapshot{EndpointSlices: slices.Clone(s.EndpointSlices)})
		for _, es := range repl {
			for i, x := range want.EndpointSlices {
				if x.Namespace == es.Namespace && x.Name == es.Name {
					want.EndpointSlices[i] = es
				}
			}
		}
		want.Index()
		if !slices.Equal(got.EndpointSlices, want.EndpointSlices) {
			t.Fatalf("step %d: list differs", step)
		}
		for _, ns := range []string{"x", "x-y", "y"} {
			for _, svc := range svcs[1:] {
				if g, w := got.EndpointSlicesFor(ns, svc), want.EndpointSlicesFor(ns, svc); !slices.Equal(g, w) {
					t.Fatalf("step %d: slices of %s/%s: got %d, want %d", step, ns, svc, len(g), len(w))
				}
			}
		}
		if !slices.Equal(s.EndpointSlices, before) {
			t.Fatalf("step %d: the original snapshot changed", step)
		}
		s = got
	}
	if _, ok := s.ReplaceEndpointSlices([]*discoveryv1.EndpointSlice{slice("x", "missing", "a")}); ok {
		t.Errorf("replacing a slice that is not there must fail")
	}
}
