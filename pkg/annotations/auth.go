package annotations

import (
	"fmt"
	"strings"
)

// Auth is HTTP basic authentication from an htpasswd Secret.
type Auth struct {
	// Basic is true for auth-type: basic.
	Basic bool
	// Secret is "name" (the Ingress's namespace) or "namespace/name".
	Secret string
	// Map is true for auth-secret-type: auth-map (one key per user);
	// otherwise the Secret's "auth" key holds an htpasswd file.
	Map bool
	// Realm is shown by browsers: with Basic, auth-realm or ingress-nginx's
	// default (DefaultRealm), set by Parse.
	Realm string
}

// DefaultRealm is ingress-nginx's auth-realm default.
const DefaultRealm = "Authentication Required"

func init() {
	register("auth-type", applied(func(v string, c *Config) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "basic":
			c.Auth.Basic = true
			return nil
		case "digest":
			return fmt.Errorf("digest authentication is not supported; use basic")
		}
		return fmt.Errorf("%q is not basic", v)
	}))
	register("auth-secret", applied(func(v string, c *Config) error {
		if err := secretRef(v); err != nil {
			return err
		}
		c.Auth.Secret = v
		return nil
	}))
	register("auth-secret-type", applied(func(v string, c *Config) error {
		switch v {
		case "auth-file":
			c.Auth.Map = false
		case "auth-map":
			c.Auth.Map = true
		default:
			return fmt.Errorf("%q is not auth-file or auth-map", v)
		}
		return nil
	}))
	register("auth-realm", applied(func(v string, c *Config) error {
		if err := safeText(v); err != nil {
			return err
		}
		if len(v) > 256 {
			return fmt.Errorf("realm is longer than 256 characters")
		}
		c.Auth.Realm = v
		return nil
	}))
}
