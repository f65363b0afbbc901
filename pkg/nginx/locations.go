package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/model"
)

// The directives below are the typed emitters: each takes validated, typed
// values and produces one nginx line. Strings go through Quote or
// QuoteVarFree; numbers and sizes are formatted here; nothing else from a
// user reaches nginx.conf.

// proxyHeaders are the request headers sent to every backend, from the
// ConfigMap's forwarding settings. A location that changes one of them
// repeats them all, because nginx drops inherited proxy_set_header
// directives as soon as a location sets its own. An empty value ("")
// sends nothing, and drops the client's header of that name.
func proxyHeaders(s model.Settings) [][2]string {
	scheme, port, fwdHost := "$scheme", "$server_port", "$tidegate_host"
	if s.UseForwardedHeaders { // global.go: the client's value when it sent one
		scheme, port, fwdHost = "$tidegate_pass_scheme", "$tidegate_pass_port", "$tidegate_pass_host"
	}
	h := [][2]string{
		{"Host", "$tidegate_host"},
		{"Upgrade", "$http_upgrade"},
		{"Connection", "$connection_upgrade"},
		{"X-Real-IP", "$remote_addr"},
		{"X-Forwarded-For", "$tidegate_xff"},
		{"X-Forwarded-Proto", scheme},
		{"X-Forwarded-Host", fwdHost},
		{"X-Forwarded-Port", port},
		{"X-Forwarded-Scheme", scheme},
		{"X-Scheme", scheme},
		{"X-Request-ID", "$request_id"},
		// httpoxy: CGI-style backends read it as their HTTP_PROXY.
		{"Proxy", `""`},
	}
	if !s.UseForwardedHeaders {
		for _, name := range untrustedHeaders {
			h = append(h, [2]string{name, `""`})
		}
	}
	return h
}

// untrustedHeaders are request headers that only a proxy in front may set
// (RFC 7239's Forwarded, Traefik's X-Forwarded-*) or that backends take
// for the request's path (X-Original-URL, X-Rewrite-URL: IIS, Symfony,
// Spring). Unless use-forwarded-headers trusts the clients' forwarding
// headers, they are cleared: a client's value would reach the backend as
// if a proxy had set it, or route it past the paths nginx checked.
var untrustedHeaders = []string{"Forwarded", "X-Forwarded-Prefix", "X-Forwarded-Server",
	"X-Forwarded-Uri", "X-Forwarded-Method", "X-Original-URL", "X-Rewrite-URL"}

// baseHeaderLines are the headers every backend gets (proxyHeaders) for
// a location that sets request headers of its own (lines: the auth
// subrequest, error pages) and so inherits none: those it does not set
// itself, nor names in except. Upgrade and Connection stay out: these
// locations send plain requests.
func (v *view) baseHeaderLines(lines []string, except ...string) []string {
	var out []string
	for _, h := range v.proxyHeaders {
		set := slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "proxy_set_header "+h[0]+" ") })
		if set || h[0] == "Upgrade" || h[0] == "Connection" || slices.Contains(except, h[0]) {
			continue
		}
		out = append(out, fmt.Sprintf("proxy_set_header %s %s;", h[0], h[1]))
	}
	return out
}

