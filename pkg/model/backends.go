package model

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// DefaultAlgorithm is the balancing algorithm when nothing chooses another.
const DefaultAlgorithm = "round_robin"

// BackendName is the name a Service port is pushed under:
// "namespace/service:port", the port as the Ingress writes it.
func BackendName(namespace, service, port string) string {
	return namespace + "/" + service + ":" + port
}

// backendFor resolves an Ingress backend to a Dynamic backend and returns its
// name. A reference tidegate cannot serve is reported and returns an error;
// a Service with no endpoints is not an error (its backend answers 503).
func (b *builder) backendFor(ing *networkingv1.Ingress, ib *networkingv1.IngressBackend, field string) (string, error) {
	key := ingressKey(ing)
	fail := func(reason string) (string, error) {
		b.report(Problem{Kind: "Ingress", Object: key, Field: field, Reason: reason})
		return "", fmt.Errorf("%s", reason)
	}
	if ib.Resource != nil {
		return fail("resource backends are not supported; use a service backend")
	}
	if ib.Service == nil {
		return fail("backend has no service")
	}
	if err := validateLabelish(ing.Namespace); err != nil {
		return fail(fmt.Sprintf("namespace %q: %v", ing.Namespace, err))
	}
	svcName := ib.Service.Name
	if err := validateLabelish(svcName); err != nil {
		return fail(fmt.Sprintf("service name %q: %v", svcName, err))
	}
	port := ib.Service.Port
	portLabel := ""
	switch {
	case port.Name != "" && port.Number != 0:
		return fail("service port sets both name and number; set one")
	case port.Name != "":
		if err := validateLabelish(port.Name); err != nil {
			return fail(fmt.Sprintf("service port name %q: %v", port.Name, err))
		}
		portLabel = port.Name
	case port.Number > 0 && port.Number <= 65535:
		portLabel = strconv.Itoa(int(port.Number))
	default:
		return fail("service port must be a number 1-65535 or a port name")
	}
	name := BackendName(ing.Namespace, svcName, portLabel)
	if cname, ok := b.serviceUpstream(ing, svcName, port, name, field); ok { // upstream.go
		return cname, nil
	}
	if be, done := b.backends[name]; done {
		b.applyBalancing(ing, be, false) // balancing.go: reports a conflict
		return name, nil
	}
	be := &Backend{Name: name, Algorithm: DefaultAlgorithm, Endpoints: []Endpoint{}}
	b.applyBalancing(ing, be, true) // balancing.go: algorithm and affinity
	b.backends[name] = be

	svc := b.snap.Service(ing.Namespace, svcName)
	if svc == nil {
		b.report(Problem{Kind: "Ingress", Object: key, Field: field, Warning: true,
			Reason: fmt.Sprintf("service %s/%s not found; requests get 503 until it exists", ing.Namespace, svcName)})
		return name, nil
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		b.report(Problem{Kind: "Ingress", Object: key, Field: field,
			Reason: fmt.Sprintf("service %s/%s is of type ExternalName, which is not supported yet; requests get 503", ing.Namespace, svcName)})
		return name, nil
	}
	sp, ok := servicePort(svc, port)
	if !ok {
		b.report(Problem{Kind: "Ingress", Object: key, Field: field, Warning: true,
			Reason: fmt.Sprintf("service %s/%s has no port %s; requests get 503", ing.Namespace, svcName, portLabel)})
		return name, nil
	}
	list := b.snap.EndpointSlicesFor(ing.Namespace, svcName)
	be.Endpoints = endpointsFor(list, sp)
	if len(be.Endpoints) == MaxEndpoints { // capped, or exactly full
		if n := tooManyEndpoints(list); n > 0 {
			b.report(Problem{Kind: "Ingress", Object: key, Field: field, Warning: true,
				Reason: fmt.Sprintf("service %s/%s has %d endpoint addresses; tidegate balances over the first %d", ing.Namespace, svcName, n, MaxEndpoints)})
		}
	}
	b.sources[name] = endpointSource{namespace: ing.Namespace, service: svcName, port: sp}
	return name, nil
}

// servicePort finds the Service port an Ingress refers to, by number or name.
func servicePort(svc *corev1.Service, ref networkingv1.ServiceBackendPort) (corev1.ServicePort, bool) {
	for _, p := range svc.Spec.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if (ref.Name != "" && p.Name == ref.Name) || (ref.Name == "" && p.Port == ref.Number) {
			return p, true
		}
	}
	return corev1.ServicePort{}, false
}

