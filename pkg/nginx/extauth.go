package nginx

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
	"github.com/tidegate/tidegate/pkg/model"
)

// External authentication (auth-url) uses nginx's auth_request module,
// which Debian's nginx-light carries: the location asks an internal
// location of the same server first, which proxies to the auth URL without
// the request body. A 2xx lets the request through (auth_request_set copies
// the auth-response-headers to the upstream request), 401 and 403 go back
// to the client (a 401 becomes a redirect to auth-signin), anything else,
// the auth service being down included, is a 500: ingress-nginx's
// semantics.
//
// The auth URL is proxied through a variable, as ingress-nginx does: a
// host name is then resolved per request by `resolver` (the controller's
// /etc/resolv.conf name servers, Settings.Resolvers), so a cluster name
// such as auth.ns.svc.cluster.local neither needs DNS when nginx loads the
// configuration nor stays pinned to an old address; an IP address needs no
// resolver at all. Search domains do not apply: write the full name.

// authLocation is the internal location that asks the auth service.
func authLocation(a annotations.ExtAuth, headers []model.Header, v *view) (uri string, lines []string, err error) {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%q|%q|%q|%q|%q|%q", a.URL, a.Method, a.RequestRedirect, headers, a.CacheKey, a.CacheDuration)))
	uri = "/_tidegate_auth_" + hex.EncodeToString(sum[:6])
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	target, err := Quote(a.URL)
	if err != nil {
		return "", nil, fmt.Errorf("auth-url: %w", err)
	}
	add("internal;")
	resolverLines(v, add) // mirror.go
	hostGuard(a.URL, add)
	add("proxy_pass_request_body off;")
	add(`proxy_set_header Content-Length "";`)
	add(`proxy_set_header X-Forwarded-Proto "";`)
	add("proxy_set_header X-Request-ID $request_id;")
	add("proxy_set_header X-Original-URI $request_uri;")
	add("proxy_set_header X-Scheme $scheme;")
	add("proxy_set_header X-Original-URL $scheme://$tidegate_host$request_uri;")
	add("proxy_set_header X-Original-Method $request_method;")
	add(`proxy_set_header X-Sent-From "nginx-ingress-controller";`)
	add("proxy_set_header X-Real-IP $remote_addr;")
	add("proxy_set_header X-Forwarded-For $tidegate_xff;")
	add("proxy_set_header X-Forwarded-Host $tidegate_host;")
	redirect := "$request_uri"
	if a.RequestRedirect != "" {
		if redirect, err = Quote(a.RequestRedirect); err != nil {
			return "", nil, fmt.Errorf("auth-request-redirect: %w", err)
		}
	}
	add("proxy_set_header X-Auth-Request-Redirect %s;", redirect)
	// The headers every backend gets (locations.go); the auth service's
	// Host is its own.
	lines = append(lines, v.baseHeaderLines(lines, "Host")...)
	for _, h := range headers { // auth-proxy-set-headers: literal values
		name, err := Quote(h.Name)
		if err != nil {
			return "", nil, fmt.Errorf("auth-proxy-set-headers: %w", err)
		}
		value, err := quoteLiteral(h.Value)
		if err != nil {
			return "", nil, fmt.Errorf("auth-proxy-set-headers %s: %w", h.Name, err)
		}
		add("proxy_set_header %s %s;", name, value)
	}
	if a.Method != "" {
		add("proxy_method %s;", a.Method)
	}
	add("proxy_ssl_server_name on;")
	if a.CacheKey != "" {
		// auth-cache-key: answers are kept per server and location (the
		// host and this location's name are part of the key). nginx caches
		// only buffered answers.
		if err := authCacheLines(a, uri, v, add); err != nil {
			return "", nil, err
		}
	} else {
		add("proxy_buffering off;")
	}
	add("proxy_intercept_errors off;")
	add("set $tidegate_auth_url %s;", target)
	add("proxy_pass $tidegate_auth_url;")
	return uri, lines, nil
}

// authCacheLines cache an auth location's answers (auth-cache-key,
// auth-cache-duration) in the shared auth cache, declared at http level
// once a location uses it.
func authCacheLines(a annotations.ExtAuth, uri string, v *view, add func(string, ...any)) error {
	dir, err := Quote(v.authCacheDir)
	if err != nil {
		return err
	}
	v.zone("proxy_cache_path " + dir + " levels=1:2 keys_zone=tidegate_auth:10m max_size=128m inactive=30m use_temp_path=off;")
	key, err := Quote("$host" + uri + a.CacheKey) // variables checked by the annotation
	if err != nil {
		return fmt.Errorf("auth-cache-key: %w", err)
	}
	add("proxy_buffering on;")
	add("proxy_cache tidegate_auth;")
	add("proxy_cache_key %s;", key)
	durations := a.CacheDuration
	if len(durations) == 0 {
		durations = annotations.DefaultAuthCacheDuration
	}
	for _, d := range durations {
		add("proxy_cache_valid %s;", d) // codes and a time, checked by the annotation
	}
	return nil
}

