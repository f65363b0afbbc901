package annotations

import "net/netip"

// Access holds source-address allow and deny lists.
type Access struct {
	// Allow, when set, admits only these sources (whitelist-source-range).
	Allow []netip.Prefix
	// Deny refuses these sources (denylist-source-range).
	Deny []netip.Prefix
}

func init() {
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
