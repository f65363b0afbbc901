package model

import (
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// pendingCanary is a path of a canary Ingress, attached once every
// Ingress has been merged (the main Ingress may be younger than its canary).
type pendingCanary struct {
	ing     *networkingv1.Ingress
	srv     *serverBuilder
	key     locKey
	backend networkingv1.IngressBackend
	field   string
}

// ParseCanary reads the canary-* annotations (full keys) through
// pkg/annotations into a Canary without its Backend. Invalid values are
// returned as problems and ignored.
func ParseCanary(ann map[string]string) (Canary, []Problem) {
	cfg, _ := annotations.Parse(ann)
	return canaryOf(cfg.Canary)
}

// canaryOf is the model's Canary (without its Backend) for what the
// annotations set, and the values they refused as problems.
func canaryOf(a annotations.Canary) (Canary, []Problem) {
	return Canary{Header: a.Header, HeaderValue: a.HeaderValue, HeaderPattern: a.HeaderPattern, Cookie: a.Cookie,
		Weight: a.Weight, WeightTotal: a.WeightTotal}, invalidProblems(a.Invalid)
}

// deferCanary records a path of a canary Ingress instead of adding a
// location for it.
func (b *builder) deferCanary(ing *networkingv1.Ingress, srv *serverBuilder, key locKey, backend networkingv1.IngressBackend, field string) {
	b.canaries = append(b.canaries, pendingCanary{ing: ing, srv: srv, key: key, backend: backend, field: field})
}

// attachCanaries makes the backend of every canary path a canary of the
// backend serving the same host and path. Weights and rules are pushed with
// the main backend: changing them never reloads nginx. Several canaries of
// one path are all kept (the weights split the traffic), sorted by name.
func (b *builder) attachCanaries() {
	for _, pc := range b.canaries {
		key := ingressKey(pc.ing)
		main := pc.srv.location(pc.key)
		if main == nil || main.Backend == "" {
			b.report(Problem{Kind: "Ingress", Object: key, Field: pc.field,
				Reason: fmt.Sprintf("canary for host %q path %q (%s), but no Ingress serves it; the canary is ignored",
					displayHost(pc.srv.host), pc.key.path, pc.key.match)})
			continue
		}
		// A canary shifts traffic away from the Ingress that serves the
		// path: only that Ingress's namespace may do so. Across namespaces
		// one tenant's canary-weight: "100" would take another tenant's
		// host (ingress-nginx users report cross-namespace canaries do not
		// work there either: kubernetes/ingress-nginx#7657).
		if mainNS, _, _ := strings.Cut(main.Ingress, "/"); main.Ingress != "" && mainNS != pc.ing.Namespace {
			b.report(Problem{Kind: "Ingress", Object: key, Field: pc.field,
				Reason: fmt.Sprintf("canary for host %q path %q (%s), which Ingress %s of another namespace serves; a canary must be in the namespace of the Ingress it shifts traffic from, so it is ignored",
					displayHost(pc.srv.host), pc.key.path, pc.key.match, main.Ingress)})
			continue
		}
		name, err := b.backendFor(pc.ing, &pc.backend, pc.field+".backend")
		if err != nil {
			continue
		}
		if name == main.Backend {
			b.report(Problem{Kind: "Ingress", Object: key, Field: pc.field + ".backend",
				Reason: fmt.Sprintf("canary backend %s is the main backend itself; the canary is ignored", name)})
			continue
		}
		c, probs := canaryOf(b.dataPlane(pc.ing).Canary)
		for _, p := range probs {
			p.Kind, p.Object = "Ingress", key
			b.report(p)
		}
		c.Backend = name
		mb := b.backends[main.Backend]
		dup := false
		for _, have := range mb.Canaries {
			dup = dup || have.Backend == name
		}
		if dup {
			continue // another path of the same canary Ingress, or the same service twice
		}
		if len(mb.Canaries) >= MaxCanaries {
			b.report(Problem{Kind: "Ingress", Object: key, Field: pc.field + ".backend",
				Reason: fmt.Sprintf("host %q path %q already has %d canaries, the most one backend takes; the canary is ignored",
					displayHost(pc.srv.host), pc.key.path, MaxCanaries)})
			continue
		}
		mb.Canaries = append(mb.Canaries, c)
		sort.Slice(mb.Canaries, func(i, j int) bool { return mb.Canaries[i].Backend < mb.Canaries[j].Backend })
	}
}
