package annotations

import (
	"strings"
	"testing"
)

// TestProxySSLCiphers: proxy-ssl-ciphers is checked here only, against
// OpenSSL's names: a list nginx -t would refuse is rejected and leaves
// nginx's default ciphers.
func TestProxySSLCiphers(t *testing.T) {
	tests := map[string]struct {
		value  string
		status Status
		want   string // Ciphers, or a substring of the detail when rejected
	}{
		"aliases and names":  {value: "HIGH:!aNULL:ECDHE-RSA-AES128-GCM-SHA256", status: Applied, want: "HIGH:!aNULL:ECDHE-RSA-AES128-GCM-SHA256"},
		"unknown name":       {value: "HIGH:NOT-A-CIPHER", status: Rejected, want: `proxy-ssl-ciphers "HIGH:NOT-A-CIPHER": "NOT-A-CIPHER" is not an OpenSSL cipher name`},
		"nothing to use":     {value: "!aNULL", status: Rejected, want: "names no cipher to use"},
		"directive injected": {value: "HIGH; return 200", status: Rejected, want: "is not an OpenSSL cipher list"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, report := Parse(map[string]string{Prefix + "proxy-ssl-ciphers": tc.value})
			if len(report) != 1 || report[0].Status != tc.status {
				t.Fatalf("report %+v, want %s", report, tc.status)
			}
			if tc.status == Applied && cfg.ProxySSL.Ciphers != tc.want {
				t.Errorf("ciphers %q, want %q", cfg.ProxySSL.Ciphers, tc.want)
			}
			if tc.status == Rejected && (cfg.ProxySSL.Ciphers != "" || !strings.Contains(report[0].Detail, tc.want)) {
				t.Errorf("ciphers %q, detail %q; want none and a detail with %q", cfg.ProxySSL.Ciphers, report[0].Detail, tc.want)
			}
		})
	}
}
