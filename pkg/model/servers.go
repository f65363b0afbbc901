package model

import (
	"fmt"
	"sort"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// serverBuilder collects the locations of one host while Ingresses are
// merged, oldest first.
type serverBuilder struct {
	host    string
	aliases []string
	tls     bool
	// locations are in the order added; index finds them by key once
	// there are many (a host has one or two paths as a rule).
	locations []Location
	index     map[locKey]int
	// fallback is the backend for "/" from the oldest Ingress with a
	// spec.defaultBackend that has rules for this host.
	fallback        string
	fallbackIngress string
	// clientAuth is set by the oldest Ingress with auth-tls-secret
	// (clientauth.go).
	clientAuth *ClientAuth
}

// locKey identifies a location in nginx: two paths with the same key would
// be the same nginx location, so only the oldest Ingress gets it.
type locKey struct {
	path  string
	match MatchKind
}

func (b *builder) serverFor(host string) *serverBuilder {
	s := b.servers[host]
	if s == nil {
		s = &serverBuilder{host: host}
		b.servers[host] = s
	}
	return s
}

// location is the location of key, or nil. The pointer is good until the
// next add.
func (s *serverBuilder) location(key locKey) *Location {
	if s.index != nil {
		if i, ok := s.index[key]; ok {
			return &s.locations[i]
		}
		return nil
	}
	for i := range s.locations {
		if l := &s.locations[i]; l.Path == key.path && l.Match == key.match {
			return l
		}
	}
	return nil
}

const indexLocationsAbove = 8

func (s *serverBuilder) add(l Location) {
	s.locations = append(s.locations, l)
	switch n := len(s.locations); {
	case s.index != nil:
		s.index[locKey{path: l.Path, match: l.Match}] = n - 1
	case n > indexLocationsAbove:
		s.index = make(map[locKey]int, 2*n)
		for i, l := range s.locations {
			s.index[locKey{path: l.Path, match: l.Match}] = i
		}
	}
}

// addIngress merges one Ingress into the servers. Bad parts are reported
// and skipped; the rest of the Ingress still applies.
func (b *builder) addIngress(ing *networkingv1.Ingress) {
	key := ingressKey(ing)
	tlsHosts := b.addTLS(ing)

	var fallback string
	if db := ing.Spec.DefaultBackend; db != nil {
		name, err := b.backendFor(ing, db, "spec.defaultBackend")
		if err == nil {
			fallback = name
			if b.defaultB == "" {
				b.defaultB = name
			}
		}
	}

	for ri, rule := range ing.Spec.Rules {
		host := lower(rule.Host)
		field := fmt.Sprintf("spec.rules[%d]", ri)
		if host != "" {
			if err := validateHost(host); err != nil {
				b.report(Problem{Kind: "Ingress", Object: key, Field: field + ".host", Reason: err.Error() + "; the rule is skipped"})
				continue
			}
		}
		srv := b.serverFor(host)
		if tlsHosts[host] {
			srv.tls = true
		}
		if host != "" {
			b.addNames(ing, srv)
		}
		b.addClientAuth(ing, srv) // clientauth.go
		if fallback != "" && srv.fallback == "" {
			srv.fallback, srv.fallbackIngress = fallback, key
		}
		if rule.HTTP == nil {
			continue
		}
		for pi, p := range rule.HTTP.Paths {
			pfield := fmt.Sprintf("%s.http.paths[%d]", field, pi)
			b.addPath(ing, srv, p, pfield)
		}
	}
	// TLS hosts without a rule still get a server, so their certificate and
	// redirect apply and the default backend answers.
	for h := range tlsHosts {
		if h == "" {
			continue
		}
		srv := b.serverFor(h)
		srv.tls = true
		if fallback != "" && srv.fallback == "" {
			srv.fallback, srv.fallbackIngress = fallback, key
		}
	}
}

func (b *builder) addPath(ing *networkingv1.Ingress, srv *serverBuilder, p networkingv1.HTTPIngressPath, field string) {
	key := ingressKey(ing)
	path := p.Path
	if path == "" {
		path = "/"
	}
	regex := b.regexHosts[srv.host] && (p.PathType == nil || *p.PathType != networkingv1.PathTypeExact)
	validate := validatePath
	if regex {
		validate = annotations.ValidRegex
	}
	if err := validate(path); err != nil {
		b.report(Problem{Kind: "Ingress", Object: key, Field: field + ".path", Reason: err.Error() + "; the path is skipped"})
		return
	}
	match := MatchString
	if p.PathType != nil {
		switch *p.PathType {
		case networkingv1.PathTypeExact:
			match = MatchExact
		case networkingv1.PathTypePrefix:
			match = MatchPrefix
			// "/foo/" and "/foo" are the same Prefix path (element-wise).
			if len(path) > 1 {
				path = strings.TrimRight(path, "/")
				if path == "" {
					path = "/"
				}
			}
		case networkingv1.PathTypeImplementationSpecific:
		default:
			b.report(Problem{Kind: "Ingress", Object: key, Field: field + ".pathType", Reason: fmt.Sprintf("unknown pathType %q; use Exact, Prefix or ImplementationSpecific", *p.PathType)})
			return
		}
	}
	if regex {
		match = MatchRegex
		path = p.Path
		if t := b.anns[key].Rewrite.Target; t != "" {
			if err := annotations.CheckRewrite(path, t); err != nil {
				b.report(Problem{Kind: "Ingress", Object: key, Field: field + ".path", Reason: err.Error() + "; the path is skipped"})
				return
			}
		}
	}
	lk := locKey{path: path, match: match}
	if b.dataPlane(ing).Canary.Enabled { // canary.go: a canary Ingress adds no location
		b.deferCanary(ing, srv, lk, p.Backend, field)
		return
	}
	if owner := srv.location(lk); owner != nil {
		who := "the older Ingress " + owner.Ingress
		if owner.Ingress == key {
			who = "an earlier rule of this Ingress"
		}
		b.report(Problem{Kind: "Ingress", Object: key, Field: field,
			Reason: fmt.Sprintf("host %q path %q (%s) is already served by %s; this path is ignored", displayHost(srv.host), path, match, who)})
		return
	}
	backend, err := b.backendFor(ing, &p.Backend, field+".backend")
	if err != nil {
		return
	}
	bal, _ := balancingOf(b.dataPlane(ing).Balancing, b.defaultAlgorithm())
	loc := Location{Path: path, Match: match, Backend: b.withFallback(ing, backend), Ingress: key, Config: b.anns[key], HashBy: bal.HashBy}
	loc.CustomErrors.Backend = b.defaultBackendAnnotation(ing) // errors.go
	// extauth.go: a refused auth-* value fails closed.
	if keys, refused := b.extAuthRefused(key); refused {
		b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations",
			Reason: "external authentication (" + keys + ") was refused; requests to " + path + " are refused (403) until it is fixed"})
		loc.AuthDenied = true
	}
	if loc.Config.ExtAuth.URL != "" && !loc.AuthDenied {
		h, err := b.authProxyHeaders(ing) // headers.go
		if err != nil {
			b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations[" + annotations.Prefix + "auth-proxy-set-headers]", Warning: isNotFound(err),
				Reason: err.Error() + "; requests to " + path + " are refused (403) until it is fixed"})
			loc.AuthDenied = true
		}
		loc.AuthProxyHeaders = h
	}
	if ps := loc.Config.ProxySSL; ps.Verify && ps.Secret == "" {
		b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations[" + annotations.Prefix + "proxy-ssl-verify]",
			Reason: "proxy-ssl-verify needs proxy-ssl-secret with the CAs in ca.crt; requests to " + path + " are refused (403) until it is set"})
		loc.AuthDenied = true
	} else if ps.Secret != "" {
		t, err := b.backendTLS(ing, ps.Secret, ps.Verify) // backendtls.go
		if err != nil {
			b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations[" + annotations.Prefix + "proxy-ssl-secret]", Warning: isNotFound(err),
				Reason: err.Error() + "; requests to " + path + " are refused (403) until it is fixed"})
			loc.AuthDenied = true
		}
		loc.BackendTLS = t
	}
	loc.ResponseHeaders = b.customHeaders(ing) // headers.go
	if loc.Config.Auth.Basic {
		id, err := b.authFile(ing, loc.Config.Auth)
		if err != nil {
			b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations[" + annotations.Prefix + "auth-secret]", Warning: isNotFound(err),
				Reason: err.Error() + "; requests to " + path + " are refused (403) until it is fixed"})
			loc.AuthDenied = true
		}
		loc.AuthFile = id
	}
	srv.add(loc)
}

