package annotations

import (
	"fmt"
	"regexp"
	"strings"
)

// ExtAuth is external authentication (auth-url and friends), with
// ingress-nginx's semantics: every request is first sent, without its body,
// to URL; a 2xx lets it through, a 401 or 403 is returned to the client (a
// 401 becomes a redirect to Signin when set), anything else is a 500.
type ExtAuth struct {
	// URL is an absolute http(s) URL; it may read the variables in
	// extAuthVars (e.g. "https://$host/oauth2/auth").
	URL string
	// Method is the auth request's method; empty means GET (nginx's
	// auth_request; X-Original-Method carries the client's).
	Method string
	// Signin is where a 401 redirects to, with RedirectParam ("rd" by
	// default) set to the URL the client asked for.
	Signin        string
	RedirectParam string
	// ResponseHeaders are copied from the auth answer to the upstream
	// request.
	ResponseHeaders []string
	// RequestRedirect is the X-Auth-Request-Redirect sent to the auth
	// service; empty means the client's request URI.
	RequestRedirect string
	// ProxySetHeaders names the ConfigMap whose keys and values are sent to
	// the auth service as request headers (auth-proxy-set-headers).
	ProxySetHeaders CustomHeaders
	// CacheKey turns on caching of the auth service's answers, per server
	// and location, under this key (auth-cache-key, e.g.
	// "$remote_user$http_authorization"); it may read cacheKeyVars.
	CacheKey string
	// CacheDuration are proxy_cache_valid arguments ("200 202 5m"), one per
	// entry (auth-cache-duration); ingress-nginx's default without.
	CacheDuration []string
	// AlwaysSetCookie passes the auth service's Set-Cookie on every answer,
	// errors included (auth-always-set-cookie); by default only on 2xx and
	// 3xx answers.
	AlwaysSetCookie bool
}

// extAuthVars are the nginx variables an auth URL, a signin URL or
// auth-request-redirect may read: the ones ingress-nginx users write
// ("https://$host/oauth2/start?rd=$escaped_request_uri" is rendered with
// $request_uri escaped by the signin location itself).
var extAuthVars = map[string]bool{"host": true, "scheme": true, "request_uri": true, "uri": true, "args": true, "is_args": true, "server_port": true}

// reservedAuthHeaders are request headers tidegate sets for every
// upstream request, or hop-by-hop ones: auth-response-headers may not
// override them.
var reservedAuthHeaders = map[string]bool{
	"host": true, "connection": true, "upgrade": true, "keep-alive": true, "te": true, "trailer": true,
	"transfer-encoding": true, "content-length": true, "x-real-ip": true, "x-forwarded-for": true,
	"x-forwarded-proto": true, "x-forwarded-host": true, "x-forwarded-port": true, "x-request-id": true,
	"x-forwarded-scheme": true, "x-scheme": true, "proxy": true,
}

// ReservedAuthHeader reports whether tidegate sets the request header name
// itself for every upstream or auth request.
func ReservedAuthHeader(name string) bool { return reservedAuthHeaders[strings.ToLower(name)] }

// extAuthMethods are the methods auth-method accepts.
var extAuthMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true, "TRACE": true, "CONNECT": true}

