package nginxvalue

import (
	"fmt"
	"regexp"
	"strings"
)

// logVariables are the variables a log-format-upstream may use besides
// those with a logPrefixes prefix: nginx's own, tidegate's, and the
// ingress-nginx names nginx.tmpl maps onto tidegate's.
var logVariables = map[string]bool{}

func init() {
	for _, v := range strings.Fields(`
		remote_addr remote_port remote_user time_local time_iso8601 msec request request_method
		request_uri uri document_uri args query_string is_args scheme server_protocol server_name
		server_addr server_port host hostname status body_bytes_sent bytes_sent request_length
		request_time request_id connection connection_requests pipe https ssl_protocol ssl_cipher
		ssl_server_name content_type content_length binary_remote_addr realpath_root nginx_version
		pid upstream_addr upstream_status upstream_response_time upstream_connect_time
		upstream_header_time upstream_response_length upstream_bytes_received upstream_bytes_sent
		upstream_cache_status proxy_add_x_forwarded_for proxy_host proxy_port
		tidegate_backend tidegate_ingress tidegate_path tidegate_vhost tidegate_host
		proxy_upstream_name proxy_alternative_upstream_name req_id namespace ingress_name
		service_name service_port`) {
		logVariables[v] = true
	}
}

// logPrefixes are families of variables named after a header, cookie or
// argument.
var logPrefixes = []string{"http_", "sent_http_", "sent_trailer_", "upstream_http_", "upstream_cookie_",
	"upstream_trailer_", "cookie_", "arg_"}

var logVarRe = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]*))`)

// ValidLogFormat checks a log format (the ConfigMap's log-format-upstream;
// upstream-hash-by takes the same rule for its variables): printable ASCII text
// (no backslash, which nginx would read as an escape) and only variables
// nginx knows, so a typo is reported here instead of failing `nginx -t` for
// every host. Quotes, braces and semicolons are literal text: the renderer
// quotes the whole format (pkg/nginx Quote), which JSON formats need.
func ValidLogFormat(s string) error {
	if s == "" {
		return fmt.Errorf("log format is empty")
	}
	if len(s) > 4096 {
		return fmt.Errorf("log format is longer than 4096 bytes")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '\\' {
			return fmt.Errorf("log format contains %q at byte %d: want printable ASCII text without backslashes", c, i)
		}
	}
	for _, m := range logVarRe.FindAllStringSubmatch(s, -1) {
		name := m[1] + m[2]
		if name == "" {
			return fmt.Errorf("log format has a '$' without a variable name")
		}
		if !knownLogVariable(name) {
			return fmt.Errorf("log format uses $%s, which is not a variable tidegate knows", name)
		}
	}
	return nil
}

func knownLogVariable(name string) bool {
	if logVariables[name] {
		return true
	}
	for _, p := range logPrefixes {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" && strings.ToLower(name) == name {
			return true
		}
	}
	return false
}
