// Package model translates a snapshot of Kubernetes objects into what nginx
// needs: a Structure (rendered into nginx.conf, changes reload nginx) and a
// Dynamic part (pushed as JSON to Lua, changes never reload). Build is a pure
// function: the same snapshot always yields the same, sorted model.
package model

import (
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// Model is the whole translation of one snapshot.
type Model struct {
	Structure Structure
	Dynamic   Dynamic
	// Problems lists every object (or part of one) that was skipped, and why.
	Problems []Problem
	// Compat is the annotation compatibility report per Ingress
	// ("namespace/name"), for Ingresses of this controller's class.
	Compat map[string][]annotations.Entry

	// opts and sources let Update recompute endpoints alone
	// (incremental.go): the options the model was built with, and where
	// the endpoints of each backend came from, by backend name.
	opts    Options
	sources map[string]endpointSource
	// parsed is the Ingresses' parsed annotations, for the next Build.
	parsed map[*networkingv1.Ingress]*parsedAnnotations
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
	// AuthFiles are the files locations and servers refer to (htpasswd,
	// client certificate CAs and CRLs), sorted by name.
	AuthFiles []AuthFile
	// Redirects are host names answered with a 308 to another host
	// (from-to-www-redirect), sorted by From.
	Redirects []HostRedirect
	// LogPhase puts the Lua log phase in nginx.conf: true while some
	// backend needs the outcome of every request (ewma latencies, ejection
	// on 5xx). Without it a proxied request runs one Lua phase, the
	// balancer. Switching it is the one part of a backend's balancing that
	// reloads.
	LogPhase bool
}

// HostRedirect sends every request for From to the same URI on To.
type HostRedirect struct {
	From, To string
}

// Server is one virtual host.
type Server struct {
	// Host is the lower-case host name, either exact ("a.b.c") or a
	// one-label wildcard ("*.b.c").
	Host string
	// TLS is true when an Ingress lists the host under spec.tls.
	TLS bool
	// Aliases are more names served exactly like Host (server-alias).
	Aliases []string
	// Locations are sorted by (Path, Match).
	Locations []Location
	// Snippet holds the checked server-snippet directives of the oldest
	// Ingress of the host that has one (snippets.go).
	Snippet []annotations.Directive
	// ClientAuth is the host's client certificate authentication, nil
	// without (clientauth.go).
	ClientAuth *ClientAuth
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
	// AuthFile is the name of the htpasswd file that guards the location
	// (auth-type: basic); AuthDenied refuses every request (403) because the
	// location asks for authentication but its Secret is unusable.
	AuthFile   string
	AuthDenied bool
	// HashBy is the nginx expression consistent hashing keys on
	// (upstream-hash-by), evaluated per request in the location.
	HashBy string
	// CustomErrors are the custom error pages (errors.go).
	CustomErrors CustomErrors
	// ResponseHeaders are added to every answer (custom-headers), sorted
	// by name (headers.go).
	ResponseHeaders []Header
	// AuthProxyHeaders are sent to the auth service (auth-proxy-set-headers).
	AuthProxyHeaders []Header
	// BackendTLS are the files of proxy-ssl-secret, nil without.
	BackendTLS *BackendTLS
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
	// Affinity makes sessions sticky with a cookie; nil means none.
	Affinity *Affinity `json:"affinity,omitempty"`
	// Canaries are other backends that take part of this backend's traffic
	// (canary Ingresses for the same host and path), sorted by Backend.
	Canaries []Canary `json:"canaries,omitempty"`
	// Ejection tunes passive outlier ejection; nil means the Lua defaults
	// (DefaultEjection).
	Ejection *Ejection `json:"ejection,omitempty"`
}

// The balancing algorithms of Backend.Algorithm.
const (
	// AlgorithmRoundRobin is smooth weighted round robin.
	AlgorithmRoundRobin = "round_robin"
	// AlgorithmEWMA is peak-EWMA latency with power-of-two choices.
	AlgorithmEWMA = "ewma"
	// AlgorithmCHash is consistent hashing of the location's
	// $tidegate_hash_key (upstream-hash-by).
	AlgorithmCHash = "chash"
)

// The affinity modes of Affinity.Mode.
const (
	// AffinityBalanced cookies hold a key on a hash ring: a scale-up moves
	// about 1/(N+1) of the sessions to the new endpoints.
	AffinityBalanced = "balanced"
	// AffinityPersistent cookies name an endpoint: sessions stay on it for
	// as long as it exists (ready or draining).
	AffinityPersistent = "persistent"
)

// Affinity is cookie-based session affinity (affinity: cookie and the
// session-cookie-* annotations).
type Affinity struct {
	// Mode is AffinityBalanced (the default) or AffinityPersistent.
	Mode string `json:"mode"`
	// Name is the cookie name, INGRESSCOOKIE by default.
	Name string `json:"name"`
	// Path, Domain and SameSite ("None", "Lax", "Strict") are cookie
	// attributes; empty Path means "/", empty others are left out.
	Path     string `json:"path,omitempty"`
	Domain   string `json:"domain,omitempty"`
	SameSite string `json:"samesite,omitempty"`
	// Secure marks the cookie Secure even on plain HTTP (it always is on
	// HTTPS and with SameSite=None).
	Secure bool `json:"secure,omitempty"`
	// MaxAge and Expires are seconds from now; 0 leaves them out (a
	// session cookie).
	MaxAge  int `json:"max_age,omitempty"`
	Expires int `json:"expires,omitempty"`
	// ChangeOnFailure re-points the cookie at the endpoint that answered
	// when the sticky one failed; otherwise the cookie is kept.
	ChangeOnFailure bool `json:"change_on_failure,omitempty"`
}

// Canary routes part of a backend's traffic to another backend. The rules
// are checked in ingress-nginx's order: header, cookie, weight.
type Canary struct {
	// Backend is the name of the canary backend.
	Backend string `json:"backend"`
	// Header routes requests whose header has HeaderValue, matches
	// HeaderPattern (PCRE), or, when both are empty, is "always" ("never"
	// keeps them off this canary).
	Header        string `json:"header,omitempty"`
	HeaderValue   string `json:"header_value,omitempty"`
	HeaderPattern string `json:"header_pattern,omitempty"`
	// Cookie routes requests whose cookie is "always" ("never" keeps them
	// off this canary).
	Cookie string `json:"cookie,omitempty"`
	// Weight of WeightTotal (100 by default) is the share of the remaining
	// requests the canary gets.
	Weight      int `json:"weight"`
	WeightTotal int `json:"weight_total,omitempty"`
}

// Ejection tunes passive outlier ejection: a peer with Failures failed tries
// within FailureWindowMS of the first (tries nginx gave up on and retried
// elsewhere, as proxy_next_upstream says: by default a connect error or a
// timeout; counted like nginx's own max_fails and fail_timeout), or with
// Consecutive5xx 5xx answers in a row, is ejected for BaseEjectionMS
// (doubling with every ejection in a row, up to MaxEjectionMS) and comes
// back with a linear slow start of SlowStartMS. Zero counts switch a
// trigger off. The last peer, and more than MaxEjectedPercent of them, are
// never ejected. Counters are per nginx worker. Failed tries are counted in
// the balancer; 5xx answers need the log phase (Structure.LogPhase).
type Ejection struct {
	Failures          int `json:"failures"`
	FailureWindowMS   int `json:"failure_window_ms"`
	Consecutive5xx    int `json:"consecutive_5xx"`
	BaseEjectionMS    int `json:"base_ejection_ms"`
	MaxEjectionMS     int `json:"max_ejection_ms"`
	SlowStartMS       int `json:"slow_start_ms"`
	MaxEjectedPercent int `json:"max_ejected_percent"`
}

// DefaultEjection is what Lua applies when a backend carries no Ejection:
// on for connect failures and timeouts (a dead pod costs every request a
// connect attempt, a black-holed one a whole proxy-connect-timeout), off for
// 5xx (an application error is not a sign of a bad endpoint for every
// application). Keep in sync with EJECTION_DEFAULTS in lua/tidegate/schema.lua.
var DefaultEjection = Ejection{
	Failures:          5,
	FailureWindowMS:   10000,
	Consecutive5xx:    0,
	BaseEjectionMS:    10000,
	MaxEjectionMS:     300000,
	SlowStartMS:       10000,
	MaxEjectedPercent: 50,
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
	// Warning marks a problem that may resolve by itself (a Service or
	// Secret that does not exist yet): admission lets such an Ingress in.
	Warning bool
}

func (p Problem) String() string {
	s := p.Kind + " " + p.Object
	if p.Field != "" {
		s += " " + p.Field
	}
	return s + ": " + p.Reason
}
