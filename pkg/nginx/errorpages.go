package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/tidegate/tidegate/pkg/model"
)

// Custom error pages (custom-http-errors) work as in ingress-nginx: the
// location intercepts the listed codes from its upstream (and the 503 the
// balancer answers for a backend without endpoints) and hands the request
// to a named location that asks the error backend, a normal Dynamic
// backend balanced by Lua, with path "/" and the X-Code, X-Format,
// X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name,
// X-Service-Port and X-Request-ID headers. "error_page CODE = @name": the
// client gets the error backend's status and body, which by convention
// answers with X-Code. The named location runs no Lua phase of its own:
// the balancer picks the error backend's peer from $tidegate_backend.

// errorPageLines makes a location send its custom error codes to the
// error backend and registers the named locations in its server. skip401
// leaves 401 to auth-signin.
func errorPageLines(l *model.Location, grpc, skip401 bool, v *view, add func(string, ...any)) error {
	ce := l.CustomErrors
	if len(ce.Codes) == 0 || ce.Backend == "" {
		return nil
	}
	backend, err := QuoteVarFree(ce.Backend)
	if err != nil {
		return fmt.Errorf("error backend: %w", err)
	}
	if grpc {
		add("grpc_intercept_errors on;")
	} else {
		add("proxy_intercept_errors on;")
	}
	sum := sha256.Sum256([]byte(ce.Backend))
	id := hex.EncodeToString(sum[:6])
	for _, code := range ce.Codes {
		if code == 401 && skip401 {
			continue
		}
		name := fmt.Sprintf("@tidegate_error_%s_%d", id, code)
		lines := []string{
			// The Service that failed, read before $tidegate_backend
			// changes to the error backend.
			"set $tidegate_error_service $service_name;",
			"set $tidegate_error_port $service_port;",
			"set $tidegate_backend " + backend + ";",
			"rewrite ^ / break;",
			"proxy_intercept_errors off;",
			"proxy_set_header Host $tidegate_host;",
			fmt.Sprintf("proxy_set_header X-Code %d;", code),
			"proxy_set_header X-Format $http_accept;",
			"proxy_set_header X-Original-URI $request_uri;",
			"proxy_set_header X-Namespace $namespace;",
			"proxy_set_header X-Ingress-Name $ingress_name;",
			"proxy_set_header X-Service-Name $tidegate_error_service;",
			"proxy_set_header X-Service-Port $tidegate_error_port;",
			"proxy_set_header X-Request-ID $request_id;",
			"proxy_set_header X-Forwarded-For $tidegate_xff;",
			"proxy_set_header X-Real-IP $remote_addr;",
		}
		lines = append(lines, v.baseHeaderLines(lines)...) // locations.go
		v.extraLocation("", name, append(lines, "proxy_pass http://"+Upstream+";"))
		add("error_page %d = %s;", code, name)
	}
	return nil
}
