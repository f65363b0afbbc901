// Package model translates a snapshot of Kubernetes objects into what nginx
// needs: a Structure (rendered into nginx.conf, changes reload nginx) and a
// Dynamic part (pushed as JSON to Lua, changes never reload). Build is a pure
// function: the same snapshot always yields the same, sorted model.
package model

import "github.com/tidegate/tidegate/pkg/annotations"

// Model is the whole translation of one snapshot.
type Model struct {
	Structure Structure
	Dynamic   Dynamic
	// Problems lists every object (or part of one) that was skipped, and why.
	Problems []Problem
	// Compat is the annotation compatibility report per Ingress
	// ("namespace/name"), for Ingresses of this controller's class.
	Compat map[string][]annotations.Entry
}

// Structure is everything that is rendered into nginx.conf.
type Structure struct {
	// Servers are the virtual hosts, sorted by Host.
	Servers []Server
	// DefaultBackend is the backend of the catch-all server; empty means the
	// built-in 404.
	DefaultBackend string
	// Global holds settings from the controller's ConfigMap.
	Global Global
}

// Global holds nginx-wide settings.
type Global struct {
	// WorkerProcesses is "auto" or a number.
	WorkerProcesses string
	// ProxyConnectTimeout, ProxyReadTimeout and ProxySendTimeout are seconds.
	ProxyConnectTimeout int
	ProxyReadTimeout    int
	ProxySendTimeout    int
	// ProxyBodySize is an nginx size ("1m").
	ProxyBodySize string
	// UpstreamKeepalive is the number of idle keepalive connections per worker.
	UpstreamKeepalive int
}

// Server is one virtual host.
type Server struct {
	// Host is the lower-case host name, either exact ("a.b.c") or a
	// one-label wildcard ("*.b.c").
	Host string
	// TLS is true when an Ingress lists the host under spec.tls.
	TLS bool
	// Locations are sorted by (Path, Match).
	Locations []Location
}

// Wildcard reports whether the host is a "*.domain" wildcard.
func (s Server) Wildcard() bool { return len(s.Host) > 2 && s.Host[0] == '*' && s.Host[1] == '.' }

// MatchKind is how a location matches the request path.
type MatchKind string

// The location match kinds. A Prefix path renders as an exact location for
// the path itself plus a prefix location for path + "/" (element-wise
// matching); ImplementationSpecific is a plain nginx string prefix, as in
// ingress-nginx.
const (
	MatchExact  MatchKind = "exact"
	MatchPrefix MatchKind = "prefix"
	MatchString MatchKind = "string"
	// MatchRegex is a case-insensitive regex anchored at the start of the
	// path (use-regex or rewrite-target on an Ingress of the host).
	MatchRegex MatchKind = "regex"
)

// Location is one path of a server.
type Location struct {
	// Path is the normalised path; for MatchPrefix it has no trailing slash
	// except for the root "/".
	Path  string
	Match MatchKind
	// Backend is the name of the Dynamic backend serving this location.
	Backend string
	// Ingress is "namespace/name" of the Ingress that owns the path; empty
	// for the fallback location a server gets when no rule covers "/".
	Ingress string
	// SSLRedirect sends plain-HTTP requests to https with a 308.
	SSLRedirect bool
	// Config holds the location settings from the owning Ingress's
	// annotations.
	Config annotations.Config
}

// Dynamic is everything pushed to Lua. Its JSON is the push schema.
type Dynamic struct {
	Backends     []Backend     `json:"backends"`
	Certificates []Certificate `json:"certificates"`
}

// Backend is a named group of endpoints (one Service port).
type Backend struct {
	// Name is "namespace/service:port" (port by number or name, as written in
	// the Ingress).
	Name string `json:"name"`
	// Algorithm is the balancing algorithm, "round_robin" by default.
	Algorithm string     `json:"algorithm"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one address:port of a backend.
type Endpoint struct {
	Address string `json:"address"`
	Port    int32  `json:"port"`
	// Weight is relative; 1 by default.
	Weight int `json:"weight"`
	// Draining marks a serving-but-terminating endpoint: used only when no
	// ready endpoint is left.
	Draining bool `json:"draining,omitempty"`
}

// Certificate is a TLS key pair and the SNI names it serves.
type Certificate struct {
	// ID is "namespace/secret".
	ID string `json:"id"`
	// Hosts are the SNI names (exact or "*.domain") served with this pair.
	Hosts []string `json:"hosts"`
	// CertPEM and KeyPEM are the PEM blocks from the Secret.
	CertPEM string `json:"cert"`
	KeyPEM  string `json:"key"`
}

// Problem describes an object, or part of one, that tidegate skipped.
type Problem struct {
	// Kind and Object name the Kubernetes object ("Ingress", "ns/name").
	Kind   string
	Object string
	// Field is the path inside the object ("spec.rules[0].http.paths[1].path").
	Field string
	// Reason says what is wrong and what to change.
	Reason string
}

func (p Problem) String() string {
	s := p.Kind + " " + p.Object
	if p.Field != "" {
		s += " " + p.Field
	}
	return s + ": " + p.Reason
}
