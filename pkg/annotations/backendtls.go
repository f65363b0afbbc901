package annotations

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tidegate/tidegate/pkg/nginxvalue"
)

// ProxySSL is TLS towards an HTTPS or GRPCS backend (proxy-ssl-*): a
// client certificate to present, and the CAs to verify the backend with.
type ProxySSL struct {
	// Secret is "name" or "namespace/name" of a Secret with ca.crt (the
	// CAs the backend's certificate must chain to) and optionally tls.crt
	// and tls.key (the client certificate).
	Secret string
	// Verify checks the backend's certificate (proxy-ssl-verify: on).
	Verify bool
	// VerifyDepth is proxy_ssl_verify_depth (0: nginx's default, 1).
	VerifyDepth int
	// Protocols and Ciphers restrict the TLS versions and ciphers offered
	// to the backend (nginx's defaults when empty).
	Protocols []string
	Ciphers   string
}

func init() {
	register("proxy-ssl-secret", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := secretRef(v); err != nil {
			return err
		}
		c.ProxySSL.Secret = v
		return nil
	}))
	register("proxy-ssl-verify", applied(func(v string, c *Config) error {
		on, err := onOff(v)
		c.ProxySSL.Verify = on == "on"
		return err
	}))
	register("proxy-ssl-verify-depth", applied(func(v string, c *Config) error {
		n, err := intRange(v, 1, 100)
		c.ProxySSL.VerifyDepth = n
		return err
	}))
	register("proxy-ssl-protocols", applied(func(v string, c *Config) error {
		ps, err := nginxvalue.Words(v, nginxvalue.TLSProtocol, "%q is not TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3", "no protocol given")
		c.ProxySSL.Protocols = ps
		return err
	}))
	register("proxy-ssl-ciphers", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if v == "" || len(v) > 1024 || strings.Trim(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:+!@-_.=") != "" {
			return fmt.Errorf("%q is not an OpenSSL cipher list (letters, digits and :+!@-_.=)", v)
		}
		// What OpenSSL would refuse fails nginx -t for every host.
		if err := nginxvalue.CipherList(v); err != nil {
			return errors.New(strings.Replace(err.Error(), "ssl-ciphers", "proxy-ssl-ciphers", 1))
		}
		c.ProxySSL.Ciphers = v
		return nil
	}))
}
