package annotations

// unsupported lists ingress-nginx annotations tidegate knows but does not
// implement yet, with what a user should know. They are reported, never
// silently dropped.
var unsupported = map[string]string{
	"stream-snippet":                    "raw nginx snippets are refused: tidegate never pastes user text into nginx.conf",
	"auth-snippet":                      "raw nginx snippets are refused: tidegate never pastes user text into nginx.conf",
	"modsecurity-snippet":               "ModSecurity is not part of tidegate",
	"enable-modsecurity":                "ModSecurity is not part of tidegate",
	"enable-owasp-core-rules":           "ModSecurity is not part of tidegate",
	"auth-keepalive":                    "keepalive connections to the auth service are not implemented yet",
	"auth-keepalive-requests":           "keepalive connections to the auth service are not implemented yet",
	"auth-keepalive-timeout":            "keepalive connections to the auth service are not implemented yet",
	"auth-keepalive-share-vars":         "keepalive connections to the auth service are not implemented yet",
	"enable-opentelemetry":              "OpenTelemetry is not implemented yet",
	"opentelemetry-trust-incoming-span": "OpenTelemetry is not implemented yet",
	"ssl-passthrough":                   "TLS passthrough is not implemented",
	"enable-rewrite-log":                "rewrite logging is not implemented",
	"global-rate-limit":                 "global (memcached) rate limits are not implemented",
	"x-forwarded-for":                   "not an annotation; use the ConfigMap",
}
