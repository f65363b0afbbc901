package configmap

import (
	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

func init() {
	register("ssl-redirect", flag(func(c *Config) *bool { return &c.SSLRedirect }))
	register("force-ssl-redirect", flag(func(c *Config) *bool { return &c.ForceSSLRedirect }))
	register("hsts", boolean(func(c *Config) *bool { return &c.Settings.HSTS }))
	register("hsts-max-age", number(func(c *Config) *int { return &c.Settings.HSTSMaxAge }, 0, 1<<30, "a number of seconds"))
	register("hsts-include-subdomains", boolean(func(c *Config) *bool { return &c.Settings.HSTSIncludeSubdomains }))
	register("hsts-preload", boolean(func(c *Config) *bool { return &c.Settings.HSTSPreload }))
	register("ssl-protocols", func(v string, c *Config) error {
		ps, err := nginxvalue.Words(v, nginxvalue.TLSProtocol, "%q is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3", "no protocol given")
		if err == nil {
			c.Settings.SSLProtocols = ps
		}
		return err
	})
	register("ssl-ciphers", func(v string, c *Config) error {
		if err := nginxvalue.CipherList(v); err != nil {
			return err
		}
		c.Settings.SSLCiphers = v
		return nil
	})
	register("ssl-session-tickets", boolean(func(c *Config) *bool { return &c.Settings.SSLSessionTickets }))
	unsupported["ssl-session-ticket-key"] = "not supported: a ConfigMap is no place for the key that decrypts every session ticket, and so every recorded TLS 1.2 session resumed with one; with ssl-session-tickets, nginx makes its own key at each start and reload. It is ignored"
	register("use-http2", func(v string, c *Config) error {
		on := true
		err := boolean(func(*Config) *bool { return &on })(v, c)
		c.Settings.NoHTTP2 = !on
		return err
	})
}
