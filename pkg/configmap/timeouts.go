package configmap

import (
	"strconv"
	"strings"
)

func init() {
	register("proxy-connect-timeout", seconds(func(c *Config) *int { return &c.ProxyConnectTimeout }))
	register("proxy-read-timeout", seconds(func(c *Config) *int { return &c.ProxyReadTimeout }))
	register("proxy-send-timeout", seconds(func(c *Config) *int { return &c.ProxySendTimeout }))
	register("client-header-timeout", number(func(c *Config) *int { return &c.Settings.ClientHeaderTimeout }, 1, 3600, "a number of seconds"))
	register("keep-alive", number(func(c *Config) *int { return &c.Settings.KeepAlive }, 0, 3600, "a number of seconds"))
	register("worker-shutdown-timeout", number(func(c *Config) *int { return &c.Settings.WorkerShutdownTimeout }, 0, 86400, "a number of seconds"))
	register("upstream-keepalive-timeout", number(func(c *Config) *int { return &c.Settings.UpstreamKeepaliveTimeout }, 1, 86400, "a number of seconds"))
}

// seconds sets dst from a number of seconds, 1 to 86400 ("60" or "60s",
// as written).
func seconds(dst func(*Config) *int) func(string, *Config) error {
	return func(v string, c *Config) error {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "s"))
		if err != nil || n < 1 || n > 86400 {
			return notA(v, "a number of seconds from 1 to 86400")
		}
		*dst(c) = n
		return nil
	}
}