// locationLines renders the body of one location.
func locationLines(nl nginxLocation, v *view) ([]string, error) {
	l, c := nl.loc, nl.loc.Config
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }

	backend := `""`
	if l.Backend != "" {
		q, err := QuoteVarFree(l.Backend)
		if err != nil {
			return nil, fmt.Errorf("backend: %w", err)
		}
		backend = q
	}
	add("set $tidegate_backend %s;", backend)
	if c.AccessLogOff {
		// An access_log here replaces every inherited one: the metrics
		// line is declared again so that these requests still count.
		if v.MetricsLog != "" {
			add("access_log %s tidegate_metrics buffer=64k flush=1s;", v.MetricsLog)
		} else {
			add("access_log off;")
		}
	}
	if err := labelLines(l, add); err != nil {
		return nil, err
	}
	if l.HashBy != "" {
		// The one place a user's text is evaluated by nginx: the model
		// allows only variables and [-A-Za-z0-9_./:@|] here.
		key, err := Quote(l.HashBy)
		if err != nil {
			return nil, fmt.Errorf("upstream-hash-by: %w", err)
		}
		add("set $tidegate_hash_key %s;", key)
	}

	if l.AuthDenied {
		// With satisfy any, a password could open what this closes: a
		// refused location never gets it.
		add("deny all;")
	} else if c.Access.SatisfyAny {
		add("satisfy any;")
	}
	if l.AuthFile != "" {
		qr, err := QuoteVarFree(c.Auth.Realm) // annotations.Parse set the default
		if err != nil {
			return nil, fmt.Errorf("auth-realm: %w", err)
		}
		file, err := Quote(filepath.Join(v.authDir, l.AuthFile))
		if err != nil {
			return nil, fmt.Errorf("auth file: %w", err)
		}
		add("auth_basic %s;", qr)
		add("auth_basic_user_file %s;", file)
	}
	if c.ExtAuth.URL != "" {
		if err := extAuthLines(c.ExtAuth, l.AuthProxyHeaders, v, add); err != nil { // extauth.go
			return nil, err
		}
	}
	if c.Mirror.Target != "" {
		if err := mirrorLines(c.Mirror, v, add); err != nil { // mirror.go
			return nil, err
		}
	}
	for _, p := range c.Access.Deny {
		add("deny %s;", p.String())
	}
	if len(c.Access.Allow) > 0 {
		for _, p := range c.Access.Allow {
			add("allow %s;", p.String())
		}
		add("deny all;")
	}
	if l.SSLRedirect {
		add(`if ($https = "") {`)
		add("    return 308 %s$request_uri;", v.RedirectPrefix)
		add("}")
	}
	if err := clientAuthLocationLines(nl.clientAuth, add); err != nil { // clientauth.go
		return nil, err
	}
	if c.Redirect.URL != "" {
		u, err := Quote(c.Redirect.URL)
		if err != nil {
			return nil, fmt.Errorf("redirect: %w", err)
		}
		add("return %d %s;", c.Redirect.Code, u)
	}
	if c.Redirect.AppRoot != "" {
		// The path itself may not read a variable; the prefix does.
		if _, err := QuoteVarFree(c.Redirect.AppRoot); err != nil {
			return nil, fmt.Errorf("app-root: %w", err)
		}
		target, err := Quote("$scheme://$tidegate_host" + c.Redirect.AppRoot)
		if err != nil {
			return nil, fmt.Errorf("app-root: %w", err)
		}
		add(`if ($uri = "/") {`)
		add("    return 302 %s;", target)
		add("}")
	}
	if c.Rewrite.Target != "" && nl.modifier == "~* " {
		pattern, err := Quote("(?i)^" + l.Path)
		if err != nil {
			return nil, fmt.Errorf("rewrite: %w", err)
		}
		target, err := Quote(c.Rewrite.Target)
		if err != nil {
			return nil, fmt.Errorf("rewrite-target: %w", err)
		}
		add("rewrite %s %s break;", pattern, target)
	}
	rateLines(c.RateLimit, l.Ingress, v, add)
	if err := proxyLines(c, add); err != nil {
		return nil, err
	}
	if err := headerLines(c, v.proxyHeaders, clientAuthHeaders(nl.clientAuth), add); err != nil {
		return nil, err
	}
	if err := responseHeaderLines(l, add); err != nil { // snippets.go
		return nil, err
	}
	if c.CORS.Enabled {
		if err := corsLines(c.CORS, add); err != nil {
			return nil, err
		}
	}
	if l.Backend == "" {
		add("return 404;")
		return out, nil
	}
	grpc := c.Proxy.Protocol == "GRPC" || c.Proxy.Protocol == "GRPCS"
	if err := errorPageLines(l, grpc, c.ExtAuth.Signin != "", v, add); err != nil { // errorpages.go
		return nil, err
	}
	// $tidegate_scheme tells the balancer which of the 503 server's sockets
	// speaks this location's protocol when the backend has no endpoint.
	if err := backendSNILines(c.Proxy, add); err != nil {
		return nil, err
	}
	upstream, err := backendTLSLines(l, c, v, add) // backendtls.go
	if err != nil {
		return nil, err
	}
	switch c.Proxy.Protocol {
	case "HTTPS":
		add("set $tidegate_scheme https;")
		add("proxy_pass https://%s;", upstream)
	case "GRPC":
		add("set $tidegate_scheme grpc;")
		add("grpc_pass grpc://%s;", upstream)
	case "GRPCS":
		add("set $tidegate_scheme grpcs;")
		add("grpc_pass grpcs://%s;", upstream)
	default:
		add("proxy_pass http://%s;", upstream)
	}
	return out, nil
}