// signinLocation is the named location a 401 goes to with auth-signin: a
// 302 to the signin URL carrying the original URL in the redirect
// parameter (unless the signin URL sets it itself), as ingress-nginx builds
// it: rd=$scheme://$host$escaped_request_uri.
func signinLocation(a annotations.ExtAuth) (name string, lines []string, err error) {
	sum := sha256.Sum256([]byte(a.Signin + "|" + a.RedirectParam))
	name = "@tidegate_signin_" + hex.EncodeToString(sum[:6])
	param := annotations.ExtAuthRedirectParam(a)
	u := strings.ReplaceAll(a.Signin, "$escaped_request_uri", "$tidegate_escaped_request_uri")
	if !strings.Contains(a.Signin, param+"=") {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + param + "=$scheme://$tidegate_host$tidegate_escaped_request_uri"
	}
	target, err := Quote(u)
	if err != nil {
		return "", nil, fmt.Errorf("auth-signin: %w", err)
	}
	lines = []string{
		// nginx has no URL-escaping variable; ngx.escape_uri is
		// ingress-nginx's $escaped_request_uri.
		"set_by_lua_block $tidegate_escaped_request_uri { return ngx.escape_uri(ngx.var.request_uri) }",
		"return 302 " + target + ";",
	}
	return name, lines, nil
}

// extAuthLines guards a location with its auth-url and registers the
// internal locations it needs in its server.
func extAuthLines(a annotations.ExtAuth, headers []model.Header, v *view, add func(string, ...any)) error {
	uri, lines, err := authLocation(a, headers, v)
	if err != nil {
		return err
	}
	v.extraLocation("= ", uri, lines)
	add("auth_request %s;", uri)
	for i, h := range a.ResponseHeaders {
		add("auth_request_set $tidegate_auth_h%d $upstream_http_%s;", i, strings.ReplaceAll(strings.ToLower(h), "-", "_"))
	}
	// The auth service's Set-Cookie (an oauth2-proxy session refresh)
	// reaches the client with the answer, as in ingress-nginx: on success
	// answers, or on every answer with auth-always-set-cookie.
	add("auth_request_set $tidegate_auth_cookie $upstream_http_set_cookie;")
	always := ""
	if a.AlwaysSetCookie {
		always = " always"
	}
	add("add_header Set-Cookie $tidegate_auth_cookie%s;", always)
	if a.Signin != "" {
		name, lines, err := signinLocation(a)
		if err != nil {
			return err
		}
		v.extraLocation("", name, lines)
		add("error_page 401 = %s;", name)
	}
	return nil
}

// authResponseHeaders are the upstream request headers set from the auth
// answer (auth-response-headers), for headerLines.
func authResponseHeaders(a annotations.ExtAuth) [][2]string {
	if a.URL == "" {
		return nil
	}
	out := make([][2]string, 0, len(a.ResponseHeaders))
	for i, h := range a.ResponseHeaders {
		out = append(out, [2]string{h, fmt.Sprintf("$tidegate_auth_h%d", i)})
	}
	return out
}

// extraLocation adds an internal or named location to the server being
// rendered, once.
func (v *view) extraLocation(match, path string, lines []string) {
	if v.extraSeen == nil {
		v.extraSeen = map[string]bool{}
	}
	if v.extraSeen[match+path] {
		return
	}
	v.extraSeen[match+path] = true
	v.extras = append(v.extras, locationView{Match: match, Path: path, Lines: lines})
}

// SystemResolvers returns the name servers of /etc/resolv.conf, for
// Settings.Resolvers; nil when there are none.
func SystemResolvers() []string {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			out = append(out, fields[1])
		}
	}
	return out
}

// resolverAddrs validates name server addresses for the resolver
// directive.
func resolverAddrs(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("resolver %q is not an IP address", s)
		}
		if a.Is6() && !a.Is4In6() {
			out = append(out, "["+a.String()+"]")
			continue
		}
		out = append(out, a.Unmap().String())
	}
	return out, nil
}