func init() {
	register("auth-url", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := extAuthURL(v, false); err != nil {
			return err
		}
		c.ExtAuth.URL = v
		return nil
	}))
	register("auth-proxy-set-headers", applied(func(v string, c *Config) error {
		ref, err := configMapRef(v)
		c.ExtAuth.ProxySetHeaders = ref
		return err
	}))
	register("auth-cache-key", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := cacheKey(v); err != nil {
			return err
		}
		c.ExtAuth.CacheKey = v
		return nil
	}))
	register("auth-cache-duration", applied(func(v string, c *Config) error {
		var out []string
		for _, e := range strings.Split(v, ",") {
			f := strings.Fields(e)
			if len(f) == 0 {
				continue
			}
			for _, code := range f[:len(f)-1] {
				if _, err := intRange(code, 100, 599); err != nil && code != "any" {
					return fmt.Errorf("%q: %q is not an HTTP status or any", v, code)
				}
			}
			if !cacheTime.MatchString(f[len(f)-1]) {
				return fmt.Errorf("%q: %q is not a time such as 5m or 1h", v, f[len(f)-1])
			}
			out = append(out, strings.Join(f, " "))
		}
		if len(out) == 0 {
			return fmt.Errorf("no duration given")
		}
		c.ExtAuth.CacheDuration = out
		return nil
	}))
	register("auth-always-set-cookie", applied(func(v string, c *Config) error {
		b, err := boolValue(v)
		c.ExtAuth.AlwaysSetCookie = b
		return err
	}))
	register("auth-signin", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := extAuthURL(v, true); err != nil {
			return err
		}
		c.ExtAuth.Signin = v
		return nil
	}))
	register("auth-signin-redirect-param", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if v == "" || len(v) > 64 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			return fmt.Errorf("%q is not a query parameter name (1 to 64 of A-Z, a-z, 0-9, '_', '-')", v)
		}
		c.ExtAuth.RedirectParam = v
		return nil
	}))
	register("auth-method", applied(func(v string, c *Config) error {
		m := strings.ToUpper(strings.TrimSpace(v))
		if !extAuthMethods[m] {
			return fmt.Errorf("%q is not an HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)", v)
		}
		c.ExtAuth.Method = m
		return nil
	}))
	register("auth-response-headers", applied(func(v string, c *Config) error {
		var out []string
		seen := map[string]bool{}
		for _, h := range strings.Split(v, ",") {
			h = strings.TrimSpace(h)
			if h == "" {
				continue
			}
			// nginx reads the answer's header as $upstream_http_<name>:
			// only letters, digits and '-' make a variable name.
			if len(h) > 128 || strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
				return fmt.Errorf("header name %q may only hold letters, digits and '-' (up to 128)", h)
			}
			if reservedAuthHeaders[strings.ToLower(h)] {
				return fmt.Errorf("header %q is set by tidegate itself (or is hop-by-hop) and cannot come from the auth service", h)
			}
			if k := strings.ToLower(h); !seen[k] {
				seen[k] = true
				out = append(out, h)
			}
		}
		if len(out) == 0 {
			return fmt.Errorf("no header name given")
		}
		if len(out) > 32 {
			return fmt.Errorf("%d header names; at most 32 are allowed", len(out))
		}
		c.ExtAuth.ResponseHeaders = out
		return nil
	}))
	register("auth-request-redirect", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := extAuthText(v, false); err != nil {
			return fmt.Errorf("auth-request-redirect: %v", err)
		}
		c.ExtAuth.RequestRedirect = v
		return nil
	}))
}

// finish reports the auth-* keys that have no effect without auth-url.
func (a *ExtAuth) finish(report *[]Entry) {
	if a.URL != "" {
		return
	}
	for i, e := range *report {
		switch e.Key {
		case "auth-signin", "auth-signin-redirect-param", "auth-method", "auth-response-headers", "auth-request-redirect":
			if e.Status == Applied {
				(*report)[i].Status, (*report)[i].Detail = Different, "has no effect without auth-url"
			}
		}
	}
	*a = ExtAuth{}
}

// ExtAuthRedirectParam is the signin URL's query parameter that carries the
// original URL: the annotation's, else ingress-nginx's "rd".
func ExtAuthRedirectParam(a ExtAuth) string {
	if a.RedirectParam != "" {
		return a.RedirectParam
	}
	return "rd"
}

