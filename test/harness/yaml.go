package harness

import (
	"fmt"
	"strconv"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/tidegate/tidegate/pkg/fixture"
)

// YAML marshals objects (pkg/fixture's, or any API object) as manifest
// documents separated by "---". An unset creation time and an empty status
// are left out, as a hand-written manifest leaves them out: `tidegate
// local` stamps Ingresses it first sees, and kubectl ignores both.
func YAML(objs ...any) (string, error) {
	docs := make([]string, 0, len(objs))
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			return "", fmt.Errorf("marshal %T: %w", o, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return "", fmt.Errorf("marshal %T: %w", o, err)
		}
		if meta, ok := m["metadata"].(map[string]any); ok && meta["creationTimestamp"] == nil {
			delete(meta, "creationTimestamp")
		}
		if st, ok := m["status"].(map[string]any); ok && emptyStatus(st) {
			delete(m, "status")
		}
		if b, err = yaml.Marshal(m); err != nil {
			return "", fmt.Errorf("marshal %T: %w", o, err)
		}
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "---\n"), nil
}

// emptyStatus is true when every value of a status is an empty map.
func emptyStatus(st map[string]any) bool {
	for _, v := range st {
		if m, ok := v.(map[string]any); !ok || !emptyStatus(m) {
			return false
		}
	}
	return true
}

// mustYAML is YAML for objects built here, which always marshal.
func mustYAML(objs ...any) string {
	s, err := YAML(objs...)
	if err != nil {
		panic(err) // a fixture object that does not marshal is a bug here
	}
	return s
}

// unplaced clears what fixture sets and a hand-written manifest leaves to
// its reader: the namespace (`kubectl apply -n` sets it, `tidegate local`
// defaults it) and the creation time.
func unplaced(m *metav1.ObjectMeta) {
	m.Namespace = ""
	m.CreationTimestamp = metav1.Time{}
}

// ServiceYAML is a Service with one unnamed port.
func ServiceYAML(name string, port int) string {
	svc := fixture.Service(name, strconv.Itoa(port))
	unplaced(&svc.ObjectMeta)
	return mustYAML(svc)
}

// SliceYAML is an EndpointSlice for service svc with ready and draining
// (serving, terminating) endpoints.
func SliceYAML(name, svc string, port int, ready []string, draining ...string) string {
	s := fixture.Slice(name, svc, strconv.Itoa(port)).Ready(ready...).Draining(draining...)
	unplaced(&s.ObjectMeta)
	if s.Endpoints == nil {
		s.Endpoints = []discoveryv1.Endpoint{}
	}
	return mustYAML(s.EndpointSlice)
}

// HostSliceYAML is an EndpointSlice of service svc with the backends as
// ready endpoints (all must share a port: a slice has one port list).
func HostSliceYAML(name, svc string, bs ...HostBackend) string {
	var ips []string
	for _, b := range bs {
		ips = append(ips, b.IP)
	}
	return SliceYAML(name, svc, bs[0].Port, ips)
}

// IngressYAML is an Ingress of class tidegate with one host and paths
// given as "Prefix /a svc:80".
func IngressYAML(name, host string, paths ...string) string {
	ing := fixture.Ingress(name).Host(host)
	for _, p := range paths {
		f := strings.Fields(p)
		ing.Path(networkingv1.PathType(f[0]), f[1], f[2])
	}
	unplaced(&ing.ObjectMeta)
	return mustYAML(ing.Ingress)
}

// WithTLS adds spec.tls for host with secret to an IngressYAML document.
func WithTLS(doc, host, secret string) string {
	return strings.Replace(doc, "  rules:\n", fmt.Sprintf("  tls:\n  - hosts: [%q]\n    secretName: %s\n  rules:\n", host, secret), 1)
}
