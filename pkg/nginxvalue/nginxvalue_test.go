package nginxvalue

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestCIDRs(t *testing.T) {
	for name, tc := range map[string]struct {
		in   string
		want []string
		err  string
	}{
		// An empty list parses: the ConfigMap's block-cidrs "" blocks
		// nobody; annotations that need an address say so themselves.
		"empty":              {in: "", want: nil},
		"only separators":    {in: " , ,", want: nil},
		"address is /32":     {in: "10.0.0.1", want: []string{"10.0.0.1/32"}},
		"IPv6 address /128":  {in: "::1", want: []string{"::1/128"}},
		"masked":             {in: "10.1.2.3/8, 192.168.0.0/16", want: []string{"10.0.0.0/8", "192.168.0.0/16"}},
		"empty element kept": {in: "10.0.0.0/8,,::/0", want: []string{"10.0.0.0/8", "::/0"}},
		"not an address":     {in: "10.0.0.0/8, nope", err: `"nope" is not an IP address or CIDR`},
		"bad length":         {in: "10.0.0.0/33", err: `"10.0.0.0/33" is not an IP address or CIDR`},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := CIDRs(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("CIDRs(%q) error = %v, want %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CIDRs(%q): %v", tc.in, err)
			}
			var want []netip.Prefix
			for _, w := range tc.want {
				want = append(want, netip.MustParsePrefix(w))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("CIDRs(%q) = %v, want %v", tc.in, got, want)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	for v, want := range map[string][2]bool{ // Size, BufferSize
		"0":          {true, false},
		"8m":         {true, true},
		"512K":       {true, true},
		"1g":         {true, false},
		"1024":       {true, false},
		"64m":        {true, true},
		"99m":        {true, true},
		"100m":       {true, false},
		"99999k":     {true, true},
		"100000k":    {true, false},
		"1234567890": {false, false},
		"8mb":        {false, false},
		"-1":         {false, false},
		"":           {false, false},
		"8m;":        {false, false},
	} {
		if got := [2]bool{Size(v), BufferSize(v)}; got != want {
			t.Errorf("Size, BufferSize(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestSets(t *testing.T) {
	for _, c := range strings.Fields("error timeout invalid_header http_500 http_502 http_503 http_504 http_403 http_404 http_429 non_idempotent off") {
		if !NextUpstream(c) {
			t.Errorf("NextUpstream(%q) = false", c)
		}
	}
	for _, c := range []string{"http_418", "ERROR", "", "error timeout"} {
		if NextUpstream(c) {
			t.Errorf("NextUpstream(%q) = true", c)
		}
	}
	for _, p := range strings.Fields("TLSv1 TLSv1.1 TLSv1.2 TLSv1.3") {
		if !TLSProtocol(p) {
			t.Errorf("TLSProtocol(%q) = false", p)
		}
	}
	for _, p := range []string{"SSLv3", "TLSv1.0", "tlsv1.2", ""} {
		if TLSProtocol(p) {
			t.Errorf("TLSProtocol(%q) = true", p)
		}
	}
}

func TestCipherList(t *testing.T) {
	for v, want := range map[string]string{
		"ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305": "",
		"HIGH:!aNULL:!MD5":         "",
		"kECDHE+aRSA:@STRENGTH":    "",
		"HIGH:@SECLEVEL=2":         "",
		"":                         "an OpenSSL cipher list of 1 to 2048 characters is needed",
		"HIGH:!":                   `ssl-ciphers "HIGH:!": empty element`,
		"HIGH:NOPE":                `ssl-ciphers "HIGH:NOPE": "NOPE" is not an OpenSSL cipher name or alias`,
		"!aNULL:!MD5":              `ssl-ciphers "!aNULL:!MD5" names no cipher to use`,
		"HIGH;ssl_protocols SSLv3": `ssl-ciphers "HIGH;ssl_protocols SSLv3": "HIGH;ssl_protocols SSLv3" is not an OpenSSL cipher name or alias`,
	} {
		err := CipherList(v)
		if got := ""; err != nil {
			got = err.Error()
			if got != want {
				t.Errorf("CipherList(%q) = %q, want %q", v, got, want)
			}
		} else if want != "" {
			t.Errorf("CipherList(%q) = nil, want %q", v, want)
		}
	}
}

func TestWords(t *testing.T) {
	got, err := Words(" TLSv1.2  TLSv1.3 ", TLSProtocol, "%q is no protocol", "none given")
	if err != nil || len(got) != 2 || got[0] != "TLSv1.2" || got[1] != "TLSv1.3" {
		t.Errorf("two protocols: %q, %v", got, err)
	}
	if _, err := Words("TLSv1.2 SSLv3", TLSProtocol, "%q is no protocol", "none given"); err == nil || err.Error() != `"SSLv3" is no protocol` {
		t.Errorf("a bad word: %v", err)
	}
	if _, err := Words("  ", TLSProtocol, "%q is no protocol", "none given"); err == nil || err.Error() != "none given" {
		t.Errorf("an empty list: %v", err)
	}
}
