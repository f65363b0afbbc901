package model

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// ServiceUpstreamPrefix starts the name of a backend whose one endpoint is
// a Service's ClusterIP (service-upstream), so it never shares a backend
// with an Ingress balancing over the same Service's endpoints.
const ServiceUpstreamPrefix = "clusterip:"

// serviceUpstream resolves a service-upstream backend: one endpoint, the
// Service's spec.clusterIP and port. It returns ok false when the Ingress
// does not ask for it or the Service cannot serve it (a headless Service
// is reported and falls back to its endpoints; a missing Service or port
// is reported by backendFor).
func (b *builder) serviceUpstream(ing *networkingv1.Ingress, svcName string, ref networkingv1.ServiceBackendPort, name, field string) (string, bool) {
	key := ingressKey(ing)
	if !b.anns[key].Upstream.ServiceUpstream {
		return "", false
	}
	svc := b.snap.Service(ing.Namespace, svcName)
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return "", false
	}
	sp, ok := servicePort(svc, ref)
	if !ok {
		return "", false
	}
	ip := svc.Spec.ClusterIP
	addr, err := netip.ParseAddr(ip)
	if ip == "" || ip == corev1.ClusterIPNone || err != nil {
		what := "is headless (clusterIP None)"
		if ip == "" {
			what = "has no clusterIP"
		} else if err != nil && ip != corev1.ClusterIPNone {
			what = fmt.Sprintf("has clusterIP %q, which is not an IP address", ip)
		}
		b.report(Problem{Kind: "Ingress", Object: key, Field: field, Warning: true,
			Reason: fmt.Sprintf("service-upstream: service %s/%s %s, so there is no ClusterIP to proxy to; its endpoints are balanced directly instead", ing.Namespace, svcName, what)})
		return "", false
	}
	cname := ServiceUpstreamPrefix + name
	if be, done := b.backends[cname]; done {
		b.applyBalancing(ing, be, false)
		return cname, true
	}
	be := &Backend{Name: cname, Algorithm: DefaultAlgorithm,
		Endpoints: []Endpoint{{Address: addr.String(), Port: sp.Port, Weight: 1}}}
	b.applyBalancing(ing, be, true)
	b.backends[cname] = be
	return cname, true
}
