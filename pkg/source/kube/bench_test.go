package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/tidegate/tidegate/pkg/snapshot"
)

// BenchmarkSnapshot1k compares what one EndpointSlice update costs the
// source with 1,000 Ingresses, Services and slices in the caches: a full
// snapshot (list and index every object) against patching the last one.
func BenchmarkSnapshot1k(b *testing.B) {
	port := int32(80)
	var objs []runtime.Object
	for i := range 1000 {
		name := fmt.Sprintf("app%04d", i)
		objs = append(objs, ingress("ns", name, "tidegate"),
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name + "-1", ResourceVersion: "1",
				Labels: map[string]string{snapshot.ServiceNameLabel: name}}, AddressType: discoveryv1.AddressTypeIPv4,
				Ports: []discoveryv1.EndpointPort{{Port: &port}}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}}})
	}
	_, rec, src := start(b, time.Millisecond, objs...)
	rec.next(b, "the fleet", func(s *snapshot.Snapshot) bool { return len(s.EndpointSlices) == 1000 })
	ctx := context.Background()
	last, _ := src.snapshot(ctx)
	moved := last.EndpointSlices[500].DeepCopy()
	moved.Endpoints[0].Addresses[0] = "10.0.0.2"
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			src.snapshot(ctx)
		}
	})
	b.Run("patch", func(b *testing.B) {
		for b.Loop() {
			if _, ok := last.ReplaceEndpointSlices([]*discoveryv1.EndpointSlice{moved}); !ok {
				b.Fatal("not patched")
			}
		}
	})
}
