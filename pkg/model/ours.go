package model

import (
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/snapshot"
)

// OurIngresses returns the Ingresses of snap that a controller with opts
// serves, in the order Build settles conflicts in (oldest first). Sources use
// it to know which Secrets are referenced; the status writer to know which
// Ingresses get this controller's address.
func OurIngresses(snap *snapshot.Snapshot, opts Options) []*networkingv1.Ingress {
	return (&builder{snap: snap, opts: opts}).ourIngresses()
}

// SecretRefs returns the namespace/name of every Secret ing reads: those of
// spec.tls, and those its annotations name (auth-secret, auth-tls-secret,
// proxy-ssl-secret).
// A source that keeps only the data of referenced Secrets must keep these.
func SecretRefs(ing *networkingv1.Ingress) []string {
	var out []string
	for _, t := range ing.Spec.TLS {
		if t.SecretName != "" {
			out = append(out, snapshot.Key(ing.Namespace, t.SecretName))
		}
	}
	for _, key := range []string{"auth-secret", "auth-tls-secret", "proxy-ssl-secret"} {
		v := strings.TrimSpace(ing.Annotations[annotations.Prefix+key])
		if v == "" {
			continue
		}
		if ns, name, cross := strings.Cut(v, "/"); cross {
			out = append(out, snapshot.Key(ns, name))
		} else {
			out = append(out, snapshot.Key(ing.Namespace, v))
		}
	}
	return out
}

// ConfigMapRefs returns the namespace/name of every ConfigMap ing's
// annotations name (custom-headers, auth-proxy-set-headers) in its own
// namespace, the only place they are read from.
func ConfigMapRefs(ing *networkingv1.Ingress) []string {
	var out []string
	for _, key := range []string{"custom-headers", "auth-proxy-set-headers"} {
		v := strings.TrimSpace(ing.Annotations[annotations.Prefix+key])
		if v == "" {
			continue
		}
		ns, name, qualified := strings.Cut(v, "/")
		if !qualified {
			ns, name = ing.Namespace, v
		}
		if ns == ing.Namespace && name != "" {
			out = append(out, snapshot.Key(ns, name))
		}
	}
	return out
}
