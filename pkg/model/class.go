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
		if v := strings.TrimSpace(ing.Annotations[annotations.Prefix+key]); v != "" {
			ns, name := refOf(ing, v)
			out = append(out, snapshot.Key(ns, name))
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
		if v := strings.TrimSpace(ing.Annotations[annotations.Prefix+key]); v != "" {
			if ns, name := refOf(ing, v); ns == ing.Namespace && name != "" {
				out = append(out, snapshot.Key(ns, name))
			}
		}
	}
	return out
}

// refOf splits an annotation's "[NAMESPACE/]NAME": the namespace is the
// Ingress's when it names none.
func refOf(ing *networkingv1.Ingress, v string) (ns, name string) {
	ns, name, qualified := strings.Cut(v, "/")
	if !qualified {
		return ing.Namespace, v
	}
	return ns, name
}
