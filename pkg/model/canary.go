package model

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// The canary annotations, without the nginx.ingress.kubernetes.io/ prefix.
const (
	annCanary              = "canary"
	annCanaryHeader        = "canary-by-header"
	annCanaryHeaderValue   = "canary-by-header-value"
	annCanaryHeaderPattern = "canary-by-header-pattern"
	annCanaryCookie        = "canary-by-cookie"
	annCanaryWeight        = "canary-weight"
	annCanaryWeightTotal   = "canary-weight-total"
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

// IsCanary reports whether an Ingress is a canary (canary: "true"): its
// paths add no location, their backends become canaries of the backends
// that serve the same host and path.
func IsCanary(ing *networkingv1.Ingress) bool {
	v := strings.TrimSpace(ing.Annotations[balancingAnnPrefix+annCanary])
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// ParseCanary reads the canary-* annotations into a Canary without its
// Backend. Invalid values are returned as problems and ignored.
func ParseCanary(ann map[string]string) (Canary, []Problem) {
	var probs []Problem
	bad := func(key, value, want string) {
		probs = append(probs, Problem{Field: "metadata.annotations[" + balancingAnnPrefix + key + "]",
			Reason: fmt.Sprintf("value %q is not %s; the annotation is ignored", value, want)})
	}
	get := func(key string) string { return strings.TrimSpace(ann[balancingAnnPrefix+key]) }
	var c Canary
	if v := get(annCanaryHeader); v != "" {
		if cookieToken.MatchString(v) {
			c.Header = v
		} else {
			bad(annCanaryHeader, v, "an HTTP header name")
		}
	}
	if v := ann[balancingAnnPrefix+annCanaryHeaderValue]; v != "" && c.Header != "" {
		if printable(v) {
			c.HeaderValue = v
		} else {
			bad(annCanaryHeaderValue, v, "printable ASCII")
		}
	}
	// ingress-nginx: the pattern is only used without a value. It is a PCRE
	// regex, so RE2 cannot judge every one here; one that PCRE refuses
	// never matches, and nginx's error log says so. One RE2 reads is
	// refused if PCRE would backtrack through it exponentially: Lua
	// matches it against a header the client chooses.
	if v := ann[balancingAnnPrefix+annCanaryHeaderPattern]; v != "" && c.Header != "" && c.HeaderValue == "" {
		if !printable(v) || len(v) > 1024 {
			bad(annCanaryHeaderPattern, v, "printable ASCII of at most 1024 bytes")
		} else if err := annotations.Backtracking(v); err != nil {
			bad(annCanaryHeaderPattern, v, "a pattern without nested repetition ("+err.Error()+")")
		} else {
			c.HeaderPattern = v
		}
	}
	if v := get(annCanaryCookie); v != "" {
		if cookieToken.MatchString(v) {
			c.Cookie = v
		} else {
			bad(annCanaryCookie, v, "a cookie name")
		}
	}
	c.WeightTotal = 100
	if v := get(annCanaryWeightTotal); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 1000000 {
			c.WeightTotal = n
		} else {
			bad(annCanaryWeightTotal, v, "a number from 1 to 1000000")
		}
	}
	if v := get(annCanaryWeight); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= c.WeightTotal {
			c.Weight = n
		} else {
			bad(annCanaryWeight, v, fmt.Sprintf("a number from 0 to canary-weight-total (%d)", c.WeightTotal))
		}
	}
	return c, probs
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return len(s) <= 1024
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
		c, probs := ParseCanary(pc.ing.Annotations)
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
