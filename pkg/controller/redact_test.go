package controller

import (
	"strings"
	"testing"

	"github.com/tidegate/tidegate/pkg/annotations"
)

func TestRedactAnnotation(t *testing.T) {
	for name, tc := range map[string]struct {
		key, value, want string
	}{
		"auth-url query values":         {"auth-url", "https://auth.example.com/check?token=s3cr3t&rd=$escaped_request_uri", "https://auth.example.com/check?token=***&rd=$escaped_request_uri"},
		"auth-url user information":     {"auth-url", "http://alice:pw@auth.example.com:8080/v?x", "http://***@auth.example.com:8080/v?***"},
		"user information, no path":     {"mirror-target", "https://tok@mirror.example.com", "https://***@mirror.example.com"},
		"a variable is no secret":       {"auth-signin", "https://login.example.com/start?$args", "https://login.example.com/start?$args"},
		"fragment":                      {"permanent-redirect", "https://new.example.com/a#access_token=x", "https://new.example.com/a#***"},
		"a path with a query":           {"app-root", "/app?key=abc", "/app?key=***"},
		"no query: as is":               {"auth-url", "http://auth.auth.svc.cluster.local/check", "http://auth.auth.svc.cluster.local/check"},
		"canary header value":           {"canary-by-header-value", "beta-7f3a", "***"},
		"canary header pattern":         {"canary-by-header-pattern", "^tok-.*$", "***"},
		"a URL in another annotation":   {"cors-allow-origin", "https://a.example.com, https://u:p@b.example.com", "https://a.example.com, https://***@b.example.com"},
		"plain values are shown":        {"proxy-body-size", "8m", "8m"},
		"header names are shown":        {"auth-response-headers", "X-User, X-Email", "X-User, X-Email"},
		"snippet header values":         {"configuration-snippet", "add_header X-Api-Key \"k-123 456\" always;\nproxy_set_header Authorization 'Bearer abc';", "add_header X-Api-Key *** always; proxy_set_header Authorization ***;"},
		"snippet URLs keep their host":  {"server-snippet", "return 302 https://login.example.com/?sig=abc;", "return 302 https://login.example.com/?sig=***;"},
		"snippet rewrite":               {"configuration-snippet", "rewrite ^/old/(.*)$ /new/$1 permanent;", "rewrite ^/old/(.*)$ *** permanent;"},
		"headers-more":                  {"configuration-snippet", `more_set_headers "X-Token: abc";`, `more_set_headers "X-Token: ***";`},
		"an unsupported snippet":        {"auth-snippet", "proxy_set_header X-Secret hunter2;", "proxy_set_header X-Secret ***;"},
		"a block":                       {"server-snippet", "location /x { add_header A b; }", "location /x { add_header A ***; }"},
		"a snippet that does not parse": {"configuration-snippet", `add_header X "unterminated`, "*** (does not parse)"},
	} {
		t.Run(name, func(t *testing.T) {
			if got, _ := redactAnnotation(tc.key, tc.value); got != tc.want {
				t.Errorf("redactAnnotation(%s, %q) = %q, want %q", tc.key, tc.value, got, tc.want)
			}
		})
	}
}

// TestScrubRejectionDetails: the reasons annotations.Parse gives for
// rejected values quote them; scrubbed, they keep the reason and lose the
// secret.
func TestScrubRejectionDetails(t *testing.T) {
	anns := map[string]string{
		annotations.Prefix + "auth-url":               "https://bob:hunter2@auth.example.com/check?token=QWxhZGRpbg",
		annotations.Prefix + "permanent-redirect":     "https://x.example.com/a b?key=K3y-secret",
		annotations.Prefix + "configuration-snippet":  "add_header X-Api-Key \"k-secret-value-$foo\";",
		annotations.Prefix + "canary-by-header-value": "ab",
	}
	_, report := annotations.Parse(anns)
	var list []annotation
	for k, v := range anns {
		list = append(list, annotation{strings.TrimPrefix(k, annotations.Prefix), v})
	}
	s := newScrubber(list)
	for _, e := range report {
		if e.Detail == "" {
			continue
		}
		got := s.scrub(e.Detail + "; " + `value "ab" is short`)
		for _, secret := range []string{"hunter2", "QWxhZGRpbg", "K3y-secret", "secret-value", `"ab"`} {
			if strings.Contains(got, secret) {
				t.Errorf("%s: %q still holds %q (detail %q)", e.Key, got, secret, e.Detail)
			}
		}
		if e.Status == annotations.Rejected && !strings.Contains(got, "***") {
			t.Errorf("%s: nothing hidden in %q", e.Key, got)
		}
	}
	if got := s.scrub("host example.com path /a is fine"); got != "host example.com path /a is fine" {
		t.Errorf("a message without secrets changed: %q", got)
	}
}
