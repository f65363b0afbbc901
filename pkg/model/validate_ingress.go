package model

import (
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tidegate/tidegate/pkg/snapshot"
)

// ValidateIngress says what would go wrong if ing were applied on top of
// snap: the problems Build reports for ing itself, including conflicts with
// older Ingresses for the same host and path. It is what the admission
// webhook runs: the pure model, never nginx. ours is false when ing belongs
// to another class (nothing to say then).
func ValidateIngress(snap *snapshot.Snapshot, ing *networkingv1.Ingress, opts Options) (problems []Problem, ours bool) {
	c := ing.DeepCopy()
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.CreationTimestamp.IsZero() {
		// A new object is the youngest: it loses every conflict.
		c.CreationTimestamp = metav1.NewTime(time.Now())
	}
	key := snapshot.Key(c.Namespace, c.Name)
	ings := make([]*networkingv1.Ingress, 0, len(snap.Ingresses)+1)
	for _, other := range snap.Ingresses {
		if snapshot.Key(other.Namespace, other.Name) != key {
			ings = append(ings, other)
		}
	}
	idx := snap.WithIngresses(append(ings, c))
	for _, o := range OurIngresses(idx, opts) {
		if o == c {
			ours = true
		}
	}
	if !ours {
		return nil, false
	}
	for _, p := range Build(idx, opts).Problems {
		if p.Kind == "Ingress" && p.Object == key {
			problems = append(problems, p)
		}
	}
	return problems, true
}