// endpointsFor collects the endpoints of a Service port from its slices.
// Ready endpoints serve; serving-but-terminating ones are kept as draining
// (used only when no ready endpoint is left, as kube-proxy does); the rest
// are dropped. Duplicates across slices collapse, ready winning.
func endpointsFor(list []*discoveryv1.EndpointSlice, sp corev1.ServicePort) []Endpoint {
	// Sized up front and keyed by value: at 10,000 endpoints this runs
	// 10,000 times per build (it was the largest part of Build).
	n := 0
	for _, es := range list {
		for _, ep := range es.Endpoints {
			n += len(ep.Addresses)
		}
	}
	type key struct {
		addr netip.Addr
		port int32
	}
	// A Service's few endpoints are told apart by a linear scan; a map
	// only pays off for many.
	var (
		small [16]key
		keys  = small[:0]
		seen  map[key]int
	)
	if n > len(small) {
		seen = make(map[key]int, n)
	}
	out := make([]Endpoint, 0, n)
	for _, es := range list {
		if es.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		port, ok := slicePort(es, sp)
		if !ok {
			continue
		}
		for _, ep := range es.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			serving := ready
			if ep.Conditions.Serving != nil {
				serving = *ep.Conditions.Serving
			}
			terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			draining := false
			switch {
			case ready && !terminating:
			case serving && terminating:
				draining = true
			default:
				continue
			}
			for _, a := range ep.Addresses {
				addr, err := netip.ParseAddr(a)
				// A zone ("fe80::1%eth0") names an interface of some other
				// host; the API server never stores one, a manifest may.
				if err != nil || addr.Zone() != "" {
					continue
				}
				k := key{addr, port}
				dup := -1
				if seen != nil {
					if i, ok := seen[k]; ok {
						dup = i
					}
				} else {
					for i := range keys {
						if keys[i] == k {
							dup = i
							break
						}
					}
				}
				if dup >= 0 {
					if out[dup].Draining && !draining {
						out[dup].Draining = false
					}
					continue
				}
				if seen != nil {
					seen[k] = len(out)
				} else {
					keys = append(keys, k)
				}
				out = append(out, Endpoint{Address: canonicalAddr(a, addr), Port: port, Weight: 1, Draining: draining})
			}
		}
	}
	slices.SortFunc(out, func(x, y Endpoint) int {
		if c := strings.Compare(x.Address, y.Address); c != 0 {
			return c
		}
		return cmp.Compare(x.Port, y.Port)
	})
	if len(out) > MaxEndpoints { // reported by the builder (tooManyEndpoints)
		out = out[:MaxEndpoints:MaxEndpoints]
	}
	return out
}

// tooManyEndpoints reports how many endpoints a Service has when endpointsFor
// had to leave some out, else 0.
func tooManyEndpoints(list []*discoveryv1.EndpointSlice) int {
	n := 0
	for _, es := range list {
		for _, ep := range es.Endpoints {
			n += len(ep.Addresses)
		}
	}
	if n <= MaxEndpoints {
		return 0
	}
	return n
}

// canonicalAddr is addr.String() without formatting it again when the
// slice already has it in that form: ParseAddr accepts dotted-quad IPv4
// only in canonical form (no leading zeros, four parts), so an IPv4
// address is kept as written.
func canonicalAddr(written string, addr netip.Addr) string {
	if addr.Is4() {
		return written
	}
	return addr.String()
}

// slicePort finds the port of a slice that carries the Service port: the
// slice port has the Service port's name ("" for an unnamed port).
func slicePort(es *discoveryv1.EndpointSlice, sp corev1.ServicePort) (int32, bool) {
	for _, p := range es.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != sp.Name || p.Port == nil {
			continue
		}
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		return *p.Port, true
	}
	return 0, false
}

// validateLabelish accepts DNS-1123 labels and subdomains (Service and port
// names): lower-case letters, digits, '-' and '.'.
func validateLabelish(s string) error {
	if s == "" || len(s) > 253 {
		return fmt.Errorf("must be 1 to 253 characters")
	}
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-.") != "" {
		return fmt.Errorf("only a-z, 0-9, '-' and '.' are allowed")
	}
	return nil
}

// addDefaultBackend makes sure the catch-all server exists and, when no
// Ingress supplied a default backend, uses --default-backend-service.
func (b *builder) addDefaultBackend() {
	b.serverFor("")
	if b.defaultB != "" || b.opts.DefaultBackendService == "" {
		return
	}
	ns, name, ok := strings.Cut(b.opts.DefaultBackendService, "/")
	if !ok {
		b.report(Problem{Kind: "Option", Object: "--default-backend-service", Reason: "must be NAMESPACE/NAME"})
		return
	}
	svc := b.snap.Service(ns, name)
	if svc == nil || len(svc.Spec.Ports) == 0 {
		b.report(Problem{Kind: "Service", Object: b.opts.DefaultBackendService, Reason: "default backend service not found or has no port; unmatched requests get 404"})
		return
	}
	sp := svc.Spec.Ports[0]
	bname := BackendName(ns, name, strconv.Itoa(int(sp.Port)))
	if _, done := b.backends[bname]; !done {
		b.backends[bname] = &Backend{Name: bname, Algorithm: DefaultAlgorithm, Endpoints: endpointsFor(b.snap.EndpointSlicesFor(ns, name), sp)}
		b.sources[bname] = endpointSource{namespace: ns, service: name, port: sp}
	}
	b.defaultB = bname
}

// needsLogPhase reports whether some backend needs the Lua log phase: ewma
// learns from every response's latency and ejection on 5xx from every
// status. Failed tries (passive ejection's default trigger) are counted in
// the balancer, which runs anyway.
func needsLogPhase(backends []Backend) bool {
	for i := range backends {
		b := &backends[i]
		if b.Algorithm == AlgorithmEWMA || b.Ejection != nil && b.Ejection.Consecutive5xx > 0 {
			return true
		}
	}
	return false
}