// extAuthURL accepts an absolute http:// or https:// URL: a host name, an
// IP address or $host (ParseTarget: never a unix socket nor an address that
// is no service), an optional port, and a path and query of URL
// characters; '$' only as one of extAuthVars. No user information, no
// fragment.
func extAuthURL(v string, signin bool) error {
	if err := extAuthText(v, signin); err != nil {
		return err
	}
	t, err := ParseTarget(v)
	if err != nil {
		return err
	}
	rest := v[strings.Index(v, "://")+3:]
	hostport := "$host"
	if t.Host != "$host" {
		hostport = rest
		if i := strings.IndexAny(rest, "/?$"); i >= 0 {
			hostport = rest[:i]
		}
	}
	// What follows the host is a path, a query, or a variable that is one
	// ("https://test.example.com$request_uri", ingress-nginx's mirror form).
	after := rest[len(hostport):]
	if after != "" && strings.IndexByte("/?$", after[0]) < 0 ||
		strings.HasPrefix(after, "$") && !strings.HasPrefix(after, "$request_uri") && !strings.HasPrefix(after, "$uri") {
		return fmt.Errorf("%q: after the host comes a path, a query, $request_uri or $uri", v)
	}
	return nil
}

// extAuthText accepts printable URL characters where '$' only starts one of
// extAuthVars (a longer name such as "$hostx" is refused: nginx would read
// the variable "hostx"). signin also allows $escaped_request_uri, which
// the signin location computes (ingress-nginx's oauth2-proxy examples use it).
func extAuthText(v string, signin bool) error {
	return textWithVars(v, 2048, "\"\\{};#'`<>|^", func(name string) bool {
		return extAuthVars[name] || signin && name == "escaped_request_uri"
	}, "$host, $scheme, $request_uri, $uri, $args, $is_args and $server_port")
}

// textWithVars accepts 1 to max printable ASCII characters without spaces
// or any of forbidden, where '$' only starts a variable name allowed
// accepts (a longer name such as "$hostx" is nginx's variable "hostx", so
// the whole name is judged); vars names the allowed ones for the error.
func textWithVars(v string, max int, forbidden string, allowed func(name string) bool, vars string) error {
	if v == "" || len(v) > max {
		return fmt.Errorf("must be 1 to %d characters", max)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(forbidden, c) >= 0 {
			return fmt.Errorf("%q contains %q; spaces, quotes, braces, ';' and '#' are not allowed", v, rune(c))
		}
		if c != '$' {
			continue
		}
		j := i + 1
		for j < len(v) && isVarChar(v[j]) {
			j++
		}
		if name := v[i+1 : j]; !allowed(name) {
			return fmt.Errorf("%q reads the variable $%s; only %s are allowed", v, name, vars)
		}
		i = j - 1
	}
	return nil
}

// DefaultAuthCacheDuration is ingress-nginx's auth-cache-duration default.
var DefaultAuthCacheDuration = []string{"200 202 401 5m"}

var cacheTime = regexp.MustCompile(`^[0-9]{1,6}(ms|s|m|h|d)?$`)

// cacheKeyVars are the variables auth-cache-key may read: who is asking
// and for what, as ingress-nginx users key the cache ($remote_user,
// $http_authorization, $cookie_session ...).
var cacheKeyVars = map[string]bool{"remote_user": true, "remote_addr": true, "host": true, "uri": true, "request_uri": true, "args": true, "scheme": true}

// cacheKey accepts printable characters without quotes, braces, ';' or '#',
// where '$' starts one of cacheKeyVars or $http_NAME, $cookie_NAME,
// $arg_NAME.
func cacheKey(v string) error {
	return textWithVars(v, 512, "\"'`{};#\\", func(name string) bool {
		for _, p := range []string{"http_", "cookie_", "arg_"} {
			if strings.HasPrefix(name, p) && len(name) > len(p) {
				return true
			}
		}
		return cacheKeyVars[name]
	}, "$remote_user, $remote_addr, $host, $uri, $request_uri, $args, $scheme, $http_*, $cookie_* and $arg_*")
}
