package model

import (
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/tidegate/tidegate/pkg/snapshot"
)

// endpointSource is where the endpoints of a backend come from: the
// EndpointSlices of a Service port, or, for a default-backend fallback
// (errors.go), the endpoints of two other backends.
type endpointSource struct {
	namespace, service string
	port               corev1.ServicePort
	// fallbackOf and fallbackTo are set for a fallback: the endpoints of
	// fallbackOf, or of fallbackTo while fallbackOf has none.
	fallbackOf, fallbackTo string
}

// Update returns what Build(next, opts) returns, given prev = Build(prevSnap,
// opts). When next differs from prevSnap in its EndpointSlices alone — Pods
// scaling or rolling, by far the most frequent change — only the endpoints
// of the backends whose Service's slices changed are computed again, and
// everything else is shared with prev (so comparing the two models is cheap
// too). Anything else, or a prev of other options, is a full Build. Like
// Build it is pure: prev and the snapshots are not modified.
//
// Endpoints are the only part of a model that EndpointSlices reach: they
// decide no name, no location and no problem (a Service without endpoints
// keeps its backend and answers 503), which is what makes this exact.
func Update(prev *Model, prevSnap, next *snapshot.Snapshot, opts Options) *Model {
	if prev == nil || prevSnap == nil || !reflect.DeepEqual(prev.opts, opts) || prev.sources == nil || !onlySlicesDiffer(prevSnap, next) {
		return build(next, opts, prev)
	}
	touched := slicesChanged(prevSnap.EndpointSlices, next.EndpointSlices)
	m := *prev
	if len(touched) == 0 {
		return &m
	}
	backends := slices.Clone(prev.Dynamic.Backends)
	index := func(name string) int {
		i, _ := slices.BinarySearchFunc(backends, name, func(b Backend, n string) int { return strings.Compare(b.Name, n) })
		return i
	}
	changed := map[string]bool{}
	for name, src := range prev.sources {
		if src.fallbackOf == "" && touched[serviceRef{src.namespace, src.service}] {
			backends[index(name)].Endpoints = endpointsFor(next.EndpointSlicesFor(src.namespace, src.service), src.port)
			changed[name] = true
		}
	}
	// Fallbacks copy the endpoints of plain backends, now final.
	for name, src := range prev.sources {
		if src.fallbackOf != "" && (changed[src.fallbackOf] || changed[src.fallbackTo]) {
			backends[index(name)].Endpoints = fallbackEndpoints(backends[index(src.fallbackOf)].Endpoints, backends[index(src.fallbackTo)].Endpoints)
		}
	}
	m.Dynamic.Backends = backends
	return &m
}

// serviceRef is a Service by namespace and name.
type serviceRef struct{ namespace, name string }

// slicesChanged returns the Services whose EndpointSlices differ between
// two snapshots' lists (both sorted by namespace/name, as Index leaves
// them): a slice added, removed or replaced counts for the Service it is
// labelled for before and after.
func slicesChanged(a, b []*discoveryv1.EndpointSlice) map[serviceRef]bool {
	out := map[serviceRef]bool{}
	mark := func(es *discoveryv1.EndpointSlice) {
		if svc := es.Labels[snapshot.ServiceNameLabel]; svc != "" {
			out[serviceRef{es.Namespace, svc}] = true
		}
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		x, y := a[i], b[j]
		switch {
		case x == y:
			i, j = i+1, j+1
		case x.Namespace == y.Namespace && x.Name == y.Name:
			mark(x)
			mark(y)
			i, j = i+1, j+1
		case keyLess(x.Namespace, x.Name, y.Namespace, y.Name):
			mark(x)
			i++
		default:
			mark(y)
			j++
		}
	}
	for ; i < len(a); i++ {
		mark(a[i])
	}
	for ; j < len(b); j++ {
		mark(b[j])
	}
	return out
}

// onlySlicesDiffer reports whether a and b hold the very same objects of
// every kind but EndpointSlice. Sources hand unchanged objects on as the
// same pointers (informer caches, the manifest directory's decoded
// documents), and objects are never modified once in a snapshot.
func onlySlicesDiffer(a, b *snapshot.Snapshot) bool {
	return slices.Equal(a.Ingresses, b.Ingresses) &&
		slices.Equal(a.IngressClasses, b.IngressClasses) &&
		slices.Equal(a.Services, b.Services) &&
		slices.Equal(a.Secrets, b.Secrets) &&
		slices.Equal(a.ConfigMaps, b.ConfigMaps)
}
