package nginxvalue

import (
	"strings"
	"testing"
)

func TestValidLogFormat(t *testing.T) {
	tests := map[string]struct {
		format string
		err    string // "" means valid
	}{
		"ingress-nginx default": {`$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id`, ""},
		"JSON with braces":      {`{"time": "$time_iso8601", "ns": "$namespace", "x": "${http_x_trace}"}`, ""},
		"header variables":      {`$http_x_forwarded_for $sent_http_content_type $cookie_session $arg_q`, ""},
		"semicolon is text":     {`$status; $request_time`, ""},
		"unknown variable":      {`$status $nosuchvar`, "$nosuchvar"},
		"bare dollar":           {`cost $ 5`, "without a variable name"},
		"unterminated brace":    {`${status`, "without a variable name"},
		"backslash":             {`$status \n`, "backslash"},
		"newline":               {"$status\n$uri", "printable"},
		"non-ASCII":             {"$status é", "printable"},
		"empty":                 {"", "empty"},
		"prefix alone":          {`$http_`, "$http_"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidLogFormat(tc.format)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("ValidLogFormat(%q) = %v, want nil", tc.format, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("ValidLogFormat(%q) = %v, want an error containing %q", tc.format, err, tc.err)
			}
		})
	}
}
