package model

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// The balancing annotations (without annotations.Prefix) and ConfigMap key
// this file reads. They are dynamic: a change is pushed, never reloaded,
// except upstream-hash-by, whose expression the location evaluates, and
// the first ewma backend in or the last one out (Structure.LogPhase).
const (
	annLoadBalance     = "load-balance"
	annHashBy          = "upstream-hash-by"
	annAffinity        = "affinity"
	annAffinityMode    = "affinity-mode"
	annCookiePrefix    = "session-cookie-"
	cmLoadBalance      = "load-balance"
	balancingAnnPrefix = "nginx.ingress.kubernetes.io/"
)

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

var (
	// hashExpr is an nginx string of variables ($x, ${x}) and plain
	// characters: nothing that could end the directive or open a block.
	hashExpr    = regexp.MustCompile(`^(\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\}|[-A-Za-z0-9_./:@|])+$`)
	cookieToken = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
	cookiePath  = regexp.MustCompile(`^/[!-+\--:<-~]{0,255}$`) // printable, no ';' ','
	cookieDom   = regexp.MustCompile(`^\.?[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)
)

// ParseBalancing reads load-balance, upstream-hash-by, affinity,
// affinity-mode and session-cookie-* from annotations (full keys, with the
// nginx.ingress.kubernetes.io/ prefix). defaultAlgorithm is the ConfigMap's
// load-balance. Invalid values are returned as problems (field and reason)
// and leave the default in place, as ingress-nginx does.
//
// As in ingress-nginx, upstream-hash-by wins over load-balance, and sticky
// sessions take precedence over both for requests that carry the cookie.
func ParseBalancing(ann map[string]string, defaultAlgorithm string) (Balancing, []Problem) {
	var probs []Problem
	bad := func(key, value, want string) {
		probs = append(probs, Problem{Field: "metadata.annotations[" + balancingAnnPrefix + key + "]",
			Reason: fmt.Sprintf("value %q is not %s; the annotation is ignored", value, want)})
	}
	get := func(key string) (string, bool) {
		// the full key assembled on the stack: a lookup per key and path
		// of every Ingress must not allocate
		var buf [64]byte
		full := append(append(buf[:0], balancingAnnPrefix...), key...)
		v, ok := ann[string(full)]
		return strings.TrimSpace(v), ok
	}
	out := Balancing{Algorithm: defaultAlgorithm}
	if out.Algorithm == "" {
		out.Algorithm = DefaultAlgorithm
	}
	if v, ok := get(annLoadBalance); ok {
		if algo, valid := algorithm(v); valid {
			out.Algorithm = algo
		} else {
			bad(annLoadBalance, v, "round_robin or ewma")
		}
	}
	if v, ok := get(annHashBy); ok && v != "" {
		if hashExpr.MatchString(v) && len(v) <= 256 {
			if err := ValidLogFormat(v); err != nil {
				// Same variable rule as log formats: an unknown variable
				// would fail nginx -t for every host.
				bad(annHashBy, v, "an expression of known nginx variables such as $request_uri or $http_x_user")
			} else {
				out.Algorithm, out.HashBy = AlgorithmCHash, v
			}
		} else {
			bad(annHashBy, v, "an nginx variable expression such as $request_uri or $http_x_user")
		}
	}
	v, ok := get(annAffinity)
	if !ok || v == "" {
		return out, probs
	}
	if v != "cookie" {
		bad(annAffinity, v, `"cookie"`)
		return out, probs
	}
	a := &Affinity{Mode: AffinityBalanced, Name: "INGRESSCOOKIE"}
	if v, ok := get(annAffinityMode); ok {
		switch v {
		case AffinityBalanced, AffinityPersistent:
			a.Mode = v
		default:
			bad(annAffinityMode, v, "balanced or persistent")
		}
	}
	str := func(key string, re *regexp.Regexp, want string, dst *string) {
		if v, ok := get(annCookiePrefix + key); ok && v != "" {
			if re.MatchString(v) {
				*dst = v
			} else {
				bad(annCookiePrefix+key, v, want)
			}
		}
	}
	str("name", cookieToken, "a cookie name (letters, digits and !#$%&'*+.^_`|~-, at most 64)", &a.Name)
	str("path", cookiePath, "a path starting with / without ';' or ','", &a.Path)
	str("domain", cookieDom, "a domain name", &a.Domain)
	if v, ok := get(annCookiePrefix + "samesite"); ok && v != "" {
		switch strings.ToLower(v) {
		case "none":
			a.SameSite = "None"
		case "lax":
			a.SameSite = "Lax"
		case "strict":
			a.SameSite = "Strict"
		default:
			bad(annCookiePrefix+"samesite", v, "None, Lax or Strict")
		}
	}
	boolean := func(key string, dst *bool) {
		if v, ok := get(annCookiePrefix + key); ok && v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(annCookiePrefix+key, v, `"true" or "false"`)
				return
			}
			*dst = b
		}
	}
	boolean("secure", &a.Secure)
	boolean("change-on-failure", &a.ChangeOnFailure)
	seconds := func(key string, dst *int) {
		if v, ok := get(annCookiePrefix + key); ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1<<31-1 {
				bad(annCookiePrefix+key, v, "a number of seconds")
				return
			}
			*dst = n
		}
	}
	seconds("max-age", &a.MaxAge)
	seconds("expires", &a.Expires)
	out.Affinity = a
	return out, probs
}

func algorithm(v string) (string, bool) {
	switch v {
	case AlgorithmRoundRobin, AlgorithmEWMA:
		return v, true
	}
	return "", false
}

// defaultAlgorithm is the ConfigMap's load-balance, or round_robin.
func (b *builder) defaultAlgorithm() string {
	ns, name, ok := strings.Cut(b.opts.ConfigMap, "/")
	if !ok {
		return DefaultAlgorithm
	}
	cm := b.snap.ConfigMap(ns, name)
	if cm == nil {
		return DefaultAlgorithm
	}
	v, set := cm.Data[cmLoadBalance]
	if !set {
		return DefaultAlgorithm
	}
	algo, valid := algorithm(strings.TrimSpace(v))
	if !valid {
		b.report(Problem{Kind: "ConfigMap", Object: b.opts.ConfigMap, Field: "data." + cmLoadBalance,
			Reason: fmt.Sprintf("value %q is not round_robin or ewma; round_robin is used", v)})
		return DefaultAlgorithm
	}
	return algo
}

// applyBalancing sets the algorithm and affinity of a backend the Ingress
// created. A backend (one Service port) is shared by every Ingress that
// names it: the oldest Ingress's settings win, as in ingress-nginx, and a
// later Ingress that asks for different ones is reported.
func (b *builder) applyBalancing(ing *networkingv1.Ingress, be *Backend, created bool) {
	if b.balancingDefault == "" {
		b.balancingDefault = b.defaultAlgorithm()
	}
	bal, probs := ParseBalancing(ing.Annotations, b.balancingDefault)
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
