package annotations

import (
	"reflect"
	"testing"
)

// TestCORSDefaults: an enabled CORS comes out of Parse with ingress-nginx's
// defaults where the annotations set nothing; the renderer adds none.
func TestCORSDefaults(t *testing.T) {
	tests := map[string]struct {
		anns map[string]string
		want CORS
	}{
		"enabled alone": {
			anns: map[string]string{Prefix + "enable-cors": "true"},
			want: CORS{Enabled: true, Origins: []string{"*"}, Methods: defaultCORSMethods, Headers: defaultCORSHeaders,
				Credentials: true, MaxAge: 1728000},
		},
		"what is set is kept": {
			anns: map[string]string{Prefix + "enable-cors": "true", Prefix + "cors-allow-origin": "https://a.io",
				Prefix + "cors-allow-credentials": "false", Prefix + "cors-max-age": "60"},
			want: CORS{Enabled: true, Origins: []string{"https://a.io"}, Methods: defaultCORSMethods, Headers: defaultCORSHeaders,
				MaxAge: 60, credentialsSet: true},
		},
		"disabled gets no defaults": {
			anns: map[string]string{Prefix + "cors-max-age": "60"},
			want: CORS{MaxAge: 60},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, _ := Parse(tc.anns)
			if !reflect.DeepEqual(cfg.CORS, tc.want) {
				t.Errorf("CORS = %+v, want %+v", cfg.CORS, tc.want)
			}
		})
	}
}