func displayHost(h string) string {
	if h == "" {
		return "*"
	}
	return h
}

// server freezes the builder into a sorted Server. Every server gets a
// fallback "/" location (a Prefix "/" that the rules did not define): the
// Ingress defaultBackend, else the global default backend, else 404.
func (s *serverBuilder) server(globalDefault string, sslRedirect, forceSSLRedirect bool) Server {
	fallback := s.location(locKey{path: "/", match: MatchPrefix}) == nil && s.location(locKey{path: "/", match: MatchString}) == nil
	// The builder is done with its locations: they become the server's.
	out := Server{Host: s.host, TLS: s.tls, Aliases: s.aliases, Locations: s.locations, ClientAuth: s.clientAuth}
	s.locations, s.index = nil, nil
	redirect := func(c annotations.Config) bool {
		on, force := sslRedirect, forceSSLRedirect
		if c.Redirect.SSLRedirect != nil {
			on = *c.Redirect.SSLRedirect
		}
		if c.Redirect.ForceSSLRedirect != nil {
			force = *c.Redirect.ForceSSLRedirect
		}
		return (s.tls && on) || force
	}
	for i := range out.Locations {
		out.Locations[i].SSLRedirect = redirect(out.Locations[i].Config)
	}
	if fallback {
		fb := Location{Path: "/", Match: MatchPrefix, Backend: s.fallback, Ingress: s.fallbackIngress, SSLRedirect: redirect(annotations.Config{})}
		if fb.Backend == "" {
			fb.Backend = globalDefault
		}
		out.Locations = append(out.Locations, fb)
	}
	if out.ClientAuth != nil && out.ClientAuth.Denied {
		for i := range out.Locations {
			out.Locations[i].AuthDenied = true
		}
	}
	sort.Slice(out.Locations, func(i, j int) bool {
		a, c := &out.Locations[i], &out.Locations[j]
		if a.Path != c.Path {
			return a.Path < c.Path
		}
		return a.Match < c.Match
	})
	return out
}

