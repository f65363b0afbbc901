package model

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// The balancing annotations are parsed by pkg/annotations (balancing.go),
// the ConfigMap's load-balance by pkg/configmap. They are dynamic: a change
// is pushed, never reloaded, except upstream-hash-by, whose expression the
// location evaluates, and the first ewma backend in or the last one out
// (Structure.LogPhase).

// Balancing is how one Ingress's backends balance, from its annotations and
// the ConfigMap.
type Balancing struct {
	// Algorithm is AlgorithmRoundRobin, AlgorithmEWMA or AlgorithmCHash.
	Algorithm string
	// HashBy is the nginx expression of upstream-hash-by ("$request_uri"):
	// the location must evaluate it into $tidegate_hash_key. Empty unless
	// Algorithm is AlgorithmCHash.
	HashBy string
	// Affinity is nil without affinity: cookie.
	Affinity *Affinity
}

// ParseBalancing reads load-balance, upstream-hash-by, affinity,
// affinity-mode and session-cookie-* from annotations (full keys, with the
// nginx.ingress.kubernetes.io/ prefix) through pkg/annotations.
// defaultAlgorithm is the ConfigMap's load-balance. Invalid values are
// returned as problems (field and reason) and leave the default in place,
// as ingress-nginx does.
func ParseBalancing(ann map[string]string, defaultAlgorithm string) (Balancing, []Problem) {
	cfg, _ := annotations.Parse(ann)
	return balancingOf(cfg.Balancing, defaultAlgorithm)
}

// balancingOf applies the ConfigMap's algorithm to what the annotations
// set. As in ingress-nginx, upstream-hash-by wins over load-balance.
func balancingOf(a annotations.Balancing, defaultAlgorithm string) (Balancing, []Problem) {
	probs := invalidProblems(a.Invalid)
	out := Balancing{Algorithm: defaultAlgorithm}
	if out.Algorithm == "" {
		out.Algorithm = DefaultAlgorithm
	}
	if a.Algorithm != "" {
		out.Algorithm = a.Algorithm
	}
	if a.HashBy != "" {
		out.Algorithm, out.HashBy = AlgorithmCHash, a.HashBy
	}
	if a.Affinity != nil {
		out.Affinity = &Affinity{Mode: a.Affinity.Mode, Name: a.Affinity.Name, Path: a.Affinity.Path,
			Domain: a.Affinity.Domain, SameSite: a.Affinity.SameSite, Secure: a.Affinity.Secure,
			MaxAge: a.Affinity.MaxAge, Expires: a.Affinity.Expires, ChangeOnFailure: a.Affinity.ChangeOnFailure}
	}
	return out, probs
}

// invalidProblems turns the data-plane values pkg/annotations refused into
// problems without Kind and Object (the caller knows the Ingress).
func invalidProblems(in []annotations.Invalid) []Problem {
	var out []Problem
	for _, v := range in {
		out = append(out, invalidProblem(v))
	}
	return out
}

func invalidProblem(v annotations.Invalid) Problem {
	return Problem{Field: "metadata.annotations[" + annotations.Prefix + v.Key + "]",
		Reason: fmt.Sprintf("value %q is not %s; the annotation is ignored", v.Value, v.Want)}
}

// defaultAlgorithm is the ConfigMap's load-balance (checked and reported by
// pkg/configmap), or round_robin.
func (b *builder) defaultAlgorithm() string {
	if b.global.loadBalance == "" {
		return DefaultAlgorithm
	}
	return b.global.loadBalance
}

// applyBalancing sets the algorithm and affinity of a backend the Ingress
// created. A backend (one Service port) is shared by every Ingress that
// names it: the oldest Ingress's settings win, as in ingress-nginx, and a
// later Ingress that asks for different ones is reported.
func (b *builder) applyBalancing(ing *networkingv1.Ingress, be *Backend, created bool) {
	if b.balancingDefault == "" {
		b.balancingDefault = b.defaultAlgorithm()
	}
	bal, probs := balancingOf(b.dataPlane(ing).Balancing, b.balancingDefault)
	key := ingressKey(ing)
	if created {
		for _, p := range probs {
			p.Kind, p.Object = "Ingress", key
			b.report(p)
		}
		be.Algorithm, be.Affinity = bal.Algorithm, bal.Affinity
		return
	}
	if bal.Algorithm != be.Algorithm || fmt.Sprint(bal.Affinity) != fmt.Sprint(be.Affinity) {
		b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations",
			Reason: fmt.Sprintf("backend %s is shared with an older Ingress whose balancing settings (load-balance, upstream-hash-by, affinity) differ; the older Ingress's apply", be.Name)})
	}
}
