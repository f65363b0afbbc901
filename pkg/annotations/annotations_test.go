package annotations

import (
	"strings"
	"testing"
)

func TestParseReport(t *testing.T) {
	tests := map[string]struct {
		anns       map[string]string
		wantStatus map[string]Status
		wantDetail map[string]string // substring
		check      func(t *testing.T, c Config)
	}{
		"timeouts and sizes apply": {
			anns:       map[string]string{Prefix + "proxy-read-timeout": "120", Prefix + "proxy-body-size": "8m"},
			wantStatus: map[string]Status{"proxy-read-timeout": Applied, "proxy-body-size": Applied},
			check: func(t *testing.T, c Config) {
				if c.Proxy.ReadTimeout != 120 || c.Proxy.BodySize != "8m" {
					t.Errorf("got %+v", c.Proxy)
				}
			},
		},
		"injection in a size is rejected": {
			anns:       map[string]string{Prefix + "proxy-body-size": "8m; include /etc/passwd"},
			wantStatus: map[string]Status{"proxy-body-size": Rejected},
			wantDetail: map[string]string{"proxy-body-size": "is not a size"},
			check: func(t *testing.T, c Config) {
				if c.Proxy.BodySize != "" {
					t.Errorf("a rejected value must leave the setting unset: %q", c.Proxy.BodySize)
				}
			},
		},
		// The list syntax (nginxvalue.CIDRs) allows an empty list; an
		// allow- or deny-list with no address is a mistake to report.
		"an empty source range is rejected": {
			anns:       map[string]string{Prefix + "whitelist-source-range": " , ", Prefix + "limit-whitelist": ""},
			wantStatus: map[string]Status{"whitelist-source-range": Rejected, "limit-whitelist": Rejected},
			wantDetail: map[string]string{"whitelist-source-range": "no address given", "limit-whitelist": "no address given"},
		},
		"newline anywhere is rejected": {
			anns:       map[string]string{Prefix + "permanent-redirect": "https://a.io/\nreturn 200"},
			wantStatus: map[string]Status{"permanent-redirect": Rejected},
			wantDetail: map[string]string{"permanent-redirect": "control character"},
		},
		"redirect URL may only use known variables": {
			anns:       map[string]string{Prefix + "permanent-redirect": "https://new.io$request_uri", Prefix + "temporal-redirect": "https://x.io/$remote_addr"},
			wantStatus: map[string]Status{"permanent-redirect": Applied, "temporal-redirect": Rejected},
		},
		"a known variable name followed by more letters is another variable": {
			anns:       map[string]string{Prefix + "permanent-redirect": "https://new.io/$hostx", Prefix + "temporal-redirect": "https://x.io/$host/$uri?$args"},
			wantStatus: map[string]Status{"permanent-redirect": Rejected, "temporal-redirect": Applied},
		},
		"rewrite target allows only capture references": {
			anns:       map[string]string{Prefix + "rewrite-target": "/$2$host"},
			wantStatus: map[string]Status{"rewrite-target": Rejected},
		},
		"rewrite target implies use-regex": {
			anns:       map[string]string{Prefix + "rewrite-target": "/$2"},
			wantStatus: map[string]Status{"rewrite-target": Different},
			check: func(t *testing.T, c Config) {
				if !c.Rewrite.UseRegex {
					t.Error("rewrite-target must imply use-regex")
				}
			},
		},
		"a snippet directive off the allow-list is rejected with the reason": {
			// Whether snippets apply at all is the model's decision
			// (allow-snippet-annotations, pkg/model/snippets.go).
			anns:       map[string]string{Prefix + "configuration-snippet": "more_set_headers x;"},
			wantStatus: map[string]Status{"configuration-snippet": Rejected},
			wantDetail: map[string]string{"configuration-snippet": "use add_header"},
		},
		"unknown keys are listed": {
			anns:       map[string]string{Prefix + "proxy-bodysize": "1m", "example.com/other": "x"},
			wantStatus: map[string]Status{"proxy-bodysize": Unknown},
		},
		"source ranges": {
			anns:       map[string]string{Prefix + "whitelist-source-range": "10.0.0.0/8, 192.168.1.1", Prefix + "denylist-source-range": "10.0.0.0/33"},
			wantStatus: map[string]Status{"whitelist-source-range": Applied, "denylist-source-range": Rejected},
			check: func(t *testing.T, c Config) {
				if len(c.Access.Allow) != 2 || c.Access.Allow[1].String() != "192.168.1.1/32" {
					t.Errorf("allow: %v", c.Access.Allow)
				}
			},
		},
		"cors origins with wildcard": {
			anns:       map[string]string{Prefix + "enable-cors": "true", Prefix + "cors-allow-origin": "https://a.io, https://*.b.io:8443", Prefix + "cors-allow-headers": "X-A, bad header"},
			wantStatus: map[string]Status{"enable-cors": Applied, "cors-allow-origin": Applied, "cors-allow-headers": Rejected},
		},
		"client certificate authentication": {
			anns: map[string]string{Prefix + "auth-tls-secret": "certs/client-ca", Prefix + "auth-tls-verify-client": "optional",
				Prefix + "auth-tls-verify-depth": "2", Prefix + "auth-tls-pass-certificate-to-upstream": "true",
				Prefix + "auth-tls-error-page": "https://login.example.com/cert", Prefix + "auth-tls-match-cn": "CN=(alice|bob)"},
			wantStatus: map[string]Status{"auth-tls-secret": Applied, "auth-tls-verify-client": Applied, "auth-tls-verify-depth": Applied,
				"auth-tls-pass-certificate-to-upstream": Applied, "auth-tls-error-page": Applied, "auth-tls-match-cn": Applied},
			check: func(t *testing.T, c Config) {
				want := AuthTLS{Secret: "certs/client-ca", Verify: "optional", Depth: 2, PassCertificate: true, ErrorPage: "https://login.example.com/cert", MatchCN: "CN=(alice|bob)"}
				if c.AuthTLS != want {
					t.Errorf("got %+v", c.AuthTLS)
				}
			},
		},
		"client certificate values that could reach nginx.conf unchecked are refused": {
			anns: map[string]string{Prefix + "auth-tls-secret": "../etc", Prefix + "auth-tls-verify-client": "yes",
				Prefix + "auth-tls-verify-depth": "0", Prefix + "auth-tls-error-page": "https://x.io/$remote_addr",
				Prefix + "auth-tls-match-cn": `CN=a"; return 200`},
			wantStatus: map[string]Status{"auth-tls-secret": Rejected, "auth-tls-verify-client": Rejected, "auth-tls-verify-depth": Rejected,
				"auth-tls-error-page": Rejected, "auth-tls-match-cn": Rejected},
			wantDetail: map[string]string{"auth-tls-verify-client": "optional_no_ca", "auth-tls-match-cn": "not allowed"},
		},
		"mirror targets: ingress-nginx's host$request_uri form, no other variable after the host": {
			anns: map[string]string{Prefix + "mirror-target": "https://test.example.com$request_uri", Prefix + "mirror-host": "shadow.example",
				Prefix + "auth-url": "http://auth.io$args"},
			wantStatus: map[string]Status{"mirror-target": Applied, "mirror-host": Applied, "auth-url": Rejected},
			wantDetail: map[string]string{"auth-url": "after the host"},
		},
		"a subject pattern PCRE alone would take is refused, not passed on": {
			anns:       map[string]string{Prefix + "auth-tls-match-cn": "CN=(?!root)"},
			wantStatus: map[string]Status{"auth-tls-match-cn": Rejected},
			wantDetail: map[string]string{"auth-tls-match-cn": "look-arounds"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, report := Parse(tc.anns)
			got := map[string]Entry{}
			for _, e := range report {
				got[e.Key] = e
			}
			if len(report) != len(tc.wantStatus) {
				t.Errorf("report has %d entries, want %d: %+v", len(report), len(tc.wantStatus), report)
			}
			for k, st := range tc.wantStatus {
				if got[k].Status != st {
					t.Errorf("%s: status %q (%s), want %q", k, got[k].Status, got[k].Detail, st)
				}
			}
			for k, d := range tc.wantDetail {
				if !strings.Contains(got[k].Detail, d) {
					t.Errorf("%s: detail %q does not contain %q", k, got[k].Detail, d)
				}
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func TestValidRegex(t *testing.T) {
	tests := map[string]bool{
		"/api(/|$)(.*)":                   true,
		"/[a-z]+/v[0-9]":                  true,
		"/(?=lookahead)":                  false,
		"/a\"; return 200 x;":             false,
		"/a b":                            false,
		"/(a":                             false,
		"no-slash":                        false,
		"/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)": false,
		// PCRE backtracks through nested repetitions exponentially.
		"/(a+)+$":               false,
		"/([a-z]*)*x":           false,
		"/(/.*)*x":              false,
		"/(?:ab|a)*c":           false,
		"/(a{2,}){3,}":          false,
		"/(x+x+)+y":             false,
		"/(.*)":                 true,
		"/v[0-9]+/(.+)/([^/]*)": true,
		"/(ab)?(cd)?":           true,
		"/(a{2}b)+":             true,
	}
	for re, ok := range tests {
		if err := ValidRegex(re); (err == nil) != ok {
			t.Errorf("ValidRegex(%q) = %v, want ok=%v", re, err, ok)
		}
	}
}

// TestMatchCNWithoutBacktracking: the client-certificate DN is matched
// per request; a nested repetition is refused.
func TestMatchCNWithoutBacktracking(t *testing.T) {
	for v, want := range map[string]Status{"CN=(a|b)": Applied, "CN=(a+)+$": Rejected} {
		_, report := Parse(map[string]string{Prefix + "auth-tls-secret": "ca", Prefix + "auth-tls-match-cn": v})
		for _, e := range report {
			if e.Key == "auth-tls-match-cn" && e.Status != want {
				t.Errorf("%q: %s (%s), want %s", v, e.Status, e.Detail, want)
			}
		}
	}
}
