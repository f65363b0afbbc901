package annotations

// modelKeys are parsed by the model's balancing and canary code
// (pkg/model/balancing.go, canary.go): they change what is pushed to Lua,
// never nginx.conf, and the model reports their bad values. Listing them
// here keeps the compatibility report from calling them unknown.
var modelKeys = []string{
	"load-balance", "upstream-hash-by",
	"affinity", "affinity-mode", "session-cookie-name", "session-cookie-path",
	"session-cookie-domain", "session-cookie-samesite", "session-cookie-secure",
	"session-cookie-max-age", "session-cookie-expires", "session-cookie-change-on-failure",
	"canary", "canary-by-header", "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie",
	"canary-weight", "canary-weight-total",
}

func init() {
	for _, k := range modelKeys {
		register(k, func(string, *Config) (Status, string, error) {
			return Applied, "applied by the data plane (pushed to Lua, no reload)", nil
		})
	}
	unsupported["upstream-hash-by-subset"] = "hash subsets are not implemented; upstream-hash-by applies to all endpoints"
	unsupported["upstream-hash-by-subset-size"] = "hash subsets are not implemented"
	unsupported["affinity-canary-behavior"] = "a sticky client always stays off the canary (ingress-nginx's default \"sticky\" behaviour)"
	unsupported["session-cookie-conditional-samesite-none"] = "not implemented; set session-cookie-samesite explicitly"
}
