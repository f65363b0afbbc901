package controller

import (
	"fmt"
	"time"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/model"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// maxQuarantine bounds how many Ingresses one bisection may set aside; past
// it the last good configuration simply stays.
const maxQuarantine = 8

// without returns a copy of snap with the Ingresses of skip left out.
func without(snap *snapshot.Snapshot, skip map[string]bool) *snapshot.Snapshot {
	keep := make([]*networkingv1.Ingress, 0, len(snap.Ingresses))
	for _, ing := range snap.Ingresses {
		if !skip[snapshot.Key(ing.Namespace, ing.Name)] {
			keep = append(keep, ing)
		}
	}
	return snap.WithIngresses(keep)
}

// only returns a copy of snap whose Ingresses are keep (and every other
// object unchanged).
func only(snap *snapshot.Snapshot, keep []*networkingv1.Ingress) *snapshot.Snapshot {
	return snap.WithIngresses(keep)
}

// findCulprits is used when a candidate nginx.conf fails `nginx -t` although
// every value passed validation: it looks for the Ingresses responsible by
// bisection, so that they alone are set aside and everything else is still
// applied. fails reports whether the configuration built from a snapshot is
// rejected. It returns the culprits (namespace/name) and whether the rest
// passes; ok is false when the failure does not come from Ingresses (then
// nothing is applied and the last good configuration stays).
func findCulprits(snap *snapshot.Snapshot, ours []*networkingv1.Ingress, fails func(*snapshot.Snapshot) bool) (culprits []string, ok bool) {
	skip := map[string]bool{}
	remaining := append([]*networkingv1.Ingress(nil), ours...)
	for len(culprits) < maxQuarantine {
		if !fails(without(snap, skip)) {
			return culprits, true
		}
		// The smallest prefix of the remaining Ingresses that fails ends
		// with a culprit (prefixes only grow more likely to fail).
		if fails(only(snap, nil)) {
			return culprits, false
		}
		lo, hi := 0, len(remaining) // prefix lo passes, prefix hi fails
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if fails(only(snap, remaining[:mid])) {
				hi = mid
			} else {
				lo = mid
			}
		}
		bad := remaining[hi-1]
		key := snapshot.Key(bad.Namespace, bad.Name)
		culprits = append(culprits, key)
		skip[key] = true
		remaining = append(remaining[:hi-1], remaining[hi:]...)
	}
	return culprits, !fails(without(snap, skip))
}

// quarantine runs findCulprits with real `nginx -t` checks and returns the
// model and rendering without the culprits, which are reported as problems.
func (c *Controller) quarantine(snap *snapshot.Snapshot, checkErr error) (*model.Model, bool) {
	begin := time.Now()
	checks := 0
	ours := model.OurIngresses(snap, c.cfg.Options)
	fails := func(s *snapshot.Snapshot) bool {
		checks++
		_, err := c.candidate(model.Build(s, c.cfg.Options))
		return err != nil
	}
	culprits, ok := findCulprits(snap, ours, fails)
	c.log.Info("bisection of a rejected configuration", "ingresses", len(ours), "checks", checks,
		"quarantined", culprits, "resolved", ok, "took", time.Since(begin).Round(time.Millisecond))
	if !ok || len(culprits) == 0 {
		return nil, false
	}
	skip := map[string]bool{}
	for _, k := range culprits {
		skip[k] = true
	}
	m := model.Build(without(snap, skip), c.cfg.Options)
	for _, k := range culprits {
		m.Problems = append(m.Problems, model.Problem{Kind: "Ingress", Object: k,
			Reason: fmt.Sprintf("quarantined: nginx rejected the configuration with this Ingress (%v); it is not served until it changes, every other Ingress is", checkErr)})
	}
	return m, true
}
