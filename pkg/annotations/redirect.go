package annotations

import (
	"fmt"
	"net/url"
	"strings"
)

// Redirect holds the TLS-redirect and redirect annotations.
type Redirect struct {
	// SSLRedirect overrides the global ssl-redirect for TLS hosts (nil: global).
	SSLRedirect *bool
	// ForceSSLRedirect redirects to https even when the host has no TLS
	// section (nil: the ConfigMap's force-ssl-redirect).
	ForceSSLRedirect *bool
	// URL and Code answer every request with a redirect (permanent-redirect,
	// temporal-redirect); URL may use $request_uri, $uri, $args, $host, $scheme.
	URL  string
	Code int
	// AppRoot redirects "/" to this path (302).
	AppRoot string
}

// redirectVars are the only nginx variables a redirect URL may use.
var redirectVars = []string{"$request_uri", "$is_args", "$scheme", "$args", "$host", "$uri"}

func init() {
	register("ssl-redirect", applied(func(v string, c *Config) error {
		b, err := boolValue(v)
		c.Redirect.SSLRedirect = &b
		return err
	}))
	register("force-ssl-redirect", applied(func(v string, c *Config) error {
		b, err := boolValue(v)
		c.Redirect.ForceSSLRedirect = &b
		return err
	}))
	register("permanent-redirect", applied(func(v string, c *Config) error {
		if err := redirectURL(v); err != nil {
			return err
		}
		if c.Redirect.URL != "" && c.Redirect.Code < 301 {
			return nil
		}
		c.Redirect.URL = v
		if c.Redirect.Code == 0 || c.Redirect.Code == 302 {
			c.Redirect.Code = 301
		}
		return nil
	}))
	register("permanent-redirect-code", applied(func(v string, c *Config) error {
		n, err := intRange(v, 300, 308)
		if err != nil {
			return err
		}
		c.Redirect.Code = n
		return nil
	}))
	register("temporal-redirect", func(v string, c *Config) (Status, string, error) {
		if err := redirectURL(v); err != nil {
			return "", "", err
		}
		// ingress-nginx gives temporal-redirect priority over permanent-redirect.
		c.Redirect.URL, c.Redirect.Code = v, 302
		return Applied, "", nil
	})
	register("app-root", applied(func(v string, c *Config) error {
		if err := absPath(v); err != nil {
			return err
		}
		c.Redirect.AppRoot = v
		return nil
	}))
}

// redirectURL accepts an absolute http(s) URL made of URL characters, with
// '$' only as one of redirectVars.
func redirectURL(v string) error {
	rest := withoutVars(v, redirectVars)
	if strings.ContainsAny(rest, "$\"\\ {};#'`<>") {
		return fmt.Errorf("%q: a redirect URL may not contain spaces, quotes, braces, ';', '#' or variables other than %s", v, strings.Join(redirectVars, " "))
	}
	u, err := url.Parse(rest)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http:// or https:// URL", v)
	}
	return nil
}

// withoutVars removes the variables of vars from v. A name counts only as
// a whole: "$hostx" is nginx's (unknown) variable $hostx, not $host and an
// "x", so it stays, and its "$" makes the caller refuse it.
func withoutVars(v string, vars []string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '$' {
			if n := varAt(v[i:], vars); n > 0 {
				i += n - 1
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// varAt returns the length of the variable of vars that s starts with, or 0.
func varAt(s string, vars []string) int {
	for _, name := range vars {
		if strings.HasPrefix(s, name) && (len(s) == len(name) || !isVarChar(s[len(name)])) {
			return len(name)
		}
	}
	return 0
}

// absPath accepts an absolute URI path with RFC 3986 path characters only.
func absPath(v string) error {
	if !strings.HasPrefix(v, "/") || len(v) > 1024 {
		return fmt.Errorf("%q must be an absolute path (starting with '/')", v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~!&'()*+,;=:@/%", c) >= 0) {
			return fmt.Errorf("path %q contains %q", v, rune(c))
		}
	}
	return nil
}
