package annotations

import (
	"reflect"
	"strings"
	"testing"
)

func TestExtAuth(t *testing.T) {
	tests := map[string]struct {
		anns   map[string]string
		status map[string]Status
		detail map[string]string // substring
		want   ExtAuth
	}{
		"oauth2-proxy as the docs write it": {
			anns: map[string]string{
				Prefix + "auth-url":              "https://$host/oauth2/auth",
				Prefix + "auth-signin":           "https://$host/oauth2/start?rd=$escaped_request_uri",
				Prefix + "auth-response-headers": "X-Auth-Request-User, X-Auth-Request-Email,,x-auth-request-user",
			},
			status: map[string]Status{"auth-url": Applied, "auth-signin": Applied, "auth-response-headers": Applied},
			want: ExtAuth{URL: "https://$host/oauth2/auth", Signin: "https://$host/oauth2/start?rd=$escaped_request_uri",
				ResponseHeaders: []string{"X-Auth-Request-User", "X-Auth-Request-Email"}},
		},
		"cluster service with port, method and redirect header": {
			anns: map[string]string{
				Prefix + "auth-url":                   "http://auth.sso.svc.cluster.local:8080/verify?from=$request_uri",
				Prefix + "auth-method":                "post",
				Prefix + "auth-request-redirect":      "https://app.io/back",
				Prefix + "auth-signin":                "https://sso.io/login",
				Prefix + "auth-signin-redirect-param": "return_to",
			},
			status: map[string]Status{"auth-url": Applied, "auth-method": Applied, "auth-request-redirect": Applied, "auth-signin": Applied, "auth-signin-redirect-param": Applied},
			want: ExtAuth{URL: "http://auth.sso.svc.cluster.local:8080/verify?from=$request_uri", Method: "POST",
				RequestRedirect: "https://app.io/back", Signin: "https://sso.io/login", RedirectParam: "return_to"},
		},
		"IP addresses": {
			anns:   map[string]string{Prefix + "auth-url": "http://[::1]:9000/auth"},
			status: map[string]Status{"auth-url": Applied},
			want:   ExtAuth{URL: "http://[::1]:9000/auth"},
		},
		"other schemes, variables and injections are rejected": {
			anns: map[string]string{
				Prefix + "auth-url":              "http://auth.io/$remote_addr",
				Prefix + "auth-signin":           "ftp://sso.io/",
				Prefix + "auth-method":           "GET; return 200",
				Prefix + "auth-response-headers": "X-User, X_Bad",
			},
			status: map[string]Status{"auth-url": Rejected, "auth-signin": Rejected, "auth-method": Rejected, "auth-response-headers": Rejected},
			detail: map[string]string{"auth-url": "$remote_addr", "auth-signin": "http://", "auth-response-headers": "X_Bad"},
		},
		"a longer variable name is not a known one": {
			anns:   map[string]string{Prefix + "auth-url": "http://auth.io/$hostx"},
			status: map[string]Status{"auth-url": Rejected},
			detail: map[string]string{"auth-url": "$hostx"},
		},
		"host must be a name, an address or $host": {
			anns:   map[string]string{Prefix + "auth-url": "http://tidegate_upstream/x"},
			status: map[string]Status{"auth-url": Rejected},
		},
		"hosts in a variable are refused": {
			anns:   map[string]string{Prefix + "auth-url": "http://$host.evil.io/x"},
			status: map[string]Status{"auth-url": Rejected},
		},
		"user information is refused": {
			anns:   map[string]string{Prefix + "auth-url": "http://u:p@auth.io/x"},
			status: map[string]Status{"auth-url": Rejected},
		},
		"quotes, braces and spaces are refused": {
			anns:   map[string]string{Prefix + "auth-url": `http://auth.io/"; return 200 "x`, Prefix + "auth-request-redirect": "/a b"},
			status: map[string]Status{"auth-url": Rejected, "auth-request-redirect": Rejected},
		},
		"headers tidegate sets are refused": {
			anns:   map[string]string{Prefix + "auth-url": "http://auth.io/", Prefix + "auth-response-headers": "Host"},
			status: map[string]Status{"auth-url": Applied, "auth-response-headers": Rejected},
			want:   ExtAuth{URL: "http://auth.io/"},
		},
		"without auth-url the rest has no effect": {
			anns:   map[string]string{Prefix + "auth-signin": "https://sso.io/login"},
			status: map[string]Status{"auth-signin": Different},
			detail: map[string]string{"auth-signin": "without auth-url"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, report := Parse(tc.anns)
			got := map[string]Entry{}
			for _, e := range report {
				got[e.Key] = e
			}
			for k, st := range tc.status {
				if got[k].Status != st {
					t.Errorf("%s: status %q (%s), want %q", k, got[k].Status, got[k].Detail, st)
				}
			}
			for k, d := range tc.detail {
				if !strings.Contains(got[k].Detail, d) {
					t.Errorf("%s: detail %q does not contain %q", k, got[k].Detail, d)
				}
			}
			if !reflect.DeepEqual(cfg.ExtAuth, tc.want) {
				t.Errorf("ExtAuth = %+v, want %+v", cfg.ExtAuth, tc.want)
			}
		})
	}
}
