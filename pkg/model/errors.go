package model

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// CustomErrors sends a location's answers with one of Codes to Backend
// (custom-http-errors), as ingress-nginx does: nginx intercepts the
// upstream's answer and asks Backend instead, with X-Code, X-Original-URI,
// X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port ... headers.
type CustomErrors struct {
	// Codes are sorted status codes, 400 to 599; empty means none.
	Codes []int
	// Backend is the Dynamic backend answering them: the Ingress's
	// default-backend annotation, else the global default backend.
	Backend string
}

// errorsState is what errors.go keeps while building.
type errorsState struct {
	// byIngress is the resolved default-backend annotation per Ingress key
	// ("" when it could not be resolved).
	byIngress map[string]string
}

// defaultBackendAnnotation resolves the default-backend annotation of an
// Ingress to a Dynamic backend: the Service in the Ingress's namespace, on
// its first TCP port (ingress-nginx uses the first port too). A Service
// that does not exist is reported and gives "".
func (b *builder) defaultBackendAnnotation(ing *networkingv1.Ingress) string {
	key := ingressKey(ing)
	name := b.anns[key].Errors.DefaultBackend
	if name == "" {
		return ""
	}
	if done, ok := b.errs.byIngress[key]; ok {
		return done
	}
	if b.errs.byIngress == nil {
		b.errs.byIngress = map[string]string{}
	}
	field := "metadata.annotations[" + annotations.Prefix + "default-backend]"
	svc := b.snap.Service(ing.Namespace, name)
	var port int32
	if svc != nil {
		for _, p := range svc.Spec.Ports {
			if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
				port = p.Port
				break
			}
		}
	}
	if port == 0 {
		b.report(Problem{Kind: "Ingress", Object: key, Field: field, Warning: true,
			Reason: fmt.Sprintf("service %s/%s not found or has no TCP port; custom errors go to the global default backend and paths without endpoints answer 503 until it exists", ing.Namespace, name)})
		b.errs.byIngress[key] = ""
		return ""
	}
	ib := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: port}}}
	be, err := b.backendFor(ing, &ib, field)
	if err != nil {
		be = ""
	}
	b.errs.byIngress[key] = be
	return be
}

// withFallback returns the backend a path of an Ingress with a
// default-backend annotation uses: a backend of its own that carries the
// path's Service endpoints, or, while that Service has none, the
// default-backend's. Only the pushed endpoints differ between the two
// states, so a Service that loses or regains its endpoints never reloads
// nginx. The name keeps the Service's "namespace/service:" prefix and
// ":port" suffix, which the log variables $service_name and $service_port
// read.
func (b *builder) withFallback(ing *networkingv1.Ingress, backend string) string {
	fb := b.defaultBackendAnnotation(ing)
	orig := b.backends[backend]
	if fb == "" || fb == backend || orig == nil {
		return backend
	}
	ns, rest, _ := strings.Cut(backend, "/")
	svc, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		svc, port = rest[:i], rest[i+1:]
	}
	name := ns + "/" + svc + ":[default-backend " + fb + "]:" + port
	if _, done := b.backends[name]; done {
		return name
	}
	be := *orig
	be.Name = name
	be.Canaries = nil
	be.Endpoints = fallbackEndpoints(orig.Endpoints, b.backends[fb].Endpoints)
	b.backends[name] = &be
	b.sources[name] = endpointSource{fallbackOf: backend, fallbackTo: fb}
	return name
}

// fallbackEndpoints are the endpoints of a default-backend fallback: the
// path's own while it has some, else the default-backend's.
func fallbackEndpoints(own, fallback []Endpoint) []Endpoint {
	if len(own) == 0 {
		own = fallback
	}
	return append([]Endpoint{}, own...)
}

// finishErrors gives every location its custom error pages: the codes of
// its Ingress's annotation, else the ConfigMap's custom-http-errors; sent to
// the Ingress's default-backend, else the global default backend. A
// location that is itself served by that backend does not intercept (it
// would ask itself again).
func (b *builder) finishErrors(servers []Server) {
	global := b.global.CustomHTTPErrors
	for si := range servers {
		for li := range servers[si].Locations {
			l := &servers[si].Locations[li]
			codes := l.Config.Errors.Codes
			if len(codes) == 0 {
				codes = global
			}
			be := l.CustomErrors.Backend
			if be == "" {
				be = b.defaultB
			}
			if len(codes) == 0 || be == "" || be == l.Backend || l.Backend == "" {
				l.CustomErrors = CustomErrors{}
				continue
			}
			l.CustomErrors = CustomErrors{Codes: append([]int(nil), codes...), Backend: be}
		}
	}
}
