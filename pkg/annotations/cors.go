package annotations

import (
	"fmt"
	"net/url"
	"strings"
)

// CORS holds the cross-origin annotations. Once Parse returns, an enabled
// CORS has ingress-nginx's defaults where the annotations set nothing.
type CORS struct {
	Enabled bool
	// Origins are "*", "https://a.com" or "https://*.a.com" (one label).
	Origins     []string
	Methods     string
	Headers     string
	Expose      string
	Credentials bool
	MaxAge      int
	// set records which fields an annotation gave, so defaults fill the rest.
	credentialsSet bool
}

// The ingress-nginx defaults for an enabled CORS.
const (
	defaultCORSMethods = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
	defaultCORSHeaders = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
	defaultCORSMaxAge  = 1728000
)

func init() {
	register("enable-cors", applied(func(v string, c *Config) error {
		b, err := boolValue(v)
		c.CORS.Enabled = b
		return err
	}))
	register("cors-allow-origin", applied(func(v string, c *Config) error {
		var out []string
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			if err := corsOrigin(o); err != nil {
				return err
			}
			out = append(out, o)
		}
		if len(out) == 0 {
			return fmt.Errorf("no origin given")
		}
		c.CORS.Origins = out
		return nil
	}))
	list := func(dst func(*Config) *string, token bool) func(string, *Config) (Status, string, error) {
		return applied(func(v string, c *Config) error {
			var items []string
			for _, f := range strings.Split(v, ",") {
				f = strings.TrimSpace(f)
				if f == "" {
					continue
				}
				if err := headerName(f); err != nil {
					return err
				}
				if token {
					f = strings.ToUpper(f)
				}
				items = append(items, f)
			}
			*dst(c) = strings.Join(items, ", ")
			return nil
		})
	}
	register("cors-allow-methods", list(func(c *Config) *string { return &c.CORS.Methods }, true))
	register("cors-allow-headers", list(func(c *Config) *string { return &c.CORS.Headers }, false))
	register("cors-expose-headers", list(func(c *Config) *string { return &c.CORS.Expose }, false))
	register("cors-allow-credentials", applied(func(v string, c *Config) error {
		b, err := boolValue(v)
		c.CORS.Credentials, c.CORS.credentialsSet = b, true
		return err
	}))
	register("cors-max-age", applied(func(v string, c *Config) error {
		n, err := intRange(v, 0, 1<<30)
		c.CORS.MaxAge = n
		return err
	}))
}

// withDefaults fills what the annotations left unset with ingress-nginx's
// defaults; finish applies it to an enabled CORS, so the renderer reads
// the values as they apply.
func (c CORS) withDefaults() CORS {
	if len(c.Origins) == 0 {
		c.Origins = []string{"*"}
	}
	if c.Methods == "" {
		c.Methods = defaultCORSMethods
	}
	if c.Headers == "" {
		c.Headers = defaultCORSHeaders
	}
	if !c.credentialsSet {
		c.Credentials = true
	}
	if c.MaxAge == 0 {
		c.MaxAge = defaultCORSMaxAge
	}
	return c
}

// corsOrigin accepts "*" or scheme://host[:port] where host may start with
// a one-label "*." wildcard.
func corsOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(strings.Replace(o, "://*.", "://wildcard.", 1))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("origin %q is not * or scheme://host[:port]", o)
	}
	if err := hostHeader(u.Host); err != nil {
		return fmt.Errorf("origin %q: %v", o, err)
	}
	return nil
}
