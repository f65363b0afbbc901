package configmap

import (
	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

func init() {
	register("compute-full-forwarded-for", boolean(func(c *Config) *bool { return &c.Settings.ComputeFullForwardedFor }))
	// finish applies use-forwarded-headers and use-proxy-protocol to the
	// real-IP settings once every key is read.
	register("use-forwarded-headers", boolean(func(c *Config) *bool { return &c.useForwarded }))
	register("use-proxy-protocol", boolean(func(c *Config) *bool { return &c.Settings.UseProxyProtocol }))
	register("proxy-real-ip-cidr", func(v string, c *Config) error {
		out, err := nginxvalue.CIDRs(v)
		if err == nil {
			c.Settings.RealIPFrom = out
		}
		return err
	})
	register("server-tokens", boolean(func(c *Config) *bool { return &c.Settings.ServerTokens }))
	register("proxy-next-upstream", func(v string, c *Config) error {
		conds, err := nginxvalue.Words(v, nginxvalue.NextUpstream, "%q is not a proxy_next_upstream condition", "empty list")
		if err == nil {
			c.Settings.ProxyNextUpstream = conds
		}
		return err
	})
	register("proxy-next-upstream-tries", number(func(c *Config) *int { return &c.Settings.ProxyNextUpstreamTries }, 0, 100, "a number"))
}
