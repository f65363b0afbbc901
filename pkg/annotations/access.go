package annotations

import (
	"fmt"
	"net/netip"
	"strings"
)

// Access holds source-address allow and deny lists.
type Access struct {
	// Allow, when set, admits only these sources (whitelist-source-range).
	Allow []netip.Prefix
	// Deny refuses these sources (denylist-source-range).
	Deny []netip.Prefix
	// SatisfyAny lets a request in when either the source ranges or the
	// authentication (auth-type basic, auth-url) admit it (satisfy: any);
	// by default both must.
	SatisfyAny bool
}

func init() {
	register("satisfy", applied(func(v string, c *Config) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "any":
			c.Access.SatisfyAny = true
		case "all":
			c.Access.SatisfyAny = false
		default:
			return fmt.Errorf("%q is not any or all", v)
		}
		return nil
	}))
	register("whitelist-source-range", applied(func(v string, c *Config) error {
		p, err := cidrs(v)
		c.Access.Allow = p
		return err
	}))
	register("denylist-source-range", applied(func(v string, c *Config) error {
		p, err := cidrs(v)
		c.Access.Deny = p
		return err
	}))
}