// backendSNILines sends SNI to an HTTPS or GRPCS backend
// (proxy-ssl-server-name, proxy-ssl-name). nginx would send the name of
// the upstream block, tidegate_upstream; the default here is the Host
// header the backend gets (upstream-vhost, else the client's).
func backendSNILines(p annotations.Proxy, add func(string, ...any)) error {
	prefix := map[string]string{"HTTPS": "proxy", "GRPCS": "grpc"}[p.Protocol]
	if prefix == "" || p.SSLServerName == "" {
		return nil
	}
	add("%s_ssl_server_name %s;", prefix, p.SSLServerName)
	if p.SSLServerName != "on" {
		return nil
	}
	name := "$host"
	if v := p.SSLName; v != "" || p.UpstreamVhost != "" {
		if v == "" {
			v, _, _ = strings.Cut(p.UpstreamVhost, ":")
		}
		q, err := QuoteVarFree(v)
		if err != nil {
			return fmt.Errorf("proxy-ssl-name: %w", err)
		}
		name = q
	}
	add("%s_ssl_name %s;", prefix, name)
	return nil
}

func proxyLines(c annotations.Config, add func(string, ...any)) error {
	p := c.Proxy
	switch {
	case p.RedirectFrom == "off" || p.RedirectFrom == "default":
		add("proxy_redirect %s;", p.RedirectFrom)
	case p.RedirectFrom != "" && p.RedirectTo != "":
		from, err := QuoteVarFree(p.RedirectFrom)
		if err != nil {
			return fmt.Errorf("proxy-redirect-from: %w", err)
		}
		to, err := Quote(p.RedirectTo) // variables checked by the annotation
		if err != nil {
			return fmt.Errorf("proxy-redirect-to: %w", err)
		}
		add("proxy_redirect %s %s;", from, to)
	}
	if p.BodySize != "" {
		add("client_max_body_size %s;", p.BodySize)
	}
	if p.ClientBodyBuffer != "" {
		add("client_body_buffer_size %s;", p.ClientBodyBuffer)
	}
	for _, t := range []struct {
		name string
		v    int
	}{{"proxy_connect_timeout", p.ConnectTimeout}, {"proxy_send_timeout", p.SendTimeout}, {"proxy_read_timeout", p.ReadTimeout}, {"proxy_next_upstream_timeout", p.NextUpstreamTimeout}} {
		if t.v > 0 {
			add("%s %ds;", t.name, t.v)
		}
	}
	if p.Buffering != "" {
		add("proxy_buffering %s;", p.Buffering)
	}
	if p.BufferSize != "" {
		// As ingress-nginx does: the buffers grow with the header buffer,
		// or nginx refuses a proxy_busy_buffers_size (2 x the buffer size)
		// larger than all buffers but one.
		add("proxy_buffer_size %s;", p.BufferSize)
		add("proxy_buffers 4 %s;", p.BufferSize)
	}
	if p.RequestBuffering != "" {
		add("proxy_request_buffering %s;", p.RequestBuffering)
	}
	if p.HTTPVersion != "" {
		add("proxy_http_version %s;", p.HTTPVersion)
	}
	if len(p.NextUpstream) > 0 {
		add("proxy_next_upstream %s;", strings.Join(p.NextUpstream, " "))
	}
	if p.NextUpstreamTries > 0 {
		add("proxy_next_upstream_tries %d;", p.NextUpstreamTries)
	}
	return nil
}

