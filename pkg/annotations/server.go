package annotations

import (
	"fmt"
	"strings"
)

// Server holds the annotations that add host names to an Ingress's servers.
type Server struct {
	// Aliases are more names for every host of the Ingress (server-alias).
	Aliases []string
	// WWWRedirect redirects between "www.host" and "host" (308), towards
	// the name the rule uses (from-to-www-redirect).
	WWWRedirect bool
}

func init() {
	register("server-alias", applied(func(v string, c *Config) error {
		var out []string
		for _, h := range strings.Split(v, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" {
				continue
			}
			if strings.Trim(h, "abcdefghijklmnopqrstuvwxyz0123456789-.*") != "" || len(h) > 253 || strings.Contains(h[1:], "*") {
				return fmt.Errorf("%q is not a host name", h)
			}
			out = append(out, h)
		}
		if len(out) == 0 {
			return fmt.Errorf("no host name given")
		}
		c.Server.Aliases = out
		return nil
	}))
	register("from-to-www-redirect", applied(func(v string, c *Config) error {
		b, err := boolValue(v)
		c.Server.WWWRedirect = b
		return err
	}))
}
