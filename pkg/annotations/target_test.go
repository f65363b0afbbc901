package annotations

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	type want struct {
		host     string
		port     int
		loopback bool
		err      string // a part of the refusal
	}
	cases := map[string]want{
		"http://auth.io/check":                {host: "auth.io", port: 80},
		"https://Auth.IO./check":              {host: "auth.io", port: 443},
		"http://auth.ns.svc:8080?x=1":         {host: "auth.ns.svc", port: 8080},
		"http://10.0.0.7:9000/":               {host: "10.0.0.7", port: 9000},
		"http://[2001:db8::1]:81/":            {host: "2001:db8::1", port: 81},
		"https://$host/oauth2/auth":           {host: "$host", port: 443},
		"http://auth.io$request_uri":          {host: "auth.io", port: 80},
		"http://127.0.0.1:9000/":              {host: "127.0.0.1", port: 9000, loopback: true},
		"http://127.9.9.9/":                   {host: "127.9.9.9", port: 80, loopback: true},
		"http://[::1]:10254/":                 {host: "::1", port: 10254, loopback: true},
		"http://[::ffff:127.0.0.1]/":          {host: "::ffff:127.0.0.1", port: 80, loopback: true},
		"http://localhost:10254/metrics":      {host: "localhost", port: 10254, loopback: true},
		"http://LOCALHOST./":                  {host: "localhost", port: 80, loopback: true},
		"http://api.localhost/":               {host: "api.localhost", port: 80, loopback: true},
		"http://ip6-localhost/":               {host: "ip6-localhost", port: 80, loopback: true},
		"http://unix:/run/tidegate.sock:/x":   {err: "unix socket"},
		"http://UNIX:/run/tidegate.sock:/x":   {err: "unix socket"},
		"https://Unix:/tmp/s.sock":            {err: "unix socket"},
		"http://unix:":                        {err: "unix socket"},
		"http://0.0.0.0:10254/":               {err: "unspecified"},
		"http://[::]/":                        {err: "unspecified"},
		"http://0.1.2.3/":                     {err: "0.0.0.0/8"},
		"http://169.254.169.254/latest/":      {err: "link-local"},
		"http://[fe80::1]/":                   {err: "link-local"},
		"http://[fe80::1%25eth0]/":            {err: "'%'"},
		"http://[::ffff:169.254.169.254]/":    {err: "link-local"},
		"http://239.1.2.3/":                   {err: "multicast"},
		"http://0127.0.0.1/":                  {err: "a.b.c.d"},
		"http://127.1/":                       {err: "a.b.c.d"},
		"http://2130706433/":                  {err: "a.b.c.d"},
		"http://0x7f.0.0.1/":                  {err: "a.b.c.d"},
		"http://%6cocalhost/":                 {err: "'%'"},
		"http://user@auth.io/":                {err: "'@'"},
		"http://auth.io:/":                    {err: "empty port"},
		"http://auth.io:0/":                   {err: "1 to 65535"},
		"http://auth.io:65536/":               {err: "1 to 65535"},
		"http://auth.io:080/":                 {err: "1 to 65535"},
		"http://[::1/":                        {err: "unclosed"},
		"http://[127.0.0.1]/":                 {err: "not an IPv6"},
		"http://tidegate_upstream/":           {err: "not a DNS name"},
		"http:///x":                           {err: "no host"},
		"ftp://auth.io/":                      {err: "http://"},
		"//auth.io/":                          {err: "http://"},
		"http://a..io/":                       {err: "not a DNS name"},
		"http://-a.io/":                       {err: "not a DNS name"},
		"http://" + strings.Repeat("a", 64):   {err: "not a DNS name"},
		"http://a." + strings.Repeat("b", 63): {host: "a." + strings.Repeat("b", 63), port: 80},
	}
	for url, w := range cases {
		got, err := ParseTarget(url)
		if w.err != "" {
			if err == nil || !strings.Contains(err.Error(), w.err) {
				t.Errorf("%s: got %+v, %v; want an error mentioning %q", url, got, err, w.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", url, err)
			continue
		}
		if got.Host != w.host || got.Port != w.port || got.Loopback != w.loopback {
			t.Errorf("%s: got host %q port %d loopback %v; want %q %d %v", url, got.Host, got.Port, got.Loopback, w.host, w.port, w.loopback)
		}
	}
}

// TestConnectAnnotationsRefuseInward: auth-url and mirror-target refuse
// what ParseTarget refuses, as the annotation's own error.
func TestConnectAnnotationsRefuseInward(t *testing.T) {
	for _, key := range []string{"auth-url", "mirror-target"} {
		for _, v := range []string{"http://unix:/w/run/tidegate.sock:/configuration/backends", "http://169.254.169.254/", "http://0.0.0.0:10254/"} {
			_, report := Parse(map[string]string{Prefix + key: v})
			if len(report) != 1 || report[0].Status != Rejected {
				t.Errorf("%s: %s: got %+v, want it rejected", key, v, report)
			}
		}
	}
}

func TestParseTargetRefusesMetadata(t *testing.T) {
	for _, url := range []string{"http://[fd00:ec2::254]/latest/", "http://100.100.100.200/", "http://Metadata.Google.Internal./computeMetadata/v1/"} {
		if _, err := ParseTarget(url); err == nil || !strings.Contains(err.Error(), "metadata") {
			t.Errorf("%s: got %v, want a refusal naming the metadata service", url, err)
		}
	}
}