// headerLines re-emits the proxy headers (base) when an annotation changes
// one or adds one (more: the client certificate's, clientauth.go).
func headerLines(c annotations.Config, base, more [][2]string, add func(string, ...any)) error {
	p := c.Proxy
	authHeaders := authResponseHeaders(c.ExtAuth)      // extauth.go
	snippet, overridden, err := snippetProxyHeaders(c) // snippets.go
	if err != nil {
		return err
	}
	if p.UpstreamVhost == "" && p.ConnectionHeader == "" && c.Rewrite.ForwardedPrefix == "" && len(authHeaders) == 0 && len(snippet) == 0 && len(more) == 0 {
		return nil
	}
	set := "proxy_set_header"
	if p.Protocol == "GRPC" || p.Protocol == "GRPCS" {
		set = "grpc_set_header"
	}
	for _, h := range base {
		if set == "grpc_set_header" && (h[0] == "Upgrade" || h[0] == "Connection") {
			continue // hop-by-hop headers do not exist in HTTP/2
		}
		if set == "proxy_set_header" && overridden[strings.ToLower(h[0])] {
			continue // the configuration-snippet sets it
		}
		if h[0] == "X-Forwarded-Prefix" && c.Rewrite.ForwardedPrefix != "" {
			continue // set below
		}
		val := h[1]
		switch {
		case h[0] == "Host" && p.UpstreamVhost != "":
			q, err := QuoteVarFree(p.UpstreamVhost)
			if err != nil {
				return fmt.Errorf("upstream-vhost: %w", err)
			}
			val = q
		case h[0] == "Connection" && p.ConnectionHeader != "":
			q, err := QuoteVarFree(p.ConnectionHeader)
			if err != nil {
				return fmt.Errorf("connection-proxy-header: %w", err)
			}
			val = q
		}
		add("%s %s %s;", set, h[0], val)
	}
	if c.Rewrite.ForwardedPrefix != "" {
		q, err := QuoteVarFree(c.Rewrite.ForwardedPrefix)
		if err != nil {
			return fmt.Errorf("x-forwarded-prefix: %w", err)
		}
		add("%s X-Forwarded-Prefix %s;", set, q)
	}
	for _, h := range append(authHeaders, more...) {
		add("%s %s %s;", set, h[0], h[1])
	}
	for _, line := range snippet {
		add("%s", line)
	}
	return nil
}

// corsLines answers preflights in nginx and adds the CORS headers to other
// answers, for allowed origins only. cors has its defaults (annotations.Parse).
func corsLines(cors annotations.CORS, add func(string, ...any)) error {
	wildcard := false
	var alts []string
	for _, o := range cors.Origins {
		if o == "*" {
			wildcard = true
			continue
		}
		// scheme://*.host:port → one label, case-insensitive match of the
		// whole origin.
		re := regexp.QuoteMeta(o)
		re = strings.Replace(re, `://\*\.`, `://[^.]+\.`, 1)
		alts = append(alts, re)
	}
	allowOrigin := "$http_origin"
	add(`set $tidegate_cors "";`)
	if wildcard {
		allowOrigin = `"*"`
		add(`if ($http_origin != "") {`)
		add(`    set $tidegate_cors "1";`)
		add("}")
	} else {
		pat, err := Quote("^(" + strings.Join(alts, "|") + ")$")
		if err != nil {
			return fmt.Errorf("cors-allow-origin: %w", err)
		}
		add("if ($http_origin ~* %s) {", pat)
		add(`    set $tidegate_cors "1";`)
		add("}")
	}
	add(`if ($request_method = "OPTIONS") {`)
	add(`    set $tidegate_cors "${tidegate_cors}o";`)
	add("}")
	headers := func(indent string) error {
		add("%sadd_header Access-Control-Allow-Origin %s always;", indent, allowOrigin)
		if !wildcard {
			add("%sadd_header Vary Origin always;", indent)
		}
		if cors.Credentials {
			add(`%sadd_header Access-Control-Allow-Credentials "true" always;`, indent)
		}
		for _, h := range [][2]string{{"Access-Control-Allow-Methods", cors.Methods}, {"Access-Control-Allow-Headers", cors.Headers}, {"Access-Control-Expose-Headers", cors.Expose}} {
			if h[1] == "" {
				continue
			}
			q, err := QuoteVarFree(h[1])
			if err != nil {
				return fmt.Errorf("cors: %w", err)
			}
			add("%sadd_header %s %s always;", indent, h[0], q)
		}
		return nil
	}
	add(`if ($tidegate_cors = "1o") {`)
	if err := headers("    "); err != nil {
		return err
	}
	add("    add_header Access-Control-Max-Age %d;", cors.MaxAge)
	add(`    add_header Content-Type "text/plain; charset=utf-8";`)
	add(`    add_header Content-Length 0;`)
	add("    return 204;")
	add("}")
	add(`if ($tidegate_cors = "1") {`)
	if err := headers("    "); err != nil {
		return err
	}
	add("}")
	return nil
}

