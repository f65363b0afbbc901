package configmap

import (
	"strconv"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

func init() {
	register("worker-processes", func(v string, c *Config) error {
		if n, err := strconv.Atoi(v); v != "auto" && (err != nil || n < 1 || n > 1024) {
			return notA(v, `"auto" or a number from 1 to 1024`)
		}
		c.WorkerProcesses = v
		return nil
	})
	register("max-worker-connections", zeroOr(func(c *Config) *int { return &c.Settings.WorkerConnections }, 512, 1<<20))
	// Linux allows at most 2^30 open files (fs.nr_open's ceiling).
	register("max-worker-open-files", zeroOr(func(c *Config) *int { return &c.Settings.MaxWorkerOpenFiles }, 1024, 1<<30))
	register("keep-alive-requests", number(func(c *Config) *int { return &c.Settings.KeepAliveRequests }, 1, 1<<30, "a number"))
	register("upstream-keepalive-connections", func(v string, c *Config) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100000 {
			return notA(v, "a number from 0 to 100000")
		}
		c.UpstreamKeepalive = n
		return nil
	})
	register("upstream-keepalive-requests", number(func(c *Config) *int { return &c.Settings.UpstreamKeepaliveRequests }, 1, 1<<30, "a number"))
	register("proxy-body-size", func(v string, c *Config) error {
		if !nginxvalue.Size(v) {
			return notA(v, "an nginx size such as 8m")
		}
		c.ProxyBodySize = v
		return nil
	})
	register("block-cidrs", func(v string, c *Config) error {
		out, err := nginxvalue.CIDRs(v)
		if err == nil {
			c.Settings.BlockCIDRs = out
		}
		return err
	})
}