// addNames records the server-alias names and the from-to-www-redirect of
// an Ingress for one of its hosts; conflicts are settled in finishNames.
func (b *builder) addNames(ing *networkingv1.Ingress, srv *serverBuilder) {
	key := ingressKey(ing)
	cfg := b.anns[key].Server
	for _, a := range cfg.Aliases {
		if err := validateHost(a); err != nil {
			b.report(Problem{Kind: "Ingress", Object: key, Field: "metadata.annotations[" + annotations.Prefix + "server-alias]", Reason: err.Error() + "; the alias is ignored"})
			continue
		}
		if !contains(srv.aliases, a) {
			srv.aliases = append(srv.aliases, a)
		}
	}
	if cfg.WWWRedirect && !strings.HasPrefix(srv.host, "*.") {
		from := "www." + srv.host
		if strings.HasPrefix(srv.host, "www.") {
			from = strings.TrimPrefix(srv.host, "www.")
		}
		if b.redirects == nil {
			b.redirects = map[string]string{}
		}
		if _, taken := b.redirects[from]; !taken && validateHost(from) == nil {
			b.redirects[from] = srv.host
		}
	}
}

// finishNames drops aliases and redirects whose name a rule serves (a
// real host always wins) or that an older Ingress's server already claimed.
func (b *builder) finishNames(servers []Server) []HostRedirect {
	claimed := map[string]bool{}
	for _, s := range servers {
		claimed[s.Host] = true
	}
	for i := range servers {
		var keep []string
		for _, a := range servers[i].Aliases {
			if claimed[a] {
				b.report(Problem{Kind: "Server", Object: servers[i].Host, Field: "server-alias",
					Reason: fmt.Sprintf("alias %q is already a host or an alias of another server; it is ignored", a)})
				continue
			}
			claimed[a] = true
			keep = append(keep, a)
		}
		sort.Strings(keep)
		servers[i].Aliases = keep
	}
	var out []HostRedirect
	for from, to := range b.redirects {
		if !claimed[from] {
			out = append(out, HostRedirect{From: from, To: to})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From < out[j].From })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