// rateLines emits limit_req/limit_conn for a location and registers the
// zones they need at http level (one set per Ingress and settings).
func rateLines(r annotations.RateLimit, ingress string, v *view, add func(string, ...any)) {
	if r.RPS == 0 && r.RPM == 0 && r.Connections == 0 {
		return
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%d|%d|%v", ingress, r.RPS, r.RPM, r.Connections, r.Whitelist)))
	id := hex.EncodeToString(sum[:6])
	key := "$binary_remote_addr"
	if len(r.Whitelist) > 0 {
		var geo strings.Builder
		geo.WriteString("geo $tidegate_rlwl_" + id + " { default 0;")
		for _, p := range r.Whitelist {
			geo.WriteString(" " + p.String() + " 1;")
		}
		geo.WriteString(" }")
		v.zone(geo.String())
		v.zone("map $tidegate_rlwl_" + id + " $tidegate_rlkey_" + id + ` { 0 $binary_remote_addr; 1 ""; }`)
		key = "$tidegate_rlkey_" + id
	}
	burst := r.BurstMultiplier
	if burst < 1 {
		burst = 5
	}
	if r.RPS > 0 {
		v.zone(fmt.Sprintf("limit_req_zone %s zone=tidegate_rps_%s:5m rate=%dr/s;", key, id, r.RPS))
		add("limit_req zone=tidegate_rps_%s burst=%d nodelay;", id, r.RPS*burst)
	}
	if r.RPM > 0 {
		v.zone(fmt.Sprintf("limit_req_zone %s zone=tidegate_rpm_%s:5m rate=%dr/m;", key, id, r.RPM))
		add("limit_req zone=tidegate_rpm_%s burst=%d nodelay;", id, r.RPM*burst)
	}
	if r.Connections > 0 {
		v.zone(fmt.Sprintf("limit_conn_zone %s zone=tidegate_conn_%s:5m;", key, id))
		add("limit_conn tidegate_conn_%s %d;", id, r.Connections)
	}
}

// zone records an http-level line once.
func (v *view) zone(line string) {
	if v.zoneSeen == nil {
		v.zoneSeen = map[string]bool{}
	}
	if !v.zoneSeen[line] {
		v.zoneSeen[line] = true
		v.HTTPLines = append(v.HTTPLines, line)
	}
}

// sortHTTPLines keeps http-level lines deterministic.
func (v *view) sortHTTPLines() { sort.Strings(v.HTTPLines) }

// labelLines name the location for metrics and logs: its Ingress
// ("namespace/name", "" for a fallback location) and its path pattern as
// written in the Ingress, never the request path, so the number of label
// values is bounded by the configuration.
func labelLines(l *model.Location, add func(string, ...any)) error {
	ing, err := QuoteVarFree(l.Ingress)
	if err != nil {
		return fmt.Errorf("ingress name: %w", err)
	}
	add("set $tidegate_ingress %s;", ing)
	path, err := quoteLiteral(l.Path)
	if err != nil {
		return fmt.Errorf("path label: %w", err)
	}
	add("set $tidegate_path %s;", path)
	return nil
}

// quoteLiteral quotes s for a directive that expands variables, keeping
// any '$' literal: it reads the $tidegate_dollar variable (nginx.tmpl),
// whose value is "$". Regex paths ("/v1(/|$)(.*)") need it.
func quoteLiteral(s string) (string, error) {
	return Quote(strings.ReplaceAll(s, "$", "${tidegate_dollar}"))
}
