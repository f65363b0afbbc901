package annotations

// dataPlaneKeys are parsed by the model's balancing code (pkg/model), not
// here: they change what is pushed to Lua, never nginx.conf. Listing them
// keeps the compatibility report from calling them unknown.
var dataPlaneKeys = []string{
	"load-balance", "upstream-hash-by", "upstream-hash-by-subset", "upstream-hash-by-subset-size",
	"affinity", "affinity-mode", "affinity-canary-behavior", "session-cookie-name", "session-cookie-path",
	"session-cookie-domain", "session-cookie-samesite", "session-cookie-conditional-samesite-none",
	"session-cookie-secure", "session-cookie-max-age", "session-cookie-expires", "session-cookie-change-on-failure",
	"canary", "canary-by-header", "canary-by-header-value", "canary-by-header-pattern", "canary-by-cookie",
	"canary-weight", "canary-weight-total",
}

func init() {
	for _, k := range dataPlaneKeys {
		register(k, func(string, *Config) (Status, string, error) {
			return Applied, "applied by the data plane (pushed to Lua)", nil
		})
	}
}
