package annotations

import "net/netip"

// RateLimit holds the per-client rate and connection limits.
type RateLimit struct {
	// RPS and RPM are requests per second / minute per client address.
	RPS int
	RPM int
	// Connections is the concurrent connections per client address.
	Connections int
	// BurstMultiplier times the rate is the allowed burst (default 5).
	BurstMultiplier int
	// Whitelist sources are never limited.
	Whitelist []netip.Prefix
}

func (r RateLimit) active() bool { return r.RPS > 0 || r.RPM > 0 || r.Connections > 0 }

func init() {
	register("limit-rps", applied(func(v string, c *Config) error {
		n, err := intRange(v, 1, 1000000)
		c.RateLimit.RPS = n
		return err
	}))
	register("limit-rpm", applied(func(v string, c *Config) error {
		n, err := intRange(v, 1, 60000000)
		c.RateLimit.RPM = n
		return err
	}))
	register("limit-connections", applied(func(v string, c *Config) error {
		n, err := intRange(v, 1, 1000000)
		c.RateLimit.Connections = n
		return err
	}))
	register("limit-burst-multiplier", applied(func(v string, c *Config) error {
		n, err := intRange(v, 1, 1000)
		c.RateLimit.BurstMultiplier = n
		return err
	}))
	register("limit-whitelist", applied(func(v string, c *Config) error {
		p, err := cidrs(v)
		c.RateLimit.Whitelist = p
		return err
	}))
}
