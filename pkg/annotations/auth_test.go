package annotations

import "testing"

// TestAuthRealmDefault: basic authentication comes out of Parse with
// auth-realm, else ingress-nginx's realm.
func TestAuthRealmDefault(t *testing.T) {
	tests := map[string]struct {
		anns map[string]string
		want string
	}{
		"default":       {anns: map[string]string{Prefix + "auth-type": "basic"}, want: "Authentication Required"},
		"set":           {anns: map[string]string{Prefix + "auth-type": "basic", Prefix + "auth-realm": "Staff"}, want: "Staff"},
		"without basic": {anns: map[string]string{Prefix + "auth-secret": "users"}, want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if cfg, _ := Parse(tc.anns); cfg.Auth.Realm != tc.want {
				t.Errorf("realm %q, want %q", cfg.Auth.Realm, tc.want)
			}
		})
	}
}
