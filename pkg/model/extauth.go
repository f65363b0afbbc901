package model

import (
	"strings"

	"github.com/tidegate/tidegate/pkg/annotations"
)

// extAuthKeys are the annotations of external authentication.
var extAuthKeys = map[string]bool{"auth-url": true, "auth-signin": true, "auth-method": true,
	"auth-response-headers": true, "auth-request-redirect": true, "auth-signin-redirect-param": true}

// extAuthRefused reports whether an Ingress asks for external
// authentication with a value tidegate refused. Its paths then fail
// closed, as ingress-nginx denies such a location: serving them without
// the authentication the owner asked for would expose them.
func (b *builder) extAuthRefused(key string) (string, bool) {
	var bad []string
	for _, e := range b.compat[key] {
		if extAuthKeys[e.Key] && e.Status == annotations.Rejected {
			bad = append(bad, e.Key)
		}
	}
	return strings.Join(bad, ", "), len(bad) > 0
}
