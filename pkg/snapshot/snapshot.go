// Package snapshot holds the typed, immutable view of the Kubernetes objects
// tidegate translates. Sources (kube informers, a manifest directory) produce a
// Snapshot; the model reads it through lookup methods and never calls an API.
package snapshot

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// ServiceNameLabel links an EndpointSlice to its Service.
const ServiceNameLabel = "kubernetes.io/service-name"

// Snapshot is one consistent set of objects. It is never mutated after it has
// been handed to the model.
type Snapshot struct {
	Ingresses      []*networkingv1.Ingress
	IngressClasses []*networkingv1.IngressClass
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Secrets        []*corev1.Secret
	ConfigMaps     []*corev1.ConfigMap

	services map[string]*corev1.Service
	slices   map[string][]*discoveryv1.EndpointSlice
	secrets  map[string]*corev1.Secret
	cms      map[string]*corev1.ConfigMap
}

// Key is the "namespace/name" form used for every lookup.
func Key(namespace, name string) string { return namespace + "/" + name }

// Index builds the lookup tables and sorts every list by namespace/name so the
// model sees the same order whatever order the source delivered. Call it once
// after filling the lists.
func (s *Snapshot) Index() *Snapshot {
	sortByKey(s.Ingresses, func(o *networkingv1.Ingress) string { return Key(o.Namespace, o.Name) })
	sortByKey(s.IngressClasses, func(o *networkingv1.IngressClass) string { return o.Name })
	sortByKey(s.Services, func(o *corev1.Service) string { return Key(o.Namespace, o.Name) })
	sortByKey(s.EndpointSlices, func(o *discoveryv1.EndpointSlice) string { return Key(o.Namespace, o.Name) })
	sortByKey(s.Secrets, func(o *corev1.Secret) string { return Key(o.Namespace, o.Name) })
	sortByKey(s.ConfigMaps, func(o *corev1.ConfigMap) string { return Key(o.Namespace, o.Name) })
	s.services = make(map[string]*corev1.Service, len(s.Services))
	for _, svc := range s.Services {
		s.services[Key(svc.Namespace, svc.Name)] = svc
	}
	s.slices = indexSlices(s.EndpointSlices)
	s.secrets = make(map[string]*corev1.Secret, len(s.Secrets))
	for _, sec := range s.Secrets {
		s.secrets[Key(sec.Namespace, sec.Name)] = sec
	}
	s.cms = make(map[string]*corev1.ConfigMap, len(s.ConfigMaps))
	for _, cm := range s.ConfigMaps {
		s.cms[Key(cm.Namespace, cm.Name)] = cm
	}
	return s
}

// indexSlices groups slices by the Service they are labelled for, keeping
// their order.
func indexSlices(list []*discoveryv1.EndpointSlice) map[string][]*discoveryv1.EndpointSlice {
	m := make(map[string][]*discoveryv1.EndpointSlice, len(list))
	for _, es := range list {
		svc := es.Labels[ServiceNameLabel]
		if svc == "" {
			continue
		}
		k := Key(es.Namespace, svc)
		m[k] = append(m[k], es)
	}
	return m
}

// ReplaceEndpointSlices returns a copy of s in which each of objs takes the
// place of the EndpointSlice of the same namespace and name (at most one
// of objs per name), and false when s has no such slice. Everything else
// is shared with s, and only the lookups of the Services the old and new
// slices are labelled for are built again: an endpoint change costs the
// slices it changes, not indexing every object. s is not modified.
func (s *Snapshot) ReplaceEndpointSlices(objs []*discoveryv1.EndpointSlice) (*Snapshot, bool) {
	c := *s
	c.EndpointSlices = slices.Clone(s.EndpointSlices)
	c.slices = maps.Clone(s.slices)
	copied := map[string]bool{} // entries of c.slices already copied
	entry := func(k string) []*discoveryv1.EndpointSlice {
		if !copied[k] {
			c.slices[k] = slices.Clone(c.slices[k])
			copied[k] = true
		}
		return c.slices[k]
	}
	for _, es := range objs {
		key := Key(es.Namespace, es.Name)
		i, found := slices.BinarySearchFunc(c.EndpointSlices, key, func(x *discoveryv1.EndpointSlice, k string) int {
			return strings.Compare(Key(x.Namespace, x.Name), k)
		})
		if !found {
			return nil, false
		}
		old := c.EndpointSlices[i]
		c.EndpointSlices[i] = es
		// The slices of one Service share its namespace: in list order
		// is in name order.
		if svc := old.Labels[ServiceNameLabel]; svc != "" {
			k := Key(old.Namespace, svc)
			e := slices.DeleteFunc(entry(k), func(x *discoveryv1.EndpointSlice) bool { return x == old })
			if len(e) == 0 {
				delete(c.slices, k)
			} else {
				c.slices[k] = e
			}
		}
		if svc := es.Labels[ServiceNameLabel]; svc != "" {
			k := Key(es.Namespace, svc)
			e := entry(k)
			j, _ := slices.BinarySearchFunc(e, es.Name, func(x *discoveryv1.EndpointSlice, n string) int { return strings.Compare(x.Name, n) })
			c.slices[k] = slices.Insert(e, j, es)
		}
	}
	return &c, true
}

// sortByKey sorts items by key, computing each key once (a comparison that
// built two "namespace/name" strings was most of indexing 30,000 objects).
func sortByKey[T any](items []T, key func(T) string) {
	if len(items) < 2 {
		return
	}
	type keyed struct {
		key  string
		item T
	}
	ks := make([]keyed, len(items))
	for i, it := range items {
		ks[i] = keyed{key(it), it}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return strings.Compare(a.key, b.key) })
	for i := range ks {
		items[i] = ks[i].item
	}
}

// Service returns the Service namespace/name, or nil.
func (s *Snapshot) Service(namespace, name string) *corev1.Service {
	return s.services[Key(namespace, name)]
}

// EndpointSlices returns the slices labelled for the Service namespace/name,
// sorted by name.
func (s *Snapshot) EndpointSlicesFor(namespace, service string) []*discoveryv1.EndpointSlice {
	return s.slices[Key(namespace, service)]
}

// Secret returns the Secret namespace/name, or nil.
func (s *Snapshot) Secret(namespace, name string) *corev1.Secret {
	return s.secrets[Key(namespace, name)]
}

// ConfigMap returns the ConfigMap namespace/name, or nil.
func (s *Snapshot) ConfigMap(namespace, name string) *corev1.ConfigMap {
	return s.cms[Key(namespace, name)]
}

// WithIngresses returns a new indexed snapshot holding ings and the other
// objects of s. The lists are copied, so indexing the new snapshot never
// touches s (which other goroutines may be reading).
func (s *Snapshot) WithIngresses(ings []*networkingv1.Ingress) *Snapshot {
	return (&Snapshot{
		Ingresses:      append([]*networkingv1.Ingress(nil), ings...),
		IngressClasses: append([]*networkingv1.IngressClass(nil), s.IngressClasses...),
		Services:       append([]*corev1.Service(nil), s.Services...),
		EndpointSlices: append([]*discoveryv1.EndpointSlice(nil), s.EndpointSlices...),
		Secrets:        append([]*corev1.Secret(nil), s.Secrets...),
		ConfigMaps:     append([]*corev1.ConfigMap(nil), s.ConfigMaps...),
	}).Index()
}
