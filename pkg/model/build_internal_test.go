package model

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/tidegate/tidegate/pkg/fixture"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// TestKeyLess wants keyLess to order namespace/name pairs exactly as their
// "namespace/name" keys sort, including namespaces that prefix each other.
func TestKeyLess(t *testing.T) {
	names := []string{"", "a", "a-b", "a.b", "a0", "ab", "b", "a/b", "z"}
	for _, ans := range names {
		for _, an := range names {
			for _, bns := range names {
				for _, bn := range names {
					want := snapshot.Key(ans, an) < snapshot.Key(bns, bn)
					if got := keyLess(ans, an, bns, bn); got != want {
						t.Errorf("keyLess(%q, %q, %q, %q) = %v, want %v", ans, an, bns, bn, got, want)
					}
				}
			}
		}
	}
}

// TestEndpointsForCanonical wants addresses in canonical form (IPv4 as
// written, IPv6 re-formatted), duplicates collapsed with ready winning, and
// the same result whether the Service has few endpoints (scanned) or many
// (a map).
func TestEndpointsForCanonical(t *testing.T) {
	sp := corev1.ServicePort{Name: "http"}
	for _, extra := range []int{0, 40} {
		a := fixture.Slice("ns/a", "web", "http=8080").Ready("2001:DB8::1", "10.0.0.2").Draining("10.0.0.1").EndpointSlice
		b := fixture.Slice("ns/b", "web", "http=8080").Ready("10.0.0.1", "2001:db8:0::1").Draining("10.0.0.3")
		for i := 0; i < extra; i++ {
			b.Ready(fmt.Sprintf("10.1.0.%d", i+1))
		}
		got := endpointsFor([]*discoveryv1.EndpointSlice{a, b.EndpointSlice}, sp)
		want := map[string]bool{"10.0.0.1": false, "10.0.0.2": false, "10.0.0.3": true, "2001:db8::1": false}
		if len(got) != len(want)+extra {
			t.Fatalf("extra %d: got %d endpoints %+v, want %d", extra, len(got), got, len(want)+extra)
		}
		for i, e := range got {
			if i > 0 && got[i-1].Address >= e.Address {
				t.Errorf("extra %d: not sorted at %d: %+v", extra, i, got)
			}
			if d, ok := want[e.Address]; ok && d != e.Draining {
				t.Errorf("extra %d: %s draining %v, want %v", extra, e.Address, e.Draining, d)
			}
		}
		if _, ok := want[got[len(got)-1].Address]; !ok || got[len(got)-1].Address != "2001:db8::1" {
			t.Errorf("extra %d: last endpoint %q, want the canonical IPv6 address", extra, got[len(got)-1].Address)
		}
	}
}
