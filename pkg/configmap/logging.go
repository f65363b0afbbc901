package configmap

import "github.com/tidegate/tidegate/pkg/nginxvalue"

func init() {
	register("enable-access-log", func(v string, c *Config) error {
		on := !c.DisableAccessLog
		if err := flag(func(*Config) *bool { return &on })(v, c); err != nil {
			return err
		}
		c.DisableAccessLog = !on
		return nil
	})
	registerFallback("log-format-upstream", "the default format is used", func(v string, c *Config) error {
		if err := nginxvalue.ValidLogFormat(v); err != nil {
			return err
		}
		c.LogFormatUpstream = v
		return nil
	})
	register("log-format-escape-json", flag(func(c *Config) *bool { return &c.LogFormatEscapeJSON }))
	register("log-format-json", flag(func(c *Config) *bool { return &c.LogFormatJSON }))
}
