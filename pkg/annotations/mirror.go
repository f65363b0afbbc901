package annotations

import (
	"strings"
)

// Mirror copies each request of a location to another URL and ignores the
// answer (nginx's mirror module), as ingress-nginx's mirror-* do: for
// trying a new version or a test environment on real traffic.
type Mirror struct {
	// Target is an absolute http(s) URL that may read the variables of
	// extAuthVars ("https://test.example.com$request_uri").
	Target string
	// NoBody leaves the request body out of the copy (mirror-request-body:
	// "off"); by default it is sent.
	NoBody bool
	// Host is the copy's Host header (mirror-host); by default the host of
	// Target.
	Host string
}

func init() {
	register("mirror-target", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := extAuthURL(v, false); err != nil {
			return err
		}
		c.Mirror.Target = v
		return nil
	}))
	register("mirror-request-body", applied(func(v string, c *Config) error {
		on, err := onOff(v)
		c.Mirror.NoBody = on == "off"
		return err
	}))
	register("mirror-host", applied(func(v string, c *Config) error {
		v = strings.TrimSpace(v)
		if err := hostHeader(v); err != nil {
			return err
		}
		c.Mirror.Host = v
		return nil
	}))
}
